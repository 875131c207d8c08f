// DistributedOptimizer.swift — Megatron's distributed optimizer (ZeRO-1): the fp32 main gradients
// and the optimizer state (Adam's moments, SGD's momentum) are sharded across the data-parallel
// group. Data-parallel rank r owns a contiguous piece of every gradient bucket (pieces differ by at
// most one element, so any d splits any bucket — odd d included, with no padding element ever
// reduced or stored). A step:
//     reduce-scatter each bucket (GradientBuckets) → this rank's summed gradient piece in `mainGrad`
//     → norm over all ranks' pieces → clip → the update on the owned elements of the parameters
//     → all-gather every bucket's parameters in place, so every replica holds the whole model again.
// A piece may cut a parameter anywhere; `segments` maps the shard onto (chunk, parameter, range).
import Distributed
import Tensor

public final class DistributedOptimizer: TrainingOptimizer {
    /// A run of the shard that lies inside one parameter.
    public struct Segment: Sendable {
        public let chunk: Int, slot: Int
        /// First element in the parameter's local (flattened) tensor, and in the shard.
        public let elementOffset: Int, shardOffset: Int
        public let count: Int
    }

    /// This rank's piece of one bucket: its range in the chunk's arena and in the shard.
    struct Piece {
        let chunk: Int
        let bucketOffset: Int, bucketCount: Int
        let counts: [Int32]
        let arenaOffset: Int, shardOffset: Int, count: Int
    }

    public let hyper: OptimizerHyperparameters
    public var step = 0
    let chunks: [any ParameterChunk]
    let group: Communicator
    /// Every rank: each gradient element lives on exactly one (tensor, pipeline, data) rank.
    let world: Communicator
    let pieces: [Piece]
    public let segments: [Segment]
    /// The summed gradients of the owned elements (shard order), and their state (in
    /// `hyper.stateNames` order).
    public let mainGrad: FloatBuffer, state: [FloatBuffer]

    /// Element counts of each data-parallel rank's piece of a bucket of `count` elements.
    public static func pieceCounts(_ count: Int, ranks: Int) -> [Int32] {
        (0..<ranks).map { Int32(count / ranks + ($0 < count % ranks ? 1 : 0)) }
    }

    /// Shards the parameters of `chunks` by `buckets`' layout over `group` (the data-parallel group
    /// of `world`) and points the buckets' reduce-scatter at this rank's gradient shard.
    public init(
        chunks: [any ParameterChunk], buckets: GradientBuckets, group: Communicator, world: Communicator,
        hyper: OptimizerHyperparameters
    ) {
        self.chunks = chunks
        self.group = group
        self.world = world
        self.hyper = hyper
        var pieces: [Piece] = [], segments: [Segment] = []
        var shardSize = 0
        for bucket in buckets.layout {
            let counts = Self.pieceCounts(bucket.count, ranks: group.size)
            let before = counts[..<group.rank].reduce(0) { $0 + Int($1) }
            let piece = Piece(
                chunk: bucket.chunk, bucketOffset: bucket.offset, bucketCount: bucket.count, counts: counts,
                arenaOffset: bucket.offset + before, shardOffset: shardSize, count: Int(counts[group.rank]))
            pieces.append(piece)
            let table = chunks[bucket.chunk].table
            for slot in bucket.slots.sorted() {
                let lo = max(table.offsets[slot], piece.arenaOffset)
                let hi = min(table.offsets[slot] + table.specs[slot].count, piece.arenaOffset + piece.count)
                guard lo < hi else { continue }
                segments.append(
                    Segment(
                        chunk: bucket.chunk, slot: slot, elementOffset: lo - table.offsets[slot],
                        shardOffset: piece.shardOffset + lo - piece.arenaOffset, count: hi - lo))
            }
            shardSize += piece.count
        }
        self.pieces = pieces
        self.segments = segments
        mainGrad = FloatBuffer(count: max(shardSize, 1))
        state = hyper.stateNames.map { _ in FloatBuffer(count: max(shardSize, 1)) }
        buckets.scatterTargets = pieces.map { .init(counts: $0.counts, output: mainGrad.base + $0.shardOffset) }
    }

    /// Elements of optimizer state this rank holds.
    public var shardCount: Int { pieces.reduce(0) { $0 + $1.count } }

    public var isSharded: Bool { true }
    public var updatePhase: String { "optimizer (\(hyper.name) shard + param all-gather)" }

    /// Σ g² over the owned elements of every parameter that counts toward the global norm (split
    /// parameters on every tensor rank, replicated ones on tensor rank 0, tied copies never).
    public func localSumOfSquares() -> Double {
        var sum = 0.0
        for s in segments {
            guard chunks[s.chunk].table.countsOnce(s.slot) else { continue }
            sum += Kernels.sumOfSquares(mainGrad.base + s.shardOffset, count: s.count)
        }
        return sum
    }

    /// Scales the gradient shard by `coefficient` (clipping, loss-scale removal).
    public func scaleGradients(by coefficient: Float) {
        Kernels.scale(mainGrad.base, by: coefficient, count: shardCount)
    }

    /// True when every owned gradient is finite.
    public func gradientsAreFinite() -> Bool { Kernels.allFinite(mainGrad.base, count: shardCount) }

    public func gradientNorm() throws -> Double { try world.allReduceSum(localSumOfSquares()).squareRoot() }

    public func zeroGradientCount() throws -> Int {
        var local = 0
        for s in segments {
            guard chunks[s.chunk].table.countsOnce(s.slot) else { continue }
            local += Kernels.zeroCount(mainGrad.base + s.shardOffset, count: s.count)
        }
        return Int(try world.allReduceSum(Double(local)))
    }

    public func unscaleAndFindNonFinite(scale: Float) throws -> Bool {
        if scale != 1 { scaleGradients(by: 1 / scale) }
        return try world.allReduceMax(gradientsAreFinite() ? 0 : 1) != 0
    }

    public func injectOverflow() { mainGrad.base[0] = .infinity }

    /// Sums the partial gradients of the shard (sequence-parallel norms, qk_layernorm's weights) over
    /// the tensor group (the shard layout is the same on every tensor rank, so the owned ranges line up).
    public func finalizeGradients() throws {
        let tp = chunks[0].tensorParallel
        guard let tensor = tp.group, tp.size > 1 else { return }
        for s in segments where chunks[s.chunk].table.specs[s.slot].isPartial(under: tp) {
            try tensor.allReduceSum(mainGrad.base + s.shardOffset, count: s.count)
        }
    }

    /// The update on the owned elements, then every bucket's parameters all-gathered in place.
    public func update(lr: Float, decoupledLR: Float?, clipCoefficient: Double) throws {
        let scale = GradClipping.gradientScale(clipCoefficient)
        step += 1
        for s in segments {
            let table = chunks[s.chunk].table
            hyper.apply(
                params: chunks[s.chunk].params.pointer(s.slot) + s.elementOffset,
                grads: mainGrad.base + s.shardOffset, state: state.map { $0.base + s.shardOffset }, count: s.count,
                lr: hyper.learningRate(table.specs[s.slot], lr: lr, decoupledLR: decoupledLR),
                weightDecay: table.specs[s.slot].weightDecay ? hyper.weightDecay : 0, step: step, gradientScale: scale)
        }
        let requests = try pieces.map { p in
            try group.iallGatherInPlace(chunks[p.chunk].params.storage.base + p.bucketOffset, counts: p.counts)
        }
        for r in requests { try r.wait() }
    }

    public var chunkState: [[ParameterArena]]? { nil }

    /// Full-size arenas: a checkpoint's state is read whole, whatever grid or optimizer wrote it.
    public func stateForLoading() -> [[ParameterArena]] {
        chunks.map { chunk in hyper.stateNames.map { _ in ParameterArena(table: chunk.table) } }
    }

    /// Copies the owned elements of full-size state arenas (per chunk) into the shard.
    public func adoptState(_ whole: [[ParameterArena]]) {
        for s in segments {
            for (k, buffer) in state.enumerated() {
                (buffer.base + s.shardOffset).update(
                    from: whole[s.chunk][k].pointer(s.slot) + s.elementOffset, count: s.count)
            }
        }
    }
}

// GradientBuckets.swift — data-parallel gradient reduction in buckets (Megatron's
// param_and_grad_buffer): each model chunk's gradient arena is cut into contiguous buckets of about
// `ddp_bucket_size` elements, in reverse declaration order (≈ the order backward finishes them).
// During the step's last micro-batch the model reports parameters whose gradients are final; a
// bucket whose parameters are all final starts its non-blocking all-reduce at once, overlapping the
// rest of the backward pass (`progress`, called at layer boundaries, or a progress thread lets MPI
// move it meanwhile: CommunicationProgress). `finish` starts what is left and waits for everything.
// With the distributed optimizer each bucket is reduce-scattered instead: data-parallel rank r
// receives the summed gradients of its own contiguous piece of every bucket (see
// DistributedOptimizer) — the pieces differ by at most one element, so any d works, odd d included.
// With a pipeline, each chunk's tied parameter (the word embedding and its copy on the last stage:
// ParameterChunk.tiedSlot) gets a bucket of its own, so both stages split it identically and their
// updates stay bitwise equal. With a sparse ending (SparseRowGradient) the word embedding also gets
// a bucket of its own, started when the last backward pass begins; its last micro-batch's rows are
// exchanged and added in `finish`.
// When the group's ranks share one node (`ddp_reduction: auto`), the buckets are reduced through
// shared memory instead of MPI (SharedGradientReduction): `start` marks a bucket final, `progress`
// and `finish` sum this rank's pieces and write them back into every replica's arena.
import Distributed

public final class GradientBuckets {
    public struct Bucket {
        public let chunk: Int
        /// The bucket's range of the chunk's gradient arena (parameters plus their alignment padding).
        public let offset: Int, count: Int
        public let slots: [Int]
        var pending = 0
        var started = false
        var request: Request? = nil
    }

    /// Where a bucket's reduce-scatter leaves this rank's piece: per-rank element counts and the output.
    public struct ScatterTarget {
        public let counts: [Int32]
        public let output: UnsafeMutablePointer<Float>
        public init(counts: [Int32], output: UnsafeMutablePointer<Float>) { self.counts = counts; self.output = output }
    }

    let chunks: [any ParameterChunk]
    let group: Communicator
    private var buckets: [Bucket] = []
    private var bucketOf: [[Int]] = []  // [chunk][slot] → bucket index
    private var failure: Error? = nil
    /// Elements of gradient whose all-reduce started before `finish` (overlapped with backward).
    public private(set) var overlappedElements = 0
    public private(set) var totalElements = 0

    /// When set (the benchmark), `finish(backwardEnded:)` also measures the exposed part of the wait.
    public var measuresExposedWait = false
    /// Seconds, summed over steps, from the moment the slowest rank of the group ended its backward
    /// pass to the end of the wait: the reduction left over, without the time spent waiting for a
    /// slower peer (MPI_Wtime on one node is one clock; across nodes an estimate, clamped to the wait).
    public private(set) var exposedWaitSeconds = 0.0

    /// Set by the distributed optimizer: reduce-scatter bucket b into `scatterTargets[b]`.
    public var scatterTargets: [ScatterTarget]? = nil {
        didSet { shared?.scatterTargets = scatterTargets }
    }

    /// The reduction through a shared-memory window, when the group shares one node and it is allowed.
    private var shared: SharedGradientReduction? = nil
    /// Whether the buckets are reduced through shared memory (else with MPI's non-blocking collectives).
    public var reducesThroughSharedMemory: Bool { shared != nil }
    /// Why shared memory was asked for and not used (the group spans nodes, /dev/shm is too small).
    public private(set) var sharedMemoryRefusal: String? = nil

    /// The word embedding (`slot` of chunk 0) whose last micro-batch's rows are exchanged sparsely.
    public struct SparseEnding {
        public let slot: Int
        public let rows: SparseRowGradient
        public init(slot: Int, rows: SparseRowGradient) { self.slot = slot; self.rows = rows }
    }
    public let sparseEnding: SparseEnding?

    /// `sharedMemory`: reduce through a shared-memory window when every rank of `group` runs on this
    /// node (collective; the chunks' gradient arenas then move into the window).
    public init(
        chunks: [any ParameterChunk], group: Communicator, bucketElements: Int, isolateTiedParameters: Bool,
        sparseEnding: SparseEnding? = nil, sharedMemory: Bool = false
    ) throws {
        self.chunks = chunks
        self.group = group
        self.sparseEnding = sparseEnding
        for (c, model) in chunks.enumerated() {
            let table = model.table
            var slotBucket = [Int](repeating: 0, count: table.specs.count)
            var current: [Int] = []
            func close() {
                guard let last = current.last, let first = current.first else { return }
                // Slots are in descending order: memory runs from the last slot's offset to the end of the first's.
                let start = table.offsets[last]
                let end = first + 1 < table.offsets.count ? table.offsets[first + 1] : table.totalCount
                for s in current { slotBucket[s] = buckets.count }
                buckets.append(Bucket(chunk: c, offset: start, count: end - start, slots: current))
                current = []
            }
            var size = 0
            let isolated = [isolateTiedParameters ? model.tiedSlot : nil, c == 0 ? sparseEnding?.slot : nil]
            for slot in stride(from: table.specs.count - 1, through: 0, by: -1) {
                if isolated.contains(slot) {
                    close(); size = 0
                    current = [slot]; close()
                    continue
                }
                current.append(slot)
                size += table.specs[slot].count
                if size >= bucketElements { close(); size = 0 }
            }
            close()
            bucketOf.append(slotBucket)
        }
        totalElements = buckets.reduce(0) { $0 + $1.count }
        do {
            if sharedMemory { shared = try SharedGradientReduction(chunks: chunks, buckets: buckets, group: group) }
        } catch let refusal as SharedGradientReduction.Unavailable {
            sharedMemoryRefusal = refusal.reason
        }
    }

    public var bucketCount: Int { buckets.count }
    /// The buckets in reduction order.
    public var layout: [Bucket] { buckets }

    /// Before the step's last micro-batch: nothing is final yet.
    public func beginLastMicrobatch() {
        overlappedElements = 0
        failure = nil
        for i in buckets.indices {
            buckets[i].pending = buckets[i].slots.count
            buckets[i].request = nil
            buckets[i].started = false
        }
        shared?.beginStep()
    }

    /// The gradients of `slots` of chunk `chunk` will not change again in this step.
    public func markFinal(chunk: Int, slots: [Int]) {
        for slot in slots {
            let b = bucketOf[chunk][slot]
            buckets[b].pending -= 1
            if buckets[b].pending == 0 && !buckets[b].started {
                start(b)
                overlappedElements += buckets[b].count
            }
        }
    }

    /// Lets MPI move the started reductions (CommunicationProgress, at layer boundaries).
    public func progress() {
        if let shared { shared.advance(); return }
        for b in buckets.indices { if let r = buckets[b].request, !r.completed { _ = try? r.test() } }
    }

    /// Starts every bucket not yet started and waits for all; the gradients are then summed over the
    /// group. `backwardEnded` (MPI wall time) is when this rank's backward pass ended.
    public func finish(backwardEnded: Double) throws {
        for b in buckets.indices where !buckets[b].started { start(b) }
        shared?.finish()
        for b in buckets.indices { try buckets[b].request?.wait(); buckets[b].request = nil }
        if let failure { throw failure }
        if let sparseEnding, sparseEnding.rows.holdsRows { try addSparseRows(sparseEnding) }
        if measuresExposedWait && group.size > 1 {
            let end = MPIRuntime.wallTime
            let slowest = Double(try group.allReduceMax(Int(backwardEnded * 1e6))) / 1e6
            exposedWaitSeconds += min(end - backwardEnded, max(0, end - slowest))
        }
    }

    /// Adds every rank's kept-apart word rows to the reduced word-embedding gradient, or under the
    /// distributed optimizer to the part of it in this rank's piece of the word embedding's bucket.
    private func addSparseRows(_ e: SparseEnding) throws {
        let table = chunks[0].table, width = e.rows.tableRows * e.rows.hidden
        guard let target = scatterTargets?[bucketOf[0][e.slot]] else {
            try e.rows.addExchanged(group: group, into: chunks[0].grads.pointer(e.slot), range: 0..<width)
            return
        }
        // Bucket coordinates: the slot starts at `slotStart`, this rank's piece at `pieceStart`.
        let slotStart = table.offsets[e.slot] - buckets[bucketOf[0][e.slot]].offset
        let pieceStart = target.counts[..<group.rank].reduce(0) { $0 + Int($1) }
        let pieceEnd = pieceStart + Int(target.counts[group.rank])
        let lo = max(0, pieceStart - slotStart), hi = max(lo, min(width, pieceEnd - slotStart))
        try e.rows.addExchanged(
            group: group, into: target.output + (slotStart + lo - pieceStart), range: lo..<hi)
    }

    private func start(_ b: Int) {
        buckets[b].started = true
        if let shared { shared.markReady(b); return }
        let bucket = buckets[b]
        let grads = chunks[bucket.chunk].grads.storage.base + bucket.offset
        do {
            if let target = scatterTargets?[b] {
                buckets[b].request = try group.ireduceScatter(grads, counts: target.counts, into: target.output)
            } else {
                buckets[b].request = try group.iallReduceSum(grads, count: bucket.count)
            }
        } catch { failure = failure ?? error }
    }
}

// SharedGradientReduction.swift — the data-parallel gradient reduction of replicas on one node
// without MPI messages (`ddp_reduction: auto`). Every replica's gradient arenas live in one MPI-3
// shared-memory window (SharedMemoryWindow), so replica r sums piece r of a bucket straight from
// every replica's arena into its own and writes the sum into the same piece of every other
// replica's arena (under the distributed optimizer: into its shard, and nothing is written back) —
// a reduce-scatter and an all-gather with nothing in between. (Open MPI's non-blocking all-reduce
// first copies an in-place buffer, then sends and receives each half through its own shared-memory
// transport.) Each piece is summed by one replica, so every replica holds the same bits, and a
// replica touches only its own pieces of the others' arenas.
//
// Ordering goes through two flags per (replica, bucket) in the window, each holding the number of
// the step it was set in:
//   ready[b]    this replica's bucket b is final (its backward pass will not write it again)
//   reduced[b]  this replica has read every replica's piece of bucket b and written the sum back
// A replica is done when every replica has reduced every bucket: no peer reads or writes its arena
// after that until the next step, so it may zero, unscale and clip its gradients.
import Distributed
import Tensor

final class SharedGradientReduction {
    struct Unavailable: Error { let reason: String }

    let window: SharedMemoryWindow
    private let rank: Int, size: Int
    /// Per chunk: where its arena starts in every replica's segment.
    private let arenaOffsets: [Int]
    private let buckets: [GradientBuckets.Bucket]
    private var generation: Int64 = 0
    /// This step's progress on this rank: buckets made final, pieces reduced.
    private var ready: [Bool], reduced: [Bool]
    /// Set by the distributed optimizer: piece r of bucket b is summed into targets[b] (nothing written back).
    var scatterTargets: [GradientBuckets.ScatterTarget]? = nil

    /// Collective over `group`: moves the gradient arenas of `chunks` into a shared window, or
    /// throws `Unavailable` (on every rank) when there can be none.
    init(chunks: [any ParameterChunk], buckets: [GradientBuckets.Bucket], group: Communicator) throws {
        let flags = (2 * buckets.count + 7) / 8 * 8  // 64-byte aligned Int64 flags
        var offsets: [Int] = []
        var bytes = flags * 8
        for chunk in chunks {
            offsets.append(bytes)
            bytes += (chunk.grads.table.totalCount * 4 + 63) / 64 * 64
        }
        switch try SharedMemoryWindow.make(group: group, bytes: bytes) {
        case .window(let w): window = w
        case .unavailable(let reason): throw Unavailable(reason: reason)
        }
        (rank, size) = (group.rank, group.size)
        arenaOffsets = offsets
        self.buckets = buckets
        ready = Array(repeating: false, count: buckets.count)
        reduced = ready
        for (c, chunk) in chunks.enumerated() {
            let count = chunk.grads.table.totalCount
            chunk.grads.relocate(
                into: FloatBuffer(borrowing: window.segment(rank) + offsets[c], count: count, owner: window))
        }
    }

    private func flag(_ r: Int, _ index: Int) -> UnsafeMutablePointer<Int64> {
        window.segment(r).assumingMemoryBound(to: Int64.self) + index
    }
    private func readyFlag(_ r: Int, _ b: Int) -> UnsafeMutablePointer<Int64> { flag(r, b) }
    private func reducedFlag(_ r: Int, _ b: Int) -> UnsafeMutablePointer<Int64> { flag(r, buckets.count + b) }

    /// Bucket `b`'s gradients in replica `r`'s arena.
    private func gradients(_ r: Int, _ b: Int) -> UnsafeMutablePointer<Float> {
        (window.segment(r) + arenaOffsets[buckets[b].chunk]).assumingMemoryBound(to: Float.self) + buckets[b].offset
    }

    /// Replica r's piece of bucket b: the distributed optimizer's shard, else an even split.
    private func piece(_ r: Int, _ b: Int) -> Range<Int> {
        if let counts = scatterTargets?[b].counts {
            let start = counts[..<r].reduce(0) { $0 + Int($1) }
            return start..<(start + Int(counts[r]))
        }
        let n = buckets[b].count
        return (r * n / size)..<((r + 1) * n / size)
    }

    /// A new step: nothing is final yet.
    func beginStep() {
        generation += 1
        for b in buckets.indices { ready[b] = false; reduced[b] = false }
    }

    /// Bucket `b` is final on this replica.
    func markReady(_ b: Int) {
        ready[b] = true
        SharedMemoryWindow.storeFlag(readyFlag(rank, b), generation)
    }

    /// Does whatever is possible without waiting: reduces this replica's piece of each bucket that
    /// every replica has made final. Returns whether every replica has reduced every bucket.
    @discardableResult
    func advance() -> Bool {
        for b in buckets.indices where ready[b] && !reduced[b] {
            guard (0..<size).allSatisfy({ SharedMemoryWindow.loadFlag(readyFlag($0, b)) == generation }) else {
                continue
            }
            reducePiece(b)
            reduced[b] = true
            SharedMemoryWindow.storeFlag(reducedFlag(rank, b), generation)
        }
        return buckets.indices.allSatisfy { b in
            reduced[b] && (0..<size).allSatisfy { SharedMemoryWindow.loadFlag(reducedFlag($0, b)) == generation }
        }
    }

    /// Sums piece `rank` of bucket `b` over the replicas — this replica's values first, then the
    /// others' in rank order — into this replica's arena and then every other's, or into its shard.
    private func reducePiece(_ b: Int) {
        let range = piece(rank, b)
        guard !range.isEmpty else { return }
        let own = gradients(rank, b) + range.lowerBound
        let out = scatterTargets.map { $0[b].output } ?? own
        var first = true
        for r in 0..<size where r != rank {
            Kernels.add(first ? own : out, gradients(r, b) + range.lowerBound, into: out, count: range.count)
            first = false
        }
        guard scatterTargets == nil else { return }
        for r in 0..<size where r != rank {
            (gradients(r, b) + range.lowerBound).update(from: own, count: range.count)
        }
    }

    /// Every bucket must have been marked ready: completes the reduction (then no peer touches this
    /// replica's arena until the next step).
    func finish() {
        window.wait("the shared-memory gradient reduction") { advance() }
    }
}

// TensorParallel.swift — the tensor-parallel group a model replica computes with, and Megatron's
// communication ops as conjugate pairs (Megatron paper §3; Korthikanti et al. 2022 for sequence
// parallelism). Each op is written once per direction, next to its conjugate:
//
//   op                                      forward                    backward
//   copyToTensorModelParallelRegion   (f)   identity                   all-reduce
//   reduceFromTensorModelParallelRegion (g) all-reduce                 identity
//   gatherFromSequenceParallelRegion  (SP g) all-gather along s         reduce-scatter along s
//   reduceScatterToSequenceParallelRegion (SP ḡ) reduce-scatter along s all-gather along s
//   scatterToSequenceParallelRegion         keep this rank's s-slice   all-gather along s
//
// Activations are [s, b, h], so a sequence slice is a contiguous block of rows: rank r holds rows
// [r·n/t, (r+1)·n/t) of the n = s·b rows.
import Distributed

public struct TensorParallel: @unchecked Sendable {
    /// nil when t = 1 (every op is then the identity).
    public let group: Communicator?
    public let rank: Int
    public let size: Int
    public let sequenceParallel: Bool

    public init(group: Communicator?, sequenceParallel: Bool) {
        self.group = group
        rank = group?.rank ?? 0
        size = group?.size ?? 1
        self.sequenceParallel = sequenceParallel && size > 1
    }

    /// Tensor rank 0 of a group of `size` without a communicator: sizes for planning, never run.
    init(planningSize size: Int, sequenceParallel: Bool) {
        group = nil; rank = 0; self.size = size; self.sequenceParallel = sequenceParallel && size > 1
    }

    /// One rank, no communication.
    public static let single = TensorParallel(group: nil, sequenceParallel: false)

    /// Rows this rank holds in sequence-parallel regions (all n rows without sequence parallelism).
    public func shardRows(_ n: Int) -> Int { sequenceParallel ? n / size : n }
    /// Offset of this rank's first row in sequence-parallel regions.
    public func shardRowOffset(_ n: Int) -> Int { sequenceParallel ? rank * (n / size) : 0 }

    // MARK: f — forward: identity, backward: all-reduce

    public func copyToTensorModelParallelRegionBackward(_ dx: UnsafeMutablePointer<Float>, count: Int) throws {
        try group?.allReduceSum(dx, count: count)
    }

    // MARK: g — forward: all-reduce, backward: identity

    public func reduceFromTensorModelParallelRegionForward(_ y: UnsafeMutablePointer<Float>, count: Int) throws {
        try group?.allReduceSum(y, count: count)
    }

    // MARK: SP g — forward: all-gather along s, backward: reduce-scatter along s

    /// `full` [n, h]: on entry this rank's rows hold its shard; on return all rows are filled.
    public func gatherFromSequenceParallelRegionForward(_ full: UnsafeMutablePointer<Float>, shardCount: Int) throws {
        try group?.allGatherInPlace(full, count: shardCount)
    }

    /// `dfull` [n, h] partial gradients → `dshard` [n/t, h], summed over the group.
    public func gatherFromSequenceParallelRegionBackward(
        _ dfull: UnsafePointer<Float>, into dshard: UnsafeMutablePointer<Float>,
        shardCount: Int
    ) throws {
        if let group {
            try group.reduceScatter(dfull, count: shardCount, into: dshard)
        } else {
            dshard.update(from: dfull, count: shardCount)
        }
    }

    // MARK: SP ḡ — forward: reduce-scatter along s, backward: all-gather along s

    public func reduceScatterToSequenceParallelRegionForward(
        _ partial: UnsafePointer<Float>, into shard: UnsafeMutablePointer<Float>,
        shardCount: Int
    ) throws {
        if let group {
            try group.reduceScatter(partial, count: shardCount, into: shard)
        } else {
            shard.update(from: partial, count: shardCount)
        }
    }

    /// `dfull` [n, h]: on entry this rank's rows hold the shard's gradient; on return all rows.
    public func reduceScatterToSequenceParallelRegionBackward(_ dfull: UnsafeMutablePointer<Float>, shardCount: Int)
        throws
    {
        try group?.allGatherInPlace(dfull, count: shardCount)
    }

    // MARK: scatter to SP region — forward: keep own slice, backward: all-gather along s

    public func scatterToSequenceParallelRegionForward(
        _ full: UnsafePointer<Float>, into shard: UnsafeMutablePointer<Float>,
        shardCount: Int
    ) {
        shard.update(from: full + rank * shardCount, count: shardCount)
    }

    public func scatterToSequenceParallelRegionBackward(_ dfull: UnsafeMutablePointer<Float>, shardCount: Int) throws {
        try group?.allGatherInPlace(dfull, count: shardCount)
    }
}

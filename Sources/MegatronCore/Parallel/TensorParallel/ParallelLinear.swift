// ParallelLinear.swift — Megatron's tensor-parallel linear layers (Megatron paper §3), as forward /
// backward pairs over raw pointers. Weights are [out, in] (y = x·Aᵀ in PyTorch terms).
//
// ColumnParallelLinear: Y = X·A + b with A split by columns, A = [A_1 … A_t]; rank r computes
//   Y_r = X·A_r + b_r. X must be complete on every rank: replicated (f: identity forward,
//   all-reduce of ∂X backward) or all-gathered from the sequence shards (SP g).
// RowParallelLinear: Y = X·A + b with A split by rows and X by columns; rank r computes the partial
//   X_r·A_r, summed over the group (g: all-reduce; SP ḡ: reduce-scatter along s); the bias is left
//   to the caller (Megatron's skip_bias_add), which fuses it with dropout and the residual add.
import Tensor

public enum ColumnParallelLinear {
    /// - input: [n, in]; under SP only this rank's rows are filled on entry and the rest are gathered here
    /// - weight: [outLocal, in]   - bias: [outLocal]   - output: [n, outLocal]
    public static func forward(
        input: UnsafeMutablePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
        output: UnsafeMutablePointer<Float>, rows n: Int, inFeatures k: Int, outFeatures m: Int,
        tensorParallel tp: TensorParallel, precision: Precision = .fp32
    ) throws {
        if tp.sequenceParallel { try tp.gatherFromSequenceParallelRegionForward(input, shardCount: n / tp.size * k) }
        Linear.forward(
            x: input, weight: weight, bias: bias, y: output, rows: n, inFeatures: k, outFeatures: m,
            precision: precision)
    }

    /// `forward` into a held tensor, rounded and kept (and with `gelu`, FC1's GELU applied and kept):
    /// `Linear.forward(keeping:gelu:)`.
    public static func forward(
        input: UnsafeMutablePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
        keeping output: HeldTensor, gelu: HeldTensor? = nil, rows n: Int, inFeatures k: Int, outFeatures m: Int,
        tensorParallel tp: TensorParallel
    ) throws {
        if tp.sequenceParallel { try tp.gatherFromSequenceParallelRegionForward(input, shardCount: n / tp.size * k) }
        Linear.forward(
            x: input, weight: weight, bias: bias, keeping: output, gelu: gelu, rows: n, inFeatures: k, outFeatures: m)
    }

    /// Returns ∂loss/∂input for the rows this rank holds ([n/t, in] under SP, else [n, in]), summed
    /// over the group. `partial` [n, in] and `shard` [n/t, in] are scratch.
    public static func backward(
        dy: UnsafePointer<Float>, input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
        dweight: UnsafeMutablePointer<Float>, dbias: UnsafeMutablePointer<Float>?,
        rows n: Int, inFeatures k: Int, outFeatures m: Int, tensorParallel tp: TensorParallel,
        partial: UnsafeMutablePointer<Float>, shard: UnsafeMutablePointer<Float>,
        precision: Precision = .fp32, deferring: DeferredWeightGradients? = nil, heldInput: HeldTensor? = nil
    ) throws -> UnsafePointer<Float> {
        Linear.backward(
            dy: dy, x: input, weight: weight, dx: partial, dweight: dweight, dbias: dbias,
            rows: n, inFeatures: k, outFeatures: m, precision: precision, deferring: deferring,
            heldInput: heldInput)
        if tp.sequenceParallel {
            try tp.gatherFromSequenceParallelRegionBackward(partial, into: shard, shardCount: n / tp.size * k)
            return UnsafePointer(shard)
        }
        try tp.copyToTensorModelParallelRegionBackward(partial, count: n * k)
        return UnsafePointer(partial)
    }
}

public enum RowParallelLinear {
    /// - input: [n, inLocal]   - weight: [out, inLocal]   - partial: [n, out] scratch
    /// - shard: [n/t, out] scratch. Returns the reduced output rows this rank holds ([n/t, out] under
    ///   SP, else [n, out]), without bias.
    public static func forward(
        input: UnsafePointer<Float>, weight: UnsafePointer<Float>, rows n: Int, inFeatures k: Int,
        outFeatures m: Int, tensorParallel tp: TensorParallel, partial: UnsafeMutablePointer<Float>,
        shard: UnsafeMutablePointer<Float>, precision: Precision = .fp32
    ) throws -> UnsafeMutablePointer<Float> {
        Linear.forward(
            x: input, weight: weight, bias: nil, y: partial, rows: n, inFeatures: k, outFeatures: m,
            precision: precision)
        if tp.sequenceParallel {
            try tp.reduceScatterToSequenceParallelRegionForward(partial, into: shard, shardCount: n / tp.size * m)
            return shard
        }
        try tp.reduceFromTensorModelParallelRegionForward(partial, count: n * m)
        return partial
    }

    /// - dyFull: [n, out]; under SP only this rank's rows are filled on entry (the rest are gathered here)
    /// - dx: [n, inLocal] overwritten   - dweight += , dbias += (from all n rows: complete on every rank)
    /// - geluOf: as Linear.backward's (FC2: dx carried on through the GELU's backward pass)
    public static func backward(
        dyFull: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
        dx: UnsafeMutablePointer<Float>, dweight: UnsafeMutablePointer<Float>, dbias: UnsafeMutablePointer<Float>?,
        rows n: Int, inFeatures k: Int, outFeatures m: Int, tensorParallel tp: TensorParallel,
        precision: Precision = .fp32, deferring: DeferredWeightGradients? = nil, heldInput: HeldTensor? = nil,
        geluOf: HeldTensor? = nil
    ) throws {
        if tp.sequenceParallel {
            try tp.reduceScatterToSequenceParallelRegionBackward(dyFull, shardCount: n / tp.size * m)
        }
        Linear.backward(
            dy: dyFull, x: input, weight: weight, dx: dx, dweight: dweight, dbias: dbias,
            rows: n, inFeatures: k, outFeatures: m, precision: precision, deferring: deferring,
            heldInput: heldInput, geluOf: geluOf)
    }
}

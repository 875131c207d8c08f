// GradClipping.swift — whole-model sums (the gradient norm, the zero count) and Megatron's
// clipping: when ‖g‖ > clip, every gradient is scaled by clip/(‖g‖ + 1e-6). The norm is summed in
// Double over fixed blocks, so it does not depend on the thread count; across tensor ranks every
// parameter counts exactly once (ParameterTable.countsOnce).
import Distributed
import Tensor

public enum GradClipping {
    /// ‖g‖₂ over the whole model: every parameter counted exactly once — a split parameter by every
    /// tensor rank (each holds a different slice), a replicated one by tensor rank 0 only, a tied
    /// copy not at all — summed per parameter in Double over this rank's arenas and all-reduced
    /// over `group` (the model-parallel group: tensor × pipeline).
    public static func globalNorm(_ arenas: [ParameterArena], group: Communicator? = nil) throws -> Double {
        var local = 0.0
        for arena in arenas {
            for (slot, spec) in arena.table.specs.enumerated() where arena.table.countsOnce(slot) {
                local += Kernels.sumOfSquares(arena.pointer(slot), count: spec.count)
            }
        }
        let total = try group?.allReduceSum(local) ?? local
        return total.squareRoot()
    }

    /// Elements exactly 0 over the whole model, each parameter counted once as in `globalNorm`
    /// (Megatron's log_num_zeros_in_grad), summed over `group`.
    public static func zeroCount(_ arenas: [ParameterArena], group: Communicator? = nil) throws -> Int {
        var local = 0
        for arena in arenas {
            for (slot, spec) in arena.table.specs.enumerated() where arena.table.countsOnce(slot) {
                local += Kernels.zeroCount(arena.pointer(slot), count: spec.count)
            }
        }
        return Int(try group?.allReduceSum(Double(local)) ?? Double(local))
    }

    public static func globalNorm(_ grads: ParameterArena, group: Communicator? = nil) throws -> Double {
        try globalNorm([grads], group: group)
    }

    /// The factor that brings the norm to at most `maxNorm`: maxNorm/(norm + 1e-6) when below 1,
    /// else 1 (also when `maxNorm` is 0, which disables clipping).
    public static func coefficient(norm: Double, maxNorm: Double) -> Double {
        guard maxNorm > 0 else { return 1 }
        return min(1, maxNorm / (norm + 1e-6))
    }

    /// The factor the optimizers multiply each gradient by as they read it: `coefficient` in single
    /// precision when it clips, else exactly 1.
    public static func gradientScale(_ coefficient: Double) -> Float { coefficient < 1 ? Float(coefficient) : 1 }

    /// Multiplies every gradient by `coefficient` (nothing to do at 1).
    public static func scale(_ grads: ParameterArena, by coefficient: Double) {
        guard coefficient < 1 else { return }
        Kernels.scale(grads.storage.base, by: Float(coefficient), count: grads.storage.count)
    }

    /// Scales the gradients so their norm is at most `maxNorm` (0 disables). Returns the coefficient used.
    @discardableResult
    public static func clip(_ grads: ParameterArena, norm: Double, maxNorm: Double) -> Double {
        let c = coefficient(norm: norm, maxNorm: maxNorm)
        scale(grads, by: c)
        return c
    }
}

// GradClipping.swift — global gradient norm and Megatron's clipping: when ‖g‖ > clip, every
// gradient is scaled by clip/(‖g‖ + 1e-6). The norm is summed in Double over fixed blocks, so it
// does not depend on the thread count; across tensor ranks every parameter counts exactly once.
import Distributed
import Tensor

public enum GradClipping {
    /// ‖g‖₂ over the whole model: every parameter counted exactly once — a split parameter by every
    /// tensor rank (each holds a different slice), a replicated one by tensor rank 0 only, a tied
    /// copy not at all — summed per parameter in Double over this rank's arenas and all-reduced
    /// over `group` (the model-parallel group: tensor × pipeline).
    public static func globalNorm(_ arenas: [ParameterArena], group: Communicator? = nil) throws -> Double {
        var local = 0.0
        for grads in arenas {
            for (slot, spec) in grads.table.specs.enumerated()
            where (spec.tensorParallelAxis != nil || grads.table.tensorRank == 0) && !spec.isTiedCopy {
                local += Kernels.sumOfSquares(grads.pointer(slot), count: spec.count)
            }
        }
        let total = try group?.allReduceSum(local) ?? local
        return total.squareRoot()
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

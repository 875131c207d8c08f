// GradClipping.swift — global gradient norm and Megatron's clipping: when ‖g‖ > clip, every
// gradient is scaled by clip/(‖g‖ + 1e-6). The norm is summed in Double over fixed blocks, so it
// does not depend on the thread count. (Across a grid, each parameter will count exactly once.)
import Tensor

public enum GradClipping {
    /// ‖g‖₂ over every gradient in the arena (alignment padding is always zero).
    public static func globalNorm(_ grads: ParameterArena) -> Double {
        Kernels.sumOfSquares(grads.storage.base, count: grads.storage.count).squareRoot()
    }

    /// Scales the gradients so their norm is at most `maxNorm` (0 disables). Returns the coefficient used.
    @discardableResult
    public static func clip(_ grads: ParameterArena, norm: Double, maxNorm: Double) -> Double {
        guard maxNorm > 0 else { return 1 }
        let coeff = maxNorm / (norm + 1e-6)
        guard coeff < 1 else { return 1 }
        Kernels.scale(grads.storage.base, by: Float(coeff), count: grads.storage.count)
        return coeff
    }
}

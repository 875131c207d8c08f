// AdamW.swift — Adam with decoupled weight decay, Megatron's semantics (Apex FusedAdam, adam_w_mode):
//     m = β1·m + (1−β1)·g;  v = β2·v + (1−β2)·g²
//     p -= lr · ( (m/(1−β1ᵗ)) / (√(v/(1−β2ᵗ)) + ε) + wd·p )
// with wd = 0 for biases and norm parameters (1-D, see ParameterSpec.weightDecay), and lr scaled per
// parameter by layer-wise decay γ (layer_wise_lr_decay): transformer layer l of L (1-based) gets
// lr·γ^(L−l), the embeddings lr·γ^L, the final norm and the heads lr. One fused pass.
import Foundation
import Tensor

/// AdamW's arithmetic.
public enum AdamW {
    /// (1 − β1ᵗ, 1 − β2ᵗ) for step t.
    static func biasCorrections(_ h: OptimizerHyperparameters, step: Int) -> (Float, Float) {
        (1 - pow(h.beta1, step), 1 - pow(h.beta2, step))
    }

    /// The fused AdamW update of `count` contiguous elements, threaded (Kernels.adamW: every element
    /// takes the same operations, so its result does not depend on where a range or shard starts),
    /// of the gradients times `gradientScale` (the clipping coefficient, applied as they are read).
    static func apply(
        _ h: OptimizerHyperparameters, params p: UnsafeMutablePointer<Float>, grads g: UnsafePointer<Float>,
        expAvg m: UnsafeMutablePointer<Float>, expAvgSq v: UnsafeMutablePointer<Float>, count: Int,
        lr: Float, weightDecay wd: Float, corrections: (Float, Float), gradientScale: Float
    ) {
        ThreadBudget.parallelFor(count, grain: 1 << 14) { r in
            Kernels.adamW(
                params: p + r.lowerBound, grads: g + r.lowerBound, expAvg: m + r.lowerBound,
                expAvgSq: v + r.lowerBound, count: r.count, beta1: h.beta1, beta2: h.beta2, eps: h.eps, lr: lr,
                weightDecay: wd, corrections: corrections, gradientScale: gradientScale)
        }
    }
}

@inline(__always) func pow(_ x: Float, _ n: Int) -> Float {
    var r: Float = 1
    for _ in 0..<n { r *= x }
    return r
}

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

    /// The fused AdamW update of `count` contiguous elements, threaded. Vector body and scalar tail do
    /// identical arithmetic, so an element's result does not depend on where a range (or shard) starts.
    static func apply(
        _ h: OptimizerHyperparameters, params p: UnsafeMutablePointer<Float>, grads g: UnsafePointer<Float>,
        expAvg m: UnsafeMutablePointer<Float>, expAvgSq v: UnsafeMutablePointer<Float>, count: Int,
        lr: Float, weightDecay wd: Float, corrections: (Float, Float)
    ) {
        let (bc1, bc2) = corrections
        ThreadBudget.parallelFor(count, grain: 1 << 14) { r in
            var i = r.lowerBound
            let b1 = F16(repeating: h.beta1), b2 = F16(repeating: h.beta2)
            while i + 16 <= r.upperBound {
                let gi = load16(g, i)
                let mi = (1 - h.beta1) * gi + b1 * load16(m, i)
                let vi = ((1 - h.beta2) * gi * gi).addingProduct(b2, load16(v, i))
                let pi = load16(p, i)
                let upd = (mi / bc1) / ((vi / bc2).squareRoot() + h.eps) + wd * pi
                store16(mi, m, i); store16(vi, v, i)
                store16(pi - lr * upd, p, i)
                i += 16
            }
            while i < r.upperBound {
                let gi = g[i]
                let mi = (1 - h.beta1) * gi + h.beta1 * m[i]
                let vi = ((1 - h.beta2) * gi * gi).addingProduct(h.beta2, v[i])  // the vector path's arithmetic exactly
                let upd = (mi / bc1) / ((vi / bc2).squareRoot() + h.eps) + wd * p[i]
                m[i] = mi; v[i] = vi
                p[i] -= lr * upd
                i += 1
            }
        }
    }
}

@inline(__always) func pow(_ x: Float, _ n: Int) -> Float {
    var r: Float = 1
    for _ in 0..<n { r *= x }
    return r
}

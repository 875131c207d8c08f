// AdamW.swift — Adam with decoupled weight decay, Megatron's semantics (Apex FusedAdam, adam_w_mode):
//     m = β1·m + (1−β1)·g;  v = β2·v + (1−β2)·g²
//     p -= lr · ( (m/(1−β1ᵗ)) / (√(v/(1−β2ᵗ)) + ε) + wd·p )
// with wd = 0 for biases and norm parameters (1-D, see ParameterSpec.weightDecay), and lr scaled per
// parameter by layer-wise decay γ (layer_wise_lr_decay): transformer layer l of L (1-based) gets
// lr·γ^(L−l), the embeddings lr·γ^L, the final norm and the heads lr. One fused pass.
import Foundation
import Tensor

public struct AdamWHyperparameters: Sendable, Equatable {
    public var beta1: Float, beta2: Float, eps: Float, weightDecay: Float
    /// Layer-wise learning-rate decay γ (1: none) over the model's `numLayers` transformer layers.
    public var layerWiseDecay: Double, numLayers: Int
    public init(
        beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8, weightDecay: Float = 0.01,
        layerWiseDecay: Double = 1, numLayers: Int = 0
    ) {
        self.beta1 = beta1; self.beta2 = beta2; self.eps = eps; self.weightDecay = weightDecay
        self.layerWiseDecay = layerWiseDecay; self.numLayers = numLayers
    }

    /// The multiplier of the learning rate for parameter `spec`: γ^(L−l) for transformer layer l
    /// (1-based, global numbering), γ^L for the embeddings (a tied copy follows the parameter it is
    /// tied to, so both copies take the same step), 1 for the final norm and the heads.
    public func learningRateScale(_ spec: ParameterSpec) -> Float {
        guard layerWiseDecay != 1 else { return 1 }
        let name = spec.initKey, L = numLayers
        if name.hasPrefix("embedding.") { return Float(Foundation.pow(layerWiseDecay, Double(L))) }
        let parts = name.split(separator: ".", maxSplits: 3)
        if parts.count > 2, parts[0] == "decoder", parts[1] == "layers", let i = Int(parts[2]) {
            return Float(Foundation.pow(layerWiseDecay, Double(L - (i + 1))))
        }
        return 1
    }
}

public final class AdamW: @unchecked Sendable {
    public let hyper: AdamWHyperparameters
    /// First and second moments ("exp_avg", "exp_avg_sq"), shaped like the parameters.
    public let expAvg: ParameterArena, expAvgSq: ParameterArena
    /// Completed steps (the t of the bias corrections).
    public var step = 0

    public init(table: ParameterTable, hyper: AdamWHyperparameters) {
        self.hyper = hyper
        expAvg = ParameterArena(table: table)
        expAvgSq = ParameterArena(table: table)
    }

    /// One update of every parameter in `params` from `grads` at learning rate `lr`.
    public func update(params: ParameterArena, grads: ParameterArena, lr: Float) {
        step += 1
        let corrections = AdamW.biasCorrections(hyper, step: step)
        for (slot, spec) in params.table.specs.enumerated() {
            AdamW.apply(
                hyper, params: params.pointer(slot), grads: grads.pointer(slot), expAvg: expAvg.pointer(slot),
                expAvgSq: expAvgSq.pointer(slot), count: spec.count, lr: lr * hyper.learningRateScale(spec),
                weightDecay: spec.weightDecay ? hyper.weightDecay : 0, corrections: corrections)
        }
    }

    /// (1 − β1ᵗ, 1 − β2ᵗ) for step t.
    static func biasCorrections(_ h: AdamWHyperparameters, step: Int) -> (Float, Float) {
        (1 - pow(h.beta1, step), 1 - pow(h.beta2, step))
    }

    /// The fused AdamW update of `count` contiguous elements, threaded. Vector body and scalar tail do
    /// identical arithmetic, so an element's result does not depend on where a range (or shard) starts.
    static func apply(
        _ h: AdamWHyperparameters, params p: UnsafeMutablePointer<Float>, grads g: UnsafePointer<Float>,
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

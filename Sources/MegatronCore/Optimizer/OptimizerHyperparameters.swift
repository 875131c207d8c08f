// OptimizerHyperparameters.swift — what an optimizer update needs: Megatron's `optimizer` (adam or
// sgd) with its hyperparameters, the names of its per-parameter state, layer-wise learning-rate
// decay, and ChunkOptimizer, one model chunk's whole state and update (the replicated optimizer's;
// the distributed optimizer holds a shard of the same state and calls the same element update).
import Foundation
import Tensor

/// Megatron's `optimizer`: adam (AdamW.swift) or sgd (SGD.swift).
public enum OptimizerKind: String, Sendable, CaseIterable {
    case adam, sgd

    /// The per-parameter state, by its checkpoint name (Megatron's / PyTorch's state keys): Adam's
    /// two moments, or SGD's momentum buffer (kept even at μ = 0, where it is the last step's
    /// direction, so every optimizer's checkpoint carries its state).
    public var stateNames: [String] { self == .adam ? ["exp_avg", "exp_avg_sq"] : ["momentum_buffer"] }
}

public struct OptimizerHyperparameters: Sendable, Equatable {
    public var kind: OptimizerKind
    public var beta1: Float, beta2: Float, eps: Float, weightDecay: Float
    /// SGD's momentum μ (Megatron's sgd_momentum).
    public var sgdMomentum: Float
    /// Layer-wise learning-rate decay γ (1: none) over the model's `numLayers` transformer layers.
    public var layerWiseDecay: Double, numLayers: Int
    public init(
        kind: OptimizerKind = .adam, beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8,
        weightDecay: Float = 0.01, sgdMomentum: Float = 0.9, layerWiseDecay: Double = 1, numLayers: Int = 0
    ) {
        self.kind = kind
        self.beta1 = beta1; self.beta2 = beta2; self.eps = eps; self.weightDecay = weightDecay
        self.sgdMomentum = sgdMomentum
        self.layerWiseDecay = layerWiseDecay; self.numLayers = numLayers
    }

    /// The names of the per-parameter state (OptimizerKind.stateNames).
    public var stateNames: [String] { kind.stateNames }

    /// The phase name of an update in timing tables.
    public var name: String { kind == .adam ? "AdamW" : "SGD" }

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

    /// The learning rate of parameter `spec` at this step: `lr`, or `decoupledLR` (when given) for the
    /// word embedding and its tied copy (Megatron's embedding-or-output parameters), times
    /// `learningRateScale`.
    public func learningRate(_ spec: ParameterSpec, lr: Float, decoupledLR: Float?) -> Float {
        let base = spec.initKey == GPTSlots.wordEmbeddingsName ? decoupledLR ?? lr : lr
        return base * learningRateScale(spec)
    }

    /// One update of `count` contiguous elements at step `step` (1-based) with the state arrays in
    /// `stateNames` order, from the gradients times `gradientScale` (Megatron's clipping coefficient,
    /// folded into the update's read of each gradient instead of a pass of its own).
    func apply(
        params: UnsafeMutablePointer<Float>, grads: UnsafePointer<Float>, state: [UnsafeMutablePointer<Float>],
        count: Int, lr: Float, weightDecay: Float, step: Int, gradientScale: Float
    ) {
        switch kind {
        case .adam:
            AdamW.apply(
                self, params: params, grads: grads, expAvg: state[0], expAvgSq: state[1], count: count, lr: lr,
                weightDecay: weightDecay, corrections: AdamW.biasCorrections(self, step: step),
                gradientScale: gradientScale)
        case .sgd:
            SGD.apply(
                params: params, grads: grads, momentumBuffer: state[0], count: count, lr: lr, momentum: sgdMomentum,
                weightDecay: weightDecay, gradientScale: gradientScale)
        }
    }
}

/// One model chunk's optimizer state (every parameter whole) and its update: the replicated optimizer's.
public final class ChunkOptimizer: @unchecked Sendable {
    public let hyper: OptimizerHyperparameters
    /// The state arenas, shaped like the parameters, in `hyper.stateNames` order.
    public let state: [ParameterArena]
    /// Completed steps (the t of Adam's bias corrections).
    public var step = 0

    public init(table: ParameterTable, hyper: OptimizerHyperparameters) {
        self.hyper = hyper
        state = hyper.stateNames.map { _ in ParameterArena(table: table) }
    }

    /// One update of every parameter in `params` from `grads` times `gradientScale` (the clipping
    /// coefficient) at learning rate `lr` (`decoupledLR` for the word embedding, when given).
    public func update(
        params: ParameterArena, grads: ParameterArena, lr: Float, decoupledLR: Float? = nil, gradientScale: Float = 1
    ) {
        step += 1
        for (slot, spec) in params.table.specs.enumerated() {
            hyper.apply(
                params: params.pointer(slot), grads: grads.pointer(slot), state: state.map { $0.pointer(slot) },
                count: spec.count, lr: hyper.learningRate(spec, lr: lr, decoupledLR: decoupledLR),
                weightDecay: spec.weightDecay ? hyper.weightDecay : 0, step: step, gradientScale: gradientScale)
        }
    }
}

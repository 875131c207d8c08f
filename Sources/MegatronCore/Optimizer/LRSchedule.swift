// LRSchedule.swift — Megatron's OptimizerParamScheduler: steps counted in samples (each iteration
// adds the global batch size). Linear warm-up from 0 to `lr`, then constant, linear or cosine
// decay to `min_lr` at `lr_decay_iters`, `min_lr` after that. The LR used by iteration k (1-based)
// is the one at (k−1)·global_batch samples, as in Megatron (so with warm-up the first LR is 0).
import Foundation

public enum LRDecayStyle: String, Sendable, CaseIterable, Codable {
    case constant, linear, cosine
}

public struct LRSchedule: Sendable, Equatable {
    public var maxLR: Double, minLR: Double
    public var warmupSteps: Int, decaySteps: Int
    public var style: LRDecayStyle
    /// Samples consumed so far (Megatron's `num_steps`).
    public var numSteps: Int = 0

    public init(maxLR: Double, minLR: Double, warmupSteps: Int, decaySteps: Int, style: LRDecayStyle) {
        self.maxLR = maxLR; self.minLR = minLR; self.warmupSteps = warmupSteps; self.decaySteps = decaySteps;
        self.style = style
    }

    public var learningRate: Double {
        let n = numSteps
        if warmupSteps > 0 && n <= warmupSteps { return maxLR * Double(n) / Double(warmupSteps) }
        if style == .constant { return maxLR }
        if n > decaySteps { return minLR }
        let ratio = Double(n - warmupSteps) / Double(max(1, decaySteps - warmupSteps))
        let coeff: Double
        switch style {
        case .linear: coeff = 1 - ratio
        case .cosine: coeff = 0.5 * (cos(Double.pi * ratio) + 1)
        case .constant: coeff = 1
        }
        return minLR + coeff * (maxLR - minLR)
    }

    public mutating func advance(samples: Int) { numSteps += samples }
}

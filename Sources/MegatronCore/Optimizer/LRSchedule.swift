// LRSchedule.swift — Megatron's OptimizerParamScheduler: steps counted in samples (each iteration
// adds the global batch size). Linear warm-up from 0 to `lr`, then constant, linear or cosine
// decay to `min_lr` at `lr_decay_iters`, `min_lr` after that; inverse-square-root
// (lr·√warmup/√n, at least min_lr); WSD (warm-up, stable at lr, then a decay of its own style over
// the last `lr_wsd_decay_iters` before lr_decay_iters). The LR used by iteration k (1-based)
// is the one at (k−1)·global_batch samples, as in Megatron (so with warm-up the first LR is 0).
import Foundation

public enum LRDecayStyle: String, Sendable, CaseIterable, Codable {
    case constant, linear, cosine
    case inverseSquareRoot = "inverse-square-root"
    case wsd = "WSD"
}

/// The decay of WSD's last phase (Megatron's lr_wsd_decay_style).
public enum WSDDecayStyle: String, Sendable, CaseIterable, Codable {
    case linear, cosine, exponential
    case minusSqrt = "minus_sqrt"
}

public struct LRSchedule: Sendable, Equatable {
    public var maxLR: Double, minLR: Double
    public var warmupSteps: Int, decaySteps: Int
    public var style: LRDecayStyle
    /// WSD only: the steps of the final decay and its shape.
    public var wsdDecaySteps = 0
    public var wsdStyle: WSDDecayStyle = .exponential
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
        if style == .inverseSquareRoot {
            return max(minLR, maxLR * Double(max(warmupSteps, 1)).squareRoot() / Double(max(n, 1)).squareRoot())
        }
        let ratio = Double(n - warmupSteps) / Double(max(1, decaySteps - warmupSteps))
        let coeff: Double
        switch style {
        case .linear: coeff = 1 - ratio
        case .cosine: coeff = 0.5 * (cos(Double.pi * ratio) + 1)
        case .wsd: coeff = wsdCoefficient(step: n)
        case .constant, .inverseSquareRoot: coeff = 1
        }
        return minLR + coeff * (maxLR - minLR)
    }

    /// WSD: 1 until the final decay starts (`wsdDecaySteps` before `decaySteps`), then its style.
    func wsdCoefficient(step n: Int) -> Double {
        let annealStart = decaySteps - wsdDecaySteps
        guard n > annealStart, wsdDecaySteps > 0 else { return 1 }
        let r = Double(n - annealStart) / Double(wsdDecaySteps)
        switch wsdStyle {
        case .linear: return 1 - r
        case .cosine: return 0.5 * (cos(Double.pi * r) + 1)
        case .exponential: return 2 * pow(0.5, r) - 1
        case .minusSqrt: return 1 - r.squareRoot()
        }
    }

    public mutating func advance(samples: Int) { numSteps += samples }
}

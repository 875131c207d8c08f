// LossScaler.swift — loss scaling for reduced-precision training (Megatron's grad_scaler.py).
// The backward pass runs on loss·scale; before clipping the gradients are multiplied by 1/scale and
// checked; if any is ±∞/NaN on any rank the step is skipped (a "skipped iteration") and the
// scaler is told. The dynamic scaler (fp16) halves the scale after `hysteresis` overflows and
// doubles it after `growthInterval` clean steps in a row:
//     overflow: growth = 0; hysteresisLeft −= 1; if hysteresisLeft ≤ 0 { scale = max(scale/2, min) }
//     clean:    growth += 1; if growth == interval { growth = 0; hysteresisLeft = hysteresis; scale *= 2 }
// (the hysteresis counter is not reset on a backoff, so every further overflow halves again).

public struct LossScaler: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// A fixed scale (`loss_scale`).
        case constant
        /// Megatron's DynamicGradScaler.
        case dynamic(minScale: Float, growthInterval: Int, hysteresis: Int)
    }

    public let kind: Kind
    public private(set) var scale: Float
    /// Clean steps since the last change, and overflows still tolerated before a backoff.
    public private(set) var growthTracker = 0
    public private(set) var hysteresisTracker: Int

    public static func constant(_ scale: Float) -> LossScaler {
        LossScaler(kind: .constant, scale: scale, hysteresisTracker: 1)
    }

    /// Megatron's defaults: initial 2³², window 1000, hysteresis 2, minimum 1.
    public static func dynamic(
        initialScale: Float = 4_294_967_296, minScale: Float = 1, growthInterval: Int = 1000,
        hysteresis: Int = 2
    ) -> LossScaler {
        LossScaler(
            kind: .dynamic(minScale: minScale, growthInterval: growthInterval, hysteresis: hysteresis),
            scale: initialScale, hysteresisTracker: hysteresis)
    }

    /// Records the outcome of a step (found an overflow or not).
    public mutating func update(foundOverflow: Bool) {
        guard case .dynamic(let minScale, let interval, let hysteresis) = kind else { return }
        if foundOverflow {
            growthTracker = 0
            hysteresisTracker -= 1
            if hysteresisTracker <= 0 { scale = max(scale * 0.5, minScale) }
        } else {
            growthTracker += 1
            if growthTracker == interval {
                growthTracker = 0
                hysteresisTracker = hysteresis
                scale *= 2
            }
        }
    }

    /// Restores a saved state (checkpoint).
    public mutating func restore(scale: Float, growthTracker: Int, hysteresisTracker: Int) {
        self.scale = scale; self.growthTracker = growthTracker; self.hysteresisTracker = hysteresisTracker
    }
}

extension LossScaler {
    /// Megatron's choice: a given `loss_scale` is constant in any precision; fp16 without one
    /// scales dynamically; fp32 and bf16 need none.
    public static func forConfig(_ c: TrainingConfig) -> LossScaler? {
        if let s = c.lossScale { return .constant(Float(s)) }
        guard c.fp16 else { return nil }
        return .dynamic(
            initialScale: Float(c.initialLossScale), minScale: Float(c.minLossScale),
            growthInterval: c.lossScaleWindow, hysteresis: c.hysteresis)
    }
}

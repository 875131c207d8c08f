// Dropout.swift — inverted dropout whose mask is a pure function of (seed, site, step, element):
// element e is dropped when Philox(key, e) < p. Backward regenerates the same mask instead of
// storing it, and a resumed run draws exactly the masks of the uninterrupted one.
import Tensor

/// Identifies one dropout application: the generator key (seed + site name) and the counter words
/// (iteration and micro-batch), so no two applications share a mask.
public struct DropoutStream: Sendable {
    public let rng: Philox4x32
    public let step: UInt32
    public let microbatch: UInt32

    public init(seed: Int, site: String, step: Int, microbatch: Int) {
        rng = Philox4x32(seed: UInt64(truncatingIfNeeded: seed), stream: stableHash(site))
        self.step = UInt32(truncatingIfNeeded: step)
        self.microbatch = UInt32(truncatingIfNeeded: microbatch)
    }

    /// Keep-scale for element `index`: 0 if dropped, 1/(1−p) if kept.
    @inline(__always)
    public func scale(index: Int, p: Float) -> Float {
        rng.uniform(index: index, step, microbatch) < p ? 0 : 1 / (1 - p)
    }

    /// `x[i] = src[i] · scale(index: start + i)` for i < n, a run's masks made many Philox blocks
    /// at a time (Philox4x32.applyDropoutMask); `src` may be `x`.
    @inline(__always)
    public func applyMask(
        _ src: UnsafePointer<Float>, into x: UnsafeMutablePointer<Float>, count n: Int, start: Int, p: Float
    ) {
        rng.applyDropoutMask(src, into: x, count: n, start: start, step, microbatch, p: p, keep: 1 / (1 - p))
    }

    /// The softmax backward of one attention row whose probabilities were dropped with this stream
    /// (elements `start ..< start + valid`): on entry `P` holds the probabilities and `dP` the
    /// gradient of the dropped ones; on return `P` holds dS = P ⊙ (m·keep·dP − Σ P·m·keep·dP) · scale
    /// and `dP` the dropped probabilities m·keep·P (for dV), both zero in `valid ..< width`.
    @inline(__always)
    public func softmaxBackwardRow(
        _ P: UnsafeMutablePointer<Float>, dP: UnsafeMutablePointer<Float>, valid: Int, width: Int, start: Int,
        p: Float, scale: Float
    ) {
        rng.dropoutSoftmaxBackwardRow(
            P, dP, valid: valid, width: width, start: start, step, microbatch, p: p, keep: 1 / (1 - p), scale: scale)
    }
}

public enum Dropout {
    /// In place: `x[i] *= mask(i)/(1−p)` for elements `offset ..< offset + count` of the stream.
    /// Used unchanged for forward (on activations) and backward (on their gradients).
    public static func apply(
        _ x: UnsafeMutablePointer<Float>, count n: Int, p: Float, stream: DropoutStream, offset: Int = 0
    ) {
        guard p > 0 else { return }
        ThreadBudget.parallelFor(n, grain: 1 << 12) { r in
            stream.applyMask(
                x + r.lowerBound, into: x + r.lowerBound, count: r.count, start: offset + r.lowerBound, p: p)
        }
    }
}

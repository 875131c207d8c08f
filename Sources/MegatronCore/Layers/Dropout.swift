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

    /// `x[i] = src[i] · scale(index: start + i)` for i < n, using all four words of each Philox
    /// block (elements 4q…4q+3 share block q), so a mask costs a quarter block per element. Runs of
    /// 64 elements from a multiple of 4 take 16 blocks at once (Philox4x32.blocks16), the same bits.
    @inline(__always)
    public func applyMask(
        _ src: UnsafePointer<Float>, into x: UnsafeMutablePointer<Float>, count n: Int, start: Int, p: Float
    ) {
        let keep = 1 / (1 - p)
        var e = start, i = 0
        // Up to the first multiple of 4, one block.
        if e & 3 != 0 {
            let w = rng.block(UInt32(truncatingIfNeeded: e >> 2), UInt32(truncatingIfNeeded: e >> 34), step, microbatch)
            while e & 3 != 0 && i < n {
                x[i] = Float(w[e & 3] >> 8) * 0x1p-24 < p ? 0 : src[i] * keep
                i += 1; e += 1
            }
        }
        // 64 elements (16 blocks) at a time, while their counters share the high word: the uniforms
        // of element 4j + w (lane j of word w) are laid out in order, then compared 16 at a time.
        if i + 64 <= n {
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 64) { buffer in
                let u = buffer.baseAddress!
                let lanes = SIMD16<UInt32>(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
                let scale = F16(repeating: 0x1p-24), threshold = F16(repeating: p), keepScale = F16(repeating: keep)
                while i + 64 <= n && UInt32(truncatingIfNeeded: e >> 2) <= 0xFFFF_FFFF - 15 {
                    let q = UInt32(truncatingIfNeeded: e >> 2)
                    let (w0, w1, w2, w3) = rng.blocks16(
                        lanes &+ q, UInt32(truncatingIfNeeded: e >> 34), step, microbatch)
                    @inline(__always) func spread(_ w: SIMD16<UInt32>, word: Int) {
                        let uniform = F16(w &>> 8) * scale
                        for j in 0..<16 { u[4 * j + word] = uniform[j] }
                    }
                    spread(w0, word: 0); spread(w1, word: 1); spread(w2, word: 2); spread(w3, word: 3)
                    for c in stride(from: 0, to: 64, by: 16) {
                        let kept = load16(src + i, c) * keepScale
                        store16(kept.replacing(with: 0, where: load16(u, c) .< threshold), x + i, c)
                    }
                    i += 64; e += 64
                }
            }
        }
        while i < n {
            let w = rng.block(UInt32(truncatingIfNeeded: e >> 2), UInt32(truncatingIfNeeded: e >> 34), step, microbatch)
            var lane = e & 3
            while lane < 4 && i < n {
                x[i] = Float(w[lane] >> 8) * 0x1p-24 < p ? 0 : src[i] * keep
                lane += 1; i += 1; e += 1
            }
        }
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

// CounterRNG.swift — Philox4x32-10 (Salmon et al., SC'11), a counter-based generator: the value at
// (key, counter) is a pure function, so any rank can make exactly its own slice of a parameter or a
// dropout mask, and a resumed run regenerates the same numbers without saving generator state.
import CBF16
import Foundation

public struct Philox4x32: Sendable {
    public var key: (UInt32, UInt32)

    /// A raw 64-bit key, as in the Random123 reference (used by the known-answer test).
    public init(key0: UInt32, key1: UInt32) { key = (key0, key1) }

    public init(seed: UInt64, stream: UInt64) {
        // Mix the seed and stream so nearby seeds/streams give unrelated keys.
        let k = splitMix64(seed &+ 0x9E37_79B9_7F4A_7C15 &* splitMix64(stream))
        key = (UInt32(truncatingIfNeeded: k), UInt32(truncatingIfNeeded: k >> 32))
    }

    /// Four independent 32-bit words for the 128-bit counter `(c0, c1, c2, c3)`.
    @inline(__always)
    public func block(_ c0: UInt32, _ c1: UInt32, _ c2: UInt32, _ c3: UInt32) -> SIMD4<UInt32> {
        var x0 = c0, x1 = c1, x2 = c2, x3 = c3
        var k0 = key.0, k1 = key.1
        for round in 0..<10 {
            let p0 = UInt64(0xD251_1F53) &* UInt64(x0)
            let p1 = UInt64(0xCD9E_8D57) &* UInt64(x2)
            let n0 = UInt32(truncatingIfNeeded: p1 >> 32) ^ x1 ^ k0
            let n1 = UInt32(truncatingIfNeeded: p1)
            let n2 = UInt32(truncatingIfNeeded: p0 >> 32) ^ x3 ^ k1
            let n3 = UInt32(truncatingIfNeeded: p0)
            x0 = n0; x1 = n1; x2 = n2; x3 = n3
            if round < 9 { k0 = k0 &+ 0x9E37_79B9; k1 = k1 &+ 0xBB67_AE85 }
        }
        return SIMD4(x0, x1, x2, x3)
    }

    /// Dropout over a run of elements: `dst[i] = 0` where element `start + i` of sub-stream
    /// `(s0, s1)` is dropped (its `uniform` is below `p`), else `src[i] · keep`; `src` may be `dst`.
    /// Bit for bit the rule of `uniform`; in AVX-512 two groups of 16 blocks (128 elements) at a
    /// time (CBF16's dropout.c).
    @inline(__always)
    public func applyDropoutMask(
        _ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, count n: Int, start: Int,
        _ s0: UInt32, _ s1: UInt32, p: Float, keep: Float
    ) {
        dropout_apply_mask(src, dst, n, start, key.0, key.1, s0, s1, p, keep)
    }

    /// The attention backward's row under dropout, in place (CBF16's dropout.h): with m the keep mask
    /// of elements `start ..< start + valid` of sub-stream `(s0, s1)`, `dP` (the gradient of the
    /// dropped probabilities) becomes m·keep·dP, then `P` becomes P·(dP − Σ P·dP)·scale and `dP` the
    /// dropped probabilities m·keep·P; both zero in `valid ..< width`. One mask for both.
    @inline(__always)
    public func dropoutSoftmaxBackwardRow(
        _ P: UnsafeMutablePointer<Float>, _ dP: UnsafeMutablePointer<Float>, valid: Int, width: Int, start: Int,
        _ s0: UInt32, _ s1: UInt32, p: Float, keep: Float, scale: Float
    ) {
        dropout_softmax_backward_row(P, dP, valid, width, start, key.0, key.1, s0, s1, p, keep, scale)
    }

    /// Tests: true makes `applyDropoutMask` and `dropoutSoftmaxBackwardRow` take their scalar loops
    /// even on an AVX-512 CPU.
    public static func forcePortableDropout(_ portable: Bool) { dropout_force_portable(portable ? 1 : 0) }

    /// Uniform in [0, 1) with 24 random bits, for element `index` of sub-stream `(s0, s1)`.
    @inline(__always)
    public func uniform(index: Int, _ s0: UInt32 = 0, _ s1: UInt32 = 0) -> Float {
        let w = block(UInt32(truncatingIfNeeded: index >> 2), UInt32(truncatingIfNeeded: index >> 34), s0, s1)
        return Float(w[index & 3] >> 8) * 0x1p-24
    }

    /// Standard normal values for elements `start ..< start + out.count` (Box–Muller on pairs of
    /// uniforms; element i depends only on (key, i)).
    public func fillNormal(_ out: UnsafeMutableBufferPointer<Float>, start: Int, mean: Float, std: Float) {
        for j in 0..<out.count {
            let i = start + j
            let w = block(UInt32(truncatingIfNeeded: i >> 2), UInt32(truncatingIfNeeded: i >> 34), 0x6E6F_726D, 0)
            let lane = i & 3
            let pair = lane & ~1
            // (0, 1] so the log is finite.
            let u1 = (Double(w[pair] >> 8) + 1) * 0x1p-24
            let u2 = Double(w[pair + 1] >> 8) * 0x1p-24
            let r = (-2 * Foundation.log(u1)).squareRoot()
            let z = (lane & 1) == 0 ? r * Foundation.cos(2 * .pi * u2) : r * Foundation.sin(2 * .pi * u2)
            out[j] = mean + std * Float(z)
        }
    }
}

@inline(__always)
public func splitMix64(_ x: UInt64) -> UInt64 {
    var z = x &+ 0x9E37_79B9_7F4A_7C15
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
}

/// FNV-1a of a string's UTF-8 bytes: the stable stream id of a named parameter or dropout site.
public func stableHash(_ s: String) -> UInt64 {
    var h: UInt64 = 0xCBF2_9CE4_8422_2325
    for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01B3 }
    return h
}

// RotaryEmbedding.swift — rotary position embeddings (Su et al., RoFormer), as Megatron applies them
// (`position_embedding_type rope`, not interleaved): in each head's queries and keys the first
// `rotaryDim` channels are two halves x₁, x₂ rotated by the angle pos·θᵢ, θᵢ = base^(−2i/rotaryDim):
//     x₁' = x₁·cos − x₂·sin,   x₂' = x₂·cos + x₁·sin
// (channels past rotaryDim pass through). Values stay in the QKV tensor, per head [q | k | v]
// (Attention.swift). The rotation is orthogonal, so backward rotates the gradients by −pos·θᵢ.
// With Megatron's `use_rope_scaling` (Llama 3.1's long-context rope) the frequencies θᵢ are first
// rescaled by `RopeScaling`. cos and sin are tabulated in double precision, then rounded to fp32, once
// per process for each shape.
import Foundation
import Tensor

/// The position of each row of a [rows, ·] tensor.
public enum RowPositions: @unchecked Sendable {
    /// Training's rows r = i·b + j ([s, b]): position i.
    case interleaved(batch: Int)
    /// Megatron's position ids under reset_position_ids, one per row.
    case ids(UnsafePointer<Int32>)
    /// Generation's rows r = j·L + i (L new tokens per sequence): position start + i.
    case blocks(start: Int, length: Int)

    @inline(__always) func position(_ r: Int) -> Int {
        switch self {
        case .interleaved(let b): return r / b
        case .ids(let ids): return Int(ids[r])
        case .blocks(let start, let length): return start + r % length
        }
    }
}

/// Llama 3.1's rescaling of the rotary frequencies (Megatron's `use_rope_scaling`, Hugging Face's
/// `rope_type: llama3`): a frequency whose wavelength 2π/θ is longer than the original context
/// divided by `lowFrequencyFactor` is divided by `factor`, one shorter than the context divided by
/// `highFrequencyFactor` is kept, and one in between is interpolated linearly in context/wavelength
/// between the two. Megatron fixes the last three at 1, 4 and 8,192 (Llama 3.1's values).
public struct RopeScaling: Sendable, Hashable {
    public var factor: Double
    public var lowFrequencyFactor = 1.0, highFrequencyFactor = 4.0
    public var originalContext = 8192.0

    public init(factor: Double) { self.factor = factor }

    /// θ after the rescaling.
    public func scaled(_ theta: Double) -> Double {
        let wavelength = 2 * Double.pi / theta
        if wavelength > originalContext / lowFrequencyFactor { return theta / factor }
        if wavelength < originalContext / highFrequencyFactor { return theta }
        let smooth = (originalContext / wavelength - lowFrequencyFactor) / (highFrequencyFactor - lowFrequencyFactor)
        return (1 - smooth) * theta / factor + smooth * theta
    }
}

public struct RotaryEmbedding: Sendable {
    public let rotaryDim: Int, positions: Int
    /// cos(p·θᵢ) and sin(p·θᵢ) at [p · rotaryDim/2 + i].
    public let cos: [Float], sin: [Float]

    public init(rotaryDim: Int, base: Double, positions: Int, scaling: RopeScaling? = nil) {
        precondition(rotaryDim >= 2 && rotaryDim % 2 == 0, "rope rotates an even number of channels")
        self.rotaryDim = rotaryDim
        self.positions = positions
        let half = rotaryDim / 2
        let theta = (0..<half).map { i in
            let plain = Foundation.pow(base, -Double(2 * i) / Double(rotaryDim))
            return scaling?.scaled(plain) ?? plain
        }
        var c = [Float](repeating: 0, count: positions * half), s = c
        for p in 0..<positions {
            for i in 0..<half {
                let angle = Double(p) * theta[i]
                c[p * half + i] = Float(Foundation.cos(angle))
                s[p * half + i] = Float(Foundation.sin(angle))
            }
        }
        cos = c
        sin = s
    }

    /// The table of a config with rope (nil without), made once per process for each (rotated width,
    /// base, positions, scaling) and shared by every activation set and generator that asks (arrays are
    /// shared, not copied), so a long position table is not held once per micro-batch in flight.
    public init?(config c: GPTConfig) {
        guard c.positionEmbedding == .rope else { return nil }
        let key = Key(
            rotaryDim: c.rotaryDim, base: c.rotaryBase, positions: c.maxPositionEmbeddings, scaling: c.ropeScaling)
        Self.lock.lock()
        defer { Self.lock.unlock() }
        if let made = Self.tables[key] {
            self = made
        } else {
            self.init(rotaryDim: key.rotaryDim, base: key.base, positions: key.positions, scaling: key.scaling)
            Self.tables[key] = self
        }
    }

    struct Key: Hashable {
        let rotaryDim: Int, base: Double, positions: Int
        let scaling: RopeScaling?
    }
    private static let lock = NSLock()
    nonisolated(unsafe) private static var tables: [Key: RotaryEmbedding] = [:]

    /// Rotates the queries and keys of `heads` heads in `qkv` in place, each row at its position;
    /// `inverse` rotates the other way (the backward pass, on ∂loss/∂qkv). The rows hold, per group
    /// of `headsPerGroup` heads sharing a key, [its heads' queries | key | value] (headDim columns
    /// each; multi-head attention is groups of one: [q | k | v] per head).
    public func apply(
        _ qkv: UnsafeMutablePointer<Float>, rows n: Int, heads: Int, headDim d: Int, headsPerGroup k: Int = 1,
        inverse: Bool = false, positions: RowPositions
    ) {
        let half = rotaryDim / 2, groups = heads / k, width = groups * (k + 2) * d, sign: Float = inverse ? -1 : 1
        cos.withUnsafeBufferPointer { cosTable in
            sin.withUnsafeBufferPointer { sinTable in
                let cosBase = cosTable.baseAddress!, sinBase = sinTable.baseAddress!
                ThreadBudget.parallelFor(n, grain: 16) { rr in
                    for r in rr {
                        let p = positions.position(r)
                        precondition(
                            p >= 0 && p < self.positions, "rope position \(p) outside the table of \(self.positions)")
                        let cs = cosBase + p * half, sn = sinBase + p * half
                        for group in 0..<groups {
                            for part in 0...k {  // the group's queries, then its key
                                let x1 = qkv + r * width + group * (k + 2) * d + part * d, x2 = x1 + half
                                var i = 0
                                while i + 16 <= half {
                                    let a = load16(x1, i), b = load16(x2, i), c = load16(cs, i)
                                    let s = sign * load16(sn, i)
                                    store16(a * c - b * s, x1, i)
                                    store16(b * c + a * s, x2, i)
                                    i += 16
                                }
                                while i < half {
                                    let a = x1[i], b = x2[i], c = cs[i], s = sign * sn[i]
                                    x1[i] = a * c - b * s
                                    x2[i] = b * c + a * s
                                    i += 1
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

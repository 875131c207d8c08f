// RotaryEmbedding.swift — rotary position embeddings (Su et al., RoFormer), as Megatron applies them
// (`position_embedding_type rope`, not interleaved): in each head's queries and keys the first
// `rotaryDim` channels are two halves x₁, x₂ rotated by the angle pos·θᵢ, θᵢ = base^(−2i/rotaryDim):
//     x₁' = x₁·cos − x₂·sin,   x₂' = x₂·cos + x₁·sin
// (channels past rotaryDim pass through). Values stay in the QKV tensor, per head [q | k | v]
// (Attention.swift). The rotation is orthogonal, so backward rotates the gradients by −pos·θᵢ.
// cos and sin are tabulated in double precision, then rounded to fp32, once per process for each shape.
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

public struct RotaryEmbedding: Sendable {
    public let rotaryDim: Int, positions: Int
    let cos: [Float], sin: [Float]  // [positions, rotaryDim / 2]

    public init(rotaryDim: Int, base: Double, positions: Int) {
        precondition(rotaryDim >= 2 && rotaryDim % 2 == 0, "rope rotates an even number of channels")
        self.rotaryDim = rotaryDim
        self.positions = positions
        let half = rotaryDim / 2
        var c = [Float](repeating: 0, count: positions * half), s = c
        for p in 0..<positions {
            for i in 0..<half {
                let angle = Double(p) * Foundation.pow(base, -Double(2 * i) / Double(rotaryDim))
                c[p * half + i] = Float(Foundation.cos(angle))
                s[p * half + i] = Float(Foundation.sin(angle))
            }
        }
        cos = c
        sin = s
    }

    /// The table of a config with rope (nil without), made once per process for each (rotated width,
    /// base, positions) and shared by every activation set and generator that asks (arrays are
    /// shared, not copied), so a long position table is not held once per micro-batch in flight.
    public init?(config c: GPTConfig) {
        guard c.positionEmbedding == .rope else { return nil }
        let key = Key(rotaryDim: c.rotaryDim, base: c.rotaryBase, positions: c.maxPositionEmbeddings)
        Self.lock.lock()
        defer { Self.lock.unlock() }
        if let made = Self.tables[key] {
            self = made
        } else {
            self.init(rotaryDim: key.rotaryDim, base: key.base, positions: key.positions)
            Self.tables[key] = self
        }
    }

    struct Key: Hashable { let rotaryDim: Int, base: Double, positions: Int }
    private static let lock = NSLock()
    nonisolated(unsafe) private static var tables: [Key: RotaryEmbedding] = [:]

    /// Rotates the queries and keys of `heads` heads in `qkv` [rows, heads·3·headDim] in place, each
    /// row at its position; `inverse` rotates the other way (the backward pass, on ∂loss/∂qkv).
    public func apply(
        _ qkv: UnsafeMutablePointer<Float>, rows n: Int, heads: Int, headDim d: Int, inverse: Bool = false,
        positions: RowPositions
    ) {
        let half = rotaryDim / 2, width = heads * 3 * d, sign: Float = inverse ? -1 : 1
        cos.withUnsafeBufferPointer { cosTable in
            sin.withUnsafeBufferPointer { sinTable in
                let cosBase = cosTable.baseAddress!, sinBase = sinTable.baseAddress!
                ThreadBudget.parallelFor(n, grain: 16) { rr in
                    for r in rr {
                        let p = positions.position(r)
                        precondition(
                            p >= 0 && p < self.positions, "rope position \(p) outside the table of \(self.positions)")
                        let cs = cosBase + p * half, sn = sinBase + p * half
                        for head in 0..<heads {
                            for part in 0..<2 {  // q, then k
                                let x1 = qkv + r * width + head * 3 * d + part * d, x2 = x1 + half
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

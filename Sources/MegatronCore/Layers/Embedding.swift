// Embedding.swift — GPT input embedding: out[i, b] = wordEmbeddings[token[i, b]] + positionEmbeddings[i].
// Backward scatters into both tables; it runs column-parallel so no two threads touch one element.
import Tensor

public enum Embedding {
    /// - tokens: [s, b]   - word: [Vp, h]   - position: [maxPositions, h]   - out: [s, b, h]
    public static func forward(tokens: UnsafePointer<Int32>, word: UnsafePointer<Float>, position: UnsafePointer<Float>,
                               out: UnsafeMutablePointer<Float>, seq s: Int, batch b: Int, hidden h: Int) {
        ThreadBudget.parallelFor(s * b, grain: 16) { rr in
            for r in rr {
                let w = word + Int(tokens[r]) * h, p = position + (r / b) * h, o = out + r * h
                var c = 0
                while c + 16 <= h { store16(load16(w, c) + load16(p, c), o, c); c += 16 }
                while c < h { o[c] = w[c] + p[c]; c += 1 }
            }
        }
    }

    /// - dout: [s, b, h]   - dword: [Vp, h] +=   - dposition: [maxPositions, h] +=
    public static func backward(dout: UnsafePointer<Float>, tokens: UnsafePointer<Int32>,
                                dword: UnsafeMutablePointer<Float>, dposition: UnsafeMutablePointer<Float>,
                                seq s: Int, batch b: Int, hidden h: Int) {
        ThreadBudget.parallelFor(h, grain: 64) { cr in
            for r in 0..<(s * b) {
                let d = dout + r * h, w = dword + Int(tokens[r]) * h, p = dposition + (r / b) * h
                var c = cr.lowerBound
                while c + 16 <= cr.upperBound {
                    let v = load16(d, c)
                    store16(load16(w, c) + v, w, c)
                    store16(load16(p, c) + v, p, c)
                    c += 16
                }
                while c < cr.upperBound { w[c] += d[c]; p[c] += d[c]; c += 1 }
            }
        }
    }
}

// CrossEntropy.swift — the LM head (logits = x·Eᵀ with the tied word embedding E) fused with the
// softmax cross entropy and, when training, its backward — in chunks of rows, so the full [n, V]
// logits are never held. Only the V real vocabulary rows of E enter: padded rows never affect a
// loss, a gradient or a prediction, whatever the padding.
import Foundation
import Tensor

public enum VocabCrossEntropy {
    /// Rows per chunk: at most 64M floats (256 MB) of logits, split into equal chunks (multiples of
    /// 16 rows) so no small tail GEMM runs at a fraction of the BLAS rate.
    public static func chunkRows(rows n: Int, vocab v: Int) -> Int {
        let cap = max(1, min(n, (1 << 26) / max(v, 1)))
        let chunks = (n + cap - 1) / cap
        let even = (n + chunks - 1) / chunks
        return min(cap, max(1, (even + 15) / 16 * 16))
    }

    /// Returns the per-row losses summed (Double, in row order).
    /// - x: [n, h]   - embedding: [Vp, h] (rows 0..<V used)   - targets: [n]
    /// - logits: scratch of `chunkRows(n, V) × V` floats   - rowLoss: scratch of n Doubles
    /// - dx: [n, h] overwritten, dembedding: [Vp, h] accumulated, with dloss/dlogit scaled by `gradScale`
    ///   (both nil for evaluation)
    public static func forward(x: UnsafePointer<Float>, embedding: UnsafePointer<Float>, targets: UnsafePointer<Int32>,
                               rows n: Int, hidden h: Int, vocab v: Int,
                               logits: UnsafeMutablePointer<Float>, rowLoss: UnsafeMutablePointer<Double>,
                               dx: UnsafeMutablePointer<Float>? = nil, dembedding: UnsafeMutablePointer<Float>? = nil,
                               gradScale: Float = 1) -> Double {
        let C = chunkRows(rows: n, vocab: v)
        let training = dx != nil
        var c0 = 0
        while c0 < n {
            let rows = min(C, n - c0)
            let xc = x + c0 * h
            BLAS.sgemm(transB: true, m: rows, n: v, k: h, a: xc, lda: h, b: embedding, ldb: h, c: logits, ldc: v)
            ThreadBudget.parallelFor(rows, grain: 4) { rr in
                for r in rr {
                    let t = Int(targets[c0 + r])
                    precondition(t >= 0 && t < v, "target id \(t) outside the vocabulary [0, \(v))")
                    rowLoss[c0 + r] = lossRow(logits + r * v, width: v, target: t, training: training, gradScale: gradScale)
                }
            }
            if let dx, let dembedding {
                BLAS.sgemm(m: rows, n: h, k: v, a: logits, lda: v, b: embedding, ldb: h, c: dx + c0 * h, ldc: h)
                BLAS.sgemm(transA: true, m: v, n: h, k: rows, a: logits, lda: v, b: xc, ldb: h, beta: 1, c: dembedding, ldc: h)
            }
            c0 += rows
        }
        var total = 0.0
        for r in 0..<n { total += rowLoss[r] }
        return total
    }

    /// loss = log Σ exp(z) − z[target]; when training the row becomes (softmax − onehot)·gradScale.
    @inline(__always)
    static func lossRow(_ z: UnsafeMutablePointer<Float>, width v: Int, target t: Int, training: Bool, gradScale: Float) -> Double {
        var mv = F16(repeating: -.infinity)
        var j = 0
        while j + 16 <= v { mv = pointwiseMax(mv, load16(z, j)); j += 16 }
        var m = mv.max()
        while j < v { m = max(m, z[j]); j += 1 }
        let zt = z[t]
        var sv = F16(repeating: 0)
        j = 0
        if training {
            while j + 16 <= v { let e = simdExp(load16(z, j) - m); store16(e, z, j); sv += e; j += 16 }
        } else {
            while j + 16 <= v { sv += simdExp(load16(z, j) - m); j += 16 }
        }
        var sum = sv.sum()
        while j < v { let e = scalarExp(z[j] - m); if training { z[j] = e }; sum += e; j += 1 }
        let loss = Double(m) + Foundation.log(Double(sum)) - Double(zt)
        if training {
            let k = gradScale / sum
            j = 0
            while j + 16 <= v { store16(load16(z, j) * k, z, j); j += 16 }
            while j < v { z[j] *= k; j += 1 }
            z[t] -= gradScale
        }
        return loss
    }
}

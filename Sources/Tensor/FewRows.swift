// FewRows.swift — products whose left operand has only a few rows (token-by-token decoding: one row
// per sequence). SGEMM packs its operands for many rows and reads the weight at about half the
// memory bandwidth when m is 1–8; here each block of 8 weight rows (8·K floats, in L1 for K ≤ 1024)
// is read from memory once and dotted with every input row, so the product runs at the speed of
// streaming the weight. The one-row product also asks for the weight it will read 4 KiB later
// (megatron_prefetch): the hardware prefetcher alone left a core short of the memory bandwidth
// (prefetching in the 8-row product and the weighted sum measured slower, so they do not).
import CBF16

public enum FewRows {
    /// How far ahead a single stream is prefetched, in floats (4 KiB).
    static let prefetchDistance = 1024

    /// y[i, n] = alpha · Σ_k x[i, k] · w[n, k] (+ bias[n]) for i < m, n < N: x [m, K] (row stride
    /// ldx), w [N, K] (row stride ldw), y row stride ldy. Threads split N unless `threaded` is false
    /// (when the caller is already one of several workers).
    public static func multiplyTransposed(
        x: UnsafePointer<Float>, ldx: Int, rows m: Int, w: UnsafePointer<Float>, ldw: Int, n N: Int, k K: Int,
        alpha: Float = 1, bias: UnsafePointer<Float>? = nil, y: UnsafeMutablePointer<Float>, ldy: Int,
        threaded: Bool = true
    ) {
        let body = { (range: Range<Int>) in
            if m == 1 {  // one row: read the weight strictly in order, four accumulators per dot
                for n in range { y[n] = dot4(x, w + n * ldw, k: K) * alpha + (bias?[n] ?? 0) }
                return
            }
            var n = range.lowerBound
            while n + 8 <= range.upperBound {
                for i in 0..<m {
                    let d = dot8(x + i * ldx, w + n * ldw, ldw: ldw, k: K) * alpha
                    for j in 0..<8 { y[i * ldy + n + j] = d[j] + (bias?[n + j] ?? 0) }
                }
                n += 8
            }
            while n < range.upperBound {
                for i in 0..<m { y[i * ldy + n] = dot(x + i * ldx, w + n * ldw, k: K) * alpha + (bias?[n] ?? 0) }
                n += 1
            }
        }
        if threaded { ThreadBudget.parallelFor(N, grain: 64, body) } else { body(0..<N) }
    }

    /// out[c] = Σ_r p[r] · v[r, c] for c < width: one row of P·V over `count` rows of v (row stride
    /// ldv). Rows are taken 8 at a time across the whole width (8 contiguous streams the hardware
    /// prefetcher follows, where one 64-column strip per pass over all rows jumps a row stride per
    /// 256 bytes), summing into `out` in row order, so each sum is the same as one pass would give.
    public static func weightedSum(
        _ p: UnsafePointer<Float>, count: Int, v: UnsafePointer<Float>, ldv: Int, width: Int,
        into out: UnsafeMutablePointer<Float>
    ) {
        out.update(repeating: 0, count: width)
        var first = 0
        while first < count {
            let rows = first..<min(first + 8, count)
            var c = 0
            while c + 64 <= width {
                var a0 = load16(out, c), a1 = load16(out, c + 16), a2 = load16(out, c + 32), a3 = load16(out, c + 48)
                for r in rows {
                    let weight = F16(repeating: p[r]), row = v + r * ldv + c
                    a0.addProduct(weight, load16(row, 0)); a1.addProduct(weight, load16(row, 16))
                    a2.addProduct(weight, load16(row, 32)); a3.addProduct(weight, load16(row, 48))
                }
                store16(a0, out, c); store16(a1, out, c + 16); store16(a2, out, c + 32); store16(a3, out, c + 48)
                c += 64
            }
            while c + 16 <= width {
                var acc = load16(out, c)
                for r in rows { acc.addProduct(F16(repeating: p[r]), load16(v + r * ldv, c)) }
                store16(acc, out, c)
                c += 16
            }
            while c < width {
                var s = out[c]
                for r in rows { s += p[r] * v[r * ldv + c] }
                out[c] = s
                c += 1
            }
            first = rows.upperBound
        }
    }

    @inline(__always)
    static func dot8(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, ldw: Int, k: Int) -> SIMD8<Float> {
        var a0 = F16(repeating: 0), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0
        var c = 0
        while c + 16 <= k {
            let xv = load16(x, c)
            a0.addProduct(xv, load16(w, c)); a1.addProduct(xv, load16(w + ldw, c))
            a2.addProduct(xv, load16(w + 2 * ldw, c)); a3.addProduct(xv, load16(w + 3 * ldw, c))
            a4.addProduct(xv, load16(w + 4 * ldw, c)); a5.addProduct(xv, load16(w + 5 * ldw, c))
            a6.addProduct(xv, load16(w + 6 * ldw, c)); a7.addProduct(xv, load16(w + 7 * ldw, c))
            c += 16
        }
        var r = SIMD8(a0.sum(), a1.sum(), a2.sum(), a3.sum(), a4.sum(), a5.sum(), a6.sum(), a7.sum())
        while c < k {
            for j in 0..<8 { r[j] += x[c] * w[j * ldw + c] }
            c += 1
        }
        return r
    }

    @inline(__always)
    static func dot4(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, k: Int) -> Float {
        var a0 = F16(repeating: 0), a1 = a0, a2 = a0, a3 = a0
        var c = 0
        while c + 64 <= k {
            let ahead = w + c + prefetchDistance
            megatron_prefetch(ahead); megatron_prefetch(ahead + 16)
            megatron_prefetch(ahead + 32); megatron_prefetch(ahead + 48)
            a0.addProduct(load16(x, c), load16(w, c)); a1.addProduct(load16(x, c + 16), load16(w, c + 16))
            a2.addProduct(load16(x, c + 32), load16(w, c + 32)); a3.addProduct(load16(x, c + 48), load16(w, c + 48))
            c += 64
        }
        while c + 16 <= k { a0.addProduct(load16(x, c), load16(w, c)); c += 16 }
        var s = ((a0 + a1) + (a2 + a3)).sum()
        while c < k { s += x[c] * w[c]; c += 1 }
        return s
    }

    @inline(__always)
    static func dot(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, k: Int) -> Float {
        var acc = F16(repeating: 0)
        var c = 0
        while c + 16 <= k { acc.addProduct(load16(x, c), load16(w, c)); c += 16 }
        var s = acc.sum()
        while c < k { s += x[c] * w[c]; c += 1 }
        return s
    }
}

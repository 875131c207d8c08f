// FewRows.swift — products whose left operand has only a few rows (token-by-token decoding: one row
// per sequence). SGEMM packs its operands for many rows and reads the weight at about half the
// memory bandwidth when m is 1–8; here each weight row is read from memory once and dotted with
// every input row (four weight rows at a time, kept in L1 while every input row passes), so the
// product runs at the speed of streaming the weight. The four rows lie a quarter of the range apart
// and are read side by side, each asking for the weight 2 KiB ahead (megatron_prefetch): one core
// following one stream reached two thirds to three quarters of the read rate that four concurrent
// streams reach on the machines measured (scripts/lib/read_bandwidth.c prints both); the prefetch
// added about a tenth.

import CBF16

public enum FewRows {
    /// How far ahead each of the one-row product's four streams is prefetched, in floats (2 KiB).
    static let prefetchDistance = 512

    /// y[i, n] = alpha · Σ_k x[i, k] · w[n, k] (+ bias[n]) for i < m, n < N: x [m, K] (row stride
    /// ldx), w [N, K] (row stride ldw), y row stride ldy. Threads split N unless `threaded` is false
    /// (when the caller is already one of several workers).
    public static func multiplyTransposed(
        x: UnsafePointer<Float>, ldx: Int, rows m: Int, w: UnsafePointer<Float>, ldw: Int, n N: Int, k K: Int,
        alpha: Float = 1, bias: UnsafePointer<Float>? = nil, y: UnsafeMutablePointer<Float>, ldy: Int,
        threaded: Bool = true
    ) {
        let body = { (range: Range<Int>) in
            if m == 1 {  // one row: the range's quarters are read side by side, four streams
                let tail = sideBySide(range) { rows in
                    let d = dot4x4(x, w, rows: rows, ldw: ldw, k: K)
                    for j in 0..<4 { y[rows[j]] = d[j] * alpha + (bias?[rows[j]] ?? 0) }
                }
                for n in tail { y[n] = dot4(x, w + n * ldw, k: K) * alpha + (bias?[n] ?? 0) }
                return
            }
            // A few rows: four weight rows from the quarters at a time, dotted with the input rows
            // four at a time (16 accumulators; the weight rows stay in L1 for the next four).
            let tail = sideBySide(range) { rows in
                for first in stride(from: 0, to: m, by: 4) {
                    let count = min(4, m - first)
                    let (s0, s1, s2, s3) = tile4x4(
                        x + first * ldx, ldx: ldx, inputs: count, w, rows: rows, ldw: ldw, k: K)
                    func store(_ a: Int, _ sums: SIMD4<Float>) {
                        guard a < count else { return }
                        for j in 0..<4 { y[(first + a) * ldy + rows[j]] = sums[j] * alpha + (bias?[rows[j]] ?? 0) }
                    }
                    store(0, s0); store(1, s1); store(2, s2); store(3, s3)
                }
            }
            for n in tail {
                for i in 0..<m { y[i * ldy + n] = dot(x + i * ldx, w + n * ldw, k: K) * alpha + (bias?[n] ?? 0) }
            }
        }
        if threaded { ThreadBudget.parallelFor(N, grain: 64, body) } else { body(0..<N) }
    }

    /// Calls `body` with four rows a quarter of `range` apart, (lo + i, lo + q + i, lo + 2q + i,
    /// lo + 3q + i) for i < q = range.count / 4, and returns the rows left over (the last count % 4).
    @inline(__always)
    static func sideBySide(_ range: Range<Int>, _ body: (SIMD4<Int>) -> Void) -> Range<Int> {
        let quarter = range.count / 4, lo = range.lowerBound
        for i in 0..<quarter { body(SIMD4(lo + i, lo + i + quarter, lo + i + 2 * quarter, lo + i + 3 * quarter)) }
        return (lo + 4 * quarter)..<range.upperBound
    }

    /// out[c] = Σ_r p[r] · v[r, c] for c < width: one row of P·V over `count` rows of v (row stride
    /// ldv). Rows are taken 8 at a time across the whole width (8 contiguous streams the hardware
    /// prefetcher follows, where one 64-column strip per pass over all rows jumps a row stride per
    /// 256 bytes; each strip also asks for the same strip of the next block's rows), summing into
    /// `out` in row order, so each sum is the same as one pass would give.
    public static func weightedSum(
        _ p: UnsafePointer<Float>, count: Int, v: UnsafePointer<Float>, ldv: Int, width: Int,
        into out: UnsafeMutablePointer<Float>
    ) {
        weightedSums([(p: p, v: v, out: out)], count: count, ldv: ldv, width: width)
    }

    /// One weighted sum per part (same count, ldv and width), the parts read side by side: each
    /// block of 8 rows is added for every part before the next block, so up to `parts.count` separate
    /// regions stream at once (one region per attention head, whose values are contiguous), and each
    /// part's sum is exactly what `weightedSum` gives it.
    public static func weightedSums(
        _ parts: [(p: UnsafePointer<Float>, v: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>)], count: Int,
        ldv: Int, width: Int
    ) {
        for part in parts { part.out.update(repeating: 0, count: width) }
        var first = 0
        while first < count {
            let rows = first..<min(first + 8, count)
            for part in parts { addRows(rows, part.p, v: part.v, ldv: ldv, width: width, into: part.out) }
            first = rows.upperBound
        }
    }

    /// out[c] += Σ_{r ∈ rows} p[r] · v[r, c], in row order, for c < width.
    @inline(__always)
    static func addRows(
        _ rows: Range<Int>, _ p: UnsafePointer<Float>, v: UnsafePointer<Float>, ldv: Int, width: Int,
        into out: UnsafeMutablePointer<Float>
    ) {
        var c = 0
        while c + 64 <= width {
            var a0 = load16(out, c), a1 = load16(out, c + 16), a2 = load16(out, c + 32), a3 = load16(out, c + 48)
            for r in rows {
                let weight = F16(repeating: p[r]), row = v + r * ldv + c
                prefetch256(row + 8 * ldv)  // the same strip of the next block's row
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
    }

    /// The dot products of up to four input rows (x, row stride ldx; `inputs` of them) with four
    /// weight rows w[rows[j]], read side by side: result[a][j] = x[a] · w[rows[j]], each summed
    /// exactly as `dot` sums it. The weight rows are prefetched 2 KiB ahead.
    @inline(__always)
    static func tile4x4(
        _ x: UnsafePointer<Float>, ldx: Int, inputs: Int, _ w: UnsafePointer<Float>, rows: SIMD4<Int>, ldw: Int, k: Int
    ) -> (SIMD4<Float>, SIMD4<Float>, SIMD4<Float>, SIMD4<Float>) {
        let w0 = w + rows[0] * ldw, w1 = w + rows[1] * ldw, w2 = w + rows[2] * ldw, w3 = w + rows[3] * ldw
        // Missing input rows repeat the first; their sums are computed and not returned.
        let x0 = x, x1 = x + (inputs > 1 ? ldx : 0), x2 = x + (inputs > 2 ? 2 * ldx : 0),
            x3 = x + (inputs > 3 ? 3 * ldx : 0)
        var a00 = F16(repeating: 0), a01 = a00, a02 = a00, a03 = a00, a10 = a00, a11 = a00, a12 = a00, a13 = a00
        var a20 = a00, a21 = a00, a22 = a00, a23 = a00, a30 = a00, a31 = a00, a32 = a00, a33 = a00
        var c = 0
        while c + 16 <= k {
            if c % 64 == 0 {
                let ahead = c + prefetchDistance
                prefetch256(w0 + ahead); prefetch256(w1 + ahead); prefetch256(w2 + ahead); prefetch256(w3 + ahead)
            }
            let v0 = load16(w0, c), v1 = load16(w1, c), v2 = load16(w2, c), v3 = load16(w3, c)
            var u = load16(x0, c)
            a00.addProduct(u, v0); a01.addProduct(u, v1); a02.addProduct(u, v2); a03.addProduct(u, v3)
            u = load16(x1, c)
            a10.addProduct(u, v0); a11.addProduct(u, v1); a12.addProduct(u, v2); a13.addProduct(u, v3)
            u = load16(x2, c)
            a20.addProduct(u, v0); a21.addProduct(u, v1); a22.addProduct(u, v2); a23.addProduct(u, v3)
            u = load16(x3, c)
            a30.addProduct(u, v0); a31.addProduct(u, v1); a32.addProduct(u, v2); a33.addProduct(u, v3)
            c += 16
        }
        var s0 = SIMD4(a00.sum(), a01.sum(), a02.sum(), a03.sum()),
            s1 = SIMD4(a10.sum(), a11.sum(), a12.sum(), a13.sum())
        var s2 = SIMD4(a20.sum(), a21.sum(), a22.sum(), a23.sum()),
            s3 = SIMD4(a30.sum(), a31.sum(), a32.sum(), a33.sum())
        while c < k {  // the last floats, added one by one after the sums as `dot` adds them
            let v = SIMD4(w0[c], w1[c], w2[c], w3[c])
            s0 += x0[c] * v; s1 += x1[c] * v; s2 += x2[c] * v; s3 += x3[c] * v
            c += 1
        }
        return (s0, s1, s2, s3)
    }

    /// Four dot products x · w[rows[j]] read side by side, each summed exactly as `dot4` sums it.
    @inline(__always)
    static func dot4x4(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, rows: SIMD4<Int>, ldw: Int, k: Int)
        -> SIMD4<Float>
    {
        let w0 = w + rows[0] * ldw, w1 = w + rows[1] * ldw, w2 = w + rows[2] * ldw, w3 = w + rows[3] * ldw
        var a0 = F16(repeating: 0), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0
        var c0 = a0, c1 = a0, c2 = a0, c3 = a0, d0 = a0, d1 = a0, d2 = a0, d3 = a0
        var c = 0
        while c + 64 <= k {
            let ahead = c + prefetchDistance
            prefetch256(w0 + ahead); prefetch256(w1 + ahead); prefetch256(w2 + ahead); prefetch256(w3 + ahead)
            let x0 = load16(x, c), x1 = load16(x, c + 16), x2 = load16(x, c + 32), x3 = load16(x, c + 48)
            a0.addProduct(x0, load16(w0, c)); a1.addProduct(x1, load16(w0, c + 16))
            a2.addProduct(x2, load16(w0, c + 32)); a3.addProduct(x3, load16(w0, c + 48))
            b0.addProduct(x0, load16(w1, c)); b1.addProduct(x1, load16(w1, c + 16))
            b2.addProduct(x2, load16(w1, c + 32)); b3.addProduct(x3, load16(w1, c + 48))
            c0.addProduct(x0, load16(w2, c)); c1.addProduct(x1, load16(w2, c + 16))
            c2.addProduct(x2, load16(w2, c + 32)); c3.addProduct(x3, load16(w2, c + 48))
            d0.addProduct(x0, load16(w3, c)); d1.addProduct(x1, load16(w3, c + 16))
            d2.addProduct(x2, load16(w3, c + 32)); d3.addProduct(x3, load16(w3, c + 48))
            c += 64
        }
        while c + 16 <= k {
            let xv = load16(x, c)
            a0.addProduct(xv, load16(w0, c)); b0.addProduct(xv, load16(w1, c))
            c0.addProduct(xv, load16(w2, c)); d0.addProduct(xv, load16(w3, c))
            c += 16
        }
        var s = SIMD4(
            ((a0 + a1) + (a2 + a3)).sum(), ((b0 + b1) + (b2 + b3)).sum(), ((c0 + c1) + (c2 + c3)).sum(),
            ((d0 + d1) + (d2 + d3)).sum())
        while c < k {
            s += SIMD4(x[c] * w0[c], x[c] * w1[c], x[c] * w2[c], x[c] * w3[c])
            c += 1
        }
        return s
    }

    /// Asks for the 256 bytes (four cache lines) at p.
    @inline(__always)
    static func prefetch256(_ p: UnsafePointer<Float>) {
        megatron_prefetch(p); megatron_prefetch(p + 16); megatron_prefetch(p + 32); megatron_prefetch(p + 48)
    }

    @inline(__always)
    static func dot4(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, k: Int) -> Float {
        var a0 = F16(repeating: 0), a1 = a0, a2 = a0, a3 = a0
        var c = 0
        while c + 64 <= k {
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

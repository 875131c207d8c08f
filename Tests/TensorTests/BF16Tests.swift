// BF16Tests.swift — fp32 → bf16 rounding against an independent nearest-even reference (computed
// by comparing the two bf16 neighbours in Double), on edge values and a million random bit
// patterns; the bf16 GEMM, on every kernel this CPU offers (AMX, AVX512-BF16, portable), against
// an fp64 product of the same bf16 inputs on random and edge shapes (1, odd, not multiples of the
// 8 × 32 or 32 × 32 blocks, more than one k block), every transpose combination and β ∈ {0, 1.5},
// within fp32 accumulation error.
import Tensor
import XCTest

final class BF16Tests: XCTestCase {
    /// Nearest bf16 of `x` by distance, ties to the even one; NaN → a quiet NaN; overflow → ±∞.
    func reference(_ x: Float) -> UInt16 {
        let u = x.bitPattern
        if x.isNaN { return UInt16(u >> 16) | 0x40 }
        let lower = u & 0xFFFF_0000
        if lower == u { return UInt16(u >> 16) }
        let lo = Double(Float(bitPattern: lower)), hiBits = lower &+ 0x1_0000
        // The neighbour away from zero. Past the largest finite bf16 it is ±∞, which IEEE 754 rounding
        // treats as ±2¹²⁸ when measuring distance (so halfway and beyond overflow).
        let hiFloat = Float(bitPattern: hiBits)
        let hi = hiFloat.isInfinite ? (x < 0 ? -1 : 1) * 0x1p128 : Double(hiFloat)
        let dl = abs(Double(x) - lo), dh = abs(hi - Double(x))
        if dl < dh { return UInt16(lower >> 16) }
        if dh < dl { return UInt16(hiBits >> 16) }
        return (lower >> 16) & 1 == 0 ? UInt16(lower >> 16) : UInt16(hiBits >> 16)
    }

    func testRoundingIsNearestEvenBitExact() {
        var inputs: [Float] = [
            0, -0.0, 1, -1, .infinity, -.infinity, .greatestFiniteMagnitude, -.greatestFiniteMagnitude,
            .leastNonzeroMagnitude, .leastNormalMagnitude, Float(bitPattern: 0x007F_FFFF),
            Float(bitPattern: 0x3F80_8000), Float(bitPattern: 0x3F81_8000), Float(bitPattern: 0x3F80_8001),
            Float(bitPattern: 0x7F7F_8000), Float(bitPattern: 0x0000_8000), Float(bitPattern: 0x0001_8000),
        ]
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        for _ in 0..<1_000_000 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let f = Float(bitPattern: UInt32(truncatingIfNeeded: state >> 32))
            if !f.isNaN { inputs.append(f) }
        }
        var out = [UInt16](repeating: 0, count: inputs.count)
        inputs.withUnsafeBufferPointer { x in
            out.withUnsafeMutableBufferPointer { BF16.round(x.baseAddress!, into: $0.baseAddress!, count: x.count) }
        }
        var mismatches = 0
        for (x, y) in zip(inputs, out) where y != reference(x) {
            mismatches += 1
            if mismatches < 5 {
                XCTFail(
                    "\(x) (0x\(String(x.bitPattern, radix: 16))): got 0x\(String(y, radix: 16)), expected "
                        + "0x\(String(reference(x), radix: 16))"
                )
            }
        }
        XCTAssertEqual(mismatches, 0)
        var nan = [UInt16](repeating: 0, count: 1)
        [Float.nan].withUnsafeBufferPointer { x in
            nan.withUnsafeMutableBufferPointer { BF16.round(x.baseAddress!, into: $0.baseAddress!, count: 1) }
        }
        var back = [Float](repeating: 0, count: 1)
        nan.withUnsafeBufferPointer { y in
            back.withUnsafeMutableBufferPointer { BF16.widen(y.baseAddress!, into: $0.baseAddress!, count: 1) }
        }
        XCTAssertTrue(back[0].isNaN)
    }

    func testGEMMAgainstFloat64OnEdgeShapes() {
        var state: UInt64 = 42
        func random() -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: state) >> 40) / Float(1 << 23)
        }
        let shapes = [
            (1, 1, 1), (1, 17, 3), (7, 33, 5), (8, 16, 2), (8, 32, 512), (13, 50, 129), (64, 48, 1000), (3, 100, 1),
            (9, 31, 513), (70, 40, 1100), (96, 64, 2100), (261, 19, 1027),
            // past the AMX kernel's C tiles (256 rows × 384 columns) and k blocks (256 pairs)
            (270, 390, 530),
        ]
        for kernel in BF16.Kernel.allCases where kernel.rawValue <= BF16.bestKernel.rawValue {
            BF16.force(kernel)
            defer { BF16.force(nil) }
            for (m, n, k) in shapes {
                for transA in [false, true] {
                    for transB in [false, true] {
                        for beta: Float in [0, 1.5] {
                            let af = (0..<(m * k)).map { _ in random() }, bf = (0..<(k * n)).map { _ in random() }
                            var a = [UInt16](repeating: 0, count: af.count), b = [UInt16](repeating: 0, count: bf.count)
                            af.withUnsafeBufferPointer { x in
                                a.withUnsafeMutableBufferPointer {
                                    BF16.round(x.baseAddress!, into: $0.baseAddress!, count: x.count)
                                }
                            }
                            bf.withUnsafeBufferPointer { x in
                                b.withUnsafeMutableBufferPointer {
                                    BF16.round(x.baseAddress!, into: $0.baseAddress!, count: x.count)
                                }
                            }
                            func value(_ v: UInt16) -> Double { Double(Float(bitPattern: UInt32(v) << 16)) }
                            let c0 = (0..<(m * n)).map { _ in random() }
                            var c = c0
                            let lda = transA ? m : k, ldb = transB ? k : n
                            a.withUnsafeBufferPointer { pa in
                                b.withUnsafeBufferPointer { pb in
                                    c.withUnsafeMutableBufferPointer { pc in
                                        BF16.gemm(
                                            transA: transA, transB: transB, m: m, n: n, k: k, a: pa.baseAddress!,
                                            lda: lda,
                                            b: pb.baseAddress!, ldb: ldb, beta: beta, c: pc.baseAddress!, ldc: n)
                                    }
                                }
                            }
                            for i in 0..<m {
                                for j in 0..<n {
                                    var ref = Double(beta) * Double(c0[i * n + j]), mag = abs(ref)
                                    for kk in 0..<k {
                                        let x = value(transA ? a[kk * lda + i] : a[i * lda + kk]),
                                            y = value(transB ? b[j * ldb + kk] : b[kk * ldb + j])
                                        ref += x * y; mag += abs(x * y)
                                    }
                                    let got = Double(c[i * n + j])
                                    if abs(got - ref) > 1e-6 * Double(k + 1) * mag + 1e-7 {
                                        XCTFail(
                                            "\(kernel) m\(m) n\(n) k\(k) tA \(transA) tB \(transB) β \(beta) "
                                                + "[\(i),\(j)]: \(got) vs \(ref)"
                                        )
                                        return
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// A product whose packed B is far larger than the caches with k ≤ 768 (the LM head's logits)
    /// takes A in chunks of twice the usual rows; checked against Float64 on every row and a spread
    /// of columns (the last ones included), m leaving a part-chunk and part-block, on the vector
    /// kernels this CPU has.
    func testProductWithAHugeBAgainstFloat64() {
        let (m, n, k) = (600, 12_003, 700)
        var state: UInt64 = 7
        func random(_ count: Int) -> [UInt16] {
            let x = (0..<count).map { _ in
                state = state &* 6364136223846793005 &+ 1442695040888963407
                return Float(Int64(bitPattern: state) >> 40) / Float(1 << 23)
            }
            var words = [UInt16](repeating: 0, count: count)
            x.withUnsafeBufferPointer { p in
                words.withUnsafeMutableBufferPointer { BF16.round(p.baseAddress!, into: $0.baseAddress!, count: count) }
            }
            return words
        }
        func value(_ v: UInt16) -> Double { Double(Float(bitPattern: UInt32(v) << 16)) }
        let a = random(m * k), b = random(k * n)
        let columns = Array(stride(from: 0, to: n, by: 397)) + [n - 2, n - 1]
        for kernel in BF16.Kernel.allCases where kernel != .portable && kernel.rawValue <= BF16.bestKernel.rawValue {
            BF16.force(kernel)
            defer { BF16.force(nil) }
            for transA in [false, true] {
                var c = [Float](repeating: 0, count: m * n)
                let lda = transA ? m : k
                let at = transA ? (0..<(k * m)).map { a[($0 % m) * k + $0 / m] } : a
                at.withUnsafeBufferPointer { pa in
                    b.withUnsafeBufferPointer { pb in
                        c.withUnsafeMutableBufferPointer { pc in
                            BF16.gemm(
                                transA: transA, transB: false, m: m, n: n, k: k, a: pa.baseAddress!, lda: lda,
                                b: pb.baseAddress!, ldb: n, beta: 0, c: pc.baseAddress!, ldc: n)
                        }
                    }
                }
                for i in 0..<m {
                    for j in columns {
                        var ref = 0.0, mag = 0.0
                        for kk in 0..<k {
                            let p = value(a[i * k + kk]) * value(b[kk * n + j])
                            ref += p; mag += abs(p)
                        }
                        let got = Double(c[i * n + j])
                        if abs(got - ref) > 1e-6 * Double(k + 1) * mag + 1e-7 {
                            XCTFail("\(kernel) transA \(transA) [\(i),\(j)]: \(got) vs \(ref)")
                            return
                        }
                    }
                }
            }
        }
    }

    /// A B packed once for a larger operand (more columns, more k) and used for a product over its
    /// first n columns and k rows gives bit for bit the product that packs only those (attention's
    /// K and V, packed once per (batch, head) for every query tile), on every kernel this CPU has,
    /// with n and k off the 16-column panels and 16-pair chunks.
    func testProductsAgainstABPackedOnceEqualPackingEachTime() {
        var state: UInt64 = 7
        func random() -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: state) >> 40) / Float(1 << 23)
        }
        let (fullN, fullK, m) = (150, 97, 37)
        let b = (0..<(fullN * fullK)).map { _ in random() }  // [fullN, fullK] and read as [fullK, fullN]
        let a = (0..<(m * fullK)).map { _ in random() }
        for kernel in BF16.Kernel.allCases where kernel.rawValue <= BF16.bestKernel.rawValue {
            BF16.force(kernel)
            defer { BF16.force(nil) }
            for transB in [false, true] {
                let (ldb, packedN, packedK) = transB ? (fullK, fullN, fullK) : (fullN, fullN, fullK)
                let packed = BF16.packOnThisThread(
                    transB: transB, n: packedN, k: packedK, b: b, ldb: ldb, slot: 2)
                for (n, k) in [(150, 97), (128, 97), (97, 64), (33, 17), (16, 1)] {
                    var once = [Float](repeating: 1, count: m * n), each = once
                    BF16.gemmOnThisThread(
                        m: m, n: n, k: k, a: a, lda: fullK, packed: packed, packedK: packedK, beta: 0.5, c: &once,
                        ldc: n)
                    BF16.gemmOnThisThread(
                        transB: transB, m: m, n: n, k: k, a: a, lda: fullK, b: b, ldb: ldb, beta: 0.5, c: &each,
                        ldc: n)
                    XCTAssertEqual(once, each, "\(kernel), transB \(transB), n \(n), k \(k)")
                    XCTAssertNotEqual(once, [Float](repeating: 0.5, count: m * n), "the product did not run")
                }
            }
        }
    }
}

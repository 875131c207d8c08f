// TileProductTests.swift — the attention core's tile products: the fp32 tile kernel (F32Tiles)
// against an fp64 product on odd shapes, every layout of A and B, β ∈ {0, 1}, a B packed for a
// larger operand and more than one k block; and the causal trims (TileTrim) on both the fp32 and
// every bf16 kernel: where A holds the zeros a trim promises, a trimmed product equals the full
// one bit for bit (and a planted non-zero in the skipped part shows the skipping is real), and a
// column trim leaves exactly the columns it allows unwritten.
import Tensor
import XCTest

final class TileProductTests: XCTestCase {
    var state: UInt64 = 3
    func random() -> Float {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return Float(Int64(bitPattern: state) >> 40) / Float(1 << 23)
    }

    func testF32TilesAgainstFloat64() throws {
        try XCTSkipUnless(F32Tiles.available, "this CPU has no AVX-512: the attention core uses SGEMM")
        for (m, n, k) in [(1, 1, 1), (37, 50, 97), (8, 32, 64), (129, 70, 300), (17, 16, 600)] {
            for transA in [false, true] {
                for transB in [false, true] {
                    for beta: Float in [0, 1] {
                        let (packedN, packedK) = (n + 5, k + 3)  // B packed for a larger operand
                        let a = (0..<(m * k)).map { _ in random() }
                        let b = (0..<(packedN * packedK)).map { _ in random() }
                        let lda = transA ? m : k
                        let ldb = transB ? packedK : packedN
                        func A(_ i: Int, _ kk: Int) -> Double { Double(transA ? a[kk * lda + i] : a[i * lda + kk]) }
                        func B(_ kk: Int, _ j: Int) -> Double { Double(transB ? b[j * ldb + kk] : b[kk * ldb + j]) }
                        var c = (0..<(m * n)).map { _ in random() }
                        let c0 = c
                        let packed = F32Tiles.packOnThisThread(
                            transB: transB, n: packedN, k: packedK, b: b, ldb: ldb, slot: 2)
                        F32Tiles.gemmOnThisThread(
                            transA: transA, m: m, n: n, k: k, alpha: 0.5, a: a, lda: lda, packed: packed,
                            packedK: packedK, beta: beta, c: &c, ldc: n)
                        var worst = 0.0
                        for i in 0..<m {
                            for j in 0..<n {
                                var sum = 0.0, size = 0.0
                                for kk in 0..<k { sum += A(i, kk) * B(kk, j); size += abs(A(i, kk) * B(kk, j)) }
                                let want = 0.5 * sum + Double(beta) * Double(c0[i * n + j])
                                worst = max(worst, abs(Double(c[i * n + j]) - want) / (size + 1))
                            }
                        }
                        XCTAssertLessThan(
                            worst, 1e-6, "m \(m) n \(n) k \(k) transA \(transA) transB \(transB) β \(beta)")
                    }
                }
            }
        }
    }

    /// One trimmed product beside the full one, through `product(trim, a, c)`.
    func checkTrims(
        _ name: String,
        product: (TileTrim, [Float], Float, inout [Float]) -> Void
    ) {
        let (m, n, k) = (70, 66, 70)
        let dense = (0..<(m * k)).map { _ in random() }
        // A is row-major [m, k]; a trim's promise is made true by zeroing the part it skips.
        let cases: [(TileTrim, (Int, Int) -> Bool)] = [
            (.zeroFrom(5), { i, kk in kk >= i + 5 }), (.zeroFrom(-3), { i, kk in kk >= i - 3 }),
            (.zeroBefore(2), { i, kk in kk < i + 2 }), (.zeroBefore(-40), { i, kk in kk < i - 40 }),
        ]
        for (trim, zero) in cases {
            var a = dense
            for i in 0..<m { for kk in 0..<k where zero(i, kk) { a[i * k + kk] = 0 } }
            var full = [Float](repeating: 0.25, count: m * n), trimmed = full
            product(.none, a, 1, &full)
            product(trim, a, 1, &trimmed)
            XCTAssertEqual(full, trimmed, "\(name) \(trim)")
            // A planted value where the trim promised zeros is skipped, so the results differ.
            var planted = a
            // Far from the diagonal, beyond what any row of its 8-row block needs.
            let (pi, pk) = { if case .zeroFrom = trim { return (8, k - 1) } else { return (m - 1, 0) } }()
            XCTAssertTrue(zero(pi, pk))
            planted[pi * k + pk] = 1000
            var withPlant = [Float](repeating: 0.25, count: m * n)
            product(trim, planted, 1, &withPlant)
            if name.hasPrefix("bf16 portable") || name.hasPrefix("bf16 amx") {
                XCTAssertNotEqual(withPlant, trimmed, "\(name) \(trim): the kernel computes everything")
            } else {
                XCTAssertEqual(withPlant, trimmed, "\(name) \(trim): the skipped k were read")
            }
        }
        // Columns (β 0): row i needs j < i + offset; those equal the full product, others stay untouched at the
        // kernel's 8-row × 32-column steps (about a quarter of C here).
        for offset in [1, 9, -4] {
            var full = [Float](repeating: 0.25, count: m * n)
            var trimmed = [Float](repeating: .nan, count: m * n)
            product(.none, dense, 0, &full)
            product(.columnsBelow(offset), dense, 0, &trimmed)
            var untouched = 0
            for i in 0..<m {
                for j in 0..<n {
                    if j < i + offset {
                        XCTAssertEqual(
                            trimmed[i * n + j], full[i * n + j], "\(name) columnsBelow(\(offset)) [\(i), \(j)]")
                    } else if trimmed[i * n + j].isNaN {
                        untouched += 1
                    }
                }
            }
            if !name.hasPrefix("bf16 portable") && !name.hasPrefix("bf16 amx") {
                XCTAssertGreaterThan(untouched, m * n / 6, "\(name) columnsBelow(\(offset)) computed the upper part")
            }
        }
    }

    func testTrimmedProductsEqualFullOnesWhereTheyPromise() throws {
        let b = (0..<(70 * 66)).map { _ in random() }  // B [k = 70, n = 66]
        if F32Tiles.available {
            let packed = F32Tiles.packOnThisThread(n: 66, k: 70, b: b, ldb: 66, slot: 2)
            checkTrims("fp32") { trim, a, beta, c in
                F32Tiles.gemmOnThisThread(
                    m: 70, n: 66, k: 70, a: a, lda: 70, packed: packed, packedK: 70, beta: beta, c: &c, ldc: 66,
                    trim: trim)
            }
        }
        for kernel in BF16.Kernel.allCases where kernel.rawValue <= BF16.bestKernel.rawValue {
            BF16.force(kernel)
            defer { BF16.force(nil) }
            let packed = BF16.packOnThisThread(n: 66, k: 70, b: b, ldb: 66, slot: 2)
            checkTrims("bf16 \(kernel)") { trim, a, beta, c in
                BF16.gemmOnThisThread(
                    m: 70, n: 66, k: 70, a: a, lda: 70, packed: packed, packedK: 70, beta: beta, c: &c, ldc: 66,
                    trim: trim)
            }
        }
    }
}

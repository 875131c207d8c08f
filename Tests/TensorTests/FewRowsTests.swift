// FewRowsTests.swift — the decoding products against plain loops: y = x·Wᵀ (+ bias) for 1–9 rows
// and widths that exercise every tail (8-row blocks, the one-row product's four quarters, 64/16-float
// strips, single floats), and the attention's weighted sum of rows, which must give exactly the sum
// taken row by row in order, alone or with other heads' sums read side by side.
import Tensor
import XCTest

final class FewRowsTests: XCTestCase {
    func testMultiplyTransposedMatchesAPlainLoop() {
        var rng = SystemRandomNumberGenerator()
        for (m, n, k) in [(1, 37, 768), (1, 64, 70), (1, 1003, 100), (3, 19, 33), (8, 24, 128), (9, 17, 5), (2, 1, 1)] {
            let x = (0..<m * k).map { _ in Float.random(in: -1...1, using: &rng) }
            let w = (0..<n * k).map { _ in Float.random(in: -1...1, using: &rng) }
            let bias = (0..<n).map { _ in Float.random(in: -1...1, using: &rng) }
            var y = [Float](repeating: .nan, count: m * n)
            x.withUnsafeBufferPointer { xp in
                w.withUnsafeBufferPointer { wp in
                    bias.withUnsafeBufferPointer { bp in
                        y.withUnsafeMutableBufferPointer { yp in
                            FewRows.multiplyTransposed(
                                x: xp.baseAddress!, ldx: k, rows: m, w: wp.baseAddress!, ldw: k, n: n, k: k, alpha: 0.5,
                                bias: bp.baseAddress!, y: yp.baseAddress!, ldy: n)
                        }
                    }
                }
            }
            for i in 0..<m {
                for j in 0..<n {
                    var s: Double = 0
                    for c in 0..<k { s += Double(x[i * k + c]) * Double(w[j * k + c]) }
                    let expected = Float(0.5 * s) + bias[j]
                    XCTAssertEqual(
                        y[i * n + j], expected, accuracy: 1e-5 * Float(k), "m \(m) n \(n) k \(k) [\(i), \(j)]")
                }
            }
        }
    }

    func testWeightedSumIsTheRowByRowSum() {
        var rng = SystemRandomNumberGenerator()
        for (count, width, ldv) in [
            (64, 1024, 1024), (64, 217, 1024), (1023, 64, 64), (7, 81, 90), (1, 3, 3), (9, 16, 16),
        ] {
            let p = (0..<count).map { _ in Float.random(in: 0...1, using: &rng) }
            let v = (0..<count * ldv).map { _ in Float.random(in: -1...1, using: &rng) }
            var out = [Float](repeating: .nan, count: width)
            p.withUnsafeBufferPointer { pp in
                v.withUnsafeBufferPointer { vp in
                    out.withUnsafeMutableBufferPointer {
                        FewRows.weightedSum(
                            pp.baseAddress!, count: count, v: vp.baseAddress!, ldv: ldv, width: width,
                            into: $0.baseAddress!)
                    }
                }
            }
            let vectorEnd = width / 16 * 16  // fused multiply-adds in 16-float strips, multiply then add after
            for c in 0..<width {
                var fused: Float = 0, separate: Float = 0
                for r in 0..<count {
                    fused = fused.addingProduct(p[r], v[r * ldv + c])
                    separate += p[r] * v[r * ldv + c]
                }
                XCTAssertEqual(out[c], c < vectorEnd ? fused : separate, "count \(count) width \(width) column \(c)")
            }
        }
    }

    func testWeightedSumsGiveEachPartItsOwnWeightedSum() {
        var rng = SystemRandomNumberGenerator()
        for (parts, count, width, ldv) in [(4, 1023, 64, 64), (3, 9, 81, 90), (1, 17, 16, 16), (2, 1, 3, 3)] {
            let p = (0..<parts * count).map { _ in Float.random(in: 0...1, using: &rng) }
            let v = (0..<parts * count * ldv).map { _ in Float.random(in: -1...1, using: &rng) }
            var together = [Float](repeating: .nan, count: parts * width), alone = together
            p.withUnsafeBufferPointer { pp in
                v.withUnsafeBufferPointer { vp in
                    together.withUnsafeMutableBufferPointer { tp in
                        alone.withUnsafeMutableBufferPointer { ap in
                            let P = pp.baseAddress!, V = vp.baseAddress!
                            FewRows.weightedSums(
                                (0..<parts).map {
                                    (p: P + $0 * count, v: V + $0 * count * ldv, out: tp.baseAddress! + $0 * width)
                                },
                                count: count, ldv: ldv, width: width)
                            for j in 0..<parts {
                                FewRows.weightedSum(
                                    P + j * count, count: count, v: V + j * count * ldv, ldv: ldv, width: width,
                                    into: ap.baseAddress! + j * width)
                            }
                        }
                    }
                }
            }
            XCTAssertEqual(together, alone, "parts \(parts) count \(count) width \(width)")
        }
    }
}

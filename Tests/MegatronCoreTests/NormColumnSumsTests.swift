// NormColumnSumsTests.swift — the norms' parameter gradients summed in the row pass by fixed blocks
// of rows (NormColumnSums): over 150 rows (two whole blocks of 64 and a part) of width 37 (a vector
// tail), LayerNorm's dγ = Σ dy·x̂ and dβ = Σ dy and RMSNorm's dγ against Double sums, added to what
// the buffers held, and bit for bit the same on one thread as on two.
import MegatronCore
import Tensor
import XCTest

final class NormColumnSumsTests: XCTestCase {
    func testBlockSumsEqualDoubleSumsOnAnyThreadCount() {
        let n = 150, h = 37
        var rnd = TestRandom(7)
        let x = rnd.array(n * h, scale: 2), w = rnd.array(h).map { 1 + 0.3 * $0 }, b = rnd.array(h, scale: 0.3)
        let dy = rnd.array(n * h)
        var results: [[Float]] = []
        for threads in [1, 2] {
            ThreadBudget.configure(threads: threads)
            var y = [Float](repeating: 0, count: n * h), mean = [Float](repeating: 0, count: n), rstd = mean
            LayerNorm.forward(x: x, weight: w, bias: b, y: &y, mean: &mean, rstd: &rstd, rows: n, width: h, eps: 1e-5)
            var dx = [Float](repeating: 0, count: n * h), dw = [Float](repeating: 0.5, count: h), db = dw
            LayerNorm.backward(
                dy: dy, x: x, weight: w, mean: mean, rstd: rstd, dx: &dx, dweight: &dw, dbias: &db, rows: n, width: h)
            var rmsRstd = [Float](repeating: 0, count: n), rmsY = y
            RMSNorm.forward(x: x, weight: w, y: &rmsY, rstd: &rmsRstd, rows: n, width: h, eps: 1e-5)
            var rmsDx = [Float](repeating: 0, count: n * h), rmsDw = [Float](repeating: -0.25, count: h)
            RMSNorm.backward(dy: dy, x: x, weight: w, rstd: rmsRstd, dx: &rmsDx, dweight: &rmsDw, rows: n, width: h)
            for c in 0..<h {
                var gw = 0.5, gb = 0.5, rw = -0.25
                for r in 0..<n {
                    let i = r * h + c, d = Double(dy[i])
                    gw += d * (Double(x[i]) - Double(mean[r])) * Double(rstd[r])
                    gb += d
                    rw += d * Double(x[i]) * Double(rmsRstd[r])
                }
                XCTAssertEqual(Double(dw[c]), gw, accuracy: 1e-5 * max(1, abs(gw)), "LayerNorm dγ[\(c)]")
                XCTAssertEqual(Double(db[c]), gb, accuracy: 1e-5 * max(1, abs(gb)), "LayerNorm dβ[\(c)]")
                XCTAssertEqual(Double(rmsDw[c]), rw, accuracy: 1e-5 * max(1, abs(rw)), "RMSNorm dγ[\(c)]")
            }
            results.append(dw + db + rmsDw + dx + rmsDx)
        }
        XCTAssertEqual(results[0].map(\.bitPattern), results[1].map(\.bitPattern), "one thread and two")
    }
}

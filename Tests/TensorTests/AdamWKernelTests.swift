// AdamWKernelTests.swift — Kernels.adamW (CBF16's adamw.c) against the update written out in Swift
// scalar arithmetic, bit for bit, over lengths that end inside a vector (the masked tail) and
// ranges that start anywhere: an element's result may not depend on its place in a range.
import Tensor
import XCTest

final class AdamWKernelTests: XCTestCase {
    func testKernelEqualsTheScalarUpdateBitForBit() {
        var state: UInt64 = 9
        func random() -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: state) >> 40) / Float(1 << 23)
        }
        let n = 101
        let g0 = (0..<n).map { _ in random() }, p0 = (0..<n).map { _ in random() }
        let m0 = (0..<n).map { _ in random() * 0.1 }, v0 = (0..<n).map { _ in abs(random()) * 0.01 }
        let (b1, b2, eps, lr, wd, c1, c2): (Float, Float, Float, Float, Float, Float, Float) =
            (0.9, 0.95, 1e-8, 3e-4, 0.1, 0.271, 0.0975)
        var p = p0, m = m0, v = v0
        for i in 0..<n {
            let gi = g0[i]
            m[i] = (1 - b1) * gi + b1 * m0[i]
            v[i] = ((1 - b2) * gi * gi).addingProduct(b2, v0[i])
            let upd = (m[i] / c1) / ((v[i] / c2).squareRoot() + eps) + wd * p0[i]
            p[i] = p0[i] - lr * upd
        }
        for split in [0, 1, 16, 37, 100] {  // two calls: [0, split) and [split, n)
            var pk = p0, mk = m0, vk = v0
            for (lo, hi) in [(0, split), (split, n)] where hi > lo {
                g0.withUnsafeBufferPointer { G in
                    pk.withUnsafeMutableBufferPointer { P in
                        mk.withUnsafeMutableBufferPointer { M in
                            vk.withUnsafeMutableBufferPointer { V in
                                Kernels.adamW(
                                    params: P.baseAddress! + lo, grads: G.baseAddress! + lo,
                                    expAvg: M.baseAddress! + lo,
                                    expAvgSq: V.baseAddress! + lo, count: hi - lo, beta1: b1, beta2: b2, eps: eps,
                                    lr: lr,
                                    weightDecay: wd, corrections: (c1, c2))
                            }
                        }
                    }
                }
            }
            XCTAssertEqual(pk.map(\.bitPattern), p.map(\.bitPattern), "params, split at \(split)")
            XCTAssertEqual(mk.map(\.bitPattern), m.map(\.bitPattern), "exp_avg, split at \(split)")
            XCTAssertEqual(vk.map(\.bitPattern), v.map(\.bitPattern), "exp_avg_sq, split at \(split)")
            XCTAssertNotEqual(pk, p0, "the update did not run")
        }
    }
}

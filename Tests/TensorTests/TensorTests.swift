// TensorTests.swift — the generator against Philox4x32-10's published known answers, the SIMD exp
// and GELU against libm, the GEMM wrapper's layouts against a naive product, and the task pool.
import Foundation
import Tensor
import XCTest

final class TensorTests: XCTestCase {
    func testPhiloxKnownAnswers() {
        // Random123 known-answer vectors for philox4x32-10 (counter, key → output).
        XCTAssertEqual(
            Philox4x32(key0: 0, key1: 0).block(0, 0, 0, 0), SIMD4(0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8))
        XCTAssertEqual(
            Philox4x32(key0: 0xffff_ffff, key1: 0xffff_ffff).block(0xffff_ffff, 0xffff_ffff, 0xffff_ffff, 0xffff_ffff),
            SIMD4(0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd))
        XCTAssertEqual(
            Philox4x32(key0: 0xa409_3822, key1: 0x299f_31d0).block(0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344),
            SIMD4(0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1))
    }

    func testNormalFillIsSliceableAndNormal() {
        let rng = Philox4x32(seed: 42, stream: stableHash("w"))
        var whole = [Float](repeating: 0, count: 10_000)
        whole.withUnsafeMutableBufferPointer { rng.fillNormal($0, start: 0, mean: 0, std: 2) }
        var part = [Float](repeating: 0, count: 333)
        part.withUnsafeMutableBufferPointer { rng.fillNormal($0, start: 4321, mean: 0, std: 2) }
        XCTAssertEqual(Array(whole[4321..<4654]), part, "any slice must equal the same slice of the whole tensor")
        let mean = whole.reduce(0, +) / Float(whole.count)
        let std = (whole.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Float(whole.count)).squareRoot()
        XCTAssertEqual(mean, 0, accuracy: 0.06)
        XCTAssertEqual(std, 2, accuracy: 0.05)
    }

    func testSIMDExpMatchesLibm() {
        var worst: Double = 0
        var x: Float = -87
        while x < 88 {
            let ours = Double(scalarExp(x)), ref = exp(Double(x))
            worst = max(worst, abs(ours - ref) / ref)
            x += 0.0137
        }
        XCTAssertLessThan(worst, 4e-7)
        XCTAssertEqual(scalarExp(-.infinity), 0)
        XCTAssertEqual(scalarExp(-200), 0)
        XCTAssertTrue(scalarExp(1000).isFinite)
    }

    func testSGEMMLayouts() {
        let m = 3, n = 4, k = 5
        let a = (0..<(m * k)).map { Float($0) * 0.5 - 2 }, b = (0..<(k * n)).map { Float($0 % 7) - 3 }
        var ref = [Float](repeating: 0, count: m * n)
        for i in 0..<m { for j in 0..<n { for p in 0..<k { ref[i * n + j] += a[i * k + p] * b[p * n + j] } } }
        var c = [Float](repeating: 0, count: m * n)
        BLAS.sgemm(m: m, n: n, k: k, a: a, lda: k, b: b, ldb: n, c: &c, ldc: n)
        XCTAssertEqual(c, ref)
        // B given transposed ([n, k]) must give the same product.
        var bt = [Float](repeating: 0, count: n * k)
        for p in 0..<k { for j in 0..<n { bt[j * k + p] = b[p * n + j] } }
        var c2 = [Float](repeating: 0, count: m * n)
        BLAS.sgemm(transB: true, m: m, n: n, k: k, a: a, lda: k, b: bt, ldb: k, c: &c2, ldc: n)
        XCTAssertEqual(c2, ref)
    }

    func testParallelTasksRunsEveryTaskOnceOnAWorkerOfTheBudget() {
        let order = [5, 2, 7, 0, 1, 6, 3, 4]
        let lock = NSLock()
        for threads in [1, 2, 3] {
            ThreadBudget.configure(threads: threads)
            var seen: [(worker: Int, task: Int)] = []
            ThreadBudget.parallelTasks(order.count, order: order) { worker, task in
                lock.lock(); seen.append((worker, task)); lock.unlock()
            }
            XCTAssertEqual(seen.map(\.task).sorted(), Array(0..<8), "threads \(threads)")
            XCTAssertTrue(seen.allSatisfy { (0..<threads).contains($0.worker) }, "threads \(threads)")
            // One worker takes the tasks in the given order.
            if threads == 1 { XCTAssertEqual(seen.map(\.task), order) }
            var plain: [Int] = []
            ThreadBudget.parallelTasks(3) { _, task in
                lock.lock(); plain.append(task); lock.unlock()
            }
            XCTAssertEqual(plain.sorted(), [0, 1, 2])
        }
        ThreadBudget.configure(threads: 1)
    }

    func testSumOfSquaresIndependentOfThreads() {
        let x = (0..<300_001).map { Float(sin(Double($0))) }
        ThreadBudget.configure(threads: 1)
        let one = x.withUnsafeBufferPointer { Kernels.sumOfSquares($0.baseAddress!, count: x.count) }
        ThreadBudget.configure(threads: 2)
        let two = x.withUnsafeBufferPointer { Kernels.sumOfSquares($0.baseAddress!, count: x.count) }
        XCTAssertEqual(one, two)
        XCTAssertEqual(one, x.reduce(0.0) { $0 + Double($1) * Double($1) }, accuracy: 1e-6 * one)
    }
}

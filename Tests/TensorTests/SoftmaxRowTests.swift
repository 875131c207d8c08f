// SoftmaxRowTests.swift — Kernels.softmaxExpRow (CBF16's softmaxrows.c, the attention core's
// exponential pass) against simdExp element by element, bit for bit, in its AVX-512 and its
// portable loop: random rows of every tail length, with zeros before `first` and after `valid`,
// and the edge arguments (−∞, NaN, the −87 underflow edge, above 88, the denormal results just
// above it); the returned sum against a Double sum. Kernels.rowMax against the plain maximum.
import Tensor
import XCTest

final class SoftmaxRowTests: XCTestCase {
    override func tearDown() { Kernels.forcePortableSoftmaxRows(false) }

    func testExpRowEqualsSimdExpBitForBit() {
        var random = SystemRandomNumberGenerator()
        let edges: [Float] = [
            -.infinity, .nan, -87.0, -86.99999, -87.00001, -86.5, -100, 88, 88.5, 1e30, 0, -0.0, 1e-30, -1e-30,
            Float.leastNormalMagnitude, 0.34657359, -0.34657359, 3.5, -20.25,
        ]
        for portable in [false, true] {
            Kernels.forcePortableSoftmaxRows(portable)
            for width in [1, 7, 16, 17, 33, 64, 100, 515] {
                for _ in 0..<8 {
                    let first = Int.random(in: 0...min(width - 1, 20), using: &random)
                    let valid = Int.random(in: first...width, using: &random)
                    let scale = Float.random(in: 0.05...2, using: &random)
                    let shift = Float.random(in: -3...3, using: &random)
                    var row = (0..<width).map { _ in Float.random(in: -60...40, using: &random) }
                    for (i, e) in edges.enumerated() where first + i < valid && Bool.random(using: &random) {
                        row[first + i] = (e + shift) / scale
                    }
                    let source = row
                    let sum = row.withUnsafeMutableBufferPointer {
                        Kernels.softmaxExpRow(
                            $0.baseAddress!, from: first, valid: valid, width: width, scale: scale, shift: shift)
                    }
                    var exact = 0.0
                    for j in 0..<width {
                        let expected = first <= j && j < valid ? scalarExp(source[j] * scale - shift) : 0
                        if expected.isFinite { exact += Double(expected) }
                        let same = expected.isNaN ? row[j].isNaN : expected.bitPattern == row[j].bitPattern
                        guard same else {
                            return XCTFail(
                                "portable \(portable), width \(width): element \(j) (argument "
                                    + "\(source[j] * scale - shift)) gave \(row[j]), simdExp \(expected)")
                        }
                    }
                    if sum.isFinite && exact > 0 {
                        XCTAssertLessThan(abs(Double(sum) - exact) / exact, 1e-5, "portable \(portable), sum")
                    }
                }
            }
        }
    }

    func testRowMax() {
        for portable in [false, true] {
            Kernels.forcePortableSoftmaxRows(portable)
            let row: [Float] = (0..<77).map { Float(($0 * 37) % 101) - 50 }
            for (first, valid) in [(0, 77), (3, 20), (16, 17), (5, 5), (40, 77)] {
                let expected = valid > first ? row[first..<valid].max()! : -Float.infinity
                XCTAssertEqual(Kernels.rowMax(row, from: first, valid: valid), expected, "\(first)..<\(valid)")
            }
        }
    }
}

// LossComparison.swift — comparing loss curves and tensors the way every equivalence test here
// needs: lengths checked first (a short or empty run can never pass by zipping nothing), then every
// element within a relative tolerance (0: bitwise), with the worst element named on failure.
import XCTest

/// max over i of |a[i] − b[i]| / |b[i]| (0 when both are 0); infinity when the lengths differ.
public func maxRelativeDifference(_ a: [Double], _ b: [Double]) -> Double {
    guard a.count == b.count else { return .infinity }
    return zip(a, b).reduce(0.0) { worst, pair in
        let (x, y) = pair
        if x == y { return worst }
        return max(worst, abs(x - y) / max(abs(y), .leastNonzeroMagnitude))
    }
}

/// Asserts that `actual` and `expected` both hold exactly `count` values and that every value of
/// `actual` is within `relativeTolerance` of `expected` (0: bitwise equal).
public func assertLossesMatch(
    _ actual: [Double], _ expected: [Double], count: Int, relativeTolerance: Double, _ what: String,
    file: StaticString = #filePath, line: UInt = #line
) {
    XCTAssertEqual(
        expected.count, count, "\(what): the reference has \(expected.count) values, expected \(count)", file: file,
        line: line)
    XCTAssertEqual(actual.count, count, "\(what): \(actual.count) values, expected \(count)", file: file, line: line)
    guard actual.count == count, expected.count == count else { return }
    for (i, (a, e)) in zip(actual, expected).enumerated() {
        if relativeTolerance == 0 {
            XCTAssertEqual(a, e, "\(what): value \(i + 1) differs (bitwise expected)", file: file, line: line)
        } else {
            XCTAssertEqual(
                a, e, accuracy: relativeTolerance * abs(e), "\(what): value \(i + 1)", file: file, line: line)
        }
    }
}

/// max |a − b| ≤ tolerance · max |b| over two tensors of `b.count` elements (and max |b| > 0, so a
/// tensor of zeros cannot pass vacuously unless `allowZero`).
public func assertTensorsClose(
    _ a: UnsafePointer<Float>, _ b: [Float], tolerance: Float, _ what: String, allowZero: Bool = false,
    file: StaticString = #filePath, line: UInt = #line
) {
    var maxRef: Float = 0, maxDiff: Float = 0
    for i in 0..<b.count { maxRef = max(maxRef, abs(b[i])); maxDiff = max(maxDiff, abs(a[i] - b[i])) }
    if !allowZero { XCTAssertGreaterThan(maxRef, 0, "\(what): the reference is all zeros", file: file, line: line) }
    XCTAssertLessThanOrEqual(
        maxDiff, tolerance * max(maxRef, 1e-6), "\(what): max diff \(maxDiff), max |ref| \(maxRef)", file: file,
        line: line)
}

// LossScalerTests.swift — Megatron's DynamicGradScaler rules: an overflow backs off only after
// `hysteresis` of them (then at every further one, as the tracker is not reset), never below the
// minimum; `growthInterval` clean steps in a row double the scale and restore the hysteresis.
import MegatronCore
import XCTest

final class LossScalerTests: XCTestCase {
    func testDynamicScalerBacksOffAndGrows() {
        var s = LossScaler.dynamic(initialScale: 1024, minScale: 128, growthInterval: 3, hysteresis: 2)
        s.update(foundOverflow: true)
        XCTAssertEqual(s.scale, 1024, "the first overflow is absorbed by hysteresis 2")
        s.update(foundOverflow: true)
        XCTAssertEqual(s.scale, 512)
        s.update(foundOverflow: true)
        XCTAssertEqual(s.scale, 256, "the hysteresis tracker is not reset by a backoff")
        s.update(foundOverflow: true); s.update(foundOverflow: true)
        XCTAssertEqual(s.scale, 128, "never below min_loss_scale")
        s.update(foundOverflow: false); s.update(foundOverflow: false)
        XCTAssertEqual(s.scale, 128)
        s.update(foundOverflow: true)
        XCTAssertEqual(s.growthTracker, 0, "an overflow restarts the growth window")
        for _ in 0..<3 { s.update(foundOverflow: false) }
        XCTAssertEqual(s.scale, 256, "three clean steps in a row double the scale")
        XCTAssertEqual(s.hysteresisTracker, 2)
        s.update(foundOverflow: true)
        XCTAssertEqual(s.scale, 256, "hysteresis restored by growth")
    }

    func testConstantScalerNeverChanges() {
        var s = LossScaler.constant(4096)
        s.update(foundOverflow: true); s.update(foundOverflow: false)
        XCTAssertEqual(s.scale, 4096)
    }
}

// CorruptionSweepTests.swift — scripts/corruption_sweep.sh at a CI-sized count: random one-bit
// flips in a real checkpoint's HDF5 metadata are each refused with an error or harmless; none loads
// other weights or another config silently. (The README's figure is the script's default 300 flips.)
import Foundation
import TestSupport
import XCTest

final class CorruptionSweepTests: XCTestCase {
    func testMetadataFlipsNeverLoadSilentlyWrong() throws {
        let dir = CLI.scratch("corruption-sweep")
        let r = try CLI.run(
            [
                CLI.repoRoot.appendingPathComponent("scripts/corruption_sweep.sh").path,
                dir.appendingPathComponent("out").path,
            ],
            in: dir, program: "/bin/bash", environment: ["FLIPS": "60", "SEED": "7"])
        XCTAssertEqual(r.code, 0, r.stdout + r.stderr)
        XCTAssertTrue(r.stdout.contains("60 metadata flips:"), r.stdout)
        XCTAssertTrue(r.stdout.contains(", 0 silent wrong loads"), r.stdout)
        XCTAssertFalse(r.stdout.contains("SILENT WRONG LOAD"), r.stdout)
    }
}

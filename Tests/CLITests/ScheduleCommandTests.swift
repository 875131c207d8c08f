// ScheduleCommandTests.swift — `megatron schedule` prints every rank's timeline, the bubble against
// theory, and writes a Chrome trace that parses and covers every rank; invalid (p, v, m) exit 2.
import Foundation
import TestSupport
import XCTest

final class ScheduleCommandTests: XCTestCase {
    func testInterleavedScheduleTimelineAndTrace() throws {
        let dir = CLI.scratch("schedule")
        let r = try CLI.run(
            [
                "schedule", "--pipeline-model-parallel-size", "4", "--num-layers-per-virtual-pipeline-stage", "1",
                "--num-layers", "8", "--num-microbatches", "8", "--trace", "s.json",
            ], in: dir)
        XCTAssertEqual(r.code, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("interleaved schedule: p = 4, v = 2, m = 8"), r.stdout)
        for rank in 0..<4 { XCTAssertTrue(r.stdout.contains("rank \(rank)  "), "no row for rank \(rank)") }
        XCTAssertTrue(r.stdout.contains("bubble: 0.1875 of the ideal time (theory (p−1)/(v·m) = 0.1875)"), r.stdout)
        let trace =
            try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("s.json")))
            as? [String: Any]
        let events = try XCTUnwrap(trace?["traceEvents"] as? [[String: Any]])
        let computes = events.filter { ($0["cat"] as? String) == "forward" || ($0["cat"] as? String) == "backward" }
        XCTAssertEqual(computes.count, 4 * 2 * 8 * 2, "a forward and a backward per rank, chunk and micro-batch")
        XCTAssertEqual(Set(computes.compactMap { $0["tid"] as? Int }), [0, 1, 2, 3])
    }

    func testInvalidMicrobatchCountIsAConfigError() throws {
        let r = try CLI.run(
            [
                "schedule", "--pipeline-model-parallel-size", "4", "--num-virtual-stages-per-pipeline-rank", "2",
                "--num-microbatches", "6",
            ], in: CLI.scratch("schedule-bad"))
        XCTAssertEqual(r.code, 2)
        XCTAssertTrue(r.stderr.contains("multiple of pipeline_model_parallel_size 4"), r.stderr)
    }
}

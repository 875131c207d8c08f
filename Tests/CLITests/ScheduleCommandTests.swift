// ScheduleCommandTests.swift — `megatron schedule` prints every rank's timeline, the bubble against
// theory (ZB-H1 against 1F1B on the same costs), and writes a Chrome trace that parses and covers
// every rank (ZB-H1's W passes as their own category); invalid (p, v, m) and schedules exit 2.
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
        let trace = try CLI.jsonObject(dir.appendingPathComponent("s.json"))
        let events = try XCTUnwrap(trace["traceEvents"] as? [[String: Any]])
        let computes = events.filter { ($0["cat"] as? String) == "forward" || ($0["cat"] as? String) == "backward" }
        XCTAssertEqual(computes.count, 4 * 2 * 8 * 2, "a forward and a backward per rank, chunk and micro-batch")
        XCTAssertEqual(Set(computes.compactMap { $0["tid"] as? Int }), [0, 1, 2, 3])
    }

    func testZeroBubbleScheduleAgainstOneFOneB() throws {
        let dir = CLI.scratch("schedule-zb")
        let r = try CLI.run(
            [
                "schedule", "--pipeline-model-parallel-size", "4", "--num-microbatches", "8", "--pipeline-schedule",
                "zb-h1", "--trace", "zb.json",
            ], in: dir)
        XCTAssertEqual(r.code, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("zb-h1 schedule: p = 4, v = 1, m = 8"), r.stdout)
        // ZB-H1's bubble (p − 1)/(3m) = 0.125 against 1F1B's 0.375 on the same unit costs; 1F1B's memory on rank 0.
        XCTAssertTrue(
            r.stdout.contains("bubble: 0.1250 of the ideal time (1F1B on the same costs: 0.3750, ratio 0.33)"), r.stdout
        )
        XCTAssertTrue(
            r.stdout.contains("peak in-flight micro-batches per rank: 4, 4, 4, 4 (1F1B: 4, 3, 2, 1)"), r.stdout)
        XCTAssertTrue(r.stdout.contains("W7"), "the timeline shows the weight passes:\n\(r.stdout)")
        let trace = try CLI.jsonObject(dir.appendingPathComponent("zb.json"))
        let events = try XCTUnwrap(trace["traceEvents"] as? [[String: Any]])
        for category in ["forward", "backward", "weight"] {
            XCTAssertEqual(events.filter { ($0["cat"] as? String) == category }.count, 4 * 8, category)
        }
        let bad = try CLI.run(
            ["schedule", "--pipeline-model-parallel-size", "4", "--pipeline-schedule", "zb-h2"], in: dir)
        XCTAssertEqual(bad.code, 2)
        XCTAssertTrue(bad.stderr.contains("pipeline_schedule") && bad.stderr.contains("zb-h1"), bad.stderr)
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

    /// Counts too large to draw are refused by name at once — not a hang, an allocation failure or an
    /// arithmetic trap.
    func testHugeCountsAreRefusedByName() throws {
        let dir = CLI.scratch("schedule-huge")
        let huge = "\(1 << 62)"
        for (flags, words) in [
            (["--pipeline-model-parallel-size", huge], "'pipeline_model_parallel_size' = \(huge)"),
            (["--num-microbatches", huge], "'num_microbatches' = \(huge)"),
            (["--num-virtual-stages-per-pipeline-rank", huge], "'num_virtual_stages_per_pipeline_rank'"),
            (["--num-layers", huge, "--num-layers-per-virtual-pipeline-stage", "1"], "'num_layers' = \(huge)"),
            (["--pipeline-model-parallel-size", "100000", "--num-microbatches", "100000"], "at most 10000000"),
        ] {
            let r = try CLI.run(["schedule"] + flags, in: dir)
            XCTAssertEqual(r.code, 2, "\(flags): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains(words), "\(flags): \(r.stderr)")
        }
    }
}

// TraceTests.swift — `trace_dir` files load together: each rank's file uses its global rank as the
// process id (so no two files collide), names the process by its (tp, pp, dp) place, and holds
// iteration, evaluation and checkpoint markers, the optimizer, and every tensor- and data-parallel
// collective as a span, under stable category names.
import Foundation
import TestSupport
import XCTest

final class TraceTests: XCTestCase {
    func testEveryRankIsItsOwnProcessWithMarkersAndCollectives() throws {
        let dir = CLI.scratch("traces")
        let r = try CLI.mpirun(
            ranks: 4,
            [
                "train", "--config", CLI.config("gpt2-tiny.json"), "--train-iters", "4", "--tensor-model-parallel-size",
                "2", "--eval-interval", "2", "--eval-iters", "1", "--save", "ckpt", "--save-interval", "2",
                "--trace-dir", "traces", "--num-threads", "1",
            ], in: dir)
        XCTAssertEqual(r.code, 0, r.stderr)
        var processNames: [String] = []
        for rank in 0..<4 {
            let trace = try XCTUnwrap(
                JSONSerialization.jsonObject(
                    with: Data(contentsOf: dir.appendingPathComponent("traces/rank_\(rank).json")))
                    as? [String: Any])
            let events = try XCTUnwrap(trace["traceEvents"] as? [[String: Any]])
            XCTAssertEqual(
                Set(events.compactMap { $0["pid"] as? Int }), [rank], "rank \(rank)'s events use pid \(rank)")
            let name = events.first { $0["name"] as? String == "process_name" }
            processNames.append(((name?["args"] as? [String: Any])?["name"] as? String) ?? "")
            var count: [String: Int] = [:]
            for e in events where e["ph"] as? String == "X" { count[e["cat"] as? String ?? "", default: 0] += 1 }
            XCTAssertEqual(count["iteration"], 4, "rank \(rank): \(count)")
            XCTAssertEqual(count["evaluation"], 2)
            XCTAssertEqual(count["checkpoint"], 2)
            XCTAssertEqual(count["optimizer"], 4)
            XCTAssertGreaterThan(count["tensor-parallel"] ?? 0, 4 * 8, "every layer's all-reduces are spans")
            XCTAssertGreaterThan(count["data-parallel"] ?? 0, 0)
            let threads = events.filter { $0["name"] as? String == "thread_name" }
            XCTAssertEqual(threads.count, 4, "compute, transfers, collectives, markers")
        }
        // The grid is tp fastest, then dp (Megatron's order).
        XCTAssertEqual(
            processNames,
            [
                "rank 0 (tp 0, pp 0, dp 0)", "rank 1 (tp 1, pp 0, dp 0)", "rank 2 (tp 0, pp 0, dp 1)",
                "rank 3 (tp 1, pp 0, dp 1)",
            ])
    }
}

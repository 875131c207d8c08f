// IdleWaitTests.swift — `idle_wait` changes how a rank waits for its peers (spinning in MPI, or
// polling non-blocking operations with short sleeps so a waiting rank leaves its core), never what
// the waits deliver: under `mpirun`, four ranks on tensor × pipeline, pipeline × data with the
// distributed optimizer (a four-rank gradient norm) and tensor = 4 give bit for bit the losses and
// gradient norms with either setting. A tensor group of 3 sums its activations' partial sums in
// another order under MPI's non-blocking all-reduce than under the blocking one: the same to fp32
// rounding, not bit for bit. `auto` sleeps where the node's ranks want more threads than it has
// cores and says so in the start-up line; `spin` does not. A value outside the three is refused with
// the key named.
import Foundation
import TestSupport
import XCTest

final class IdleWaitTests: XCTestCase {
    private func run(_ name: String, ranks: Int = 4, _ args: [String], in dir: URL) throws -> (
        log: String, lines: [[String: Any]]
    ) {
        let r = try CLI.mpirun(ranks: ranks, args + ["--metrics-file", "\(name).jsonl"], in: dir)
        XCTAssertEqual(r.code, 0, "\(name): \(r.stderr)")
        return (r.stdout, try CLI.jsonLines(dir.appendingPathComponent("\(name).jsonl")))
    }

    func testSleepingAndSpinningWaitsTrainBitForBitTheSame() throws {
        let dir = CLI.scratch("idle-wait")
        let common = [
            "train", "--config", CLI.config("gpt2-tiny.json"), "--train-iters", "6", "--eval-iters", "0",
            "--micro-batch-size", "2", "--global-batch-size", "8", "--num-layers", "4", "--num-threads", "1",
        ]
        let grids: [(String, [String])] = [
            ("t2p2", ["--tensor-model-parallel-size", "2", "--pipeline-model-parallel-size", "2"]),
            ("p2d2", ["--pipeline-model-parallel-size", "2", "--use-distributed-optimizer"]),
            ("t4", ["--tensor-model-parallel-size", "4"]),
        ]
        for (name, grid) in grids {
            let spin = try run("\(name)-spin", common + grid + ["--idle-wait", "spin"], in: dir)
            let sleep = try run("\(name)-sleep", common + grid + ["--idle-wait", "sleep"], in: dir)
            XCTAssertFalse(spin.log.contains("waits sleep between polls"), spin.log)
            XCTAssertTrue(sleep.log.contains("1 thread(s) per rank (waits sleep between polls)"), sleep.log)
            XCTAssertEqual(spin.lines.count, 6, name)
            XCTAssertEqual(sleep.lines.count, 6, name)
            for (i, (a, b)) in zip(spin.lines, sleep.lines).enumerated() {
                for key in ["lm_loss", "grad_norm"] {
                    let u = try XCTUnwrap(a[key] as? Double, "\(name): no \(key) at line \(i)")
                    XCTAssertEqual(u, b[key] as? Double, "\(name): \(key) at line \(i) differs")
                }
            }
        }
        // t = 3 (6 heads of 16): the same to fp32 rounding.
        let three = [
            "train", "--config", CLI.config("gpt2-tiny.json"), "--train-iters", "4", "--eval-iters", "0",
            "--micro-batch-size", "2", "--global-batch-size", "6", "--num-layers", "2", "--hidden-size", "96",
            "--num-attention-heads", "6", "--num-threads", "1", "--tensor-model-parallel-size", "3",
        ]
        let spin3 = try run("t3-spin", ranks: 3, three + ["--idle-wait", "spin"], in: dir).lines
        let sleep3 = try run("t3-sleep", ranks: 3, three + ["--idle-wait", "sleep"], in: dir).lines
        XCTAssertEqual(spin3.count, 4)
        XCTAssertEqual(sleep3.count, 4)
        for (i, (a, b)) in zip(spin3, sleep3).enumerated() {
            let u = try XCTUnwrap(a["lm_loss"] as? Double), v = try XCTUnwrap(b["lm_loss"] as? Double)
            XCTAssertEqual(u, v, accuracy: 1e-6 * abs(u), "t = 3: lm_loss at line \(i)")
        }
        // auto: four ranks of one thread want more than this machine's cores only where it has fewer than 4.
        let auto = try run("auto", common + ["--pipeline-model-parallel-size", "2"], in: dir)
        let oversubscribed = ProcessInfo.processInfo.activeProcessorCount < 4
        XCTAssertEqual(auto.log.contains("(waits sleep between polls)"), oversubscribed, auto.log)
    }

    func testAnUnknownSettingIsRefusedWithTheKeyNamed() throws {
        let dir = CLI.scratch("idle-wait-bad")
        let r = try CLI.run(["train", "--config", CLI.config("gpt2-tiny.json"), "--idle-wait", "sometimes"], in: dir)
        XCTAssertEqual(r.code, 2, r.stderr)
        XCTAssertTrue(r.stderr.contains("idle_wait"), r.stderr)
        XCTAssertTrue(r.stderr.contains("spin"), r.stderr)
    }
}

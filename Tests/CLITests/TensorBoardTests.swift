// TensorBoardTests.swift — `tensorboard_dir` writes event files that TensorBoard's own reader
// (EventAccumulator; the tensorboard package is installed into a venv under .build when missing,
// and the test skips with the reason when that fails) reads back with Megatron's tags, steps and
// values equal to the metrics file: training scalars at every iteration and vs samples, validation
// loss and perplexity; written by the last rank only under mpirun; a resumed run continues the
// same curves from a new file in the same directory.
import Foundation
import TestSupport
import XCTest

final class TensorBoardTests: XCTestCase {
    /// A python3 that imports tensorboard: the system's, or a venv made under .build for the tests.
    func pythonWithTensorBoard() throws -> String {
        if (try? CLI.run(["python3", "-c", "import tensorboard"], in: CLI.repoRoot, program: "/usr/bin/env"))?.code == 0
        {
            return "python3"
        }
        let venv = CLI.repoRoot.appendingPathComponent(".build/test-venv")
        let python = venv.appendingPathComponent("bin/python").path
        if (try? CLI.run(["-c", "import tensorboard"], in: CLI.repoRoot, program: python))?.code == 0 { return python }
        let make = try CLI.run(
            ["python3", "-m", "venv", "--system-site-packages", venv.path], in: CLI.repoRoot, program: "/usr/bin/env")
        let install = try CLI.run(["-m", "pip", "install", "-q", "tensorboard"], in: CLI.repoRoot, program: python)
        guard make.code == 0, install.code == 0 else {
            throw XCTSkip("cannot install the tensorboard package (pip): \(make.stderr) \(install.stderr)")
        }
        return python
    }

    func readEvents(_ dir: URL, python: String) throws -> [String: Any] {
        let script = CLI.repoRoot.appendingPathComponent("Tests/Scripts/read_tensorboard.py").path
        let r = try CLI.run([python, script, dir.path], in: dir, program: "/usr/bin/env")
        XCTAssertEqual(r.code, 0, r.stderr)
        let line = try XCTUnwrap(r.stdout.split(separator: "\n").last)
        return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
    }

    func series(_ events: [String: Any], _ tag: String) -> [(step: Int, value: Double)] {
        ((events[tag] as? [[Double]]) ?? []).map { (Int($0[0]), $0[1]) }
    }

    func testEventFilesHoldMegatronsScalarsAndResumeContinuesThem() throws {
        let python = try pythonWithTensorBoard()
        let dir = CLI.scratch("tensorboard")
        let common = [
            "train", "--config", CLI.config("gpt2-tiny.json"), "--eval-interval", "10", "--eval-iters", "2",
            "--log-interval", "10", "--tensorboard-dir", "tb", "--log-validation-ppl-to-tensorboard",
            "--log-timers-to-tensorboard", "--metrics-file", "metrics.jsonl", "--save", "ckpt", "--save-interval", "10",
            "--num-threads", "1",
        ]
        // Two pipeline stages: only the last rank writes.
        let first = try CLI.mpirun(
            ranks: 2, common + ["--train-iters", "20", "--pipeline-model-parallel-size", "2"], in: dir)
        XCTAssertEqual(first.code, 0, first.stderr)
        XCTAssertTrue(first.stdout.contains("(world rank 1)"), "the last rank writes: \(first.stdout)")
        let resumed = try CLI.run(
            common + ["--train-iters", "30", "--load", "ckpt", "--override-opt-param-scheduler"], in: dir)
        XCTAssertEqual(resumed.code, 0, resumed.stderr)
        let events = try readEvents(dir.appendingPathComponent("tb"), python: python)
        XCTAssertEqual((events["files"] as? [String])?.count, 2, "one event file per run")
        let metrics = try CLI.jsonLines(dir.appendingPathComponent("metrics.jsonl"))
        XCTAssertEqual(metrics.count, 30)
        let loss = series(events, "lm loss")
        guard metrics.count == 30, loss.count == 30 else {
            return XCTFail("\(loss.count) lm loss events and \(metrics.count) metrics lines, 30 expected")
        }
        XCTAssertEqual(loss.map(\.step), Array(1...30), "every iteration of both runs, in order")
        for (point, line) in zip(loss, metrics) {
            let want = try XCTUnwrap(line["lm_loss"] as? Double)
            XCTAssertEqual(point.value, want, accuracy: 1e-6 * abs(want), "lm loss at \(point.step)")
        }
        let samples = metrics.map { $0["consumed_samples"] as! Int }
        XCTAssertEqual(series(events, "lm loss vs samples").map(\.step), samples)
        XCTAssertEqual(
            series(events, "learning-rate").map(\.value).last ?? -1, metrics.last?["lr"] as? Double ?? 0, accuracy: 1e-9
        )
        XCTAssertEqual(series(events, "grad-norm").count, 30)
        XCTAssertEqual(series(events, "batch-size").first?.value, 16)
        XCTAssertEqual(series(events, "loss-scale").count, 30)
        XCTAssertEqual(series(events, "iteration-time").count, 30)
        XCTAssertEqual(series(events, "samples vs steps").map(\.value).map(Int.init), samples)
        let valid = series(events, "lm loss validation")
        XCTAssertEqual(valid.map(\.step), [10, 20, 30])
        let validMetrics = metrics.compactMap { $0["valid_lm_loss"] as? Double }
        XCTAssertEqual(validMetrics.count, 3)
        for (point, want) in zip(valid, validMetrics) { XCTAssertEqual(point.value, want, accuracy: 1e-6 * want) }
        let ppl = series(events, "lm loss validation ppl")
        guard valid.count == 3, validMetrics.count == 3, ppl.count == 3 else {
            return XCTFail("validations: \(valid.count) events, \(validMetrics.count) in metrics, \(ppl.count) ppl")
        }
        for (ppl, want) in zip(ppl, validMetrics) {
            XCTAssertEqual(ppl.value, Foundation.exp(want), accuracy: 1e-5 * Foundation.exp(want))
        }
        XCTAssertNil(events["throughput"], "throughput only with log_throughput")
    }

    func testBadTensorBoardSettingsAreRefused() throws {
        let dir = CLI.scratch("tensorboard-bad")
        try Data().write(to: dir.appendingPathComponent("file"))
        let r = try CLI.run(
            [
                "train", "--config", CLI.config("gpt2-tiny.json"), "--train-iters", "2", "--tensorboard-dir", "file/tb",
            ], in: dir)
        XCTAssertNotEqual(r.code, 0)
        XCTAssertTrue(r.stderr.contains("tensorboard_dir"), r.stderr)
        let interval = try CLI.run(
            ["train", "--config", CLI.config("gpt2-tiny.json"), "--tensorboard-log-interval", "0"], in: dir)
        XCTAssertEqual(interval.code, 2)
        XCTAssertTrue(interval.stderr.contains("tensorboard_log_interval"), interval.stderr)
    }
}

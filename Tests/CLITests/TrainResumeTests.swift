// TrainResumeTests.swift — the issue's exact invocations: 40 iterations of gpt2-tiny with metrics and
// checkpoints at 20 and 40; then, with iteration 40's checkpoint deleted and the pointer moved back
// to 20, `--load` reproduces iterations 21…40 bit for bit. Checkpoints are readable by h5dump.
import Foundation
import TestSupport
import XCTest

final class TrainResumeTests: XCTestCase {
    /// Fields that are a function of the computation (timings excluded).
    static let exactFields = ["iteration", "consumed_samples", "lm_loss", "lr", "grad_norm", "valid_lm_loss"]

    func testTrainCheckpointAndBitwiseResume() throws {
        let dir = CLI.scratch("resume")
        let first = try CLI.run(
            [
                "train", "--config", CLI.config("gpt2-tiny.json"), "--train-iters", "40",
                "--metrics-file", "m.jsonl", "--save", "ckpt", "--save-interval", "20",
            ], in: dir)
        XCTAssertEqual(first.code, 0, first.stderr)
        XCTAssertTrue(first.stdout.contains("iteration       40/      40 | consumed samples:"), first.stdout)
        let lines = try CLI.jsonLines(dir.appendingPathComponent("m.jsonl"))
        XCTAssertEqual(lines.count, 40)
        XCTAssertEqual(lines.map { $0["iteration"] as? Int }, (1...40).map { $0 })
        let losses = lines.compactMap { $0["lm_loss"] as? Double }
        XCTAssertEqual(losses.count, 40)
        let head = losses[0..<5].reduce(0, +) / 5, tail = losses[35..<40].reduce(0, +) / 5
        XCTAssertLessThan(tail, head - 1.0, "lm_loss must fall: first five average \(head), last five \(tail)")
        for key in ["iteration", "lm_loss", "lr", "grad_norm", "step_ms", "tokens_per_s", "tflops"] {
            XCTAssertNotNil(lines[0][key], "metrics line lacks \(key)")
        }

        let ckpt = dir.appendingPathComponent("ckpt")
        let fm = FileManager.default
        for it in ["iter_0000020", "iter_0000040"] {
            XCTAssertTrue(fm.fileExists(atPath: ckpt.appendingPathComponent("\(it)/mp_rank_00_000.h5").path), it)
        }
        XCTAssertEqual(
            try String(contentsOf: ckpt.appendingPathComponent("latest_checkpointed_iteration.txt"), encoding: .utf8),
            "40\n")
        XCTAssertFalse(try fm.contentsOfDirectory(atPath: ckpt.path).contains { $0.hasSuffix(".tmp") })

        // h5dump (hdf5-tools) must read the file and find the checksum filter.
        if let h5dump = ["/usr/bin/h5dump"].first(where: { fm.isExecutableFile(atPath: $0) }) {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: h5dump)
            p.arguments = ["-p", "-H", ckpt.appendingPathComponent("iter_0000020/mp_rank_00_000.h5").path]
            let out = Pipe(); p.standardOutput = out
            try p.run()
            let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            XCTAssertEqual(p.terminationStatus, 0)
            XCTAssertTrue(
                text.contains("FILTER_ID 3") || text.contains("CHECKSUM FLETCHER32"),
                "no Fletcher32 filter in h5dump output")
            XCTAssertTrue(text.contains("embedding.word_embeddings.weight"))
        }

        // Resume from 20.
        try fm.removeItem(at: ckpt.appendingPathComponent("iter_0000040"))
        try "20\n".write(
            to: ckpt.appendingPathComponent("latest_checkpointed_iteration.txt"), atomically: true, encoding: .utf8)
        let second = try CLI.run(
            [
                "train", "--config", CLI.config("gpt2-tiny.json"), "--train-iters", "40",
                "--load", "ckpt", "--metrics-file", "r.jsonl",
            ], in: dir)
        XCTAssertEqual(second.code, 0, second.stderr)
        let resumed = try CLI.jsonLines(dir.appendingPathComponent("r.jsonl"))
        XCTAssertEqual(resumed.map { $0["iteration"] as? Int }, (21...40).map { $0 })
        XCTAssertEqual(lines.count, 40, "the uninterrupted run")
        XCTAssertEqual(resumed.count, 20, "the resumed run")
        guard lines.count == 40, resumed.count == 20 else { return }
        for (a, b) in zip(lines[20...], resumed) {
            for key in Self.exactFields {
                XCTAssertEqual(
                    "\(a[key] ?? "absent")", "\(b[key] ?? "absent")", "\(key) at iteration \(a["iteration"]!)")
            }
        }
    }

    func testSkipTrainEvaluatesACheckpoint() throws {
        let dir = CLI.scratch("skiptrain")
        let train = try CLI.run(
            ["train", "--config", CLI.config("gpt2-tiny.json"), "--train-iters", "10", "--save", "ckpt"], in: dir)
        XCTAssertEqual(train.code, 0, train.stderr)
        let eval = try CLI.run(
            ["train", "--config", CLI.config("gpt2-tiny.json"), "--load", "ckpt", "--skip-train"], in: dir)
        XCTAssertEqual(eval.code, 0, eval.stderr)
        XCTAssertTrue(
            eval.stdout.contains("validation loss at iteration 10 on validation set | lm loss value:"), eval.stdout)
        // The value equals the one printed at the end of training.
        func value(_ s: String) -> String? {
            s.split(separator: "\n").last { $0.contains("lm loss value:") }.map { String($0.split(separator: "|")[1]) }
        }
        XCTAssertEqual(value(train.stdout), value(eval.stdout))
    }
}

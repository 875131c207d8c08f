// LoadDirectoryTests.swift — Megatron's resume idiom `--save ck --load ck`: on a directory with no
// checkpoint yet, training warns and starts from scratch (the same losses as a run without
// --load), saves there, and the next run with the same line resumes. Commands that read a model
// (evaluate, generate) refuse such a directory without --config, naming the key.
import Foundation
import TestSupport
import XCTest

final class LoadDirectoryTests: XCTestCase {
    func testSaveAndLoadTheSameNewDirectory() throws {
        let dir = CLI.scratch("load-new-directory")
        let base = ["train", "--config", CLI.config("gpt2-tiny.json"), "--lr-decay-iters", "20", "--eval-iters", "0"]
        let fresh = try CLI.run(base + ["--train-iters", "10", "--metrics-file", "plain.jsonl"], in: dir)
        XCTAssertEqual(fresh.code, 0, fresh.stderr)
        let first = try CLI.run(
            base + ["--train-iters", "10", "--save", "ck", "--load", "ck", "--metrics-file", "first.jsonl"], in: dir)
        XCTAssertEqual(first.code, 0, first.stderr)
        XCTAssertTrue(first.stdout.contains("WARNING: no checkpoint in ck"), first.stdout)
        XCTAssertEqual(try CLI.losses(dir, "first"), try CLI.losses(dir, "plain"), "from scratch")
        let second = try CLI.run(
            base + ["--train-iters", "20", "--save", "ck", "--load", "ck", "--metrics-file", "second.jsonl"], in: dir)
        XCTAssertEqual(second.code, 0, second.stderr)
        XCTAssertTrue(second.stdout.contains("loaded checkpoint from ck at iteration 10"), second.stdout)
        XCTAssertEqual(try CLI.losses(dir, "second").count, 10)
    }

    func testEvaluateAndGenerateNeedACheckpointOrAConfig() throws {
        let dir = CLI.scratch("load-nothing")
        try FileManager.default.createDirectory(
            at: dir.appendingPathComponent("empty"), withIntermediateDirectories: true)
        for line in [
            ["evaluate", "--task", "wikitext103", "--load", "empty", "--valid-data", "wiki.test.tokens"],
            ["generate", "--load", "empty", "--prompt", "Hello"],
        ] {
            let r = try CLI.run(line, in: dir)
            XCTAssertEqual(r.code, 2, "\(line[0]): \(r.stderr)")
            XCTAssertTrue(
                r.stderr.contains("load") && r.stderr.contains("holds no readable checkpoint with a stored config"),
                "\(line[0]): \(r.stderr)")
        }
    }
}

// SeparateDataPathsTests.swift — Megatron's train_data_path / valid_data_path / test_data_path:
// each file is read whole (training on a separate train path equals data_path with split 100,0,0,
// bitwise); validation reads the valid path (another file gives another loss); the test set is
// evaluated once after training, by the validation's procedure (the same file as valid gives the
// final validation loss exactly); t = 2 equals one rank; and misuse is refused naming the keys.
import Foundation
import TestSupport
import XCTest

final class SeparateDataPathsTests: XCTestCase {
    func testSeparatePathsAreReadWholeAndTheTestSetIsEvaluatedAfterTraining() throws {
        let dir = CLI.scratch("separate-paths")
        let corpora = [
            "train": (0..<300).map {
                "Paragraph \($0): " + String(repeating: "the quick brown fox \($0 % 7). ", count: 3)
            },
            "other": (0..<300).map { "Zeile \($0): " + String(repeating: "qxz \($0 * 7919 % 1000) vwk! ", count: 3) },
        ]
        for (name, paragraphs) in corpora {
            try paragraphs.joined(separator: "\n\n").write(
                to: dir.appendingPathComponent("\(name).txt"), atomically: true, encoding: .utf8)
            let pre = try CLI.run(
                [
                    "preprocess-data", "--input", "\(name).txt", "--tokenizer-type", "ByteLevelTokenizer",
                    "--append-eod", "--output-prefix", name,
                ], in: dir)
            XCTAssertEqual(pre.code, 0, pre.stderr)
        }
        let common = [
            "train", "--config", CLI.config("gpt2-tiny.json"), "--train-iters", "6", "--eval-interval", "3",
            "--eval-iters", "2", "--num-threads", "1",
        ]
        let separate =
            common + [
                "--train-data-path", "train_text_document", "--valid-data-path", "other_text_document",
                "--test-data-path", "other_text_document",
            ]
        let a = try CLI.run(separate + ["--metrics-file", "separate.jsonl"], in: dir)
        XCTAssertEqual(a.code, 0, a.stderr)
        let b = try CLI.run(
            common + ["--data-path", "train_text_document", "--split", "100,0,0", "--metrics-file", "whole.jsonl"],
            in: dir)
        XCTAssertEqual(b.code, 0, b.stderr)
        assertLossesMatch(
            try CLI.losses(dir, "separate"), try CLI.losses(dir, "whole"), count: 6, relativeTolerance: 0,
            "train_data_path read whole = data_path with split 100,0,0")
        // The test set is evaluated once, after iteration 6, on the test file (here the valid file,
        // whose samples it draws in its own order: a loss close to the last validation's, far from
        // the same model's validation loss on the training text).
        let lines = try CLI.jsonLines(dir.appendingPathComponent("separate.jsonl"))
        let lastValid = try XCTUnwrap(lines.last?["valid_lm_loss"] as? Double)
        let testLines = a.stdout.split(separator: "\n").filter { $0.contains("on test set") }
        XCTAssertEqual(testLines.count, 1, a.stdout)
        let testLine = try XCTUnwrap(testLines.first)
        XCTAssertTrue(testLine.contains("validation loss at iteration 6 on test set"), String(testLine))
        let testLoss = try XCTUnwrap(
            testLine.components(separatedBy: "lm loss value: ").last?.split(separator: " ").first.flatMap { Double($0) }
        )
        XCTAssertEqual(testLoss, lastValid, accuracy: 0.05 * lastValid, "test vs validation on the same file")
        XCTAssertTrue(b.stdout.contains("validation loss at") == false, "split 100,0,0 has no validation or test")
        XCTAssertTrue(b.stdout.contains("WARNING: no validation data (split 100,0,0 leaves none)"), b.stdout)
        // Validation reads the file it is given.
        let c = try CLI.run(
            common + [
                "--train-data-path", "train_text_document", "--valid-data-path", "train_text_document",
                "--metrics-file", "same.jsonl",
            ], in: dir)
        XCTAssertEqual(c.code, 0, c.stderr)
        let sameValid = try XCTUnwrap(
            CLI.jsonLines(dir.appendingPathComponent("same.jsonl")).last?["valid_lm_loss"] as? Double)
        XCTAssertGreaterThan(abs(sameValid - lastValid), 0.1, "validation on train vs other: \(sameValid) \(lastValid)")
        XCTAssertGreaterThan(abs(sameValid - testLoss), 0.1, "the test set is the named file, not the training text")
        let t2 = try CLI.mpirun(
            ranks: 2, separate + ["--tensor-model-parallel-size", "2", "--metrics-file", "t2.jsonl"], in: dir)
        XCTAssertEqual(t2.code, 0, t2.stderr)
        assertLossesMatch(
            try CLI.losses(dir, "t2"), try CLI.losses(dir, "separate"), count: 6, relativeTolerance: 1e-5, "t = 2")
        XCTAssertTrue(t2.stdout.contains("on test set"), t2.stdout)

        for (flags, message) in [
            (["--data-path", "train_text_document", "--valid-data-path", "other_text_document"], "not both"),
            (["--valid-data-path", "other_text_document"], "training needs train_data_path too"),
            (["--train-data-path", "train_text_document", "--test-data-path", "missing"], "test_data_path"),
        ] {
            let r = try CLI.run(common + flags, in: dir)
            XCTAssertEqual(r.code, 2, "\(flags)")
            XCTAssertTrue(r.stderr.contains(message), "\(flags): \(r.stderr)")
        }
    }
}

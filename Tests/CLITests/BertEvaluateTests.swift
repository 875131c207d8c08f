// BertEvaluateTests.swift — `megatron evaluate --task mlm` through the real binary: a bert-tiny
// checkpoint's masked-LM and sentence-order loss and accuracy are the same on one rank and on
// t = 2 × p = 2, cover every validation sample, evaluate a whole sentence-split dataset given
// with --valid-data, and the tasks refuse the other model's checkpoints.
import Foundation
import TestSupport
import XCTest

final class BertEvaluateTests: XCTestCase {
    func results(_ dir: URL, _ name: String) throws -> [String: Any] {
        let data = try Data(contentsOf: dir.appendingPathComponent(name))
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    func testMaskedLMEvaluationIsTheSameOnAnyGrid() throws {
        let dir = CLI.scratch("bert-evaluate")
        let train = try CLI.run(
            [
                "train", "--config", CLI.config("bert-tiny.json"), "--train-iters", "30", "--eval-iters", "0", "--save",
                "ck",
            ],
            in: dir)
        XCTAssertEqual(train.code, 0, train.stderr)
        let one = try CLI.run(["evaluate", "--task", "mlm", "--load", "ck", "--results-file", "one.json"], in: dir)
        XCTAssertEqual(one.code, 0, one.stderr)
        XCTAssertTrue(one.stdout.contains("sop accuracy:"), one.stdout)
        let four = try CLI.mpirun(
            ranks: 4,
            [
                "evaluate", "--task", "mlm", "--load", "ck", "--tensor-model-parallel-size", "2",
                "--pipeline-model-parallel-size", "2", "--results-file", "four.json",
            ], in: dir)
        XCTAssertEqual(four.code, 0, four.stderr)
        let a = try results(dir, "one.json"), b = try results(dir, "four.json")
        for key in ["mlm_loss", "sop_loss", "mlm_accuracy", "sop_accuracy"] {
            let x = try XCTUnwrap(a[key] as? Double, key), y = try XCTUnwrap(b[key] as? Double, key)
            XCTAssertEqual(x, y, accuracy: 1e-6 * max(1, abs(x)), key)
        }
        XCTAssertEqual(a["iteration"] as? Int, 30)
        let valid = try XCTUnwrap(a["validation_samples"] as? Int), seen = try XCTUnwrap(a["samples"] as? Int)
        XCTAssertTrue(valid > 0 && seen >= valid && seen < valid + 4, "\(seen) samples for \(valid)")
        XCTAssertLessThan(try XCTUnwrap(a["mlm_loss"] as? Double), 5.0, "trained beyond ln(260) = 5.56")

        // A whole dataset given with --valid-data.
        try BertDataTests.text.write(to: dir.appendingPathComponent("corpus.txt"), atomically: true, encoding: .utf8)
        XCTAssertEqual(
            try CLI.run(
                [
                    "preprocess-data", "--input", "corpus.txt", "--tokenizer-type", "ByteLevelTokenizer",
                    "--split-sentences", "--output-prefix", "data",
                ], in: dir
            ).code, 0)
        let whole = try CLI.run(
            [
                "evaluate", "--task", "mlm", "--load", "ck", "--valid-data", "data_text_sentence", "--results-file",
                "whole.json",
            ], in: dir)
        XCTAssertEqual(whole.code, 0, whole.stderr)
        XCTAssertTrue(whole.stdout.contains("BERT dataset data_text_sentence: 24 documents"), whole.stdout)
        XCTAssertEqual(try results(dir, "whole.json")["valid_data"] as? String, "data_text_sentence")

        // Each task refuses the other model.
        let wrong = try CLI.run(
            ["evaluate", "--task", "wikitext103", "--valid-data", "corpus.txt", "--load", "ck"], in: dir)
        XCTAssertNotEqual(wrong.code, 0)
        XCTAssertTrue(wrong.stderr.contains("--task mlm"), wrong.stderr)
    }
}

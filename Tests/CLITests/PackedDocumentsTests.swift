// PackedDocumentsTests.swift — Megatron's packed-document options (`--eod-mask-loss`,
// `--reset-position-ids`, `--reset-attention-mask`, `--calculate-per-token-loss`) through the built
// binary on a corpus of many short documents: every grid — t = 2 with sequence parallelism, p = 2
// with two virtual stages, t = 2 × p = 2 × d = 2 with the distributed optimizer — gives one rank's
// training and validation losses within 1e-5 and gradient norms within 1e-4, with each
// normalisation; the options change the losses (so they are in effect); and BERT refuses them by name.
import Foundation
import TestSupport
import XCTest

final class PackedDocumentsTests: XCTestCase {
    static let iterations = 12

    func corpus(_ dir: URL) throws {
        // 2,000 documents of 3 to 40 words: a 64-token sample holds several EODs.
        var lines: [String] = []
        for k in 0..<2000 {
            let words = (0..<(3 + k * 7919 % 38)).map { w in
                ["the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog"][(k + w * w) % 8]
            }
            lines.append("{\"text\": \"\(words.joined(separator: " ")).\"}")
        }
        try lines.joined(separator: "\n").write(
            to: dir.appendingPathComponent("docs.jsonl"), atomically: true, encoding: .utf8)
        let pre = try CLI.run(
            [
                "preprocess-data", "--input", "docs.jsonl", "--tokenizer-type", "ByteLevelTokenizer", "--append-eod",
                "--output-prefix", "docs",
            ], in: dir)
        XCTAssertEqual(pre.code, 0, pre.stderr)
    }

    /// A run's training losses, gradient norms (Adam hides a uniformly scaled gradient from the
    /// losses, not from the norm) and validation losses.
    func train(_ name: String, ranks: Int = 1, _ flags: [String], in dir: URL) throws -> (
        train: [Double], norms: [Double], valid: [Double]
    ) {
        let args =
            [
                "train", "--config", CLI.config("gpt2-tiny.json"), "--data-path", "docs_text_document",
                "--train-iters", "\(Self.iterations)", "--micro-batch-size", "2", "--global-batch-size", "8",
                "--eval-interval", "6", "--eval-iters", "2", "--log-interval", "1", "--num-threads", "1",
                "--metrics-file", "\(name).jsonl",
            ] + flags
        let r = ranks == 1 ? try CLI.run(args, in: dir) : try CLI.mpirun(ranks: ranks, args, in: dir)
        XCTAssertEqual(r.code, 0, "\(name): \(r.stderr)")
        let lines = try CLI.jsonLines(dir.appendingPathComponent("\(name).jsonl"))
        return (
            try CLI.losses(dir, name), try CLI.losses(dir, name, key: "grad_norm"),
            lines.compactMap { $0["valid_lm_loss"] as? Double }
        )
    }

    func testEveryGridEqualsOneRankWithPackedDocumentMasks() throws {
        let dir = CLI.scratch("packed-documents")
        try corpus(dir)
        let options = ["--eod-mask-loss", "--reset-position-ids", "--reset-attention-mask"]
        let plain = try train("plain", [], in: dir)
        for perToken in [false, true] {
            let masks = options + (perToken ? ["--calculate-per-token-loss"] : [])
            let tag = perToken ? "per-token" : "per-micro-batch"
            let reference = try train("one-\(tag)", masks, in: dir)
            XCTAssertEqual(reference.train.count, Self.iterations)
            XCTAssertEqual(reference.valid.count, 2, "validation at iterations 6 and 12")
            let moved = zip(reference.train, plain.train).map { abs($0 - $1) / $1 }.max() ?? 0
            XCTAssertGreaterThan(moved, 1e-4, "\(tag): the options must change the losses")
            for (name, ranks, grid) in [
                ("t2sp", 2, ["--tensor-model-parallel-size", "2", "--sequence-parallel"]),
                ("p2v2", 2, ["--pipeline-model-parallel-size", "2", "--num-layers-per-virtual-pipeline-stage", "1"]),
                (
                    "t2p2d2", 8,
                    [
                        "--tensor-model-parallel-size", "2", "--pipeline-model-parallel-size", "2",
                        "--use-distributed-optimizer",
                    ]
                ),
            ] {
                let got = try train("\(name)-\(tag)", ranks: ranks, masks + grid, in: dir)
                assertLossesMatch(
                    got.train, reference.train, count: Self.iterations, relativeTolerance: 1e-5, "\(name) \(tag)")
                assertLossesMatch(
                    got.norms, reference.norms, count: Self.iterations, relativeTolerance: 1e-4,
                    "\(name) \(tag) gradient norm")
                assertLossesMatch(
                    got.valid, reference.valid, count: 2, relativeTolerance: 1e-5, "\(name) \(tag) validation")
            }
        }
        // The two normalisations differ once micro-batches count different numbers of tokens.
        let a = try CLI.losses(dir, "one-per-token"), b = try CLI.losses(dir, "one-per-micro-batch")
        XCTAssertNotEqual(a, b, "calculate_per_token_loss must change the gradient's normalisation")
    }

    func testBERTRefusesThePackedDocumentOptions() throws {
        let dir = CLI.scratch("packed-documents-bert")
        for flag in ["--eod-mask-loss", "--reset-position-ids", "--reset-attention-mask", "--calculate-per-token-loss"]
        {
            let r = try CLI.run(
                ["train", "--config", CLI.config("bert-tiny.json"), "--train-iters", "1", flag], in: dir)
            XCTAssertEqual(r.code, 2, flag)
            let key = String(flag.dropFirst(2)).replacingOccurrences(of: "-", with: "_")
            XCTAssertTrue(r.stderr.contains(key) && r.stderr.contains("BERT"), "\(flag): \(r.stderr)")
        }
    }
}

// BadInputTests.swift — every config rule exits with code 2 and a message naming the key(s), before
// any work; bad files, an unwritable or full checkpoint directory and a diverging run give a clear
// error, a non-zero exit and no half-written checkpoint.
import Foundation
import TestSupport
import XCTest

final class BadInputTests: XCTestCase {
    func write(_ json: String, _ dir: URL) throws -> String {
        let path = dir.appendingPathComponent("c.json").path
        try json.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func expectConfigError(
        _ args: [String], json: String? = nil, mentions: [String], file: StaticString = #filePath, line: UInt = #line
    ) throws {
        let dir = CLI.scratch("cfg")
        var full = ["train"]
        if let json {
            full += ["--config", try write(json, dir)]
        } else {
            full += ["--config", CLI.config("gpt2-tiny.json")]
        }
        let r = try CLI.run(full + args, in: dir)
        XCTAssertEqual(r.code, 2, "exit code; stderr: \(r.stderr)", file: file, line: line)
        for m in mentions {
            XCTAssertTrue(r.stderr.contains(m), "stderr lacks '\(m)': \(r.stderr)", file: file, line: line)
        }
        XCTAssertFalse(r.stdout.contains("iteration"), "no work may start on a config error", file: file, line: line)
    }

    /// A small valid config with `changes` applied (nil removes a key), as JSON text.
    func json(_ changes: [String: Any?] = [:]) -> String {
        var d: [String: Any] = [
            "num_layers": 2, "hidden_size": 32, "num_attention_heads": 4, "seq_length": 16,
            "micro_batch_size": 2, "train_iters": 2, "lr": 0.001,
        ]
        for (k, v) in changes { d[k] = v }
        let data = try! JSONSerialization.data(withJSONObject: d, options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }

    func testUnknownKeySuggestsNearest() throws {
        try expectConfigError(
            [], json: json(["num_layer": 3]), mentions: ["unknown config key 'num_layer'", "did you mean 'num_layers'"])
        try expectConfigError(["--train-iter", "5"], mentions: ["--train-iter", "did you mean '--train-iters'"])
    }

    func testWrongTypeNamesKeyAndType() throws {
        try expectConfigError(
            [], json: json(["eval_iters": "ten"]), mentions: ["'eval_iters'", "must be an integer", "\"ten\""])
        try expectConfigError(
            [], json: json(["hidden_dropout": true]), mentions: ["'hidden_dropout'", "must be a number"])
        try expectConfigError(["--train-iters", "1.5"], mentions: ["'train_iters'", "must be an integer"])
    }

    func testSeqLengthAboveMaxPositionEmbeddings() throws {
        try expectConfigError(
            [], json: json(["max_position_embeddings": 8]),
            mentions: ["'seq_length'", "'max_position_embeddings'", "16", "8"])
    }

    func testGlobalBatchNotAMultipleOfMicroBatch() throws {
        try expectConfigError(
            ["--global-batch-size", "5"], json: json(),
            mentions: ["'global_batch_size'", "'micro_batch_size'", "try global_batch_size 4"])
    }

    func testOtherRules() throws {
        try expectConfigError(
            [], json: json(["num_attention_heads": 5]), mentions: ["'hidden_size'", "'num_attention_heads'"])
        try expectConfigError(["--lr-decay-style", "exp"], json: json(), mentions: ["'lr_decay_style'", "cosine"])
        try expectConfigError(["--save-interval", "5"], json: json(), mentions: ["'save_interval'", "'save'"])
        try expectConfigError([], json: "{\"hidden_size\": 32}", mentions: ["'num_layers' is required"])
        try expectConfigError([], json: "{\"num_layers\": 2, ", mentions: ["not valid JSON"])
    }

    func testMissingConfigFile() throws {
        let dir = CLI.scratch("missing")
        let r = try CLI.run(["train", "--config", "nope/none.json"], in: dir)
        XCTAssertEqual(r.code, 2)
        XCTAssertTrue(r.stderr.contains("nope/none.json") && r.stderr.contains("no such file"), r.stderr)
    }

    func testUnwritableCheckpointDirectoryFailsBeforeTraining() throws {
        let dir = CLI.scratch("unwritable")
        try "x".write(to: dir.appendingPathComponent("afile"), atomically: true, encoding: .utf8)
        let r = try CLI.run(
            ["train", "--config", CLI.config("gpt2-tiny.json"), "--train-iters", "3", "--save", "afile/ckpt"], in: dir)
        XCTAssertNotEqual(r.code, 0)
        XCTAssertTrue(r.stderr.contains("afile/ckpt") && r.stderr.contains("not writable"), r.stderr)
        XCTAssertFalse(r.stdout.contains("iteration        1/"), "training must not start")
    }

    func testFullDiskLeavesNoPartialCheckpoint() throws {
        let dir = CLI.scratch("full")
        // A file-size limit of 64 KiB makes every larger write fail with EFBIG, as a full disk would
        // (PMIx's hash store keeps MPI_Init from needing a larger shared-memory file).
        let r = try CLI.run(
            [
                "train", "--config", CLI.config("gpt2-tiny.json"), "--train-iters", "4", "--save", "ckpt",
                "--save-interval", "2",
            ], in: dir, shellPrefix: "ulimit -f 64; trap '' XFSZ; export PMIX_MCA_gds=hash;")
        XCTAssertEqual(r.code, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("writing checkpoint") && r.stderr.contains("iter_0000002"), r.stderr)
        let entries =
            (try? FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent("ckpt").path)) ?? []
        XCTAssertTrue(entries.filter { $0.hasPrefix("iter_") }.isEmpty, "partial checkpoint left behind: \(entries)")
        XCTAssertFalse(entries.contains("latest_checkpointed_iteration.txt"))
    }

    func testDivergenceIsAClearError() throws {
        let dir = CLI.scratch("nan")
        let r = try CLI.run(
            [
                "train", "--config", CLI.config("gpt2-tiny.json"), "--train-iters", "30", "--lr", "1e4",
                "--min-lr", "1e4", "--clip-grad", "0", "--lr-warmup-iters", "0",
            ], in: dir)
        XCTAssertEqual(r.code, 1, r.stdout + r.stderr)
        XCTAssertTrue(r.stderr.contains("not finite at iteration") && r.stderr.contains("Lower `lr`"), r.stderr)
    }
}

// HostileConfigAndResumeTests.swift — issue 20's silent acceptances, each now a clear error with
// its exact input: a config key given twice, NaN / Infinity literals and 1e999 (named with key,
// line and column); blas_coretype "Bogus", clip_grad inf, num_threads 100000, a global batch of
// 2^32; a checkpoint holding NaN (named tensor); a resume that changes the tokenizer or
// norm_epsilon (named keys). Also: an interrupted save's iter_*.tmp is removed at the next start,
// and checkpoints are written with checksummed HDF5 metadata (a flipped metadata byte is an error).
// Sizes past this machine's memory (hidden 2^20, 2^32 positions, vocabulary padding 2^32 or 2^62,
// 10^9 layers, micro-batch 10^5, a 10^12 vocabulary) are refused by the memory preflight.
import Checkpoint
import Foundation
import TestSupport
import XCTest

final class HostileConfigAndResumeTests: XCTestCase {
    let tiny = ["train", "--config", CLI.config("gpt2-tiny.json"), "--num-threads", "1"]

    func configFile(_ text: String, in dir: URL) throws -> String {
        let url = dir.appendingPathComponent("c-\(UUID().uuidString).json")
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }

    func testConfigJSONDuplicatesAndNonFiniteNumbersAreNamedWithTheirPlace() throws {
        let dir = CLI.scratch("hostile-json")
        let cases: [(String, [String])] = [
            ("{\n  \"lr\": 0.001,\n  \"lr\": 0.002\n}", ["\"lr\" is given twice", "line 3, column 3"]),
            ("{\"lr\": NaN}", ["NaN", "key \"lr\"", "line 1, column 8", "no NaN or Infinity"]),
            ("{\"clip_grad\": -Infinity}", ["-Infinity", "key \"clip_grad\""]),
            ("{\"lr\": 1e999}", ["1e999", "key \"lr\"", "too large"]),
        ]
        for (text, parts) in cases {
            let r = try CLI.run(["train", "--config", try configFile(text, in: dir)], in: dir)
            XCTAssertEqual(r.code, 2, text)
            for part in parts { XCTAssertTrue(r.stderr.contains(part), "\(text): '\(part)' not in \(r.stderr)") }
        }
        // Text inside strings never counts: a data path named "NaN" with a repeated word is fine.
        let fine = try configFile(
            #"{"num_layers": 2, "hidden_size": 32, "num_attention_heads": 2, "seq_length": 16, "micro_batch_size": 2, "train_iters": 1, "lr": 0.001, "data_cache_path": "NaN \"lr\": x"}"#,
            in: dir)
        let ok = try CLI.run(["train", "--config", fine, "--num-threads", "1"], in: dir)
        XCTAssertEqual(ok.code, 0, ok.stderr)
    }

    func testMachineAndBatchValuesThatOnlyWasteAreRefused() throws {
        let dir = CLI.scratch("hostile-values")
        let cases: [([String], [String])] = [
            (["--blas-coretype", "Bogus"], ["blas_coretype", "Bogus", "SkylakeX"]),
            (["--clip-grad", "inf"], ["clip_grad", "finite"]),
            (["--num-threads", "100000"], ["num_threads", "100000"]),
            (["--global-batch-size", "4294967296"], ["global_batch_size", "micro-batches per step"]),
        ]
        for (flags, parts) in cases {
            let r = try CLI.run(tiny + ["--train-iters", "1"] + flags, in: dir)
            XCTAssertEqual(r.code, 2, "\(flags): \(r.stderr)")
            for part in parts { XCTAssertTrue(r.stderr.contains(part), "\(flags): '\(part)' not in \(r.stderr)") }
        }
        let ok = try CLI.run(tiny + ["--train-iters", "1", "--blas-coretype", "haswell"], in: dir)
        XCTAssertEqual(ok.code, 0, "OpenBLAS core names are case-insensitive: \(ok.stderr)")
    }

    /// Sizes that used to abort in the allocator (or trap past Int) are refused by the memory
    /// preflight, before any model memory is touched, with the estimate and what to change.
    func testHugeSizesAreRefusedByTheMemoryPreflight() throws {
        let dir = CLI.scratch("hostile-memory")
        let cases: [[String]] = [
            ["--hidden-size", "1048576", "--num-attention-heads", "16"],
            ["--max-position-embeddings", "4294967296"],
            ["--max-position-embeddings", "4294967296", "--position-embedding-type", "rope"],  // rope's tables
            ["--make-vocab-size-divisible-by", "4294967296"],
            ["--num-layers", "1000000000"],
            ["--micro-batch-size", "100000", "--global-batch-size", "100000"],
            ["--tokenizer-type", "NullTokenizer", "--vocab-size", "1000000000000", "--mock-data", "true"],
        ]
        for flags in cases {
            let r = try CLI.run(tiny + ["--train-iters", "1"] + flags, in: dir)
            XCTAssertEqual(r.code, 2, "\(flags): \(r.stderr)")
            for part in ["this run needs at least", "per rank (parameters", "but the machine has", "hidden_size"] {
                XCTAssertTrue(r.stderr.contains(part), "\(flags): '\(part)' not in \(r.stderr)")
            }
            XCTAssertFalse(r.stderr.contains("Fatal error"), "\(flags): \(r.stderr)")
        }
        // Past 2^50 a count is refused before the preflight, by the first rule, naming it.
        let past = try CLI.run(tiny + ["--train-iters", "1", "--make-vocab-size-divisible-by", "\(1 << 62)"], in: dir)
        XCTAssertEqual(past.code, 2, past.stderr)
        XCTAssertTrue(past.stderr.contains("'make_vocab_size_divisible_by' = \(1 << 62)"), past.stderr)
        XCTAssertTrue(past.stderr.contains("at most 2^50"), past.stderr)
    }

    func testResumeRefusesAChangedFunctionAndStaleTemporariesGo() throws {
        let dir = CLI.scratch("hostile-resume")
        let first = try CLI.run(tiny + ["--train-iters", "2", "--save", "ckpt"], in: dir)
        XCTAssertEqual(first.code, 0, first.stderr)
        let eps = try CLI.run(tiny + ["--train-iters", "4", "--load", "ckpt", "--norm-epsilon", "1e-6"], in: dir)
        XCTAssertNotEqual(eps.code, 0)
        XCTAssertTrue(eps.stderr.contains("norm_epsilon: 1e-05 → 1e-06"), eps.stderr)
        let tok = try CLI.run(
            tiny + [
                "--train-iters", "4", "--load", "ckpt", "--tokenizer-type", "NullTokenizer", "--vocab-size", "257",
                "--mock-data", "true",
            ],
            in: dir)
        XCTAssertNotEqual(tok.code, 0)
        XCTAssertTrue(tok.stderr.contains("tokenizer_type: ByteLevelTokenizer → NullTokenizer"), tok.stderr)
        // An interrupted save's directory is removed (and named) when the next run starts saving.
        try FileManager.default.createDirectory(
            at: dir.appendingPathComponent("ckpt/iter_0000003.tmp"), withIntermediateDirectories: true)
        let resumed = try CLI.run(
            tiny + ["--train-iters", "4", "--load", "ckpt", "--save", "ckpt", "--override-opt-param-scheduler"], in: dir
        )
        XCTAssertEqual(resumed.code, 0, resumed.stderr)
        XCTAssertTrue(resumed.stdout.contains("removed iter_0000003.tmp"), resumed.stdout)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("ckpt/iter_0000003.tmp").path))
    }

    func testNaNWeightsAndFlippedMetadataAreErrors() throws {
        let dir = CLI.scratch("hostile-nan")
        let r = try CLI.run(tiny + ["--train-iters", "1", "--save", "ckpt"], in: dir)
        XCTAssertEqual(r.code, 0, r.stderr)
        let file = dir.appendingPathComponent("ckpt/iter_0000001/mp_rank_00.h5")
        let path =
            FileManager.default.fileExists(atPath: file.path)
            ? file.path : dir.appendingPathComponent("ckpt/iter_0000001/mp_rank_00_000.h5").path
        let original = try Data(contentsOf: URL(fileURLWithPath: path))
        // The superblock is version 3 (HDF5 1.10 format: checksummed metadata).
        XCTAssertEqual(original[8], 3, "superblock version")
        // A NaN in one weight (written with h5py, as a damaged or diverged checkpoint would hold it).
        let copy = dir.appendingPathComponent("nan")
        try FileManager.default.copyItem(at: dir.appendingPathComponent("ckpt"), to: copy)
        let relative = String(path.dropFirst(dir.appendingPathComponent("ckpt").path.count + 1))
        let script = """
            import h5py, sys
            with h5py.File(sys.argv[1], "r+") as f:
                for group in ("optimizer/fp32_from_fp16_params/", "model/"):
                    name = group + "decoder.final_layernorm.weight"
                    if name in f:
                        d = f[name]; v = d[()]; v[0] = float("nan"); d[...] = v
            """
        let py = try CLI.run(
            ["-c", script, copy.appendingPathComponent(relative).path], in: dir, program: "/usr/bin/python3")
        XCTAssertEqual(py.code, 0, py.stderr)
        let nan = try CLI.run(tiny + ["--train-iters", "2", "--load", "nan"], in: dir)
        XCTAssertNotEqual(nan.code, 0)
        XCTAssertTrue(nan.stderr.contains("decoder.final_layernorm.weight holds NaN"), nan.stderr)
        // Flip bytes in the metadata area (the superblock and the root object header with its
        // attributes live in the first 2 KB): a flip is a load error or changes nothing, never a
        // silently different model.
        let reference = try CLI.run(tiny + ["--train-iters", "1", "--load", "ckpt", "--skip-train"], in: dir)
        XCTAssertEqual(reference.code, 0, reference.stderr)
        func validation(_ out: String) -> String {
            out.split(separator: "\n").filter { $0.contains("validation") }.joined()
        }
        var silent = 0
        for offset in stride(from: 40, to: 2048, by: 97) {
            var bytes = original
            bytes[offset] ^= 0x5A
            let flipped = dir.appendingPathComponent("flip")
            try? FileManager.default.removeItem(at: flipped)
            try FileManager.default.copyItem(at: dir.appendingPathComponent("ckpt"), to: flipped)
            try bytes.write(to: flipped.appendingPathComponent(relative))
            let run = try CLI.run(tiny + ["--train-iters", "1", "--load", "flip", "--skip-train"], in: dir)
            if run.code == 0 && validation(run.stdout) != validation(reference.stdout) { silent += 1 }
        }
        XCTAssertEqual(silent, 0, "metadata flips that loaded without an error")
    }
}

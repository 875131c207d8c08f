// PreprocessDataTests.swift — `megatron preprocess-data` and the datasets it writes: the exact
// bytes of a known small file; the files read back by an independent Python reader written from
// the specification (Tests/Scripts/mmidx_reader.py); GPT-2 tokenisation of LAMBADA with 1 and 2
// workers giving the same files; every kind of bad input an error naming the file and line, with
// no output left behind; training reads the data, equal on one rank and two, and loads the
// sample index from the cache on restart; a truncated or corrupt dataset is a clear error.
import Foundation
import TestSupport
import XCTest

final class PreprocessDataTests: XCTestCase {
    var shared: URL? {
        let s = CLI.repoRoot.deletingLastPathComponent().appendingPathComponent("shared/data")
        return FileManager.default.fileExists(atPath: s.path) ? s : nil
    }

    func testKnownFileBytesAndIndependentReader() throws {
        let dir = CLI.scratch("preprocess-bytes")
        try #"{"text": "ab"}\n{"text": ""}\n{"text": "c", "other": 1}\n"#.replacingOccurrences(of: "\\n", with: "\n")
            .write(to: dir.appendingPathComponent("docs.jsonl"), atomically: true, encoding: .utf8)
        let r = try CLI.run(
            [
                "preprocess-data", "--input", "docs.jsonl", "--tokenizer-type", "ByteLevelTokenizer", "--append-eod",
                "--output-prefix", "out",
            ], in: dir)
        XCTAssertEqual(r.code, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("3 documents"), r.stdout)
        // Tokens: [97, 98, 256], (empty document: no sequence), [99, 256] as uint16.
        let bin = try Data(contentsOf: dir.appendingPathComponent("out_text_document.bin"))
        XCTAssertEqual([UInt8](bin), [97, 0, 98, 0, 0, 1, 99, 0, 0, 1])
        let idx = try Data(contentsOf: dir.appendingPathComponent("out_text_document.idx"))
        var expected: [UInt8] = Array("MMIDIDX".utf8) + [0, 0]
        func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { expected += $0 } }
        u64(1); expected.append(8)  // version, dtype uint16
        u64(2); u64(4)  // 2 sequences, 3 documents + 1
        for l: Int32 in [3, 2] { withUnsafeBytes(of: l.littleEndian) { expected += $0 } }
        for p: Int64 in [0, 6] { withUnsafeBytes(of: p.littleEndian) { expected += $0 } }
        for d: Int64 in [0, 1, 1, 2] { withUnsafeBytes(of: d.littleEndian) { expected += $0 } }
        XCTAssertEqual([UInt8](idx), expected)

        let python = try CLI.run(
            [CLI.repoRoot.appendingPathComponent("Tests/Scripts/mmidx_reader.py").path, "out_text_document"],
            in: dir, program: "/usr/bin/python3")
        guard python.code == 0 else { throw XCTSkip("python3 with numpy is not available: \(python.stderr)") }
        let read = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(python.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(read["dtype"] as? String, "uint16")
        XCTAssertEqual(read["documents"] as? [[[Int]]], [[[97, 98, 256]], [], [[99, 256]]])
    }

    func testGPT2WorkersAndIndependentReader() throws {
        guard let shared else { throw XCTSkip("../shared/data is absent; GPT-2 preprocessing not checked") }
        let dir = CLI.scratch("preprocess-gpt2")
        let common = [
            "preprocess-data", "--input", shared.appendingPathComponent("lambada/lambada_test.jsonl").path,
            "--tokenizer-type", "GPT2BPETokenizer", "--vocab-file",
            shared.appendingPathComponent("tokenizers/gpt2/vocab.json").path,
            "--merge-file", shared.appendingPathComponent("tokenizers/gpt2/merges.txt").path, "--append-eod",
        ]
        XCTAssertEqual(try CLI.run(common + ["--output-prefix", "one", "--workers", "1"], in: dir).code, 0)
        XCTAssertEqual(try CLI.run(common + ["--output-prefix", "two", "--workers", "2"], in: dir).code, 0)
        for ext in ["bin", "idx"] {
            XCTAssertEqual(
                try Data(contentsOf: dir.appendingPathComponent("one_text_document.\(ext)")),
                try Data(contentsOf: dir.appendingPathComponent("two_text_document.\(ext)")),
                "workers change nothing (.\(ext))")
        }
        let python = try CLI.run(
            [CLI.repoRoot.appendingPathComponent("Tests/Scripts/mmidx_reader.py").path, "one_text_document"],
            in: dir, program: "/usr/bin/python3")
        guard python.code == 0 else { throw XCTSkip("python3 with numpy is not available: \(python.stderr)") }
        let docs = try XCTUnwrap(
            (try JSONSerialization.jsonObject(with: Data(python.stdout.utf8)) as? [String: Any])?["documents"]
                as? [[[Int]]])
        XCTAssertEqual(docs.count, 5153)
        XCTAssertTrue(
            docs.allSatisfy { $0.count == 1 && $0[0].last == 50256 },
            "one sequence per document, ending in <|endoftext|>")
        XCTAssertEqual(Array(docs[0][0].prefix(6)), [818, 616, 18057, 318, 257, 1598], "\"In my palm is a clear\"")
    }

    func testBadInputIsAClearErrorAndLeavesNothing() throws {
        let dir = CLI.scratch("preprocess-bad")
        let cases: [(String, Data, String)] = [
            (
                "badjson.jsonl", Data("{\"text\": \"ok\"}\n{\"text\": oops}\n".utf8),
                "badjson.jsonl line 2: not valid JSON"
            ),
            (
                "nokey.jsonl", Data("{\"text\": \"ok\"}\n\n{\"body\": \"x\"}\n".utf8),
                "nokey.jsonl line 3: no key 'text'"
            ),
            (
                "utf8.jsonl", Data("{\"text\": \"ok\"}\n{\"text\": \"".utf8) + Data([0xC3, 0x28]) + Data("\"}\n".utf8),
                "utf8.jsonl line 2: invalid UTF-8"
            ),
        ]
        for (name, content, message) in cases {
            try content.write(to: dir.appendingPathComponent(name))
            let r = try CLI.run(
                [
                    "preprocess-data", "--input", name, "--tokenizer-type", "ByteLevelTokenizer", "--output-prefix",
                    "bad",
                ], in: dir)
            XCTAssertEqual(r.code, 1, name)
            XCTAssertTrue(r.stderr.contains(message), "\(name): \(r.stderr)")
            let left = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix("bad_") }
            XCTAssertEqual(left, [], "\(name): nothing written")
        }
        // A vocabulary and merges that do not match.
        try "{\"a\": 0}".write(to: dir.appendingPathComponent("vocab.json"), atomically: true, encoding: .utf8)
        try "#version: 0.2\na b\n".write(
            to: dir.appendingPathComponent("merges.txt"), atomically: true, encoding: .utf8)
        let r = try CLI.run(
            [
                "preprocess-data", "--input", "badjson.jsonl", "--vocab-file", "vocab.json", "--merge-file",
                "merges.txt",
                "--output-prefix", "bad",
            ], in: dir)
        XCTAssertEqual(r.code, 1)
        XCTAssertTrue(r.stderr.contains("vocab.json"), r.stderr)
    }

    func testTrainingReadsTheDatasetOnAnyGridAndCachesTheIndex() throws {
        let dir = CLI.scratch("preprocess-train")
        // Plain text: one document per paragraph.
        let text = (0..<400).map {
            "Paragraph \($0): " + String(repeating: "the quick brown fox \($0 % 7) jumps. ", count: 1 + $0 % 5)
        }.joined(separator: "\n\n")
        try text.write(to: dir.appendingPathComponent("corpus.txt"), atomically: true, encoding: .utf8)
        let pre = try CLI.run(
            [
                "preprocess-data", "--input", "corpus.txt", "--tokenizer-type", "ByteLevelTokenizer", "--append-eod",
                "--output-prefix", "corpus",
            ], in: dir)
        XCTAssertEqual(pre.code, 0, pre.stderr)
        XCTAssertTrue(pre.stdout.contains("400 documents"), pre.stdout)
        let common = [
            "train", "--config", CLI.config("gpt2-tiny.json"), "--data-path", "corpus_text_document", "--split",
            "90,10,0",
            "--train-iters", "10", "--eval-interval", "5", "--eval-iters", "2", "--num-threads", "1",
        ]
        let first = try CLI.run(common + ["--metrics-file", "one.jsonl"], in: dir)
        XCTAssertEqual(first.code, 0, first.stderr)
        XCTAssertTrue(first.stdout.contains("sample index built"), first.stdout)
        let two = try CLI.mpirun(
            ranks: 2, common + ["--tensor-model-parallel-size", "2", "--metrics-file", "two.jsonl"], in: dir)
        XCTAssertEqual(two.code, 0, two.stderr)
        XCTAssertTrue(two.stdout.contains("sample index loaded from the cache"), two.stdout)
        let a = try CLI.jsonLines(dir.appendingPathComponent("one.jsonl"))
        assertLossesMatch(
            try CLI.losses(dir, "two"), try CLI.losses(dir, "one"), count: 10, relativeTolerance: 1e-5,
            "t = 2 vs one rank on the dataset")
        XCTAssertNotNil(a[4]["valid_lm_loss"] as? Double)

        // A truncated .idx and a .bin of the wrong size are errors naming the file.
        let idx = dir.appendingPathComponent("corpus_text_document.idx"),
            bin = dir.appendingPathComponent("corpus_text_document.bin")
        let idxData = try Data(contentsOf: idx), binData = try Data(contentsOf: bin)
        try idxData.prefix(100).write(to: idx)
        var r = try CLI.run(common, in: dir)
        XCTAssertEqual(r.code, 1)
        XCTAssertTrue(r.stderr.contains("corpus_text_document.idx") && r.stderr.contains("truncated"), r.stderr)
        try idxData.write(to: idx)
        try binData.dropLast(2).write(to: bin)
        r = try CLI.run(common, in: dir)
        XCTAssertEqual(r.code, 1)
        XCTAssertTrue(r.stderr.contains("corpus_text_document.bin"), r.stderr)
        r = try CLI.run(common.map { $0 == "corpus_text_document" ? "missing_text_document" : $0 }, in: dir)
        XCTAssertEqual(r.code, 2)
        XCTAssertTrue(r.stderr.contains("missing_text_document.idx") && r.stderr.contains("preprocess-data"), r.stderr)
    }
}

// HuggingFaceTokenizerTests.swift — our HuggingFaceTokenizer against transformers' AutoTokenizer on
// three byte-level BPE tokenizer.json files trained by the `tokenizers` library on Tiny Shakespeare
// (scripts/make_hf_tokenizer_fixture.py, fixtures committed): Llama 3's layout (its Split pattern,
// ignore_merges, added special tokens and a non-special one, BOS by TemplateProcessing), Qwen 2's
// (NFC, one digit per piece) and GPT-2's (ByteLevel regex with a prefix space) — every written
// case's ids and decoded text, and 150 WikiText lines (text from ../shared, skipped without it).
// Then eod and vocabulary size, the LAMBADA continuation, and files refused naming what is not read.
import Foundation
import MegatronCore
import XCTest

final class HuggingFaceTokenizerTests: XCTestCase {
    static let names = ["llama3", "qwen2", "gpt2"]

    static func directory(_ name: String) throws -> URL {
        try XCTUnwrap(Bundle.module.url(forResource: "Fixtures/hf_tokenizer/\(name)", withExtension: nil))
    }

    static func fixture(_ name: String) throws -> [String: Any] {
        let url = try XCTUnwrap(
            Bundle.module.url(forResource: name, withExtension: "json", subdirectory: "Fixtures/hf_tokenizer"))
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
    }

    static func tokenizer(_ name: String) throws -> HuggingFaceTokenizer {
        try HuggingFaceTokenizer(path: directory(name).path)
    }

    func testEveryCaseMatchesTransformers() throws {
        let cases = try Self.fixture("cases")
        for name in Self.names {
            let tok = try Self.tokenizer(name)
            let written = try XCTUnwrap(cases[name] as? [[String: Any]])
            XCTAssertEqual(written.count, 33, name)
            for c in written {
                let text = try XCTUnwrap(c["text"] as? String)
                let ids = try XCTUnwrap(c["ids"] as? [Int]).map(Int32.init)
                XCTAssertEqual(tok.encode(Array(text.utf8)), ids, "\(name): encode \(text.debugDescription)")
                let decoded = String(decoding: tok.decode(ids), as: UTF8.self)
                XCTAssertEqual(decoded, c["decoded"] as? String, "\(name): decode of \(text.debugDescription)")
            }
        }
    }

    func testWikiTextLinesMatchTransformers() throws {
        let lines = try WikiTextLines.lines()
        let fixture = try Self.fixture("wikitext")
        for name in Self.names {
            let tok = try Self.tokenizer(name)
            WikiTextLines.assertEncodes(lines, as: try XCTUnwrap(fixture[name] as? [[Int]]), name, encode: tok.encode)
        }
    }

    func testEodVocabularyAndContinuation() throws {
        let llama3 = try Self.tokenizer("llama3")
        XCTAssertEqual(llama3.vocabSize, 1011)  // 1,000 BPE ids and 11 added tokens
        XCTAssertEqual(llama3.eod, 1001)
        XCTAssertEqual(llama3.eodName, "<|end_of_text|>")
        XCTAssertEqual(llama3.prefix, [1000])
        // The continuation leaves out the BOS and is the ids the word has inside a text.
        let context = llama3.encode(Array("He said".utf8)), whole = llama3.encode(Array("He said hello".utf8))
        XCTAssertEqual(context + llama3.encodeContinuation(Array(" hello".utf8)), whole)
        let gpt2 = try Self.tokenizer("gpt2")
        XCTAssertEqual(gpt2.vocabSize, 700)
        XCTAssertEqual(gpt2.eod, 0)
        XCTAssertEqual(gpt2.prefix, [])
        let qwen2 = try Self.tokenizer("qwen2")
        XCTAssertEqual(qwen2.encode(Array("e\u{301}".utf8)), qwen2.encode(Array("é".utf8)), "NFC first")
    }

    /// GPT-2's real vocabulary and merges written as a tokenizer.json (GPT-2's layout: ByteLevel with
    /// its regex, <|endoftext|> added) encode every WikiText line as GPT2BPETokenizer does — which
    /// equals the real GPT-2 tokenizer (TokenizerTests).
    func testGPT2sRealVocabularyAsTokenizerJSONEqualsGPT2BPE() throws {
        let gpt2 = try SharedData.gpt2()
        let vocabData = try Data(contentsOf: SharedData.require("tokenizers/gpt2/vocab.json"))
        let vocab = try XCTUnwrap(JSONSerialization.jsonObject(with: vocabData) as? [String: Int])
        let merges = try String(contentsOf: SharedData.require("tokenizers/gpt2/merges.txt"), encoding: .utf8)
            .split(separator: "\n").filter { !$0.hasPrefix("#version") }.map(String.init)
        XCTAssertEqual(merges.count, 50_000)
        let json: [String: Any] = [
            "model": ["type": "BPE", "vocab": vocab, "merges": merges],
            "pre_tokenizer": ["type": "ByteLevel", "add_prefix_space": false, "use_regex": true],
            "added_tokens": [["id": 50256, "content": "<|endoftext|>", "special": true]],
            "decoder": ["type": "ByteLevel"], "post_processor": ["type": "ByteLevel"],
        ]
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hf-gpt2-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try JSONSerialization.data(withJSONObject: json).write(to: dir.appendingPathComponent("tokenizer.json"))
        try Data(#"{"eos_token": "<|endoftext|>"}"#.utf8).write(to: dir.appendingPathComponent("tokenizer_config.json"))
        let hf = try HuggingFaceTokenizer(path: dir.path)
        XCTAssertEqual(hf.vocabSize, gpt2.vocabSize)
        XCTAssertEqual(hf.eod, gpt2.eod)
        let raw = try String(contentsOf: SharedData.require("wikitext/wikitext-raw/wiki.test.raw"), encoding: .utf8)
        var ids = 0
        for line in raw.split(separator: "\n").prefix(2000) {
            let text = Array(line.utf8), want = gpt2.encode(text)
            guard hf.encode(text) == want else { return XCTFail("\(line.prefix(60).debugDescription)… differs") }
            XCTAssertEqual(hf.decode(want), text)
            ids += want.count
        }
        XCTAssertGreaterThan(ids, 100_000)
    }

    /// Writes a copy of the llama3 fixture with `edit` applied to its tokenizer.json (and the config
    /// dropped when `config` is false) and returns the error of loading it.
    func refusal(_ edit: (inout [String: Any]) -> Void, config: Bool = true) throws -> String {
        let source = try Self.directory("llama3")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hf-tokenizer-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        var json = try XCTUnwrap(
            JSONSerialization.jsonObject(with: Data(contentsOf: source.appendingPathComponent("tokenizer.json")))
                as? [String: Any])
        edit(&json)
        try JSONSerialization.data(withJSONObject: json).write(to: dir.appendingPathComponent("tokenizer.json"))
        if config {
            try FileManager.default.copyItem(
                at: source.appendingPathComponent("tokenizer_config.json"),
                to: dir.appendingPathComponent("tokenizer_config.json"))
        }
        do {
            _ = try HuggingFaceTokenizer(path: dir.path)
            return "loaded"
        } catch {
            return "\(error)"
        }
    }

    func testFilesItDoesNotReadAreRefusedNamingTheField() throws {
        func setPattern(_ json: inout [String: Any], _ pattern: String) {
            var pre = json["pre_tokenizer"] as! [String: Any]
            var list = pre["pretokenizers"] as! [[String: Any]]
            list[0]["pattern"] = ["Regex": pattern]
            pre["pretokenizers"] = list
            json["pre_tokenizer"] = pre
        }
        func setModel(_ json: inout [String: Any], _ key: String, _ value: Any) {
            var model = json["model"] as! [String: Any]
            model[key] = value
            json["model"] = model
        }
        let cases: [(String, (inout [String: Any]) -> Void, Bool)] = [
            ("pre_tokenizer pattern", { setPattern(&$0, #"\p{L}+|\s+"#) }, true),
            ("model.type is WordPiece", { setModel(&$0, "type", "WordPiece") }, true),
            ("model.byte_fallback", { setModel(&$0, "byte_fallback", true) }, true),
            ("normalizer NFKC", { $0["normalizer"] = ["type": "NFKC"] }, true),
            ("names a token the vocabulary lacks", { setModel(&$0, "merges", [["Ġ", "nonexistent"]]) }, true),
            ("no eos_token", { _ in }, false),
            (
                "single_word true",
                {
                    var added = $0["added_tokens"] as! [[String: Any]]
                    added[0]["single_word"] = true
                    $0["added_tokens"] = added
                }, true
            ),
        ]
        for (message, edit, config) in cases {
            let error = try refusal(edit, config: config)
            XCTAssertTrue(error.contains(message), "want '\(message)': \(error)")
            XCTAssertTrue(error.contains("tokenizer"), "names the file: \(error)")
        }
        XCTAssertEqual(try refusal { _ in }, "loaded")
    }
}

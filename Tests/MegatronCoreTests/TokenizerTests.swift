// TokenizerTests.swift — the GPT-2 and BERT tokenizers against ids produced by the real ones
// (../shared/data/reference, made with tiktoken and Hugging Face tokenizers): every reference
// case, and for GPT-2 the whole of WikiText's wiki.test.raw (286,221 ids). Decoding returns the
// input bytes exactly, invalid UTF-8 included. Skipped, saying why, when ../shared is absent.
import Foundation
import MegatronCore
import XCTest

enum SharedData {
    /// `../shared/data` beside the repository, if present.
    static var root: URL? {
        var dir = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { dir.deleteLastPathComponent() }  // Tests/MegatronCoreTests/File.swift → repo
        let shared = dir.deletingLastPathComponent().appendingPathComponent("shared/data")
        return FileManager.default.fileExists(atPath: shared.path) ? shared : nil
    }

    static func require(_ relative: String) throws -> URL {
        guard let root else {
            throw XCTSkip(
                "../shared/data is absent (a fresh clone has no shared data); tokenizer conformance not checked")
        }
        return root.appendingPathComponent(relative)
    }

    static func gpt2() throws -> GPT2BPETokenizer {
        try GPT2BPETokenizer(
            vocabFile: require("tokenizers/gpt2/vocab.json").path, mergeFile: require("tokenizers/gpt2/merges.txt").path
        )
    }
}

final class TokenizerTests: XCTestCase {
    func testGPT2MatchesReferenceCases() throws {
        let tok = try SharedData.gpt2()
        XCTAssertEqual(tok.vocabSize, 50257)
        XCTAssertEqual(tok.eod, 50256)
        let data = try Data(contentsOf: SharedData.require("reference/gpt2_tokenizer_cases.json"))
        let cases = try XCTUnwrap(
            (try JSONSerialization.jsonObject(with: data) as? [String: Any])?["cases"] as? [[String: Any]])
        XCTAssertEqual(cases.count, 27)
        for c in cases {
            let text = try XCTUnwrap(c["text"] as? String)
            let ids = try XCTUnwrap(c["ids"] as? [Int]).map(Int32.init)
            let ours = tok.encode(text)
            XCTAssertEqual(ours, ids, "ids of \(text.debugDescription)")
            XCTAssertEqual(
                ours.map(tok.tokenString), try XCTUnwrap(c["tokens"] as? [String]), "tokens of \(text.debugDescription)"
            )
            XCTAssertEqual(tok.decode(ours), Array(text.utf8))
        }
    }

    func testGPT2MatchesTheWholeWikiTextTestSet() throws {
        let tok = try SharedData.gpt2()
        let text = try Data(contentsOf: SharedData.require("wikitext/wikitext-raw/wiki.test.raw"))
        let reference = try Data(contentsOf: SharedData.require("reference/wiki.test.raw.gpt2.u16le"))
        let expected = reference.withUnsafeBytes { raw in
            (0..<reference.count / 2).map { Int32(raw.load(fromByteOffset: 2 * $0, as: UInt16.self).littleEndian) }
        }
        XCTAssertEqual(expected.count, 286_221)
        let ours = tok.encode([UInt8](text))
        XCTAssertEqual(ours.count, expected.count)
        if let i = zip(ours, expected).enumerated().first(where: { $0.element.0 != $0.element.1 })?.offset {
            XCTFail(
                "first difference at id \(i): ours \(ours[i]) vs \(expected[i]), around "
                    + "\(Array(expected[max(0, i - 5)..<min(expected.count, i + 5)]))"
            )
        }
        XCTAssertEqual(tok.decode(ours), [UInt8](text))
    }

    func testGPT2RoundTripsAnyBytes() throws {
        let tok = try SharedData.gpt2()
        let samples: [[UInt8]] = [
            [0xFF, 0xFE, 0x41, 0x80], [0xE2, 0x82], [0xC0, 0xAF, 0x20, 0xED, 0xA0, 0x80], Array(0...255),
            Array("it's a ' 'll test\u{0}\u{7f}".utf8) + [0xF4, 0x90, 0x80, 0x80],
        ]
        for s in samples { XCTAssertEqual(tok.decode(tok.encode(s)), s, "\(s)") }
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            let s = (0..<Int.random(in: 0..<64, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            XCTAssertEqual(tok.decode(tok.encode(s)), s)
        }
    }

    func testMismatchedVocabularyAndMergesIsAClearError() throws {
        let vocab = try SharedData.require("tokenizers/gpt2/vocab.json")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tok-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let merges = dir.appendingPathComponent("merges.txt")
        try "#version: 0.2\nĠ t\nzzq xqv\n".write(to: merges, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try GPT2BPETokenizer(vocabFile: vocab.path, mergeFile: merges.path)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("do not match") && text.contains("line 3") && text.contains("zzq"), text)
        }
    }

    func testBertMatchesReferenceCases() throws {
        let tok = try BertWordPieceTokenizer(
            vocabFile: SharedData.require("tokenizers/bert-base-uncased/vocab.txt").path, lowerCase: true)
        XCTAssertEqual(tok.vocabSize, 30522)
        let data = try Data(contentsOf: SharedData.require("reference/bert_uncased_tokenizer_cases.json"))
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        try checkCases(json, count: 16, tok)
        let pair = try XCTUnwrap(json["pair_case"] as? [String: Any])
        let a = tok.encode(try XCTUnwrap(pair["text_a"] as? String)),
            b = tok.encode(try XCTUnwrap(pair["text_b"] as? String))
        XCTAssertEqual([tok.cls] + a + [tok.sep] + b + [tok.sep], try XCTUnwrap(pair["ids"] as? [Int]).map(Int32.init))
        XCTAssertEqual(
            Array(repeating: 0, count: a.count + 2) + Array(repeating: 1, count: b.count + 1),
            pair["token_type_ids"] as? [Int])
    }

    /// `json`'s `count` cases: each text's ids between [CLS] and [SEP] (and tokens, where given) as `tok` gives them.
    func checkCases(_ json: [String: Any], count: Int, _ tok: BertWordPieceTokenizer) throws {
        let cases = try XCTUnwrap(json["cases"] as? [[String: Any]])
        XCTAssertEqual(cases.count, count)
        for c in cases {
            let text = try XCTUnwrap(c["text"] as? String)
            let ids = [tok.cls] + tok.encode(text) + [tok.sep]
            XCTAssertEqual(ids, try XCTUnwrap(c["ids"] as? [Int]).map(Int32.init), "ids of \(text.debugDescription)")
            if let tokens = c["tokens"] as? [String] { XCTAssertEqual(ids.map(tok.token), tokens) }
        }
    }

    /// BertWordPieceCase against Hugging Face `tokenizers` (lowercase=False; Tests/Scripts/bert_cased_fixture.py):
    /// BERT's uncased vocabulary with cased entries appended, hand-written cases of case, accents, CJK,
    /// control characters and long words, and 80 lines of WikiText-103's raw test text.
    func testBertCasedMatchesReferenceCases() throws {
        let uncased = try String(
            contentsOf: SharedData.require("tokenizers/bert-base-uncased/vocab.txt"), encoding: .utf8)
        let fixture = try XCTUnwrap(
            Bundle.module.url(
                forResource: "bert_cased_tokenizer_cases", withExtension: "json", subdirectory: "Fixtures"))
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: fixture)) as? [String: Any])
        let added = try XCTUnwrap(json["added_tokens"] as? [String])
        let vocabFile = FileManager.default.temporaryDirectory.appendingPathComponent("bert-cased-\(getpid()).txt")
        defer { try? FileManager.default.removeItem(at: vocabFile) }
        try (uncased + added.joined(separator: "\n") + "\n").write(to: vocabFile, atomically: true, encoding: .utf8)
        let cased = try BertWordPieceTokenizer(vocabFile: vocabFile.path, lowerCase: false)
        XCTAssertEqual(cased.vocabSize, 30522 + added.count)
        XCTAssertEqual(cased.name, "BertWordPieceCase")
        try checkCases(json, count: 17, cased)
        // Case and accents are kept: the first two cases tokenise otherwise with lower-casing.
        let lower = try XCTUnwrap(
            try Tokenizers.make(type: .bertWordPieceLowerCase, vocabFile: vocabFile.path, mergeFile: nil)
                as? BertWordPieceTokenizer)
        let madeCased = try Tokenizers.make(type: .bertWordPieceCase, vocabFile: vocabFile.path, mergeFile: nil)
        XCTAssertEqual((madeCased as? BertWordPieceTokenizer)?.lowerCase, false)
        XCTAssertNotEqual(lower.encode("Hello, World!"), cased.encode("Hello, World!"))
        XCTAssertNotEqual(lower.encode("naïve résumé"), cased.encode("naïve résumé"))
        let wiki = try XCTUnwrap(json["wikitext"] as? [String: Any])
        let raw = try Data(contentsOf: SharedData.require(try XCTUnwrap(wiki["file"] as? String)))
        let lines = raw.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        let first = try XCTUnwrap(wiki["first_line"] as? Int), expected = try XCTUnwrap(wiki["ids"] as? [[Int]])
        XCTAssertEqual(expected.count, try XCTUnwrap(wiki["lines"] as? Int))
        for (i, want) in expected.enumerated() {
            let line = String(decoding: lines[first + i], as: UTF8.self)
            XCTAssertEqual(
                [cased.cls] + cased.encode(line) + [cased.sep], want.map(Int32.init), "WikiText line \(first + i)")
        }
    }

    /// ASCII pieces of text (between ASCII whitespace) take a byte-level path; a zero-width space
    /// (U+200B, a format character the cleaner drops) at the end of every piece sends the same text
    /// down the Unicode path, which must give the same ids — for every ASCII byte, control
    /// characters, punctuation and upper case included, and for words longer than any vocabulary entry.
    func testBertAsciiPathEqualsTheUnicodePath() throws {
        let tok = try BertWordPieceTokenizer(
            vocabFile: SharedData.require("tokenizers/bert-base-uncased/vocab.txt").path, lowerCase: true)
        var rng = SystemRandomNumberGenerator()
        let letters = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".utf8)
        for trial in 0..<300 {
            let length = Int.random(in: 1...400, using: &rng)
            let bytes: [UInt8] = (0..<length).map { _ in
                trial % 2 == 0 ? UInt8.random(in: 0...127, using: &rng) : letters.randomElement(using: &rng)!
            }
            let text = String(decoding: bytes, as: UTF8.self)
            var marked: [UInt8] = []
            for b in bytes {
                if [9, 10, 13, 32].contains(b) { marked += [0xE2, 0x80, 0x8B] }
                marked.append(b)
            }
            marked += [0xE2, 0x80, 0x8B]
            let ids = tok.encode(text)
            XCTAssertEqual(ids, tok.encode(String(decoding: marked, as: UTF8.self)), "ids of \(text.debugDescription)")
            if trial % 2 == 1 { XCTAssertFalse(ids.isEmpty) }
        }
        XCTAssertEqual(tok.encode("Hello, WORLD!\u{7}\u{0B}x").map(tok.token), ["hello", ",", "world", "!", "x"])
    }
}

// TikTokenizerTests.swift — our TikTokenizer against the tiktoken library (0.14) on a 1,200-rank
// vocabulary in Megatron's JSON rank format, learned on Tiny Shakespeare with the v2 pattern
// (scripts/make_tiktoken_fixture.py, fixtures committed), under Megatron's defaults (1,000 special
// tokens first) and a vocab_size that cuts the file: for both patterns, every written case's ids
// (tiktoken's encode_ordinary, as Megatron's tokenize) and 150 WikiText lines (text from ../shared,
// skipped without it); decoding gives the text back; the special tokens, eod and the cut; the
// pieces of the v2 scanner on cases worked by hand; and files and settings refused naming what is wrong.
import Foundation
import MegatronCore
import TestSupport
import XCTest

final class TikTokenizerTests: XCTestCase {
    static let vocabFile = Bundle.module.url(
        forResource: "vocab", withExtension: "json", subdirectory: "Fixtures/tiktoken")!

    static func fixture() throws -> [String: [String: Any]] {
        let url = try XCTUnwrap(
            Bundle.module.url(forResource: "cases", withExtension: "json", subdirectory: "Fixtures/tiktoken"))
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: [String: Any]])
    }

    /// The fixture's tokenizer for `pattern` (its vocab_size and special-token count).
    static func tokenizer(_ pattern: TikTokenPattern) throws -> TikTokenizer {
        let spec = try XCTUnwrap(fixture()[pattern.rawValue])
        let settings = TikTokenSettings(
            pattern: pattern, vocabSize: try XCTUnwrap(spec["vocab_size"] as? Int),
            numSpecialTokens: try XCTUnwrap(spec["num_special_tokens"] as? Int))
        return try TikTokenizer(path: vocabFile.path, settings: settings)
    }

    func testEveryCaseMatchesTiktoken() throws {
        let fixture = try Self.fixture()
        for pattern in TikTokenPattern.allCases {
            let tok = try Self.tokenizer(pattern)
            let cases = try XCTUnwrap(fixture[pattern.rawValue]?["cases"] as? [[String: Any]])
            XCTAssertEqual(cases.count, 37, pattern.rawValue)
            for c in cases {
                let text = try XCTUnwrap(c["text"] as? String)
                let ids = try XCTUnwrap(c["ids"] as? [Int]).map(Int32.init)
                XCTAssertEqual(tok.encode(Array(text.utf8)), ids, "\(pattern): encode \(text.debugDescription)")
                XCTAssertEqual(tok.decode(ids), Array(text.utf8), "\(pattern): decode of \(text.debugDescription)")
            }
        }
    }

    func testWikiTextLinesMatchTiktoken() throws {
        let lines = try WikiTextLines.lines()
        let fixture = try Self.fixture()
        for pattern in TikTokenPattern.allCases {
            let tok = try Self.tokenizer(pattern)
            let expected = try XCTUnwrap(fixture[pattern.rawValue]?["wikitext"] as? [[Int]])
            WikiTextLines.assertEncodes(lines, as: expected, pattern.rawValue, encode: tok.encode)
        }
    }

    /// Ids 0, 1, 2 are <unk>, <s>, </s> (eod), fillers follow; ranks start at the special count; the
    /// file is cut at vocab_size, so no id reaches it; special tokens' text is plain text.
    func testSpecialTokensEodAndTheCut() throws {
        let tok = try Self.tokenizer(.v2)
        XCTAssertEqual(tok.vocabSize, 2160)
        XCTAssertEqual(tok.rankCount, 1160)
        XCTAssertEqual(tok.eod, 2)
        XCTAssertEqual(
            String(decoding: tok.decode([0, 1, 2, 3, 999]), as: UTF8.self), "<unk><s></s><SPECIAL_3><SPECIAL_999>")
        XCTAssertEqual(tok.decode([1000 + 97]), Array("a".utf8), "rank r is id r + 1000")
        XCTAssertFalse(tok.encode(Array("<s>".utf8)).contains(1), "Megatron's tokenize reads special tokens as text")
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            let bytes = (0..<Int.random(in: 1...200, using: &generator)).map { _ in UInt8.random(in: 0...255) }
            let ids = tok.encode(bytes)
            XCTAssertTrue(ids.allSatisfy { 1000 <= $0 && $0 < 2160 }, "ids within the cut ranks")
            XCTAssertEqual(tok.decode(ids), bytes, "any bytes come back")
        }
        let named = try TikTokenizer(
            path: Self.vocabFile.path,
            settings: TikTokenSettings(
                pattern: .v1, vocabSize: 1210, numSpecialTokens: 10,
                specialTokens: ["<pad>", "<unk>", "<s>", "</s>", "<mask>"]))
        XCTAssertEqual(named.eod, 3)
        XCTAssertEqual(String(decoding: named.decode([4, 5, 9]), as: UTF8.self), "<mask><SPECIAL_5><SPECIAL_9>")
        XCTAssertEqual(named.decode([10 + 98]), Array("b".utf8))
    }

    /// The v2 scanner's pieces on cases worked out from the pattern by hand, and equal to what Python's
    /// `regex` module finds (CamelCase splits before each capital that starts a lower-case run; an
    /// upper run followed by lower case stays whole; marks join letters; one digit a piece, a space
    /// before a digit alone; punctuation takes the slashes and line breaks after it).
    func testTekkenPiecesWorkedByHand() throws {
        // A vocabulary of the 256 bytes alone: each id is one byte, so the ids show no pieces; the
        // pieces show through a vocabulary where every piece of the text is a token.
        let pieces = [
            "Camel", "Case", " XMLHttp", "Request", " i", "Phone", " WORLD", "\n", " e\u{301}t\u{301}", " ", "1", "2",
            " ¿", "Qué", "?/\n//", " \t", " x", " HTTPServer", " \u{301}\u{301}a",
        ]
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tiktoken-pieces-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let file = dir.appendingPathComponent("vocab.json")
        var ranks = (0..<256).map { [UInt8($0)] }
        for p in pieces where p.utf8.count > 1 && !ranks.contains(Array(p.utf8)) { ranks.append(Array(p.utf8)) }
        try Self.writeRankFile(ranks, to: file)
        let tok = try TikTokenizer(
            path: file.path, settings: TikTokenSettings(pattern: .v2, vocabSize: 3 + ranks.count, numSpecialTokens: 3))
        let ids = tok.encode(Array(pieces.joined().utf8))
        XCTAssertEqual(ids.map { String(decoding: tok.decode([$0]), as: UTF8.self) }, pieces)
    }

    static func writeRankFile(_ ranks: [[UInt8]], to url: URL) throws {
        let list = ranks.enumerated().map { i, bytes in
            [
                "rank": i, "token_bytes": Data(bytes).base64EncodedString(),
                "token_str": String(decoding: bytes, as: UTF8.self),
            ]
                as [String: Any]
        }
        try JSONSerialization.data(withJSONObject: list).write(to: url)
    }

    func testBadFilesAndSettingsAreRefusedByName() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tiktoken-bad-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let bytes = (0..<256).map { [UInt8($0)] }
        func refusal(_ ranks: [[String: Any]]?, raw: String? = nil, settings: TikTokenSettings) -> String {
            let file = dir.appendingPathComponent("v.json")
            if let raw { try? Data(raw.utf8).write(to: file) }
            if let ranks { try? JSONSerialization.data(withJSONObject: ranks).write(to: file) }
            do {
                _ = try TikTokenizer(path: file.path, settings: settings)
                return "accepted"
            } catch { return "\(error)" }
        }
        func entries(_ list: [[UInt8]]) -> [[String: Any]] {
            list.enumerated().map { ["rank": $0, "token_bytes": Data($1).base64EncodedString(), "token_str": ""] }
        }
        let ok = TikTokenSettings(pattern: .v1, vocabSize: 259, numSpecialTokens: 3)
        XCTAssertEqual(refusal(entries(bytes), settings: ok), "accepted")
        XCTAssertTrue(refusal(nil, raw: "{}", settings: ok).contains("not a JSON list"))
        var wrongRank = entries(bytes)
        wrongRank[7]["rank"] = 8
        XCTAssertTrue(refusal(wrongRank, settings: ok).contains("entry 7: rank must be 7"))
        var extraKey = entries(bytes)
        extraKey[3]["score"] = 1
        XCTAssertTrue(refusal(extraKey, settings: ok).contains("entry 3: must be an object with exactly the keys"))
        XCTAssertTrue(refusal(entries([[1]] + bytes.dropFirst()), settings: ok).contains("entry 0: the first 256"))
        XCTAssertTrue(
            refusal(
                entries(bytes + [[0x61, 0x62], [0x61, 0x62]]),
                settings: .init(pattern: .v1, vocabSize: 261, numSpecialTokens: 3)
            )
            .contains("entry 257: token_bytes repeats"))
        let tooBig = refusal(entries(bytes), settings: .init(pattern: .v1, vocabSize: 300, numSpecialTokens: 3))
        XCTAssertTrue(tooBig.contains("vocab_size") && tooBig.contains("at most 259"), tooBig)
        let noEos = refusal(
            entries(bytes),
            settings: .init(pattern: .v1, vocabSize: 259, numSpecialTokens: 3, specialTokens: ["<unk>", "<s>"]))
        XCTAssertTrue(noEos.contains("tokenizer_special_tokens") && noEos.contains("missing: </s>"), noEos)
        let tooFew = refusal(entries(bytes), settings: .init(pattern: .v1, vocabSize: 259, numSpecialTokens: 2))
        XCTAssertTrue(tooFew.contains("tiktoken_num_special_tokens"), tooFew)
        let clash = refusal(
            entries(bytes),
            settings: .init(
                pattern: .v1, vocabSize: 260, numSpecialTokens: 4,
                specialTokens: ["<unk>", "<s>", "</s>", "<SPECIAL_3>"]))
        XCTAssertEqual(clash, "accepted", "a named <SPECIAL_3> at id 3 is the filler's own name")
        let clash2 = refusal(
            entries(bytes),
            settings: .init(
                pattern: .v1, vocabSize: 261, numSpecialTokens: 5,
                specialTokens: ["<unk>", "<s>", "</s>", "<SPECIAL_4>"]))
        XCTAssertTrue(clash2.contains("filler"), clash2)
    }

    /// The config path with Megatron's flags: TikTokenizer without tiktoken_pattern is refused naming
    /// it; with it, the tokenizer has the flags' vocab_size and special tokens.
    func testMegatronFlags() throws {
        let base = CLI.repoRoot.appendingPathComponent("configs/gpt2-tiny.json").path
        let flags = ["--tokenizer-type", "TikTokenizer", "--tokenizer-model", Self.vocabFile.path]
        XCTAssertThrowsError(try ConfigLoader.load(path: base, flags: flags)) {
            XCTAssertTrue("\($0)".contains("tiktoken_pattern"), "\($0)")
        }
        let c = try ConfigLoader.load(
            path: base,
            flags: flags + [
                "--tiktoken-pattern", "v2", "--vocab-size", "1100", "--tiktoken-num-special-tokens", "8",
                "--tokenizer-special-tokens", "<unk>", "<s>", "</s>", "<mask>",
            ])
        let tok = try XCTUnwrap(try Tokenizers.make(config: c) as? TikTokenizer)
        XCTAssertEqual(tok.vocabSize, 1100)
        XCTAssertEqual(tok.rankCount, 1092)
        XCTAssertEqual(String(decoding: tok.decode([3, 7]), as: UTF8.self), "<mask><SPECIAL_7>")
    }
}

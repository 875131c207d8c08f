// SentencePieceTests.swift — our SentencePiece tokenizers against the sentencepiece library
// (scripts/make_sentencepiece_fixture.py, fixtures committed): a Llama-2-style BPE model with byte
// fallback and a user-defined symbol, a unigram model with the default nmt_nfkc character map,
// and a BPE model with UNUSED pieces — every written case's ids and decoded text, id sequences of
// control, byte and unknown pieces decoded, and 150 WikiText lines (their text from ../shared,
// skipped without it). Then Megatron's three flavours (BOS, added special tokens, eod), the
// LAMBADA continuation, and malformed model files refused naming the file.
import Foundation
import MegatronCore
import XCTest

final class SentencePieceTests: XCTestCase {
    static let models = ["llama_bpe", "nfkc_unigram", "unused_bpe"]

    static func modelPath(_ name: String) throws -> String {
        try XCTUnwrap(
            Bundle.module.url(forResource: name, withExtension: "model", subdirectory: "Fixtures/sentencepiece")
        ).path
    }

    static func fixture(_ name: String) throws -> [String: Any] {
        let url = try XCTUnwrap(
            Bundle.module.url(forResource: name, withExtension: "json", subdirectory: "Fixtures/sentencepiece"))
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
    }

    static func tokenizer(_ name: String, _ flavour: SentencePieceTokenizer.Flavour = .gpt) throws
        -> SentencePieceTokenizer
    {
        try SentencePieceTokenizer(modelFile: modelPath(name), flavour: flavour)
    }

    func testEveryCaseMatchesTheLibrary() throws {
        let cases = try Self.fixture("cases")
        for name in Self.models {
            let model = try XCTUnwrap(cases[name] as? [String: Any])
            let tok = try Self.tokenizer(name)
            XCTAssertEqual(tok.vocabSize, model["pieces"] as? Int, name)
            XCTAssertEqual(tok.eod, Int32(try XCTUnwrap(model["eos"] as? Int)), name)
            let encoded = try XCTUnwrap(model["encode"] as? [[String: Any]])
            XCTAssertEqual(encoded.count, 24)
            for c in encoded {
                let text = try XCTUnwrap(c["text"] as? String)
                let ids = try XCTUnwrap(c["ids"] as? [Int]).map(Int32.init)
                XCTAssertEqual(tok.encode(Array(text.utf8)), ids, "\(name): encode \(text.debugDescription)")
                let decoded = String(decoding: tok.decode(ids), as: UTF8.self)
                XCTAssertEqual(decoded, c["decoded"] as? String, "\(name): decode of \(text.debugDescription)")
            }
            let sequences = try XCTUnwrap(model["decode"] as? [[String: Any]])
            XCTAssertEqual(sequences.count, 9)
            for s in sequences {
                let ids = try XCTUnwrap(s["ids"] as? [Int]).map(Int32.init)
                XCTAssertEqual(
                    String(decoding: tok.decode(ids), as: UTF8.self), s["decoded"] as? String, "\(name): \(ids)")
            }
        }
    }

    func testWikiTextLinesMatchTheLibrary() throws {
        let raw = try String(contentsOf: SharedData.require("wikitext/wikitext-raw/wiki.test.raw"), encoding: .utf8)
        let lines = raw.split(separator: "\n", omittingEmptySubsequences: false).map { $0 + "\n" }
            .filter { !$0.allSatisfy(\.isWhitespace) }
        let fixture = try Self.fixture("wikitext")
        let count = try XCTUnwrap(fixture["lines"] as? Int)
        XCTAssertEqual(count, 150)
        XCTAssertGreaterThanOrEqual(lines.count, count, "wiki.test.raw has fewer non-blank lines than the fixture")
        let all = try XCTUnwrap(fixture["ids"] as? [String: [[Int]]])
        for name in Self.models {
            let tok = try Self.tokenizer(name)
            let expected = try XCTUnwrap(all[name])
            XCTAssertEqual(expected.count, count)
            var total = 0
            for (line, ids) in zip(lines.prefix(count), expected) {
                let got = tok.encode(Array(line.utf8))
                total += got.count
                guard got == ids.map(Int32.init) else {
                    XCTFail(
                        "\(name): line \(line.prefix(60).debugDescription)… gives \(got.prefix(12))…, want \(ids.prefix(12))…"
                    )
                    break
                }
            }
            XCTAssertGreaterThan(total, 10_000, name)
        }
    }

    func testMegatronFlavours() throws {
        let gpt = try Self.tokenizer("llama_bpe")
        let text = Array("Now is the winter".utf8)
        let plain = gpt.encode(text)
        // Llama2Tokenizer: the BOS first, eod the EOS, the model's vocabulary.
        let llama = try Self.tokenizer("llama_bpe", .llama2)
        XCTAssertEqual(llama.encode(text), [1] + plain)
        XCTAssertEqual([llama.vocabSize, Int(llama.eod)], [1000, 2])
        XCTAssertEqual(String(decoding: llama.decode(llama.encode(text)), as: UTF8.self), "Now is the winter")
        // SentencePieceTokenizer: <CLS> <SEP> <EOD> <MASK> <PAD> appended (the model has <s> and </s>, no pad).
        let megatron = try Self.tokenizer("llama_bpe", .megatron)
        XCTAssertEqual(megatron.vocabSize, 1005)
        XCTAssertEqual(megatron.eod, 1002)
        let marked = Array("Now is<EOD>the winter<CLS></s>".utf8)
        let expected = gpt.encode(Array("Now is".utf8)) + [1002] + gpt.encode(Array("the winter".utf8)) + [1000, 2]
        XCTAssertEqual(megatron.encode(marked), expected)
        XCTAssertEqual(
            String(decoding: megatron.decode(expected), as: UTF8.self), "Now is <EOD> the winter <CLS>  </s> ")
        // The unigram model has a pad piece (id 3): SentencePieceTokenizer adds only four.
        let unigram = try Self.tokenizer("nfkc_unigram", .megatron)
        XCTAssertEqual([unigram.vocabSize, Int(unigram.eod)], [804, 802])
        // Through the config keys.
        var c = TrainingConfig()
        (c.tokenizerType, c.tokenizerModel) = (.llama2, try Self.modelPath("llama_bpe"))
        XCTAssertEqual(try Tokenizers.make(config: c).encode(text), [1] + plain)
    }

    /// LAMBADA's target " word" after its context: the same pieces as inside the whole passage.
    func testContinuationEqualsThePiecesInsideTheText() throws {
        let llama = try Self.tokenizer("llama_bpe", .llama2)
        let context = "And then the king said", word = "farewell"
        let whole = llama.encode(Array("\(context) \(word)".utf8))
        let (c, t) = LambadaExamples.split("\(context) \(word)", tokenizer: llama, strict: true)
        XCTAssertEqual(c + t, whole)
        XCTAssertEqual(c.first, 1)
        XCTAssertFalse(t.contains(1))
    }

    func testMalformedModelsAreRefusedNamingTheFile() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sp-bad-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let good = try Data(contentsOf: URL(fileURLWithPath: Self.modelPath("llama_bpe")))
        // ModelProto field 1 (a piece): its field 1 the text, field 3 the type (2 = UNKNOWN).
        func piece(_ text: String, unknown: Bool = false) -> [UInt8] {
            let body = [0x0A, UInt8(text.utf8.count)] + Array(text.utf8) + (unknown ? [0x18, 0x02] : [])
            return [0x0A, UInt8(body.count)] + body
        }
        let bad: [(String, Data, String)] = [
            ("twice.model", Data(piece("<unk>", unknown: true) + piece("a") + piece("a")), "defined twice"),
            ("blank.model", Data(piece("<unk>", unknown: true) + piece("")), "piece 1 is empty"),
            ("cut.model", good.prefix(good.count / 2), "not a SentencePiece model"),
            ("text.model", Data("{\"vocab\": {}}".utf8), "not a SentencePiece model"),
            ("empty.model", Data(), "without pieces"),
            ("vocab.json", Data([0x0A, 0x03, 0x0A, 0x01, 0x61]), "no <unk> piece"),
        ]
        for (name, data, reason) in bad {
            let path = dir.appendingPathComponent(name).path
            try data.write(to: URL(fileURLWithPath: path))
            XCTAssertThrowsError(try SentencePieceTokenizer(modelFile: path, flavour: .gpt), name) { error in
                let text = "\(error)"
                XCTAssertTrue(text.contains(path) && text.contains(reason), text)
            }
        }
        XCTAssertThrowsError(
            try SentencePieceTokenizer(modelFile: dir.appendingPathComponent("absent").path, flavour: .gpt)
        ) {
            XCTAssertTrue("\($0)".contains("tokenizer_model"), "\($0)")
        }
    }
}

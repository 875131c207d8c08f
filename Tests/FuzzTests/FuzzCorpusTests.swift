// FuzzCorpusTests.swift — replays every kept fuzz input through its reader (FuzzTargets): the
// corpus scripts/fuzz.sh grew (Corpus/<target>/) and every input that once crashed a reader
// (Regressions/<target>/). Any crash or broken property ends the test process, so CI fails. Targets
// whose tokenizer files are absent (no ../shared) are skipped with the reason.
import Foundation
import FuzzTargets
import XCTest

final class FuzzCorpusTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()

    func inputs(_ folder: String, _ target: FuzzTarget) -> [URL] {
        let dir = Self.root.appendingPathComponent(folder).appendingPathComponent(target.rawValue)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        return names.sorted().map { dir.appendingPathComponent($0) }
    }

    func testEveryKeptInputIsAnsweredWithoutACrash() throws {
        let spModel = Self.root.deletingLastPathComponent()
            .appendingPathComponent("MegatronCoreTests/Fixtures/sentencepiece/llama_bpe.model")
        setenv("MEGATRON_SENTENCEPIECE_MODEL", spModel.path, 0)
        let hfTokenizer = Self.root.deletingLastPathComponent()
            .appendingPathComponent("MegatronCoreTests/Fixtures/hf_tokenizer/llama3")
        setenv("MEGATRON_HF_TOKENIZER", hfTokenizer.path, 0)
        let tiktokenRanks = Self.root.deletingLastPathComponent()
            .appendingPathComponent("MegatronCoreTests/Fixtures/tiktoken/vocab.json")
        setenv("MEGATRON_TIKTOKEN_RANKS", tiktokenRanks.path, 0)
        var skipped: [String] = []
        for target in FuzzTarget.allCases {
            let corpus = inputs("Corpus", target), regressions = inputs("Regressions", target)
            XCTAssertFalse(corpus.isEmpty, "\(target.rawValue) has no corpus: run scripts/fuzz.sh")
            if let reason = target.unavailableReason {
                skipped.append("\(target.rawValue) (\(reason))")
                continue
            }
            for url in corpus + regressions { target.run(try Data(contentsOf: url)) }
        }
        if !skipped.isEmpty { print("FuzzCorpusTests: not replayed: \(skipped.joined(separator: "; "))") }
    }
}

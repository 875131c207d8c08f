// GenerationAPITests.swift — the server's request parsing on hostile numbers: a tokens_to_generate
// near Int.max beside a long prompt is refused by name, never an arithmetic trap that would end the
// server (and with it every rank of the job).
import Foundation
import MegatronCore
import XCTest

final class GenerationAPITests: XCTestCase {
    func testHugeTokensToGenerateIsRefusedWhateverThePromptsLength() throws {
        let tokenizer = ByteLevelTokenizer()
        for (length, tokens) in [(5, "9223372036854774784"), (2000, "9223372036854774784"), (300, "1e18"), (300, "0")] {
            let prompt = String(repeating: "x", count: length)
            let body = #"{"prompts": ["\#(prompt)"], "tokens_to_generate": \#(tokens), "logprobs": true}"#
            switch GenerationAPI.parse(Data(body.utf8), tokenizer: tokenizer, maxPositions: 256) {
            case .success: XCTFail("a \(length)-token prompt with tokens_to_generate \(tokens) was accepted")
            case .failure(let refusal):
                XCTAssertTrue(refusal.description.contains("prompt 0 has \(length) tokens"), refusal.description)
            }
        }
        let body = #"{"prompts": ["xx"], "tokens_to_generate": 254}"#
        guard case .success(let request) = GenerationAPI.parse(Data(body.utf8), tokenizer: tokenizer, maxPositions: 256)
        else { return XCTFail("a request that fits exactly was refused") }
        XCTAssertEqual(request.tokensToGenerate, 254)
    }
}

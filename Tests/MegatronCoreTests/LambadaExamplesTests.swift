// LambadaExamplesTests.swift — LAMBADA examples longer than seq_length + 1 tokens keep their last
// seq_length + 1 (the whole target, the context cut from the left) and are counted; the scored
// positions are exactly the target's; a target that leaves no room for context is an error naming
// the line.
import Foundation
import MegatronCore
import XCTest

final class LambadaExamplesTests: XCTestCase {
    func testLongExamplesKeepTheirEndAndAreCounted() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lambada-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let file = dir.appendingPathComponent("lambada_test.jsonl")
        let long = "abcdefghijklmnopqrstuvwxyz alpha beta gamma delta omega"  // bytes: one token each
        try (["{\"text\": \"short one end\"}", "{\"text\": \"\(long)\"}"].joined(separator: "\n") + "\n")
            .write(to: file, atomically: true, encoding: .utf8)
        let tokenizer = ByteLevelTokenizer(), s = 16
        let (windows, truncated) = try LambadaExamples.load(
            path: file.path, tokenizer: tokenizer, strict: true, seqLength: s)
        XCTAssertEqual(windows.count, 2)
        XCTAssertEqual(truncated, 1)
        // The short one: context "short one", target " end", padded with the end-of-document id.
        let short = windows[0]
        XCTAssertEqual(short.tokens.count, s + 1)
        XCTAssertEqual(Array(short.tokens.prefix(13)), Array("short one end".utf8).map(Int32.init))
        XCTAssertEqual(short.scored, Array(8..<12), "labels at positions 8…11 are \" end\"")
        // The long one: its last 17 bytes, of which the last 6 (" omega") are the target.
        let cut = windows[1]
        XCTAssertEqual(cut.tokens, Array(long.utf8.suffix(s + 1)).map(Int32.init))
        XCTAssertEqual(cut.scored, Array((s + 1 - 6 - 1)..<s), "the target's six labels end the window")
        // A target as long as the window leaves no context: an error naming the line.
        try "{\"text\": \"a \(String(repeating: "z", count: 20))\"}\n".write(
            to: file, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(
            try LambadaExamples.load(path: file.path, tokenizer: tokenizer, strict: true, seqLength: s)
        ) { error in
            XCTAssertTrue("\(error)".contains("line 1") && "\(error)".contains("raise --seq-length"), "\(error)")
        }
    }
}

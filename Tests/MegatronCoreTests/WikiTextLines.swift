// WikiTextLines.swift — the tokenizer tests' check against a library's ids for the first non-empty
// lines of WikiText's wiki.test.raw (the text from ../shared, the test skipped without it; the ids
// committed in the test's fixture).
import Foundation
import MegatronCore
import XCTest

enum WikiTextLines {
    /// wiki.test.raw's non-empty lines.
    static func lines() throws -> [Substring] {
        let raw = try String(contentsOf: SharedData.require("wikitext/wikitext-raw/wiki.test.raw"), encoding: .utf8)
        return raw.split(separator: "\n").filter { !$0.allSatisfy(\.isWhitespace) }
    }

    /// `encode` gives `expected` (150 lines' ids) for the first lines; the first line that differs fails, named.
    static func assertEncodes(
        _ lines: [Substring], as expected: [[Int]], _ name: String, encode: ([UInt8]) -> [Int32],
        file: StaticString = #filePath, line: UInt = #line
    ) {
        XCTAssertEqual(expected.count, 150, name, file: file, line: line)
        XCTAssertGreaterThanOrEqual(
            lines.count, expected.count, "wiki.test.raw has fewer lines than the fixture", file: file, line: line)
        for (text, ids) in zip(lines, expected) {
            let got = encode(Array(text.utf8))
            guard got == ids.map(Int32.init) else {
                return XCTFail(
                    "\(name): \(text.prefix(60).debugDescription)… gives \(got.prefix(12))…, want \(ids.prefix(12))…",
                    file: file, line: line)
            }
        }
    }
}

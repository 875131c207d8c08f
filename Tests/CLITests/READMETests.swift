// READMETests.swift — the README's config-key table names every key of the key table, so the docs
// cannot silently fall behind the code.
import Foundation
import MegatronCore
import TestSupport
import XCTest

final class READMETests: XCTestCase {
    func testEveryConfigKeyIsDocumented() throws {
        let readme = try String(contentsOf: CLI.repoRoot.appendingPathComponent("README.md"), encoding: .utf8)
        for key in ConfigKeys.all {
            XCTAssertTrue(readme.contains("`\(key.name)`"), "README.md does not document config key \(key.name)")
        }
    }
}

// BertConfigTests.swift — the shipped BERT configs describe the models their names say.
import Foundation
import MegatronCore
import TestSupport
import XCTest

/// configs/bert-base.json and configs/bert-345m.json describe the models their names say (by
/// parameter count over BERT's WordPiece vocabulary of 30,522), and say what they still need.
final class BertConfigTests: XCTestCase {
    func testBertBaseAnd345MHaveTheirSizes() throws {
        for (name, millions) in [("bert-base.json", 110.1), ("bert-345m.json", 336.3)] {
            var cfg = try ConfigLoader.parse(path: CLI.config(name), flags: [])
            XCTAssertEqual(cfg.modelType, .bert)
            let table = ModelArchitecture(training: cfg, vocabSize: 30522).declare()
            XCTAssertEqual(Double(table.parameterCount) / 1e6, millions, accuracy: 0.5, name)
            // Without a vocabulary file the config says what it needs.
            XCTAssertThrowsError(try ConfigValidation.validate(cfg, worldSize: 1)) { error in
                XCTAssertTrue("\(error)".contains("vocab_file"), "\(error)")
            }
            cfg.vocabFile = CLI.config("bert-base.json")  // any readable file passes this check
            XCTAssertNoThrow(try ConfigValidation.validate(cfg, worldSize: 1), name)
        }
    }
}

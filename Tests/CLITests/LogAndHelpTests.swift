// LogAndHelpTests.swift — `train --help` lists every config key whole (none cut to a column), and
// the training log line ends with the time to finish at the interval's pace.
import Foundation
import MegatronCore
import TestSupport
import XCTest

final class LogAndHelpTests: XCTestCase {
    func testHelpListsEveryKeyWhole() throws {
        let r = try CLI.run(["train", "--help"], in: CLI.scratch("help"))
        XCTAssertEqual(r.code, 0, r.stderr)
        let lines = r.stdout.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        for key in ConfigKeys.all {
            XCTAssertTrue(lines.contains { $0.hasPrefix(key.name + " ") }, "train --help lacks '\(key.name)' whole")
        }
    }

    func testLogLineShowsTheTimeToFinish() throws {
        let dir = CLI.scratch("eta")
        let r = try CLI.run(
            ["train", "--config", CLI.config("gpt2-tiny.json"), "--train-iters", "20", "--log-interval", "10"], in: dir)
        XCTAssertEqual(r.code, 0, r.stderr)
        let lines = r.stdout.split(separator: "\n").filter { $0.contains("iteration       10/") }
        XCTAssertEqual(lines.count, 1)
        let eta = try XCTUnwrap(lines.first?.components(separatedBy: "time to finish: ").last?.prefix(7))
        XCTAssertNotNil(eta.range(of: #"^\d+:\d\d:\d\d"#, options: .regularExpression), "\(eta)")
        XCTAssertTrue(r.stdout.contains("time to finish: 0:00:00 |"), "the last line has nothing left")
    }
}

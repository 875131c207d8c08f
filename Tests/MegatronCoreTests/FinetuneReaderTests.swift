// FinetuneReaderTests.swift — the RACE and GLUE readers on hand-written files in the released
// formats: every field lands where the format says, labels map to Megatron's ids, a question's
// "_" takes the option, and each malformed case is an error naming the file (and line).
import Foundation
import MegatronCore
import XCTest

final class FinetuneReaderTests: XCTestCase {
    var dir: URL!
    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("finetune-readers-\(getpid())")
        try? FileManager.default.removeItem(at: dir)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    func write(_ text: String, _ name: String) throws -> String {
        let url = dir.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }

    func assertFails(
        _ body: () throws -> Void, mentions parts: [String], file: StaticString = #filePath, line: UInt = #line
    ) {
        XCTAssertThrowsError(try body(), file: file, line: line) { error in
            for part in parts {
                XCTAssertTrue("\(error)".contains(part), "\(error) lacks \(part)", file: file, line: line)
            }
        }
    }

    func testRACEDirectoriesAndErrors() throws {
        let good = """
            {"answers": ["B", "D"], "options": [["red", "blue", "green", "black"], ["1", "2", "3", "4"]], \
            "questions": ["The sky is _ today.", "How many?"], "article": "It was a blue day.", "id": "middle7.txt"}
            """
        _ = try write(good, "race/dev/middle/7.txt")
        _ = try write(good.replacingOccurrences(of: "middle7", with: "high3"), "race/dev/high/3.txt")
        let questions = try RACEReader.read(path: dir.appendingPathComponent("race/dev").path)
        XCTAssertEqual(questions.count, 4)
        XCTAssertEqual(questions.map(\.answer), [1, 3, 1, 3])
        XCTAssertEqual(questions.map(\.id), ["middle7.txt", "middle7.txt", "high3.txt", "high3.txt"])
        XCTAssertEqual(questions[0].questionWithOption(1), "The sky is blue today.")
        XCTAssertEqual(questions[1].questionWithOption(2), "How many? 3")
        XCTAssertEqual(questions[0].article, "It was a blue day.")

        let wrongLetter = try write(good.replacingOccurrences(of: "\"D\"", with: "\"E\""), "bad/letter.txt")
        assertFails({ _ = try RACEReader.file(wrongLetter) }, mentions: ["letter.txt", "answer 'E'"])
        let noArticle = try write(good.replacingOccurrences(of: "\"article\"", with: "\"text\""), "bad/article.txt")
        assertFails({ _ = try RACEReader.file(noArticle) }, mentions: ["article.txt", "'article'"])
        let three = try write(good.replacingOccurrences(of: ", \"black\"", with: ""), "bad/three.txt")
        assertFails({ _ = try RACEReader.file(three) }, mentions: ["three.txt", "3 options"])
        let notJSON = try write("{\"article\": ", "bad/truncated.txt")
        assertFails({ _ = try RACEReader.file(notJSON) }, mentions: ["truncated.txt", "not a JSON object"])
    }

    func testMNLIAndQQPFilesAndErrors() throws {
        let parse = "( x )\t( y )\t(ROOT x)\t(ROOT y)"
        let train = """
            index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\tsentence2_parse\tsentence1\tsentence2\tlabel1\tgold_label
            0\t31193\t31193n\tgovernment\t\(parse)\tA cat sat.\tAn animal sat.\tentailment\tentailment
            1\t101457\t101457e\ttelephone\t\(parse)\tIt rained.\tIt was dry.\tcontradiction\tcontradiction

            """
        let pairs = try GLUEReader.read(.mnli, path: try write(train, "MNLI/train.tsv"))
        XCTAssertEqual(
            pairs,
            [
                SentencePair(first: "A cat sat.", second: "An animal sat.", label: 1),
                SentencePair(first: "It rained.", second: "It was dry.", label: 0),
            ])
        let devHeader =
            "index\tpromptID\tpairID\tgenre\ts1b\ts2b\ts1p\ts2p\tsentence1\tsentence2\tlabel1\tlabel2\tlabel3\tlabel4\tlabel5\tgold_label"
        let dev =
            devHeader + "\n9\t1\t1n\tfiction\t\(parse)\tA\tB\tneutral\tneutral\tneutral\tneutral\tneutral\tneutral\n"
        XCTAssertEqual(try GLUEReader.read(.mnli, path: try write(dev, "MNLI/dev_matched.tsv")).map(\.label), [2])
        let test =
            "index\tpromptID\tpairID\tgenre\ts1b\ts2b\ts1p\ts2p\tsentence1\tsentence2\n0\t1\t1\tx\t\(parse)\tA\tB\n"
        XCTAssertEqual(try GLUEReader.read(.mnli, path: try write(test, "MNLI/test_matched.tsv")).map(\.label), [nil])
        let unknown = try write(
            train.replacingOccurrences(of: "\tcontradiction\tcontradiction", with: "\tmaybe\tmaybe"), "MNLI/bad.tsv")
        assertFails(
            { _ = try GLUEReader.read(.mnli, path: unknown) }, mentions: ["bad.tsv line 3", "unknown label 'maybe'"])
        let short = try write(train + "2\t5\t5n\tfiction\tonly a few columns\n", "MNLI/short.tsv")
        assertFails({ _ = try GLUEReader.read(.mnli, path: short) }, mentions: ["short.tsv line 4", "5 columns"])

        let qqp =
            "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n7\t1\t2\tHow old?\tWhat age?\t1\n8\t3\t4\tWhy?\tWhere?\t0\n"
        let q = try GLUEReader.read(.qqp, path: try write(qqp, "QQP/dev.tsv"))
        XCTAssertEqual(
            q,
            [
                SentencePair(first: "How old?", second: "What age?", label: 1),
                SentencePair(first: "Why?", second: "Where?", label: 0),
            ])
        let badLabel = try write(qqp.replacingOccurrences(of: "\t0\n", with: "\t2\n"), "QQP/bad.tsv")
        assertFails(
            { _ = try GLUEReader.read(.qqp, path: badLabel) }, mentions: ["bad.tsv line 3", "unknown label '2'"])
        let wrongFile = try write("a\tb\n1\t2\n", "QQP/odd.tsv")
        assertFails({ _ = try GLUEReader.read(.qqp, path: wrongFile) }, mentions: ["odd.tsv line 1", "2 columns"])
    }
}

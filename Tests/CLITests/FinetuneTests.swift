// FinetuneTests.swift — `megatron finetune` through the real binary, on files written here in the
// released formats (RACE JSON directories, GLUE MNLI and QQP TSV): a briefly pretrained bert-tiny
// learns a synthetic task of each format (RACE ≥ 0.9 where chance is 1/4; MNLI ≥ 0.6 and QQP ≥ 0.75,
// clearly above chance 1/3 and 1/2) and
// `evaluate --task MNLI` scores its checkpoint the same on one rank and on t = 2 × p = 2; with
// dropout 0, 20 iterations at (t, p, d) = (2, 2, 1) and (1, 1, 2) equal one rank within 1e-5 (MNLI
// and RACE); a run stopped mid-epoch and resumed across the epoch boundary is bitwise the
// uninterrupted one; and the command refuses what it cannot use.
//
// The synthetic tasks mark the answer inside one sequence — MNLI by a marker word opening
// sentence2, QQP by one opening question2, RACE by a marker option — because the tiny byte-level
// model does not learn cross-segment matching (an option's word in the article) within a test's
// budget; the heads, encodings, epochs and metrics are what these runs check.
import Foundation
import TestSupport
import XCTest

final class FinetuneTests: XCTestCase {
    static let words = "red blue green cat dog sun moon tree rock fish bird cake milk road ship star".split(
        separator: " ")

    /// Deterministic filler text.
    static func sentence(_ i: Int, _ n: Int = 5) -> String {
        (0..<n).map { String(words[(i * 7 + $0 * 3 + $0 * $0) % words.count]) }.joined(separator: " ")
    }

    static func writeMNLI(_ url: URL, count: Int, offset: Int = 0) throws {
        var rows = ["index\tpromptID\tpairID\tgenre\ts1b\ts2b\ts1p\ts2p\tsentence1\tsentence2\tlabel1\tgold_label"]
        let labels = ["contradiction", "entailment", "neutral"], markers = ["zzzz", "qqqq", "xxxx"]
        for i in 0..<count {
            let k = (i + offset) % 3
            rows.append(
                "\(i)\t1\t1\tfiction\tx\tx\tx\tx\t\(sentence(i + offset))\t\(markers[k]) \(sentence(i + offset + 1))\t"
                    + "\(labels[k])\t\(labels[k])")
        }
        try (rows.joined(separator: "\n") + "\n").write(to: url, atomically: true, encoding: .utf8)
    }

    static func writeQQP(_ url: URL, count: Int, offset: Int = 0) throws {
        var rows = ["id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate"]
        for i in 0..<count {
            let dup = (i + offset) % 2
            rows.append(
                "\(i)\t1\t2\t\(sentence(i + offset))?\t\(dup == 1 ? "zzzz " : "")\(sentence(i + offset + 2))?\t\(dup)")
        }
        try (rows.joined(separator: "\n") + "\n").write(to: url, atomically: true, encoding: .utf8)
    }

    static func writeRACE(_ dir: URL, files: Int, offset: Int = 0) throws {
        let middle = dir.appendingPathComponent("middle")
        try FileManager.default.createDirectory(at: middle, withIntermediateDirectories: true)
        for f in 0..<files {
            let i = f + offset, right = i % 4
            var options = [sentence(i, 1), sentence(i + 1, 1), sentence(i + 2, 1), sentence(i + 3, 1)]
            options[right] = "zzzz"
            let object: [String: Any] = [
                "article": sentence(i, 12), "questions": ["Which one is it?", "The answer is _ here."],
                "options": [options, options],
                "answers": ["ABCD".map(String.init)[right], "ABCD".map(String.init)[right]],
                "id": "middle\(i).txt",
            ]
            try JSONSerialization.data(withJSONObject: object).write(to: middle.appendingPathComponent("\(i).txt"))
        }
    }

    /// A bert-tiny pretrained for 60 iterations, and the task files.
    func prepare(_ name: String) throws -> URL {
        let dir = CLI.scratch(name)
        let pre = try CLI.run(
            [
                "train", "--config", CLI.config("bert-tiny.json"), "--train-iters", "60", "--eval-iters", "0", "--save",
                "pre",
            ],
            in: dir)
        XCTAssertEqual(pre.code, 0, pre.stderr)
        try Self.writeMNLI(dir.appendingPathComponent("mnli_train.tsv"), count: 480)
        try Self.writeMNLI(dir.appendingPathComponent("mnli_dev.tsv"), count: 90, offset: 1000)  // not whole batches
        try Self.writeQQP(dir.appendingPathComponent("qqp_train.tsv"), count: 480)
        try Self.writeQQP(dir.appendingPathComponent("qqp_dev.tsv"), count: 96, offset: 1000)
        try Self.writeRACE(dir.appendingPathComponent("race/train"), files: 120)
        try Self.writeRACE(dir.appendingPathComponent("race/dev"), files: 24, offset: 1000)
        return dir
    }

    func finetune(_ task: String, _ train: String, _ valid: String, _ extra: [String], in dir: URL, ranks: Int = 1)
        throws -> RunResult
    {
        let args =
            [
                "finetune", "--task", task, "--train-data", train, "--valid-data", valid, "--pretrained-checkpoint",
                "pre",
                "--config", CLI.config("bert-tiny.json"), "--num-threads", "1",
            ] + extra
        return ranks == 1 ? try CLI.run(args, in: dir) : try CLI.mpirun(ranks: ranks, args, in: dir)
    }

    func testSyntheticTasksOfEachFormatAreLearned() throws {
        let dir = try prepare("finetune-learn")
        for (task, train, valid, epochs) in [
            ("MNLI", "mnli_train.tsv", "mnli_dev.tsv", "6"), ("QQP", "qqp_train.tsv", "qqp_dev.tsv", "3"),
            ("RACE", "race/train", "race/dev", "4"),
        ] {
            let r = try finetune(
                task, train, valid,
                [
                    "--epochs", epochs, "--metrics-file", "\(task).jsonl", "--lr-warmup-iters", "5", "--save",
                    "\(task)-ft",
                ],
                in: dir)
            XCTAssertEqual(r.code, 0, "\(task): \(r.stderr)")
            XCTAssertTrue(r.stdout.contains("the \(task) head is new"), r.stdout)
            let accuracies = try CLI.jsonLines(dir.appendingPathComponent("\(task).jsonl")).compactMap {
                $0["valid_accuracy"] as? Double
            }
            XCTAssertEqual(accuracies.count, Int(epochs), "\(task): one validation per epoch")
            // The issue's bar: RACE ≥ 0.9 (chance 0.25); MNLI and QQP clearly above chance (1/3, 1/2).
            let bar = ["RACE": 0.9, "MNLI": 0.6, "QQP": 0.75][task]!
            print("finetune \(task): validation accuracy by epoch \(accuracies)")
            XCTAssertGreaterThanOrEqual(accuracies.last ?? 0, bar, "\(task): validation accuracy \(accuracies)")
            // The best validation accuracy's checkpoint is kept beside the latest.
            let record =
                try JSONSerialization.jsonObject(
                    with: Data(contentsOf: dir.appendingPathComponent("\(task)-ft/best/best.json"))) as? [String: Any]
            XCTAssertEqual(record?["accuracy"] as? Double, accuracies.max(), task)
            let perEpoch = (task == "RACE" ? 240 : 480) / 16  // RACE: 120 files of 2 questions
            let bestEpoch = try XCTUnwrap(accuracies.firstIndex(of: try XCTUnwrap(accuracies.max()))) + 1
            XCTAssertEqual(record?["iteration"] as? Int, bestEpoch * perEpoch, "\(task): the first epoch at the best")
            if task == "MNLI" { try checkEvaluation(in: dir, lastValidation: try XCTUnwrap(accuracies.last)) }
        }
    }

    /// `evaluate --task MNLI` on the finetuned checkpoint: every dev example once (90 of them: the last
    /// global batch is partly filler), the accuracy of training's last validation, the same on t = 2 × p = 2,
    /// and each file reported apart.
    func checkEvaluation(in dir: URL, lastValidation: Double) throws {
        try Self.writeMNLI(dir.appendingPathComponent("mnli_dev2.tsv"), count: 33, offset: 2000)
        let args = ["evaluate", "--task", "MNLI", "--load", "MNLI-ft", "--valid-data", "mnli_dev.tsv", "mnli_dev2.tsv"]
        let one = try CLI.run(args + ["--results-file", "e1.json"], in: dir)
        XCTAssertEqual(one.code, 0, one.stderr)
        XCTAssertTrue(one.stdout.contains("|MNLI mnli_dev2.tsv|"), one.stdout)
        let four = try CLI.mpirun(
            ranks: 4,
            args + [
                "--tensor-model-parallel-size", "2", "--pipeline-model-parallel-size", "2", "--results-file", "e4.json",
            ],
            in: dir)
        XCTAssertEqual(four.code, 0, four.stderr)
        func splits(_ name: String) throws -> [[String: Any]] {
            try XCTUnwrap(CLI.jsonObject(dir.appendingPathComponent(name))["splits"] as? [[String: Any]])
        }
        let a = try splits("e1.json"), b = try splits("e4.json")
        XCTAssertEqual(a.map { $0["total"] as? Int }, [90, 33])
        guard a.count == 2, b.count == 2 else { return XCTFail("\(a.count) and \(b.count) splits reported") }
        XCTAssertEqual(try XCTUnwrap(a[0]["accuracy"] as? Double), lastValidation, accuracy: 1e-9)
        for (x, y) in zip(a, b) {
            XCTAssertEqual(
                try XCTUnwrap(x["accuracy"] as? Double), try XCTUnwrap(y["accuracy"] as? Double), accuracy: 1e-12)
            XCTAssertEqual(x["correct"] as? Int, y["correct"] as? Int)
        }
    }

    func testGridsEqualOneRankAndResumeIsBitwise() throws {
        let dir = try prepare("finetune-grids")
        // At lr 2e-4: at bert-tiny's 1e-3 the RACE head's sharp early learning amplifies reduction-order
        // differences to 1.4e-5 of the loss by iteration 16.
        let twenty = ["--train-iters", "20", "--lr-decay-iters", "20", "--eval-iters", "0", "--lr", "2e-4"]
        for (task, train, valid) in [("MNLI", "mnli_train.tsv", "mnli_dev.tsv"), ("RACE", "race/train", "race/dev")] {
            let one = try finetune(task, train, valid, twenty + ["--metrics-file", "\(task)1.jsonl"], in: dir)
            XCTAssertEqual(one.code, 0, one.stderr)
            let reference = try CLI.losses(dir, "\(task)1")
            for (name, ranks, grid) in [
                ("t2p2", 4, ["--tensor-model-parallel-size", "2", "--pipeline-model-parallel-size", "2"]),
                ("d2", 2, ["--global-batch-size", "16"]),
            ] {
                let r = try finetune(
                    task, train, valid, twenty + grid + ["--metrics-file", "\(task)\(name).jsonl"], in: dir,
                    ranks: ranks)
                XCTAssertEqual(r.code, 0, "\(task) \(name): \(r.stderr)")
                assertLossesMatch(
                    try CLI.losses(dir, "\(task)\(name)"), reference, count: 20, relativeTolerance: 1e-5,
                    "\(task) \(name)")
            }
        }
        // With dropout (layers and the pooled output before the head), the masks do not depend on the grid.
        let dropout = twenty + ["--hidden-dropout", "0.1", "--attention-dropout", "0.1"]
        XCTAssertEqual(
            try finetune(
                "MNLI", "mnli_train.tsv", "mnli_dev.tsv", dropout + ["--metrics-file", "drop1.jsonl"], in: dir
            ).code, 0)
        let dropped = try CLI.losses(dir, "drop1")
        XCTAssertNotEqual(dropped, try CLI.losses(dir, "MNLI1"), "dropout changes the run")
        let dropGrid = try finetune(
            "MNLI", "mnli_train.tsv", "mnli_dev.tsv",
            dropout + [
                "--tensor-model-parallel-size", "2", "--pipeline-model-parallel-size", "2", "--metrics-file",
                "drop4.jsonl",
            ],
            in: dir, ranks: 4)
        XCTAssertEqual(dropGrid.code, 0, dropGrid.stderr)
        assertLossesMatch(
            try CLI.losses(dir, "drop4"), dropped, count: 20, relativeTolerance: 1e-5, "MNLI t2p2 with dropout")
        // MNLI: 480 examples are 30 iterations an epoch; stop at 10, resume to 40 across the boundary.
        let forty = ["--train-iters", "40", "--lr-decay-iters", "40", "--eval-iters", "0"]
        XCTAssertEqual(
            try finetune("MNLI", "mnli_train.tsv", "mnli_dev.tsv", forty + ["--metrics-file", "full.jsonl"], in: dir)
                .code, 0)
        let half = ["--train-iters", "10", "--lr-decay-iters", "40", "--eval-iters", "0", "--save", "ft"]
        XCTAssertEqual(try finetune("MNLI", "mnli_train.tsv", "mnli_dev.tsv", half, in: dir).code, 0)
        let resumed = try finetune(
            "MNLI", "mnli_train.tsv", "mnli_dev.tsv", forty + ["--load", "ft", "--metrics-file", "resumed.jsonl"],
            in: dir)
        XCTAssertEqual(resumed.code, 0, resumed.stderr)
        XCTAssertFalse(resumed.stdout.contains("pretrained BERT"), "a resumed run does not reload the pretrained model")
        XCTAssertEqual(try CLI.losses(dir, "resumed"), Array(try CLI.losses(dir, "full").suffix(30)), "resumed bitwise")
    }

    func testRefusals() throws {
        let dir = CLI.scratch("finetune-refusals")
        try Self.writeMNLI(dir.appendingPathComponent("m.tsv"), count: 32)
        let gpt = try CLI.run(
            [
                "finetune", "--task", "MNLI", "--train-data", "m.tsv", "--valid-data", "m.tsv", "--config",
                CLI.config("gpt2-tiny.json"),
            ], in: dir)
        XCTAssertEqual(gpt.code, 2)
        XCTAssertTrue(gpt.stderr.contains("finetuning tasks are for BERT"), gpt.stderr)
        let noStart = try CLI.run(
            [
                "finetune", "--task", "MNLI", "--train-data", "m.tsv", "--valid-data", "m.tsv", "--config",
                CLI.config("bert-tiny.json"),
            ],
            in: dir)
        XCTAssertNotEqual(noStart.code, 0)
        XCTAssertTrue(noStart.stderr.contains("pretrained"), noStart.stderr)
        let task = try CLI.run(
            ["finetune", "--task", "SQuAD", "--train-data", "m.tsv", "--valid-data", "m.tsv"], in: dir)
        XCTAssertEqual(task.code, 2)
        XCTAssertTrue(task.stderr.contains("RACE, MNLI or QQP"), task.stderr)
    }
}

// FinetuneReaders.swift — the released formats of Megatron's finetuning tasks, read from their
// descriptions (no data is bundled; users download RACE from its authors' site and GLUE from
// gluebenchmark.com):
//   RACE: a split directory (train/, dev/, test/) holding middle/ and high/, each *.txt file one JSON
//     object {"article", "questions": [q], "options": [[4 strings]], "answers": ["A"…"D"], "id"};
//     one sample per question, the answer letter as an index 0…3.
//   MNLI (GLUE TSV, a header row): sentence1 and sentence2 in columns 8 and 9, the label in the last
//     column (gold_label), mapped as Megatron does: contradiction 0, entailment 1, neutral 2;
//     test files (10 columns) carry no label.
//   QQP (GLUE TSV, a header row): id qid1 qid2 question1 question2 is_duplicate (0/1); test files:
//     id question1 question2, no label.
// A missing field, a wrong answer letter, an unknown label or a short row is an error naming the
// file and line (RACE files are one JSON object: the field is named instead).
import Foundation

public enum FinetuneDataError: Error, CustomStringConvertible {
    case bad(path: String, line: Int?, reason: String)

    public var description: String {
        switch self {
        case .bad(let p, let l, let r): return "\(p)\(l.map { " line \($0)" } ?? ""): \(r)"
        }
    }
}

/// One RACE question with its article and four options; `answer` 0…3.
public struct RACEQuestion: Sendable, Equatable {
    public let id: String, article: String, question: String, options: [String], answer: Int

    /// Megatron's question-with-option text: a "_" in the question is replaced by the option,
    /// otherwise the option is appended after a space.
    public func questionWithOption(_ k: Int) -> String {
        question.contains("_")
            ? question.replacingOccurrences(of: "_", with: options[k]) : question + " " + options[k]
    }
}

/// One sentence pair of a GLUE task; `label` nil in test files.
public struct SentencePair: Sendable, Equatable {
    public let first: String, second: String, label: Int?
    public init(first: String, second: String, label: Int?) {
        self.first = first; self.second = second; self.label = label
    }
}

public enum RACEReader {
    /// Every question of the RACE files under `path`: a split directory with middle/ and/or high/,
    /// or a directory of .txt files itself, in sorted file order.
    public static func read(path: String) throws -> [RACEQuestion] {
        let fm = FileManager.default
        var directories = ["middle", "high"].map { (path as NSString).appendingPathComponent($0) }
            .filter { fm.fileExists(atPath: $0) }
        if directories.isEmpty { directories = [path] }
        var questions: [RACEQuestion] = []
        for dir in directories {
            guard let names = try? fm.contentsOfDirectory(atPath: dir) else {
                throw FinetuneDataError.bad(path: dir, line: nil, reason: "cannot list this directory")
            }
            let files = names.filter { $0.hasSuffix(".txt") || $0.hasSuffix(".json") }.sorted()
            if files.isEmpty {
                throw FinetuneDataError.bad(
                    path: dir, line: nil, reason: "holds no RACE .txt files (expected middle/ and high/ of *.txt)")
            }
            for name in files { questions += try file((dir as NSString).appendingPathComponent(name)) }
        }
        return questions
    }

    /// The questions of one RACE file.
    public static func file(_ path: String) throws -> [RACEQuestion] {
        func bad(_ reason: String) -> FinetuneDataError { .bad(path: path, line: nil, reason: reason) }
        guard let data = FileManager.default.contents(atPath: path) else { throw bad("cannot read the file") }
        guard let object = try? JSONSerialization.jsonObject(with: data), let json = object as? [String: Any] else {
            throw bad("not a JSON object (a RACE file is one object with article, questions, options, answers, id)")
        }
        guard let article = json["article"] as? String else { throw bad("no string field 'article'") }
        guard let qs = json["questions"] as? [String] else { throw bad("no list of strings 'questions'") }
        guard let options = json["options"] as? [[String]] else { throw bad("no list of option lists 'options'") }
        guard let answers = json["answers"] as? [String] else { throw bad("no list of letters 'answers'") }
        let id = json["id"] as? String ?? (path as NSString).lastPathComponent
        guard qs.count == options.count, qs.count == answers.count else {
            throw bad("\(qs.count) questions, \(options.count) option lists and \(answers.count) answers differ")
        }
        return try qs.indices.map { i in
            guard options[i].count == 4 else { throw bad("question \(i + 1) has \(options[i].count) options, not 4") }
            guard let letter = answers[i].unicodeScalars.first, answers[i].count == 1,
                let answer = "ABCD".unicodeScalars.firstIndex(of: letter)
            else {
                throw bad("question \(i + 1) has answer '\(answers[i])'; answers are the letters A, B, C or D")
            }
            return RACEQuestion(
                id: id, article: article, question: qs[i], options: options[i],
                answer: "ABCD".unicodeScalars.distance(from: "ABCD".unicodeScalars.startIndex, to: answer))
        }
    }
}

public enum GLUEReader {
    public enum Task: String, Sendable, CaseIterable {
        case mnli = "MNLI"
        case qqp = "QQP"
        /// Label names in Megatron's id order.
        public var labels: [String] { self == .mnli ? ["contradiction", "entailment", "neutral"] : ["0", "1"] }
    }

    /// The sentence pairs of a GLUE TSV file of `task` (header row first).
    public static func read(_ task: Task, path: String) throws -> [SentencePair] {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8)
        else { throw FinetuneDataError.bad(path: path, line: nil, reason: "cannot read the file as UTF-8") }
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map {
            $0.hasSuffix("\r") ? $0.dropLast() : $0
        }
        while let last = lines.last, last.isEmpty { lines.removeLast() }
        guard let header = lines.first else { throw FinetuneDataError.bad(path: path, line: 1, reason: "empty file") }
        let columns = header.split(separator: "\t", omittingEmptySubsequences: false).count
        let (a, b, labelled) = try layout(task, columns: columns, path: path)
        return try lines.dropFirst().enumerated().map { offset, line in
            let n = offset + 2
            let row = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            guard row.count >= columns else {
                throw FinetuneDataError.bad(
                    path: path, line: n, reason: "\(row.count) columns where the header has \(columns)")
            }
            guard labelled else { return SentencePair(first: row[a], second: row[b], label: nil) }
            let name = row[row.count - 1].trimmingCharacters(in: .whitespaces)
            guard let label = task.labels.firstIndex(of: name) else {
                throw FinetuneDataError.bad(
                    path: path, line: n,
                    reason:
                        "unknown label '\(name)'; \(task.rawValue) labels are \(task.labels.joined(separator: ", "))")
            }
            return SentencePair(first: row[a], second: row[b], label: label)
        }
    }

    /// The text columns and whether rows carry a label, from the header's width.
    static func layout(_ task: Task, columns: Int, path: String) throws -> (Int, Int, Bool) {
        switch (task, columns) {
        case (.mnli, 10): return (8, 9, false)  // test_matched / test_mismatched
        case (.mnli, 11...): return (8, 9, true)  // train (12), dev (16)
        case (.qqp, 3): return (1, 2, false)  // test: id question1 question2
        case (.qqp, 6...): return (3, 4, true)  // id qid1 qid2 question1 question2 is_duplicate
        default:
            throw FinetuneDataError.bad(
                path: path, line: 1,
                reason: "a header of \(columns) columns is not a GLUE \(task.rawValue) file (MNLI: 10, 12 or 16; "
                    + "QQP: 3 or 6)")
        }
    }
}

// ZeroShotData.swift — the inputs of Megatron's zero-shot evaluation (tasks/zeroshot_gpt):
//   WikiText-103: the file detokenised (Megatron's wikitext_detokenizer rules, in order), tokenised
//     once, cut into windows of seq_length + 1 tokens every `overlapping_eval` tokens; window 0
//     scores all its targets, window i > 0 only its last `overlapping_eval`, so every target is
//     scored exactly once with at least seq_length − overlapping_eval tokens of context.
//   LAMBADA: one passage per JSON line; the target is the last BPE token (non-strict) or every BPE
//     piece of the last word (strict: context = the text before the word, stripped; target =
//     tokenize(" " + word)); an example is right when every target is the arg-max prediction.
// A window holds seq_length + 1 tokens (padded with the end-of-document id) and the label positions
// it scores (label j predicts token j + 1).
import Foundation

public struct EvalWindow: Sendable {
    public var tokens: [Int32]
    public var scored: [Int]
}

public enum WikiTextDetokenizer {
    /// Megatron's wikitext_detokenizer. Literal replacements work on UTF-8 bytes (as Python's
    /// str.replace does on code points), never on grapheme clusters: a space before a combining
    /// mark is still a space.
    public static func detokenize(_ input: String) -> String {
        var s = input
        s = replace(s, "s '", "s'")
        s = regex(s, "/' [0-9]/", "/'[0-9]/")
        for (a, b) in [
            (" @-@ ", "-"), (" @,@ ", ","), (" @.@ ", "."), (" : ", ": "), (" ; ", "; "), (" . ", ". "),
            (" ! ", "! "), (" ? ", "? "), (" , ", ", "),
        ] {
            s = replace(s, a, b)
        }
        s = regex(s, #"\(\s*([^\)]*?)\s*\)"#, "($1)")
        s = regex(s, #"\[\s*([^\]]*?)\s*\]"#, "[$1]")
        s = regex(s, #"\{\s*([^}]*?)\s*\}"#, "{$1}")
        s = regex(s, #""\s*([^"]*?)\s*""#, "\"$1\"")
        s = regex(s, #"'\s*([^']*?)\s*'"#, "'$1'")
        for (a, b) in [
            ("= = = =", "===="), ("= = =", "==="), ("= =", "=="), (" \u{B0} ", "\u{B0}"), (" \n", "\n"),
            ("\n ", "\n"), (" N ", " 1 "), (" 's", "'s"),
        ] {
            s = replace(s, a, b)
        }
        return s
    }

    /// Every non-overlapping occurrence of `a`, left to right, replaced by `b` (on UTF-8 bytes).
    static func replace(_ s: String, _ a: String, _ b: String) -> String {
        let text = Array(s.utf8), pattern = Array(a.utf8), with = Array(b.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(text.count)
        var i = 0
        while i < text.count {
            if text[i] == pattern[0], i + pattern.count <= text.count,
                text[i..<(i + pattern.count)].elementsEqual(pattern)
            {
                out += with; i += pattern.count
            } else {
                out.append(text[i]); i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func regex(_ s: String, _ pattern: String, _ template: String) -> String {
        let re = try! NSRegularExpression(pattern: pattern)
        return re.stringByReplacingMatches(in: s, range: NSRange(s.startIndex..., in: s), withTemplate: template)
    }

    /// Megatron's count of original tokens: `len(text.strip().split(" "))`, on code points.
    public static func originalTokenCount(_ text: String) -> Int {
        PythonText.strip(Array(text.unicodeScalars)).split(separator: " ", omittingEmptySubsequences: false).count
    }
}

/// Python's notion of whitespace (str.isspace, str.split(), str.strip()) on code points.
enum PythonText {
    static func isSpace(_ c: Unicode.Scalar) -> Bool { c.properties.isWhitespace || (0x1C...0x1F).contains(c.value) }

    static func strip(_ s: [Unicode.Scalar]) -> ArraySlice<Unicode.Scalar> {
        guard let first = s.firstIndex(where: { !isSpace($0) }), let last = s.lastIndex(where: { !isSpace($0) }) else {
            return []
        }
        return s[first...last]
    }

    static func string<C: Collection>(_ scalars: C) -> String where C.Element == Unicode.Scalar {
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars)
        return String(view)
    }
}

/// Overlapping windows over one token stream (Megatron's _LMDataset).
public struct LMWindows: Sendable {
    public let tokens: [Int32]
    public let seqLength: Int, overlap: Int, pad: Int32

    public init(tokens: [Int32], seqLength: Int, overlap: Int?, pad: Int32) {
        self.tokens = tokens; self.seqLength = seqLength; self.pad = pad
        self.overlap = max(1, min(overlap ?? seqLength, seqLength))
    }

    public var count: Int {
        let targets = max(tokens.count - 1 - overlap, 0)
        return max((targets + overlap - 1) / overlap + 1, 1)
    }

    public func window(_ i: Int) -> EvalWindow {
        let start = i * overlap
        let end = min(tokens.count, start + seqLength + 1)
        var w = start < end ? Array(tokens[start..<end]) : []
        let real = w.count
        w += [Int32](repeating: pad, count: seqLength + 1 - real)
        // Label j predicts token j + 1: real while j + 1 < real; windows after the first score their last `overlap`.
        let first = i == 0 || overlap == seqLength ? 0 : seqLength - overlap
        return EvalWindow(tokens: w, scored: Array(first..<max(first, real - 1)))
    }
}

public enum EvaluationDataError: Error, CustomStringConvertible {
    case badLine(path: String, line: Int, reason: String)
    case targetTooLong(path: String, line: Int, tokens: Int, seqLength: Int)
    case unreadable(path: String)

    public var description: String {
        switch self {
        case .unreadable(let p): return "cannot read '\(p)' as UTF-8 text: check --valid-data"
        case .badLine(let p, let l, let r):
            return "\(p) line \(l): \(r) (LAMBADA needs one {\"text\": …} object per line)"
        case .targetTooLong(let p, let l, let t, let s):
            return
                "\(p) line \(l): the target word alone has \(t) tokens, leaving no context within seq_length "
                + "\(s); raise --seq-length"
        }
    }
}

/// LAMBADA examples as windows whose scored labels are the target tokens.
public enum LambadaExamples {
    /// The examples of a LAMBADA jsonl file, and how many were longer than seq_length + 1 tokens.
    /// Megatron's dataset assumes every example fits (a longer one makes a sample of the wrong
    /// length); here a longer one keeps its last seq_length + 1 tokens — the target and as much of
    /// the context as fits, cut from the left, as a model with that context window would read it.
    public static func load(path: String, tokenizer: Tokenizer, strict: Bool, seqLength: Int) throws -> (
        windows: [EvalWindow], truncated: Int
    ) {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8)
        else {
            throw EvaluationDataError.unreadable(path: path)
        }
        var windows: [EvalWindow] = []
        var truncated = 0
        for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated()
        where !line.trimmingCharacters(in: .whitespaces).isEmpty {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                let passage = object["text"] as? String
            else {
                throw EvaluationDataError.badLine(
                    path: path, line: n + 1, reason: "not a JSON object with a \"text\" string")
            }
            let (context, target) = split(passage, tokenizer: tokenizer, strict: strict)
            guard !target.isEmpty else {
                throw EvaluationDataError.badLine(path: path, line: n + 1, reason: "the passage has no last word")
            }
            if target.count >= seqLength + 1 {
                throw EvaluationDataError.targetTooLong(
                    path: path, line: n + 1, tokens: target.count, seqLength: seqLength)
            }
            var kept = context
            if context.count + target.count > seqLength + 1 {
                kept = Array(context.suffix(seqLength + 1 - target.count))
                truncated += 1
            }
            var tokens = kept + target
            let scored = Array((kept.count - 1)..<(tokens.count - 1))
            tokens += [Int32](repeating: tokenizer.eod, count: seqLength + 1 - tokens.count)
            windows.append(EvalWindow(tokens: tokens, scored: scored))
        }
        return (windows, truncated)
    }

    /// (context, target) token ids of a passage.
    public static func split(_ text: String, tokenizer: Tokenizer, strict: Bool) -> ([Int32], [Int32]) {
        if !strict {
            let ids = tokenizer.encode(Array(text.utf8))
            return (Array(ids.dropLast()), ids.last.map { [$0] } ?? [])
        }
        // Python: last = text.split()[-1]; start = text.rfind(last); context = text[:start].strip()
        let scalars = Array(text.unicodeScalars)
        guard let end = scalars.lastIndex(where: { !PythonText.isSpace($0) }) else { return ([], []) }
        var begin = end
        while begin > 0 && !PythonText.isSpace(scalars[begin - 1]) { begin -= 1 }
        let last = Array(scalars[begin...end])
        var start = scalars.count - last.count
        while start >= 0 && !scalars[start..<(start + last.count)].elementsEqual(last) { start -= 1 }
        let context = PythonText.string(PythonText.strip(Array(scalars[..<start])))
        return (
            tokenizer.encode(Array(context.utf8)),
            tokenizer.encodeContinuation(Array((" " + PythonText.string(last)).utf8))
        )
    }
}

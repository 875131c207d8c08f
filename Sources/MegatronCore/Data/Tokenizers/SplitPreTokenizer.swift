// SplitPreTokenizer.swift — the pre-tokenisation rule of Llama 3 and Qwen 2 tokenizers (Hugging Face's
// `Split` pre-tokenizer, behaviour Isolated), a hand-written scanner over UTF-8 bytes equivalent to
//     (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|
//     \s*[\r\n]+|\s+(?!\S)|\s+
// (Llama 3; Qwen 2's has \p{N} alone: one digit per piece), the first matching alternative at each
// position with the regex's backtracking worked out: `\s*[\r\n]+` ends after the last line break of
// a whitespace run, `\s+(?!\S)` leaves a run's last character to the next piece unless the text
// ends. Character classes are GPT2PreTokenizer's (\s Unicode White_Space, \p{L} letters, \p{N}
// numbers; a byte outside valid UTF-8 is "other"); the case-insensitive contractions also take
// U+017F (ſ), which folds to s. The pieces concatenate back to the input exactly.

struct SplitPreTokenizer: PatternScanner, Sendable {
    static let llama3Pattern =
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|"#
        + #"\s+(?!\S)|\s+"#
    static let qwen2Pattern =
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|"#
        + #"\s+(?!\S)|\s+"#

    private let scanner = GPT2PreTokenizer()
    /// Digits per piece: 3 (Llama 3) or 1 (Qwen 2, tiktoken v1).
    let maxDigits: Int
    /// Whether the contractions alternative comes first (not in Megatron's tiktoken v1).
    let contractions: Bool

    /// The scanner of one of the known patterns (nil for any other).
    init?(pattern: String) {
        switch pattern {
        case Self.llama3Pattern: maxDigits = 3
        case Self.qwen2Pattern: maxDigits = 1
        default: return nil
        }
        contractions = true
    }

    /// Megatron's tiktoken v1 pattern, `[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]|
    /// \s+(?!\S)|\s+`: Qwen 2's without the contractions (its possessive quantifiers match as the greedy
    /// ones here, the classes they stand between being disjoint; `\s*[\r\n]` and `\s*[\r\n]+` both end
    /// after a whitespace run's last line break).
    static var tiktokenV1: SplitPreTokenizer { SplitPreTokenizer(maxDigits: 1, contractions: false) }

    private init(maxDigits: Int, contractions: Bool) {
        self.maxDigits = maxDigits
        self.contractions = contractions
    }

    /// The end of the piece that starts at `i`.
    func piece(_ p: UnsafePointer<UInt8>, _ i: Int, _ n: Int) -> Int {
        if contractions, p[i] == 0x27, let end = contraction(p, i + 1, n) { return end }
        let (first, firstLength) = scanner.character(p, i, n)
        // [^\r\n\p{L}\p{N}]?\p{L}+
        if first == .letter { return run(of: .letter, p, from: i + firstLength, n) }
        if first != .number && !Self.isLineBreak(p[i]) && i + firstLength < n {
            let (next, nextLength) = scanner.character(p, i + firstLength, n)
            if next == .letter { return run(of: .letter, p, from: i + firstLength + nextLength, n) }
        }
        // \p{N}{1,maxDigits}
        if first == .number {
            var k = i + firstLength, digits = 1
            while digits < maxDigits && k < n {
                let (c, l) = scanner.character(p, k, n)
                guard c == .number else { break }
                k += l; digits += 1
            }
            return k
        }
        //  ?[^\s\p{L}\p{N}]+[\r\n]*
        let j = p[i] == 0x20 && i + 1 < n ? i + 1 : i
        let (atJ, lengthAtJ) = scanner.character(p, j, n)
        if atJ == .other {
            var k = run(of: .other, p, from: j + lengthAtJ, n)
            while k < n && Self.isLineBreak(p[k]) { k += 1 }
            return k
        }
        return Self.whitespaceEnd(p, i, n) { k in
            let (c, l) = scanner.character(p, k, n)
            return c == .space ? l : nil
        }
    }

    /// The end of `'s 't 're 've 'm 'll 'd` (any case) whose letters start at `i`, or nil.
    func contraction(_ p: UnsafePointer<UInt8>, _ i: Int, _ n: Int) -> Int? {
        guard i < n else { return nil }
        let a = p[i] | 0x20  // ASCII lower case (only letters are compared)
        if a == 0x73 || a == 0x74 || a == 0x6D || a == 0x64 { return i + 1 }  // s t m d
        if p[i] == 0xC5 && i + 1 < n && p[i + 1] == 0xBF { return i + 2 }  // ſ (U+017F) folds to s
        guard i + 1 < n else { return nil }
        let b = p[i + 1] | 0x20
        if (a == 0x72 && b == 0x65) || (a == 0x76 && b == 0x65) || (a == 0x6C && b == 0x6C) { return i + 2 }
        return nil
    }

    /// The end of the run of `cls` characters from `k`.
    @inline(__always) func run(
        of cls: GPT2PreTokenizer.CharClass, _ p: UnsafePointer<UInt8>, from start: Int, _ n: Int
    ) -> Int {
        var k = start
        while k < n {
            let (c, l) = scanner.character(p, k, n)
            guard c == cls else { break }
            k += l
        }
        return k
    }
}

// GPT2PreTokenizer.swift — GPT-2's pre-tokenisation rule, a hand-written scanner over UTF-8 bytes
// equivalent to the regular expression
//     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// (first matching alternative at each position). \s is Unicode White_Space, \p{L} letters, \p{N}
// numbers. A byte that is not part of valid UTF-8 counts as "other" (neither letter, number nor
// space), so any byte string splits, and the pieces concatenate back to the input exactly.

struct GPT2PreTokenizer: Sendable {
    enum CharClass: UInt8 { case letter, number, space, other }

    /// Classes of the scalars below 0x30000 (every letter and number outside is treated as other,
    /// which matches the regex except in unassigned and rare supplementary planes).
    private let classes: [CharClass]

    /// Built once per process and shared by every tokenizer (196,608 entries).
    private static let sharedClasses: [CharClass] = {
        var c = [CharClass](repeating: .other, count: 0x30000)
        for v in 0..<0x30000 {
            guard let s = Unicode.Scalar(UInt32(v)) else { continue }
            let p = s.properties
            if p.isWhitespace { c[v] = .space; continue }
            switch p.generalCategory {
            case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: c[v] = .letter
            case .decimalNumber, .letterNumber, .otherNumber: c[v] = .number
            default: break
            }
        }
        return c
    }()

    init() { classes = Self.sharedClasses }

    /// The class and byte length of the character starting at `i` (`i < n`).
    @inline(__always) func character(_ p: UnsafePointer<UInt8>, _ i: Int, _ n: Int) -> (CharClass, Int) {
        let b0 = p[i]
        if b0 < 0x80 { return (classes[Int(b0)], 1) }
        guard let (scalar, length) = UTF8Scalar.decode(p, i, n) else { return (.other, 1) }
        return (scalar < 0x30000 ? classes[Int(scalar)] : .other, length)
    }

    /// Calls `body(start, end)` for every piece of `p[0..<n]`, in order.
    @inline(__always) func split(_ p: UnsafePointer<UInt8>, count n: Int, _ body: (Int, Int) -> Void) {
        var i = 0
        while i < n {
            let start = i
            // 's 't 're 've 'm 'll 'd
            if p[i] == 0x27, i + 1 < n {
                let a = p[i + 1]
                if a == 0x73 || a == 0x74 || a == 0x6D || a == 0x64 { body(i, i + 2); i += 2; continue }
                if i + 2 < n {
                    let b = p[i + 2]
                    if (a == 0x72 && b == 0x65) || (a == 0x76 && b == 0x65) || (a == 0x6C && b == 0x6C) {
                        body(i, i + 3); i += 3; continue
                    }
                }
            }
            var (cls, len) = character(p, i, n)
            var j = i
            if p[i] == 0x20, i + 1 < n {
                let (next, nextLen) = character(p, i + 1, n)
                if next != .space { j = i + 1; cls = next; len = nextLen }
            }
            if cls != .space {
                // ` ?` + a run of one class (letters, numbers or other).
                var k = j + len
                while k < n {
                    let (c, l) = character(p, k, n)
                    if c != cls { break }
                    k += l
                }
                body(start, k); i = k
                continue
            }
            // Whitespace: the run, but leave its last character to the next piece when a
            // non-space follows (\s+(?!\S)); a single space before a non-space is \s+.
            var k = i + len, last = i
            while k < n {
                let (c, l) = character(p, k, n)
                if c != .space { break }
                last = k
                k += l
            }
            if k < n && last > i { k = last } else if k < n { k = i + len }
            body(start, k); i = k
        }
    }
}

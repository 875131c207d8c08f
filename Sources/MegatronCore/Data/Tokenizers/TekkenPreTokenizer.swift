// TekkenPreTokenizer.swift — Megatron's tiktoken v2 pattern (Mistral's Tekken), a hand-written scanner
// over UTF-8 bytes equivalent to
//     [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|
//     [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}|
//      ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+
// taking at each position the first alternative that matches, with the regex's backtracking worked
// out. Call U the "upper" class [Lu Lt Lm Lo M] and W the "lower" one [Ll Lm Lo M] (modifier and
// other letters and marks are in both). The first alternative takes U's longest run, then W's run if
// a lower-case letter follows; otherwise it gives back U characters until the last one that is also
// in W, which ends the piece (so "CamelCase" is "Camel" + "Case", "iPhone" "i" + "Phone", "HTTPServer"
// one piece); the second takes a run of U alone ("WORLD"). In both the optional
// leading character is tried first and, when the rest fails, dropped. Marks are not letters: they
// also count as the leading character and as punctuation. Whitespace ends pieces as in
// PatternScanner. A byte outside valid UTF-8 is punctuation. The pieces concatenate back to the
// input exactly.

struct TekkenPreTokenizer: PatternScanner, Sendable {
    enum CharClass: UInt8 { case upper, lower, caseless, mark, number, space, other }

    static let pattern =
        #"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+"#
        + #"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*"#
        + #"|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    /// Classes of the scalars below 0x40000, built once per process; the rest are classified when met.
    private static let tableEnd = 0x40000
    private static let table: [CharClass] = (0..<tableEnd).map { classify(UInt32($0)) }
    private let classes = TekkenPreTokenizer.table

    static func classify(_ v: UInt32) -> CharClass {
        guard let s = Unicode.Scalar(v) else { return .other }
        let p = s.properties
        if p.isWhitespace { return .space }
        switch p.generalCategory {
        case .uppercaseLetter, .titlecaseLetter: return .upper
        case .lowercaseLetter: return .lower
        case .modifierLetter, .otherLetter: return .caseless
        case .nonspacingMark, .spacingMark, .enclosingMark: return .mark
        case .decimalNumber, .letterNumber, .otherNumber: return .number
        default: return .other
        }
    }

    @inline(__always) static func inUpper(_ c: CharClass) -> Bool { c == .upper || c == .caseless || c == .mark }
    @inline(__always) static func inLower(_ c: CharClass) -> Bool { c == .lower || c == .caseless || c == .mark }
    /// [^\r\n\p{L}\p{N}] (the check for \r and \n is on the byte).
    @inline(__always) static func canLead(_ c: CharClass) -> Bool { c == .space || c == .mark || c == .other }
    /// [^\s\p{L}\p{N}]
    @inline(__always) static func isPunctuation(_ c: CharClass) -> Bool { c == .mark || c == .other }

    /// The class and byte length of the character starting at `i` (`i < n`).
    @inline(__always) func character(_ p: UnsafePointer<UInt8>, _ i: Int, _ n: Int) -> (CharClass, Int) {
        guard let (scalar, length) = UTF8Scalar.decode(p, i, n) else { return (.other, 1) }
        return (Int(scalar) < Self.tableEnd ? classes[Int(scalar)] : Self.classify(scalar), length)
    }

    /// The end of the piece that starts at `i`.
    func piece(_ p: UnsafePointer<UInt8>, _ i: Int, _ n: Int) -> Int {
        let (first, firstLength) = character(p, i, n)
        let leads = Self.canLead(first) && !Self.isLineBreak(p[i]) && i + firstLength < n
        // The two letter alternatives, each with the leading character and then without it.
        if leads, let end = upperThenLower(p, i + firstLength, n) { return end }
        if let end = upperThenLower(p, i, n) { return end }
        if leads, let end = upperRunThenLower(p, i + firstLength, n) { return end }
        if let end = upperRunThenLower(p, i, n) { return end }
        if first == .number { return i + firstLength }
        //  ?[^\s\p{L}\p{N}]+[\r\n/]*
        var j = i
        if p[i] == 0x20 && i + 1 < n && Self.isPunctuation(character(p, i + 1, n).0) { j = i + 1 }
        let (atJ, lengthAtJ) = character(p, j, n)
        if Self.isPunctuation(atJ) {
            var k = j + lengthAtJ
            while k < n {
                let (c, l) = character(p, k, n)
                guard Self.isPunctuation(c) else { break }
                k += l
            }
            while k < n && (Self.isLineBreak(p[k]) || p[k] == 0x2F) { k += 1 }
            return k
        }
        return Self.whitespaceEnd(p, i, n) { k in
            let (c, l) = character(p, k, n)
            return c == .space ? l : nil
        }
    }

    /// U*W+ from `s`: U's longest run, then W's run when a lower-case letter follows, else the run
    /// cut after its last character that is also in W; nil when there is none.
    func upperThenLower(_ p: UnsafePointer<UInt8>, _ s: Int, _ n: Int) -> Int? {
        var k = s, lastLowerEnd: Int? = nil
        while k < n {
            let (c, l) = character(p, k, n)
            guard Self.inUpper(c) else {
                return c == .lower ? lowerRun(p, from: k, n) : lastLowerEnd
            }
            k += l
            if Self.inLower(c) { lastLowerEnd = k }
        }
        return lastLowerEnd
    }

    /// U+W* from `s`: U's longest run (at least one character), then W's run.
    func upperRunThenLower(_ p: UnsafePointer<UInt8>, _ s: Int, _ n: Int) -> Int? {
        var k = s
        while k < n {
            let (c, l) = character(p, k, n)
            guard Self.inUpper(c) else { break }
            k += l
        }
        return k == s ? nil : lowerRun(p, from: k, n)
    }

    /// The end of W's run from `start`.
    func lowerRun(_ p: UnsafePointer<UInt8>, from start: Int, _ n: Int) -> Int {
        var k = start
        while k < n {
            let (c, l) = character(p, k, n)
            guard Self.inLower(c) else { break }
            k += l
        }
        return k
    }
}

/// One UTF-8 scalar, strictly: nil for a byte that does not start a valid encoding (overlong forms,
/// surrogates and values beyond Unicode included).
enum UTF8Scalar {
    @inline(__always) static func decode(_ p: UnsafePointer<UInt8>, _ i: Int, _ n: Int) -> (UInt32, Int)? {
        let b0 = p[i]
        if b0 < 0x80 { return (UInt32(b0), 1) }
        var scalar: UInt32, length: Int
        if b0 & 0xE0 == 0xC0 {
            scalar = UInt32(b0 & 0x1F); length = 2
        } else if b0 & 0xF0 == 0xE0 {
            scalar = UInt32(b0 & 0x0F); length = 3
        } else if b0 & 0xF8 == 0xF0 {
            scalar = UInt32(b0 & 0x07); length = 4
        } else {
            return nil
        }
        guard i + length <= n else { return nil }
        for k in 1..<length {
            let b = p[i + k]
            guard b & 0xC0 == 0x80 else { return nil }
            scalar = scalar << 6 | UInt32(b & 0x3F)
        }
        let minimum: UInt32 = length == 2 ? 0x80 : length == 3 ? 0x800 : 0x10000
        guard scalar >= minimum, scalar <= 0x10FFFF, !(0xD800...0xDFFF).contains(scalar) else { return nil }
        return (scalar, length)
    }
}

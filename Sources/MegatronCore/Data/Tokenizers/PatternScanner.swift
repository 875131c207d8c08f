// PatternScanner.swift — what the hand-written scanners of the Split-style pre-tokenisation patterns
// (SplitPreTokenizer: Llama 3, Qwen 2, tiktoken v1; TekkenPreTokenizer: tiktoken v2) share: the loop
// over a text's pieces, and the whitespace alternatives both patterns end with,
// `\s*[\r\n]+|\s+(?!\S)|\s+` (`\s*[\r\n]` matches as `\s*[\r\n]+` does), with the regex's
// backtracking worked out: after a whitespace run's last line break, else the run less its last
// character when a non-space follows it, else the whole run.

protocol PatternScanner {
    /// The end of the piece that starts at `i` (`i < n`).
    func piece(_ p: UnsafePointer<UInt8>, _ i: Int, _ n: Int) -> Int
}

extension PatternScanner {
    /// Calls `body(start, end)` for every piece of `p[0..<n]`, in order.
    func split(_ p: UnsafePointer<UInt8>, count n: Int, _ body: (Int, Int) -> Void) {
        var i = 0
        while i < n {
            let end = piece(p, i, n)
            body(i, end)
            i = end
        }
    }

    @inline(__always) static func isLineBreak(_ b: UInt8) -> Bool { b == 0x0A || b == 0x0D }

    /// The end of the whitespace alternatives from `i`, where `spaceLength(k)` is the byte length of
    /// the whitespace character at k (nil for any other character).
    @inline(__always) static func whitespaceEnd(
        _ p: UnsafePointer<UInt8>, _ i: Int, _ n: Int, spaceLength: (Int) -> Int?
    ) -> Int {
        var end = i, lastBreak = -1, lastStart = i, characters = 0
        while end < n, let l = spaceLength(end) {
            if isLineBreak(p[end]) { lastBreak = end }
            lastStart = end; end += l; characters += 1
        }
        if lastBreak >= 0 { return lastBreak + 1 }  // \s*[\r\n]+
        if end == n { return end }  // \s+(?!\S) at the end of the text
        if characters >= 2 { return lastStart }  // \s+(?!\S), giving back one character
        return end  // \s+
    }
}

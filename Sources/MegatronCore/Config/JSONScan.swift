// JSONScan.swift — what Foundation's JSON parser lets through or reports without a place, checked on
// the raw text of a config file before it is decoded: a key given twice in one object (JSON leaves
// it undefined; Foundation keeps one silently), the non-standard literals NaN / Infinity /
// -Infinity, and numbers too large for a Double (1e999). Each is an error naming the key and its
// line and column. Strings (with escapes) are skipped exactly, so text inside them never counts.
import Foundation

enum JSONScan {
    /// Throws ConfigError.invalidJSON (with `path`) at the first problem in `data`.
    static func check(_ data: Data, path: String) throws {
        let bytes = [UInt8](data)
        var i = 0, line = 1, lineStart = 0
        // One frame per open object: the keys seen, and whether the next string is a key.
        var objects: [(keys: Set<String>, expectKey: Bool)] = []
        var stack: [UInt8] = []  // open brackets: '{' or '['
        var lastKey = "(top level)"
        func place(_ at: Int) -> String { "line \(line), column \(at - lineStart + 1)" }
        func fail(_ reason: String) throws -> Never { throw ConfigError.invalidJSON(path: path, reason: reason) }
        while i < bytes.count {
            let c = bytes[i]
            switch c {
            case UInt8(ascii: "\n"):
                line += 1; lineStart = i + 1; i += 1
            case UInt8(ascii: "\""):
                let start = i
                i += 1
                var raw: [UInt8] = []
                while i < bytes.count && bytes[i] != UInt8(ascii: "\"") {
                    if bytes[i] == UInt8(ascii: "\\") && i + 1 < bytes.count { raw.append(bytes[i]); i += 1 }
                    raw.append(bytes[i]); i += 1
                }
                i += 1
                if var top = objects.last, top.expectKey, stack.last == UInt8(ascii: "{") {
                    let key = String(decoding: raw, as: UTF8.self)
                    if top.keys.contains(key) {
                        try fail("key \"\(key)\" is given twice in one object (\(place(start))); keep one")
                    }
                    top.keys.insert(key); top.expectKey = false
                    objects[objects.count - 1] = top
                    lastKey = key
                }
            case UInt8(ascii: "{"):
                stack.append(c); objects.append(([], true)); i += 1
            case UInt8(ascii: "["):
                stack.append(c); i += 1
            case UInt8(ascii: "}"):
                if stack.last == UInt8(ascii: "{") { stack.removeLast(); objects.removeLast() }
                i += 1
            case UInt8(ascii: "]"):
                if stack.last == UInt8(ascii: "[") { stack.removeLast() }
                i += 1
            case UInt8(ascii: ","):
                if stack.last == UInt8(ascii: "{") { objects[objects.count - 1].expectKey = true }
                i += 1
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "a")...UInt8(ascii: "z"):
                let start = i
                while i < bytes.count,
                    bytes[i] == UInt8(ascii: "-") || bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: ".")
                        || (bytes[i] >= 48 && bytes[i] <= 57) || (bytes[i] | 0x20 >= 97 && bytes[i] | 0x20 <= 122)
                {
                    i += 1
                }
                let word = String(decoding: bytes[start..<i], as: UTF8.self)
                if ["true", "false", "null"].contains(word) { continue }
                guard let value = Double(word), word.first != "N", word.first != "n", !word.contains("nf") else {
                    try fail(
                        "\(word) at \(place(start)) (key \"\(lastKey)\") is not a JSON value; JSON has no NaN or "
                            + "Infinity — give a finite number")
                }
                if !value.isFinite {
                    try fail(
                        "\(word) at \(place(start)) (key \"\(lastKey)\") is too large for a number; give a finite one")
                }
            default:
                i += 1
            }
        }
    }
}

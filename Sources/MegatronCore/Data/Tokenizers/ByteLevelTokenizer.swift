// ByteLevelTokenizer.swift — the default tokenizer: one token per byte (ids 0…255) plus
// `<|endoftext|>` (id 256) between documents. Lossless for any input, invalid UTF-8 included.

public struct ByteLevelTokenizer: Tokenizer {
    public static let endOfText: Int32 = 256
    public var vocabSize: Int { 257 }
    public var eod: Int32 { Self.endOfText }

    public var name: String { "ByteLevelTokenizer" }

    public init() {}

    public func encode(_ bytes: UnsafeBufferPointer<UInt8>) -> [Int32] { bytes.map { Int32($0) } }

    /// Bytes of the ids; `<|endoftext|>` becomes its literal text.
    public func decode(_ ids: [Int32]) -> [UInt8] {
        ids.flatMap { $0 == Self.endOfText ? Array("<|endoftext|>".utf8) : [UInt8(truncatingIfNeeded: $0)] }
    }
}

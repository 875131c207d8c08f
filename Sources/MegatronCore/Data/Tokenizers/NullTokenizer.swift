// NullTokenizer.swift — Megatron's NullTokenizer for runs whose data are token ids already: text is
// ids written as decimal numbers separated by spaces ("464 1468 582"), and decoding writes them back
// the same way. `vocab_size` ids; the last one is the end-of-document token. Used by `generate` and
// `serve` when a checkpoint was trained with tokenizer_type NullTokenizer.
public struct NullTokenizer: Tokenizer {
    public let vocabSize: Int
    public var eod: Int32 { Int32(vocabSize - 1) }
    public var name: String { "NullTokenizer (\(vocabSize) ids)" }

    public init(vocabSize: Int) { self.vocabSize = vocabSize }

    /// The numbers in the text that are ids of this vocabulary; anything else is skipped.
    public func encode(_ text: UnsafeBufferPointer<UInt8>) -> [Int32] {
        String(decoding: text, as: UTF8.self).split(whereSeparator: { $0 == " " || $0 == "\n" }).compactMap {
            guard let id = Int32($0), id >= 0, Int(id) < vocabSize else { return nil }
            return id
        }
    }

    /// Each id followed by a space.
    public func decode(_ ids: [Int32]) -> [UInt8] { ids.flatMap { Array("\($0) ".utf8) } }
}

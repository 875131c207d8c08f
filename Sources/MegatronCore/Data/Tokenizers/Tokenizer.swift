// Tokenizer.swift — what every tokenizer offers (Megatron's MegatronTokenizer): vocabulary size,
// the end-of-document id, encode and decode; `Tokenizers.make` builds one from the config keys
// `tokenizer_type`, `vocab_file`, `merge_file`, `tokenizer_model`, with errors that name the key and the file.
import Foundation

public protocol Tokenizer: Sendable {
    var name: String { get }
    var vocabSize: Int { get }
    /// The id appended after each document (`--append-eod`).
    var eod: Int32 { get }
    func encode(_ text: UnsafeBufferPointer<UInt8>) -> [Int32]
    func decode(_ ids: [Int32]) -> [UInt8]
    /// The ids of `text` as it continues a text already encoded (LAMBADA's " word" after its
    /// context): `encode` for byte-level BPE and WordPiece; SentencePiece leaves out the BOS and
    /// lets the dummy prefix stand for the leading space.
    func encodeContinuation(_ text: [UInt8]) -> [Int32]
    /// The text of `ids` as it continues the text of `context` (generated tokens after their
    /// prompt): `decode` where a token's text does not depend on what precedes it; SentencePiece
    /// keeps the leading space that it drops at the start of a text.
    func decodeContinuation(_ ids: [Int32], after context: [Int32]) -> [UInt8]
}

extension Tokenizer {
    public func encode(_ bytes: [UInt8]) -> [Int32] { bytes.withUnsafeBufferPointer { encode($0) } }
    public func encodeContinuation(_ text: [UInt8]) -> [Int32] { encode(text) }
    public func decodeContinuation(_ ids: [Int32], after context: [Int32]) -> [UInt8] { decode(ids) }
}

public enum TokenizerError: Error, CustomStringConvertible {
    case unreadable(path: String, key: String)
    case malformed(path: String, reason: String)
    case mismatch(vocab: String, merges: String, line: Int, token: String)
    case missingFile(key: String, tokenizer: String)

    public var description: String {
        switch self {
        case .unreadable(let p, let k): return "cannot read '\(p)' (`\(k)`): check the path"
        case .malformed(let p, let r): return "'\(p)' is not a valid tokenizer file: \(r)"
        case .mismatch(let v, let m, let l, let t):
            return
                "the vocabulary and merges do not match: '\(m)' line \(l) uses token '\(t)', which '\(v)' does not "
                + "have; pass the vocab.json and merges.txt of the same tokenizer"
        case .missingFile(let k, let t): return "\(t) needs `\(k)`"
        }
    }
}

public enum Tokenizers {
    /// The tokenizer of a config's `tokenizer_type` and files.
    public static func make(config c: TrainingConfig) throws -> Tokenizer {
        let tokenizer = try make(
            type: c.tokenizerType, vocabFile: c.vocabFile, mergeFile: c.mergeFile, tokenizerModel: c.tokenizerModel,
            tiktoken: c.tiktokenPattern.map {
                TikTokenSettings(
                    pattern: $0, vocabSize: c.vocabSize, numSpecialTokens: c.tiktokenNumSpecialTokens,
                    specialTokens: c.tokenizerSpecialTokens.isEmpty ? nil : c.tokenizerSpecialTokens)
            })
        // HuggingFaceTokenizer under a larger vocab_size: the model's rows (Qwen 2.5's 151,936 over
        // its tokenizer's 151,665 ids); the ids above the tokenizer's are never produced.
        if let hf = tokenizer as? HuggingFaceTokenizer, let rows = c.vocabSize {
            guard rows >= hf.vocabSize else {
                throw ConfigError.invalidValue(
                    key: "vocab_size", value: "\(rows)",
                    rule: "must be at least the \(hf.vocabSize) ids of HuggingFaceTokenizer's tokenizer_model")
            }
            hf.extendVocabulary(to: rows)
        }
        return tokenizer
    }

    /// The tokenizer a config names (`ByteLevelTokenizer`, `GPT2BPETokenizer`, `BertWordPieceLowerCase`,
    /// `BertWordPieceCase`, over a SentencePiece `tokenizer_model` `SentencePieceTokenizer`,
    /// `GPTSentencePieceTokenizer`, `Llama2Tokenizer`, over a tokenizer.json `HuggingFaceTokenizer`, and
    /// over a tiktoken rank file `TikTokenizer` with its `tiktoken` settings).
    /// (NullTokenizer has no text side: it is the byte-level tokenizer here; its ids come preprocessed.)
    public static func make(
        type: TokenizerType, vocabFile: String?, mergeFile: String?, tokenizerModel: String? = nil,
        tiktoken: TikTokenSettings? = nil
    ) throws -> Tokenizer {
        switch type {
        case .tikToken:
            guard let tokenizerModel else {
                throw TokenizerError.missingFile(key: "tokenizer_model", tokenizer: type.rawValue)
            }
            guard let tiktoken else {
                throw TokenizerError.missingFile(key: "tiktoken_pattern", tokenizer: type.rawValue)
            }
            return try TikTokenizer(path: tokenizerModel, settings: tiktoken)
        case .sentencePiece, .gptSentencePiece, .llama2:
            guard let tokenizerModel else {
                throw TokenizerError.missingFile(key: "tokenizer_model", tokenizer: type.rawValue)
            }
            let flavour: SentencePieceTokenizer.Flavour =
                type == .llama2 ? .llama2 : type == .gptSentencePiece ? .gpt : .megatron
            return try SentencePieceTokenizer(modelFile: tokenizerModel, flavour: flavour)
        case .huggingFace:
            guard let tokenizerModel else {
                throw TokenizerError.missingFile(key: "tokenizer_model", tokenizer: type.rawValue)
            }
            return try HuggingFaceTokenizer(path: tokenizerModel)
        case .gpt2BPE:
            guard let vocabFile else { throw TokenizerError.missingFile(key: "vocab_file", tokenizer: type.rawValue) }
            guard let mergeFile else { throw TokenizerError.missingFile(key: "merge_file", tokenizer: type.rawValue) }
            return try GPT2BPETokenizer(vocabFile: vocabFile, mergeFile: mergeFile)
        case .bertWordPieceLowerCase, .bertWordPieceCase:
            guard let vocabFile else { throw TokenizerError.missingFile(key: "vocab_file", tokenizer: type.rawValue) }
            return try BertWordPieceTokenizer(vocabFile: vocabFile, lowerCase: type == .bertWordPieceLowerCase)
        case .byteLevel, .null:
            return ByteLevelTokenizer()
        }
    }
}

// SentencePieceModelFile.swift — a SentencePiece `.model` file (the `tokenizer.model` of Llama 2,
// Mistral, T5 …) read from its protocol-buffer bytes: the pieces with their scores and types, the
// trainer's model type, special ids and byte fallback, and the normalizer (its precompiled
// character map and the three whitespace switches). Field numbers and defaults are those of
// sentencepiece_model.proto (ModelProto 1 pieces, 2 trainer_spec, 3 normalizer_spec; proto2
// defaults where a field is absent). Fields this tokenizer does not use are skipped by wire type.
import Foundation

struct SentencePieceModelFile {
    enum PieceType: Int {
        case normal = 1
        case unknown = 2
        case control = 3
        case userDefined = 4
        case unused = 5
        case byte = 6
    }
    enum ModelType: Int {
        case unigram = 1
        case bpe = 2
        case word = 3
        case char = 4
    }

    struct Piece {
        var text: [UInt8] = []
        var score: Float = 0
        var type: PieceType = .normal
    }

    var pieces: [Piece] = []
    var modelType: ModelType = .unigram
    var byteFallback = false
    var treatWhitespaceAsSuffix = false
    var unkID = 0, bosID = 1, eosID = 2, padID = -1
    var normalizerName = ""
    var precompiledCharsmap: [UInt8] = []
    var addDummyPrefix = true, removeExtraWhitespaces = true, escapeWhitespaces = true

    /// Reads `path`; errors name the file and what is wrong with it.
    init(path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TokenizerError.unreadable(path: path, key: "tokenizer_model")
        }
        do {
            try self.init(bytes: [UInt8](data))
        } catch let error as ProtoReader.Malformed {
            throw TokenizerError.malformed(
                path: path, reason: "not a SentencePiece model (\(error.reason)); pass the tokenizer.model file")
        }
        guard !pieces.isEmpty else {
            throw TokenizerError.malformed(path: path, reason: "a SentencePiece model without pieces")
        }
    }

    init(bytes: [UInt8]) throws {
        var reader = ProtoReader(bytes[...])
        while let (field, value) = try reader.next() {
            switch (field, value) {
            case (1, .bytes(let b)): pieces.append(try Self.piece(b))
            case (2, .bytes(let b)): try readTrainerSpec(b)
            case (3, .bytes(let b)): try readNormalizerSpec(b)
            default: break
            }
        }
    }

    private static func piece(_ bytes: ArraySlice<UInt8>) throws -> Piece {
        var p = Piece()
        var reader = ProtoReader(bytes)
        while let (field, value) = try reader.next() {
            switch (field, value) {
            case (1, .bytes(let b)): p.text = Array(b)
            case (2, .fixed32(let bits)): p.score = Float(bitPattern: bits)
            case (3, .varint(let v)):
                guard let t = PieceType(rawValue: Int(truncatingIfNeeded: v)) else {
                    throw ProtoReader.Malformed(reason: "piece type \(v) is not one of SentencePiece's six")
                }
                p.type = t
            default: break
            }
        }
        return p
    }

    private mutating func readTrainerSpec(_ bytes: ArraySlice<UInt8>) throws {
        var reader = ProtoReader(bytes)
        while let (field, value) = try reader.next() {
            guard case .varint(let v) = value else { continue }
            let int = Int(Int32(truncatingIfNeeded: v))  // int32 fields: negative ids are 10-byte varints
            switch field {
            case 3:
                guard let t = ModelType(rawValue: int) else {
                    throw ProtoReader.Malformed(reason: "model type \(v) is not unigram, BPE, word or char")
                }
                modelType = t
            case 24: treatWhitespaceAsSuffix = v != 0
            case 35: byteFallback = v != 0
            case 40: unkID = int
            case 41: bosID = int
            case 42: eosID = int
            case 43: padID = int
            default: break
            }
        }
    }

    private mutating func readNormalizerSpec(_ bytes: ArraySlice<UInt8>) throws {
        var reader = ProtoReader(bytes)
        while let (field, value) = try reader.next() {
            switch (field, value) {
            case (1, .bytes(let b)): normalizerName = String(decoding: b, as: UTF8.self)
            case (2, .bytes(let b)): precompiledCharsmap = Array(b)
            case (3, .varint(let v)): addDummyPrefix = v != 0
            case (4, .varint(let v)): removeExtraWhitespaces = v != 0
            case (5, .varint(let v)): escapeWhitespaces = v != 0
            default: break
            }
        }
    }
}

/// The protocol-buffer wire format, read field by field (varint, 64-bit, length-delimited, 32-bit).
struct ProtoReader {
    struct Malformed: Error { let reason: String }
    enum Value {
        case varint(UInt64)
        case fixed64(UInt64)
        case bytes(ArraySlice<UInt8>)
        case fixed32(UInt32)
    }

    private var rest: ArraySlice<UInt8>
    init(_ bytes: ArraySlice<UInt8>) { rest = bytes }

    /// The next field number and value, or nil at the end.
    mutating func next() throws -> (Int, Value)? {
        guard !rest.isEmpty else { return nil }
        let key = try varint()
        let field = Int(key >> 3)
        guard field > 0 else { throw Malformed(reason: "field number 0") }
        switch key & 7 {
        case 0: return (field, .varint(try varint()))
        case 1: return (field, .fixed64(try fixed(8)))
        case 2:
            let length = try varint()
            guard length <= UInt64(rest.count) else {
                throw Malformed(reason: "a field of \(length) bytes where \(rest.count) remain")
            }
            let value = rest.prefix(Int(length))
            rest = rest.dropFirst(Int(length))
            return (field, .bytes(value))
        case 5: return (field, .fixed32(UInt32(truncatingIfNeeded: try fixed(4))))
        default: throw Malformed(reason: "wire type \(key & 7) of field \(field)")
        }
    }

    private mutating func varint() throws -> UInt64 {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while let byte = rest.first {
            rest = rest.dropFirst()
            guard shift < 64 else { throw Malformed(reason: "a varint longer than ten bytes") }
            value |= UInt64(byte & 0x7f) << shift
            if byte < 0x80 { return value }
            shift += 7
        }
        throw Malformed(reason: "the file ends inside a varint")
    }

    private mutating func fixed(_ count: Int) throws -> UInt64 {
        guard rest.count >= count else { throw Malformed(reason: "the file ends inside a fixed-width field") }
        var value: UInt64 = 0
        for (i, byte) in rest.prefix(count).enumerated() { value |= UInt64(byte) << (8 * UInt64(i)) }
        rest = rest.dropFirst(count)
        return value
    }
}

// FuzzTargets.swift — one entry point per input parser, each taking arbitrary bytes: the config
// loader, a Hugging Face config.json, safetensors, an MMIDIDX index, a checkpoint's HDF5 file, and
// the GPT-2, WordPiece, SentencePiece, tokenizer.json and tiktoken tokenizers, and SentencePiece model,
// tokenizer.json and tiktoken rank files. Each writes the bytes where the real reader looks (files in a
// per-process scratch directory, so the fuzzed path is the one users run) and calls that reader.
// A thrown error is the expected answer to bad bytes; a crash, a trap or a broken property (a
// GPT-2 round trip that loses text, an id outside the vocabulary) is a finding. `megatron-fuzz`
// (libFuzzer, scripts/fuzz.sh) and the corpus replay test (FuzzCorpusTests) both call these.
import Checkpoint
import Foundation
import MegatronCore

public enum FuzzTarget: String, CaseIterable, Sendable {
    case config
    case hfConfig = "hf-config"
    case safetensors, mmidx, checkpoint
    case gpt2Tokenizer = "gpt2-tokenizer"
    case wordpiece
    case sentencepiece
    case sentencepieceModel = "sentencepiece-model"
    case hfTokenizer = "hf-tokenizer"
    case hfTokenizerJSON = "hf-tokenizer-json"
    case tiktoken
    case tiktokenJSON = "tiktoken-json"

    /// The committed Llama-3-layout tokenizer.json's directory (HuggingFaceTokenizerTests' fixture),
    /// from `MEGATRON_HF_TOKENIZER` or under the current directory (the repository root).
    public static var hfTokenizerDirectory: String? {
        let path =
            ProcessInfo.processInfo.environment["MEGATRON_HF_TOKENIZER"]
            ?? FileManager.default.currentDirectoryPath + "/Tests/MegatronCoreTests/Fixtures/hf_tokenizer/llama3"
        return FileManager.default.fileExists(atPath: path + "/tokenizer.json") ? path : nil
    }

    /// The committed tiktoken rank file (TikTokenizerTests' fixture), from `MEGATRON_TIKTOKEN_RANKS` or
    /// under the current directory (the repository root).
    public static var tiktokenRankFile: String? {
        let path =
            ProcessInfo.processInfo.environment["MEGATRON_TIKTOKEN_RANKS"]
            ?? FileManager.default.currentDirectoryPath + "/Tests/MegatronCoreTests/Fixtures/tiktoken/vocab.json"
        return FileManager.default.fileExists(atPath: path) ? path : nil
    }

    /// The committed Llama-2-style SentencePiece model (the SentencePiece tests' fixture), from
    /// `MEGATRON_SENTENCEPIECE_MODEL` or under the current directory (the repository root).
    public static var sentencePieceModel: String? {
        let path =
            ProcessInfo.processInfo.environment["MEGATRON_SENTENCEPIECE_MODEL"]
            ?? FileManager.default.currentDirectoryPath
            + "/Tests/MegatronCoreTests/Fixtures/sentencepiece/llama_bpe.model"
        return FileManager.default.fileExists(atPath: path) ? path : nil
    }

    /// Tokenizer files, from `MEGATRON_SHARED_DATA` or ../shared/data beside the checkout.
    public static var sharedData: URL? {
        let env = ProcessInfo.processInfo.environment["MEGATRON_SHARED_DATA"]
        let candidates = [env, FileManager.default.currentDirectoryPath + "/../shared/data"].compactMap { $0 }
        return candidates.map { URL(fileURLWithPath: $0) }.first {
            FileManager.default.fileExists(atPath: $0.appendingPathComponent("tokenizers").path)
        }
    }

    /// Why this target cannot run here (its tokenizer files are absent), or nil.
    public var unavailableReason: String? {
        switch self {
        case .gpt2Tokenizer, .wordpiece:
            return Self.sharedData == nil
                ? "the tokenizer files under ../shared/data (or MEGATRON_SHARED_DATA) are absent" : nil
        case .sentencepiece:
            return Self.sentencePieceModel == nil
                ? "the committed SentencePiece model is not under this directory" : nil
        case .hfTokenizer:
            return Self.hfTokenizerDirectory == nil ? "the committed tokenizer.json is not under this directory" : nil
        case .tiktoken:
            return Self.tiktokenRankFile == nil ? "the committed tiktoken rank file is not under this directory" : nil
        default: return nil
        }
    }

    /// Feeds `bytes` to the target's reader.
    public func run(_ bytes: Data) {
        switch self {
        case .config: FuzzReaders.config(bytes)
        case .hfConfig: FuzzReaders.hfConfig(bytes)
        case .safetensors: FuzzReaders.safetensors(bytes)
        case .mmidx: FuzzReaders.mmidx(bytes)
        case .checkpoint: FuzzReaders.checkpoint(bytes)
        case .gpt2Tokenizer: FuzzReaders.gpt2(bytes)
        case .wordpiece: FuzzReaders.wordpiece(bytes)
        case .sentencepiece: FuzzReaders.sentencePiece(bytes)
        case .sentencepieceModel: FuzzReaders.sentencePieceModel(bytes)
        case .hfTokenizer: FuzzReaders.hfTokenizer(bytes)
        case .hfTokenizerJSON: FuzzReaders.hfTokenizerJSON(bytes)
        case .tiktoken: FuzzReaders.tiktoken(bytes)
        case .tiktokenJSON: FuzzReaders.tiktokenJSON(bytes)
        }
    }
}

enum FuzzReaders {
    /// A scratch directory of this process (in /dev/shm when it exists: one file write per input).
    static let scratch: String = {
        let base = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
        let dir = "\(base)/megatron-fuzz-\(getpid())"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }()

    static func write(_ bytes: Data, _ name: String) -> String {
        let path = "\(scratch)/\(name)"
        let parent = (path as NSString).deletingLastPathComponent
        try? FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: path, contents: bytes)
        return path
    }

    static func config(_ bytes: Data) {
        let path = write(bytes, "config.json")
        _ = try? ConfigLoader.load(path: path, flags: [])
    }

    /// config.json beside an empty safetensors file: the config is read and checked in full, and the
    /// import then stops at the first missing tensor (or at the memory preflight for huge sizes).
    static func hfConfig(_ bytes: Data) {
        _ = write(bytes, "hf/config.json")
        var empty = Data([2, 0, 0, 0, 0, 0, 0, 0])
        empty.append(contentsOf: Array("{}".utf8))
        _ = write(empty, "hf/model.safetensors")
        _ = try? HuggingFace.importModel(directory: "\(scratch)/hf")
    }

    static func safetensors(_ bytes: Data) {
        _ = try? Safetensors.read(write(bytes, "model.safetensors"))
    }

    /// The bytes are the .idx; the .bin is 4 KiB of small token ids. Every sequence the index
    /// accepts is read back in full.
    static func mmidx(_ bytes: Data) {
        _ = write(bytes, "data.idx")
        if !FileManager.default.fileExists(atPath: "\(scratch)/data.bin") {
            _ = write(Data((0..<4096).map { UInt8($0 % 7) }), "data.bin")
        }
        guard let d = try? IndexedDataset(prefix: "\(scratch)/data") else { return }
        var out = [Int32](repeating: 0, count: 4096)
        for s in 0..<d.sequenceCount {
            let n = d.length(s)
            precondition(n >= 0 && n * d.dtype.size <= 4096, "an accepted index points past its .bin")
            out.withUnsafeMutableBufferPointer { d.read(sequence: s, offset: 0, count: n, into: $0.baseAddress!) }
        }
        for k in 0..<d.documentCount { _ = d.documentLength(k) }
    }

    /// The bytes are the model file of a one-rank checkpoint, read as convert-checkpoint reads it.
    static func checkpoint(_ bytes: Data) {
        let root = "\(scratch)/ckpt"
        _ = write(Data("1\n".utf8), "ckpt/\(CheckpointDirectory.pointerName)")
        let rank = CheckpointDirectory.rankFileName(tensorRank: 0, pipelineRank: 0)
        _ = write(bytes, "ckpt/\(CheckpointDirectory.iterationName(1))/\(rank)")
        _ = try? WholeModel.load(checkpoint: root)
    }

    static let gpt2Tokenizer: Tokenizer? = FuzzTarget.sharedData.flatMap {
        try? Tokenizers.make(
            type: .gpt2BPE, vocabFile: $0.appendingPathComponent("tokenizers/gpt2/vocab.json").path,
            mergeFile: $0.appendingPathComponent("tokenizers/gpt2/merges.txt").path)
    }

    static let wordpieceTokenizer: Tokenizer? = FuzzTarget.sharedData.flatMap {
        try? Tokenizers.make(
            type: .bertWordPieceLowerCase,
            vocabFile: $0.appendingPathComponent("tokenizers/bert-base-uncased/vocab.txt").path,
            mergeFile: nil)
    }

    /// Byte-level BPE is lossless: decoding the ids gives back every byte, valid UTF-8 or not.
    static func gpt2(_ bytes: Data) {
        guard let tok = gpt2Tokenizer else { return }
        let ids = bytes.withUnsafeBytes { tok.encode($0.bindMemory(to: UInt8.self)) }
        precondition(ids.allSatisfy { $0 >= 0 && Int($0) < tok.vocabSize }, "an id outside the vocabulary")
        precondition(tok.decode(ids) == Array(bytes), "the GPT-2 round trip lost bytes")
    }

    static func wordpiece(_ bytes: Data) {
        guard let tok = wordpieceTokenizer else { return }
        let ids = bytes.withUnsafeBytes { tok.encode($0.bindMemory(to: UInt8.self)) }
        precondition(ids.allSatisfy { $0 >= 0 && Int($0) < tok.vocabSize }, "an id outside the vocabulary")
        _ = tok.decode(ids)
    }

    static let sentencePieceTokenizer: SentencePieceTokenizer? = FuzzTarget.sentencePieceModel.flatMap {
        try? SentencePieceTokenizer(modelFile: $0, flavour: .gpt)
    }

    /// Identity normalization with byte fallback loses nothing: valid UTF-8 comes back exactly (unless
    /// it holds "▁", which is SentencePiece's space and decodes as one).
    static func sentencePiece(_ bytes: Data) {
        guard let tok = sentencePieceTokenizer else { return }
        let ids = bytes.withUnsafeBytes { tok.encode($0.bindMemory(to: UInt8.self)) }
        precondition(ids.allSatisfy { $0 >= 0 && Int($0) < tok.vocabSize }, "an id outside the vocabulary")
        let text = tok.decode(ids)
        let valid = String(decoding: bytes, as: UTF8.self)
        if valid.utf8.elementsEqual(bytes) && !valid.contains("\u{2581}") {
            precondition(text == Array(bytes), "the SentencePiece round trip changed valid UTF-8 text")
        }
    }

    /// The bytes are a tokenizer.model: read, then used on a text with every kind of character.
    static func sentencePieceModel(_ bytes: Data) {
        let path = write(bytes, "tokenizer.model")
        for flavour in [SentencePieceTokenizer.Flavour.megatron, .gpt, .llama2] {
            guard let tok = try? SentencePieceTokenizer(modelFile: path, flavour: flavour) else { continue }
            let ids = tok.encode(Array("  Hello, wörld!\t<EOD> 日本 😀 ｆｕｌｌ\u{0}\n".utf8))
            precondition(ids.allSatisfy { $0 >= 0 && Int($0) < tok.vocabSize }, "an id outside the vocabulary")
            _ = tok.decode(ids + [-1, Int32(tok.vocabSize), Int32.max])
        }
    }

    static let hfTokenizer: HuggingFaceTokenizer? = FuzzTarget.hfTokenizerDirectory.flatMap {
        try? HuggingFaceTokenizer(path: $0)
    }

    /// Llama 3's layout has no normalizer, so its text's own ids (no BOS) decode to the text exactly,
    /// valid UTF-8 or not.
    static func hfTokenizer(_ bytes: Data) {
        guard let tok = hfTokenizer else { return }
        let ids = tok.encodeContinuation(Array(bytes))
        precondition(ids.allSatisfy { $0 >= 0 && Int($0) < tok.vocabSize }, "an id outside the vocabulary")
        precondition(tok.decode(ids) == Array(bytes), "the tokenizer.json round trip lost bytes")
        precondition(tok.encode(Array(bytes)) == tok.prefix + ids + tok.suffix, "the specials around the text moved")
    }

    /// The bytes are a tokenizer.json (with a tokenizer_config.json naming its eos): read, then used on
    /// a text with every kind of character.
    static func hfTokenizerJSON(_ bytes: Data) {
        let path = write(bytes, "hf/tokenizer.json")
        let config = (path as NSString).deletingLastPathComponent + "/tokenizer_config.json"
        if !FileManager.default.fileExists(atPath: config) {
            try? Data(#"{"eos_token": "<|end_of_text|>"}"#.utf8).write(to: URL(fileURLWithPath: config))
        }
        guard let tok = try? HuggingFaceTokenizer(path: path) else { return }
        let ids = tok.encode(Array("  Hello, wörld's!\t<|end_of_text|> 日本 1234 😀 ｆｕｌｌ\u{0}\r\n\n".utf8))
        precondition(ids.allSatisfy { $0 >= 0 && Int($0) < tok.vocabSize }, "an id outside the vocabulary")
        _ = tok.decode(ids + [-1, Int32(tok.vocabSize), Int32.max])
    }

    static let tiktokenizers: [TikTokenizer] =
        FuzzTarget.tiktokenRankFile.map { path in
            TikTokenPattern.allCases.compactMap {
                try? TikTokenizer(path: path, settings: TikTokenSettings(pattern: $0, vocabSize: 2160))
            }
        } ?? []

    /// Both patterns: every id is one of the file's ranks (Megatron's tokenize makes no special
    /// token), and the ids decode to the bytes, valid UTF-8 or not.
    static func tiktoken(_ bytes: Data) {
        for tok in tiktokenizers {
            let ids = tok.encode(Array(bytes))
            precondition(ids.allSatisfy { 1000 <= $0 && Int($0) < tok.vocabSize }, "an id outside the ranks")
            precondition(tok.decode(ids) == Array(bytes), "the tiktoken round trip lost bytes")
        }
    }

    /// The bytes are a rank file: read under both patterns with 3 special tokens and as many ids as
    /// it can fill, then used on a text with every kind of character.
    static func tiktokenJSON(_ bytes: Data) {
        let path = write(bytes, "tiktoken/vocab.json")
        let count = (try? JSONSerialization.jsonObject(with: bytes) as? [Any])?.count ?? 0
        for pattern in TikTokenPattern.allCases {
            let settings = TikTokenSettings(pattern: pattern, vocabSize: 3 + max(count, 256), numSpecialTokens: 3)
            guard let tok = try? TikTokenizer(path: path, settings: settings) else { continue }
            let text = Array("  Hello, wörld's!\t<s> 日本 1234 😀 ｆｕｌｌ e\u{301}\u{0}\r\n\n CamelCase/x\n/".utf8)
            let ids = tok.encode(text)
            precondition(ids.allSatisfy { $0 >= 3 && Int($0) < tok.vocabSize }, "an id outside the ranks")
            precondition(tok.decode(ids) == text, "the tiktoken round trip lost bytes")
        }
    }
}

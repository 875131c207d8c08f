// HFTokenizerFiles.swift — the tokenizer and generation files that make a GPT export usable as it is
// (`AutoTokenizer.from_pretrained(dir)`, `pipeline("text-generation", dir)`): GPT-2's slow-tokenizer
// files vocab.json and merges.txt, tokenizer_config.json, special_tokens_map.json and
// generation_config.json. A GPT2BPETokenizer checkpoint exports the vocab and merges files its
// config names; a byte-level one (ids 0…255 are bytes, 256 is <|endoftext|>) exports the same
// thing in GPT-2's format: a vocabulary of the 256 byte characters of GPT-2's byte-to-unicode table
// at their byte values, <|endoftext|> at 256, and no merges — GPT2Tokenizer then encodes every
// byte as its own id, exactly as ByteLevelTokenizer does.
import Foundation

enum HFTokenizerFiles {
    static let endOfText = "<|endoftext|>"

    /// The files by name and the end-of-document id, or nil (with the reason) when the checkpoint's
    /// tokenizer cannot be written (GPT-2 BPE whose files the config does not name or are unreadable).
    static func gpt(_ c: TrainingConfig, maxPositions: Int) -> (files: [String: Data], eod: Int)? {
        var files: [String: Data] = [:]
        let eod: Int
        switch c.tokenizerType {
        case .gpt2BPE:
            guard let vocabPath = c.vocabFile, let mergePath = c.mergeFile,
                let vocab = FileManager.default.contents(atPath: vocabPath),
                let merges = FileManager.default.contents(atPath: mergePath),
                let table = try? JSONSerialization.jsonObject(with: vocab) as? [String: Any],
                let id = table[endOfText] as? Int
            else { return nil }
            (files["vocab.json"], files["merges.txt"], eod) = (vocab, merges, id)
        case .byteLevel, .null:
            var table: [String: Int] = [:]
            for (byte, character) in ByteLevelBPE.byteToCharacter.enumerated() { table[String(character)] = byte }
            table[endOfText] = Int(ByteLevelTokenizer.endOfText)
            files["vocab.json"] = try? JSONSerialization.data(withJSONObject: table, options: [.sortedKeys])
            files["merges.txt"] = Data("#version: 0.2\n".utf8)
            eod = Int(ByteLevelTokenizer.endOfText)
        case .bertWordPieceLowerCase, .bertWordPieceCase, .sentencePiece, .gptSentencePiece, .llama2, .huggingFace,
            .tikToken:
            return nil
        }
        let special: [String: Any] = ["bos_token": endOfText, "eos_token": endOfText, "unk_token": endOfText]
        var tokenizerConfig = special
        tokenizerConfig.merge([
            "tokenizer_class": "GPT2Tokenizer", "model_max_length": maxPositions, "add_prefix_space": false,
            "errors": "replace",
        ]) { $1 }
        let generation: [String: Any] = ["bos_token_id": eod, "eos_token_id": eod, "pad_token_id": eod]
        for (name, object) in [
            ("tokenizer_config.json", tokenizerConfig), ("special_tokens_map.json", special),
            ("generation_config.json", generation),
        ] {
            files[name] = try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
        }
        return (files, eod)
    }
}

/// A Llama directory's SentencePiece tokenizer (tokenizer.model), both ways. Import: Llama2Tokenizer
/// (the BOS before each text, as LlamaTokenizer's add_bos_token, true unless tokenizer_config.json
/// says false, then GPTSentencePieceTokenizer) when the model's pieces are as many as config.json's
/// vocab_size; otherwise, or without the file, none. Export: a checkpoint trained with either
/// tokenizer writes its tokenizer_model as tokenizer.model with LlamaTokenizer's config files.
public enum HFLlamaTokenizer {
    static let modelFile = "tokenizer.model"

    /// What a Llama directory's tokenizer imports as: a type and its model file, or why there is none.
    public enum Found {
        case tokenizer(TokenizerType, path: String)
        case none(reason: String)
    }

    /// The tokenizer of a Llama directory: its tokenizer.model (SentencePiece) when that has
    /// `vocabSize` pieces, else its tokenizer.json (HuggingFaceTokenizer, the directory as
    /// tokenizer_model) when that has at most `vocabSize` ids (Qwen 2.5's embedding has more rows
    /// than its tokenizer ids; vocab_size keeps the rows), else none with the reasons.
    public static func find(in directory: String, vocabSize: Int) -> Found {
        let sentencePiece = findSentencePiece(in: directory, vocabSize: vocabSize)
        guard case .none(let spReason) = sentencePiece else { return sentencePiece }
        let json = (directory as NSString).appendingPathComponent("tokenizer.json")
        guard FileManager.default.fileExists(atPath: json) else {
            return .none(reason: spReason + "; no tokenizer.json either")
        }
        do {
            let hf = try HuggingFaceTokenizer(path: directory)
            guard hf.vocabSize <= vocabSize else {
                return .none(reason: "\(json) has \(hf.vocabSize) ids, more than config.json's vocab_size \(vocabSize)")
            }
            return .tokenizer(.huggingFace, path: directory)
        } catch {
            return .none(reason: "\(error)")
        }
    }

    static func findSentencePiece(in directory: String, vocabSize: Int) -> Found {
        let path = (directory as NSString).appendingPathComponent(modelFile)
        guard FileManager.default.fileExists(atPath: path) else {
            return .none(reason: "no tokenizer.model (SentencePiece) in \(directory)")
        }
        let sp: SentencePieceTokenizer
        do { sp = try SentencePieceTokenizer(modelFile: path, flavour: .gpt) } catch {
            return .none(reason: "\(error)")
        }
        guard sp.vocabSize == vocabSize else {
            return .none(reason: "\(path) has \(sp.vocabSize) pieces where config.json's vocab_size is \(vocabSize)")
        }
        let configPath = (directory as NSString).appendingPathComponent("tokenizer_config.json")
        let addsBOS =
            FileManager.default.contents(atPath: configPath)
            .flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] }?["add_bos_token"] as? Bool
            ?? true
        return .tokenizer(addsBOS && sp.bos != nil ? .llama2 : .gptSentencePiece, path: path)
    }

    /// The files that give an export its tokenizer, or nil when the checkpoint has none to give.
    static func files(_ c: TrainingConfig, maxPositions: Int) -> [String: Data]? {
        if c.tokenizerType == .huggingFace { return huggingFaceFiles(c) }
        guard c.tokenizerType == .llama2 || c.tokenizerType == .gptSentencePiece, let path = c.tokenizerModel,
            let model = FileManager.default.contents(atPath: path),
            let sp = try? SentencePieceTokenizer(modelFile: path, flavour: .gpt)
        else { return nil }
        let piece = { (id: Int32?) -> Any in id.map { sp.pieceText($0) } ?? NSNull() }
        let special: [String: Any] = [
            "bos_token": piece(sp.bos), "eos_token": piece(sp.eos), "unk_token": piece(sp.unk),
        ]
        var tokenizerConfig = special
        tokenizerConfig.merge([
            "tokenizer_class": "LlamaTokenizer", "add_bos_token": c.tokenizerType == .llama2, "add_eos_token": false,
            "model_max_length": maxPositions, "legacy": true, "clean_up_tokenization_spaces": false,
        ]) { $1 }
        var generation: [String: Any] = [:]
        if let bos = sp.bos { generation["bos_token_id"] = Int(bos) }
        if let eos = sp.eos { generation["eos_token_id"] = Int(eos) }
        var files = [modelFile: model]
        for (name, object) in [
            ("tokenizer_config.json", tokenizerConfig), ("special_tokens_map.json", special),
            ("generation_config.json", generation),
        ] {
            files[name] = try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
        }
        return files
    }

    /// A HuggingFaceTokenizer's tokenizer.json and tokenizer_config.json as they are, and a
    /// generation_config.json with its BOS (the post-processor's first id) and eos ids.
    static func huggingFaceFiles(_ c: TrainingConfig) -> [String: Data]? {
        guard let path = c.tokenizerModel, let hf = try? HuggingFaceTokenizer(path: path) else { return nil }
        let files = HFTokenizerSpec.files(of: path)
        guard let tokenizer = FileManager.default.contents(atPath: files.json),
            let config = FileManager.default.contents(atPath: files.config)
        else { return nil }
        var generation: [String: Any] = ["eos_token_id": Int(hf.eod)]
        if let bos = hf.prefix.first { generation["bos_token_id"] = Int(bos) }
        return [
            "tokenizer.json": tokenizer, "tokenizer_config.json": config,
            "generation_config.json": try? JSONSerialization.data(
                withJSONObject: generation, options: [.prettyPrinted, .sortedKeys]),
        ].compactMapValues { $0 }
    }
}

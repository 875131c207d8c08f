// ConfigValidation+Data.swift — the data rules of a config: GPT and BERT datasets (data_path and
// split, or the separate train/valid/test paths), their files, and the tokenizer each needs.
import Foundation

extension ConfigValidation {
    /// BERT's data so far: the built-in corpus, bytes with special tokens or WordPiece; its probabilities.
    static func validateBertData(_ c: TrainingConfig) throws {
        _ = try parseSplit(c.split)
        for (key, on) in [
            ("eod_mask_loss", c.eodMaskLoss), ("reset_position_ids", c.resetPositionIds),
            ("reset_attention_mask", c.resetAttentionMask), ("calculate_per_token_loss", c.calculatePerTokenLoss),
        ] where on {
            throw ConfigError.inconsistent(
                keys: ["model_type", key],
                rule: "\(key) applies to GPT's packed documents; BERT samples are single sentence pairs with padding")
        }
        for (key, on) in [
            ("position_embedding_type", c.positionEmbeddingType != .learnedAbsolute),
            ("normalization", c.normalization != .layerNorm), ("swiglu", c.swiglu),
            ("add_bias_linear", !c.addBiasLinear), ("add_qkv_bias", c.addQKVBias), ("qk_layernorm", c.qkLayernorm),
            ("untie_embeddings_and_output_weights", c.untieEmbeddingsAndOutputWeights),
            ("group_query_attention", c.groupQueryAttention), ("window_size", c.windowSize != nil),
        ] where on {
            throw ConfigError.inconsistent(
                keys: ["model_type", key],
                rule:
                    "\(key) is built for GPT (Megatron's Llama-style options); BERT keeps learned positions, "
                    + "LayerNorm, GELU, biases and a tied head here")
        }
        if c.usesSeparateDataPaths {
            throw ConfigError.unsupportedArgument(
                flag: "train_data_path / valid_data_path / test_data_path",
                reason: "BERT reads one data_path cut by split; separate paths are built for GPT only so far")
        }
        guard c.tokenizerType == .byteLevel || c.tokenizerType.isBertWordPiece || c.tokenizerType == .sentencePiece
        else {
            throw ConfigError.invalidValue(
                key: "tokenizer_type", value: "\"\(c.tokenizerType.rawValue)\"",
                rule:
                    "BERT trains with ByteLevelTokenizer (bytes plus [CLS] [SEP] [MASK] [PAD]), BertWordPieceLowerCase, "
                    + "BertWordPieceCase or SentencePieceTokenizer (with its <CLS> <SEP> <MASK> <PAD>)"
            )
        }
        try validateTokenizerModel(c)
        if c.tokenizerType.isBertWordPiece {
            guard let path = c.vocabFile else {
                throw ConfigError.inconsistent(
                    keys: ["tokenizer_type", "vocab_file"],
                    rule: "\(c.tokenizerType.rawValue) needs vocab_file (BERT's vocab.txt)")
            }
            guard FileManager.default.isReadableFile(atPath: path) else {
                throw ConfigError.invalidValue(key: "vocab_file", value: "\"\(path)\"", rule: "must be a readable file")
            }
        }
        if c.mockData {
            throw ConfigError.inconsistent(
                keys: ["model_type", "mock_data"],
                rule: "BERT samples are built from sentences: give data_path (preprocess-data --split-sentences) "
                    + "or neither for the built-in corpus")
        }
        if !c.dataPath.isEmpty {
            let prefixes = try parseDataPath(c.dataPath).prefixes
            guard prefixes.count == 1 else {
                throw ConfigError.invalidValue(
                    key: "data_path", value: "\(c.dataPath)",
                    rule: "BERT reads one dataset prefix (blends are GPT-only so far)")
            }
            try checkDatasetFiles(prefixes[0], written: "P_text_sentence.bin/.idx (preprocess-data --split-sentences)")
        }
        if !(c.maskProb > 0 && c.maskProb < 1) {
            throw ConfigError.invalidValue(key: "mask_prob", value: "\(c.maskProb)", rule: "must be in (0, 1)")
        }
        if !(c.shortSeqProb >= 0 && c.shortSeqProb <= 1) {
            throw ConfigError.invalidValue(key: "short_seq_prob", value: "\(c.shortSeqProb)", rule: "must be in [0, 1]")
        }
        if c.seqLength < 8 {
            throw ConfigError.invalidValue(
                key: "seq_length", value: "\(c.seqLength)",
                rule: "BERT needs at least 8 ([CLS] A [SEP] B [SEP] and room to mask)")
        }
    }

    /// `tokenizer_model`: given exactly when a SentencePiece tokenizer is named, and readable.
    static func validateTokenizerModel(_ c: TrainingConfig) throws {
        guard c.tokenizerType.readsTokenizerModel else {
            guard c.tokenizerModel == nil else {
                throw ConfigError.inconsistent(
                    keys: ["tokenizer_model", "tokenizer_type"],
                    rule:
                        "tokenizer_model is read by Llama2Tokenizer, GPTSentencePieceTokenizer, "
                        + "SentencePieceTokenizer, HuggingFaceTokenizer and TikTokenizer; name one as tokenizer_type "
                        + "(it is "
                        + "\(c.tokenizerType.rawValue))")
            }
            return
        }
        let what =
            switch c.tokenizerType {
            case .huggingFace: "a directory with tokenizer.json and tokenizer_config.json, or a tokenizer.json"
            case .tikToken: "a tiktoken rank file (Megatron's JSON list of rank, token_bytes, token_str)"
            default: "the SentencePiece tokenizer.model file"
            }
        if c.tokenizerType == .tikToken && c.tiktokenPattern == nil {
            throw ConfigError.inconsistent(
                keys: ["tokenizer_type", "tiktoken_pattern"],
                rule: "TikTokenizer needs tiktoken_pattern: v1, or v2 (Mistral's Tekken pattern), as its rank file was "
                    + "made with")
        }
        guard let path = c.tokenizerModel else {
            throw ConfigError.inconsistent(
                keys: ["tokenizer_type", "tokenizer_model"],
                rule: "\(c.tokenizerType.rawValue) needs tokenizer_model (\(what))")
        }
        let file = c.tokenizerType == .huggingFace ? HFTokenizerSpec.files(of: path).json : path
        var isDirectory: ObjCBool = false
        let isFile = FileManager.default.fileExists(atPath: file, isDirectory: &isDirectory) && !isDirectory.boolValue
        guard isFile && FileManager.default.isReadableFile(atPath: file) else {
            throw ConfigError.invalidValue(key: "tokenizer_model", value: "\"\(path)\"", rule: "must be \(what)")
        }
    }

    /// Tokenizer, its files, and the dataset files.
    static func validateData(_ c: TrainingConfig) throws {
        if c.modelType == .bert { return try validateBertData(c) }
        if c.layernormArrangement != .preLN {
            throw ConfigError.inconsistent(
                keys: ["layernorm_arrangement", "model_type"],
                rule: "GPT is pre-LN (GPT-2's arrangement); post_ln is for BERT")
        }
        _ = try parseSplit(c.split)
        guard trainingTokenizers.contains(c.tokenizerType) else {
            throw ConfigError.invalidValue(
                key: "tokenizer_type", value: "\"\(c.tokenizerType.rawValue)\"",
                rule:
                    "training supports \(trainingTokenizers.map(\.rawValue).joined(separator: ", ")) "
                    + "(BertWordPieceLowerCase and BertWordPieceCase are for BERT: model_type BERT)"
            )
        }
        if c.tokenizerType == .gpt2BPE {
            for (key, value) in [("vocab_file", c.vocabFile), ("merge_file", c.mergeFile)] {
                guard let path = value else {
                    throw ConfigError.inconsistent(
                        keys: ["tokenizer_type", key],
                        rule:
                            "GPT2BPETokenizer needs \(key) (GPT-2's "
                            + "\(key == "vocab_file" ? "vocab.json" : "merges.txt"))"
                    )
                }
                guard FileManager.default.isReadableFile(atPath: path) else {
                    throw ConfigError.invalidValue(key: key, value: "\"\(path)\"", rule: "must be a readable file")
                }
            }
        }
        try validateTokenizerModel(c)
        if c.tokenizerType == .null {
            guard let v = c.vocabSize else {
                throw ConfigError.inconsistent(
                    keys: ["tokenizer_type", "vocab_size"],
                    rule: "NullTokenizer needs vocab_size (e.g. 50257 for GPT-2's)")
            }
            if v < 2 { throw ConfigError.invalidValue(key: "vocab_size", value: "\(v)", rule: "must be at least 2") }
            if !c.mockData && c.dataPath.isEmpty && c.trainDataPath.isEmpty {
                throw ConfigError.inconsistent(
                    keys: ["tokenizer_type", "data_path"],
                    rule:
                        "NullTokenizer has no text to read: give data_path (preprocessed token files) or mock_data true"
                )
            }
        }
        try validateSeparateDataPaths(c)
        guard !c.dataPath.isEmpty && !c.mockData else { return }
        for prefix in try parseDataPath(c.dataPath).prefixes {
            try checkDatasetFiles(prefix, written: "P_text_document.bin/.idx")
        }
    }

    /// train_data_path / valid_data_path / test_data_path (Megatron's per-split blends, each read
    /// whole): instead of data_path, and with a training set.
    static func validateSeparateDataPaths(_ c: TrainingConfig) throws {
        guard c.usesSeparateDataPaths else { return }
        let given = [
            ("train_data_path", c.trainDataPath), ("valid_data_path", c.validDataPath),
            ("test_data_path", c.testDataPath),
        ].filter { !$0.1.isEmpty }
        if !c.dataPath.isEmpty || c.mockData {
            throw ConfigError.inconsistent(
                keys: [c.mockData ? "mock_data" : "data_path"] + given.map(\.0),
                rule: "give either data_path (cut by split) or the separate paths, not both")
        }
        if c.trainDataPath.isEmpty && !c.skipTrain {
            throw ConfigError.inconsistent(
                keys: given.map(\.0) + ["train_data_path"], rule: "training needs train_data_path too")
        }
        for (key, items) in given {
            for prefix in try parseDataPath(items, key: key).prefixes {
                try checkDatasetFiles(prefix, written: "P_text_document.bin/.idx", key: key)
            }
        }
    }

    /// Both files of dataset `prefix` are readable; `written` says what preprocess-data names them.
    static func checkDatasetFiles(_ prefix: String, written: String, key: String = "data_path") throws {
        for file in [prefix + ".idx", prefix + ".bin"] where !FileManager.default.isReadableFile(atPath: file) {
            throw ConfigError.invalidValue(
                key: key, value: "\"\(prefix)\"",
                rule:
                    "'\(file)' is missing or unreadable; \(key) names the prefix that `megatron "
                    + "preprocess-data --output-prefix P` wrote as \(written)"
            )
        }
    }

    /// `data_path`: one prefix, or weights and prefixes alternating ("0.3", "A", "0.7", "B").
    public static func parseDataPath(_ items: [String], key: String = "data_path") throws -> (
        weights: [Double], prefixes: [String]
    ) {
        if items.count == 1 { return ([1], items) }
        let bad = ConfigError.invalidValue(
            key: key, value: "\(items)",
            rule: "must be one prefix, or weights and prefixes alternating: [0.3, \"A\", 0.7, \"B\"]")
        guard items.count % 2 == 0 else { throw bad }
        var weights: [Double] = [], prefixes: [String] = []
        for k in stride(from: 0, to: items.count, by: 2) {
            guard let w = Double(items[k]), w >= 0, w.isFinite else { throw bad }
            weights.append(w); prefixes.append(items[k + 1])
        }
        guard weights.reduce(0, +) > 0 else { throw bad }
        return (weights, prefixes)
    }

    /// "969,30,1" → normalised weights (train, valid, test).
    public static func parseSplit(_ s: String) throws -> [Double] {
        let parts = s.split(separator: s.contains(",") ? "," : "/").map {
            Double($0.trimmingCharacters(in: .whitespaces))
        }
        guard (1...3).contains(parts.count), parts.allSatisfy({ $0 != nil && $0! >= 0 }) else {
            throw ConfigError.invalidValue(
                key: "split", value: "\"\(s)\"", rule: "must be up to three non-negative weights like \"969,30,1\"")
        }
        var w = parts.map { $0! }
        while w.count < 3 { w.append(0) }
        let total = w.reduce(0, +)
        guard total > 0 else {
            throw ConfigError.invalidValue(key: "split", value: "\"\(s)\"", rule: "the weights must not all be zero")
        }
        return w.map { $0 / total }
    }
}

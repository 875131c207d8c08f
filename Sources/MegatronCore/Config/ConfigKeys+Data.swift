// ConfigKeys+Data.swift — the config keys of the data (datasets, splits, tokenizers) and of the
// machine (threads, BLAS kernels, timeouts): the last part of ConfigKeys.all, kept apart by concern.

extension ConfigKeys {
    static let dataAndMachineKeys: [ConfigKey] = [
        ConfigKey(
            name: "data_path", field: .stringList(\.dataPath),
            help:
                "a preprocessed dataset prefix (P_text_document), or weights and prefixes alternating to blend "
                + "several; empty: the built-in corpus (texts of /usr/share/common-licenses)"
        ),
        ConfigKey(
            name: "data_cache_path", field: .optionalString(\.dataCachePath),
            help: "where the sample indices are cached (default: <data dir>/cache/GPTDataset_indices)"),
        ConfigKey(
            name: "mock_data", field: .bool(\.mockData), help: "random tokens instead of a corpus (for benchmarks)"),
        ConfigKey(name: "split", field: .string(\.split), help: "train,valid,test weights (969,30,1)"),
        ConfigKey(
            name: "eod_mask_loss", field: .bool(\.eodMaskLoss),
            help: "GPT: no loss where the input token is EOD (the next document's first token is not predicted)"),
        ConfigKey(
            name: "reset_position_ids", field: .bool(\.resetPositionIds),
            help: "GPT: positions restart at 0 after each EOD in a sample"),
        ConfigKey(
            name: "reset_attention_mask", field: .bool(\.resetAttentionMask),
            help: "GPT: a token after an EOD attends to no token up to it (attention within each document)"),
        ConfigKey(
            name: "calculate_per_token_loss", field: .bool(\.calculatePerTokenLoss),
            help:
                "GPT: every counted token's loss weighs the same over the global batch (default: each "
                + "micro-batch's mean over its counted tokens, as Megatron)"),
        ConfigKey(
            name: "train_data_path", field: .stringList(\.trainDataPath),
            help: "instead of data_path: the training data (a prefix, or weights and prefixes), read whole"),
        ConfigKey(
            name: "valid_data_path", field: .stringList(\.validDataPath),
            help: "instead of data_path: the validation data, read whole"),
        ConfigKey(
            name: "test_data_path", field: .stringList(\.testDataPath),
            help: "instead of data_path: the test data, read whole and evaluated once after training"),
        ConfigKey(
            name: "tokenizer_type", field: .choice(\.tokenizerType),
            help:
                "ByteLevelTokenizer, GPT2BPETokenizer (with vocab_file, merge_file), NullTokenizer (with "
                + "vocab_size), over a SentencePiece tokenizer_model Llama2Tokenizer, GPTSentencePieceTokenizer "
                + "or SentencePieceTokenizer, over a tokenizer.json HuggingFaceTokenizer, over a tiktoken rank file "
                + "TikTokenizer (with tiktoken_pattern)"),
        ConfigKey(
            name: "vocab_size", field: .optionalInt(\.vocabSize),
            help:
                "vocabulary size for NullTokenizer; with HuggingFaceTokenizer the model's rows when more than its ids; "
                + "TikTokenizer's ids, special tokens included (131072)"
        ),
        ConfigKey(name: "vocab_file", field: .optionalString(\.vocabFile), help: "tokenizer vocabulary file"),
        ConfigKey(name: "merge_file", field: .optionalString(\.mergeFile), help: "BPE merges file"),
        ConfigKey(
            name: "tokenizer_model", field: .optionalString(\.tokenizerModel),
            help:
                "SentencePiece model file (tokenizer.model) of the SentencePiece tokenizers; HuggingFaceTokenizer's "
                + "tokenizer.json or its directory; TikTokenizer's rank file (Megatron's JSON list)"),
        ConfigKey(
            name: "tiktoken_pattern", field: .optionalChoice(\.tiktokenPattern),
            help: "TikTokenizer's pre-tokenisation pattern: v1, or v2 (Mistral's Tekken); required with it"),
        ConfigKey(
            name: "tiktoken_num_special_tokens", field: .int(\.tiktokenNumSpecialTokens),
            help: "TikTokenizer: ids 0 to this − 1 are special tokens, the file's ranks follow (1000)"),
        ConfigKey(
            name: "tokenizer_special_tokens", field: .stringList(\.tokenizerSpecialTokens),
            help: "TikTokenizer: the named special tokens first (must include <unk>, <s>, </s>; the default)"),
        // Machine
        ConfigKey(
            name: "num_threads", field: .int(\.numThreads),
            help: "threads per rank for BLAS and kernels (0: cores / ranks on this node)"),
        ConfigKey(
            name: "blas_coretype", field: .string(\.blasCoretype),
            help: "auto: best OpenBLAS kernels for this CPU; env: keep OPENBLAS_CORETYPE; or a name like SkylakeX"),
        ConfigKey(
            name: "distributed_timeout_minutes", field: .double(\.distributedTimeoutMinutes),
            help: "a rank that waits this long in one collective or transfer ends the whole job, naming it (10)"),
    ]
}

// ConfigChoices.swift — the config keys whose value is one of a fixed set of names, as enums (raw
// values are the names Megatron-LM accepts). An unknown name is a config error listing the allowed
// ones (ConfigLoader); `lr_decay_style` is LRDecayStyle (LRSchedule.swift).

/// `model_type`: the model family trained (Megatron's pretrain_gpt.py or pretrain_bert.py).
public enum ModelType: String, Sendable, CaseIterable {
    case gpt = "GPT"
    case bert = "BERT"
}

/// `layernorm_arrangement`: where a layer's LayerNorms sit (Megatron paper §3, Fig. 7).
public enum LayerNormArrangement: String, Sendable, CaseIterable {
    /// Before attention and MLP, residuals around them, a final LayerNorm (Megatron's BERT, GPT-2).
    case preLN = "pre_ln"
    /// After each residual add and on the embeddings, no final LayerNorm (the original BERT).
    case postLN = "post_ln"
}

/// `position_embedding_type`: how a GPT knows where a token is.
public enum PositionEmbeddingType: String, Sendable, CaseIterable {
    /// A learned table added to the word embedding (GPT-2, BERT).
    case learnedAbsolute = "learned_absolute"
    /// Rotary position embeddings (Su et al., RoFormer) on each head's queries and keys; no table.
    case rope
}

/// `normalization`: the norm before each sub-layer and at the end.
public enum Normalization: String, Sendable, CaseIterable {
    /// (x − μ)/√(σ² + ε)·γ + β.
    case layerNorm = "LayerNorm"
    /// x/√(mean(x²) + ε)·γ (Zhang and Sennrich), no bias.
    case rmsNorm = "RMSNorm"
}

/// `tokenizer_type`.
public enum TokenizerType: String, Sendable, CaseIterable {
    case byteLevel = "ByteLevelTokenizer"
    case gpt2BPE = "GPT2BPETokenizer"
    case bertWordPieceLowerCase = "BertWordPieceLowerCase"
    /// BERT's WordPiece keeping case and accents (Megatron's BertWordPieceCase, for cased vocabularies).
    case bertWordPieceCase = "BertWordPieceCase"
    case null = "NullTokenizer"
    /// Megatron's tokenizers over a SentencePiece model (`tokenizer_model`): with its added special
    /// tokens, the model's ids alone, and Llama 2's (BOS before each text).
    case sentencePiece = "SentencePieceTokenizer"
    case gptSentencePiece = "GPTSentencePieceTokenizer"
    case llama2 = "Llama2Tokenizer"
    /// A byte-level BPE in Hugging Face's tokenizer.json (`tokenizer_model`: its directory or file),
    /// as Megatron's HuggingFaceTokenizer encodes through transformers.
    case huggingFace = "HuggingFaceTokenizer"
    /// A byte-level BPE given as ranks in Megatron's tiktoken JSON file (`tokenizer_model`), encoded as
    /// the tiktoken library does with Megatron's v1 or v2 pattern (`tiktoken_pattern`).
    case tikToken = "TikTokenizer"

    /// BERT's WordPiece, lower-casing or not.
    public var isBertWordPiece: Bool { self == .bertWordPieceLowerCase || self == .bertWordPieceCase }

    /// Read from a SentencePiece `tokenizer_model` file.
    public var isSentencePiece: Bool { self == .sentencePiece || self == .gptSentencePiece || self == .llama2 }

    /// Read from `tokenizer_model`: a SentencePiece model, a Hugging Face tokenizer.json or a tiktoken rank file.
    public var readsTokenizerModel: Bool { isSentencePiece || self == .huggingFace || self == .tikToken }
}

/// `recompute_granularity`: recompute whole layers, or only the core attention.
public enum RecomputeGranularity: String, Sendable, CaseIterable {
    case full, selective
}

/// `recompute_method` (with full recomputation): groups of layers, or the first layers of each chunk.
public enum RecomputeMethod: String, Sendable, CaseIterable {
    case uniform, block
}

/// `pipeline_schedule`: Megatron's 1F1B (interleaved with virtual stages), or zero bubble ZB-H1
/// (Qi et al., ICLR 2024): backward split into B (input gradients) and W (weight gradients), W
/// deferred into what would be the bubble.
public enum PipelineScheduleChoice: String, Sendable, CaseIterable {
    case oneFOneB = "1f1b"
    case zeroBubbleH1 = "zb-h1"
}

/// `pipeline_balance_costs`: what pipeline_auto_balance weighs layers, the embedding and the head
/// by — their times measured on this machine at the run's shapes (StageCostProbe), or their FLOPs.
public enum PipelineBalanceCosts: String, Sendable, CaseIterable {
    case measured, flops
}

/// `pipeline_balance_unit`: what pipeline_auto_balance places — whole layers (as Megatron's splits
/// do), or sub-layers, so a stage boundary may fall between a layer's attention and its MLP.
public enum PipelineBalanceUnit: String, Sendable, CaseIterable {
    case layer, sublayer
}

/// `ddp_sparse_embedding_ending`: whether the input word embedding's gradient rows of a step's last
/// micro-batch are kept apart and exchanged after the backward pass (SparseRowGradient), so the rest of
/// the word embedding's gradient reduces under that pass: `auto` when the exchange moves fewer bytes
/// than the all-reduce, `on` whenever it applies (p = 1, d > 1), `off` never.
public enum SparseEndingChoice: String, Sendable, CaseIterable {
    case auto, on, off
}

/// `ddp_reduction`: how data-parallel gradient buckets are reduced — `auto`: through a shared-memory
/// window when every rank of the data-parallel group runs on one node (SharedGradientReduction),
/// else MPI's non-blocking collectives; `mpi`: always MPI.
public enum DataParallelReduction: String, Sendable, CaseIterable {
    case auto, mpi
}

// GPTConfig.swift — the model hyper-parameters of a GPT (the subset of the training config the
// model itself needs), and the derived sizes: vocabulary padding and Megatron's FLOPs formula.

public struct GPTConfig: Sendable, Equatable {
    public var numLayers: Int
    public var hiddenSize: Int
    public var numAttentionHeads: Int
    public var ffnHiddenSize: Int
    public var seqLength: Int
    public var maxPositionEmbeddings: Int
    /// Real vocabulary size (tokenizer); `paddedVocabSize` rows are allocated.
    public var vocabSize: Int
    public var paddedVocabSize: Int
    public var hiddenDropout: Float
    public var attentionDropout: Float
    public var initMethodStd: Float
    public var normEpsilon: Float
    public var seed: Int
    /// The original BERT arrangement (LayerNorm after each residual add, on the embeddings, no
    /// final LayerNorm) instead of the pre-LN one (Megatron paper §3, Fig. 7). BERT only.
    public var postLayerNorm = false
    /// The options of Megatron's Llama-style GPTs (GPT only): rotary positions instead of a learned
    /// table (`rotaryBase`, the rotated share `rotaryPercent` of each head), RMSNorm instead of
    /// LayerNorm, the SwiGLU MLP (FC1 gives gate and up, `ffnHiddenSize` wide each), linear layers
    /// without biases, and an LM head with its own weight.
    public var positionEmbedding: PositionEmbeddingType = .learnedAbsolute
    public var rotaryBase: Double = 10000
    public var rotaryPercent: Double = 1
    /// Llama 3.1's rescaled rope frequencies (`use_rope_scaling`), nil for plain rope.
    public var ropeScaling: RopeScaling? = nil
    public var normalization: Normalization = .layerNorm
    public var swiglu = false
    public var addBiasLinear = true
    /// QKV's bias without the others' (Megatron's add_qkv_bias; Qwen 2).
    public var addQKVBias = false
    /// Megatron's qk_layernorm: `normalization` over each head's query and each group's key.
    public var qkLayerNorm = false
    public var untieEmbeddings = false
    /// Sliding-window attention: the keys before each query it may see (Megatron's window_size
    /// left; Mistral's sliding_window − 1); nil: every earlier key.
    public var slidingWindow: Int? = nil
    /// Key/value heads (grouped-query attention when fewer than the query heads).
    public var numQueryGroups: Int? = nil
    /// Megatron's kv_channels: each head's width (nil: hidden_size / num_attention_heads).
    public var kvChannels: Int? = nil

    public init(
        numLayers: Int, hiddenSize: Int, numAttentionHeads: Int, ffnHiddenSize: Int? = nil, seqLength: Int,
        maxPositionEmbeddings: Int, vocabSize: Int, paddedVocabSize: Int? = nil, hiddenDropout: Float = 0,
        attentionDropout: Float = 0, initMethodStd: Float = 0.02, normEpsilon: Float = 1e-5, seed: Int = 1234
    ) {
        self.numLayers = numLayers; self.hiddenSize = hiddenSize; self.numAttentionHeads = numAttentionHeads
        self.ffnHiddenSize = ffnHiddenSize ?? 4 * hiddenSize
        self.seqLength = seqLength; self.maxPositionEmbeddings = maxPositionEmbeddings
        self.vocabSize = vocabSize
        self.paddedVocabSize = paddedVocabSize ?? GPTConfig.paddedVocab(vocabSize, divisibleBy: 128, tensorParallel: 1)
        self.hiddenDropout = hiddenDropout; self.attentionDropout = attentionDropout
        self.initMethodStd = initMethodStd; self.normEpsilon = normEpsilon; self.seed = seed
    }

    /// Each head's width d: kv_channels, or hidden_size / num_attention_heads.
    public var headDim: Int { kvChannels ?? hiddenSize / numAttentionHeads }
    /// The width of the queries and of the attention's output, a·d (Megatron's query_projection_size;
    /// the hidden size unless kv_channels says otherwise): the projection maps it back to h.
    public var attentionWidth: Int { numAttentionHeads * headDim }
    /// Key/value heads: one per query head, or the groups of grouped-query attention.
    public var queryGroups: Int { numQueryGroups ?? numAttentionHeads }
    public var isGroupedQuery: Bool { queryGroups != numAttentionHeads }
    /// Query heads sharing each key and value head (1 without grouped-query attention).
    public var headsPerQueryGroup: Int { numAttentionHeads / queryGroups }
    /// QKV's output columns: per group [q of its heads | k | v].
    public var qkvWidth: Int { (numAttentionHeads + 2 * queryGroups) * headDim }
    /// FC1's output columns: ffn, or gate and up (2·ffn) with SwiGLU.
    public var fc1Width: Int { swiglu ? 2 * ffnHiddenSize : ffnHiddenSize }
    /// The rotated width of each head under rope (even; 0 without rope), Megatron's
    /// int(kv_channels · rotary_percent).
    public var rotaryDim: Int {
        positionEmbedding == .rope ? Int(Double(headDim) * rotaryPercent) / 2 * 2 : 0
    }
    /// Megatron's ffn_hidden_size when none is given: 4h, or with SwiGLU int(4h·2/3 / 64)·64 (the
    /// same parameter count as 4h in two matrices).
    public static func defaultFFN(hidden h: Int, swiglu: Bool) -> Int {
        swiglu ? Int(Double(4 * h) * 2 / 3 / 64) * 64 : 4 * h
    }

    /// Megatron's padding: up to a multiple of `divisibleBy · t`.
    public static func paddedVocab(_ v: Int, divisibleBy: Int, tensorParallel t: Int) -> Int {
        let m = max(1, divisibleBy * t)
        return (v + m - 1) / m * m
    }

    /// Model FLOPs of one iteration with `globalBatch` sequences, Megatron's formula (no recompute):
    /// 72·B·s·L·h²·(1 + s/(6h) + V/(12·L·h)), V the padded vocabulary, for ffn = 4h.
    /// In general (Megatron's `num_floating_point_operations` for a dense GPT):
    /// 12·B·s·L·h²·((1 + g/a + s/h)·(q/h) + (f/h)·G + V/(2·L·h)), equal to the above when f = 4h, g = a
    /// (g key/value heads, a query heads), q = a·kv_channels = h, G = 3/2 with SwiGLU (three ffn-wide
    /// products) else 1.
    public func flopsPerIteration(globalBatch: Int) -> Double {
        let B = Double(globalBatch), s = Double(seqLength), L = Double(numLayers), h = Double(hiddenSize)
        let f = Double(ffnHiddenSize), V = Double(paddedVocabSize), G = swiglu ? 1.5 : 1
        let groups = Double(queryGroups) / Double(numAttentionHeads), q = Double(attentionWidth) / h
        return 12 * B * s * L * h * h * ((1 + groups + s / h) * q + f / h * G + V / (2 * L * h))
    }
}

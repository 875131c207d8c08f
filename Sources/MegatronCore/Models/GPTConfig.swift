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

    public var headDim: Int { hiddenSize / numAttentionHeads }

    /// Megatron's padding: up to a multiple of `divisibleBy · t`.
    public static func paddedVocab(_ v: Int, divisibleBy: Int, tensorParallel t: Int) -> Int {
        let m = max(1, divisibleBy * t)
        return (v + m - 1) / m * m
    }

    /// Model FLOPs of one iteration with `globalBatch` sequences, Megatron's formula (no recompute):
    /// 72·B·s·L·h²·(1 + s/(6h) + V/(12·L·h)), V the padded vocabulary, for ffn = 4h.
    /// In general (Megatron's `num_floating_point_operations` for a dense GPT with MHA):
    /// 12·B·s·L·h²·((2 + s/h) + f/h + V/(2·L·h)), equal to the above when f = 4h.
    public func flopsPerIteration(globalBatch: Int) -> Double {
        let B = Double(globalBatch), s = Double(seqLength), L = Double(numLayers), h = Double(hiddenSize)
        let f = Double(ffnHiddenSize), V = Double(paddedVocabSize)
        return 12 * B * s * L * h * h * ((2 + s / h) + f / h + V / (2 * L * h))
    }
}

// GPTPartition.swift — GPT's side of the training core: its model hyper-parameters from a training
// config, and this rank's GPT chunks as a ModelPartition.
import Tensor

extension GPTConfig {
    /// The model a validated training config describes, for a tokenizer of `vocabSize` ids.
    public init(training c: TrainingConfig, vocabSize vocab: Int) {
        self.init(
            numLayers: c.numLayers, hiddenSize: c.hiddenSize, numAttentionHeads: c.numAttentionHeads,
            ffnHiddenSize: c.ffnHiddenSize ?? GPTConfig.defaultFFN(hidden: c.hiddenSize, swiglu: c.swiglu),
            seqLength: c.seqLength,
            maxPositionEmbeddings: c.maxPositionEmbeddings ?? c.seqLength, vocabSize: vocab,
            paddedVocabSize: GPTConfig.paddedVocab(
                vocab, divisibleBy: c.makeVocabSizeDivisibleBy,
                tensorParallel: c.tensorModelParallelSize),
            hiddenDropout: Float(c.hiddenDropout), attentionDropout: Float(c.attentionDropout),
            initMethodStd: Float(c.initMethodStd), normEpsilon: Float(c.normEpsilon), seed: c.seed)
        positionEmbedding = c.positionEmbeddingType
        rotaryBase = Double(c.rotaryBase)
        rotaryPercent = c.rotaryPercent
        ropeScaling = c.useRopeScaling ? RopeScaling(factor: c.ropeScalingFactor) : nil
        normalization = c.normalization
        swiglu = c.swiglu
        addBiasLinear = c.addBiasLinear
        untieEmbeddings = c.untieEmbeddingsAndOutputWeights
        numQueryGroups = c.groupQueryAttention ? c.numQueryGroups : nil
    }
}

extension TrainingConfig {
    /// The number format of the matrix work, from the bf16 / fp16 keys.
    public var precision: Precision { bf16 ? .bf16 : fp16 ? .fp16 : .fp32 }

    /// Which of a chunk's `layers` layers recompute in training, per the recompute keys.
    public func recomputePlan(layers: Int) -> RecomputePlan {
        RecomputePlan.make(
            granularity: recomputeGranularity, method: recomputeMethod, numLayers: recomputeNumLayers, layers: layers)
    }
}

extension ModelPartition where Chunk == GPTModel {
    /// This rank's GPT chunks for a validated config: tensor slices per the grid, layers per the
    /// pipeline layout, recomputation and precision per the config.
    public static func gpt(
        config c: TrainingConfig, vocabSize: Int, threads: Int, parallel: ParallelState,
        options: Options
    ) throws -> ModelPartition<GPTModel> {
        try MemoryPreflight.require(config: c, vocab: vocabSize, world: parallel.world.size, training: options.training)
        let gpt = GPTConfig(training: c, vocabSize: vocabSize)
        let tp = TensorParallel(
            group: parallel.layout.tensor > 1 ? parallel.tensor : nil, sequenceParallel: c.sequenceParallel)
        let makeChunk = { (plan: StagePlan) in
            GPTModel(
                config: gpt, microBatch: c.microBatchSize, threads: threads, tensorParallel: tp, stage: plan,
                recompute: options.training ? c.recomputePlan(layers: plan.layers.count) : nil, precision: c.precision)
        }
        let (layout, measured) = try layout(
            c, parallel: parallel, training: options.training,
            modelled: .transformer(
                hidden: gpt.hiddenSize, ffn: gpt.ffnHiddenSize, seq: gpt.seqLength,
                headFlopsPerToken: 2 * Double(gpt.hiddenSize * gpt.paddedVocabSize)),
            makeChunk: makeChunk)
        return try ModelPartition(
            parallel: parallel, layout: layout, balanceCosts: measured, options: options, makeChunk: makeChunk)
    }
}

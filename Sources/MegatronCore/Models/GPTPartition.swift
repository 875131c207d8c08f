// GPTPartition.swift — GPT's side of the training core: its model hyper-parameters from a training
// config, and this rank's GPT chunks as a ModelPartition.
import Foundation
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
        addQKVBias = c.addQKVBias
        qkLayerNorm = c.qkLayernorm
        untieEmbeddings = c.untieEmbeddingsAndOutputWeights
        numQueryGroups = c.groupQueryAttention ? c.numQueryGroups : nil
        kvChannels = c.kvChannels
        slidingWindow = (try? c.slidingWindow()) ?? nil
    }
}

extension TrainingConfig {
    /// window_size's left side: "L,R", "(L, R)", "[L, R]" or "L" with R = 0 (causal) and L ≥ 0, or
    /// L = −1 (Megatron's infinite window: full attention, nil).
    public func slidingWindow() throws -> Int? {
        guard let text = windowSize else { return nil }
        let fields = text.trimmingCharacters(in: CharacterSet(charactersIn: "()[] "))
            .split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        guard (1...2).contains(fields.count), let left = Int(fields[0]), fields.count == 1 || Int(fields[1]) != nil
        else {
            throw ConfigError.invalidValue(
                key: "window_size", value: "\"\(text)\"", rule: "must be \"left,right\" (e.g. \"4095,0\")")
        }
        if fields.count == 2 && Int(fields[1]) != 0 {
            throw ConfigError.invalidValue(
                key: "window_size", value: "\"\(text)\"",
                rule: "right must be 0: a GPT query never sees later keys")
        }
        guard left >= -1 else {
            throw ConfigError.invalidValue(
                key: "window_size", value: "\"\(text)\"", rule: "left must be ≥ 0, or −1 for no window")
        }
        return left == -1 ? nil : left
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
                gpt, headFlopsPerToken: 2 * Double(gpt.hiddenSize * gpt.paddedVocabSize),
                attentionShare: StageCosts.attentionShare(seq: gpt.seqLength, causal: true, window: gpt.slidingWindow)),
            makeChunk: makeChunk)
        return try ModelPartition(
            parallel: parallel, layout: layout, balanceCosts: measured, options: options, makeChunk: makeChunk)
    }
}

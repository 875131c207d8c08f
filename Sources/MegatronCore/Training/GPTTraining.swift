// GPTTraining.swift — a GPT training run: the tokenizer, TrainingData's samples and the GPT
// partition from a validated config, handed to the model-agnostic Trainer.

extension TrainingData: TrainingBatches {
    public typealias Activations = TransformerActivations
    public var hasValidation: Bool { valid != nil }
    public var hasTest: Bool { test != nil }
    /// Under eod_mask_loss a micro-batch counts the tokens its mask keeps.
    public var lossUnitsVary: Bool { documentMasks?.eodMaskLoss == true }
}

extension Trainer where Chunk == GPTModel, Data == TrainingData {
    /// Builds data, model partition, optimizer and schedule from a validated config, on this
    /// rank's place in `parallel`'s grid.
    public static func gpt(config c: TrainingConfig, log: RankLog, threads: Int, parallel: ParallelState) throws
        -> Trainer<GPTModel, TrainingData>
    {
        let d = parallel.layout.data, globalBatch = c.globalBatchSize ?? c.microBatchSize * d
        let tokenizer: Tokenizer? =
            c.tokenizerType == .null
            ? nil : try Tokenizers.make(config: c)
        let vocabSize = tokenizer?.vocabSize ?? c.vocabSize ?? 2
        let data = try TrainingData(
            config: c, tokenizer: tokenizer, vocabSize: vocabSize, globalBatch: globalBatch, parallel: parallel,
            log: log)
        let options = partitionOptions(c, microbatches: globalBatch / (c.microBatchSize * d))
        let partition = try ModelPartition.gpt(
            config: c, vocabSize: vocabSize, threads: threads, parallel: parallel, options: options)
        return Trainer(config: c, log: log, parallel: parallel, partition: partition, data: data)
    }
}

// TrainingData.swift — the samples a GPT training run reads: mock tokens, Megatron's indexed
// datasets (one, or a weighted blend), or the built-in corpus; split into train and validation,
// and placed into micro-batches as Megatron's sampler does.
import Foundation

public final class TrainingData {
    let trainOrder: ShuffledOrder
    /// Validation samples, when the split has any.
    let valid: SampleSource?
    let microBatch: Int, seqLength: Int, dataParallel: Int, dataRank: Int

    /// Builds the samples of a validated config for `globalBatch` sequences per iteration.
    init(
        config c: TrainingConfig, tokenizer: Tokenizer?, vocabSize: Int, globalBatch: Int, parallel: ParallelState,
        log: RankLog
    ) throws {
        microBatch = c.microBatchSize
        seqLength = c.seqLength
        dataParallel = parallel.layout.data
        dataRank = parallel.dataRank
        if c.mockData {
            trainOrder = ShuffledOrder(
                source: MockSamples(vocabSize: vocabSize, seqLength: c.seqLength, seed: c.seed), seed: c.seed,
                shuffles: false)
            valid = MockSamples(vocabSize: vocabSize, seqLength: c.seqLength, seed: c.seed + 1)
        } else if !c.dataPath.isEmpty {
            let evalSamples = c.evalIters > 0 ? (c.trainIters / c.evalInterval + 1) * c.evalIters * globalBatch : 0
            let (train, v) = try Self.megatronDatasets(
                c, trainSamples: c.trainIters * globalBatch, validSamples: evalSamples, vocabSize: vocabSize,
                parallel: parallel, log: log)
            trainOrder = ShuffledOrder(source: train, seed: c.seed, shuffles: false)
            valid = v
        } else {
            (trainOrder, valid) = try Self.builtInCorpus(c, tokenizer: tokenizer ?? ByteLevelTokenizer(), log: log)
        }
    }

    /// The texts of /usr/share/common-licenses as one token stream, cut into windows by `split`.
    static func builtInCorpus(_ c: TrainingConfig, tokenizer: Tokenizer, log: RankLog) throws -> (
        ShuffledOrder, SampleSource?
    ) {
        let corpus = try TokenCorpus.licenseTexts(tokenizer: tokenizer)
        let weights = try ConfigValidation.parseSplit(c.split)
        let ranges = corpus.splitRanges(weights)
        let train = TokenWindows(tokens: corpus.tokens, range: ranges[0], seqLength: c.seqLength)
        if train.count == 0 {
            throw DataError.splitTooSmall(split: "train", tokens: ranges[0].count, needed: c.seqLength + 1)
        }
        let v = TokenWindows(tokens: corpus.tokens, range: ranges[1], seqLength: c.seqLength)
        if c.evalIters > 0 && weights[1] > 0 && v.count == 0 {
            throw DataError.splitTooSmall(split: "valid", tokens: ranges[1].count, needed: c.seqLength + 1)
        }
        log(
            " > built-in corpus: \(corpus.documents) documents from \(corpus.source), \(corpus.tokens.count) "
                + "\(tokenizer.name) tokens; samples train \(train.count), valid \(v.count)"
        )
        return (ShuffledOrder(source: train, seed: c.seed), v.count > 0 ? v : nil)
    }

    /// Writes this data-parallel rank's training micro-batch `micro` of the iteration that starts
    /// at `consumedSamples` into `acts` — Megatron's sampler: micro-batch k of rank j holds samples
    /// k·(b·d) + j·b ..< +b of the global batch.
    public func fillTraining(consumedSamples: Int, micro: Int, _ acts: TransformerActivations) {
        let first = consumedSamples + (micro * dataParallel + dataRank) * microBatch
        let indices = (0..<microBatch).map { trainOrder.sampleIndex(first + $0) }
        BatchAssembly.fill(
            tokens: acts.tokens.base, targets: acts.targets.base, from: trainOrder.source, indices: indices,
            seqLength: seqLength)
    }

    /// Writes validation micro-batch `micro` of evaluation iteration `iteration` (of `microbatches`
    /// per iteration) into `acts`: the same samples at every evaluation.
    public func fillValidation(iteration: Int, micro: Int, microbatches: Int, _ acts: TransformerActivations) {
        guard let valid else { return }
        let batch = (iteration * microbatches + micro) * dataParallel + dataRank
        let indices = (0..<microBatch).map { (batch * microBatch + $0) % valid.count }
        BatchAssembly.fill(
            tokens: acts.tokens.base, targets: acts.targets.base, from: valid, indices: indices, seqLength: seqLength)
    }

    /// The train and validation samples of `data_path` (one dataset, or a weighted blend): each
    /// dataset's sequences split by `split`, and Megatron's sample index per split. World rank 0
    /// builds and caches the indices first; the other ranks then load them from the cache.
    static func megatronDatasets(
        _ c: TrainingConfig, trainSamples: Int, validSamples: Int, vocabSize: Int, parallel: ParallelState,
        log: RankLog
    ) throws -> (SampleSource, SampleSource?) {
        let (weights, prefixes) = try ConfigValidation.parseDataPath(c.dataPath)
        let blended = prefixes.count > 1
        let trainCounts =
            blended ? BlendedSamples.perSourceSamples(weights: weights, count: trainSamples) : [trainSamples]
        let validCounts =
            blended ? BlendedSamples.perSourceSamples(weights: weights, count: validSamples) : [validSamples]
        // Rank 0 builds and caches; after the barrier every other rank finds the cache. (An error
        // on rank 0 aborts the job, so no rank waits at the barrier forever.)
        let world = parallel.world
        var built: (train: [SampleSource], valid: [SampleSource]) = ([], [])
        if world.rank == 0 {
            built = try buildDatasets(
                c, prefixes: prefixes, trainCounts: trainCounts, validCounts: validCounts, vocabSize: vocabSize,
                writeCache: true, log: log)
        }
        if world.size > 1 {
            try world.barrier()
            if world.rank != 0 {
                built = try buildDatasets(
                    c, prefixes: prefixes, trainCounts: trainCounts, validCounts: validCounts, vocabSize: vocabSize,
                    writeCache: false, log: log)
            }
        }
        let train: SampleSource =
            blended ? BlendedSamples(sources: built.train, weights: weights, count: trainSamples) : built.train[0]
        var valid: SampleSource? = nil
        if built.valid.count == prefixes.count {
            valid =
                blended ? BlendedSamples(sources: built.valid, weights: weights, count: validSamples) : built.valid[0]
        }
        return (train, valid)
    }

    /// Each prefix's GPTDataset for the train split and, when validation samples are wanted and
    /// the split has documents, the valid split.
    static func buildDatasets(
        _ c: TrainingConfig, prefixes: [String], trainCounts: [Int], validCounts: [Int], vocabSize: Int,
        writeCache: Bool, log: RankLog
    ) throws -> (train: [SampleSource], valid: [SampleSource]) {
        let split = try ConfigValidation.parseSplit(c.split)
        var built: (train: [SampleSource], valid: [SampleSource]) = ([], [])
        for (k, prefix) in prefixes.enumerated() {
            let start = DispatchTime.now().uptimeNanoseconds
            let dataset = try IndexedDataset(prefix: prefix)
            try dataset.checkTokens(vocabSize: vocabSize)
            let bounds = GPTDataset.splitBounds(split, count: dataset.sequenceCount)
            let train = try GPTDataset(
                dataset: dataset, split: "train", documents: bounds[0], numSamples: trainCounts[k],
                seqLength: c.seqLength, seed: c.seed, cacheDirectory: c.dataCachePath, writeCache: writeCache)
            built.train.append(train)
            var line =
                " > dataset \(prefix): \(dataset.documentCount) documents, \(dataset.sequenceCount) sequences; train "
                + "\(bounds[0].count) sequences → \(train.count) samples"
            if validCounts.contains(where: { $0 > 0 }) && !bounds[1].isEmpty {
                let v = try GPTDataset(
                    dataset: dataset, split: "valid", documents: bounds[1], numSamples: validCounts[k],
                    seqLength: c.seqLength, seed: c.seed, cacheDirectory: c.dataCachePath, writeCache: writeCache)
                built.valid.append(v)
                line += ", valid \(bounds[1].count) sequences → \(v.count) samples"
            }
            let ms = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
            line +=
                train.loadedFromCache
                ? String(format: "; sample index loaded from the cache %@ (%.0f ms)", train.cachePrefix, ms)
                : String(format: "; sample index built in %.0f ms, cached at %@", ms, train.cachePrefix)
            if writeCache { log(line) }
        }
        return built
    }
}

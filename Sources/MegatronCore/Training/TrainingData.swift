// TrainingData.swift — the samples a GPT training run reads: mock tokens, Megatron's indexed
// datasets (one, or a weighted blend; cut into train, validation and test by `split`, or given
// apart as train_data_path / valid_data_path / test_data_path), or the built-in corpus; placed into
// micro-batches as Megatron's sampler does, with Megatron's packed-document masks when asked
// (DocumentMasks: eod_mask_loss, reset_position_ids, reset_attention_mask).
import Foundation

public final class TrainingData {
    let trainOrder: ShuffledOrder
    /// Validation samples, when the split (or valid_data_path) has any.
    let valid: SampleSource?
    /// Test samples (the split's third part, or test_data_path), evaluated once after training.
    var test: SampleSource? = nil
    let microBatch: Int, seqLength: Int, dataParallel: Int, dataRank: Int
    /// Megatron's packed-document options, when any is on.
    let documentMasks: DocumentMasks?
    /// calculate_per_token_loss: the counted tokens of the global batch that starts at `.start`.
    private var globalCounted: (start: Int, count: Int)? = nil

    /// Builds the samples of a validated config for `globalBatch` sequences per iteration.
    init(
        config c: TrainingConfig, tokenizer: Tokenizer?, vocabSize: Int, globalBatch: Int, parallel: ParallelState,
        log: RankLog
    ) throws {
        microBatch = c.microBatchSize
        seqLength = c.seqLength
        dataParallel = parallel.layout.data
        dataRank = parallel.dataRank
        // The id that ends a document: the tokenizer's, or NullTokenizer's (a run without a tokenizer
        // object reads ids); asked only when an option is on.
        documentMasks = DocumentMasks(config: c, eod: (tokenizer ?? NullTokenizer(vocabSize: vocabSize)).eod)
        if let m = documentMasks {
            let on = [
                ("eod_mask_loss", m.eodMaskLoss), ("reset_position_ids", m.resetPositionIds),
                ("reset_attention_mask", m.resetAttentionMask), ("calculate_per_token_loss", m.perTokenLoss),
            ].filter(\.1).map(\.0)
            log(" > packed documents (EOD id \(m.eod)): \(on.joined(separator: ", "))")
        }
        if c.mockData {
            trainOrder = ShuffledOrder(
                source: MockSamples(vocabSize: vocabSize, seqLength: c.seqLength, seed: c.seed), seed: c.seed,
                shuffles: false)
            valid = MockSamples(vocabSize: vocabSize, seqLength: c.seqLength, seed: c.seed + 1)
        } else if !c.dataPath.isEmpty || c.usesSeparateDataPaths {
            // Megatron's sample counts: train_iters·gbs, validation at every eval_interval and at the
            // end, the test set once at the end.
            let evalSamples = c.evalIters > 0 ? (c.trainIters / c.evalInterval + 1) * c.evalIters * globalBatch : 0
            let parts = try Self.dataParts(
                c, samples: [c.trainIters * globalBatch, evalSamples, c.evalIters * globalBatch])
            let built = try Self.megatronDatasets(c, parts: parts, vocabSize: vocabSize, parallel: parallel, log: log)
            guard let train = built["train"] else {
                throw DataError.splitTooSmall(split: "train", tokens: 0, needed: c.seqLength + 1)
            }
            trainOrder = ShuffledOrder(source: train, seed: c.seed, shuffles: false)
            valid = built["valid"]
            test = built["test"]
        } else {
            (trainOrder, valid) = try Self.builtInCorpus(c, tokenizer: tokenizer ?? ByteLevelTokenizer(), log: log)
        }
        if c.evalIters > 0 && valid == nil && !c.skipTrain {
            let source = c.usesSeparateDataPaths ? "no valid_data_path is given" : "split \(c.split) leaves none"
            log(
                " > WARNING: no validation data (\(source)): eval_iters \(c.evalIters) is unused and no validation "
                    + "loss will be reported")
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

    /// Writes this data-parallel rank's training micro-batch `micro` (of `microbatches`) of the
    /// iteration that starts at `consumedSamples` into `acts` — Megatron's sampler: micro-batch k of
    /// rank j holds samples k·(b·d) + j·b ..< +b of the global batch.
    public func fillTraining(consumedSamples: Int, micro: Int, microbatches: Int, _ acts: TransformerActivations) {
        let first = consumedSamples + (micro * dataParallel + dataRank) * microBatch
        let indices = (0..<microBatch).map { trainOrder.sampleIndex(first + $0) }
        BatchAssembly.fill(
            tokens: acts.tokens.base, targets: acts.targets.base, from: trainOrder.source, indices: indices,
            seqLength: seqLength)
        guard let masks = documentMasks else { return }
        let global = masks.perTokenLoss ? globalCountedTokens(start: consumedSamples, microbatches: microbatches) : nil
        masks.apply(to: acts, globalCounted: global, microbatchesTimesData: microbatches * dataParallel)
    }

    /// The counted tokens (DocumentMasks.countedTokens) of the global batch of `microbatches` ·
    /// micro_batch_size · d samples from `start`: every rank reads them all (once per iteration).
    private func globalCountedTokens(start: Int, microbatches: Int) -> Int {
        if let g = globalCounted, g.start == start { return g.count }
        guard let masks = documentMasks else { return 0 }
        var sample = [Int32](repeating: 0, count: seqLength + 1), count = 0
        for k in start..<(start + microbatches * microBatch * dataParallel) {
            sample.withUnsafeMutableBufferPointer {
                trainOrder.source.sample(trainOrder.sampleIndex(k), into: $0.baseAddress!)
            }
            count += masks.countedTokens(sample.prefix(seqLength))
        }
        globalCounted = (start, count)
        return count
    }

    /// Writes validation micro-batch `micro` of evaluation iteration `iteration` (of `microbatches`
    /// per iteration) into `acts`: the same samples at every evaluation.
    public func fillValidation(iteration: Int, micro: Int, microbatches: Int, _ acts: TransformerActivations) {
        guard let valid else { return }
        fill(from: valid, iteration: iteration, micro: micro, microbatches: microbatches, acts)
    }

    /// The same for the test set.
    public func fillTest(iteration: Int, micro: Int, microbatches: Int, _ acts: TransformerActivations) {
        guard let test else { return }
        fill(from: test, iteration: iteration, micro: micro, microbatches: microbatches, acts)
    }

    private func fill(
        from valid: SampleSource, iteration: Int, micro: Int, microbatches: Int, _ acts: TransformerActivations
    ) {
        let batch = (iteration * microbatches + micro) * dataParallel + dataRank
        let indices = (0..<microBatch).map { (batch * microBatch + $0) % valid.count }
        BatchAssembly.fill(
            tokens: acts.tokens.base, targets: acts.targets.base, from: valid, indices: indices, seqLength: seqLength)
        documentMasks?.apply(to: acts)
    }

    /// One part of Megatron's data (train, valid or test): a weighted blend of dataset prefixes,
    /// the samples wanted, and which sequences of each dataset the part reads.
    struct DataPart {
        let name: String
        let weights: [Double], prefixes: [String]
        let samples: Int
        /// Its share of `split` (data_path), or every sequence (a separate path: train_data_path, …).
        let sequences: (IndexedDataset) -> Range<Int>
    }

    /// The parts a config names, for `samples` (train, valid, test): data_path cut by `split`, or
    /// train_data_path / valid_data_path / test_data_path each read whole. A part with no samples
    /// wanted or no path is left out.
    static func dataParts(_ c: TrainingConfig, samples: [Int]) throws -> [DataPart] {
        let names = ["train", "valid", "test"]
        if !c.dataPath.isEmpty {
            let (weights, prefixes) = try ConfigValidation.parseDataPath(c.dataPath)
            let split = try ConfigValidation.parseSplit(c.split)
            return (0..<3).filter { samples[$0] > 0 }.map { i in
                DataPart(
                    name: names[i], weights: weights, prefixes: prefixes, samples: samples[i],
                    sequences: { GPTDataset.splitBounds(split, count: $0.sequenceCount)[i] })
            }
        }
        let paths = [c.trainDataPath, c.validDataPath, c.testDataPath]
        return try (0..<3).filter { samples[$0] > 0 && !paths[$0].isEmpty }.map { i in
            let (weights, prefixes) = try ConfigValidation.parseDataPath(paths[i], key: names[i] + "_data_path")
            return DataPart(
                name: names[i], weights: weights, prefixes: prefixes, samples: samples[i],
                sequences: { 0..<$0.sequenceCount })
        }
    }

    /// The samples of each part (one dataset, or a weighted blend), by part name; a part whose
    /// datasets hold no sequences for it is absent. World rank 0 builds and caches the sample
    /// indices first; the other ranks then load them from the cache.
    static func megatronDatasets(
        _ c: TrainingConfig, parts: [DataPart], vocabSize: Int, parallel: ParallelState, log: RankLog
    )
        throws -> [String: SampleSource]
    {
        // Rank 0 builds and caches; after the barrier every other rank finds the cache. (An error
        // on rank 0 aborts the job, so no rank waits at the barrier forever.)
        let world = parallel.world
        var built: [String: SampleSource] = [:]
        if world.rank == 0 {
            built = try buildDatasets(c, parts: parts, vocabSize: vocabSize, writeCache: true, log: log)
        }
        if world.size > 1 {
            try world.barrier()
            if world.rank != 0 {
                built = try buildDatasets(c, parts: parts, vocabSize: vocabSize, writeCache: false, log: log)
            }
        }
        return built
    }

    /// Each part's GPTDataset per prefix (blended when there are several); each dataset is opened
    /// and its token ids checked once.
    static func buildDatasets(
        _ c: TrainingConfig, parts: [DataPart], vocabSize: Int, writeCache: Bool, log: RankLog
    ) throws -> [String: SampleSource] {
        var opened: [String: IndexedDataset] = [:]
        var built: [String: SampleSource] = [:]
        for part in parts {
            let counts =
                part.prefixes.count > 1
                ? BlendedSamples.perSourceSamples(weights: part.weights, count: part.samples) : [part.samples]
            var sources: [SampleSource] = []
            for (k, prefix) in part.prefixes.enumerated() {
                let start = DispatchTime.now().uptimeNanoseconds
                let dataset: IndexedDataset
                if let d = opened[prefix] {
                    dataset = d
                } else {
                    dataset = try IndexedDataset(prefix: prefix)
                    try dataset.checkTokens(vocabSize: vocabSize)
                    opened[prefix] = dataset
                }
                let range = part.sequences(dataset)
                if range.isEmpty && part.name != "train" { break }
                let samples: GPTDataset
                do {
                    samples = try GPTDataset(
                        dataset: dataset, split: part.name, documents: range, numSamples: counts[k],
                        seqLength: c.seqLength, seed: c.seed, cacheDirectory: c.dataCachePath, writeCache: writeCache)
                } catch DataError.splitTooSmall(_, let tokens, let needed)
                    where part.name == "test" && c.dataPath.count > 0
                {
                    // The split's last sliver (1 part in 1000 by default) may hold less than one sample.
                    if writeCache {
                        log(
                            " > dataset \(prefix): the test split holds \(tokens) tokens, fewer than one sample (\(needed)); no test evaluation"
                        )
                    }
                    break
                }
                sources.append(samples)
                let ms = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
                let line =
                    " > dataset \(prefix): \(dataset.documentCount) documents, \(dataset.sequenceCount) sequences; "
                    + "\(part.name) \(range.count) sequences → \(samples.count) samples; "
                    + (samples.loadedFromCache
                        ? String(format: "sample index loaded from the cache %@ (%.0f ms)", samples.cachePrefix, ms)
                        : String(format: "sample index built in %.0f ms, cached at %@", ms, samples.cachePrefix))
                if writeCache { log(line) }
            }
            guard sources.count == part.prefixes.count else { continue }
            built[part.name] =
                sources.count > 1
                ? BlendedSamples(sources: sources, weights: part.weights, count: part.samples) : sources[0]
        }
        return built
    }
}

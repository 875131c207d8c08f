// BertTraining.swift — a BERT training run: sentence-split documents — of a dataset written by
// `preprocess-data --split-sentences` (data_path), or of the built-in corpus (tokenised by
// BertWordPieceLowerCase, or bytes with BERT's special tokens appended) — split into train and
// validation by documents (`split`), Megatron's sample mapping and construction
// (BertSamples.swift) placed into micro-batches as Megatron's sampler does, and the BERT partition,
// handed to the model-agnostic Trainer.
import Foundation

public final class BertTrainingData: TrainingBatches {
    let corpus: any BertCorpus
    let train: [BertSpan], valid: [BertSpan]
    let trainBuilder: BertSampleBuilder, validBuilder: BertSampleBuilder
    let microBatch: Int, dataParallel: Int, dataRank: Int
    private var trainOrder: EpochShuffle

    init(
        config c: TrainingConfig, vocabulary: BertVocabulary, tokenize: ([UInt8]) -> [Int32], parallel: ParallelState,
        log: RankLog
    ) throws {
        microBatch = c.microBatchSize
        dataParallel = parallel.layout.data
        dataRank = parallel.dataRank
        func builder(_ seed: Int) -> BertSampleBuilder {
            BertSampleBuilder(
                vocabulary: vocabulary, seqLength: c.seqLength, maskProb: c.maskProb,
                shortSeqProb: c.shortSeqProb, binaryHead: c.bertBinaryHead, seed: seed)
        }
        trainBuilder = builder(c.seed)
        validBuilder = builder(c.seed + 1)
        let split = try ConfigValidation.parseSplit(c.split)
        if let prefix = c.dataPath.first {
            let dataset = try IndexedDataset(prefix: prefix)
            try Self.checkSentenceSplit(dataset, config: c)
            // BERT's special ids are part of the vocabulary but never in the text.
            try dataset.checkTokens(vocabSize: vocabulary.size)
            let bounds = GPTDataset.splitBounds(split, count: dataset.documentCount)
            let write = parallel.world.rank == 0
            let t = BertDatasetIndex.spans(
                builder: trainBuilder, dataset: dataset, documents: bounds[0], split: "train", writeCache: write)
            let v = BertDatasetIndex.spans(
                builder: validBuilder, dataset: dataset, documents: bounds[1], split: "valid", writeCache: write)
            corpus = dataset
            (train, valid) = (t.spans, v.spans)
            log(
                " > BERT dataset \(prefix): \(dataset.documentCount) documents, \(dataset.sequenceCount) sentences; "
                    + "samples per epoch: train \(train.count), valid \(valid.count)"
                    + (t.cached ? " (spans loaded from the cache)" : ""))
        } else {
            let documents = try TokenCorpus.licenseDocuments().map { SentenceSplitter.split($0).map(tokenize) }
            let bounds = GPTDataset.splitBounds(split, count: documents.count)
            corpus = documents
            train = trainBuilder.spans(documents, documents: bounds[0])
            valid = validBuilder.spans(documents, documents: bounds[1])
            let sentences = documents.reduce(0) { $0 + $1.count }
            log(
                " > built-in corpus for BERT: \(documents.count) documents, \(sentences) sentences; samples per epoch: "
                    + "train \(train.count), valid \(valid.count)")
        }
        if train.isEmpty && !c.skipTrain {
            throw DataError.splitTooSmall(split: "train", tokens: 0, needed: c.seqLength)
        }
        trainOrder = EpochShuffle(count: max(1, train.count), seed: c.seed, stream: 3)
    }

    /// A dataset of one sequence per document was not sentence-split: with the binary head it
    /// would make no sample, so say how to make one that does.
    static func checkSentenceSplit(_ dataset: IndexedDataset, config c: TrainingConfig) throws {
        guard c.bertBinaryHead, dataset.documentCount > 0, dataset.sequenceCount <= dataset.documentCount else {
            return
        }
        throw ConfigError.invalidValue(
            key: "data_path", value: "\"\(dataset.prefix)\"",
            rule: "holds one sequence per document; BERT's sentence-order samples need sentence-split data: "
                + "preprocess-data --split-sentences writes P_text_sentence.bin/.idx")
    }

    public var hasValidation: Bool { !valid.isEmpty }
    /// Validation samples in one pass (one per span).
    public var validationSamples: Int { valid.count }

    /// Training sample k: epoch k / N visits the N spans in an order shuffled per epoch.
    func trainSample(_ k: Int) -> BertSample {
        trainBuilder.sample(k, span: train[trainOrder.item(k)], corpus: corpus)
    }

    public func fillTraining(consumedSamples: Int, micro: Int, microbatches: Int, _ acts: BertActivations) {
        let first = consumedSamples + (micro * dataParallel + dataRank) * microBatch
        Self.place((0..<microBatch).map { trainSample(first + $0) }, into: acts)
    }

    public func fillValidation(iteration: Int, micro: Int, microbatches: Int, _ acts: BertActivations) {
        let batch = (iteration * microbatches + micro) * dataParallel + dataRank
        Self.place(
            (0..<microBatch).map { j in
                let k = batch * microBatch + j
                return validBuilder.sample(k, span: valid[k % valid.count], corpus: corpus)
            }, into: acts)
    }

    /// Writes sample j of `samples` into column j of the [s, b] rows.
    static func place(_ samples: [BertSample], into acts: BertActivations) {
        let b = samples.count, core = acts.core
        for (j, sample) in samples.enumerated() {
            for (pos, t) in sample.tokens.enumerated() {
                core.tokens.base[pos * b + j] = t
                acts.tokentypes.base[pos * b + j] = sample.tokentypes[pos]
                acts.labels.base[pos * b + j] = sample.labels[pos]
            }
            acts.sequenceLabels[j] = sample.sopLabel
        }
        acts.setLengths(samples.map(\.length))
    }
}

extension ModelPartition where Chunk == BertModel {
    /// This rank's BERT chunks for a validated config.
    public static func bert(
        config c: TrainingConfig, vocabSize: Int, threads: Int, parallel: ParallelState,
        options: Options, task: BertTask = .pretraining
    ) throws -> ModelPartition<BertModel> {
        try MemoryPreflight.require(config: c, vocab: vocabSize, world: parallel.world.size, training: options.training)
        var bert = BertConfig(training: c, vocabSize: vocabSize)
        bert.task = task
        let tp = TensorParallel(
            group: parallel.layout.tensor > 1 ? parallel.tensor : nil, sequenceParallel: c.sequenceParallel)
        // The masked-LM head runs on the masked rows only (and the binary head on one row per sequence).
        let t = bert.transformer, h = Double(t.hiddenSize)
        let makeChunk = { (plan: StagePlan) in
            BertModel(
                config: bert, microBatch: c.microBatchSize * task.group, threads: threads, tensorParallel: tp,
                stage: plan,
                recompute: options.training ? c.recomputePlan(layers: plan.layers.count) : nil, precision: c.precision)
        }
        let (layout, measured) = try layout(
            c, parallel: parallel, training: options.training,
            modelled: .transformer(
                t, headFlopsPerToken: c.maskProb * (2 * h * h + 2 * h * Double(t.paddedVocabSize)),
                attentionShare: 1),
            makeChunk: makeChunk,
            prepare: { acts in  // mask_prob of the positions, spread evenly, as the data would
                for r in 0..<acts.core.rows {
                    let masked = (Double(r + 1) * c.maskProb).rounded(.down) > (Double(r) * c.maskProb).rounded(.down)
                    acts.labels.base[r] = masked ? 0 : -1
                }
            })
        return try ModelPartition(
            parallel: parallel, layout: layout, balanceCosts: measured, options: options, makeChunk: makeChunk)
    }
}

extension Trainer where Chunk == BertModel, Data == BertTrainingData {
    /// A BERT run from a validated config with `model_type` BERT.
    public static func bert(config c: TrainingConfig, log: RankLog, threads: Int, parallel: ParallelState) throws
        -> Trainer<BertModel, BertTrainingData>
    {
        let d = parallel.layout.data, globalBatch = c.globalBatchSize ?? c.microBatchSize * d
        let (vocabulary, tokenize) = try BertVocabulary.forConfig(c)
        let data = try BertTrainingData(
            config: c, vocabulary: vocabulary, tokenize: tokenize, parallel: parallel, log: log)
        let options = partitionOptions(c, microbatches: globalBatch / (c.microBatchSize * d))
        let partition = try ModelPartition.bert(
            config: c, vocabSize: vocabulary.size, threads: threads, parallel: parallel,
            options: options)
        return Trainer(config: c, log: log, parallel: parallel, partition: partition, data: data)
    }
}

extension BertVocabulary {
    /// The vocabulary and tokenizer a BERT config names: WordPiece (lower-casing or cased) with its `vocab_file` (its `##`
    /// pieces continue words, for whole-word masking), Megatron's SentencePieceTokenizer over a
    /// `tokenizer_model` (its <CLS> <SEP> <MASK> and pad; every piece a word, as Megatron's masking
    /// finds no "##" piece there), or bytes with BERT's special tokens appended (`byteLevel`: every
    /// byte a word).
    public static func forConfig(_ c: TrainingConfig) throws -> (BertVocabulary, ([UInt8]) -> [Int32]) {
        if c.tokenizerType == .sentencePiece, let path = c.tokenizerModel {
            let sp = try SentencePieceTokenizer(modelFile: path, flavour: .megatron)
            let s = sp.bertSpecials!  // the megatron flavour has them
            let vocabulary = BertVocabulary(size: sp.vocabSize, cls: s.cls, sep: s.sep, mask: s.mask, pad: s.pad)
            return (vocabulary, { sp.encode($0) })
        }
        guard c.tokenizerType.isBertWordPiece, let file = c.vocabFile else {
            return (.byteLevel, { $0.map { Int32($0) } })
        }
        let wordPiece = try BertWordPieceTokenizer(
            vocabFile: file, lowerCase: c.tokenizerType == .bertWordPieceLowerCase)
        let continuations = Set((0..<Int32(wordPiece.vocabSize)).filter(wordPiece.isContinuation))
        let vocabulary = BertVocabulary(
            size: wordPiece.vocabSize, cls: wordPiece.cls, sep: wordPiece.sep, mask: wordPiece.mask, pad: wordPiece.pad,
            continuations: continuations)
        return (vocabulary, { wordPiece.encode($0) })
    }
}

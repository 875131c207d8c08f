// Trainer.swift — the training loop of one model replica: micro-batches with gradient
// accumulation (or a pipeline schedule, Trainer+Pipeline.swift), global-norm clipping, AdamW, the
// LR schedule, periodic validation, logging and checkpoints. A step of iteration k:
//     zero grads → for each micro-batch: forward+backward (loss scaled by scale/(tokens·microbatches·d))
//     → data-parallel all-reduce (or reduce-scatter, distributed optimizer) → [loss scaler: unscale,
//     overflow anywhere → skip the step] → grad norm → clip → AdamW at lr(k) [→ all-gather params]
//     → schedule += global batch → log, validate, save
import Checkpoint
import Distributed
import Foundation
import Tensor

public struct TrainingSummary: Sendable {
    public var lastIteration: Int
    public var lastTrainLoss: Double?
    public var lastValidLoss: Double?
}

public final class Trainer {
    public let config: TrainingConfig
    /// This rank's model chunks (one, or v with the interleaved pipeline schedule) and their optimizer.
    public let chunks: [GPTModel]
    public let optimizer: TrainingOptimizer
    /// Loss scaling (reduced precision): the backward pass runs on loss·scale and an overflow skips the step.
    public var lossScaler: LossScaler? = nil
    /// Test hook: at these iterations model-parallel rank (0, 0) of every replica finds +∞ in a
    /// gradient after the reduction (an overflow, as fp16 would produce).
    public var injectOverflowAt: Set<Int> = []
    public var model: GPTModel { chunks[0] }
    /// Activation memory of this rank (every chunk, every micro-batch in flight).
    public var activationBytes: Int { executor?.activationBytes ?? chunks.reduce(0) { $0 + $1.acts.bytes } }
    /// The transformer layers' share of one micro-batch's activations (every chunk), and what
    /// Korthikanti et al.'s formula gives for it at our 4-byte storage (attention probabilities are
    /// never stored, so its selective form).
    public var layerActivationBytes: (held: Int, formula: Double) {
        let held = chunks.reduce(0) { $0 + $1.acts.layerBytes }
        let formula = chunks.reduce(0.0) { total, chunk in
            let c = chunk.config, tp = chunk.tensorParallel
            let f = ActivationMemoryFormula(seq: c.seqLength, microBatch: chunk.acts.batch, hidden: c.hiddenSize, heads: c.numAttentionHeads,
                                            tensorParallel: tp.size, sequenceParallel: tp.sequenceParallel)
            return total + f.peakBytes(layers: chunk.stage.layers.count, plan: chunk.acts.recompute, elementBytes: 4, selective: true)
        }
        return (held, formula)
    }
    /// With pipeline parallelism: the executor and this iteration's training and evaluation schedules.
    let executor: PipelineExecutor?
    public let trainSchedule: PipelineSchedule?
    let evalSchedule: PipelineSchedule?
    public private(set) var schedule: LRSchedule
    public private(set) var progress = TrainingProgress()
    let trainOrder: ShuffledOrder
    let valid: SampleSource?
    let log: RankLog
    let microBatch: Int, globalBatch: Int, numMicrobatches: Int, seqLength: Int, trainIters: Int
    let saveDirectory: CheckpointDirectory?
    var lastSavedIteration: Int? = nil
    public let parallel: ParallelState
    /// This rank's idle share of the last pipelined iteration (1 − compute / step time).
    public internal(set) var lastPipelineIdleFraction: Double? = nil
    /// Records spans outside the pipeline executor (optimizer, single-stage micro-batches) when tracing.
    var currentTracer: StepTracer? = nil
    /// With data parallelism: the bucketed gradient all-reduce over the data-parallel group.
    public let buckets: GradientBuckets?

    /// Builds data, model, optimizer and schedule from a validated config, on this rank's place in
    /// `parallel`'s grid.
    public init(config c: TrainingConfig, log: RankLog, threads: Int, parallel: ParallelState) throws {
        config = c
        self.log = log
        self.parallel = parallel
        microBatch = c.microBatchSize!
        let d = parallel.layout.data
        globalBatch = c.globalBatchSize ?? microBatch * d
        numMicrobatches = globalBatch / (microBatch * d)
        seqLength = c.seqLength!
        trainIters = c.trainIters!
        let tokenizer: Tokenizer? = c.tokenizerType == "NullTokenizer" ? nil
            : try Tokenizers.make(type: c.tokenizerType, vocabFile: c.vocabFile, mergeFile: c.mergeFile)
        let gpt = Trainer.modelConfig(c, vocabSize: tokenizer?.vocabSize ?? c.vocabSize ?? 2)
        let tp = TensorParallel(group: parallel.layout.tensor > 1 ? parallel.tensor : nil, sequenceParallel: c.sequenceParallel)
        // Data
        if c.mockData {
            trainOrder = ShuffledOrder(source: MockSamples(vocabSize: gpt.vocabSize, seqLength: seqLength, seed: c.seed), seed: c.seed, shuffles: false)
            valid = MockSamples(vocabSize: gpt.vocabSize, seqLength: seqLength, seed: c.seed + 1)
        } else if !c.dataPath.isEmpty {
            let evalSamples = c.evalIters > 0 ? (trainIters / c.evalInterval + 1) * c.evalIters * globalBatch : 0
            let (train, v) = try Trainer.megatronDatasets(c, trainSamples: trainIters * globalBatch, validSamples: evalSamples,
                                                          parallel: parallel, log: log)
            trainOrder = ShuffledOrder(source: train, seed: c.seed, shuffles: false)
            valid = v
        } else {
            let corpus = try TokenCorpus.licenseTexts(tokenizer: tokenizer ?? ByteLevelTokenizer())
            let weights = try ConfigValidation.parseSplit(c.split)
            let ranges = corpus.splitRanges(weights)
            let train = TokenWindows(tokens: corpus.tokens, range: ranges[0], seqLength: seqLength)
            if train.count == 0 { throw DataError.splitTooSmall(split: "train", tokens: ranges[0].count, needed: seqLength + 1) }
            trainOrder = ShuffledOrder(source: train, seed: c.seed)
            let v = TokenWindows(tokens: corpus.tokens, range: ranges[1], seqLength: seqLength)
            if c.evalIters > 0 && weights[1] > 0 && v.count == 0 {
                throw DataError.splitTooSmall(split: "valid", tokens: ranges[1].count, needed: seqLength + 1)
            }
            valid = v.count > 0 ? v : nil
            log(" > built-in corpus: \(corpus.documents) documents from \(corpus.source), \(corpus.tokens.count) \(tokenizer?.name ?? "") tokens; samples train \(train.count), valid \(v.count)")
        }
        let p = parallel.layout.pipeline, layers = c.numLayers!
        let v = c.numLayersPerVirtualPipelineStage.map { layers / p / $0 } ?? 1
        let precision = Trainer.precision(c)
        chunks = (0..<v).map { chunk in
            GPTModel(config: gpt, microBatch: c.microBatchSize!, threads: threads, tensorParallel: tp,
                     stage: .chunk(chunk, ofStage: parallel.pipelineRank, stages: p, chunks: v, layers: layers),
                     recompute: .make(granularity: c.recomputeGranularity, method: c.recomputeMethod, numLayers: c.recomputeNumLayers,
                                      layers: layers / p / v),
                     precision: precision)
        }
        if precision.isReduced {
            let product = precision == .bf16 && BF16.native ? "the \(BF16.kernel.name) kernel" : "SGEMM on 16-bit values (exact products)"
            log(" > mixed precision: \(precision.rawValue) weights and GEMM operands through \(product); fp32 main parameters, gradients, optimizer, LayerNorm, softmax and loss")
        }
        let hyper = AdamWHyperparameters(beta1: Float(c.adamBeta1), beta2: Float(c.adamBeta2), eps: Float(c.adamEps),
                                         weightDecay: Float(c.weightDecay))
        if p > 1 {
            let m = numMicrobatches
            let train = try PipelineSchedule.make(kind: v > 1 ? .interleaved : .oneFOneB, stages: p, chunks: v, microbatches: m)
            let eval = try PipelineSchedule.make(kind: .forwardOnly, stages: p, chunks: v, microbatches: m)
            trainSchedule = train; evalSchedule = eval
            executor = PipelineExecutor(chunks: chunks, parallel: parallel, schedules: [train, eval],
                                        scatterGather: c.scatterGatherTensorsInPipeline)
        } else {
            trainSchedule = nil; evalSchedule = nil; executor = nil
        }
        let tied: Set<String> = p > 1 ? ["embedding.word_embeddings.weight", GPTSlots.tiedOutputLayerName] : []
        let buckets = d > 1 || c.useDistributedOptimizer
            ? GradientBuckets(chunks: chunks, group: parallel.data, bucketElements: c.ddpBucketSize ?? max(40_000_000, 1_000_000 * d), isolated: tied)
            : nil
        self.buckets = buckets
        if c.useDistributedOptimizer, let buckets {
            optimizer = .distributed(DistributedOptimizer(chunks: chunks, buckets: buckets, group: parallel.data, hyper: hyper))
        } else {
            optimizer = .perChunk(chunks.map { AdamW(table: $0.table, hyper: hyper) })
        }
        let (dpRank, dpSize) = (parallel.dataRank, d)
        executor?.microbatchIndex = { $0 * dpSize + dpRank }
        let decayIters = c.lrDecayIters ?? trainIters
        let gbs = globalBatch
        let warmupSteps = c.lrWarmupFraction.map { Int($0 * Double(decayIters * gbs)) } ?? c.lrWarmupIters * gbs
        schedule = LRSchedule(maxLR: c.lr!, minLR: c.minLR, warmupSteps: warmupSteps, decaySteps: decayIters * globalBatch,
                              style: LRDecayStyle(rawValue: c.lrDecayStyle) ?? .linear)
        saveDirectory = c.save.map { CheckpointDirectory(root: $0) }
        // Megatron: a given loss_scale is constant in any precision; fp16 without one scales dynamically; bf16 needs none.
        lossScaler = c.lossScale.map { LossScaler.constant(Float($0)) }
            ?? (c.fp16 ? LossScaler.dynamic(initialScale: Float(c.initialLossScale), minScale: Float(c.minLossScale),
                                           growthInterval: c.lossScaleWindow, hysteresis: c.hysteresis) : nil)
    }

    /// The model's number format from the config's bf16 / fp16 keys.
    public static func precision(_ c: TrainingConfig) -> Precision { c.bf16 ? .bf16 : c.fp16 ? .fp16 : .fp32 }

    public static func modelConfig(_ c: TrainingConfig, vocabSize vocab: Int) -> GPTConfig {
        GPTConfig(numLayers: c.numLayers!, hiddenSize: c.hiddenSize!, numAttentionHeads: c.numAttentionHeads!,
                         ffnHiddenSize: c.ffnHiddenSize, seqLength: c.seqLength!,
                         maxPositionEmbeddings: c.maxPositionEmbeddings ?? c.seqLength!, vocabSize: vocab,
                         paddedVocabSize: GPTConfig.paddedVocab(vocab, divisibleBy: c.makeVocabSizeDivisibleBy,
                                                                tensorParallel: c.tensorModelParallelSize),
                         hiddenDropout: Float(c.hiddenDropout), attentionDropout: Float(c.attentionDropout),
                         initMethodStd: Float(c.initMethodStd), normEpsilon: Float(c.normEpsilon), seed: c.seed)
    }

    /// The train and validation samples of `data_path` (one dataset, or a weighted blend): each
    /// dataset's sequences split by `split`, and Megatron's sample index per split. World rank 0
    /// builds and caches the indices first; the other ranks then load them from the cache.
    static func megatronDatasets(_ c: TrainingConfig, trainSamples: Int, validSamples: Int, parallel: ParallelState,
                                 log: RankLog) throws -> (SampleSource, SampleSource?) {
        let (weights, prefixes) = try ConfigValidation.parseDataPath(c.dataPath)
        let split = try ConfigValidation.parseSplit(c.split)
        let blended = prefixes.count > 1
        let trainCounts = blended ? BlendedSamples.perSourceSamples(weights: weights, count: trainSamples) : [trainSamples]
        let validCounts = blended ? BlendedSamples.perSourceSamples(weights: weights, count: validSamples) : [validSamples]
        func build(writeCache: Bool) throws -> (train: [SampleSource], valid: [SampleSource]) {
            var built: (train: [SampleSource], valid: [SampleSource]) = ([], [])
            for (k, prefix) in prefixes.enumerated() {
                let start = DispatchTime.now().uptimeNanoseconds
                let dataset = try IndexedDataset(prefix: prefix)
                let bounds = GPTDataset.splitBounds(split, count: dataset.sequenceCount)
                let train = try GPTDataset(dataset: dataset, split: "train", documents: bounds[0], numSamples: trainCounts[k],
                                           seqLength: c.seqLength!, seed: c.seed, cacheDirectory: c.dataCachePath, writeCache: writeCache)
                built.train.append(train)
                var line = " > dataset \(prefix): \(dataset.documentCount) documents, \(dataset.sequenceCount) sequences; train \(bounds[0].count) sequences → \(train.count) samples"
                if validSamples > 0 && !bounds[1].isEmpty {
                    let v = try GPTDataset(dataset: dataset, split: "valid", documents: bounds[1], numSamples: validCounts[k],
                                           seqLength: c.seqLength!, seed: c.seed, cacheDirectory: c.dataCachePath, writeCache: writeCache)
                    built.valid.append(v)
                    line += ", valid \(bounds[1].count) sequences → \(v.count) samples"
                }
                let ms = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
                line += train.loadedFromCache ? String(format: "; sample index loaded from the cache %@ (%.0f ms)", train.cachePrefix, ms)
                    : String(format: "; sample index built in %.0f ms, cached at %@", ms, train.cachePrefix)
                if writeCache { log(line) }
            }
            return built
        }
        // Rank 0 builds and caches; after the barrier every other rank finds the cache. (An error
        // on rank 0 aborts the job, so no rank waits at the barrier forever.)
        let world = parallel.world
        var built: (train: [SampleSource], valid: [SampleSource]) = world.rank == 0 ? try build(writeCache: true) : ([], [])
        if world.size > 1 {
            try world.barrier()
            if world.rank != 0 { built = try build(writeCache: false) }
        }
        let train: SampleSource = blended ? BlendedSamples(sources: built.train, weights: weights, count: trainSamples) : built.train[0]
        var valid: SampleSource? = nil
        if built.valid.count == prefixes.count {
            valid = blended ? BlendedSamples(sources: built.valid, weights: weights, count: validSamples) : built.valid[0]
        }
        return (train, valid)
    }

    /// Resumes from `config.load` when it names a checkpoint.
    public func loadIfRequested() throws {
        guard let load = config.load else { return }
        progress = try ModelCheckpoint.load(from: CheckpointDirectory(root: load), chunks: chunks, optimizer: optimizer,
                                            lossScaler: &lossScaler, schedule: &schedule, parallel: parallel)
        log(" > loaded checkpoint from \(load) at iteration \(progress.iteration) (consumed samples \(progress.consumedSamples))")
    }

    /// Runs training (and validation) to `train_iters`; with `skip_train`, only validation.
    public func run(metrics: MetricsWriter?) throws -> TrainingSummary {
        if let dir = saveDirectory, parallel.world.rank == 0 { try dir.checkWritable() }
        var summary = TrainingSummary(lastIteration: progress.iteration)
        if config.skipTrain {
            summary.lastValidLoss = try evaluateAndPrint(label: "iteration \(progress.iteration) on validation set")
            return summary
        }
        if progress.iteration >= trainIters { log(" > already at iteration \(progress.iteration) ≥ train_iters \(trainIters); nothing to train") }
        let flops = model.config.flopsPerIteration(globalBatch: globalBatch)
        var window = (iters: 0, loss: 0.0, ms: 0.0, commBytes: 0, commS: 0.0, skipped: 0)
        var bubbleWindow = 0.0
        var reportedMemory = false
        let tracer = config.traceDir.map { _ in StepTracer(rank: parallel.world.rank) }
        executor?.trace = tracer == nil ? nil : []
        executor?.traceOrigin = tracer?.origin ?? 0
        while progress.iteration < trainIters {
            let start = DispatchTime.now().uptimeNanoseconds
            for (_, group) in parallel.groups { group.resetCounters() }
            currentTracer = tracer
            let scaleUsed = Double(lossScaler?.scale ?? 1)
            let result = try step()
            let (loss, norm, lr) = (result.loss, result.gradNorm, result.lr)
            if result.skipped { window.skipped += 1 }
            let ms = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
            let it = progress.iteration
            let comm = parallel.tensor.counters
            var m = IterationMetrics(iteration: it, consumedSamples: progress.consumedSamples, lmLoss: loss, lr: lr, gradNorm: norm,
                                     stepMs: ms, tokensPerSecond: Double(globalBatch * seqLength) / (ms / 1000),
                                     tflops: flops / (ms / 1000) / 1e12 / Double(parallel.world.size), globalBatchSize: globalBatch,
                                     skippedIterations: result.skipped ? 1 : 0, nanIterations: 0,
                                     communication: parallel.groups.map { ($0.0, $0.1.counters.bytes, $0.1.counters.seconds) })
            m.lossScale = scaleUsed
            m.activationBytes = activationBytes
            let layerMemory = layerActivationBytes
            m.layerActivationBytes = layerMemory.held
            m.layerActivationFormulaBytes = layerMemory.formula
            m.peakResidentMB = peakResidentMegabytes()
            if it == progress.iteration && !reportedMemory {
                reportedMemory = true
                log(String(format: " [Rank %d] (after %d iterations) memory (MB) | activations: %.1f | peak resident: %.1f | transformer layers per micro-batch: %.2f held vs %.2f by Korthikanti et al. (Table 2 at 4-byte elements)",
                           parallel.world.rank, it, Double(activationBytes) / 1048576, m.peakResidentMB,
                           Double(layerMemory.held) / 1048576, layerMemory.formula / 1048576))
            }
            if let idle = lastPipelineIdleFraction {
                var mine = Float(idle)
                var all = [Float](repeating: 0, count: parallel.world.size)
                try parallel.world.allGather(&mine, count: 1, into: &all)
                m.pipelineIdle = all.map(Double.init)
                bubbleWindow += all.map { Double($0) / max(1e-9, 1 - Double($0)) }.reduce(0, +) / Double(all.count)
            }
            summary.lastIteration = it
            summary.lastTrainLoss = loss
            window.iters += 1; window.loss += result.skipped ? 0 : loss; window.ms += ms; window.commBytes += comm.bytes; window.commS += comm.seconds
            if it % config.logInterval == 0 || it == trainIters {
                let avgMs = window.ms / Double(window.iters)
                var line = TrainingLogFormat.line(iteration: it, trainIters: trainIters, consumedSamples: progress.consumedSamples,
                                                  msPerIteration: avgMs, tflopsPerRank: flops / (avgMs / 1000) / 1e12 / Double(parallel.world.size),
                                                  tokensPerSecond: Double(globalBatch * seqLength) / (avgMs / 1000), lr: lr,
                                                  globalBatch: globalBatch, lmLoss: window.loss / Double(max(1, window.iters - window.skipped)),   // Megatron: skipped steps not averaged
                                                  lossScale: Double(lossScaler?.scale ?? 1), gradNorm: norm, skipped: window.skipped, nan: 0)
                if parallel.layout.tensor > 1 {
                    let n = Double(window.iters)
                    line += String(format: " tp comm per iteration: %.2f MB, %.1f ms |", Double(window.commBytes) / n / 1e6, window.commS / n * 1000)
                }
                if let s = trainSchedule {
                    line += String(format: " pipeline bubble: measured %.3f vs theory (p−1)/(v·m) = %.3f |",
                                   bubbleWindow / Double(window.iters), Double(s.stages - 1) / Double(s.chunks * s.microbatches))
                    bubbleWindow = 0
                }
                log(line)
                window = (0, 0, 0, 0, 0, 0)
            }
            if config.evalIters > 0, valid != nil, it % config.evalInterval == 0 || it == trainIters {
                m.validLoss = try evaluateAndPrint(label: "iteration \(it) on validation set")
                summary.lastValidLoss = m.validLoss
            }
            metrics?.write(m.jsonLine)
            if let si = config.saveInterval, it % si == 0 { try save() }
        }
        if saveDirectory != nil, lastSavedIteration != progress.iteration, progress.iteration > 0 { try save() }
        if let tracer, let dir = config.traceDir {
            let path = try tracer.write(to: dir, pipelineEvents: executor?.trace ?? [], label: "megatron train, world rank \(parallel.world.rank)")
            log(" > timelines written to \(dir) (one Chrome trace per rank, e.g. \(path); open in ui.perfetto.dev)")
        }
        return summary
    }

    /// What one iteration did.
    public struct StepResult {
        public var loss: Double
        /// ‖g‖ before clipping; nil when the step was skipped.
        public var gradNorm: Double?
        public var lr: Double
        /// The loss scaler found an overflow: no update, the scale backs off.
        public var skipped: Bool
    }

    /// One iteration.
    public func step() throws -> StepResult {
        let nextIteration = progress.iteration + 1
        model.timer.measure("zero grads") { for chunk in chunks { chunk.grads.zero() } }
        let tokensPerMicro = microBatch * seqLength, d = parallel.layout.data
        // Every data-parallel rank scales by the global token count; the all-reduce then sums.
        let lossScale = lossScaler?.scale ?? 1
        let gradScale = Float(Double(lossScale) / Double(tokensPerMicro * numMicrobatches * d))
        var lossSum = 0.0
        if let executor, let trainSchedule {
            lossSum = try pipelineStep(executor, trainSchedule, iteration: nextIteration, gradScale: gradScale)
        } else {
            for micro in 0..<numMicrobatches {
                model.timer.measure("data") { fillTraining(micro, model.acts) }
                if micro == numMicrobatches - 1, let buckets {
                    buckets.beginLastMicrobatch()
                    model.onGradientsFinal = { buckets.markFinal(chunk: 0, slots: $0) }
                }
                defer { model.onGradientsFinal = nil }
                lossSum += try currentTracer.span("forward+backward mb \(micro)") {
                    try model.forwardBackward(gradScale: gradScale, PassContext(iteration: nextIteration, microbatch: micro * d + parallel.dataRank, training: true))
                }
            }
        }
        if let buckets {
            if executor != nil { buckets.beginLastMicrobatch() }
            try model.timer.measure("dp gradient reduction (wait)") { try buckets.finish() }
            if d > 1 { lossSum = try parallel.data.allReduceSum(lossSum) }
        }
        switch optimizer {
        case .perChunk: for chunk in chunks { try chunk.finalizeGradients() }
        case .distributed(let sharded):
            try sharded.allReduceSequenceParallelGradients(over: config.sequenceParallel ? chunks[0].tensorParallel.group : nil)
        }
        if injectOverflowAt.contains(nextIteration) && parallel.tensorRank == 0 && parallel.pipelineRank == 0 {
            switch optimizer {
            case .perChunk: chunks[0].grads.storage.base[0] = .infinity
            case .distributed(let sharded): sharded.mainGrad.base[0] = .infinity
            }
        }
        let loss = lossSum / Double(tokensPerMicro * numMicrobatches * d)
        let lr = schedule.learningRate
        let lastCheckpoint = lastSavedIteration.map { saveDirectory!.iterationPath($0) } ?? config.load
        guard loss.isFinite else { throw TrainingError.nonFiniteLoss(iteration: nextIteration, lr: lr, lastCheckpoint: lastCheckpoint) }
        // The group over which every parameter's gradient is held exactly once: model-parallel ranks,
        // and with the distributed optimizer also the data-parallel shards (the whole world).
        let statsGroup = optimizer.isDistributed ? parallel.world : parallel.modelParallel
        if lossScaler != nil {
            let overflow = try model.timer.measure("unscale + overflow check") { try unscaleAndCheck(lossScale, group: statsGroup) }
            lossScaler!.update(foundOverflow: overflow)
            if overflow {
                progress.iteration = nextIteration
                progress.consumedSamples += globalBatch
                return StepResult(loss: loss, gradNorm: nil, lr: lr, skipped: true)
            }
        }
        let excluded: Set<String> = [GPTSlots.tiedOutputLayerName]
        let norm = try model.timer.measure("grad norm + clip") { () throws -> Double in
            switch optimizer {
            case .perChunk: return try GradClipping.globalNorm(chunks.map(\.grads), excluding: excluded, group: statsGroup)
            case .distributed(let sharded): return try statsGroup.allReduceSum(sharded.localSumOfSquares(excluding: excluded)).squareRoot()
            }
        }
        guard norm.isFinite else { throw TrainingError.nonFiniteGradient(iteration: nextIteration, lr: lr, lastCheckpoint: lastCheckpoint) }
        let coefficient = GradClipping.coefficient(norm: norm, maxNorm: config.clipGrad)
        try currentTracer.span("optimizer") {
            switch optimizer {
            case .perChunk(let optimizers):
                model.timer.measure("grad norm + clip") { for chunk in chunks { GradClipping.scale(chunk.grads, by: coefficient) } }
                model.timer.measure("optimizer (AdamW)") {
                    for (chunk, optimizer) in zip(chunks, optimizers) { optimizer.update(params: chunk.params, grads: chunk.grads, lr: Float(lr)) }
                }
            case .distributed(let sharded):
                if coefficient < 1 { model.timer.measure("grad norm + clip") { sharded.scaleGradients(by: Float(coefficient)) } }
                try model.timer.measure("optimizer (AdamW shard + param all-gather)") { try sharded.update(lr: Float(lr)) }
            }
            model.timer.measure("16-bit weights from main parameters") { for chunk in chunks { chunk.syncWeights() } }
        }
        schedule.advance(samples: globalBatch)
        progress.iteration = nextIteration
        progress.consumedSamples += globalBatch
        return StepResult(loss: loss, gradNorm: norm, lr: lr, skipped: false)
    }

    /// Multiplies the gradients by 1/`scale` and returns whether any rank of `group` holds a
    /// non-finite one (Megatron's found_inf, reduced with MAX).
    func unscaleAndCheck(_ scale: Float, group: Communicator) throws -> Bool {
        var finite = true
        switch optimizer {
        case .perChunk:
            for chunk in chunks {
                if scale != 1 { Kernels.scale(chunk.grads.storage.base, by: 1 / scale, count: chunk.grads.storage.count) }
                finite = finite && Kernels.allFinite(chunk.grads.storage.base, count: chunk.grads.storage.count)
            }
        case .distributed(let sharded):
            if scale != 1 { sharded.scaleGradients(by: 1 / scale) }
            finite = sharded.gradientsAreFinite()
        }
        return try group.allReduceMax(finite ? 0 : 1) != 0
    }

    /// Writes this data-parallel rank's training micro-batch `micro` of the next iteration into
    /// `acts` — Megatron's sampler: micro-batch k of rank j holds samples k·(b·d) + j·b ..< +b of the
    /// global batch.
    func fillTraining(_ micro: Int, _ acts: GPTActivations) {
        let first = progress.consumedSamples + (micro * parallel.layout.data + parallel.dataRank) * microBatch
        let indices = (0..<microBatch).map { trainOrder.sampleIndex(first + $0) }
        BatchAssembly.fill(tokens: acts.tokens.base, targets: acts.targets.base, from: trainOrder.source, indices: indices, seqLength: seqLength)
    }

    /// Mean token loss over the first `eval_iters · global_batch_size` validation samples (the same
    /// samples at every evaluation, so values are comparable across a run and across resumes).
    public func evaluate() throws -> Double? {
        guard let valid, config.evalIters > 0 else { return nil }
        var total = 0.0
        var count = 0
        for iteration in 0..<config.evalIters {
            let d = parallel.layout.data, dpRank = parallel.dataRank
            let fill = { (micro: Int, acts: GPTActivations) in
                let batch = (iteration * self.numMicrobatches + micro) * d + dpRank
                let indices = (0..<self.microBatch).map { (batch * self.microBatch + $0) % valid.count }
                BatchAssembly.fill(tokens: acts.tokens.base, targets: acts.targets.base, from: valid, indices: indices, seqLength: self.seqLength)
            }
            if let executor, let evalSchedule {
                total += try executor.run(evalSchedule, iteration: 0, gradScale: nil, fill: fill)
            } else {
                for micro in 0..<numMicrobatches {
                    fill(micro, model.acts)
                    total += try model.lossSum()
                }
            }
            count += numMicrobatches * parallel.layout.data * microBatch * seqLength
        }
        if executor != nil { total = try parallel.pipeline.allReduceSum(total) }
        total = try parallel.data.allReduceSum(total)
        return total / Double(count)
    }

    func evaluateAndPrint(label: String) throws -> Double? {
        guard let v = try evaluate() else { return nil }
        for line in TrainingLogFormat.validation(label: label, loss: v) { log(line) }
        return v
    }

    func save() throws {
        guard let dir = saveDirectory else { return }
        let start = DispatchTime.now().uptimeNanoseconds
        try ModelCheckpoint.save(to: dir, chunks: chunks, optimizer: optimizer, lossScaler: lossScaler, schedule: schedule, progress: progress,
                                 configJSON: ConfigKeys.json(of: config), parallel: parallel)
        lastSavedIteration = progress.iteration
        let ms = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
        log(" > saved checkpoint at iteration \(progress.iteration) to \(dir.iterationPath(progress.iteration)) (\(String(format: "%.0f", ms)) ms)")
    }
}

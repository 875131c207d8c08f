// Trainer.swift — the training loop of one model replica: iterations of TrainingStep (micro-batches
// with gradient accumulation or a pipeline schedule, data-parallel reduction, loss scaling,
// clipping, the optimizer update), periodic validation, the log line and metrics (TrainingReport.swift), and
// checkpoints. What it trains comes from ModelPartition; its samples from TrainingData.
import Checkpoint
import Distributed
import Foundation
import Tensor

public struct TrainingSummary: Sendable {
    public var lastIteration: Int
    public var lastTrainLoss: Double?
    public var lastValidLoss: Double?
}

/// The samples a training run reads, placed into a model family's activation sets.
public protocol TrainingBatches: AnyObject {
    associatedtype Activations
    /// Whether there are validation samples.
    var hasValidation: Bool { get }
    /// Micro-batch `micro` (of `microbatches` per rank) of this data-parallel rank for the iteration
    /// that starts at `consumedSamples`.
    func fillTraining(consumedSamples: Int, micro: Int, microbatches: Int, _ acts: Activations)
    /// Validation micro-batch `micro` of evaluation iteration `iteration` (`microbatches` per iteration).
    func fillValidation(iteration: Int, micro: Int, microbatches: Int, _ acts: Activations)
    /// Whether there is a test set (evaluated once, after training).
    var hasTest: Bool { get }
    /// Test micro-batch `micro` of evaluation iteration `iteration`.
    func fillTest(iteration: Int, micro: Int, microbatches: Int, _ acts: Activations)
    /// Whether a micro-batch's loss units (ModelChunk.lossUnits) depend on its data (a loss mask):
    /// then the trainer sums them over the grid; else every micro-batch has the model's fixed count
    /// and no collective is spent on it.
    var lossUnitsVary: Bool { get }
}

extension TrainingBatches {
    public var hasTest: Bool { false }
    public var lossUnitsVary: Bool { false }
    public func fillTest(iteration: Int, micro: Int, microbatches: Int, _ acts: Activations) {}
}

/// One model replica's training, for any model family (`Chunk`) and its data (`Data`).
public final class Trainer<Chunk: ModelChunk, Data: TrainingBatches> where Data.Activations == Chunk.Activations {
    public let config: TrainingConfig
    public let parallel: ParallelState
    /// This rank's model chunks, their activation memory, pipeline executor and gradient buckets.
    public let partition: ModelPartition<Chunk>
    public let optimizer: TrainingOptimizer
    /// Loss scaling (reduced precision): the backward pass runs on loss·scale and an overflow skips the step.
    public var lossScaler: LossScaler?
    public internal(set) var schedule: LRSchedule
    public internal(set) var progress = TrainingProgress()
    public let data: Data
    let log: RankLog
    /// Sequences per micro-batch and per iteration, and micro-batches per iteration per replica
    /// (with a batch-size ramp: once the ramp is over; `currentGlobalBatch` is the next iteration's).
    public let microBatch: Int, globalBatch: Int, numMicrobatches: Int
    /// Megatron's rampup_batch_size, when given.
    public let rampup: BatchRampup?
    /// The global batch of the last iteration run.
    public internal(set) var lastGlobalBatch: Int
    let saveDirectory: CheckpointDirectory?
    var lastSavedIteration: Int? = nil
    /// Test hook: at these iterations model-parallel rank (0, 0) of every replica finds +∞ in a
    /// gradient after the reduction (an overflow, as fp16 would produce).
    public var injectOverflowAt: Set<Int> = []
    /// Keeps the checkpoint of the highest validation metric `key` (a metrics key without its
    /// "valid_" prefix, e.g. "accuracy") in `directory`, beside the latest in `save` — finetuning's
    /// best model. The best value is recorded in the directory (best.json), so it survives a resume.
    public var keepBest: (key: String, directory: CheckpointDirectory)? = nil
    /// Iterations per epoch when training goes by epochs (finetuning): validation then also runs at
    /// the end of every epoch, besides every `eval_interval`.
    public var epochIterations: Int? = nil
    /// This rank's idle share of the last pipelined iteration (1 − compute / step time) and its
    /// time in forward, backward and W passes.
    public internal(set) var lastPipelineTimes: PipelinePassTimes? = nil
    /// Records spans outside the pipeline executor (optimizer, single-stage micro-batches) when tracing.
    var currentTracer: StepTracer? = nil

    public var chunks: [Chunk] { partition.chunks }
    public var model: Chunk { partition.chunks[0] }
    /// Per-phase wall times of every chunk's passes and of the step (`megatron benchmark`).
    public var timer: PhaseTimer? {
        get { model.timer }
        set { for chunk in chunks { chunk.timer = newValue } }
    }

    /// A trainer of `partition` on `data` for a validated config: optimizer, LR schedule and loss
    /// scaler from the config (GPTTraining.swift and BertTraining.swift build the partition and data).
    public init(
        config c: TrainingConfig, log: RankLog, parallel: ParallelState, partition: ModelPartition<Chunk>, data: Data
    ) {
        config = c
        self.log = log
        self.parallel = parallel
        self.partition = partition
        self.data = data
        let d = parallel.layout.data
        microBatch = c.microBatchSize
        globalBatch = c.globalBatchSize ?? microBatch * d
        numMicrobatches = globalBatch / (microBatch * d)
        rampup = c.rampup
        lastGlobalBatch = rampup?.start ?? globalBatch
        if let ramp = rampup {
            log(
                " > batch-size ramp-up: global batch \(ramp.start) growing by \(ramp.increment) up to \(ramp.final) "
                    + "over \(ramp.samples) samples; \(c.trainIters) iterations for \(c.trainSamples ?? 0) samples "
                    + "(validation always uses global batch \(ramp.final))")
        }
        let precision = c.precision
        if precision.isReduced {
            let product =
                precision == .bf16 && BF16.native
                ? "the \(BF16.kernel.name) kernel" : "SGEMM on 16-bit values (exact products)"
            log(
                " > mixed precision: \(precision.rawValue) weights and GEMM operands through \(product); fp32 main "
                    + "parameters, gradients, optimizer, LayerNorm, softmax and loss")
        }
        let hyper = OptimizerHyperparameters(
            kind: c.optimizer, beta1: Float(c.adamBeta1), beta2: Float(c.adamBeta2), eps: Float(c.adamEps),
            weightDecay: Float(c.weightDecay), sgdMomentum: Float(c.sgdMomentum), layerWiseDecay: c.layerWiseLrDecay,
            numLayers: c.numLayers)
        if c.layerWiseLrDecay != 1 { log(Self.layerWiseDecayLine(hyper)) }
        if partition.buckets?.reducesThroughSharedMemory == true {
            log(
                " > data-parallel gradients are reduced through shared memory: the \(parallel.layout.data) replicas "
                    + "run on one node; each sums its piece of every bucket from all replicas' gradients and writes the "
                    + "sum into every replica's (ddp_reduction auto)")
        }
        if let refusal = partition.buckets?.sharedMemoryRefusal {
            log(" > data-parallel gradients go through MPI, not shared memory: \(refusal)")
        }
        if let sparse = partition.buckets?.sparseEnding?.rows {
            log(
                " > data-parallel sparse ending: the word embedding's gradient rows of each step's last micro-batch "
                    + "(at most \(sparse.capacity) of \(sparse.tableRows)) are kept apart and exchanged after the "
                    + "backward pass; the rest of its gradient reduces during that pass (ddp_sparse_embedding_ending)")
        }
        optimizer = partition.makeOptimizer(hyper: hyper, distributed: c.useDistributedOptimizer)
        // Steps count samples (Megatron): iteration-based keys times the global batch, or the sample keys.
        let gbs = globalBatch
        let decaySteps = c.trainSamples.map { c.lrDecaySamples ?? $0 } ?? (c.lrDecayIters ?? c.trainIters) * gbs
        let warmupSteps =
            c.lrWarmupFraction.map { Int($0 * Double(decaySteps)) }
            ?? (c.trainSamples != nil ? c.lrWarmupSamples ?? 0 : c.lrWarmupIters * gbs)
        schedule = LRSchedule(
            maxLR: c.lr, minLR: c.minLR, warmupSteps: warmupSteps, decaySteps: decaySteps, style: c.lrDecayStyle)
        schedule.wsdStyle = c.lrWsdDecayStyle
        schedule.wsdDecaySteps = c.trainSamples != nil ? c.lrWsdDecaySamples ?? 0 : (c.lrWsdDecayIters ?? 0) * gbs
        saveDirectory = c.save.map { CheckpointDirectory(root: $0) }
        lossScaler = LossScaler.forConfig(c)
    }

    /// The global batch of the next iteration: the ramp's size for the samples consumed so far, else
    /// global_batch_size.
    public var currentGlobalBatch: Int { rampup?.batchSize(consumed: progress.consumedSamples) ?? globalBatch }

    /// The start-up line listing layer-wise decay's learning-rate multipliers.
    static func layerWiseDecayLine(_ h: OptimizerHyperparameters) -> String {
        let decay = h.layerWiseDecay, L = h.numLayers
        let layers = (1...max(1, L)).map { String(format: "%d ×%.4g", $0, Foundation.pow(decay, Double(L - $0))) }
        return
            " > layer-wise learning-rate decay γ = \(decay): embeddings ×\(String(format: "%.4g", Foundation.pow(decay, Double(L)))); "
            + "layer \(layers.joined(separator: ", ")); final norm and heads ×1"
    }

    /// The partition options a config asks for, for `microbatches` micro-batches per iteration.
    public static func partitionOptions(_ c: TrainingConfig, microbatches: Int) -> ModelPartition<Chunk>.Options {
        var options = ModelPartition<Chunk>.Options(microbatches: microbatches, training: true)
        if let ramp = c.rampup {
            let unit = ramp.final / microbatches  // micro_batch_size × data-parallel size
            options.rampMicrobatches = ramp.batchSizes.map { $0 / unit }
        }
        options.scatterGather = c.scatterGatherTensorsInPipeline
        options.bucketElements = c.ddpBucketSize
        options.distributedOptimizer = c.useDistributedOptimizer
        options.sparseEmbeddingEnding = c.ddpSparseEmbeddingEnding
        options.sharedMemoryReduction = c.ddpReduction == .auto
        options.zeroBubble = c.pipelineSchedule == .zeroBubbleH1
        return options
    }

    /// Activation memory of this rank (every chunk, every micro-batch in flight).
    public var activationBytes: Int { partition.activationBytes }

    /// The transformer layers' share of one micro-batch's activations (every chunk), and what
    /// Korthikanti et al.'s formula gives for it at our storage, 4 bytes in fp32 and 2 in bf16/fp16
    /// (attention probabilities are never stored, so its selective form).
    public var layerActivationBytes: (held: Int, formula: Double) {
        let held = chunks.indices.reduce(0) { $0 + partition.activationSets(chunk: $1)[0].layerBytes }
        return (held, chunks.reduce(0.0) { $0 + $1.layerActivationFormulaBytes })
    }

    /// Resumes from `config.load` when it names a checkpoint. A `load` directory without one (no
    /// latest_checkpointed_iteration.txt: a first run of `--save ck --load ck`) starts from scratch
    /// with a warning, as Megatron does; a damaged one is still an error.
    public func loadIfRequested() throws {
        guard let load = config.load else { return }
        guard FileManager.default.fileExists(atPath: CheckpointDirectory(root: load).pointerPath) else {
            log(
                " > WARNING: no checkpoint in \(load) (no \(CheckpointDirectory.pointerName)); starting from "
                    + "random initialisation")
            return
        }
        if config.finetune {
            let it = try ModelCheckpoint.loadWeights(from: CheckpointDirectory(root: load), chunks: chunks)
            log(
                " > finetune: loaded the weights of \(load) (iteration \(it)); iteration, optimizer, schedule and "
                    + "loss scale start afresh")
            return
        }
        try ResumeCompatibility.check(root: load, current: config)
        progress = try ModelCheckpoint.load(
            from: CheckpointDirectory(root: load), chunks: chunks, optimizer: optimizer,
            lossScaler: &lossScaler, schedule: &schedule, optimizerState: !config.noLoadOptim,
            // skip_train trains nothing, so the schedule is not checked.
            schedulePolicy: config.overrideOptParamScheduler || config.skipTrain
                ? .override : config.useCheckpointOptParamScheduler ? .useCheckpoint : .check,
            parallel: parallel)
        log(
            " > loaded checkpoint from \(load) at iteration \(progress.iteration) (consumed samples "
                + "\(progress.consumedSamples))"
        )
    }

    /// Runs training (and validation) to `train_iters`; with `skip_train`, only validation.
    public func run(metrics: MetricsWriter?) throws -> TrainingSummary {
        if let dir = saveDirectory, parallel.world.rank == 0 {
            try dir.checkWritable()
            let stale = dir.removeStaleTemporaries()
            if !stale.isEmpty {
                log(" > removed \(stale.joined(separator: ", ")) from \(dir.root): left by an interrupted save")
            }
        }
        var summary = TrainingSummary(lastIteration: progress.iteration)
        if config.skipTrain {
            summary.lastValidLoss = try evaluateAndPrint(label: "iteration \(progress.iteration) on validation set")?
                .loss
            return summary
        }
        let trainIters = config.trainIters
        if progress.iteration >= trainIters {
            log(" > already at iteration \(progress.iteration) ≥ train_iters \(trainIters); nothing to train")
        }
        var report = TrainingReport(trainer: self)
        let tensorboard = try makeTensorBoard()
        let tracer = config.traceDir.map { _ in StepTracer(parallel: parallel) }
        defer { tracer?.detach() }
        partition.executor?.trace = tracer == nil ? nil : []
        partition.executor?.traceOrigin = tracer?.origin ?? 0
        let trainingStart = DispatchTime.now().uptimeNanoseconds
        installExitSignal()
        while progress.iteration < trainIters {
            let start = DispatchTime.now().uptimeNanoseconds
            for (_, group) in parallel.groups { group.resetCounters() }
            currentTracer = tracer
            let scaleUsed = Double(lossScaler?.scale ?? 1)
            let result = try tracer.span("iteration \(progress.iteration + 1)", category: "iteration", thread: .markers)
            {
                try step()
            }
            let ms = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
            let it = progress.iteration
            var m = try report.record(result, ms: ms, lossScale: scaleUsed)
            summary.lastIteration = it
            summary.lastTrainLoss = result.loss
            // Megatron's log_params_norm: every parameter once across the model-parallel ranks.
            if config.logParamsNorm {
                m.paramsNorm = try GradClipping.globalNorm(chunks.map(\.params), group: parallel.modelParallel)
            }
            m.zeroGradients = result.zeroGradients
            if it % config.logInterval == 0 || it == trainIters {
                log(Self.withOptionalFields(report.windowLine(result), m))
            }
            let epochEnd = epochIterations.map { it % $0 == 0 } ?? false
            if config.evalIters > 0, data.hasValidation, it % config.evalInterval == 0 || epochEnd || it == trainIters {
                try tracer.span("evaluation at iteration \(it)", category: "evaluation", thread: .markers) {
                    try validate(&m, tensorboard: tensorboard)
                }
                summary.lastValidLoss = m.validLoss
            }
            metrics?.write(m.jsonLine)
            try tensorboard?.training(m, lossNames: chunks[chunks.count - 1].lossComponentNames.map(\.log))
            if let si = config.saveInterval, it % si == 0 {
                try tracer.span("checkpoint at iteration \(it)", category: "checkpoint", thread: .markers) {
                    try save()
                }
            }
            if let reason = try exitReason(iteration: it, since: trainingStart) {
                log(" > exiting at iteration \(it): \(reason)")
                break
            }
        }
        // Megatron's do_test: the test set once, after training ran to its end.
        if config.evalIters > 0, data.hasTest, progress.iteration >= trainIters {
            _ = try evaluateAndPrint(label: "iteration \(progress.iteration) on test set", test: true)
        }
        if saveDirectory != nil, lastSavedIteration != progress.iteration, progress.iteration > 0 { try save() }
        if let tracer, let dir = config.traceDir {
            let path = try tracer.write(
                to: dir, pipelineEvents: partition.executor?.trace ?? [],
                label: "megatron train, world rank \(parallel.world.rank)")
            log(" > timelines written to \(dir) (one Chrome trace per rank, e.g. \(path); open in ui.perfetto.dev)")
        }
        return summary
    }

    /// Validation during training: the log lines, the metrics' validation fields, keep-best saving
    /// and the TensorBoard validation scalars.
    func validate(_ m: inout IterationMetrics, tensorboard: TensorBoardLog?) throws {
        let valid = try evaluateAndPrint(label: "iteration \(m.iteration) on validation set")
        m.validLoss = valid?.loss
        m.validMetrics = valid?.metrics ?? []
        try saveIfBest(m.validMetrics)
        let last = chunks[chunks.count - 1], names = last.evaluationMetricNames.map(\.log)
        let values =
            names.isEmpty ? m.validLoss.map { [("lm loss", $0)] } ?? [] : Array(zip(names, m.validMetrics.map(\.value)))
        try tensorboard?.validation(
            values, losses: max(1, last.lossComponentNames.count), iteration: m.iteration, samples: m.consumedSamples)
    }

    /// The TensorBoard writer, on the last rank as in Megatron, when `tensorboard_dir` is set.
    func makeTensorBoard() throws -> TensorBoardLog? {
        let world = parallel.world
        guard let dir = config.tensorboardDir, world.rank == world.size - 1 else { return nil }
        let log = try TensorBoardLog(config: config, directory: dir, worldSize: world.size)
        print(" > TensorBoard events: \(log.path) (world rank \(world.rank))")
        return log
    }

    /// The log line with Megatron's optional fields in its places, after the grad norm: `num zeros`
    /// (log_num_zeros_in_grad), then `params norm` (log_params_norm).
    static func withOptionalFields(_ line: String, _ m: IterationMetrics) -> String {
        var extra = ""
        if let z = m.zeroGradients { extra += String(format: " num zeros: %.1f |", Double(z)) }
        if let p = m.paramsNorm { extra += String(format: " params norm: %.3f |", p) }
        guard !extra.isEmpty, let at = line.range(of: " number of skipped iterations") else { return line }
        var out = line
        out.insert(contentsOf: extra, at: at.lowerBound)
        return out
    }

    /// exit_signal_handler: from now on the signal is caught and only recorded (see exitReason).
    func installExitSignal() {
        guard config.exitSignalHandler else { return }
        ExitSignal.install(config.exitSignal)
        log(" > exit_signal_handler: \(config.exitSignal) ends training after the iteration in hand (saving first)")
    }

    /// Why training stops early after iteration `it` (Megatron's exit_interval and
    /// exit_duration_in_mins), or nil. The duration is decided across all ranks (any rank past it
    /// stops every rank), so they leave the loop together; the checkpoint is then written below.
    func exitReason(iteration it: Int, since start: UInt64) throws -> String? {
        // exit_signal_handler: decided across all ranks (the signal may reach one), as Megatron's all-gather.
        if config.exitSignalHandler, try parallel.world.allReduceMax(ExitSignal.received ? 1 : 0) == 1 {
            return "\(config.exitSignal) received (exit_signal_handler)"
        }
        if let e = config.exitInterval, it % e == 0 { return "exit_interval \(e)" }
        guard let limit = config.exitDurationInMins else { return nil }
        let minutes = Double(DispatchTime.now().uptimeNanoseconds - start) / 6e10
        guard try parallel.world.allReduceMax(minutes > limit ? 1 : 0) == 1 else { return nil }
        return String(format: "exit_duration_in_mins %g reached", limit)
    }

    /// Mean token loss over the first `eval_iters · global_batch_size` validation samples (the same
    /// samples at every evaluation, so values are comparable across a run and across resumes).
    public func evaluate() throws -> Double? { try evaluateWithMetrics()?.loss }

    /// The validation loss and the model's evaluation metrics (ModelChunk.evaluationMetricNames),
    /// each averaged over the micro-batches with the model's weights (ModelChunk.evaluationWeight),
    /// over `iterations` global batches (default `eval_iters`).
    public func evaluateWithMetrics(iterations: Int? = nil, test: Bool = false) throws -> (
        loss: Double, metrics: [Double]
    )? {
        let evalIters = iterations ?? config.evalIters
        guard test ? data.hasTest : data.hasValidation, evalIters > 0 else { return nil }
        var total = 0.0, count = 0.0
        let m = numMicrobatches, last = chunks[chunks.count - 1]
        // The metrics summed with each micro-batch's weight, then the summed weight (last entry).
        let names = last.evaluationMetricNames.count
        var metrics = [Double](repeating: 0, count: names == 0 ? 0 : names + 1)
        let collect = { (_: Int, acts: Chunk.Activations) in
            count += Double(last.lossUnits(acts))
            guard names > 0 else { return }
            let w = last.evaluationWeight(acts)
            for (i, v) in last.evaluationMetrics(acts).enumerated() { metrics[i] += w * v }
            metrics[names] += w
        }
        for iteration in 0..<evalIters {
            let fill = { (micro: Int, acts: Chunk.Activations) in
                if test {
                    self.data.fillTest(iteration: iteration, micro: micro, microbatches: m, acts)
                } else {
                    self.data.fillValidation(iteration: iteration, micro: micro, microbatches: m, acts)
                }
            }
            if let executor = partition.executor, let evalSchedule = partition.evalSchedule {
                total += try executor.run(evalSchedule, iteration: 0, gradScale: nil, fill: fill, collect: collect)
            } else {
                let acts = partition.activations[0], ctx = PassContext(iteration: 0, microbatch: 0, training: false)
                for micro in 0..<m {
                    fill(micro, acts)
                    total += try model.forward(acts, ctx, gradScale: nil) ?? 0
                    collect(micro, acts)
                }
            }
        }
        // Σ losses / Σ their units (tokens, or those the loss masks count), over the whole grid.
        if !data.lossUnitsVary { count = Double(evalIters * m * parallel.layout.data * model.lossUnitsPerMicrobatch) }
        for group in (partition.executor != nil ? [parallel.pipeline] : []) + [parallel.data] {
            total = try group.allReduceSum(total)
            if data.lossUnitsVary { count = try group.allReduceSum(count) }
            metrics = try metrics.map { try group.allReduceSum($0) }
        }
        let weight = metrics.last ?? 1
        return (count > 0 ? total / count : 0, metrics.dropLast().map { weight > 0 ? $0 / weight : 0 })
    }

    /// Validates, prints Megatron's validation block (with the model's metrics) and returns the
    /// loss and the metrics by key.
    func evaluateAndPrint(label: String, test: Bool = false) throws -> (
        loss: Double, metrics: [(key: String, value: Double)]
    )? {
        guard let (loss, values) = try evaluateWithMetrics(test: test) else { return nil }
        let last = chunks[chunks.count - 1], names = last.evaluationMetricNames
        let parts = last.lossComponentNames.count  // the metrics begin with the loss parts
        let labelled = zip(names, values).map { (label: $0.0.log, value: $0.1) }
        let losses = parts == 0 ? [(label: "lm loss", value: loss)] : Array(labelled.prefix(parts))
        for line in TrainingLogFormat.validation(label: label, losses: losses, extra: Array(labelled.dropFirst(parts)))
        {
            log(line)
        }
        return (loss, zip(names, values).map { ("valid_" + $0.0.json, $0.1) })
    }

    /// Saves into `keepBest`'s directory when the validation metric beats the best recorded there.
    func saveIfBest(_ metrics: [(key: String, value: Double)]) throws {
        guard let (key, dir) = keepBest, let value = metrics.first(where: { $0.key == "valid_" + key })?.value else {
            return
        }
        // World rank 0 reads the record and decides for everyone.
        let record = (dir.root as NSString).appendingPathComponent("best.json"), rank0 = parallel.world.rank == 0
        let best =
            rank0
            ? (FileManager.default.contents(atPath: record)
                .flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] })?[key] as? Double : nil
        let better = rank0 && value > (best ?? -.infinity) ? 1 : 0
        guard try parallel.world.allReduceMax(better) == 1 else { return }
        try save(to: dir)
        if rank0 {
            let json: [String: Any] = [key: value, "iteration": progress.iteration]
            try JSONSerialization.data(withJSONObject: json, options: [.sortedKeys]).write(
                to: URL(fileURLWithPath: record), options: .atomic)
        }
        log(" > best validation \(key) so far (\(value) at iteration \(progress.iteration)): kept in \(dir.root)")
    }

    func save() throws {
        guard let dir = saveDirectory else { return }
        try save(to: dir)
        lastSavedIteration = progress.iteration
    }

    func save(to dir: CheckpointDirectory) throws {
        let start = DispatchTime.now().uptimeNanoseconds
        try ModelCheckpoint.save(
            to: dir, chunks: chunks, optimizer: optimizer, lossScaler: lossScaler, schedule: schedule,
            progress: progress, optimizerState: !config.noSaveOptim,
            configJSON: ConfigKeys.json(of: config), parallel: parallel)
        let ms = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
        log(
            " > saved checkpoint at iteration \(progress.iteration) to \(dir.iterationPath(progress.iteration)) "
                + "(\(String(format: "%.0f", ms)) ms)"
        )
    }
}

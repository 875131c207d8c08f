// ModelPartition.swift — this rank's share of the model, built once from (config, grid): the
// pipeline layout, the chunks of this pipeline stage (made by the model family's factory from each
// chunk's StagePlan), their activation memory (one set per chunk without a pipeline; pools sized by
// the schedules with one), the pipeline executor and schedules, and the data-parallel gradient
// buckets. `train`, `evaluate` and the benchmark build from it; `convert-checkpoint` uses the same
// PipelineLayout. It knows models only as ModelChunk.
import Distributed

public final class ModelPartition<Chunk: ModelChunk> {
    public let parallel: ParallelState
    public let layout: PipelineLayout
    /// This rank's chunks, in chunk order (v with the interleaved schedule, else one).
    public let chunks: [Chunk]
    /// Without a pipeline: the activation set each chunk runs on (empty with a pipeline, whose
    /// executor owns pools instead).
    public let activations: [Chunk.Activations]
    /// With a pipeline (p > 1): the executor and the schedules of one iteration of m micro-batches.
    public let executor: PipelineExecutor<Chunk>?
    public let trainSchedule: PipelineSchedule?
    public let evalSchedule: PipelineSchedule?
    /// Training schedules of the other micro-batch counts of a batch-size ramp, by count.
    let rampSchedules: [Int: PipelineSchedule]
    /// With data parallelism or the distributed optimizer (training only): the bucketed gradient reduction.
    public let buckets: GradientBuckets?
    /// The measured costs pipeline_auto_balance placed the layers by, when it measured them.
    public let balanceCosts: StageCostProbe.Measurement?

    /// What the partition is for: micro-batches per iteration, whether it trains (backward
    /// schedules and gradient buckets) and how (bucket size, distributed optimizer, scatter/gather).
    public struct Options {
        public var microbatches: Int
        /// Further micro-batch counts an iteration may have (a batch-size ramp's); the activation
        /// pools are sized for all of them.
        public var rampMicrobatches: [Int] = []
        public var training: Bool
        public var scatterGather = true
        public var bucketElements: Int? = nil
        public var distributedOptimizer = false
        /// Whether the word embedding's last rows are exchanged apart (GradientBuckets.SparseEnding).
        public var sparseEmbeddingEnding = SparseEndingChoice.auto
        /// Reduce data-parallel gradients through shared memory when the group runs on one node.
        public var sharedMemoryReduction = false
        /// Train with the zero-bubble ZB-H1 schedule instead of 1F1B (v = 1).
        public var zeroBubble = false
        public init(microbatches: Int, training: Bool) { self.microbatches = microbatches; self.training = training }
    }

    /// The layout of a validated config for this grid; under pipeline_auto_balance its costs are
    /// `modelled`, or (training, pipeline_balance_costs measured) measured by a probe chunk that
    /// `makeChunk` builds and `prepare` fills (StageCostProbe).
    static func layout(
        _ c: TrainingConfig, parallel: ParallelState, training: Bool, modelled: StageCosts,
        makeChunk: (StagePlan) -> Chunk, prepare: (Chunk.Activations) -> Void = { _ in }
    ) throws -> (PipelineLayout, StageCostProbe.Measurement?) {
        let d = parallel.layout.data
        guard c.pipelineAutoBalance, c.pipelineModelParallelSize > 1, training, c.pipelineBalanceCosts == .measured
        else { return (try PipelineLayout(c, costs: modelled.scheduled(c, dataParallel: d)), nil) }
        let measured = try StageCostProbe.measure(parallel: parallel, makeChunk: makeChunk, prepare: prepare)
        return (try PipelineLayout(c, costs: measured.costs(c, dataParallel: d)), measured)
    }

    /// `makeChunk(plan)` builds one chunk of this rank's stage; `balanceCosts` are the measured costs
    /// the layout was placed by, if any.
    public init(
        parallel: ParallelState, layout: PipelineLayout, balanceCosts: StageCostProbe.Measurement? = nil,
        options o: Options, makeChunk: (StagePlan) -> Chunk
    ) throws {
        self.parallel = parallel
        self.layout = layout
        self.balanceCosts = balanceCosts
        let chunks = layout.plans(stage: parallel.pipelineRank).map(makeChunk)
        self.chunks = chunks
        let p = layout.stages, v = layout.chunks, m = o.microbatches, d = parallel.layout.data
        if p > 1 {
            let eval = try PipelineSchedule.make(kind: .forwardOnly, stages: p, chunks: v, microbatches: m)
            let kind: ScheduleKind = o.zeroBubble ? .zeroBubbleH1 : v > 1 ? .interleaved : .oneFOneB
            let train = o.training ? try PipelineSchedule.make(kind: kind, stages: p, chunks: v, microbatches: m) : nil
            var ramp: [Int: PipelineSchedule] = [:]
            for n in Set(o.training ? o.rampMicrobatches : []) where n != m {
                ramp[n] = try PipelineSchedule.make(kind: kind, stages: p, chunks: v, microbatches: n)
            }
            rampSchedules = ramp
            let executor = PipelineExecutor(
                chunks: chunks, parallel: parallel,
                schedules: [train, eval].compactMap { $0 } + ramp.keys.sorted().map { ramp[$0]! },
                scatterGather: o.scatterGather)
            let dpRank = parallel.dataRank
            executor.microbatchIndex = { $0 * d + dpRank }
            (self.executor, trainSchedule, evalSchedule, activations) = (executor, train, eval, [])
        } else {
            (executor, trainSchedule, evalSchedule, rampSchedules) = (nil, nil, nil, [:])
            activations = chunks.map { $0.makeActivations() }
        }
        if o.training && (d > 1 || o.distributedOptimizer) {
            buckets = try GradientBuckets(
                chunks: chunks, group: parallel.data,
                bucketElements: o.bucketElements ?? max(40_000_000, 1_000_000 * d),
                isolateTiedParameters: p > 1,
                sparseEnding: p == 1 && d > 1 ? Self.sparseEnding(chunks[0], mode: o.sparseEmbeddingEnding, d: d) : nil,
                sharedMemory: o.sharedMemoryReduction && d > 1)
        } else {
            buckets = nil
        }
    }

    /// The word embedding's sparse ending for `chunk` (holding the whole model: p = 1) at d ranks, if
    /// `mode` asks for it and the chunk embeds tokens.
    static func sparseEnding(_ chunk: Chunk, mode: SparseEndingChoice, d: Int) -> GradientBuckets.SparseEnding? {
        guard mode != .off, let (slot, tokens) = chunk.inputWordEmbedding else { return nil }
        let shape = chunk.table.specs[slot].localShape, rows = shape[0], h = shape[1]  // this tensor rank's rows
        guard rows < SparseRowGradient.maxTableRows,
            mode == .on
                || SparseRowGradient.pays(tableRows: rows, hidden: h, tokensPerMicrobatch: tokens, dataParallel: d)
        else { return nil }
        return GradientBuckets.SparseEnding(
            slot: slot, rows: SparseRowGradient(tableRows: rows, hidden: h, tokensPerMicrobatch: tokens))
    }

    /// The pipeline's start-up line: schedule, layers per stage (and per chunk), or nil without one.
    public var pipelineDescription: String? {
        guard layout.stages > 1 else { return nil }
        let kind = trainSchedule?.kind.rawValue ?? "forward-only"
        var line =
            "pipeline: \(kind) schedule, \(layout.stages) stages; layers per stage "
            + layout.stageLayerCounts.map(PipelineLayout.layerText).joined(separator: ", ")
        if layout.chunks > 1 {
            line +=
                " (per virtual stage "
                + layout.sublayerCounts.map { PipelineLayout.layerText(Double($0) / 2) }.joined(separator: ", ") + ")"
        }
        if layout.cutsLayers { line += "; a boundary cuts a layer between its attention and its MLP" }
        if let balanceCosts { line += "; " + balanceCosts.description }
        return line
    }

    /// The training schedule of an iteration of `microbatches` micro-batches (with a pipeline).
    public func trainSchedule(microbatches: Int) -> PipelineSchedule? {
        microbatches == trainSchedule?.microbatches ? trainSchedule : rampSchedules[microbatches]
    }

    /// Every activation set of chunk `c` (its pool with a pipeline).
    public func activationSets(chunk c: Int) -> [Chunk.Activations] {
        executor?.activationSets(chunk: c) ?? [activations[c]]
    }

    /// Bytes of activation memory this rank holds (every chunk, every micro-batch in flight).
    public var activationBytes: Int { executor?.activationBytes ?? activations.reduce(0) { $0 + $1.bytes } }

    /// Megatron's `_allreduce_embedding_grads`: the first stage's word embedding and the last
    /// stage's copy are one parameter, so their gradients are summed over the embedding group.
    public func allReduceTiedGradients() throws {
        guard layout.stages > 1, let group = parallel.embedding else { return }
        for chunk in chunks {
            guard let slot = chunk.tiedSlot else { continue }
            try group.allReduceSum(chunk.grads.pointer(slot), count: chunk.table.specs[slot].count)
        }
    }

    /// The optimizer the config asks for over this partition's chunks.
    public func makeOptimizer(hyper: OptimizerHyperparameters, distributed: Bool) -> TrainingOptimizer {
        if distributed, let buckets {
            return DistributedOptimizer(
                chunks: chunks, buckets: buckets, group: parallel.data, world: parallel.world, hyper: hyper)
        }
        return ReplicatedOptimizer(chunks: chunks, hyper: hyper, modelParallel: parallel.modelParallel)
    }
}

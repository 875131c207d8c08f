// Planner.swift — `megatron plan`'s core: every valid layout of a model on N ranks (the training
// config's own validation decides validity), and for each the predicted step time with its
// breakdown and the predicted memory of the fullest rank (PlanStepTime, PlanMemory), sorted fastest
// first among those that fit.
import Tensor

public struct PlanPrediction: Sendable {
    public var layout: PlanLayout
    public var stepSeconds = 0.0
    /// The busiest rank's compute, its exposed communication (tensor-parallel collectives; stage
    /// transfers' waits are in the bubble), the pipeline bubble, the data-parallel and tied-embedding
    /// reductions, and the optimizer step (step = compute + communication + bubble + sharing + the rest).
    public var compute = 0.0, tensorCommunication = 0.0, bubble = 0.0, dataCommunication = 0.0, optimizer = 0.0
    /// On an oversubscribed node: how much longer the pipeline takes because ranks take turns on the cores.
    public var sharing = 0.0
    public var memory = PlanMemory()
    public var fits = true
    /// Tokens per second and model FLOP/s per rank (Megatron's formula, with recomputation when on).
    public var tokensPerSecond = 0.0, flopsPerRank = 0.0
}

public struct Planner: Sendable {
    public let model: PlanModel
    public let profile: HardwareProfile
    public let worldSize: Int
    public let ranksPerNode: Int
    public let memoryPerRank: Double
    /// The share of a rank's memory a plan leaves free: a layout fits when its predicted peak is at
    /// most (1 − headroom) · memoryPerRank. The memory model's predictions have come out 1–8% below
    /// the measured peak RSS (scripts/bench_plan.sh), and GPU allocators fragment, so a layout
    /// predicted at the last byte would not run.
    public let memoryHeadroom: Double
    public static let defaultMemoryHeadroom = 0.1

    public init(
        model: PlanModel, profile: HardwareProfile, worldSize: Int, ranksPerNode: Int? = nil,
        memoryPerRank: Double? = nil, memoryHeadroom: Double = Planner.defaultMemoryHeadroom
    ) {
        precondition((0..<1).contains(memoryHeadroom), "the memory headroom is a share of memory, from 0 to below 1")
        self.model = model; self.worldSize = worldSize; self.memoryHeadroom = memoryHeadroom
        var p = profile
        if let r = ranksPerNode { p.ranksPerNode = r }
        self.profile = p
        self.ranksPerNode = p.ranksPerNode
        self.memoryPerRank =
            memoryPerRank ?? p.memoryPerNode.map { $0 / Double(min(worldSize, p.ranksPerNode)) } ?? p.memoryPerRank
    }

    /// Bytes a layout may use per rank: the rank's memory less the headroom.
    public var usableMemory: Double { memoryPerRank * (1 - memoryHeadroom) }

    /// The config of `layout` for this model, or the reason it is not valid.
    public func config(of layout: PlanLayout) throws -> TrainingConfig {
        let c = layout.applied(to: model.config, globalBatch: model.globalBatch)
        try ConfigValidation.validateGrid(c, worldSize: worldSize)
        try ConfigValidation.validateBatch(c, worldSize: worldSize)
        try ConfigValidation.validateRecompute(c)
        try ConfigValidation.validatePipeline(c, worldSize: worldSize)
        if c.numLayers % c.pipelineModelParallelSize != 0 || c.numLayers < c.pipelineModelParallelSize {
            throw PlanError.unsupported("num_layers does not split evenly over p")
        }
        if profile.isMegatronLM && layout.virtualStages > 1 && layout.pipeline <= 2 {
            // Megatron-LM's parallel state refuses the interleaved schedule below three stages.
            throw PlanError.unsupported("Megatron-LM runs the interleaved schedule only with p > 2")
        }
        if profile.isMegatronLM && !layout.precision.isReduced {
            // Its memory and kernels are modelled for mixed precision (the PTD-P paper's runs).
            throw PlanError.unsupported("a Megatron-LM profile plans mixed precision only: precision=fp16 or bf16")
        }
        return c
    }

    /// Every valid layout: t, p dividing the world (d the rest); v with whole layers per virtual stage;
    /// micro-batch sizes dividing the batch per replica; SP with t > 1; recomputation on and off;
    /// the distributed optimizer with d > 1; fp32 and bf16 (bf16 only where the profile measured it);
    /// ZB-H1 with p > 1, v = 1 and no full recomputation. For Megatron-LM as the PTD-P paper ran it
    /// (a "megatron-lm" profile): the profile's mixed precision only, and neither sequence parallelism
    /// nor the distributed optimizer, which came later.
    public func enumerate(microBatchLimit: Int = 16) -> [PlanLayout] {
        let megatronLM = profile.isMegatronLM
        let precisions: [Precision] =
            megatronLM ? [profile.megatronPrecision] : profile.gemm.contains(where: \.bf16) ? [.fp32, .bf16] : [.fp32]
        var out: [PlanLayout] = []
        for t in divisors(worldSize) {
            for p in divisors(worldSize / t) where p <= model.layers {
                let d = worldSize / (t * p)
                guard model.globalBatch % d == 0 else { continue }
                let vs =
                    p == 1 ? [1] : (1...max(1, model.layers / p)).filter { model.layers % (p * $0) == 0 && $0 <= 8 }
                for v in vs {
                    for mbs in divisors(model.globalBatch / d) where mbs <= microBatchLimit {
                        for sp in t > 1 && !megatronLM ? [false, true] : [false] {
                            for recompute in [false, true] {
                                for dist in d > 1 && !megatronLM ? [false, true] : [false] {
                                    for precision in precisions {
                                        for zb in p > 1 && v == 1 && !recompute && !megatronLM
                                            ? [false, true] : [false]
                                        {
                                            var l = PlanLayout()
                                            (l.tensor, l.pipeline, l.data, l.virtualStages, l.microBatch) = (
                                                t, p, d, v, mbs
                                            )
                                            (l.sequenceParallel, l.recompute, l.distributedOptimizer) = (
                                                sp, recompute, dist
                                            )
                                            (l.precision, l.zeroBubble) = (precision, zb)
                                            if (try? config(of: l)) != nil { out.append(l) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return out
    }

    /// Predictions for `layouts`, the fitting ones first, fastest first.
    public func rank(_ layouts: [PlanLayout]) throws -> [PlanPrediction] {
        try layouts.map { try predict($0) }.sorted {
            $0.fits != $1.fits ? $0.fits : $0.stepSeconds < $1.stepSeconds
        }
    }

    public func predict(_ l: PlanLayout) throws -> PlanPrediction {
        let c = try config(of: l)
        let pipelineLayout = try PipelineLayout(c)
        let p = l.pipeline, v = pipelineLayout.chunks, m = model.globalBatch / (l.microBatch * l.data)
        let ranksOnNode = min(worldSize, ranksPerNode)
        let gpu = profile.isMegatronLM
        let threads = gpu ? 1 : profile.threads(ranksOnNode: ranksOnNode)
        let share = gpu ? 1 : profile.timeShare(ranksOnNode: ranksOnNode)
        let times = StepTimeModel(model: model, profile: profile, layout: l, threads: threads)
        let one = times.layer(), head = times.head(), embedding = times.embedding()
        // A stage-boundary tensor [s, b, h]: each tensor rank sends its 1/t under sequence parallelism
        // (its rows) or scatter/gather, whose receivers then all-gather it over their tensor group
        // before the pass can use it (PipelineExecutor; Megatron-LM's the same over NVLink).
        let whole = Double(model.seq * l.microBatch * model.hidden)
        let scatterGather = l.tensor > 1 && !l.sequenceParallel && c.scatterGatherTensorsInPipeline
        let boundary = l.sequenceParallel || scatterGather ? whole / Double(l.tensor) : whole
        let transfer =
            p > 1 ? times.collective("p2p", elements: boundary, size: 2, stride: l.tensor * l.data, groupSize: p) : 0
        let gather =
            p > 1 && scatterGather ? times.collective("allgather", elements: whole, size: l.tensor, stride: 1) : 0
        // Costs per (stage, chunk): virtual stage s = c·p + r. Megatron-LM's sends block until
        // received (the PTD-P paper's p2p), so there each pass also pays its output's transfer;
        // this trainer's are non-blocking and overlap the next compute. A chunk's forward pass
        // all-gathers its received input (but on the first virtual stage), its backward pass the
        // received gradient (but on the last).
        let costs = (0..<p).map { r in
            (0..<v).map { ch in
                let s = ch * p + r
                var x = times.chunk(
                    layers: pipelineLayout.layerCounts[s], hasEmbedding: s == 0, hasHead: s == p * v - 1, layer: one,
                    head: head, embedding: embedding)
                if gpu && p > 1 { (x.forward, x.backward) = (x.forward + transfer, x.backward + transfer) }
                let gathers = (s > 0 ? gather : 0, s < p * v - 1 ? gather : 0)
                x.forward += gathers.0
                x.backward += gathers.1
                x.communication += gathers.0 + gathers.1
                return x
            }
        }
        var x = PlanPrediction(layout: l)
        let busy = costs.map { $0.reduce(0.0) { $0 + Double(m) * ($1.forward + $1.backward + $1.weight) } }
        let busiest = busy.indices.max { busy[$0] < busy[$1] } ?? 0
        let comm = costs[busiest].reduce(0.0) { $0 + Double(m) * $1.communication }
        x.compute = busy[busiest] - comm
        x.tensorCommunication = comm
        var makespan = busy[busiest]
        if p > 1 {
            makespan = try pipelineMakespan(layout: l, chunks: v, microbatches: m, costs: costs, transfer: transfer)
        }
        x.bubble = makespan - busy[busiest]
        x.sharing = try sharing(
            l, chunks: v, microbatches: m, costs: costs, transfer: transfer, makespan: makespan, bubble: x.bubble,
            threads: threads, share: share)
        let params =
            (0..<p).map { r in
                Double(
                    model.stageParameters(
                        l, stage: r, layerCount: (0..<v).reduce(0) { $0 + pipelineLayout.layerCounts[$1 * p + r] }))
            }.max() ?? 0
        reductions(&x, times: times, params: params, share: share, threads: threads)
        x.stepSeconds = makespan + x.sharing + x.dataCommunication + x.optimizer
        x.memory = try memory(l, layout: pipelineLayout, microbatches: m, threads: threads)
        x.fits = x.memory.total <= usableMemory
        // Megatron's formula; with recomputation the layers' forward counts twice (the logits' does not):
        // 96·B·s·L·h²·(1 + s/6h + V/16Lh) for f = 4h, as the PTD-P paper counts.
        let all = model.gptConfig(tensor: 1).flopsPerIteration(globalBatch: model.globalBatch)
        let logits = 6 * Double(model.globalBatch * model.seq * model.hidden * model.paddedVocab(tensor: 1))
        let flops = l.recompute ? (all - logits) * 4 / 3 + logits : all
        x.tokensPerSecond = Double(model.globalBatch * model.seq) / x.stepSeconds
        x.flopsPerRank = flops / x.stepSeconds / Double(worldSize)
        return x
    }

    /// The time ranks sharing cores (an oversubscribed node, `share` > 1) add to the pipeline's
    /// `makespan`: the schedule simulated again with each computing stage slowed by the ranks computing
    /// beside it on its node — so the fill and drain, when fewer stages compute, run faster — beyond the
    /// makespan; without a pipeline (or past the simulation's size), the node's work (every stage's
    /// t·d ranks) spread over its cores, plus the bubble as if no other rank's work could fill it,
    /// beyond the makespan.
    func sharing(
        _ l: PlanLayout, chunks v: Int, microbatches m: Int, costs: [[ChunkTimes]], transfer: Double,
        makespan: Double, bubble: Double, threads: Int, share: Double
    ) throws -> Double {
        let p = l.pipeline
        if share > 1 && p > 1, let s = try simulatedSchedule(l, chunks: v, microbatches: m) {
            let shared = try ScheduleSimulator.makespanSharingCores(
                s, transfer: transfer, costs: { costs[$0][$1].passCosts }, speeds: stageSpeeds(l, threads: threads))
            return max(0, shared - makespan)
        }
        let busy = costs.map { $0.reduce(0.0) { $0 + Double(m) * ($1.forward + $1.backward + $1.weight) } }
        let ranksOnNode = min(worldSize, ranksPerNode)
        let nodeWork = busy.reduce(0, +) * Double(l.tensor * l.data) * Double(ranksOnNode) / Double(worldSize)
        return max(0, nodeWork * Double(threads) / Double(profile.coresPerNode) + bubble - makespan)
    }

    /// Each stage's speed while the stages marked `computing` compute, on nodes of `ranksPerNode` ranks
    /// and `coresPerNode` cores: stage s's t·d ranks are ranks s·t·d ..< (s + 1)·t·d (tensor ranks
    /// fastest, then data, then pipeline, as Megatron places them), each running `threads` threads;
    /// a node whose computing ranks want more threads than it has cores shares them fairly, and a
    /// stage spread over several nodes goes at its slowest node's pace.
    public func stageSpeeds(_ l: PlanLayout, threads: Int) -> ([Bool]) -> [Double] {
        let p = l.pipeline, width = l.tensor * l.data, perNode = min(worldSize, ranksPerNode)
        let nodes = (worldSize + perNode - 1) / perNode, cores = Double(profile.coresPerNode)
        // ranksOn[s][n]: stage s's ranks on node n.
        let ranksOn = (0..<p).map { s in
            (0..<nodes).map { n in max(0, min((s + 1) * width, (n + 1) * perNode) - max(s * width, n * perNode)) }
        }
        return { computing in
            let demand = (0..<nodes).map { n in
                (0..<p).reduce(0) { $0 + (computing[$1] ? ranksOn[$1][n] * threads : 0) }
            }
            let nodeSpeed = demand.map { $0 > 0 ? min(1, cores / Double($0)) : 1 }
            return (0..<p).map { s in
                (0..<nodes).reduce(1.0) { ranksOn[s][$1] > 0 ? min($0, nodeSpeed[$1]) : $0 }
            }
        }
    }

    /// After the pipeline: the gradient reduction over d (the fullest stage's `params`, fp32, or fp16
    /// as Megatron-LM reduces them under `--fp16`), the
    /// tied embedding's over the first and last stage, and the optimizer (Adam reads p, g, m, v and
    /// writes p, m, v; the gradient is also zeroed and read for its norm) — every rank at once, so
    /// stretched by the time share on an oversubscribed node.
    func reductions(_ x: inout PlanPrediction, times: StepTimeModel, params: Double, share: Double, threads: Int) {
        let l = x.layout, p = l.pipeline, e = params * times.gradientBytes / times.elementBytes
        if profile.reducesThroughSharedMemory(l) {
            // Each replica reads its piece of every replica's gradients (params values) and writes the
            // sums into every arena (distributed optimizer: into its shard, then MPI all-gathers the
            // parameters).
            let bytes = 4 * params * (l.distributedOptimizer ? 1 + 1 / Double(l.data) : 2)
            x.dataCommunication =
                share
                * (bytes / profile.bandwidth(threads: threads)
                    + (l.distributedOptimizer
                        ? times.collective("allgather", elements: e, size: l.data, stride: l.tensor) : 0))
        } else if l.data > 1 {
            x.dataCommunication =
                share
                * (l.distributedOptimizer
                    ? times.collective("reducescatter", elements: e, size: l.data, stride: l.tensor)
                        + times.collective("allgather", elements: e, size: l.data, stride: l.tensor)
                    : times.collective("allreduce", elements: e, size: l.data, stride: l.tensor))
        }
        if p > 1 {
            let word =
                Double(model.paddedVocab(tensor: l.tensor) / l.tensor * model.hidden) * times.gradientBytes
                / times.elementBytes
            x.dataCommunication +=
                share * times.collective("allreduce", elements: word, size: 2, stride: l.tensor * l.data * (p - 1))
        }
        let owned = l.distributedOptimizer ? params / Double(l.data) : params
        x.optimizer = share * (28 * owned + 12 * params) / profile.bandwidth(threads: threads)
    }

    /// The layout's schedule (ZB-H1, interleaved for v > 1, else 1F1B) when it is small enough to
    /// simulate — p·v·m ≤ 10,000 forward passes — else nil.
    func simulatedSchedule(_ l: PlanLayout, chunks v: Int, microbatches m: Int) throws -> PipelineSchedule? {
        guard l.pipeline * v * m <= 10_000 else { return nil }
        let kind: ScheduleKind = l.zeroBubble ? .zeroBubbleH1 : v > 1 ? .interleaved : .oneFOneB
        return try PipelineSchedule.make(kind: kind, stages: l.pipeline, chunks: v, microbatches: m)
    }

    /// The schedule simulated with per-(stage, chunk) costs; past the simulation's size the 1F1B
    /// formula stands in: Σ over stages of one micro-batch's F + B (fill and drain) plus (m − 1)
    /// times the slowest stage's (steady state), divided by v for the interleaved schedule's fill.
    func pipelineMakespan(
        layout l: PlanLayout, chunks v: Int, microbatches m: Int, costs: [[ChunkTimes]], transfer: Double
    )
        throws -> Double
    {
        let p = l.pipeline
        if let s = try simulatedSchedule(l, chunks: v, microbatches: m) {
            return try ScheduleSimulator.run(s, transfer: transfer) { costs[$0][$1].passCosts }.makespan
        }
        let perStage = costs.map { $0.reduce(0.0) { $0 + $1.forward + $1.backward + $1.weight } }
        let fill = perStage.reduce(0, +) + 2 * Double(p - 1) * transfer
        return fill / Double(v) + Double(m - 1) * (perStage.max() ?? 0)
    }

    func memory(_ l: PlanLayout, layout: PipelineLayout, microbatches m: Int, threads: Int) throws -> PlanMemory {
        let p = l.pipeline, v = layout.chunks
        let schedules = p > 1 ? try simulatedSchedule(l, chunks: v, microbatches: m).map { [$0] } ?? [] : []
        var fullest = PlanMemory()
        for r in 0..<p {
            let chunkLayers = (0..<v).map { layout.layerCounts[$0 * p + r] }
            // Without a simulated schedule: 1F1B holds p − r micro-batches on stage r (at most m),
            // the interleaved schedule about as many per chunk plus (p − 1)·... ≈ its warm-up.
            let sets =
                p == 1
                ? [1]
                : schedules.isEmpty
                    ? (0..<v).map { _ in min(m, p - r + (v > 1 ? p - 1 : 0)) }
                    : PipelineSchedule.activationSetsNeeded(schedules: schedules, rank: r, chunks: v)
            let mem =
                profile.isMegatronLM
                ? PlanMemory.megatronLM(
                    model: model, layout: l, stage: r, chunkLayers: chunkLayers, sets: sets, profile: profile)
                : PlanMemory.thisTrainer(
                    model: model, layout: l, stage: r, chunkLayers: chunkLayers, sets: sets, threads: threads,
                    profile: profile)
            if mem.total > fullest.total { fullest = mem }
        }
        return fullest
    }

    /// The divisors of n, ascending (pairs i, n / i for i up to √n).
    func divisors(_ n: Int) -> [Int] {
        var small: [Int] = [], large: [Int] = []
        var i = 1
        while i <= n / i {
            if n % i == 0 {
                small.append(i)
                if i != n / i { large.append(n / i) }
            }
            i += 1
        }
        return small + large.reversed()
    }
}

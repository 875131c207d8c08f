// PipelineLayout.swift — how a model's transformer layers split over p pipeline stages of v model
// chunks each (Megatron's partition), and what each chunk holds. The one place for the
// virtual-stage arithmetic and its rules: config validation, ModelPartition and checkpoint
// conversion all ask it.
//   virtual stage s = c·p + r is chunk c of stage r; it holds layerCounts[s] layers, the ones after
//   every earlier virtual stage's (model order); the embedding lives on virtual stage 0, the head
//   on virtual stage p·v − 1.
// The split is even (k = L/(p·v) each) unless one of Megatron core's uneven keys asks otherwise
// (PipelineSplit): decoder_first/last_pipeline_num_layers, account_for_embedding/loss_in_pipeline_split,
// or our pipeline_auto_balance, which places layers by their cost (StageCosts: measured by
// StageCostProbe, or modelled FLOPs) and refines the split by simulating the schedule (PipelineBalance).
// With pipeline_balance_unit "sublayer" the balance may also cut a layer between its attention and
// its MLP (the residual stream there has the layer boundary's shape), so counts are kept in
// sub-layers: layer l is sub-layers 2l (attention) and 2l + 1 (MLP).
// Checkpoints name layers by their global index, so a checkpoint loads under any split.

/// Which parts of a transformer layer a chunk runs: all of it, or (at a stage boundary inside the
/// layer) its attention sub-layer or its MLP sub-layer.
public enum LayerPart: Sendable, Equatable {
    case whole, attention, mlp
}

/// What one model chunk holds: some of the transformer layers (by global index), and on the first
/// stage the embeddings, on the last the final norm and the head. A stage boundary inside a layer
/// leaves the first layer's MLP only (`firstIsMLPOnly`) or the last layer's attention only.
public struct StagePlan: Sendable, Equatable {
    public let layers: [Int]
    public let hasEmbedding: Bool, hasHead: Bool
    public var firstIsMLPOnly = false, lastIsAttentionOnly = false

    public init(layers: [Int], hasEmbedding: Bool, hasHead: Bool) {
        self.layers = layers; self.hasEmbedding = hasEmbedding; self.hasHead = hasHead
    }

    /// The chunk holding sub-layers `units` (2l: layer l's attention, 2l + 1: its MLP).
    public init(sublayers units: Range<Int>, hasEmbedding: Bool, hasHead: Bool) {
        precondition(!units.isEmpty, "a chunk holds at least one sub-layer")
        self.init(
            layers: Array((units.lowerBound / 2)..<((units.upperBound + 1) / 2)), hasEmbedding: hasEmbedding,
            hasHead: hasHead)
        firstIsMLPOnly = units.lowerBound % 2 == 1
        lastIsAttentionOnly = units.upperBound % 2 == 1
    }

    /// The part of its `i`-th layer this chunk runs.
    public func part(_ i: Int) -> LayerPart {
        if i == 0 && firstIsMLPOnly { return .mlp }
        if i == layers.count - 1 && lastIsAttentionOnly { return .attention }
        return .whole
    }

    /// The whole model of `layers` layers on one stage.
    public static func whole(layers: Int) -> StagePlan {
        StagePlan(layers: Array(0..<layers), hasEmbedding: true, hasHead: true)
    }
}

/// The keys that make a split uneven (all unset: even).
public struct PipelineSplit: Sendable, Equatable {
    /// Megatron core's decoder_first_pipeline_num_layers / decoder_last_pipeline_num_layers: the
    /// layers of the first / last stage; the other stages share the rest evenly.
    public var firstStageLayers: Int? = nil, lastStageLayers: Int? = nil
    /// Megatron core's account_for_embedding_in_pipeline_split / account_for_loss_in_pipeline_split:
    /// the embedding (loss) counts as one layer of the first (last) virtual stage.
    public var accountForEmbedding = false, accountForLoss = false
    /// pipeline_auto_balance: contiguous stages with the least maximum modelled cost (v = 1).
    public var autoBalance = false
    /// pipeline_balance_unit "sublayer": the balance may cut a layer between attention and MLP.
    public var sublayers = false

    public init() {}
    public var isEven: Bool { self == PipelineSplit() }
}

/// Cost of one pass of one micro-batch (a third of forward + backward), in any one unit, for
/// automatic balance: modelled FLOPs (`transformer`) or measured seconds (StageCostProbe).
public struct StageCosts: Sendable, Equatable {
    public let layer: Double, embedding: Double, head: Double
    /// Of `layer`, the attention core's part (it has no weight gradient).
    public var attention = 0.0
    /// Of `layer`, the attention sub-layer's part (LayerNorm, QKV, the core, the projection); the rest
    /// is the MLP sub-layer's. Half a layer unless set.
    public var attentionSublayer: Double
    /// The schedule the split is for, when known: micro-batches per iteration and whether W runs
    /// apart (zero bubble). With it the balanced split is refined by simulation (PipelineBalance).
    public var microbatches: Int? = nil
    public var splitsBackward = false

    public init(layer: Double, embedding: Double, head: Double) {
        self.layer = layer; self.embedding = embedding; self.head = head
        attentionSublayer = layer / 2
    }

    /// Per token, in FLOPs (the factor 3 for forward + backward is common to all and left out): a
    /// layer's GEMMs 8h² + 4h·ffn and attention 4·s·h; the embedding a few passes over h (counted
    /// as 8h, it is memory-bound); a head of `headFlopsPerToken`. (Multi-head attention with heads
    /// of width h/a and a GELU MLP; `transformer(_:headFlopsPerToken:attentionShare:)` for any model.)
    public static func transformer(hidden h: Int, ffn: Int, seq s: Int, headFlopsPerToken: Double) -> StageCosts {
        transformer(
            hidden: h, qkvWidth: 3 * h, attentionWidth: h, fc1Width: ffn, ffn: ffn, seq: s,
            headFlopsPerToken: headFlopsPerToken, attentionShare: 1)
    }

    /// The same for the layers of `model`: QKV 2h·(a + 2g)·d (g key/value groups, d kv_channels),
    /// the projection 2·a·d·h, the MLP 2h·fc1 + 2·ffn·h (fc1 = 2·ffn with SwiGLU) and the attention
    /// core 4·s·a·d times `attentionShare`, the share of (query, key) pairs the kernels compute
    /// (`attentionShare(_:)`). With a share of 1, 3·B·s·(L·layer + head) is Megatron's FLOPs count
    /// (GPTConfig.flopsPerIteration).
    public static func transformer(_ model: GPTConfig, headFlopsPerToken: Double, attentionShare: Double)
        -> StageCosts
    {
        transformer(
            hidden: model.hiddenSize, qkvWidth: model.qkvWidth, attentionWidth: model.attentionWidth,
            fc1Width: model.fc1Width, ffn: model.ffnHiddenSize, seq: model.seqLength,
            headFlopsPerToken: headFlopsPerToken, attentionShare: attentionShare)
    }

    /// The share of a sequence's (query, key) pairs the attention kernels compute: all of them
    /// bidirectionally (BERT; padding aside), the causal triangle s(s + 1)/2 of s² (the kernels skip
    /// the rest), and of that, with a sliding window of W earlier keys, Σᵢ min(i + 1, W + 1).
    public static func attentionShare(seq: Int, causal: Bool, window: Int?) -> Double {
        guard causal, seq > 0 else { return 1 }
        let s = Double(seq)
        var pairs = s * (s + 1) / 2
        if let w = window, w + 1 < seq { pairs -= Double(seq - w - 1) * Double(seq - w) / 2 }
        return pairs / (s * s)
    }

    private static func transformer(
        hidden h: Int, qkvWidth: Int, attentionWidth q: Int, fc1Width: Int, ffn: Int, seq s: Int,
        headFlopsPerToken: Double, attentionShare: Double
    ) -> StageCosts {
        let h = Double(h), q = Double(q)
        let attentionGEMMs = 2 * h * Double(qkvWidth) + 2 * q * h
        let mlp = 2 * h * Double(fc1Width) + 2 * Double(ffn) * h
        let core = 4 * Double(s) * q * attentionShare
        var costs = StageCosts(layer: attentionGEMMs + core + mlp, embedding: 8 * h, head: headFlopsPerToken)
        costs.attention = core
        costs.attentionSublayer = attentionGEMMs + core
        return costs
    }

    /// These costs for a training run of `c` with d data-parallel replicas (its schedule and m).
    public func scheduled(_ c: TrainingConfig, dataParallel d: Int) -> StageCosts {
        var costs = self
        if let gbs = c.globalBatchSize, c.microBatchSize > 0, d > 0 {
            costs.microbatches = gbs / (c.microBatchSize * d)
        }
        costs.splitsBackward = c.pipelineSchedule == .zeroBubbleH1
        return costs
    }
}

public struct PipelineLayout: Sendable, Equatable {
    /// L transformer layers, p stages, v chunks per stage.
    public let layers: Int, stages: Int, chunks: Int
    /// Sub-layers of each virtual stage s = c·p + r (two per whole layer).
    public let sublayerCounts: [Int]

    /// Layers of each virtual stage (a layout whose boundaries all fall between layers).
    public var layerCounts: [Int] {
        precondition(!cutsLayers, "this layout cuts layers; read sublayerCounts")
        return sublayerCounts.map { $0 / 2 }
    }
    /// Whether some stage boundary falls inside a layer (between its attention and its MLP).
    public var cutsLayers: Bool { sublayerCounts.contains { $0 % 2 == 1 } }
    /// Layers per chunk of an even split, k = L/(p·v).
    public var layersPerChunk: Int { layers / (stages * chunks) }
    public var isEven: Bool { Set(sublayerCounts).count == 1 }

    /// Checks that `layers` split into `stages` stages as `split` asks (even by default) and, with
    /// `layersPerVirtualStage` (Megatron's num_layers_per_virtual_pipeline_stage), each stage into
    /// equal chunks. `costs` places the layers under automatic balance (without it — validation,
    /// which only checks — the split stays even).
    public init(
        layers: Int, stages p: Int, layersPerVirtualStage n: Int?, split: PipelineSplit = PipelineSplit(),
        costs: StageCosts? = nil
    ) throws {
        self.layers = layers
        stages = p
        if split.isEven {
            try Self.checkEven(layers: layers, stages: p, layersPerVirtualStage: n)
            chunks = n.map { layers / p / $0 } ?? 1
            sublayerCounts = [Int](repeating: 2 * layers / (p * chunks), count: p * chunks)
            return
        }
        (chunks, sublayerCounts) = try Self.uneven(layers: layers, stages: p, layersPerVirtualStage: n, split, costs)
    }

    /// The layout of a validated config (`costs` for automatic balance).
    public init(_ c: TrainingConfig, costs: StageCosts? = nil) throws {
        try self.init(
            layers: c.numLayers, stages: c.pipelineModelParallelSize,
            layersPerVirtualStage: c.numLayersPerVirtualPipelineStage, split: c.pipelineSplit, costs: costs)
    }

    /// What chunk `c` of stage `r` holds.
    public func plan(chunk c: Int, stage r: Int) -> StagePlan {
        let s = c * stages + r, first = sublayerCounts[..<s].reduce(0, +)
        return StagePlan(
            sublayers: first..<(first + sublayerCounts[s]), hasEmbedding: s == 0, hasHead: s == stages * chunks - 1)
    }

    /// Every chunk of stage `r`, in chunk order.
    public func plans(stage r: Int) -> [StagePlan] { (0..<chunks).map { plan(chunk: $0, stage: r) } }

    /// Sub-layers per stage.
    public var stageSublayerCounts: [Int] {
        (0..<stages).map { r in (0..<chunks).reduce(0) { $0 + sublayerCounts[$1 * stages + r] } }
    }

    /// Layers per stage, for the start-up log ("5, 7"; "8.5, 3.5" where a boundary cuts a layer).
    public var stageLayerCounts: [Double] { stageSublayerCounts.map { Double($0) / 2 } }

    /// A count of layers as the log shows it: "8", or "8.5" with half a layer.
    public static func layerText(_ layers: Double) -> String {
        layers == layers.rounded() ? String(Int(layers)) : String(format: "%.1f", layers)
    }

    // MARK: Rules

    private static func checkEven(layers: Int, stages p: Int, layersPerVirtualStage n: Int?) throws {
        if layers % p != 0 {
            throw ConfigError.inconsistent(
                keys: ["num_layers", "pipeline_model_parallel_size"],
                rule:
                    "num_layers \(layers) does not split into pipeline_model_parallel_size \(p) equal stages (no "
                    + "layer is ever dropped); try num_layers \(max(p, layers / p * p)) or "
                    + "pipeline_model_parallel_size \(ConfigValidation.largestDivisor(of: layers, atMost: p)), or "
                    + "an uneven split (decoder_first_pipeline_num_layers, pipeline_auto_balance)"
            )
        }
        if let n {
            try checkVirtual(n, stages: p)
            if (layers / p) % n != 0 {
                throw ConfigError.inconsistent(
                    keys: ["num_layers", "pipeline_model_parallel_size", "num_layers_per_virtual_pipeline_stage"],
                    rule:
                        "each stage's \(layers / p) layers (num_layers \(layers) / p \(p)) must split into chunks of "
                        + "num_layers_per_virtual_pipeline_stage \(n); try "
                        + "\(ConfigValidation.largestDivisor(of: layers / p, atMost: n))"
                )
            }
        }
    }

    private static func checkVirtual(_ n: Int, stages p: Int) throws {
        if n <= 0 {
            throw ConfigError.invalidValue(
                key: "num_layers_per_virtual_pipeline_stage", value: "\(n)", rule: "must be positive")
        }
        if p == 1 {
            throw ConfigError.inconsistent(
                keys: ["num_layers_per_virtual_pipeline_stage", "pipeline_model_parallel_size"],
                rule:
                    "virtual stages interleave a pipeline; set pipeline_model_parallel_size ≥ 2 or remove "
                    + "num_layers_per_virtual_pipeline_stage"
            )
        }
    }

    /// (v, sub-layers per virtual stage) of an uneven split.
    private static func uneven(
        layers L: Int, stages p: Int, layersPerVirtualStage n: Int?, _ split: PipelineSplit, _ costs: StageCosts?
    ) throws -> (Int, [Int]) {
        if split.sublayers && !split.autoBalance {
            throw ConfigError.inconsistent(
                keys: ["pipeline_balance_unit", "pipeline_auto_balance"],
                rule:
                    "pipeline_balance_unit \"sublayer\" lets pipeline_auto_balance cut a layer; set "
                    + "pipeline_auto_balance true, or pipeline_balance_unit \"layer\"")
        }
        let (v, layerCounts) = try unevenLayers(layers: L, stages: p, layersPerVirtualStage: n, split, costs)
        return split.autoBalance ? (v, layerCounts) : (v, layerCounts.map { 2 * $0 })
    }

    /// (v, layers per virtual stage) of an uneven split; under automatic balance, sub-layers.
    private static func unevenLayers(
        layers L: Int, stages p: Int, layersPerVirtualStage n: Int?, _ split: PipelineSplit, _ costs: StageCosts?
    ) throws -> (Int, [Int]) {
        let firstLast = split.firstStageLayers != nil || split.lastStageLayers != nil
        let accounting = split.accountForEmbedding || split.accountForLoss
        var keys: [String] = []
        if split.firstStageLayers != nil { keys.append("decoder_first_pipeline_num_layers") }
        if split.lastStageLayers != nil { keys.append("decoder_last_pipeline_num_layers") }
        if split.accountForEmbedding { keys.append("account_for_embedding_in_pipeline_split") }
        if split.accountForLoss { keys.append("account_for_loss_in_pipeline_split") }
        if split.autoBalance { keys.append("pipeline_auto_balance") }
        if p == 1 {
            throw ConfigError.inconsistent(
                keys: keys + ["pipeline_model_parallel_size"],
                rule: "an uneven split needs a pipeline: set pipeline_model_parallel_size ≥ 2 or remove \(keys[0])")
        }
        if [firstLast, accounting, split.autoBalance].filter({ $0 }).count > 1 {
            throw ConfigError.inconsistent(
                keys: keys,
                rule:
                    "choose one way to split: the first/last stage's layers, the embedding/loss accounting, or "
                    + "pipeline_auto_balance (as in Megatron core, these do not combine)"
            )
        }
        if accounting { return try accounted(layers: L, stages: p, layersPerVirtualStage: n, split, keys: keys) }
        if split.autoBalance {
            return try autoBalanced(layers: L, stages: p, layersPerVirtualStage: n, sublayers: split.sublayers, costs)
        }
        if let n {
            throw ConfigError.inconsistent(
                keys: keys + ["num_layers_per_virtual_pipeline_stage"],
                rule:
                    "\(keys[0]) places whole stages; with virtual stages (num_layers_per_virtual_pipeline_stage \(n)) "
                    + "use account_for_embedding_in_pipeline_split / account_for_loss_in_pipeline_split instead")
        }
        return try firstAndLast(layers: L, stages: p, split, keys: keys)
    }

    /// Megatron core's accounting: the embedding and the loss each count as a layer; every virtual
    /// stage holds the same count, the first (last) one transformer layer fewer.
    private static func accounted(
        layers L: Int, stages p: Int, layersPerVirtualStage n: Int?, _ split: PipelineSplit, keys: [String]
    ) throws -> (Int, [Int]) {
        let counted = L + (split.accountForEmbedding ? 1 : 0) + (split.accountForLoss ? 1 : 0)
        var chunks = 1
        if let n {
            try checkVirtual(n, stages: p)
            guard counted % (p * n) == 0 else {
                throw ConfigError.inconsistent(
                    keys: keys + ["num_layers", "num_layers_per_virtual_pipeline_stage"],
                    rule:
                        "num_layers \(L) plus the accounted embedding/loss (\(counted)) must split into p \(p) × "
                        + "virtual stages of \(n)")
            }
            chunks = counted / (p * n)
        }
        guard counted % (p * chunks) == 0 else {
            throw ConfigError.inconsistent(
                keys: keys + ["num_layers", "pipeline_model_parallel_size"],
                rule:
                    "num_layers \(L) plus the accounted embedding/loss is \(counted), which must be a multiple of "
                    + "pipeline_model_parallel_size \(p); try num_layers \((counted / p + 1) * p - (counted - L))")
        }
        var counts = [Int](repeating: counted / (p * chunks), count: p * chunks)
        if split.accountForEmbedding { counts[0] -= 1 }
        if split.accountForLoss { counts[p * chunks - 1] -= 1 }
        try checkNonEmpty(counts, keys: keys)
        return (chunks, counts)
    }

    /// decoder_first/last_pipeline_num_layers: those stages as given, the others share the rest.
    private static func firstAndLast(layers L: Int, stages p: Int, _ split: PipelineSplit, keys: [String]) throws
        -> (Int, [Int])
    {
        var rest = L, stagesLeft = p
        for (key, value) in [
            ("decoder_first_pipeline_num_layers", split.firstStageLayers),
            ("decoder_last_pipeline_num_layers", split.lastStageLayers),
        ] {
            guard let value else { continue }
            if value < 1 || value > L {
                throw ConfigError.invalidValue(
                    key: key, value: "\(value)", rule: "must be between 1 and num_layers \(L)")
            }
            rest -= value; stagesLeft -= 1
        }
        let middle: Int
        if stagesLeft == 0 {
            guard rest == 0 else {
                throw ConfigError.inconsistent(
                    keys: keys + ["num_layers"],
                    rule:
                        "with p = 2 the first and last stage are the whole model: their layers must add up to "
                        + "num_layers \(L) (they add up to \(L - rest))")
            }
            middle = 0
        } else {
            guard rest >= stagesLeft, rest % stagesLeft == 0 else {
                throw ConfigError.inconsistent(
                    keys: keys + ["num_layers", "pipeline_model_parallel_size"],
                    rule:
                        "the \(rest) layers left after \(keys.joined(separator: " and ")) must split evenly over the "
                        + "other \(stagesLeft) stage\(stagesLeft == 1 ? "" : "s") (at least one layer each)")
            }
            middle = rest / stagesLeft
        }
        var counts = [Int](repeating: middle, count: p)
        if let f = split.firstStageLayers { counts[0] = f }
        if let l = split.lastStageLayers { counts[p - 1] = l }
        try checkNonEmpty(counts, keys: keys)
        return (1, counts)
    }

    private static func checkNonEmpty(_ counts: [Int], keys: [String]) throws {
        if let s = counts.firstIndex(where: { $0 < 1 }) {
            throw ConfigError.inconsistent(
                keys: keys + ["num_layers"],
                rule: "virtual stage \(s) would hold no transformer layer; every stage needs at least one")
        }
    }

    /// pipeline_auto_balance: each stage's layers by `balanced` (at least one per chunk); with v
    /// chunks per stage (v = L/(p·n) for num_layers_per_virtual_pipeline_stage n, then the average),
    /// each stage's layers split again over its chunks so no chunk costs more than it must (the
    /// embedding is on stage 0's first chunk, the head on stage p − 1's last); then, when the costs
    /// name the schedule, refined by simulating it (PipelineBalance.swift). With `sublayers` the unit
    /// placed is a sub-layer (a layer's attention or its MLP, each at its own cost), else a layer.
    /// Returns sub-layer counts either way.
    private static func autoBalanced(
        layers L: Int, stages p: Int, layersPerVirtualStage n: Int?, sublayers: Bool, _ costs: StageCosts?
    ) throws -> (Int, [Int]) {
        var v = 1
        if let n {
            try checkVirtual(n, stages: p)
            guard L % (p * n) == 0 else {
                throw ConfigError.inconsistent(
                    keys: ["pipeline_auto_balance", "num_layers", "num_layers_per_virtual_pipeline_stage"],
                    rule:
                        "with virtual stages the chunks per stage are num_layers \(L) / (p \(p) · \(n)), which must be "
                        + "whole; the automatic balance then decides each chunk's layers")
            }
            v = L / (p * n)
        }
        guard L >= p * v else {
            throw ConfigError.inconsistent(
                keys: ["pipeline_auto_balance", "num_layers", "pipeline_model_parallel_size"],
                rule: "every chunk needs a layer: num_layers \(L) < \(p * v) chunks")
        }
        guard let costs else { return (v, [Int](repeating: 2 * L / (p * v), count: p * v)) }  // validation only
        let unitCosts =
            sublayers
            ? (0..<L).flatMap { _ in [costs.attentionSublayer, costs.layer - costs.attentionSublayer] }
            : [Double](repeating: costs.layer, count: L)
        let fixed = (0..<p).map { ($0 == 0 ? costs.embedding : 0) + ($0 == p - 1 ? costs.head : 0) }
        let perStage = balanced(unitCosts: unitCosts, fixedCosts: fixed, minimum: v)
        var counts = [Int](repeating: 0, count: p * v), start = 0
        for r in 0..<p {
            let chunkFixed = (0..<v).map {
                ($0 == 0 && r == 0 ? costs.embedding : 0) + ($0 == v - 1 && r == p - 1 ? costs.head : 0)
            }
            let perChunk = balanced(
                unitCosts: Array(unitCosts[start..<(start + perStage[r])]), fixedCosts: chunkFixed, minimum: 1)
            start += perStage[r]
            for c in 0..<v { counts[c * p + r] = perChunk[c] }
        }
        let units = refined(counts, stages: p, chunks: v, costs: costs, sublayers: sublayers)
        return (v, sublayers ? units : units.map { 2 * $0 })
    }

    /// The contiguous split of units (layers or sub-layers, costing `unitCosts` each, in model
    /// order) into stages with the least maximum stage cost, where stage i costs its units plus
    /// `fixedCosts[i]` (the embedding, the head) and holds at least `minimum` units; ties go to the
    /// earliest boundary, so the result is a function of the costs.
    static func balanced(unitCosts: [Double], fixedCosts: [Double], minimum: Int) -> [Int] {
        let p = fixedCosts.count, L = unitCosts.count
        precondition(L >= p * minimum, "not enough layers")
        var prefix = [0.0]
        for x in unitCosts { prefix.append(prefix.last! + x) }
        func cost(_ from: Int, _ to: Int, stage r: Int) -> Double { prefix[to] - prefix[from] + fixedCosts[r] }
        // best[r][i]: least max cost of stages 0...r holding units 0..<i; cut[r][i] the start of stage r.
        var best = [[Double]](repeating: [Double](repeating: .infinity, count: L + 1), count: p)
        var cut = [[Int]](repeating: [Int](repeating: 0, count: L + 1), count: p)
        for i in minimum...L { best[0][i] = cost(0, i, stage: 0) }
        for r in 1..<max(1, p) {
            for i in ((r + 1) * minimum)...L {
                for j in (r * minimum)...(i - minimum) {
                    let c = max(best[r - 1][j], cost(j, i, stage: r))
                    if c < best[r][i] { best[r][i] = c; cut[r][i] = j }
                }
            }
        }
        var counts = [Int](repeating: 0, count: p), end = L
        for r in stride(from: p - 1, through: 1, by: -1) {
            counts[r] = end - cut[r][end]; end = cut[r][end]
        }
        counts[0] = end
        return counts
    }
}

// HardwareProfile.swift — what the planner knows about the machine: measured GEMM rates by shape,
// thread count and precision; the attention core's measured time; memory bandwidth; the resident
// memory of a started process; and each link's latency and bandwidth per collective and group size.
// `megatron plan --calibrate` writes one for this machine (Calibration.swift); a cluster file
// (configs/clusters/*.json) describes other hardware with the same fields, where a GEMM model
// (peak × efficiency) stands in for measured shapes.
import Foundation
import Tensor

public struct HardwareProfile: Codable, Sendable {
    /// Which trainer's memory and kernels the prediction is for: "this" (this program: fp32 storage,
    /// flash-style attention, the LM head fused into the last stage's forward) or "megatron-lm"
    /// (Megatron-LM on GPUs: 16-bit activations, mixed-precision optimizer state, attention scores
    /// materialised).
    public var trainer: String
    /// The profile describes Megatron-LM on GPUs (trainer "megatron-lm"): its memory, kernels and rules.
    public var isMegatronLM: Bool { trainer == "megatron-lm" }
    public var name: String
    /// Compute units one node shares (CPU cores; for GPUs, one per rank) and ranks per node.
    public var coresPerNode: Int
    public var ranksPerNode: Int
    public var memoryPerRank: Double
    /// When set, a rank may use this node memory divided by the ranks placed on the node.
    public var memoryPerNode: Double? = nil
    public var gemm: [MeasuredGEMM] = []
    public var gemmModel: GEMMModel? = nil
    public var attention: [MeasuredAttention] = []
    /// The LM head's pass over its logits (row max, exponentials and their sum, ∂loss/∂logits): per
    /// element, by thread count and precision; empty in profiles written before it was measured (then
    /// the step model counts three passes over memory).
    public var logitRows: [MeasuredLogitRows] = []
    /// Bytes/s one rank streams, by its thread count.
    public var memoryBandwidth: [ThreadValue]
    /// Resident bytes of a started process before the model (runtime, MPI, BLAS buffers), by thread count.
    public var residentBaseline: [ThreadValue] = []
    public var links: [LinkFit]
    /// Resident bytes MPI's non-blocking reductions take per byte reduced (their temporary buffers),
    /// paid once for the largest gradient bucket; by group size (the `threads` field holds the ranks).
    public var reductionBuffers: [ThreadValue] = []
    /// Megatron-LM profiles: the 16-bit format its runs use, "fp16" or "bf16" (the default). Under
    /// `--fp16` Megatron-LM accumulates and all-reduces the gradients in fp16 and makes them fp32 for
    /// the optimizer step (20 bytes per parameter); under `--bf16` it accumulates and all-reduces in
    /// fp32 (18 bytes).
    public var mixedPrecision: String? = nil
    /// The precision a Megatron-LM profile's layouts run in.
    public var megatronPrecision: Precision { mixedPrecision == "fp16" ? .fp16 : .bf16 }

    public struct ThreadValue: Codable, Sendable {
        public var threads: Int, value: Double
        public init(threads: Int, value: Double) { self.threads = threads; self.value = value }
    }

    public init(
        trainer: String, name: String, coresPerNode: Int, ranksPerNode: Int, memoryPerRank: Double,
        memoryBandwidth: [ThreadValue], links: [LinkFit]
    ) {
        self.trainer = trainer; self.name = name; self.coresPerNode = coresPerNode; self.ranksPerNode = ranksPerNode
        self.memoryPerRank = memoryPerRank; self.memoryBandwidth = memoryBandwidth; self.links = links
    }

    public struct MeasuredGEMM: Codable, Sendable {
        public var m: Int, n: Int, k: Int, transA: Bool, transB: Bool, threads: Int, bf16: Bool
        public var flopsPerSecond: Double
    }

    /// Rate of a GEMM without a measurement: peak · efficiency · x / (x + halfSize), x = min(m, n, k).
    public struct GEMMModel: Codable, Sendable {
        public var peakFP32: Double, peakBF16: Double, efficiency: Double, halfSize: Double
        public init(peakFP32: Double, peakBF16: Double, efficiency: Double, halfSize: Double) {
            self.peakFP32 = peakFP32; self.peakBF16 = peakBF16; self.efficiency = efficiency; self.halfSize = halfSize
        }
    }

    /// The attention core of one layer for one micro-batch: forward and backward seconds, with GPT's
    /// causal mask or (`causal` false) BERT's bidirectional one over full-length sequences; profiles
    /// written before BERT was planned hold causal measurements only, so a missing `causal` is true.
    public struct MeasuredAttention: Codable, Sendable {
        public var seq: Int, batch: Int, heads: Int, headDim: Int, threads: Int, bf16: Bool
        public var causal = true
        public var forward: Double, backward: Double

        public init(
            seq: Int, batch: Int, heads: Int, headDim: Int, threads: Int, bf16: Bool, causal: Bool = true,
            forward: Double, backward: Double
        ) {
            (self.seq, self.batch, self.heads, self.headDim, self.threads, self.bf16) = (
                seq, batch, heads, headDim, threads, bf16
            )
            (self.causal, self.forward, self.backward) = (causal, forward, backward)
        }

        enum CodingKeys: String, CodingKey { case seq, batch, heads, headDim, threads, bf16, causal, forward, backward }

        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            self.init(
                seq: try c.decode(Int.self, forKey: .seq), batch: try c.decode(Int.self, forKey: .batch),
                heads: try c.decode(Int.self, forKey: .heads), headDim: try c.decode(Int.self, forKey: .headDim),
                threads: try c.decode(Int.self, forKey: .threads), bf16: try c.decode(Bool.self, forKey: .bf16),
                causal: try c.decodeIfPresent(Bool.self, forKey: .causal) ?? true,
                forward: try c.decode(Double.self, forKey: .forward),
                backward: try c.decode(Double.self, forKey: .backward))
        }
    }

    /// Logit elements per second of the LM head's row pass over `width` columns.
    public struct MeasuredLogitRows: Codable, Sendable {
        public var width: Int, threads: Int, bf16: Bool
        public var elementsPerSecond: Double
        public init(width: Int, threads: Int, bf16: Bool, elementsPerSecond: Double) {
            (self.width, self.threads, self.bf16, self.elementsPerSecond) = (width, threads, bf16, elementsPerSecond)
        }
    }

    /// time = latency + bytes / bandwidth for one operation of `op` ("allreduce", "allgather",
    /// "reducescatter": bytes of the whole buffer; "p2p": bytes sent) over `ranks` ranks, within
    /// one node ("intra") or across nodes ("inter").
    public struct LinkFit: Codable, Sendable {
        public var scope: String, op: String, ranks: Int, latency: Double, bandwidth: Double
        public init(scope: String, op: String, ranks: Int, latency: Double, bandwidth: Double) {
            self.scope = scope; self.op = op; self.ranks = ranks; self.latency = latency; self.bandwidth = bandwidth
        }
    }

    /// Lists a cluster file leaves out are empty; the other fields are required.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        trainer = try c.decode(String.self, forKey: .trainer)
        name = try c.decode(String.self, forKey: .name)
        coresPerNode = try c.decode(Int.self, forKey: .coresPerNode)
        ranksPerNode = try c.decode(Int.self, forKey: .ranksPerNode)
        memoryPerRank = try c.decode(Double.self, forKey: .memoryPerRank)
        memoryPerNode = try c.decodeIfPresent(Double.self, forKey: .memoryPerNode)
        gemm = try c.decodeIfPresent([MeasuredGEMM].self, forKey: .gemm) ?? []
        gemmModel = try c.decodeIfPresent(GEMMModel.self, forKey: .gemmModel)
        attention = try c.decodeIfPresent([MeasuredAttention].self, forKey: .attention) ?? []
        logitRows = try c.decodeIfPresent([MeasuredLogitRows].self, forKey: .logitRows) ?? []
        memoryBandwidth = try c.decode([ThreadValue].self, forKey: .memoryBandwidth)
        residentBaseline = try c.decodeIfPresent([ThreadValue].self, forKey: .residentBaseline) ?? []
        links = try c.decode([LinkFit].self, forKey: .links)
        reductionBuffers = try c.decodeIfPresent([ThreadValue].self, forKey: .reductionBuffers) ?? []
        mixedPrecision = try c.decodeIfPresent(String.self, forKey: .mixedPrecision)
        guard trainer == "this" || trainer == "megatron-lm" else {
            throw DecodingError.dataCorruptedError(
                forKey: .trainer, in: c, debugDescription: "trainer must be \"this\" or \"megatron-lm\"")
        }
        guard mixedPrecision == nil || (trainer == "megatron-lm" && ["fp16", "bf16"].contains(mixedPrecision!)) else {
            throw DecodingError.dataCorruptedError(
                forKey: .mixedPrecision, in: c,
                debugDescription: "mixedPrecision must be \"fp16\" or \"bf16\", and only with trainer \"megatron-lm\"")
        }
        guard coresPerNode > 0, ranksPerNode > 0, memoryPerRank > 0, !memoryBandwidth.isEmpty, !links.isEmpty,
            !gemm.isEmpty || gemmModel != nil
        else {
            throw DecodingError.dataCorruptedError(
                forKey: .links, in: c,
                debugDescription:
                    "coresPerNode, ranksPerNode and memoryPerRank must be positive, memoryBandwidth and links "
                    + "non-empty, and either gemm measurements or a gemmModel given")
        }
    }

    public static func load(_ path: String) throws -> HardwareProfile {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw PlanError.badProfile(path, "cannot be read; run `megatron plan --calibrate --profile \(path)` first")
        }
        do { return try JSONDecoder().decode(HardwareProfile.self, from: data) } catch {
            throw PlanError.badProfile(
                path,
                "is not a hardware profile: \(reason(error)) (write one with `megatron plan --calibrate`, or see "
                    + "configs/clusters/dgx-a100.json for a cluster file's fields)")
        }
    }

    /// What is wrong with a profile's JSON, by key path ("links[2].bandwidth"), in words.
    static func reason(_ error: Error) -> String {
        func path(_ keys: [CodingKey]) -> String {
            keys.reduce("") { text, key in
                if let i = key.intValue { return text + "[\(i)]" }
                return text.isEmpty ? key.stringValue : text + "." + key.stringValue
            }
        }
        switch error as? DecodingError {
        case .keyNotFound(let key, let ctx)?: return "key '\(path(ctx.codingPath + [key]))' is missing"
        case .typeMismatch(let type, let ctx)?, .valueNotFound(let type, let ctx)?:
            let kind = type == String.self ? "a string" : type is any Numeric.Type ? "a number" : "\(type)"
            return "key '\(path(ctx.codingPath))' must be \(kind)"
        case .dataCorrupted(let ctx)?:
            if ctx.codingPath.isEmpty { return "not valid JSON (\(ConfigLoader.jsonReason(error)))" }
            return "key '\(path(ctx.codingPath))': \(ctx.debugDescription)"
        default: return "\(error)"
        }
    }

    public func write(_ path: String) throws {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        try e.encode(self).write(to: URL(fileURLWithPath: path))
    }

    /// Whether any of the groups of `size` ranks `stride` apart that tile `world` ranks (in blocks of
    /// size·stride, the first ranks of a block starting the groups, as Megatron's tensor, data and
    /// pipeline groups do) spans more than one node, nodes holding `ranksPerNode` consecutive ranks. A
    /// group size that does not divide a node (t = 6 on 8 GPUs a node) leaves some groups straddling
    /// two nodes, and a collective is as slow as its slowest group.
    public func crossesNodes(size: Int, stride: Int, world: Int) -> Bool {
        guard size > 1 else { return false }
        let span = stride * (size - 1)
        let block = size * stride
        var start = 0
        while start + span < world {
            for first in start..<min(start + stride, world - span)
            where first / ranksPerNode != (first + span) / ranksPerNode {
                return true
            }
            start += block
        }
        return false
    }

    /// Whether layout `l`'s data-parallel groups (ranks `tensor` apart) lie within one node, where this
    /// trainer sums the gradients through shared memory (`ddp_reduction: auto`) instead of MPI.
    public func reducesThroughSharedMemory(_ l: PlanLayout) -> Bool {
        !isMegatronLM && l.data > 1 && !crossesNodes(size: l.data, stride: l.tensor, world: l.worldSize)
    }

    /// Threads each rank runs when `ranks` ranks share a node.
    public func threads(ranksOnNode ranks: Int) -> Int { max(1, coresPerNode / max(1, ranks)) }

    /// How many ranks take turns on each core (1 unless the node is oversubscribed).
    public func timeShare(ranksOnNode ranks: Int) -> Double {
        max(1, Double(ranks * threads(ranksOnNode: ranks)) / Double(coresPerNode))
    }

    /// Seconds of one GEMM: the measured shape if there is one, else the nearest measured shape's
    /// rate (log-distance of m, n, k; same transposes, threads and precision first), else the model.
    public func gemmSeconds(m: Int, n: Int, k: Int, transA: Bool, transB: Bool, threads: Int, bf16: Bool) -> Double {
        let flops = 2 * Double(m) * Double(n) * Double(k)
        func distance(_ g: MeasuredGEMM) -> Double {
            abs(log(Double(g.m) / Double(m))) + abs(log(Double(g.n) / Double(n))) + abs(log(Double(g.k) / Double(k)))
                + (g.transA == transA && g.transB == transB ? 0 : 0.5) + (g.threads == threads ? 0 : 10)
        }
        let candidates = gemm.filter { $0.bf16 == bf16 }
        if let best = candidates.min(by: { distance($0) < distance($1) }), best.threads == threads || gemmModel == nil {
            let scale = Double(threads) / Double(best.threads)  // only when no measurement at this thread count
            return flops / (best.flopsPerSecond * (best.threads == threads ? 1 : scale))
        }
        guard let g = gemmModel else { return .infinity }
        let x = Double(min(m, n, k))
        return flops / ((bf16 ? g.peakBF16 : g.peakFP32) * g.efficiency * x / (x + g.halfSize))
    }

    /// Forward and backward seconds of the attention core, or nil when not measured (then the
    /// step model counts it as GEMMs plus the softmax's memory traffic).
    public func attentionSeconds(
        seq: Int, batch: Int, heads: Int, headDim: Int, threads: Int, bf16: Bool, causal: Bool = true
    ) -> (forward: Double, backward: Double)? {
        let same = attention.filter {
            $0.seq == seq && $0.headDim == headDim && $0.bf16 == bf16 && $0.threads == threads && $0.causal == causal
        }
        guard !same.isEmpty else { return nil }
        // Work is over batch·heads tasks; scale the nearest measurement by the task count.
        let tasks = Double(batch * heads)
        let best = same.min {
            abs(log(Double($0.batch * $0.heads) / tasks)) < abs(log(Double($1.batch * $1.heads) / tasks))
        }!
        let scale = tasks / Double(best.batch * best.heads)
        return (best.forward * scale, best.backward * scale)
    }

    /// Seconds of the LM head's row pass over `elements` logits in rows of `width`, at the rate
    /// measured at this thread count and precision (the nearest width), or nil when not measured.
    public func logitRowSeconds(elements: Double, width: Int, threads: Int, bf16: Bool) -> Double? {
        let same = logitRows.filter { $0.threads == threads && $0.bf16 == bf16 }
        let nearest = same.min {
            abs(log(Double($0.width) / Double(width))) < abs(log(Double($1.width) / Double(width)))
        }
        return nearest.map { elements / $0.elementsPerSecond }
    }

    public func bandwidth(threads: Int) -> Double { Self.value(memoryBandwidth, threads: threads) ?? 1e10 }

    public func baseline(threads: Int) -> Double { Self.value(residentBaseline, threads: threads) ?? 0 }

    /// MPI's temporary bytes per byte of a non-blocking reduction over `ranks` ranks (0 if not measured).
    public func reductionBufferFactor(ranks: Int) -> Double { Self.value(reductionBuffers, threads: ranks) ?? 0 }

    static func value(_ list: [ThreadValue], threads: Int) -> Double? {
        list.min { abs($0.threads - threads) < abs($1.threads - threads) }?.value
    }

    /// Seconds of one `op` on `bytes` over a group of `ranks`, crossing nodes or not. A measured fit
    /// for the op and group size is used directly; otherwise the ring algorithm over the point-to-
    /// point fit: all-reduce 2(n−1) steps of bytes/n, all-gather and reduce-scatter n−1 — across
    /// nodes with `linksPerNode` network links carrying the ring's traffic side by side (capped by
    /// the bandwidth within a node).
    public func collectiveSeconds(
        _ op: String, bytes: Double, ranks: Int, crossesNodes: Bool, linksPerNode: Int = 1
    ) -> Double {
        guard ranks > 1 else { return 0 }
        let scope = crossesNodes ? "inter" : "intra"
        let fits = links.filter { $0.scope == scope }
        if let f = fits.filter({ $0.op == op }).min(by: { abs($0.ranks - ranks) < abs($1.ranks - ranks) }),
            f.ranks == ranks
        {
            return f.latency + bytes / f.bandwidth
        }
        guard let p2p = fits.first(where: { $0.op == "p2p" }) ?? links.first(where: { $0.op == "p2p" }) else {
            return 0
        }
        let n = Double(ranks), steps = op == "allreduce" ? 2 * (n - 1) : op == "p2p" ? 1 : n - 1
        let piece = op == "p2p" ? bytes : bytes / n
        var bandwidth = p2p.bandwidth
        if crossesNodes && op != "p2p" {
            let intra = links.first { $0.scope == "intra" && $0.op == "p2p" }?.bandwidth ?? .infinity
            bandwidth = min(intra, bandwidth * Double(linksPerNode))
        }
        return steps * (p2p.latency + piece / bandwidth)
    }
}

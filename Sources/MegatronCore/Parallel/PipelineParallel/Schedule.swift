// Schedule.swift — pipeline schedules as data (DESIGN decision 5): pure functions from
// (kind, p, v, m, rank) to the list of actions that rank runs. The executor only runs the list;
// ScheduleSimulator proves a set of lists sound; ScheduleTimeline draws them.
//
// Stages: with v model chunks per rank there are p·v virtual stages; chunk c of rank r is virtual
// stage c·p + r. Activations flow from virtual stage s to s + 1 (rank r → r + 1, and from the last
// rank to rank 0 of the next chunk); gradients flow back.
//
// Warm-up counts (Megatron core, schedules.py):
//   1F1B:        warmup = min(p − r − 1, m); then one forward, one backward, …; then the warm-up's backwards.
//   interleaved: m·v virtual micro-batches; warmup = m·v if m = p, else min((p − r − 1)·2 + (v − 1)·p, m·v).
//                Virtual micro-batch k runs forward on chunk (k mod p·v) div p, backward on chunk
//                v − 1 − that, and is micro-batch (k div p·v)·p + (k mod p) of that chunk.
//   zb-h1:       backward split into B (input gradient, sent on at once) and W (weight gradient);
//                each rank's order comes from a list scheduler over unit costs F = B = W = 1:
//                whenever rank r is free it runs a ready F if fewer than p − r of its micro-batches
//                wait for B (1F1B's warm-up) and fewer than p are in flight (forward done, W not
//                yet); else a ready B; else its oldest pending W. Rank 0 then holds what 1F1B's
//                rank 0 holds (p micro-batches), later ranks defer W passes into the cool-down, and
//                the bubble is ZB-H1's (p − 1)/(3m) — a third of 1F1B's — for every p ≤ 8, m ≤ 16
//                (ScheduleTests; Qi et al., "Zero Bubble Pipeline Parallelism", ICLR 2024, §3.1).

public enum PipelineAction: Hashable, Sendable, CustomStringConvertible {
    case forward(chunk: Int, microbatch: Int)
    /// The backward pass; in a zero-bubble schedule only its input-gradient half B.
    case backward(chunk: Int, microbatch: Int)
    /// Zero-bubble schedules: the weight-gradient half W of that micro-batch's backward.
    case weightGradient(chunk: Int, microbatch: Int)
    /// Send this chunk's output activation of `microbatch` to the next virtual stage (on rank `peer`).
    case sendActivation(chunk: Int, microbatch: Int, peer: Int)
    /// Receive the input activation of `microbatch` for this chunk from the previous virtual stage.
    case receiveActivation(chunk: Int, microbatch: Int, peer: Int)
    /// Send the gradient of this chunk's input to the previous virtual stage.
    case sendGradient(chunk: Int, microbatch: Int, peer: Int)
    /// Receive the gradient of this chunk's output from the next virtual stage.
    case receiveGradient(chunk: Int, microbatch: Int, peer: Int)

    /// A forward, backward or weight pass (not a transfer).
    public var isCompute: Bool {
        switch self {
        case .forward, .backward, .weightGradient: return true
        default: return false
        }
    }

    public var description: String {
        switch self {
        case .forward(let c, let k): return "F\(k)c\(c)"
        case .backward(let c, let k): return "B\(k)c\(c)"
        case .weightGradient(let c, let k): return "W\(k)c\(c)"
        case .sendActivation(let c, let k, let p): return "sendA\(k)c\(c)→\(p)"
        case .receiveActivation(let c, let k, let p): return "recvA\(k)c\(c)←\(p)"
        case .sendGradient(let c, let k, let p): return "sendG\(k)c\(c)→\(p)"
        case .receiveGradient(let c, let k, let p): return "recvG\(k)c\(c)←\(p)"
        }
    }
}

public enum ScheduleKind: String, Sendable, CaseIterable {
    case forwardOnly = "forward-only"
    case oneFOneB = "1f1b"
    case interleaved
    case zeroBubbleH1 = "zb-h1"

    /// Whether the backward is split into B and W actions.
    public var splitsBackward: Bool { self == .zeroBubbleH1 }
}

public struct PipelineSchedule: Sendable {
    public let kind: ScheduleKind
    public let stages: Int  // p
    public let chunks: Int  // v
    public let microbatches: Int  // m
    /// actions[r] is rank r's list.
    public let actions: [[PipelineAction]]

    /// Any lists (the simulator decides whether they are sound); `make` builds Megatron's.
    public init(kind: ScheduleKind, stages: Int, chunks: Int, microbatches: Int, actions: [[PipelineAction]]) {
        self.kind = kind; self.stages = stages; self.chunks = chunks; self.microbatches = microbatches;
        self.actions = actions
    }

    /// Checks Megatron's rules; the error names the rule and a valid alternative.
    public static func validate(kind: ScheduleKind, stages p: Int, chunks v: Int, microbatches m: Int) throws {
        if p < 1 || v < 1 || m < 1 {
            throw ConfigError.invalidValue(
                key: "pipeline schedule", value: "p=\(p), v=\(v), m=\(m)", rule: "all must be at least 1")
        }
        if v > 1 && kind == .oneFOneB {
            throw ConfigError.inconsistent(
                keys: ["num_layers_per_virtual_pipeline_stage", "pipeline schedule"],
                rule: "v = \(v) chunks need the interleaved schedule")
        }
        if v > 1 && kind == .zeroBubbleH1 {
            throw ConfigError.inconsistent(
                keys: ["num_layers_per_virtual_pipeline_stage", "pipeline_schedule"],
                rule: "zb-h1 runs one chunk per stage (v = 1), not v = \(v)")
        }
        if (kind == .interleaved || v > 1) && m % p != 0 {
            throw ConfigError.inconsistent(
                keys: ["global_batch_size", "pipeline_model_parallel_size"],
                rule:
                    "the interleaved schedule needs the number of micro-batches (\(m)) to be a multiple of "
                    + "pipeline_model_parallel_size \(p); use \(max(p, m / p * p)) or \((m / p + 1) * p) "
                    + "micro-batches"
            )
        }
    }

    /// Builds every rank's list. `kind` .interleaved with v = 1 is 1F1B.
    public static func make(kind: ScheduleKind, stages p: Int, chunks v: Int, microbatches m: Int) throws
        -> PipelineSchedule
    {
        try validate(kind: kind, stages: p, chunks: v, microbatches: m)
        if kind == .zeroBubbleH1 {
            return PipelineSchedule(
                kind: kind, stages: p, chunks: 1, microbatches: m, actions: zeroBubbleH1(p: p, m: m))
        }
        let lists = (0..<p).map { r -> [PipelineAction] in
            let order: [(forward: Bool, chunk: Int, microbatch: Int)]
            switch kind {
            case .forwardOnly: order = forwardOnlyOrder(p: p, v: v, m: m)
            case .oneFOneB: order = interleavedOrder(p: p, v: 1, m: m, rank: r, allWarmupWhenMEqualsP: false)
            case .interleaved: order = interleavedOrder(p: p, v: v, m: m, rank: r, allWarmupWhenMEqualsP: v > 1)
            case .zeroBubbleH1: order = []  // built above
            }
            return withCommunication(order, rank: r, p: p, v: v)
        }
        return PipelineSchedule(kind: kind, stages: p, chunks: v, microbatches: m, actions: lists)
    }

    /// All forwards, chunk by chunk in micro-batch order (evaluation).
    static func forwardOnlyOrder(p: Int, v: Int, m: Int) -> [(forward: Bool, chunk: Int, microbatch: Int)] {
        (0..<(m * v)).map { k in (true, (k % (p * v)) / p, (k / (p * v)) * p + k % p) }
    }

    /// Megatron's warm-up / steady 1F1B / cool-down, over virtual micro-batches (v = 1: plain 1F1B).
    static func interleavedOrder(p: Int, v: Int, m: Int, rank r: Int, allWarmupWhenMEqualsP: Bool)
        -> [(forward: Bool, chunk: Int, microbatch: Int)]
    {
        let total = m * v
        let warmup: Int
        if v == 1 {
            warmup = min(p - r - 1, m)
        } else if allWarmupWhenMEqualsP && m == p {
            warmup = total
        } else {
            warmup = min((p - r - 1) * 2 + (v - 1) * p, total)
        }
        func chunk(_ k: Int, forward: Bool) -> Int {
            let c = (k % (p * v)) / p
            return forward ? c : v - 1 - c
        }
        func microbatch(_ k: Int) -> Int { (k / (p * v)) * p + k % p }
        var order: [(forward: Bool, chunk: Int, microbatch: Int)] = []
        // Warm-up: forwards only.
        for k in 0..<warmup { order.append((true, chunk(k, forward: true), microbatch(k))) }
        // Steady state: one forward, one backward.
        let steady = total - warmup
        for i in 0..<steady {
            let kf = warmup + i
            order.append((true, chunk(kf, forward: true), microbatch(kf)))
            order.append((false, chunk(i, forward: false), microbatch(i)))
        }
        // Cool-down: the remaining backwards.
        for kb in steady..<total { order.append((false, chunk(kb, forward: false), microbatch(kb))) }
        return order
    }

    /// ZB-H1's lists (v = 1): the list scheduler described at the top, then the point-to-point
    /// actions around F and B as for 1F1B.
    static func zeroBubbleH1(p: Int, m: Int) -> [[PipelineAction]] {
        enum Pass { case f, b, w }
        var order = [[(pass: Pass, microbatch: Int)]](repeating: [], count: p)
        var busyUntil = [Int](repeating: 0, count: p)
        var nextForward = [Int](repeating: 0, count: p), nextBackward = [Int](repeating: 0, count: p)
        var pendingW = [[Int]](repeating: [], count: p), weightsDone = [Int](repeating: 0, count: p)
        // When micro-batch k's activation (gradient) reaches rank r; unset: not yet sent.
        var activationAt = [[Int?]](repeating: [Int?](repeating: nil, count: m), count: p)
        var gradientAt = [[Int?]](repeating: [Int?](repeating: nil, count: m), count: p)
        for k in 0..<m { activationAt[0][k] = 0 }
        var t = 0
        while weightsDone.contains(where: { $0 < m }) {
            for r in 0..<p where busyUntil[r] <= t {
                let kb = nextBackward[r], kf = nextForward[r]
                let backwardReady =
                    kb < kf && (r == p - 1 ? true : gradientAt[r][kb].map { $0 <= t } ?? false)
                let forwardReady =
                    kf < m && kf - kb < p - r && kf - weightsDone[r] < p
                    && (activationAt[r][kf].map { $0 <= t } ?? false)
                if forwardReady {
                    order[r].append((.f, kf)); nextForward[r] += 1
                    if r < p - 1 { activationAt[r + 1][kf] = t + 1 }
                } else if backwardReady {
                    order[r].append((.b, kb)); nextBackward[r] += 1; pendingW[r].append(kb)
                    if r > 0 { gradientAt[r - 1][kb] = t + 1 }
                } else if !pendingW[r].isEmpty {
                    order[r].append((.w, pendingW[r].removeFirst())); weightsDone[r] += 1
                } else {
                    continue
                }
                busyUntil[r] = t + 1
            }
            t += 1
        }
        return (0..<p).map { r in
            var out: [PipelineAction] = []
            for op in order[r] {
                switch op.pass {
                case .f:
                    out += withCommunication([(true, 0, op.microbatch)], rank: r, p: p, v: 1)
                case .b:
                    out += withCommunication([(false, 0, op.microbatch)], rank: r, p: p, v: 1)
                case .w:
                    out.append(.weightGradient(chunk: 0, microbatch: op.microbatch))
                }
            }
            return out
        }
    }

    /// Adds the point-to-point actions around each compute action: receive the input just before,
    /// send the output just after (sends are non-blocking in the executor).
    static func withCommunication(_ order: [(forward: Bool, chunk: Int, microbatch: Int)], rank r: Int, p: Int, v: Int)
        -> [PipelineAction]
    {
        let lastStage = p * v - 1
        let next = (r + 1) % p, previous = (r + p - 1) % p
        var out: [PipelineAction] = []
        for op in order {
            let stage = op.chunk * p + r
            if op.forward {
                if stage > 0 {
                    out.append(.receiveActivation(chunk: op.chunk, microbatch: op.microbatch, peer: previous))
                }
                out.append(.forward(chunk: op.chunk, microbatch: op.microbatch))
                if stage < lastStage {
                    out.append(.sendActivation(chunk: op.chunk, microbatch: op.microbatch, peer: next))
                }
            } else {
                if stage < lastStage {
                    out.append(.receiveGradient(chunk: op.chunk, microbatch: op.microbatch, peer: next))
                }
                out.append(.backward(chunk: op.chunk, microbatch: op.microbatch))
                if stage > 0 { out.append(.sendGradient(chunk: op.chunk, microbatch: op.microbatch, peer: previous)) }
            }
        }
        return out
    }
}

// ScheduleSimulator.swift — runs every rank's action list together, as the executor will (sends
// are non-blocking, a receive waits for its message), and proves a schedule sound: no rank waits
// forever, every send has exactly one matching receive, every (chunk, micro-batch) runs its forward
// before its backward (and, in a zero-bubble schedule, its backward B before its weight pass W) on
// every rank, and each runs exactly once. It also reports each rank's peak number of in-flight
// micro-batches (activations held: forward done, backward — or W — not yet) and a timeline with
// pass costs (forward 1, B 1, W 1 by default; a backward that is not split costs B + W) from which
// the bubble is read.

public enum ScheduleError: Error, CustomStringConvertible, Equatable {
    case deadlock(stuck: [String])
    case unmatchedSends([String])
    case backwardBeforeForward(rank: Int, chunk: Int, microbatch: Int)
    case weightBeforeBackward(rank: Int, chunk: Int, microbatch: Int)
    case wrongComputeCount(rank: Int, action: String, count: Int)

    public var description: String {
        switch self {
        case .deadlock(let stuck): return "the schedule deadlocks: " + stuck.joined(separator: "; ")
        case .unmatchedSends(let sends): return "sends without a matching receive: " + sends.joined(separator: ", ")
        case .backwardBeforeForward(let r, let c, let k):
            return "rank \(r) runs the backward of micro-batch \(k) on chunk \(c) before its forward"
        case .weightBeforeBackward(let r, let c, let k):
            return "rank \(r) runs the weight pass of micro-batch \(k) on chunk \(c) before its backward"
        case .wrongComputeCount(let r, let a, let n): return "rank \(r) runs \(a) \(n) times (expected once)"
        }
    }
}

public struct TimelineEvent: Sendable, Equatable {
    public let rank: Int
    public let action: PipelineAction
    public let start: Double, end: Double
}

public struct ScheduleReport: Sendable {
    public let peakInFlight: [Int]
    /// Compute and wait events per rank, in time order.
    public let timeline: [[TimelineEvent]]
    public let makespan: Double
    /// Per rank: 1 − compute time / makespan.
    public let idleFraction: [Double]
    /// Megatron's bubble fraction t_bubble / t_ideal: (makespan − compute) / compute on the busiest rank.
    public let bubble: Double
}

/// What each pass costs in the simulation (any one unit).
public struct PassCosts: Sendable, Equatable {
    public var forward: Double, backward: Double, weight: Double
    public init(forward: Double = 1, backward: Double = 1, weight: Double = 1) {
        self.forward = forward; self.backward = backward; self.weight = weight
    }
    /// F = B = W = 1 (so a backward that is not split costs 2).
    public static let unit = PassCosts()
}

/// One rank's state in a simulation: its clock and timeline, what it has run, and the micro-batches
/// it holds (forward done, backward — or, split, W — not yet).
private struct RankBook {
    let rank: Int
    var clock = 0.0
    var timeline: [TimelineEvent] = []
    var forwardDone = Set<[Int]>(), backwardDone = Set<[Int]>(), weightDone = Set<[Int]>()
    var inFlight = 0, peak = 0
    /// Time spent computing.
    var busy = 0.0

    init(rank: Int) { self.rank = rank }

    /// A receive whose message arrives at `arrival`: idle until then.
    mutating func wait(for action: PipelineAction, until arrival: Double) {
        if arrival > clock { timeline.append(TimelineEvent(rank: rank, action: action, start: clock, end: arrival)) }
        clock = max(clock, arrival)
    }

    /// Runs a forward, backward or weight pass of (chunk, micro-batch) `key` after checking its order.
    mutating func compute(_ action: PipelineAction, key: [Int], costs: PassCosts, kind: ScheduleKind) throws {
        let twice = ScheduleError.wrongComputeCount(rank: rank, action: "\(action)", count: 2)
        let cost: Double
        switch action {
        case .forward:
            guard forwardDone.insert(key).inserted else { throw twice }
            cost = costs.forward
            if kind != .forwardOnly { inFlight += 1; peak = max(peak, inFlight) }
        case .backward:
            guard forwardDone.contains(key) else {
                throw ScheduleError.backwardBeforeForward(rank: rank, chunk: key[0], microbatch: key[1])
            }
            guard backwardDone.insert(key).inserted else { throw twice }
            cost = kind.splitsBackward ? costs.backward : costs.backward + costs.weight
            if !kind.splitsBackward { inFlight -= 1 }
        default:
            guard backwardDone.contains(key) else {
                throw ScheduleError.weightBeforeBackward(rank: rank, chunk: key[0], microbatch: key[1])
            }
            guard weightDone.insert(key).inserted else { throw twice }
            cost = costs.weight
            inFlight -= 1
        }
        timeline.append(TimelineEvent(rank: rank, action: action, start: clock, end: clock + cost))
        clock += cost
        busy += cost
    }
}

public enum ScheduleSimulator {
    struct Message: Hashable {
        let gradient: Bool; let to: Int; let chunk: Int; let microbatch: Int; let from: Int
    }

    /// The (rank, chunk) a send from rank `r`'s chunk `c` arrives at, of `p` stages.
    static func destination(from r: Int, chunk c: Int, gradient: Bool, stages p: Int) -> (rank: Int, chunk: Int) {
        gradient ? (r == 0 ? (p - 1, c - 1) : (r - 1, c)) : (r == p - 1 ? (0, c + 1) : (r + 1, c))
    }

    public static func run(_ s: PipelineSchedule, costs: PassCosts = .unit) throws -> ScheduleReport {
        try run(s, transfer: 0) { _, _ in costs }
    }

    /// The same with costs that differ per (rank, chunk) — stages with the embedding or the head, uneven
    /// splits — and `transfer` time units between a send and its arrival (the planner's use).
    public static func run(
        _ s: PipelineSchedule, transfer: Double, costs costOf: (_ rank: Int, _ chunk: Int) -> PassCosts
    ) throws -> ScheduleReport {
        let p = s.stages, split = s.kind.splitsBackward
        var position = [Int](repeating: 0, count: p)
        var mailbox: [Message: Double] = [:]
        var book = (0..<p).map { RankBook(rank: $0) }

        var progressed = true
        while progressed {
            progressed = false
            for r in 0..<p {
                ranksActions: while position[r] < s.actions[r].count {
                    let action = s.actions[r][position[r]]
                    switch action {
                    case .sendActivation(let c, let k, let peer), .sendGradient(let c, let k, let peer):
                        let gradient: Bool
                        if case .sendGradient = action { gradient = true } else { gradient = false }
                        let d = destination(from: r, chunk: c, gradient: gradient, stages: p)
                        precondition(d.rank == peer, "send peer \(peer) is not the next stage's rank \(d.rank)")
                        let key = Message(gradient: gradient, to: d.rank, chunk: d.chunk, microbatch: k, from: r)
                        if mailbox[key] != nil {
                            throw ScheduleError.unmatchedSends(["\(action) sent twice by rank \(r)"])
                        }
                        mailbox[key] = book[r].clock + transfer
                    case .receiveActivation(let c, let k, let peer), .receiveGradient(let c, let k, let peer):
                        let gradient: Bool
                        if case .receiveGradient = action { gradient = true } else { gradient = false }
                        let key = Message(gradient: gradient, to: r, chunk: c, microbatch: k, from: peer)
                        guard let arrival = mailbox.removeValue(forKey: key) else { break ranksActions }  // waits
                        book[r].wait(for: action, until: arrival)
                    case .forward(let c, let k), .backward(let c, let k), .weightGradient(let c, let k):
                        try book[r].compute(action, key: [c, k], costs: costOf(r, c), kind: s.kind)
                    }
                    position[r] += 1
                    progressed = true
                }
            }
        }
        try checkComplete(
            s, position: position, mailbox: mailbox, forwards: book.map(\.forwardDone.count),
            backwards: book.map(\.backwardDone.count), weights: split ? book.map(\.weightDone.count) : nil)
        let makespan = book.map(\.clock).max() ?? 0
        let compute = book.map(\.busy)
        let busiest = compute.max() ?? 0
        return ScheduleReport(
            peakInFlight: book.map(\.peak), timeline: book.map(\.timeline), makespan: makespan,
            idleFraction: compute.map { 1 - $0 / makespan },
            bubble: (makespan - busiest) / busiest)
    }

    /// After the run: every rank reached the end of its list, every send was received, and every
    /// rank ran each of its forwards (and backwards) exactly once.
    private static func checkComplete(
        _ s: PipelineSchedule, position: [Int], mailbox: [Message: Double], forwards: [Int],
        backwards: [Int], weights: [Int]?
    ) throws {
        let stuck = (0..<s.stages).filter { position[$0] < s.actions[$0].count }
        if !stuck.isEmpty {
            throw ScheduleError.deadlock(stuck: stuck.map { "rank \($0) waits at \(s.actions[$0][position[$0]])" })
        }
        if !mailbox.isEmpty {
            throw ScheduleError.unmatchedSends(
                mailbox.keys.map {
                    "\($0.gradient ? "gradient" : "activation") of micro-batch \($0.microbatch) from rank \($0.from) "
                        + "to rank \($0.to)"
                }.sorted())
        }
        for r in 0..<s.stages {
            let expected = s.microbatches * s.chunks
            if forwards[r] != expected {
                throw ScheduleError.wrongComputeCount(rank: r, action: "forwards", count: forwards[r])
            }
            if s.kind != .forwardOnly && backwards[r] != expected {
                throw ScheduleError.wrongComputeCount(rank: r, action: "backwards", count: backwards[r])
            }
            if let weights, weights[r] != expected {
                throw ScheduleError.wrongComputeCount(rank: r, action: "weight passes", count: weights[r])
            }
        }
    }
}

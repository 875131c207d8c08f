// ScheduleSimulator.swift — runs every rank's action list together, as the executor will (sends
// are non-blocking, a receive waits for its message), and proves a schedule sound: no rank waits
// forever, every send has exactly one matching receive, every (chunk, micro-batch) runs its forward
// before its backward on every rank, and each runs exactly once. It also reports each rank's peak
// number of in-flight micro-batches (activations held) and a timeline with unit costs
// (forward 1, backward 2 by default) from which the bubble is read.

public enum ScheduleError: Error, CustomStringConvertible, Equatable {
    case deadlock(stuck: [String])
    case unmatchedSends([String])
    case backwardBeforeForward(rank: Int, chunk: Int, microbatch: Int)
    case wrongComputeCount(rank: Int, action: String, count: Int)

    public var description: String {
        switch self {
        case .deadlock(let stuck): return "the schedule deadlocks: " + stuck.joined(separator: "; ")
        case .unmatchedSends(let sends): return "sends without a matching receive: " + sends.joined(separator: ", ")
        case .backwardBeforeForward(let r, let c, let k):
            return "rank \(r) runs the backward of micro-batch \(k) on chunk \(c) before its forward"
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

public enum ScheduleSimulator {
    private struct Message: Hashable {
        let gradient: Bool; let to: Int; let chunk: Int; let microbatch: Int; let from: Int
    }

    public static func run(_ s: PipelineSchedule, forwardCost: Double = 1, backwardCost: Double = 2) throws
        -> ScheduleReport
    {
        let p = s.stages, v = s.chunks
        var position = [Int](repeating: 0, count: p)
        var clock = [Double](repeating: 0, count: p)
        var mailbox: [Message: Double] = [:]
        var timeline = [[TimelineEvent]](repeating: [], count: p)
        var forwardDone = [Set<[Int]>](repeating: [], count: p), backwardDone = [Set<[Int]>](repeating: [], count: p)
        var inFlight = [Int](repeating: 0, count: p), peak = [Int](repeating: 0, count: p)

        /// The (rank, chunk) a send arrives at.
        func destination(from r: Int, chunk c: Int, gradient: Bool) -> (rank: Int, chunk: Int) {
            gradient ? (r == 0 ? (p - 1, c - 1) : (r - 1, c)) : (r == p - 1 ? (0, c + 1) : (r + 1, c))
        }

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
                        let d = destination(from: r, chunk: c, gradient: gradient)
                        precondition(d.rank == peer, "send peer \(peer) is not the next stage's rank \(d.rank)")
                        let key = Message(gradient: gradient, to: d.rank, chunk: d.chunk, microbatch: k, from: r)
                        if mailbox[key] != nil {
                            throw ScheduleError.unmatchedSends(["\(action) sent twice by rank \(r)"])
                        }
                        mailbox[key] = clock[r]
                    case .receiveActivation(let c, let k, let peer), .receiveGradient(let c, let k, let peer):
                        let gradient: Bool
                        if case .receiveGradient = action { gradient = true } else { gradient = false }
                        let key = Message(gradient: gradient, to: r, chunk: c, microbatch: k, from: peer)
                        guard let arrival = mailbox.removeValue(forKey: key) else { break ranksActions }  // waits
                        if arrival > clock[r] {
                            timeline[r].append(TimelineEvent(rank: r, action: action, start: clock[r], end: arrival))
                        }
                        clock[r] = max(clock[r], arrival)
                    case .forward(let c, let k):
                        if !forwardDone[r].insert([c, k]).inserted {
                            throw ScheduleError.wrongComputeCount(rank: r, action: "\(action)", count: 2)
                        }
                        timeline[r].append(
                            TimelineEvent(rank: r, action: action, start: clock[r], end: clock[r] + forwardCost))
                        clock[r] += forwardCost
                        if s.kind != .forwardOnly { inFlight[r] += 1; peak[r] = max(peak[r], inFlight[r]) }
                    case .backward(let c, let k):
                        if !forwardDone[r].contains([c, k]) {
                            throw ScheduleError.backwardBeforeForward(rank: r, chunk: c, microbatch: k)
                        }
                        if !backwardDone[r].insert([c, k]).inserted {
                            throw ScheduleError.wrongComputeCount(rank: r, action: "\(action)", count: 2)
                        }
                        timeline[r].append(
                            TimelineEvent(rank: r, action: action, start: clock[r], end: clock[r] + backwardCost))
                        clock[r] += backwardCost
                        inFlight[r] -= 1
                    }
                    position[r] += 1
                    progressed = true
                }
            }
        }
        try checkComplete(
            s, position: position, mailbox: mailbox, forwards: forwardDone.map(\.count),
            backwards: backwardDone.map(\.count))
        let makespan = clock.max() ?? 0
        let compute = Double(s.microbatches * v) * (forwardCost + (s.kind == .forwardOnly ? 0 : backwardCost))
        return ScheduleReport(
            peakInFlight: peak, timeline: timeline, makespan: makespan,
            idleFraction: clock.indices.map { _ in 1 - compute / makespan },
            bubble: (makespan - compute) / compute)
    }

    /// After the run: every rank reached the end of its list, every send was received, and every
    /// rank ran each of its forwards (and backwards) exactly once.
    private static func checkComplete(
        _ s: PipelineSchedule, position: [Int], mailbox: [Message: Double], forwards: [Int],
        backwards: [Int]
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
        }
    }
}

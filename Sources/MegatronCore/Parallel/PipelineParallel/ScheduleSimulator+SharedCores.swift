// ScheduleSimulator+SharedCores.swift — a schedule's makespan when the stages' ranks share cores
// (more ranks × threads on a node than it has cores). Event by event in one global clock: at every
// moment each computing stage advances at the speed `speeds` gives for the set of stages computing
// then (1 when its node's cores suffice; cores / threads wanting them when they do not — the
// kernel's fair sharing), and a stage waiting for a message uses no core (on such a node the
// trainer's waits sleep between polls: IdleWait). So the pipeline's fill and drain, when fewer
// stages compute, run faster rather than adding idle time on top of the shared steady state. The
// schedule's soundness is `run`'s to check; this only times it.

extension ScheduleSimulator {
    /// The makespan of `s` with per-(rank, chunk) costs (in seconds of a rank that has its cores to
    /// itself), `transfer` between a send and its arrival, and `speeds(computing)` → each stage's
    /// speed (0 < speed ≤ 1; only the computing stages' entries are read) while the stages marked in
    /// `computing` compute.
    public static func makespanSharingCores(
        _ s: PipelineSchedule, transfer: Double, costs: (_ rank: Int, _ chunk: Int) -> PassCosts,
        speeds: (_ computing: [Bool]) -> [Double]
    ) throws -> Double {
        var run = SharedCoresRun(schedule: s)
        while true {
            run.startWhatTakesNoTime(transfer: transfer, costs: costs)
            let computing = run.remaining.map { $0 != nil }
            if !computing.contains(true) && run.finished { return run.now }
            // The next event: a pass finishing or an awaited message arriving.
            let speed = speeds(computing)
            var finish = [Double](repeating: .infinity, count: s.stages)
            for r in 0..<s.stages {
                if let w = run.remaining[r] {
                    precondition(speed[r] > 0 && speed[r] <= 1, "a computing stage's speed must be in (0, 1]")
                    finish[r] = run.now + w / speed[r]
                }
            }
            let next = min(finish.min() ?? .infinity, run.arrivalAwaited.compactMap { $0 }.min() ?? .infinity)
            guard next.isFinite else { throw ScheduleError.deadlock(stuck: run.stuck) }
            for r in 0..<s.stages {
                guard let w = run.remaining[r] else { continue }
                if finish[r] <= next {
                    run.remaining[r] = nil
                    run.position[r] += 1
                } else {
                    run.remaining[r] = max(0, w - speed[r] * (next - run.now))  // never below 0 by rounding
                }
            }
            run.now = next
        }
    }
}

/// The state of a simulation with shared cores: each rank's place in its action list, the work left
/// of the pass it computes, the arrival of a message it awaits, and the messages on their way.
private struct SharedCoresRun {
    let s: PipelineSchedule
    var position: [Int], remaining: [Double?], arrivalAwaited: [Double?]
    var mailbox: [ScheduleSimulator.Message: Double] = [:]
    var now = 0.0

    init(schedule: PipelineSchedule) {
        s = schedule
        position = Array(repeating: 0, count: s.stages)
        remaining = Array(repeating: nil, count: s.stages)
        arrivalAwaited = Array(repeating: nil, count: s.stages)
    }

    var finished: Bool { (0..<s.stages).allSatisfy { position[$0] == s.actions[$0].count } }
    var stuck: [String] {
        (0..<s.stages).filter { position[$0] < s.actions[$0].count }.map {
            "rank \($0) waits at \(s.actions[$0][position[$0]])"
        }
    }

    /// Runs, on every rank not computing, what takes no time — sends, receives of arrived messages —
    /// up to its next pass (which it starts) or a message not yet arrived.
    mutating func startWhatTakesNoTime(transfer: Double, costs: (_ rank: Int, _ chunk: Int) -> PassCosts) {
        let p = s.stages, split = s.kind.splitsBackward
        var changed = true
        while changed {
            changed = false
            for r in 0..<p where remaining[r] == nil {
                actions: while position[r] < s.actions[r].count {
                    let action = s.actions[r][position[r]]
                    switch action {
                    case .sendActivation(let c, let k, _), .sendGradient(let c, let k, _):
                        var gradient = false
                        if case .sendGradient = action { gradient = true }
                        let d = ScheduleSimulator.destination(from: r, chunk: c, gradient: gradient, stages: p)
                        let key = ScheduleSimulator.Message(
                            gradient: gradient, to: d.rank, chunk: d.chunk, microbatch: k, from: r)
                        mailbox[key] = now + transfer
                    case .receiveActivation(let c, let k, let peer), .receiveGradient(let c, let k, let peer):
                        var gradient = false
                        if case .receiveGradient = action { gradient = true }
                        let key = ScheduleSimulator.Message(
                            gradient: gradient, to: r, chunk: c, microbatch: k, from: peer)
                        guard let arrival = mailbox[key] else { break actions }  // not sent yet
                        if arrival > now {
                            arrivalAwaited[r] = arrival
                            break actions
                        }
                        mailbox[key] = nil
                        arrivalAwaited[r] = nil
                    case .forward(let c, _):
                        remaining[r] = costs(r, c).forward
                        break actions
                    case .backward(let c, _):
                        let x = costs(r, c)
                        remaining[r] = split ? x.backward : x.backward + x.weight
                        break actions
                    case .weightGradient(let c, _):
                        remaining[r] = costs(r, c).weight
                        break actions
                    }
                    position[r] += 1
                    changed = true
                }
            }
        }
    }
}

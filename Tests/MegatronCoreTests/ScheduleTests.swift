// ScheduleTests.swift — every valid pipeline schedule with p ≤ 8, v ≤ 4, m ≤ 16 is proven sound by
// the simulator (no deadlock, every send received, forward before backward, each op once), with
// 1F1B's memory bound (rank r holds at most p − r micro-batches) and the PTD-P bubble
// (p − 1)/(v·m) under unit costs; ZB-H1 with rank 0's 1F1B memory and a third of 1F1B's bubble;
// and broken schedules (1F1B and zero-bubble) are rejected.
import MegatronCore
import XCTest

final class ScheduleTests: XCTestCase {
    func testEveryValidScheduleIsSound() throws {
        var checked = 0
        for p in 1...8 {
            for v in 1...4 {
                for m in 1...16 {
                    for kind in ScheduleKind.allCases {
                        if kind == .oneFOneB && v > 1 { continue }
                        if kind == .interleaved && v == 1 { continue }
                        if kind == .zeroBubbleH1 && v > 1 {
                            XCTAssertThrowsError(
                                try PipelineSchedule.make(kind: kind, stages: p, chunks: v, microbatches: m))
                            continue
                        }
                        if v > 1 && m % p != 0 {
                            XCTAssertThrowsError(
                                try PipelineSchedule.make(kind: kind, stages: p, chunks: v, microbatches: m))
                            continue
                        }
                        let s = try PipelineSchedule.make(kind: kind, stages: p, chunks: v, microbatches: m)
                        let report = try ScheduleSimulator.run(s)
                        checked += 1
                        if kind == .oneFOneB {
                            XCTAssertEqual(report.peakInFlight, (0..<p).map { min(p - $0, m) }, "1F1B p=\(p) m=\(m)")
                            XCTAssertEqual(
                                report.bubble, Double(p - 1) / Double(m), accuracy: 1e-9, "1F1B bubble p=\(p) m=\(m)")
                        }
                        if kind == .zeroBubbleH1 {
                            // ZB-H1: rank 0 holds what 1F1B's rank 0 holds and no rank more; the bubble
                            // is at most 1F1B's, and exactly a third of it, (p − 1)/(3m), once m ≥ p.
                            let ofOneFOneB = try ScheduleSimulator.run(
                                PipelineSchedule.make(kind: .oneFOneB, stages: p, chunks: 1, microbatches: m))
                            XCTAssertEqual(report.peakInFlight[0], min(p, m), "ZB-H1 rank 0 p=\(p) m=\(m)")
                            XCTAssertLessThanOrEqual(report.peakInFlight.max() ?? 0, min(p, m), "ZB-H1 p=\(p) m=\(m)")
                            XCTAssertLessThanOrEqual(report.bubble, ofOneFOneB.bubble + 1e-9, "ZB-H1 p=\(p) m=\(m)")
                            if m >= p {
                                XCTAssertEqual(
                                    report.bubble, Double(p - 1) / Double(3 * m), accuracy: 1e-9,
                                    "ZB-H1 bubble p=\(p) m=\(m)")
                            }
                        }
                        if kind == .interleaved {
                            // PTD-P: the bubble shrinks by v against 1F1B, (p − 1)/(v·m) — ideal when m > p.
                            XCTAssertLessThanOrEqual(
                                report.bubble, Double(p - 1) / Double(m) + 1e-9, "interleaved p=\(p) v=\(v) m=\(m)")
                            if m > p {
                                XCTAssertEqual(
                                    report.bubble, Double(p - 1) / Double(v * m), accuracy: 1e-9, "p=\(p) v=\(v) m=\(m)"
                                )
                            }
                        }
                    }
                }
            }
        }
        XCTAssertGreaterThan(checked, 300)
    }

    func testSimulatorRejectsBrokenZeroBubbleSchedules() throws {
        let good = try PipelineSchedule.make(kind: .zeroBubbleH1, stages: 4, chunks: 1, microbatches: 8)
        func run(_ actions: [[PipelineAction]]) throws {
            _ = try ScheduleSimulator.run(
                PipelineSchedule(kind: .zeroBubbleH1, stages: 4, chunks: 1, microbatches: 8, actions: actions))
        }
        XCTAssertNoThrow(try run(good.actions))
        func index(_ rank: Int, _ match: (PipelineAction) -> Bool) -> Int {
            good.actions[rank].firstIndex(where: match)!
        }
        // 1. A W moved before its B.
        var early = good.actions
        let w = index(3) {
            if case .weightGradient = $0 { return true }; return false
        }
        early[3].insert(early[3].remove(at: w), at: 0)
        XCTAssertThrowsError(try run(early)) {
            guard case ScheduleError.weightBeforeBackward(3, 0, 0) = $0 else {
                return XCTFail("expected weight-before-backward, got \($0)")
            }
        }
        // 2. A B moved before its F.
        var backward = good.actions
        let b = index(2) {
            if case .backward = $0 { return true }; return false
        }
        backward[2].insert(backward[2].remove(at: b), at: 0)
        XCTAssertThrowsError(try run(backward)) {
            guard case ScheduleError.backwardBeforeForward = $0 else {
                return XCTFail("expected backward-before-forward, got \($0)")
            }
        }
        // 3. A lost transfer: rank 1 never sends micro-batch 0's gradient back to rank 0.
        var lost = good.actions
        let send = index(1) {
            if case .sendGradient = $0 { return true }; return false
        }
        lost[1].remove(at: send)
        XCTAssertThrowsError(try run(lost)) {
            guard case ScheduleError.deadlock = $0 else { return XCTFail("expected a deadlock, got \($0)") }
        }
        // 4. A W dropped: its weight gradients would never be computed.
        var dropped = good.actions
        dropped[0].remove(
            at: index(0) {
                if case .weightGradient = $0 { return true }; return false
            })
        XCTAssertThrowsError(try run(dropped)) {
            guard case ScheduleError.wrongComputeCount(0, "weight passes", 7) = $0 else {
                return XCTFail("expected a missing weight pass, got \($0)")
            }
        }
    }

    func testInvalidInterleavingIsAConfigErrorWithASuggestion() {
        XCTAssertThrowsError(try PipelineSchedule.make(kind: .interleaved, stages: 4, chunks: 2, microbatches: 6)) {
            XCTAssertTrue(
                "\($0)".contains("multiple of pipeline_model_parallel_size 4") && "\($0)".contains("use 4 or 8"),
                "\($0)")
        }
    }

    func testSimulatorRejectsBrokenSchedules() throws {
        let good = try PipelineSchedule.make(kind: .oneFOneB, stages: 2, chunks: 1, microbatches: 3)
        // 1. Rank 1 waits for a gradient before running any forward: the pipeline deadlocks.
        var deadlocked = good.actions
        let recv = deadlocked[0].firstIndex {
            if case .receiveGradient = $0 { return true }; return false
        }!
        deadlocked[0].insert(deadlocked[0].remove(at: recv), at: 0)
        XCTAssertThrowsError(
            try ScheduleSimulator.run(
                PipelineSchedule(kind: .oneFOneB, stages: 2, chunks: 1, microbatches: 3, actions: deadlocked))
        ) {
            guard case ScheduleError.deadlock = $0 else { return XCTFail("expected a deadlock, got \($0)") }
        }
        // 2. A receive dropped: the matching send is never received.
        var unmatched = good.actions
        let r = unmatched[1].firstIndex {
            if case .receiveActivation = $0 { return true }; return false
        }!
        unmatched[1].remove(at: r)
        XCTAssertThrowsError(
            try ScheduleSimulator.run(
                PipelineSchedule(kind: .oneFOneB, stages: 2, chunks: 1, microbatches: 3, actions: unmatched)))
        // 3. A backward moved before its forward.
        var early = good.actions
        let b = early[1].firstIndex {
            if case .backward = $0 { return true }; return false
        }!
        early[1].insert(early[1].remove(at: b), at: 0)
        XCTAssertThrowsError(
            try ScheduleSimulator.run(
                PipelineSchedule(kind: .oneFOneB, stages: 2, chunks: 1, microbatches: 3, actions: early))
        ) {
            guard case ScheduleError.backwardBeforeForward = $0 else {
                return XCTFail("expected backward-before-forward, got \($0)")
            }
        }
    }

    func testOneFOneBWarmupCounts() throws {
        // Megatron: rank r runs min(p − r − 1, m) forwards before its first backward.
        let s = try PipelineSchedule.make(kind: .oneFOneB, stages: 4, chunks: 1, microbatches: 8)
        for r in 0..<4 {
            let computes = s.actions[r].filter {
                if case .forward = $0 { return true }; if case .backward = $0 { return true }; return false
            }
            let firstBackward = computes.firstIndex {
                if case .backward = $0 { return true }; return false
            }!
            XCTAssertEqual(firstBackward, min(4 - r - 1, 8) + 1, "rank \(r)")
        }
    }
}

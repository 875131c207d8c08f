// SharedCoresTests.swift — the pipeline schedule timed with ranks sharing cores
// (ScheduleSimulator.makespanSharingCores) and the planner's speeds per stage: with cores to spare it
// is the plain simulator's makespan; with one core for every rank it is the total work; a 1F1B
// pipeline of two stages on two cores, two ranks a stage, walked through by hand; the speeds of
// stages spread over nodes; and an oversubscribed pipeline whose cores never idle.
import Foundation
import MegatronCore
import XCTest

final class SharedCoresTests: XCTestCase {
    /// Per-(rank, chunk) costs that differ by stage and chunk.
    static func costs(_ r: Int, _ c: Int) -> PassCosts {
        PassCosts(forward: 1 + 0.25 * Double(r), backward: 1.5 + 0.1 * Double(c), weight: 0.75)
    }

    func testWithCoresToSpareItIsTheSimulatorsMakespan() throws {
        for (kind, p, v, m) in [
            (ScheduleKind.oneFOneB, 4, 1, 8), (.interleaved, 2, 2, 4), (.interleaved, 4, 3, 8),
            (.zeroBubbleH1, 4, 1, 8),
        ] {
            let s = try PipelineSchedule.make(kind: kind, stages: p, chunks: v, microbatches: m)
            for transfer in [0, 0.3] {
                let plain = try ScheduleSimulator.run(s, transfer: transfer, costs: Self.costs).makespan
                let shared = try ScheduleSimulator.makespanSharingCores(
                    s, transfer: transfer, costs: Self.costs, speeds: { $0.map { _ in 1 } })
                XCTAssertEqual(shared, plain, accuracy: 1e-9, "\(kind) p \(p) v \(v) m \(m) transfer \(transfer)")
            }
        }
    }

    func testOneCoreForEveryRankTakesTheTotalWork() throws {
        // Some stage always computes (no transfer time), and the one core serves them all: the makespan
        // is the sum of every pass.
        for (kind, p, v, m) in [(ScheduleKind.oneFOneB, 4, 1, 6), (.interleaved, 2, 2, 4), (.zeroBubbleH1, 3, 1, 6)] {
            let s = try PipelineSchedule.make(kind: kind, stages: p, chunks: v, microbatches: m)
            let work = (0..<p).reduce(0.0) { sum, r in
                sum
                    + (0..<v).reduce(0.0) {
                        $0 + Double(m)
                            * (Self.costs(r, $1).forward + Self.costs(r, $1).backward + Self.costs(r, $1).weight)
                    }
            }
            let oneCore = try ScheduleSimulator.makespanSharingCores(
                s, transfer: 0, costs: Self.costs,
                speeds: { computing in
                    let n = Double(computing.filter { $0 }.count)
                    return computing.map { _ in 1 / n }
                })
            XCTAssertEqual(oneCore, work, accuracy: 1e-9, "\(kind) p \(p) v \(v) m \(m)")
        }
    }

    func testTwoStagesOnTwoCoresByHand() throws {
        // 1F1B, p = 2, m = 2, F 1 and B + W 2; two ranks a stage on two cores: a stage computing alone
        // has the cores (speed 1), two at once go at half speed. Stage 0 F0 0–1; F1 beside stage 1's F0
        // 1–3; stage 1 B0 alone 3–5; stage 0 B0 (2) beside stage 1 F1 (1) from 5: F1 ends at 7, B0 has
        // 1 left; beside stage 1's B1 (2) it ends at 9, B1 then alone with 1 left to 10; stage 0 B1
        // 10–12. Without sharing: 9.
        let s = try PipelineSchedule.make(kind: .oneFOneB, stages: 2, chunks: 1, microbatches: 2)
        let costs: (Int, Int) -> PassCosts = { _, _ in PassCosts(forward: 1, backward: 1, weight: 1) }
        XCTAssertEqual(try ScheduleSimulator.run(s, transfer: 0, costs: costs).makespan, 9, accuracy: 1e-12)
        let shared = try ScheduleSimulator.makespanSharingCores(
            s, transfer: 0, costs: costs,
            speeds: { computing in computing.map { _ in computing.allSatisfy { $0 } ? 0.5 : 1 } })
        XCTAssertEqual(shared, 12, accuracy: 1e-12)
    }

    /// A 4-layer GPT (hidden 64, 4 heads, seq 32, vocabulary 500, global batch 8) on a machine of
    /// 2 cores a node where GEMMs run at 1 GFLOP/s, memory at 1 GB/s and links at 1 GB/s after 1 µs.
    func planner(worldSize: Int, ranksPerNode: Int) throws -> Planner {
        var c = TrainingConfig()
        (c.numLayers, c.hiddenSize, c.numAttentionHeads, c.seqLength, c.maxPositionEmbeddings) = (4, 64, 4, 32, 40)
        var machine = HardwareProfile(
            trainer: "this", name: "test", coresPerNode: 2, ranksPerNode: ranksPerNode, memoryPerRank: 1_073_741_824,
            memoryBandwidth: [.init(threads: 1, value: 1e9)],
            links: [.init(scope: "intra", op: "p2p", ranks: 2, latency: 1e-6, bandwidth: 1e9)])
        machine.gemmModel = HardwareProfile.GEMMModel(peakFP32: 1e9, peakBF16: 2e9, efficiency: 1, halfSize: 0)
        return try Planner(
            model: PlanModel(config: c, globalBatch: 8, vocab: 500), profile: machine, worldSize: worldSize)
    }

    func testStageSpeedsFollowTheRanksOnEachNode() throws {
        var l = PlanLayout()
        // One node of 4 ranks, 2 cores: t = 2, p = 2 — a stage alone has its cores, two share them.
        (l.tensor, l.pipeline) = (2, 2)
        let one = try planner(worldSize: 4, ranksPerNode: 8).stageSpeeds(l, threads: 1)
        XCTAssertEqual(one([true, true]), [0.5, 0.5])
        XCTAssertEqual(one([true, false])[0], 1)
        // Two nodes of 4 ranks: t = 2, p = 4 puts stages 0, 1 on node 0 and 2, 3 on node 1.
        (l.tensor, l.pipeline) = (2, 4)
        let two = try planner(worldSize: 8, ranksPerNode: 4).stageSpeeds(l, threads: 1)
        XCTAssertEqual(two([true, true, true, false]), [0.5, 0.5, 1, 1])
        XCTAssertEqual(two([false, true, true, true])[1...], [1, 0.5, 0.5])
        // t = 4, d = 2, p = 2 over nodes of 4: every stage spans two nodes; with 2 threads a rank, a
        // stage alone wants 8 threads on each of its nodes' 2 cores.
        (l.tensor, l.data, l.pipeline) = (4, 2, 2)
        let wide = try planner(worldSize: 16, ranksPerNode: 4).stageSpeeds(l, threads: 2)
        XCTAssertEqual(wide([true, false])[0], 0.25)
        XCTAssertEqual(wide([true, true]), [0.25, 0.25])
    }

    func testOversubscribedPipelineKeepsTheCoresBusy() throws {
        // t = 2, p = 2 on one node of 2 cores (4 ranks, a thread each): whenever a stage computes, its
        // two ranks alone fill both cores, so the pipeline's part of the step (compute, communication
        // within it, bubble, sharing) is at most the two stages' work — twice the busiest stage's,
        // where adding the unshared bubble to the shared steady state (the earlier rule) could exceed it.
        var l = PlanLayout()
        (l.tensor, l.pipeline, l.microBatch) = (2, 2, 1)
        let x = try planner(worldSize: 4, ranksPerNode: 8).predict(l)
        let busiest = x.compute + x.tensorCommunication
        let pipelined = busiest + x.bubble + x.sharing
        XCTAssertGreaterThan(x.bubble, 0)
        XCTAssertGreaterThan(x.sharing, 0)
        XCTAssertGreaterThan(pipelined, busiest * 1.5, "two stages' work on the cores of one")
        XCTAssertLessThanOrEqual(pipelined, 2 * busiest * 1.001)
    }
}

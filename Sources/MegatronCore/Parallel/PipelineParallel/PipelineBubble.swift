// PipelineBubble.swift — the pipeline bubble as Megatron defines it, t_bubble / t_ideal, measured
// and in theory. Measured: each rank's idle share i of the step gives i / (1 − i), averaged over
// ranks (and per stage, to show where it falls). Theory: (p − 1)/(v·m) for 1F1B and interleaved
// 1F1B (PTD-P paper §2.2, uniform stages); for a zero-bubble schedule the simulator's bubble with
// the measured per-micro-batch F, B and W times (there is no closed form once W fills the bubble).
import Distributed

/// What one rank measured in one training iteration of a pipeline.
public struct PipelinePassTimes: Sendable, Equatable {
    /// The idle share of the iteration, and seconds spent in forward, backward and W passes.
    public var idle: Double, forward: Double, backward: Double, weight: Double
    public init(idle: Double, forward: Double, backward: Double, weight: Double) {
        self.idle = idle; self.forward = forward; self.backward = backward; self.weight = weight
    }
    public var asArray: [Double] { [idle, forward, backward, weight] }
    public init(_ a: ArraySlice<Double>) {
        let v = Array(a)
        self.init(idle: v[0], forward: v[1], backward: v[2], weight: v[3])
    }
}

public enum PipelineBubble {
    /// Every world rank's times, in world rank order.
    public static func gather(_ mine: PipelinePassTimes, world: Communicator) throws -> [PipelinePassTimes] {
        let local = mine.asArray.map(Float.init)
        var all = [Float](repeating: 0, count: 4 * world.size)
        try world.allGather(local, count: 4, into: &all)
        return (0..<world.size).map { PipelinePassTimes(all[(4 * $0)..<(4 * $0 + 4)].map(Double.init)[...]) }
    }

    /// The mean over ranks of idle / (1 − idle).
    public static func measured(_ ranks: [PipelinePassTimes]) -> Double {
        ranks.map(bubble).reduce(0, +) / Double(max(1, ranks.count))
    }

    /// One rank's idle / compute from its idle share of the step.
    private static func bubble(_ times: PipelinePassTimes) -> Double { times.idle / max(1e-9, 1 - times.idle) }

    /// The same per pipeline stage (its ranks' mean), stage 0 first: where the idle time falls — an
    /// unbalanced split shows as a lighter stage idling more.
    public static func perStage(_ ranks: [PipelinePassTimes], grid: GridLayout) -> [Double] {
        var sum = [Double](repeating: 0, count: grid.pipeline), count = [Int](repeating: 0, count: grid.pipeline)
        for (rank, times) in ranks.enumerated() {
            let stage = grid.coordinates(of: rank).pp
            sum[stage] += bubble(times)
            count[stage] += 1
        }
        return (0..<grid.pipeline).map { sum[$0] / Double(max(1, count[$0])) }
    }

    /// How `theory` is computed for this schedule, for the log line.
    public static func theoryName(_ s: PipelineSchedule) -> String {
        s.kind.splitsBackward ? "simulated with measured F, B, W" : "(p−1)/(v·m)"
    }

    /// The schedule's theoretical bubble. Zero-bubble: the simulator with the mean per-micro-batch
    /// F, B and W of the ranks that run W apart (rank 0 runs each W right after its B, fused).
    /// `ranks` are every world rank's times in world rank order; `grid` gives each one's stage.
    public static func theory(_ s: PipelineSchedule, ranks: [PipelinePassTimes], grid: GridLayout) -> Double {
        guard s.kind.splitsBackward else { return Double(s.stages - 1) / Double(s.chunks * s.microbatches) }
        let apart = ranks.indices.filter { grid.coordinates(of: $0).pp > 0 }.map { ranks[$0] }
        let n = Double(max(1, apart.count) * s.microbatches * s.chunks)
        let costs = PassCosts(
            forward: apart.map(\.forward).reduce(0, +) / n, backward: apart.map(\.backward).reduce(0, +) / n,
            weight: apart.map(\.weight).reduce(0, +) / n)
        guard costs.forward + costs.backward + costs.weight > 0 else { return 0 }
        return (try? ScheduleSimulator.run(s, costs: costs).bubble) ?? .nan
    }
}

// PlanReport.swift — how `megatron plan` prints predictions: the table of layouts (step time and
// its breakdown, throughput, memory), one layout in detail with its `mpirun … megatron train …`
// line, and a JSON line per prediction for scripts/bench_plan.sh.
import Foundation
import MegatronCore
import Tensor

enum PlanReport {
    static func header(_ p: Planner) -> String {
        String(
            format:
                "plan: %@ on %d rank(s), %d per node, %.1f GiB per rank (%.1f GiB usable, %.0f%% headroom); %@ %d layers, hidden %d, heads %d, seq %d, "
                + "vocab %d, global batch %d",
            p.profile.name as NSString, p.worldSize, p.ranksPerNode, p.memoryPerRank / 1_073_741_824,
            p.usableMemory / 1_073_741_824, p.memoryHeadroom * 100, (p.model.isBert ? "BERT" : "GPT") as NSString,
            p.model.layers, p.model.hidden, p.model.heads,
            p.model.seq, p.model.vocab, p.model.globalBatch)
    }

    static let tableHeader =
        "  t  p  d  v mbs sp rc do prec sched |  step s  compute  tp-comm   bubble  sharing  dp-comm    optim | tokens/s  TFLOP/s/rank | memory GiB"

    static func row(_ x: PlanPrediction) -> String {
        let l = x.layout
        return String(
            format:
                "%3d%3d%3d%3d%4d %2@ %2@ %2@ %@ %@ | %7.3f %8.3f %8.3f %8.3f %8.3f %8.3f %8.3f | %8.1f %13.3f | %7.2f",
            l.tensor, l.pipeline, l.data, l.virtualStages, l.microBatch, (l.sequenceParallel ? "y" : "-") as NSString,
            (l.recompute ? "y" : "-") as NSString, (l.distributedOptimizer ? "y" : "-") as NSString,
            l.precision.rawValue as NSString, (l.zeroBubble ? "zb-h1" : " 1f1b") as NSString, x.stepSeconds,
            x.compute, x.tensorCommunication, x.bubble, x.sharing, x.dataCommunication, x.optimizer, x.tokensPerSecond,
            x.flopsPerRank / 1e12, x.memory.total / 1_073_741_824)
    }

    /// The exact command that runs `x` (ranks share cores with --oversubscribe when the node has fewer).
    static func command(_ x: PlanPrediction, planner p: Planner, modelArguments: String) -> String {
        let l = x.layout
        let flags = l.trainFlags(globalBatch: p.model.globalBatch, layers: p.model.layers).joined(separator: " ")
        let mpirun =
            l.worldSize > 1
            ? "mpirun -np \(l.worldSize)\(l.worldSize > p.profile.coresPerNode ? " --oversubscribe" : "") " : ""
        return "\(mpirun)megatron train \(modelArguments) \(flags)"
    }

    static func detail(_ x: PlanPrediction, planner p: Planner, modelArguments: String) -> String {
        let m = x.memory, gib = 1_073_741_824.0
        return String(
            format:
                "%@\n  step %.3f s = compute %.3f + tensor-parallel communication %.3f + pipeline bubble %.3f + "
                + "ranks taking turns on the cores %.3f + data-parallel and embedding reductions %.3f + optimizer %.3f\n"
                + "  %.1f tokens/s, %.3f TFLOP/s per rank\n"
                + "  memory of the fullest rank %.2f GiB = parameters %.2f + gradients %.2f + optimizer %.2f + "
                + "activations %.2f + communication buffers %.2f + process baseline %.2f (%@ the usable %.1f GiB)\n  %@",
            x.layout.description as NSString, x.stepSeconds, x.compute, x.tensorCommunication, x.bubble, x.sharing,
            x.dataCommunication, x.optimizer, x.tokensPerSecond, x.flopsPerRank / 1e12, m.total / gib,
            m.parameters / gib, m.gradients / gib, m.optimizer / gib, m.activations / gib, m.communication / gib,
            m.baseline / gib,
            (x.fits ? "fits in" : "does NOT fit in") as NSString, p.usableMemory / gib,
            command(x, planner: p, modelArguments: modelArguments) as NSString)
    }

    static func json(_ x: PlanPrediction, planner p: Planner, modelArguments: String) -> String {
        let l = x.layout
        let fields: [String: Any] = [
            "layout": l.description, "t": l.tensor, "p": l.pipeline, "d": l.data, "v": l.virtualStages,
            "mbs": l.microBatch, "step_seconds": x.stepSeconds, "compute": x.compute,
            "tensor_communication": x.tensorCommunication, "bubble": x.bubble, "sharing": x.sharing,
            "data_communication": x.dataCommunication, "optimizer": x.optimizer, "memory_bytes": x.memory.total,
            "fits": x.fits, "tokens_per_second": x.tokensPerSecond, "flops_per_rank": x.flopsPerRank,
            "command": command(x, planner: p, modelArguments: modelArguments),
        ]
        let data = try? JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys])
        return data.flatMap { String(data: $0, encoding: .utf8) } ?? "{}"
    }
}

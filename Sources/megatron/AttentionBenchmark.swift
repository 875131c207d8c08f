// AttentionBenchmark.swift — `megatron benchmark --attention-only`: the attention core alone at a
// config's shape (its micro-batch, heads / t, sequence length and head width; causal for GPT, every
// key of full-length sequences for BERT), forward and backward, in fp32 and, where the CPU has a
// bf16 kernel, bf16 — each the best of three runs with cold caches after a warm-up (the planner's
// calibration, Calibration.attention). Rates count the (query, key) pairs the mask leaves: all for
// BERT, s(s + 1)/2 per head for GPT; the backward's products are counted as twice the forward's
// (the recomputed QKᵀ not counted). Used by scripts/bench_attention.sh.
import Foundation
import MegatronCore
import Tensor

enum AttentionBenchmark {
    static func run(config cfg: TrainingConfig, threads: Int, json: String?, out: RankLog) throws {
        let model = PlanModel(config: cfg, globalBatch: cfg.microBatchSize, vocab: 1)
        // The config's validation has checked that t divides the heads.
        let t = cfg.tensorModelParallelSize, b = cfg.microBatchSize
        let (s, heads, d) = (model.seq, model.heads / t, model.headDim)
        let pairs = model.isBert ? Double(s * s) : Double(s * (s + 1) / 2)
        let forwardFlops = 4 * Double(b * heads * d) * pairs
        out(
            "attention core: \(model.isBert ? "bidirectional (BERT)" : "causal (GPT)"), seq \(s), micro-batch \(b), "
                + "\(heads) heads of \(d) per rank, \(threads) thread(s)")
        var rows: [[String: Any]] = []
        for m in Calibration.attention(model: model, grid: [(tensor: t, microBatch: b)], bf16: BF16.native) {
            let precision = m.bf16 ? "bf16" : "fp32"
            let fwd = forwardFlops / m.forward / 1e9, bwd = 2 * forwardFlops / m.backward / 1e9
            out(
                String(
                    format: "  %@: forward %.2f ms (%.1f GFLOP/s), backward %.2f ms (%.1f GFLOP/s)",
                    precision as NSString, m.forward * 1e3, fwd, m.backward * 1e3, bwd))
            rows.append([
                "precision": precision, "forward_ms": m.forward * 1e3, "backward_ms": m.backward * 1e3,
                "forward_gflops": fwd, "backward_gflops": bwd,
            ])
        }
        if let json {
            let object: [String: Any] = [
                "model_type": cfg.modelType.rawValue, "seq": s, "micro_batch": b, "heads": heads, "head_dim": d,
                "threads": threads, "attention": rows,
            ]
            try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]).write(
                to: URL(fileURLWithPath: json))
        }
    }
}

// PipelineBalance.swift — pipeline_auto_balance's second step: the split that balances each stage's
// modelled total (PipelineLayout.balanced) is refined by simulating the schedule it will run.
// Stage totals are not the whole story. In the interleaved schedule a rank alternates the forward of
// one chunk with the backward of another, and the last chunk's forward also runs the LM head and its
// backward (fused with the loss), so two splits with the same stage totals differ in bubble: for
// gpt2-124m at p = 2, v = 2, m = 8 the totals' split is chunks 4, 3, 4, 1 and the refined one
// 2, 3, 6, 1, whose measured bubble was 0.101 against 0.115 (README, Speed). The refinement moves
// one layer from any virtual stage to any other while the simulated iteration gets shorter
// (steepest descent, strict gains only, so every rank derives the same split from the same costs).
// Under ZB-H1 the head's weight gradient (GPT's LM head, BERT's masked-LM output layer) runs in W.

extension StageCosts {
    /// One micro-batch's F, B and W on virtual stage `s` (of `stages` virtual stages) holding `layers`
    /// layers: a layer's GEMMs once in each pass, its attention core once forward and twice backward
    /// (no W); the embedding's scatter once forward, twice backward; the head's three products in F (fused
    /// with the loss) — or, when W runs apart, its weight gradient in W.
    public func passCosts(virtualStage s: Int, of stages: Int, layers: Int) -> PassCosts {
        let n = Double(layers), gemm = layer - attention
        var x = PassCosts(forward: n * (gemm + attention), backward: n * (gemm + 2 * attention), weight: n * gemm)
        if s == 0 {
            x.forward += embedding
            x.backward += 2 * embedding
        }
        if s == stages - 1 {
            x.forward += (splitsBackward ? 2 : 3) * head
            x.weight += splitsBackward ? head : 0
        }
        return x
    }
}

extension PipelineLayout {
    /// Virtual stages beyond which the refinement is skipped (its neighbourhood grows as their square).
    static let refinementStageLimit = 16

    /// `start` (layers per virtual stage s = c·p + r) refined against the simulated schedule that
    /// `costs` names; unchanged without one, with p = 1, or beyond `refinementStageLimit` virtual stages.
    static func refined(_ start: [Int], stages p: Int, chunks v: Int, costs: StageCosts) -> [Int] {
        let count = p * v
        guard let m0 = costs.microbatches, m0 >= 1, p > 1, count <= refinementStageLimit else { return start }
        let kind: ScheduleKind = costs.splitsBackward ? .zeroBubbleH1 : v > 1 ? .interleaved : .oneFOneB
        // A few rounds of the steady state decide the split; beyond that more micro-batches only cost
        // time (the interleaved schedule needs a multiple of p; m = p is its all-warm-up special case).
        let cap = max(2 * p, 512 / count / p * p)
        let m = m0 <= cap ? m0 : cap
        guard let schedule = try? PipelineSchedule.make(kind: kind, stages: p, chunks: v, microbatches: m) else {
            return start
        }
        func makespan(_ counts: [Int]) -> Double {
            let report = try? ScheduleSimulator.run(schedule, transfer: 0) { r, c in
                costs.passCosts(virtualStage: c * p + r, of: count, layers: counts[c * p + r])
            }
            return report?.makespan ?? .infinity
        }
        var best = start, bestSpan = makespan(start)
        while true {
            var step: (counts: [Int], span: Double)? = nil
            for from in 0..<count where best[from] > 1 {
                for to in 0..<count where to != from {
                    var counts = best
                    counts[from] -= 1
                    counts[to] += 1
                    let span = makespan(counts)
                    if span < (step?.span ?? bestSpan) * (1 - 1e-9) { step = (counts, span) }
                }
            }
            guard let step else { return best }
            (best, bestSpan) = (step.counts, step.span)
        }
    }
}

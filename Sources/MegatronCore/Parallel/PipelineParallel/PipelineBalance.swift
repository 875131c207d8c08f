// PipelineBalance.swift — pipeline_auto_balance's second step: the split that balances each stage's
// modelled total (PipelineLayout.balanced) is refined by simulating the schedule it will run.
// Stage totals are not the whole story. In the interleaved schedule a rank alternates the forward of
// one chunk with the backward of another, and the last chunk's forward also runs the LM head and its
// backward (fused with the loss), so two splits with the same stage totals differ in bubble: for
// gpt2-124m at p = 2, v = 2, m = 8 the totals' split is chunks 4, 3, 4, 1 and the refined one
// 2, 3, 6, 1, whose measured bubble was 0.101 against 0.115 (README, Speed). The refinement moves
// one layer (sub-layer, with pipeline_balance_unit "sublayer") from any virtual stage to any other while the simulated iteration gets shorter
// (steepest descent, strict gains only, so every rank derives the same split from the same costs).
// Under ZB-H1 the head's weight gradient (GPT's LM head, BERT's masked-LM output layer) runs in W.

extension StageCosts {
    /// One micro-batch's F, B and W on virtual stage `s` (of `stages` virtual stages) holding `layers`
    /// layers: a layer's GEMMs once in each pass, its attention core once forward and twice backward
    /// (no W); the embedding's scatter once forward, twice backward; the head's three products in F (fused
    /// with the loss) — or, when W runs apart, its weight gradient in W.
    public func passCosts(virtualStage s: Int, of stages: Int, layers: Int) -> PassCosts {
        passCosts(virtualStage: s, of: stages, attentionSublayers: layers, mlpSublayers: layers)
    }

    /// The same for a chunk of `a` attention and `b` MLP sub-layers (a layer is one of each): the
    /// attention sub-layer holds the core, the MLP sub-layer is GEMMs only.
    public func passCosts(virtualStage s: Int, of stages: Int, attentionSublayers a: Int, mlpSublayers b: Int)
        -> PassCosts
    {
        let a = Double(a), b = Double(b), mlp = layer - attentionSublayer
        var x = PassCosts(
            forward: a * attentionSublayer + b * mlp, backward: a * (attentionSublayer + attention) + b * mlp,
            weight: a * (attentionSublayer - attention) + b * mlp)
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

    /// `start` (units per virtual stage s = c·p + r: sub-layers with `sublayers`, else layers) refined
    /// against the simulated schedule that `costs` names; unchanged without one, with p = 1, or beyond
    /// `refinementStageLimit` virtual stages.
    static func refined(_ start: [Int], stages p: Int, chunks v: Int, costs: StageCosts, sublayers: Bool) -> [Int] {
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
            // Virtual stages hold units in model order; sub-layer 2l is an attention, 2l + 1 an MLP.
            var starts = [0]
            for n in counts { starts.append(starts.last! + n) }
            let report = try? ScheduleSimulator.run(schedule, transfer: 0) { r, c in
                let s = c * p + r, from = starts[s], to = starts[s + 1]
                return sublayers
                    ? costs.passCosts(
                        virtualStage: s, of: count, attentionSublayers: (to + 1) / 2 - (from + 1) / 2,
                        mlpSublayers: to / 2 - from / 2)
                    : costs.passCosts(virtualStage: s, of: count, layers: counts[s])
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

// PipelineLayoutTests.swift — uneven pipeline splits: Megatron core's first/last-stage and
// embedding/loss-accounting keys give the layer counts Megatron gives, every layer lands on exactly
// one chunk in model order, automatic balance minimises the costliest stage, and every impossible
// request is an error naming its keys.
import MegatronCore
import XCTest

final class PipelineLayoutTests: XCTestCase {
    func layout(_ L: Int, _ p: Int, n: Int? = nil, _ edit: (inout PipelineSplit) -> Void, costs: StageCosts? = nil)
        throws -> PipelineLayout
    {
        var split = PipelineSplit()
        edit(&split)
        return try PipelineLayout(layers: L, stages: p, layersPerVirtualStage: n, split: split, costs: costs)
    }

    /// Every layer once, in model order along the virtual stages; embedding first, head last.
    func assertCovers(_ l: PipelineLayout, file: StaticString = #filePath, line: UInt = #line) {
        var seen: [Int] = []
        for c in 0..<l.chunks {
            for r in 0..<l.stages {
                let plan = l.plan(chunk: c, stage: r)
                seen += plan.layers
                XCTAssertEqual(plan.hasEmbedding, c == 0 && r == 0, file: file, line: line)
                XCTAssertEqual(plan.hasHead, c == l.chunks - 1 && r == l.stages - 1, file: file, line: line)
            }
        }
        XCTAssertEqual(seen, Array(0..<l.layers), file: file, line: line)
    }

    func testFirstAndLastStageLayers() throws {
        // 12 layers, p = 4: first 2 → the other three share 10 (not even, error); first 3 → 3 each.
        let first = try layout(12, 4) { $0.firstStageLayers = 3 }
        XCTAssertEqual(first.stageLayerCounts, [3, 3, 3, 3])
        let both = try layout(12, 4) {
            $0.firstStageLayers = 2; $0.lastStageLayers = 2
        }
        XCTAssertEqual(both.stageLayerCounts, [2, 4, 4, 2])
        assertCovers(both)
        XCTAssertEqual(both.plan(chunk: 0, stage: 1).layers, [2, 3, 4, 5])
        let last = try layout(8, 2) { $0.lastStageLayers = 2 }
        XCTAssertEqual(last.layerCounts, [6, 2])
        assertCovers(last)
        XCTAssertThrowsError(try layout(12, 4) { $0.firstStageLayers = 2 }) {
            XCTAssertTrue(
                "\($0)".contains("10 layers left") && "\($0)".contains("decoder_first_pipeline_num_layers"), "\($0)")
        }
        XCTAssertThrowsError(
            try layout(8, 2) {
                $0.firstStageLayers = 3; $0.lastStageLayers = 4
            }
        ) {
            XCTAssertTrue("\($0)".contains("add up to num_layers 8"), "\($0)")
        }
        XCTAssertThrowsError(try layout(8, 2) { $0.firstStageLayers = 0 }) {
            XCTAssertTrue("\($0)".contains("decoder_first_pipeline_num_layers"), "\($0)")
        }
        XCTAssertThrowsError(try layout(8, 1) { $0.lastStageLayers = 4 }) {
            XCTAssertTrue("\($0)".contains("pipeline_model_parallel_size ≥ 2"), "\($0)")
        }
        XCTAssertThrowsError(try layout(8, 2, n: 2) { $0.firstStageLayers = 2 }) {
            XCTAssertTrue("\($0)".contains("account_for_embedding_in_pipeline_split"), "\($0)")
        }
    }

    func testEmbeddingAndLossAccounting() throws {
        // Megatron core: (L + 1 + 1) / p per stage, the first and last one fewer.
        let both = try layout(14, 4) {
            $0.accountForEmbedding = true; $0.accountForLoss = true
        }
        XCTAssertEqual(both.layerCounts, [3, 4, 4, 3])
        assertCovers(both)
        let embedding = try layout(7, 2) { $0.accountForEmbedding = true }
        XCTAssertEqual(embedding.layerCounts, [3, 4])
        // With virtual stages of 2 counted layers: (10 + 2) / (2 stages · 2) = 3 chunks per stage.
        let virtual = try layout(10, 2, n: 2) {
            $0.accountForEmbedding = true; $0.accountForLoss = true
        }
        XCTAssertEqual(virtual.chunks, 3)
        XCTAssertEqual(virtual.layerCounts, [1, 2, 2, 2, 2, 1])
        assertCovers(virtual)
        XCTAssertThrowsError(try layout(8, 2) { $0.accountForEmbedding = true }) {
            XCTAssertTrue("\($0)".contains("must be a multiple of pipeline_model_parallel_size 2"), "\($0)")
        }
        XCTAssertThrowsError(
            try layout(2, 4) {
                $0.accountForEmbedding = true; $0.accountForLoss = true
            }
        ) {
            XCTAssertTrue("\($0)".contains("would hold no transformer layer"), "\($0)")
        }
        XCTAssertThrowsError(
            try layout(7, 2) {
                $0.accountForEmbedding = true; $0.firstStageLayers = 3
            }
        ) {
            XCTAssertTrue("\($0)".contains("do not combine"), "\($0)")
        }
    }

    func testAutomaticBalanceMinimisesTheCostliestStage() throws {
        // gpt2-124m: a layer ≈ 17.3 M FLOPs per token, the head 2·768·50304 ≈ 77.3 M ≈ 4.5 layers.
        let gpt2 = StageCosts.transformer(hidden: 768, ffn: 3072, seq: 1024, headFlopsPerToken: 2 * 768 * 50304)
        let two = try layout(12, 2, { $0.autoBalance = true }, costs: gpt2)
        XCTAssertEqual(two.layerCounts, [8, 4])
        assertCovers(two)
        // Exhaustive check against every contiguous split for small cases.
        for (L, p) in [(12, 2), (12, 3), (12, 4), (10, 4), (24, 8)] {
            let costs = StageCosts(layer: 1, embedding: 0.3, head: 2.6)
            let best = try layout(L, p, { $0.autoBalance = true }, costs: costs).layerCounts
            func maxCost(_ counts: [Int]) -> Double {
                counts.enumerated().map { r, n in
                    Double(n) + (r == 0 ? costs.embedding : 0) + (r == p - 1 ? costs.head : 0)
                }.max()!
            }
            XCTAssertEqual(best.reduce(0, +), L)
            XCTAssertTrue(best.allSatisfy { $0 >= 1 })
            // Every composition of L into p positive parts.
            func compositions(_ left: Int, _ parts: Int) -> [[Int]] {
                if parts == 1 { return [[left]] }
                return (1...max(1, left - parts + 1)).flatMap { first in
                    compositions(left - first, parts - 1).map { [first] + $0 }
                }
            }
            let optimum = compositions(L, p).map(maxCost).min()!
            XCTAssertEqual(maxCost(best), optimum, accuracy: 1e-12, "L=\(L) p=\(p): \(best)")
        }
        // Equal costs everywhere: an even split when it divides.
        XCTAssertEqual(
            try layout(8, 4, { $0.autoBalance = true }, costs: StageCosts(layer: 1, embedding: 0, head: 0)).layerCounts,
            [2, 2, 2, 2])
        XCTAssertThrowsError(try layout(3, 4) { $0.autoBalance = true }) {
            XCTAssertTrue("\($0)".contains("every chunk needs a layer"), "\($0)")
        }
    }

    func testModelledCostsCountEveryModelsFLOPs() throws {
        // A Llama-style layer — grouped-query attention (8 heads, 2 groups), heads of width 24
        // (kv_channels, h/a = 16), SwiGLU — where the h²-only count was wrong by a third: with every
        // (query, key) pair counted, 3·B·s·(L·layer + head) is Megatron's FLOPs formula.
        var llama = GPTConfig(
            numLayers: 6, hiddenSize: 128, numAttentionHeads: 8, seqLength: 256, maxPositionEmbeddings: 256,
            vocabSize: 1000)
        llama.numQueryGroups = 2; llama.kvChannels = 24; llama.swiglu = true; llama.ffnHiddenSize = 320
        let head = 2 * Double(llama.hiddenSize * llama.paddedVocabSize)
        let costs = StageCosts.transformer(llama, headFlopsPerToken: head, attentionShare: 1)
        let (B, s, L) = (4.0, 256.0, 6.0)
        XCTAssertEqual(
            3 * B * s * (L * costs.layer + costs.head), llama.flopsPerIteration(globalBatch: 4),
            accuracy: 1e-9 * llama.flopsPerIteration(globalBatch: 4))
        // By hand: QKV 2·128·(8 + 4)·24, projection 2·192·128, FC1 2·128·640, FC2 2·320·128, the core 4·256·192.
        let qkv: Double = 2 * 128 * 288, projection: Double = 2 * 192 * 128, core: Double = 4 * 256 * 192
        let fc1: Double = 2 * 128 * 640, fc2: Double = 2 * 320 * 128
        XCTAssertEqual(costs.attentionSublayer, qkv + projection + core)
        XCTAssertEqual(costs.layer - costs.attentionSublayer, fc1 + fc2)
        XCTAssertEqual(costs.attention, core)
        // The multi-head GELU form is the same count.
        let gpt = GPTConfig(
            numLayers: 12, hiddenSize: 768, numAttentionHeads: 12, seqLength: 1024, maxPositionEmbeddings: 1024,
            vocabSize: 50257)
        XCTAssertEqual(
            StageCosts.transformer(gpt, headFlopsPerToken: 5, attentionShare: 1),
            StageCosts.transformer(hidden: 768, ffn: 3072, seq: 1024, headFlopsPerToken: 5))
        // The pairs the kernels compute: all (bidirectional), the causal triangle, and with a window of
        // 1 earlier key 1 + 2 + 2 + 2 of 16.
        XCTAssertEqual(StageCosts.attentionShare(seq: 4, causal: false, window: nil), 1)
        XCTAssertEqual(StageCosts.attentionShare(seq: 4, causal: true, window: nil), 10.0 / 16)
        XCTAssertEqual(StageCosts.attentionShare(seq: 4, causal: true, window: 1), 7.0 / 16)
        XCTAssertEqual(StageCosts.attentionShare(seq: 4, causal: true, window: 3), 10.0 / 16)
        let causal = StageCosts.transformer(gpt, headFlopsPerToken: 5, attentionShare: 1025.0 / 2048)
        let causalCore: Double = 4 * 1024 * 768 * 1025 / 2048, gemms: Double = 8 * 768 * 768 + 4 * 768 * 3072
        XCTAssertEqual(causal.attention, causalCore)
        XCTAssertEqual(causal.layer, gemms + causalCore)
    }

    func testAutomaticBalanceWithVirtualStages() throws {
        // gpt2-124m at p = 2 with chunks of 3 layers on average (v = 2): stage totals 8 + 4 as for
        // v = 1; stage 0's chunks 4 + 4, stage 1's 3 + 1 (its last chunk also runs the head).
        let gpt2 = StageCosts.transformer(hidden: 768, ffn: 3072, seq: 1024, headFlopsPerToken: 2 * 768 * 50304)
        let l = try layout(12, 2, n: 3, { $0.autoBalance = true }, costs: gpt2)
        XCTAssertEqual(l.chunks, 2)
        XCTAssertEqual(l.layerCounts, [4, 3, 4, 1])
        XCTAssertEqual(l.stageLayerCounts, [8, 4])
        assertCovers(l)
        // Every chunk keeps a layer even when the head outweighs everything else.
        let heavy = try layout(
            8, 4, n: 1, { $0.autoBalance = true }, costs: StageCosts(layer: 1, embedding: 0, head: 50))
        XCTAssertEqual(heavy.chunks, 2)
        XCTAssertTrue(heavy.layerCounts.allSatisfy { $0 >= 1 }, "\(heavy.layerCounts)")
        assertCovers(heavy)
        XCTAssertThrowsError(try layout(10, 2, n: 3) { $0.autoBalance = true }) {
            XCTAssertTrue("\($0)".contains("must be whole"), "\($0)")
        }
    }

    func testAutomaticBalanceRefinedBySimulatingTheSchedule() throws {
        // gpt2-124m, m = 8. With the schedule known, the stage totals' split is refined by simulation:
        // interleaved (v = 2) moves layers from stage 0's first chunk to its second, which the
        // simulator finds at least 1% shorter (the last chunk's forward carries the head).
        var gpt2 = StageCosts.transformer(hidden: 768, ffn: 3072, seq: 1024, headFlopsPerToken: 2 * 768 * 50304)
        gpt2.microbatches = 8
        func span(_ counts: [Int], p: Int, v: Int, _ costs: StageCosts) throws -> Double {
            let kind: ScheduleKind = costs.splitsBackward ? .zeroBubbleH1 : v > 1 ? .interleaved : .oneFOneB
            let s = try PipelineSchedule.make(kind: kind, stages: p, chunks: v, microbatches: 8)
            return try ScheduleSimulator.run(s, transfer: 0) { r, c in
                costs.passCosts(virtualStage: c * p + r, of: p * v, layers: counts[c * p + r])
            }.makespan
        }
        // Each pass by hand: layer 10 (attention 2), embedding 1, head 5; 3 layers.
        var unit = StageCosts(layer: 10, embedding: 1, head: 5)
        unit.attention = 2
        XCTAssertEqual(
            unit.passCosts(virtualStage: 0, of: 2, layers: 3), PassCosts(forward: 31, backward: 38, weight: 24))
        XCTAssertEqual(
            unit.passCosts(virtualStage: 1, of: 2, layers: 3), PassCosts(forward: 45, backward: 36, weight: 24))
        unit.splitsBackward = true
        XCTAssertEqual(
            unit.passCosts(virtualStage: 1, of: 2, layers: 3), PassCosts(forward: 40, backward: 36, weight: 29))
        let refined = try layout(12, 2, n: 3, { $0.autoBalance = true }, costs: gpt2).layerCounts
        XCTAssertEqual(refined.reduce(0, +), 12)
        XCTAssertTrue(refined.allSatisfy { $0 >= 1 }, "\(refined)")
        let best = try span(refined, p: 2, v: 2, gpt2)
        XCTAssertLessThan(best, try span([4, 3, 4, 1], p: 2, v: 2, gpt2) * 0.99, "\(refined)")
        // No single move of a layer between virtual stages shortens it further.
        for from in 0..<4 where refined[from] > 1 {
            for to in 0..<4 where to != from {
                var moved = refined
                moved[from] -= 1
                moved[to] += 1
                XCTAssertGreaterThanOrEqual(try span(moved, p: 2, v: 2, gpt2), best * (1 - 1e-9), "\(moved)")
            }
        }
        // 1F1B and ZB-H1 keep the totals' split, which no single move of a layer shortens.
        for zeroBubble in [false, true] {
            var costs = gpt2
            costs.splitsBackward = zeroBubble
            let l = try layout(12, 2, { $0.autoBalance = true }, costs: costs)
            XCTAssertEqual(l.layerCounts, [8, 4], "zero bubble: \(zeroBubble)")
            let here = try span(l.layerCounts, p: 2, v: 1, costs)
            for moved in [[7, 5], [9, 3]] {
                XCTAssertGreaterThanOrEqual(try span(moved, p: 2, v: 1, costs), here, "\(moved)")
            }
        }
        // Without a schedule (validation, conversion) the totals' split stands.
        XCTAssertEqual(
            try layout(
                12, 2, n: 3, { $0.autoBalance = true },
                costs: StageCosts.transformer(
                    hidden: 768, ffn: 3072, seq: 1024, headFlopsPerToken: 2 * 768 * 50304)
            ).layerCounts, [4, 3, 4, 1])
    }

    func testEvenSplitIsUnchanged() throws {
        let even = try PipelineLayout(layers: 8, stages: 2, layersPerVirtualStage: 2)
        XCTAssertEqual(even.layerCounts, [2, 2, 2, 2])
        XCTAssertEqual(even.plan(chunk: 1, stage: 0).layers, [4, 5])
        assertCovers(even)
        XCTAssertThrowsError(try PipelineLayout(layers: 7, stages: 2, layersPerVirtualStage: nil)) {
            XCTAssertTrue("\($0)".contains("decoder_first_pipeline_num_layers"), "\($0)")
        }
    }

    /// pipeline_balance_unit "sublayer": the balance places attention and MLP sub-layers, so a stage
    /// boundary may cut a layer; every sub-layer is on exactly one chunk, in model order.
    func testSublayerBalanceCutsALayerBetweenItsAttentionAndItsMLP() throws {
        // Measured-like costs: the head weighs 4.8 layers, the attention sub-layer 0.45 of a layer.
        var costs = StageCosts(layer: 1, embedding: 0.01, head: 4.8)
        costs.attentionSublayer = 0.45
        XCTAssertEqual(try layout(12, 2, { $0.autoBalance = true }, costs: costs).layerCounts, [8, 4])  // 8.01 | 8.8
        let cut = try layout(
            12, 2,
            {
                $0.autoBalance = true; $0.sublayers = true
            }, costs: costs)
        XCTAssertEqual(cut.sublayerCounts, [17, 7])  // 8.46 | 0.55 + 3 + 4.8 = 8.35
        XCTAssertTrue(cut.cutsLayers)
        XCTAssertEqual(cut.stageLayerCounts, [8.5, 3.5])
        let first = cut.plan(chunk: 0, stage: 0), last = cut.plan(chunk: 0, stage: 1)
        XCTAssertEqual(first.layers, Array(0...8))
        XCTAssertEqual([first.part(0), first.part(7), first.part(8)], [.whole, .whole, .attention])
        XCTAssertEqual(last.layers, Array(8...11))
        XCTAssertEqual([last.part(0), last.part(1), last.part(3)], [.mlp, .whole, .whole])
        assertCoversSublayers(cut)

        func unitCost(_ u: Int) -> Double {
            u % 2 == 0 ? costs.attentionSublayer : costs.layer - costs.attentionSublayer
        }
        for (L, p) in [(6, 2), (6, 3), (5, 4), (8, 4)] {
            let best = try layout(
                L, p,
                {
                    $0.autoBalance = true; $0.sublayers = true
                }, costs: costs)
            assertCoversSublayers(best)
            func maxCost(_ counts: [Int]) -> Double {
                var start = 0
                return counts.enumerated().map { r, n in
                    defer { start += n }
                    return (start..<(start + n)).reduce(0.0) { $0 + unitCost($1) } + (r == 0 ? costs.embedding : 0)
                        + (r == p - 1 ? costs.head : 0)
                }.max()!
            }
            func compositions(_ left: Int, _ parts: Int) -> [[Int]] {
                if parts == 1 { return [[left]] }
                return (1...max(1, left - parts + 1)).flatMap { first in
                    compositions(left - first, parts - 1).map { [first] + $0 }
                }
            }
            let optimum = compositions(2 * L, p).map(maxCost).min()!
            XCTAssertEqual(
                maxCost(best.sublayerCounts), optimum, accuracy: 1e-12, "L=\(L) p=\(p): \(best.sublayerCounts)")
        }
        // With virtual stages and a schedule to refine against, every sub-layer still once.
        costs.microbatches = 8
        assertCoversSublayers(
            try layout(
                12, 2, n: 3,
                {
                    $0.autoBalance = true; $0.sublayers = true
                }, costs: costs))
        costs.splitsBackward = true
        assertCoversSublayers(
            try layout(
                12, 2,
                {
                    $0.autoBalance = true; $0.sublayers = true
                }, costs: costs))
        // Whole layers stay the default; sub-layers without the automatic balance are refused by name.
        XCTAssertFalse(try layout(12, 2, { $0.autoBalance = true }, costs: costs).cutsLayers)
        XCTAssertThrowsError(try layout(12, 2) { $0.sublayers = true }) {
            XCTAssertTrue(
                "\($0)".contains("pipeline_balance_unit") && "\($0)".contains("pipeline_auto_balance"), "\($0)")
        }
    }

    /// Every sub-layer (2l: layer l's attention, 2l + 1: its MLP) on exactly one chunk, in model order.
    func assertCoversSublayers(_ l: PipelineLayout, file: StaticString = #filePath, line: UInt = #line) {
        var seen: [Int] = []
        for c in 0..<l.chunks {
            for r in 0..<l.stages {
                let plan = l.plan(chunk: c, stage: r)
                for (i, layer) in plan.layers.enumerated() {
                    switch plan.part(i) {
                    case .whole: seen += [2 * layer, 2 * layer + 1]
                    case .attention: seen.append(2 * layer)
                    case .mlp: seen.append(2 * layer + 1)
                    }
                }
                XCTAssertEqual(plan.hasEmbedding, c == 0 && r == 0, file: file, line: line)
                XCTAssertEqual(plan.hasHead, c == l.chunks - 1 && r == l.stages - 1, file: file, line: line)
            }
        }
        XCTAssertEqual(seen, Array(0..<(2 * l.layers)), file: file, line: line)
    }
}

// PlannerTests.swift — `megatron plan`'s formulas against hand-computed cases: the parameter count
// of a stage against the real parameter table (GPT and BERT), the activation arena against real
// activations (BERT's inputs and heads included), BERT's masked-LM head on the masked rows, the
// ring and fitted collective times, scatter/gather's all-gathers, memory per rank, the simulator
// with per-stage costs; a measured LM-head row pass replaces its three memory passes; profiles
// from before BERT hold causal attention; the compact layout form round-trips and names bad keys;
// and the enumeration gives exactly the layouts the training config's validation accepts (none
// invalid, every valid one considered).
import Foundation
import MegatronCore
import Tensor
import XCTest

final class PlannerTests: XCTestCase {
    /// A 4-layer GPT (hidden 64, 4 heads, seq 32, vocabulary 500) with global batch 8.
    func model(globalBatch: Int = 8) -> PlanModel {
        var c = TrainingConfig()
        (c.numLayers, c.hiddenSize, c.numAttentionHeads, c.seqLength) = (4, 64, 4, 32)
        c.maxPositionEmbeddings = 40
        c.microBatchSize = 1
        return PlanModel(config: c, globalBatch: globalBatch, vocab: 500)
    }

    /// A machine where every GEMM runs at 1 GFLOP/s, memory streams at 1 GB/s, and each link moves
    /// 1 GB/s after 1 µs; 2 cores, 8 ranks per node, 1 GiB per rank.
    func profile() -> HardwareProfile {
        var p = HardwareProfile(
            trainer: "this", name: "test", coresPerNode: 2, ranksPerNode: 8, memoryPerRank: 1_073_741_824,
            memoryBandwidth: [.init(threads: 1, value: 1e9)],
            links: [.init(scope: "intra", op: "p2p", ranks: 2, latency: 1e-6, bandwidth: 1e9)])
        p.gemmModel = HardwareProfile.GEMMModel(peakFP32: 1e9, peakBF16: 2e9, efficiency: 1, halfSize: 0)
        return p
    }

    func testStageParametersEqualTheParameterTable() {
        let m = model()
        for t in [1, 2, 4] {
            var l = PlanLayout()
            (l.tensor, l.pipeline) = (t, 2)
            let gpt = m.gptConfig(tensor: t)
            let stages: [StagePlan] = [
                StagePlan(layers: [0, 1], hasEmbedding: true, hasHead: false),
                StagePlan(layers: [2, 3], hasEmbedding: false, hasHead: true),
            ]
            for (r, stage) in stages.enumerated() {
                let (table, _) = GPTSlots.declare(config: gpt, tensorRank: 0, tensorSize: t, stage: stage)
                let planned = m.stageParameters(l, stage: r, layerCount: 2)
                // The table pads each tensor to 16 floats: at most 15 per tensor more.
                XCTAssertLessThanOrEqual(planned, table.totalCount, "t=\(t) stage \(r)")
                XCTAssertLessThan(table.totalCount - planned, 16 * 30, "t=\(t) stage \(r)")
            }
        }
        // Hand count, t = 1, whole model: layer 12h² + 13h = 12·4096 + 832 = 49,984; embeddings
        // 512·64 + 40·64 = 35,328 (vocabulary 500 padded to 512); final norm 128.
        var whole = PlanLayout()
        whole.pipeline = 1
        XCTAssertEqual(m.layerParameters(tensor: 1), 49_984)
        XCTAssertEqual(m.stageParameters(whole, stage: 0, layerCount: 4), 4 * 49_984 + 35_328 + 128)
    }

    /// The stages of a 4-layer model at p = 1 or 2 (two layers each).
    func fourLayerStages(_ p: Int) -> [StagePlan] {
        p == 1
            ? [StagePlan.whole(layers: 4)]
            : [
                StagePlan(layers: [0, 1], hasEmbedding: true, hasHead: false),
                StagePlan(layers: [2, 3], hasEmbedding: false, hasHead: true),
            ]
    }

    /// GPT with Megatron's Llama-style options, each alone and all together: the planner's count per
    /// stage and tensor rank equals the parameter table's (no position table under rope, SwiGLU's
    /// wider FC1, no biases, RMSNorm's weight only, the untied head on the last stage even at p = 1,
    /// grouped-query attention's narrower QKV, qk_layernorm's norms whole on every tensor rank).
    func testLlamaOptionsStageParametersEqualTheParameterTable() {
        let variants: [(String, (inout TrainingConfig) -> Void)] = [
            ("rope", { $0.positionEmbeddingType = .rope }), ("rmsnorm", { $0.normalization = .rmsNorm }),
            ("swiglu", { $0.swiglu = true }), ("nobias", { $0.addBiasLinear = false }),
            ("untied", { $0.untieEmbeddingsAndOutputWeights = true }), ("qknorm", { $0.qkLayernorm = true }),
            (
                "qknorm-rms",
                {
                    $0.qkLayernorm = true; $0.normalization = .rmsNorm
                }
            ),
            (
                "gqa",
                {
                    $0.groupQueryAttention = true; $0.numQueryGroups = 2
                }
            ),
            (
                "all",
                {
                    $0.positionEmbeddingType = .rope; $0.normalization = .rmsNorm; $0.swiglu = true
                    $0.addBiasLinear = false; $0.untieEmbeddingsAndOutputWeights = true
                    $0.groupQueryAttention = true; $0.numQueryGroups = 2
                }
            ),
            (
                "kv_channels with qk_layernorm (Qwen 3's heads)",
                {
                    $0.positionEmbeddingType = .rope; $0.qkLayernorm = true; $0.kvChannels = 24
                    $0.groupQueryAttention = true; $0.numQueryGroups = 2
                }
            ),
        ]
        for (name, apply) in variants {
            var c = model().config
            c.ffnHiddenSize = nil
            apply(&c)
            let m = PlanModel(config: c, globalBatch: 8, vocab: 500)
            for t in [1, 2] {
                for p in [1, 2] {
                    var l = PlanLayout()
                    (l.tensor, l.pipeline) = (t, p)
                    for (r, stage) in fourLayerStages(p).enumerated() {
                        let (table, _) = GPTSlots.declare(
                            config: m.gptConfig(tensor: t), tensorRank: 0, tensorSize: t, stage: stage)
                        XCTAssertEqual(
                            m.stageParameters(l, stage: r, layerCount: 4 / p), table.specs.reduce(0) { $0 + $1.count },
                            "\(name), t=\(t), p=\(p), stage \(r)")
                    }
                }
            }
        }
    }

    /// The same sizes as a BERT: pre-LN or post-LN, with or without the binary head.
    func bertModel(postLN: Bool = false, binaryHead: Bool = true) -> PlanModel {
        var c = model().config
        c.modelType = .bert
        c.layernormArrangement = postLN ? .postLN : .preLN
        c.bertBinaryHead = binaryHead
        return PlanModel(config: c, globalBatch: 8, vocab: 500)
    }

    func testBertStageParametersEqualTheParameterTable() {
        for (postLN, binaryHead) in [(false, true), (true, true), (false, false)] {
            let m = bertModel(postLN: postLN, binaryHead: binaryHead)
            for t in [1, 2] {
                let bert = BertConfig(transformer: m.gptConfig(tensor: t), binaryHead: binaryHead)
                XCTAssertEqual(bert.transformer.postLayerNorm, postLN)
                for p in [1, 2] {
                    var l = PlanLayout()
                    (l.tensor, l.pipeline) = (t, p)
                    for (r, stage) in fourLayerStages(p).enumerated() {
                        let (table, _) = BertSlots.declare(config: bert, tensorRank: 0, tensorSize: t, stage: stage)
                        XCTAssertEqual(
                            m.stageParameters(l, stage: r, layerCount: 4 / p), table.specs.reduce(0) { $0 + $1.count },
                            "post-LN \(postLN), binary head \(binaryHead), t=\(t), p=\(p), stage \(r)")
                    }
                }
            }
        }
        // Hand count, pre-LN with the binary head, t = 1, whole model: the GPT's 4·49,984 + 35,328 +
        // 128, token types 2·64, masked-LM head 64² + 64 + 128 + 512, pooler 64² + 64, classifier 130.
        var whole = PlanLayout()
        whole.pipeline = 1
        XCTAssertEqual(
            bertModel().stageParameters(whole, stage: 0, layerCount: 4),
            4 * 49_984 + 35_328 + 128 + 128 + (4096 + 64 + 128 + 512) + (4096 + 64) + 130)
        // Each of 8 full-length sequences of 32 masks round(0.15 · 29) = 4 of its 29 non-special tokens.
        XCTAssertEqual(bertModel().maskedRows(microBatch: 8), 32)
    }

    func testBertActivationsAreTheModelsOwnSize() throws {
        // One rank, micro-batch 2, no recomputation: one activation set holding every layer and the
        // heads. BertActivations.bytes counts the arenas, the token types and labels; beside them live
        // the core's tokens, targets and row losses (16 bytes a row) and the heads' row losses and
        // arg-max flags (9 bytes a row).
        for (postLN, binaryHead) in [(false, true), (true, false)] {
            let m = bertModel(postLN: postLN, binaryHead: binaryHead)
            let real = BertModel(
                config: BertConfig(transformer: m.gptConfig(tensor: 1), binaryHead: binaryHead), microBatch: 2,
                threads: profile().threads(ranksOnNode: 1))
            let n = 32 * 2
            var l = PlanLayout()
            l.microBatch = 2
            let x = try Planner(model: m, profile: profile(), worldSize: 1).predict(l)
            XCTAssertEqual(x.memory.activations, Double(real.makeActivations().bytes + (16 + 9) * n))
        }
    }

    func testBertHeadRunsOnTheMaskedRowsOnly() throws {
        // One rank, micro-batch 8 (n = 256 rows, k = 32 masked), every GEMM at 1 GFLOP/s and memory at
        // 1 GB/s, attention not measured (the same GEMMs for both): the GPT's head computes logits
        // [256, 512] three ways with 3 passes of 4 bytes over them; the BERT's computes [32, 512] the
        // same way, plus its dense 64 × 64 layer's three products and 16 passes over [32, 64].
        var l = PlanLayout()
        l.microBatch = 8
        let gpt = try Planner(model: model(), profile: profile(), worldSize: 1).predict(l)
        let bert = try Planner(model: bertModel(), profile: profile(), worldSize: 1).predict(l)
        let (n, k, h, V) = (256.0, 32.0, 64.0, 512.0)
        let gptHead = 3 * 2 * n * h * V / 1e9 + 12 * n * V / 1e9
        let bertHead = 3 * 2 * k * h * V / 1e9 + 12 * k * V / 1e9 + 3 * 2 * k * h * h / 1e9 + 64 * k * h / 1e9
        XCTAssertEqual(gpt.compute - bert.compute, gptHead - bertHead, accuracy: 1e-12)
    }

    func testMeasuredLogitRowPassReplacesThreeMemoryPasses() throws {
        // The GPT head of testBertHeadRunsOnTheMaskedRowsOnly: [256, 512] logits, 12 bytes per element
        // over 1 GB/s without a measurement; with the row pass measured at 1e8 elements/s (2 threads,
        // this profile's one rank; fp32; width 500 — the nearest to 512), 256·512 / 1e8 s instead.
        // The bf16 entry is not used by an fp32 layout, and a profile written back keeps the entries.
        var l = PlanLayout()
        l.microBatch = 8
        let before = try Planner(model: model(), profile: profile(), worldSize: 1).predict(l)
        var measured = profile()
        measured.logitRows = [
            .init(width: 500, threads: 2, bf16: false, elementsPerSecond: 1e8),
            .init(width: 512, threads: 2, bf16: true, elementsPerSecond: 1),
            .init(width: 5000, threads: 2, bf16: false, elementsPerSecond: 1),
        ]
        let after = try Planner(model: model(), profile: measured, worldSize: 1).predict(l)
        let elements = 256.0 * 512
        XCTAssertEqual(before.compute - after.compute, 12 * elements / 1e9 - elements / 1e8, accuracy: 1e-12)
        let again = try JSONDecoder().decode(HardwareProfile.self, from: JSONEncoder().encode(measured))
        XCTAssertEqual(again.logitRows.map(\.width), [500, 512, 5000])
        XCTAssertEqual(again.logitRowSeconds(elements: 1e8, width: 512, threads: 2, bf16: false), 1)
        XCTAssertNil(again.logitRowSeconds(elements: 1e8, width: 512, threads: 1, bf16: false))
    }

    func testProfilesWithoutTheMaskKindHoldCausalAttention() throws {
        // A profile written before BERT was planned: its attention entry has no "causal"; it times GPT's
        // causal core and is not used for BERT's bidirectional one.
        let json = """
            {"trainer": "this", "name": "old", "coresPerNode": 2, "ranksPerNode": 2, "memoryPerRank": 1e9,
             "memoryBandwidth": [{"threads": 1, "value": 1e9}],
             "links": [{"scope": "intra", "op": "p2p", "ranks": 2, "latency": 0, "bandwidth": 1e9}],
             "gemmModel": {"peakFP32": 1e9, "peakBF16": 1e9, "efficiency": 1, "halfSize": 0},
             "attention": [{"seq": 32, "batch": 1, "heads": 4, "headDim": 16, "threads": 1, "bf16": false,
                            "forward": 0.5, "backward": 1.5}]}
            """
        let p = try JSONDecoder().decode(HardwareProfile.self, from: Data(json.utf8))
        XCTAssertEqual(p.attention.first?.causal, true)
        let causal = p.attentionSeconds(seq: 32, batch: 2, heads: 4, headDim: 16, threads: 1, bf16: false)
        XCTAssertEqual(causal?.forward, 1.0)
        XCTAssertEqual(causal?.backward, 3.0)
        XCTAssertNil(
            p.attentionSeconds(seq: 32, batch: 2, heads: 4, headDim: 16, threads: 1, bf16: false, causal: false))
        // Written back, the field is there.
        let again = try JSONDecoder().decode(HardwareProfile.self, from: JSONEncoder().encode(p))
        XCTAssertEqual(again.attention.first?.causal, true)
    }

    func testArenaLayoutIsTheActivationsOwnSize() {
        let gpt = model().gptConfig(tensor: 1)
        for (b, sets) in [(1, 4), (2, 1)] {
            let plan: RecomputePlan =
                sets == 1 ? .make(granularity: .full, method: .uniform, numLayers: 4, layers: 4) : .none(layers: 4)
            let acts = TransformerActivations(config: gpt, microBatch: b, threads: 1, recompute: plan)
            let layout = TransformerArenaLayout(
                config: gpt, microBatch: b, threads: 1, tensorParallel: .single, layers: 4, sets: plan.sets)
            XCTAssertEqual(layout.total * 4, acts.bytes)
        }
    }

    /// With grouped-query attention each layer holds QKV at its own width, (a + 2g)·d, not 3h: 4 heads of
    /// 16 in 2 groups hold 128 columns where multi-head attention holds 192, in fp32 and (16-bit) bf16.
    func testGroupedQueryLayersHoldQKVAtItsOwnWidth() {
        var grouped = model().gptConfig(tensor: 1)
        grouped.numQueryGroups = 2
        XCTAssertEqual(grouped.qkvWidth, 128)
        for (precision, bytes) in [(Precision.fp32, 4), (.bf16, 2)] {
            func layerBytes(_ c: GPTConfig) -> Int {
                TransformerArenaLayout(
                    config: c, microBatch: 2, threads: 1, tensorParallel: .single, layers: 4, sets: 4,
                    precision: precision
                ).layerBytes
            }
            XCTAssertEqual(
                layerBytes(model().gptConfig(tensor: 1)) - layerBytes(grouped), 4 * 64 * (192 - 128) * bytes,
                "\(precision)")
        }
    }

    func testCollectiveTimes() {
        var p = profile()
        // Ring all-reduce over 4 ranks of 4 MB on the point-to-point fit: 2·3 steps of 1 MB.
        XCTAssertEqual(
            p.collectiveSeconds("allreduce", bytes: 4e6, ranks: 4, crossesNodes: false), 6 * (1e-6 + 1e-3),
            accuracy: 1e-12)
        XCTAssertEqual(
            p.collectiveSeconds("allgather", bytes: 4e6, ranks: 4, crossesNodes: false), 3 * (1e-6 + 1e-3),
            accuracy: 1e-12)
        XCTAssertEqual(p.collectiveSeconds("allreduce", bytes: 4e6, ranks: 1, crossesNodes: false), 0)
        // A measured fit for the op and group size is used as it is.
        p.links.append(.init(scope: "intra", op: "allreduce", ranks: 4, latency: 5e-6, bandwidth: 2e9))
        XCTAssertEqual(
            p.collectiveSeconds("allreduce", bytes: 4e6, ranks: 4, crossesNodes: false), 5e-6 + 2e-3, accuracy: 1e-12)
        // Across nodes with only an intra-node fit: the fit that exists.
        XCTAssertEqual(
            p.collectiveSeconds("p2p", bytes: 1e6, ranks: 2, crossesNodes: true), 1e-6 + 1e-3, accuracy: 1e-12)
    }

    func testGroupsThatStraddleTwoNodesCrossNodes() throws {
        let cluster = try Self.paperCluster()  // 8 ranks a node
        // (size, stride, world, crosses): tensor groups of 8 fill nodes, of 6 leave [6, 12) across two;
        // data-parallel groups 8 apart span nodes; a pipeline of 4 stages 1 apart stays in a node, of
        // 16 does not; the tied-embedding pair (first and last stage) of a 2-node pipeline crosses.
        for (size, stride, world, crosses) in [
            (8, 1, 64, false), (6, 1, 12, true), (6, 1, 6, false), (4, 1, 64, false), (3, 1, 24, true),
            (4, 2, 8, false), (32, 8, 256, true), (4, 1, 4, false), (16, 1, 16, true), (2, 8, 16, true),
            (1, 1, 64, false),
        ] {
            XCTAssertEqual(
                cluster.crossesNodes(size: size, stride: stride, world: world), crosses, "\(size) \(stride) \(world)")
        }
        // At t = 6 the tensor-parallel all-reduces run at the cross-node rate: 145.6B of Table 1.
        let planner = try Self.paperPlanner(layers: 80, hidden: 12288, heads: 96, globalBatch: 2304, worldSize: 1536)
        var l = PlanLayout()
        (l.tensor, l.pipeline, l.data, l.recompute, l.precision) = (6, 8, 32, true, .fp16)
        let x = try planner.predict(l)
        let bytes = 2.0 * 2048 * 12288
        let inter = cluster.collectiveSeconds("allreduce", bytes: bytes, ranks: 6, crossesNodes: true, linksPerNode: 6)
        // Per micro-batch: 10 layers × (4 passes' all-reduces + 2 recomputed) + the LM head's one.
        let perMicroBatch = 10 * 6 * inter + inter
        XCTAssertEqual(x.tensorCommunication, 2304 / 32 * perMicroBatch, accuracy: x.tensorCommunication * 0.02)
    }

    func testScatterGatherAllGathersEveryReceivedBoundaryTensor() throws {
        // t = 2 × p = 2, 8 micro-batches of one sequence: each stage receives one boundary tensor per
        // micro-batch (the first its gradient, the last its input), [32, 1, 64] fp32, and under
        // scatter/gather all-gathers it over its tensor pair: one ring step of half its 8,192 bytes.
        var l = PlanLayout()
        (l.tensor, l.pipeline) = (2, 2)
        let m = model()
        var off = m.config
        off.scatterGatherTensorsInPipeline = false
        let with = try Planner(model: m, profile: profile(), worldSize: 4).predict(l)
        let without = try Planner(
            model: PlanModel(config: off, globalBatch: 8, vocab: 500), profile: profile(), worldSize: 4
        ).predict(l)
        let gather = 1e-6 + 4096 / 1e9
        XCTAssertEqual(with.tensorCommunication - without.tensorCommunication, 8 * gather, accuracy: 1e-12)
        // With sequence parallelism the boundary tensor is already each rank's rows: nothing to gather.
        l.sequenceParallel = true
        let sp = try Planner(model: m, profile: profile(), worldSize: 4).predict(l)
        let spWithout = try Planner(
            model: PlanModel(config: off, globalBatch: 8, vocab: 500), profile: profile(), worldSize: 4
        ).predict(l)
        XCTAssertEqual(sp.tensorCommunication, spWithout.tensorCommunication, accuracy: 1e-15)
    }

    func testMemoryOfOneRankByHand() throws {
        let m = model()
        let planner = Planner(model: m, profile: profile(), worldSize: 2)
        var l = PlanLayout()
        (l.data, l.microBatch) = (2, 2)
        let x = try planner.predict(l)
        let params = Double(4 * 49_984 + 35_328 + 128)
        XCTAssertEqual(x.memory.parameters, 4 * params)
        XCTAssertEqual(x.memory.gradients, 4 * params)
        XCTAssertEqual(x.memory.optimizer, 8 * params)
        let arena = TransformerArenaLayout(
            config: m.gptConfig(tensor: 1), microBatch: 2, threads: 1, tensorParallel: .single, layers: 4, sets: 4)
        XCTAssertEqual(x.memory.activations, Double(arena.total * 4 + 64 * 16))
        l.distributedOptimizer = true
        XCTAssertEqual(try planner.predict(l).memory.optimizer, 12 * (params / 2).rounded(.up))
        // fp16 runs SGEMM on a rounded copy of the weights (ModelWeights): 4 more bytes a parameter.
        l.precision = .fp16
        XCTAssertEqual(try planner.predict(l).memory.parameters, 8 * params)
    }

    func testDataParallelReductionWithinANodeGoesThroughSharedMemory() throws {
        // d = 2 on one node: no MPI all-reduce; each replica reads its piece of both arenas and writes
        // the sums into both (2 · 4 bytes per parameter at 1 GB/s), and its resident set counts the
        // half of the other arena it touches. Across nodes (1 rank per node) the all-reduce is back.
        let m = model()
        var l = PlanLayout()
        (l.data, l.microBatch) = (2, 2)
        let params = Double(4 * 49_984 + 35_328 + 128)
        let local = try Planner(model: m, profile: profile(), worldSize: 2).predict(l)
        XCTAssertEqual(local.dataCommunication, 8 * params / 1e9, accuracy: 1e-12)
        XCTAssertEqual(local.memory.communication, 4 * params / 2)
        let apart = try Planner(model: m, profile: profile(), worldSize: 2, ranksPerNode: 1).predict(l)
        XCTAssertFalse(profile().reducesThroughSharedMemory(PlanLayout()), "d = 1 has nothing to reduce")
        XCTAssertGreaterThan(apart.dataCommunication, 2 * 4 * params / 1e9 / 2, "the ring moves 2(d−1)/d of the bytes")
        XCTAssertEqual(apart.memory.communication, 0, "no measured MPI buffer factor in this profile")
    }

    func testStepTimeOfOneRankByHand() throws {
        // One rank, micro-batch 8 (m = 1): the step is F + B + W of the whole model plus the optimizer.
        let m = model()
        let planner = Planner(model: m, profile: profile(), worldSize: 1)
        var l = PlanLayout()
        l.microBatch = 8
        let x = try planner.predict(l)
        let n = 32.0 * 8, h = 64.0, f = 256.0, V = 512.0
        let layerGEMMs = 3 * 2 * n * (3 * h * h + h * h + 2 * h * f) / 1e9  // forward, dgrad, wgrad
        let perHead: Double = 2 * 2 * 32 * 32 * 16  // scores and context of one head: 2 GEMMs of 2·s·s·d
        let attention: Double = 32 * perHead * 3 / 1e9  // 8 sequences × 4 heads, forward + 2× back
        XCTAssertGreaterThan(x.compute, 4 * (layerGEMMs + attention) + 3 * 2 * n * h * V / 1e9)
        XCTAssertEqual(x.bubble, 0, accuracy: 1e-12)
        XCTAssertEqual(x.stepSeconds, x.compute + x.optimizer, accuracy: 1e-9)
    }

    func testSlidingWindowScalesTheAttentionCore() throws {
        // seq 32, window "7,0": each query sees min(i + 1, 8) keys, 36 + 24·8 = 228 of the causal 528
        // pairs. One rank, micro-batch 8, attention not measured: per layer 32 heads' scores and
        // context (2 GEMMs of 2·32·32·16 flops, twice that back) and 6 + 12 passes of 2 bytes over the
        // 32 × 32 scores, at 1 GFLOP/s and 1 GB/s, over 4 layers.
        var l = PlanLayout()
        l.microBatch = 8
        var windowed = model()
        var c = windowed.config
        c.windowSize = "7,0"
        windowed = PlanModel(config: c, globalBatch: 8, vocab: 500)
        XCTAssertEqual(windowed.windowedAttentionShare, 228.0 / 528.0, accuracy: 1e-15)
        XCTAssertEqual(model().windowedAttentionShare, 1)
        let full = try Planner(model: model(), profile: profile(), worldSize: 1).predict(l)
        let narrow = try Planner(model: windowed, profile: profile(), worldSize: 1).predict(l)
        let heads = 32.0, gemms = heads * 2 * (2 * 32 * 32 * 16) * 3 / 1e9, traffic = heads * 32 * 32 * 2 * 18 / 1e9
        XCTAssertEqual(full.compute - narrow.compute, 4 * (gemms + traffic) * (1 - 228.0 / 528.0), accuracy: 1e-12)
    }

    func testSimulatorWithPerStageCosts() throws {
        // 1F1B, p = 2, m = 2; stage 1 twice as slow (F 2, B 4): stage 0 F F (wait) B B, stage 1 F B F B.
        let s = try PipelineSchedule.make(kind: .oneFOneB, stages: 2, chunks: 1, microbatches: 2)
        let r = try ScheduleSimulator.run(s, transfer: 0) { rank, _ in
            rank == 0 ? PassCosts(forward: 1, backward: 1, weight: 1) : PassCosts(forward: 2, backward: 2, weight: 2)
        }
        // Stage 1: F0 at 1–3, B0 3–7, F1 7–9 (F1 arrived at 2), B1 9–13; stage 0 then B1 13–15.
        XCTAssertEqual(r.makespan, 15, accuracy: 1e-12)
        let withTransfer = try ScheduleSimulator.run(s, transfer: 0.5) { rank, _ in
            rank == 0 ? PassCosts(forward: 1, backward: 1, weight: 1) : PassCosts(forward: 2, backward: 2, weight: 2)
        }
        // Two transfers lie on the critical path (micro-batch 0's activation, micro-batch 1's gradient): 15 + 2·0.5.
        XCTAssertEqual(withTransfer.makespan, 16, accuracy: 1e-12)
        // Uniform costs give what the unit-cost run gives.
        XCTAssertEqual(
            try ScheduleSimulator.run(s).makespan, try ScheduleSimulator.run(s, transfer: 0) { _, _ in .unit }.makespan)
    }

    func testLayoutCompactFormRoundTripsAndNamesBadKeys() throws {
        var l = PlanLayout()
        (l.tensor, l.pipeline, l.data, l.virtualStages, l.microBatch) = (2, 2, 2, 2, 4)
        (l.sequenceParallel, l.recompute, l.distributedOptimizer, l.precision) = (true, true, true, .bf16)
        XCTAssertEqual(try PlanLayout.parse(l.description, worldSize: 8), l)
        XCTAssertEqual(try PlanLayout.parse("t=2,p=2", worldSize: 8).data, 2)
        for (text, word) in [
            ("t=2,q=1", "unknown key “q”"), ("t=0", "positive"), ("t=2,p=2,d=4", "world size"),
            ("recompute=some", "none or full"), ("t2", "key=value"),
        ] {
            XCTAssertThrowsError(try PlanLayout.parse(text, worldSize: 8)) {
                XCTAssertTrue("\($0)".contains(word), "\(text): \($0)")
            }
        }
    }

    func testEnumerationIsExactlyTheValidLayouts() {
        let m = model(globalBatch: 8)
        for world in [1, 2, 4, 8] {
            let planner = Planner(model: m, profile: profile(), worldSize: world)
            let listed = planner.enumerate()
            XCTAssertEqual(Set(listed).count, listed.count, "duplicates at world \(world)")
            for l in listed {
                XCTAssertEqual(l.worldSize, world)
                var c = l.applied(to: m.config, globalBatch: 8)
                c.vocabSize = 500; c.tokenizerType = .null; c.mockData = true; c.trainIters = 1; c.lr = 1e-4
                XCTAssertNoThrow(try ConfigValidation.validate(c, worldSize: world), "\(l)")
            }
            // Every layout in the full space (t, p up to the world, v up to 8, micro-batch up to 16) that
            // the rules accept is listed.
            var valid = Set<PlanLayout>()
            for t in 1...world where world % t == 0 {
                for p in 1...(world / t) where world % (t * p) == 0 {
                    for v in 1...8 {
                        for mbs in 1...16 {
                            for flags in 0..<32 {
                                var l = PlanLayout()
                                (l.tensor, l.pipeline, l.data, l.virtualStages, l.microBatch) = (
                                    t, p, world / (t * p), v, mbs
                                )
                                l.sequenceParallel = flags & 1 != 0 && t > 1
                                l.recompute = flags & 2 != 0
                                l.distributedOptimizer = flags & 4 != 0 && l.data > 1
                                l.zeroBubble = flags & 8 != 0 && p > 1
                                if flags & 16 != 0 { continue }  // bf16: not measured by this profile
                                if v > 1 && (p == 1 || m.layers % (p * v) != 0) { continue }
                                if (try? planner.config(of: l)) != nil { valid.insert(l) }
                            }
                        }
                    }
                }
            }
            XCTAssertEqual(
                valid.subtracting(listed).map(\.description).sorted(), [], "valid but not listed, world \(world)")
            XCTAssertEqual(
                Set(listed).subtracting(valid).map(\.description).sorted(), [], "listed but not valid, world \(world)")
            XCTAssertFalse(listed.isEmpty)
        }
    }

    /// The PTD-P paper's DGX A100 cluster (configs/clusters/dgx-a100.json).
    static func paperCluster() throws -> HardwareProfile {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        return try HardwareProfile.load(root.appendingPathComponent("configs/clusters/dgx-a100.json").path)
    }

    /// A planner for one of the paper's GPTs (seq 2048, vocabulary 51,200) on `cluster` (the paper's).
    static func paperPlanner(
        layers: Int, hidden: Int, heads: Int, globalBatch: Int, worldSize: Int, cluster: HardwareProfile? = nil
    ) throws -> Planner {
        var c = TrainingConfig()
        (c.numLayers, c.hiddenSize, c.numAttentionHeads, c.seqLength) = (layers, hidden, heads, 2048)
        c.microBatchSize = 1
        return Planner(
            model: PlanModel(config: c, globalBatch: globalBatch, vocab: 51200), profile: try cluster ?? paperCluster(),
            worldSize: worldSize)
    }

    func testClusterFileLoadsAndBadProfilesAreRefused() throws {
        let cluster = try Self.paperCluster()
        XCTAssertEqual(cluster.trainer, "megatron-lm")
        XCTAssertEqual(cluster.ranksPerNode, 8)
        XCTAssertNotNil(cluster.gemmModel)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("plan-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let bad = dir.appendingPathComponent("bad.json")
        try
            #"{"trainer": "this", "name": "x", "coresPerNode": 2, "ranksPerNode": 2, "memoryPerRank": 1e9, "memoryBandwidth": [], "links": []}"#
            .write(to: bad, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try HardwareProfile.load(bad.path)) { XCTAssertTrue("\($0)".contains(bad.path), "\($0)") }
        XCTAssertThrowsError(try HardwareProfile.load(dir.appendingPathComponent("missing.json").path)) {
            XCTAssertTrue("\($0)".contains("--calibrate"), "\($0)")
        }
        // Each fault is named by its key path, in words.
        let link = #"{"scope": "intra", "op": "p2p", "ranks": 2, "latency": 1e-6, "bandwidth": 1e9}"#
        let faults = [
            (#"{"name": "x"}"#, "key 'trainer' is missing"),
            (#"{"trainer": "this", "name": "x", "coresPerNode": "two"}"#, "key 'coresPerNode' must be a number"),
            (
                #"{"trainer": "this", "name": "x", "coresPerNode": 2, "ranksPerNode": 2, "memoryPerRank": 1e9, "#
                    + #""memoryBandwidth": [], "links": [\#(link), {"scope": "intra"}]}"#,
                "key 'links[1].op' is missing"
            ),
            (
                #"{"trainer": "gpu", "name": "x", "coresPerNode": 2, "ranksPerNode": 2, "memoryPerRank": 1e9, "#
                    + #""memoryBandwidth": [], "links": []}"#, "key 'trainer': trainer must be"
            ),
            (#"{"trainer": "this","#, "not valid JSON"),
        ]
        for (text, expected) in faults {
            try text.write(to: bad, atomically: true, encoding: .utf8)
            XCTAssertThrowsError(try HardwareProfile.load(bad.path), text) {
                XCTAssertTrue("\($0)".contains(expected), "\($0) should say \(expected)")
                XCTAssertFalse("\($0)".contains("CodingKeys"), "\($0)")
            }
        }
    }

    func testPaperClusterPrefersTensorParallelismWithinANode() throws {
        // The PTD-P paper's 18.4B GPT on 256 A100s: t = 8 (one node), p = 1 must beat t = 1, which
        // does not fit in 80 GB without pipeline or tensor parallelism.
        let planner = try Self.paperPlanner(layers: 40, hidden: 6144, heads: 48, globalBatch: 1024, worldSize: 256)
        var l = PlanLayout()
        (l.tensor, l.data, l.recompute, l.precision) = (8, 32, true, .fp16)
        let paper = try planner.predict(l)
        XCTAssertTrue(paper.fits)
        (l.tensor, l.data) = (1, 256)
        XCTAssertFalse(try planner.predict(l).fits, "18.4B parameters at 20 bytes each exceed 80 GB on one GPU")
        // Megatron's formula with recomputation at 96·B·s·l·h²·(1 + s/6h + V/16lh) per step.
        let (B, s, L, h, V) = (1024.0, 2048.0, 40.0, 6144.0, 51200.0)
        let flops = 96 * B * s * L * h * h * (1 + s / (6 * h) + V / (16 * L * h))
        XCTAssertEqual(paper.flopsPerRank, flops / paper.stepSeconds / 256, accuracy: paper.flopsPerRank * 0.01)
    }

    func testPaperClusterCountsMegatronLMsGradientsByPrecision() throws {
        // The paper's runs used `--fp16`: Megatron-LM then accumulates and all-reduces fp16 gradients
        // and makes an fp32 copy for the step, 2 + 2 + 16 bytes per parameter (4 + 16/d with the
        // distributed optimizer); under `--bf16` the gradients are fp32, 2 + 4 + 12 (6 + 12/d).
        var cluster = try Self.paperCluster()
        XCTAssertEqual(cluster.megatronPrecision, .fp16)
        for (format, gradient, state, wire) in [("fp16", 2.0, 16.0, 2.0), ("bf16", 4.0, 12.0, 4.0)] {
            cluster.mixedPrecision = format
            let planner = try Self.paperPlanner(
                layers: 40, hidden: 6144, heads: 48, globalBatch: 1024, worldSize: 256, cluster: cluster)
            let model = planner.model
            let listed = planner.enumerate()
            XCTAssertTrue(listed.allSatisfy { $0.precision == cluster.megatronPrecision }, format)
            var l = PlanLayout()
            (l.tensor, l.data, l.recompute, l.precision) = (8, 32, true, cluster.megatronPrecision)
            XCTAssertTrue(l.trainFlags(globalBatch: 1024, layers: 40).contains("--\(format)"))
            let params = Double(model.stageParameters(l, stage: 0, layerCount: 40))
            var x = try planner.predict(l)
            XCTAssertEqual(x.memory.parameters, 2 * params, format)
            XCTAssertEqual(x.memory.gradients, gradient * params, format)
            XCTAssertEqual(x.memory.optimizer, state * params, format)
            // The data-parallel all-reduce over 32 ranks, one per node, of the gradients as reduced.
            let reduce = cluster.collectiveSeconds(
                "allreduce", bytes: wire * params, ranks: 32, crossesNodes: true, linksPerNode: 1)
            XCTAssertEqual(x.dataCommunication, reduce, accuracy: reduce * 1e-9, format)
            l.distributedOptimizer = true
            x = try planner.predict(l)
            XCTAssertEqual(
                x.memory.gradients + x.memory.optimizer, gradient * params + state * (params / 32).rounded(.up))
        }
        var wrong = cluster
        wrong.trainer = "this"
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("plan-precision-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        for (profile, name) in [
            (wrong, "this.json"),
            (
                {
                    var p = cluster; p.mixedPrecision = "fp8"; return p
                }(), "fp8.json"
            ),
        ] {
            let path = dir.appendingPathComponent(name).path
            try profile.write(path)
            XCTAssertThrowsError(try HardwareProfile.load(path)) {
                XCTAssertTrue("\($0)".contains("mixedPrecision"), "\($0)")
            }
        }
    }

    func testALayoutFitsOnlyWithinTheMemoryLessTheHeadroom() throws {
        let m = model()
        let l = PlanLayout()
        let need = try Planner(model: m, profile: profile(), worldSize: 1).predict(l).memory.total
        // Memory 5% above the prediction: fits with no headroom, not with the default 10%.
        let tight = need * 1.05
        XCTAssertTrue(
            try Planner(model: m, profile: profile(), worldSize: 1, memoryPerRank: tight, memoryHeadroom: 0)
                .predict(l).fits)
        let planner = Planner(model: m, profile: profile(), worldSize: 1, memoryPerRank: tight)
        XCTAssertEqual(planner.usableMemory, tight * 0.9, accuracy: 1)
        XCTAssertFalse(try planner.predict(l).fits)
        XCTAssertTrue(
            try Planner(model: m, profile: profile(), worldSize: 1, memoryPerRank: need / 0.89).predict(l).fits)
    }

    func testPaperClusterKeepsMegatronLMsInterleavingRule() throws {
        // Megatron-LM's parallel state refuses the interleaved schedule with fewer than three stages
        // ("pipeline-model-parallel size should be greater than 2 with interleaved schedule"); this
        // trainer runs it at p = 2. The 3.6B GPT of the paper's Table 1 on 64 GPUs.
        var c = TrainingConfig()
        (c.numLayers, c.hiddenSize, c.numAttentionHeads, c.seqLength) = (30, 3072, 32, 2048)
        c.microBatchSize = 1
        let model = PlanModel(config: c, globalBatch: 512, vocab: 51200)
        let paper = Planner(model: model, profile: try Self.paperCluster(), worldSize: 64)
        let listed = paper.enumerate()
        XCTAssertFalse(listed.contains { $0.virtualStages > 1 && $0.pipeline <= 2 })
        var l = PlanLayout()
        (l.tensor, l.pipeline, l.data, l.virtualStages, l.precision) = (1, 2, 32, 3, .fp16)
        XCTAssertThrowsError(try paper.config(of: l)) { XCTAssertTrue("\($0)".contains("p > 2"), "\($0)") }
        var fp32 = PlanLayout()
        (fp32.tensor, fp32.data) = (2, 32)
        XCTAssertThrowsError(try paper.config(of: fp32)) {
            XCTAssertTrue("\($0)".contains("mixed precision"), "\($0)")
        }
        let this = Planner(model: model, profile: profile(), worldSize: 64)
        XCTAssertNoThrow(try this.config(of: l))
        XCTAssertTrue(this.enumerate().contains { $0.virtualStages > 1 && $0.pipeline == 2 })
    }

    func testPaperFigure13TensorParallelismPeaksAtOneNode() throws {
        // The PTD-P paper's Figure 13 (§5.4.1): a 161B GPT (32 layers, hidden 20480, 128 heads) on 64
        // A100s at global batch 32 and 128, (t, p) from (2, 32) to (32, 2): throughput peaks where t
        // is the GPUs of one node (8), falling off on both sides — the bubble on one side, tensor
        // parallelism's all-reduces over InfiniBand on the other.
        for batch in [32, 128] {
            let planner = try Self.paperPlanner(
                layers: 32, hidden: 20480, heads: 128, globalBatch: batch, worldSize: 64)
            var rates: [Double] = []
            for (t, p) in [(2, 32), (4, 16), (8, 8), (16, 4), (32, 2)] {
                var l = PlanLayout()
                (l.tensor, l.pipeline, l.data, l.recompute, l.precision) = (t, p, 1, true, .fp16)
                let x = try planner.predict(l)
                XCTAssertTrue(x.fits, "t \(t) p \(p) batch \(batch)")
                rates.append(x.flopsPerRank)
            }
            XCTAssertEqual(rates.firstIndex(of: rates.max()!), 2, "batch \(batch): \(rates)")
            XCTAssertTrue(rates[0] < rates[1] && rates[1] < rates[2], "batch \(batch): \(rates)")
            XCTAssertTrue(rates[2] > rates[3] && rates[3] > rates[4], "batch \(batch): \(rates)")
        }
    }
}

// PlanMemory.swift — predicted memory per rank of one layout, by the accounting the trainer uses:
// parameters, gradients and optimizer state from the stage's parameter count; activations as the
// arenas the trainer plans (TransformerArenaLayout) times the activation sets the schedule needs
// (PipelineSchedule.activationSetsNeeded) — for BERT also its inputs and, on the last stage, its
// heads' saved tensors (BertActivations) — plus the zero-bubble schedule's kept output gradients,
// MPI's reduction buffers (or, with the data-parallel group on one node, the pages of the other
// replicas' gradient arenas that the shared-memory reduction touches) and the process's resident
// baseline. For Megatron-LM on GPUs (the paper's cluster): 16-bit weights, fp32 master weights with
// Adam, and fp32 gradients under `--bf16` (18 bytes per parameter, the last 12 sharded by the
// distributed optimizer) or fp16 gradients made fp32 for the step under `--fp16` (20 bytes, the last
// 16 sharded), and Korthikanti et al.'s activation formula at 2-byte elements.
import Tensor

/// The model a plan is for: a GPT's or a BERT's sizes, and the global batch.
public struct PlanModel: Sendable {
    public let config: TrainingConfig
    public let globalBatch: Int
    /// The tokenizer's vocabulary (before padding).
    public let vocab: Int
    public var layers: Int { config.numLayers }
    public var hidden: Int { config.hiddenSize }
    public var heads: Int { config.numAttentionHeads }
    /// Each head's width d (kv_channels, or h / a), the queries' and context's width a·d, and QKV's
    /// (a + 2g)·d (g key/value groups; a without grouped-query attention).
    public var headDim: Int { config.headWidth }
    public var attentionWidth: Int { heads * headDim }
    public var qkvWidth: Int { (heads + 2 * config.queryGroups) * headDim }
    public var ffn: Int {
        config.ffnHiddenSize ?? GPTConfig.defaultFFN(hidden: config.hiddenSize, swiglu: config.swiglu)
    }
    public var seq: Int { config.seqLength }
    public var positions: Int { config.maxPositionEmbeddings ?? config.seqLength }
    public var isBert: Bool { config.modelType == .bert }
    /// The share of the causal attention core's (query, key) pairs a sliding window (window_size
    /// "W,0") leaves: Σᵢ min(i + 1, W + 1) over the causal triangle's s(s + 1)/2; 1 without one.
    public var windowedAttentionShare: Double {
        guard !isBert, let w = (try? config.slidingWindow()) ?? nil else { return 1 }
        return StageCosts.attentionShare(seq: seq, causal: true, window: w)
            / StageCosts.attentionShare(seq: seq, causal: true, window: nil)
    }
    /// BERT: token types (2 with the binary head, else none), as BertConfig counts them.
    public var tokentypes: Int { isBert && config.bertBinaryHead ? 2 : 0 }

    /// BERT: the rows the masked-LM head runs on in one micro-batch of full-length samples — each
    /// sample masks max(1, round(mask_prob · its non-special tokens)), `[CLS] A [SEP] B [SEP]` having
    /// three special ones (BertSamples). Shorter samples mask fewer: this is the most a micro-batch holds.
    public func maskedRows(microBatch b: Int) -> Int {
        b * BertSampleBuilder.maskedCount(maskable: max(1, seq - 3), maskProb: config.maskProb)
    }

    public init(config: TrainingConfig, globalBatch: Int, vocab: Int) {
        self.config = config; self.globalBatch = globalBatch; self.vocab = vocab
    }

    public func paddedVocab(tensor t: Int) -> Int {
        GPTConfig.paddedVocab(vocab, divisibleBy: config.makeVocabSizeDivisibleBy, tensorParallel: t)
    }

    /// The transformer of a layout (the vocabulary padded for its t; BERT's LayerNorm arrangement;
    /// GPT's Llama-style options).
    public func gptConfig(tensor t: Int) -> GPTConfig {
        var g = GPTConfig(
            numLayers: layers, hiddenSize: hidden, numAttentionHeads: heads, ffnHiddenSize: ffn, seqLength: seq,
            maxPositionEmbeddings: positions, vocabSize: vocab, paddedVocabSize: paddedVocab(tensor: t))
        g.postLayerNorm = isBert && config.layernormArrangement == .postLN
        g.positionEmbedding = config.positionEmbeddingType
        g.normalization = config.normalization
        g.swiglu = config.swiglu
        g.addBiasLinear = config.addBiasLinear
        g.addQKVBias = config.addQKVBias
        g.qkLayerNorm = config.qkLayernorm
        g.untieEmbeddings = config.untieEmbeddingsAndOutputWeights
        g.numQueryGroups = config.groupQueryAttention ? config.numQueryGroups : nil
        g.kvChannels = config.kvChannels
        return g
    }

    /// Parameters one transformer layer holds on a tensor rank: the split weights and biases over t,
    /// the two LayerNorms and the row-parallel layers' biases whole.
    public func layerParameters(tensor t: Int) -> Int {
        Int(Self.layerParameters(hidden: Double(hidden), ffn: Double(ffn), tensor: Double(t), options: config))
    }

    /// The same count in Double, for sizes that may not fit an Int (MemoryPreflight's hostile configs);
    /// `options` gives SwiGLU (FC1 twice as wide), grouped-query attention (fewer key/value rows), the
    /// linear biases, the norms' biases (not RMSNorm's) and qk_layernorm's two head-size norms (whole).
    public static func layerParameters(hidden h: Double, ffn f: Double, tensor t: Double, options c: TrainingConfig)
        -> Double
    {
        let fc1 = c.swiglu ? 2 * f : f, biases = c.addBiasLinear ? 1.0 : 0,
            qkvBias = c.addBiasLinear || c.addQKVBias ? 1.0 : 0, norms = c.normalization == .layerNorm ? 4.0 : 2
        // QKV's rows: a·d for the queries, and keys and values for each of the g groups (g = a without
        // GQA), d = kv_channels or h / a; the projection maps a·d back to h.
        let a = Double(max(1, c.numAttentionHeads)), d = Double(c.headWidth)
        let qkv = (a + 2 * Double(c.queryGroups)) * d, q = a * d
        let qkNorms = c.qkLayernorm ? norms * d : 0
        return (qkv * h + qkvBias * qkv + h * q + fc1 * h + biases * fc1 + h * f) / t + norms * h + biases * 2 * h
            + qkNorms
    }

    /// Parameters on pipeline stage `stage` (of `layout`) of one tensor rank: its layers, the word and
    /// position embeddings on the first stage, the final LayerNorm and (p > 1) the tied copy of the
    /// word embedding on the last. BERT (BertSlots) adds the token-type embeddings and, post-LN, the
    /// embeddings' LayerNorm (which replaces the final one) on the first stage, and on the last the
    /// masked-LM head — dense h × h, LayerNorm, the vocabulary's bias split over t — and, with the
    /// binary head, the pooler (h × h) and the 2-way classifier; the heads are whole on every tensor rank.
    public func stageParameters(_ layout: PlanLayout, stage: Int, layerCount: Int) -> Int {
        let t = layout.tensor, h = hidden, vL = paddedVocab(tensor: t) / t, word = vL * h
        var n = layerCount * layerParameters(tensor: t)
        let postLN = gptConfig(tensor: t).postLayerNorm
        let table = config.positionEmbeddingType == .learnedAbsolute ? positions * h : 0
        let finalNorm = postLN ? 0 : config.normalization == .layerNorm ? 2 * h : h
        if stage == 0 { n += word + table + tokentypes * h + (postLN ? 2 * h : 0) }
        if stage == layout.pipeline - 1 {
            n += finalNorm + (layout.pipeline > 1 || config.untieEmbeddingsAndOutputWeights ? word : 0)
            if isBert {
                n += h * h + h + 2 * h + vL
                if config.bertBinaryHead { n += h * h + h + 2 * h + 2 }
            }
        }
        return n
    }
}

public struct PlanMemory: Sendable {
    /// Bytes per rank of the costliest stage, and its parts.
    public var parameters = 0.0, gradients = 0.0, optimizer = 0.0, activations = 0.0, communication = 0.0
    public var baseline = 0.0
    public var total: Double { parameters + gradients + optimizer + activations + communication + baseline }

    /// This program's memory on pipeline stage `stage` with the given layer counts per chunk and
    /// activation sets per chunk.
    static func thisTrainer(
        model: PlanModel, layout l: PlanLayout, stage: Int, chunkLayers: [Int], sets: [Int], threads: Int,
        profile: HardwareProfile
    ) -> PlanMemory {
        var m = PlanMemory()
        let params = Double(model.stageParameters(l, stage: stage, layerCount: chunkLayers.reduce(0, +)))
        // The planner offers bf16 only where the CPU has a bf16 kernel, whose GEMMs read the fp32 main
        // parameters (ModelWeights): no copy of the weights beside them. fp16 runs SGEMM on a rounded
        // copy of every matrix, 4 more bytes per parameter.
        m.parameters = (l.precision == .fp16 ? 8 : 4) * params
        m.gradients = 4 * params
        // 4 bytes per state value (Adam's two moments, SGD's momentum); the sharded form also holds
        // the main-gradient shard.
        let state = 4 * Double(model.config.optimizer.stateNames.count)
        m.optimizer = l.distributedOptimizer ? (state + 4) * (params / Double(l.data)).rounded(.up) : state * params
        let gpt = model.gptConfig(tensor: l.tensor)
        let tp = TensorParallel(planningSize: l.tensor, sequenceParallel: l.sequenceParallel)
        for (c, layers) in chunkLayers.enumerated() {
            let arena = TransformerArenaLayout(
                config: gpt, microBatch: l.microBatch, threads: threads, tensorParallel: tp, layers: layers,
                sets: l.recompute ? 1 : layers, precision: l.precision)
            let n = Double(model.seq * l.microBatch)
            var perSet = Double(arena.total) * 4 + n * 16  // tokens, targets, per-row loss
            if model.isBert {
                // Token types and masked-LM labels; on the last stage the heads' memory (BertHeadMemory,
                // planned for every row of the micro-batch).
                perSet += 8 * n
                if stage == l.pipeline - 1 && c == chunkLayers.count - 1 {
                    perSet += Double(
                        BertHeadMemory.bytes(
                            rows: model.seq * l.microBatch, batch: l.microBatch, hidden: model.hidden, outputs: 2))
                }
            }
            if l.zeroBubble {
                // Kept output gradients of the four linear layers per layer (DeferredWeightGradients).
                let h = Double(model.hidden), f = Double(model.ffn), t = Double(l.tensor)
                perSet += 4 * n * Double(layers) * (3 * h / t + h + f / t + h)
                // On the last stage also the LM head's ∂loss/∂logits, rows × V/t, kept for its W (BERT's
                // masked-LM head: the masked rows).
                if stage == l.pipeline - 1 && c == chunkLayers.count - 1 {
                    let rows = model.isBert ? Double(model.maskedRows(microBatch: l.microBatch)) : n
                    perSet += 4 * rows * (Double(model.vocab) / t).rounded(.up)
                }
            }
            m.activations += Double(sets[c]) * perSet
        }
        if l.pipeline > 1 {
            // Send and receive staging buffers for the stage boundary.
            m.communication += 4 * 4 * Double(model.seq * l.microBatch * model.hidden / l.tensor)
        }
        if profile.reducesThroughSharedMemory(l) {
            // Through shared memory no MPI buffers, but the resident set also counts the pages of the
            // other replicas' arenas this rank reads and writes: its piece of each, (d − 1)/d of one.
            m.communication += 4 * params * Double(l.data - 1) / Double(l.data)
        } else if l.data > 1 || l.distributedOptimizer {
            let factor = profile.reductionBufferFactor(ranks: l.data)
            // MPI's temporary buffers for the largest gradient bucket in flight (GradientBuckets' default size).
            let bucket = min(params, Double(model.config.ddpBucketSize ?? max(40_000_000, 1_000_000 * l.data)))
            m.communication += factor * 4 * bucket
        }
        m.baseline = profile.baseline(threads: threads)
        return m
    }

    /// Megatron-LM's memory on a GPU (the paper's setting) for pipeline stage `stage`.
    static func megatronLM(
        model: PlanModel, layout l: PlanLayout, stage: Int, chunkLayers: [Int], sets: [Int], profile: HardwareProfile
    ) -> PlanMemory {
        var m = PlanMemory()
        let params = Double(model.stageParameters(l, stage: stage, layerCount: chunkLayers.reduce(0, +)))
        let owned = l.distributedOptimizer ? (params / Double(l.data)).rounded(.up) : params
        m.parameters = 2 * params
        if l.precision == .fp16 {
            // fp16 gradients; the optimizer's fp32 copy of them beside the master weights and moments.
            m.gradients = 2 * params
            m.optimizer = 16 * owned
        } else {
            m.gradients = 4 * params  // fp32 main gradients
            m.optimizer = 12 * owned
        }
        let f = ActivationMemoryFormula(
            seq: model.seq, microBatch: l.microBatch, hidden: model.hidden, heads: model.heads,
            tensorParallel: l.tensor, sequenceParallel: l.sequenceParallel, qkvWidth: Double(model.qkvWidth),
            contextWidth: Double(model.attentionWidth))
        for (c, layers) in chunkLayers.enumerated() {
            // Held per in-flight micro-batch: every layer's input under full recomputation, else
            // every layer's activations (attention scores included: not flash attention).
            let held = l.recompute ? f.inputBytes() : f.layerBytes(selective: false)
            m.activations += Double(sets[c]) * Double(layers) * held
        }
        // The backward's working set: one layer's full activations being recomputed, and the
        // logits of the last stage (16-bit, plus their fp32 softmax).
        m.activations += l.recompute ? f.layerBytes(selective: false) : 0
        if stage == l.pipeline - 1 {
            m.activations += 6 * Double(model.seq * l.microBatch * model.paddedVocab(tensor: l.tensor) / l.tensor)
        }
        m.baseline = profile.baseline(threads: 1)
        return m
    }
}

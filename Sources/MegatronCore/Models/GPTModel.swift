// GPTModel.swift — GPT-2 as Megatron and Hugging Face define it: learned position embeddings,
// pre-LN layers, causal attention, tanh-GELU, final LayerNorm, LM head tied to the word embedding.
// The architecture in one place:
//     x = Dropout(wte[tokens] + wpe[positions])
//     for layer in layers: x = layer(x)
//     loss = CrossEntropy(LN_f(x) · wteᵀ)
// `backward` is that loop reversed. Gradients of one step accumulate over micro-batches.
import Tensor

public struct GPTSlots: Sendable {
    public let wordEmbeddings: Int, positionEmbeddings: Int
    public let layers: [TransformerLayerSlots]
    public let finalNormWeight: Int, finalNormBias: Int

    /// The whole parameter table of a GPT, declared once.
    public static func declare(config c: GPTConfig) -> (ParameterTable, GPTSlots) {
        var t = ParameterTable()
        let wte = t.declare("embedding.word_embeddings.weight", [c.paddedVocabSize, c.hiddenSize], split: 0,
                            .normal(std: c.initMethodStd))
        let wpe = t.declare("embedding.position_embeddings.weight", [c.maxPositionEmbeddings, c.hiddenSize],
                            .normal(std: c.initMethodStd))
        let layers = (0..<c.numLayers).map { TransformerLayerSlots(declaringIn: &t, layer: $0, config: c) }
        let fw = t.declare("decoder.final_layernorm.weight", [c.hiddenSize], .ones)
        let fb = t.declare("decoder.final_layernorm.bias", [c.hiddenSize], .zeros)
        return (t, GPTSlots(wordEmbeddings: wte, positionEmbeddings: wpe, layers: layers, finalNormWeight: fw, finalNormBias: fb))
    }
}

/// Which step and micro-batch a pass belongs to: keys the dropout masks.
public struct PassContext: Sendable {
    public let iteration: Int, microbatch: Int, training: Bool
    public init(iteration: Int, microbatch: Int, training: Bool) {
        self.iteration = iteration; self.microbatch = microbatch; self.training = training
    }
}

public final class GPTModel: @unchecked Sendable {
    public let config: GPTConfig
    public let table: ParameterTable
    public let slots: GPTSlots
    public let params: ParameterArena
    public let grads: ParameterArena
    public let acts: GPTActivations
    /// When set, forward/backward add their per-phase wall times to it (`megatron benchmark`).
    public var timer: PhaseTimer? = nil

    /// Builds the model with parameters initialised from `config.seed` and activation memory for
    /// micro-batches of `microBatch` sequences.
    public init(config: GPTConfig, microBatch: Int, threads: Int) {
        precondition(config.hiddenSize % config.numAttentionHeads == 0, "hidden_size % num_attention_heads != 0")
        self.config = config
        (table, slots) = GPTSlots.declare(config: config)
        params = ParameterArena(table: table)
        grads = ParameterArena(table: table)
        acts = GPTActivations(config: config, microBatch: microBatch, threads: threads)
        params.initialize(seed: config.seed)
    }

    private func layerDropout(_ l: Int, _ ctx: PassContext) -> LayerDropout {
        let c = config
        func stream(_ site: String, _ p: Float) -> DropoutStream? {
            ctx.training && p > 0 ? DropoutStream(seed: c.seed, site: "layer.\(l).\(site)", step: ctx.iteration, microbatch: ctx.microbatch) : nil
        }
        return LayerDropout(hidden: c.hiddenDropout, attention: c.attentionDropout,
                            attentionStream: stream("attention", c.attentionDropout),
                            attentionOutStream: stream("attention_out", c.hiddenDropout),
                            mlpOutStream: stream("mlp_out", c.hiddenDropout))
    }

    private func embeddingStream(_ ctx: PassContext) -> DropoutStream? {
        ctx.training && config.hiddenDropout > 0
            ? DropoutStream(seed: config.seed, site: "embedding", step: ctx.iteration, microbatch: ctx.microbatch) : nil
    }

    /// Forward through the final LayerNorm for the tokens in `acts.tokens` ([s, b]).
    public func forwardHidden(_ ctx: PassContext) {
        let c = config, m = acts, n = m.rows, h = c.hiddenSize
        timer.measure("fwd embedding") {
            Embedding.forward(tokens: m.tokens.base, word: params.pointer(slots.wordEmbeddings),
                              position: params.pointer(slots.positionEmbeddings), out: m.residual[0],
                              seq: m.seq, batch: m.batch, hidden: h)
            if let s = embeddingStream(ctx) { Dropout.apply(m.residual[0], count: n * h, p: c.hiddenDropout, stream: s) }
        }
        for l in 0..<c.numLayers {
            TransformerLayer.forward(x: m.residual[l], out: m.residual[l + 1], slots: slots.layers[l], params: params,
                                     acts: m.layers[l], model: m, config: c, dropout: layerDropout(l, ctx), timer: timer)
        }
        timer.measure("fwd layernorm") {
            LayerNorm.forward(x: m.residual[c.numLayers], weight: params.pointer(slots.finalNormWeight),
                              bias: params.pointer(slots.finalNormBias), y: m.finalNorm, mean: m.finalMean,
                              rstd: m.finalRstd, rows: n, width: h, eps: c.normEpsilon)
        }
    }

    /// Evaluation: the summed token loss of the micro-batch in `acts.tokens`/`acts.targets`.
    public func lossSum() -> Double {
        forwardHidden(PassContext(iteration: 0, microbatch: 0, training: false))
        return VocabCrossEntropy.forward(x: acts.finalNorm, embedding: params.pointer(slots.wordEmbeddings),
                                         targets: acts.targets.base, rows: acts.rows, hidden: config.hiddenSize,
                                         vocab: config.vocabSize, logits: acts.logits, rowLoss: acts.rowLoss)
    }

    /// Training: forward, loss, backward. Gradients of `gradScale · Σ token losses` are added to
    /// `grads`. Returns the summed token loss.
    public func forwardBackward(gradScale: Float, _ ctx: PassContext) -> Double {
        let c = config, m = acts, n = m.rows, h = c.hiddenSize
        forwardHidden(ctx)
        // LM head + cross entropy + their backward, chunked; writes ∂loss/∂LN_f(x) into tmpH.
        let loss = timer.measure("lm head + cross entropy (fwd+bwd)") {
            VocabCrossEntropy.forward(x: m.finalNorm, embedding: params.pointer(slots.wordEmbeddings),
                                      targets: m.targets.base, rows: n, hidden: h, vocab: c.vocabSize,
                                      logits: m.logits, rowLoss: m.rowLoss, dx: m.tmpH,
                                      dembedding: grads.pointer(slots.wordEmbeddings), gradScale: gradScale)
        }
        timer.measure("bwd layernorm") {
            m.dResidual.update(repeating: 0, count: n * h)
            LayerNorm.backward(dy: m.tmpH, x: m.residual[c.numLayers], weight: params.pointer(slots.finalNormWeight),
                               mean: m.finalMean, rstd: m.finalRstd, dx: m.dResidual,
                               dweight: grads.pointer(slots.finalNormWeight), dbias: grads.pointer(slots.finalNormBias),
                               rows: n, width: h)
        }
        for l in stride(from: c.numLayers - 1, through: 0, by: -1) {
            TransformerLayer.backward(x: m.residual[l], dres: m.dResidual, slots: slots.layers[l], params: params,
                                      grads: grads, acts: m.layers[l], model: m, config: c, dropout: layerDropout(l, ctx), timer: timer)
        }
        timer.measure("bwd embedding") {
            if let s = embeddingStream(ctx) { Dropout.apply(m.dResidual, count: n * h, p: c.hiddenDropout, stream: s) }
            Embedding.backward(dout: m.dResidual, tokens: m.tokens.base, dword: grads.pointer(slots.wordEmbeddings),
                               dposition: grads.pointer(slots.positionEmbeddings), seq: m.seq, batch: m.batch, hidden: h)
        }
        return loss
    }
}

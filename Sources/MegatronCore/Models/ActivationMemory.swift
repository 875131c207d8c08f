// ActivationMemory.swift — the activation memory of the transformer layers by the formula of
// Korthikanti et al. 2022, "Reducing Activation Recomputation in Large Transformer Models", Table 2
// (megatron-notes §6), to set beside what TransformerActivations actually holds. Per layer, in units of
// s·b·h and for 16-bit tensors with 1-byte dropout masks:
//     no parallelism 34 + 5as/h;  TP 10 + 24/t + 5as/(ht);  TP+SP (34 + 5as/h)/t;
//     selective recomputation drops the 5as/h (attention probabilities);  full recomputation 2 (the input).
// The 34 is 16 tensors of one element per (s, b, h) at 2 bytes — the inputs of both LayerNorms, of
// QKV and FC1 (4, replicated without SP), Q, K, V, the attention context, FC1's output and GELU's
// output (12, split over t) — plus 2 one-byte masks. Written for any element width w, the tensors
// count w bytes each and the masks stay 1 byte, so w = 2 gives Table 2 exactly. For other MLP widths
// (ffn ≠ 4h, or SwiGLU's FC1 giving 2·ffn) FC1's output and the activation's count their own widths
// (fc1Width/h and ffn/h in place of 4 and 4), and with grouped-query attention Q, K and V theirs
// ((a + 2g)·d/h in place of 3), and with kv_channels d ≠ h/a the context its a·d/h in place of 1 — the
// same accounting.
public struct ActivationMemoryFormula: Sendable {
    public let seq: Int, microBatch: Int, hidden: Int, heads: Int, tensorParallel: Int, sequenceParallel: Bool
    /// The MLP's widths: FC1's output (2·ffn with SwiGLU) and the activation's (ffn); 4h each by default.
    public let fc1Width: Double, ffn: Double
    /// QKV's output: (a + 2g)·d with grouped-query attention; 3h by default.
    public let qkvWidth: Double
    /// The attention's output (the context): a·d; h by default.
    public let contextWidth: Double

    public init(
        seq: Int, microBatch: Int, hidden: Int, heads: Int, tensorParallel: Int = 1, sequenceParallel: Bool = false,
        ffn: Double? = nil, fc1Width: Double? = nil, qkvWidth: Double? = nil, contextWidth: Double? = nil
    ) {
        self.seq = seq; self.microBatch = microBatch; self.hidden = hidden; self.heads = heads
        self.tensorParallel = tensorParallel; self.sequenceParallel = sequenceParallel && tensorParallel > 1
        self.ffn = ffn ?? 4 * Double(hidden)
        self.fc1Width = fc1Width ?? self.ffn
        self.qkvWidth = qkvWidth ?? 3 * Double(hidden)
        self.contextWidth = contextWidth ?? Double(hidden)
    }

    var sbh: Double { Double(seq * microBatch * hidden) }

    /// One layer's saved activations in bytes; `selective` leaves out the attention probabilities.
    public func layerBytes(elementBytes w: Int = 2, selective: Bool) -> Double {
        let t = Double(tensorParallel), w = Double(w)
        var replicated = 4 * w + 2  // LN1/LN2/QKV/FC1 inputs, two dropout masks
        // Q, K, V (3 without grouped-query attention), context; FC1's output (4 at ffn = 4h) and the
        // activation's (4)
        let attentionTensors = (qkvWidth + contextWidth) / Double(hidden), mlp = (fc1Width + ffn) / Double(hidden)
        let split = (attentionTensors + mlp) * w / t
        let attention = selective ? 0 : (2 * w + 1) * Double(heads * seq) / Double(hidden) / t  // 5as/(ht) at w = 2
        if sequenceParallel { replicated /= t }
        return sbh * (replicated + split + attention)
    }

    /// The layer input alone (what full recomputation keeps): 2·sbh at w = 2, /t with SP.
    public func inputBytes(elementBytes w: Int = 2) -> Double {
        sbh * Double(w) / Double(sequenceParallel ? tensorParallel : 1)
    }

    /// The layers' activations at the backward's peak under `plan` for `layers` layers: every
    /// layer's input, plus the rest of a full layer for each layer whose activations are held at
    /// once (all of them; a recomputed group's; the kept layers and one recomputed layer in block).
    public func peakBytes(layers: Int, plan: RecomputePlan, elementBytes w: Int = 2, selective: Bool) -> Double {
        Double(layers) * inputBytes(elementBytes: w) + Double(plan.sets)
            * (layerBytes(elementBytes: w, selective: selective) - inputBytes(elementBytes: w))
    }
}

// Activations.swift — the activation and scratch memory of one model replica for one micro-batch
// size, planned up front in one arena (no allocation inside a step). Per layer it holds what the
// layer's backward needs; the residual stream is `residual[0...L]` (layer l reads l, writes l+1).
import Tensor

/// Hands out 64-byte aligned offsets in one arena.
struct ArenaPlan {
    private(set) var total = 0
    mutating func take(_ count: Int) -> Int {
        let o = total
        total += ArenaPlan.aligned(count)
        return o
    }
    static func aligned(_ count: Int) -> Int { (count + 15) / 16 * 16 }
}

/// Per-layer saved tensors (pointers into the activation arena): [n, ·] rows are all tokens,
/// [nS, ·] the rows this rank holds in the residual stream. The tensors that feed a GEMM are
/// HeldTensors: 16-bit words in bf16/fp16 runs, computed in and restored to the staging buffers.
public struct LayerActivations {
    public let ln1: HeldTensor  // [n, h]   (gathered under SP)
    public let ln1Mean: UnsafeMutablePointer<Float>  // [nS]
    public let ln1Rstd: UnsafeMutablePointer<Float>  // [nS]
    public let qkv: HeldTensor  // [n, 3h/t]  this rank's heads ([n, (a + 2g)·d/t] with grouped-query attention)
    public let context: HeldTensor  // [n, h/t]
    public let lse: UnsafeMutablePointer<Float>  // [b, a/t, s]
    public let mid: UnsafeMutablePointer<Float>  // [nS, h]  residual after attention
    public let ln2: HeldTensor  // [n, h]   (gathered under SP)
    public let ln2Mean: UnsafeMutablePointer<Float>  // [nS]
    public let ln2Rstd: UnsafeMutablePointer<Float>  // [nS]
    public let fc1: HeldTensor  // [n, f/t]  pre-activation ([n, 2f/t], gate | up, with SwiGLU)
    public let gelu: HeldTensor  // [n, f/t]  the activation's output (GELU or SwiGLU)
    /// Post-LN only: [nS, h] the second residual sum (the MLP norm's input); `mid` then holds the first.
    public let postSum: UnsafeMutablePointer<Float>?
    /// qk_layernorm only: the queries and keys as QKV gave them and the norm's statistics.
    public let qkNorm: QKNorm.Saved?
}

/// Evaluation of chosen tokens only (zero-shot tasks): the rows to score (row = position·b + sample,
/// ascending), and per scored row its loss and whether the target is the arg-max prediction. The
/// LM head runs on those rows alone, so unscored positions cost no vocabulary GEMM.
public final class TokenScoring: @unchecked Sendable {
    public var rows: [Int]
    public internal(set) var losses: [Double] = []
    public internal(set) var targetIsArgmax: [Bool] = []
    public init(rows: [Int]) { self.rows = rows }
}

public final class TransformerActivations: ChunkActivations, @unchecked Sendable {
    /// When set (evaluation), only these rows reach the LM head.
    public var scoring: TokenScoring? = nil
    /// The attention mask of the micro-batch held (causal for GPT, or within documents under
    /// reset_attention_mask; key padding for BERT), set with its tokens.
    public var attentionMask: AttentionMask = .causal
    /// Sliding-window attention's keys before each query (GPTConfig.slidingWindow), nil: all.
    public let slidingWindow: Int?
    private var windowed: (mask: AttentionMask, limited: AttentionMask)? = nil
    /// The mask the attention core applies: `attentionMask` within the sliding window (made once per
    /// mask set).
    public var effectiveAttentionMask: AttentionMask {
        guard let slidingWindow else { return attentionMask }
        if let windowed, windowed.mask == attentionMask { return windowed.limited }
        let limited = attentionMask.limited(toWindow: slidingWindow, seq: seq, batch: batch)
        windowed = (attentionMask, limited)
        return limited
    }
    /// GPT's packed-document options, set with the tokens (DocumentMasks): Megatron's loss mask [s, b]
    /// (1: the row's loss counts; nil: every row does) and position ids [s, b] (nil: row i·b + j is
    /// at position i).
    public var lossMask: FloatBuffer? = nil
    public var positionIds: Int32Buffer? = nil
    /// Rope's cos/sin table (position_embedding_type rope), nil otherwise.
    public let rotary: RotaryEmbedding?
    /// Where each of the micro-batch's rows sits: its position id, or its index in its sequence.
    public var rowPositions: RowPositions {
        positionIds.map { .ids(UnsafePointer($0.base)) } ?? .interleaved(batch: batch)
    }
    /// The rows whose loss counts (s·b without a loss mask), and the factor on this micro-batch's loss
    /// gradient beyond the trainer's gradScale (which assumes s·b counted rows per micro-batch).
    public var countedRows: Int
    public var lossGradientWeight: Float = 1
    public let seq: Int, batch: Int, hidden: Int
    public let tensorParallel: TensorParallel
    /// The format of the matrix work (GEMM operands are rounded to it where they are produced).
    public let precision: Precision
    /// All rows n = s·b (tensor-parallel regions), and the rows this rank holds in the residual
    /// stream (n/t with sequence parallelism) with the first one's index.
    public var rows: Int { seq * batch }
    public let shardRows: Int, shardRowOffset: Int
    public let attentionShape: AttentionShape
    let arena: FloatBuffer
    public let deferredWeightGradients = DeferredWeightGradients()
    public let residual: [UnsafeMutablePointer<Float>]  // L+1 × [nS, h]
    /// Each layer's saved-activation set (layers recomputed together share sets; see RecomputePlan).
    public let layers: [LayerActivations]
    public let recompute: RecomputePlan
    /// Bytes the transformer layers hold: their inputs (residual[1...L]) and saved-activation sets —
    /// what Korthikanti et al.'s per-layer formula counts (ActivationMemory.swift).
    public let layerBytes: Int
    public let finalNorm: UnsafeMutablePointer<Float>  // [n, h] (gathered under SP)
    public let finalMean: UnsafeMutablePointer<Float>, finalRstd: UnsafeMutablePointer<Float>  // [nS]
    /// ∂loss/∂LN_f(x) [n, h] on the last stage: written by the LM head's fused backward at the end
    /// of a training forward, read by the final LayerNorm's backward first thing in backward. It
    /// shares memory with the scratch `tmpH`, which no layer uses between those two points.
    public var headGradient: UnsafeMutablePointer<Float> { tmpH }
    // Scratch, reused by every layer: valid only within one call.
    public let tmpH: UnsafeMutablePointer<Float>  // [n, h]
    public let tmpH2: UnsafeMutablePointer<Float>  // [n, h]
    public let tmpS: UnsafeMutablePointer<Float>  // [n, h] (holds [nS, h] shards)
    public let tmpWide: UnsafeMutablePointer<Float>  // [n, max(f, qkv)/t] ([n, max(3f, qkv)/t] with SwiGLU)
    public let dResidual: UnsafeMutablePointer<Float>  // [nS, h]
    public let logits: UnsafeMutablePointer<Float>  // [chunk, local vocabulary]
    public let rowStats: UnsafeMutablePointer<Float>  // [3 · chunk]
    public let attentionScratch: UnsafeMutablePointer<Float>
    /// Post-LN only: [nS, h] scratch of a layer's backward; [nS, h] the embedding sum before its
    /// LayerNorm, and that norm's mean and rstd [nS].
    public let postScratch: UnsafeMutablePointer<Float>?
    public let embeddingSum: UnsafeMutablePointer<Float>?
    public let embeddingStats: (mean: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>)?
    public let tokens: Int32Buffer, targets: Int32Buffer  // [s, b]
    public let rowLoss: UnsafeMutablePointer<Double>  // [n]

    /// Memory for `layers` transformer layers (the layers of this model chunk; all by default),
    /// with one saved-activation set per layer or, under `recompute`, the plan's shared sets.
    /// `heldWords` false keeps the held tensors in fp32 even in bf16/fp16 (a comparison for tests).
    public init(
        config c: GPTConfig, microBatch b: Int, threads: Int, tensorParallel tp: TensorParallel = .single,
        layers: Int? = nil,
        recompute: RecomputePlan? = nil, precision: Precision = .fp32, heldWords: Bool? = nil
    ) {
        self.precision = precision
        let layerCount = layers ?? c.numLayers
        let plan_ = recompute ?? .none(layers: layerCount)
        precondition(
            plan_.setOf.count == layerCount, "recompute plan for \(plan_.setOf.count) layers, chunk has \(layerCount)")
        seq = c.seqLength; batch = b; hidden = c.hiddenSize; tensorParallel = tp
        rotary = RotaryEmbedding(config: c)
        slidingWindow = c.slidingWindow
        let n = c.seqLength * b, aL = c.numAttentionHeads / tp.size
        countedRows = n
        shardRows = tp.shardRows(n); shardRowOffset = tp.shardRowOffset(n)
        attentionShape = AttentionShape(
            seq: c.seqLength, batch: b, heads: aL, headDim: c.headDim,
            headOffset: tp.rank * aL, totalHeads: c.numAttentionHeads, headsPerGroup: c.headsPerQueryGroup)
        let o = TransformerArenaLayout(
            config: c, microBatch: b, threads: threads, tensorParallel: tp, layers: layerCount, sets: plan_.sets,
            precision: precision, heldWords: heldWords)
        layerBytes = o.layerBytes
        let (res, lo, fn, fm, fr, t1, t2, ts, tw, dr, lg, rs, asc, post) = (
            o.residual, o.sets, o.finalNorm, o.finalMean, o.finalRstd, o.tmpH, o.tmpH2, o.tmpS, o.tmpWide,
            o.dResidual, o.logits, o.rowStats, o.attentionScratch, o.post
        )
        arena = FloatBuffer(count: o.total)
        let base = arena.base
        residual = res.map { base + $0 }
        let fL = c.ffnHiddenSize / tp.size, qL = c.attentionWidth / tp.size, h = c.hiddenSize
        let fc1L = c.fc1Width / tp.size, qkvL = c.qkvWidth / tp.size
        /// A held tensor at `offset`: fp32 storage there, or 16-bit words there computed in `stage`.
        func held(_ offset: Int, _ count: Int, _ stage: Int?) -> HeldTensor {
            guard let stage else {
                return HeldTensor(values: base + offset, words: nil, count: count, precision: precision)
            }
            let words = UnsafeMutableRawPointer(base + offset).assumingMemoryBound(to: UInt16.self)
            return HeldTensor(values: base + stage, words: words, count: count, precision: precision)
        }
        let st = o.staging
        let sets = lo.map { (o, ps, qk) in
            LayerActivations(
                ln1: held(o.0, n * h, st?.norm), ln1Mean: base + o.1, ln1Rstd: base + o.2,
                qkv: held(o.3, n * qkvL, st?.wide), context: held(o.4, n * qL, st?.wide2), lse: base + o.5,
                mid: base + o.6, ln2: held(o.7, n * h, st?.norm), ln2Mean: base + o.8, ln2Rstd: base + o.9,
                fc1: held(o.10, n * fc1L, st?.wide), gelu: held(o.11, n * fL, st?.wide2),
                postSum: ps.map { base + $0 },
                qkNorm: qk.map {
                    QKNorm.Saved(query: base + $0[0], key: base + $0[1], mean: base + $0[2], rstd: base + $0[3])
                })
        }
        postScratch = post.map { base + $0[0] }
        embeddingSum = post.map { base + $0[1] }
        embeddingStats = post.map { (base + $0[2], base + $0[3]) }
        self.layers = plan_.setOf.map { sets[$0] }
        self.recompute = plan_
        finalNorm = base + fn; finalMean = base + fm; finalRstd = base + fr
        tmpH = base + t1; tmpH2 = base + t2; tmpS = base + ts; tmpWide = base + tw; dResidual = base + dr
        logits = base + lg; rowStats = base + rs; attentionScratch = base + asc
        tokens = Int32Buffer(count: n); targets = Int32Buffer(count: n)
        rowLoss = .allocate(capacity: max(n, 1))
        rowLoss.initialize(repeating: 0, count: max(n, 1))
    }

    deinit { rowLoss.deallocate() }

    /// Bytes held by the activation arena.
    public var bytes: Int { arena.count * 4 + deferredWeightGradients.bytes }

    /// Korthikanti et al.'s figure for `layers` layers of one micro-batch (selective form; 4-byte tensors in
    /// fp32, 2-byte in bf16/fp16, where the held tensors are 16-bit and the residual stream stays fp32).
    public static func layerFormulaBytes(
        config c: GPTConfig, microBatch: Int, tensorParallel tp: TensorParallel,
        layers: Int, recompute: RecomputePlan, precision: Precision
    ) -> Double {
        let f = ActivationMemoryFormula(
            seq: c.seqLength, microBatch: microBatch, hidden: c.hiddenSize, heads: c.numAttentionHeads,
            tensorParallel: tp.size, sequenceParallel: tp.sequenceParallel, ffn: Double(c.ffnHiddenSize),
            fc1Width: Double(c.fc1Width), qkvWidth: Double(c.qkvWidth), contextWidth: Double(c.attentionWidth))
        return f.peakBytes(layers: layers, plan: recompute, elementBytes: precision.isReduced ? 2 : 4, selective: true)
    }

    public var stageInput: UnsafeMutablePointer<Float> { residual[0] }
    public var stageOutput: UnsafeMutablePointer<Float> { residual[residual.count - 1] }
    public var boundaryGradient: UnsafeMutablePointer<Float> { dResidual }
    public var boundaryCount: Int { shardRows * hidden }
}

/// Where each tensor of a TransformerActivations lives in its arena (float offsets), and the total:
/// the one place the arena is planned, read by the activations themselves and by the planner's
/// memory model (which needs the size without allocating it).
public struct TransformerArenaLayout: Sendable {
    typealias SetOffsets = (Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int)
    let residual: [Int]
    let sets: [(SetOffsets, Int?, [Int]?)]
    let finalNorm: Int, finalMean: Int, finalRstd: Int, tmpH: Int, tmpH2: Int, tmpS: Int, tmpWide: Int
    let dResidual: Int, logits: Int, rowStats: Int, attentionScratch: Int
    let post: [Int]?
    /// 16-bit runs: the fp32 staging buffers the held tensors are computed in — LayerNorm outputs
    /// [n, h]; QKV, then FC1's output [n, max(qkv, f)/t]; the attention context, then GELU's output
    /// [n, max(a·d, f)/t]. Each holds one tensor at a time in a layer's forward and backward pass;
    /// together they lie in the logits' memory, which only the LM head uses.
    let staging: (norm: Int, wide: Int, wide2: Int)?
    /// Floats in the arena, and bytes of the layers' inputs and saved sets.
    public let total: Int, layerBytes: Int

    /// `layers` transformer layers with `sets` saved-activation sets (one per layer without recomputation);
    /// in bf16/fp16 the held tensors take 16-bit words (unless `heldWords` is false).
    public init(
        config c: GPTConfig, microBatch b: Int, threads: Int, tensorParallel tp: TensorParallel, layers: Int, sets: Int,
        precision: Precision = .fp32, heldWords: Bool? = nil
    ) {
        let n = c.seqLength * b, h = c.hiddenSize, t = tp.size
        let fL = c.ffnHiddenSize / t, qL = c.attentionWidth / t, aL = c.numAttentionHeads / t, fc1L = c.fc1Width / t
        let qkvL = c.qkvWidth / t, gL = c.queryGroups / t
        let nS = tp.shardRows(n)
        var plan = ArenaPlan()
        let half = precision.isReduced && heldWords != false
        /// Arena floats of a held tensor of `count` values (two 16-bit words per float in 16-bit runs).
        func held(_ count: Int) -> Int { plan.take(half ? (count + 1) / 2 : count) }
        residual = (0...layers).map { _ in plan.take(nS * h) }
        let layersStart = plan.total - ArenaPlan.aligned(nS * h) * layers
        self.sets = (0..<sets).map { _ in
            (
                (
                    held(n * h), plan.take(nS), plan.take(nS), held(n * qkvL), held(n * qL),
                    plan.take(n * aL), plan.take(nS * h), held(n * h), plan.take(nS), plan.take(nS),
                    held(n * fc1L), held(n * fL)
                ),
                c.postLayerNorm ? plan.take(nS * h) : nil,
                // qk_layernorm: queries [n·a/t, d], keys [n·g/t, d], mean and rstd per vector.
                c.qkLayerNorm
                    ? [n * qL, n * gL * c.headDim, n * (aL + gL), n * (aL + gL)].map { plan.take($0) } : nil
            )
        }
        layerBytes = (plan.total - layersStart) * 4
        finalNorm = plan.take(n * h); finalMean = plan.take(nS); finalRstd = plan.take(nS)
        // The row-parallel partial sums [n, h]; the attention's output gradient [n, a·d/t] (a·d may
        // exceed h with kv_channels) and qk_layernorm's backward scratch, the same size.
        tmpH = plan.take(n * max(h, qL)); tmpH2 = plan.take(n * max(h, qL)); tmpS = plan.take(n * h)
        // FC1's gradient, and with SwiGLU the activation's gradient after it.
        tmpWide = plan.take(n * max(fc1L + (c.swiglu ? fL : 0), qkvL)); dResidual = plan.take(nS * h)
        let vocab = VocabShard(config: c, tensorParallel: tp)
        let chunk = VocabCrossEntropy.chunkRows(rows: n, vocab: c.vocabSize)
        // The held tensors' staging buffers share the logits' memory: the layers use them, the LM
        // head the logits, never both at once (a deferred LM-head W pass keeps its own copy).
        let stagingSizes = half ? [n * h, n * max(qkvL, fc1L), n * max(qL, fL)].map(ArenaPlan.aligned) : []
        logits = plan.take(max(chunk * max(1, vocab.realRows), stagingSizes.reduce(0, +)))
        staging =
            half ? (logits, logits + stagingSizes[0], logits + stagingSizes[0] + stagingSizes[1]) : nil
        rowStats = plan.take(3 * chunk)
        let attn = AttentionShape(
            seq: c.seqLength, batch: b, heads: aL, headDim: c.headDim, headOffset: tp.rank * aL,
            totalHeads: c.numAttentionHeads)
        // Attention scratch per worker: as many as the thread budget may run, whatever `threads` says.
        attentionScratch = plan.take(max(1, threads, ThreadBudget.threads) * attn.scratchPerWorker)
        // Post-LN: a layer's norm-backward scratch, and the embedding sum with its norm's statistics.
        post = c.postLayerNorm ? [plan.take(nS * h), plan.take(nS * h), plan.take(nS), plan.take(nS)] : nil
        total = plan.total
    }
}

/// The rows of the (padded) word embedding this tensor rank owns, and how many of them are real
/// vocabulary entries: rank r owns [r·Vp/t, (r+1)·Vp/t); rows ≥ V are padding and never used.
public struct VocabShard: Sendable {
    public let start: Int, rows: Int, realRows: Int
    /// The whole vocabulary's size (targets must lie in 0 ..< vocabSize).
    public let vocabSize: Int
    public init(start: Int, rows: Int, realRows: Int, vocabSize: Int? = nil) {
        self.start = start; self.rows = rows; self.realRows = realRows; self.vocabSize = vocabSize ?? start + realRows
    }
    public init(config c: GPTConfig, tensorParallel tp: TensorParallel) {
        rows = c.paddedVocabSize / tp.size
        start = tp.rank * rows
        realRows = max(0, min(rows, c.vocabSize - start))
        vocabSize = c.vocabSize
    }
}

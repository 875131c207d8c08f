// BertActivations.swift — one BERT micro-batch's memory: the shared transformer activations (token
// ids in `core.tokens`, the residual stream, layer sets, scratch), the BERT inputs (token types,
// per-sequence lengths — the key-padding mask —, masked-LM labels, sequence labels: sentence order
// when pretraining, the class or the right option when finetuning), and on the last stage the
// heads' saved tensors. Rows are [s, b] (row = position·b + sequence), as in
// the core; the masked-LM head runs on the masked rows only.
import Tensor

public final class BertActivations: ChunkActivations, @unchecked Sendable {
    public let core: TransformerActivations
    /// [s, b] token types (0: segment A and [CLS], 1: segment B), and masked-LM targets (−1: not masked).
    public let tokentypes: Int32Buffer, labels: Int32Buffer
    /// Real tokens of each sequence; positions beyond are padding (never attended to, never scored).
    public private(set) var lengths: [Int]
    /// Pretraining: the sentence-order label of each sequence (1: the segments were swapped).
    /// Classification: each sequence's class. Multiple choice: entry q is question q's right option
    /// (0 ..< choices); its options are sequences q·choices ..< (q + 1)·choices.
    public var sequenceLabels: [Int32]
    /// The heads' memory on the last stage (nil elsewhere): masked rows' inputs, dense output, GELU
    /// output, LayerNorm output and statistics, and the pooler's input and output.
    let head: BertHeadMemory?
    /// Results of the last forward: Σ masked-LM losses and the masked rows; Σ losses of the pooled
    /// head (sentence order, classification or multiple choice), its correct predictions and its
    /// examples (sequences, or questions for multiple choice).
    public internal(set) var lmLossSum = 0.0, maskedRows = 0, pooledLossSum = 0.0, pooledCorrect = 0
    public internal(set) var pooledExamples = 0
    /// Masked rows whose target is the arg-max prediction (evaluation forwards only).
    public internal(set) var lmCorrect = 0

    init(core: TransformerActivations, hasHead: Bool, hidden h: Int, maskedLM: Bool = true, outputs: Int = 2) {
        self.core = core
        let n = core.rows, b = core.batch
        tokentypes = Int32Buffer(count: n)
        labels = Int32Buffer(count: n)
        lengths = [Int](repeating: core.seq, count: b)
        sequenceLabels = [Int32](repeating: 0, count: b)
        head = hasHead ? BertHeadMemory(rows: maskedLM ? n : 0, batch: b, hidden: h, outputs: outputs) : nil
        core.attentionMask = .keyPadding(lengths: lengths)
    }

    /// Sets the real length of each sequence (1...s); the rest of each is padding.
    public func setLengths(_ l: [Int]) {
        precondition(l.count == core.batch && l.allSatisfy { (1...core.seq).contains($0) }, "lengths must be 1...seq")
        lengths = l
        core.attentionMask = .keyPadding(lengths: l)
    }

    public var stageInput: UnsafeMutablePointer<Float> { core.stageInput }
    public var stageOutput: UnsafeMutablePointer<Float> { core.stageOutput }
    public var boundaryGradient: UnsafeMutablePointer<Float> { core.boundaryGradient }
    public var boundaryCount: Int { core.boundaryCount }
    public var bytes: Int { core.bytes + (head?.bytes ?? 0) + 8 * core.rows }
    public var layerBytes: Int { core.layerBytes }
    public var deferredWeightGradients: DeferredWeightGradients { core.deferredWeightGradients }
}

/// The heads' saved tensors, planned up front for the most rows a micro-batch can mask (all n).
final class BertHeadMemory: @unchecked Sendable {
    let arena: FloatBuffer
    /// [k, h] each (k masked rows; none when finetuning): gathered final-norm rows, dense output,
    /// GELU output, LayerNorm output; its gradient; [k] LayerNorm statistics.
    let x, dense, gelu, norm, dNorm: UnsafeMutablePointer<Float>
    let mean, rstd: UnsafeMutablePointer<Float>
    /// [b, h]: the pooler's input (token 0 of each sequence), pre-activation, output and their
    /// gradients; [b, outputs] the pooled head's logits.
    let poolIn, poolPre, pooled, dPooled, dPoolIn: UnsafeMutablePointer<Float>
    let pooledLogits: UnsafeMutablePointer<Float>
    /// [n] the masked-LM targets of the masked rows, their losses.
    let targets: Int32Buffer
    let rowLoss: UnsafeMutablePointer<Double>
    /// [n] whether each masked row's target is the arg-max prediction (evaluation).
    let argmax: UnsafeMutablePointer<Bool>

    /// The arena's offsets: five [n, h] tensors, two [n] statistics, five [b, h] pooler tensors, the logits.
    static func plan(rows n: Int, batch b: Int, hidden h: Int, outputs: Int) -> (
        plan: ArenaPlan, rows: [Int], stats: [Int], pooled: [Int], logits: Int
    ) {
        var plan = ArenaPlan()
        let o = (0..<5).map { _ in plan.take(n * h) }, st = (0..<2).map { _ in plan.take(n) }
        let p = (0..<5).map { _ in plan.take(b * h) }, lg = plan.take(outputs * b)
        return (plan, o, st, p, lg)
    }

    /// Bytes of one head memory: the arena, and [n] targets (4 bytes), losses (8) and arg-max flags (1).
    static func bytes(rows n: Int, batch b: Int, hidden h: Int, outputs: Int) -> Int {
        plan(rows: n, batch: b, hidden: h, outputs: outputs).plan.total * 4 + 13 * n
    }

    init(rows n: Int, batch b: Int, hidden h: Int, outputs: Int) {
        let (plan, o, st, p, lg) = Self.plan(rows: n, batch: b, hidden: h, outputs: outputs)
        arena = FloatBuffer(count: plan.total)
        let base = arena.base
        (x, dense, gelu, norm, dNorm) = (base + o[0], base + o[1], base + o[2], base + o[3], base + o[4])
        (mean, rstd) = (base + st[0], base + st[1])
        (poolIn, poolPre, pooled, dPooled, dPoolIn) = (base + p[0], base + p[1], base + p[2], base + p[3], base + p[4])
        pooledLogits = base + lg
        targets = Int32Buffer(count: n)
        rowLoss = .allocate(capacity: max(n, 1))
        rowLoss.initialize(repeating: 0, count: max(n, 1))
        argmax = .allocate(capacity: max(n, 1))
        argmax.initialize(repeating: false, count: max(n, 1))
    }

    deinit {
        rowLoss.deallocate()
        argmax.deallocate()
    }

    var bytes: Int { arena.count * 4 + targets.count * 4 }
}

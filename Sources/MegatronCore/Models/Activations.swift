// Activations.swift — the activation and scratch memory of one model replica for one micro-batch
// size, planned up front in one arena (no allocation inside a step). Per layer it holds what the
// layer's backward needs; the residual stream is `residual[0...L]` (layer l reads l, writes l+1).
import Tensor

/// Hands out 64-byte aligned offsets in one arena.
struct ArenaPlan {
    private(set) var total = 0
    mutating func take(_ count: Int) -> Int {
        let o = total
        total += (count + 15) / 16 * 16
        return o
    }
}

/// Per-layer saved tensors (pointers into the activation arena). Shapes: n = s·b rows.
public struct LayerActivations {
    public let ln1: UnsafeMutablePointer<Float>       // [n, h]
    public let ln1Mean: UnsafeMutablePointer<Float>   // [n]
    public let ln1Rstd: UnsafeMutablePointer<Float>   // [n]
    public let qkv: UnsafeMutablePointer<Float>       // [n, 3h]
    public let context: UnsafeMutablePointer<Float>   // [n, h]
    public let lse: UnsafeMutablePointer<Float>       // [b, a, s]
    public let mid: UnsafeMutablePointer<Float>       // [n, h]  residual after attention
    public let ln2: UnsafeMutablePointer<Float>       // [n, h]
    public let ln2Mean: UnsafeMutablePointer<Float>   // [n]
    public let ln2Rstd: UnsafeMutablePointer<Float>   // [n]
    public let fc1: UnsafeMutablePointer<Float>       // [n, f]  pre-activation
    public let gelu: UnsafeMutablePointer<Float>      // [n, f]
}

public final class GPTActivations: @unchecked Sendable {
    public let seq: Int, batch: Int
    public var rows: Int { seq * batch }
    let arena: FloatBuffer
    public let residual: [UnsafeMutablePointer<Float>]   // L+1 × [n, h]
    public let layers: [LayerActivations]
    public let finalNorm: UnsafeMutablePointer<Float>    // [n, h]
    public let finalMean: UnsafeMutablePointer<Float>, finalRstd: UnsafeMutablePointer<Float>
    // Scratch, reused by every layer.
    public let tmpH: UnsafeMutablePointer<Float>          // [n, h]
    public let tmpH2: UnsafeMutablePointer<Float>         // [n, h]
    public let tmpWide: UnsafeMutablePointer<Float>       // [n, max(f, 3h)]
    public let dResidual: UnsafeMutablePointer<Float>     // [n, h]
    public let logits: UnsafeMutablePointer<Float>        // [chunk, V]
    public let attentionScratch: UnsafeMutablePointer<Float>
    public let tokens: Int32Buffer, targets: Int32Buffer  // [s, b]
    public let rowLoss: UnsafeMutablePointer<Double>      // [n]

    public init(config c: GPTConfig, microBatch b: Int, threads: Int) {
        seq = c.seqLength; batch = b
        let n = c.seqLength * b, h = c.hiddenSize, f = c.ffnHiddenSize
        let attn = AttentionShape(seq: c.seqLength, batch: b, heads: c.numAttentionHeads, headDim: c.headDim)
        var plan = ArenaPlan()
        let res = (0...c.numLayers).map { _ in plan.take(n * h) }
        typealias O = (Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int, Int)
        let lo: [O] = (0..<c.numLayers).map { _ in
            (plan.take(n * h), plan.take(n), plan.take(n), plan.take(3 * n * h), plan.take(n * h),
             plan.take(n * c.numAttentionHeads), plan.take(n * h), plan.take(n * h), plan.take(n), plan.take(n),
             plan.take(n * f), plan.take(n * f))
        }
        let fn = plan.take(n * h), fm = plan.take(n), fr = plan.take(n)
        let t1 = plan.take(n * h), t2 = plan.take(n * h), tw = plan.take(n * max(f, 3 * h)), dr = plan.take(n * h)
        let lg = plan.take(VocabCrossEntropy.chunkRows(rows: n, vocab: c.vocabSize) * c.vocabSize)
        let asc = plan.take(max(1, threads) * attn.scratchPerWorker)
        arena = FloatBuffer(count: plan.total)
        let base = arena.base
        residual = res.map { base + $0 }
        layers = lo.map { o in
            LayerActivations(ln1: base + o.0, ln1Mean: base + o.1, ln1Rstd: base + o.2, qkv: base + o.3,
                             context: base + o.4, lse: base + o.5, mid: base + o.6, ln2: base + o.7,
                             ln2Mean: base + o.8, ln2Rstd: base + o.9, fc1: base + o.10, gelu: base + o.11)
        }
        finalNorm = base + fn; finalMean = base + fm; finalRstd = base + fr
        tmpH = base + t1; tmpH2 = base + t2; tmpWide = base + tw; dResidual = base + dr
        logits = base + lg; attentionScratch = base + asc
        tokens = Int32Buffer(count: n); targets = Int32Buffer(count: n)
        rowLoss = .allocate(capacity: max(n, 1))
        rowLoss.initialize(repeating: 0, count: max(n, 1))
    }

    deinit { rowLoss.deallocate() }

    /// Bytes held by the activation arena.
    public var bytes: Int { arena.count * 4 }
}

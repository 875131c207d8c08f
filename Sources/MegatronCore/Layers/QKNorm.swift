// QKNorm.swift — Megatron's qk_layernorm: the model's normalization (LayerNorm or RMSNorm) over each
// head's query and each key head's key (head-size vectors) as they leave QKV, before rope, with one
// [d] weight (and bias) for all queries and one for all keys. The vectors sit in QKV's rows between
// the others (AttentionShape's columns), so each kind is gathered into a contiguous [vectors, d]
// block — which is the input the backward needs, kept per layer — normalized into scratch, and
// scattered back; the backward gathers the gradient, runs the norm's backward (weight and bias
// gradients summed over every vector) and scatters the input gradient back. Each tensor rank
// normalizes its own heads, so the weights' gradients are partial over the tensor group
// (ParameterSpec.perHeadShared).
import Tensor

public enum QKNorm {
    /// One layer's saved inputs: queries [n·heads, d] and keys [n·groups, d] as QKV gave them, and the
    /// norm's mean and rstd per vector [n·(heads + groups)] (queries first).
    public struct Saved {
        public let query: UnsafeMutablePointer<Float>, key: UnsafeMutablePointer<Float>
        public let mean: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>
        public init(
            query: UnsafeMutablePointer<Float>, key: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>,
            rstd: UnsafeMutablePointer<Float>
        ) {
            (self.query, self.key, self.mean, self.rstd) = (query, key, mean, rstd)
        }
    }

    /// The weight and bias (LayerNorm) of one of the two norms.
    public struct Weights {
        public let weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?
        public init(weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?) {
            self.weight = weight; self.bias = bias
        }
    }

    /// The vectors of one kind in QKV's rows: how many per row and where each starts.
    struct Kind {
        let perRow: Int, column: (Int) -> Int
        static func query(_ s: AttentionShape) -> Kind { Kind(perRow: s.heads) { s.queryColumn(head: $0) } }
        static func key(_ s: AttentionShape) -> Kind { Kind(perRow: s.groups) { s.keyColumn(group: $0) } }
    }

    /// Copies the `kind` vectors of qkv's `n` rows into `block` [n·perRow, d] (or back, `scatter`).
    static func move(
        _ qkv: UnsafeMutablePointer<Float>, _ block: UnsafeMutablePointer<Float>, rows n: Int, shape s: AttentionShape,
        kind: Kind, scatter: Bool
    ) {
        let d = s.headDim, width = s.qkvWidth
        ThreadBudget.parallelFor(n, grain: 16) { rr in
            for r in rr {
                for v in 0..<kind.perRow {
                    let inRow = qkv + r * width + kind.column(v), inBlock = block + (r * kind.perRow + v) * d
                    if scatter { inRow.update(from: inBlock, count: d) } else { inBlock.update(from: inRow, count: d) }
                }
            }
        }
    }

    /// Normalizes the queries and keys of qkv [n, shape.qkvWidth] in place; `saved` receives their
    /// inputs and statistics. `scratch`: n·heads·d floats.
    public static func forward(
        qkv: UnsafeMutablePointer<Float>, rows n: Int, shape s: AttentionShape, normalization: Normalization,
        query: Weights, key: Weights, eps: Float, saved: Saved, scratch: UnsafeMutablePointer<Float>
    ) {
        for (kind, input, weights, first) in [
            (Kind.query(s), saved.query, query, 0), (Kind.key(s), saved.key, key, n * s.heads),
        ] {
            let vectors = n * kind.perRow
            move(qkv, input, rows: n, shape: s, kind: kind, scatter: false)
            Norm.forward(
                normalization, x: input, weight: weights.weight, bias: weights.bias, y: scratch,
                mean: saved.mean + first, rstd: saved.rstd + first, rows: vectors, width: s.headDim, eps: eps)
            move(qkv, scratch, rows: n, shape: s, kind: kind, scatter: true)
        }
    }

    /// Replaces the queries' and keys' gradients in dqkv [n, shape.qkvWidth] (with respect to the
    /// norms' outputs) by those with respect to their inputs, adding the weights' and biases'
    /// gradients to `queryGrads` and `keyGrads`. `dy`, `dx`: scratch of n·heads·d floats each.
    public static func backward(
        dqkv: UnsafeMutablePointer<Float>, rows n: Int, shape s: AttentionShape, normalization: Normalization,
        query: Weights, key: Weights, saved: Saved,
        queryGrads: (weight: UnsafeMutablePointer<Float>, bias: UnsafeMutablePointer<Float>?),
        keyGrads: (weight: UnsafeMutablePointer<Float>, bias: UnsafeMutablePointer<Float>?),
        dy: UnsafeMutablePointer<Float>, dx: UnsafeMutablePointer<Float>
    ) {
        for (kind, input, weights, grads, first) in [
            (Kind.query(s), saved.query, query, queryGrads, 0), (Kind.key(s), saved.key, key, keyGrads, n * s.heads),
        ] {
            let vectors = n * kind.perRow
            move(dqkv, dy, rows: n, shape: s, kind: kind, scatter: false)
            dx.update(repeating: 0, count: vectors * s.headDim)
            Norm.backward(
                normalization, dy: dy, x: input, weight: weights.weight, mean: saved.mean + first,
                rstd: saved.rstd + first, dx: dx, dweight: grads.weight, dbias: grads.bias, rows: vectors,
                width: s.headDim)
            move(dqkv, dx, rows: n, shape: s, kind: kind, scatter: true)
        }
    }
}

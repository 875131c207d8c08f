// Layers.swift — conventions shared by every layer in this folder.
//
// Shape legend (Megatron's names): s sequence, b micro-batch, n = s·b rows, h hidden, a heads,
// d = h/a head dim, f ffn hidden, V vocabulary (real), Vp padded vocabulary.
// Activations are `[s, b, h]`, i.e. `[n, h]` row-major with row index i·b + batch.
//
// Gradient convention (as llm.c's layernorm): parameter gradients always accumulate (`+=`), so
// micro-batches add up for free. Activation gradients overwrite (`=`), except for inputs that are
// the residual stream (LayerNorm inputs, the residual add), whose gradients accumulate.
//
// Every layer is a caseless enum of static `forward`/`backward` pairs over raw pointers: no
// allocation, no hidden state. What backward needs, forward writes into buffers the caller owns.
import Tensor

public enum ColumnSums {
    /// `out[c] (+)= Σ_r x[r, c]` for `x [rows, cols]`, parallel over column blocks (deterministic).
    public static func accumulate(
        _ x: UnsafePointer<Float>, rows: Int, cols: Int, into out: UnsafeMutablePointer<Float>
    ) {
        ThreadBudget.parallelFor(cols, grain: 64) { cr in
            var c = cr.lowerBound
            while c + 16 <= cr.upperBound {
                var acc = F16(repeating: 0)
                for r in 0..<rows { acc += load16(x, r * cols + c) }
                store16(load16(out, c) + acc, out, c)
                c += 16
            }
            while c < cr.upperBound {
                var acc: Float = 0
                for r in 0..<rows { acc += x[r * cols + c] }
                out[c] += acc
                c += 1
            }
        }
    }
}

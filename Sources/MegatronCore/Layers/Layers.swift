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
    /// `out[c] (+)= Σ_r x[r, c]` for `x [rows, cols]`, each thread over its own contiguous columns
    /// (deterministic: every column sums its rows in order, from 0, then adds to `out`). Rows are
    /// read in memory order into a per-thread accumulator row, so a wide matrix is streamed, not
    /// walked down its columns a page per element.
    public static func accumulate(
        _ x: UnsafePointer<Float>, rows: Int, cols: Int, into out: UnsafeMutablePointer<Float>
    ) {
        ThreadBudget.parallelFor(cols, grain: 64) { cr in
            let width = cr.count
            withUnsafeTemporaryAllocation(of: Float.self, capacity: width) { buffer in
                let acc = buffer.baseAddress!
                acc.update(repeating: 0, count: width)
                var r = 0
                while r + 4 <= rows {
                    addFourRows(x + r * cols + cr.lowerBound, stride: cols, into: acc, count: width)
                    r += 4
                }
                while r < rows { addRow(x + r * cols + cr.lowerBound, into: acc, count: width); r += 1 }
                addRow(acc, into: out + cr.lowerBound, count: width)
            }
        }
    }

    /// `y += x₀; y += x₁; y += x₂; y += x₃` (rows `stride` apart), in that order, with y loaded once.
    @inline(__always)
    private static func addFourRows(
        _ x: UnsafePointer<Float>, stride s: Int, into y: UnsafeMutablePointer<Float>, count n: Int
    ) {
        var c = 0
        while c + 16 <= n {
            var a = load16(y, c)
            a += load16(x, c); a += load16(x + s, c); a += load16(x + 2 * s, c); a += load16(x + 3 * s, c)
            store16(a, y, c)
            c += 16
        }
        while c < n {
            var a = y[c]
            a += x[c]; a += x[c + s]; a += x[c + 2 * s]; a += x[c + 3 * s]
            y[c] = a
            c += 1
        }
    }

    @inline(__always)
    private static func addRow(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, count n: Int) {
        var c = 0
        while c + 16 <= n { store16(load16(y, c) + load16(x, c), y, c); c += 16 }
        while c < n { y[c] += x[c]; c += 1 }
    }
}

// LayerNorm.swift — y = (x − μ)/√(σ² + ε)·γ + β over the last dimension, one fused pass per row.
// Backward: dx += rstd·(g − mean(g) − x̂·mean(g·x̂)) with g = dy·γ; dγ += Σ dy·x̂, dβ += Σ dy, in
// one pass over the rows: the parameter sums are taken per fixed block of rows as the row's dx is
// written (NormColumnSums), then the blocks summed in order, so they do not depend on the thread count.
import Tensor

public enum LayerNorm {
    /// - x, y: [n, h]   - weight, bias: [h]   - mean, rstd: [n] (saved for backward)
    public static func forward(
        x: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>,
        y: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>,
        rstd: UnsafeMutablePointer<Float>, rows n: Int, width h: Int, eps: Float
    ) {
        ThreadBudget.parallelFor(n, grain: 8) { rr in
            for r in rr {
                let xr = x + r * h, yr = y + r * h
                var acc = F16(repeating: 0)
                var c = 0
                while c + 16 <= h { acc += load16(xr, c); c += 16 }
                var sum = acc.sum()
                while c < h { sum += xr[c]; c += 1 }
                let mu = sum / Float(h)
                var acc2 = F16(repeating: 0)
                c = 0
                while c + 16 <= h { let d = load16(xr, c) - mu; acc2 = acc2.addingProduct(d, d); c += 16 }
                var sq = acc2.sum()
                while c < h { let d = xr[c] - mu; sq += d * d; c += 1 }
                let rs = 1 / (sq / Float(h) + eps).squareRoot()
                mean[r] = mu; rstd[r] = rs
                c = 0
                while c + 16 <= h {
                    let xh = (load16(xr, c) - mu) * rs
                    store16(load16(bias, c).addingProduct(xh, load16(weight, c)), yr, c)
                    c += 16
                }
                while c < h { yr[c] = (xr[c] - mu) * rs * weight[c] + bias[c]; c += 1 }
            }
        }
    }

    /// - dy, x: [n, h]   - dx: [n, h], accumulated (LayerNorm inputs are the residual stream)
    /// - dweight, dbias: [h], accumulated
    public static func backward(
        dy: UnsafePointer<Float>, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
        mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>,
        dx: UnsafeMutablePointer<Float>, dweight: UnsafeMutablePointer<Float>,
        dbias: UnsafeMutablePointer<Float>, rows n: Int, width h: Int
    ) {
        NormColumnSums.accumulate(rows: n, width: h, into: dweight, dbias) { r, gw, gb in
            let xr = x + r * h, dyr = dy + r * h, dxr = dx + r * h
            let mu = mean[r], rs = rstd[r]
            var aG = F16(repeating: 0), aGX = F16(repeating: 0)
            var c = 0
            while c + 16 <= h {
                let g = load16(dyr, c) * load16(weight, c)
                let xh = (load16(xr, c) - mu) * rs
                aG += g; aGX = aGX.addingProduct(g, xh)
                c += 16
            }
            var sG = aG.sum(), sGX = aGX.sum()
            while c < h { let g = dyr[c] * weight[c]; sG += g; sGX += g * (xr[c] - mu) * rs; c += 1 }
            let mG = sG / Float(h), mGX = sGX / Float(h)
            c = 0
            while c + 16 <= h {
                let d = load16(dyr, c), g = d * load16(weight, c)
                let xh = (load16(xr, c) - mu) * rs
                store16(load16(dxr, c) + rs * (g - mG - xh * mGX), dxr, c)
                store16(load16(gw, c).addingProduct(d, xh), gw, c)
                store16(load16(gb, c) + d, gb, c)
                c += 16
            }
            while c < h {
                let d = dyr[c], g = d * weight[c], xh = (xr[c] - mu) * rs
                dxr[c] += rs * (g - mG - xh * mGX)
                gw[c] += d * xh; gb[c] += d
                c += 1
            }
        }
    }
}

/// The norms' parameter gradients as sums over rows, taken in the row pass that writes dx: rows in
/// fixed blocks of `blockRows`, each block's column sums in its own [2, h] slice (in cache while its
/// rows stream by), then the blocks added in order — the same sums whatever the thread count, and
/// dy and x read once instead of again by a pass over the columns.
enum NormColumnSums {
    static let blockRows = 64

    /// Calls `row(r, sums, second)` for every row r < n, where `sums` and `second` are [h] running
    /// column sums of r's block, zero at its first row; then adds every block's `sums` to `first` and
    /// (when given) its `second` to `secondTotal`, block after block.
    static func accumulate(
        rows n: Int, width h: Int, into first: UnsafeMutablePointer<Float>,
        _ secondTotal: UnsafeMutablePointer<Float>?,
        _ row: (Int, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) -> Void
    ) {
        let blocks = (n + blockRows - 1) / blockRows
        guard blocks > 0 else { return }
        let partial = UnsafeMutablePointer<Float>.allocate(capacity: blocks * 2 * h)
        defer { partial.deallocate() }
        ThreadBudget.parallelFor(blocks) { br in
            for b in br {
                let sums = partial + b * 2 * h
                sums.initialize(repeating: 0, count: 2 * h)
                for r in (b * blockRows)..<min(n, (b + 1) * blockRows) { row(r, sums, sums + h) }
            }
        }
        ThreadBudget.parallelFor(h, grain: 256) { cr in
            for c in cr {
                var a: Float = 0, s: Float = 0
                for b in 0..<blocks { a += partial[b * 2 * h + c]; s += partial[b * 2 * h + h + c] }
                first[c] += a
                secondTotal?[c] += s
            }
        }
    }
}

// LayerNorm.swift — y = (x − μ)/√(σ² + ε)·γ + β over the last dimension, one fused pass per row.
// Backward: dx += rstd·(g − mean(g) − x̂·mean(g·x̂)) with g = dy·γ; dγ += Σ dy·x̂, dβ += Σ dy
// (parameter sums are column-parallel, so they do not depend on the thread count).
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
        ThreadBudget.parallelFor(n, grain: 8) { rr in
            for r in rr {
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
                    let g = load16(dyr, c) * load16(weight, c)
                    let xh = (load16(xr, c) - mu) * rs
                    store16(load16(dxr, c) + rs * (g - mG - xh * mGX), dxr, c)
                    c += 16
                }
                while c < h {
                    let g = dyr[c] * weight[c]
                    dxr[c] += rs * (g - mG - (xr[c] - mu) * rs * mGX)
                    c += 1
                }
            }
        }
        ThreadBudget.parallelFor(h, grain: 64) { cr in
            var c = cr.lowerBound
            while c + 16 <= cr.upperBound {
                var gw = F16(repeating: 0), gb = F16(repeating: 0)
                for r in 0..<n {
                    let d = load16(dy, r * h + c)
                    gw = gw.addingProduct(d, (load16(x, r * h + c) - mean[r]) * rstd[r])
                    gb += d
                }
                store16(load16(dweight, c) + gw, dweight, c)
                store16(load16(dbias, c) + gb, dbias, c)
                c += 16
            }
            while c < cr.upperBound {
                var gw: Float = 0, gb: Float = 0
                for r in 0..<n { let d = dy[r * h + c]; gw += d * (x[r * h + c] - mean[r]) * rstd[r]; gb += d }
                dweight[c] += gw; dbias[c] += gb
                c += 1
            }
        }
    }
}

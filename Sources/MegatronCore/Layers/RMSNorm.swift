// RMSNorm.swift — y = x/√(mean(x²) + ε)·γ over the last dimension (Zhang and Sennrich 2019; no mean
// subtracted, no bias), one fused pass per row. Backward, with x̂ = x·rstd and g = dy·γ:
// dx += rstd·(g − x̂·mean(g·x̂)); dγ += Σ dy·x̂ (in the same pass, NormColumnSums: independent of the
// thread count).
// `Norm` picks LayerNorm or RMSNorm by the config's `normalization`, with the same buffers.
import Tensor

public enum RMSNorm {
    /// - x, y: [n, h]   - weight: [h]   - rstd: [n] (saved for backward)
    public static func forward(
        x: UnsafePointer<Float>, weight: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
        rstd: UnsafeMutablePointer<Float>, rows n: Int, width h: Int, eps: Float
    ) {
        ThreadBudget.parallelFor(n, grain: 8) { rr in
            for r in rr {
                let xr = x + r * h, yr = y + r * h
                var acc = F16(repeating: 0)
                var c = 0
                while c + 16 <= h { let v = load16(xr, c); acc = acc.addingProduct(v, v); c += 16 }
                var sq = acc.sum()
                while c < h { sq += xr[c] * xr[c]; c += 1 }
                let rs = 1 / (sq / Float(h) + eps).squareRoot()
                rstd[r] = rs
                c = 0
                while c + 16 <= h { store16(load16(xr, c) * rs * load16(weight, c), yr, c); c += 16 }
                while c < h { yr[c] = xr[c] * rs * weight[c]; c += 1 }
            }
        }
    }

    /// - dy, x: [n, h]   - dx: [n, h], accumulated (norm inputs are the residual stream)   - dweight: [h], accumulated
    public static func backward(
        dy: UnsafePointer<Float>, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
        rstd: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>, dweight: UnsafeMutablePointer<Float>,
        rows n: Int, width h: Int
    ) {
        NormColumnSums.accumulate(rows: n, width: h, into: dweight, nil) { r, gw, _ in
            let xr = x + r * h, dyr = dy + r * h, dxr = dx + r * h, rs = rstd[r]
            var aGX = F16(repeating: 0)
            var c = 0
            while c + 16 <= h {
                aGX = aGX.addingProduct(load16(dyr, c) * load16(weight, c), load16(xr, c) * rs)
                c += 16
            }
            var sGX = aGX.sum()
            while c < h { sGX += dyr[c] * weight[c] * xr[c] * rs; c += 1 }
            let mGX = sGX / Float(h)
            c = 0
            while c + 16 <= h {
                let d = load16(dyr, c), g = d * load16(weight, c), xh = load16(xr, c) * rs
                store16(load16(dxr, c) + rs * (g - xh * mGX), dxr, c)
                store16(load16(gw, c).addingProduct(d, xh), gw, c)
                c += 16
            }
            while c < h {
                let d = dyr[c], xh = xr[c] * rs
                dxr[c] += rs * (d * weight[c] - xh * mGX)
                gw[c] += d * xh
                c += 1
            }
        }
    }
}

/// The model's norm (`normalization`): LayerNorm with a bias, or RMSNorm without (its `mean` unused).
public enum Norm {
    public static func forward(
        _ kind: Normalization, x: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
        y: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>,
        rows n: Int, width h: Int, eps: Float
    ) {
        switch kind {
        case .layerNorm:
            guard let bias else { preconditionFailure("LayerNorm has a bias") }
            LayerNorm.forward(
                x: x, weight: weight, bias: bias, y: y, mean: mean, rstd: rstd, rows: n, width: h, eps: eps)
        case .rmsNorm:
            RMSNorm.forward(x: x, weight: weight, y: y, rstd: rstd, rows: n, width: h, eps: eps)
        }
    }

    public static func backward(
        _ kind: Normalization, dy: UnsafePointer<Float>, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
        mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>,
        dweight: UnsafeMutablePointer<Float>, dbias: UnsafeMutablePointer<Float>?, rows n: Int, width h: Int
    ) {
        switch kind {
        case .layerNorm:
            guard let dbias else { preconditionFailure("LayerNorm has a bias") }
            LayerNorm.backward(
                dy: dy, x: x, weight: weight, mean: mean, rstd: rstd, dx: dx, dweight: dweight, dbias: dbias, rows: n,
                width: h)
        case .rmsNorm:
            RMSNorm.backward(dy: dy, x: x, weight: weight, rstd: rstd, dx: dx, dweight: dweight, rows: n, width: h)
        }
    }
}

// SwiGLU.swift — the gated MLP activation of Megatron's `--swiglu` (Shazeer 2020): FC1's output row
// holds [gate | up] (ffn columns each, this rank's slice of both), and act = SiLU(gate)·up with
// SiLU(x) = x·σ(x). Backward: dgate = dact·up·σ(g)·(1 + g·(1 − σ(g))), dup = dact·SiLU(g).
import Tensor

public enum SwiGLU {
    @inline(__always) static func sigmoid(_ x: F16) -> F16 { 1 / (1 + simdExp(-x)) }
    @inline(__always) static func sigmoid(_ x: Float) -> Float { 1 / (1 + scalarExp(-x)) }

    /// - fc1: [n, 2f] rows [gate | up]   - act: [n, f]
    public static func forward(fc1: UnsafePointer<Float>, act: UnsafeMutablePointer<Float>, rows n: Int, width f: Int) {
        ThreadBudget.parallelFor(n, grain: max(1, (1 << 12) / max(1, f))) { rr in
            for r in rr {
                let g = fc1 + r * 2 * f, u = g + f, y = act + r * f
                var c = 0
                while c + 16 <= f {
                    let x = load16(g, c)
                    store16(x * sigmoid(x) * load16(u, c), y, c)
                    c += 16
                }
                while c < f { y[c] = g[c] * sigmoid(g[c]) * u[c]; c += 1 }
            }
        }
    }

    /// - dact: [n, f]   - fc1: [n, 2f] the forward's input   - dfc1: [n, 2f] overwritten (must not alias dact)
    public static func backward(
        dact: UnsafePointer<Float>, fc1: UnsafePointer<Float>, dfc1: UnsafeMutablePointer<Float>, rows n: Int,
        width f: Int
    ) {
        ThreadBudget.parallelFor(n, grain: max(1, (1 << 12) / max(1, f))) { rr in
            for r in rr {
                let g = fc1 + r * 2 * f, u = g + f, d = dact + r * f, dg = dfc1 + r * 2 * f, du = dg + f
                var c = 0
                while c + 16 <= f {
                    let x = load16(g, c), s = sigmoid(x), dy = load16(d, c)
                    store16(dy * load16(u, c) * s * (1 + x * (1 - s)), dg, c)
                    store16(dy * x * s, du, c)
                    c += 16
                }
                while c < f {
                    let x = g[c], s = sigmoid(x)
                    dg[c] = d[c] * u[c] * s * (1 + x * (1 - s))
                    du[c] = d[c] * x * s
                    c += 1
                }
            }
        }
    }
}

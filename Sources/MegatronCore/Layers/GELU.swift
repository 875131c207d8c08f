// GELU.swift — GPT-2's tanh-approximate GELU, y = x·σ(2u), u = √(2/π)(x + 0.044715x³), and its
// derivative; vectorised with the SIMD exp in Tensor/SIMDMath.swift.
import Tensor

public enum GELU {
    /// - x, y: [count] (y may alias x)
    public static func forward(x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, count n: Int) {
        ThreadBudget.parallelFor(n, grain: 1 << 12) { r in
            var i = r.lowerBound
            while i + 16 <= r.upperBound { store16(simdGELU(load16(x, i)), y, i); i += 16 }
            while i < r.upperBound { y[i] = x[i].geluValue; i += 1 }
        }
    }

    /// - dy, x: [count]   - dx: [count], overwritten (may alias dy)
    public static func backward(
        dy: UnsafePointer<Float>, x: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>, count n: Int
    ) {
        ThreadBudget.parallelFor(n, grain: 1 << 12) { r in
            var i = r.lowerBound
            while i + 16 <= r.upperBound { store16(load16(dy, i) * simdGELUDerivative(load16(x, i)), dx, i); i += 16 }
            while i < r.upperBound { dx[i] = dy[i] * x[i].geluDerivative; i += 1 }
        }
    }
}

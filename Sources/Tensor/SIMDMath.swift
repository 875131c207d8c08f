// SIMDMath.swift — vectorised exp and GELU (tanh form) for SIMD16<Float>.
// exp: x = n·ln2 + r with |r| ≤ ln2/2, e^r by its degree-7 Taylor polynomial (relative error
// ≤ r⁸/8! ≈ 5e-9), 2ⁿ built in the exponent bits. Inputs below −87 give exactly 0 (so a −∞ mask
// stays exact); inputs are clamped at 88 to stay finite. Needs FMA (`-march`) to be fast.
// All four are @_transparent: with @inline(__always) alone, Swift's inliner left them as calls in
// large callers (the cross entropy's and attention's row loops), passing 16 floats in four xmm
// registers — 26% of an evaluation run went to that call.

public typealias F16 = SIMD16<Float>

@_transparent
public func simdExp(_ xin: F16) -> F16 {
    let hiClamp = F16(repeating: 88.0)
    let x = xin.replacing(with: hiClamp, where: xin .> hiClamp)
    let underflow = x .< F16(repeating: -87.0)
    let xs = x.replacing(with: F16(repeating: -87.0), where: underflow)
    // n = round(x·log2 e) without a float→int conversion (Swift's generic SIMD conversion is scalar):
    // adding 1.5·2²³ rounds to an integer held in the low mantissa bits of t.
    let magic = F16(repeating: 12_582_912.0)
    let t = (xs * 1.442695040888963) + magic
    let n = t - magic
    // r = x − n·ln2 in two steps (Cody–Waite split of ln2) to keep r accurate.
    var r = xs.addingProduct(n, F16(repeating: -0.693145751953125))
    r = r.addingProduct(n, F16(repeating: -1.428606765330187e-06))
    var p = F16(repeating: 1.0 / 5040.0)
    p = F16(repeating: 1.0 / 720.0).addingProduct(p, r)
    p = F16(repeating: 1.0 / 120.0).addingProduct(p, r)
    p = F16(repeating: 1.0 / 24.0).addingProduct(p, r)
    p = F16(repeating: 1.0 / 6.0).addingProduct(p, r)
    p = F16(repeating: 0.5).addingProduct(p, r)
    p = F16(repeating: 1.0).addingProduct(p, r)
    p = F16(repeating: 1.0).addingProduct(p, r)
    // 2ⁿ: the integer n sits in t's bits as 0x4B40_0000 + n; move it into the exponent field.
    let bits = (unsafeBitCast(t, to: SIMD16<UInt32>.self) &- 0x4B40_0000 &+ 127) &<< 23
    let scale = unsafeBitCast(bits, to: F16.self)
    return (p * scale).replacing(with: 0, where: underflow)
}

@_transparent
public func scalarExp(_ x: Float) -> Float { simdExp(F16(repeating: x))[0] }

/// √(2/π) and the cubic coefficient of GPT-2's tanh-approximate GELU.
public let geluK: Float = 0.7978845608028654
public let geluA: Float = 0.044715

/// GELU(x) = ½x(1 + tanh(u)) = x·σ(2u), u = √(2/π)(x + 0.044715x³).
@_transparent
public func simdGELU(_ x: F16) -> F16 {
    let u = geluK * x.addingProduct(geluA * x * x, x)
    return x / (1 + simdExp(-2 * u))
}

/// dGELU/dx = σ(2u) + x·σ(2u)(1 − σ(2u))·2u′,  u′ = √(2/π)(1 + 3·0.044715x²).
@_transparent
public func simdGELUDerivative(_ x: F16) -> F16 {
    let x2 = x * x
    let u = geluK * x.addingProduct(geluA * x2, x)
    let s = 1 / (1 + simdExp(-2 * u))
    let du = geluK * ((3 * geluA) * x2 + 1)
    return s + x * s * (1 - s) * 2 * du
}

extension Float {
    /// Scalar forms of the SIMD functions (same arithmetic, lane 0), for tails and tests.
    public var geluValue: Float { simdGELU(F16(repeating: self))[0] }
    public var geluDerivative: Float { simdGELUDerivative(F16(repeating: self))[0] }
}

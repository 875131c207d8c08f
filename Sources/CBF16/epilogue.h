/* epilogue.h — the rule by which a product finishes its results where they are computed
   (bf16_epilogue in include/bf16gemm.h): rounded to bf16 and kept as words, and for FC1 GPT-2's
   tanh GELU of the rounded value, rounded and kept too; or, for FC2's input gradient, times GELU′ of
   FC1's kept output and rounded. exp16, gelu16 and gelu_derivative16 are Tensor/SIMDMath.swift's
   simdExp, simdGELU and simdGELUDerivative operation for operation — the same roundings, fused multiply-adds exactly
   where those use addingProduct, no contraction elsewhere — so a finished product equals the
   separate passes (HeldTensor.roundAndKeep, GELU.forward) bit for bit. */
#ifndef BF16_EPILOGUE_H
#define BF16_EPILOGUE_H
#include "bf16gemm.h"
#include "bf16_internal.h"
#include <immintrin.h>
#pragma STDC FP_CONTRACT OFF

/* e^x = 2ⁿ·e^r, x = n·ln2 + r (Cody–Waite), e^r by its degree-7 Taylor polynomial; below −87
   exactly 0, clamped at 88. */
__attribute__((target("avx512f")))
static inline __m512 exp16(__m512 xin) {
    __m512 x = _mm512_mask_mov_ps(xin, _mm512_cmp_ps_mask(xin, _mm512_set1_ps(88.0f), _CMP_GT_OQ), _mm512_set1_ps(88.0f));
    __mmask16 underflow = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.0f), _CMP_LT_OQ);
    __m512 xs = _mm512_mask_mov_ps(x, underflow, _mm512_set1_ps(-87.0f));
    __m512 magic = _mm512_set1_ps(12582912.0f);
    __m512 t = _mm512_add_ps(_mm512_mul_ps(xs, _mm512_set1_ps(1.442695040888963f)), magic);
    __m512 n = _mm512_sub_ps(t, magic);
    __m512 r = _mm512_fmadd_ps(n, _mm512_set1_ps(-0.693145751953125f), xs);
    r = _mm512_fmadd_ps(n, _mm512_set1_ps(-1.428606765330187e-06f), r);
    __m512 p = _mm512_set1_ps(1.0f / 5040.0f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    __m512i e = _mm512_add_epi32(_mm512_sub_epi32(_mm512_castps_si512(t), _mm512_set1_epi32(0x4B400000)), _mm512_set1_epi32(127));
    return _mm512_maskz_mov_ps((__mmask16)~underflow, _mm512_mul_ps(p, _mm512_castsi512_ps(_mm512_slli_epi32(e, 23))));
}

/* x / (1 + e^(−2u)), u = √(2/π)·(x + 0.044715·x·x·x), the cube's last product fused with the add. */
__attribute__((target("avx512f")))
static inline __m512 gelu16(__m512 x) {
    __m512 cube = _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.044715f), x), x);
    __m512 u = _mm512_mul_ps(_mm512_set1_ps(0.7978845608028654f), _mm512_fmadd_ps(cube, x, x));
    __m512 e = exp16(_mm512_mul_ps(_mm512_set1_ps(-2.0f), u));
    return _mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}

/* GELU′(x) = σ(2u) + x·σ(2u)(1 − σ(2u))·2u′, u′ = √(2/π)(1 + 3·0.044715x²): simdGELUDerivative's
   operations in its order. */
__attribute__((target("avx512f")))
static inline __m512 gelu_derivative16(__m512 x) {
    __m512 x2 = _mm512_mul_ps(x, x);
    __m512 u = _mm512_mul_ps(_mm512_set1_ps(0.7978845608028654f), _mm512_fmadd_ps(_mm512_mul_ps(_mm512_set1_ps(0.044715f), x2), x, x));
    __m512 one = _mm512_set1_ps(1.0f);
    __m512 s = _mm512_div_ps(one, _mm512_add_ps(one, exp16(_mm512_mul_ps(_mm512_set1_ps(-2.0f), u))));
    __m512 du = _mm512_mul_ps(_mm512_set1_ps(0.7978845608028654f),
                              _mm512_add_ps(_mm512_mul_ps(_mm512_set1_ps(3.0f * 0.044715f), x2), one));
    __m512 t = _mm512_mul_ps(_mm512_mul_ps(_mm512_mul_ps(_mm512_mul_ps(x, s), _mm512_sub_ps(one, s)), _mm512_set1_ps(2.0f)), du);
    return _mm512_add_ps(s, t);
}

/* Rounded to bf16 (as half_round_keep), the words stored under mask m, the rounded value returned. */
__attribute__((target("avx512f,avx512bw,avx512vl")))
static inline __m512 keep16(__m512 x, uint16_t *w, __mmask16 m) {
    __m512i bits = round16_lanes(x);
    _mm256_mask_storeu_epi16(w, m, _mm512_cvtepi32_epi16(bits));
    return _mm512_castsi512_ps(_mm512_slli_epi32(bits, 16));
}

/* 16 finished results of a row: `at` is their first element's index into C and the keep arrays,
   m the lanes that exist. Returns what C receives. */
__attribute__((target("avx512f,avx512bw,avx512vl")))
static inline __m512 finish16(__m512 x, const bf16_epilogue *e, long at, __mmask16 m) {
    if (e->gelu_grad_of) {
        __m512i w = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, e->gelu_grad_of + at));
        x = _mm512_mul_ps(x, gelu_derivative16(_mm512_castsi512_ps(_mm512_slli_epi32(w, 16))));
        return _mm512_castsi512_ps(_mm512_slli_epi32(round16_lanes(x), 16));
    }
    if (!e->keep) return x;
    x = keep16(x, e->keep + at, m);
    if (e->gelu_keep) x = keep16(gelu16(x), e->gelu_keep + at, m);
    return x;
}
#endif

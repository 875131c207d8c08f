// adamw.c — see include/adamw.h. The AVX-512 path handles the tail with masked loads and stores,
// so every element takes the vector operations; without AVX-512 a scalar loop does the same
// operations (IEEE division and square root are correctly rounded in both).
#include "adamw.h"
#include <immintrin.h>
#include <math.h>
#pragma STDC FP_CONTRACT OFF

__attribute__((target("avx512f")))
static void adamw_avx512(float *p, const float *g, float *m, float *v, long n, float beta1, float beta2, float eps,
                         float lr, float wd, float bc1, float bc2, float gscale) {
    const __m512 c1 = _mm512_set1_ps(1 - beta1), b1 = _mm512_set1_ps(beta1);
    const __m512 c2 = _mm512_set1_ps(1 - beta2), b2 = _mm512_set1_ps(beta2);
    const __m512 vbc1 = _mm512_set1_ps(bc1), vbc2 = _mm512_set1_ps(bc2), veps = _mm512_set1_ps(eps);
    const __m512 vlr = _mm512_set1_ps(lr), vwd = _mm512_set1_ps(wd), vgs = _mm512_set1_ps(gscale);
    for (long i = 0; i < n; i += 16) {
        __mmask16 k = n - i >= 16 ? 0xffff : (__mmask16)((1u << (n - i)) - 1);
        __m512 gi = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, g + i), vgs), pi = _mm512_maskz_loadu_ps(k, p + i);
        __m512 mi = _mm512_add_ps(_mm512_mul_ps(c1, gi), _mm512_mul_ps(b1, _mm512_maskz_loadu_ps(k, m + i)));
        __m512 vi = _mm512_fmadd_ps(b2, _mm512_maskz_loadu_ps(k, v + i), _mm512_mul_ps(_mm512_mul_ps(c2, gi), gi));
        __m512 denom = _mm512_add_ps(_mm512_sqrt_ps(_mm512_div_ps(vi, vbc2)), veps);
        __m512 upd = _mm512_add_ps(_mm512_div_ps(_mm512_div_ps(mi, vbc1), denom), _mm512_mul_ps(vwd, pi));
        _mm512_mask_storeu_ps(m + i, k, mi);
        _mm512_mask_storeu_ps(v + i, k, vi);
        _mm512_mask_storeu_ps(p + i, k, _mm512_sub_ps(pi, _mm512_mul_ps(vlr, upd)));
    }
}

void adamw_update(float *p, const float *g, float *m, float *v, long n, float beta1, float beta2, float eps,
                  float lr, float wd, float bc1, float bc2, float gscale) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) {
        adamw_avx512(p, g, m, v, n, beta1, beta2, eps, lr, wd, bc1, bc2, gscale);
        return;
    }
    for (long i = 0; i < n; i++) {
        float gi = g[i] * gscale;
        float mi = (1 - beta1) * gi + beta1 * m[i];
        float vi = fmaf(beta2, v[i], (1 - beta2) * gi * gi);
        float upd = (mi / bc1) / (sqrtf(vi / bc2) + eps) + wd * p[i];
        m[i] = mi;
        v[i] = vi;
        p[i] -= lr * upd;
    }
}

// adamw.h — the fused AdamW update (adamw.c), whose per-element square root and divisions the
// Swift SIMD types compiled lane by lane (scalar vsqrtss/vdivss): in AVX-512 they are one
// instruction per 16 elements. Every element takes the same operations in the same order, vector
// lanes and tail alike, each correctly rounded, so a result does not depend on where a range starts.
#ifndef MEGATRON_ADAMW_H
#define MEGATRON_ADAMW_H

/// For i < n, with g = g[i]·gscale (the gradient-clipping coefficient, 1 for none; g[i] is not written):
/// m = (1−β1)·g + β1·m;  v = fma(β2, v, (1−β2)·g·g);  p = p − lr·((m / bc1) / (√(v / bc2) + ε) + wd·p).
void adamw_update(float *p, const float *g, float *m, float *v, long n, float beta1, float beta2, float eps,
                  float lr, float wd, float bc1, float bc2, float gscale);
#endif

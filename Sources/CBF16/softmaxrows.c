// softmaxrows.c — see include/softmaxrows.h. Every element takes the same operations in the
// vector body and in the tail (the tail is a masked vector), each step rounded as simdExp rounds
// it: t = x·log2e (one rounding), n = t rounded to nearest even, r = x − n·ln2 in two fused steps
// (Cody–Waite), the Horner polynomial in fused steps, then p·2ⁿ, exact for the normal n it meets.
#include "softmaxrows.h"
#include <immintrin.h>
#include <math.h>
#include <string.h>

static int force_portable = 0;
void softmax_rows_force_portable(int portable) { force_portable = portable; }

static int use_avx512(void) {
    static int vector = -1;
    if (vector < 0) {
        __builtin_cpu_init();
        vector = __builtin_cpu_supports("avx512f");
    }
    return vector && !force_portable;
}

static const float LOG2E = 1.442695040888963f, LN2_HI = 0.693145751953125f, LN2_LO = 1.428606765330187e-06f;
static const float C7 = 1.0f / 5040.0f, C6 = 1.0f / 720.0f, C5 = 1.0f / 120.0f, C4 = 1.0f / 24.0f,
                   C3 = 1.0f / 6.0f, C2 = 0.5f;

__attribute__((target("avx512f")))
static inline __m512 exp16(__m512 x) {
    x = _mm512_min_ps(_mm512_set1_ps(88.0f), x);  /* NaN stays NaN (min returns its second operand) */
    __mmask16 keep = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.0f), _CMP_NLT_UQ);
    __m512 xs = _mm512_max_ps(_mm512_set1_ps(-87.0f), x);
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(xs, _mm512_set1_ps(LOG2E)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_HI), xs);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_LO), r);
    __m512 p = _mm512_set1_ps(C7);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(C6));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(C5));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(C4));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(C3));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(C2));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_maskz_scalef_ps(keep, p, n);
}

/* With `store`, the exponentials replace row[first ..< valid]; either way their sum is returned. */
__attribute__((target("avx512f")))
static float exp_row_avx512(float *row, long first, long valid, float scale, float shift, int store) {
    const __m512 vs = _mm512_set1_ps(scale), vshift = _mm512_set1_ps(shift);
    __m512 sum = _mm512_setzero_ps();
    long j = first;
    for (; j + 16 <= valid; j += 16) {
        __m512 e = exp16(_mm512_sub_ps(_mm512_mul_ps(_mm512_loadu_ps(row + j), vs), vshift));
        if (store) _mm512_storeu_ps(row + j, e);
        sum = _mm512_add_ps(sum, e);
    }
    float lanes[16], total = 0;
    _mm512_storeu_ps(lanes, sum);
    for (int l = 0; l < 16; l++) total += lanes[l];
    if (j < valid) {
        __mmask16 k = (__mmask16)((1u << (valid - j)) - 1);
        __m512 e = exp16(_mm512_sub_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(k, row + j), vs), vshift));
        if (store) _mm512_mask_storeu_ps(row + j, k, e);
        _mm512_storeu_ps(lanes, e);
        for (long l = 0; l < valid - j; l++) total += lanes[l];
    }
    return total;
}

/* The portable loop: the same steps one element at a time (fmaf is one rounding, as the vector FMA). */
static float exp1(float x) {
    if (x != x) return x;
    if (x > 88.0f) x = 88.0f;
    int keep = !(x < -87.0f);
    float xs = x < -87.0f ? -87.0f : x;
    float n = nearbyintf(xs * LOG2E);
    float r = fmaf(-n, LN2_HI, xs);
    r = fmaf(-n, LN2_LO, r);
    float p = C7;
    p = fmaf(p, r, C6); p = fmaf(p, r, C5); p = fmaf(p, r, C4); p = fmaf(p, r, C3); p = fmaf(p, r, C2);
    p = fmaf(p, r, 1.0f); p = fmaf(p, r, 1.0f);
    return keep ? ldexpf(p, (int)n) : 0.0f;
}

static float exp_row_portable(float *row, long first, long valid, float scale, float shift, int store) {
    float lanes[16] = {0}, total = 0;
    long j = first;
    for (; j + 16 <= valid; j += 16)
        for (int l = 0; l < 16; l++) {
            float e = exp1(row[j + l] * scale - shift);
            if (store) row[j + l] = e;
            lanes[l] += e;
        }
    for (int l = 0; l < 16; l++) total += lanes[l];
    for (; j < valid; j++) {
        float e = exp1(row[j] * scale - shift);
        if (store) row[j] = e;
        total += e;
    }
    return total;
}

float softmax_exp_row(float *row, long first, long valid, long width, float scale, float shift) {
    if (first > 0) memset(row, 0, sizeof(float) * (size_t)first);
    float sum = use_avx512() ? exp_row_avx512(row, first, valid, scale, shift, 1)
                             : exp_row_portable(row, first, valid, scale, shift, 1);
    if (valid < width) memset(row + valid, 0, sizeof(float) * (size_t)(width - valid));
    return sum;
}

float softmax_exp_sum(const float *row, long n, float shift) {
    float *r = (float *)row; /* read only: store is 0 */
    return use_avx512() ? exp_row_avx512(r, 0, n, 1.0f, shift, 0) : exp_row_portable(r, 0, n, 1.0f, shift, 0);
}

__attribute__((target("avx512f")))
static float row_max_avx512(const float *row, long first, long valid) {
    __m512 m = _mm512_set1_ps(-INFINITY);
    long j = first;
    for (; j + 16 <= valid; j += 16) m = _mm512_max_ps(m, _mm512_loadu_ps(row + j));
    if (j < valid) m = _mm512_max_ps(m, _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), (__mmask16)((1u << (valid - j)) - 1), row + j));
    return _mm512_reduce_max_ps(m);
}

float softmax_row_max(const float *row, long first, long valid) {
    if (use_avx512()) return row_max_avx512(row, first, valid);
    float m = -INFINITY;
    for (long j = first; j < valid; j++) m = row[j] > m ? row[j] : m;
    return m;
}

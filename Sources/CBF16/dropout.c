// dropout.c — see include/dropout.h. A group is the 16 Philox blocks (64 elements) from the block
// holding the next element of a run; its kept mask has bit i for element (first block's first
// element) + i, set only for elements of the run, so a run may start and end anywhere and the
// masked loads never touch memory outside it. A group whose 16 low counter words wrap past 2³²
// carries 1 into those lanes' second counter word, as the scalar rule does.
#include "dropout.h"
#include <immintrin.h>
#include <math.h>
#include <stdlib.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

typedef struct { uint32_t k0, k1, c2, c3, threshold; } stream_t;

static int force_portable = 0;
void dropout_force_portable(int portable) { force_portable = portable; }

static int use_avx512(void) {
    static int vector = -1;
    if (vector < 0) {
        __builtin_cpu_init();
        vector = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("bmi2");
    }
    return vector && !force_portable;
}

/* Elements with (word >> 8) < threshold are dropped: (word >> 8)·2⁻²⁴ < p ⟺ (word >> 8) < ⌈p·2²⁴⌉,
   p·2²⁴ being exact in float; for p < 1 the threshold is below 2²⁴. */
static stream_t make_stream(uint32_t k0, uint32_t k1, uint32_t c2, uint32_t c3, float p) {
    stream_t s = {k0, k1, c2, c3, p <= 0 ? 0 : (uint32_t)ceilf(p * 16777216.0f)};
    return s;
}

/* Elements of a run from element e that the group holding e takes (up to its 64th lane). */
static inline long group_take(long e, long left) { long room = 64 - (e & 3); return left < room ? left : room; }
static inline uint64_t group_valid(long e, long take) { return (take == 64 ? ~0ull : (1ull << take) - 1) << (e & 3); }

/* The group's kept mask, one Philox block per four elements. */
static uint64_t group_kept_portable(long e, long take, const stream_t *s) {
    uint64_t kept = 0;
    long base = e & ~3L;
    for (int b = 0; b < 16; b++) {
        uint64_t q = ((uint64_t)base >> 2) + b;
        uint32_t x[4] = {(uint32_t)q, (uint32_t)(q >> 32), s->c2, s->c3}, k0 = s->k0, k1 = s->k1;
        for (int round = 0; round < 10; round++) {
            uint64_t p0 = (uint64_t)PHILOX_M0 * x[0], p1 = (uint64_t)PHILOX_M1 * x[2];
            uint32_t n0 = (uint32_t)(p1 >> 32) ^ x[1] ^ k0, n2 = (uint32_t)(p0 >> 32) ^ x[3] ^ k1;
            x[0] = n0; x[1] = (uint32_t)p1; x[2] = n2; x[3] = (uint32_t)p0;
            k0 += PHILOX_W0; k1 += PHILOX_W1;
        }
        for (int w = 0; w < 4; w++) if ((x[w] >> 8) >= s->threshold) kept |= 1ull << (4 * b + w);
    }
    return kept & group_valid(e, take);
}

/* Sixteen Philox blocks as two halves of eight, each block in a 64-bit lane whose low 32 bits are
   the word (the high bits are don't-care: vpmuludq reads only the low half of each lane), so a
   32 × 32 → 64-bit product is one vpmuludq and its high word one shift. */
typedef struct { __m512i x0, x1, x2, x3; } half_t;

/* Blocks q + first … q + first + 7: the counter's low word and, from the 64-bit sum, its high word. */
__attribute__((target("avx512f")))
static inline half_t philox_half(uint64_t q, int first, const stream_t *s) {
    const __m512i lanes = _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7);
    __m512i c = _mm512_add_epi64(_mm512_set1_epi64((long long)(q + first)), lanes);
    half_t h = {c, _mm512_srli_epi64(c, 32), _mm512_set1_epi64(s->c2), _mm512_set1_epi64(s->c3)};
    return h;
}

__attribute__((target("avx512f")))
static inline void philox_round(half_t *h, __m512i m0, __m512i m1, __m512i k0, __m512i k1) {
    __m512i p0 = _mm512_mul_epu32(h->x0, m0), p1 = _mm512_mul_epu32(h->x2, m1);
    h->x0 = _mm512_ternarylogic_epi64(_mm512_srli_epi64(p1, 32), h->x1, k0, 0x96);
    h->x2 = _mm512_ternarylogic_epi64(_mm512_srli_epi64(p0, 32), h->x3, k1, 0x96);
    h->x1 = p1; h->x3 = p0;
}

/* Which of the 16 blocks' word (low halves of lo, hi) is below the limit, bit j for block j. */
__attribute__((target("avx512f,bmi2")))
static inline uint32_t below(__m512i lo, __m512i hi, __m512i limit) {
    uint32_t l = _mm512_mask_cmplt_epu32_mask(0x5555, lo, limit), h = _mm512_mask_cmplt_epu32_mask(0x5555, hi, limit);
    return _pext_u32(l | h << 16, 0x55555555u);
}

/* The group's dropped bits: bit j of word w's comparison is element 4j + w, which pdep spreads. */
__attribute__((target("avx512f,bmi2")))
static inline uint64_t dropped_bits(const half_t *lo, const half_t *hi, __m512i limit) {
    return _pdep_u64(below(lo->x0, hi->x0, limit), 0x1111111111111111ull)
         | _pdep_u64(below(lo->x1, hi->x1, limit), 0x2222222222222222ull)
         | _pdep_u64(below(lo->x2, hi->x2, limit), 0x4444444444444444ull)
         | _pdep_u64(below(lo->x3, hi->x3, limit), 0x8888888888888888ull);
}

/* The kept masks of two consecutive groups (from element e, taking `take`, then from e2, taking
   `take2`; take2 = 0 for none). The four halves' rounds are interleaved: a round waits on its
   products, so one group alone leaves the multipliers idle. */
__attribute__((target("avx512f,bmi2")))
static inline void groups_kept_avx512(long e, long take, long e2, long take2, const stream_t *s, uint64_t *kept,
                                      uint64_t *kept2) {
    const __m512i m0 = _mm512_set1_epi64(PHILOX_M0), m1 = _mm512_set1_epi64(PHILOX_M1);
    const __m512i limit = _mm512_set1_epi32((int)(s->threshold << 8));  /* (w >> 8) < t ⟺ w < t·256 */
    uint64_t q = (uint64_t)e >> 2, q2 = (uint64_t)e2 >> 2;
    half_t a = philox_half(q, 0, s), b = philox_half(q, 8, s), c = philox_half(q2, 0, s), d = philox_half(q2, 8, s);
    uint32_t r0 = s->k0, r1 = s->k1;
    for (int round = 0; round < 10; round++) {
        __m512i k0 = _mm512_set1_epi64(r0), k1 = _mm512_set1_epi64(r1);
        philox_round(&a, m0, m1, k0, k1);
        philox_round(&b, m0, m1, k0, k1);
        philox_round(&c, m0, m1, k0, k1);
        philox_round(&d, m0, m1, k0, k1);
        r0 += PHILOX_W0; r1 += PHILOX_W1;
    }
    *kept = group_valid(e, take) & ~dropped_bits(&a, &b, limit);
    *kept2 = take2 ? group_valid(e2, take2) & ~dropped_bits(&c, &d, limit) : 0;
}

/* One group of a run: its first element's offset i in the run, its element index e, the elements it
   takes and its kept mask. */
typedef struct { long i, e, take; uint64_t kept; } group_t;

/* The next one or two groups of a run of n elements (offset i is element start + i) from offset i,
   their masks made together; returns how many (2 unless the run ends after the first). */
__attribute__((target("avx512f,bmi2")))
static inline int next_groups(long i, long n, long start, const stream_t *s, group_t g[2]) {
    g[0].i = i; g[0].e = start + i; g[0].take = group_take(g[0].e, n - i);
    g[1].i = i + g[0].take; g[1].e = start + g[1].i;
    g[1].take = g[1].i < n ? group_take(g[1].e, n - g[1].i) : 0;
    groups_kept_avx512(g[0].e, g[0].take, g[1].e, g[1].take, s, &g[0].kept, &g[1].kept);
    return g[1].take ? 2 : 1;
}

/* dst = src·keep under a group's kept mask, 0 elsewhere in it. */
__attribute__((target("avx512f")))
static inline void apply_group(const float *src, float *dst, const group_t *g, __m512 keepv) {
    uint64_t valid = group_valid(g->e, g->take);
    const float *x = src + g->i - (g->e & 3);
    float *y = dst + g->i - (g->e & 3);
    for (int c = 0; c < 4; c++) {
        __mmask16 vm = (__mmask16)(valid >> 16 * c), km = (__mmask16)(g->kept >> 16 * c);
        if (vm) _mm512_mask_storeu_ps(y + 16 * c, vm, _mm512_mul_ps(_mm512_maskz_loadu_ps(km, x + 16 * c), keepv));
    }
}

__attribute__((target("avx512f,bmi2")))
static void apply_avx512(const float *src, float *dst, long n, long start, const stream_t *s, float keep) {
    const __m512 keepv = _mm512_set1_ps(keep);
    for (long i = 0; i < n;) {
        group_t g[2];
        int k = next_groups(i, n, start, s, g);
        for (int j = 0; j < k; j++) apply_group(src, dst, &g[j], keepv);
        i = g[k - 1].i + g[k - 1].take;
    }
}

static void apply_portable(const float *src, float *dst, long n, long start, const stream_t *s, float keep) {
    for (long i = 0; i < n;) {
        long e = start + i, first = e & 3, take = group_take(e, n - i);
        uint64_t kept = group_kept_portable(e, take, s);
        for (long j = 0; j < take; j++) dst[i + j] = kept >> (first + j) & 1 ? src[i + j] * keep : 0.0f;
        i += take;
    }
}

void dropout_apply_mask(const float *src, float *dst, long n, long start, uint32_t key0, uint32_t key1, uint32_t c2,
                        uint32_t c3, float p, float keep) {
    stream_t s = make_stream(key0, key1, c2, c3, p);
    if (use_avx512()) apply_avx512(src, dst, n, start, &s, keep);
    else apply_portable(src, dst, n, start, &s, keep);
}

/* Pass 1 of the softmax-backward row on one group: dP = dP·keep under its kept mask (0 where
   dropped), and acc += P·dP. */
__attribute__((target("avx512f")))
static inline __m512 mask_dp_group(const float *P, float *dP, const group_t *g, __m512 keepv, __m512 acc) {
    uint64_t in = group_valid(g->e, g->take);
    const float *p = P + g->i - (g->e & 3);
    float *d = dP + g->i - (g->e & 3);
    for (int c = 0; c < 4; c++) {
        __mmask16 vm = (__mmask16)(in >> 16 * c), km = (__mmask16)(g->kept >> 16 * c);
        if (!vm) continue;
        __m512 dk = _mm512_mul_ps(_mm512_maskz_loadu_ps(km, d + 16 * c), keepv);
        _mm512_mask_storeu_ps(d + 16 * c, vm, dk);
        acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(vm, p + 16 * c), dk, acc);
    }
    return acc;
}

/* The softmax-backward row: pass 1 masks dP and sums P·dP, keeping each group's kept mask in
   `bits`; pass 2 makes dS (into P) and the kept probabilities (into dP). */
__attribute__((target("avx512f,bmi2")))
static void softmax_backward_avx512(float *P, float *dP, long valid, long start, const stream_t *s, float keep,
                                    float scale, uint64_t *bits) {
    const __m512 keepv = _mm512_set1_ps(keep);
    __m512 acc = _mm512_setzero_ps();
    long g = 0;
    for (long i = 0; i < valid;) {
        group_t pair[2];
        int k = next_groups(i, valid, start, s, pair);
        for (int j = 0; j < k; j++) {
            bits[g++] = pair[j].kept;
            acc = mask_dp_group(P, dP, &pair[j], keepv, acc);
        }
        i = pair[k - 1].i + pair[k - 1].take;
    }
    const __m512 dot = _mm512_set1_ps(_mm512_reduce_add_ps(acc)), scalev = _mm512_set1_ps(scale);
    g = 0;
    for (long i = 0; i < valid; g++) {
        long e = start + i, first = e & 3, take = group_take(e, valid - i);
        uint64_t in = group_valid(e, take), kept = bits[g];
        float *p = P + i - first, *d = dP + i - first;
        for (int c = 0; c < 4; c++) {
            __mmask16 vm = (__mmask16)(in >> 16 * c), km = (__mmask16)(kept >> 16 * c);
            if (!vm) continue;
            __m512 pv = _mm512_maskz_loadu_ps(vm, p + 16 * c), dv = _mm512_maskz_loadu_ps(vm, d + 16 * c);
            _mm512_mask_storeu_ps(p + 16 * c, vm, _mm512_mul_ps(_mm512_mul_ps(pv, _mm512_sub_ps(dv, dot)), scalev));
            _mm512_mask_storeu_ps(d + 16 * c, vm, _mm512_maskz_mul_ps(km, pv, keepv));
        }
        i += take;
    }
}

static void softmax_backward_portable(float *P, float *dP, long valid, long start, const stream_t *s, float keep,
                                      float scale, uint64_t *bits) {
    float dot = 0;
    long g = 0;
    for (long i = 0; i < valid; g++) {
        long e = start + i, first = e & 3, take = group_take(e, valid - i);
        bits[g] = group_kept_portable(e, take, s);
        for (long j = 0; j < take; j++) {
            dP[i + j] = bits[g] >> (first + j) & 1 ? dP[i + j] * keep : 0.0f;
            dot += P[i + j] * dP[i + j];
        }
        i += take;
    }
    g = 0;
    for (long i = 0; i < valid; g++) {
        long e = start + i, first = e & 3, take = group_take(e, valid - i);
        for (long j = 0; j < take; j++) {
            float pv = P[i + j];
            P[i + j] = pv * (dP[i + j] - dot) * scale;
            dP[i + j] = bits[g] >> (first + j) & 1 ? pv * keep : 0.0f;
        }
        i += take;
    }
}

void dropout_softmax_backward_row(float *P, float *dP, long valid, long width, long start, uint32_t key0,
                                  uint32_t key1, uint32_t c2, uint32_t c3, float p, float keep, float scale) {
    stream_t s = make_stream(key0, key1, c2, c3, p);
    long groups = valid / 64 + 2;
    uint64_t stack[256], *bits = groups <= 256 ? stack : malloc((size_t)groups * sizeof(uint64_t));
    if (!bits) abort();  /* out of memory for a row's mask bits: nothing sensible to continue with */
    if (use_avx512()) softmax_backward_avx512(P, dP, valid, start, &s, keep, scale, bits);
    else softmax_backward_portable(P, dP, valid, start, &s, keep, scale, bits);
    if (bits != stack) free(bits);
    for (long j = valid; j < width; j++) { P[j] = 0.0f; dP[j] = 0.0f; }
}

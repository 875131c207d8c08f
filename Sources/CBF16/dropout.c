// dropout.c — see include/dropout.h. A group is the 16 Philox blocks (64 elements) from the block
// holding the next element; lanes past the run are masked, so a run may start and end anywhere and
// the masked loads never touch memory outside it. A group whose 16 low counter words wrap past 2³²
// carries 1 into those lanes' second counter word, as the scalar rule does.
#include "dropout.h"
#include <immintrin.h>
#include <math.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

static int force_portable = 0;
void dropout_force_portable(int portable) { force_portable = portable; }

/* Elements with (word >> 8) < threshold are dropped: (word >> 8)·2⁻²⁴ < p ⟺ (word >> 8) < ⌈p·2²⁴⌉,
   p·2²⁴ being exact in float. */
static uint32_t drop_threshold(float p) { return p <= 0 ? 0 : (uint32_t)ceilf(p * 16777216.0f); }

static void philox_block(uint32_t x[4], uint32_t k0, uint32_t k1) {
    for (int round = 0; round < 10; round++) {
        uint64_t p0 = (uint64_t)PHILOX_M0 * x[0], p1 = (uint64_t)PHILOX_M1 * x[2];
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ x[1] ^ k0, n2 = (uint32_t)(p0 >> 32) ^ x[3] ^ k1;
        x[0] = n0; x[1] = (uint32_t)p1; x[2] = n2; x[3] = (uint32_t)p0;
        k0 += PHILOX_W0; k1 += PHILOX_W1;
    }
}

static void apply_portable(const float *src, float *dst, long n, long start, uint32_t k0, uint32_t k1, uint32_t c2,
                           uint32_t c3, uint32_t threshold, float keep) {
    for (long i = 0; i < n;) {
        long e = start + i;
        uint32_t x[4] = {(uint32_t)(e >> 2), (uint32_t)(e >> 34), c2, c3};
        philox_block(x, k0, k1);
        for (int lane = (int)(e & 3); lane < 4 && i < n; lane++, i++)
            dst[i] = (x[lane] >> 8) < threshold ? 0.0f : src[i] * keep;
    }
}

/* hi and lo 32-bit halves of x·m per 32-bit lane: the even lanes' products from one vpmuludq, the
   odd lanes' from another on x shifted down. */
__attribute__((target("avx512f")))
static inline void mul_hi_lo(__m512i x, __m512i m, __m512i *hi, __m512i *lo) {
    __m512i even = _mm512_mul_epu32(x, m), odd = _mm512_mul_epu32(_mm512_srli_epi64(x, 32), m);
    *hi = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(even, 32), odd);
    *lo = _mm512_mask_blend_epi32(0xAAAA, even, _mm512_slli_epi64(odd, 32));
}

__attribute__((target("avx512f,bmi2")))
static void apply_avx512(const float *src, float *dst, long n, long start, uint32_t k0, uint32_t k1, uint32_t c2,
                         uint32_t c3, uint32_t threshold, float keep) {
    const __m512i lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i m0 = _mm512_set1_epi32((int)PHILOX_M0), m1 = _mm512_set1_epi32((int)PHILOX_M1);
    /* threshold ≤ 2²⁴ − 1 for p < 1, so threshold·256 fits: (word >> 8) < t ⟺ word < t·256. */
    const __m512i limit = _mm512_set1_epi32((int)(threshold << 8));
    const __m512 keepv = _mm512_set1_ps(keep);
    for (long i = 0; i < n;) {
        long e = start + i, first = e & 3, take = n - i < 64 - first ? n - i : 64 - first;
        uint64_t q = (uint64_t)e >> 2;
        __m512i x0 = _mm512_add_epi32(_mm512_set1_epi32((int)(uint32_t)q), lanes);
        __m512i x1 = _mm512_set1_epi32((int)(uint32_t)(q >> 32));
        /* lanes whose low word wrapped carry into the high word */
        x1 = _mm512_mask_add_epi32(x1, _mm512_cmplt_epu32_mask(x0, _mm512_set1_epi32((int)(uint32_t)q)), x1,
                                   _mm512_set1_epi32(1));
        __m512i x2 = _mm512_set1_epi32((int)c2), x3 = _mm512_set1_epi32((int)c3);
        uint32_t r0 = k0, r1 = k1;
        for (int round = 0; round < 10; round++) {
            __m512i hi0, lo0, hi1, lo1;
            mul_hi_lo(x0, m0, &hi0, &lo0);
            mul_hi_lo(x2, m1, &hi1, &lo1);
            x0 = _mm512_ternarylogic_epi32(hi1, x1, _mm512_set1_epi32((int)r0), 0x96);
            x2 = _mm512_ternarylogic_epi32(hi0, x3, _mm512_set1_epi32((int)r1), 0x96);
            x1 = lo1; x3 = lo0;
            r0 += PHILOX_W0; r1 += PHILOX_W1;
        }
        /* bit j of word w's comparison is element 4j + w of the group */
        uint64_t drop = _pdep_u64(_mm512_cmplt_epu32_mask(x0, limit), 0x1111111111111111ull)
                      | _pdep_u64(_mm512_cmplt_epu32_mask(x1, limit), 0x2222222222222222ull)
                      | _pdep_u64(_mm512_cmplt_epu32_mask(x2, limit), 0x4444444444444444ull)
                      | _pdep_u64(_mm512_cmplt_epu32_mask(x3, limit), 0x8888888888888888ull);
        uint64_t valid = (take == 64 ? ~0ull : ((1ull << take) - 1)) << first, kept = valid & ~drop;
        const float *s = src + i - first;
        float *d = dst + i - first;
        for (int c = 0; c < 4; c++) {
            __mmask16 vm = (__mmask16)(valid >> 16 * c), km = (__mmask16)(kept >> 16 * c);
            if (!vm) continue;
            __m512 v = _mm512_maskz_loadu_ps(km, s + 16 * c);
            _mm512_mask_storeu_ps(d + 16 * c, vm, _mm512_mul_ps(v, keepv));
        }
        i += take;
    }
}

void dropout_apply_mask(const float *src, float *dst, long n, long start, uint32_t key0, uint32_t key1, uint32_t c2,
                        uint32_t c3, float p, float keep) {
    static int vector = -1;
    if (vector < 0) {
        __builtin_cpu_init();
        vector = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("bmi2");
    }
    uint32_t threshold = drop_threshold(p);
    if (vector && !force_portable)
        apply_avx512(src, dst, n, start, key0, key1, c2, c3, threshold, keep);
    else
        apply_portable(src, dst, n, start, key0, key1, c2, c3, threshold, keep);
}

/* halfwords.c — see include/bf16gemm.h: fp32 activations kept as 16-bit words. bf16 and fp16
   runs round every tensor that feeds a GEMM to 16 bits where it is produced, so a layer can keep
   it for its backward pass in half the memory, exactly: `half_round_keep` rounds the fp32 values in
   place (as bf16_round_in_place / fp16_round_in_place) and writes their 16-bit words, and
   `half_restore` widens the words back to the same fp32 values. */
#include "bf16gemm.h"
#include "bf16_internal.h"

/* The scalar rule for elements [i, n): the fallback, and the vector paths' tails. */
static void round_keep_scalar(float *x, uint16_t *w, size_t i, size_t n, int fp16) {
    for (; i < n; i++) {
        if (fp16) {
            _Float16 h = (_Float16)x[i];
            memcpy(&w[i], &h, 2);
            x[i] = (float)h;
        } else {
            uint16_t b = rne(x[i]);
            uint32_t u = (uint32_t)b << 16;
            w[i] = b;
            memcpy(&x[i], &u, 4);
        }
    }
}

static void restore_scalar(const uint16_t *w, float *x, size_t i, size_t n, int fp16) {
    if (!fp16) { bf16_widen(w + i, x + i, n - i); return; }
    for (; i < n; i++) {
        _Float16 h;
        memcpy(&h, &w[i], 2);
        x[i] = (float)h;
    }
}

/* Each vector path converts whole groups of 16 and returns how many elements it did. */
__attribute__((target("avx512f,avx512bw")))
static size_t bf16_round_keep_avx512(float *x, uint16_t *w, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512i bits = round16_lanes(_mm512_loadu_ps(x + i));
        _mm256_storeu_si256((__m256i *)(w + i), _mm512_cvtepi32_epi16(bits));
        _mm512_storeu_si512(x + i, _mm512_slli_epi32(bits, 16));
    }
    return i;
}

__attribute__((target("avx512f")))
static size_t fp16_round_keep_avx512(float *x, uint16_t *w, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i h = _mm512_cvtps_ph(_mm512_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm256_storeu_si256((__m256i *)(w + i), h);
        _mm512_storeu_ps(x + i, _mm512_cvtph_ps(h));
    }
    return i;
}

__attribute__((target("avx512f,avx512bw")))
static size_t bf16_restore_avx512(const uint16_t *w, float *x, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512i bits = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(w + i)));
        _mm512_storeu_si512(x + i, _mm512_slli_epi32(bits, 16));
    }
    return i;
}

__attribute__((target("avx512f")))
static size_t fp16_restore_avx512(const uint16_t *w, float *x, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(x + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(w + i))));
    return i;
}

__attribute__((target("avx512f,avx512bw")))
static size_t bf16_round_copy_avx512(const float *x, float *y, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_si512(y + i, _mm512_slli_epi32(round16_lanes(_mm512_loadu_ps(x + i)), 16));
    return i;
}

__attribute__((target("avx512f")))
static size_t fp16_round_copy_avx512(const float *x, float *y, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, _mm512_cvtph_ps(_mm512_cvtps_ph(_mm512_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)));
    return i;
}

/* The AVX-512 paths, unless the portable kernel is forced (tests run both). */
static int has_avx512(void) {
    static int avx512 = -1;
    if (avx512 < 0) {
        __builtin_cpu_init();
        avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") ? 1 : 0;
    }
    return avx512 && !(bf16_kernel() == 0 && bf16_best_kernel() > 0);
}

void half_round_keep(float *x, uint16_t *w, size_t n, int fp16) {
    size_t done = !has_avx512() ? 0 : fp16 ? fp16_round_keep_avx512(x, w, n) : bf16_round_keep_avx512(x, w, n);
    round_keep_scalar(x, w, done, n, fp16);
}

void half_restore(const uint16_t *w, float *x, size_t n, int fp16) {
    size_t done = !has_avx512() ? 0 : fp16 ? fp16_restore_avx512(w, x, n) : bf16_restore_avx512(w, x, n);
    restore_scalar(w, x, done, n, fp16);
}

void half_round_copy(const float *x, float *y, size_t n, int fp16) {
    size_t i = !has_avx512() ? 0 : fp16 ? fp16_round_copy_avx512(x, y, n) : bf16_round_copy_avx512(x, y, n);
    for (; i < n; i++) {
        if (fp16) {
            y[i] = (float)(_Float16)x[i];
        } else {
            uint32_t u = (uint32_t)rne(x[i]) << 16;
            memcpy(&y[i], &u, 4);
        }
    }
}

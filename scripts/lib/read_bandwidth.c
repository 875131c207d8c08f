/* read_bandwidth.c — the memory read rate a decoding step is bound by: T threads (argv[1]) sum
   1 GiB of floats (far beyond the caches) with 512-bit loads, four accumulators and a software
   prefetch 2 KiB ahead; best of 5 passes after a warm-up, printed in GB/s. Built and run by
   scripts/bench_generate.sh (cc -O2 -march=native -fopenmp). */
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 1;
    size_t n = (size_t)1 << 28, pieces = 256;
    float *a = aligned_alloc(64, n * sizeof(float));
    if (!a) return 1;
    memset(a, 0, n * sizeof(float));
    double best = 1e30;
    float total = 0;
    for (int pass = 0; pass < 6; pass++) {
        double t0 = now();
#pragma omp parallel for num_threads(threads) reduction(+ : total) schedule(static)
        for (size_t c = 0; c < pieces; c++) {
            const float *p = a + n / pieces * c, *end = p + n / pieces;
            __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
            for (; p < end; p += 64) {
                _mm_prefetch((const char *)(p + 512), _MM_HINT_T0);
                _mm_prefetch((const char *)(p + 528), _MM_HINT_T0);
                _mm_prefetch((const char *)(p + 544), _MM_HINT_T0);
                _mm_prefetch((const char *)(p + 560), _MM_HINT_T0);
                s0 = _mm512_add_ps(s0, _mm512_load_ps(p));
                s1 = _mm512_add_ps(s1, _mm512_load_ps(p + 16));
                s2 = _mm512_add_ps(s2, _mm512_load_ps(p + 32));
                s3 = _mm512_add_ps(s3, _mm512_load_ps(p + 48));
            }
            total += _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
        }
        double t = now() - t0;
        if (pass > 0 && t < best) best = t;
    }
    printf("%.1f\n", total == 0 ? n * sizeof(float) / best / 1e9 : 0.0);
    free(a);
    return 0;
}

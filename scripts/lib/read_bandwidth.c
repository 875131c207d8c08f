/* read_bandwidth.c — the memory read rate a decoding step is bound by: T threads (argv[1]) sum
   1 GiB of floats (far beyond the caches) with 512-bit loads and four accumulators, read two ways:
   one stream per piece with a software prefetch 2 KiB ahead, and four streams per piece (its
   quarters read side by side, as FewRows' one-row product reads a weight). Prints both rates in
   GB/s (best of 5 passes after a warm-up), single stream first. Built and run by
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

/* Sums `len` floats from each of `streams` starting points, 64 floats per stream per step. */
static float sum_streams(const float *p, size_t len, int streams) {
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    for (size_t o = 0; o < len; o += 64)
        for (int s = 0; s < streams; s++) {
            const float *q = p + s * len + o;
            if (streams == 1) {
                _mm_prefetch((const char *)(q + 512), _MM_HINT_T0);
                _mm_prefetch((const char *)(q + 528), _MM_HINT_T0);
                _mm_prefetch((const char *)(q + 544), _MM_HINT_T0);
                _mm_prefetch((const char *)(q + 560), _MM_HINT_T0);
            }
            s0 = _mm512_add_ps(s0, _mm512_load_ps(q));
            s1 = _mm512_add_ps(s1, _mm512_load_ps(q + 16));
            s2 = _mm512_add_ps(s2, _mm512_load_ps(q + 32));
            s3 = _mm512_add_ps(s3, _mm512_load_ps(q + 48));
        }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

static double rate(const float *a, size_t n, int threads, int streams) {
    size_t pieces = 256;
    double best = 1e30;
    float total = 0;
    for (int pass = 0; pass < 6; pass++) {
        double t0 = now();
#pragma omp parallel for num_threads(threads) reduction(+ : total) schedule(static)
        for (size_t c = 0; c < pieces; c++) total += sum_streams(a + n / pieces * c, n / pieces / streams, streams);
        double t = now() - t0;
        if (pass > 0 && t < best) best = t;
    }
    return total == 0 ? n * sizeof(float) / best / 1e9 : 0.0;
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 1;
    size_t n = (size_t)1 << 28;
    float *a = aligned_alloc(64, n * sizeof(float));
    if (!a) return 1;
    memset(a, 0, n * sizeof(float));
    double single = rate(a, n, threads, 1), four = rate(a, n, threads, 4);
    printf("%.1f %.1f\n", single, four);
    free(a);
    return 0;
}

/* gemm_versus.c — two builds of the bf16 GEMM's row kernel side by side in one process: rows_base
   and rows_new (each a copy of bf16_rows_amx, or of the AVX512-BF16 rows kernel, compiled under
   those names by scripts/bench_gemm_versus.sh). For each shape m × n × k given on the command line,
   both run on T threads (each thread its half of the rows, as the model's products split them) on
   the same packed B, alternating base, new, base, new … for R rounds, so the machine's drift —
   on a VM whose vCPUs may share one core, 2× from one second to the next — falls on both alike.
   Prints the largest difference between their products (0: the same sums in the same order), the
   mean and the best GFLOP/s of each and the mean new/base ratio. A small product runs several times
   per timed call (at least about 0.4 GFLOP in all), so the threads' wake-up at each call's barriers
   (microseconds) does not count against a product that itself takes tens of them.
     gemm_versus THREADS ROUNDS m n k layout [m n k layout …]
   layout: "nt" A [m, k], B [n, k] (a forward product); "nn" A [m, k], B [k, n] (an input gradient);
   "tn" A [k, m] read transposed, B [k, n], accumulating into C (a weight gradient, beta 1). */
#include "bf16gemm.h"
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef void (*rows_fn)(int, int, const void *, int, long, long, const uint16_t *, size_t, float *, long, float, int,
                        int);
void rows_base(int, int, const void *, int, long, long, const uint16_t *, size_t, float *, long, float, int, int);
void rows_new(int, int, const void *, int, long, long, const uint16_t *, size_t, float *, long, float, int, int);

static struct {
    int m, n, k, threads, reps;
    long si, sk;
    const float *A;
    const uint16_t *B;
    size_t panel;
    float *C, beta;
    rows_fn f;
    int stop;
    pthread_barrier_t start, done;
} job;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* Rows of thread t: a split in multiples of 32 rows (the AMX block). */
static void rows_of(int t, int *i0, int *i1) {
    int blocks = (job.m + 31) / 32, per = (blocks + job.threads - 1) / job.threads;
    *i0 = t * per * 32 < job.m ? t * per * 32 : job.m;
    *i1 = (t + 1) * per * 32 < job.m ? (t + 1) * per * 32 : job.m;
}

static void *worker(void *arg) {
    int t = (int)(long)arg;
    for (;;) {
        pthread_barrier_wait(&job.start);
        if (job.stop) return NULL;
        int i0, i1;
        rows_of(t, &i0, &i1);
        for (int r = 0; r < job.reps; r++)
            job.f(job.n, job.k, job.A, 1, job.si, job.sk, job.B, job.panel, job.C, job.n, job.beta, i0, i1);
        pthread_barrier_wait(&job.done);
    }
}

static double run(rows_fn f, float *C, float beta) {
    job.f = f; job.C = C; job.beta = beta;
    double t0 = now();
    pthread_barrier_wait(&job.start);
    pthread_barrier_wait(&job.done);
    return now() - t0;
}

int main(int argc, char **argv) {
    if (argc < 7 || (argc - 3) % 4 != 0) {
        fprintf(stderr, "usage: gemm_versus THREADS ROUNDS m n k nt|nn|tn [m n k layout …]\n");
        return 2;
    }
    job.threads = atoi(argv[1]);
    int rounds = atoi(argv[2]);
    pthread_t ids[64];
    pthread_barrier_init(&job.start, NULL, (unsigned)job.threads + 1);
    pthread_barrier_init(&job.done, NULL, (unsigned)job.threads + 1);
    for (long t = 0; t < job.threads; t++) pthread_create(&ids[t], NULL, worker, (void *)t);
    printf("| m × n × k | layout | max difference | base GFLOP/s mean (best) | new GFLOP/s mean (best) | new / base (mean) |\n");
    printf("|---|---|---|---|---|---|\n");
    for (int a = 3; a + 3 < argc; a += 4) {
        int m = atoi(argv[a]), n = atoi(argv[a + 1]), k = atoi(argv[a + 2]);
        const char *layout = argv[a + 3];
        int transA = strcmp(layout, "tn") == 0, bRows = strcmp(layout, "nn") == 0 || transA;
        float *A = malloc((size_t)m * k * 4), *B = malloc((size_t)n * k * 4);
        float *C[2] = {malloc((size_t)m * n * 4), malloc((size_t)m * n * 4)};
        srand(1);
        for (size_t i = 0; i < (size_t)m * k; i++) A[i] = (float)(rand() % 2001 - 1000) / 1000.0f;
        for (size_t i = 0; i < (size_t)n * k; i++) B[i] = (float)(rand() % 2001 - 1000) / 1000.0f;
        uint16_t *P = malloc(bf16_packed_b_count(n, k) * 2);
        bf16_pack_b(n, k, B, 1, bRows ? 1 : k, bRows ? n : 1, P, 0, (n + 15) / 16);
        job.m = m; job.n = n; job.k = k; job.A = A; job.B = P;
        job.si = transA ? 1 : k; job.sk = transA ? m : 1;
        job.panel = (size_t)16 * 2 * (size_t)((((k + 1) / 2) + 15) & ~15);
        float beta = transA ? 1.0f : 0.0f;
        for (int v = 0; v < 2; v++) memset(C[v], 0, (size_t)m * n * 4);
        job.reps = 1;
        run(rows_base, C[0], beta);
        run(rows_new, C[1], beta);
        double diff = 0;
        for (size_t i = 0; i < (size_t)m * n; i++) diff = fmax(diff, fabs((double)C[0][i] - C[1][i]));
        double flops = 2.0 * m * n * k, mean[2] = {0, 0}, best[2] = {0, 0}, ratio = 0;
        job.reps = flops < 4e8 ? (int)(4e8 / flops) : 1;
        flops *= job.reps;
        for (int r = 0; r < rounds; r++) {
            double g[2];
            for (int v = 0; v < 2; v++) {
                g[v] = flops / run(v ? rows_new : rows_base, C[v], beta) / 1e9;
                mean[v] += g[v] / rounds;
                best[v] = fmax(best[v], g[v]);
            }
            ratio += g[1] / g[0] / rounds;
        }
        printf("| %d × %d × %d | %s | %g | %.0f (%.0f) | %.0f (%.0f) | %.3f |\n", m, n, k, layout, diff, mean[0], best[0],
               mean[1], best[1], ratio);
        fflush(stdout);
        free(A); free(B); free(C[0]); free(C[1]); free(P);
    }
    job.stop = 1;
    pthread_barrier_wait(&job.start);
    for (int t = 0; t < job.threads; t++) pthread_join(ids[t], NULL);
    return 0;
}

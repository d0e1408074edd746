/*  bench_stats.c - percentile and median helpers for `weft bench` (bench_stats.h). */
#include "bench_stats.h"

#include <stdlib.h>
#include <time.h>

int64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int s_cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static int s_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/*  Nearest rank: the smallest sample with at least p of the samples at or below it. */
static double s_rank(const uint32_t *sorted, size_t n, double p)
{
    size_t k = (size_t)(p * (double)n + 0.999999);
    if (k < 1)
        k = 1;
    if (k > n)
        k = n;
    return (double)sorted[k - 1];
}

void bench_percentiles(uint32_t *samples, size_t n, bench_pct_t *out)
{
    out->p50 = out->p99 = out->p999 = out->max = 0;
    if (n == 0)
        return;
    qsort(samples, n, sizeof(*samples), s_cmp_u32);
    out->p50 = s_rank(samples, n, 0.50);
    out->p99 = s_rank(samples, n, 0.99);
    out->p999 = s_rank(samples, n, 0.999);
    out->max = (double)samples[n - 1];
}

double bench_share_above(const uint32_t *sorted, size_t n, uint32_t limit)
{
    size_t lo = 0, hi = n; /* first index with sorted[i] > limit */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (sorted[mid] > limit)
            hi = mid;
        else
            lo = mid + 1;
    }
    return n ? (double)(n - lo) / (double)n : 0;
}

double bench_median(double *v, size_t n)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof(*v), s_cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

double bench_median_field(const void *base, size_t n, size_t stride, size_t offset)
{
    double v[n > 0 ? n : 1];
    for (size_t i = 0; i < n; i++)
        v[i] = *(const double *)((const char *)base + i * stride + offset);
    return bench_median(v, n);
}

double bench_timer_overhead_ns(void)
{
    enum { ROUNDS = 15, CALLS = 2000 };
    double per_call[ROUNDS];
    for (int r = 0; r < ROUNDS; r++) {
        int64_t t0 = bench_now_ns(), t = t0;
        for (int i = 0; i < CALLS; i++)
            t = bench_now_ns();
        per_call[r] = (double)(t - t0) / CALLS;
    }
    return bench_median(per_call, ROUNDS);
}

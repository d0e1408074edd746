/*  bench_stats.h - small statistics helpers for `weft bench`: monotonic nanosecond clock,
    percentiles of per-call latency samples, and the median of per-pass figures (benchmarks run
    on shared, noisy machines, so summaries use medians rather than means).
*/
#ifndef WEFT_BENCH_STATS_H_INCLUDED
#define WEFT_BENCH_STATS_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

/*  CLOCK_MONOTONIC in nanoseconds. */
int64_t bench_now_ns(void);

/*  Latency summary of one set of samples, in nanoseconds. */
typedef struct {
    double p50, p99, p999, max;
} bench_pct_t;

/*  Sorts samples[0..n) in place and fills out with the nearest-rank p50, p99, p99.9 and the
    maximum. All zero when n is 0. */
void bench_percentiles(uint32_t *samples, size_t n, bench_pct_t *out);

/*  Share (0..1) of samples[0..n), already sorted by bench_percentiles, that exceed limit. */
double bench_share_above(const uint32_t *sorted, size_t n, uint32_t limit);

/*  Median of v[0..n) (sorts v in place); 0 when n is 0. For even n, the mean of the two middle
    values. */
double bench_median(double *v, size_t n);

/*  Median of one double field over n structs: the field at offset in each of the n elements
    of stride bytes from base (say, one figure of every pass: base = passes, stride =
    sizeof(pass), offset = offsetof(pass_t, figure)). base is left as it is. */
double bench_median_field(const void *base, size_t n, size_t stride, size_t offset);

/*  Stores a duration in a uint32_t sample, saturating at UINT32_MAX ns (about 4.3 s). */
static inline uint32_t bench_sample(int64_t ns)
{
    return ns < 0 ? 0 : ns > (int64_t)UINT32_MAX ? UINT32_MAX : (uint32_t)ns;
}

/*  Measures the cost of one bench_now_ns() call (median of a short run), in nanoseconds, so
    reports can say how much of a per-call latency is the timer itself. */
double bench_timer_overhead_ns(void);

#endif

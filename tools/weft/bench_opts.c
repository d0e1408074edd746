/*  bench_opts.c - numbers and counts on the command line of the benchmarks (bench_opts.h). */
#include "bench_opts.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

double bench_parse_number(const char *text, const char **rest)
{
    if (!text || !*text)
        return -1;
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || v < 0)
        return -1;
    if (rest)
        *rest = end;
    return v;
}

double bench_parse_count(const char *text)
{
    const char *end;
    double v = bench_parse_number(text, &end);
    if (v < 0)
        return -1;
    if (*end == 'k' || *end == 'K')
        v *= 1e3, end++;
    else if (*end == 'M' || *end == 'm')
        v *= 1e6, end++;
    else if (*end == 'G' || *end == 'g')
        v *= 1e9, end++;
    return *end ? -1 : v;
}

double bench_count_option(const char *prog, int argc, char **argv, int *i, double min,
                          double max)
{
    const char *opt = argv[*i];
    if (*i + 1 >= argc) {
        fprintf(stderr, "%s: %s needs a value\n", prog, opt);
        return -1;
    }
    double v = bench_parse_count(argv[++*i]);
    if (v < min || v > max) {
        fprintf(stderr, "%s: %s %s: expected a number from %.0f to %.0f\n", prog, opt, argv[*i],
                min, max);
        return -1;
    }
    return v;
}

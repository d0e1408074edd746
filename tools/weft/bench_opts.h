/*  bench_opts.h - option values every `weft bench` benchmark parses the same way: counts with
    an optional k/M/G suffix (--events 200k, --passes 3, --size 100, --rate 1M), and the number
    in front of any other unit (`weft bench soak --seconds 10m`). Each benchmark keeps its own
    option loop and messages and uses these for the values.
*/
#ifndef WEFT_BENCH_OPTS_H_INCLUDED
#define WEFT_BENCH_OPTS_H_INCLUDED

/*  Parses the non-negative decimal number text starts with and sets *rest (may be NULL) to what
    follows it (the unit, if any). Returns -1 when text does not start with such a number. */
double bench_parse_number(const char *text, const char **rest);

/*  Parses a non-negative count with an optional k/M/G suffix (powers of 1000, either case):
    "200k" -> 200000. Returns -1 when the text is not such a number. */
double bench_parse_count(const char *text);

/*  Fetches the value of option argv[*i] (advancing *i) as a count within [min, max]; prints
    why, prefixed with prog, and returns -1 when it is missing or out of range. */
double bench_count_option(const char *prog, int argc, char **argv, int *i, double min,
                          double max);

#endif

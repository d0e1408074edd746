/*  cli_parse.h - number parsing shared by the `weft` commands: whole numbers in a range
    (offsets, limits, counts) and ages such as 90s, 10m or 1.5h (`weft replay --since`,
    `weft dlq --older-than`). Each command turns the result into its own units and messages.
*/
#ifndef WEFT_CLI_PARSE_H_INCLUDED
#define WEFT_CLI_PARSE_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>

/*  Parses a whole decimal number in [min, max] (digits only: no sign, space or suffix).
    Returns true on success. */
bool cli_parse_u64(const char *text, uint64_t min, uint64_t max, uint64_t *out);

/*  Parses an age: a non-negative decimal number (which may start with '.') and a unit, ms, s,
    m, h, d or w. Without a unit the number counts bare_unit_ns nanoseconds, or the text is
    refused when bare_unit_ns is 0. Sets *count to the number and *unit_ns to the length of its
    unit in ns (1e6 for ms, 1e9 for s, ...), so that a caller working in other units scales
    the unit exactly. Returns 0, or -1 when text is not such an age. */
int cli_parse_age(const char *text, double bare_unit_ns, double *count, double *unit_ns);

#endif

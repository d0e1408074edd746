/*  cli_parse.c - whole numbers and ages for the `weft` commands (cli_parse.h). */
#include "cli_parse.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

bool cli_parse_u64(const char *text, uint64_t min, uint64_t max, uint64_t *out)
{
    if (!text || *text < '0' || *text > '9')
        return false;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno || *end || v < min || v > max)
        return false;
    *out = v;
    return true;
}

int cli_parse_age(const char *text, double bare_unit_ns, double *count, double *unit_ns)
{
    if (!text || !((*text >= '0' && *text <= '9') || *text == '.'))
        return -1;
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || !isfinite(v) || v < 0)
        return -1;
    double unit;
    if (!*end && bare_unit_ns > 0)
        unit = bare_unit_ns;
    else if (!strcmp(end, "ms"))
        unit = 1e6;
    else if (!strcmp(end, "s"))
        unit = 1e9;
    else if (!strcmp(end, "m"))
        unit = 60e9;
    else if (!strcmp(end, "h"))
        unit = 3600e9;
    else if (!strcmp(end, "d"))
        unit = 86400e9;
    else if (!strcmp(end, "w"))
        unit = 7 * 86400e9;
    else
        return -1;
    *count = v;
    *unit_ns = unit;
    return 0;
}

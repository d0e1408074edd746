/*  bind_util.c - ephemeral binds that start at a random port (bind_util.h). */
#include "bind_util.h"

#include <stdio.h>
#include <string.h>

const char *bind_util_endpoint(const char *endpoint, char *out, size_t cap)
{
    size_t n = strlen(endpoint);
    if (strncmp(endpoint, "tcp://", 6) == 0 && n >= 8 && strcmp(endpoint + n - 2, ":*") == 0)
        snprintf(out, cap, "%.*s:!", (int)(n - 2), endpoint);
    else
        snprintf(out, cap, "%s", endpoint);
    return out;
}

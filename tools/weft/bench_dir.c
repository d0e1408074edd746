/*  bench_dir.c - making and removing a benchmark run's directory (bench_dir.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* nftw */
#endif
#include "bench_dir.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int bench_run_dir(const char *prog, const char *dir, const char *name, char *root, size_t cap,
                  const char **parent)
{
    const char *tmp = getenv("TMPDIR");
    const char *in = dir ? dir : tmp && *tmp ? tmp : "/tmp";
    if (parent)
        *parent = in;
    if (dir && mkdir(dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "%s: cannot create %s: %s\n", prog, dir, strerror(errno));
        return -1;
    }
    snprintf(root, cap, "%s/weft-bench-%s.XXXXXX", in, name);
    if (!mkdtemp(root)) {
        fprintf(stderr, "%s: cannot create a directory in %s: %s\n", prog, in, strerror(errno));
        return -1;
    }
    return 0;
}

/* nftw gives its callback no argument of ours: the program name for messages waits here. */
static const char *s_rm_prog;

static int s_rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    if (remove(path) != 0 && errno != ENOENT)
        fprintf(stderr, "%s: cannot remove %s: %s\n", s_rm_prog, path, strerror(errno));
    return 0;
}

void bench_rmtree(const char *prog, const char *dir)
{
    s_rm_prog = prog;
    nftw(dir, s_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

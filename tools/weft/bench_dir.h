/*  bench_dir.h - the scratch directory of a benchmark run (`weft bench archive`, `weft bench
    dlq`): made under --dir, $TMPDIR or /tmp, holding the stores the run creates, and removed
    at the end unless --keep.
*/
#ifndef WEFT_BENCH_DIR_H_INCLUDED
#define WEFT_BENCH_DIR_H_INCLUDED

#include <stddef.h>

/*  Makes the run's directory PARENT/weft-bench-NAME.XXXXXX (mkdtemp), PARENT being dir
    (created when missing) or else $TMPDIR or /tmp. root gets its path (cap bytes) and
    *parent, when parent is not NULL, PARENT. Returns 0, or -1 after printing why on stderr,
    prefixed with prog (root then holds the template, or is untouched when dir could not be
    created). */
int bench_run_dir(const char *prog, const char *dir, const char *name, char *root, size_t cap,
                  const char **parent);

/*  Removes dir and everything below it; what cannot be removed is reported on stderr,
    prefixed with prog. */
void bench_rmtree(const char *prog, const char *dir);

#endif

/*  lmdb_util.h - small helpers shared by weft's LMDB stores.

    Big-endian integer keys (byte order = numeric order), the translation of LMDB and errno
    codes into weft_err_t, "mkdir -p", the per-directory writer lock (an exclusive flock on a
    lock file that holds the owner's pid, so a refused open can name it) and map doubling.
    None of this keeps state: each store owns its environment, lock descriptor and limits.
*/
#ifndef WEFT_LMDB_UTIL_H_INCLUDED
#define WEFT_LMDB_UTIL_H_INCLUDED

#include <lmdb.h>
#include <stddef.h>
#include <stdint.h>

static inline void lmdb_util_put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static inline uint64_t lmdb_util_get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

static inline void lmdb_util_put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline uint32_t lmdb_util_get_u32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/*  An LMDB return code (or an errno value) as a weft_err_t: MDB_NOTFOUND -> WEFT_ENOTFOUND,
    MDB_MAP_FULL/ENOMEM -> WEFT_ENOMEM, MDB_TXN_FULL -> WEFT_ETOOBIG, MDB_VERSION_MISMATCH ->
    WEFT_EVERSION, corruption -> WEFT_EMALFORMED, reader/transaction state -> WEFT_ESTATE, the
    rest (I/O, permissions) -> WEFT_ECONFIG. */
int lmdb_util_code(int rc);

/*  mkdir -p with mode 0755. Returns 0, or -1 with errno set. */
int lmdb_util_mkdirs(const char *dir);

/*  Takes the writer lock of a store directory: a non-blocking exclusive flock on DIR/file,
    which then holds our pid. flock locks belong to the open file, so a second open in the same
    process conflicts as well, and the kernel drops the lock when the process dies, however it
    dies. what names the store ("dlq store"), owner the other holder ("DLQ"): a held lock gives
    WEFT_ESTATE and "<what> DIR is in use by another <owner> (pid N)". Other failures give
    WEFT_ECONFIG. On success *fd is the lock descriptor (release with lmdb_util_unlock). */
int lmdb_util_lock(const char *dir, const char *file, const char *what, const char *owner,
                   int *fd, char *why, size_t cap);

/*  Clears the pid from the lock file and closes it (which releases the lock). fd < 0: no-op. */
void lmdb_util_unlock(int fd);

/*  Doubles the map of env, capped at max. The caller guarantees that no transaction of this
    process is open on env. Returns 0 and the new size, WEFT_ENOMEM when the map is already at
    max, or the weft code of LMDB's refusal (LMDB's own code in *lmdb_rc when not NULL). */
int lmdb_util_grow(MDB_env *env, uint64_t max, uint64_t *new_size, int *lmdb_rc);

#endif

/*  lmdb_util.c - see lmdb_util.h. Helpers for weft's LMDB stores: error translation, mkdir -p,
    the flock'ed writer lock with the owner's pid, and map doubling.
*/
#include "lmdb_util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "weft/error.h"

int lmdb_util_code(int rc)
{
    switch (rc) {
    case MDB_SUCCESS:
        return WEFT_OK;
    case MDB_NOTFOUND:
        return WEFT_ENOTFOUND;
    case MDB_MAP_FULL:
    case ENOMEM:
        return WEFT_ENOMEM;
    case MDB_TXN_FULL:
        return WEFT_ETOOBIG;
    case MDB_VERSION_MISMATCH:
        return WEFT_EVERSION;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
        return WEFT_EMALFORMED;
    case MDB_READERS_FULL:
    case MDB_BAD_RSLOT:
    case MDB_BAD_TXN:
    case MDB_MAP_RESIZED:
    case MDB_PANIC:
        return WEFT_ESTATE;
    default:
        return WEFT_ECONFIG;
    }
}

int lmdb_util_mkdirs(const char *dir)
{
    char buf[PATH_MAX];
    size_t len = strlen(dir);
    if (len == 0 || len >= sizeof(buf)) {
        errno = len ? ENAMETOOLONG : ENOENT;
        return -1;
    }
    memcpy(buf, dir, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (buf[i] == '/' || buf[i] == 0) {
            char c = buf[i];
            buf[i] = 0;
            if (mkdir(buf, 0755) != 0 && errno != EEXIST)
                return -1;
            buf[i] = c;
        }
    }
    return 0;
}

int lmdb_util_lock(const char *dir, const char *file, const char *what, const char *owner,
                   int *fd_out, char *why, size_t cap)
{
    char path[PATH_MAX];
    *fd_out = -1;
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, file) >= sizeof(path)) {
        snprintf(why, cap, "%s path %s is too long", what, dir);
        return WEFT_ECONFIG;
    }
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(why, cap, "cannot open %s: %s", path, strerror(errno));
        return WEFT_ECONFIG;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        if (e == EWOULDBLOCK) {
            char text[32] = {0};
            ssize_t got = pread(fd, text, sizeof(text) - 1, 0);
            long pid = got > 0 ? strtol(text, NULL, 10) : 0;
            if (pid > 0)
                snprintf(why, cap, "%s %s is in use by another %s (pid %ld)", what, dir, owner,
                         pid);
            else
                snprintf(why, cap, "%s %s is in use by another %s (pid unknown)", what, dir,
                         owner);
            close(fd);
            return WEFT_ESTATE;
        }
        snprintf(why, cap, "cannot lock %s: %s", path, strerror(e));
        close(fd);
        return WEFT_ECONFIG;
    }
    char text[32];
    int n = snprintf(text, sizeof(text), "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, text, (size_t)n, 0) != n) {
        /* The pid is only for the message; the lock itself is what matters. */
    }
    *fd_out = fd;
    return WEFT_OK;
}

void lmdb_util_unlock(int fd)
{
    if (fd < 0)
        return;
    if (ftruncate(fd, 0) != 0) {
        /* a stale pid in an unlocked file is harmless */
    }
    close(fd);
}

int lmdb_util_grow(MDB_env *env, uint64_t max, uint64_t *new_size, int *lmdb_rc)
{
    if (lmdb_rc)
        *lmdb_rc = MDB_SUCCESS;
    MDB_envinfo info;
    int rc = mdb_env_info(env, &info);
    if (rc) {
        if (lmdb_rc)
            *lmdb_rc = rc;
        return lmdb_util_code(rc);
    }
    uint64_t cur = info.me_mapsize;
    if (cur >= max)
        return WEFT_ENOMEM;
    uint64_t want = cur > max / 2 ? max : cur * 2;
    if (want > SIZE_MAX)
        return WEFT_ENOMEM;
    rc = mdb_env_set_mapsize(env, (size_t)want);
    if (rc) {
        if (lmdb_rc)
            *lmdb_rc = rc;
        return lmdb_util_code(rc);
    }
    *new_size = want;
    return WEFT_OK;
}

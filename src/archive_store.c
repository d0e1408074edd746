/*  archive_store.c - see archive_store.h. The archiver's LMDB layer: one environment, six named
    databases, one writer that group-commits batches, readers with short renewable read
    transactions, a planned MDB_MAP_FULL path (abort, quiesce readers, grow, retry once) and
    retention in small transactions.

    Offsets are never reused: "next_offset" is kept in meta (besides the last key of events),
    because retention may remove every event and the next one must still get a new offset.

    by_time is sparse and exact. Each append batch writes one entry

        key   = M(first offset of the batch), as u64 BE with the sign bit flipped
        value = first offset of the batch

    where M(o) is the largest recv_ts of the events stored at offsets <= o (a running maximum,
    so the keys never decrease in offset order, even when the wall clock steps back). An entry
    (K, O) with K < ts proves that no event at or before O has recv_ts >= ts, so archive_seek_time
    starts from the last entry with K < ts and scans events from there: the answer lies within
    about one batch. Two batches with the same K keep the later offset (it skips more). Removing
    events never invalidates the proof, it only makes the scan start earlier.

    Reader quiesce: mdb_env_set_mapsize needs every transaction of the process to be finished.
    Each read transaction holds `quiesce` shared from begin to end; growing takes it exclusive
    (writer-preferring, so a stream of readers cannot starve the writer). A thread-local table
    makes a thread that already holds the lock shared on a store not lock it again (a recursive
    shared lock would deadlock against a waiting grower).
*/
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pthread_rwlockattr_setkind_np */
#endif
#include "archive_store.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "weft/envelope.h"
#include "weft/error.h"

/*  The `events` value, written by s_append_txn and read by s_rec_decode:

      0          8     9            13          13+T           13+T+E
      +----------+-----+------------+-----------+--------------+------------------+
      | recv_ts  |  T  |     E      |   topic   |   envelope   |     payload      |
      | i64 BE ns| u8  |   u32 BE   |  T bytes  |   E bytes    | (the rest)       |
      +----------+-----+------------+-----------+--------------+------------------+

    Frames are stored exactly as received. The record size (13 + T + E + payload) is what the
    "bytes" total and the max_bytes retention limit count. */
#define REC_HEADER 13

/*  A by_topic key: topic, a 0x00 separator, offset. Topic bytes are 0x21..0x7e, so the
    separator sorts a topic's own entries before those of any longer topic it prefixes, and
    "topic 0x01" is the first key after all of them. */
#define TOPIC_KEY_MAX (WEFT_TOPIC_MAX + 1 + 8)

/* Reader slots: one per live archive_reader_t (each replay session keeps one) plus short ones
   for info and for tools in other processes. LMDB's default of 126 is tight for a busy
   archiver; a slot costs 64 bytes of the lock file. */
#define MAX_READERS 254
#define MAX_DBS 8          /* seven used, one spare for a later format */
#define ERR_CAP 320        /* last-error sentences */
#define HELD_SLOTS 8       /* stores one thread can hold readers on at the same time */

static const uint8_t s_empty[1]; /* the value of by_topic entries (zero bytes of it) */

struct archive_store_t {
    MDB_env *env;
    MDB_dbi db_events, db_source, db_id, db_topic, db_time, db_meta;
    MDB_dbi db_repairs;        /* owed repairs; has_repairs false in an old read-only archive */
    bool has_repairs;
    char *dir;
    bool read_only;
    uint64_t max_map;          /* growth ceiling in bytes */
    int lock_fd;               /* flock'ed DIR/weft-archive.lock; -1 when read-only */
    dev_t dev;                 /* identity of dir, for the per-process open registry */
    ino_t ino;
    pid_t pid;                 /* process that opened it (a forked child inherits the registry) */
    bool registered;
    archive_store_t *next_open;
    pthread_rwlock_t quiesce;  /* shared: each read txn; exclusive: map growth */
    bool quiesce_ok;
    pthread_mutex_t wlock;     /* serialises append, trim and the writer state below */
    bool wlock_ok;
    /* writer state as of the last commit, under wlock */
    uint64_t next_offset;      /* offset the next stored event gets */
    uint64_t bytes;            /* total record bytes stored */
    int64_t max_ts;            /* M(last offset), see by_time above; INT64_MIN when none */
    char last_error[ERR_CAP];  /* under wlock */
    _Atomic uint64_t map_full; /* batches refused for lack of map space */
    _Atomic uint64_t map_grows;
    _Atomic int readers;       /* live archive_reader_t objects */
};

struct archive_reader_t {
    archive_store_t *s;
    MDB_txn *txn;              /* NULL until the first begin; reset while not begun */
    bool active;               /* begun: txn live and quiesce held shared */
    char last_error[ERR_CAP];
};

/* ---- small helpers ---------------------------------------------------------------------- */

static void s_put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static uint64_t s_get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

static void s_put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t s_get_u32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* Time keys: flipping the sign bit makes unsigned byte order match signed numeric order. */
static uint64_t s_ts_key(int64_t ts)
{
    return (uint64_t)ts ^ (1ull << 63);
}

static void s_vfmt(char *buf, size_t cap, const char *fmt, va_list ap)
{
    if (buf && cap)
        vsnprintf(buf, cap, fmt, ap);
}

/* Records a store-level failure (caller holds wlock) and returns code. */
static int s_fail(archive_store_t *s, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int s_fail(archive_store_t *s, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    s_vfmt(s->last_error, sizeof(s->last_error), fmt, ap);
    va_end(ap);
    return code;
}

static int r_fail(archive_reader_t *r, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int r_fail(archive_reader_t *r, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    s_vfmt(r->last_error, sizeof(r->last_error), fmt, ap);
    va_end(ap);
    return code;
}

/* LMDB (and errno) codes to the weft vocabulary. */
static int s_code(int rc)
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

/* ---- reader quiesce ------------------------------------------------------------------------ */

typedef struct {
    const archive_store_t *s;
    unsigned depth;
} held_t;

static __thread held_t t_held[HELD_SLOTS];

static held_t *s_held(const archive_store_t *s)
{
    for (int i = 0; i < HELD_SLOTS; i++)
        if (t_held[i].depth > 0 && t_held[i].s == s)
            return &t_held[i];
    return NULL;
}

/* Takes the quiesce lock shared for one read transaction (once per thread and store). */
static int s_quiesce_enter(archive_store_t *s)
{
    held_t *h = s_held(s);
    if (h) {
        h->depth++;
        return WEFT_OK;
    }
    for (int i = 0; i < HELD_SLOTS; i++) {
        if (t_held[i].depth == 0) {
            if (pthread_rwlock_rdlock(&s->quiesce) != 0)
                return WEFT_ESTATE;
            t_held[i].s = s;
            t_held[i].depth = 1;
            return WEFT_OK;
        }
    }
    return WEFT_ESTATE; /* readers begun on more than HELD_SLOTS stores in this thread */
}

static void s_quiesce_leave(archive_store_t *s)
{
    held_t *h = s_held(s);
    assert(h);
    if (--h->depth == 0) {
        h->s = NULL;
        pthread_rwlock_unlock(&s->quiesce);
    }
}

/*  Begins (txn NULL) or renews (*txn reset) a read transaction and holds the quiesce lock
    shared. If another process grew the map (read-only stores beside a live archiver), adopts
    the new size and tries again. Returns an LMDB code (or ENOLCK when the lock failed). */
static int s_rtxn_begin(archive_store_t *s, MDB_txn **txn)
{
    for (int attempt = 0;; attempt++) {
        if (s_quiesce_enter(s) != WEFT_OK)
            return ENOLCK;
        int rc = *txn ? mdb_txn_renew(*txn) : mdb_txn_begin(s->env, NULL, MDB_RDONLY, txn);
        if (rc == MDB_SUCCESS)
            return rc;
        s_quiesce_leave(s);
        if (rc != MDB_MAP_RESIZED || attempt > 0 || s_held(s))
            return rc;
        pthread_rwlock_wrlock(&s->quiesce);
        rc = mdb_env_set_mapsize(s->env, 0); /* 0: take the size the other process recorded */
        pthread_rwlock_unlock(&s->quiesce);
        if (rc)
            return rc;
    }
}

/* ---- records ------------------------------------------------------------------------------- */

static int s_rec_decode(uint64_t offset, const MDB_val *v, archive_rec_t *rec)
{
    const uint8_t *p = v->mv_data;
    if (v->mv_size < REC_HEADER)
        return WEFT_EMALFORMED;
    size_t tlen = p[8];
    size_t elen = s_get_u32(p + 9);
    if (tlen > v->mv_size - REC_HEADER || elen > v->mv_size - REC_HEADER - tlen)
        return WEFT_EMALFORMED;
    rec->offset = offset;
    rec->recv_ts = (int64_t)s_get_u64(p);
    rec->topic = (const char *)p + REC_HEADER;
    rec->topic_size = tlen;
    rec->envelope = p + REC_HEADER + tlen;
    rec->envelope_size = elen;
    rec->payload = p + REC_HEADER + tlen + elen;
    rec->payload_size = v->mv_size - REC_HEADER - tlen - elen;
    return WEFT_OK;
}

static size_t s_topic_key(uint8_t *key, const char *topic, size_t tlen, uint64_t offset)
{
    memcpy(key, topic, tlen);
    key[tlen] = 0;
    s_put_u64(key + tlen + 1, offset);
    return tlen + 9;
}

/* ---- opening and closing --------------------------------------------------------------------- */

/* Stores open in this process, by directory identity: LMDB must not see one env twice. */
static pthread_mutex_t s_registry_lock = PTHREAD_MUTEX_INITIALIZER;
static archive_store_t *s_registry;

static bool s_register(archive_store_t *s)
{
    pthread_mutex_lock(&s_registry_lock);
    for (archive_store_t *o = s_registry; o; o = o->next_open) {
        if (o->pid == s->pid && o->dev == s->dev && o->ino == s->ino) {
            pthread_mutex_unlock(&s_registry_lock);
            return false;
        }
    }
    s->next_open = s_registry;
    s_registry = s;
    s->registered = true;
    pthread_mutex_unlock(&s_registry_lock);
    return true;
}

static void s_unregister(archive_store_t *s)
{
    if (!s->registered)
        return;
    pthread_mutex_lock(&s_registry_lock);
    for (archive_store_t **pp = &s_registry; *pp; pp = &(*pp)->next_open) {
        if (*pp == s) {
            *pp = s->next_open;
            break;
        }
    }
    pthread_mutex_unlock(&s_registry_lock);
    s->registered = false;
}

/* mkdir -p */
static int s_mkdirs(const char *dir)
{
    char buf[PATH_MAX];
    size_t len = strlen(dir);
    if (len >= sizeof(buf)) {
        errno = ENAMETOOLONG;
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

/*  Takes the archiver lock: a non-blocking exclusive flock on DIR/weft-archive.lock, which
    then holds our pid for the message another archiver gets. flock (not fcntl) locks belong
    to the open file, so a second open in this same process conflicts too, and the kernel
    drops the lock when the process dies, however it dies. */
static int s_lock(archive_store_t *s, char *why, size_t cap)
{
    char path[PATH_MAX];
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", s->dir, ARCHIVE_LOCK_FILE) >= sizeof(path)) {
        snprintf(why, cap, "archive path %s is too long", s->dir);
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
                snprintf(why, cap, "archive %s is in use by another archiver (pid %ld)", s->dir,
                         pid);
            else
                snprintf(why, cap, "archive %s is in use by another archiver (pid unknown)",
                         s->dir);
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
    s->lock_fd = fd;
    return WEFT_OK;
}

static void s_free(archive_store_t *s)
{
    if (!s)
        return;
    if (s->env)
        mdb_env_close(s->env);
    s_unregister(s);
    if (s->lock_fd >= 0) {
        if (ftruncate(s->lock_fd, 0) != 0) {
            /* a stale pid in an unlocked file is harmless */
        }
        close(s->lock_fd);
    }
    if (s->quiesce_ok)
        pthread_rwlock_destroy(&s->quiesce);
    if (s->wlock_ok)
        pthread_mutex_destroy(&s->wlock);
    free(s->dir);
    free(s);
}

static int s_meta_get_u64(MDB_txn *txn, MDB_dbi db, const char *name, uint64_t *out)
{
    MDB_val k = {strlen(name), (void *)name}, v;
    int rc = mdb_get(txn, db, &k, &v);
    if (rc)
        return rc;
    if (v.mv_size != 8)
        return MDB_CORRUPTED;
    *out = s_get_u64(v.mv_data);
    return MDB_SUCCESS;
}

static int s_meta_put_u64(MDB_txn *txn, MDB_dbi db, const char *name, uint64_t value)
{
    uint8_t b[8];
    s_put_u64(b, value);
    MDB_val k = {strlen(name), (void *)name}, v = {8, b};
    return mdb_put(txn, db, &k, &v, 0);
}

/*  Reads (and for a new archive writes) meta, opens the named databases and, when writable,
    loads the writer state. Runs in the first transaction, which commits to keep the handles. */
static int s_init(archive_store_t *s, char *why, size_t cap)
{
    MDB_txn *txn = NULL;
    int rc = mdb_txn_begin(s->env, NULL, s->read_only ? MDB_RDONLY : 0, &txn);
    if (rc) {
        snprintf(why, cap, "cannot read archive %s: %s", s->dir, mdb_strerror(rc));
        return s_code(rc);
    }
    int code = WEFT_OK;
    unsigned create = s->read_only ? 0 : MDB_CREATE;
    MDB_dbi main_db;
    bool fresh = false;

    rc = mdb_dbi_open(txn, NULL, 0, &main_db);
    if (rc == MDB_SUCCESS)
        rc = mdb_dbi_open(txn, "meta", 0, &s->db_meta);
    if (rc == MDB_NOTFOUND) {
        MDB_stat st;
        if (mdb_stat(txn, main_db, &st) == MDB_SUCCESS && st.ms_entries > 0) {
            snprintf(why, cap, "%s is an LMDB environment but not a weft archive", s->dir);
            code = WEFT_ECONFIG;
            goto done;
        }
        if (s->read_only) {
            snprintf(why, cap, "archive %s is empty (never opened by an archiver)", s->dir);
            code = WEFT_ENOTFOUND;
            goto done;
        }
        fresh = true;
        rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &s->db_meta);
    }
    if (rc) {
        snprintf(why, cap, "cannot open archive %s: %s", s->dir, mdb_strerror(rc));
        code = rc == MDB_INCOMPATIBLE ? WEFT_ECONFIG : s_code(rc);
        goto done;
    }

    /* The format check comes before anything else is touched. */
    MDB_val fk = {6, "format"}, fv;
    rc = fresh ? MDB_NOTFOUND : mdb_get(txn, s->db_meta, &fk, &fv);
    if (rc == MDB_SUCCESS) {
        if (fv.mv_size != 4) {
            snprintf(why, cap, "archive %s has a damaged format record", s->dir);
            code = WEFT_ECONFIG;
            goto done;
        }
        uint32_t format = s_get_u32(fv.mv_data);
        if (format != ARCHIVE_FORMAT) {
            snprintf(why, cap, "archive %s has format version %u; this build reads version %d",
                     s->dir, format, ARCHIVE_FORMAT);
            code = WEFT_EVERSION;
            goto done;
        }
    } else if (rc == MDB_NOTFOUND && !fresh) {
        snprintf(why, cap, "archive %s has no format version: not a weft archive", s->dir);
        code = WEFT_ECONFIG;
        goto done;
    } else if (rc != MDB_NOTFOUND) {
        snprintf(why, cap, "cannot read archive %s: %s", s->dir, mdb_strerror(rc));
        code = s_code(rc);
        goto done;
    }

    struct {
        const char *name;
        MDB_dbi *dbi;
    } dbs[] = {{"events", &s->db_events}, {"by_source", &s->db_source}, {"by_id", &s->db_id},
               {"by_topic", &s->db_topic}, {"by_time", &s->db_time}};
    for (size_t i = 0; i < sizeof(dbs) / sizeof(dbs[0]); i++) {
        rc = mdb_dbi_open(txn, dbs[i].name, create, dbs[i].dbi);
        if (rc) {
            snprintf(why, cap, "cannot open database %s of archive %s: %s", dbs[i].name, s->dir,
                     mdb_strerror(rc));
            code = rc == MDB_NOTFOUND ? WEFT_ECONFIG : s_code(rc);
            goto done;
        }
    }

    /* `repairs` came after the first archives of format 1: a writer adds it, a reader of an
       archive without it sees no owed repairs. */
    rc = mdb_dbi_open(txn, "repairs", create, &s->db_repairs);
    if (rc == MDB_SUCCESS) {
        s->has_repairs = true;
    } else if (rc != MDB_NOTFOUND) {
        snprintf(why, cap, "cannot open database repairs of archive %s: %s", s->dir,
                 mdb_strerror(rc));
        code = s_code(rc);
        goto done;
    }

    if (fresh) {
        uint8_t b[4];
        s_put_u32(b, ARCHIVE_FORMAT);
        MDB_val v = {4, b};
        rc = mdb_put(txn, s->db_meta, &fk, &v, 0);
        if (!rc)
            rc = s_meta_put_u64(txn, s->db_meta, "created", (uint64_t)weft_now_ns());
        if (!rc)
            rc = s_meta_put_u64(txn, s->db_meta, "next_offset", 1);
        if (!rc)
            rc = s_meta_put_u64(txn, s->db_meta, "bytes", 0);
        if (rc) {
            snprintf(why, cap, "cannot initialise archive %s: %s", s->dir, mdb_strerror(rc));
            code = s_code(rc);
            goto done;
        }
    }

    if (!s->read_only) {
        /* next_offset: the larger of meta's and the last stored key + 1. */
        uint64_t next = 1, bytes = 0;
        if (s_meta_get_u64(txn, s->db_meta, "next_offset", &next) != MDB_SUCCESS)
            next = 1;
        if (s_meta_get_u64(txn, s->db_meta, "bytes", &bytes) != MDB_SUCCESS)
            bytes = 0;
        MDB_cursor *c = NULL;
        MDB_val k, v;
        rc = mdb_cursor_open(txn, s->db_events, &c);
        if (!rc && mdb_cursor_get(c, &k, &v, MDB_LAST) == MDB_SUCCESS && k.mv_size == 8 &&
            s_get_u64(k.mv_data) >= next)
            next = s_get_u64(k.mv_data) + 1;
        /* max_ts: the last by_time key, and the events written after its offset. */
        int64_t max_ts = INT64_MIN;
        uint64_t from = 0;
        MDB_cursor *tc = NULL;
        if (!rc)
            rc = mdb_cursor_open(txn, s->db_time, &tc);
        if (!rc && mdb_cursor_get(tc, &k, &v, MDB_LAST) == MDB_SUCCESS && k.mv_size == 8 &&
            v.mv_size == 8) {
            max_ts = (int64_t)(s_get_u64(k.mv_data) ^ (1ull << 63));
            from = s_get_u64(v.mv_data);
        }
        if (!rc) {
            uint8_t fb[8];
            s_put_u64(fb, from);
            k.mv_size = 8;
            k.mv_data = fb;
            int g = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
            while (g == MDB_SUCCESS) {
                archive_rec_t rec;
                if (s_rec_decode(0, &v, &rec) == WEFT_OK && rec.recv_ts > max_ts)
                    max_ts = rec.recv_ts;
                g = mdb_cursor_get(c, &k, &v, MDB_NEXT);
            }
        }
        if (tc)
            mdb_cursor_close(tc);
        if (c)
            mdb_cursor_close(c);
        if (rc) {
            snprintf(why, cap, "cannot read archive %s: %s", s->dir, mdb_strerror(rc));
            code = s_code(rc);
            goto done;
        }
        s->next_offset = next;
        s->bytes = bytes;
        s->max_ts = max_ts;
    }

done:
    if (code == WEFT_OK) {
        rc = mdb_txn_commit(txn); /* also for the read-only txn: keeps the dbi handles */
        if (rc) {
            snprintf(why, cap, "cannot initialise archive %s: %s", s->dir, mdb_strerror(rc));
            code = s_code(rc);
        }
    } else {
        mdb_txn_abort(txn);
    }
    return code;
}

archive_store_t *archive_store_open(const archive_opts_t *opts, int *err, char *why,
                                    size_t why_cap)
{
    char msg[ERR_CAP + PATH_MAX] = "";
    int code = WEFT_OK;
    archive_store_t *s = NULL;

    if (!opts || !opts->dir || !opts->dir[0]) {
        snprintf(msg, sizeof(msg), "no archive directory given");
        code = WEFT_EINVAL;
        goto fail;
    }
    if (opts->sync != ARCHIVE_SYNC_ALWAYS && opts->sync != ARCHIVE_SYNC_INTERVAL &&
        opts->sync != ARCHIVE_SYNC_NONE) {
        snprintf(msg, sizeof(msg), "unknown sync policy %d", (int)opts->sync);
        code = WEFT_EINVAL;
        goto fail;
    }
    s = calloc(1, sizeof(*s));
    if (!s || !(s->dir = strdup(opts->dir))) {
        snprintf(msg, sizeof(msg), "out of memory opening archive %s", opts->dir);
        code = WEFT_ENOMEM;
        goto fail;
    }
    s->lock_fd = -1;
    s->read_only = opts->read_only;
    s->max_ts = INT64_MIN;
    pthread_rwlockattr_t ra;
    pthread_rwlockattr_init(&ra);
    pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    s->quiesce_ok = pthread_rwlock_init(&s->quiesce, &ra) == 0;
    pthread_rwlockattr_destroy(&ra);
    s->wlock_ok = pthread_mutex_init(&s->wlock, NULL) == 0;
    if (!s->quiesce_ok || !s->wlock_ok) {
        snprintf(msg, sizeof(msg), "out of resources opening archive %s", s->dir);
        code = WEFT_ENOMEM;
        goto fail;
    }

    if (!s->read_only && s_mkdirs(s->dir) != 0) {
        snprintf(msg, sizeof(msg), "cannot create archive directory %s: %s", s->dir,
                 strerror(errno));
        code = WEFT_ECONFIG;
        goto fail;
    }
    struct stat st;
    if (stat(s->dir, &st) != 0) {
        int e = errno;
        snprintf(msg, sizeof(msg), "archive %s: %s", s->dir,
                 e == ENOENT ? "does not exist" : strerror(e));
        code = e == ENOENT ? WEFT_ENOTFOUND : WEFT_ECONFIG;
        goto fail;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(msg, sizeof(msg), "archive %s is not a directory", s->dir);
        code = WEFT_ECONFIG;
        goto fail;
    }
    s->dev = st.st_dev;
    s->ino = st.st_ino;
    s->pid = getpid();
    if (s->read_only) {
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/data.mdb", s->dir);
        if (access(path, F_OK) != 0) {
            snprintf(msg, sizeof(msg), "archive %s holds no archive (no data.mdb)", s->dir);
            code = WEFT_ENOTFOUND;
            goto fail;
        }
    } else if ((code = s_lock(s, msg, sizeof(msg))) != WEFT_OK) {
        goto fail;
    }
    if (!s_register(s)) {
        snprintf(msg, sizeof(msg), "archive %s is in use: already open in this process", s->dir);
        code = WEFT_ESTATE;
        goto fail;
    }

    int rc = mdb_env_create(&s->env);
    if (!rc)
        rc = mdb_env_set_maxdbs(s->env, MAX_DBS);
    if (!rc)
        rc = mdb_env_set_maxreaders(s->env, MAX_READERS);
    if (rc) {
        snprintf(msg, sizeof(msg), "cannot create LMDB environment: %s", mdb_strerror(rc));
        code = s_code(rc);
        goto fail;
    }
    unsigned flags = MDB_NOTLS;
    if (s->read_only)
        flags |= MDB_RDONLY;
    else if (opts->sync == ARCHIVE_SYNC_INTERVAL)
        flags |= MDB_NOSYNC;
    else if (opts->sync == ARCHIVE_SYNC_NONE)
        flags |= MDB_NOSYNC | MDB_NOMETASYNC;
    /* No mapsize before open: LMDB then takes the size recorded in the file, so an archive
       that grew keeps its size; it is raised to the requested one below. */
    rc = mdb_env_open(s->env, s->dir, flags, 0644);
    if (rc) {
        snprintf(msg, sizeof(msg), "cannot open archive %s: %s", s->dir, mdb_strerror(rc));
        code = rc == ENOENT ? WEFT_ENOTFOUND : s_code(rc);
        goto fail;
    }
    int dead = 0;
    mdb_reader_check(s->env, &dead); /* frees slots of readers whose process died */

    MDB_envinfo info;
    mdb_env_info(s->env, &info);
    uint64_t want = opts->map_size ? opts->map_size : ARCHIVE_MAP_SIZE_DEFAULT;
    s->max_map = opts->max_map_size ? opts->max_map_size : ARCHIVE_MAP_SIZE_LIMIT;
    if (!s->read_only && info.me_mapsize < want) {
        rc = mdb_env_set_mapsize(s->env, (size_t)want);
        if (rc) {
            snprintf(msg, sizeof(msg), "cannot set the map size of archive %s to %llu: %s",
                     s->dir, (unsigned long long)want, mdb_strerror(rc));
            code = s_code(rc);
            goto fail;
        }
    }
    if ((code = s_init(s, msg, sizeof(msg))) != WEFT_OK)
        goto fail;
    if (err)
        *err = WEFT_OK;
    return s;

fail:
    if (err)
        *err = code;
    if (why && why_cap)
        snprintf(why, why_cap, "%s", msg);
    s_free(s);
    return NULL;
}

void archive_store_close(archive_store_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    archive_store_t *s = *self_p;
    assert(atomic_load(&s->readers) == 0 && "destroy every archive_reader_t before closing");
    if (s->env && !s->read_only)
        mdb_env_sync(s->env, 1);
    s_free(s);
    *self_p = NULL;
}

const char *archive_store_last_error(const archive_store_t *s)
{
    return s ? s->last_error : "no archive store";
}

/* ---- writing ----------------------------------------------------------------------------- */

/*  Doubles the map, up to max_map, with every read transaction of the process quiesced. The
    caller holds wlock and has no write transaction. */
static int s_grow(archive_store_t *s, uint64_t *new_size)
{
    MDB_envinfo info;
    mdb_env_info(s->env, &info);
    uint64_t cur = info.me_mapsize;
    if (cur >= s->max_map)
        return WEFT_ENOMEM;
    if (s_held(s))
        return s_fail(s, WEFT_ESTATE,
                      "archive %s must grow its map, but this thread holds a read transaction "
                      "on it (end readers before appending)",
                      s->dir);
    uint64_t want = cur > s->max_map / 2 ? s->max_map : cur * 2;
    pthread_rwlock_wrlock(&s->quiesce);
    int rc = mdb_env_set_mapsize(s->env, (size_t)want);
    pthread_rwlock_unlock(&s->quiesce);
    if (rc)
        return s_fail(s, s_code(rc), "cannot grow the map of archive %s to %llu bytes: %s",
                      s->dir, (unsigned long long)want, mdb_strerror(rc));
    atomic_fetch_add(&s->map_grows, 1);
    *new_size = want;
    return WEFT_OK;
}

/*  The whole batch in one write transaction. Returns an LMDB code; on success fills res and
    advances the writer state. On failure nothing is kept and *what names the step. */
/*  Applies the repair bookkeeping of a batch (see archive_repair_op_t). Returns an LMDB code. */
static int s_repair_ops(archive_store_t *s, MDB_txn *txn, const archive_repair_op_t *ops,
                        size_t nops)
{
    MDB_cursor *c = NULL;
    int rc = mdb_cursor_open(txn, s->db_repairs, &c);
    for (size_t i = 0; i < nops && rc == MDB_SUCCESS; i++) {
        const archive_repair_op_t *op = &ops[i];
        uint8_t kb[16], vb[8];
        s_put_u64(kb, op->inst);
        s_put_u64(kb + 8, op->from);
        MDB_val k = {16, kb}, v;
        if (!op->done) {
            uint64_t to = op->to;
            rc = mdb_get(txn, s->db_repairs, &k, &v);
            if (rc == MDB_SUCCESS && v.mv_size == 8 && s_get_u64(v.mv_data) > to)
                to = s_get_u64(v.mv_data);
            s_put_u64(vb, to);
            v.mv_size = 8;
            v.mv_data = vb;
            rc = mdb_put(txn, s->db_repairs, &k, &v, 0);
            continue;
        }
        /* Done: every owed range of inst inside from..to goes. */
        rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
        while (rc == MDB_SUCCESS) {
            if (k.mv_size != 16 || s_get_u64(k.mv_data) != op->inst ||
                s_get_u64((const uint8_t *)k.mv_data + 8) > op->to)
                break;
            if (v.mv_size != 8 || s_get_u64(v.mv_data) <= op->to) {
                uint8_t at[16];
                memcpy(at, k.mv_data, 16);
                rc = mdb_cursor_del(c, 0);
                if (rc)
                    break;
                k.mv_size = 16; /* seek again from the deleted key: lands on its successor */
                k.mv_data = at;
                rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
                continue;
            }
            rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
        }
        if (rc == MDB_NOTFOUND)
            rc = MDB_SUCCESS;
    }
    if (c)
        mdb_cursor_close(c);
    return rc;
}

static int s_append_txn(archive_store_t *s, const archive_in_t *ev, size_t n,
                        const archive_repair_op_t *ops, size_t nops,
                        archive_append_result_t *res, const char **what)
{
    MDB_txn *txn = NULL;
    int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc) {
        *what = "begin a write transaction";
        return rc;
    }
    uint64_t off = s->next_offset, bytes = s->bytes;
    int64_t max_ts = s->max_ts;
    archive_append_result_t r = {0};

    for (size_t i = 0; i < n; i++) {
        const archive_in_t *e = &ev[i];
        uint8_t ob[8];
        s_put_u64(ob, off);
        MDB_val vo = {8, ob};

        uint8_t sk[16];
        MDB_val ks = {16, sk};
        if (e->seq > 0) {
            s_put_u64(sk, e->inst);
            s_put_u64(sk + 8, e->seq);
            rc = mdb_put(txn, s->db_source, &ks, &vo, MDB_NOOVERWRITE);
            if (rc == MDB_KEYEXIST) {
                r.duplicates++;
                continue;
            }
            if (rc) {
                *what = "index by source";
                goto fail;
            }
        }
        MDB_val ki = {WEFT_ID_SIZE, (void *)e->id};
        rc = mdb_put(txn, s->db_id, &ki, &vo, MDB_NOOVERWRITE);
        if (rc == MDB_KEYEXIST) {
            /* Same id already stored (a fabric event seen twice, or a reused id). */
            if (e->seq > 0 && (rc = mdb_del(txn, s->db_source, &ks, NULL)) != 0) {
                *what = "undo an index entry";
                goto fail;
            }
            r.duplicates++;
            continue;
        }
        if (rc) {
            *what = "index by id";
            goto fail;
        }

        size_t psize = e->payload_size;
        size_t rsize = REC_HEADER + e->topic_size + e->envelope_size + psize;
        MDB_val ko = {8, ob}, vr = {rsize, NULL};
        rc = mdb_put(txn, s->db_events, &ko, &vr, MDB_APPEND | MDB_RESERVE);
        if (rc) {
            *what = "store the event";
            goto fail;
        }
        uint8_t *p = vr.mv_data;
        s_put_u64(p, (uint64_t)e->recv_ts);
        p[8] = (uint8_t)e->topic_size;
        s_put_u32(p + 9, (uint32_t)e->envelope_size);
        memcpy(p + REC_HEADER, e->topic, e->topic_size);
        if (e->envelope_size)
            memcpy(p + REC_HEADER + e->topic_size, e->envelope, e->envelope_size);
        if (psize)
            memcpy(p + REC_HEADER + e->topic_size + e->envelope_size, e->payload, psize);

        uint8_t tk[TOPIC_KEY_MAX];
        MDB_val kt = {s_topic_key(tk, e->topic, e->topic_size, off), tk};
        MDB_val empty = {0, (void *)s_empty};
        rc = mdb_put(txn, s->db_topic, &kt, &empty, 0);
        if (rc) {
            *what = "index by topic";
            goto fail;
        }

        if (e->recv_ts > max_ts)
            max_ts = e->recv_ts;
        if (r.appended == 0) {
            uint8_t tb[8];
            s_put_u64(tb, s_ts_key(max_ts));
            MDB_val ktime = {8, tb};
            rc = mdb_put(txn, s->db_time, &ktime, &vo, 0);
            if (rc) {
                *what = "index by time";
                goto fail;
            }
            r.first_offset = off;
        }
        r.last_offset = off;
        r.appended++;
        off++;
        bytes += rsize;
    }

    if (nops) {
        rc = s_repair_ops(s, txn, ops, nops);
        if (rc) {
            *what = "record owed repairs";
            goto fail;
        }
    }
    if (r.appended || nops) {
        if (r.appended) {
            rc = s_meta_put_u64(txn, s->db_meta, "next_offset", off);
            if (!rc)
                rc = s_meta_put_u64(txn, s->db_meta, "bytes", bytes);
        }
        if (rc) {
            *what = "update meta";
            goto fail;
        }
        rc = mdb_txn_commit(txn); /* frees txn, also on failure */
        if (rc) {
            *what = "commit";
            return rc;
        }
        s->next_offset = off;
        s->bytes = bytes;
        s->max_ts = max_ts;
    } else {
        mdb_txn_abort(txn); /* all duplicates: nothing to write */
    }
    *res = r;
    return MDB_SUCCESS;

fail:
    mdb_txn_abort(txn);
    return rc;
}

int archive_store_append(archive_store_t *s, const archive_in_t *events, size_t n,
                         archive_append_result_t *res)
{
    return archive_store_append_ops(s, events, n, NULL, 0, res);
}

int archive_store_append_ops(archive_store_t *s, const archive_in_t *events, size_t n,
                             const archive_repair_op_t *ops, size_t nops,
                             archive_append_result_t *res)
{
    if (res)
        memset(res, 0, sizeof(*res));
    if (!s || !res || (n > 0 && !events) || (nops > 0 && !ops))
        return WEFT_EINVAL;
    pthread_mutex_lock(&s->wlock);
    int code = WEFT_OK;
    if (s->read_only) {
        code = s_fail(s, WEFT_ESTATE, "archive %s is open read-only", s->dir);
        goto out;
    }
    size_t batch_bytes = 0;
    for (size_t i = 0; i < n; i++) {
        const archive_in_t *e = &events[i];
        if (!e->id || (e->envelope_size && !e->envelope) || (e->payload_size && !e->payload)) {
            code = s_fail(s, WEFT_EINVAL, "event %zu of the batch has a NULL id or frame", i);
            goto out;
        }
        if (!e->topic || weft_topic_check(e->topic, e->topic_size) != WEFT_OK) {
            code = s_fail(s, WEFT_ETOPIC, "event %zu of the batch has an invalid topic", i);
            goto out;
        }
        if (e->envelope_size > UINT32_MAX ||
            e->payload_size > SIZE_MAX - REC_HEADER - WEFT_TOPIC_MAX - UINT32_MAX) {
            code = s_fail(s, WEFT_ETOOBIG, "event %zu of the batch is too big to store", i);
            goto out;
        }
        batch_bytes += REC_HEADER + e->topic_size + e->envelope_size + e->payload_size;
    }
    if (n == 0 && nops == 0)
        goto out;

    const char *what = "append";
    int rc = s_append_txn(s, events, n, ops, nops, res, &what);
    if (rc == MDB_MAP_FULL) {
        uint64_t grown = 0;
        code = s_grow(s, &grown);
        if (code == WEFT_OK) {
            rc = s_append_txn(s, events, n, ops, nops, res, &what);
            if (rc == MDB_MAP_FULL) {
                atomic_fetch_add(&s->map_full, 1);
                code = s_fail(s, WEFT_ENOMEM,
                              "archive %s is full: a batch of %zu events (%zu bytes) does not "
                              "fit even after growing the map to %llu bytes (max_map_size "
                              "%llu); remove old events (retention) or raise max_map_size",
                              s->dir, n, batch_bytes, (unsigned long long)grown,
                              (unsigned long long)s->max_map);
                goto out;
            }
        } else {
            if (code == WEFT_ENOMEM) {
                MDB_envinfo info;
                mdb_env_info(s->env, &info);
                atomic_fetch_add(&s->map_full, 1);
                s_fail(s, WEFT_ENOMEM,
                       "archive %s is full: a batch of %zu events (%zu bytes) does not fit in "
                       "the map of %llu bytes, which is at max_map_size (%llu); remove old "
                       "events (retention) or raise max_map_size",
                       s->dir, n, batch_bytes, (unsigned long long)info.me_mapsize,
                       (unsigned long long)s->max_map);
            }
            goto out;
        }
    }
    if (rc) {
        memset(res, 0, sizeof(*res));
        code = s_fail(s, s_code(rc), "archive %s: cannot %s: %s", s->dir, what, mdb_strerror(rc));
    }
out:
    pthread_mutex_unlock(&s->wlock);
    return code;
}

int archive_store_sync(archive_store_t *s)
{
    if (!s)
        return WEFT_EINVAL;
    if (s->read_only) {
        pthread_mutex_lock(&s->wlock);
        int code = s_fail(s, WEFT_ESTATE, "archive %s is open read-only", s->dir);
        pthread_mutex_unlock(&s->wlock);
        return code;
    }
    int rc = mdb_env_sync(s->env, 1);
    if (rc) {
        pthread_mutex_lock(&s->wlock);
        int code = s_fail(s, WEFT_ECONFIG, "archive %s: sync failed: %s", s->dir,
                          mdb_strerror(rc));
        pthread_mutex_unlock(&s->wlock);
        return code;
    }
    return WEFT_OK;
}

/* ---- retention ----------------------------------------------------------------------------- */

static bool s_over(const archive_retention_t *r, int64_t now, uint64_t count, uint64_t bytes,
                   int64_t recv_ts)
{
    if (r->max_events && count > r->max_events)
        return true;
    if (r->max_bytes && bytes > r->max_bytes)
        return true;
    if (r->max_age_ns > 0) {
        int64_t age;
        if (__builtin_sub_overflow(now, recv_ts, &age))
            age = now > recv_ts ? INT64_MAX : INT64_MIN;
        if (age > r->max_age_ns)
            return true;
    }
    return false;
}

/* Deletes key from db if it maps to offset (it may map to a later copy: then it stays). */
static int s_del_if(MDB_txn *txn, MDB_dbi db, MDB_val *key, uint64_t offset)
{
    MDB_val v;
    int rc = mdb_get(txn, db, key, &v);
    if (rc == MDB_NOTFOUND)
        return MDB_SUCCESS;
    if (rc)
        return rc;
    if (v.mv_size != 8 || s_get_u64(v.mv_data) != offset)
        return MDB_SUCCESS;
    return mdb_del(txn, db, key, NULL);
}

/* Removes one event's index entries (not the record). */
static int s_unindex(archive_store_t *s, MDB_txn *txn, const archive_rec_t *rec)
{
    uint8_t tk[TOPIC_KEY_MAX];
    if (rec->topic_size <= WEFT_TOPIC_MAX) {
        MDB_val kt = {s_topic_key(tk, rec->topic, rec->topic_size, rec->offset), tk};
        int rc = mdb_del(txn, s->db_topic, &kt, NULL);
        if (rc && rc != MDB_NOTFOUND)
            return rc;
    }
    weft_envelope_t env;
    if (weft_envelope_decode(&env, rec->envelope, rec->envelope_size) != WEFT_OK)
        return MDB_SUCCESS; /* cannot name its id or source: those entries stay (see header) */
    if (env.seq > 0) {
        uint8_t sk[16];
        s_put_u64(sk, env.inst);
        s_put_u64(sk + 8, env.seq);
        MDB_val ks = {16, sk};
        int rc = s_del_if(txn, s->db_source, &ks, rec->offset);
        if (rc)
            return rc;
    }
    MDB_val ki = {WEFT_ID_SIZE, env.id};
    return s_del_if(txn, s->db_id, &ki, rec->offset);
}

static int s_trim_txn(archive_store_t *s, const archive_retention_t *r, int64_t now,
                      size_t limit, archive_trim_result_t *res, const char **what)
{
    MDB_txn *txn = NULL;
    MDB_cursor *c = NULL;
    int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc) {
        *what = "begin a write transaction";
        return rc;
    }
    MDB_stat st;
    rc = mdb_stat(txn, s->db_events, &st);
    if (!rc)
        rc = mdb_cursor_open(txn, s->db_events, &c);
    if (rc) {
        *what = "read events";
        goto fail;
    }
    uint64_t count = st.ms_entries, bytes = s->bytes, removed = 0, first = 0;
    bool more = false;
    MDB_val k, v;
    for (;;) {
        rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
        if (rc == MDB_NOTFOUND) {
            rc = MDB_SUCCESS;
            break;
        }
        if (rc || k.mv_size != 8) {
            rc = rc ? rc : MDB_CORRUPTED;
            *what = "read the oldest event";
            goto fail;
        }
        first = s_get_u64(k.mv_data);
        archive_rec_t rec;
        bool ok = s_rec_decode(first, &v, &rec) == WEFT_OK;
        /* A damaged record cannot be served; age retention takes it as the oldest possible. */
        if (!s_over(r, now, count, bytes, ok ? rec.recv_ts : INT64_MIN))
            break;
        if (removed == limit) {
            more = true;
            break;
        }
        size_t rsize = v.mv_size;
        if (ok && (rc = s_unindex(s, txn, &rec)) != 0) {
            *what = "remove index entries";
            goto fail;
        }
        rc = mdb_cursor_del(c, 0);
        if (rc) {
            *what = "remove an event";
            goto fail;
        }
        removed++;
        count--;
        bytes = bytes > rsize ? bytes - rsize : 0;
        first = 0;
    }
    mdb_cursor_close(c);
    c = NULL;

    if (removed == 0) {
        mdb_txn_abort(txn);
        res->removed = 0;
        res->first_offset = first;
        res->more = more;
        return MDB_SUCCESS;
    }

    /* by_time entries pointing below the new first offset. Their offsets increase with their
       keys (see the top of this file), so they are all at the start. */
    uint64_t new_first = first ? first : s->next_offset;
    rc = mdb_cursor_open(txn, s->db_time, &c);
    while (rc == MDB_SUCCESS) {
        rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
        if (rc == MDB_SUCCESS && (v.mv_size != 8 || s_get_u64(v.mv_data) >= new_first))
            break;
        if (rc == MDB_SUCCESS)
            rc = mdb_cursor_del(c, 0);
    }
    if (rc == MDB_NOTFOUND)
        rc = MDB_SUCCESS;
    if (c)
        mdb_cursor_close(c);
    c = NULL;
    if (!rc)
        rc = s_meta_put_u64(txn, s->db_meta, "bytes", bytes);
    if (rc) {
        *what = "update the time index";
        goto fail;
    }
    rc = mdb_txn_commit(txn);
    if (rc) {
        *what = "commit";
        return rc;
    }
    s->bytes = bytes;
    if (first == 0)
        s->max_ts = INT64_MIN; /* nothing left: the running maximum starts over */
    res->removed = removed;
    res->first_offset = first;
    res->more = more;
    return MDB_SUCCESS;

fail:
    if (c)
        mdb_cursor_close(c);
    mdb_txn_abort(txn);
    return rc;
}

int archive_store_trim(archive_store_t *s, const archive_retention_t *r, int64_t now_ns,
                       size_t max_per_txn, archive_trim_result_t *res)
{
    if (res)
        memset(res, 0, sizeof(*res));
    if (!s || !r || !res)
        return WEFT_EINVAL;
    pthread_mutex_lock(&s->wlock);
    int code = WEFT_OK;
    if (s->read_only) {
        code = s_fail(s, WEFT_ESTATE, "archive %s is open read-only", s->dir);
        goto out;
    }
    size_t limit = max_per_txn ? max_per_txn : 1;
    bool grew = false;
    const char *what = "trim";
    int rc;
    for (;;) {
        rc = s_trim_txn(s, r, now_ns, limit, res, &what);
        if (rc != MDB_MAP_FULL)
            break;
        /* Deleting needs fresh pages too (copy-on-write): grow once, else delete fewer. */
        uint64_t grown;
        if (!grew && s_grow(s, &grown) == WEFT_OK) {
            grew = true;
            continue;
        }
        if (limit == 1)
            break;
        limit /= 2;
    }
    if (rc == MDB_MAP_FULL)
        code = s_fail(s, WEFT_ENOMEM,
                      "archive %s is full: not even one event can be removed; raise "
                      "max_map_size",
                      s->dir);
    else if (rc)
        code = s_fail(s, s_code(rc), "archive %s: retention cannot %s: %s", s->dir, what,
                      mdb_strerror(rc));
out:
    pthread_mutex_unlock(&s->wlock);
    return code;
}

/* ---- info -------------------------------------------------------------------------------- */

int archive_store_info(archive_store_t *s, archive_info_t *info)
{
    if (!s || !info)
        return WEFT_EINVAL;
    memset(info, 0, sizeof(*info));
    MDB_txn *txn = NULL;
    int rc = s_rtxn_begin(s, &txn);
    if (rc)
        return s_code(rc);
    MDB_stat st;
    MDB_cursor *c = NULL;
    MDB_val k, v;
    rc = mdb_stat(txn, s->db_events, &st);
    if (!rc) {
        info->events = st.ms_entries;
        rc = mdb_cursor_open(txn, s->db_events, &c);
    }
    if (!rc && mdb_cursor_get(c, &k, &v, MDB_FIRST) == MDB_SUCCESS && k.mv_size == 8) {
        info->first_offset = s_get_u64(k.mv_data);
        if (mdb_cursor_get(c, &k, &v, MDB_LAST) == MDB_SUCCESS && k.mv_size == 8)
            info->last_offset = s_get_u64(k.mv_data);
    }
    if (c)
        mdb_cursor_close(c);
    if (!rc) {
        MDB_val fk = {6, "format"};
        if (mdb_get(txn, s->db_meta, &fk, &v) == MDB_SUCCESS && v.mv_size == 4)
            info->format = s_get_u32(v.mv_data);
        if (s_meta_get_u64(txn, s->db_meta, "bytes", &info->bytes) != MDB_SUCCESS)
            info->bytes = 0;
    }
    mdb_txn_abort(txn);
    s_quiesce_leave(s);
    if (rc)
        return s_code(rc);

    MDB_envinfo ei;
    mdb_env_info(s->env, &ei);
    info->map_size = ei.me_mapsize;
    info->map_full = atomic_load(&s->map_full);
    info->map_grows = atomic_load(&s->map_grows);
    char path[PATH_MAX];
    struct stat fst;
    snprintf(path, sizeof(path), "%s/data.mdb", s->dir);
    if (stat(path, &fst) == 0)
        info->bytes_on_disk = (uint64_t)fst.st_size;
    return WEFT_OK;
}

/* ---- readers ------------------------------------------------------------------------------ */

archive_reader_t *archive_reader_new(archive_store_t *s)
{
    if (!s)
        return NULL;
    archive_reader_t *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->s = s;
    atomic_fetch_add(&s->readers, 1);
    return r;
}

void archive_reader_destroy(archive_reader_t **rp)
{
    if (!rp || !*rp)
        return;
    archive_reader_t *r = *rp;
    archive_reader_end(r);
    if (r->txn)
        mdb_txn_abort(r->txn); /* releases the reader slot */
    atomic_fetch_sub(&r->s->readers, 1);
    free(r);
    *rp = NULL;
}

int archive_reader_begin(archive_reader_t *r)
{
    if (!r)
        return WEFT_EINVAL;
    archive_reader_end(r);
    int rc = s_rtxn_begin(r->s, &r->txn);
    if (rc == ENOLCK)
        return r_fail(r, WEFT_ESTATE,
                      "cannot begin a read transaction on archive %s: too many stores held "
                      "by this thread",
                      r->s->dir);
    if (rc)
        return r_fail(r, s_code(rc), "cannot begin a read transaction on archive %s: %s",
                      r->s->dir, mdb_strerror(rc));
    r->active = true;
    return WEFT_OK;
}

void archive_reader_end(archive_reader_t *r)
{
    if (!r || !r->active)
        return;
    mdb_txn_reset(r->txn);
    r->active = false;
    s_quiesce_leave(r->s);
}

const char *archive_reader_last_error(const archive_reader_t *r)
{
    return r ? r->last_error : "no archive reader";
}

#define NEED_BEGUN(r)                                                                           \
    do {                                                                                        \
        if (!(r))                                                                               \
            return WEFT_EINVAL;                                                                 \
        if (!(r)->active)                                                                       \
            return r_fail((r), WEFT_ESTATE, "archive reader used without archive_reader_begin"); \
    } while (0)

static int s_lmdb_fail(archive_reader_t *r, int rc, const char *what)
{
    return r_fail(r, s_code(rc), "archive %s: cannot %s: %s", r->s->dir, what, mdb_strerror(rc));
}

int archive_read(archive_reader_t *r, uint64_t offset, archive_rec_t *rec)
{
    NEED_BEGUN(r);
    if (!rec)
        return WEFT_EINVAL;
    uint8_t kb[8];
    s_put_u64(kb, offset);
    MDB_val k = {8, kb}, v;
    int rc = mdb_get(r->txn, r->s->db_events, &k, &v);
    if (rc == MDB_NOTFOUND)
        return r_fail(r, WEFT_ENOTFOUND, "offset %llu is not in the archive",
                      (unsigned long long)offset);
    if (rc)
        return s_lmdb_fail(r, rc, "read an event");
    if (s_rec_decode(offset, &v, rec) != WEFT_OK)
        return r_fail(r, WEFT_EMALFORMED, "the record at offset %llu is damaged",
                      (unsigned long long)offset);
    return WEFT_OK;
}

static int s_get_offset(archive_reader_t *r, MDB_dbi db, MDB_val *k, uint64_t *offset,
                        const char *what)
{
    MDB_val v;
    int rc = mdb_get(r->txn, db, k, &v);
    if (rc == MDB_NOTFOUND)
        return r_fail(r, WEFT_ENOTFOUND, "%s is not in the archive", what);
    if (rc)
        return s_lmdb_fail(r, rc, "look up an event");
    if (v.mv_size != 8)
        return r_fail(r, WEFT_EMALFORMED, "damaged index entry for %s", what);
    *offset = s_get_u64(v.mv_data);
    return WEFT_OK;
}

int archive_find_id(archive_reader_t *r, const uint8_t id[16], uint64_t *offset)
{
    NEED_BEGUN(r);
    if (!id || !offset)
        return WEFT_EINVAL;
    MDB_val k = {WEFT_ID_SIZE, (void *)id};
    return s_get_offset(r, r->s->db_id, &k, offset, "the event id");
}

int archive_find_source(archive_reader_t *r, uint64_t inst, uint64_t seq, uint64_t *offset)
{
    NEED_BEGUN(r);
    if (!offset)
        return WEFT_EINVAL;
    if (seq == 0)
        return r_fail(r, WEFT_ENOTFOUND, "seq 0 events are not indexed by source");
    uint8_t kb[16];
    s_put_u64(kb, inst);
    s_put_u64(kb + 8, seq);
    MDB_val k = {16, kb};
    return s_get_offset(r, r->s->db_source, &k, offset, "the (inst, seq)");
}

int archive_seek_time(archive_reader_t *r, int64_t ts_ns, uint64_t *offset)
{
    NEED_BEGUN(r);
    if (!offset)
        return WEFT_EINVAL;
    MDB_cursor *tc = NULL, *ec = NULL;
    int rc = mdb_cursor_open(r->txn, r->s->db_time, &tc);
    if (rc)
        return s_lmdb_fail(r, rc, "open a cursor");
    /* The last by_time entry with key < ts: no event at or before its offset is recent enough. */
    uint8_t tb[8];
    s_put_u64(tb, s_ts_key(ts_ns));
    MDB_val k = {8, tb}, v;
    uint64_t start = 0;
    rc = mdb_cursor_get(tc, &k, &v, MDB_SET_RANGE);
    if (rc == MDB_SUCCESS)
        rc = mdb_cursor_get(tc, &k, &v, MDB_PREV);
    else if (rc == MDB_NOTFOUND)
        rc = mdb_cursor_get(tc, &k, &v, MDB_LAST);
    if (rc == MDB_SUCCESS && v.mv_size == 8)
        start = s_get_u64(v.mv_data);
    mdb_cursor_close(tc);
    if (rc && rc != MDB_NOTFOUND)
        return s_lmdb_fail(r, rc, "read the time index");

    rc = mdb_cursor_open(r->txn, r->s->db_events, &ec);
    if (rc)
        return s_lmdb_fail(r, rc, "open a cursor");
    uint8_t sb[8];
    s_put_u64(sb, start);
    k.mv_size = 8;
    k.mv_data = sb;
    int code = WEFT_ENOTFOUND;
    for (rc = mdb_cursor_get(ec, &k, &v, MDB_SET_RANGE); rc == MDB_SUCCESS;
         rc = mdb_cursor_get(ec, &k, &v, MDB_NEXT)) {
        archive_rec_t rec;
        if (k.mv_size != 8 || s_rec_decode(0, &v, &rec) != WEFT_OK) {
            code = r_fail(r, WEFT_EMALFORMED, "damaged record in the archive");
            break;
        }
        if (rec.recv_ts >= ts_ns) {
            *offset = s_get_u64(k.mv_data);
            code = WEFT_OK;
            break;
        }
    }
    mdb_cursor_close(ec);
    if (rc && rc != MDB_NOTFOUND)
        return s_lmdb_fail(r, rc, "scan events");
    if (code == WEFT_ENOTFOUND)
        return r_fail(r, WEFT_ENOTFOUND, "no event received at or after that time");
    return code;
}

/* ---- scanning ------------------------------------------------------------------------------ */

/* One distinct matching topic in a prefix scan: its by_topic cursor and current offset. */
typedef struct {
    MDB_cursor *cur;
    uint64_t off;
    size_t tlen;
    char topic[WEFT_TOPIC_MAX];
} tcur_t;

typedef struct {
    archive_reader_t *r;
    uint64_t to;
    size_t max_events;
    archive_scan_fn *fn;
    void *arg;
    uint64_t visited;
    uint64_t last;     /* offset of the last visited event */
    bool stopped;      /* by max_events or fn */
} scan_t;

/* Reads one event and hands it to fn. Returns a weft code. */
static int s_visit(scan_t *sc, uint64_t off, const MDB_val *v)
{
    archive_rec_t rec;
    if (s_rec_decode(off, v, &rec) != WEFT_OK)
        return r_fail(sc->r, WEFT_EMALFORMED, "the record at offset %llu is damaged",
                      (unsigned long long)off);
    sc->visited++;
    sc->last = off;
    if (sc->fn(&rec, sc->arg) != 0 || (sc->max_events && sc->visited >= sc->max_events))
        sc->stopped = true;
    return WEFT_OK;
}

static bool s_topic_matches(const char *topic, size_t tlen, const char *const *prefixes,
                            const size_t *plens, size_t n)
{
    if (n == 0)
        return true;
    for (size_t i = 0; i < n; i++)
        if (plens[i] <= tlen && memcmp(topic, prefixes[i], plens[i]) == 0)
            return true;
    return false;
}

/* Scans events in [from, to] and filters (no prefixes: all). */
static int s_scan_events(scan_t *sc, uint64_t from, const char *const *prefixes,
                         const size_t *plens, size_t n)
{
    MDB_cursor *c = NULL;
    int rc = mdb_cursor_open(sc->r->txn, sc->r->s->db_events, &c);
    if (rc)
        return s_lmdb_fail(sc->r, rc, "open a cursor");
    uint8_t fb[8];
    s_put_u64(fb, from);
    MDB_val k = {8, fb}, v;
    int code = WEFT_OK;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == MDB_SUCCESS && !sc->stopped;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (k.mv_size != 8) {
            rc = MDB_CORRUPTED;
            break;
        }
        uint64_t off = s_get_u64(k.mv_data);
        if (off > sc->to)
            break;
        if (n > 0) {
            const uint8_t *p = v.mv_data;
            if (v.mv_size < REC_HEADER || p[8] > v.mv_size - REC_HEADER) {
                code = r_fail(sc->r, WEFT_EMALFORMED, "the record at offset %llu is damaged",
                              (unsigned long long)off);
                break;
            }
            if (!s_topic_matches((const char *)p + REC_HEADER, p[8], prefixes, plens, n))
                continue;
        }
        if ((code = s_visit(sc, off, &v)) != WEFT_OK)
            break;
    }
    mdb_cursor_close(c);
    if (code == WEFT_OK && rc && rc != MDB_NOTFOUND)
        code = s_lmdb_fail(sc->r, rc, "scan events");
    return code;
}

/* Positions a by_topic cursor at (topic, >= from); false when the topic has nothing there. */
static bool s_tcur_valid(tcur_t *t, const MDB_val *k)
{
    const uint8_t *p = k->mv_data;
    if (k->mv_size != t->tlen + 9 || p[t->tlen] != 0 || memcmp(p, t->topic, t->tlen) != 0)
        return false;
    t->off = s_get_u64(p + t->tlen + 1);
    return true;
}

static void s_heap_down(tcur_t *tc, size_t *heap, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        if (l < n && tc[heap[l]].off < tc[heap[m]].off)
            m = l;
        if (l + 1 < n && tc[heap[l + 1]].off < tc[heap[m]].off)
            m = l + 1;
        if (m == i)
            return;
        size_t t = heap[i];
        heap[i] = heap[m];
        heap[m] = t;
        i = m;
    }
}

/*  Collects the distinct topics under the prefixes from by_topic, one seek per topic. Returns
    WEFT_OK with *count set, 1 when there are more than ARCHIVE_SCAN_MAX_TOPICS, or an error. */
static int s_collect_topics(archive_reader_t *r, const char *const *prefixes, const size_t *plens,
                            size_t n, tcur_t *tc, size_t *count)
{
    MDB_cursor *c = NULL;
    int rc = mdb_cursor_open(r->txn, r->s->db_topic, &c);
    if (rc)
        return s_lmdb_fail(r, rc, "open a cursor");
    int code = WEFT_OK;
    size_t found = 0;
    uint8_t kb[WEFT_TOPIC_MAX + 1];
    for (size_t i = 0; i < n && code == WEFT_OK; i++) {
        if (plens[i] > WEFT_TOPIC_MAX)
            continue; /* longer than any topic */
        memcpy(kb, prefixes[i], plens[i]);
        MDB_val k = {plens[i], kb}, v;
        for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == MDB_SUCCESS;
             rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE)) {
            const uint8_t *p = k.mv_data;
            if (k.mv_size < 10 || p[k.mv_size - 9] != 0) {
                code = r_fail(r, WEFT_EMALFORMED, "damaged entry in the topic index");
                break;
            }
            size_t tlen = k.mv_size - 9;
            if (tlen < plens[i] || memcmp(p, prefixes[i], plens[i]) != 0)
                break;
            bool dup = false;
            for (size_t j = 0; j < found && !dup; j++)
                dup = tc[j].tlen == tlen && memcmp(tc[j].topic, p, tlen) == 0;
            if (!dup) {
                if (found == ARCHIVE_SCAN_MAX_TOPICS) {
                    code = 1;
                    break;
                }
                memcpy(tc[found].topic, p, tlen);
                tc[found].tlen = tlen;
                tc[found].cur = NULL;
                found++;
            }
            /* Jump past every entry of this topic: "topic 0x01" sorts after "topic 0x00 ...". */
            memcpy(kb, p, tlen);
            kb[tlen] = 0x01;
            k.mv_size = tlen + 1;
            k.mv_data = kb;
        }
        if (code == WEFT_OK && rc && rc != MDB_NOTFOUND)
            code = s_lmdb_fail(r, rc, "read the topic index");
    }
    mdb_cursor_close(c);
    *count = found;
    return code;
}

/* Merges the per-topic cursors by offset. */
static int s_scan_topics(scan_t *sc, uint64_t from, tcur_t *tc, size_t ntopics)
{
    archive_reader_t *r = sc->r;
    size_t heap[ARCHIVE_SCAN_MAX_TOPICS];
    size_t hn = 0;
    int code = WEFT_OK, rc = MDB_SUCCESS;
    uint8_t kb[TOPIC_KEY_MAX];

    for (size_t i = 0; i < ntopics; i++) {
        rc = mdb_cursor_open(r->txn, r->s->db_topic, &tc[i].cur);
        if (rc) {
            tc[i].cur = NULL;
            code = s_lmdb_fail(r, rc, "open a cursor");
            goto out;
        }
        MDB_val k = {s_topic_key(kb, tc[i].topic, tc[i].tlen, from), kb}, v;
        rc = mdb_cursor_get(tc[i].cur, &k, &v, MDB_SET_RANGE);
        if (rc == MDB_NOTFOUND)
            continue;
        if (rc) {
            code = s_lmdb_fail(r, rc, "read the topic index");
            goto out;
        }
        if (s_tcur_valid(&tc[i], &k) && tc[i].off <= sc->to)
            heap[hn++] = i;
    }
    for (size_t i = hn / 2; i-- > 0;)
        s_heap_down(tc, heap, hn, i);

    while (hn > 0 && !sc->stopped) {
        tcur_t *t = &tc[heap[0]];
        uint8_t ob[8];
        s_put_u64(ob, t->off);
        MDB_val k = {8, ob}, v;
        rc = mdb_get(r->txn, r->s->db_events, &k, &v);
        if (rc == MDB_SUCCESS) {
            if ((code = s_visit(sc, t->off, &v)) != WEFT_OK)
                goto out;
        } else if (rc != MDB_NOTFOUND) { /* NOTFOUND: index ahead of a damaged store; skip */
            code = s_lmdb_fail(r, rc, "read an event");
            goto out;
        }
        rc = mdb_cursor_get(t->cur, &k, &v, MDB_NEXT);
        if (rc && rc != MDB_NOTFOUND) {
            code = s_lmdb_fail(r, rc, "read the topic index");
            goto out;
        }
        if (rc == MDB_SUCCESS && s_tcur_valid(t, &k) && t->off <= sc->to)
            s_heap_down(tc, heap, hn, 0);
        else {
            heap[0] = heap[--hn];
            s_heap_down(tc, heap, hn, 0);
        }
    }
out:
    for (size_t i = 0; i < ntopics; i++)
        if (tc[i].cur)
            mdb_cursor_close(tc[i].cur);
    return code;
}

/* Last offset assigned as of the reader's snapshot (0 when none ever was). */
static uint64_t s_snapshot_last(archive_reader_t *r)
{
    uint64_t next = 0;
    if (s_meta_get_u64(r->txn, r->s->db_meta, "next_offset", &next) == MDB_SUCCESS && next > 0)
        return next - 1;
    return 0;
}

int archive_scan(archive_reader_t *r, uint64_t from, uint64_t to, const char *const *prefixes,
                 size_t nprefixes, size_t max_events, archive_scan_fn *fn, void *arg,
                 uint64_t *next_offset)
{
    NEED_BEGUN(r);
    if (!fn || to < from || (nprefixes > 0 && !prefixes))
        return r_fail(r, WEFT_EINVAL, "invalid scan arguments");
    size_t *plens = NULL;
    tcur_t *tc = NULL;
    scan_t sc = {.r = r, .to = to, .max_events = max_events, .fn = fn, .arg = arg};
    int code = WEFT_OK;

    if (nprefixes > 0) {
        plens = calloc(nprefixes, sizeof(*plens));
        if (!plens)
            return r_fail(r, WEFT_ENOMEM, "out of memory");
        for (size_t i = 0; i < nprefixes; i++) {
            if (!prefixes[i]) {
                free(plens);
                return r_fail(r, WEFT_EINVAL, "NULL prefix");
            }
            plens[i] = strlen(prefixes[i]);
            if (plens[i] == 0)
                nprefixes = 0; /* the empty prefix matches everything */
        }
    }
    if (nprefixes == 0) {
        code = s_scan_events(&sc, from, NULL, NULL, 0);
    } else {
        tc = malloc((ARCHIVE_SCAN_MAX_TOPICS) * sizeof(*tc));
        if (!tc) {
            code = r_fail(r, WEFT_ENOMEM, "out of memory");
            goto out;
        }
        size_t ntopics = 0;
        code = s_collect_topics(r, prefixes, plens, nprefixes, tc, &ntopics);
        if (code == 1) /* too many distinct topics: read everything in range and filter */
            code = s_scan_events(&sc, from, prefixes, plens, nprefixes);
        else if (code == WEFT_OK)
            code = s_scan_topics(&sc, from, tc, ntopics);
    }
    if (code == WEFT_OK && next_offset) {
        if (sc.stopped) {
            *next_offset = sc.last + 1;
        } else {
            uint64_t last = s_snapshot_last(r);
            uint64_t end = to < last ? to : last;
            *next_offset = end + 1 > from ? end + 1 : from;
        }
    }
out:
    free(tc);
    free(plens);
    return code;
}

/* ---- sources ------------------------------------------------------------------------------ */

static int s_source_key(const MDB_val *k, uint64_t *inst, uint64_t *seq)
{
    if (k->mv_size != 16)
        return WEFT_EMALFORMED;
    *inst = s_get_u64(k->mv_data);
    *seq = s_get_u64((const uint8_t *)k->mv_data + 8);
    return WEFT_OK;
}

/*  Positions c on the last by_source key of inst (or wherever it lands) and returns its seq,
    0 when inst has none. */
static int s_hwm(MDB_cursor *c, uint64_t inst, uint64_t *hwm)
{
    MDB_val k, v;
    uint8_t kb[16];
    int rc;
    if (inst == UINT64_MAX) {
        rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
    } else {
        s_put_u64(kb, inst + 1);
        s_put_u64(kb + 8, 0);
        k.mv_size = 16;
        k.mv_data = kb;
        rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
        if (rc == MDB_SUCCESS)
            rc = mdb_cursor_get(c, &k, &v, MDB_PREV);
        else if (rc == MDB_NOTFOUND)
            rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
    }
    *hwm = 0;
    if (rc == MDB_NOTFOUND)
        return MDB_SUCCESS;
    if (rc)
        return rc;
    uint64_t i, s;
    if (s_source_key(&k, &i, &s) != WEFT_OK)
        return MDB_CORRUPTED;
    if (i == inst)
        *hwm = s;
    return MDB_SUCCESS;
}

int archive_source_hwm(archive_reader_t *r, uint64_t inst, uint64_t *seq)
{
    NEED_BEGUN(r);
    if (!seq)
        return WEFT_EINVAL;
    MDB_cursor *c = NULL;
    int rc = mdb_cursor_open(r->txn, r->s->db_source, &c);
    if (!rc)
        rc = s_hwm(c, inst, seq);
    if (c)
        mdb_cursor_close(c);
    return rc ? s_lmdb_fail(r, rc, "read the source index") : WEFT_OK;
}

int archive_sources_each(archive_reader_t *r, int (*fn)(uint64_t inst, uint64_t hwm, void *arg),
                         void *arg)
{
    NEED_BEGUN(r);
    if (!fn)
        return WEFT_EINVAL;
    MDB_cursor *c = NULL;
    int rc = mdb_cursor_open(r->txn, r->s->db_source, &c);
    if (rc)
        return s_lmdb_fail(r, rc, "open a cursor");
    MDB_val k, v;
    int result = WEFT_OK;
    rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
    while (rc == MDB_SUCCESS) {
        uint64_t inst, seq, hwm;
        if (s_source_key(&k, &inst, &seq) != WEFT_OK) {
            rc = MDB_CORRUPTED;
            break;
        }
        if ((rc = s_hwm(c, inst, &hwm)) != MDB_SUCCESS)
            break;
        if ((result = fn(inst, hwm, arg)) != 0)
            break;
        if (inst == UINT64_MAX)
            break;
        /* s_hwm left c on inst's last key: the next key is the next source's first. */
        rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(c);
    if (result != 0)
        return result;
    if (rc && rc != MDB_NOTFOUND)
        return s_lmdb_fail(r, rc, "read the source index");
    return WEFT_OK;
}

/* ---- owed repairs ------------------------------------------------------------------------- */

int archive_repairs_each(archive_reader_t *r,
                         int (*fn)(uint64_t inst, uint64_t from, uint64_t to, void *arg), void *arg)
{
    NEED_BEGUN(r);
    if (!fn)
        return WEFT_EINVAL;
    if (!r->s->has_repairs)
        return WEFT_OK;
    MDB_cursor *c = NULL;
    int rc = mdb_cursor_open(r->txn, r->s->db_repairs, &c);
    if (rc)
        return s_lmdb_fail(r, rc, "open a cursor");
    MDB_val k, v;
    int result = WEFT_OK;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == MDB_SUCCESS;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (k.mv_size != 16 || v.mv_size != 8)
            continue; /* not ours: skipped, never fatal */
        if ((result = fn(s_get_u64(k.mv_data), s_get_u64((const uint8_t *)k.mv_data + 8),
                         s_get_u64(v.mv_data), arg)) != 0)
            break;
    }
    mdb_cursor_close(c);
    if (result != 0)
        return result;
    if (rc && rc != MDB_NOTFOUND)
        return s_lmdb_fail(r, rc, "read the owed repairs");
    return WEFT_OK;
}

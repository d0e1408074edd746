/*  dlq_store.c - see dlq_store.h. The DLQ's LMDB layer: one environment, six named databases,
    every write (put, update, delete) one write transaction that keeps the letter, its index
    entries and the counts in meta consistent, and a planned MDB_MAP_FULL path (abort, double
    the map up to the ceiling, run the transaction again).

    The letter record is a msgpack map with short string keys; all fifteen are written, unknown
    ones are ignored when reading (so a later format may add keys):

        "id"  bin 16   letter id (must equal the key)     "att"  uint    attempts
        "ev"  bin 16   event id                           "red"  uint    redeliveries
        "sub" str      subscriber (1..255 bytes)          "ff"   int     first_failure, ns
        "node" str     node (..255)                       "lf"   int     last_failure, ns
        "top" str      topic (weft_topic_check)           "nra"  int     next_retry_at, ns
        "code" str     code (..63)                        "st"   uint    state (0..3)
        "msg" str      message (..1023)                   "env"  bin     event envelope
                                                          "pay"  bin     event payload

    Reading a record runs mp_guard_check first, then checks every type and length against the
    limits of dlq_letter_t (strings must not contain NUL bytes). Anything else is
    WEFT_EMALFORMED: get, update and a put of its event report it, list skips the letter,
    delete removes it anyway (finding its index entries by scanning) and recounts.

    by_retry keys hold next_retry_at as u64 BE; a negative time is stored as 0 (due at once).

    Letter ids are UUIDv7 (the store time in ms, then random bits), made strictly increasing:
    the store remembers the highest id it holds or gave out (last_id, read from the end of
    letters on open) and a new id that would not sort after it is replaced by last_id plus one
    in its random bits. So a letter stored later always has a greater id, within one
    millisecond too (and across a clock step back), and dlq_store_last_id is an exact bound
    between the letters stored so far and the ones stored after.

    dlq_store_list walks by_sub when a subscriber is given, else by_topic when a topic prefix
    is given, else letters, and applies the other filters to each letter. by_sub keys of one
    subscriber are in letter id order already; under a topic prefix the distinct topics (one
    seek each) are merged by letter id, so every index yields letter id order and the cursor is
    just the last letter id. Past TOPIC_MERGE_MAX distinct topics it walks letters instead.

    Reads take `quiesce` shared around their transaction; growing the map takes it exclusive,
    since mdb_env_set_mapsize needs every transaction of the process to be finished. No read
    transaction is ever held while user code runs (dlq_store_list collects letters in batches
    and calls fn between them), so a callback may write without deadlocking the growth.
*/
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pthread_rwlockattr_setkind_np */
#endif
#include "dlq_store.h"

#include <errno.h>
#include <limits.h>
#include <lmdb.h>
#include <msgpack.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lmdb_util.h"
#include "mp_guard.h"
#include "weft/error.h"

#define MAX_DBS 8                                        /* six used, two spare */
#define ERR_CAP 320                                      /* last-error sentences */
#define MP_DEPTH 4                                       /* a record is one flat map */
#define LIST_BATCH 64                                    /* letters per list transaction */
#define TOPIC_MERGE_MAX 256                              /* distinct topics merged by list */
#define BYKEY_MAX (WEFT_ID_SIZE + DLQ_SUBSCRIBER_MAX)     /* by_key key */
#define SUBKEY_MAX (DLQ_SUBSCRIBER_MAX + 1 + WEFT_ID_SIZE) /* by_sub key */
#define TOPICKEY_MAX (WEFT_TOPIC_MAX + 1 + WEFT_ID_SIZE)   /* by_topic key */
#define RETRYKEY_SIZE (8 + WEFT_ID_SIZE)                  /* by_retry key */
#define NSTATES 4

static const uint8_t s_empty[1]; /* the value of index entries (zero bytes of it) */

struct dlq_store_t {
    MDB_env *env;
    MDB_dbi db_letters, db_key, db_retry, db_sub, db_topic, db_meta;
    char *dir;
    int lock_fd;
    uint64_t max_map;              /* growth ceiling, under wlock */
    uint64_t counts[NSTATES];      /* as of the last commit, under wlock */
    uint8_t last_id[WEFT_ID_SIZE]; /* highest letter id held or given out, under wlock */
    pthread_mutex_t wlock;         /* serialises writes and the state above */
    bool wlock_ok;
    pthread_rwlock_t quiesce;      /* shared: each read transaction; exclusive: map growth */
    bool quiesce_ok;
    pthread_mutex_t elock;         /* last_error */
    bool elock_ok;
    char last_error[ERR_CAP];
};

/* ---- small helpers --------------------------------------------------------------------------- */

static int s_fail(dlq_store_t *s, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int s_fail(dlq_store_t *s, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    pthread_mutex_lock(&s->elock);
    vsnprintf(s->last_error, sizeof(s->last_error), fmt, ap);
    pthread_mutex_unlock(&s->elock);
    va_end(ap);
    return code;
}

/* True when the string fits its array (NUL within cap bytes). */
static bool s_fits(const char *str, size_t cap)
{
    return memchr(str, 0, cap) != NULL;
}

static uint64_t s_retry_time(int64_t at)
{
    return at < 0 ? 0 : (uint64_t)at;
}

static size_t s_bykey(uint8_t *k, const uint8_t event_id[WEFT_ID_SIZE], const char *sub)
{
    size_t n = strlen(sub);
    memcpy(k, event_id, WEFT_ID_SIZE);
    memcpy(k + WEFT_ID_SIZE, sub, n);
    return WEFT_ID_SIZE + n;
}

/* name + 0x00 + id: the by_sub and by_topic keys. */
static size_t s_namekey(uint8_t *k, const char *name, const uint8_t id[WEFT_ID_SIZE])
{
    size_t n = strlen(name);
    memcpy(k, name, n);
    k[n] = 0;
    memcpy(k + n + 1, id, WEFT_ID_SIZE);
    return n + 1 + WEFT_ID_SIZE;
}

static void s_retrykey(uint8_t *k, int64_t at, const uint8_t id[WEFT_ID_SIZE])
{
    lmdb_util_put_u64(k, s_retry_time(at));
    memcpy(k + 8, id, WEFT_ID_SIZE);
}

/* ---- records --------------------------------------------------------------------------------- */

enum {
    F_ID, F_EV, F_SUB, F_NODE, F_TOP, F_CODE, F_MSG, F_ATT, F_RED, F_FF, F_LF, F_NRA, F_ST,
    F_ENV, F_PAY, F_COUNT
};

static const char *const s_keys[F_COUNT] = {"id", "ev",  "sub", "node", "top",
                                            "code", "msg", "att", "red", "ff",
                                            "lf", "nra", "st", "env", "pay"};

static int s_pack_cstr(msgpack_packer *pk, const char *str, size_t n)
{
    return msgpack_pack_str(pk, n) | msgpack_pack_str_body(pk, str, n);
}

static int s_pack_key(msgpack_packer *pk, int f)
{
    return s_pack_cstr(pk, s_keys[f], strlen(s_keys[f]));
}

static int s_pack_bin(msgpack_packer *pk, const void *p, size_t n)
{
    return msgpack_pack_bin(pk, n) | (n ? msgpack_pack_bin_body(pk, p, n) : 0);
}

/*  Encodes l with the event frames given (the struct's own pointers are not used, so a stored
    event can be carried over). sb must be initialised and empty. Returns 0 or WEFT_ENOMEM. */
static int s_encode(const dlq_letter_t *l, const uint8_t *env, size_t esize, const uint8_t *pay,
                    size_t psize, msgpack_sbuffer *sb)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    int r = msgpack_pack_map(&pk, F_COUNT);
    r |= s_pack_key(&pk, F_ID) | s_pack_bin(&pk, l->id, WEFT_ID_SIZE);
    r |= s_pack_key(&pk, F_EV) | s_pack_bin(&pk, l->event_id, WEFT_ID_SIZE);
    r |= s_pack_key(&pk, F_SUB) | s_pack_cstr(&pk, l->subscriber, strlen(l->subscriber));
    r |= s_pack_key(&pk, F_NODE) | s_pack_cstr(&pk, l->node, strlen(l->node));
    r |= s_pack_key(&pk, F_TOP) | s_pack_cstr(&pk, l->topic, strlen(l->topic));
    r |= s_pack_key(&pk, F_CODE) | s_pack_cstr(&pk, l->code, strlen(l->code));
    r |= s_pack_key(&pk, F_MSG) | s_pack_cstr(&pk, l->message, strlen(l->message));
    r |= s_pack_key(&pk, F_ATT) | msgpack_pack_uint32(&pk, l->attempts);
    r |= s_pack_key(&pk, F_RED) | msgpack_pack_uint32(&pk, l->redeliveries);
    r |= s_pack_key(&pk, F_FF) | msgpack_pack_int64(&pk, l->first_failure);
    r |= s_pack_key(&pk, F_LF) | msgpack_pack_int64(&pk, l->last_failure);
    r |= s_pack_key(&pk, F_NRA) | msgpack_pack_int64(&pk, l->next_retry_at);
    r |= s_pack_key(&pk, F_ST) | msgpack_pack_uint32(&pk, (uint32_t)l->state);
    r |= s_pack_key(&pk, F_ENV) | s_pack_bin(&pk, env, esize);
    r |= s_pack_key(&pk, F_PAY) | s_pack_bin(&pk, pay, psize);
    return r ? WEFT_ENOMEM : WEFT_OK;
}

static int s_get_str(const msgpack_object *o, char *dst, size_t cap)
{
    if (o->type != MSGPACK_OBJECT_STR || o->via.str.size >= cap ||
        (o->via.str.size && memchr(o->via.str.ptr, 0, o->via.str.size)))
        return -1;
    memcpy(dst, o->via.str.ptr, o->via.str.size);
    dst[o->via.str.size] = 0;
    return 0;
}

static int s_get_id(const msgpack_object *o, uint8_t dst[WEFT_ID_SIZE])
{
    if (o->type != MSGPACK_OBJECT_BIN || o->via.bin.size != WEFT_ID_SIZE)
        return -1;
    memcpy(dst, o->via.bin.ptr, WEFT_ID_SIZE);
    return 0;
}

static int s_get_u32(const msgpack_object *o, uint32_t *dst)
{
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 > UINT32_MAX)
        return -1;
    *dst = (uint32_t)o->via.u64;
    return 0;
}

static int s_get_i64(const msgpack_object *o, int64_t *dst)
{
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= INT64_MAX)
        *dst = (int64_t)o->via.u64;
    else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        *dst = o->via.i64;
    else
        return -1;
    return 0;
}

/*  Decodes a letter record into *l. The event pointers point into memory of v or of u: valid
    until u is destroyed or reused, and while the transaction that produced v lives. key_id,
    when not NULL, must equal the record's id. Returns 0 or WEFT_EMALFORMED with *why. */
static int s_decode(msgpack_unpacked *u, const MDB_val *v, const uint8_t *key_id,
                    dlq_letter_t *l, const char **why)
{
    const char *dummy;
    if (!why)
        why = &dummy;
    memset(l, 0, sizeof(*l));
    if (mp_guard_check(v->mv_data, v->mv_size, MP_DEPTH, why) != WEFT_OK)
        return WEFT_EMALFORMED;
    size_t off = 0;
    if (msgpack_unpack_next(u, v->mv_data, v->mv_size, &off) != MSGPACK_UNPACK_SUCCESS ||
        off != v->mv_size) {
        *why = "not one msgpack object";
        return WEFT_EMALFORMED;
    }
    const msgpack_object *o = &u->data;
    if (o->type != MSGPACK_OBJECT_MAP) {
        *why = "not a map";
        return WEFT_EMALFORMED;
    }
    unsigned seen = 0;
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object *k = &o->via.map.ptr[i].key, *val = &o->via.map.ptr[i].val;
        if (k->type != MSGPACK_OBJECT_STR) {
            *why = "a key is not a string";
            return WEFT_EMALFORMED;
        }
        int f = 0;
        while (f < F_COUNT && !(strlen(s_keys[f]) == k->via.str.size &&
                                memcmp(s_keys[f], k->via.str.ptr, k->via.str.size) == 0))
            f++;
        if (f == F_COUNT)
            continue; /* a key of a later format */
        if (seen & (1u << f)) {
            *why = "a key appears twice";
            return WEFT_EMALFORMED;
        }
        seen |= 1u << f;
        int bad = 0;
        uint32_t st = 0;
        switch (f) {
        case F_ID: bad = s_get_id(val, l->id); break;
        case F_EV: bad = s_get_id(val, l->event_id); break;
        case F_SUB: bad = s_get_str(val, l->subscriber, sizeof(l->subscriber)); break;
        case F_NODE: bad = s_get_str(val, l->node, sizeof(l->node)); break;
        case F_TOP: bad = s_get_str(val, l->topic, sizeof(l->topic)); break;
        case F_CODE: bad = s_get_str(val, l->code, sizeof(l->code)); break;
        case F_MSG: bad = s_get_str(val, l->message, sizeof(l->message)); break;
        case F_ATT: bad = s_get_u32(val, &l->attempts); break;
        case F_RED: bad = s_get_u32(val, &l->redeliveries); break;
        case F_FF: bad = s_get_i64(val, &l->first_failure); break;
        case F_LF: bad = s_get_i64(val, &l->last_failure); break;
        case F_NRA: bad = s_get_i64(val, &l->next_retry_at); break;
        case F_ST:
            bad = s_get_u32(val, &st) || st > DLQ_RESOLVED;
            l->state = (dlq_state_t)st;
            break;
        case F_ENV:
        case F_PAY:
            if (val->type != MSGPACK_OBJECT_BIN) {
                bad = 1;
            } else if (f == F_ENV) {
                l->envelope = (const uint8_t *)val->via.bin.ptr;
                l->envelope_size = val->via.bin.size;
            } else {
                l->payload = (const uint8_t *)val->via.bin.ptr;
                l->payload_size = val->via.bin.size;
            }
            break;
        }
        if (bad) {
            *why = "a field has the wrong type or length";
            return WEFT_EMALFORMED;
        }
    }
    if (seen != (1u << F_COUNT) - 1) {
        *why = "a field is missing";
        return WEFT_EMALFORMED;
    }
    if (!l->subscriber[0] || weft_topic_check(l->topic, strlen(l->topic)) != WEFT_OK) {
        *why = "empty subscriber or invalid topic";
        return WEFT_EMALFORMED;
    }
    if (key_id && memcmp(key_id, l->id, WEFT_ID_SIZE) != 0) {
        *why = "the record's id differs from its key";
        return WEFT_EMALFORMED;
    }
    return WEFT_OK;
}

/* ---- indexes and counts ---------------------------------------------------------------------- */

static int s_del(MDB_txn *txn, MDB_dbi db, const void *key, size_t ksize)
{
    MDB_val k = {ksize, (void *)key};
    int rc = mdb_del(txn, db, &k, NULL);
    return rc == MDB_NOTFOUND ? MDB_SUCCESS : rc;
}

static int s_put_empty(MDB_txn *txn, MDB_dbi db, const void *key, size_t ksize)
{
    MDB_val k = {ksize, (void *)key}, v = {0, (void *)s_empty};
    return mdb_put(txn, db, &k, &v, 0);
}

static int s_retry_index(dlq_store_t *s, MDB_txn *txn, const dlq_letter_t *l, bool add)
{
    if (l->state != DLQ_PENDING)
        return MDB_SUCCESS;
    uint8_t k[RETRYKEY_SIZE];
    s_retrykey(k, l->next_retry_at, l->id);
    return add ? s_put_empty(txn, s->db_retry, k, sizeof(k))
               : s_del(txn, s->db_retry, k, sizeof(k));
}

/* Adds or removes every index entry of l. */
static int s_index(dlq_store_t *s, MDB_txn *txn, const dlq_letter_t *l, bool add)
{
    uint8_t k[BYKEY_MAX > SUBKEY_MAX ? BYKEY_MAX : SUBKEY_MAX];
    uint8_t tk[TOPICKEY_MAX];
    size_t n = s_bykey(k, l->event_id, l->subscriber);
    MDB_val kk = {n, k}, v;
    int rc;
    if (add) {
        v.mv_size = WEFT_ID_SIZE;
        v.mv_data = (void *)l->id;
        rc = mdb_put(txn, s->db_key, &kk, &v, 0);
    } else {
        /* only when it names this letter */
        rc = mdb_get(txn, s->db_key, &kk, &v);
        if (rc == MDB_SUCCESS && v.mv_size == WEFT_ID_SIZE &&
            memcmp(v.mv_data, l->id, WEFT_ID_SIZE) == 0)
            rc = mdb_del(txn, s->db_key, &kk, NULL);
        else if (rc == MDB_SUCCESS || rc == MDB_NOTFOUND)
            rc = MDB_SUCCESS;
    }
    if (rc)
        return rc;
    n = s_namekey(k, l->subscriber, l->id);
    rc = add ? s_put_empty(txn, s->db_sub, k, n) : s_del(txn, s->db_sub, k, n);
    if (rc)
        return rc;
    n = s_namekey(tk, l->topic, l->id);
    rc = add ? s_put_empty(txn, s->db_topic, tk, n) : s_del(txn, s->db_topic, tk, n);
    if (rc)
        return rc;
    return s_retry_index(s, txn, l, add);
}

static int s_counts_put(dlq_store_t *s, MDB_txn *txn, const uint64_t c[NSTATES])
{
    uint8_t b[8 * NSTATES];
    for (int i = 0; i < NSTATES; i++)
        lmdb_util_put_u64(b + 8 * i, c[i]);
    MDB_val k = {6, "counts"}, v = {sizeof(b), b};
    return mdb_put(txn, s->db_meta, &k, &v, 0);
}

static void s_count_move(uint64_t c[NSTATES], int from, int to)
{
    if (from >= 0 && c[from] > 0)
        c[from]--;
    if (to >= 0)
        c[to]++;
}

/* Counts the readable letters by state (damaged records are not counted). */
static int s_recount(dlq_store_t *s, MDB_txn *txn, uint64_t c[NSTATES])
{
    memset(c, 0, sizeof(uint64_t) * NSTATES);
    MDB_cursor *cur = NULL;
    int rc = mdb_cursor_open(txn, s->db_letters, &cur);
    if (rc)
        return rc;
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    MDB_val k, v;
    dlq_letter_t l;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == MDB_SUCCESS;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size == WEFT_ID_SIZE && s_decode(&u, &v, k.mv_data, &l, NULL) == WEFT_OK)
            c[l.state]++;
    }
    msgpack_unpacked_destroy(&u);
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? MDB_SUCCESS : rc;
}

/* ---- opening and closing --------------------------------------------------------------------- */

static void s_free(dlq_store_t *s)
{
    if (!s)
        return;
    if (s->env)
        mdb_env_close(s->env);
    lmdb_util_unlock(s->lock_fd);
    if (s->wlock_ok)
        pthread_mutex_destroy(&s->wlock);
    if (s->quiesce_ok)
        pthread_rwlock_destroy(&s->quiesce);
    if (s->elock_ok)
        pthread_mutex_destroy(&s->elock);
    free(s->dir);
    free(s);
}

/*  Copies the highest letter id in db to id (all zero when db is empty); a key of another size
    (a damaged store) counts as far as its bytes go. Returns an LMDB code. */
static int s_last_key(MDB_txn *txn, MDB_dbi db, uint8_t id[WEFT_ID_SIZE])
{
    memset(id, 0, WEFT_ID_SIZE);
    MDB_cursor *c;
    int rc = mdb_cursor_open(txn, db, &c);
    if (rc)
        return rc;
    MDB_val k, v;
    rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
    if (rc == MDB_SUCCESS)
        memcpy(id, k.mv_data, k.mv_size < WEFT_ID_SIZE ? k.mv_size : WEFT_ID_SIZE);
    mdb_cursor_close(c);
    return rc == MDB_NOTFOUND ? MDB_SUCCESS : rc;
}

/*  Checks (or for a new store writes) meta, opens the databases and loads the counts, in the
    first transaction, which commits to keep the handles. */
static int s_init(dlq_store_t *s, char *why, size_t cap)
{
    MDB_txn *txn = NULL;
    int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc) {
        snprintf(why, cap, "cannot read dlq store %s: %s", s->dir, mdb_strerror(rc));
        return lmdb_util_code(rc);
    }
    int code = WEFT_OK;
    bool fresh = false;
    MDB_dbi main_db;
    rc = mdb_dbi_open(txn, NULL, 0, &main_db);
    if (rc == MDB_SUCCESS)
        rc = mdb_dbi_open(txn, "meta", 0, &s->db_meta);
    if (rc == MDB_NOTFOUND) {
        MDB_stat st;
        if (mdb_stat(txn, main_db, &st) == MDB_SUCCESS && st.ms_entries > 0) {
            snprintf(why, cap, "%s is an LMDB environment but not a weft dlq store", s->dir);
            code = WEFT_ECONFIG;
            goto done;
        }
        fresh = true;
        rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &s->db_meta);
    }
    if (rc) {
        snprintf(why, cap, "cannot open dlq store %s: %s", s->dir, mdb_strerror(rc));
        code = rc == MDB_INCOMPATIBLE ? WEFT_ECONFIG : lmdb_util_code(rc);
        goto done;
    }

    /* The format check comes before anything else is touched. */
    MDB_val fk = {6, "format"}, fv;
    rc = fresh ? MDB_NOTFOUND : mdb_get(txn, s->db_meta, &fk, &fv);
    if (rc == MDB_SUCCESS) {
        if (fv.mv_size != 4) {
            snprintf(why, cap, "dlq store %s has a damaged format record", s->dir);
            code = WEFT_ECONFIG;
            goto done;
        }
        uint32_t format = lmdb_util_get_u32(fv.mv_data);
        if (format != DLQ_FORMAT) {
            snprintf(why, cap, "dlq store %s has format version %u; this build reads version %d",
                     s->dir, format, DLQ_FORMAT);
            code = WEFT_EVERSION;
            goto done;
        }
    } else if (rc == MDB_NOTFOUND && !fresh) {
        snprintf(why, cap, "dlq store %s has no format version: not a weft dlq store", s->dir);
        code = WEFT_ECONFIG;
        goto done;
    } else if (rc != MDB_NOTFOUND) {
        snprintf(why, cap, "cannot read dlq store %s: %s", s->dir, mdb_strerror(rc));
        code = lmdb_util_code(rc);
        goto done;
    }

    struct {
        const char *name;
        MDB_dbi *dbi;
    } dbs[] = {{"letters", &s->db_letters}, {"by_key", &s->db_key}, {"by_retry", &s->db_retry},
               {"by_sub", &s->db_sub}, {"by_topic", &s->db_topic}};
    for (size_t i = 0; i < sizeof(dbs) / sizeof(dbs[0]); i++) {
        rc = mdb_dbi_open(txn, dbs[i].name, MDB_CREATE, dbs[i].dbi);
        if (rc) {
            snprintf(why, cap, "cannot open database %s of dlq store %s: %s", dbs[i].name,
                     s->dir, mdb_strerror(rc));
            code = lmdb_util_code(rc);
            goto done;
        }
    }

    rc = s_last_key(txn, s->db_letters, s->last_id);
    if (rc) {
        snprintf(why, cap, "cannot read the letters of dlq store %s: %s", s->dir,
                 mdb_strerror(rc));
        code = lmdb_util_code(rc);
        goto done;
    }

    if (fresh) {
        uint8_t b[4];
        lmdb_util_put_u32(b, DLQ_FORMAT);
        MDB_val v = {4, b};
        rc = mdb_put(txn, s->db_meta, &fk, &v, 0);
        if (!rc)
            rc = s_counts_put(s, txn, s->counts);
    } else {
        MDB_val ck = {6, "counts"}, cv;
        rc = mdb_get(txn, s->db_meta, &ck, &cv);
        if (rc == MDB_SUCCESS && cv.mv_size == 8 * NSTATES) {
            for (int i = 0; i < NSTATES; i++)
                s->counts[i] = lmdb_util_get_u64((const uint8_t *)cv.mv_data + 8 * i);
        } else if (rc == MDB_SUCCESS || rc == MDB_NOTFOUND) {
            /* missing or damaged: count again */
            rc = s_recount(s, txn, s->counts);
            if (!rc)
                rc = s_counts_put(s, txn, s->counts);
        }
    }
    if (rc) {
        snprintf(why, cap, "cannot initialise dlq store %s: %s", s->dir, mdb_strerror(rc));
        code = lmdb_util_code(rc);
        goto done;
    }

done:
    if (code == WEFT_OK) {
        rc = mdb_txn_commit(txn);
        if (rc) {
            snprintf(why, cap, "cannot initialise dlq store %s: %s", s->dir, mdb_strerror(rc));
            code = lmdb_util_code(rc);
        }
    } else {
        mdb_txn_abort(txn);
    }
    return code;
}

dlq_store_t *dlq_store_open(const char *dir, bool sync_always, int *err, char *why, size_t cap)
{
    char msg[ERR_CAP + PATH_MAX] = "";
    int code = WEFT_OK;
    dlq_store_t *s = NULL;

    if (!dir || !dir[0]) {
        snprintf(msg, sizeof(msg), "no dlq store directory given");
        code = WEFT_EINVAL;
        goto fail;
    }
    s = calloc(1, sizeof(*s));
    if (!s || !(s->dir = strdup(dir))) {
        snprintf(msg, sizeof(msg), "out of memory opening dlq store %s", dir);
        code = WEFT_ENOMEM;
        goto fail;
    }
    s->lock_fd = -1;
    s->max_map = DLQ_MAP_SIZE_LIMIT;
    s->wlock_ok = pthread_mutex_init(&s->wlock, NULL) == 0;
    s->elock_ok = pthread_mutex_init(&s->elock, NULL) == 0;
    /* writer-preferring, so a stream of readers in other threads cannot starve map growth
       (no thread here ever holds it shared twice) */
    pthread_rwlockattr_t ra;
    pthread_rwlockattr_init(&ra);
    pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    s->quiesce_ok = pthread_rwlock_init(&s->quiesce, &ra) == 0;
    pthread_rwlockattr_destroy(&ra);
    if (!s->wlock_ok || !s->elock_ok || !s->quiesce_ok) {
        snprintf(msg, sizeof(msg), "out of resources opening dlq store %s", dir);
        code = WEFT_ENOMEM;
        goto fail;
    }
    if (lmdb_util_mkdirs(dir) != 0) {
        snprintf(msg, sizeof(msg), "cannot create dlq store directory %s: %s", dir,
                 strerror(errno));
        code = WEFT_ECONFIG;
        goto fail;
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(msg, sizeof(msg), "dlq store %s is not a directory", dir);
        code = WEFT_ECONFIG;
        goto fail;
    }
    if ((code = lmdb_util_lock(dir, DLQ_LOCK_FILE, "dlq store", "DLQ", &s->lock_fd, msg,
                               sizeof(msg))) != WEFT_OK)
        goto fail;

    int rc = mdb_env_create(&s->env);
    if (!rc)
        rc = mdb_env_set_maxdbs(s->env, MAX_DBS);
    if (rc) {
        snprintf(msg, sizeof(msg), "cannot create LMDB environment: %s", mdb_strerror(rc));
        code = lmdb_util_code(rc);
        goto fail;
    }
    /* No map size before open: LMDB takes the one recorded in the file, so a store that grew
       keeps its size; it is raised to the default below. */
    unsigned flags = MDB_NOTLS | (sync_always ? 0 : MDB_NOSYNC);
    rc = mdb_env_open(s->env, dir, flags, 0644);
    if (rc) {
        snprintf(msg, sizeof(msg), "cannot open dlq store %s: %s", dir, mdb_strerror(rc));
        code = lmdb_util_code(rc);
        goto fail;
    }
    int dead = 0;
    mdb_reader_check(s->env, &dead);
    MDB_envinfo info;
    mdb_env_info(s->env, &info);
    if (info.me_mapsize < DLQ_MAP_SIZE_DEFAULT) {
        rc = mdb_env_set_mapsize(s->env, (size_t)DLQ_MAP_SIZE_DEFAULT);
        if (rc) {
            snprintf(msg, sizeof(msg), "cannot set the map size of dlq store %s: %s", dir,
                     mdb_strerror(rc));
            code = lmdb_util_code(rc);
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
    if (why && cap)
        snprintf(why, cap, "%s", msg);
    s_free(s);
    return NULL;
}

void dlq_store_close(dlq_store_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    dlq_store_t *s = *self_p;
    if (s->env)
        mdb_env_sync(s->env, 1);
    s_free(s);
    *self_p = NULL;
}

int dlq_store_sync(dlq_store_t *s)
{
    if (!s)
        return WEFT_EINVAL;
    int rc = mdb_env_sync(s->env, 1);
    if (rc)
        return s_fail(s, WEFT_ECONFIG, "dlq store %s: sync failed: %s", s->dir,
                      mdb_strerror(rc));
    return WEFT_OK;
}

const char *dlq_store_last_error(const dlq_store_t *s)
{
    return s ? s->last_error : "no dlq store";
}

int dlq_store_set_map_size(dlq_store_t *s, uint64_t size, uint64_t max)
{
    if (!s || size > SIZE_MAX)
        return WEFT_EINVAL;
    pthread_mutex_lock(&s->wlock);
    s->max_map = max ? max : DLQ_MAP_SIZE_LIMIT;
    int code = WEFT_OK;
    if (size) {
        pthread_rwlock_wrlock(&s->quiesce);
        int rc = mdb_env_set_mapsize(s->env, (size_t)size); /* LMDB keeps what the data needs */
        pthread_rwlock_unlock(&s->quiesce);
        if (rc)
            code = s_fail(s, lmdb_util_code(rc), "dlq store %s: cannot set the map size: %s",
                          s->dir, mdb_strerror(rc));
    }
    pthread_mutex_unlock(&s->wlock);
    return code;
}

/* ---- writing --------------------------------------------------------------------------------- */

typedef struct {
    int code;                  /* the body's verdict: WEFT_OK commits, anything else aborts */
    bool unchanged;            /* the body wrote nothing: abort instead of committing */
    uint64_t counts[NSTATES];  /* the counts after the body */
    const char *what;          /* the step an LMDB failure happened in */
} wctx_t;

typedef int (*body_fn)(dlq_store_t *s, MDB_txn *txn, wctx_t *w, void *arg);

/*  Runs body in one write transaction and commits when it returns MDB_SUCCESS with w->code
    WEFT_OK (and w->unchanged false). On MDB_MAP_FULL (from the body or the commit) the map is
    doubled and the body runs again from scratch; a full map at the ceiling is WEFT_ENOMEM. */
static int s_write(dlq_store_t *s, const char *op, body_fn body, void *arg)
{
    pthread_mutex_lock(&s->wlock);
    int code;
    for (;;) {
        wctx_t w = {.code = WEFT_OK, .what = op};
        memcpy(w.counts, s->counts, sizeof(w.counts));
        MDB_txn *txn = NULL;
        int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
        if (rc) {
            w.what = "begin a write transaction";
        } else {
            rc = body(s, txn, &w, arg);
            if (rc == MDB_SUCCESS && w.code == WEFT_OK && !w.unchanged) {
                rc = mdb_txn_commit(txn);
                if (rc)
                    w.what = "commit";
                else
                    memcpy(s->counts, w.counts, sizeof(s->counts));
            } else {
                mdb_txn_abort(txn);
            }
        }
        if (rc == MDB_MAP_FULL) {
            uint64_t grown = 0;
            int lrc = 0;
            pthread_rwlock_wrlock(&s->quiesce);
            int g = lmdb_util_grow(s->env, s->max_map, &grown, &lrc);
            pthread_rwlock_unlock(&s->quiesce);
            if (g == WEFT_OK)
                continue;
            if (g == WEFT_ENOMEM)
                code = s_fail(s, WEFT_ENOMEM,
                              "dlq store %s is full: cannot %s within the map ceiling of %llu "
                              "bytes; delete or purge letters",
                              s->dir, op, (unsigned long long)s->max_map);
            else
                code = s_fail(s, g, "dlq store %s is full and its map cannot grow: %s", s->dir,
                              mdb_strerror(lrc));
            break;
        }
        if (rc) {
            code = s_fail(s, lmdb_util_code(rc), "dlq store %s: %s: cannot %s: %s", s->dir, op,
                          w.what, mdb_strerror(rc));
            break;
        }
        code = w.code; /* the body recorded its own reason */
        break;
    }
    pthread_mutex_unlock(&s->wlock);
    return code;
}

/* Stores l's record with the given event frames (overwrite, or new id when fresh). */
static int s_store(dlq_store_t *s, MDB_txn *txn, wctx_t *w, const dlq_letter_t *l,
                   const uint8_t *env, size_t esize, const uint8_t *pay, size_t psize,
                   unsigned flags)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    int rc = MDB_SUCCESS;
    if (s_encode(l, env, esize, pay, psize, &sb) != WEFT_OK) {
        w->code = s_fail(s, WEFT_ENOMEM, "dlq store %s: out of memory encoding a letter",
                         s->dir);
    } else {
        MDB_val k = {WEFT_ID_SIZE, (void *)l->id}, v = {sb.size, sb.data};
        rc = mdb_put(txn, s->db_letters, &k, &v, flags);
        if (rc && rc != MDB_KEYEXIST)
            w->what = "store the letter";
    }
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

/*  Sets id to the next id after prev: prev plus one in the 74 random bits of a UUIDv7 (the
    version and variant bits stay), carried into the millisecond field when they overflow. */
static void s_id_after(uint8_t id[WEFT_ID_SIZE], const uint8_t prev[WEFT_ID_SIZE])
{
    /* the bits of each byte that count: ms (0-5), version + rand_a (6, 7), variant + rand_b */
    static const uint8_t counting[WEFT_ID_SIZE] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                                   0x0f, 0xff, 0x3f, 0xff, 0xff, 0xff,
                                                   0xff, 0xff, 0xff, 0xff};
    memcpy(id, prev, WEFT_ID_SIZE);
    for (int i = WEFT_ID_SIZE - 1; i >= 0; i--) {
        uint8_t m = counting[i], low = (uint8_t)(id[i] & m);
        if (low != m) {
            id[i] = (uint8_t)((id[i] & ~m) | (low + 1));
            return;
        }
        id[i] = (uint8_t)(id[i] & ~m); /* wraps: carry into the next byte up */
    }
}

/*  A new letter id, greater than every id the store holds or gave out before (under wlock). */
static void s_new_id(dlq_store_t *s, uint8_t id[WEFT_ID_SIZE])
{
    weft_id_new(id);
    if (memcmp(id, s->last_id, WEFT_ID_SIZE) <= 0)
        s_id_after(id, s->last_id);
    memcpy(s->last_id, id, WEFT_ID_SIZE);
}

typedef struct {
    const dlq_letter_t *in;
    uint8_t id[WEFT_ID_SIZE];
    bool created;
} put_arg_t;

static int s_put_body(dlq_store_t *s, MDB_txn *txn, wctx_t *w, void *arg)
{
    put_arg_t *a = arg;
    const dlq_letter_t *in = a->in;
    uint8_t kb[BYKEY_MAX];
    MDB_val k = {s_bykey(kb, in->event_id, in->subscriber), kb}, v;
    char idstr[WEFT_ID_STR];
    int rc = mdb_get(txn, s->db_key, &k, &v);
    if (rc && rc != MDB_NOTFOUND) {
        w->what = "look up the event and subscriber";
        return rc;
    }
    if (rc == MDB_SUCCESS && v.mv_size != WEFT_ID_SIZE) {
        w->code = s_fail(s, WEFT_EMALFORMED, "dlq store %s: damaged by_key entry", s->dir);
        return MDB_SUCCESS;
    }
    if (rc == MDB_SUCCESS) {
        uint8_t id[WEFT_ID_SIZE];
        memcpy(id, v.mv_data, WEFT_ID_SIZE);
        MDB_val lk = {WEFT_ID_SIZE, id}, lv;
        rc = mdb_get(txn, s->db_letters, &lk, &lv);
        if (rc && rc != MDB_NOTFOUND) {
            w->what = "read the letter";
            return rc;
        }
        if (rc == MDB_SUCCESS) {
            memcpy(a->id, id, WEFT_ID_SIZE);
            a->created = false;
            msgpack_unpacked u;
            msgpack_unpacked_init(&u);
            dlq_letter_t old;
            const char *why = NULL;
            if (s_decode(&u, &lv, id, &old, &why) != WEFT_OK) {
                msgpack_unpacked_destroy(&u);
                w->code = s_fail(s, WEFT_EMALFORMED, "dlq store %s: letter %s is damaged: %s",
                                 s->dir, weft_id_format(id, idstr), why);
                return MDB_SUCCESS;
            }
            if (old.state != DLQ_RESOLVED) {
                msgpack_unpacked_destroy(&u);
                w->unchanged = true;
                return MDB_SUCCESS; /* open: left as is */
            }
            dlq_letter_t l = old;
            l.state = DLQ_PENDING;
            l.attempts = in->attempts;
            l.redeliveries = 0;
            memcpy(l.code, in->code, sizeof(l.code));
            memcpy(l.message, in->message, sizeof(l.message));
            l.last_failure = in->last_failure;
            l.next_retry_at = in->next_retry_at;
            rc = s_store(s, txn, w, &l, old.envelope, old.envelope_size, old.payload,
                         old.payload_size, 0);
            msgpack_unpacked_destroy(&u);
            if (rc || w->code)
                return rc;
            rc = s_retry_index(s, txn, &l, true);
            if (rc) {
                w->what = "index by retry time";
                return rc;
            }
            s_count_move(w->counts, DLQ_RESOLVED, DLQ_PENDING);
            return s_counts_put(s, txn, w->counts);
        }
        /* by_key names a letter that is gone: replace the entry with a new letter */
    }

    dlq_letter_t *l = malloc(sizeof(*l));
    if (!l) {
        w->code = s_fail(s, WEFT_ENOMEM, "dlq store %s: out of memory", s->dir);
        return MDB_SUCCESS;
    }
    *l = *in;
    l->state = DLQ_PENDING;
    /* A new id is greater than every key stored (s_new_id), so it cannot exist already;
       NOOVERWRITE still turns a damaged store's surprise into an error, not an overwrite. */
    s_new_id(s, l->id);
    rc = s_store(s, txn, w, l, in->envelope, in->envelope_size, in->payload, in->payload_size,
                 MDB_NOOVERWRITE);
    if (!rc && !w->code) {
        rc = s_index(s, txn, l, true);
        if (rc)
            w->what = "index the letter";
    }
    if (!rc && !w->code) {
        memcpy(a->id, l->id, WEFT_ID_SIZE);
        a->created = true;
        s_count_move(w->counts, -1, DLQ_PENDING);
        rc = s_counts_put(s, txn, w->counts);
    }
    free(l);
    return rc;
}

/* Checks the strings of a letter given by the caller. */
static bool s_strings_fit(const dlq_letter_t *l)
{
    return s_fits(l->subscriber, sizeof(l->subscriber)) && s_fits(l->node, sizeof(l->node)) &&
           s_fits(l->topic, sizeof(l->topic)) && s_fits(l->code, sizeof(l->code)) &&
           s_fits(l->message, sizeof(l->message));
}

int dlq_store_put(dlq_store_t *s, const dlq_letter_t *letter, uint8_t id_out[WEFT_ID_SIZE],
                  bool *created)
{
    if (created)
        *created = false;
    if (!s || !letter)
        return WEFT_EINVAL;
    if (!s_strings_fit(letter) || !letter->subscriber[0] ||
        (letter->envelope_size && !letter->envelope) ||
        (letter->payload_size && !letter->payload))
        return s_fail(s, WEFT_EINVAL,
                      "dlq store %s: a letter needs a subscriber, terminated strings and "
                      "frames for its sizes",
                      s->dir);
    if (weft_topic_check(letter->topic, strlen(letter->topic)) != WEFT_OK)
        return s_fail(s, WEFT_ETOPIC, "dlq store %s: letter with an invalid topic \"%s\"",
                      s->dir, letter->topic);
    if (letter->envelope_size > UINT32_MAX || letter->payload_size > UINT32_MAX)
        return s_fail(s, WEFT_ETOOBIG, "dlq store %s: the letter's event is too big to store",
                      s->dir);
    put_arg_t a = {.in = letter};
    int code = s_write(s, "store a letter", s_put_body, &a);
    if (code == WEFT_OK) {
        if (id_out)
            memcpy(id_out, a.id, WEFT_ID_SIZE);
        if (created)
            *created = a.created;
    }
    return code;
}

/* Reads and decodes the letter id in a write transaction; *found false when absent. */
static int s_load(dlq_store_t *s, MDB_txn *txn, wctx_t *w, const uint8_t id[WEFT_ID_SIZE],
                  msgpack_unpacked *u, dlq_letter_t *l, bool *damaged)
{
    char idstr[WEFT_ID_STR];
    MDB_val k = {WEFT_ID_SIZE, (void *)id}, v;
    *damaged = false;
    int rc = mdb_get(txn, s->db_letters, &k, &v);
    if (rc == MDB_NOTFOUND) {
        w->code = s_fail(s, WEFT_ENOTFOUND, "dlq store %s: no letter %s", s->dir,
                         weft_id_format(id, idstr));
        return MDB_SUCCESS;
    }
    if (rc) {
        w->what = "read the letter";
        return rc;
    }
    const char *why = NULL;
    if (s_decode(u, &v, id, l, &why) != WEFT_OK) {
        *damaged = true;
        w->code = s_fail(s, WEFT_EMALFORMED, "dlq store %s: letter %s is damaged: %s", s->dir,
                         weft_id_format(id, idstr), why);
    }
    return MDB_SUCCESS;
}

static int s_update_body(dlq_store_t *s, MDB_txn *txn, wctx_t *w, void *arg)
{
    const dlq_letter_t *in = arg;
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    dlq_letter_t *old = malloc(2 * sizeof(*old));
    if (!old) {
        msgpack_unpacked_destroy(&u);
        w->code = s_fail(s, WEFT_ENOMEM, "dlq store %s: out of memory", s->dir);
        return MDB_SUCCESS;
    }
    dlq_letter_t *l = old + 1;
    bool damaged;
    int rc = s_load(s, txn, w, in->id, &u, old, &damaged);
    if (rc || w->code)
        goto out;
    *l = *old;
    l->state = in->state;
    l->attempts = in->attempts;
    l->redeliveries = in->redeliveries;
    memcpy(l->code, in->code, sizeof(l->code));
    memcpy(l->message, in->message, sizeof(l->message));
    l->last_failure = in->last_failure;
    l->next_retry_at = in->next_retry_at;
    /* encode first: old's event points into pages the index updates may reuse */
    rc = s_store(s, txn, w, l, old->envelope, old->envelope_size, old->payload,
                 old->payload_size, 0);
    if (rc || w->code)
        goto out;
    rc = s_retry_index(s, txn, old, false);
    if (!rc)
        rc = s_retry_index(s, txn, l, true);
    if (rc) {
        w->what = "index by retry time";
        goto out;
    }
    s_count_move(w->counts, (int)old->state, (int)l->state);
    rc = s_counts_put(s, txn, w->counts);
out:
    msgpack_unpacked_destroy(&u);
    free(old);
    return rc;
}

int dlq_store_update(dlq_store_t *s, const dlq_letter_t *letter)
{
    if (!s || !letter)
        return WEFT_EINVAL;
    if ((unsigned)letter->state > DLQ_RESOLVED || !s_fits(letter->code, sizeof(letter->code)) ||
        !s_fits(letter->message, sizeof(letter->message)))
        return s_fail(s, WEFT_EINVAL, "dlq store %s: invalid state or unterminated string",
                      s->dir);
    return s_write(s, "update a letter", s_update_body, (void *)letter);
}

/* Deletes every entry of db whose key ends with id (and, for by_key, whose value is id). */
static int s_purge_refs(MDB_txn *txn, MDB_dbi db, const uint8_t id[WEFT_ID_SIZE], bool by_value)
{
    MDB_cursor *c = NULL;
    int rc = mdb_cursor_open(txn, db, &c);
    if (rc)
        return rc;
    MDB_val k, v;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == MDB_SUCCESS;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        const MDB_val *x = by_value ? &v : &k;
        if (x->mv_size >= WEFT_ID_SIZE &&
            memcmp((const uint8_t *)x->mv_data + x->mv_size - WEFT_ID_SIZE, id,
                   WEFT_ID_SIZE) == 0 &&
            (!by_value || v.mv_size == WEFT_ID_SIZE) && (rc = mdb_cursor_del(c, 0)) != 0)
            break;
    }
    mdb_cursor_close(c);
    return rc == MDB_NOTFOUND ? MDB_SUCCESS : rc;
}

static int s_delete_body(dlq_store_t *s, MDB_txn *txn, wctx_t *w, void *arg)
{
    const uint8_t *id = arg;
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    dlq_letter_t *l = malloc(sizeof(*l));
    if (!l) {
        msgpack_unpacked_destroy(&u);
        w->code = s_fail(s, WEFT_ENOMEM, "dlq store %s: out of memory", s->dir);
        return MDB_SUCCESS;
    }
    bool damaged;
    int rc = s_load(s, txn, w, id, &u, l, &damaged);
    if (rc || (w->code && !damaged))
        goto out;
    if (damaged) {
        /* Its index keys cannot be computed: find them by scanning, then recount. */
        w->code = WEFT_OK;
        rc = s_purge_refs(txn, s->db_key, id, true);
        if (!rc)
            rc = s_purge_refs(txn, s->db_retry, id, false);
        if (!rc)
            rc = s_purge_refs(txn, s->db_sub, id, false);
        if (!rc)
            rc = s_purge_refs(txn, s->db_topic, id, false);
    } else {
        rc = s_index(s, txn, l, false);
    }
    if (rc) {
        w->what = "remove the index entries";
        goto out;
    }
    MDB_val k = {WEFT_ID_SIZE, (void *)id};
    rc = mdb_del(txn, s->db_letters, &k, NULL);
    if (rc) {
        w->what = "remove the letter";
        goto out;
    }
    if (damaged)
        rc = s_recount(s, txn, w->counts);
    else
        s_count_move(w->counts, (int)l->state, -1);
    if (!rc)
        rc = s_counts_put(s, txn, w->counts);
    if (rc)
        w->what = "update the counts";
out:
    msgpack_unpacked_destroy(&u);
    free(l);
    return rc;
}

int dlq_store_delete(dlq_store_t *s, const uint8_t id[WEFT_ID_SIZE])
{
    if (!s || !id)
        return WEFT_EINVAL;
    return s_write(s, "delete a letter", s_delete_body, (void *)id);
}

/* ---- reading --------------------------------------------------------------------------------- */

static int s_rbegin(dlq_store_t *s, MDB_txn **txn)
{
    pthread_rwlock_rdlock(&s->quiesce);
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, txn);
    if (rc)
        pthread_rwlock_unlock(&s->quiesce);
    return rc;
}

static void s_rend(dlq_store_t *s, MDB_txn *txn)
{
    mdb_txn_abort(txn);
    pthread_rwlock_unlock(&s->quiesce);
}

int dlq_store_get(dlq_store_t *s, const uint8_t id[WEFT_ID_SIZE], dlq_letter_t *out,
                  uint8_t **buf)
{
    if (buf)
        *buf = NULL;
    if (!s || !id || !out || !buf)
        return WEFT_EINVAL;
    char idstr[WEFT_ID_STR];
    MDB_txn *txn;
    int rc = s_rbegin(s, &txn);
    if (rc)
        return s_fail(s, lmdb_util_code(rc), "dlq store %s: cannot begin a read: %s", s->dir,
                      mdb_strerror(rc));
    MDB_val k = {WEFT_ID_SIZE, (void *)id}, v;
    int code = WEFT_OK;
    rc = mdb_get(txn, s->db_letters, &k, &v);
    if (rc == MDB_NOTFOUND) {
        code = s_fail(s, WEFT_ENOTFOUND, "dlq store %s: no letter %s", s->dir,
                      weft_id_format(id, idstr));
    } else if (rc) {
        code = s_fail(s, lmdb_util_code(rc), "dlq store %s: cannot read letter %s: %s", s->dir,
                      weft_id_format(id, idstr), mdb_strerror(rc));
    } else {
        msgpack_unpacked u;
        msgpack_unpacked_init(&u);
        const char *why = NULL;
        if (s_decode(&u, &v, id, out, &why) != WEFT_OK) {
            code = s_fail(s, WEFT_EMALFORMED, "dlq store %s: letter %s is damaged: %s", s->dir,
                          weft_id_format(id, idstr), why);
        } else {
            uint8_t *b = malloc(out->envelope_size + out->payload_size + 1);
            if (!b) {
                code = s_fail(s, WEFT_ENOMEM, "dlq store %s: out of memory", s->dir);
            } else {
                if (out->envelope_size)
                    memcpy(b, out->envelope, out->envelope_size);
                if (out->payload_size)
                    memcpy(b + out->envelope_size, out->payload, out->payload_size);
                out->envelope = b;
                out->payload = b + out->envelope_size;
                *buf = b;
            }
        }
        msgpack_unpacked_destroy(&u);
        if (code != WEFT_OK)
            memset(out, 0, sizeof(*out));
    }
    s_rend(s, txn);
    return code;
}

/* -- listing: the index to walk, as a source of letter ids in id order ------------------------- */

enum { SRC_LETTERS, SRC_SUB, SRC_TOPIC };

typedef struct {
    uint8_t key[TOPICKEY_MAX]; /* topic + 0x00 + the id it is positioned at */
    size_t tlen;
    bool active;
} topic_pos_t;

typedef struct {
    int kind;
    MDB_txn *txn;
    MDB_cursor *c;
    dlq_store_t *s;
    bool started;
    const uint8_t *after;        /* exclusive lower bound, or NULL */
    uint8_t prefix[SUBKEY_MAX];  /* SRC_SUB: subscriber + 0x00 */
    size_t plen;
    const char *topic_prefix;    /* SRC_TOPIC */
    topic_pos_t *topics;
    size_t ntopics;
} src_t;

/* Positions t on its first entry with an id above after (NULL: its first entry). */
static int s_topic_seek(MDB_cursor *c, topic_pos_t *t, const uint8_t *after)
{
    size_t n = t->tlen + 1;
    uint8_t key[TOPICKEY_MAX];
    memcpy(key, t->key, t->tlen);
    key[t->tlen] = 0;
    if (after)
        memcpy(key + n, after, WEFT_ID_SIZE);
    MDB_val k = {after ? n + WEFT_ID_SIZE : n, key}, v;
    int rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    t->active = false;
    for (; rc == MDB_SUCCESS; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        const uint8_t *kp = k.mv_data;
        if (k.mv_size < n || memcmp(kp, key, n) != 0)
            break;
        if (k.mv_size == n + WEFT_ID_SIZE &&
            (!after || memcmp(kp + n, after, WEFT_ID_SIZE) > 0)) {
            memcpy(t->key + n, kp + n, WEFT_ID_SIZE);
            t->active = true;
            return MDB_SUCCESS;
        }
    }
    return rc == MDB_NOTFOUND ? MDB_SUCCESS : rc;
}

/*  Finds the distinct topics under the prefix (one seek each) and positions each after
    it->after. More than TOPIC_MERGE_MAX topics: falls back to walking letters. */
static int s_topic_start(src_t *it)
{
    size_t plen = strlen(it->topic_prefix);
    it->topics = calloc(TOPIC_MERGE_MAX, sizeof(*it->topics));
    if (!it->topics)
        return ENOMEM;
    uint8_t key[TOPICKEY_MAX];
    memcpy(key, it->topic_prefix, plen);
    MDB_val k = {plen, key}, v;
    int rc = mdb_cursor_get(it->c, &k, &v, MDB_SET_RANGE);
    while (rc == MDB_SUCCESS) {
        const uint8_t *kp = k.mv_data;
        if (k.mv_size < plen || memcmp(kp, it->topic_prefix, plen) != 0)
            break;
        const uint8_t *sep = memchr(kp, 0, k.mv_size);
        size_t tlen = sep ? (size_t)(sep - kp) : 0;
        if (!sep || tlen == 0 || tlen > WEFT_TOPIC_MAX) {
            rc = mdb_cursor_get(it->c, &k, &v, MDB_NEXT); /* damaged key */
            continue;
        }
        if (it->ntopics == TOPIC_MERGE_MAX) {
            free(it->topics);
            it->topics = NULL;
            it->ntopics = 0;
            it->kind = SRC_LETTERS;
            it->started = false;
            mdb_cursor_close(it->c);
            it->c = NULL;
            return mdb_cursor_open(it->txn, it->s->db_letters, &it->c);
        }
        topic_pos_t *t = &it->topics[it->ntopics++];
        memcpy(t->key, kp, tlen);
        t->tlen = tlen;
        /* the next topic: the first key after "topic 0x01" */
        memcpy(key, kp, tlen);
        key[tlen] = 1;
        k.mv_size = tlen + 1;
        k.mv_data = key;
        rc = mdb_cursor_get(it->c, &k, &v, MDB_SET_RANGE);
    }
    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND)
        return rc;
    for (size_t i = 0; i < it->ntopics; i++)
        if ((rc = s_topic_seek(it->c, &it->topics[i], it->after)) != MDB_SUCCESS)
            return rc;
    return MDB_SUCCESS;
}

/* The next id of the topic merge (smallest among the topics), advancing its topic. */
static int s_topic_next(src_t *it, uint8_t id[WEFT_ID_SIZE])
{
    topic_pos_t *best = NULL;
    for (size_t i = 0; i < it->ntopics; i++) {
        topic_pos_t *t = &it->topics[i];
        if (t->active && (!best || memcmp(t->key + t->tlen + 1, best->key + best->tlen + 1,
                                          WEFT_ID_SIZE) < 0))
            best = t;
    }
    if (!best)
        return MDB_NOTFOUND;
    memcpy(id, best->key + best->tlen + 1, WEFT_ID_SIZE);
    return s_topic_seek(it->c, best, id);
}

/*  The next letter after the previous one (or after it->after): its id and record. Skips
    damaged index keys and index entries whose letter is gone. MDB_NOTFOUND at the end. */
static int s_src_next(src_t *it, uint8_t id[WEFT_ID_SIZE], MDB_val *rec)
{
    for (;;) {
        MDB_val k, v;
        uint8_t cand[WEFT_ID_SIZE];
        int rc;
        if (it->kind == SRC_TOPIC && !it->started) {
            it->started = true;
            if ((rc = s_topic_start(it)) != MDB_SUCCESS)
                return rc;
            continue; /* may have turned into SRC_LETTERS */
        }
        if (it->kind == SRC_LETTERS) {
            if (!it->started) {
                it->started = true;
                if (it->after) {
                    k.mv_size = WEFT_ID_SIZE;
                    k.mv_data = (void *)it->after;
                    rc = mdb_cursor_get(it->c, &k, &v, MDB_SET_RANGE);
                } else {
                    rc = mdb_cursor_get(it->c, &k, &v, MDB_FIRST);
                }
            } else {
                rc = mdb_cursor_get(it->c, &k, &v, MDB_NEXT);
            }
            if (rc)
                return rc;
            if (k.mv_size != WEFT_ID_SIZE ||
                (it->after && memcmp(k.mv_data, it->after, WEFT_ID_SIZE) <= 0))
                continue;
            memcpy(id, k.mv_data, WEFT_ID_SIZE);
            *rec = v;
            return MDB_SUCCESS;
        }
        if (it->kind == SRC_SUB) {
            if (!it->started) {
                it->started = true;
                uint8_t key[SUBKEY_MAX];
                memcpy(key, it->prefix, it->plen);
                if (it->after)
                    memcpy(key + it->plen, it->after, WEFT_ID_SIZE);
                k.mv_size = it->plen + (it->after ? WEFT_ID_SIZE : 0);
                k.mv_data = key;
                rc = mdb_cursor_get(it->c, &k, &v, MDB_SET_RANGE);
            } else {
                rc = mdb_cursor_get(it->c, &k, &v, MDB_NEXT);
            }
            if (rc)
                return rc;
            if (k.mv_size < it->plen || memcmp(k.mv_data, it->prefix, it->plen) != 0)
                return MDB_NOTFOUND;
            if (k.mv_size != it->plen + WEFT_ID_SIZE)
                continue;
            memcpy(cand, (const uint8_t *)k.mv_data + it->plen, WEFT_ID_SIZE);
            if (it->after && memcmp(cand, it->after, WEFT_ID_SIZE) <= 0)
                continue;
        } else {
            if ((rc = s_topic_next(it, cand)) != MDB_SUCCESS)
                return rc;
        }
        MDB_val lk = {WEFT_ID_SIZE, cand};
        rc = mdb_get(it->txn, it->s->db_letters, &lk, rec);
        if (rc == MDB_NOTFOUND)
            continue;
        if (rc)
            return rc;
        memcpy(id, cand, WEFT_ID_SIZE);
        return MDB_SUCCESS;
    }
}

static bool s_given(const char *text)
{
    return text && text[0];
}

static bool s_match(const dlq_filter_t *f, const dlq_letter_t *l, int64_t now)
{
    if (!f)
        return true;
    if (s_given(f->subscriber) && strcmp(l->subscriber, f->subscriber) != 0)
        return false;
    if (s_given(f->topic_prefix) &&
        strncmp(l->topic, f->topic_prefix, strlen(f->topic_prefix)) != 0)
        return false;
    if (f->state >= 0 && (int)l->state != f->state)
        return false;
    if (s_given(f->code) && strcmp(l->code, f->code) != 0)
        return false;
    if (f->older_than_ns > 0) {
        int64_t cutoff;
        if (__builtin_sub_overflow(now, f->older_than_ns, &cutoff))
            cutoff = INT64_MIN;
        if (!(l->first_failure < cutoff))
            return false;
    }
    return true;
}

/*  One batch of a listing in one read transaction: up to want matching letters after `after`
    into out. *exhausted is false when the index holds more entries after the last one taken. */
static int s_list_batch(dlq_store_t *s, const dlq_filter_t *f, int64_t now, const uint8_t *after,
                        size_t want, dlq_letter_t *out, size_t *got, bool *exhausted)
{
    *got = 0;
    *exhausted = true;
    src_t it = {.kind = SRC_LETTERS, .s = s, .after = after};
    MDB_dbi db = s->db_letters;
    if (f && s_given(f->subscriber)) {
        size_t n = strlen(f->subscriber);
        if (n > DLQ_SUBSCRIBER_MAX)
            return MDB_SUCCESS; /* no such subscriber */
        it.kind = SRC_SUB;
        memcpy(it.prefix, f->subscriber, n);
        it.prefix[n] = 0;
        it.plen = n + 1;
        db = s->db_sub;
    } else if (f && s_given(f->topic_prefix)) {
        if (strlen(f->topic_prefix) > WEFT_TOPIC_MAX)
            return MDB_SUCCESS;
        it.kind = SRC_TOPIC;
        it.topic_prefix = f->topic_prefix;
        db = s->db_topic;
    }
    int rc = s_rbegin(s, &it.txn);
    if (rc)
        return rc;
    rc = mdb_cursor_open(it.txn, db, &it.c);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    while (rc == MDB_SUCCESS) {
        uint8_t id[WEFT_ID_SIZE];
        MDB_val rec;
        rc = s_src_next(&it, id, &rec);
        if (rc)
            break;
        if (*got == want) {
            *exhausted = false;
            break;
        }
        dlq_letter_t *l = &out[*got];
        if (s_decode(&u, &rec, id, l, NULL) != WEFT_OK)
            continue; /* damaged: skipped */
        l->envelope = NULL;
        l->envelope_size = 0;
        l->payload = NULL;
        l->payload_size = 0;
        if (s_match(f, l, now))
            (*got)++;
    }
    if (rc == MDB_NOTFOUND)
        rc = MDB_SUCCESS;
    msgpack_unpacked_destroy(&u);
    if (it.c)
        mdb_cursor_close(it.c);
    free(it.topics);
    s_rend(s, it.txn);
    return rc;
}

size_t dlq_store_list(dlq_store_t *s, const dlq_filter_t *f, int64_t now_ns,
                      const uint8_t *cursor, size_t limit,
                      int (*fn)(const dlq_letter_t *l, void *arg), void *arg,
                      uint8_t next_cursor[WEFT_ID_SIZE], bool *more)
{
    uint8_t pos[WEFT_ID_SIZE] = {0};
    bool have_pos = cursor != NULL;
    if (cursor)
        memcpy(pos, cursor, WEFT_ID_SIZE);
    size_t visited = 0;
    bool more_ = false;
    dlq_letter_t *batch = s ? malloc(LIST_BATCH * sizeof(*batch)) : NULL;
    if (s && !batch)
        s_fail(s, WEFT_ENOMEM, "dlq store %s: out of memory listing letters", s->dir);
    while (batch) {
        size_t want = LIST_BATCH;
        if (limit && limit - visited < want)
            want = limit - visited;
        size_t got = 0;
        bool exhausted = true;
        int rc = s_list_batch(s, f, now_ns, have_pos ? pos : NULL, want, batch, &got,
                              &exhausted);
        if (rc) {
            s_fail(s, lmdb_util_code(rc), "dlq store %s: cannot list letters: %s", s->dir,
                   mdb_strerror(rc));
            break;
        }
        bool stop = false;
        for (size_t i = 0; i < got && !stop; i++) {
            visited++;
            memcpy(pos, batch[i].id, WEFT_ID_SIZE);
            have_pos = true;
            if (fn && fn(&batch[i], arg) != 0) {
                stop = true;
                more_ = i + 1 < got || !exhausted;
            }
        }
        if (stop)
            break;
        if (exhausted)
            break;
        if (limit && visited == limit) {
            more_ = true;
            break;
        }
    }
    free(batch);
    if (next_cursor)
        memcpy(next_cursor, pos, WEFT_ID_SIZE);
    if (more)
        *more = more_;
    return visited;
}

size_t dlq_store_due(dlq_store_t *s, int64_t now_ns, uint8_t (*ids)[WEFT_ID_SIZE], size_t max)
{
    if (!s || !ids || max == 0 || now_ns < 0)
        return 0;
    MDB_txn *txn;
    int rc = s_rbegin(s, &txn);
    if (rc) {
        s_fail(s, lmdb_util_code(rc), "dlq store %s: cannot begin a read: %s", s->dir,
               mdb_strerror(rc));
        return 0;
    }
    MDB_cursor *c = NULL;
    size_t n = 0;
    rc = mdb_cursor_open(txn, s->db_retry, &c);
    MDB_val k, v;
    for (rc = rc ? rc : mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == MDB_SUCCESS && n < max;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (k.mv_size != RETRYKEY_SIZE)
            continue;
        if (lmdb_util_get_u64(k.mv_data) > (uint64_t)now_ns)
            break;
        memcpy(ids[n++], (const uint8_t *)k.mv_data + 8, WEFT_ID_SIZE);
    }
    if (c)
        mdb_cursor_close(c);
    s_rend(s, txn);
    return n;
}

int64_t dlq_store_next_due(dlq_store_t *s)
{
    if (!s)
        return 0;
    MDB_txn *txn;
    if (s_rbegin(s, &txn) != MDB_SUCCESS)
        return 0;
    MDB_cursor *c = NULL;
    MDB_val k, v;
    int64_t at = 0;
    int rc = mdb_cursor_open(txn, s->db_retry, &c);
    for (rc = rc ? rc : mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == MDB_SUCCESS;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (k.mv_size == RETRYKEY_SIZE) {
            uint64_t t = lmdb_util_get_u64(k.mv_data);
            at = t == 0 ? 1 : (int64_t)t; /* 0 means "none": a letter due at 0 reports 1 */
            break;
        }
    }
    if (c)
        mdb_cursor_close(c);
    s_rend(s, txn);
    return at;
}

void dlq_store_last_id(dlq_store_t *s, uint8_t id[WEFT_ID_SIZE])
{
    memset(id, 0, WEFT_ID_SIZE);
    if (!s)
        return;
    pthread_mutex_lock(&s->wlock);
    memcpy(id, s->last_id, WEFT_ID_SIZE);
    pthread_mutex_unlock(&s->wlock);
}

void dlq_store_counts(dlq_store_t *s, dlq_counts_t *c)
{
    if (!c)
        return;
    memset(c, 0, sizeof(*c));
    if (!s)
        return;
    pthread_mutex_lock(&s->wlock);
    c->pending = s->counts[DLQ_PENDING];
    c->retrying = s->counts[DLQ_RETRYING];
    c->parked = s->counts[DLQ_PARKED];
    c->resolved = s->counts[DLQ_RESOLVED];
    pthread_mutex_unlock(&s->wlock);
}

static const char *const s_state_names[NSTATES] = {"pending", "retrying", "parked", "resolved"};

const char *dlq_store_state_name(dlq_state_t st)
{
    return (unsigned)st < NSTATES ? s_state_names[st] : "unknown";
}

int dlq_store_state_parse(const char *text)
{
    for (int i = 0; text && i < NSTATES; i++)
        if (strcmp(text, s_state_names[i]) == 0)
            return i;
    return -1;
}

/*  node_durable.c - durable named consumers: a subscription with a consumer name keeps, in a
    local LMDB state directory, what it has handled from each source: a mark below which every
    seq is settled, plus the ranges handled above it (events do not always come in seq order:
    an archiver stores the events it repaired after later ones, and a catch-up replays them in
    archive order). After a restart it catches up from the archive from a little before the
    oldest publish time recorded, then goes live; every event already handled is skipped, so
    across restarts the handler sees each event once (effectively once).

    What is guaranteed, exactly:
      - every event the archive holds, or a live publisher's outbox still holds, is handled at
        least once (catch-up, then at-least-once live delivery with gap repair);
      - after a clean stop (weft_node_destroy) nothing is handled twice;
      - after a crash, the events handled since the last checkpoint flush (every node tick,
        at most 250 ms) may be handled again: handlers of durable consumers should be
        idempotent across that window;
      - an event whose handler still waits for a local retry when the process dies is not
        redelivered if a later event of the same source was handled: dead-lettered events are
        kept by the DLQ, but local retries in flight are not persisted.

    Layout: one LMDB environment per state directory (node/state_dir), named database
    "consumers": key = consumer name, value = "WDC2" then one record per source (at most 16384):
        [inst u64 BE][mark u64 BE][ts i64 BE][n u32 BE][n x (from u64 BE, to u64 BE)]
    mark: every seq <= mark is settled; the n ranges (at most RANGES_MAX, ascending, above
    mark + 1) were handled too; ts: publish time of the newest event handled. A source with
    more than RANGES_MAX separate ranges gives up its lowest gap (the mark moves past it): a
    source whose topics the consumer mostly does not subscribe to has such permanent gaps.
    Values of 24-byte records without "WDC2" (mark and ts only) are read too.
    A lock file keeps two processes from using one state directory at once.
*/
#include <inttypes.h>
#include <lmdb.h>

#include "lmdb_util.h"
#include "node_actor.h"

#define DURABLE_SOURCES_MAX 16384
#define DURABLE_MARGIN_NS (60LL * 1000000000LL) /* catch up from this much before the oldest */

#define RANGES_MAX 32

typedef struct {
    uint64_t from, to;
} range_t;

typedef struct {
    uint64_t inst, seq;         /* seq: the mark, every seq <= it is settled */
    int64_t ts;
    uint32_t n;                 /* handled ranges above the mark */
    range_t ranges[RANGES_MAX];
} ckpt_t;

struct durable_t {
    char name[WEFT_TOPIC_MAX + 1];
    zhashx_t *sources;          /* inst hex -> ckpt_t */
    bool dirty;
};

static int s_env_open(self_t *self, char *why, size_t cap)
{
    if (self->state_env)
        return 0;
    const char *dir = weft_config_get(self->node->config, "node/state_dir");
    if (!dir || !*dir)
        dir = "weft-state";
    if (lmdb_util_mkdirs(dir) != 0) {
        snprintf(why, cap, "cannot create state directory %s", dir);
        return WEFT_ECONFIG;
    }
    int rc = lmdb_util_lock(dir, "weft-state.lock", "state directory", "node", &self->state_lock,
                            why, cap);
    if (rc != 0)
        return rc;
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    if (mdb_env_create(&env) || mdb_env_set_maxdbs(env, 2) ||
        mdb_env_set_mapsize(env, 256ull << 20) || mdb_env_open(env, dir, 0, 0644) ||
        mdb_txn_begin(env, NULL, 0, &txn) ||
        mdb_dbi_open(txn, "consumers", MDB_CREATE, &self->state_dbi) || mdb_txn_commit(txn)) {
        snprintf(why, cap, "cannot open the state store in %s", dir);
        if (env)
            mdb_env_close(env);
        lmdb_util_unlock(self->state_lock);
        self->state_lock = -1;
        return WEFT_ECONFIG;
    }
    self->state_env = env;
    return 0;
}

int node_durable_open(self_t *self, weft_sub_t *sub, const char *name, int64_t *since_ns)
{
    char why[256] = "";
    *since_ns = 0;
    int rc = s_env_open(self, why, sizeof(why));
    if (rc != 0) {
        zsys_error("weft[%s]: durable consumer '%s': %s", self->node->name, name, why);
        return rc;
    }
    durable_t *d = calloc(1, sizeof(*d));
    if (!d)
        return WEFT_ENOMEM;
    snprintf(d->name, sizeof(d->name), "%s", name);
    d->sources = zhashx_new();
    zhashx_set_destructor(d->sources, (zhashx_destructor_fn *)zstr_free);
    MDB_txn *txn;
    MDB_val key = {strlen(d->name), d->name}, val;
    int64_t oldest = 0;
    if (mdb_txn_begin(self->state_env, NULL, MDB_RDONLY, &txn) == 0) {
        if (mdb_get(txn, self->state_dbi, &key, &val) == 0) {
            const uint8_t *p = val.mv_data, *end = p + val.mv_size;
            bool v2 = val.mv_size >= 4 && memcmp(p, "WDC2", 4) == 0;
            if (v2)
                p += 4;
            else if (val.mv_size % 24 != 0)
                end = p; /* not a checkpoint: start afresh */
            while (end - p >= (v2 ? 28 : 24) && zhashx_size(d->sources) < DURABLE_SOURCES_MAX) {
                ckpt_t *c = calloc(1, sizeof(*c));
                if (!c)
                    break; /* out of memory: the sources not read are at-least-once */
                c->inst = lmdb_util_get_u64(p);
                c->seq = lmdb_util_get_u64(p + 8);
                c->ts = (int64_t)lmdb_util_get_u64(p + 16);
                p += 24;
                if (v2) {
                    uint32_t n = lmdb_util_get_u32(p);
                    p += 4;
                    if (n > RANGES_MAX || (size_t)(end - p) < n * 16u) {
                        free(c);
                        break; /* damaged: keep what was read */
                    }
                    for (uint32_t k = 0; k < n; k++, p += 16) {
                        c->ranges[k].from = lmdb_util_get_u64(p);
                        c->ranges[k].to = lmdb_util_get_u64(p + 8);
                    }
                    c->n = n;
                }
                char hex[17];
                snprintf(hex, sizeof(hex), "%016" PRIx64, c->inst);
                zhashx_insert(d->sources, hex, c);
                if (!oldest || c->ts < oldest)
                    oldest = c->ts;
            }
        }
        mdb_txn_abort(txn);
    }
    if (oldest)
        *since_ns = oldest - DURABLE_MARGIN_NS > 0 ? oldest - DURABLE_MARGIN_NS : 1;
    sub->durable = d;
    return 0;
}

static bool s_has(const ckpt_t *c, uint64_t seq)
{
    if (seq <= c->seq)
        return true;
    for (uint32_t i = 0; i < c->n && c->ranges[i].from <= seq; i++)
        if (seq <= c->ranges[i].to)
            return true;
    return false;
}

/*  Adds seq (not yet in c) to the ranges, merging neighbours, then moves the mark over the
    ranges that touch it; past RANGES_MAX ranges the lowest gap is given up. */
static void s_add(ckpt_t *c, uint64_t seq)
{
    uint32_t i = 0;
    while (i < c->n && c->ranges[i].to < seq)
        i++;
    bool joins_prev = i > 0 && c->ranges[i - 1].to + 1 == seq;
    bool joins_next = i < c->n && c->ranges[i].from == seq + 1;
    if (joins_prev && joins_next) {
        c->ranges[i - 1].to = c->ranges[i].to;
        memmove(&c->ranges[i], &c->ranges[i + 1], (c->n - i - 1) * sizeof(range_t));
        c->n--;
    } else if (joins_prev) {
        c->ranges[i - 1].to = seq;
    } else if (joins_next) {
        c->ranges[i].from = seq;
    } else {
        if (c->n == RANGES_MAX) {
            /* Give up the lowest gap: the mark jumps to the end of the lowest range. */
            c->seq = c->ranges[0].to;
            memmove(&c->ranges[0], &c->ranges[1], (c->n - 1) * sizeof(range_t));
            c->n--;
            if (i > 0)
                i--;
            if (seq <= c->seq)
                return;
        }
        memmove(&c->ranges[i + 1], &c->ranges[i], (c->n - i) * sizeof(range_t));
        c->ranges[i] = (range_t){seq, seq};
        c->n++;
    }
    while (c->n > 0 && c->ranges[0].from <= c->seq + 1) {
        if (c->ranges[0].to > c->seq)
            c->seq = c->ranges[0].to;
        memmove(&c->ranges[0], &c->ranges[1], (c->n - 1) * sizeof(range_t));
        c->n--;
    }
}

/*  The checkpoint of source inst; hex receives its key (17 bytes). */
static ckpt_t *s_ckpt(durable_t *d, uint64_t inst, char *hex)
{
    snprintf(hex, 17, "%016" PRIx64, inst);
    return zhashx_lookup(d->sources, hex);
}

bool node_durable_seen(weft_sub_t *sub, const weft_envelope_t *env)
{
    char hex[17];
    ckpt_t *c = s_ckpt(sub->durable, env->inst, hex);
    return c && s_has(c, env->seq);
}

bool node_durable_mark(const weft_sub_t *sub, uint64_t inst, uint64_t *mark)
{
    char hex[17];
    const ckpt_t *c = s_ckpt(sub->durable, inst, hex);
    if (c && mark)
        *mark = c->seq;
    return c != NULL;
}

void node_durable_record(weft_sub_t *sub, const weft_envelope_t *env)
{
    durable_t *d = sub->durable;
    char hex[17];
    ckpt_t *c = s_ckpt(d, env->inst, hex);
    if (!c) {
        if (zhashx_size(d->sources) >= DURABLE_SOURCES_MAX)
            return; /* bounded: such a source is only at-least-once */
        c = calloc(1, sizeof(*c));
        if (!c)
            return;
        c->inst = env->inst;
        /* A source first met live at seq N: what it published before is not this
           consumer's (it started later). Met while catching up from the archive: everything
           the replay brings is, in whatever order the archive stored it. */
        c->seq = sub->catchup ? 0 : env->seq - 1;
        zhashx_insert(d->sources, hex, c);
    }
    if (s_has(c, env->seq))
        return;
    s_add(c, env->seq);
    if (env->ts > c->ts)
        c->ts = env->ts;
    d->dirty = true;
}

static void s_flush_one(self_t *self, durable_t *d)
{
    if (!d->dirty || !self->state_env)
        return;
    size_t bytes = 4;
    for (ckpt_t *c = zhashx_first(d->sources); c; c = zhashx_next(d->sources))
        bytes += 28 + (size_t)c->n * 16;
    uint8_t *buf = malloc(bytes);
    if (!buf)
        return;
    uint8_t *p = buf;
    memcpy(p, "WDC2", 4);
    p += 4;
    for (ckpt_t *c = zhashx_first(d->sources); c; c = zhashx_next(d->sources)) {
        lmdb_util_put_u64(p, c->inst);
        lmdb_util_put_u64(p + 8, c->seq);
        lmdb_util_put_u64(p + 16, (uint64_t)c->ts);
        lmdb_util_put_u32(p + 24, c->n);
        p += 28;
        for (uint32_t k = 0; k < c->n; k++, p += 16) {
            lmdb_util_put_u64(p, c->ranges[k].from);
            lmdb_util_put_u64(p + 8, c->ranges[k].to);
        }
    }
    MDB_txn *txn;
    MDB_val key = {strlen(d->name), d->name}, val = {bytes, buf};
    if (mdb_txn_begin(self->state_env, NULL, 0, &txn) == 0) {
        if (mdb_put(txn, self->state_dbi, &key, &val, 0) == 0 && mdb_txn_commit(txn) == 0)
            d->dirty = false;
        else
            mdb_txn_abort(txn);
    }
    if (d->dirty)
        zsys_warning("weft[%s]: could not write the checkpoint of '%s'", self->node->name,
                     d->name);
    free(buf);
}

void node_durable_flush(self_t *self)
{
    for (weft_sub_t *s = zlistx_first(self->subs); s; s = zlistx_next(self->subs))
        if (s->durable)
            s_flush_one(self, s->durable);
}

void node_durable_close(self_t *self, weft_sub_t *sub)
{
    if (!sub->durable)
        return;
    s_flush_one(self, sub->durable);
    zhashx_destroy(&sub->durable->sources);
    free(sub->durable);
    sub->durable = NULL;
}

void node_durable_stop(self_t *self)
{
    if (self->state_env) {
        mdb_env_close(self->state_env);
        self->state_env = NULL;
    }
    lmdb_util_unlock(self->state_lock);
    self->state_lock = -1;
}

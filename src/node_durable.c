/*  node_durable.c - durable named consumers: a subscription with a consumer name keeps, in a
    local LMDB state directory, the highest seq it has handled from each source (and that
    event's publish time). After a restart it catches up from the archive from a little before
    the oldest of those times, then goes live; every event at or below a source's recorded seq
    is skipped, so across restarts the handler sees each event once (effectively once).

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
    "consumers": key = consumer name, value = records of 24 bytes:
        [inst u64 BE][seq u64 BE][ts i64 BE]   one per source, at most 16384
    A lock file keeps two processes from using one state directory at once.
*/
#include <inttypes.h>
#include <lmdb.h>

#include "lmdb_util.h"
#include "node_actor.h"

#define DURABLE_SOURCES_MAX 16384
#define DURABLE_MARGIN_NS (60LL * 1000000000LL) /* catch up from this much before the oldest */

typedef struct {
    uint64_t inst, seq;
    int64_t ts;
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
        if (mdb_get(txn, self->state_dbi, &key, &val) == 0 && val.mv_size % 24 == 0) {
            const uint8_t *p = val.mv_data;
            for (size_t i = 0; i < val.mv_size / 24; i++, p += 24) {
                ckpt_t *c = calloc(1, sizeof(*c));
                c->inst = lmdb_util_get_u64(p);
                c->seq = lmdb_util_get_u64(p + 8);
                c->ts = (int64_t)lmdb_util_get_u64(p + 16);
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

bool node_durable_seen(weft_sub_t *sub, const weft_envelope_t *env)
{
    char hex[17];
    snprintf(hex, sizeof(hex), "%016" PRIx64, env->inst);
    ckpt_t *c = zhashx_lookup(sub->durable->sources, hex);
    return c && env->seq <= c->seq;
}

void node_durable_record(weft_sub_t *sub, const weft_envelope_t *env)
{
    durable_t *d = sub->durable;
    char hex[17];
    snprintf(hex, sizeof(hex), "%016" PRIx64, env->inst);
    ckpt_t *c = zhashx_lookup(d->sources, hex);
    if (!c) {
        if (zhashx_size(d->sources) >= DURABLE_SOURCES_MAX)
            return; /* bounded: such a source is only at-least-once */
        c = calloc(1, sizeof(*c));
        c->inst = env->inst;
        zhashx_insert(d->sources, hex, c);
    }
    if (env->seq > c->seq) {
        c->seq = env->seq;
        c->ts = env->ts;
        d->dirty = true;
    }
}

static void s_flush_one(self_t *self, durable_t *d)
{
    if (!d->dirty || !self->state_env)
        return;
    size_t n = zhashx_size(d->sources);
    uint8_t *buf = malloc(n ? n * 24 : 1);
    uint8_t *p = buf;
    for (ckpt_t *c = zhashx_first(d->sources); c; c = zhashx_next(d->sources), p += 24) {
        lmdb_util_put_u64(p, c->inst);
        lmdb_util_put_u64(p + 8, c->seq);
        lmdb_util_put_u64(p + 16, (uint64_t)c->ts);
    }
    MDB_txn *txn;
    MDB_val key = {strlen(d->name), d->name}, val = {n * 24, buf};
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

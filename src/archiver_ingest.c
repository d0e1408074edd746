/*  archiver_ingest.c - batching and the writer thread of the archiver.

    Two batches: handlers (and the repair thread) append to `filling` under ingest_lock; the
    writer swaps it for the empty one and commits outside the lock, so receiving goes on while
    LMDB syncs. A batch closes at batch_events events or batch_ms after its first event,
    whichever comes first; while the writer is syncing, the filling batch keeps growing (up to
    64 x batch_events or 64 MiB), so a slow fsync means bigger batches rather than slower
    ingest. Past that bound appenders wait: the node's receive queue then absorbs the burst,
    and beyond its high-water mark the publishers drop towards us and we repair from their
    outboxes later. Nothing grows without bound.

    Between commits the writer syncs (policy interval), applies retention in steps of at most
    1000 events, and tells the server thread that new offsets exist (live replays).
*/
#include "archiver_internal.h"

#include <errno.h>
#include <time.h>

#define TRIM_STEP 1000
#define BATCH_GROWTH 64 /* a batch may grow to 64 x batch_events while the writer is busy */

static int s_batch_reserve(batch_t *b, size_t bytes)
{
    if (b->n == b->ev_cap) {
        size_t cap = b->ev_cap ? b->ev_cap * 2 : 1024;
        archive_in_t *ev = realloc(b->ev, cap * sizeof(*ev));
        if (ev)
            b->ev = ev;
        size_t *at = realloc(b->at, cap * sizeof(*at));
        if (at)
            b->at = at;
        uint8_t *ids = realloc(b->ids, cap * WEFT_ID_SIZE);
        if (ids)
            b->ids = ids;
        if (!ev || !at || !ids)
            return -1;
        b->ev_cap = cap;
    }
    if (b->used + bytes > b->cap) {
        size_t cap = b->cap ? b->cap : 1 << 20;
        while (cap < b->used + bytes)
            cap *= 2;
        uint8_t *arena = realloc(b->arena, cap);
        if (!arena)
            return -1;
        b->arena = arena;
        b->cap = cap;
    }
    return 0;
}

/*  The writer closes a batch at batch_events (or batch_ms). */
static bool s_batch_full(const archiver_t *self, const batch_t *b)
{
    return b->n >= self->opts.batch_events || b->used >= BATCH_BYTES_MAX;
}

/*  Appenders wait only at a much larger bound: while the writer syncs, events keep gathering
    in the filling batch, and the next commit takes all of them. So a slow fsync makes
    batches bigger instead of making ingest wait for each batch's sync. */
static bool s_batch_blocked(const archiver_t *self, const batch_t *b)
{
    return b->n >= self->opts.batch_events * BATCH_GROWTH || b->used >= BATCH_BYTES_MAX;
}

int archiver_ingest_add(archiver_t *self, const char *topic, size_t topic_size,
                        const uint8_t *envelope, size_t envelope_size, const uint8_t *payload,
                        size_t payload_size, const weft_envelope_t *env)
{
    size_t bytes = topic_size + envelope_size + payload_size;
    pthread_mutex_lock(&self->ingest_lock);
    while (!self->stopping && s_batch_blocked(self, self->filling))
        pthread_cond_wait(&self->ingest_cond, &self->ingest_lock);
    if (self->stopping) {
        pthread_mutex_unlock(&self->ingest_lock);
        return -1;
    }
    batch_t *b = self->filling;
    if (s_batch_reserve(b, bytes) != 0) {
        pthread_mutex_unlock(&self->ingest_lock);
        atomic_fetch_add(&self->refused, 1);
        return -1;
    }
    size_t at = b->used;
    memcpy(b->arena + at, topic, topic_size);
    memcpy(b->arena + at + topic_size, envelope, envelope_size);
    if (payload_size)
        memcpy(b->arena + at + topic_size + envelope_size, payload, payload_size);
    b->used += bytes;
    archive_in_t *e = &b->ev[b->n];
    memset(e, 0, sizeof(*e));
    e->topic_size = topic_size;
    e->envelope_size = envelope_size;
    e->payload_size = payload_size;
    e->inst = env->inst;
    e->seq = env->seq;
    e->recv_ts = weft_now_ns();
    b->at[b->n] = at;
    memcpy(b->ids + b->n * WEFT_ID_SIZE, env->id, WEFT_ID_SIZE);
    if (b->n == 0 && b->nops == 0) {
        b->first_ms = zclock_mono();
        pthread_cond_broadcast(&self->ingest_cond); /* the writer starts the batch clock */
    }
    b->n++;
    if (s_batch_full(self, b))
        pthread_cond_broadcast(&self->ingest_cond);
    pthread_mutex_unlock(&self->ingest_lock);
    return 0;
}

int archiver_ingest_note(archiver_t *self, const archive_repair_op_t *op)
{
    pthread_mutex_lock(&self->ingest_lock);
    batch_t *b = self->filling;
    int rc = -1;
    if (!self->stopping && b) {
        if (b->nops == b->ops_cap) {
            size_t cap = b->ops_cap ? b->ops_cap * 2 : 64;
            archive_repair_op_t *ops = realloc(b->ops, cap * sizeof(*ops));
            if (ops) {
                b->ops = ops;
                b->ops_cap = cap;
            }
        }
        if (b->nops < b->ops_cap) {
            b->ops[b->nops++] = *op;
            if (b->n == 0 && b->nops == 1) {
                b->first_ms = zclock_mono();
                pthread_cond_broadcast(&self->ingest_cond);
            }
            rc = 0;
        }
    }
    pthread_mutex_unlock(&self->ingest_lock);
    return rc;
}

/*  Sets the event pointers of a batch once its arena no longer moves. */
static void s_batch_fix(batch_t *b)
{
    for (size_t i = 0; i < b->n; i++) {
        archive_in_t *e = &b->ev[i];
        uint8_t *base = b->arena + b->at[i];
        e->topic = (const char *)base;
        e->envelope = base + e->topic_size;
        e->payload = base + e->topic_size + e->envelope_size;
        e->id = b->ids + i * WEFT_ID_SIZE;
    }
}

static void s_batch_clear(batch_t *b)
{
    b->n = 0;
    b->nops = 0;
    b->used = 0;
    b->first_ms = 0;
    /* Give back memory after a burst: keep at most 8 MiB of arena between batches. */
    if (b->cap > (8u << 20)) {
        free(b->arena);
        b->arena = NULL;
        b->cap = 0;
    }
}

static void s_record_commit(archiver_t *self, int64_t us)
{
    unsigned i = atomic_fetch_add(&self->commit_next, 1) % COMMIT_SAMPLES;
    self->commit_us[i] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

static void s_commit(archiver_t *self, batch_t *b, void *notify)
{
    s_batch_fix(b);
    archive_append_result_t res;
    int64_t t0 = zclock_usecs();
    int rc = archive_store_append_ops(self->store, b->ev, b->n, b->ops, b->nops, &res);
    s_record_commit(self, zclock_usecs() - t0);
    if (rc == 0) {
        atomic_fetch_add(&self->ingested, res.appended);
        atomic_fetch_add(&self->duplicates, res.duplicates);
        atomic_fetch_add(&self->batches_done, 1);
        if (res.appended) {
            atomic_store(&self->last_offset, res.last_offset);
            zmq_send(notify, "C", 1, ZMQ_DONTWAIT);
        }
    } else {
        /* The events stay in their publishers' outboxes for a while: a later repair may
           still recover them if room is made (retention, a bigger map). */
        atomic_fetch_add(&self->commit_errors, 1);
        atomic_fetch_add(&self->refused, b->n);
        zsys_error("weft-archiver: could not commit %zu events (and %zu repair records): %s (%s)",
                   b->n, b->nops,
                   weft_strerror(rc), archive_store_last_error(self->store));
    }
}

static bool s_retention_set(const archive_retention_t *r)
{
    return r->max_age_ns || r->max_bytes || r->max_events;
}

static void *s_writer(void *arg)
{
    archiver_t *self = arg;
    void *notify = zmq_socket(zsys_init(), ZMQ_PUSH);
    int hwm = 4;
    zmq_setsockopt(notify, ZMQ_SNDHWM, &hwm, sizeof(hwm));
    int linger = 0;
    zmq_setsockopt(notify, ZMQ_LINGER, &linger, sizeof(linger));
    zmq_connect(notify, self->commit_endpoint);
    int64_t next_maint = zclock_mono() + 1000;
    bool trim_more = false;

    pthread_mutex_lock(&self->ingest_lock);
    while (1) {
        batch_t *b = self->filling;
        int64_t now = zclock_mono();
        bool ready = (b->n > 0 || b->nops > 0) && (s_batch_full(self, b) || self->stopping ||
                                  now - b->first_ms >= self->opts.batch_ms);
        bool maint = now >= next_maint || trim_more;
        if (!ready && !maint) {
            if (self->stopping)
                break;
            int64_t until = next_maint;
            if ((b->n > 0 || b->nops > 0) && b->first_ms + self->opts.batch_ms < until)
                until = b->first_ms + self->opts.batch_ms;
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            int64_t wait_ms = until - now;
            if (wait_ms < 1)
                wait_ms = 1;
            ts.tv_sec += wait_ms / 1000;
            ts.tv_nsec += (wait_ms % 1000) * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&self->ingest_cond, &self->ingest_lock, &ts);
            continue;
        }
        if (ready) {
            batch_t *full = b;
            self->filling = full == &self->batches[0] ? &self->batches[1] : &self->batches[0];
            pthread_cond_broadcast(&self->ingest_cond); /* room again */
            pthread_mutex_unlock(&self->ingest_lock);
            s_commit(self, full, notify);
            s_batch_clear(full);
            pthread_mutex_lock(&self->ingest_lock);
        }
        if (maint) {
            pthread_mutex_unlock(&self->ingest_lock);
            if (now >= next_maint) {
                if (self->opts.sync == ARCHIVE_SYNC_INTERVAL)
                    archive_store_sync(self->store);
                next_maint = now + 1000;
            }
            trim_more = false;
            if (s_retention_set(&self->opts.retention)) {
                archive_trim_result_t tr;
                if (archive_store_trim(self->store, &self->opts.retention, weft_now_ns(),
                                       TRIM_STEP, &tr) == 0) {
                    atomic_fetch_add(&self->retained_removed, tr.removed);
                    trim_more = tr.more;
                }
            }
            pthread_mutex_lock(&self->ingest_lock);
        }
    }
    pthread_mutex_unlock(&self->ingest_lock);
    if (self->opts.sync != ARCHIVE_SYNC_ALWAYS)
        archive_store_sync(self->store);
    zmq_close(notify);
    return NULL;
}

int archiver_ingest_start(archiver_t *self)
{
    pthread_mutex_init(&self->ingest_lock, NULL);
    pthread_cond_init(&self->ingest_cond, NULL);
    self->filling = &self->batches[0];
    return pthread_create(&self->writer, NULL, s_writer, self) == 0 ? 0 : -1;
}

void archiver_ingest_stop(archiver_t *self)
{
    pthread_mutex_lock(&self->ingest_lock);
    self->stopping = true;
    pthread_cond_broadcast(&self->ingest_cond);
    pthread_mutex_unlock(&self->ingest_lock);
    pthread_join(self->writer, NULL);
    for (int i = 0; i < 2; i++) {
        free(self->batches[i].arena);
        free(self->batches[i].ev);
        free(self->batches[i].at);
        free(self->batches[i].ids);
        free(self->batches[i].ops);
    }
    pthread_cond_destroy(&self->ingest_cond);
    pthread_mutex_destroy(&self->ingest_lock);
}

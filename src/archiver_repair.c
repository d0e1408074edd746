/*  archiver_repair.c - the archiver's repair workers: fetch missing seq ranges from the
    publishers' outboxes (FETCH on their control endpoints) into the ingest batch.

    Requests come from the node thread when a source's seq jumps, when a heartbeat announces a
    seq the archive has not seen, and for the history of a source the archive meets for the
    first time. They queue (bounded, merged per instance); REPAIR_WORKERS threads serve them,
    never two on the same instance, so a publisher that died with a FETCH under way holds up
    one worker for the FETCH timeout, not every repair. A publisher not known yet, or one that
    is still up but did not answer in full, is asked again every REPAIR_RETRY_MS for up to
    REPAIR_ATTEMPTS times; then its events are counted unrepaired. Arrivals already archived
    are skipped by the store, so a repair that races live delivery costs a little work and
    never a duplicate.

    Each request is also written down as owed, in the same commit as the event that revealed
    the gap, and cleared in the commit that follows the repaired events: after a crash,
    archiver_repair_resume asks again for everything still owed, including gaps below a
    source's highest stored seq that nothing else would reveal.
*/
#include "archiver_internal.h"

#include <assert.h>
#include <inttypes.h>
#include <time.h>

#define FETCH_TIMEOUT_MS 3000
#define REPAIR_ATTEMPTS 40      /* x REPAIR_RETRY_MS: how long a publisher may stay unknown */
#define REPAIR_RETRY_MS 500

/*  Puts a request back, merged with a queued one of the same instance. Needs repair_lock. */
static void archiver_repair_requeue_locked(archiver_t *self, const repair_req_t *r)
{
    for (size_t i = 0; i < self->nrepairs; i++)
        if (self->repairs[i].inst == r->inst) {
            if (r->from < self->repairs[i].from)
                self->repairs[i].from = r->from;
            if (r->to > self->repairs[i].to)
                self->repairs[i].to = r->to;
            return;
        }
    if (self->nrepairs < REPAIR_QUEUE_MAX)
        self->repairs[self->nrepairs++] = *r;
    else
        atomic_fetch_add(&self->unrepaired, r->to - r->from + 1);
}

static void s_queue(archiver_t *self, uint64_t inst, uint64_t from, uint64_t to);

void archiver_repair_request(archiver_t *self, uint64_t inst, uint64_t from, uint64_t to)
{
    if (self->opts.no_repair || from == 0 || from > to)
        return;
    /* Owed from now on: the record commits no later than the event that revealed the gap. */
    archive_repair_op_t op = {inst, from, to, false};
    archiver_ingest_note(self, &op);
    s_queue(self, inst, from, to);
}

static int s_resume_one(uint64_t inst, uint64_t from, uint64_t to, void *arg)
{
    size_t *n = ((void **)arg)[1];
    s_queue(((void **)arg)[0], inst, from, to);
    (*n)++;
    return 0;
}

size_t archiver_repair_resume(archiver_t *self)
{
    size_t n = 0;
    if (self->opts.no_repair)
        return 0;
    archive_reader_t *r = archive_reader_new(self->store);
    if (!r)
        return 0;
    void *ctx[2] = {self, &n};
    if (archive_reader_begin(r) == WEFT_OK) {
        if (archive_repairs_each(r, s_resume_one, ctx) != WEFT_OK)
            zsys_warning("weft-archiver: cannot read the owed repairs: %s",
                         archive_reader_last_error(r));
        archive_reader_end(r);
    }
    archive_reader_destroy(&r);
    if (n)
        zsys_info("weft-archiver: %zu repairs owed before the restart are asked again", n);
    return n;
}

static void s_queue(archiver_t *self, uint64_t inst, uint64_t from, uint64_t to)
{
    pthread_mutex_lock(&self->repair_lock);
    size_t i;
    for (i = 0; i < self->nrepairs; i++)
        if (self->repairs[i].inst == inst) {
            if (from < self->repairs[i].from)
                self->repairs[i].from = from;
            if (to > self->repairs[i].to)
                self->repairs[i].to = to;
            break;
        }
    if (i == self->nrepairs) {
        if (self->nrepairs < REPAIR_QUEUE_MAX) {
            self->repairs[self->nrepairs++] = (repair_req_t){inst, from, to, 0, 0};
        } else {
            atomic_fetch_add(&self->unrepaired, to - from + 1);
            zsys_warning("weft-archiver: repair queue full; %" PRIu64 " events of %016" PRIx64
                         " not repaired",
                         to - from + 1, inst);
        }
    }
    pthread_cond_signal(&self->repair_cond);
    pthread_mutex_unlock(&self->repair_lock);
}

typedef struct {
    archiver_t *self;
    uint64_t got;
} fetch_ctx_t;

static int s_on_fetched(const weft_wire_event_t *ev, void *arg)
{
    fetch_ctx_t *ctx = arg;
    archiver_t *self = ctx->self;
    weft_envelope_t env;
    if (weft_topic_check(ev->topic, ev->topic_size) != 0 ||
        weft_envelope_decode(&env, ev->envelope, ev->envelope_size) != 0)
        return 0; /* a broken event in a reply: skip it, keep the rest */
    if (!archiver_wants(self, ev->topic, ev->topic_size))
        return 0;
    if (archiver_ingest_add(self, ev->topic, ev->topic_size, ev->envelope, ev->envelope_size,
                            ev->payload, ev->payload_size, &env) == 0)
        ctx->got++;
    return 0;
}

/*  Returns false when the publisher is not known (yet), or did not answer in full while it is
    still up: the caller tries again later (within REPAIR_ATTEMPTS). */
static bool s_repair_one(archiver_t *self, const repair_req_t *r)
{
    weft_peer_info_t peer;
    uint64_t wanted = r->to - r->from + 1;
    if (weft_node_find_peer(self->node, r->inst, NULL, NULL, 0, &peer) != WEFT_OK ||
        !peer.ctl[0]) {
        if (r->attempts < REPAIR_ATTEMPTS)
            return false;
        atomic_fetch_add(&self->unrepaired, wanted);
        zsys_warning("weft-archiver: %" PRIu64 " events of %016" PRIx64 " not repaired: its "
                     "publisher is not reachable",
                     wanted, r->inst);
        return true;
    }
    int err;
    weft_ctl_t *ctl = weft_ctl_new(peer.ctl, &err);
    if (!ctl) {
        atomic_fetch_add(&self->unrepaired, wanted);
        return true;
    }
    atomic_fetch_add(&self->repair_requests, 1);
    fetch_ctx_t ctx = {self, 0};
    weft_fetch_totals_t tot;
    char why[256] = "";
    /* With prefixes the publisher filters: only what we archive crosses the network. */
    int rc = weft_ctl_fetch_filtered(ctl, r->inst, r->from, r->to,
                                     (const char *const *)self->prefixes, self->nprefixes,
                                     s_on_fetched, &ctx, FETCH_TIMEOUT_MS, &tot, why);
    weft_ctl_destroy(&ctl);
    atomic_fetch_add(&self->repaired, ctx.got);
    if (rc != WEFT_OK && r->attempts < REPAIR_ATTEMPTS && !self->repair_stop &&
        weft_node_find_peer(self->node, r->inst, NULL, NULL, 0, &peer) == WEFT_OK)
        return false; /* no full answer, but it is still up: ask again (the store skips what
                         did arrive) */
    uint64_t lost = rc == WEFT_OK ? tot.missing : wanted - (ctx.got < wanted ? ctx.got : wanted);
    if (lost) {
        atomic_fetch_add(&self->unrepaired, lost);
        zsys_warning("weft-archiver: %" PRIu64 " events of %s (%016" PRIx64 ") seq %" PRIu64
                     "..%" PRIu64 " could not be repaired: %s",
                     lost, peer.name, r->inst, r->from, r->to,
                     rc == WEFT_OK ? "no longer in its outbox" : why[0] ? why : weft_strerror(rc));
    }
    return true;
}

/*  A finished repair (fetched, or given up and counted) is no longer owed: the clearing
    record follows the repaired events into the batch. */
static void s_settled(archiver_t *self, const repair_req_t *r)
{
    archive_repair_op_t op = {r->inst, r->from, r->to, true};
    archiver_ingest_note(self, &op);
}

/*  True when another worker is repairing inst. Needs repair_lock. */
static bool s_busy(const archiver_t *self, uint64_t inst)
{
    for (int i = 0; i < REPAIR_WORKERS; i++)
        if (self->repairing[i] == inst)
            return true;
    return false;
}

/*  One of REPAIR_WORKERS threads: each takes the first due request of an instance no other
    worker is repairing, so a publisher that died (a FETCH that waits for its timeout) holds
    up one worker, not every repair. */
static void *s_repairer(void *arg)
{
    archiver_t *self = ((worker_arg_t *)arg)->self;
    int slot = ((worker_arg_t *)arg)->slot;
    pthread_mutex_lock(&self->repair_lock);
    while (!self->repair_stop) {
        int64_t now = zclock_mono(), earliest = INT64_MAX;
        size_t due = self->nrepairs;
        for (size_t i = 0; i < self->nrepairs && due == self->nrepairs; i++) {
            if (s_busy(self, self->repairs[i].inst))
                continue;
            if (self->repairs[i].not_before <= now)
                due = i;
            else if (self->repairs[i].not_before < earliest)
                earliest = self->repairs[i].not_before;
        }
        if (due == self->nrepairs) {
            if (earliest == INT64_MAX) {
                pthread_cond_wait(&self->repair_cond, &self->repair_lock);
                continue;
            }
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            int64_t ms = earliest - now;
            ts.tv_sec += ms / 1000;
            ts.tv_nsec += (ms % 1000) * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&self->repair_cond, &self->repair_lock, &ts);
            continue;
        }
        repair_req_t r = self->repairs[due];
        memmove(&self->repairs[due], &self->repairs[due + 1],
                (self->nrepairs - due - 1) * sizeof(repair_req_t));
        self->nrepairs--;
        self->repairing[slot] = r.inst;
        pthread_mutex_unlock(&self->repair_lock);
        bool finished = s_repair_one(self, &r);
        if (finished)
            s_settled(self, &r);
        pthread_mutex_lock(&self->repair_lock);
        self->repairing[slot] = 0;
        if (!finished) {
            /* Not reachable yet (it may be learned in a moment): try again in half a second. */
            r.attempts++;
            r.not_before = zclock_mono() + REPAIR_RETRY_MS;
            archiver_repair_requeue_locked(self, &r);
        }
        pthread_cond_broadcast(&self->repair_cond); /* its instance is free again */
    }
    pthread_mutex_unlock(&self->repair_lock);
    return NULL;
}

int archiver_repair_start(archiver_t *self)
{
    pthread_mutex_init(&self->repair_lock, NULL);
    pthread_cond_init(&self->repair_cond, NULL);
    static_assert(REPAIR_WORKERS > 0, "at least one repair worker");
    for (int i = 0; i < REPAIR_WORKERS; i++) {
        self->repair_args[i] = (worker_arg_t){self, i};
        if (pthread_create(&self->repairers[i], NULL, s_repairer, &self->repair_args[i]) != 0) {
            archiver_repair_halt(self);
            return -1;
        }
        self->nrepairers = i + 1;
    }
    return 0;
}

void archiver_repair_halt(archiver_t *self)
{
    if (self->repair_joined)
        return;
    pthread_mutex_lock(&self->repair_lock);
    self->repair_stop = true;
    pthread_cond_broadcast(&self->repair_cond);
    pthread_mutex_unlock(&self->repair_lock);
    for (int i = 0; i < self->nrepairers; i++)
        pthread_join(self->repairers[i], NULL);
    self->repair_joined = true;
}

void archiver_repair_stop(archiver_t *self)
{
    archiver_repair_halt(self);
    pthread_cond_destroy(&self->repair_cond);
    pthread_mutex_destroy(&self->repair_lock);
}

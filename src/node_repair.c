/*  node_repair.c - at-least-once delivery for subscriptions with `repair` on: when a source's
    seq jumps, the missing range is fetched from the publisher's outbox, then from an archiver
    for what the outbox no longer holds, and delivered in seq order; the source's later live
    events are held back until the range is settled.

        live:      5 6 7 . . . 11 12        (8..10 dropped on the way)
        repair:              8 9 10         (FETCH from the outbox, else the archive)
        delivered: 5 6 7 8 9 10 11 12       (11, 12 were held back meanwhile)

    The fetching runs on a thread of its own (FETCH round trips must not stall the node); its
    results come back to the node's thread on the catch-up PULL socket with subscription id
    0: 'R' [topic][envelope][payload] for each repaired event, oldest first, then 'D' with the
    range and its totals. Events neither the outbox nor the archive holds are counted as
    unrepaired. For a publisher marked down (most likely dead, its FETCH would only time out)
    the archive is asked first. When a publisher goes down, the archive is also asked for
    whatever it holds past the last seq delivered (its tail: events that never reached us and
    that no later event or heartbeat will announce). Bounds: REPAIR_QUEUE requests wait,
    REPAIR_RANGE_MAX seqs per request (tails included), HELD_MAX held events per source
    (beyond it, events are delivered as they come and the order of that source is no longer
    guaranteed; counted in the log).
*/
#include <inttypes.h>
#include <pthread.h>

#include "node_actor.h"
#include "weft/archive.h"

#define REPAIR_QUEUE 256
#define REPAIR_RANGE_MAX 100000
#define REPAIR_PREFIXES 16
#define HELD_MAX 100000
#define FETCH_TIMEOUT_MS 3000
#define NEW_SOURCE_FETCH_MAX 10000 /* a new source's earlier events looked for, at most */
#define TAIL_FETCH_MAX REPAIR_RANGE_MAX /* seqs past the last one delivered asked of the
                                           archive when a source's node goes down */

typedef struct {
    uint64_t inst, from, to;
    bool tail;                  /* a source that went down: what the archive holds past
                                   `from`, if anything (nothing is known to be missing) */
    bool down;                  /* its node is marked down: the archive is asked first */
    char ctl[256];              /* the publisher's control endpoint, "" when unknown */
    char svc[256];              /* an archiver's service endpoint, "" when none */
    size_t nprefixes;           /* 0: every topic */
    char prefixes[REPAIR_PREFIXES][WEFT_TOPIC_MAX + 1];
} repair_req_t;

struct repairer_t {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool stop;
    repair_req_t *queue[REPAIR_QUEUE];
    size_t n;
    char endpoint[64];          /* the node's catch-up PULL */
};

typedef struct {
    uint64_t seq;
    size_t topic_size, envelope_size, payload_size;
} held_t;  /* followed by topic, envelope, payload */

/* ---- the thread ----------------------------------------------------------------------------- */

typedef struct {
    zlistx_t *events;           /* held_t blobs, in seq order */
    const repair_req_t *req;
    uint64_t found;             /* events of the range returned (all topics for the archive) */
    uint64_t top;               /* the highest seq among them */
    bool filter;                /* filter by the request's prefixes here (archive FETCH) */
} collect_t;

static bool s_wanted(const repair_req_t *r, const char *topic, size_t len)
{
    if (r->nprefixes == 0)
        return true;
    for (size_t i = 0; i < r->nprefixes; i++) {
        size_t n = strlen(r->prefixes[i]);
        if (n <= len && memcmp(r->prefixes[i], topic, n) == 0)
            return true;
    }
    return false;
}

static int s_collect(const weft_wire_event_t *ev, void *arg)
{
    collect_t *c = arg;
    weft_envelope_t env;
    if (weft_envelope_decode(&env, ev->envelope, ev->envelope_size) != 0 ||
        env.inst != c->req->inst || env.seq < c->req->from || env.seq > c->req->to)
        return 0;
    c->found++;
    if (env.seq > c->top)
        c->top = env.seq;
    if (c->filter && !s_wanted(c->req, ev->topic, ev->topic_size))
        return 0;
    held_t *h = malloc(sizeof(held_t) + ev->topic_size + ev->envelope_size + ev->payload_size);
    if (!h)
        return 0;
    h->seq = env.seq;
    h->topic_size = ev->topic_size;
    h->envelope_size = ev->envelope_size;
    h->payload_size = ev->payload_size;
    uint8_t *p = (uint8_t *)(h + 1);
    memcpy(p, ev->topic, ev->topic_size);
    memcpy(p + ev->topic_size, ev->envelope, ev->envelope_size);
    memcpy(p + ev->topic_size + ev->envelope_size, ev->payload, ev->payload_size);
    zlistx_add_end(c->events, h);
    return 0;
}

static void s_send_events(void *push, zlistx_t *events)
{
    static const uint64_t zero = 0;
    for (held_t *h = zlistx_first(events); h; h = zlistx_next(events)) {
        const uint8_t *p = (const uint8_t *)(h + 1);
        zmq_send(push, &zero, 8, ZMQ_SNDMORE);
        zmq_send(push, "R", 1, ZMQ_SNDMORE);
        zmq_send(push, p, h->topic_size, ZMQ_SNDMORE);
        zmq_send(push, p + h->topic_size, h->envelope_size, ZMQ_SNDMORE);
        zmq_send(push, p + h->topic_size + h->envelope_size, h->payload_size, 0);
    }
}

/*  FETCH of seqs from..to of r's source from the archive into list (filtered by r's prefixes).
    Returns how many seqs of the range it held (any topic); *top gets the highest. */
static uint64_t s_from_archive(const repair_req_t *r, uint64_t from, uint64_t to, zlistx_t *list,
                               uint64_t *top)
{
    int err;
    weft_ctl_t *ctl = weft_ctl_new(r->svc, &err);
    if (!ctl)
        return 0;
    repair_req_t part = *r;
    part.from = from;
    part.to = to;
    collect_t c = {list, &part, 0, 0, true};
    weft_fetch_totals_t tot;
    weft_ctl_fetch(ctl, r->inst, from, to, s_collect, &c, FETCH_TIMEOUT_MS, &tot, NULL);
    weft_ctl_destroy(&ctl);
    *top = c.top;
    return c.found;
}

static void s_repair(void *push, const repair_req_t *r)
{
    uint64_t wanted = r->to - r->from + 1;
    uint64_t missing = wanted; /* seqs no source has answered for yet (any topic) */
    uint64_t outbox_from = r->to + 1; /* from here on the outbox answered; below: the archive */
    zlistx_t *from_outbox = zlistx_new(), *from_archive = zlistx_new();
    zlistx_set_destructor(from_outbox, (zlistx_destructor_fn *)zstr_free);
    zlistx_set_destructor(from_archive, (zlistx_destructor_fn *)zstr_free);
    uint64_t top = 0;
    bool ask_outbox = r->ctl[0] && !r->tail;
    if (ask_outbox && r->down && r->svc[0]) {
        /* A publisher marked down is most likely dead, and its FETCH would only time out:
           the archive first; the outbox only if the archive lacks part of the range. */
        if (s_from_archive(r, r->from, r->to, from_archive, &top) == wanted) {
            missing = 0;
            ask_outbox = false;
        } else {
            zlistx_purge(from_archive);
        }
    }
    if (ask_outbox) {
        int err;
        weft_ctl_t *ctl = weft_ctl_new(r->ctl, &err);
        if (ctl) {
            const char *pv[REPAIR_PREFIXES];
            for (size_t i = 0; i < r->nprefixes; i++)
                pv[i] = r->prefixes[i];
            collect_t c = {from_outbox, r, 0, 0, false};
            weft_fetch_totals_t tot;
            int rc = weft_ctl_fetch_filtered(ctl, r->inst, r->from, r->to, pv, r->nprefixes,
                                             s_collect, &c, FETCH_TIMEOUT_MS, &tot, NULL);
            if (rc == WEFT_OK) {
                missing = tot.missing;
                /* What the outbox no longer held is its oldest part. */
                outbox_from = tot.held_from > r->from ? tot.held_from : r->from;
            } else if (rc == WEFT_EGONE && tot.held_from > r->to) {
                outbox_from = r->to + 1;
            }
            weft_ctl_destroy(&ctl);
        }
        if (missing && r->svc[0] && outbox_from > r->from) {
            uint64_t found = s_from_archive(r, r->from, outbox_from - 1, from_archive, &top);
            missing = found >= missing ? 0 : missing - found;
        }
    } else if (r->tail && r->svc[0]) {
        s_from_archive(r, r->from, r->to, from_archive, &top);
    }
    /* Oldest first: the archive's part precedes the outbox's. */
    s_send_events(push, from_archive);
    s_send_events(push, from_outbox);
    /* A tail request settles only what the archive had; nothing else is known to exist. */
    uint64_t done[5] = {r->inst, r->tail ? (top ? top : r->from - 1) : r->to,
                        zlistx_size(from_archive) + zlistx_size(from_outbox),
                        r->tail ? 0 : missing, r->tail};
    static const uint64_t zero = 0;
    zmq_send(push, &zero, 8, ZMQ_SNDMORE);
    zmq_send(push, "D", 1, ZMQ_SNDMORE);
    zmq_send(push, done, sizeof(done), 0);
    zlistx_destroy(&from_outbox);
    zlistx_destroy(&from_archive);
}

static void *s_thread(void *arg)
{
    struct repairer_t *rp = arg;
    void *push = zmq_socket(zsys_init(), ZMQ_PUSH);
    int linger = 0;
    zmq_setsockopt(push, ZMQ_LINGER, &linger, sizeof(linger));
    zmq_connect(push, rp->endpoint);
    pthread_mutex_lock(&rp->lock);
    while (!rp->stop) {
        if (rp->n == 0) {
            pthread_cond_wait(&rp->cond, &rp->lock);
            continue;
        }
        repair_req_t *r = rp->queue[0];
        memmove(&rp->queue[0], &rp->queue[1], (rp->n - 1) * sizeof(rp->queue[0]));
        rp->n--;
        pthread_mutex_unlock(&rp->lock);
        s_repair(push, r);
        free(r);
        pthread_mutex_lock(&rp->lock);
    }
    pthread_mutex_unlock(&rp->lock);
    zmq_close(push);
    return NULL;
}

/* ---- the node's thread -------------------------------------------------------------------- */

static struct repairer_t *s_repairer(self_t *self)
{
    if (self->repairer)
        return self->repairer;
    struct repairer_t *rp = calloc(1, sizeof(*rp));
    if (!rp)
        return NULL;
    pthread_mutex_init(&rp->lock, NULL);
    pthread_cond_init(&rp->cond, NULL);
    snprintf(rp->endpoint, sizeof(rp->endpoint), "%s", self->catchup_endpoint);
    if (pthread_create(&rp->thread, NULL, s_thread, rp) != 0) {
        free(rp);
        return NULL;
    }
    self->repairer = rp;
    return rp;
}

void node_repair_stop(self_t *self)
{
    struct repairer_t *rp = self->repairer;
    if (!rp)
        return;
    pthread_mutex_lock(&rp->lock);
    rp->stop = true;
    pthread_cond_broadcast(&rp->cond);
    pthread_mutex_unlock(&rp->lock);
    pthread_join(rp->thread, NULL);
    for (size_t i = 0; i < rp->n; i++)
        free(rp->queue[i]);
    pthread_cond_destroy(&rp->cond);
    pthread_mutex_destroy(&rp->lock);
    free(rp);
    self->repairer = NULL;
}

void node_repair_source_free(source_t *src)
{
    zlistx_destroy(&src->held);
}

/*  Asks the repair thread for seqs from..to of src (tail: what an archive holds of them).
    Returns false when it cannot (queue full, no thread; for a tail, no archiver): the range is
    then counted unrepaired, unless it is a tail. */
static bool s_request(self_t *self, source_t *src, uint64_t from, uint64_t to, bool tail)
{
    struct repairer_t *rp = s_repairer(self);
    if (to - from + 1 > REPAIR_RANGE_MAX) {
        atomic_fetch_add(&self->node->counters.unrepaired, to - REPAIR_RANGE_MAX + 1 - from);
        from = to - REPAIR_RANGE_MAX + 1;
    }
    repair_req_t *r = rp ? calloc(1, sizeof(*r)) : NULL;
    if (!r)
        return false;
    r->inst = src->inst;
    r->from = from;
    r->to = to;
    r->tail = tail;
    /* The publisher's control endpoint, even if it is marked down for now (a slow peer
       under load is exactly the one whose events went missing). */
    peer_t *pp = peers_lookup(self->peers, src->inst);
    if (pp && pp->ctl[0])
        snprintf(r->ctl, sizeof(r->ctl), "%s", pp->ctl);
    r->down = !pp || pp->state == PEER_DOWN;
    weft_peer_info_t peer;
    if (node_actor_find_peer(self, 0, "archiver", NULL, &peer))
        snprintf(r->svc, sizeof(r->svc), "%s", peer.svc[0] ? peer.svc : peer.ctl);
    if (tail && !r->svc[0]) {
        free(r);
        return false;
    }
    /* The union of the repairing subscriptions' prefixes; "" (or too many) means all. */
    for (weft_sub_t *s = zlistx_first(self->subs); s; s = zlistx_next(self->subs)) {
        if (!s->repair || s->dead)
            continue;
        if (s->len == 0 || r->nprefixes == REPAIR_PREFIXES) {
            r->nprefixes = 0;
            break;
        }
        snprintf(r->prefixes[r->nprefixes++], WEFT_TOPIC_MAX + 1, "%s", s->prefix);
    }
    pthread_mutex_lock(&rp->lock);
    bool queued = rp->n < REPAIR_QUEUE;
    if (queued) {
        rp->queue[rp->n++] = r;
        pthread_cond_signal(&rp->cond);
    }
    pthread_mutex_unlock(&rp->lock);
    if (!queued)
        free(r);
    return queued;
}

static int s_deliver_as(self_t *self, const char *topic, size_t topic_len,
                        const weft_envelope_t *env, const uint8_t *raw, size_t raw_size,
                        const void *payload, size_t size, int which)
{
    char t[WEFT_TOPIC_MAX + 1];
    memcpy(t, topic, topic_len);
    t[topic_len] = 0;
    return node_actor_dispatch(self, t, topic_len, false, env, raw, raw_size, payload, size,
                               which);
}

static void s_deliver(self_t *self, const char *topic, size_t topic_len,
                      const weft_envelope_t *env, const uint8_t *raw, size_t raw_size,
                      const void *payload, size_t size)
{
    s_deliver_as(self, topic, topic_len, env, raw, raw_size, payload, size, DISPATCH_REPAIR);
}

/*  Where the early events of a source first heard at seq `next` are fetched from, or 0 when
    none are. Two kinds of subscription want them:
      - any repairing subscription, from a young publisher (next - 1 <= NEW_SOURCE_FETCH_MAX)
        that started after it did and published before we were connected to it; events
        published before the subscription's start are left out when delivering;
      - a durable consumer whose checkpoint already follows the source (this process is one
        of its later incarnations): everything past its mark is its, whenever published; at
        most NEW_SOURCE_FETCH_MAX back, the rest is its catch-up's to bring. */
static uint64_t s_early_from(self_t *self, uint64_t inst, uint64_t next)
{
    if (next <= 1)
        return 0;
    uint64_t floor = next - 1 > NEW_SOURCE_FETCH_MAX ? next - NEW_SOURCE_FETCH_MAX : 1;
    uint64_t from = floor == 1 ? 1 : next;
    for (weft_sub_t *s = zlistx_first(self->subs); s && from > floor; s = zlistx_next(self->subs)) {
        uint64_t mark;
        if (!s->dead && s->durable && node_durable_mark(s, inst, &mark) && mark + 1 < from)
            from = mark + 1 > floor ? mark + 1 : floor;
    }
    return from < next ? from : 0;
}

static void s_hold(self_t *self, source_t *src, uint64_t seq, const char *topic,
                   size_t topic_len, const uint8_t *raw, size_t raw_size, const void *payload,
                   size_t size)
{
    (void)self;
    if (!src->held) {
        src->held = zlistx_new();
        zlistx_set_destructor(src->held, (zlistx_destructor_fn *)zstr_free);
    }
    held_t *h = malloc(sizeof(held_t) + topic_len + raw_size + size);
    if (!h)
        return;
    h->seq = seq;
    h->topic_size = topic_len;
    h->envelope_size = raw_size;
    h->payload_size = size;
    uint8_t *p = (uint8_t *)(h + 1);
    memcpy(p, topic, topic_len);
    memcpy(p + topic_len, raw, raw_size);
    memcpy(p + topic_len + raw_size, payload, size);
    zlistx_add_end(src->held, h);
}

/*  Starts a repair of src from its settled seq up to before `next`; false if it could not.
    A counted repair is a gap; an uncounted one looks for a new source's early events. */
static bool s_start_as(self_t *self, source_t *src, uint64_t next, bool counted)
{
    uint64_t from = src->delivered + 1, to = next - 1;
    if (counted)
        atomic_fetch_add(&self->node->counters.gaps, to - from + 1);
    if (s_request(self, src, from, to, false)) {
        src->repairing = true;
        return true;
    }
    if (counted)
        atomic_fetch_add(&self->node->counters.unrepaired, to - from + 1);
    src->delivered = to;
    return false;
}

static bool s_start(self_t *self, source_t *src, uint64_t next)
{
    return s_start_as(self, src, next, true);
}

static void s_drain(self_t *self, source_t *src);
static void s_drain_held(self_t *self, source_t *src);

void node_repair_live(self_t *self, source_t *src, const char *topic, size_t topic_len,
                      const weft_envelope_t *env, const zmq_msg_t *env_frame,
                      const void *payload, size_t size)
{
    const uint8_t *raw = zmq_msg_data((zmq_msg_t *)env_frame);
    size_t raw_size = zmq_msg_size(env_frame);
    uint64_t early_from = src->delivered == 0 && !src->repairing
                              ? s_early_from(self, src->inst, env->seq)
                              : 0;
    if (early_from) {
        /* A source first heard at seq N > 1 whose earlier events may be ours (s_early_from):
           fetch them, hold N back, and deliver each early event only to the subscriptions
           it belongs to (DISPATCH_EARLY). */
        src->delivered = early_from - 1;
        src->early_until = env->seq;
        s_hold(self, src, env->seq, topic, topic_len, raw, raw_size, payload, size);
        peer_t *pp = peers_lookup(self->peers, src->inst);
        if (!pp || !pp->ctl[0]) {
            /* Its events came before its heartbeat: wait for that (node_repair_heartbeat)
               to know where to fetch from, a few heartbeats at most (node_repair_tick). */
            src->repairing = true;
            src->awaiting_ms = node_mono_ms();
            src->await_next = env->seq;
            self->repair_awaiting++;
            return;
        }
        if (s_start_as(self, src, env->seq, false))
            return;
        s_drain(self, src);
        return;
    }
    if (!src->repairing && (src->delivered == 0 || env->seq == src->delivered + 1)) {
        src->delivered = env->seq; /* the first event of a source is where it starts */
        s_deliver(self, topic, topic_len, env, raw, raw_size, payload, size);
        return;
    }
    if (env->seq <= src->delivered)
        return; /* settled already (repaired) */
    if (src->repairing || env->seq > src->delivered + 1) {
        if (src->held && zlistx_size(src->held) >= HELD_MAX) {
            /* Overload: stop holding back; this source's order is not kept for a while. */
            s_deliver(self, topic, topic_len, env, raw, raw_size, payload, size);
            return;
        }
        s_hold(self, src, env->seq, topic, topic_len, raw, raw_size, payload, size);
        if (!src->repairing)
            s_start(self, src, env->seq);
    }
}

/*  A new source whose early events waited for its control endpoint: fetch them now, or
    (give_up) deliver what was held without them. */
static void s_awaited(self_t *self, source_t *src, bool give_up)
{
    src->awaiting_ms = 0;
    self->repair_awaiting--;
    src->repairing = false;
    if (give_up || !s_start_as(self, src, src->await_next, false)) {
        src->delivered = src->await_next - 1;
        s_drain(self, src);
    }
}

void node_repair_tick(self_t *self, int64_t now)
{
    if (self->repair_awaiting <= 0)
        return;
    int64_t limit = (int64_t)self->node->heartbeat_ms * self->node->down_beats;
    int awaiting = 0;
    for (source_t *src = zhashx_first(self->sources); src; src = zhashx_next(self->sources)) {
        if (src->awaiting_ms && now - src->awaiting_ms > limit)
            s_awaited(self, src, true);
        awaiting += src->awaiting_ms != 0;
    }
    /* Recounted: a source forgotten while it waited (sources silent for ten minutes are) does
       not keep this walk going forever. */
    self->repair_awaiting = awaiting;
}

void node_repair_peer_down(self_t *self, uint64_t inst)
{
    if (self->repair_subs <= 0)
        return;
    source_t *src = node_actor_source(self, inst);
    if (!src || src->delivered == 0)
        return; /* nothing of it delivered: nothing of it is ours to miss */
    if (src->repairing || (src->held && zlistx_size(src->held))) {
        src->tail_wanted = true; /* once the repair under way is settled (s_drain) */
        return;
    }
    src->tail_wanted = false;
    if (s_request(self, src, src->delivered + 1, src->delivered + TAIL_FETCH_MAX, true))
        src->repairing = true;
}

void node_repair_heartbeat(self_t *self, uint64_t inst, uint64_t seq)
{
    source_t *src = node_actor_source(self, inst);
    if (src && src->awaiting_ms) {
        s_awaited(self, src, false);
        return;
    }
    if (!src || src->delivered == 0)
        return; /* a source we never received from: nothing of it is ours to miss */
    if (!src->repairing && src->hb_seq > src->delivered &&
        (!src->held || zlistx_size(src->held) == 0))
        s_start(self, src, src->hb_seq + 1);
    src->hb_seq = seq;
}

/*  Delivers held events in order until the next jump (which starts the next repair); then
    asks for the tail of a source that went down meanwhile. */
static void s_drain(self_t *self, source_t *src)
{
    s_drain_held(self, src);
    if (src->tail_wanted && !src->repairing && (!src->held || zlistx_size(src->held) == 0))
        node_repair_peer_down(self, src->inst);
}

static void s_drain_held(self_t *self, source_t *src)
{
    while (src->held && zlistx_size(src->held) && !src->repairing) {
        held_t *h = zlistx_first(src->held);
        if (h->seq > src->delivered + 1 && s_start(self, src, h->seq))
            return;
        zlistx_detach(src->held, zlistx_cursor(src->held));
        if (h->seq > src->delivered) {
            const uint8_t *p = (const uint8_t *)(h + 1);
            weft_envelope_t env;
            if (weft_envelope_decode(&env, p + h->topic_size, h->envelope_size) == 0) {
                src->delivered = h->seq;
                s_deliver(self, (const char *)p, h->topic_size, &env, p + h->topic_size,
                          h->envelope_size, p + h->topic_size + h->envelope_size,
                          h->payload_size);
            }
        }
        free(h);
    }
}

void node_repair_handle(self_t *self, zmsg_t *msg)
{
    zmsg_first(msg); /* the id frame */
    zframe_t *kf = zmsg_next(msg);
    if (!kf || zframe_size(kf) != 1)
        return;
    char kind = (char)zframe_data(kf)[0];
    if (kind == 'R' && zmsg_size(msg) == 5) {
        zframe_t *t = zmsg_next(msg), *e = zmsg_next(msg), *p = zmsg_next(msg);
        weft_envelope_t env;
        if (weft_envelope_decode(&env, zframe_data(e), zframe_size(e)) != 0)
            return;
        source_t *src = node_actor_source(self, env.inst);
        if (!src || env.seq <= src->delivered)
            return;
        src->delivered = env.seq;
        bool early = env.seq < src->early_until;
        int calls = s_deliver_as(self, (const char *)zframe_data(t), zframe_size(t), &env,
                                 zframe_data(e), zframe_size(e), zframe_data(p), zframe_size(p),
                                 early ? DISPATCH_EARLY : DISPATCH_REPAIR);
        if (!early || calls > 0) /* an early event nobody wanted was never missing */
            atomic_fetch_add(&self->node->counters.repaired, 1);
    } else if (kind == 'D' && zmsg_size(msg) == 3) {
        zframe_t *d = zmsg_next(msg);
        if (zframe_size(d) != 5 * sizeof(uint64_t))
            return;
        uint64_t done[5];
        memcpy(done, zframe_data(d), sizeof(done));
        source_t *src = node_actor_source(self, done[0]);
        if (done[4] && done[2]) {
            /* A tail found only now: those events were missing all along. */
            atomic_fetch_add(&self->node->counters.gaps, done[2]);
            zsys_info("weft[%s]: %" PRIu64 " events of %016" PRIx64 " that went down were "
                      "fetched from an archive (never received)",
                      self->node->name, done[2], done[0]);
        }
        if (done[3]) {
            atomic_fetch_add(&self->node->counters.unrepaired, done[3]);
            zsys_warning("weft[%s]: %" PRIu64 " events of %016" PRIx64
                         " could not be repaired (no outbox or archive held them)",
                         self->node->name, done[3], done[0]);
        }
        if (!src)
            return;
        if (done[1] > src->delivered)
            src->delivered = done[1];
        src->repairing = false;
        src->early_until = 0;
        s_drain(self, src);
    }
}

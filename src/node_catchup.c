/*  node_catchup.c - subscriptions that start in the past: replay from an archiver, then
    continue live, without a gap or a duplicate (weft/node.h, weft_sub_options_t).

    A catching-up subscription runs one helper thread that replays from the archiver in two
    phases: first the history up to the archive's end as it is when asked (phase A), then a
    live replay that follows new commits (phase B). Each replayed event is sent to the node's
    thread over an inproc PUSH/PULL pair, where it is delivered to the handler if its seq is
    beyond what was already delivered from its source.

    Meanwhile live events for the subscription are buffered (bounded; when full the oldest
    are dropped, which only means the replay must go further). For each source in the buffer
    the first buffered seq is known; once phase A is over and, for every such source, the
    replay has delivered everything below that first seq, the buffer is drained (skipping what
    the replay already delivered) and the subscription is live: the helper thread stops.

        replay:   1 2 3 4 5 6 7 8             (archive order; per source in seq order)
        buffer:               6 7 8 9 10      (live, arrived while replaying)
        switch when delivered(src) >= first_buffered(src) - 1  ->  deliver 9 10, go live

    If no archiver answers, or the archive does not reach the live stream within the timeout,
    the subscription goes live with what it has and counts the seqs it never saw as gaps.
*/
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>

#include "mp_guard.h"
#include "node_actor.h"
#include "weft/archive.h"

#define CATCHUP_TIMEOUT_MS 10000
#define CATCHUP_BUFFER_EVENTS 100000
#define CATCHUP_BUFFER_BYTES (64u << 20)
#define FIND_ARCHIVER_MS 5000

/*  A buffered live event: [blob_t][topic][envelope][payload]. */
typedef struct {
    uint64_t inst, seq;
    uint32_t topic_size, envelope_size, payload_size;
} blob_t;

typedef struct {
    uint64_t delivered;    /* highest seq delivered to the handler */
    uint64_t first_live;   /* first seq in the live buffer, 0 when none */
} progress_t;

struct catchup_t {
    weft_node_t *node;
    uint64_t sub_id;
    char prefix[WEFT_TOPIC_MAX + 1];
    weft_start_t start;
    uint64_t from_offset;
    int64_t since_ns;
    char archiver[256];        /* service endpoint, once archiver_known */
    atomic_bool archiver_known;
    char push_endpoint[64];
    int timeout_ms;
    size_t buffer_max;
    pthread_t thread;
    bool thread_started;
    volatile int stop;
    zhashx_t *progress;        /* inst hex -> progress_t */
    zlistx_t *buffer;          /* blob_t* in arrival order */
    size_t buffer_bytes;
    uint64_t buffer_dropped;
    int unmet;                 /* sources whose replay has not reached their live stream */
    bool history_done;         /* phase A ended (or no archiver) */
    int64_t history_done_ms;
};

/* ---- the helper thread -------------------------------------------------------------------- */

typedef struct {
    catchup_t *c;
    void *push;
} thread_ctx_t;

/*  Sends [sub id][kind][topic][envelope][payload] to the node thread, patiently but
    interruptibly (the node applies backpressure when it is busy). */
static int s_send(thread_ctx_t *t, char kind, const weft_archived_t *ev)
{
    zmq_msg_t parts[5];
    zmq_msg_init_size(&parts[0], 8);
    memcpy(zmq_msg_data(&parts[0]), &t->c->sub_id, 8);
    zmq_msg_init_size(&parts[1], 1);
    *(char *)zmq_msg_data(&parts[1]) = kind;
    int n = 2;
    if (ev) {
        zmq_msg_init_size(&parts[2], ev->topic_size);
        memcpy(zmq_msg_data(&parts[2]), ev->topic, ev->topic_size);
        zmq_msg_init_size(&parts[3], ev->envelope_size);
        memcpy(zmq_msg_data(&parts[3]), ev->envelope, ev->envelope_size);
        zmq_msg_init_size(&parts[4], ev->payload_size);
        memcpy(zmq_msg_data(&parts[4]), ev->payload, ev->payload_size);
        n = 5;
    }
    int i = 0;
    while (i < n) {
        if (zmq_msg_send(&parts[i], t->push, i + 1 < n ? ZMQ_SNDMORE : 0) >= 0) {
            i++;
            continue;
        }
        if (zmq_errno() != EAGAIN || t->c->stop)
            break;
    }
    for (int j = i; j < n; j++)
        zmq_msg_close(&parts[j]);
    return i == n ? 0 : -1;
}

static int s_on_archived(const weft_archived_t *ev, void *arg)
{
    thread_ctx_t *t = arg;
    return s_send(t, 'E', ev) == 0 ? 0 : 1;
}

static void *s_thread(void *arg)
{
    catchup_t *c = arg;
    thread_ctx_t t = {c, zmq_socket(zsys_init(), ZMQ_PUSH)};
    int timeout = 100, linger = 0;
    zmq_setsockopt(t.push, ZMQ_SNDTIMEO, &timeout, sizeof(timeout));
    zmq_setsockopt(t.push, ZMQ_LINGER, &linger, sizeof(linger));
    zmq_connect(t.push, c->push_endpoint);
    /* The node's thread looks the archiver up (catchup_tick) and fills c->archiver; this
       thread never calls into the node's API, so stopping it can never deadlock. */
    int64_t deadline = zclock_mono() + FIND_ARCHIVER_MS;
    while (!c->stop && !atomic_load(&c->archiver_known) && zclock_mono() < deadline)
        zclock_sleep(20);
    char svc[256] = "";
    if (atomic_load(&c->archiver_known))
        snprintf(svc, sizeof(svc), "%s", c->archiver);
    if (!svc[0]) {
        s_send(&t, 'F', NULL); /* no archiver: go live */
        zmq_close(t.push);
        return NULL;
    }
    const char *prefixes[1] = {c->prefix};
    weft_replay_opts_t o = {0};
    if (c->start == WEFT_START_OFFSET)
        o.from_offset = c->from_offset;
    else
        o.since_ns = c->since_ns;
    o.prefixes = prefixes;
    o.nprefixes = c->prefix[0] ? 1 : 0;
    o.stop = &c->stop;
    weft_replay_totals_t tot;
    char err[256] = "";
    int rc = weft_replay(svc, &o, s_on_archived, &t, &tot, err, sizeof(err));
    if (rc != WEFT_OK && !c->stop)
        zsys_warning("weft[%s]: catching up '%s' from %s: %s %s", weft_node_name(c->node),
                     c->prefix, svc, weft_strerror(rc), err);
    s_send(&t, rc == WEFT_OK ? 'A' : 'F', NULL);
    if (rc == WEFT_OK && !c->stop) {
        /* Phase B: follow new commits until the node says the live stream is met. */
        memset(&o, 0, sizeof(o));
        o.from_offset = tot.next_offset ? tot.next_offset : 1;
        o.prefixes = prefixes;
        o.nprefixes = c->prefix[0] ? 1 : 0;
        o.live = true;
        o.stop = &c->stop;
        weft_replay(svc, &o, s_on_archived, &t, NULL, NULL, 0);
    }
    zmq_close(t.push);
    return NULL;
}

/* ---- node thread ---------------------------------------------------------------------------- */

static void s_find_archiver(self_t *self, catchup_t *c)
{
    weft_peer_info_t info;
    if (atomic_load(&c->archiver_known) ||
        !node_actor_find_peer(self, 0, "archiver", NULL, &info))
        return;
    snprintf(c->archiver, sizeof(c->archiver), "%s", info.svc[0] ? info.svc : info.ctl);
    atomic_store(&c->archiver_known, true);
}

static progress_t *s_progress(catchup_t *c, uint64_t inst, bool create)
{
    char key[17];
    snprintf(key, sizeof(key), "%016" PRIx64, inst);
    progress_t *p = zhashx_lookup(c->progress, key);
    if (!p && create) {
        p = calloc(1, sizeof(*p));
        assert(p);
        zhashx_insert(c->progress, key, p);
    }
    return p;
}

static bool s_met(const progress_t *p)
{
    return p->first_live == 0 || p->delivered + 1 >= p->first_live;
}

int catchup_start(self_t *self, weft_sub_t *sub, const weft_sub_options_t *options)
{
    if (sub->fabric)
        return WEFT_EINVAL;
    catchup_t *c = calloc(1, sizeof(*c));
    if (!c)
        return WEFT_ENOMEM;
    c->node = self->node;
    c->sub_id = sub->id;
    snprintf(c->prefix, sizeof(c->prefix), "%s", sub->prefix);
    c->start = options->start;
    c->from_offset = options->from_offset;
    c->since_ns = options->since_ns;
    if (options->archiver && *options->archiver) {
        snprintf(c->archiver, sizeof(c->archiver), "%s", options->archiver);
        atomic_store(&c->archiver_known, true);
    } else {
        s_find_archiver(self, c);
    }
    snprintf(c->push_endpoint, sizeof(c->push_endpoint), "%s", self->catchup_endpoint);
    c->timeout_ms = options->catchup_timeout_ms > 0 ? options->catchup_timeout_ms
                                                    : CATCHUP_TIMEOUT_MS;
    c->buffer_max = options->buffer_events ? options->buffer_events : CATCHUP_BUFFER_EVENTS;
    c->progress = zhashx_new();
    zhashx_set_destructor(c->progress, (zhashx_destructor_fn *)zstr_free);
    c->buffer = zlistx_new();
    zlistx_set_destructor(c->buffer, (zlistx_destructor_fn *)zstr_free);
    sub->catchup = c;
    if (pthread_create(&c->thread, NULL, s_thread, c) != 0) {
        catchup_stop(self, sub);
        return WEFT_ENOMEM;
    }
    c->thread_started = true;
    return WEFT_OK;
}

void catchup_stop(self_t *self, weft_sub_t *sub)
{
    (void)self;
    catchup_t *c = sub->catchup;
    if (!c)
        return;
    c->stop = 1;
    if (c->thread_started)
        pthread_join(c->thread, NULL);
    zhashx_destroy(&c->progress);
    zlistx_destroy(&c->buffer);
    free(c);
    sub->catchup = NULL;
}

/*  Recomputes first_live of every source after the buffer's head was dropped. */
static void s_recount(catchup_t *c)
{
    for (progress_t *p = zhashx_first(c->progress); p; p = zhashx_next(c->progress))
        p->first_live = 0;
    for (blob_t *b = zlistx_first(c->buffer); b; b = zlistx_next(c->buffer)) {
        progress_t *p = s_progress(c, b->inst, true);
        if (p->first_live == 0)
            p->first_live = b->seq;
    }
    c->unmet = 0;
    for (progress_t *p = zhashx_first(c->progress); p; p = zhashx_next(c->progress))
        c->unmet += !s_met(p);
}

void catchup_buffer(self_t *self, weft_sub_t *sub, const char *topic, size_t topic_len,
                    const weft_envelope_t *env, const uint8_t *envelope_raw,
                    size_t envelope_size, const void *payload, size_t size)
{
    (void)self;
    catchup_t *c = sub->catchup;
    size_t bytes = sizeof(blob_t) + topic_len + envelope_size + size;
    blob_t *b = malloc(bytes);
    if (!b)
        return;
    b->inst = env->inst;
    b->seq = env->seq;
    b->topic_size = (uint32_t)topic_len;
    b->envelope_size = (uint32_t)envelope_size;
    b->payload_size = (uint32_t)size;
    uint8_t *p = (uint8_t *)(b + 1);
    memcpy(p, topic, topic_len);
    memcpy(p + topic_len, envelope_raw, envelope_size);
    memcpy(p + topic_len + envelope_size, payload, size);
    zlistx_add_end(c->buffer, b);
    c->buffer_bytes += bytes;
    progress_t *pr = s_progress(c, b->inst, true);
    if (pr->first_live == 0) {
        pr->first_live = b->seq;
        c->unmet += !s_met(pr);
    }
    if (zlistx_size(c->buffer) > c->buffer_max || c->buffer_bytes > CATCHUP_BUFFER_BYTES) {
        /* Bounded: drop the oldest; the replay will have to bring them instead. */
        while (zlistx_size(c->buffer) > c->buffer_max / 2) {
            blob_t *old = zlistx_first(c->buffer);
            c->buffer_bytes -= sizeof(blob_t) + old->topic_size + old->envelope_size +
                               old->payload_size;
            zlistx_delete(c->buffer, zlistx_cursor(c->buffer));
            c->buffer_dropped++;
        }
        s_recount(c);
    }
}

/*  Delivers an event to the subscription if it is new for its source. */
static void s_deliver(self_t *self, weft_sub_t *sub, const char *topic, size_t topic_len,
                      const uint8_t *env_raw, size_t env_size, const void *payload, size_t size)
{
    catchup_t *c = sub->catchup;
    weft_envelope_t env;
    char topic_str[WEFT_TOPIC_MAX + 1];
    if (topic_len > WEFT_TOPIC_MAX || weft_topic_check(topic, topic_len) != 0 ||
        weft_envelope_decode(&env, env_raw, env_size) != 0 || env.seq == 0) {
        atomic_fetch_add(&self->node->counters.malformed, 1);
        return;
    }
    progress_t *p = s_progress(c, env.inst, true);
    /* A durable consumer knows exactly what it handled (node_durable.c), so an event below
       the highest one delivered - stored late by the archiver, after later ones - still goes
       to it; other subscriptions deliver each source in seq order. */
    if (env.seq <= p->delivered && !sub->durable)
        return; /* already delivered: from the replay, or the buffer */
    bool was_met = s_met(p);
    if (env.seq > p->delivered)
        p->delivered = env.seq;
    if (!was_met && s_met(p))
        c->unmet--;
    memcpy(topic_str, topic, topic_len);
    topic_str[topic_len] = 0;
    node_actor_call(self, sub, topic_str, &env, env_raw, env_size, payload, size);
}

/*  Drains the buffer and makes the subscription live. */
static void s_go_live(self_t *self, weft_sub_t *sub, const char *why)
{
    catchup_t *c = sub->catchup;
    uint64_t missing = 0;
    for (progress_t *p = zhashx_first(c->progress); p; p = zhashx_next(c->progress))
        if (!s_met(p))
            missing += p->first_live - p->delivered - 1;
    if (missing)
        atomic_fetch_add(&self->node->counters.gaps, missing);
    if (why)
        zsys_warning("weft[%s]: subscription '%s' goes live %s; %" PRIu64 " events not caught up",
                     weft_node_name(self->node), sub->prefix, why, missing);
    /* Detach first: events delivered below go through s_deliver's dedup only. */
    c->history_done = true;
    c->unmet = 0;
    for (blob_t *b = zlistx_first(c->buffer); b && !sub->dead; b = zlistx_next(c->buffer)) {
        const uint8_t *p = (const uint8_t *)(b + 1);
        s_deliver(self, sub, (const char *)p, b->topic_size, p + b->topic_size, b->envelope_size,
                  p + b->topic_size + b->envelope_size, b->payload_size);
        if (!sub->catchup)
            return; /* the handler unsubscribed */
    }
    catchup_stop(self, sub);
}

static void s_check(self_t *self, weft_sub_t *sub)
{
    catchup_t *c = sub->catchup;
    if (c && c->history_done && c->unmet == 0)
        s_go_live(self, sub, NULL);
}

void catchup_handle(self_t *self)
{
    zmsg_t *msg = zmsg_recv(self->catchup_in);
    if (!msg)
        return;
    zframe_t *idf = zmsg_first(msg), *kf = zmsg_next(msg);
    uint64_t id = 0;
    if (idf && zframe_size(idf) == 8)
        memcpy(&id, zframe_data(idf), 8);
    if (idf && zframe_size(idf) == 8 && id == 0) {
        node_repair_handle(self, msg); /* id 0: the repair thread */
        zmsg_destroy(&msg);
        return;
    }
    weft_sub_t *sub = id ? node_actor_sub_by_id(self, id) : NULL;
    if (!sub || !sub->catchup || !kf || zframe_size(kf) != 1) {
        zmsg_destroy(&msg); /* for a subscription that went live or away meanwhile */
        return;
    }
    catchup_t *c = sub->catchup;
    char kind = (char)zframe_data(kf)[0];
    if (kind == 'E' && zmsg_size(msg) == 5) {
        zframe_t *t = zmsg_next(msg), *e = zmsg_next(msg), *p = zmsg_next(msg);
        s_deliver(self, sub, (const char *)zframe_data(t), zframe_size(t), zframe_data(e),
                  zframe_size(e), zframe_data(p), zframe_size(p));
    } else if (kind == 'A') {
        c->history_done = true;
        c->history_done_ms = zclock_mono();
    } else if (kind == 'F') {
        s_go_live(self, sub, "without the archive (no archiver answered)");
    }
    zmsg_destroy(&msg);
    if (sub->catchup && !sub->dead)
        s_check(self, sub);
}

void catchup_tick(self_t *self, int64_t now)
{
    for (weft_sub_t *sub = zlistx_first(self->subs); sub; sub = zlistx_next(self->subs)) {
        catchup_t *c = sub->catchup;
        if (c && !sub->dead)
            s_find_archiver(self, c);
        if (c && !sub->dead && c->history_done && now - c->history_done_ms > c->timeout_ms) {
            s_go_live(self, sub, "after the catch-up timeout");
            break; /* the list may have changed; the next tick looks at the others */
        }
    }
}

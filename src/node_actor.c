/*  node_actor.c - the node's own thread: everything that receives or answers.

    One poll loop over: the actor pipe (commands from the API), the SUB socket (events), the
    control ROUTER (PING, INFO, FETCH, CREDIT, CANCEL), the XPUB monitor (connection
    handshakes), and the gossip actor (learned peers). Timers: heartbeat every
    heartbeat/interval; a housekeeping tick (peer liveness, XPUB subscription drain, readiness)
    several times per heartbeat. FETCH streams are pumped whenever their client has credit.

    Handlers run here, so a slow handler slows this node's receiving only; ZeroMQ's receive
    queue (net/rcvhwm) absorbs bursts and the sender drops beyond it.
*/
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>

#include "bind_util.h"
#include "ctl_proto.h"
#include "discovery.h"
#include "heartbeat.h"
#include "mp_guard.h"
#include "node_actor.h"
#include "node_internal.h"
#include "node_stats.h"
#include "peers.h"
#include "weft/control.h"

/* ---- logging of network-caused problems, rate-limited ------------------------------------- */

static void s_warn(self_t *self, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void s_warn(self_t *self, const char *fmt, ...)
{
    int64_t sec = zclock_mono() / 1000;
    if (sec != self->log_window) {
        if (self->log_suppressed)
            zsys_warning("weft[%s]: %" PRIu64 " similar messages suppressed", self->node->name,
                         self->log_suppressed);
        self->log_window = sec;
        self->log_budget = LOG_PER_SECOND;
        self->log_suppressed = 0;
    }
    if (self->log_budget <= 0) {
        self->log_suppressed++;
        return;
    }
    self->log_budget--;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    zsys_warning("weft[%s]: %s", self->node->name, line);
}

/* ---- subscriptions ------------------------------------------------------------------------ */

weft_sub_t *node_actor_subscribe(void *actor_self, const char *prefix, weft_handler_fn *handler,
                                 void *arg, const weft_sub_options_t *options, int *err)
{
    self_t *self = actor_self;
    weft_sub_t *sub = calloc(1, sizeof(*sub));
    if (!sub) {
        *err = WEFT_ENOMEM;
        return NULL;
    }
    snprintf(sub->prefix, sizeof(sub->prefix), "%s", prefix);
    sub->len = strlen(sub->prefix);
    /* Fabric events go only to prefixes that start with "_weft."; a shorter prefix such as
       "_" matches data topics only. */
    sub->fabric = weft_topic_is_fabric(sub->prefix, sub->len);
    sub->handler = handler;
    sub->arg = arg;
    sub->id = ++self->next_sub_id;
    node_dlq_sub_init(sub, options, self->node->name);
    sub->repair = options && (options->repair || options->consumer);
    weft_sub_options_t resumed;
    if (options && options->consumer && *options->consumer) {
        int64_t since = 0;
        int rc = node_durable_open(self, sub, options->consumer, &since);
        if (rc != WEFT_OK) {
            free(sub);
            *err = rc;
            return NULL;
        }
        if (since) { /* resume: catch up from the checkpoint */
            resumed = *options;
            resumed.start = WEFT_START_TIME;
            resumed.since_ns = since;
            options = &resumed;
        }
    }
    sub->start_ns = weft_now_ns();
    if (options && options->start == WEFT_START_TIME && options->since_ns > 0 &&
        options->since_ns < sub->start_ns)
        sub->start_ns = options->since_ns;
    if (sub->repair)
        self->repair_subs++;
    if (options && options->start != WEFT_START_LIVE) {
        int rc = catchup_start(self, sub, options);
        if (rc != WEFT_OK) {
            if (sub->repair)
                self->repair_subs--;
            node_durable_close(self, sub);
            free(sub);
            *err = rc;
            return NULL;
        }
    }
    zlistx_add_end(self->subs, sub);
    if (sub->len == 0)
        self->full_subs++;
    zsock_set_subscribe(self->sub, sub->prefix);
    *err = WEFT_OK;
    return sub;
}

int node_actor_unsubscribe(void *actor_self, weft_sub_t *sub)
{
    self_t *self = actor_self;
    if (!sub || sub->dead)
        return WEFT_EINVAL;
    /* During a dispatch the list's cursor is in use: mark now, remove in the sweep. zlistx_find
       would move the cursor, so it is used only outside dispatches. */
    void *handle = self->dispatching ? NULL : zlistx_find(self->subs, sub);
    if (!self->dispatching && !handle)
        return WEFT_EINVAL;
    zsock_set_unsubscribe(self->sub, sub->prefix);
    if (sub->len == 0)
        self->full_subs--;
    if (sub->repair)
        self->repair_subs--;
    catchup_stop(self, sub);
    node_durable_close(self, sub);
    if (self->dispatching) {
        sub->dead = true;
        self->sweep = true;
    } else {
        zlistx_delete(self->subs, handle);
        free(sub);
    }
    return WEFT_OK;
}

static void s_sweep(self_t *self)
{
    weft_sub_t *sub = zlistx_first(self->subs);
    while (sub) {
        void *handle = zlistx_cursor(self->subs);
        weft_sub_t *next = zlistx_next(self->subs);
        if (sub->dead) {
            zlistx_delete(self->subs, handle);
            free(sub);
        }
        sub = next;
    }
    self->sweep = false;
}

int node_actor_invoke(self_t *self, weft_sub_t *sub, const char *topic,
                      const weft_envelope_t *env, const uint8_t *envelope_raw,
                      size_t envelope_size, const void *payload, size_t size, char *code,
                      size_t code_cap, char *message, size_t message_cap)
{
    weft_event_t ev;
    ev.topic = topic;
    ev.env = env;
    ev.payload = payload;
    ev.size = size;
    ev.envelope_raw = envelope_raw;
    ev.envelope_size = envelope_size;
    ev.error_code[0] = ev.error_message[0] = 0;
    bool nested = self->dispatching;
    self->dispatching = true;
    int rc = sub->handler(&ev, sub->arg);
    self->dispatching = nested;
    atomic_fetch_add(&self->node->counters.delivered, 1);
    if (rc != 0) {
        atomic_fetch_add(&self->node->counters.handler_errors, 1);
        if (!ev.error_code[0])
            snprintf(ev.error_code, sizeof(ev.error_code), "handler.failed");
        s_warn(self, "handler '%s' failed on %s seq %" PRIu64 " (attempt %u): %s %s", sub->name,
               topic, env->seq, env->retry + 1, ev.error_code, ev.error_message);
    }
    if (code)
        snprintf(code, code_cap, "%s", ev.error_code);
    if (message)
        snprintf(message, message_cap, "%s", ev.error_message);
    if (!nested && self->sweep)
        s_sweep(self);
    return rc;
}

void node_actor_call(self_t *self, weft_sub_t *sub, const char *topic,
                     const weft_envelope_t *env, const uint8_t *envelope_raw,
                     size_t envelope_size, const void *payload, size_t size)
{
    size_t tlen = strlen(topic);
    if (sub->durable && node_durable_seen(sub, env))
        return; /* handled before (this run or an earlier one) */
    bool settled;
    if (!node_dlq_breaker_allows(self, sub, node_mono_ms())) {
        settled = node_dlq_outcome(self, sub, false, 0, topic, tlen, envelope_raw, envelope_size,
                                   payload, size, "weft.breaker_open",
                                   "circuit breaker open: not called");
    } else {
        char code[64], message[256];
        int rc = node_actor_invoke(self, sub, topic, env, envelope_raw, envelope_size, payload,
                                   size, code, sizeof(code), message, sizeof(message));
        if (sub->dead)
            return;
        settled = node_dlq_outcome(self, sub, rc == 0, env->retry + 1, topic, tlen, envelope_raw,
                                   envelope_size, payload, size, code, message);
    }
    if (settled && sub->durable)
        node_durable_record(sub, env);
}

weft_sub_t *node_actor_sub_by_id(self_t *self, uint64_t id)
{
    for (weft_sub_t *sub = zlistx_first(self->subs); sub; sub = zlistx_next(self->subs))
        if (sub->id == id && !sub->dead)
            return sub;
    return NULL;
}

/*  Calls every live subscription of class `which` that matches topic. Returns the number of
    subscriptions the event went to (handled, or buffered by one still catching up). */
int node_actor_dispatch(self_t *self, const char *topic, size_t topic_len, bool fabric,
                        const weft_envelope_t *env, const uint8_t *raw, size_t raw_size,
                        const void *payload, size_t size, int which)
{
    int calls = 0;
    bool nested = self->dispatching;
    self->dispatching = true;
    for (weft_sub_t *sub = zlistx_first(self->subs); sub; sub = zlistx_next(self->subs)) {
        if (sub->dead || sub->fabric != fabric || sub->len > topic_len ||
            memcmp(sub->prefix, topic, sub->len) != 0 ||
            (which == DISPATCH_PLAIN && sub->repair) || (which >= DISPATCH_REPAIR && !sub->repair))
            continue;
        if (which == DISPATCH_EARLY && env->ts < sub->start_ns &&
            !(sub->durable && node_durable_mark(sub, env->inst, NULL)))
            continue; /* published before it existed, by a source it never followed */
        /* Handlers may subscribe (added at the end) or unsubscribe (deferred to the sweep)
           while this loop runs; neither moves the list's cursor. */
        if (sub->catchup)
            catchup_buffer(self, sub, topic, topic_len, env, raw, raw_size, payload, size);
        else
            node_actor_call(self, sub, topic, env, raw, raw_size, payload, size);
        self->dispatching = true;
        calls++;
    }
    self->dispatching = nested;
    if (!nested && self->sweep)
        s_sweep(self);
    return calls;
}

static int s_dispatch(self_t *self, const char *topic, size_t topic_len, bool fabric,
                      const weft_envelope_t *env, const zmq_msg_t *env_frame, const void *payload,
                      size_t size, int which)
{
    return node_actor_dispatch(self, topic, topic_len, fabric, env,
                               zmq_msg_data((zmq_msg_t *)env_frame), zmq_msg_size(env_frame),
                               payload, size, which);
}

/* ---- peers --------------------------------------------------------------------------------- */

static void s_update_readiness(self_t *self);

void node_actor_peer_connect(self_t *self, peer_t *p)
{
    if (p->connected || !p->sub[0] || p->inst == self->node->inst)
        return;
    if (peers_endpoint_ref(self->peers, p->sub) && node_pub_connect(self->node, p->sub) != 0) {
        s_warn(self, "cannot connect to %s (%s)", p->sub, p->name);
        peers_endpoint_unref(self->peers, p->sub);
        return;
    }
    p->connected = true;
    atomic_store(&self->node->readiness.last_learned_ms, node_mono_ms());
    s_update_readiness(self);
    if (self->node->verbose)
        zsys_info("weft[%s]: connected to %s (%s, %s)", self->node->name, p->name, p->role,
                  p->sub);
}

void node_actor_peer_disconnect(self_t *self, peer_t *p)
{
    if (!p->connected)
        return;
    if (peers_endpoint_unref(self->peers, p->sub))
        node_pub_disconnect(self->node, p->sub);
    p->connected = false;
}

static void s_handle_gossip(self_t *self)
{
    char *key = NULL, *value = NULL;
    if (discovery_recv(self->discovery, &key, &value) == 0) {
        uint64_t inst;
        char fabric[PEERS_FABRIC_CAP], name[WEFT_NAME_MAX + 1], role[32], sub[256], ctl[256],
            svc[256];
        int rc = peers_tuple_parse(key, value, &inst, fabric, name, role, sub, ctl, svc);
        if (rc == 0 && strcmp(fabric, self->node->fabric) != 0) {
            /* A node of another fabric announced through a seed we share: not a peer. */
            atomic_fetch_add(&self->node->counters.foreign, 1);
        } else if (rc == 0 && inst != self->node->inst) {
            atomic_store(&self->node->readiness.gossip_heard, true);
            bool is_new;
            peer_t *p = peers_learn(self->peers, inst, name, role, sub, ctl, svc,
                                    node_mono_ms(), &is_new);
            if (p)
                node_actor_peer_connect(self, p);
        }
    }
    zstr_free(&key);
    zstr_free(&value);
}

static source_t *s_source_lookup(self_t *self, uint64_t inst, int64_t now);

/*  A heartbeat of another fabric's node reached our SUB socket: its publisher is connected to
    us, because it once knew a peer of its own fabric at our endpoint (ports are reused). Its
    events are dropped from now on (the source is marked foreign), and if our publisher is
    connected to its endpoint for the same reason - a record of ours that lived there - that
    record goes, so that our events stop reaching it. It does the same on our heartbeat. */
static void s_foreign_heartbeat(self_t *self, const heartbeat_info_t *hb)
{
    weft_node_t *node = self->node;
    atomic_fetch_add(&node->counters.foreign, 1);
    source_t *src = s_source_lookup(self, hb->inst, node_mono_ms());
    if (src && !src->foreign) {
        src->foreign = true;
        zsys_warning("weft[%s]: ignoring node %s (%016" PRIx64 ") of fabric '%s' (this node is "
                     "of fabric '%s'); its events are dropped",
                     node->name, hb->name, hb->inst, hb->fabric, node->fabric);
    }
    uint64_t stale[16];
    int nstale = 0;
    for (peer_t *p = peers_first(self->peers); p && nstale < 16; p = peers_next(self->peers))
        if (p->inst != hb->inst && hb->sub[0] && strcmp(p->sub, hb->sub) == 0)
            stale[nstale++] = p->inst;
    for (int i = 0; i < nstale; i++) {
        peer_t *p = peers_lookup(self->peers, stale[i]);
        node_actor_peer_disconnect(self, p);
        peers_forget(self->peers, stale[i]);
    }
}

/*  Learns from a heartbeat. Returns false when it comes from another fabric (then it is not
    passed on to the node's own subscriptions either). */
static bool s_handle_heartbeat(self_t *self, const weft_envelope_t *env, const void *payload,
                               size_t size)
{
    heartbeat_info_t hb;
    if (heartbeat_read(payload, size, &hb) != 0 || hb.inst != env->inst) {
        atomic_fetch_add(&self->node->counters.malformed, 1);
        s_warn(self, "malformed heartbeat from %s", env->src);
        return false;
    }
    if (hb.inst == self->node->inst)
        return true;
    if (strcmp(hb.fabric, self->node->fabric) != 0) {
        s_foreign_heartbeat(self, &hb);
        return false;
    }
    bool is_new;
    int64_t now = node_mono_ms();
    peer_t *p = peers_learn(self->peers, hb.inst, hb.name, hb.role, hb.sub, hb.ctl, hb.svc, now,
                            &is_new);
    if (!p)
        return true;
    if (p->state == PEER_DOWN)
        zsys_info("weft[%s]: peer %s (%016" PRIx64 ") is up again", self->node->name, p->name,
                  p->inst);
    p->state = PEER_UP;
    p->last_hb_ms = now;
    node_actor_peer_connect(self, p);
    if (self->repair_subs > 0)
        node_repair_heartbeat(self, hb.inst, hb.seq);
    return true;
}

/*  Readiness for weft_node_wait_peers: a peer endpoint is ready when its connection completed
    the handshake and its subscriptions arrived (every node subscribes "_weft.hb", so the XPUB
    sees one such subscription per connected peer). */
static void s_update_readiness(self_t *self)
{
    weft_node_t *node = self->node;
    int waiting, handshaked;
    bool self_done;
    peers_endpoint_counts(self->peers, node->loopback ? node->sub_endpoint : NULL, &waiting,
                          &handshaked, &self_done);
    int64_t subs = (int64_t)node_pub_drain_subscriptions(node) - (self_done ? 1 : 0);
    int ready = handshaked < subs ? handshaked : (int)(subs > 0 ? subs : 0);
    atomic_store(&node->readiness.known, waiting);
    atomic_store(&node->readiness.ready, ready);
    atomic_store(&node->readiness.self_ready, !node->loopback || self_done);
}

/*  Liveness: a peer is down (and disconnected) after down_beats heartbeats of silence, and
    forgotten after disconnect_after ms; meanwhile it is probed (node_probe.c). Publishes
    counts and readiness for the API. */
static void s_peers_tick(self_t *self, int64_t now)
{
    weft_node_t *node = self->node;
    int64_t down_after = (int64_t)node->heartbeat_ms * node->down_beats;
    uint32_t up = 0, down = 0;
    uint64_t forget[64];
    int nforget = 0;
    for (peer_t *p = peers_first(self->peers); p; p = peers_next(self->peers)) {
        int64_t heard = p->last_hb_ms ? p->last_hb_ms : p->learned_ms;
        if (now - heard > down_after && p->state != PEER_DOWN) {
            if (p->state == PEER_UP || node->verbose)
                zsys_info("weft[%s]: peer %s (%016" PRIx64 ") is down: silent for %" PRId64
                          " ms",
                          node->name, p->name, p->inst, now - heard);
            p->state = PEER_DOWN;
            /* Stop reconnecting at once: its port may soon belong to some other process
               (another fabric's node), which must not start receiving our events. If the
               peer is only slow, its next heartbeat connects us again. */
            node_actor_peer_disconnect(self, p);
            node_repair_peer_down(self, p->inst);
        }
        if (p->state == PEER_DOWN && now - heard > node->disconnect_after_ms && nforget < 64)
            forget[nforget++] = p->inst;
        up += p->state == PEER_UP;
        down += p->state == PEER_DOWN;
    }
    for (int i = 0; i < nforget; i++) {
        peer_t *p = peers_lookup(self->peers, forget[i]);
        node_actor_peer_disconnect(self, p);
        peers_forget(self->peers, forget[i]);
    }
    atomic_store(&node->counters.peers_up, up);
    atomic_store(&node->counters.peers_down, down);
    node_probe_tick(self, now);

    s_update_readiness(self);
}

static void s_handle_monitor(self_t *self)
{
    zmsg_t *msg = zmsg_recv(self->monitor);
    if (!msg)
        return;
    zframe_t *ev = zmsg_first(msg);
    char *endpoint = NULL;
    if (ev && zframe_size(ev) >= 2) {
        uint16_t event;
        memcpy(&event, zframe_data(ev), 2);
        zframe_t *addr = zmsg_next(msg);
        endpoint = addr ? zframe_strdup(addr) : NULL;
        if (endpoint && event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED)
            peers_endpoint_handshake(self->peers, endpoint, true);
        else if (endpoint && event == ZMQ_EVENT_DISCONNECTED) {
            peers_endpoint_handshake(self->peers, endpoint, false);
            /* Do not let ZeroMQ reconnect to a learned peer's endpoint on its own: whatever
               listens there next may be another process. If the peer is still alive, its next
               heartbeat (its publisher reconnects to us) connects us again. Static peers keep
               ZeroMQ's reconnection. */
            for (peer_t *p = peers_first(self->peers); p; p = peers_next(self->peers))
                if (p->connected && strcmp(p->sub, endpoint) == 0)
                    node_actor_peer_disconnect(self, p);
        }
        else if (endpoint && event == ZMQ_EVENT_CONNECT_RETRIED)
            peers_endpoint_refused(self->peers, endpoint);
    }
    zstr_free(&endpoint);
    zmsg_destroy(&msg);
    /* A handshake changes readiness: recompute now rather than at the next tick. */
    s_update_readiness(self);
}

/* ---- receiving events --------------------------------------------------------------------- */

static source_t *s_source_lookup(self_t *self, uint64_t inst, int64_t now);

static void s_source_destroy(source_t **src_p)
{
    if (!src_p || !*src_p)
        return;
    node_repair_source_free(*src_p);
    free(*src_p);
    *src_p = NULL;
}

static source_t *s_source(self_t *self, uint64_t inst, int64_t now)
{
    /* Events come in runs from one source: a one-entry cache saves the hex key and the hash
       look-up on most events. */
    if (self->last_source && self->last_source->inst == inst)
        return self->last_source;
    self->last_source = s_source_lookup(self, inst, now);
    return self->last_source;
}

source_t *node_actor_source(self_t *self, uint64_t inst)
{
    char key[17];
    snprintf(key, sizeof(key), "%016" PRIx64, inst);
    return zhashx_lookup(self->sources, key);
}

static source_t *s_source_lookup(self_t *self, uint64_t inst, int64_t now)
{
    char key[17];
    snprintf(key, sizeof(key), "%016" PRIx64, inst);
    source_t *src = zhashx_lookup(self->sources, key);
    if (src)
        return src;
    if (zhashx_size(self->sources) >= SOURCES_MAX) {
        /* Forget sources silent for ten minutes; if none, stop tracking new ones. */
        zlistx_t *keys = zhashx_keys(self->sources);
        for (char *k = zlistx_first(keys); k; k = zlistx_next(keys)) {
            source_t *s = zhashx_lookup(self->sources, k);
            if (now - s->last_ms > 600000) {
                if (s == self->last_source)
                    self->last_source = NULL;
                zhashx_delete(self->sources, k);
            }
        }
        zlistx_destroy(&keys);
        if (zhashx_size(self->sources) >= SOURCES_MAX)
            return NULL;
    }
    src = calloc(1, sizeof(*src));
    assert(src);
    src->inst = inst;
    zhashx_insert(self->sources, key, src);
    return src;
}

/*  Reads the rest of a message whose first frames were already rejected. */
static void s_skip_parts(void *sock, zmq_msg_t *part)
{
    while (zmq_msg_more(part)) {
        if (zmq_msg_recv(part, sock, ZMQ_DONTWAIT) < 0)
            break;
    }
}

/*  Receives and handles one message from the SUB socket. Returns false when nothing was
    waiting. Every malformed message is counted and logged, never trusted. */
static bool s_recv_one(self_t *self)
{
    weft_node_t *node = self->node;
    void *sock = zsock_resolve(self->sub);
    zmq_msg_t topic, envf, payload;
    zmq_msg_init(&topic);
    if (zmq_msg_recv(&topic, sock, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&topic);
        return false;
    }
    zmq_msg_init(&envf);
    zmq_msg_init(&payload);
    const char *why = NULL;
    bool got_env = false, got_payload = false;
    if (!zmq_msg_more(&topic))
        why = "1 frame, 3 expected";
    else if (zmq_msg_recv(&envf, sock, ZMQ_DONTWAIT) < 0)
        why = "truncated message";
    else if ((got_env = true) && !zmq_msg_more(&envf))
        why = "2 frames, 3 expected";
    else if (zmq_msg_recv(&payload, sock, ZMQ_DONTWAIT) < 0)
        why = "truncated message";
    else if ((got_payload = true) && zmq_msg_more(&payload)) {
        why = "more than 3 frames";
        s_skip_parts(sock, &payload);
    }
    (void)got_env;
    (void)got_payload;
    char topic_str[WEFT_TOPIC_MAX + 1];
    size_t tlen = zmq_msg_size(&topic);
    weft_envelope_t env;
    int rc = 0;
    if (!why && weft_topic_check(zmq_msg_data(&topic), tlen) != WEFT_OK)
        why = "bad topic frame";
    if (!why && (rc = weft_envelope_decode(&env, zmq_msg_data(&envf), zmq_msg_size(&envf))) != 0)
        why = rc == WEFT_EVERSION ? "unsupported envelope version" : "malformed envelope";
    if (!why && zmq_msg_size(&payload) > node->max_payload)
        why = "payload larger than max_payload";
    if (why) {
        atomic_fetch_add(&node->counters.malformed, 1);
        s_warn(self, "dropped a malformed message on the SUB socket: %s", why);
        goto done;
    }
    memcpy(topic_str, zmq_msg_data(&topic), tlen);
    topic_str[tlen] = 0;
    if (weft_topic_is_fabric(topic_str, tlen)) {
        if (strcmp(topic_str, "_weft.hb") == 0) {
            if (!s_handle_heartbeat(self, &env, zmq_msg_data(&payload), zmq_msg_size(&payload)))
                goto done;
        } else {
            source_t *fs = node_actor_source(self, env.inst);
            if (fs && fs->foreign) {
                atomic_fetch_add(&node->counters.foreign, 1);
                goto done;
            }
        }
        s_dispatch(self, topic_str, tlen, true, &env, &envf, zmq_msg_data(&payload),
                   zmq_msg_size(&payload), DISPATCH_ALL);
        goto done;
    }
    if (env.seq == 0) {
        atomic_fetch_add(&node->counters.malformed, 1);
        s_warn(self, "dropped a data event with seq 0 from %s", env.src);
        goto done;
    }
    int64_t now = node_mono_ms();
    source_t *src = s_source(self, env.inst, now);
    if (src && src->foreign) {
        atomic_fetch_add(&node->counters.foreign, 1);
        goto done;
    }
    atomic_fetch_add(&node->counters.received, 1);
    if (src) {
        if (src->last_seq && env.seq <= src->last_seq) {
            atomic_fetch_add(&node->counters.dropped, 1); /* duplicate or replayed: once only */
            goto done;
        }
        /* A jump in seq is a loss only when this node subscribes to every data topic; with
           prefix subscriptions the sender filtered the events in between. */
        if (src->last_seq && env.seq > src->last_seq + 1 && self->full_subs > 0 &&
            self->repair_subs == 0) { /* with repair on, node_repair.c counts them */
            atomic_fetch_add(&node->counters.gaps, env.seq - src->last_seq - 1);
            src->gaps += env.seq - src->last_seq - 1;
        }
        src->last_seq = env.seq;
        src->last_ms = now;
        src->last_ts = env.ts;
        if (!src->name[0])
            snprintf(src->name, sizeof(src->name), "%s", env.src);
    }
    topic_table_add(self->recv_topics, topic_str, zmq_msg_size(&payload));
    latency_hist_add(&self->latency, weft_now_ns() - env.ts);
    int got = 0;
    if (self->repair_subs > 0 && src) {
        got = s_dispatch(self, topic_str, tlen, false, &env, &envf, zmq_msg_data(&payload),
                         zmq_msg_size(&payload), DISPATCH_PLAIN);
        node_repair_live(self, src, topic_str, tlen, &env, &envf, zmq_msg_data(&payload),
                         zmq_msg_size(&payload));
        got++;
    } else {
        got = s_dispatch(self, topic_str, tlen, false, &env, &envf, zmq_msg_data(&payload),
                         zmq_msg_size(&payload), DISPATCH_ALL);
    }
    if (got == 0)
        atomic_fetch_add(&node->counters.dropped, 1); /* no subscription (any more) */
done:
    zmq_msg_close(&topic);
    zmq_msg_close(&envf);
    zmq_msg_close(&payload);
    return true;
}

/* ---- control requests ---------------------------------------------------------------------- */

#define FETCH_PREFIXES_MAX 64

typedef struct {
    weft_node_t *node;
    uint64_t next;       /* next seq to send */
    uint64_t to;         /* last seq to send */
    uint64_t sent;
    uint64_t missing;    /* seqs in the range that were evicted before they could be sent */
    size_t nprefixes;    /* only topics with one of these prefixes (0: all) */
    char *prefixes[FETCH_PREFIXES_MAX];
} fetch_state_t;

static void s_fetch_free(void *arg)
{
    fetch_state_t *fs = arg;
    for (size_t i = 0; i < fs->nprefixes; i++)
        free(fs->prefixes[i]);
    free(fs);
}

static bool s_fetch_wants(const fetch_state_t *fs, const char *topic, size_t len)
{
    if (fs->nprefixes == 0)
        return true;
    for (size_t i = 0; i < fs->nprefixes; i++) {
        size_t n = strlen(fs->prefixes[i]);
        if (n <= len && memcmp(fs->prefixes[i], topic, n) == 0)
            return true;
    }
    return false;
}

static size_t s_fetch_fill(void *state, msgpack_packer *pk, size_t max_events, size_t max_bytes,
                           bool *done)
{
    fetch_state_t *fs = state;
    size_t n = 0, bytes = 0;
    pthread_mutex_lock(&fs->node->pub_lock);
    uint64_t first, last;
    outbox_range(fs->node->outbox, &first, &last);
    if (fs->next < first) {
        uint64_t skip = (first < fs->to + 1 ? first : fs->to + 1) - fs->next;
        fs->missing += skip;
        fs->next += skip;
    }
    while (fs->next <= fs->to && n < max_events && bytes < max_bytes) {
        outbox_event_t ev;
        if (outbox_get(fs->node->outbox, fs->next, &ev) != 0) {
            /* Not held (evicted meanwhile, or too big for the outbox): count it and go on,
               so the stream always ends. */
            fs->missing++;
            fs->next++;
            continue;
        }
        if (!s_fetch_wants(fs, ev.topic, ev.topic_size)) {
            fs->next++;
            continue;
        }
        ctl_pack_event(pk, ev.topic, ev.topic_size, ev.envelope, ev.envelope_size, ev.payload,
                       ev.payload_size);
        bytes += ev.topic_size + ev.envelope_size + ev.payload_size;
        n++;
        fs->next++;
    }
    pthread_mutex_unlock(&fs->node->pub_lock);
    fs->sent += n;
    *done = fs->next > fs->to;
    return n;
}

static void s_fetch_end(void *state, msgpack_packer *pk, bool cancelled)
{
    fetch_state_t *fs = state;
    uint64_t first, last;
    pthread_mutex_lock(&fs->node->pub_lock);
    outbox_range(fs->node->outbox, &first, &last);
    pthread_mutex_unlock(&fs->node->pub_lock);
    msgpack_pack_map(pk, 5);
    ctl_pack_kv_uint(pk, "sent", fs->sent);
    ctl_pack_kv_uint(pk, "missing", fs->missing);
    ctl_pack_kv_uint(pk, "held_from", first);
    ctl_pack_kv_uint(pk, "held_to", last);
    ctl_pack_str(pk, "cancelled");
    if (cancelled)
        msgpack_pack_true(pk);
    else
        msgpack_pack_false(pk);
}

static void s_err_held(self_t *self, ctl_request_t *req, const char *code, uint64_t first,
                       uint64_t last, const char *message)
{
    msgpack_sbuffer_clear(&self->scratch);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &self->scratch, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 4);
    ctl_pack_kv_str(&pk, "code", code);
    ctl_pack_kv_str(&pk, "message", message);
    ctl_pack_kv_uint(&pk, "held_from", first);
    ctl_pack_kv_uint(&pk, "held_to", last);
    ctl_reply(self->ctl, req->routing, "ERR", req->request_id, self->scratch.data,
              self->scratch.size);
    atomic_fetch_add(&self->node->counters.ctl_errors, 1);
}

static void s_handle_fetch(self_t *self, ctl_request_t *req)
{
    weft_node_t *node = self->node;
    uint64_t inst = 0, from = 0, to = UINT64_MAX, credit = 8;
    if (ctl_arg_uint(req->args, "inst", &inst) != 0 ||
        ctl_arg_uint(req->args, "from_seq", &from) != 0 ||
        ctl_arg_uint(req->args, "to_seq", &to) < 0 || ctl_arg_uint(req->args, "credit", &credit) < 0 ||
        from == 0 || from > to) {
        atomic_fetch_add(&node->counters.ctl_errors, 1);
        ctl_reply_err(self->ctl, req->routing, req->request_id, "bad_request",
                      "FETCH needs {inst: uint, from_seq: uint >= 1, to_seq: uint >= from_seq "
                      "(optional), credit: uint (optional)}");
        return;
    }
    uint64_t first, last;
    pthread_mutex_lock(&node->pub_lock);
    outbox_range(node->outbox, &first, &last);
    uint64_t published = node->seq;
    pthread_mutex_unlock(&node->pub_lock);
    char msg[256];
    if (inst != node->inst) {
        snprintf(msg, sizeof(msg), "instance %016" PRIx64 " is not this node's (%016" PRIx64 ")",
                 inst, node->inst);
        s_err_held(self, req, "not_found", first, last, msg);
        return;
    }
    if (from > published) {
        snprintf(msg, sizeof(msg), "from_seq %" PRIu64 " is beyond the last published seq %" PRIu64,
                 from, published);
        s_err_held(self, req, "not_found", first, last, msg);
        return;
    }
    if (to > published)
        to = published;
    if (first == 0 || to < first) {
        snprintf(msg, sizeof(msg),
                 "seq %" PRIu64 "..%" PRIu64 " no longer held: the outbox holds %" PRIu64
                 "..%" PRIu64,
                 from, to, first, last);
        s_err_held(self, req, "gone", first, last, msg);
        return;
    }
    fetch_state_t *fs = calloc(1, sizeof(*fs));
    fs->node = node;
    fs->next = from;
    fs->to = to;
    const msgpack_object *pv = ctl_arg(req->args, "prefixes");
    if (pv) {
        bool ok = pv->type == MSGPACK_OBJECT_ARRAY && pv->via.array.size <= FETCH_PREFIXES_MAX;
        for (uint32_t i = 0; ok && i < pv->via.array.size; i++) {
            const msgpack_object *e = &pv->via.array.ptr[i];
            ok = e->type == MSGPACK_OBJECT_STR && e->via.str.size <= WEFT_TOPIC_MAX;
            if (ok)
                fs->prefixes[fs->nprefixes++] = strndup(e->via.str.ptr, e->via.str.size);
        }
        if (!ok) {
            s_fetch_free(fs);
            atomic_fetch_add(&node->counters.ctl_errors, 1);
            ctl_reply_err(self->ctl, req->routing, req->request_id, "bad_request",
                          "FETCH prefixes must be an array of at most %d strings",
                          FETCH_PREFIXES_MAX);
            return;
        }
    }
    if (credit == 0)
        credit = 1;
    if (ctl_streams_add(self->streams, req, credit > 1024 ? 1024 : (uint32_t)credit, s_fetch_fill,
                        s_fetch_end, fs, s_fetch_free) != 0) {
        atomic_fetch_add(&node->counters.ctl_errors, 1);
        ctl_reply_err(self->ctl, req->routing, req->request_id, "busy",
                      "too many streams open (%d); retry later", CTL_STREAMS_MAX);
    }
}

static void s_pack_info(self_t *self, msgpack_packer *pk)
{
    weft_node_t *node = self->node;
    weft_stats_t st;
    weft_node_stats(node, &st);
    msgpack_pack_map(pk, 13);
    ctl_pack_kv_str(pk, "name", node->name);
    ctl_pack_kv_str(pk, "role", node->role);
    ctl_pack_kv_uint(pk, "inst", node->inst);
    ctl_pack_kv_str(pk, "version", "0.1.0");
    ctl_pack_kv_str(pk, "protocol", WEFT_CTL_PROTOCOL);
    ctl_pack_kv_uint(pk, "uptime_ms", (uint64_t)(zclock_time() - node->started_ms));
    ctl_pack_kv_str(pk, "sub", node->sub_endpoint);
    ctl_pack_kv_str(pk, "ctl", node->ctl_endpoint);
    ctl_pack_kv_str(pk, "gossip", node->gossip_endpoint);
    ctl_pack_kv_uint(pk, "seq", st.last_seq);
    ctl_pack_str(pk, "outbox");
    msgpack_pack_map(pk, 4);
    ctl_pack_kv_uint(pk, "events", st.outbox_events);
    ctl_pack_kv_uint(pk, "bytes", st.outbox_bytes);
    ctl_pack_kv_uint(pk, "first_seq", st.outbox_first_seq);
    ctl_pack_kv_uint(pk, "last_seq",
                     st.outbox_events ? st.outbox_first_seq + st.outbox_events - 1 : 0);
    ctl_pack_str(pk, "counters");
    msgpack_pack_map(pk, 12);
    ctl_pack_kv_uint(pk, "published", st.published);
    ctl_pack_kv_uint(pk, "publish_errors", st.publish_errors);
    ctl_pack_kv_uint(pk, "received", st.received);
    ctl_pack_kv_uint(pk, "delivered", st.delivered);
    ctl_pack_kv_uint(pk, "dropped", st.dropped);
    ctl_pack_kv_uint(pk, "gaps", st.gaps);
    ctl_pack_kv_uint(pk, "repaired", st.repaired);
    ctl_pack_kv_uint(pk, "handler_errors", st.handler_errors);
    ctl_pack_kv_uint(pk, "dead_lettered", st.dead_lettered);
    ctl_pack_kv_uint(pk, "malformed", st.malformed);
    ctl_pack_kv_uint(pk, "ctl_requests", st.ctl_requests);
    ctl_pack_kv_uint(pk, "ctl_errors", st.ctl_errors);
    ctl_pack_str(pk, "peers");
    int64_t now = node_mono_ms();
    msgpack_pack_array(pk, (uint32_t)peers_size(self->peers));
    for (peer_t *p = peers_first(self->peers); p; p = peers_next(self->peers)) {
        msgpack_pack_map(pk, 7);
        ctl_pack_kv_str(pk, "name", p->name);
        ctl_pack_kv_str(pk, "role", p->role);
        ctl_pack_kv_uint(pk, "inst", p->inst);
        ctl_pack_kv_str(pk, "state", p->state == PEER_UP     ? "up"
                                     : p->state == PEER_DOWN ? "down"
                                                             : "new");
        ctl_pack_kv_str(pk, "sub", p->sub);
        ctl_pack_kv_str(pk, "ctl", p->ctl);
        ctl_pack_kv_int(pk, "silent_ms", p->last_hb_ms ? now - p->last_hb_ms : -1);
    }
}

static void s_handle_ctl(self_t *self)
{
    weft_node_t *node = self->node;
    ctl_request_t req;
    const char *why = NULL;
    int rc = ctl_request_recv(self->ctl, &req, &why);
    if (rc == WEFT_ENET) {
        ctl_request_clear(&req);
        return;
    }
    atomic_fetch_add(&node->counters.ctl_requests, 1);
    if (rc != 0) {
        atomic_fetch_add(&node->counters.ctl_errors, 1);
        s_warn(self, "bad control request: %s", why);
        ctl_reply_err(self->ctl, req.routing, req.request_id,
                      rc == WEFT_EVERSION ? "bad_version" : "bad_request", "%s", why);
    } else if (streq(req.command, "PING")) {
        msgpack_sbuffer_clear(&self->scratch);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &self->scratch, msgpack_sbuffer_write);
        msgpack_pack_map(&pk, 3);
        ctl_pack_kv_str(&pk, "name", node->name);
        ctl_pack_kv_uint(&pk, "inst", node->inst);
        ctl_pack_kv_int(&pk, "ts", weft_now_ns());
        ctl_reply(self->ctl, req.routing, "OK", req.request_id, self->scratch.data,
                  self->scratch.size);
    } else if (streq(req.command, "INFO")) {
        msgpack_sbuffer_clear(&self->scratch);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &self->scratch, msgpack_sbuffer_write);
        s_pack_info(self, &pk);
        ctl_reply(self->ctl, req.routing, "OK", req.request_id, self->scratch.data,
                  self->scratch.size);
    } else if (streq(req.command, "FETCH")) {
        s_handle_fetch(self, &req);
    } else if (streq(req.command, "REDELIVER")) {
        node_dlq_redeliver(self, &req);
    } else if (streq(req.command, "CREDIT") || streq(req.command, "CANCEL")) {
        uint64_t stream = req.request_id, batches = 1;
        if (ctl_arg_uint(req.args, "stream", &stream) < 0 ||
            ctl_arg_uint(req.args, "batches", &batches) < 0 || batches > UINT32_MAX) {
            atomic_fetch_add(&node->counters.ctl_errors, 1);
            ctl_reply_err(self->ctl, req.routing, req.request_id, "bad_request",
                          "%s needs {stream: uint, batches: uint}", req.command);
        } else if (streq(req.command, "CREDIT")) {
            /* No reply: CREDIT for a stream that just ended is normal and harmless. */
            ctl_streams_credit(self->streams, &req, stream, (uint32_t)batches);
        } else {
            /* CANCEL of a stream that already ended is a normal race: no reply either. */
            ctl_streams_cancel(self->streams, self->ctl, &req, stream);
        }
    } else {
        atomic_fetch_add(&node->counters.ctl_errors, 1);
        s_warn(self, "unknown control command '%s'", req.command);
        ctl_reply_err(self->ctl, req.routing, req.request_id, "unknown_command",
                      "unknown command '%s'; a node serves PING, INFO, FETCH, CREDIT, CANCEL, "
                      "REDELIVER",
                      req.command);
    }
    ctl_request_clear(&req);
}

/* ---- API commands over the pipe ---------------------------------------------------------- */

int node_actor_find_peer(void *actor_self, uint64_t inst, const char *role, const char *name,
                         weft_peer_info_t *out)
{
    self_t *self = actor_self;
    for (peer_t *p = peers_first(self->peers); p; p = peers_next(self->peers)) {
        if (p->state != PEER_UP || (inst && p->inst != inst) ||
            (!inst && role && *role && strcmp(p->role, role) != 0) ||
            (!inst && name && *name && strcmp(p->name, name) != 0))
            continue;
        memset(out, 0, sizeof(*out));
        snprintf(out->name, sizeof(out->name), "%s", p->name);
        snprintf(out->role, sizeof(out->role), "%s", p->role);
        out->inst = p->inst;
        snprintf(out->sub, sizeof(out->sub), "%s", p->sub);
        snprintf(out->ctl, sizeof(out->ctl), "%s", p->ctl);
        snprintf(out->svc, sizeof(out->svc), "%s", p->svc);
        out->up = true;
        return 1;
    }
    return 0;
}

static void s_handle_pipe(self_t *self)
{
    zmsg_t *msg = zmsg_recv(self->pipe);
    if (!msg) {
        self->terminated = true;
        return;
    }
    char *cmd = zmsg_popstr(msg);
    if (!cmd || streq(cmd, "$TERM")) {
        self->terminated = true;
    } else if (streq(cmd, "SUB")) {
        char *prefix = zmsg_popstr(msg);
        zframe_t *hf = zmsg_pop(msg), *af = zmsg_pop(msg), *of = zmsg_pop(msg);
        weft_handler_fn *handler = NULL;
        void *arg = NULL;
        const weft_sub_options_t *options = NULL; /* the caller waits: its struct lives */
        if (hf && zframe_size(hf) == sizeof(void *))
            memcpy(&handler, zframe_data(hf), sizeof(void *));
        if (af && zframe_size(af) == sizeof(void *))
            memcpy(&arg, zframe_data(af), sizeof(void *));
        if (of && zframe_size(of) == sizeof(void *))
            memcpy(&options, zframe_data(of), sizeof(void *));
        int err = WEFT_EINVAL;
        weft_sub_t *sub = prefix && handler
                              ? node_actor_subscribe(self, prefix, handler, arg, options, &err)
                              : NULL;
        zsock_send(self->pipe, "pi", (void *)sub, err);
        zstr_free(&prefix);
        zframe_destroy(&hf);
        zframe_destroy(&af);
        zframe_destroy(&of);
    } else if (streq(cmd, "UNSUB")) {
        zframe_t *sf = zmsg_pop(msg);
        weft_sub_t *sub = NULL;
        if (sf && zframe_size(sf) == sizeof(void *))
            memcpy(&sub, zframe_data(sf), sizeof(void *));
        zsock_send(self->pipe, "i", sub ? node_actor_unsubscribe(self, sub) : WEFT_EINVAL);
        zframe_destroy(&sf);
    } else if (streq(cmd, "CONNECT")) {
        char *endpoint = zmsg_popstr(msg);
        int rc = -1;
        if (endpoint) {
            rc = 0;
            if (peers_endpoint_ref(self->peers, endpoint) &&
                (rc = node_pub_connect(self->node, endpoint)) != 0)
                peers_endpoint_unref(self->peers, endpoint);
            atomic_store(&self->node->readiness.last_learned_ms, node_mono_ms());
        }
        zstr_sendf(self->pipe, "%d", rc);
        zstr_free(&endpoint);
    } else if (streq(cmd, "FINDPEER")) {
        char *inst_hex = zmsg_popstr(msg), *role = zmsg_popstr(msg), *name = zmsg_popstr(msg);
        zframe_t *of = zmsg_pop(msg);
        weft_peer_info_t *out = NULL;
        if (of && zframe_size(of) == sizeof(void *))
            memcpy(&out, zframe_data(of), sizeof(void *));
        uint64_t inst = inst_hex ? strtoull(inst_hex, NULL, 16) : 0;
        int found = out ? node_actor_find_peer(self, inst, role, name, out) : 0;
        zsock_send(self->pipe, "i", found);
        zstr_free(&inst_hex);
        zstr_free(&role);
        zstr_free(&name);
        zframe_destroy(&of);
    } else if (streq(cmd, "HASPEER")) {
        char *name = zmsg_popstr(msg);
        int up = 0;
        for (peer_t *p = peers_first(self->peers); p && name; p = peers_next(self->peers))
            if (p->state == PEER_UP && streq(p->name, name))
                up = 1;
        zsock_send(self->pipe, "i", up);
        zstr_free(&name);
    }
    zstr_free(&cmd);
    zmsg_destroy(&msg);
}

/* ---- start, loop, stop ------------------------------------------------------------------ */

static int s_by_recent(const void *a, const void *b)
{
    const source_t *x = *(source_t *const *)a, *y = *(source_t *const *)b;
    return x->last_ms < y->last_ms ? 1 : x->last_ms > y->last_ms ? -1 : 0;
}

/*  The heartbeat sections only the node's thread knows: topics, latency, sources. */
static void s_heartbeat_more(void *arg, msgpack_packer *pk, uint32_t *count)
{
    self_t *self = arg;
    ctl_pack_str(pk, "topics");
    pthread_mutex_lock(&self->node->pub_lock);
    topic_tables_pack(pk, self->node->pub_topics, self->recv_topics, HB_TOPICS_TOP);
    pthread_mutex_unlock(&self->node->pub_lock);
    ctl_pack_str(pk, "latency");
    latency_hist_pack(pk, &self->latency);
    size_t n = zhashx_size(self->sources);
    source_t **all = calloc(n ? n : 1, sizeof(*all));
    size_t i = 0;
    for (source_t *s = zhashx_first(self->sources); s && i < n; s = zhashx_next(self->sources))
        all[i++] = s;
    qsort(all, i, sizeof(*all), s_by_recent);
    size_t shown = i < HB_SOURCES ? i : HB_SOURCES;
    ctl_pack_str(pk, "sources");
    msgpack_pack_array(pk, (uint32_t)shown);
    for (size_t j = 0; j < shown; j++) {
        msgpack_pack_array(pk, 5);
        ctl_pack_str(pk, all[j]->name);
        msgpack_pack_uint64(pk, all[j]->inst);
        msgpack_pack_uint64(pk, all[j]->last_seq);
        msgpack_pack_int64(pk, all[j]->last_ts);
        msgpack_pack_uint64(pk, all[j]->gaps);
    }
    free(all);
    ctl_pack_str(pk, "subs");
    node_dlq_pack_subs(self, pk);
    *count += 4;
}

static void s_heartbeat(self_t *self)
{
    heartbeat_pack(self->node, &self->scratch, s_heartbeat_more, self);
    node_publish_locked(self->node, "_weft.hb", 8, self->scratch.data, self->scratch.size, NULL,
                        true, NULL);
}

/*  "tcp://host:port" -> "tcp://host:*" for the control socket's default. */
static void s_any_port(const char *endpoint, char *out, size_t cap)
{
    const char *colon = strrchr(endpoint, ':');
    if (colon && strncmp(endpoint, "tcp://", 6) == 0 && colon > endpoint + 6)
        snprintf(out, cap, "%.*s:*", (int)(colon - endpoint), endpoint);
    else
        snprintf(out, cap, "tcp://127.0.0.1:*");
}

/*  Replaces a wildcard host in a bound endpoint by node/advertise (or 127.0.0.1). */
static void s_advertised(weft_node_t *node, const char *bound, char *out, size_t cap)
{
    const char *adv = weft_config_get(node->config, "node/advertise");
    const char *colon = strrchr(bound, ':');
    if (colon && (strncmp(bound, "tcp://0.0.0.0:", 14) == 0 || strncmp(bound, "tcp://*:", 8) == 0))
        snprintf(out, cap, "tcp://%s%s", adv && *adv ? adv : "127.0.0.1", colon);
    else
        snprintf(out, cap, "%s", bound);
}

static int s_start(self_t *self)
{
    weft_node_t *node = self->node;
    weft_config_t *cfg = node->config;
    self->state_lock = -1;
    self->peers = peers_new();
    self->subs = zlistx_new();
    self->sources = zhashx_new();
    zhashx_set_destructor(self->sources, (zhashx_destructor_fn *)s_source_destroy);
    self->streams = ctl_streams_new();
    self->recv_topics = topic_table_new(TOPIC_TABLE_MAX);
    msgpack_sbuffer_init(&self->scratch);

    self->sub = zsock_new(ZMQ_SUB);
    self->ctl = zsock_new(ZMQ_ROUTER);
    if (!self->sub || !self->ctl)
        return WEFT_ENET;
    zsock_set_rcvhwm(self->sub, (int)weft_config_get_int(cfg, "net/rcvhwm", 100000));
    int64_t maxmsg = (int64_t)node->max_payload > WEFT_ENVELOPE_MAX ? (int64_t)node->max_payload
                                                                    : WEFT_ENVELOPE_MAX;
    zsock_set_maxmsgsize(self->sub, (int)maxmsg);
    zsock_set_maxmsgsize(self->ctl, (int)(CTL_ARGS_MAX + 4096));
    zsock_set_linger(self->ctl, 0);
    zsock_set_linger(self->sub, 0);
    const char *bind = weft_config_get(cfg, "node/bind");
    char sub_bind[256];
    if (zsock_bind(self->sub, "%s", bind_util_endpoint(bind, sub_bind, sizeof(sub_bind))) < 0) {
        zsys_error("weft[%s]: cannot bind SUB on %s: %s", node->name, bind, zmq_strerror(zmq_errno()));
        return WEFT_ENET;
    }
    char ctl_bind[256];
    const char *cb = weft_config_get(cfg, "node/ctl_bind");
    if (cb && *cb)
        snprintf(ctl_bind, sizeof(ctl_bind), "%s", cb);
    else
        s_any_port(bind, ctl_bind, sizeof(ctl_bind));
    char ctl_random[256];
    bind_util_endpoint(ctl_bind, ctl_random, sizeof(ctl_random));
    if (zsock_bind(self->ctl, "%s", ctl_random) < 0) {
        zsys_error("weft[%s]: cannot bind control on %s: %s", node->name, ctl_bind,
                   zmq_strerror(zmq_errno()));
        return WEFT_ENET;
    }
    s_advertised(node, zsock_endpoint(self->sub), node->sub_endpoint, sizeof(node->sub_endpoint));
    s_advertised(node, zsock_endpoint(self->ctl), node->ctl_endpoint, sizeof(node->ctl_endpoint));
    zsock_set_subscribe(self->sub, "_weft.hb");
    node_dlq_start(self);
    snprintf(self->catchup_endpoint, sizeof(self->catchup_endpoint),
             "inproc://weft-catchup-%016" PRIx64, node->inst);
    self->catchup_in = zsock_new(ZMQ_PULL);
    if (!self->catchup_in || zsock_bind(self->catchup_in, "%s", self->catchup_endpoint) != 0)
        return WEFT_ENET;

    /* Watch the publisher's connections, to know when a peer is really reachable. */
    char mon[64];
    snprintf(mon, sizeof(mon), "inproc://weft-mon-%016" PRIx64, node->inst);
    pthread_mutex_lock(&node->pub_lock);
    int mrc = zmq_socket_monitor(zsock_resolve(node->pub), mon,
                                 ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED |
                                     ZMQ_EVENT_CONNECT_RETRIED);
    pthread_mutex_unlock(&node->pub_lock);
    self->monitor = zsock_new(ZMQ_PAIR);
    if (mrc != 0 || !self->monitor || zsock_connect(self->monitor, "%s", mon) != 0)
        return WEFT_ENET;

    if (node->loopback && peers_endpoint_ref(self->peers, node->sub_endpoint))
        node_pub_connect(node, node->sub_endpoint);
    const char *statics = weft_config_get(cfg, "peers/connect");
    if (statics && *statics) {
        char *copy = strdup(statics), *save = NULL;
        for (char *ep = strtok_r(copy, ",", &save); ep; ep = strtok_r(NULL, ",", &save)) {
            while (*ep == ' ')
                ep++;
            if (*ep && peers_endpoint_ref(self->peers, ep) && node_pub_connect(node, ep) != 0) {
                zsys_error("weft[%s]: cannot connect to static peer %s", node->name, ep);
                peers_endpoint_unref(self->peers, ep);
                free(copy);
                return WEFT_ENET;
            }
        }
        free(copy);
    }
    atomic_store(&node->readiness.last_learned_ms, node_mono_ms());

    int err = 0;
    self->discovery = discovery_new(node->name, weft_config_get(cfg, "gossip/seeds"),
                                    weft_config_get(cfg, "gossip/bind"), &err);
    if (err)
        return err;
    if (self->discovery)
        snprintf(node->gossip_endpoint, sizeof(node->gossip_endpoint), "%s",
                 discovery_bound(self->discovery));
    if (self->discovery) {
        char key[17], value[1024];
        snprintf(key, sizeof(key), "%016" PRIx64, node->inst);
        if (peers_tuple_format(value, sizeof(value), node->fabric, node->name, node->role,
                               node->sub_endpoint, node->ctl_endpoint, node->svc_endpoint) == 0)
            discovery_announce(self->discovery, key, value);
    }
    /* Without a gossip client there is nothing to hear; holding the only seed, neither. */
    atomic_store(&node->readiness.gossip_heard,
                 !self->discovery || !discovery_has_remote_seed(self->discovery));
    int64_t now = node_mono_ms();
    atomic_store(&node->readiness.last_learned_ms, now);
    self->next_hb = now;
    self->next_tick = now;
    self->next_seed_check = now + 2000;
    return WEFT_OK;
}

static void s_stop(self_t *self)
{
    discovery_destroy(&self->discovery);
    ctl_streams_destroy(&self->streams);
    if (self->subs) {
        for (weft_sub_t *s = zlistx_first(self->subs); s; s = zlistx_next(self->subs)) {
            catchup_stop(self, s);
            node_durable_close(self, s);
            free(s);
        }
        zlistx_destroy(&self->subs);
    }
    node_repair_stop(self);
    node_durable_stop(self);
    zsock_destroy(&self->catchup_in);
    node_dlq_stop(self);
    zhashx_destroy(&self->sources);
    topic_table_destroy(&self->recv_topics);
    node_probe_stop(self);
    peers_destroy(&self->peers);
    if (self->monitor) {
        pthread_mutex_lock(&self->node->pub_lock);
        zmq_socket_monitor(zsock_resolve(self->node->pub), NULL, 0);
        pthread_mutex_unlock(&self->node->pub_lock);
    }
    zsock_destroy(&self->monitor);
    zsock_destroy(&self->sub);
    zsock_destroy(&self->ctl);
    msgpack_sbuffer_destroy(&self->scratch);
}

void node_actor(zsock_t *pipe, void *args)
{
    self_t self_storage;
    self_t *self = &self_storage;
    memset(self, 0, sizeof(*self));
    self->node = args;
    self->pipe = pipe;
    weft_node_t *node = self->node;
    node->actor_thread = pthread_self();
    node->actor_self = self;
    int rc = s_start(self);
    atomic_store(&node->actor_running, rc == WEFT_OK);
    zsock_signal(pipe, 0);
    if (rc != WEFT_OK) {
        /* Stay until told to terminate, so zactor_destroy's handshake works. */
        while (!self->terminated)
            s_handle_pipe(self);
        s_stop(self);
        return;
    }
    int tick_ms = node->heartbeat_ms / 4;
    tick_ms = tick_ms < 10 ? 10 : tick_ms > 250 ? 250 : tick_ms;
    bool streams_busy = false;
    while (!self->terminated) {
        /* No gossip actor while a failed restart waits for its retry (discovery_tick). */
        zsock_t *gossip = self->discovery ? discovery_socket(self->discovery) : NULL;
        zmq_pollitem_t items[7] = {
            {zsock_resolve(pipe), 0, ZMQ_POLLIN, 0},
            {zsock_resolve(self->sub), 0, ZMQ_POLLIN, 0},
            {zsock_resolve(self->ctl), 0, ZMQ_POLLIN, 0},
            {zsock_resolve(self->monitor), 0, ZMQ_POLLIN, 0},
            {zsock_resolve(self->catchup_in), 0, ZMQ_POLLIN, 0},
            {gossip ? zsock_resolve(gossip) : NULL, 0, gossip ? ZMQ_POLLIN : 0, 0},
            {self->discovery ? zsock_resolve(discovery_watch_socket(self->discovery)) : NULL, 0,
             ZMQ_POLLIN, 0},
        };
        int n = self->discovery ? 7 : 5;
        int64_t now = node_mono_ms();
        int64_t next = self->next_hb < self->next_tick ? self->next_hb : self->next_tick;
        long timeout = streams_busy ? 0 : (long)(next > now ? next - now : 0);
        /* While peers are still being connected, look at readiness more often. */
        if (atomic_load(&node->readiness.ready) < atomic_load(&node->readiness.known) && timeout > 10)
            timeout = 10;
        if (zmq_poll(items, n, timeout) < 0) {
            if (zmq_errno() == EINTR)
                continue; /* a signal for the process, not for this node: go on */
            break;
        }
        if (items[0].revents & ZMQ_POLLIN)
            s_handle_pipe(self);
        if (self->terminated)
            break;
        if (items[1].revents & ZMQ_POLLIN)
            for (int i = 0; i < RECV_BURST && s_recv_one(self); i++)
                ;
        if (items[2].revents & ZMQ_POLLIN)
            for (int i = 0; i < 64 && (zsock_events(self->ctl) & ZMQ_POLLIN); i++)
                s_handle_ctl(self);
        if (items[3].revents & ZMQ_POLLIN)
            s_handle_monitor(self);
        if (items[4].revents & ZMQ_POLLIN)
            for (int i = 0; i < RECV_BURST && (zsock_events(self->catchup_in) & ZMQ_POLLIN); i++)
                catchup_handle(self);
        if (n == 7 && (items[5].revents & ZMQ_POLLIN))
            s_handle_gossip(self);
        if (n == 7 && (items[6].revents & ZMQ_POLLIN))
            discovery_handle_watch(self->discovery);
        now = node_mono_ms();
        if (now >= self->next_hb) {
            s_heartbeat(self);
            self->next_hb += node->heartbeat_ms;
            if (self->next_hb < now)
                self->next_hb = now + node->heartbeat_ms;
        }
        if (self->discovery && now >= self->next_seed_check) {
            if (discovery_tick(self->discovery)) {
                pthread_mutex_lock(&node->pub_lock);
                snprintf(node->gossip_endpoint, sizeof(node->gossip_endpoint), "%s",
                         discovery_bound(self->discovery));
                pthread_mutex_unlock(&node->pub_lock);
            }
            self->next_seed_check = now + 2000;
        }
        if (now >= self->next_tick ||
            atomic_load(&node->readiness.ready) < atomic_load(&node->readiness.known)) {
            s_peers_tick(self, now);
            catchup_tick(self, now);
            node_repair_tick(self, now);
            node_dlq_tick(self, now);
            node_durable_flush(self);
            self->next_tick = now + tick_ms;
        }
        streams_busy = ctl_streams_pump(self->streams, self->ctl, now);
        node_dlq_handle_acks(self);
        if (self->nprobes)
            node_probe_poll(self, now);
    }
    atomic_store(&node->actor_running, false);
    s_stop(self);
}

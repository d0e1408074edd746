/*  node_dlq.c - what a node does when a handler fails: retry locally with backoff, stop
    calling a handler that keeps failing (circuit breaker), and hand the event to a DLQ node
    as a dead letter, acknowledged and resent until acknowledged. Also serves the DLQ's
    REDELIVER requests. Everything here runs on the node's thread.

    Bounds: at most RETRY_MAX events wait for a local retry and LETTERS_MAX dead letters wait
    for a DLQ; beyond either, an event is dead-lettered at once or dropped, counted and logged
    (dead_letter_dropped), never silently.

    PUT {event: [topic, envelope, payload], subscriber, node, error: {code, message}, attempts,
    failed_at} goes to the service endpoint of a peer whose role is "dlq"; its OK
    acknowledgement removes the letter. A letter unacknowledged for RESEND_MS is sent again:
    the DLQ is idempotent on (event id, subscriber), so a resend never makes two letters.
*/
#include <inttypes.h>
#include <math.h>

#include "mp_guard.h"
#include "node_actor.h"

#define RETRY_MAX 10000
#define LETTERS_MAX 10000
#define LETTERS_IN_FLIGHT 64
#define RESEND_MS 3000
#define WARN_EVERY_MS 10000
#define SUBSCRIBER_MAX 255 /* the DLQ's limit for "<node>/<name>" */

typedef struct {
    uint64_t sub_id;
    uint32_t attempt;       /* the attempt this call will be */
    int64_t due_ms;
    size_t topic_size, envelope_size, payload_size;
    /* then topic, envelope, payload bytes */
} retry_item_t;


typedef struct {
    char subscriber[SUBSCRIBER_MAX + 1];
    char code[64];
    char message[256];
    uint32_t attempts;
    int64_t failed_at;      /* ns */
    uint64_t request_id;    /* of the last PUT sent, 0 = not sent yet */
    int64_t sent_ms;
    size_t topic_size, envelope_size, payload_size;
    /* then topic, envelope, payload bytes */
} letter_t;

/*  "<node>/<name>", cut to the DLQ's 255 bytes. */
static void s_subscriber(char out[SUBSCRIBER_MAX + 1], const char *node, const char *name)
{
    size_t nl = strnlen(node, SUBSCRIBER_MAX - 2);
    size_t ml = strnlen(name, SUBSCRIBER_MAX - nl - 1);
    memcpy(out, node, nl);
    out[nl] = '/';
    memcpy(out + nl + 1, name, ml);
    out[nl + 1 + ml] = 0;
}

static const uint8_t *s_bytes(const void *item, size_t header)
{
    return (const uint8_t *)item + header;
}

/* ---- policy and breaker ------------------------------------------------------------------ */

void node_dlq_sub_init(weft_sub_t *sub, const weft_sub_options_t *o, const char *node_name)
{
    const char *name = o && o->name && *o->name ? o->name : sub->len ? sub->prefix : "*";
    snprintf(sub->name, sizeof(sub->name), "%s", name);
    /* "<node>/<name>" must fit the DLQ's 255 bytes: a long name is cut to fit. */
    size_t room = SUBSCRIBER_MAX - strnlen(node_name, SUBSCRIBER_MAX - 2) - 1;
    if (strlen(sub->name) > room)
        sub->name[room] = 0;
    sub->retry_attempts = o && o->retry_attempts ? o->retry_attempts : 3;
    if (sub->retry_attempts < 1)
        sub->retry_attempts = 1;
    sub->retry_backoff_ms = o && o->retry_backoff_ms > 0 ? o->retry_backoff_ms : 100;
    sub->retry_backoff_max_ms = o && o->retry_backoff_max_ms > 0 ? o->retry_backoff_max_ms : 5000;
    sub->retry_jitter = o && o->retry_jitter > 0 && o->retry_jitter <= 1 ? o->retry_jitter : 0.2;
    sub->breaker_failures = o && o->breaker_failures ? o->breaker_failures : 20;
    if (sub->breaker_failures > 64)
        sub->breaker_failures = 64;
    sub->breaker_window_ms = o && o->breaker_window_ms > 0 ? o->breaker_window_ms : 10000;
    sub->breaker_cooldown_ms = o && o->breaker_cooldown_ms > 0 ? o->breaker_cooldown_ms : 30000;
    sub->no_dead_letter = o && o->no_dead_letter;
}

static const char *s_breaker_name(int b)
{
    return b == BREAKER_OPEN ? "open" : b == BREAKER_HALF_OPEN ? "half_open" : "closed";
}

bool node_dlq_breaker_allows(self_t *self, weft_sub_t *sub, int64_t now)
{
    if (sub->breaker == BREAKER_CLOSED)
        return true;
    if (sub->breaker == BREAKER_OPEN && now - sub->opened_ms >= sub->breaker_cooldown_ms) {
        sub->breaker = BREAKER_HALF_OPEN;
        sub->probing = false;
        zsys_info("weft[%s]: breaker of '%s' half-open: trying one event",
                  weft_node_name(self->node), sub->name);
    }
    if (sub->breaker == BREAKER_HALF_OPEN && !sub->probing) {
        sub->probing = true; /* exactly one trial call */
        return true;
    }
    return false;
}

static void s_breaker_result(self_t *self, weft_sub_t *sub, bool ok, int64_t now)
{
    if (sub->breaker_failures < 0)
        return;
    if (ok) {
        if (sub->breaker != BREAKER_CLOSED)
            zsys_info("weft[%s]: breaker of '%s' closed", weft_node_name(self->node), sub->name);
        sub->breaker = BREAKER_CLOSED;
        sub->probing = false;
        return;
    }
    sub->fail_ms[sub->fail_next++ % 64] = now;
    if (sub->breaker == BREAKER_HALF_OPEN) {
        sub->breaker = BREAKER_OPEN;
        sub->opened_ms = now;
        sub->probing = false;
        return;
    }
    if (sub->breaker == BREAKER_CLOSED && sub->fail_next >= (unsigned)sub->breaker_failures) {
        /* the K-th most recent failure within the window: K failures in the window */
        int64_t kth = sub->fail_ms[(sub->fail_next - (unsigned)sub->breaker_failures) % 64];
        if (now - kth <= sub->breaker_window_ms) {
            sub->breaker = BREAKER_OPEN;
            sub->opened_ms = now;
            zsys_warning("weft[%s]: breaker of '%s' open: %d failures within %d ms; "
                         "dead-lettering directly for %d ms",
                         weft_node_name(self->node), sub->name, sub->breaker_failures,
                         sub->breaker_window_ms, sub->breaker_cooldown_ms);
        }
    }
}

/* ---- dead letters ---------------------------------------------------------------------- */

static void s_dead_letter(self_t *self, weft_sub_t *sub, uint32_t attempts, const char *topic,
                          size_t topic_len, const uint8_t *env, size_t env_size,
                          const void *payload, size_t size, const char *code, const char *message)
{
    weft_node_t *node = self->node;
    if (sub->no_dead_letter || zlistx_size(self->letters) >= LETTERS_MAX) {
        atomic_fetch_add(&node->counters.dead_letter_dropped, 1);
        zsys_warning("weft[%s]: event %s of '%s' dropped after %u failed attempts (%s): %s",
                     node->name, topic, sub->name, attempts,
                     sub->no_dead_letter ? "dead letters disabled" : "dead-letter queue full",
                     code);
        return;
    }
    letter_t *l = calloc(1, sizeof(letter_t) + topic_len + env_size + size);
    if (!l) {
        atomic_fetch_add(&node->counters.dead_letter_dropped, 1);
        return;
    }
    /* Names are capped so "<node>/<name>" fits the DLQ's 255 bytes (node_dlq_sub_init). */
    s_subscriber(l->subscriber, node->name, sub->name);
    snprintf(l->code, sizeof(l->code), "%s", code && *code ? code : "handler.failed");
    snprintf(l->message, sizeof(l->message), "%s", message ? message : "");
    l->attempts = attempts;
    l->failed_at = weft_now_ns();
    l->topic_size = topic_len;
    l->envelope_size = env_size;
    l->payload_size = size;
    uint8_t *p = (uint8_t *)(l + 1);
    memcpy(p, topic, topic_len);
    memcpy(p + topic_len, env, env_size);
    memcpy(p + topic_len + env_size, payload, size);
    zlistx_add_end(self->letters, l);
    sub->dead_lettered++;
    atomic_store(&node->counters.dead_letter_pending, zlistx_size(self->letters));
}

bool node_dlq_outcome(self_t *self, weft_sub_t *sub, bool ok, uint32_t attempt,
                      const char *topic, size_t topic_len, const uint8_t *envelope_raw,
                      size_t envelope_size, const void *payload, size_t size, const char *code,
                      const char *message)
{
    int64_t now = node_mono_ms();
    if (attempt > 0)
        s_breaker_result(self, sub, ok, now);
    if (ok)
        return true;
    sub->failures++;
    /* attempt 0: not called (breaker open). Retry while attempts remain and the breaker is
       closed; otherwise dead-letter. */
    if (attempt > 0 && attempt < (uint32_t)sub->retry_attempts &&
        sub->breaker == BREAKER_CLOSED && zlistx_size(self->retries) < RETRY_MAX) {
        retry_item_t *r = malloc(sizeof(retry_item_t) + topic_len + envelope_size + size);
        if (r) {
            double wait = sub->retry_backoff_ms * pow(2.0, (double)(attempt - 1));
            if (wait > sub->retry_backoff_max_ms)
                wait = sub->retry_backoff_max_ms;
            wait *= 1.0 + sub->retry_jitter * ((double)random() / (double)RAND_MAX);
            r->sub_id = sub->id;
            r->attempt = attempt + 1;
            r->due_ms = now + (int64_t)wait;
            r->topic_size = topic_len;
            r->envelope_size = envelope_size;
            r->payload_size = size;
            uint8_t *p = (uint8_t *)(r + 1);
            memcpy(p, topic, topic_len);
            memcpy(p + topic_len, envelope_raw, envelope_size);
            memcpy(p + topic_len + envelope_size, payload, size);
            zlistx_add_end(self->retries, r);
            return false;
        }
    }
    s_dead_letter(self, sub, attempt, topic, topic_len, envelope_raw, envelope_size, payload,
                  size, code, message);
    return true;
}

/*  Calls the handler again for every retry that is due. */
static void s_run_retries(self_t *self, int64_t now)
{
    retry_item_t *r = zlistx_first(self->retries);
    while (r) {
        void *handle = zlistx_cursor(self->retries);
        retry_item_t *next = zlistx_next(self->retries);
        if (r->due_ms <= now) {
            zlistx_detach(self->retries, handle);
            weft_sub_t *sub = node_actor_sub_by_id(self, r->sub_id);
            const uint8_t *p = s_bytes(r, sizeof(*r));
            weft_envelope_t env;
            if (sub && r->topic_size <= WEFT_TOPIC_MAX &&
                weft_envelope_decode(&env, p + r->topic_size, r->envelope_size) == 0) {
                char topic[WEFT_TOPIC_MAX + 1];
                memcpy(topic, p, r->topic_size);
                topic[r->topic_size] = 0;
                env.retry = r->attempt - 1;
                atomic_fetch_add(&self->node->counters.retries, 1);
                sub->retried++;
                node_actor_call(self, sub, topic, &env, p + r->topic_size, r->envelope_size,
                                p + r->topic_size + r->envelope_size, r->payload_size);
            }
            free(r);
            /* node_actor_call may have added retries: restart from the head, they are later */
            next = zlistx_first(self->retries);
            while (next && next->due_ms > now)
                next = zlistx_next(self->retries);
        }
        r = next;
    }
}

static void s_pack_letter(msgpack_packer *pk, const letter_t *l, const char *node_name)
{
    const uint8_t *p = s_bytes(l, sizeof(*l));
    msgpack_pack_map(pk, 6);
    ctl_pack_str(pk, "event");
    ctl_pack_event(pk, (const char *)p, l->topic_size, p + l->topic_size, l->envelope_size,
                   p + l->topic_size + l->envelope_size, l->payload_size);
    ctl_pack_kv_str(pk, "subscriber", l->subscriber);
    ctl_pack_kv_str(pk, "node", node_name);
    ctl_pack_str(pk, "error");
    msgpack_pack_map(pk, 2);
    ctl_pack_kv_str(pk, "code", l->code);
    ctl_pack_kv_str(pk, "message", l->message);
    ctl_pack_kv_uint(pk, "attempts", l->attempts);
    ctl_pack_kv_int(pk, "failed_at", l->failed_at);
}

/*  Keeps a DEALER connected to the current DLQ's service endpoint. */
static bool s_dlq_connect(self_t *self)
{
    weft_peer_info_t info;
    if (!node_actor_find_peer(self, 0, "dlq", NULL, &info) || !info.svc[0]) {
        /* No DLQ up: drop the old connection rather than let ZeroMQ reconnect to a port
           some other process may own by now. */
        zsock_destroy(&self->dlq);
        self->dlq_endpoint[0] = 0;
        return false;
    }
    if (self->dlq && strcmp(self->dlq_endpoint, info.svc) == 0)
        return true;
    zsock_destroy(&self->dlq);
    self->dlq = zsock_new(ZMQ_DEALER);
    if (!self->dlq)
        return false;
    zsock_set_linger(self->dlq, 0);
    zsock_set_sndhwm(self->dlq, 1000);
    if (zsock_connect(self->dlq, "%s", info.svc) != 0) {
        zsock_destroy(&self->dlq);
        return false;
    }
    snprintf(self->dlq_endpoint, sizeof(self->dlq_endpoint), "%s", info.svc);
    /* A new DLQ: everything unacknowledged is sent to it again. */
    for (letter_t *l = zlistx_first(self->letters); l; l = zlistx_next(self->letters))
        l->request_id = 0;
    return true;
}

static void s_send_letters(self_t *self, int64_t now)
{
    if (zlistx_size(self->letters) == 0)
        return;
    if (!s_dlq_connect(self)) {
        if (now - self->dlq_warned_ms > WARN_EVERY_MS) {
            zsys_warning("weft[%s]: %zu dead letters waiting: no DLQ node reachable",
                         self->node->name, zlistx_size(self->letters));
            self->dlq_warned_ms = now;
        }
        return;
    }
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    int in_flight = 0;
    for (letter_t *l = zlistx_first(self->letters); l && in_flight < LETTERS_IN_FLIGHT;
         l = zlistx_next(self->letters)) {
        if (l->request_id && now - l->sent_ms < RESEND_MS) {
            in_flight++;
            continue;
        }
        msgpack_sbuffer_clear(&sb);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        s_pack_letter(&pk, l, self->node->name);
        uint64_t id = ++self->dlq_next_id;
        uint8_t rid[8];
        for (int i = 7, v = 0; i >= 0; i--, v++)
            rid[i] = (uint8_t)(id >> (8 * v));
        zmsg_t *msg = zmsg_new();
        zmsg_addstr(msg, "weft/1");
        zmsg_addstr(msg, "PUT");
        zmsg_addmem(msg, rid, 8);
        zmsg_addmem(msg, sb.data, sb.size);
        zsock_set_sndtimeo(self->dlq, 0);
        if (zmsg_send(&msg, self->dlq) != 0) {
            zmsg_destroy(&msg);
            break;
        }
        l->request_id = id;
        l->sent_ms = now;
        in_flight++;
    }
    msgpack_sbuffer_destroy(&sb);
}

void node_dlq_handle_acks(self_t *self)
{
    if (!self->dlq)
        return;
    while (zsock_events(self->dlq) & ZMQ_POLLIN) {
        zmsg_t *msg = zmsg_recv(self->dlq);
        if (!msg)
            break;
        zframe_t *proto = zmsg_first(msg), *status = zmsg_next(msg), *rid = zmsg_next(msg);
        if (zmsg_size(msg) == 4 && zframe_streq(proto, "weft/1") && zframe_size(rid) == 8) {
            uint64_t id = 0;
            for (int i = 0; i < 8; i++)
                id = (id << 8) | zframe_data(rid)[i];
            for (letter_t *l = zlistx_first(self->letters); l; l = zlistx_next(self->letters)) {
                if (l->request_id != id)
                    continue;
                if (zframe_streq(status, "OK")) {
                    zlistx_delete(self->letters, zlistx_cursor(self->letters));
                    atomic_fetch_add(&self->node->counters.dead_lettered, 1);
                } else {
                    /* The DLQ refused it (malformed?): keep it and say so; it is retried. */
                    zsys_warning("weft[%s]: the DLQ refused a dead letter of %s", self->node->name,
                                 l->subscriber);
                    l->sent_ms = node_mono_ms();
                }
                break;
            }
        } else {
            atomic_fetch_add(&self->node->counters.malformed, 1);
        }
        zmsg_destroy(&msg);
    }
    atomic_store(&self->node->counters.dead_letter_pending, zlistx_size(self->letters));
}

void node_dlq_tick(self_t *self, int64_t now)
{
    s_run_retries(self, now);
    node_dlq_handle_acks(self);
    s_send_letters(self, now);
}

/* ---- REDELIVER ---------------------------------------------------------------------------- */

static void s_redeliver_reply(self_t *self, ctl_request_t *req, bool ok, const char *code,
                              const char *message)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, ok ? 1 : 3);
    ctl_pack_str(&pk, "ok");
    if (ok) {
        msgpack_pack_true(&pk);
    } else {
        msgpack_pack_false(&pk);
        ctl_pack_kv_str(&pk, "code", code);
        ctl_pack_kv_str(&pk, "message", message);
    }
    ctl_reply(self->ctl, req->routing, "OK", req->request_id, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
}

void node_dlq_redeliver(self_t *self, ctl_request_t *req)
{
    weft_node_t *node = self->node;
    const char *subscriber;
    size_t sublen;
    uint64_t attempt = 1;
    const msgpack_object *ev = ctl_arg(req->args, "event");
    if (ctl_arg_str(req->args, "subscriber", &subscriber, &sublen) != 0 ||
        ctl_arg_uint(req->args, "attempt", &attempt) < 0 || !ev ||
        ev->type != MSGPACK_OBJECT_ARRAY || ev->via.array.size < 3 ||
        ev->via.array.ptr[0].type != MSGPACK_OBJECT_STR ||
        ev->via.array.ptr[1].type != MSGPACK_OBJECT_BIN ||
        ev->via.array.ptr[2].type != MSGPACK_OBJECT_BIN) {
        atomic_fetch_add(&node->counters.ctl_errors, 1);
        ctl_reply_err(self->ctl, req->routing, req->request_id, "bad_request",
                      "REDELIVER needs {subscriber: str, event: [topic str, envelope bin, "
                      "payload bin], attempt: uint}");
        return;
    }
    const msgpack_object *f = ev->via.array.ptr;
    weft_envelope_t env;
    const char *topic = f[0].via.str.ptr;
    size_t tlen = f[0].via.str.size;
    if (weft_topic_check(topic, tlen) != 0 || weft_topic_is_fabric(topic, tlen) ||
        weft_envelope_decode(&env, f[1].via.bin.ptr, f[1].via.bin.size) != 0) {
        atomic_fetch_add(&node->counters.ctl_errors, 1);
        ctl_reply_err(self->ctl, req->routing, req->request_id, "bad_request",
                      "REDELIVER: the event's topic or envelope is malformed");
        return;
    }
    /* subscriber = "<node>/<name>": the node part must be ours */
    size_t nlen = strlen(node->name);
    weft_sub_t *sub = NULL;
    if (sublen > nlen + 1 && memcmp(subscriber, node->name, nlen) == 0 && subscriber[nlen] == '/')
        for (weft_sub_t *s = zlistx_first(self->subs); s; s = zlistx_next(self->subs))
            if (!s->dead && strlen(s->name) == sublen - nlen - 1 &&
                memcmp(s->name, subscriber + nlen + 1, sublen - nlen - 1) == 0) {
                sub = s;
                break;
            }
    if (!sub) {
        atomic_fetch_add(&node->counters.ctl_errors, 1);
        ctl_reply_err(self->ctl, req->routing, req->request_id, "not_found",
                      "no subscription '%.*s' on this node", (int)sublen, subscriber);
        return;
    }
    char t[WEFT_TOPIC_MAX + 1];
    memcpy(t, topic, tlen);
    t[tlen] = 0;
    /* retry = attempts made before this one, as for local retries */
    env.retry = attempt == 0 ? 0 : attempt - 1 > UINT32_MAX ? UINT32_MAX : (uint32_t)(attempt - 1);
    char code[64] = "", message[256] = "";
    atomic_fetch_add(&node->counters.redelivered, 1);
    int rc = node_actor_invoke(self, sub, t, &env, (const uint8_t *)f[1].via.bin.ptr,
                               f[1].via.bin.size, f[2].via.bin.ptr, f[2].via.bin.size, code,
                               sizeof(code), message, sizeof(message));
    s_redeliver_reply(self, req, rc == 0, code, message);
}

/* ---- heartbeat, life cycle ------------------------------------------------------------------ */

void node_dlq_pack_subs(self_t *self, msgpack_packer *pk)
{
    size_t n = 0;
    for (weft_sub_t *s = zlistx_first(self->subs); s; s = zlistx_next(self->subs))
        n += !s->dead && !s->fabric;
    if (n > 64)
        n = 64;
    msgpack_pack_array(pk, (uint32_t)n);
    size_t i = 0;
    for (weft_sub_t *s = zlistx_first(self->subs); s && i < n; s = zlistx_next(self->subs)) {
        if (s->dead || s->fabric)
            continue;
        char subscriber[SUBSCRIBER_MAX + 1];
        s_subscriber(subscriber, self->node->name, s->name);
        msgpack_pack_array(pk, 5);
        ctl_pack_str(pk, subscriber);
        ctl_pack_str(pk, s_breaker_name(s->breaker));
        msgpack_pack_uint64(pk, s->failures);
        msgpack_pack_uint64(pk, s->dead_lettered);
        msgpack_pack_uint64(pk, s->retried);
        i++;
    }
}

void node_dlq_start(self_t *self)
{
    self->retries = zlistx_new();
    zlistx_set_destructor(self->retries, (zlistx_destructor_fn *)zstr_free);
    self->letters = zlistx_new();
    zlistx_set_destructor(self->letters, (zlistx_destructor_fn *)zstr_free);
}

void node_dlq_stop(self_t *self)
{
    size_t left = self->letters ? zlistx_size(self->letters) : 0;
    if (left)
        zsys_warning("weft[%s]: stopping with %zu dead letters no DLQ acknowledged",
                     self->node->name, left);
    zlistx_destroy(&self->retries);
    zlistx_destroy(&self->letters);
    zsock_destroy(&self->dlq);
}

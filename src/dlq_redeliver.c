/*  dlq_redeliver.c - the DLQ's client side towards subscriber nodes: REDELIVER requests over
    one DEALER per control endpoint, the table of requests in flight with their deadlines, and
    the decoding of answers into an outcome (ok, or failed with a code and a message). What an
    outcome does to the letter is the scheduler's business (dlq_scheduler.c).

        REDELIVER {letter: bin 16, subscriber: str, event: [topic, envelope, payload],
                   attempt: uint (the letter's attempts + 1)}
        OK {ok: true}                      -> ok
        OK {ok: false, code, message}      -> failed with that code and message (code default
                                              "handler.failed"; both cut to the letter's sizes)
        ERR {code: "not_found", message}   -> failed, "dlq.no_subscriber" (no such
                                              subscription on that node any more)
        ERR {code, message}                -> failed, "dlq.remote_error"
        anything else                      -> failed, "dlq.bad_reply"
        no answer within the timeout       -> failed, "dlq.timeout"

    Sends never block (DONTWAIT); a DEALER is closed when a request on it timed out (its queue
    may hold stale requests) or after DEALER_IDLE_MS unused. There are always more DEALERs
    allowed than requests in flight, so one is free for a new endpoint.
*/
#include "dlq_internal.h"
#include "mp_guard.h"

#define DEALER_IDLE_MS 60000

typedef struct {
    zsock_t *sock;
    char endpoint[256];
    int64_t last_used_ms;
    uint32_t in_flight;
    bool broken;                 /* a request on it timed out or could not be sent */
} dealer_t;

typedef struct {
    bool used;
    uint8_t id[WEFT_ID_SIZE];
    uint64_t rid;
    dealer_t *dealer;
    int64_t deadline_ms;
    char node[WEFT_NAME_MAX + 1];
} flight_t;

struct dlq_link_t {
    flight_t *flights;
    uint32_t max_flights, nflights;
    dealer_t **dealers;
    size_t ndealers, dealers_cap;
    int timeout_ms;
    uint64_t next_rid;
    int64_t next_reap_ms;
    dlq_outcome_fn *fn;
    void *arg;
};

dlq_link_t *dlq_link_new(uint32_t max_in_flight, int timeout_ms, dlq_outcome_fn *fn, void *arg)
{
    dlq_link_t *self = calloc(1, sizeof(*self));
    assert(self);
    self->max_flights = max_in_flight;
    self->flights = calloc(max_in_flight, sizeof(flight_t));
    self->dealers_cap = max_in_flight + 16;
    self->dealers = calloc(self->dealers_cap, sizeof(dealer_t *));
    assert(self->flights && self->dealers);
    self->timeout_ms = timeout_ms;
    self->next_rid = ((uint64_t)randof(0x7fffffff) << 20) + 1;
    self->fn = fn;
    self->arg = arg;
    return self;
}

static void s_dealer_close(dlq_link_t *self, size_t i)
{
    dealer_t *d = self->dealers[i];
    zsock_destroy(&d->sock);
    free(d);
    self->dealers[i] = self->dealers[--self->ndealers];
}

void dlq_link_destroy(dlq_link_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    dlq_link_t *self = *self_p;
    while (self->ndealers)
        s_dealer_close(self, self->ndealers - 1);
    free(self->flights);
    free(self->dealers);
    free(self);
    *self_p = NULL;
}

uint32_t dlq_link_in_flight(const dlq_link_t *self)
{
    return self->nflights;
}

void dlq_link_each(dlq_link_t *self, void (*fn)(void *arg, const uint8_t id[WEFT_ID_SIZE]),
                   void *arg)
{
    for (uint32_t i = 0; i < self->max_flights; i++)
        if (self->flights[i].used)
            fn(arg, self->flights[i].id);
}

/*  The DEALER towards endpoint: cached, else a new one (evicting the least recently used idle
    one when all are taken). NULL when the endpoint cannot be connected to. */
static dealer_t *s_dealer(dlq_link_t *self, const char *endpoint, int64_t now_ms)
{
    for (size_t i = 0; i < self->ndealers; i++)
        if (!self->dealers[i]->broken && strcmp(self->dealers[i]->endpoint, endpoint) == 0)
            return self->dealers[i];
    if (strlen(endpoint) >= sizeof(((dealer_t *)0)->endpoint))
        return NULL;
    if (self->ndealers == self->dealers_cap) {
        size_t victim = SIZE_MAX;
        for (size_t i = 0; i < self->ndealers; i++)
            if (self->dealers[i]->in_flight == 0 &&
                (victim == SIZE_MAX ||
                 self->dealers[i]->last_used_ms < self->dealers[victim]->last_used_ms))
                victim = i;
        if (victim == SIZE_MAX)
            return NULL;
        s_dealer_close(self, victim);
    }
    dealer_t *d = calloc(1, sizeof(*d));
    assert(d);
    d->sock = zsock_new(ZMQ_DEALER);
    if (!d->sock) {
        free(d);
        return NULL;
    }
    zsock_set_linger(d->sock, 0);
    zsock_set_sndhwm(d->sock, 1000);
    zsock_set_rcvhwm(d->sock, 1000);
    zsock_set_maxmsgsize(d->sock, (int)(CTL_ARGS_MAX + 4096));
    if (zsock_connect(d->sock, "%s", endpoint) != 0) {
        zsock_destroy(&d->sock);
        free(d);
        return NULL;
    }
    snprintf(d->endpoint, sizeof(d->endpoint), "%s", endpoint);
    d->last_used_ms = now_ms;
    self->dealers[self->ndealers++] = d;
    return d;
}

static int s_send(dealer_t *d, uint64_t rid, const void *args, size_t size)
{
    void *sock = zsock_resolve(d->sock);
    uint8_t rb[8];
    for (int i = 7; i >= 0; i--, rid >>= 8)
        rb[i] = (uint8_t)rid;
    if (zmq_send(sock, WEFT_CTL_PROTOCOL, strlen(WEFT_CTL_PROTOCOL),
                 ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return -1;
    /* The rest of a multipart message is always accepted once its first part was. */
    zmq_send(sock, "REDELIVER", 9, ZMQ_SNDMORE);
    zmq_send(sock, rb, 8, ZMQ_SNDMORE);
    zmq_send(sock, args, size, 0);
    return 0;
}

int dlq_link_send(dlq_link_t *self, const char *endpoint, const dlq_letter_t *l, int64_t now_ms)
{
    if (self->nflights == self->max_flights)
        return -1;
    dealer_t *d = s_dealer(self, endpoint, now_ms);
    if (!d)
        return -1;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 4);
    ctl_pack_str(&pk, "letter");
    msgpack_pack_bin(&pk, WEFT_ID_SIZE);
    msgpack_pack_bin_body(&pk, l->id, WEFT_ID_SIZE);
    ctl_pack_kv_str(&pk, "subscriber", l->subscriber);
    ctl_pack_str(&pk, "event");
    ctl_pack_event(&pk, l->topic, strlen(l->topic), l->envelope, l->envelope_size, l->payload,
                   l->payload_size);
    ctl_pack_kv_uint(&pk, "attempt", (uint64_t)l->attempts + 1);
    uint64_t rid = self->next_rid++;
    int rc = s_send(d, rid, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
    if (rc != 0) {
        d->broken = true; /* its queue is full or its connection is gone */
        return -1;
    }
    flight_t *f = NULL;
    for (uint32_t i = 0; i < self->max_flights && !f; i++)
        if (!self->flights[i].used)
            f = &self->flights[i];
    *f = (flight_t){.used = true, .rid = rid, .dealer = d, .deadline_ms = now_ms + self->timeout_ms};
    memcpy(f->id, l->id, WEFT_ID_SIZE);
    snprintf(f->node, sizeof(f->node), "%s", l->node);
    d->in_flight++;
    d->last_used_ms = now_ms;
    self->nflights++;
    return 0;
}

/*  Ends a request and reports its outcome. */
static void s_end(dlq_link_t *self, flight_t *f, bool ok, const char *code, const char *message)
{
    uint8_t id[WEFT_ID_SIZE];
    memcpy(id, f->id, WEFT_ID_SIZE);
    if (f->dealer && f->dealer->in_flight > 0)
        f->dealer->in_flight--;
    f->used = false;
    self->nflights--;
    self->fn(self->arg, id, ok, code, message);
}

/*  Copies a str field (cut to cap - 1 bytes, NUL bytes replaced), or fallback. */
static void s_strfield(const msgpack_object *map, const char *key, char *out, size_t cap,
                       const char *fallback)
{
    const msgpack_object *v = map ? ctl_arg(map, key) : NULL;
    if (v && v->type == MSGPACK_OBJECT_STR && v->via.str.size > 0) {
        size_t n = v->via.str.size < cap - 1 ? v->via.str.size : cap - 1;
        memcpy(out, v->via.str.ptr, n);
        out[n] = 0;
        for (size_t i = 0; i < n; i++)
            if (out[i] == 0)
                out[i] = '?';
    } else {
        snprintf(out, cap, "%s", fallback);
    }
}

/*  One answer: [weft/1][status][request id][body]. */
static void s_answer(dlq_link_t *self, zmsg_t *msg)
{
    if (zmsg_size(msg) != 4)
        return;
    zframe_t *proto = zmsg_first(msg), *status = zmsg_next(msg), *rid = zmsg_next(msg),
             *body = zmsg_next(msg);
    if (!zframe_streq(proto, WEFT_CTL_PROTOCOL) || zframe_size(rid) != 8)
        return;
    uint64_t id = 0;
    for (int i = 0; i < 8; i++)
        id = (id << 8) | zframe_data(rid)[i];
    flight_t *f = NULL;
    for (uint32_t i = 0; i < self->max_flights && !f; i++)
        if (self->flights[i].used && self->flights[i].rid == id)
            f = &self->flights[i];
    if (!f)
        return; /* late (timed out) or not ours */
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    const msgpack_object *map = NULL;
    size_t off = 0;
    if (mp_guard_check(zframe_data(body), zframe_size(body), 0, NULL) == 0 &&
        msgpack_unpack_next(&u, (const char *)zframe_data(body), zframe_size(body), &off) ==
            MSGPACK_UNPACK_SUCCESS &&
        u.data.type == MSGPACK_OBJECT_MAP)
        map = &u.data;
    char code[DLQ_CODE_MAX + 1], message[DLQ_MESSAGE_MAX + 1];
    const msgpack_object *ok = map ? ctl_arg(map, "ok") : NULL;
    if (zframe_streq(status, "OK") && ok && ok->type == MSGPACK_OBJECT_BOOLEAN) {
        if (ok->via.boolean) {
            s_end(self, f, true, NULL, NULL);
        } else {
            s_strfield(map, "code", code, sizeof(code), "handler.failed");
            s_strfield(map, "message", message, sizeof(message), "");
            s_end(self, f, false, code, message);
        }
    } else if (zframe_streq(status, "ERR")) {
        char rcode[64], rmsg[DLQ_MESSAGE_MAX + 1 - 80];
        s_strfield(map, "code", rcode, sizeof(rcode), "unknown");
        s_strfield(map, "message", rmsg, sizeof(rmsg), "");
        snprintf(message, sizeof(message), "REDELIVER answered ERR %.63s: %.900s", rcode, rmsg);
        s_end(self, f, false,
              strcmp(rcode, "not_found") == 0 ? "dlq.no_subscriber" : "dlq.remote_error",
              message);
    } else {
        s_end(self, f, false, "dlq.bad_reply",
              "the subscriber's node answered REDELIVER with neither OK {ok: bool} nor ERR");
    }
    msgpack_unpacked_destroy(&u);
}

size_t dlq_link_poll_prepare(dlq_link_t *self, zmq_pollitem_t *items, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < self->ndealers && n < cap; i++)
        items[n++] = (zmq_pollitem_t){zsock_resolve(self->dealers[i]->sock), 0, ZMQ_POLLIN, 0};
    return n;
}

void dlq_link_poll_done(dlq_link_t *self, const zmq_pollitem_t *items, size_t n)
{
    /* DEALERs are only closed in dlq_link_tick, so items[i] is still dealers[i]. */
    for (size_t i = 0; i < n && i < self->ndealers; i++) {
        if (!(items[i].revents & ZMQ_POLLIN))
            continue;
        dealer_t *d = self->dealers[i];
        for (int k = 0; k < 256 && (zsock_events(d->sock) & ZMQ_POLLIN); k++) {
            zmsg_t *msg = zmsg_recv(d->sock);
            if (!msg)
                break;
            s_answer(self, msg);
            zmsg_destroy(&msg);
        }
    }
}

void dlq_link_tick(dlq_link_t *self, int64_t now_ms)
{
    for (uint32_t i = 0; i < self->max_flights; i++) {
        flight_t *f = &self->flights[i];
        if (!f->used || f->deadline_ms > now_ms)
            continue;
        char message[DLQ_MESSAGE_MAX + 1];
        snprintf(message, sizeof(message), "no answer to REDELIVER from %s (%s) within %d ms",
                 f->node, f->dealer ? f->dealer->endpoint : "?", self->timeout_ms);
        if (f->dealer)
            f->dealer->broken = true;
        s_end(self, f, false, "dlq.timeout", message);
    }
    if (now_ms < self->next_reap_ms)
        return;
    self->next_reap_ms = now_ms + 1000;
    for (size_t i = 0; i < self->ndealers;) {
        dealer_t *d = self->dealers[i];
        if (d->in_flight == 0 && (d->broken || now_ms - d->last_used_ms > DEALER_IDLE_MS))
            s_dealer_close(self, i);
        else
            i++;
    }
}

int64_t dlq_link_next_deadline(const dlq_link_t *self)
{
    int64_t t = 0;
    for (uint32_t i = 0; i < self->max_flights; i++)
        if (self->flights[i].used && (!t || self->flights[i].deadline_ms < t))
            t = self->flights[i].deadline_ms;
    return t;
}

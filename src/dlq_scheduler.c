/*  dlq_scheduler.c - when to redeliver which letter, and what an answer does to it. Runs on
    the DLQ's service thread, interleaved with requests; never waits on a subscriber (the
    requests themselves are dlq_redeliver.c's).

    A due letter (pending, next_retry_at <= now) goes to the control endpoint of its node,
    found by name among the peers that are up (weft_node_find_peer). It is written "retrying"
    (redeliveries + 1) before its REDELIVER is sent; at most max_in_flight are in flight.
    Outcomes:
      - ok: resolved (announced on _weft.dlq.resolved);
      - failed: attempts + 1, the error recorded, last_failure = now; after its r-th
        redelivery the letter waits backoff(r + 1) (dlq_backoff_ns), and is parked when r
        reaches a multiple of max_attempts (announced on _weft.dlq.parked), so a parked letter
        that an operator retries gets max_attempts more redeliveries.

    A letter whose node is not up is held back in memory: no attempt spent, no write, counted
    in no_subscriber. The node is looked for again every second; once it is up its letters
    are due again. At most HOLD_MAX letters are held; beyond that, such letters are
    rescheduled in the store a second later instead. While letters are held, due letters are
    looked for at most every RESCAN_MS (the held ones sit at the head of the due index).
*/
#include "dlq_internal.h"

#define READY_MAX 256            /* due letters taken from the store per scan */
#define HOLD_MAX 32768
#define RESCAN_MS 100

typedef struct {
    int64_t check_ms;            /* when to look for the node again */
    size_t held;                 /* letters held back for it */
} absent_t;

struct dlq_sched_t {
    dlq_svc_t *sv;
    dlq_t *dlq;
    dlq_link_t *link;
    uint32_t max_flights;
    zhashx_t *held;              /* letter id (hex) -> node name: held back, node not up */
    zhashx_t *absent;            /* node name -> absent_t */
    uint8_t (*ready)[WEFT_ID_SIZE];
    size_t nready, ready_at;
    uint8_t (*scan)[WEFT_ID_SIZE];
    size_t scan_cap;
    int64_t wake_ns;             /* earliest due time announced by dlq_sched_wake (0: none) */
    bool released;               /* held letters were released: scan now */
    bool scan_empty;             /* the last scan found nothing to send */
    int64_t last_scan_ms;
    int64_t next_due_ns;         /* the store's earliest due time after the last tick */
    int64_t next_absent_ms;
    /* one-tick cache of the last peer looked up */
    char peer_name[WEFT_NAME_MAX + 1];
    weft_peer_info_t peer;
    int peer_rc;
    int64_t peer_tick;
    int64_t tick;
};

static void s_free_item(void **item)
{
    free(*item);
    *item = NULL;
}

static void s_hex(const uint8_t id[WEFT_ID_SIZE], char out[2 * WEFT_ID_SIZE + 1])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < WEFT_ID_SIZE; i++) {
        out[2 * i] = digits[id[i] >> 4];
        out[2 * i + 1] = digits[id[i] & 15];
    }
    out[2 * WEFT_ID_SIZE] = 0;
}

static void s_gauges(dlq_sched_t *self)
{
    atomic_store(&self->dlq->in_flight, dlq_link_in_flight(self->link));
    atomic_store(&self->dlq->deferred, zhashx_size(self->held));
}

void dlq_sched_wake(dlq_sched_t *self, int64_t due_ns)
{
    if (!self->wake_ns || due_ns < self->wake_ns)
        self->wake_ns = due_ns;
    if (!self->next_due_ns || due_ns < self->next_due_ns)
        self->next_due_ns = due_ns;
}

void dlq_sched_forget(dlq_sched_t *self, const uint8_t id[WEFT_ID_SIZE])
{
    char hex[2 * WEFT_ID_SIZE + 1];
    s_hex(id, hex);
    const char *node = zhashx_lookup(self->held, hex);
    if (!node)
        return;
    absent_t *a = zhashx_lookup(self->absent, node);
    if (a && a->held > 0)
        a->held--;
    zhashx_delete(self->held, hex);
    s_gauges(self);
}

/* ---- outcomes -------------------------------------------------------------------------- */

/*  The redelivery of letter id ended (dlq_outcome_fn). */
static void s_outcome(void *arg, const uint8_t id[WEFT_ID_SIZE], bool ok, const char *code,
                      const char *message)
{
    dlq_sched_t *self = arg;
    dlq_svc_t *sv = self->sv;
    const dlq_opts_t *o = &self->dlq->opts;
    s_gauges(self);
    dlq_letter_t l;
    uint8_t *buf = NULL;
    if (dlq_store_get(sv->store, id, &l, &buf) != 0 || l.state != DLQ_RETRYING) {
        free(buf); /* purged meanwhile */
        return;
    }
    dlq_letter_t was = l;
    int64_t now = weft_now_ns();
    const char *what = NULL;
    if (ok) {
        l.state = DLQ_RESOLVED;
        l.next_retry_at = 0;
        what = "resolved";
    } else {
        if (l.attempts < UINT32_MAX)
            l.attempts++;
        snprintf(l.code, sizeof(l.code), "%s", code);
        snprintf(l.message, sizeof(l.message), "%s", message);
        l.last_failure = now;
        if (l.redeliveries % o->max_attempts == 0) {
            l.state = DLQ_PARKED;
            l.next_retry_at = 0;
            what = "parked";
        } else {
            l.state = DLQ_PENDING;
            l.next_retry_at = now + dlq_backoff_ns(o, l.redeliveries + 1);
        }
    }
    if (dlq_svc_update(sv, &was, &l) == 0) {
        atomic_fetch_add(ok ? &self->dlq->resolved : &self->dlq->failed, 1);
        if (l.state == DLQ_PARKED)
            atomic_fetch_add(&self->dlq->parked, 1);
        if (l.state == DLQ_PENDING)
            dlq_sched_wake(self, l.next_retry_at);
        if (what)
            dlq_announce(sv, what, &l);
    }
    free(buf);
}

/* ---- sending --------------------------------------------------------------------------- */

/*  Holds a letter back: its node is not up. */
static void s_hold(dlq_sched_t *self, dlq_letter_t *l, int64_t now_ms)
{
    atomic_fetch_add(&self->dlq->no_subscriber, 1);
    absent_t *a = zhashx_lookup(self->absent, l->node);
    if (!a) {
        a = calloc(1, sizeof(*a));
        assert(a);
        a->check_ms = now_ms + DLQ_NODE_RECHECK_MS;
        zhashx_insert(self->absent, l->node, a);
        if (!self->next_absent_ms || a->check_ms < self->next_absent_ms)
            self->next_absent_ms = a->check_ms;
    }
    if (zhashx_size(self->held) < HOLD_MAX) {
        char hex[2 * WEFT_ID_SIZE + 1];
        s_hex(l->id, hex);
        if (!zhashx_lookup(self->held, hex)) {
            zhashx_insert(self->held, hex, strdup(l->node));
            a->held++;
        }
    } else {
        dlq_letter_t was = *l;
        l->next_retry_at = weft_now_ns() + (int64_t)DLQ_NODE_RECHECK_MS * 1000000;
        dlq_svc_update(self->sv, &was, l);
    }
    s_gauges(self);
}

static int s_find_peer(dlq_sched_t *self, const char *node, weft_peer_info_t *out)
{
    if (self->peer_tick != self->tick || strcmp(self->peer_name, node) != 0) {
        self->peer_rc = weft_node_find_peer(self->dlq->node, 0, NULL, node, 0, &self->peer);
        if (self->peer_rc == WEFT_OK && !self->peer.ctl[0])
            self->peer_rc = WEFT_ENOTFOUND;
        snprintf(self->peer_name, sizeof(self->peer_name), "%s", node);
        self->peer_tick = self->tick;
    }
    *out = self->peer;
    return self->peer_rc;
}

/*  Sends one due letter, or holds it back. */
static void s_dispatch(dlq_sched_t *self, const uint8_t id[WEFT_ID_SIZE], int64_t now_ns,
                       int64_t now_ms)
{
    dlq_svc_t *sv = self->sv;
    dlq_letter_t l;
    uint8_t *buf = NULL;
    if (dlq_store_get(sv->store, id, &l, &buf) != 0 || l.state != DLQ_PENDING ||
        l.next_retry_at > now_ns) {
        free(buf);
        return;
    }
    weft_peer_info_t peer;
    if (zhashx_lookup(self->absent, l.node) || s_find_peer(self, l.node, &peer) != WEFT_OK) {
        s_hold(self, &l, now_ms);
        free(buf);
        return;
    }
    dlq_letter_t was = l;
    l.state = DLQ_RETRYING;
    l.redeliveries++;
    if (dlq_svc_update(sv, &was, &l) == 0) {
        if (dlq_link_send(self->link, peer.ctl, &l, now_ms) == 0) {
            atomic_fetch_add(&self->dlq->redelivered, 1);
        } else {
            /* Not connectable, or its queue is full: as if the node were not up. */
            dlq_svc_update(sv, &l, &was);
            s_hold(self, &was, now_ms);
        }
    }
    s_gauges(self);
    free(buf);
}

/* ---- the tick ---------------------------------------------------------------------------- */

/*  Looks again for nodes that were not up; releases the letters of those that are. */
static void s_recheck(dlq_sched_t *self, int64_t now_ms)
{
    if (!self->next_absent_ms || now_ms < self->next_absent_ms)
        return;
    self->next_absent_ms = 0;
    zlist_t *up = zlist_new();
    zlist_autofree(up);
    for (absent_t *a = zhashx_first(self->absent); a; a = zhashx_next(self->absent)) {
        const char *node = zhashx_cursor(self->absent);
        if (a->check_ms <= now_ms) {
            weft_peer_info_t peer;
            if (a->held == 0 ||
                (weft_node_find_peer(self->dlq->node, 0, NULL, node, 0, &peer) == WEFT_OK &&
                 peer.ctl[0])) {
                zlist_append(up, (void *)node);
                continue;
            }
            a->check_ms = now_ms + DLQ_NODE_RECHECK_MS;
        }
        if (!self->next_absent_ms || a->check_ms < self->next_absent_ms)
            self->next_absent_ms = a->check_ms;
    }
    if (zlist_size(up) == 0) {
        zlist_destroy(&up);
        return;
    }
    zlist_t *keys = zlist_new();
    zlist_autofree(keys);
    for (const char *node = zhashx_first(self->held); node; node = zhashx_next(self->held))
        for (const char *n = zlist_first(up); n; n = zlist_next(up))
            if (strcmp(n, node) == 0) {
                zlist_append(keys, (void *)zhashx_cursor(self->held));
                break;
            }
    for (const char *k = zlist_first(keys); k; k = zlist_next(keys))
        zhashx_delete(self->held, k);
    for (const char *n = zlist_first(up); n; n = zlist_next(up))
        zhashx_delete(self->absent, n);
    self->released = zlist_size(keys) > 0;
    zlist_destroy(&keys);
    zlist_destroy(&up);
    s_gauges(self);
}

/*  Takes the next due letters from the store, leaving out those held back. */
static void s_refill(dlq_sched_t *self, int64_t now_ns, int64_t now_ms)
{
    self->last_scan_ms = now_ms;
    self->released = false;
    self->nready = self->ready_at = 0;
    size_t held = zhashx_size(self->held);
    size_t want = held + READY_MAX < self->scan_cap ? held + READY_MAX : self->scan_cap;
    size_t n = dlq_store_due(self->sv->store, now_ns, self->scan, want);
    for (size_t i = 0; i < n && self->nready < READY_MAX; i++) {
        if (held) {
            char hex[2 * WEFT_ID_SIZE + 1];
            s_hex(self->scan[i], hex);
            if (zhashx_lookup(self->held, hex))
                continue;
        }
        memcpy(self->ready[self->nready++], self->scan[i], WEFT_ID_SIZE);
    }
}

static bool s_may_scan(dlq_sched_t *self, int64_t now_ns, int64_t now_ms)
{
    if (!self->next_due_ns || self->next_due_ns > now_ns)
        return false;
    if ((zhashx_size(self->held) == 0 && !self->scan_empty) || self->released)
        return true;
    if (self->wake_ns && self->wake_ns <= now_ns)
        return true;
    return now_ms - self->last_scan_ms >= RESCAN_MS;
}

void dlq_sched_tick(dlq_sched_t *self)
{
    int64_t now_ms = zclock_mono();
    int64_t now_ns = weft_now_ns();
    self->tick++;
    dlq_link_tick(self->link, now_ms);
    s_recheck(self, now_ms);
    self->next_due_ns = dlq_store_next_due(self->sv->store);
    int refills = 0, max_refills = (int)(self->max_flights / READY_MAX) + 1;
    while (dlq_link_in_flight(self->link) < self->max_flights) {
        if (self->ready_at == self->nready) {
            if (refills == max_refills || !s_may_scan(self, now_ns, now_ms))
                break;
            refills++;
            if (self->wake_ns && self->wake_ns <= now_ns)
                self->wake_ns = 0;
            s_refill(self, now_ns, now_ms);
            self->scan_empty = self->nready == 0;
            if (self->scan_empty)
                break;
        }
        s_dispatch(self, self->ready[self->ready_at++], now_ns, now_ms);
    }
    self->next_due_ns = dlq_store_next_due(self->sv->store);
}

int dlq_sched_timeout_ms(dlq_sched_t *self)
{
    int64_t now_ms = zclock_mono();
    int64_t now_ns = weft_now_ns();
    int64_t t = 1000;
    int64_t deadline = dlq_link_next_deadline(self->link);
    if (deadline && deadline - now_ms < t)
        t = deadline - now_ms;
    if (self->next_absent_ms && self->next_absent_ms - now_ms < t)
        t = self->next_absent_ms - now_ms;
    if (dlq_link_in_flight(self->link) < self->max_flights) {
        if (self->ready_at < self->nready || self->released) {
            t = 0;
        } else if (self->next_due_ns) {
            int64_t due_ms = (self->next_due_ns - now_ns + 999999) / 1000000;
            if (self->next_due_ns <= now_ns &&
                (zhashx_size(self->held) > 0 || self->scan_empty)) {
                /* due letters are held back: rescan now and then, or at the next wake */
                due_ms = RESCAN_MS - (now_ms - self->last_scan_ms);
                if (self->wake_ns) {
                    int64_t w = (self->wake_ns - now_ns + 999999) / 1000000;
                    if (w < due_ms)
                        due_ms = w;
                }
            }
            if (due_ms < t)
                t = due_ms;
        }
    }
    return t < 0 ? 0 : (int)t;
}

size_t dlq_sched_poll_prepare(dlq_sched_t *self, zmq_pollitem_t *items, size_t cap)
{
    return dlq_link_poll_prepare(self->link, items, cap);
}

void dlq_sched_poll_done(dlq_sched_t *self, const zmq_pollitem_t *items, size_t n)
{
    dlq_link_poll_done(self->link, items, n);
}

void dlq_sched_pack_info(dlq_sched_t *self, msgpack_packer *pk)
{
    dlq_t *d = self->dlq;
    msgpack_pack_map(pk, 7);
    ctl_pack_kv_uint(pk, "redelivered", atomic_load(&d->redelivered));
    ctl_pack_kv_uint(pk, "resolved", atomic_load(&d->resolved));
    ctl_pack_kv_uint(pk, "parked", atomic_load(&d->parked));
    ctl_pack_kv_uint(pk, "failed", atomic_load(&d->failed));
    ctl_pack_kv_uint(pk, "no_subscriber", atomic_load(&d->no_subscriber));
    ctl_pack_kv_uint(pk, "in_flight", dlq_link_in_flight(self->link));
    ctl_pack_kv_uint(pk, "held_back", zhashx_size(self->held));
}

dlq_sched_t *dlq_sched_new(dlq_svc_t *sv)
{
    dlq_sched_t *self = calloc(1, sizeof(*self));
    assert(self);
    self->sv = sv;
    self->dlq = sv->dlq;
    self->max_flights = sv->dlq->opts.max_in_flight;
    self->link = dlq_link_new(self->max_flights, sv->dlq->opts.redeliver_timeout_ms, s_outcome,
                              self);
    self->held = zhashx_new();
    zhashx_set_destructor(self->held, s_free_item);
    self->absent = zhashx_new();
    zhashx_set_destructor(self->absent, s_free_item);
    self->ready = calloc(READY_MAX, WEFT_ID_SIZE);
    self->scan_cap = HOLD_MAX + READY_MAX;
    self->scan = calloc(self->scan_cap, WEFT_ID_SIZE);
    assert(self->ready && self->scan);
    return self;
}

/*  Shutdown: a letter in flight will not hear its answer; it is due again now. */
static void s_back_to_pending(void *arg, const uint8_t id[WEFT_ID_SIZE])
{
    dlq_sched_t *self = arg;
    dlq_letter_t l;
    uint8_t *buf = NULL;
    if (dlq_store_get(self->sv->store, id, &l, &buf) == 0 && l.state == DLQ_RETRYING) {
        dlq_letter_t was = l;
        l.state = DLQ_PENDING;
        l.next_retry_at = weft_now_ns();
        dlq_svc_update(self->sv, &was, &l);
    }
    free(buf);
}

void dlq_sched_destroy(dlq_sched_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    dlq_sched_t *self = *self_p;
    dlq_link_each(self->link, s_back_to_pending, self);
    dlq_link_destroy(&self->link);
    zhashx_destroy(&self->held);
    zhashx_destroy(&self->absent);
    free(self->ready);
    free(self->scan);
    free(self);
    *self_p = NULL;
}

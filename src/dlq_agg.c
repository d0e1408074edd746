/*  dlq_agg.c - aggregates of the open letters, kept incrementally by the service thread so that
    INFO and heartbeats cost no scan: per subscriber and per topic {pending, parked}, per error
    code the number of open letters, and the oldest letter still pending.

    Every letter change goes through dlq_agg_move (dlq_svc_update, dlq_svc_delete, PUT), so
    the figures follow the store exactly. Key tables are bounded (AGG_KEYS_MAX keys each);
    beyond that, new keys are counted under "_other".

    The oldest pending letter is the first pending or retrying letter in letter id (= arrival)
    order. A letter that becomes pending replaces it when stored earlier; when it leaves the
    pending states, the next one is found by scanning the store onwards from it, at most
    AGG_SCAN letters per call, continuing on the next call if needed.
*/
#include "dlq_internal.h"

#define AGG_KEYS_MAX 65536
#define AGG_OTHER "_other"
#define AGG_SCAN 4096

typedef struct {
    uint64_t pending, parked;
} pair_t;

struct dlq_agg_t {
    zhashx_t *by_sub;    /* subscriber -> pair_t */
    zhashx_t *by_topic;  /* topic -> pair_t */
    zhashx_t *codes;     /* code -> uint64_t */
    /* oldest pending letter */
    bool have;                    /* oldest_* hold it */
    uint8_t oldest_id[WEFT_ID_SIZE];
    int64_t oldest_ff;
    bool dirty;                   /* unknown: scan from scan_from (exclusive) */
    bool scan_started;            /* scan_from is set (else: from the first letter) */
    uint8_t scan_from[WEFT_ID_SIZE];
    int64_t last_age_ms;          /* reported while a scan is unfinished */
};

static void s_free_item(void **item)
{
    free(*item);
    *item = NULL;
}

static zhashx_t *s_table(void)
{
    zhashx_t *h = zhashx_new();
    assert(h);
    zhashx_set_destructor(h, s_free_item);
    return h;
}

dlq_agg_t *dlq_agg_new(void)
{
    dlq_agg_t *self = calloc(1, sizeof(*self));
    assert(self);
    self->by_sub = s_table();
    self->by_topic = s_table();
    self->codes = s_table();
    return self;
}

void dlq_agg_destroy(dlq_agg_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    dlq_agg_t *self = *self_p;
    zhashx_destroy(&self->by_sub);
    zhashx_destroy(&self->by_topic);
    zhashx_destroy(&self->codes);
    free(self);
    *self_p = NULL;
}

/*  The entry for key: the key's own, else (table full) "_other"; created when add. */
static void *s_entry(zhashx_t *h, const char *key, size_t size, bool add)
{
    void *e = zhashx_lookup(h, key);
    if (e || !add)
        return e ? e : zhashx_lookup(h, AGG_OTHER);
    if (zhashx_size(h) >= AGG_KEYS_MAX) {
        key = AGG_OTHER;
        e = zhashx_lookup(h, key);
        if (e)
            return e;
    }
    e = calloc(1, size);
    assert(e);
    zhashx_insert(h, key, e);
    return e;
}

static void s_pair(zhashx_t *h, const char *key, dlq_state_t state, int sign)
{
    bool parked = state == DLQ_PARKED;
    pair_t *p = s_entry(h, key, sizeof(pair_t), sign > 0);
    if (!p)
        return;
    uint64_t *v = parked ? &p->parked : &p->pending;
    if (sign > 0)
        (*v)++;
    else if (*v > 0)
        (*v)--;
    if (p->pending == 0 && p->parked == 0)
        zhashx_delete(h, zhashx_lookup(h, key) == p ? key : AGG_OTHER);
}

static void s_code(zhashx_t *h, const char *key, int sign)
{
    uint64_t *c = s_entry(h, key, sizeof(uint64_t), sign > 0);
    if (!c)
        return;
    if (sign > 0)
        (*c)++;
    else if (*c > 0)
        (*c)--;
    if (*c == 0)
        zhashx_delete(h, zhashx_lookup(h, key) == c ? key : AGG_OTHER);
}

static bool s_is_pending(const dlq_letter_t *l)
{
    return l && (l->state == DLQ_PENDING || l->state == DLQ_RETRYING);
}

static bool s_is_open(const dlq_letter_t *l)
{
    return l && l->state != DLQ_RESOLVED;
}

static void s_count(dlq_agg_t *self, const dlq_letter_t *l, int sign)
{
    if (!s_is_open(l))
        return;
    s_pair(self->by_sub, l->subscriber, l->state, sign);
    s_pair(self->by_topic, l->topic, l->state, sign);
    s_code(self->codes, l->code, sign);
}

/*  A letter became pending: it may be older than the candidate. */
static void s_offer(dlq_agg_t *self, const dlq_letter_t *l)
{
    if (self->dirty) {
        /* Every pending letter lies after scan_from; one before it is the oldest. */
        if (self->scan_started && memcmp(l->id, self->scan_from, WEFT_ID_SIZE) <= 0) {
            self->have = true;
            self->dirty = false;
            memcpy(self->oldest_id, l->id, WEFT_ID_SIZE);
            self->oldest_ff = l->first_failure;
        }
        return;
    }
    if (!self->have || memcmp(l->id, self->oldest_id, WEFT_ID_SIZE) < 0) {
        self->have = true;
        memcpy(self->oldest_id, l->id, WEFT_ID_SIZE);
        self->oldest_ff = l->first_failure;
    }
}

void dlq_agg_move(dlq_agg_t *self, const dlq_letter_t *was, const dlq_letter_t *now)
{
    s_count(self, was, -1);
    s_count(self, now, +1);
    const dlq_letter_t *l = now ? now : was;
    if (!l)
        return;
    if (s_is_pending(was) && !s_is_pending(now)) {
        if (self->have && memcmp(l->id, self->oldest_id, WEFT_ID_SIZE) == 0) {
            self->have = false;
            self->dirty = true;
            self->scan_started = true;
            memcpy(self->scan_from, l->id, WEFT_ID_SIZE);
        }
    } else if (!s_is_pending(was) && s_is_pending(now)) {
        s_offer(self, now);
    }
}

typedef struct {
    bool found;
    uint8_t id[WEFT_ID_SIZE];
    int64_t ff;
} scan_t;

static int s_scan_cb(const dlq_letter_t *l, void *arg)
{
    scan_t *s = arg;
    if (s->found || !s_is_pending(l))
        return 0;
    s->found = true;
    memcpy(s->id, l->id, WEFT_ID_SIZE);
    s->ff = l->first_failure;
    return 1;
}

int64_t dlq_agg_oldest_pending_ms(dlq_agg_t *self, dlq_store_t *store, int64_t now_ns)
{
    if (self->dirty) {
        dlq_filter_t f = {NULL, NULL, -1, NULL, 0};
        scan_t s = {0};
        uint8_t next[WEFT_ID_SIZE];
        bool more = false;
        size_t n = dlq_store_list(store, &f, now_ns, self->scan_started ? self->scan_from : NULL,
                                  AGG_SCAN, s_scan_cb, &s, next, &more);
        if (s.found) {
            self->have = true;
            self->dirty = false;
            memcpy(self->oldest_id, s.id, WEFT_ID_SIZE);
            self->oldest_ff = s.ff;
        } else if (n > 0 && more) {
            self->scan_started = true;
            memcpy(self->scan_from, next, WEFT_ID_SIZE);
        } else {
            self->dirty = false; /* no pending letter at all */
            self->have = false;
        }
    }
    if (self->have) {
        int64_t age = (now_ns - self->oldest_ff) / 1000000;
        self->last_age_ms = age > 0 ? age : 0;
    } else if (!self->dirty) {
        self->last_age_ms = 0;
    }
    return self->last_age_ms;
}

/* ---- top-n packing -------------------------------------------------------------------- */

typedef struct {
    const char *key;
    uint64_t total;
    const void *value;
} top_t;

/*  The n entries with the largest totals, largest first. Returns how many. */
static size_t s_top(zhashx_t *h, bool pairs, top_t *top, size_t n)
{
    size_t have = 0;
    for (void *v = zhashx_first(h); v; v = zhashx_next(h)) {
        uint64_t total = pairs ? ((pair_t *)v)->pending + ((pair_t *)v)->parked : *(uint64_t *)v;
        if (have == n && (n == 0 || total <= top[n - 1].total))
            continue;
        size_t i = have < n ? have++ : n - 1;
        while (i > 0 && top[i - 1].total < total) {
            top[i] = top[i - 1];
            i--;
        }
        top[i] = (top_t){zhashx_cursor(h), total, v};
    }
    return have;
}

static void s_pack_pairs(zhashx_t *h, msgpack_packer *pk, size_t n)
{
    top_t top[64];
    if (n > 64)
        n = 64;
    size_t k = s_top(h, true, top, n);
    msgpack_pack_map(pk, (uint32_t)k);
    for (size_t i = 0; i < k; i++) {
        const pair_t *p = top[i].value;
        ctl_pack_str(pk, top[i].key);
        msgpack_pack_map(pk, 2);
        ctl_pack_kv_uint(pk, "pending", p->pending);
        ctl_pack_kv_uint(pk, "parked", p->parked);
    }
}

void dlq_agg_pack_by_subscriber(dlq_agg_t *self, msgpack_packer *pk, size_t n)
{
    s_pack_pairs(self->by_sub, pk, n);
}

void dlq_agg_pack_by_topic(dlq_agg_t *self, msgpack_packer *pk, size_t n)
{
    s_pack_pairs(self->by_topic, pk, n);
}

void dlq_agg_pack_top_codes(dlq_agg_t *self, msgpack_packer *pk, size_t n)
{
    top_t top[64];
    if (n > 64)
        n = 64;
    size_t k = s_top(self->codes, false, top, n);
    msgpack_pack_array(pk, (uint32_t)k);
    for (size_t i = 0; i < k; i++) {
        msgpack_pack_array(pk, 2);
        ctl_pack_str(pk, top[i].key);
        msgpack_pack_uint64(pk, top[i].total);
    }
}

/* ---- startup -------------------------------------------------------------------------- */

typedef struct {
    dlq_agg_t *agg;
    uint8_t (*retrying)[WEFT_ID_SIZE];
    size_t nretrying, cap;
} load_t;

static int s_load_cb(const dlq_letter_t *l, void *arg)
{
    load_t *ld = arg;
    dlq_agg_move(ld->agg, NULL, l);
    if (l->state == DLQ_RETRYING) {
        if (ld->nretrying == ld->cap) {
            ld->cap = ld->cap ? ld->cap * 2 : 64;
            ld->retrying = realloc(ld->retrying, ld->cap * WEFT_ID_SIZE);
            assert(ld->retrying);
        }
        memcpy(ld->retrying[ld->nretrying++], l->id, WEFT_ID_SIZE);
    }
    return 0;
}

size_t dlq_agg_load(dlq_agg_t *self, dlq_store_t *store, int64_t now_ns)
{
    load_t ld = {self, NULL, 0, 0};
    dlq_filter_t f = {NULL, NULL, -1, NULL, 0};
    uint8_t cursor[WEFT_ID_SIZE];
    bool started = false, more = true;
    while (more) {
        uint8_t next[WEFT_ID_SIZE];
        more = false;
        size_t n = dlq_store_list(store, &f, now_ns, started ? cursor : NULL, 1024, s_load_cb,
                                  &ld, next, &more);
        if (n == 0)
            break;
        memcpy(cursor, next, WEFT_ID_SIZE);
        started = true;
    }
    /* A REDELIVER was in flight when the previous run stopped: its answer is lost. */
    size_t recovered = 0;
    for (size_t i = 0; i < ld.nretrying; i++) {
        dlq_letter_t l;
        uint8_t *buf = NULL;
        if (dlq_store_get(store, ld.retrying[i], &l, &buf) == 0 && l.state == DLQ_RETRYING) {
            l.state = DLQ_PENDING;
            l.next_retry_at = now_ns;
            if (dlq_store_update(store, &l) == 0)
                recovered++;
        }
        free(buf);
    }
    free(ld.retrying);
    return recovered;
}

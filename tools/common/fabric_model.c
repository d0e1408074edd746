/*  fabric_model.c - the fabric as seen from heartbeats (see fabric_model.h).

    Feeding decodes a heartbeat into a fresh node record first and only then merges it with the
    instance's previous record (rates are deltas between the two), so a rejected heartbeat
    leaves the model exactly as it was. Records live in a hash keyed by the instance id as 16
    hex digits; snapshots copy them out, so readers never hold pointers into the model.
*/
#include "fabric_model.h"

#include <czmq.h>
#include <inttypes.h>
#include <math.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "mp_guard.h"
#include "weft/error.h"

/*  Nesting allowed in a heartbeat: the protocol gives 8 (docs/protocol.md, limits). */
#define HB_DEPTH 8
/*  Forgetting silent instances walks the whole table; once a second is plenty. */
#define EXPIRE_EVERY_MS 1000
/*  Used when a heartbeat carries no usable hb_ms (the protocol's default interval). */
#define HB_MS_DEFAULT 1000
#define HB_MS_MIN 10
#define HB_MS_MAX 3600000

struct fabric_model_t {
    zhashx_t *nodes;            /* "%016" PRIx64 inst -> fabric_node_t *, owned */
    uint64_t accepted;          /* heartbeats merged */
    uint64_t rejected;          /* heartbeats refused */
    int64_t last_expire_ms;     /* when silent instances were last forgotten */
    size_t nhistory;            /* samples held in the ring */
    size_t history_head;        /* index of the next sample to write */
    double history_out[FABRIC_HISTORY];
    double history_in[FABRIC_HISTORY];
};

/* ---- node records ------------------------------------------------------------------------- */

static void s_node_clear(fabric_node_t *n)
{
    free(n->topics);
    free(n->sources);
    json_decref(n->archive);
    json_decref(n->dlq);
    n->topics = NULL;
    n->sources = NULL;
    n->archive = n->dlq = NULL;
    n->ntopics = n->nsources = 0;
}

static void s_node_free(void **item)
{
    if (item && *item) {
        s_node_clear(*item);
        free(*item);
        *item = NULL;
    }
}

static void s_key(uint64_t inst, char key[17])
{
    snprintf(key, 17, "%016" PRIx64, inst);
}

/*  Deep copy of src into dst (arrays and JSON duplicated). Returns 0 or -1 (out of memory;
    dst then holds no allocation). */
static int s_node_copy(fabric_node_t *dst, const fabric_node_t *src)
{
    *dst = *src;
    dst->topics = NULL;
    dst->sources = NULL;
    dst->archive = dst->dlq = NULL;
    if (src->ntopics) {
        dst->topics = malloc(src->ntopics * sizeof(*dst->topics));
        if (!dst->topics)
            goto oom;
        memcpy(dst->topics, src->topics, src->ntopics * sizeof(*dst->topics));
    }
    if (src->nsources) {
        dst->sources = malloc(src->nsources * sizeof(*dst->sources));
        if (!dst->sources)
            goto oom;
        memcpy(dst->sources, src->sources, src->nsources * sizeof(*dst->sources));
    }
    if (src->archive && !(dst->archive = json_deep_copy(src->archive)))
        goto oom;
    if (src->dlq && !(dst->dlq = json_deep_copy(src->dlq)))
        goto oom;
    return 0;
oom:
    s_node_clear(dst);
    return -1;
}

/* ---- decoding ----------------------------------------------------------------------------- */

/*  Copies n bytes into out (capacity cap), cut to fit; bytes outside printable ASCII become
    '?', so nothing from the network can drive a terminal or break a label. */
static void s_clean(const char *p, size_t n, char *out, size_t cap)
{
    if (n > cap - 1)
        n = cap - 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        out[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    out[n] = 0;
}

static bool s_is(const msgpack_object *k, const char *name)
{
    size_t n = strlen(name);
    return k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
           memcmp(k->via.str.ptr, name, n) == 0;
}

static bool s_uint(const msgpack_object *o, uint64_t *out)
{
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return false;
    *out = o->via.u64;
    return true;
}

static bool s_int(const msgpack_object *o, int64_t *out)
{
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *out = o->via.i64;
        return true;
    }
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= INT64_MAX) {
        *out = (int64_t)o->via.u64;
        return true;
    }
    return false;
}

static bool s_str(const msgpack_object *o, char *out, size_t cap)
{
    if (o->type != MSGPACK_OBJECT_STR)
        return false;
    s_clean(o->via.str.ptr, o->via.str.size, out, cap);
    return true;
}

static void s_counters(const msgpack_object *m, fabric_counters_t *c)
{
    static const struct {
        const char *key;
        size_t off;
    } fields[] = {
        {"published", offsetof(fabric_counters_t, published)},
        {"publish_errors", offsetof(fabric_counters_t, publish_errors)},
        {"received", offsetof(fabric_counters_t, received)},
        {"delivered", offsetof(fabric_counters_t, delivered)},
        {"dropped", offsetof(fabric_counters_t, dropped)},
        {"gaps", offsetof(fabric_counters_t, gaps)},
        {"repaired", offsetof(fabric_counters_t, repaired)},
        {"handler_errors", offsetof(fabric_counters_t, handler_errors)},
        {"dead_lettered", offsetof(fabric_counters_t, dead_lettered)},
        {"malformed", offsetof(fabric_counters_t, malformed)},
        {"ctl_requests", offsetof(fabric_counters_t, ctl_requests)},
        {"ctl_errors", offsetof(fabric_counters_t, ctl_errors)},
    };
    if (m->type != MSGPACK_OBJECT_MAP)
        return;
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        const msgpack_object_kv *kv = &m->via.map.ptr[i];
        for (size_t f = 0; f < sizeof(fields) / sizeof(fields[0]); f++)
            if (s_is(&kv->key, fields[f].key))
                s_uint(&kv->val, (uint64_t *)((char *)c + fields[f].off));
    }
}

static void s_outbox(const msgpack_object *m, fabric_node_t *n)
{
    if (m->type != MSGPACK_OBJECT_MAP)
        return;
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        const msgpack_object_kv *kv = &m->via.map.ptr[i];
        if (s_is(&kv->key, "events"))
            s_uint(&kv->val, &n->outbox_events);
        else if (s_is(&kv->key, "bytes"))
            s_uint(&kv->val, &n->outbox_bytes);
        else if (s_is(&kv->key, "first_seq"))
            s_uint(&kv->val, &n->outbox_first_seq);
    }
}

/*  [[topic, pub_events, pub_bytes, recv_events, recv_bytes], ...]; malformed rows are skipped,
    rows beyond FABRIC_TOPICS_MAX dropped. Returns -1 only when out of memory. */
static int s_topics(const msgpack_object *a, fabric_node_t *n)
{
    if (a->type != MSGPACK_OBJECT_ARRAY || a->via.array.size == 0)
        return 0;
    size_t cap = a->via.array.size < FABRIC_TOPICS_MAX ? a->via.array.size : FABRIC_TOPICS_MAX;
    n->topics = calloc(cap, sizeof(*n->topics));
    if (!n->topics)
        return -1;
    for (uint32_t i = 0; i < a->via.array.size && n->ntopics < cap; i++) {
        const msgpack_object *r = &a->via.array.ptr[i];
        if (r->type != MSGPACK_OBJECT_ARRAY || r->via.array.size < 5)
            continue;
        const msgpack_object *f = r->via.array.ptr;
        fabric_topic_row_t *t = &n->topics[n->ntopics];
        if (f[0].type != MSGPACK_OBJECT_STR || f[0].via.str.size == 0 ||
            !s_uint(&f[1], &t->pub_events) || !s_uint(&f[2], &t->pub_bytes) ||
            !s_uint(&f[3], &t->recv_events) || !s_uint(&f[4], &t->recv_bytes)) {
            memset(t, 0, sizeof(*t));
            continue;
        }
        s_str(&f[0], t->topic, sizeof(t->topic));
        n->ntopics++;
    }
    return 0;
}

/*  [[src, inst, last_seq, last_ts, gaps], ...], as s_topics. */
static int s_sources(const msgpack_object *a, fabric_node_t *n)
{
    if (a->type != MSGPACK_OBJECT_ARRAY || a->via.array.size == 0)
        return 0;
    size_t cap = a->via.array.size < FABRIC_SOURCES_MAX ? a->via.array.size : FABRIC_SOURCES_MAX;
    n->sources = calloc(cap, sizeof(*n->sources));
    if (!n->sources)
        return -1;
    for (uint32_t i = 0; i < a->via.array.size && n->nsources < cap; i++) {
        const msgpack_object *r = &a->via.array.ptr[i];
        if (r->type != MSGPACK_OBJECT_ARRAY || r->via.array.size < 5)
            continue;
        const msgpack_object *f = r->via.array.ptr;
        fabric_source_row_t *s = &n->sources[n->nsources];
        if (!s_str(&f[0], s->src, sizeof(s->src)) || !s_uint(&f[1], &s->inst) ||
            !s_uint(&f[2], &s->last_seq) || !s_int(&f[3], &s->last_ts) ||
            !s_uint(&f[4], &s->gaps)) {
            memset(s, 0, sizeof(*s));
            continue;
        }
        n->nsources++;
    }
    return 0;
}

/*  {unit: "us", le: [...], counts: [...], count, sum}. Anything inconsistent (a unit other
    than us, no bound, counts not one longer than le, bounds not increasing) leaves it
    absent. */
static void s_latency(const msgpack_object *m, fabric_latency_t *l)
{
    memset(l, 0, sizeof(*l));
    if (m->type != MSGPACK_OBJECT_MAP)
        return;
    const msgpack_object *le = NULL, *counts = NULL;
    bool unit_ok = true, have_count = false, have_sum = false;
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        const msgpack_object_kv *kv = &m->via.map.ptr[i];
        if (s_is(&kv->key, "le"))
            le = &kv->val;
        else if (s_is(&kv->key, "counts"))
            counts = &kv->val;
        else if (s_is(&kv->key, "count"))
            have_count = s_uint(&kv->val, &l->count);
        else if (s_is(&kv->key, "sum"))
            have_sum = s_uint(&kv->val, &l->sum_us);
        else if (s_is(&kv->key, "unit"))
            unit_ok = kv->val.type == MSGPACK_OBJECT_STR && kv->val.via.str.size == 2 &&
                      memcmp(kv->val.via.str.ptr, "us", 2) == 0;
    }
    if (!unit_ok || !have_count || !have_sum || !le || !counts ||
        le->type != MSGPACK_OBJECT_ARRAY || counts->type != MSGPACK_OBJECT_ARRAY ||
        le->via.array.size == 0 || le->via.array.size > FABRIC_LATENCY_MAX ||
        counts->via.array.size != le->via.array.size + 1)
        goto bad;
    l->nbounds = le->via.array.size;
    for (size_t i = 0; i < l->nbounds; i++)
        if (!s_uint(&le->via.array.ptr[i], &l->le_us[i]) || (i && l->le_us[i] <= l->le_us[i - 1]))
            goto bad;
    for (size_t i = 0; i <= l->nbounds; i++)
        if (!s_uint(&counts->via.array.ptr[i], &l->counts[i]))
            goto bad;
    l->present = true;
    return;
bad:
    memset(l, 0, sizeof(*l));
}

/*  A msgpack value as JSON, for the role sections the model shows as they come. *budget
    bounds the elements converted; what is beyond it is left out. Returns NULL when out of
    budget or memory. */
static json_t *s_to_json(const msgpack_object *o, int *budget)
{
    if (--*budget < 0)
        return NULL;
    char text[FABRIC_STR_MAX + 1];
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        return json_null();
    case MSGPACK_OBJECT_BOOLEAN:
        return json_boolean(o->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        return o->via.u64 <= INT64_MAX ? json_integer((json_int_t)o->via.u64)
                                       : json_real((double)o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return json_integer((json_int_t)o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return isfinite(o->via.f64) ? json_real(o->via.f64) : json_null();
    case MSGPACK_OBJECT_STR:
        s_clean(o->via.str.ptr, o->via.str.size, text, sizeof(text));
        return json_string(text);
    case MSGPACK_OBJECT_BIN:
        return json_sprintf("<%" PRIu32 " bytes>", o->via.bin.size);
    case MSGPACK_OBJECT_EXT:
        return json_sprintf("<ext %d, %" PRIu32 " bytes>", (int)o->via.ext.type, o->via.ext.size);
    case MSGPACK_OBJECT_ARRAY: {
        json_t *a = json_array();
        for (uint32_t i = 0; a && i < o->via.array.size; i++) {
            json_t *v = s_to_json(&o->via.array.ptr[i], budget);
            if (!v || json_array_append_new(a, v) != 0)
                break;
        }
        return a;
    }
    case MSGPACK_OBJECT_MAP: {
        json_t *m = json_object();
        for (uint32_t i = 0; m && i < o->via.map.size; i++) {
            const msgpack_object_kv *kv = &o->via.map.ptr[i];
            if (kv->key.type == MSGPACK_OBJECT_STR)
                s_clean(kv->key.via.str.ptr, kv->key.via.str.size, text, sizeof(text));
            else if (kv->key.type == MSGPACK_OBJECT_POSITIVE_INTEGER)
                snprintf(text, sizeof(text), "%" PRIu64, kv->key.via.u64);
            else if (kv->key.type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
                snprintf(text, sizeof(text), "%" PRId64, kv->key.via.i64);
            else
                continue;
            json_t *v = s_to_json(&kv->val, budget);
            if (!v || json_object_set_new(m, text, v) != 0)
                break;
        }
        return m;
    }
    }
    return json_null();
}

/*  A role section: kept when it is a map. Returns -1 only when out of memory. */
static int s_section(const msgpack_object *o, json_t **out)
{
    if (o->type != MSGPACK_OBJECT_MAP)
        return 0;
    json_decref(*out);
    int budget = FABRIC_SECTION_ITEMS;
    *out = s_to_json(o, &budget);
    return *out ? 0 : -1;
}

/*  Decodes a heartbeat into n (zeroed first). Returns 0, WEFT_EMALFORMED or WEFT_ENOMEM; on
    error n holds no allocation. */
static int s_decode(const void *data, size_t size, fabric_node_t *n)
{
    memset(n, 0, sizeof(*n));
    if (!data || size == 0 || mp_guard_check(data, size, HB_DEPTH, NULL) != 0)
        return WEFT_EMALFORMED;
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    int rc = WEFT_EMALFORMED;
    if (msgpack_unpack_next(&u, data, size, &off) != MSGPACK_UNPACK_SUCCESS || off != size ||
        u.data.type != MSGPACK_OBJECT_MAP)
        goto done;
    bool have_inst = false;
    snprintf(n->name, sizeof(n->name), "?");
    snprintf(n->role, sizeof(n->role), "node");
    const msgpack_object *m = &u.data;
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        const msgpack_object *k = &m->via.map.ptr[i].key, *v = &m->via.map.ptr[i].val;
        int err = 0;
        if (s_is(k, "inst")) {
            if (!(have_inst = s_uint(v, &n->inst)))
                goto done;
        } else if (s_is(k, "name"))
            s_str(v, n->name, sizeof(n->name));
        else if (s_is(k, "role"))
            s_str(v, n->role, sizeof(n->role));
        else if (s_is(k, "host"))
            s_str(v, n->host, sizeof(n->host));
        else if (s_is(k, "pid"))
            s_uint(v, &n->pid);
        else if (s_is(k, "uptime_ms"))
            s_uint(v, &n->uptime_ms);
        else if (s_is(k, "hb_ms"))
            s_uint(v, &n->hb_ms);
        else if (s_is(k, "seq"))
            s_uint(v, &n->seq);
        else if (s_is(k, "peers_up"))
            s_uint(v, &n->peers_up);
        else if (s_is(k, "peers_down"))
            s_uint(v, &n->peers_down);
        else if (s_is(k, "counters"))
            s_counters(v, &n->c);
        else if (s_is(k, "outbox"))
            s_outbox(v, n);
        else if (s_is(k, "topics") && !n->topics)
            err = s_topics(v, n);
        else if (s_is(k, "sources") && !n->sources)
            err = s_sources(v, n);
        else if (s_is(k, "latency"))
            s_latency(v, &n->latency);
        else if (s_is(k, "archive"))
            err = s_section(v, &n->archive);
        else if (s_is(k, "dlq"))
            err = s_section(v, &n->dlq);
        if (err) {
            rc = WEFT_ENOMEM;
            goto done;
        }
    }
    if (!have_inst)
        goto done;
    if (n->hb_ms < HB_MS_MIN || n->hb_ms > HB_MS_MAX)
        n->hb_ms = HB_MS_DEFAULT;
    rc = 0;
done:
    msgpack_unpacked_destroy(&u);
    if (rc != 0)
        s_node_clear(n);
    return rc;
}

/* ---- merging and rates -------------------------------------------------------------------- */

static double s_rate(uint64_t now, uint64_t before, double dt)
{
    return now >= before ? (double)(now - before) / dt : 0.0;
}

/*  Fills fresh's rates from the instance's previous record old (or carries old's rates over
    when the two heartbeats cannot be told apart in time). Intervals come from the sender's
    uptime_ms, which is immune to delays between sender and model; receive times are the
    fallback when uptime_ms is not sent. */
static void s_rates(const fabric_node_t *old, fabric_node_t *fresh, int64_t now_ms)
{
    double dt = 0;
    if (fresh->uptime_ms) {
        if (fresh->uptime_ms < old->uptime_ms)
            return; /* restarted under the same instance id: start over */
        dt = (double)(fresh->uptime_ms - old->uptime_ms) / 1000.0;
    } else if (now_ms > old->last_heard_ms)
        dt = (double)(now_ms - old->last_heard_ms) / 1000.0;
    if (dt <= 0) {
        /* A repeated heartbeat: keep what the previous pair measured. */
        fresh->has_rates = old->has_rates;
        fresh->out_eps = old->out_eps;
        fresh->in_eps = old->in_eps;
        for (size_t i = 0; i < fresh->ntopics; i++)
            for (size_t j = 0; j < old->ntopics; j++)
                if (!strcmp(fresh->topics[i].topic, old->topics[j].topic)) {
                    fabric_topic_row_t *t = &fresh->topics[i];
                    t->has_rates = old->topics[j].has_rates;
                    t->pub_eps = old->topics[j].pub_eps;
                    t->pub_bps = old->topics[j].pub_bps;
                    t->recv_eps = old->topics[j].recv_eps;
                    t->recv_bps = old->topics[j].recv_bps;
                    break;
                }
        return;
    }
    if (fresh->c.published < old->c.published || fresh->c.received < old->c.received)
        return;
    fresh->has_rates = true;
    fresh->out_eps = s_rate(fresh->c.published, old->c.published, dt);
    fresh->in_eps = s_rate(fresh->c.received, old->c.received, dt);
    for (size_t i = 0; i < fresh->ntopics; i++) {
        fabric_topic_row_t *t = &fresh->topics[i];
        for (size_t j = 0; j < old->ntopics; j++) {
            const fabric_topic_row_t *o = &old->topics[j];
            if (strcmp(t->topic, o->topic) != 0)
                continue;
            if (t->pub_events >= o->pub_events && t->pub_bytes >= o->pub_bytes &&
                t->recv_events >= o->recv_events && t->recv_bytes >= o->recv_bytes) {
                t->has_rates = true;
                t->pub_eps = s_rate(t->pub_events, o->pub_events, dt);
                t->pub_bps = s_rate(t->pub_bytes, o->pub_bytes, dt);
                t->recv_eps = s_rate(t->recv_events, o->recv_events, dt);
                t->recv_bps = s_rate(t->recv_bytes, o->recv_bytes, dt);
            }
            break;
        }
    }
}

static bool s_up(const fabric_node_t *n, int64_t now_ms)
{
    int64_t silent = now_ms - n->last_heard_ms;
    return silent <= (int64_t)(FABRIC_DOWN_BEATS * n->hb_ms);
}

static void s_expire(fabric_model_t *self, int64_t now_ms)
{
    self->last_expire_ms = now_ms;
    size_t n = zhashx_size(self->nodes), dead = 0;
    if (n == 0)
        return;
    char(*keys)[17] = calloc(n, sizeof(*keys));
    if (!keys)
        return; /* try again next time */
    for (fabric_node_t *node = zhashx_first(self->nodes); node && dead < n;
         node = zhashx_next(self->nodes))
        if (now_ms - node->last_heard_ms > FABRIC_FORGET_MS)
            s_key(node->inst, keys[dead++]);
    for (size_t i = 0; i < dead; i++)
        zhashx_delete(self->nodes, keys[i]);
    free(keys);
}

/* ---- public ------------------------------------------------------------------------------- */

fabric_model_t *fabric_model_new(void)
{
    fabric_model_t *self = calloc(1, sizeof(*self));
    if (!self)
        return NULL;
    self->nodes = zhashx_new();
    if (!self->nodes) {
        free(self);
        return NULL;
    }
    zhashx_set_destructor(self->nodes, s_node_free);
    return self;
}

void fabric_model_destroy(fabric_model_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    fabric_model_t *self = *self_p;
    zhashx_destroy(&self->nodes);
    free(self);
    *self_p = NULL;
}

int fabric_model_feed(fabric_model_t *self, const void *data, size_t size, uint64_t expect_inst,
                      int64_t now_ms)
{
    if (!self)
        return WEFT_EINVAL;
    if (now_ms - self->last_expire_ms >= EXPIRE_EVERY_MS || now_ms < self->last_expire_ms)
        s_expire(self, now_ms);
    fabric_node_t fresh;
    int rc = s_decode(data, size, &fresh);
    if (rc == 0 && expect_inst && fresh.inst != expect_inst) {
        s_node_clear(&fresh);
        rc = WEFT_EMALFORMED;
    }
    if (rc != 0) {
        self->rejected++;
        return rc;
    }
    char key[17];
    s_key(fresh.inst, key);
    fabric_node_t *old = zhashx_lookup(self->nodes, key);
    if (old) {
        s_rates(old, &fresh, now_ms);
        fresh.first_heard_ms = old->first_heard_ms;
        fresh.heartbeats = old->heartbeats;
        s_node_clear(old);
        *old = fresh;
    } else {
        fabric_node_t *node = NULL;
        if (zhashx_size(self->nodes) >= FABRIC_NODES_MAX || !(node = malloc(sizeof(*node)))) {
            s_node_clear(&fresh);
            self->rejected++;
            return WEFT_ENOMEM;
        }
        *node = fresh;
        node->first_heard_ms = now_ms;
        if (zhashx_insert(self->nodes, key, node) != 0) {
            s_node_free((void **)&node);
            self->rejected++;
            return WEFT_ENOMEM;
        }
        old = node;
    }
    old->last_heard_ms = now_ms;
    old->heartbeats++;
    self->accepted++;
    return 0;
}

/*  Totals over the model's records as of now_ms. */
static void s_totals(fabric_model_t *self, int64_t now_ms, fabric_totals_t *t)
{
    memset(t, 0, sizeof(*t));
    for (fabric_node_t *n = zhashx_first(self->nodes); n; n = zhashx_next(self->nodes)) {
        if (s_up(n, now_ms)) {
            t->nodes_up++;
            if (n->has_rates) {
                t->out_eps += n->out_eps;
                t->in_eps += n->in_eps;
            }
        } else
            t->nodes_down++;
        t->published += n->c.published;
        t->received += n->c.received;
        t->dropped += n->c.dropped;
        t->gaps += n->c.gaps;
        t->repaired += n->c.repaired;
        t->handler_errors += n->c.handler_errors;
        t->dead_lettered += n->c.dead_lettered;
        t->malformed += n->c.malformed;
    }
    t->heartbeats = self->accepted;
    t->rejected = self->rejected;
}

void fabric_model_tick(fabric_model_t *self, int64_t now_ms)
{
    if (!self)
        return;
    s_expire(self, now_ms);
    fabric_totals_t t;
    s_totals(self, now_ms, &t);
    self->history_out[self->history_head] = t.out_eps;
    self->history_in[self->history_head] = t.in_eps;
    self->history_head = (self->history_head + 1) % FABRIC_HISTORY;
    if (self->nhistory < FABRIC_HISTORY)
        self->nhistory++;
}

size_t fabric_model_size(const fabric_model_t *self)
{
    return self ? zhashx_size(self->nodes) : 0;
}

void fabric_model_counts(const fabric_model_t *self, uint64_t *accepted, uint64_t *rejected)
{
    if (accepted)
        *accepted = self ? self->accepted : 0;
    if (rejected)
        *rejected = self ? self->rejected : 0;
}

static int s_by_name(const void *a, const void *b)
{
    const fabric_node_t *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c)
        return c;
    return x->inst < y->inst ? -1 : x->inst > y->inst;
}

static int s_by_topic(const void *a, const void *b)
{
    return strcmp(((const fabric_topic_t *)a)->topic, ((const fabric_topic_t *)b)->topic);
}

static int s_by_pair(const void *a, const void *b)
{
    const fabric_lag_t *x = a, *y = b;
    int c = strcmp(x->subscriber, y->subscriber);
    if (!c)
        c = strcmp(x->source, y->source);
    if (!c)
        c = x->sub_inst < y->sub_inst ? -1 : x->sub_inst > y->sub_inst;
    if (!c)
        c = x->src_inst < y->src_inst ? -1 : x->src_inst > y->src_inst;
    return c;
}

/*  Per-topic aggregates of the snapshot's nodes. */
static int s_aggregate_topics(fabric_snapshot_t *s)
{
    size_t rows = 0;
    for (size_t i = 0; i < s->nnodes; i++)
        rows += s->nodes[i].ntopics;
    if (rows == 0)
        return 0;
    s->topics = calloc(rows, sizeof(*s->topics));
    zhashx_t *index = zhashx_new(); /* topic -> position + 1, stored in the pointer */
    if (!s->topics || !index) {
        zhashx_destroy(&index);
        return -1;
    }
    for (size_t i = 0; i < s->nnodes; i++) {
        const fabric_node_t *n = &s->nodes[i];
        for (size_t j = 0; j < n->ntopics; j++) {
            const fabric_topic_row_t *r = &n->topics[j];
            uintptr_t pos = (uintptr_t)zhashx_lookup(index, r->topic);
            if (!pos) {
                pos = ++s->ntopics;
                if (zhashx_insert(index, r->topic, (void *)pos) != 0) {
                    zhashx_destroy(&index);
                    return -1;
                }
                snprintf(s->topics[pos - 1].topic, sizeof(s->topics[pos - 1].topic), "%s",
                         r->topic);
            }
            fabric_topic_t *t = &s->topics[pos - 1];
            t->publishers += n->up && r->pub_events > 0;
            t->subscribers += n->up && r->recv_events > 0;
            t->pub_events += r->pub_events;
            t->pub_bytes += r->pub_bytes;
            t->recv_events += r->recv_events;
            t->recv_bytes += r->recv_bytes;
            if (n->up && r->has_rates) {
                t->out_eps += r->pub_eps;
                t->out_bps += r->pub_bps;
                t->in_eps += r->recv_eps;
                t->in_bps += r->recv_bps;
            }
        }
    }
    zhashx_destroy(&index);
    qsort(s->topics, s->ntopics, sizeof(*s->topics), s_by_topic);
    return 0;
}

/*  Lag pairs: each subscriber's sources against the publishers' own heartbeats. */
static int s_lags(fabric_model_t *self, fabric_snapshot_t *s)
{
    size_t rows = 0;
    for (size_t i = 0; i < s->nnodes; i++)
        rows += s->nodes[i].nsources;
    if (rows == 0)
        return 0;
    s->lags = calloc(rows, sizeof(*s->lags));
    if (!s->lags)
        return -1;
    for (size_t i = 0; i < s->nnodes; i++) {
        const fabric_node_t *n = &s->nodes[i];
        for (size_t j = 0; j < n->nsources; j++) {
            const fabric_source_row_t *r = &n->sources[j];
            fabric_lag_t *l = &s->lags[s->nlags++];
            snprintf(l->subscriber, sizeof(l->subscriber), "%s", n->name);
            l->sub_inst = n->inst;
            l->sub_up = n->up;
            snprintf(l->source, sizeof(l->source), "%s", r->src);
            l->src_inst = r->inst;
            l->last_seq = r->last_seq;
            l->gaps = r->gaps;
            char key[17];
            s_key(r->inst, key);
            const fabric_node_t *pub = zhashx_lookup(self->nodes, key);
            if (pub) {
                l->pub_known = true;
                l->pub_seq = pub->seq;
                l->seq_lag = pub->seq > r->last_seq ? pub->seq - r->last_seq : 0;
            }
            if (l->seq_lag > 0 && r->last_ts > 0) {
                int64_t age = s->now_ms - r->last_ts / 1000000;
                l->time_lag_ms = age > 0 ? age : 0;
            }
        }
    }
    qsort(s->lags, s->nlags, sizeof(*s->lags), s_by_pair);
    return 0;
}

fabric_snapshot_t *fabric_model_snapshot(fabric_model_t *self, int64_t now_ms)
{
    if (!self)
        return NULL;
    s_expire(self, now_ms);
    fabric_snapshot_t *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->now_ms = now_ms;
    size_t n = zhashx_size(self->nodes);
    if (n && !(s->nodes = calloc(n, sizeof(*s->nodes))))
        goto oom;
    for (fabric_node_t *node = zhashx_first(self->nodes); node && s->nnodes < n;
         node = zhashx_next(self->nodes)) {
        if (s_node_copy(&s->nodes[s->nnodes], node) != 0)
            goto oom;
        s->nodes[s->nnodes].up = s_up(node, now_ms);
        s->nnodes++;
    }
    if (s->nnodes) /* qsort wants a valid pointer even for no element */
        qsort(s->nodes, s->nnodes, sizeof(*s->nodes), s_by_name);
    if (s_aggregate_topics(s) != 0 || s_lags(self, s) != 0)
        goto oom;
    s_totals(self, now_ms, &s->totals);
    s->nhistory = self->nhistory;
    size_t first = (self->history_head + FABRIC_HISTORY - self->nhistory) % FABRIC_HISTORY;
    for (size_t i = 0; i < self->nhistory; i++) {
        s->history_out[i] = self->history_out[(first + i) % FABRIC_HISTORY];
        s->history_in[i] = self->history_in[(first + i) % FABRIC_HISTORY];
    }
    return s;
oom:
    fabric_snapshot_destroy(&s);
    return NULL;
}

void fabric_snapshot_destroy(fabric_snapshot_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    fabric_snapshot_t *s = *self_p;
    for (size_t i = 0; i < s->nnodes; i++)
        s_node_clear(&s->nodes[i]);
    free(s->nodes);
    free(s->topics);
    free(s->lags);
    free(s);
    *self_p = NULL;
}

const fabric_node_t *fabric_snapshot_node(const fabric_snapshot_t *snap, uint64_t inst)
{
    for (size_t i = 0; snap && i < snap->nnodes; i++)
        if (snap->nodes[i].inst == inst)
            return &snap->nodes[i];
    return NULL;
}

/*  prom.c - Prometheus text exposition of a fabric snapshot (see prom.h).

    The text is built in one growable buffer. Each family is written by walking the snapshot's
    nodes once per family, which keeps every family's samples together as the format demands;
    the role-section gauges (archiver, DLQ) have names known only at run time, so their names
    are collected first and each is then written across all nodes.
*/
#include "prom.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAME_MAX_LEN 128  /* longest metric name written */
#define LABELS_MAX 2048   /* longest label set of one node */
#define SECTION_NAMES 256 /* distinct archiver/DLQ gauge names written at most */

typedef struct {
    char *p;
    size_t len, cap;
    bool oom;
} text_t;

static void s_add(text_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void s_add(text_t *t, const char *fmt, ...)
{
    if (t->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->p + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->oom = true;
            return;
        }
        if ((size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = t->cap * 2 + (size_t)n;
        char *p = realloc(t->p, cap);
        if (!p) {
            t->oom = true;
            return;
        }
        t->p = p;
        t->cap = cap;
    }
}

size_t prom_escape_label(const char *value, char *out, size_t cap)
{
    size_t need = 0, len = 0;
    bool full = cap == 0; /* once something does not fit, nothing more is copied */
    for (const char *s = value; *s; s++) {
        char esc[3] = {*s, 0, 0};
        if (*s == '\\' || *s == '"')
            esc[0] = '\\', esc[1] = *s;
        else if (*s == '\n')
            esc[0] = '\\', esc[1] = 'n';
        size_t n = esc[1] ? 2 : 1;
        need += n;
        if (!full && len + n < cap) {
            memcpy(out + len, esc, n);
            len += n;
        } else
            full = true;
    }
    if (cap)
        out[len] = 0;
    return need;
}

/*  node="..",role="..",instance=".." of one node. */
static void s_node_labels(const fabric_node_t *n, char *out, size_t cap)
{
    char name[2 * FABRIC_STR_MAX + 1], role[64];
    prom_escape_label(n->name, name, sizeof(name));
    prom_escape_label(n->role, role, sizeof(role));
    snprintf(out, cap, "node=\"%s\",role=\"%s\",instance=\"%" PRIu64 "\"", name, role, n->inst);
}

static void s_family(text_t *t, const char *name, const char *type, const char *help)
{
    s_add(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/*  One counter or gauge family with one sample per node, from a field picked by `get`. */
typedef double (*node_value_fn)(const fabric_node_t *n, int64_t now_ms);

static void s_per_node(text_t *t, const fabric_snapshot_t *s, const char *name, const char *type,
                       const char *help, node_value_fn get)
{
    s_family(t, name, type, help);
    char labels[LABELS_MAX];
    for (size_t i = 0; i < s->nnodes; i++) {
        s_node_labels(&s->nodes[i], labels, sizeof(labels));
        s_add(t, "%s{%s} %.15g\n", name, labels, get(&s->nodes[i], s->now_ms));
    }
}

static double s_get_up(const fabric_node_t *n, int64_t now_ms)
{
    (void)now_ms;
    return n->up ? 1 : 0;
}

static double s_get_uptime(const fabric_node_t *n, int64_t now_ms)
{
    (void)now_ms;
    return (double)n->uptime_ms / 1000.0;
}

static double s_get_age(const fabric_node_t *n, int64_t now_ms)
{
    return now_ms > n->last_heard_ms ? (double)(now_ms - n->last_heard_ms) / 1000.0 : 0.0;
}

static double s_get_outbox_events(const fabric_node_t *n, int64_t now_ms)
{
    (void)now_ms;
    return (double)n->outbox_events;
}

static double s_get_outbox_bytes(const fabric_node_t *n, int64_t now_ms)
{
    (void)now_ms;
    return (double)n->outbox_bytes;
}

static double s_get_peers_up(const fabric_node_t *n, int64_t now_ms)
{
    (void)now_ms;
    return (double)n->peers_up;
}

static double s_get_peers_down(const fabric_node_t *n, int64_t now_ms)
{
    (void)now_ms;
    return (double)n->peers_down;
}

/*  Exact decimal text of a uint64 counter (a double would round above 2^53). */
static void s_per_node_u64(text_t *t, const fabric_snapshot_t *s, const char *name,
                           const char *help, size_t offset)
{
    s_family(t, name, "counter", help);
    char labels[LABELS_MAX];
    for (size_t i = 0; i < s->nnodes; i++) {
        s_node_labels(&s->nodes[i], labels, sizeof(labels));
        uint64_t v = *(const uint64_t *)((const char *)&s->nodes[i].c + offset);
        s_add(t, "%s{%s} %" PRIu64 "\n", name, labels, v);
    }
}

static void s_topics(text_t *t, const fabric_snapshot_t *s, bool bytes)
{
    const char *name = bytes ? "weft_topic_bytes_total" : "weft_topic_events_total";
    s_family(t, name, "counter",
             bytes ? "Payload bytes per topic and node, published (out) or received (in)."
                   : "Events per topic and node, published (out) or received (in).");
    char labels[LABELS_MAX], topic[2 * FABRIC_STR_MAX + 1];
    for (size_t i = 0; i < s->nnodes; i++) {
        const fabric_node_t *n = &s->nodes[i];
        s_node_labels(n, labels, sizeof(labels));
        for (size_t j = 0; j < n->ntopics; j++) {
            const fabric_topic_row_t *r = &n->topics[j];
            prom_escape_label(r->topic, topic, sizeof(topic));
            uint64_t out = bytes ? r->pub_bytes : r->pub_events;
            uint64_t in = bytes ? r->recv_bytes : r->recv_events;
            if (out || !in)
                s_add(t, "%s{topic=\"%s\",%s,direction=\"out\"} %" PRIu64 "\n", name, topic,
                      labels, out);
            if (in)
                s_add(t, "%s{topic=\"%s\",%s,direction=\"in\"} %" PRIu64 "\n", name, topic,
                      labels, in);
        }
    }
}

static void s_latency(text_t *t, const fabric_snapshot_t *s)
{
    const char *name = "weft_delivery_latency_seconds";
    s_family(t, name, "histogram",
             "Delivery latency of data events received by the node: publish time to receipt.");
    char labels[LABELS_MAX];
    for (size_t i = 0; i < s->nnodes; i++) {
        const fabric_node_t *n = &s->nodes[i];
        const fabric_latency_t *l = &n->latency;
        if (!l->present)
            continue;
        s_node_labels(n, labels, sizeof(labels));
        uint64_t cum = 0;
        for (size_t b = 0; b < l->nbounds; b++) {
            cum += l->counts[b];
            s_add(t, "%s_bucket{%s,le=\"%.9g\"} %" PRIu64 "\n", name, labels,
                  (double)l->le_us[b] / 1e6, cum);
        }
        cum += l->counts[l->nbounds];
        /* _count is the +Inf bucket by construction, so the two always agree. */
        s_add(t, "%s_bucket{%s,le=\"+Inf\"} %" PRIu64 "\n", name, labels, cum);
        s_add(t, "%s_sum{%s} %.9g\n", name, labels, (double)l->sum_us / 1e6);
        s_add(t, "%s_count{%s} %" PRIu64 "\n", name, labels, cum);
    }
}

/*  Appends text to a metric or label name, every byte outside [a-zA-Z0-9_] made '_'. */
static void s_name_append(char *out, size_t cap, const char *text)
{
    size_t n = strlen(out);
    for (; *text && n + 1 < cap; text++)
        out[n++] = (*text >= 'a' && *text <= 'z') || (*text >= 'A' && *text <= 'Z') ||
                           (*text >= '0' && *text <= '9')
                       ? *text
                       : '_';
    out[n] = 0;
}

/*  The number a section value holds as a sample, if it is one. */
static bool s_number(const json_t *v, double *out)
{
    if (json_is_number(v)) {
        *out = json_number_value(v);
        return true;
    }
    if (json_is_boolean(v)) {
        *out = json_is_true(v) ? 1 : 0;
        return true;
    }
    return false;
}

/*  One sample of a role section: full metric name, the name of its entry label and the
    entry (both NULL for a plain value), and the value. */
typedef void (*sample_fn)(void *arg, const char *name, const char *label, const char *entry,
                          double v);

/*  The label that names the entries of a breakdown: by_subscriber -> subscriber,
    by_topic -> topic, top_codes -> code, anything else -> key. */
static void s_entry_label(const char *key, char *out, size_t cap)
{
    out[0] = 0;
    if (!strncmp(key, "by_", 3) && key[3])
        s_name_append(out, cap, key + 3);
    else if (!strcmp(key, "top_codes"))
        snprintf(out, cap, "code");
    else
        snprintf(out, cap, "key");
    if (out[0] >= '0' && out[0] <= '9')
        snprintf(out, cap, "key");
}

/*  Walks the samples one key of a section gives (prefix "weft_dlq_", key "pending"):
      a number                          -> prefix_key
      {name: number, ...}               -> prefix_key{label="name"}
      {name: {field: number, ...}, ...} -> prefix_key_field{label="name"}
      [[name, number], ...]             -> prefix_key{label="name"}
    Other values give nothing. */
static void s_key_samples(const char *prefix, const char *key, const json_t *v, sample_fn fn,
                          void *arg)
{
    char base[NAME_MAX_LEN] = "", label[64], name[NAME_MAX_LEN];
    snprintf(base, sizeof(base), "%s", prefix);
    s_name_append(base, sizeof(base), key);
    s_entry_label(key, label, sizeof(label));
    double d;
    if (s_number(v, &d)) {
        fn(arg, base, NULL, NULL, d);
        return;
    }
    const char *k, *f;
    json_t *x, *y;
    size_t i;
    if (json_is_object(v)) {
        json_object_foreach((json_t *)v, k, x)
        {
            if (s_number(x, &d))
                fn(arg, base, label, k, d);
            else if (json_is_object(x)) {
                json_object_foreach(x, f, y)
                {
                    if (!s_number(y, &d))
                        continue;
                    /* base is at most NAME_MAX_LEN - 1 bytes: keep room for the '_' */
                    size_t bl = strnlen(base, sizeof(name) - 2);
                    memcpy(name, base, bl);
                    name[bl] = '_';
                    name[bl + 1] = 0;
                    s_name_append(name, sizeof(name), f);
                    fn(arg, name, label, k, d);
                }
            }
        }
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, x)
        {
            const json_t *e = json_array_get(x, 0);
            if (json_is_array(x) && json_array_size(x) == 2 && json_is_string(e) &&
                s_number(json_array_get(x, 1), &d))
                fn(arg, base, label, json_string_value(e), d);
        }
    }
}

static void s_section_samples(const json_t *sec, const char *prefix, sample_fn fn, void *arg)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)sec, k, v)
    {
        s_key_samples(prefix, k, v, fn, arg);
    }
}

/*  Distinct metric names of the sections, in order of first appearance. */
typedef struct {
    char (*names)[NAME_MAX_LEN];
    size_t n;
} names_t;

static void s_collect(void *arg, const char *name, const char *label, const char *entry, double v)
{
    names_t *c = arg;
    (void)label;
    (void)entry;
    (void)v;
    for (size_t i = 0; i < c->n; i++)
        if (!strcmp(c->names[i], name))
            return;
    if (c->n < SECTION_NAMES)
        snprintf(c->names[c->n++], NAME_MAX_LEN, "%s", name);
}

typedef struct {
    text_t *t;
    const char *name;   /* the family being written */
    const char *labels; /* the node's labels */
} write_ctx_t;

static void s_write(void *arg, const char *name, const char *label, const char *entry, double v)
{
    write_ctx_t *c = arg;
    if (strcmp(name, c->name) != 0)
        return;
    if (label) {
        char value[2 * FABRIC_STR_MAX + 1];
        prom_escape_label(entry, value, sizeof(value));
        s_add(c->t, "%s{%s,%s=\"%s\"} %.15g\n", name, c->labels, label, value, v);
    } else
        s_add(c->t, "%s{%s} %.15g\n", name, c->labels, v);
}

/*  The gauges of one role section (archive or dlq) across all nodes that carry it. */
static void s_sections(text_t *t, const fabric_snapshot_t *s, bool dlq)
{
    const char *prefix = dlq ? "weft_dlq_" : "weft_archiver_";
    names_t names = {calloc(SECTION_NAMES, NAME_MAX_LEN), 0};
    if (!names.names) {
        t->oom = true;
        return;
    }
    for (size_t i = 0; i < s->nnodes; i++)
        s_section_samples(dlq ? s->nodes[i].dlq : s->nodes[i].archive, prefix, s_collect, &names);
    char labels[LABELS_MAX], help[NAME_MAX_LEN * 2];
    for (size_t j = 0; j < names.n; j++) {
        snprintf(help, sizeof(help), "From the `%s` map of %s heartbeats (%s).",
                 dlq ? "dlq" : "archive", dlq ? "DLQ" : "archiver", names.names[j] + strlen(prefix));
        s_family(t, names.names[j], "gauge", help);
        for (size_t i = 0; i < s->nnodes; i++) {
            const json_t *sec = dlq ? s->nodes[i].dlq : s->nodes[i].archive;
            if (!sec)
                continue;
            s_node_labels(&s->nodes[i], labels, sizeof(labels));
            write_ctx_t ctx = {t, names.names[j], labels};
            s_section_samples(sec, prefix, s_write, &ctx);
        }
    }
    free(names.names);
}

char *prom_render(const fabric_snapshot_t *s, size_t *len)
{
    text_t t = {malloc(16384), 0, 16384, false};
    if (!t.p)
        return NULL;
    t.p[0] = 0;
    static const struct {
        const char *name, *help;
        size_t offset;
    } counters[] = {
        {"weft_events_published_total", "Events the node published.",
         offsetof(fabric_counters_t, published)},
        {"weft_events_received_total", "Data events the node received.",
         offsetof(fabric_counters_t, received)},
        {"weft_events_delivered_total", "Handler calls the node made.",
         offsetof(fabric_counters_t, delivered)},
        {"weft_events_dropped_total", "Events the node dropped (no handler, queue bounds).",
         offsetof(fabric_counters_t, dropped)},
        {"weft_gaps_total", "Events the node found missing from a source's sequence.",
         offsetof(fabric_counters_t, gaps)},
        {"weft_repaired_total", "Missing events the node recovered later.",
         offsetof(fabric_counters_t, repaired)},
        {"weft_handler_errors_total", "Handler calls that returned failure.",
         offsetof(fabric_counters_t, handler_errors)},
        {"weft_dead_lettered_total", "Events the node handed to a DLQ.",
         offsetof(fabric_counters_t, dead_lettered)},
        {"weft_malformed_total", "Messages the node rejected as malformed.",
         offsetof(fabric_counters_t, malformed)},
        {"weft_publish_errors_total", "Publish calls the node rejected.",
         offsetof(fabric_counters_t, publish_errors)},
        {"weft_ctl_requests_total", "Control requests the node served.",
         offsetof(fabric_counters_t, ctl_requests)},
        {"weft_ctl_errors_total", "Control requests the node answered with ERR.",
         offsetof(fabric_counters_t, ctl_errors)},
    };
    for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]); i++)
        s_per_node_u64(&t, s, counters[i].name, counters[i].help, counters[i].offset);
    s_per_node(&t, s, "weft_node_up", "gauge",
               "1 while the node's heartbeats arrive, 0 after 3 missed ones.", s_get_up);
    s_per_node(&t, s, "weft_node_uptime_seconds", "gauge",
               "Seconds since the node started, as of its last heartbeat.", s_get_uptime);
    s_per_node(&t, s, "weft_node_heartbeat_age_seconds", "gauge",
               "Seconds since the node's last heartbeat arrived.", s_get_age);
    s_per_node(&t, s, "weft_outbox_events", "gauge", "Events held in the node's outbox.",
               s_get_outbox_events);
    s_per_node(&t, s, "weft_outbox_bytes", "gauge", "Bytes held in the node's outbox.",
               s_get_outbox_bytes);
    s_per_node(&t, s, "weft_peers_up", "gauge", "Peers the node sees up.", s_get_peers_up);
    s_per_node(&t, s, "weft_peers_down", "gauge", "Peers the node sees down.", s_get_peers_down);
    s_topics(&t, s, false);
    s_topics(&t, s, true);
    s_latency(&t, s);
    s_sections(&t, s, false);
    s_sections(&t, s, true);
    s_family(&t, "weft_fabric_nodes", "gauge", "Node instances known, by state.");
    s_add(&t, "weft_fabric_nodes{state=\"up\"} %" PRIu32 "\n", s->totals.nodes_up);
    s_add(&t, "weft_fabric_nodes{state=\"down\"} %" PRIu32 "\n", s->totals.nodes_down);
    s_family(&t, "weft_exporter_heartbeats_total", "counter",
             "Heartbeats this exporter accepted or rejected (malformed, too many nodes).");
    s_add(&t, "weft_exporter_heartbeats_total{result=\"accepted\"} %" PRIu64 "\n",
          s->totals.heartbeats);
    s_add(&t, "weft_exporter_heartbeats_total{result=\"rejected\"} %" PRIu64 "\n",
          s->totals.rejected);
    if (t.oom) {
        free(t.p);
        return NULL;
    }
    *len = t.len;
    return t.p;
}

/*  fabric_view.c - tables, text and JSON of fabric snapshots (see fabric_view.h).

    A table is a grid of cells built once from a snapshot; each cell keeps its text and, for
    numeric columns, the value it shows, so sorting never parses text. Sorting permutes an
    index array and filtering selects from it; column widths follow the visible rows.
*/
#define _GNU_SOURCE
#include "fabric_view.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define MAX_COLS 24
#define LAST_COL_MAX 200 /* the last column (free text) may be wider than the others */
#define CELL_MAX 256     /* longest cell text */

typedef struct {
    const char *name;
    bool numeric; /* right-aligned, sorted by value */
} col_t;

typedef struct {
    char *text;   /* owned */
    double key;   /* sort value of numeric cells */
    bool has_key; /* false: a missing value ("-"), sorted last */
} cell_t;

struct fabric_table_t {
    fabric_view_t view;
    const col_t *cols;
    size_t ncols;
    size_t nrows;     /* rows built */
    cell_t *cells;    /* nrows x ncols, row-major */
    size_t *order;    /* every row, in sorted order */
    size_t *visible;  /* rows passing the filter, in sorted order */
    size_t nvisible;
    char *filter;     /* NULL: none */
    size_t sort_col;
    bool sort_desc;
    size_t widths[MAX_COLS];
    bool oom;         /* an allocation failed while building */
};

static const col_t s_nodes_cols[] = {
    {"NAME", false},     {"ROLE", false},      {"HOST:PID", false}, {"STATE", false},
    {"UPTIME", true},    {"OUT/S", true},      {"IN/S", true},      {"PUBLISHED", true},
    {"RECEIVED", true},  {"DROPPED", true},    {"GAPS", true},      {"REPAIRED", true},
    {"ERRORS", true},    {"DEAD_LTR", true},   {"MALFORMED", true}, {"OUTBOX", true},
    {"PEERS", true},     {"LAT_P99", true},    {"LAST", true},      {"INST", false},
};
static const col_t s_topics_cols[] = {
    {"TOPIC", false},   {"PUBS", true},      {"SUBS", true},      {"OUT/S", true},
    {"IN/S", true},     {"OUT_B/S", true},   {"IN_B/S", true},    {"PUBLISHED", true},
    {"RECEIVED", true}, {"PUB_BYTES", true}, {"RECV_BYTES", true},
};
static const col_t s_lag_cols[] = {
    {"SUBSCRIBER", false}, {"SOURCE", false},  {"SEQ_LAG", true}, {"TIME_LAG", true},
    {"PUB_SEQ", true},     {"LAST_SEQ", true}, {"GAPS", true},    {"STATE", false},
    {"SRC_INST", false},
};
static const col_t s_archiver_cols[] = {
    {"NODE", false},       {"STATE", false},  {"LAST_OFFSET", true}, {"EVENTS/S", true},
    {"ON_DISK", true},     {"COMMIT_P99", true}, {"REPLAYS", true},  {"RETENTION", false},
    {"OTHER", false},
};
static const col_t s_dlq_cols[] = {
    {"NODE", false},          {"STATE", false},     {"PENDING", true},   {"PARKED", true},
    {"OLDEST", true},         {"BY_SUBSCRIBER", false}, {"BY_TOPIC", false}, {"TOP_CODES", false},
    {"OTHER", false},
};

#define NCOLS(a) (sizeof(a) / sizeof((a)[0]))

static const struct {
    const char *name, *title;
    const col_t *cols;
    size_t ncols;
} s_views[FABRIC_VIEW_COUNT] = {
    {"nodes", "Nodes", s_nodes_cols, NCOLS(s_nodes_cols)},
    {"topics", "Topics", s_topics_cols, NCOLS(s_topics_cols)},
    {"lag", "Lag", s_lag_cols, NCOLS(s_lag_cols)},
    {"archiver", "Archiver", s_archiver_cols, NCOLS(s_archiver_cols)},
    {"dlq", "DLQ", s_dlq_cols, NCOLS(s_dlq_cols)},
};

const char *fabric_view_name(fabric_view_t view)
{
    return (unsigned)view < FABRIC_VIEW_COUNT ? s_views[view].name : NULL;
}

const char *fabric_view_title(fabric_view_t view)
{
    return (unsigned)view < FABRIC_VIEW_COUNT ? s_views[view].title : NULL;
}

int fabric_view_parse(const char *name)
{
    for (int v = 0; name && v < FABRIC_VIEW_COUNT; v++)
        if (!strcasecmp(name, s_views[v].name))
            return v;
    return -1;
}

/* ---- value formatting --------------------------------------------------------------------- */

void fabric_format_rate(double v, char *buf, size_t cap)
{
    snprintf(buf, cap, "%.1f", v);
}

static void s_fmt_dur_ms(uint64_t ms, char *buf, size_t cap)
{
    uint64_t s = ms / 1000;
    if (ms < 10000)
        snprintf(buf, cap, "%.1fs", (double)ms / 1000.0);
    else if (s < 60)
        snprintf(buf, cap, "%" PRIu64 "s", s);
    else if (s < 3600)
        snprintf(buf, cap, "%" PRIu64 "m%02" PRIu64 "s", s / 60, s % 60);
    else if (s < 86400)
        snprintf(buf, cap, "%" PRIu64 "h%02" PRIu64 "m", s / 3600, s / 60 % 60);
    else
        snprintf(buf, cap, "%" PRIu64 "d%02" PRIu64 "h", s / 86400, s / 3600 % 24);
}

static void s_fmt_us(double us, char *buf, size_t cap)
{
    if (us < 1000)
        snprintf(buf, cap, "%.0fus", us);
    else if (us < 1e6)
        snprintf(buf, cap, "%.1fms", us / 1000.0);
    else
        snprintf(buf, cap, "%.2fs", us / 1e6);
}

static void s_fmt_bytes(double v, char *buf, size_t cap)
{
    static const char units[] = "KMGTP";
    if (v < 1024) {
        snprintf(buf, cap, "%.0f", v);
        return;
    }
    int u = -1;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    snprintf(buf, cap, "%.1f%c", v, units[u]);
}

uint64_t fabric_latency_quantile(const fabric_latency_t *l, double q)
{
    if (!l || !l->present)
        return 0;
    uint64_t total = 0;
    for (size_t i = 0; i <= l->nbounds; i++)
        total += l->counts[i];
    if (total == 0)
        return 0;
    double want = q * (double)total, seen = 0;
    for (size_t i = 0; i < l->nbounds; i++) {
        seen += (double)l->counts[i];
        if (seen >= want)
            return l->le_us[i];
    }
    return UINT64_MAX;
}

/*  A small bounded text buffer: appends are cut at the capacity. */
typedef struct {
    char *p;
    size_t len, cap;
} out_t;

static void s_out(out_t *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void s_out(out_t *o, const char *fmt, ...)
{
    if (o->len + 1 >= o->cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        o->len = o->len + (size_t)n < o->cap ? o->len + (size_t)n : o->cap - 1;
}

/*  A JSON value of a role section as compact text: numbers, strings as they are; maps as
    "k=v k=v"; arrays as "a,b"; a [name, n] pair as "name:n"; null as "-". */
static void s_render(const json_t *v, out_t *o, int depth)
{
    if (depth > 4) {
        s_out(o, "..");
        return;
    }
    switch (json_typeof(v)) {
    case JSON_INTEGER:
        s_out(o, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        break;
    case JSON_REAL: {
        double d = json_real_value(v);
        if (d == floor(d) && fabs(d) < 1e15)
            s_out(o, "%.0f", d);
        else
            s_out(o, "%.2f", d);
        break;
    }
    case JSON_STRING:
        s_out(o, "%s", json_string_value(v));
        break;
    case JSON_TRUE:
        s_out(o, "true");
        break;
    case JSON_FALSE:
        s_out(o, "false");
        break;
    case JSON_NULL:
        s_out(o, "-");
        break;
    case JSON_OBJECT: {
        const char *k;
        json_t *x;
        bool first = true;
        /* top level "k=v k=v"; nested "{k=v,k=v}", so the grouping stays visible */
        if (depth > 0)
            s_out(o, "{");
        json_object_foreach((json_t *)v, k, x)
        {
            s_out(o, first ? "%s=" : depth > 0 ? ",%s=" : " %s=", k);
            s_render(x, o, depth + 1);
            first = false;
        }
        if (depth > 0)
            s_out(o, "}");
        break;
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x)
        {
            if (i)
                s_out(o, ",");
            if (json_is_array(x) && json_array_size(x) == 2 && !json_is_array(json_array_get(x, 0))) {
                s_render(json_array_get(x, 0), o, depth + 1);
                s_out(o, ":");
                s_render(json_array_get(x, 1), o, depth + 1);
            } else
                s_render(x, o, depth + 1);
        }
        break;
    }
    }
}

/*  A sort value for a section value: a number itself; for a map or an array, the sum of its
    numbers (the total of a breakdown by subscriber, say). */
static bool s_numeric(const json_t *v, double *out)
{
    if (json_is_number(v)) {
        *out = json_number_value(v);
        return true;
    }
    double sum = 0;
    bool any = false;
    if (json_is_object(v)) {
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)v, k, x)
        {
            if (json_is_number(x)) {
                sum += json_number_value(x);
                any = true;
            }
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x)
        {
            const json_t *num = json_is_number(x) ? x
                                : json_is_array(x) && json_array_size(x) == 2 ? json_array_get(x, 1)
                                                                              : NULL;
            if (json_is_number(num)) {
                sum += json_number_value(num);
                any = true;
            }
        }
    }
    *out = sum;
    return any;
}

/* ---- table building ----------------------------------------------------------------------- */

static cell_t *s_cell(const fabric_table_t *t, size_t row, size_t col)
{
    return &t->cells[row * t->ncols + col];
}

static void s_text(fabric_table_t *t, size_t row, size_t col, const char *text)
{
    cell_t *c = s_cell(t, row, col);
    free(c->text);
    size_t n = strlen(text);
    if (n > CELL_MAX - 1)
        n = CELL_MAX - 1;
    c->text = malloc(n + 1);
    if (!c->text) {
        t->oom = true;
        return;
    }
    memcpy(c->text, text, n);
    c->text[n] = 0;
}

static void s_textf(fabric_table_t *t, size_t row, size_t col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void s_textf(fabric_table_t *t, size_t row, size_t col, const char *fmt, ...)
{
    char buf[CELL_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    s_text(t, row, col, buf);
}

static void s_num(fabric_table_t *t, size_t row, size_t col, double key, const char *text)
{
    s_text(t, row, col, text);
    s_cell(t, row, col)->key = key;
    s_cell(t, row, col)->has_key = true;
}

static void s_u64(fabric_table_t *t, size_t row, size_t col, uint64_t v)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%" PRIu64, v);
    s_num(t, row, col, (double)v, buf);
}

static void s_rate(fabric_table_t *t, size_t row, size_t col, bool has, double v)
{
    char buf[32];
    if (!has) {
        s_text(t, row, col, "-");
        return;
    }
    fabric_format_rate(v, buf, sizeof(buf));
    s_num(t, row, col, v, buf);
}

static void s_bytes(fabric_table_t *t, size_t row, size_t col, double v)
{
    char buf[32];
    s_fmt_bytes(v, buf, sizeof(buf));
    s_num(t, row, col, v, buf);
}

static void s_build_nodes(fabric_table_t *t, const fabric_snapshot_t *s)
{
    for (size_t r = 0; r < s->nnodes; r++) {
        const fabric_node_t *n = &s->nodes[r];
        char buf[64];
        s_text(t, r, 0, n->name);
        s_text(t, r, 1, n->role);
        s_textf(t, r, 2, "%s:%" PRIu64, n->host[0] ? n->host : "?", n->pid);
        s_text(t, r, 3, n->up ? "up" : "down");
        s_fmt_dur_ms(n->uptime_ms, buf, sizeof(buf));
        s_num(t, r, 4, (double)n->uptime_ms, buf);
        s_rate(t, r, 5, n->up && n->has_rates, n->out_eps);
        s_rate(t, r, 6, n->up && n->has_rates, n->in_eps);
        s_u64(t, r, 7, n->c.published);
        s_u64(t, r, 8, n->c.received);
        s_u64(t, r, 9, n->c.dropped);
        s_u64(t, r, 10, n->c.gaps);
        s_u64(t, r, 11, n->c.repaired);
        s_u64(t, r, 12, n->c.handler_errors);
        s_u64(t, r, 13, n->c.dead_lettered);
        s_u64(t, r, 14, n->c.malformed);
        s_u64(t, r, 15, n->outbox_events);
        snprintf(buf, sizeof(buf), "%" PRIu64 "/%" PRIu64, n->peers_up, n->peers_down);
        s_num(t, r, 16, (double)n->peers_up, buf);
        uint64_t p99 = fabric_latency_quantile(&n->latency, 0.99);
        if (p99 == 0)
            s_text(t, r, 17, "-");
        else if (p99 == UINT64_MAX) {
            char us[32];
            s_fmt_us((double)n->latency.le_us[n->latency.nbounds - 1], us, sizeof(us));
            snprintf(buf, sizeof(buf), ">%s", us);
            s_num(t, r, 17, 1e300, buf);
        } else {
            char us[32];
            s_fmt_us((double)p99, us, sizeof(us));
            snprintf(buf, sizeof(buf), "<%s", us);
            s_num(t, r, 17, (double)p99, buf);
        }
        int64_t silent = s->now_ms - n->last_heard_ms;
        if (silent < 0)
            silent = 0;
        snprintf(buf, sizeof(buf), "%.1fs", (double)silent / 1000.0);
        s_num(t, r, 18, (double)silent, buf);
        s_textf(t, r, 19, "%" PRIu64, n->inst);
    }
    t->nrows = s->nnodes;
}

static void s_build_topics(fabric_table_t *t, const fabric_snapshot_t *s)
{
    for (size_t r = 0; r < s->ntopics; r++) {
        const fabric_topic_t *x = &s->topics[r];
        s_text(t, r, 0, x->topic);
        s_u64(t, r, 1, x->publishers);
        s_u64(t, r, 2, x->subscribers);
        s_rate(t, r, 3, true, x->out_eps);
        s_rate(t, r, 4, true, x->in_eps);
        s_bytes(t, r, 5, x->out_bps);
        s_bytes(t, r, 6, x->in_bps);
        s_u64(t, r, 7, x->pub_events);
        s_u64(t, r, 8, x->recv_events);
        s_bytes(t, r, 9, (double)x->pub_bytes);
        s_bytes(t, r, 10, (double)x->recv_bytes);
    }
    t->nrows = s->ntopics;
}

static void s_build_lag(fabric_table_t *t, const fabric_snapshot_t *s)
{
    for (size_t r = 0; r < s->nlags; r++) {
        const fabric_lag_t *l = &s->lags[r];
        char buf[32];
        s_text(t, r, 0, l->subscriber);
        s_text(t, r, 1, l->source);
        if (l->pub_known) {
            s_u64(t, r, 2, l->seq_lag);
            snprintf(buf, sizeof(buf), "%.3fs", (double)l->time_lag_ms / 1000.0);
            s_num(t, r, 3, (double)l->time_lag_ms, buf);
            s_u64(t, r, 4, l->pub_seq);
        } else {
            s_text(t, r, 2, "-");
            s_text(t, r, 3, "-");
            s_text(t, r, 4, "-");
        }
        s_u64(t, r, 5, l->last_seq);
        s_u64(t, r, 6, l->gaps);
        s_text(t, r, 7, l->sub_up ? "up" : "down");
        s_textf(t, r, 8, "%" PRIu64, l->src_inst);
    }
    t->nrows = s->nlags;
}

/*  One section value into a cell: how it should look, or "-" when absent. */
static void s_section_cell(fabric_table_t *t, size_t row, size_t col, const json_t *sec,
                           const char *key, int kind)
{
    const json_t *v = sec ? json_object_get(sec, key) : NULL;
    if (!v || json_is_null(v)) {
        s_text(t, row, col, "-");
        return;
    }
    char buf[CELL_MAX];
    out_t o = {buf, 0, sizeof(buf)};
    buf[0] = 0;
    double d;
    bool numeric = s_numeric(v, &d);
    if (kind == 'b' && json_is_number(v))
        s_fmt_bytes(d, buf, sizeof(buf));
    else if (kind == 'u' && json_is_number(v))
        s_fmt_us(d, buf, sizeof(buf));
    else if (kind == 'm' && json_is_number(v))
        s_fmt_dur_ms(d > 0 ? (uint64_t)d : 0, buf, sizeof(buf));
    else if (kind == 'r' && json_is_number(v))
        fabric_format_rate(d, buf, sizeof(buf));
    else
        s_render(v, &o, 0);
    if (!buf[0]) /* an empty map or list */
        snprintf(buf, sizeof(buf), "-");
    if (numeric)
        s_num(t, row, col, d, buf);
    else
        s_text(t, row, col, buf);
}

/*  The keys of sec not in known[], as "k=v k=v". */
static void s_other_cell(fabric_table_t *t, size_t row, size_t col, const json_t *sec,
                         const char *const *known)
{
    char buf[CELL_MAX];
    out_t o = {buf, 0, sizeof(buf)};
    buf[0] = 0;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)sec, k, v)
    {
        bool skip = false;
        for (size_t i = 0; known[i] && !skip; i++)
            skip = !strcmp(k, known[i]);
        if (skip)
            continue;
        s_out(&o, o.len ? " %s=" : "%s=", k);
        s_render(v, &o, 1);
    }
    s_text(t, row, col, o.len ? buf : "-");
}

static bool s_is_archiver(const fabric_node_t *n)
{
    return n->archive || !strcmp(n->role, "archiver");
}

static bool s_is_dlq(const fabric_node_t *n)
{
    return n->dlq || !strcmp(n->role, "dlq");
}

static void s_build_archiver(fabric_table_t *t, const fabric_snapshot_t *s)
{
    static const char *const known[] = {"last_offset",     "events_per_s",   "bytes_on_disk",
                                        "commit_p99_us",   "replay_sessions", "retention",
                                        NULL};
    size_t r = 0;
    for (size_t i = 0; i < s->nnodes; i++) {
        const fabric_node_t *n = &s->nodes[i];
        if (!s_is_archiver(n))
            continue;
        s_text(t, r, 0, n->name);
        s_text(t, r, 1, n->up ? "up" : "down");
        s_section_cell(t, r, 2, n->archive, "last_offset", 0);
        s_section_cell(t, r, 3, n->archive, "events_per_s", 'r');
        s_section_cell(t, r, 4, n->archive, "bytes_on_disk", 'b');
        s_section_cell(t, r, 5, n->archive, "commit_p99_us", 'u');
        s_section_cell(t, r, 6, n->archive, "replay_sessions", 0);
        s_section_cell(t, r, 7, n->archive, "retention", 0);
        if (n->archive)
            s_other_cell(t, r, 8, n->archive, known);
        else
            s_text(t, r, 8, "-");
        r++;
    }
    t->nrows = r;
}

static void s_build_dlq(fabric_table_t *t, const fabric_snapshot_t *s)
{
    static const char *const known[] = {"pending",       "parked",
                                        "by_subscriber", "by_topic",
                                        "oldest_age_ms", "oldest_pending_age_ms",
                                        "top_codes",     NULL};
    size_t r = 0;
    for (size_t i = 0; i < s->nnodes; i++) {
        const fabric_node_t *n = &s->nodes[i];
        if (!s_is_dlq(n))
            continue;
        s_text(t, r, 0, n->name);
        s_text(t, r, 1, n->up ? "up" : "down");
        s_section_cell(t, r, 2, n->dlq, "pending", 0);
        s_section_cell(t, r, 3, n->dlq, "parked", 0);
        const char *oldest = n->dlq && !json_object_get(n->dlq, "oldest_age_ms")
                                 ? "oldest_pending_age_ms"
                                 : "oldest_age_ms";
        s_section_cell(t, r, 4, n->dlq, oldest, 'm');
        s_section_cell(t, r, 5, n->dlq, "by_subscriber", 0);
        s_section_cell(t, r, 6, n->dlq, "by_topic", 0);
        s_section_cell(t, r, 7, n->dlq, "top_codes", 0);
        if (n->dlq)
            s_other_cell(t, r, 8, n->dlq, known);
        else
            s_text(t, r, 8, "-");
        r++;
    }
    t->nrows = r;
}

static void s_layout(fabric_table_t *t)
{
    for (size_t c = 0; c < t->ncols; c++) {
        size_t w = strlen(t->cols[c].name);
        size_t cap = c + 1 == t->ncols ? LAST_COL_MAX : FABRIC_COL_MAX;
        for (size_t i = 0; i < t->nvisible; i++) {
            size_t n = strlen(s_cell(t, t->visible[i], c)->text);
            if (n > w)
                w = n;
        }
        t->widths[c] = w < cap ? w : cap;
    }
}

static bool s_matches(const fabric_table_t *t, size_t row)
{
    if (!t->filter)
        return true;
    for (size_t c = 0; c < t->ncols; c++)
        if (strcasestr(s_cell(t, row, c)->text, t->filter))
            return true;
    return false;
}

static void s_refilter(fabric_table_t *t)
{
    t->nvisible = 0;
    for (size_t i = 0; i < t->nrows; i++)
        if (s_matches(t, t->order[i]))
            t->visible[t->nvisible++] = t->order[i];
    s_layout(t);
}

fabric_table_t *fabric_table_new(const fabric_snapshot_t *snap, fabric_view_t view)
{
    if (!snap || (unsigned)view >= FABRIC_VIEW_COUNT)
        return NULL;
    fabric_table_t *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->view = view;
    t->cols = s_views[view].cols;
    t->ncols = s_views[view].ncols;
    size_t rows = view == FABRIC_VIEW_TOPICS ? snap->ntopics
                  : view == FABRIC_VIEW_LAG  ? snap->nlags
                                             : snap->nnodes;
    size_t alloc = rows ? rows : 1;
    t->cells = calloc(alloc * t->ncols, sizeof(*t->cells));
    t->order = calloc(alloc, sizeof(*t->order));
    t->visible = calloc(alloc, sizeof(*t->visible));
    if (!t->cells || !t->order || !t->visible) {
        t->nrows = 0;
        fabric_table_destroy(&t);
        return NULL;
    }
    switch (view) {
    case FABRIC_VIEW_NODES:
        s_build_nodes(t, snap);
        break;
    case FABRIC_VIEW_TOPICS:
        s_build_topics(t, snap);
        break;
    case FABRIC_VIEW_LAG:
        s_build_lag(t, snap);
        break;
    case FABRIC_VIEW_ARCHIVER:
        s_build_archiver(t, snap);
        break;
    default:
        s_build_dlq(t, snap);
        break;
    }
    /* The archiver and DLQ views build fewer rows than allocated; after a failed allocation
       destroy walks every allocated row (unset cells are NULL). */
    if (t->oom) {
        t->nrows = rows;
        fabric_table_destroy(&t);
        return NULL;
    }
    for (size_t i = 0; i < t->nrows; i++) {
        t->order[i] = i;
        for (size_t c = 0; c < t->ncols; c++)
            if (!s_cell(t, i, c)->text) {
                s_text(t, i, c, "-");
                if (t->oom) {
                    t->nrows = rows;
                    fabric_table_destroy(&t);
                    return NULL;
                }
            }
    }
    s_refilter(t);
    return t;
}

void fabric_table_destroy(fabric_table_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    fabric_table_t *t = *self_p;
    if (t->cells) {
        /* Cells beyond nrows are either NULL or (after an allocation failure) set. */
        size_t rows = t->nrows;
        for (size_t i = 0; i < rows * t->ncols; i++)
            free(t->cells[i].text);
    }
    free(t->cells);
    free(t->order);
    free(t->visible);
    free(t->filter);
    free(t);
    *self_p = NULL;
}

fabric_view_t fabric_table_view(const fabric_table_t *self)
{
    return self->view;
}

size_t fabric_table_ncols(const fabric_table_t *self)
{
    return self ? self->ncols : 0;
}

const char *fabric_table_col_name(const fabric_table_t *self, size_t col)
{
    return self && col < self->ncols ? self->cols[col].name : NULL;
}

bool fabric_table_col_numeric(const fabric_table_t *self, size_t col)
{
    return self && col < self->ncols && self->cols[col].numeric;
}

size_t fabric_table_nrows(const fabric_table_t *self)
{
    return self ? self->nvisible : 0;
}

size_t fabric_table_total_rows(const fabric_table_t *self)
{
    return self ? self->nrows : 0;
}

const char *fabric_table_cell(const fabric_table_t *self, size_t row, size_t col)
{
    if (!self || row >= self->nvisible || col >= self->ncols)
        return NULL;
    return s_cell(self, self->visible[row], col)->text;
}

static int s_compare(const void *a, const void *b, void *arg)
{
    const fabric_table_t *t = arg;
    size_t ra = *(const size_t *)a, rb = *(const size_t *)b;
    const cell_t *x = &t->cells[ra * t->ncols + t->sort_col];
    const cell_t *y = &t->cells[rb * t->ncols + t->sort_col];
    int c = 0;
    if (t->cols[t->sort_col].numeric) {
        if (x->has_key != y->has_key)
            return x->has_key ? -1 : 1; /* missing values last, either direction */
        if (x->has_key)
            c = x->key < y->key ? -1 : x->key > y->key;
    } else
        c = strcmp(x->text, y->text);
    if (t->sort_desc)
        c = -c;
    return c ? c : (ra < rb ? -1 : ra > rb);
}

void fabric_table_sort(fabric_table_t *self, size_t col, bool desc)
{
    if (!self)
        return;
    self->sort_col = col < self->ncols ? col : 0;
    self->sort_desc = desc;
    for (size_t i = 0; i < self->nrows; i++)
        self->order[i] = i;
    qsort_r(self->order, self->nrows, sizeof(*self->order), s_compare, self);
    s_refilter(self);
}

size_t fabric_table_sort_col(const fabric_table_t *self)
{
    return self ? self->sort_col : 0;
}

bool fabric_table_sort_desc(const fabric_table_t *self)
{
    return self && self->sort_desc;
}

size_t fabric_table_filter(fabric_table_t *self, const char *filter)
{
    if (!self)
        return 0;
    free(self->filter);
    self->filter = filter && *filter ? strdup(filter) : NULL;
    s_refilter(self);
    return self->nvisible;
}

size_t fabric_table_line_width(const fabric_table_t *self)
{
    size_t w = 0;
    for (size_t c = 0; self && c < self->ncols; c++)
        w += self->widths[c] + (c ? 2 : 0);
    return w;
}

bool fabric_table_col_span(const fabric_table_t *self, size_t col, size_t *start, size_t *width)
{
    if (!self || col >= self->ncols)
        return false;
    size_t x = 0;
    for (size_t c = 0; c < col; c++)
        x += self->widths[c] + 2;
    if (start)
        *start = x;
    if (width)
        *width = self->widths[col];
    return true;
}

size_t fabric_table_line(const fabric_table_t *self, long row, char *buf, size_t cap)
{
    if (!cap)
        return 0;
    buf[0] = 0;
    if (!self || row < -1 || (row >= 0 && (size_t)row >= self->nvisible))
        return 0;
    out_t o = {buf, 0, cap};
    for (size_t c = 0; c < self->ncols; c++) {
        const char *text = row < 0 ? self->cols[c].name
                                   : s_cell(self, self->visible[row], c)->text;
        int w = (int)self->widths[c];
        const char *sep = c ? "  " : "";
        bool last = c + 1 == self->ncols;
        if (self->cols[c].numeric)
            s_out(&o, "%s%*.*s", sep, w, w, text);
        else if (last)
            s_out(&o, "%s%.*s", sep, w, text);
        else
            s_out(&o, "%s%-*.*s", sep, w, w, text);
    }
    return o.len;
}

void fabric_table_print(const fabric_table_t *self, FILE *out)
{
    size_t cap = fabric_table_line_width(self) + 1;
    char *line = malloc(cap);
    if (!line)
        return;
    for (long r = -1; r < (long)fabric_table_nrows(self); r++) {
        size_t n = fabric_table_line(self, r, line, cap);
        while (n > 0 && line[n - 1] == ' ')
            line[--n] = 0;
        fprintf(out, "%s\n", line);
    }
    free(line);
}

void fabric_totals_line(const fabric_snapshot_t *snap, char *buf, size_t cap)
{
    const fabric_totals_t *t = &snap->totals;
    snprintf(buf, cap,
             "nodes %" PRIu32 " up, %" PRIu32 " down | out %.1f/s in %.1f/s | dropped %" PRIu64
             " gaps %" PRIu64 " repaired %" PRIu64 " errors %" PRIu64 " dead-lettered %" PRIu64
             " malformed %" PRIu64 " | heartbeats %" PRIu64 " rejected %" PRIu64,
             t->nodes_up, t->nodes_down, t->out_eps, t->in_eps, t->dropped, t->gaps,
             t->repaired, t->handler_errors, t->dead_lettered, t->malformed, t->heartbeats,
             t->rejected);
}

void fabric_sparkline(const double *v, size_t n, size_t width, bool utf8, char *buf, size_t cap)
{
    static const char *const blocks[] = {"\u2581", "\u2582", "\u2583", "\u2584",
                                         "\u2585", "\u2586", "\u2587", "\u2588"};
    static const char ramp[] = "_.:-=+*#";
    if (!cap)
        return;
    buf[0] = 0;
    size_t from = n > width ? n - width : 0;
    double max = 0;
    for (size_t i = from; i < n; i++)
        if (v[i] > max)
            max = v[i];
    size_t len = 0;
    for (size_t i = from; i < n; i++) {
        int level = 0;
        if (max > 0 && v[i] > 0) {
            level = (int)ceil(v[i] / max * 8.0) - 1;
            level = level < 0 ? 0 : level > 7 ? 7 : level;
        }
        const char *glyph = utf8 ? blocks[level] : &ramp[level];
        size_t g = utf8 ? strlen(glyph) : 1;
        if (len + g + 1 > cap)
            break;
        memcpy(buf + len, glyph, g);
        len += g;
        buf[len] = 0;
    }
}

void fabric_print_snapshot(FILE *out, const fabric_snapshot_t *snap, unsigned view_mask)
{
    char line[1024];
    fabric_totals_line(snap, line, sizeof(line));
    fprintf(out, "%s\n", line);
    if (snap->nhistory >= 2) {
        char spark[FABRIC_HISTORY + 1];
        double max = 0;
        for (size_t i = 0; i < snap->nhistory; i++)
            if (snap->history_out[i] > max)
                max = snap->history_out[i];
        fabric_sparkline(snap->history_out, snap->nhistory, FABRIC_HISTORY, false, spark,
                         sizeof(spark));
        fprintf(out, "out/s history (max %.1f): %s\n", max, spark);
    }
    for (int v = 0; v < FABRIC_VIEW_COUNT; v++) {
        if (!(view_mask & (1u << v)))
            continue;
        fabric_table_t *t = fabric_table_new(snap, (fabric_view_t)v);
        if (!t) {
            fprintf(out, "\n== %s: out of memory ==\n", fabric_view_title((fabric_view_t)v));
            continue;
        }
        fprintf(out, "\n== %s (%zu) ==\n", fabric_view_title((fabric_view_t)v),
                fabric_table_nrows(t));
        fabric_table_print(t, out);
        fabric_table_destroy(&t);
    }
}

/* ---- JSON --------------------------------------------------------------------------------- */

static json_t *s_inst(uint64_t inst)
{
    char buf[24];
    snprintf(buf, sizeof(buf), "%" PRIu64, inst);
    return json_string(buf);
}

/*  uint64 counters as JSON integers (they stay far below INT64_MAX in practice; larger ones
    are clamped rather than wrapped negative). */
static json_t *s_uint(uint64_t v)
{
    return json_integer(v > INT64_MAX ? INT64_MAX : (json_int_t)v);
}

static json_t *s_rate_json(bool has, double v)
{
    return has ? json_real(round(v * 10.0) / 10.0) : json_null();
}

static json_t *s_node_json(const fabric_node_t *n, int64_t now_ms)
{
    json_t *c = json_pack("{s:o s:o s:o s:o s:o s:o s:o s:o s:o s:o s:o s:o}", "published",
                          s_uint(n->c.published), "publish_errors", s_uint(n->c.publish_errors),
                          "received", s_uint(n->c.received), "delivered", s_uint(n->c.delivered),
                          "dropped", s_uint(n->c.dropped), "gaps", s_uint(n->c.gaps), "repaired",
                          s_uint(n->c.repaired), "handler_errors", s_uint(n->c.handler_errors),
                          "dead_lettered", s_uint(n->c.dead_lettered), "malformed",
                          s_uint(n->c.malformed), "ctl_requests", s_uint(n->c.ctl_requests),
                          "ctl_errors", s_uint(n->c.ctl_errors));
    json_t *o = json_pack("{s:s s:s s:o s:s s:o s:b s:o s:o s:o s:o s:o s:o s:o s:o s:o s:o}",
                          "name", n->name, "role", n->role, "inst", s_inst(n->inst), "host",
                          n->host, "pid", s_uint(n->pid), "up", n->up, "uptime_ms",
                          s_uint(n->uptime_ms), "hb_ms", s_uint(n->hb_ms), "seq", s_uint(n->seq),
                          "out_per_s", s_rate_json(n->has_rates && n->up, n->out_eps),
                          "in_per_s", s_rate_json(n->has_rates && n->up, n->in_eps), "peers_up",
                          s_uint(n->peers_up), "peers_down", s_uint(n->peers_down),
                          "last_heard_ms_ago",
                          json_integer(now_ms > n->last_heard_ms ? now_ms - n->last_heard_ms : 0),
                          "heartbeats", s_uint(n->heartbeats), "counters", c);
    if (!o)
        return NULL;
    json_object_set_new(o, "outbox",
                        json_pack("{s:o s:o s:o}", "events", s_uint(n->outbox_events), "bytes",
                                  s_uint(n->outbox_bytes), "first_seq",
                                  s_uint(n->outbox_first_seq)));
    if (n->latency.present) {
        json_t *le = json_array(), *counts = json_array();
        for (size_t i = 0; i < n->latency.nbounds; i++)
            json_array_append_new(le, s_uint(n->latency.le_us[i]));
        for (size_t i = 0; i <= n->latency.nbounds; i++)
            json_array_append_new(counts, s_uint(n->latency.counts[i]));
        json_object_set_new(o, "latency",
                            json_pack("{s:o s:o s:o s:o}", "le_us", le, "counts", counts, "count",
                                      s_uint(n->latency.count), "sum_us",
                                      s_uint(n->latency.sum_us)));
    }
    return o;
}

json_t *fabric_snapshot_json(const fabric_snapshot_t *snap)
{
    if (!snap)
        return NULL;
    const fabric_totals_t *t = &snap->totals;
    json_t *nodes = json_array(), *topics = json_array(), *lag = json_array(),
           *archivers = json_array(), *dlqs = json_array();
    json_t *totals = json_pack(
        "{s:i s:i s:o s:o s:o s:o s:o s:o s:o s:o s:o s:o s:o s:o}", "nodes_up",
        (int)t->nodes_up, "nodes_down", (int)t->nodes_down, "out_per_s",
        s_rate_json(true, t->out_eps), "in_per_s", s_rate_json(true, t->in_eps), "published",
        s_uint(t->published), "received", s_uint(t->received), "dropped", s_uint(t->dropped),
        "gaps", s_uint(t->gaps), "repaired", s_uint(t->repaired), "handler_errors",
        s_uint(t->handler_errors), "dead_lettered", s_uint(t->dead_lettered), "malformed",
        s_uint(t->malformed), "heartbeats", s_uint(t->heartbeats), "rejected",
        s_uint(t->rejected));
    json_t *doc = json_pack("{s:I s:o s:o s:o s:o s:o s:o}", "time_ms", (json_int_t)snap->now_ms,
                            "totals", totals, "nodes", nodes, "topics", topics, "lag", lag,
                            "archivers", archivers, "dlqs", dlqs);
    if (!doc)
        return NULL;
    bool ok = true;
    for (size_t i = 0; i < snap->nnodes && ok; i++) {
        const fabric_node_t *n = &snap->nodes[i];
        ok = json_array_append_new(nodes, s_node_json(n, snap->now_ms)) == 0;
        if (ok && s_is_archiver(n))
            ok = json_array_append_new(
                     archivers, json_pack("{s:s s:o s:b s:O}", "name", n->name, "inst",
                                          s_inst(n->inst), "up", n->up, "archive",
                                          n->archive ? n->archive : json_null())) == 0;
        if (ok && s_is_dlq(n))
            ok = json_array_append_new(dlqs, json_pack("{s:s s:o s:b s:O}", "name", n->name,
                                                       "inst", s_inst(n->inst), "up", n->up,
                                                       "dlq", n->dlq ? n->dlq : json_null())) ==
                 0;
    }
    for (size_t i = 0; i < snap->ntopics && ok; i++) {
        const fabric_topic_t *x = &snap->topics[i];
        ok = json_array_append_new(
                 topics,
                 json_pack("{s:s s:i s:i s:o s:o s:o s:o s:o s:o s:o s:o}", "topic", x->topic,
                           "publishers", (int)x->publishers, "subscribers", (int)x->subscribers,
                           "out_per_s", s_rate_json(true, x->out_eps), "in_per_s",
                           s_rate_json(true, x->in_eps), "out_bytes_per_s",
                           s_rate_json(true, x->out_bps), "in_bytes_per_s",
                           s_rate_json(true, x->in_bps), "published", s_uint(x->pub_events),
                           "published_bytes", s_uint(x->pub_bytes), "received",
                           s_uint(x->recv_events), "received_bytes", s_uint(x->recv_bytes))) ==
             0;
    }
    for (size_t i = 0; i < snap->nlags && ok; i++) {
        const fabric_lag_t *l = &snap->lags[i];
        ok = json_array_append_new(
                 lag, json_pack("{s:s s:o s:b s:s s:o s:o s:o s:o s:o s:o}", "subscriber",
                                l->subscriber, "subscriber_inst", s_inst(l->sub_inst),
                                "subscriber_up", l->sub_up, "source", l->source, "source_inst",
                                s_inst(l->src_inst), "publisher_seq",
                                l->pub_known ? s_uint(l->pub_seq) : json_null(), "last_seq",
                                s_uint(l->last_seq), "seq_lag",
                                l->pub_known ? s_uint(l->seq_lag) : json_null(), "time_lag_ms",
                                l->pub_known ? json_integer(l->time_lag_ms) : json_null(),
                                "gaps", s_uint(l->gaps))) == 0;
    }
    if (!ok) {
        json_decref(doc);
        return NULL;
    }
    return doc;
}

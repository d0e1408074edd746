/*  node_stats.c - per-topic counters and the latency histogram (see node_stats.h). */
#include "node_stats.h"

#include <czmq.h>

#include "ctl_proto.h"

typedef struct {
    uint64_t events;
    uint64_t bytes;
} topic_row_t;

struct topic_table_t {
    zhashx_t *rows;     /* topic -> topic_row_t */
    size_t max;
    topic_row_t other;  /* topics beyond max */
};

topic_table_t *topic_table_new(size_t max)
{
    topic_table_t *self = calloc(1, sizeof(*self));
    assert(self);
    self->rows = zhashx_new();
    zhashx_set_destructor(self->rows, (zhashx_destructor_fn *)zstr_free);
    self->max = max ? max : TOPIC_TABLE_MAX;
    return self;
}

void topic_table_destroy(topic_table_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zhashx_destroy(&(*self_p)->rows);
    free(*self_p);
    *self_p = NULL;
}

void topic_table_add(topic_table_t *self, const char *topic, size_t bytes)
{
    topic_row_t *row = zhashx_lookup(self->rows, topic);
    if (!row) {
        if (zhashx_size(self->rows) >= self->max) {
            row = &self->other;
        } else {
            row = calloc(1, sizeof(*row));
            assert(row);
            zhashx_insert(self->rows, topic, row);
        }
    }
    row->events++;
    row->bytes += bytes;
}

typedef struct {
    const char *topic;
    uint64_t pub_events, pub_bytes, recv_events, recv_bytes;
} merged_t;

static int s_by_events_desc(const void *a, const void *b)
{
    const merged_t *x = a, *y = b;
    uint64_t ex = x->pub_events + x->recv_events, ey = y->pub_events + y->recv_events;
    return ex < ey ? 1 : ex > ey ? -1 : strcmp(x->topic, y->topic);
}

static void s_pack_row(msgpack_packer *pk, const merged_t *m)
{
    msgpack_pack_array(pk, 5);
    ctl_pack_str(pk, m->topic);
    msgpack_pack_uint64(pk, m->pub_events);
    msgpack_pack_uint64(pk, m->pub_bytes);
    msgpack_pack_uint64(pk, m->recv_events);
    msgpack_pack_uint64(pk, m->recv_bytes);
}

void topic_tables_pack(msgpack_packer *pk, topic_table_t *pub, topic_table_t *recv, size_t top_n)
{
    size_t cap = (pub ? zhashx_size(pub->rows) : 0) + (recv ? zhashx_size(recv->rows) : 0);
    merged_t *rows = calloc(cap ? cap : 1, sizeof(*rows));
    assert(rows);
    size_t n = 0;
    if (pub)
        for (topic_row_t *r = zhashx_first(pub->rows); r; r = zhashx_next(pub->rows)) {
            rows[n].topic = zhashx_cursor(pub->rows);
            rows[n].pub_events = r->events;
            rows[n].pub_bytes = r->bytes;
            n++;
        }
    size_t npub = n;
    if (recv)
        for (topic_row_t *r = zhashx_first(recv->rows); r; r = zhashx_next(recv->rows)) {
            const char *topic = zhashx_cursor(recv->rows);
            merged_t *m = NULL;
            if (pub && zhashx_lookup(pub->rows, topic))
                for (size_t i = 0; i < npub && !m; i++)
                    if (strcmp(rows[i].topic, topic) == 0)
                        m = &rows[i];
            if (!m) {
                m = &rows[n++];
                m->topic = topic;
            }
            m->recv_events = r->events;
            m->recv_bytes = r->bytes;
        }
    qsort(rows, n, sizeof(*rows), s_by_events_desc);
    merged_t other = {"_other", 0, 0, 0, 0};
    if (pub) {
        other.pub_events = pub->other.events;
        other.pub_bytes = pub->other.bytes;
    }
    if (recv) {
        other.recv_events = recv->other.events;
        other.recv_bytes = recv->other.bytes;
    }
    for (size_t i = top_n; i < n; i++) {
        other.pub_events += rows[i].pub_events;
        other.pub_bytes += rows[i].pub_bytes;
        other.recv_events += rows[i].recv_events;
        other.recv_bytes += rows[i].recv_bytes;
    }
    size_t shown = n < top_n ? n : top_n;
    bool has_other = other.pub_events + other.recv_events > 0;
    msgpack_pack_array(pk, (uint32_t)(shown + has_other));
    for (size_t i = 0; i < shown; i++)
        s_pack_row(pk, &rows[i]);
    if (has_other)
        s_pack_row(pk, &other);
    free(rows);
}

void latency_hist_add(latency_hist_t *h, int64_t ns)
{
    uint64_t us = ns > 0 ? (uint64_t)ns / 1000 : 0;
    int b = 0;
    while (b < LATENCY_BUCKETS - 1 && us >= (1ull << b))
        b++;
    h->buckets[b]++;
    h->count++;
    h->sum_us += us;
}

void latency_hist_pack(msgpack_packer *pk, const latency_hist_t *h)
{
    msgpack_pack_map(pk, 5);
    ctl_pack_kv_str(pk, "unit", "us");
    ctl_pack_str(pk, "le");
    msgpack_pack_array(pk, LATENCY_BUCKETS - 1);
    for (int i = 0; i < LATENCY_BUCKETS - 1; i++)
        msgpack_pack_uint64(pk, 1ull << i);
    ctl_pack_str(pk, "counts");
    msgpack_pack_array(pk, LATENCY_BUCKETS);
    for (int i = 0; i < LATENCY_BUCKETS; i++)
        msgpack_pack_uint64(pk, h->buckets[i]);
    ctl_pack_kv_uint(pk, "count", h->count);
    ctl_pack_kv_uint(pk, "sum", h->sum_us);
}

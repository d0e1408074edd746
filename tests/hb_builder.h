/*  hb_builder.h - hand-built `_weft.hb` payloads for the tests of the fabric model and the
    exporter's text format (test_fabric_model.c, test_prom.c): t_pack packs a t_hb_t the way
    heartbeat.c packs a node's heartbeat (with msgpack_pack_*, every return checked), t_feed
    feeds it to a fabric model at a chosen receive time. Included by one test file each.
*/
#ifndef WEFT_TESTS_HB_BUILDER_H_INCLUDED
#define WEFT_TESTS_HB_BUILDER_H_INCLUDED

#include <jansson.h>
#include <msgpack.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fabric_model.h"

#define T0 1700000000000LL /* a wall-clock time, ms */

typedef struct {
    const char *topic;
    uint64_t pub_events, pub_bytes, recv_events, recv_bytes;
} t_topic_t;

typedef struct {
    const char *src;
    uint64_t inst, last_seq;
    int64_t last_ts;
    uint64_t gaps;
} t_source_t;

typedef struct {
    uint64_t inst;
    const char *name, *role;
    uint64_t uptime_ms, hb_ms, seq;
    uint64_t published, received, dropped, gaps, handler_errors, dead_lettered;
    int ntopics;
    t_topic_t topics[4];
    int nsources;
    t_source_t sources[4];
    bool latency;
    const char *section_key; /* "archive" or "dlq": packs section_json as that map */
    const char *section_json;
} t_hb_t;

static void t_must(int rc)
{
    if (rc != 0) {
        fprintf(stderr, "msgpack packing failed\n");
        abort();
    }
}

static void t_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    t_must(msgpack_pack_str(pk, n));
    t_must(msgpack_pack_str_body(pk, s, n));
}

static void t_kv_u64(msgpack_packer *pk, const char *k, uint64_t v)
{
    t_str(pk, k);
    t_must(msgpack_pack_uint64(pk, v));
}

/*  Packs a JSON value (integers, strings, objects, arrays) as msgpack. */
static void t_json(msgpack_packer *pk, const json_t *j)
{
    const char *k;
    json_t *v;
    size_t i;
    switch (json_typeof(j)) {
    case JSON_OBJECT:
        t_must(msgpack_pack_map(pk, (uint32_t)json_object_size(j)));
        json_object_foreach((json_t *)j, k, v)
        {
            t_str(pk, k);
            t_json(pk, v);
        }
        break;
    case JSON_ARRAY:
        t_must(msgpack_pack_array(pk, (uint32_t)json_array_size(j)));
        json_array_foreach(j, i, v) t_json(pk, v);
        break;
    case JSON_INTEGER:
        t_must(msgpack_pack_int64(pk, json_integer_value(j)));
        break;
    case JSON_REAL:
        t_must(msgpack_pack_double(pk, json_real_value(j)));
        break;
    case JSON_STRING:
        t_str(pk, json_string_value(j));
        break;
    default:
        t_must(msgpack_pack_nil(pk));
    }
}

/*  Packs h like a node's heartbeat into sb (cleared first). */
static void t_pack(const t_hb_t *h, msgpack_sbuffer *sb)
{
    msgpack_sbuffer_clear(sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    uint32_t keys = 16 + (h->latency ? 1 : 0) + (h->section_key ? 1 : 0);
    t_must(msgpack_pack_map(&pk, keys));
    t_str(&pk, "name");
    t_str(&pk, h->name ? h->name : "n");
    t_str(&pk, "role");
    t_str(&pk, h->role ? h->role : "node");
    t_kv_u64(&pk, "inst", h->inst);
    t_kv_u64(&pk, "pid", 4242);
    t_str(&pk, "host");
    t_str(&pk, "box");
    t_kv_u64(&pk, "uptime_ms", h->uptime_ms);
    t_kv_u64(&pk, "hb_ms", h->hb_ms ? h->hb_ms : 1000);
    t_kv_u64(&pk, "seq", h->seq);
    t_kv_u64(&pk, "peers_up", 2);
    t_kv_u64(&pk, "peers_down", 1);
    t_str(&pk, "counters");
    t_must(msgpack_pack_map(&pk, 6));
    t_kv_u64(&pk, "published", h->published);
    t_kv_u64(&pk, "received", h->received);
    t_kv_u64(&pk, "dropped", h->dropped);
    t_kv_u64(&pk, "gaps", h->gaps);
    t_kv_u64(&pk, "handler_errors", h->handler_errors);
    t_kv_u64(&pk, "dead_lettered", h->dead_lettered);
    t_str(&pk, "outbox");
    t_must(msgpack_pack_map(&pk, 2));
    t_kv_u64(&pk, "events", h->published);
    t_kv_u64(&pk, "bytes", h->published * 10);
    t_str(&pk, "svc");
    t_str(&pk, "");
    t_str(&pk, "topics");
    t_must(msgpack_pack_array(&pk, (uint32_t)h->ntopics));
    for (int i = 0; i < h->ntopics; i++) {
        const t_topic_t *t = &h->topics[i];
        t_must(msgpack_pack_array(&pk, 5));
        t_str(&pk, t->topic);
        t_must(msgpack_pack_uint64(&pk, t->pub_events));
        t_must(msgpack_pack_uint64(&pk, t->pub_bytes));
        t_must(msgpack_pack_uint64(&pk, t->recv_events));
        t_must(msgpack_pack_uint64(&pk, t->recv_bytes));
    }
    t_str(&pk, "sources");
    t_must(msgpack_pack_array(&pk, (uint32_t)h->nsources));
    for (int i = 0; i < h->nsources; i++) {
        const t_source_t *s = &h->sources[i];
        t_must(msgpack_pack_array(&pk, 5));
        t_str(&pk, s->src);
        t_must(msgpack_pack_uint64(&pk, s->inst));
        t_must(msgpack_pack_uint64(&pk, s->last_seq));
        t_must(msgpack_pack_int64(&pk, s->last_ts));
        t_must(msgpack_pack_uint64(&pk, s->gaps));
    }
    t_str(&pk, "sub");
    t_str(&pk, "tcp://127.0.0.1:1");
    if (h->latency) {
        /* 3 bounds: < 1 us, < 2 us, < 4 us, then everything above */
        t_str(&pk, "latency");
        t_must(msgpack_pack_map(&pk, 5));
        t_str(&pk, "unit");
        t_str(&pk, "us");
        t_str(&pk, "le");
        t_must(msgpack_pack_array(&pk, 3));
        for (int i = 0; i < 3; i++)
            t_must(msgpack_pack_uint64(&pk, 1u << i));
        t_str(&pk, "counts");
        t_must(msgpack_pack_array(&pk, 4));
        static const uint64_t counts[4] = {10, 80, 9, 1};
        for (int i = 0; i < 4; i++)
            t_must(msgpack_pack_uint64(&pk, counts[i]));
        t_kv_u64(&pk, "count", 100);
        t_kv_u64(&pk, "sum", 250);
    }
    if (h->section_key) {
        json_error_t je;
        json_t *j = json_loads(h->section_json, 0, &je);
        if (!j) {
            fprintf(stderr, "bad test JSON: %s\n", je.text);
            abort();
        }
        t_str(&pk, h->section_key);
        t_json(&pk, j);
        json_decref(j);
    }
}

/*  Packs and feeds h at time now. Returns what the model said. */
static int t_feed(fabric_model_t *m, const t_hb_t *h, int64_t now)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    t_pack(h, &sb);
    int rc = fabric_model_feed(m, sb.data, sb.size, h->inst, now);
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

#endif

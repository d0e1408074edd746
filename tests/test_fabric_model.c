/*  test_fabric_model.c - tests of tools/common/fabric_model and fabric_view: the fabric as
    weft-top, `weft stat` and the exporter see it, fed with hand-built `_weft.hb` payloads
    (hb_builder.h packs them with msgpack_pack_*, as heartbeat.c does) at chosen receive times.
    Rows, rates, up/down and forgetting, topic aggregates, lag pairs, archiver and DLQ
    sections, bounds, hostile input, sorting, filtering and JSON.
*/
#include <jansson.h>
#include <msgpack.h>
#include <stdbool.h>

#include "fabric_model.h"
#include "fabric_view.h"
#include "hb_builder.h"
#include "testing.h"
#include "weft/error.h"

static bool t_near(double a, double b)
{
    return a > b - 0.01 && a < b + 0.01;
}

/*  The visible row of a table whose column col equals text, or -1. */
static long t_row(const fabric_table_t *t, size_t col, const char *text)
{
    for (size_t r = 0; r < fabric_table_nrows(t); r++)
        if (!strcmp(fabric_table_cell(t, r, col), text))
            return (long)r;
    return -1;
}

/*  The column of a table called name, or -1. */
static long t_col(const fabric_table_t *t, const char *name)
{
    for (size_t c = 0; c < fabric_table_ncols(t); c++)
        if (!strcmp(fabric_table_col_name(t, c), name))
            return (long)c;
    return -1;
}

/* ---- cases -------------------------------------------------------------------------------- */

TEST_CASE("a heartbeat makes a node row with its fields", node_row)
{
    fabric_model_t *m = fabric_model_new();
    t_hb_t h = {.inst = 7, .name = "orders", .role = "svc", .uptime_ms = 5000, .seq = 42,
                .published = 42, .received = 9, .dropped = 3, .gaps = 2, .handler_errors = 1,
                .dead_lettered = 1, .latency = true};
    CHECK_EQ_INT(t_feed(m, &h, T0), 0);
    CHECK_EQ_INT(fabric_model_size(m), 1);
    fabric_snapshot_t *s = fabric_model_snapshot(m, T0 + 10);
    CHECK(s && s->nnodes == 1);
    const fabric_node_t *n = fabric_snapshot_node(s, 7);
    CHECK(n);
    CHECK_STR(n->name, "orders");
    CHECK_STR(n->role, "svc");
    CHECK_STR(n->host, "box");
    CHECK_EQ_INT(n->pid, 4242);
    CHECK(n->up);
    CHECK(!n->has_rates);
    CHECK_EQ_INT(n->seq, 42);
    CHECK_EQ_INT(n->c.published, 42);
    CHECK_EQ_INT(n->c.dropped, 3);
    CHECK_EQ_INT(n->c.dead_lettered, 1);
    CHECK_EQ_INT(n->outbox_events, 42);
    CHECK_EQ_INT(n->peers_up, 2);
    CHECK(n->latency.present);
    CHECK_EQ_INT(n->latency.nbounds, 3);
    CHECK_EQ_INT(fabric_latency_quantile(&n->latency, 0.5), 2);
    CHECK_EQ_INT(fabric_latency_quantile(&n->latency, 1.0), UINT64_MAX);
    CHECK_EQ_INT(s->totals.nodes_up, 1);
    CHECK_EQ_INT(s->totals.gaps, 2);
    CHECK_EQ_INT(s->totals.heartbeats, 1);

    fabric_table_t *t = fabric_table_new(s, FABRIC_VIEW_NODES);
    CHECK(t && fabric_table_nrows(t) == 1);
    CHECK_STR(fabric_table_cell(t, 0, (size_t)t_col(t, "ROLE")), "svc");
    CHECK_STR(fabric_table_cell(t, 0, (size_t)t_col(t, "HOST:PID")), "box:4242");
    CHECK_STR(fabric_table_cell(t, 0, (size_t)t_col(t, "STATE")), "up");
    CHECK_STR(fabric_table_cell(t, 0, (size_t)t_col(t, "OUT/S")), "-");
    CHECK_STR(fabric_table_cell(t, 0, (size_t)t_col(t, "INST")), "7");
    fabric_table_destroy(&t);
    fabric_table_destroy(&t);
    fabric_snapshot_destroy(&s);
    fabric_snapshot_destroy(&s);
    fabric_model_destroy(&m);
    fabric_model_destroy(&m);
    CHECK(m == NULL);
}

TEST_CASE("rates come from counter deltas over the sender's own uptime", rates)
{
    fabric_model_t *m = fabric_model_new();
    t_hb_t h = {.inst = 1, .name = "p", .uptime_ms = 1000, .published = 100, .received = 10,
                .ntopics = 1, .topics = {{"a.b", 100, 1000, 10, 50}}};
    CHECK_EQ_INT(t_feed(m, &h, T0), 0);
    /* Two seconds of the sender's time, received only 1.2 s later (jitter). */
    h.uptime_ms = 3000;
    h.published = 500;
    h.received = 30;
    h.topics[0] = (t_topic_t){"a.b", 500, 5000, 30, 150};
    CHECK_EQ_INT(t_feed(m, &h, T0 + 1200), 0);
    fabric_snapshot_t *s = fabric_model_snapshot(m, T0 + 1300);
    const fabric_node_t *n = fabric_snapshot_node(s, 1);
    CHECK(n && n->has_rates);
    CHECK(t_near(n->out_eps, 200.0));
    CHECK(t_near(n->in_eps, 10.0));
    CHECK(n->ntopics == 1 && n->topics[0].has_rates);
    CHECK(t_near(n->topics[0].pub_eps, 200.0));
    CHECK(t_near(n->topics[0].pub_bps, 2000.0));
    CHECK(t_near(n->topics[0].recv_bps, 50.0));
    CHECK(t_near(s->totals.out_eps, 200.0));
    fabric_snapshot_destroy(&s);

    /* The same heartbeat again (same uptime) changes nothing. */
    CHECK_EQ_INT(t_feed(m, &h, T0 + 1250), 0);
    s = fabric_model_snapshot(m, T0 + 1300);
    n = fabric_snapshot_node(s, 1);
    CHECK(n && n->has_rates && t_near(n->out_eps, 200.0));
    fabric_snapshot_destroy(&s);

    /* Counters going backwards (a restart under the same id) gives no rate, not a huge one. */
    h.uptime_ms = 500;
    h.published = 5;
    CHECK_EQ_INT(t_feed(m, &h, T0 + 2000), 0);
    s = fabric_model_snapshot(m, T0 + 2000);
    n = fabric_snapshot_node(s, 1);
    CHECK(n && !n->has_rates);
    fabric_snapshot_destroy(&s);
    fabric_model_destroy(&m);
}

TEST_CASE("a node is down after 3 of its heartbeat intervals and forgotten after 60 s", liveness)
{
    fabric_model_t *m = fabric_model_new();
    t_hb_t fast = {.inst = 1, .name = "fast", .hb_ms = 100, .uptime_ms = 1};
    t_hb_t slow = {.inst = 2, .name = "slow", .hb_ms = 1000, .uptime_ms = 1};
    CHECK_EQ_INT(t_feed(m, &fast, T0), 0);
    CHECK_EQ_INT(t_feed(m, &slow, T0), 0);
    fabric_snapshot_t *s = fabric_model_snapshot(m, T0 + 300);
    CHECK(fabric_snapshot_node(s, 1)->up && fabric_snapshot_node(s, 2)->up);
    fabric_snapshot_destroy(&s);
    s = fabric_model_snapshot(m, T0 + 301);
    CHECK(!fabric_snapshot_node(s, 1)->up && fabric_snapshot_node(s, 2)->up);
    CHECK_EQ_INT(s->totals.nodes_up, 1);
    CHECK_EQ_INT(s->totals.nodes_down, 1);
    fabric_snapshot_destroy(&s);
    s = fabric_model_snapshot(m, T0 + 3001);
    CHECK(!fabric_snapshot_node(s, 2)->up);
    fabric_snapshot_destroy(&s);
    /* A heartbeat brings it back. */
    slow.uptime_ms = 4000;
    CHECK_EQ_INT(t_feed(m, &slow, T0 + 4000), 0);
    s = fabric_model_snapshot(m, T0 + 4000);
    CHECK(fabric_snapshot_node(s, 2)->up);
    fabric_snapshot_destroy(&s);
    /* Forgetting: at 60 s of silence still known, then gone, also without a snapshot. */
    s = fabric_model_snapshot(m, T0 + 60000);
    CHECK(s->nnodes == 2);
    fabric_snapshot_destroy(&s);
    fabric_model_tick(m, T0 + 60001);
    CHECK_EQ_INT(fabric_model_size(m), 1);
    t_hb_t other = {.inst = 3, .name = "other"};
    CHECK_EQ_INT(t_feed(m, &other, T0 + 64001), 0);
    CHECK_EQ_INT(fabric_model_size(m), 1);
    fabric_model_destroy(&m);
}

TEST_CASE("topics add up across nodes: publishers, subscribers, rates and totals", topics)
{
    fabric_model_t *m = fabric_model_new();
    t_hb_t p1 = {.inst = 1, .name = "p1", .uptime_ms = 1000, .ntopics = 1,
                 .topics = {{"task.created", 100, 1000, 0, 0}}};
    t_hb_t p2 = {.inst = 2, .name = "p2", .uptime_ms = 1000, .ntopics = 2,
                 .topics = {{"task.created", 50, 500, 0, 0}, {"user.deleted", 10, 10, 0, 0}}};
    t_hb_t sub = {.inst = 3, .name = "sub", .uptime_ms = 1000, .ntopics = 2,
                  .topics = {{"task.created", 0, 0, 150, 1500}, {"user.deleted", 0, 0, 10, 10}}};
    CHECK_EQ_INT(t_feed(m, &p1, T0), 0);
    CHECK_EQ_INT(t_feed(m, &p2, T0), 0);
    CHECK_EQ_INT(t_feed(m, &sub, T0), 0);
    p1.uptime_ms = p2.uptime_ms = sub.uptime_ms = 2000;
    p1.topics[0].pub_events = 300, p1.topics[0].pub_bytes = 3000;
    p2.topics[0].pub_events = 100, p2.topics[0].pub_bytes = 1000;
    sub.topics[0].recv_events = 400, sub.topics[0].recv_bytes = 4000;
    CHECK_EQ_INT(t_feed(m, &p1, T0 + 1000), 0);
    CHECK_EQ_INT(t_feed(m, &p2, T0 + 1000), 0);
    CHECK_EQ_INT(t_feed(m, &sub, T0 + 1000), 0);
    fabric_snapshot_t *s = fabric_model_snapshot(m, T0 + 1100);
    CHECK(s->ntopics == 2);
    const fabric_topic_t *t = &s->topics[0];
    CHECK_STR(t->topic, "task.created");
    CHECK_EQ_INT(t->publishers, 2);
    CHECK_EQ_INT(t->subscribers, 1);
    CHECK(t_near(t->out_eps, 250.0));
    CHECK(t_near(t->out_bps, 2500.0));
    CHECK(t_near(t->in_eps, 250.0));
    CHECK_EQ_INT(t->pub_events, 400);
    CHECK_EQ_INT(t->recv_events, 400);
    CHECK_STR(s->topics[1].topic, "user.deleted");
    CHECK_EQ_INT(s->topics[1].publishers, 1);
    CHECK(t_near(s->topics[1].out_eps, 0.0));
    fabric_snapshot_destroy(&s);
    /* Once p1 is down its rate no longer counts, nor does it as a publisher. */
    p2.uptime_ms = sub.uptime_ms = 3000;
    CHECK_EQ_INT(t_feed(m, &p2, T0 + 3500), 0);
    CHECK_EQ_INT(t_feed(m, &sub, T0 + 3500), 0);
    s = fabric_model_snapshot(m, T0 + 4100);
    CHECK_EQ_INT(s->topics[0].publishers, 1);
    CHECK_EQ_INT(s->topics[0].pub_events, 400);
    CHECK(t_near(s->topics[0].out_eps, 0.0));
    fabric_snapshot_destroy(&s);
    fabric_model_destroy(&m);
}

TEST_CASE("lag pairs match a subscriber's sources to the publishers' own heartbeats", lag)
{
    fabric_model_t *m = fabric_model_new();
    int64_t now = T0 + 10000;
    t_hb_t pub = {.inst = 10, .name = "pub", .seq = 100, .published = 100};
    t_hb_t pub2 = {.inst = 11, .name = "pub2", .seq = 5, .published = 5};
    t_hb_t sub = {.inst = 20, .name = "sub", .nsources = 3,
                  .sources = {{"pub", 10, 90, (now - 2000) * 1000000, 3},
                              {"pub2", 11, 5, (now - 9000) * 1000000, 0},
                              {"gone", 99, 7, (now - 1000) * 1000000, 0}}};
    CHECK_EQ_INT(t_feed(m, &pub, now), 0);
    CHECK_EQ_INT(t_feed(m, &pub2, now), 0);
    CHECK_EQ_INT(t_feed(m, &sub, now), 0);
    fabric_snapshot_t *s = fabric_model_snapshot(m, now);
    CHECK(s->nlags == 3);
    /* sorted by subscriber then source: gone, pub, pub2 */
    CHECK_STR(s->lags[0].source, "gone");
    CHECK(!s->lags[0].pub_known);
    CHECK_EQ_INT(s->lags[0].seq_lag, 0);
    CHECK_STR(s->lags[1].source, "pub");
    CHECK(s->lags[1].pub_known);
    CHECK_EQ_INT(s->lags[1].pub_seq, 100);
    CHECK_EQ_INT(s->lags[1].seq_lag, 10);
    CHECK_EQ_INT(s->lags[1].time_lag_ms, 2000);
    CHECK_EQ_INT(s->lags[1].gaps, 3);
    CHECK_STR(s->lags[2].source, "pub2");
    CHECK_EQ_INT(s->lags[2].seq_lag, 0);
    CHECK_EQ_INT(s->lags[2].time_lag_ms, 0); /* caught up: no time lag however old */
    fabric_table_t *t = fabric_table_new(s, FABRIC_VIEW_LAG);
    CHECK(t && fabric_table_nrows(t) == 3);
    CHECK_STR(fabric_table_cell(t, 0, (size_t)t_col(t, "SEQ_LAG")), "-");
    CHECK_STR(fabric_table_cell(t, 1, (size_t)t_col(t, "SEQ_LAG")), "10");
    CHECK_STR(fabric_table_cell(t, 1, (size_t)t_col(t, "TIME_LAG")), "2.000s");
    fabric_table_destroy(&t);
    fabric_snapshot_destroy(&s);
    fabric_model_destroy(&m);
}

TEST_CASE("archiver and DLQ sections show what they carry and '-' for the rest", sections)
{
    fabric_model_t *m = fabric_model_new();
    t_hb_t arch = {.inst = 1, .name = "archiver", .role = "archiver", .section_key = "archive",
                   .section_json = "{\"last_offset\": 12345, \"bytes_on_disk\": 2097152,"
                                   " \"retention\": {\"max_age_ms\": 86400000}, \"shards\": 2}"};
    t_hb_t bare = {.inst = 2, .name = "archiver2", .role = "archiver"};
    t_hb_t dlq = {.inst = 3, .name = "dlq", .role = "dlq", .section_key = "dlq",
                  .section_json = "{\"pending\": 4, \"parked\": 1,"
                                  " \"by_subscriber\": {\"billing\": 3, \"mail\": 2},"
                                  " \"top_codes\": [[\"db.timeout\", 4], [\"bad\", 1]],"
                                  " \"oldest_age_ms\": 65000}"};
    /* the layout the DLQ node sends: breakdowns of {pending, parked} */
    t_hb_t dlq2 = {.inst = 4, .name = "dlq2", .role = "dlq", .section_key = "dlq",
                   .section_json = "{\"pending\": 2, \"retrying\": 0, \"parked\": 1,"
                                   " \"by_subscriber\": {\"mail\": {\"pending\": 2, \"parked\": 1}},"
                                   " \"by_topic\": {}, \"top_codes\": [], \"oldest_pending_age_ms\": 1500}"};
    CHECK_EQ_INT(t_feed(m, &arch, T0), 0);
    CHECK_EQ_INT(t_feed(m, &bare, T0), 0);
    CHECK_EQ_INT(t_feed(m, &dlq, T0), 0);
    CHECK_EQ_INT(t_feed(m, &dlq2, T0), 0);
    fabric_snapshot_t *s = fabric_model_snapshot(m, T0);
    CHECK(fabric_snapshot_node(s, 1)->archive);
    CHECK(!fabric_snapshot_node(s, 2)->archive);
    CHECK(fabric_snapshot_node(s, 3)->dlq);

    fabric_table_t *t = fabric_table_new(s, FABRIC_VIEW_ARCHIVER);
    CHECK(t && fabric_table_nrows(t) == 2);
    long r = t_row(t, 0, "archiver");
    CHECK(r >= 0);
    CHECK_STR(fabric_table_cell(t, (size_t)r, (size_t)t_col(t, "LAST_OFFSET")), "12345");
    CHECK_STR(fabric_table_cell(t, (size_t)r, (size_t)t_col(t, "ON_DISK")), "2.0M");
    CHECK_STR(fabric_table_cell(t, (size_t)r, (size_t)t_col(t, "EVENTS/S")), "-");
    CHECK_STR(fabric_table_cell(t, (size_t)r, (size_t)t_col(t, "RETENTION")),
              "max_age_ms=86400000");
    CHECK_STR(fabric_table_cell(t, (size_t)r, (size_t)t_col(t, "OTHER")), "shards=2");
    r = t_row(t, 0, "archiver2");
    CHECK(r >= 0);
    CHECK_STR(fabric_table_cell(t, (size_t)r, (size_t)t_col(t, "LAST_OFFSET")), "-");
    fabric_table_destroy(&t);

    t = fabric_table_new(s, FABRIC_VIEW_DLQ);
    CHECK(t && fabric_table_nrows(t) == 2);
    CHECK_STR(fabric_table_cell(t, 0, 0), "dlq");
    CHECK_STR(fabric_table_cell(t, 1, (size_t)t_col(t, "BY_SUBSCRIBER")),
              "mail={pending=2,parked=1}");
    CHECK_STR(fabric_table_cell(t, 1, (size_t)t_col(t, "OLDEST")), "1.5s");
    CHECK_STR(fabric_table_cell(t, 1, (size_t)t_col(t, "OTHER")), "retrying=0");
    CHECK_STR(fabric_table_cell(t, 1, (size_t)t_col(t, "BY_TOPIC")), "-"); /* empty map */
    CHECK_STR(fabric_table_cell(t, 1, (size_t)t_col(t, "TOP_CODES")), "-");
    CHECK_STR(fabric_table_cell(t, 0, (size_t)t_col(t, "PENDING")), "4");
    CHECK_STR(fabric_table_cell(t, 0, (size_t)t_col(t, "BY_SUBSCRIBER")), "billing=3 mail=2");
    CHECK_STR(fabric_table_cell(t, 0, (size_t)t_col(t, "TOP_CODES")), "db.timeout:4,bad:1");
    CHECK_STR(fabric_table_cell(t, 0, (size_t)t_col(t, "OLDEST")), "1m05s");
    CHECK_STR(fabric_table_cell(t, 0, (size_t)t_col(t, "BY_TOPIC")), "-");
    fabric_table_destroy(&t);

    json_t *j = fabric_snapshot_json(s);
    CHECK(j);
    CHECK_EQ_INT(json_array_size(json_object_get(j, "archivers")), 2);
    CHECK_EQ_INT(json_array_size(json_object_get(j, "dlqs")), 2);
    json_t *d = json_object_get(json_array_get(json_object_get(j, "dlqs"), 0), "dlq");
    CHECK_EQ_INT(json_integer_value(json_object_get(d, "pending")), 4);
    json_decref(j);
    fabric_snapshot_destroy(&s);
    fabric_model_destroy(&m);
}

TEST_CASE("malformed heartbeats are rejected and counted, never fatal", malformed)
{
    fabric_model_t *m = fabric_model_new();
    static const uint8_t huge_array[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t huge_map[] = {0xdf, 0xff, 0xff, 0xff, 0xff, 0xa1, 'a'};
    static const uint8_t huge_str[] = {0x81, 0xa4, 'i', 'n', 's', 't', 0xdb, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t no_inst[] = {0x81, 0xa4, 'n', 'a', 'm', 'e', 0xa1, 'x'};
    static const uint8_t inst_str[] = {0x81, 0xa4, 'i', 'n', 's', 't', 0xa1, '1'};
    static const uint8_t inst_neg[] = {0x81, 0xa4, 'i', 'n', 's', 't', 0xff};
    static const uint8_t not_map[] = {0x92, 0x01, 0x02};
    static const uint8_t trailing[] = {0x81, 0xa4, 'i', 'n', 's', 't', 0x01, 0xc0};
    static const uint8_t truncated[] = {0x82, 0xa4, 'i', 'n', 's', 't', 0x01};
    static const uint8_t reserved[] = {0xc1};
    uint8_t deep[64];
    for (size_t i = 0; i < sizeof(deep) - 1; i++)
        deep[i] = 0x91; /* [[[[...]]]] */
    deep[sizeof(deep) - 1] = 0xc0;
    static const struct {
        const uint8_t *p;
        size_t n;
    } bad[] = {
        {huge_array, sizeof(huge_array)}, {huge_map, sizeof(huge_map)},
        {huge_str, sizeof(huge_str)},     {no_inst, sizeof(no_inst)},
        {inst_str, sizeof(inst_str)},     {inst_neg, sizeof(inst_neg)},
        {not_map, sizeof(not_map)},       {trailing, sizeof(trailing)},
        {truncated, sizeof(truncated)},   {reserved, sizeof(reserved)},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK_EQ_INT(fabric_model_feed(m, bad[i].p, bad[i].n, 0, T0), WEFT_EMALFORMED);
    CHECK_EQ_INT(fabric_model_feed(m, deep, sizeof(deep), 0, T0), WEFT_EMALFORMED);
    CHECK_EQ_INT(fabric_model_feed(m, NULL, 0, 0, T0), WEFT_EMALFORMED);
    CHECK_EQ_INT(fabric_model_feed(m, "", 0, 0, T0), WEFT_EMALFORMED);
    size_t nbad = sizeof(bad) / sizeof(bad[0]) + 3;

    /* A good heartbeat whose inst differs from the envelope's. */
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    t_hb_t h = {.inst = 5, .name = "ok"};
    t_pack(&h, &sb);
    CHECK_EQ_INT(fabric_model_feed(m, sb.data, sb.size, 6, T0), WEFT_EMALFORMED);
    nbad++;
    uint64_t accepted, rejected;
    fabric_model_counts(m, &accepted, &rejected);
    CHECK_EQ_INT(accepted, 0);
    CHECK_EQ_INT(rejected, nbad);
    CHECK_EQ_INT(fabric_model_size(m), 0);

    /* Only inst: accepted, with defaults for the rest. */
    static const uint8_t only_inst[] = {0x81, 0xa4, 'i', 'n', 's', 't', 0x09};
    CHECK_EQ_INT(fabric_model_feed(m, only_inst, sizeof(only_inst), 9, T0), 0);

    /* Wrong types and bad rows inside a good map are ignored, not fatal; hostile text is
       made printable. */
    msgpack_sbuffer_clear(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    t_must(msgpack_pack_map(&pk, 7));
    t_kv_u64(&pk, "inst", 8);
    t_str(&pk, "name");
    t_str(&pk, "evil\x1b[2J\ttab");
    t_str(&pk, "counters");
    t_str(&pk, "not a map");
    t_str(&pk, "topics");
    t_must(msgpack_pack_array(&pk, 3));
    t_must(msgpack_pack_nil(&pk));                 /* not a row */
    t_must(msgpack_pack_array(&pk, 2));            /* too short */
    t_str(&pk, "x");
    t_must(msgpack_pack_uint64(&pk, 1));
    t_must(msgpack_pack_array(&pk, 5));            /* good */
    t_str(&pk, "t.ok");
    for (int i = 0; i < 4; i++)
        t_must(msgpack_pack_uint64(&pk, 1));
    t_str(&pk, "latency");                         /* counts not one longer than le */
    t_must(msgpack_pack_map(&pk, 4));
    t_str(&pk, "le");
    t_must(msgpack_pack_array(&pk, 1));
    t_must(msgpack_pack_uint64(&pk, 1));
    t_str(&pk, "counts");
    t_must(msgpack_pack_array(&pk, 1));
    t_must(msgpack_pack_uint64(&pk, 1));
    t_kv_u64(&pk, "count", 1);
    t_kv_u64(&pk, "sum", 1);
    t_str(&pk, "hb_ms");
    t_must(msgpack_pack_int64(&pk, -5));
    t_str(&pk, "archive");
    t_must(msgpack_pack_bin(&pk, 3));
    t_must(msgpack_pack_bin_body(&pk, "abc", 3));
    CHECK_EQ_INT(fabric_model_feed(m, sb.data, sb.size, 8, T0), 0);
    fabric_snapshot_t *s = fabric_model_snapshot(m, T0);
    const fabric_node_t *n = fabric_snapshot_node(s, 8);
    CHECK(n);
    CHECK_STR(n->name, "evil?[2J?tab");
    CHECK_EQ_INT(n->ntopics, 1);
    CHECK_STR(n->topics[0].topic, "t.ok");
    CHECK(!n->latency.present);
    CHECK_EQ_INT(n->hb_ms, 1000);
    CHECK(!n->archive);
    CHECK_STR(fabric_snapshot_node(s, 9)->name, "?");
    fabric_snapshot_destroy(&s);

    /* Random corruption of a full heartbeat: whatever the model says, it must not crash, and
       the count of accepted plus rejected must match. */
    t_hb_t full = {.inst = 77, .name = "full", .uptime_ms = 1, .ntopics = 2,
                   .topics = {{"a", 1, 2, 3, 4}, {"b", 5, 6, 7, 8}}, .nsources = 1,
                   .sources = {{"a", 1, 2, 3, 4}}, .latency = true, .section_key = "dlq",
                   .section_json = "{\"pending\": 1, \"by_topic\": {\"a\": [1, 2, {\"x\": 3}]}}"};
    t_pack(&full, &sb);
    uint8_t *copy = malloc(sb.size);
    CHECK(copy);
    uint64_t before_a, before_r;
    fabric_model_counts(m, &before_a, &before_r);
    srand(12345);
    const int rounds = 20000;
    for (int i = 0; i < rounds; i++) {
        memcpy(copy, sb.data, sb.size);
        int flips = 1 + rand() % 4;
        for (int f = 0; f < flips; f++)
            copy[rand() % sb.size] = (uint8_t)rand();
        size_t len = rand() % 8 == 0 ? (size_t)rand() % sb.size : sb.size;
        fabric_model_feed(m, copy, len, 0, T0 + i);
    }
    free(copy);
    msgpack_sbuffer_destroy(&sb);
    fabric_model_counts(m, &accepted, &rejected);
    CHECK_EQ_INT((accepted - before_a) + (rejected - before_r), rounds);
    s = fabric_model_snapshot(m, T0 + rounds);
    CHECK(s);
    for (int v = 0; v < FABRIC_VIEW_COUNT; v++) {
        fabric_table_t *t = fabric_table_new(s, (fabric_view_t)v);
        CHECK(t);
        fabric_table_destroy(&t);
    }
    json_t *j = fabric_snapshot_json(s);
    CHECK(j);
    json_decref(j);
    fabric_snapshot_destroy(&s);
    fabric_model_destroy(&m);
}

TEST_CASE("memory is bounded: at most FABRIC_NODES_MAX instances are tracked", bounded)
{
    fabric_model_t *m = fabric_model_new();
    t_hb_t h = {.name = "many"};
    for (uint64_t i = 1; i <= FABRIC_NODES_MAX; i++) {
        h.inst = i;
        CHECK_EQ_INT(t_feed(m, &h, T0), 0);
    }
    h.inst = FABRIC_NODES_MAX + 1;
    CHECK_EQ_INT(t_feed(m, &h, T0), WEFT_ENOMEM);
    h.inst = 1; /* a known one still updates */
    CHECK_EQ_INT(t_feed(m, &h, T0 + 1), 0);
    CHECK_EQ_INT(fabric_model_size(m), FABRIC_NODES_MAX);
    /* Once silent ones are forgotten there is room again. */
    h.inst = FABRIC_NODES_MAX + 1;
    CHECK_EQ_INT(t_feed(m, &h, T0 + FABRIC_FORGET_MS + 1), 0);
    CHECK_EQ_INT(fabric_model_size(m), 2);
    fabric_model_destroy(&m);
}

TEST_CASE("the rate history keeps the last 60 samples, oldest first", history)
{
    fabric_model_t *m = fabric_model_new();
    t_hb_t h = {.inst = 1, .name = "p"};
    int64_t now = T0;
    for (int i = 0; i <= 70; i++) {
        h.uptime_ms = (uint64_t)i * 1000 + 1;
        h.published = (uint64_t)i * (uint64_t)i; /* rate grows: 2i - 1 per second */
        CHECK_EQ_INT(t_feed(m, &h, now), 0);
        fabric_model_tick(m, now);
        now += 1000;
    }
    fabric_snapshot_t *s = fabric_model_snapshot(m, now);
    CHECK_EQ_INT(s->nhistory, FABRIC_HISTORY);
    CHECK(t_near(s->history_out[FABRIC_HISTORY - 1], 2 * 70 - 1));
    CHECK(t_near(s->history_out[0], 2 * 11 - 1));
    char spark[FABRIC_HISTORY * 3 + 1];
    fabric_sparkline(s->history_out, s->nhistory, 10, false, spark, sizeof(spark));
    CHECK_EQ_INT(strlen(spark), 10);
    CHECK(spark[9] == '#');
    fabric_sparkline(s->history_out, s->nhistory, 4, true, spark, sizeof(spark));
    CHECK_EQ_INT(strlen(spark), 12);
    CHECK_STR(spark + 9, "\u2588");
    fabric_snapshot_destroy(&s);
    fabric_model_destroy(&m);
}

TEST_CASE("views sort by any column either way and filter by substring", sort_filter)
{
    fabric_model_t *m = fabric_model_new();
    static const char *names[] = {"alpha", "bravo", "charlie", "delta"};
    static const uint64_t rates[] = {30, 10, 40, 20};
    for (int i = 0; i < 4; i++) {
        t_hb_t h = {.inst = (uint64_t)i + 1, .name = names[i], .role = i == 3 ? "monitor" : "svc",
                    .uptime_ms = 1000};
        CHECK_EQ_INT(t_feed(m, &h, T0), 0);
        h.uptime_ms = 2000;
        h.published = rates[i];
        CHECK_EQ_INT(t_feed(m, &h, T0 + 1000), 0);
    }
    /* one node heard once: no rate, sorted last either way */
    t_hb_t fresh = {.inst = 9, .name = "echo", .uptime_ms = 1};
    CHECK_EQ_INT(t_feed(m, &fresh, T0 + 1000), 0);
    fabric_snapshot_t *s = fabric_model_snapshot(m, T0 + 1000);
    fabric_table_t *t = fabric_table_new(s, FABRIC_VIEW_NODES);
    fabric_snapshot_destroy(&s); /* the table stands alone */
    CHECK(t && fabric_table_nrows(t) == 5);
    CHECK_STR(fabric_table_cell(t, 0, 0), "alpha");
    size_t out = (size_t)t_col(t, "OUT/S");
    fabric_table_sort(t, out, true);
    CHECK_STR(fabric_table_cell(t, 0, 0), "charlie");
    CHECK_STR(fabric_table_cell(t, 3, 0), "bravo");
    CHECK_STR(fabric_table_cell(t, 4, 0), "echo");
    fabric_table_sort(t, out, false);
    CHECK_STR(fabric_table_cell(t, 0, 0), "bravo");
    CHECK_STR(fabric_table_cell(t, 4, 0), "echo");
    fabric_table_sort(t, 0, true);
    CHECK_STR(fabric_table_cell(t, 0, 0), "echo");
    CHECK_EQ_INT(fabric_table_sort_col(t), 0);
    CHECK(fabric_table_sort_desc(t));
    CHECK_EQ_INT(fabric_table_filter(t, "MONITOR"), 1);
    CHECK_STR(fabric_table_cell(t, 0, 0), "delta");
    CHECK(fabric_table_cell(t, 1, 0) == NULL);
    CHECK_EQ_INT(fabric_table_filter(t, "a"), 4); /* alpha bravo charlie delta */
    CHECK_EQ_INT(fabric_table_filter(t, "nothing matches"), 0);
    CHECK_EQ_INT(fabric_table_filter(t, ""), 5);
    CHECK_EQ_INT(fabric_table_total_rows(t), 5);

    char line[512];
    size_t n = fabric_table_line(t, -1, line, sizeof(line));
    CHECK(n == fabric_table_line_width(t));
    CHECK(strncmp(line, "NAME", 4) == 0);
    size_t start, width;
    CHECK(fabric_table_col_span(t, out, &start, &width));
    CHECK(strncmp(line + start + width - 5, "OUT/S", 5) == 0); /* numbers right-aligned */
    n = fabric_table_line(t, 0, line, 8);
    CHECK_EQ_INT(n, 7); /* cut to the buffer */
    fabric_table_destroy(&t);
    fabric_model_destroy(&m);
}

TEST_CASE("the snapshot as JSON has every section, instance ids as strings", json)
{
    fabric_model_t *m = fabric_model_new();
    t_hb_t h = {.inst = UINT64_MAX, .name = "big", .uptime_ms = 1, .published = 1, .ntopics = 1,
                .topics = {{"t", 1, 1, 0, 0}}, .nsources = 1,
                .sources = {{"big", UINT64_MAX, 1, T0 * 1000000, 0}}, .latency = true};
    CHECK_EQ_INT(t_feed(m, &h, T0), 0);
    fabric_snapshot_t *s = fabric_model_snapshot(m, T0);
    json_t *j = fabric_snapshot_json(s);
    CHECK(j);
    static const char *keys[] = {"time_ms", "totals", "nodes", "topics", "lag", "archivers", "dlqs"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        CHECK(json_object_get(j, keys[i]));
    json_t *node = json_array_get(json_object_get(j, "nodes"), 0);
    CHECK_STR(json_string_value(json_object_get(node, "inst")), "18446744073709551615");
    CHECK(json_is_null(json_object_get(node, "out_per_s")));
    CHECK_EQ_INT(json_integer_value(json_object_get(json_object_get(node, "counters"), "published")),
                 1);
    CHECK(json_object_get(node, "latency"));
    CHECK_EQ_INT(json_array_size(json_object_get(j, "topics")), 1);
    CHECK_EQ_INT(json_array_size(json_object_get(j, "lag")), 1);
    CHECK_EQ_INT(json_integer_value(json_object_get(json_object_get(j, "totals"), "nodes_up")), 1);
    char *text = json_dumps(j, JSON_COMPACT);
    CHECK(text);
    json_error_t je;
    json_t *back = json_loads(text, 0, &je);
    free(text);
    CHECK(back);
    json_decref(back);
    json_decref(j);
    fabric_snapshot_destroy(&s);
    fabric_model_destroy(&m);
}

int main(void)
{
    RUN_CASE("a heartbeat makes a node row with its fields", node_row);
    RUN_CASE("rates come from counter deltas over the sender's own uptime", rates);
    RUN_CASE("a node is down after 3 of its heartbeat intervals and forgotten after 60 s",
             liveness);
    RUN_CASE("topics add up across nodes: publishers, subscribers, rates and totals", topics);
    RUN_CASE("lag pairs match a subscriber's sources to the publishers' own heartbeats", lag);
    RUN_CASE("archiver and DLQ sections show what they carry and '-' for the rest", sections);
    RUN_CASE("malformed heartbeats are rejected and counted, never fatal", malformed);
    RUN_CASE("memory is bounded: at most FABRIC_NODES_MAX instances are tracked", bounded);
    RUN_CASE("the rate history keeps the last 60 samples, oldest first", history);
    RUN_CASE("views sort by any column either way and filter by substring", sort_filter);
    RUN_CASE("the snapshot as JSON has every section, instance ids as strings", json);
    return TEST_EXIT();
}

/*  test_node_dlq.c - what a node does with failing handlers: local retries with backoff (the
    attempt shows in the envelope's retry), dead letters PUT to a DLQ and resent until
    acknowledged, waiting (bounded) while no DLQ is reachable, the circuit breaker, and
    REDELIVER answered with the handler's result. The DLQ here is a raw ROUTER announced by a
    node whose role is "dlq", so the test sees and controls every PUT and acknowledgement. */
#include <czmq.h>
#include <msgpack.h>
#include <stdatomic.h>

#include "testing.h"
#include "weft.h"

typedef struct {
    atomic_int calls;
    atomic_int fail_first;     /* fail this many calls, then succeed; -1: always fail */
    atomic_int last_retry;
} flaky_t;

static int s_flaky(weft_event_t *ev, void *arg)
{
    flaky_t *f = arg;
    int n = atomic_fetch_add(&f->calls, 1);
    atomic_store(&f->last_retry, (int)ev->env->retry);
    int ff = atomic_load(&f->fail_first);
    if (ff < 0 || n < ff)
        return weft_event_fail(ev, "demo.fail", "call %d failed on purpose", n + 1);
    return 0;
}

static weft_config_t *s_cfg(const char *seed, bool bind)
{
    weft_config_t *cfg = weft_config_new();
    weft_config_set(cfg, "gossip/seeds", seed ? seed : "none");
    weft_config_set(cfg, "gossip/bind", bind ? "tcp://127.0.0.1:*" : "none");
    weft_config_set(cfg, "heartbeat/interval", "100");
    return cfg;
}

/*  A fake DLQ: a node with role dlq announcing a raw ROUTER as its service. */
typedef struct {
    weft_node_t *node;
    zsock_t *router;
} fake_dlq_t;

static int s_fake_dlq_start(fake_dlq_t *d, const char *seed)
{
    d->router = zsock_new(ZMQ_ROUTER);
    if (zsock_bind(d->router, "tcp://127.0.0.1:*") < 0)
        return -1;
    weft_config_t *cfg = s_cfg(seed, false);
    weft_config_set(cfg, "node/role", "dlq");
    weft_config_set(cfg, "node/service", zsock_endpoint(d->router));
    d->node = weft_node_new("fake-dlq", cfg, NULL);
    weft_config_destroy(&cfg);
    return d->node ? 0 : -1;
}

static void s_fake_dlq_stop(fake_dlq_t *d)
{
    weft_node_destroy(&d->node);
    zsock_destroy(&d->router);
}

typedef struct {
    char subscriber[256];
    char code[64];
    char topic[64];
    uint64_t attempts;
    uint8_t event_id[WEFT_ID_SIZE];
} put_t;

/*  Waits for one PUT; fills p; acknowledges it when ack. Returns 0, or -1 on timeout. */
static int s_fake_dlq_put(fake_dlq_t *d, int timeout_ms, bool ack, put_t *p)
{
    zpoller_t *poller = zpoller_new(d->router, NULL);
    void *which = zpoller_wait(poller, timeout_ms);
    zpoller_destroy(&poller);
    if (!which)
        return -1;
    zmsg_t *msg = zmsg_recv(d->router);
    zframe_t *id = zmsg_pop(msg);
    char *proto = zmsg_popstr(msg), *cmd = zmsg_popstr(msg);
    zframe_t *rid = zmsg_pop(msg), *args = zmsg_pop(msg);
    memset(p, 0, sizeof(*p));
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    int rc = -1;
    if (proto && cmd && streq(proto, "weft/1") && streq(cmd, "PUT") &&
        msgpack_unpack_next(&u, (const char *)zframe_data(args), zframe_size(args), &off) > 0) {
        msgpack_object_map *m = &u.data.via.map;
        for (uint32_t i = 0; i < m->size; i++) {
            msgpack_object *k = &m->ptr[i].key, *v = &m->ptr[i].val;
            if (k->via.str.size == 10 && !memcmp(k->via.str.ptr, "subscriber", 10))
                snprintf(p->subscriber, sizeof(p->subscriber), "%.*s", (int)v->via.str.size,
                         v->via.str.ptr);
            if (k->via.str.size == 8 && !memcmp(k->via.str.ptr, "attempts", 8))
                p->attempts = v->via.u64;
            if (k->via.str.size == 5 && !memcmp(k->via.str.ptr, "error", 5))
                for (uint32_t j = 0; j < v->via.map.size; j++)
                    if (v->via.map.ptr[j].key.via.str.size == 4)
                        snprintf(p->code, sizeof(p->code), "%.*s",
                                 (int)v->via.map.ptr[j].val.via.str.size,
                                 v->via.map.ptr[j].val.via.str.ptr);
            if (k->via.str.size == 5 && !memcmp(k->via.str.ptr, "event", 5)) {
                msgpack_object *e = v->via.array.ptr;
                snprintf(p->topic, sizeof(p->topic), "%.*s", (int)e[0].via.str.size,
                         e[0].via.str.ptr);
                weft_envelope_t env;
                if (weft_envelope_decode(&env, e[1].via.bin.ptr, e[1].via.bin.size) == 0)
                    memcpy(p->event_id, env.id, WEFT_ID_SIZE);
            }
        }
        rc = 0;
    }
    msgpack_unpacked_destroy(&u);
    if (ack && rc == 0) {
        zmsg_t *reply = zmsg_new();
        zmsg_append(reply, &id);
        zmsg_addstr(reply, "weft/1");
        zmsg_addstr(reply, "OK");
        zmsg_append(reply, &rid);
        static const uint8_t empty = 0x80;
        zmsg_addmem(reply, &empty, 1);
        zmsg_send(&reply, d->router);
    }
    zframe_destroy(&id);
    zframe_destroy(&rid);
    zframe_destroy(&args);
    zstr_free(&proto);
    zstr_free(&cmd);
    zmsg_destroy(&msg);
    return rc;
}

static weft_node_t *s_seed_node(const char *name)
{
    weft_config_t *cfg = s_cfg(NULL, true);
    weft_node_t *n = weft_node_new(name, cfg, NULL);
    weft_config_destroy(&cfg);
    return n;
}

static weft_node_t *s_node(const char *name, const char *seed)
{
    weft_config_t *cfg = s_cfg(seed, false);
    weft_node_t *n = weft_node_new(name, cfg, NULL);
    weft_config_destroy(&cfg);
    return n;
}

TEST_CASE("a handler that fails K times then succeeds handles the event once, with retry set",
          t_retry_then_ok)
{
    weft_node_t *node = s_seed_node("retrier");
    CHECK(node);
    flaky_t f = {0, 2, -1};
    weft_sub_options_t o = {.name = "tasks", .retry_attempts = 5, .retry_backoff_ms = 10};
    int err;
    CHECK(weft_subscribe(node, "task.", s_flaky, &f, &o, &err));
    CHECK(weft_node_wait_peers(node, 3000) >= 0);
    CHECK(weft_publish(node, "task.created", "x", 1, NULL, NULL) == 1);
    CHECK(WAIT_UNTIL(atomic_load(&f.calls) == 3, 5000));
    CHECK(!WAIT_UNTIL(atomic_load(&f.calls) > 3, 300)); /* and no more */
    CHECK_EQ_INT(atomic_load(&f.last_retry), 2);
    weft_stats_t st;
    weft_node_stats(node, &st);
    CHECK_EQ_INT(st.retries, 2);
    CHECK_EQ_INT(st.handler_errors, 2);
    CHECK_EQ_INT(st.dead_letter_pending + st.dead_lettered + st.dead_letter_dropped, 0);
    weft_node_destroy(&node);
}

TEST_CASE("spent attempts send a dead letter with its error, resent until acknowledged",
          t_dead_letter)
{
    weft_node_t *seed = s_seed_node("dl-seed");
    CHECK(seed);
    fake_dlq_t d;
    CHECK(s_fake_dlq_start(&d, weft_node_gossip_endpoint(seed)) == 0);
    weft_node_t *node = s_node("dl-node", weft_node_gossip_endpoint(seed));
    CHECK(node);
    flaky_t f = {0, -1, -1};
    weft_sub_options_t o = {.name = "worker", .retry_attempts = 2, .retry_backoff_ms = 10};
    int err;
    CHECK(weft_subscribe(node, "job.", s_flaky, &f, &o, &err));
    CHECK(weft_node_wait_peer_named(node, "fake-dlq", 5000) == WEFT_OK);
    CHECK(weft_node_wait_peers(node, 3000) >= 0);
    CHECK(weft_publish(node, "job.run", "x", 1, NULL, NULL) == 1);
    put_t p1, p2;
    CHECK(s_fake_dlq_put(&d, 5000, false, &p1) == 0); /* not acknowledged: must come again */
    CHECK_STR(p1.subscriber, "dl-node/worker");
    CHECK_STR(p1.code, "demo.fail");
    CHECK_STR(p1.topic, "job.run");
    CHECK_EQ_INT(p1.attempts, 2);
    CHECK_EQ_INT(atomic_load(&f.calls), 2);
    CHECK(s_fake_dlq_put(&d, 8000, true, &p2) == 0);
    CHECK(memcmp(p1.event_id, p2.event_id, WEFT_ID_SIZE) == 0);
    weft_stats_t st;
    CHECK(WAIT_UNTIL((weft_node_stats(node, &st), st.dead_lettered == 1), 3000));
    CHECK_EQ_INT(st.dead_letter_pending, 0);
    weft_node_destroy(&node);
    s_fake_dlq_stop(&d);
    weft_node_destroy(&seed);
}

TEST_CASE("with no DLQ reachable dead letters wait and arrive when one comes", t_no_dlq)
{
    weft_node_t *node = s_seed_node("lonely");
    CHECK(node);
    flaky_t f = {0, -1, -1};
    weft_sub_options_t o = {.name = "w", .retry_attempts = 1};
    int err;
    CHECK(weft_subscribe(node, "a.", s_flaky, &f, &o, &err));
    CHECK(weft_node_wait_peers(node, 3000) >= 0);
    for (int i = 0; i < 3; i++)
        weft_publish(node, "a.b", "x", 1, NULL, NULL);
    weft_stats_t st;
    CHECK(WAIT_UNTIL((weft_node_stats(node, &st), st.dead_letter_pending == 3), 3000));
    fake_dlq_t d;
    CHECK(s_fake_dlq_start(&d, weft_node_gossip_endpoint(node)) == 0);
    put_t p;
    for (int i = 0; i < 3; i++)
        CHECK(s_fake_dlq_put(&d, 8000, true, &p) == 0);
    CHECK(WAIT_UNTIL((weft_node_stats(node, &st), st.dead_lettered == 3), 3000));
    CHECK_EQ_INT(st.dead_letter_pending, 0);
    s_fake_dlq_stop(&d);
    weft_node_destroy(&node);
}

TEST_CASE("the circuit breaker opens after K failures, then half-opens after its cool-down",
          t_breaker)
{
    weft_node_t *node = s_seed_node("breaker");
    CHECK(node);
    flaky_t f = {0, -1, -1};
    weft_sub_options_t o = {.name = "b", .retry_attempts = 1, .breaker_failures = 3,
                            .breaker_window_ms = 5000, .breaker_cooldown_ms = 300,
                            .no_dead_letter = true};
    int err;
    CHECK(weft_subscribe(node, "b.", s_flaky, &f, &o, &err));
    CHECK(weft_node_wait_peers(node, 3000) >= 0);
    for (int i = 0; i < 10; i++)
        weft_publish(node, "b.x", "x", 1, NULL, NULL);
    weft_stats_t st;
    CHECK(WAIT_UNTIL((weft_node_stats(node, &st), st.dead_letter_dropped == 10), 3000));
    CHECK_EQ_INT(atomic_load(&f.calls), 3); /* then the breaker stopped calling */
    /* After the cool-down exactly one event is tried; it succeeds and closes the breaker. */
    atomic_store(&f.fail_first, 0);
    t_nap_ms(350);
    for (int i = 0; i < 5; i++)
        weft_publish(node, "b.x", "x", 1, NULL, NULL);
    CHECK(WAIT_UNTIL(atomic_load(&f.calls) == 8, 3000));
    CHECK_EQ_INT((weft_node_stats(node, &st), st.dead_letter_dropped), 10);
    weft_node_destroy(&node);
}

static int s_redeliver(weft_ctl_t *ctl, const char *subscriber, int attempt, char *code,
                       bool *ok)
{
    uint8_t env[256];
    weft_envelope_t e;
    weft_envelope_init(&e);
    snprintf(e.src, sizeof(e.src), "someone");
    e.inst = 9;
    e.seq = 4;
    weft_id_new(e.id);
    int elen = weft_envelope_encode(&e, env, sizeof(env));
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 3);
    msgpack_pack_str(&pk, 10);
    msgpack_pack_str_body(&pk, "subscriber", 10);
    msgpack_pack_str(&pk, strlen(subscriber));
    msgpack_pack_str_body(&pk, subscriber, strlen(subscriber));
    msgpack_pack_str(&pk, 7);
    msgpack_pack_str_body(&pk, "attempt", 7);
    msgpack_pack_uint32(&pk, (uint32_t)attempt);
    msgpack_pack_str(&pk, 5);
    msgpack_pack_str_body(&pk, "event", 5);
    msgpack_pack_array(&pk, 3);
    msgpack_pack_str(&pk, 5);
    msgpack_pack_str_body(&pk, "r.one", 5);
    msgpack_pack_bin(&pk, (size_t)elen);
    msgpack_pack_bin_body(&pk, env, (size_t)elen);
    msgpack_pack_bin(&pk, 1);
    msgpack_pack_bin_body(&pk, "p", 1);
    weft_reply_t reply;
    int rc = weft_ctl_call(ctl, "REDELIVER", sb.data, sb.size, 3000, &reply);
    msgpack_sbuffer_destroy(&sb);
    code[0] = 0;
    *ok = false;
    if (rc == 0 && strcmp(reply.status, "ERR") == 0)
        snprintf(code, 64, "%s", reply.err_code);
    else if (rc == 0) {
        /* {ok: bool, code?: str}: the bool follows the "ok" key */
        for (size_t i = 0; i + 3 < reply.body_size; i++)
            if (reply.body[i] == 0xa2 && reply.body[i + 1] == 'o' && reply.body[i + 2] == 'k') {
                *ok = reply.body[i + 3] == 0xc3;
                break;
            }
        snprintf(code, 64, "OK");
    }
    weft_reply_clear(&reply);
    return rc;
}

TEST_CASE("REDELIVER calls the handler with the attempt and answers its result", t_redeliver)
{
    weft_node_t *node = s_seed_node("redel");
    CHECK(node);
    flaky_t f = {0, 1, -1};
    weft_sub_options_t o = {.name = "r"};
    int err;
    CHECK(weft_subscribe(node, "r.", s_flaky, &f, &o, &err));
    weft_ctl_t *ctl = weft_ctl_new(weft_node_ctl_endpoint(node), &err);
    char code[64];
    bool ok;
    CHECK(s_redeliver(ctl, "redel/r", 4, code, &ok) == 0);
    CHECK_STR(code, "OK");
    CHECK(!ok); /* first call fails */
    CHECK_EQ_INT(atomic_load(&f.last_retry), 3); /* attempt 4 = 3 before it */
    CHECK(s_redeliver(ctl, "redel/r", 5, code, &ok) == 0);
    CHECK(ok);
    CHECK(s_redeliver(ctl, "redel/nope", 1, code, &ok) == 0);
    CHECK_STR(code, "not_found");
    CHECK(s_redeliver(ctl, "other-node/r", 1, code, &ok) == 0);
    CHECK_STR(code, "not_found");
    weft_reply_t reply;
    CHECK(weft_ctl_call(ctl, "REDELIVER", NULL, 0, 3000, &reply) == 0);
    CHECK_STR(reply.err_code, "bad_request");
    weft_reply_clear(&reply);
    /* No local retry and no dead letter for a redelivery: the DLQ keeps track. */
    weft_stats_t st;
    weft_node_stats(node, &st);
    CHECK_EQ_INT(st.redelivered, 2);
    CHECK_EQ_INT(st.dead_letter_pending, 0);
    weft_ctl_destroy(&ctl);
    weft_node_destroy(&node);
}

int main(void)
{
    zsys_init();
    RUN_CASE("a handler that fails K times then succeeds handles the event once, with retry set",
             t_retry_then_ok);
    RUN_CASE("spent attempts send a dead letter with its error, resent until acknowledged",
             t_dead_letter);
    RUN_CASE("with no DLQ reachable dead letters wait and arrive when one comes", t_no_dlq);
    RUN_CASE("the circuit breaker opens after K failures, then half-opens after its cool-down",
             t_breaker);
    RUN_CASE("REDELIVER calls the handler with the attempt and answers its result", t_redeliver);
    return TEST_EXIT();
}

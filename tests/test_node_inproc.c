/*  test_node_inproc.c - publish and subscribe between nodes inside one process: delivery by
    prefix, envelope fields, loopback, unsubscribe, publish errors, FETCH from the outbox,
    PING/INFO, config layers. Multi-process behaviour is in test_fabric.sh. */
#include <czmq.h>
#include <stdatomic.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "testing.h"
#include "weft.h"

typedef struct {
    atomic_int count;
    uint64_t last_seq;
    int out_of_order;
    char last_topic[256];
    char last_src[256];
    char last_corr[256];
    char last_header[64];
    size_t last_size;
} sink_t;

static int s_sink(weft_event_t *ev, void *arg)
{
    sink_t *s = arg;
    if (ev->env->seq <= s->last_seq)
        s->out_of_order++;
    s->last_seq = ev->env->seq;
    snprintf(s->last_topic, sizeof(s->last_topic), "%s", ev->topic);
    snprintf(s->last_src, sizeof(s->last_src), "%s", ev->env->src);
    snprintf(s->last_corr, sizeof(s->last_corr), "%s", ev->env->corr);
    weft_envelope_header(ev->env, "k", s->last_header, sizeof(s->last_header));
    s->last_size = ev->size;
    atomic_fetch_add(&s->count, 1);
    return 0;
}

/*  A config for a test node: no default seed, no fixed ports. seed may be NULL. */
static weft_config_t *s_config(const char *seed, bool bind_seed)
{
    weft_config_t *cfg = weft_config_new();
    weft_config_set(cfg, "gossip/seeds", seed ? seed : "none");
    weft_config_set(cfg, "gossip/bind", bind_seed ? "tcp://127.0.0.1:*" : "none");
    weft_config_set(cfg, "heartbeat/interval", "100");
    return cfg;
}

TEST_CASE("a node delivers its own events to its own subscriptions", t_loopback)
{
    weft_config_t *cfg = s_config(NULL, false);
    weft_node_t *node = weft_node_new("solo", cfg, NULL);
    weft_config_destroy(&cfg);
    CHECK(node);
    sink_t sink = {0};
    int err;
    weft_sub_t *sub = weft_subscribe(node, "task.", s_sink, &sink, NULL, &err);
    CHECK(sub);
    CHECK(weft_node_wait_peers(node, 3000) >= 0); /* ready (its own loopback included) */
    for (int i = 0; i < 100; i++)
        CHECK(weft_publish(node, i % 2 ? "task.created" : "user.deleted", "x", 1, NULL, NULL) ==
              i + 1);
    CHECK(WAIT_UNTIL(atomic_load(&sink.count) == 50, 3000));
    CHECK_EQ_INT(sink.out_of_order, 0);
    CHECK_STR(sink.last_topic, "task.created");
    CHECK_STR(sink.last_src, "solo");
    weft_node_destroy(&node);
    CHECK(node == NULL);
}

TEST_CASE("two nodes find each other through gossip and deliver by prefix", t_two_nodes)
{
    weft_config_t *ca = s_config(NULL, true);
    weft_node_t *a = weft_node_new("alpha", ca, NULL);
    weft_config_destroy(&ca);
    CHECK(a);
    const char *seed = weft_node_gossip_endpoint(a);
    CHECK(seed);
    weft_config_t *cb = s_config(seed, false);
    weft_node_t *b = weft_node_new("beta", cb, NULL);
    weft_config_destroy(&cb);
    CHECK(b);
    sink_t tasks = {0}, all = {0};
    int err;
    weft_sub_t *s1 = weft_subscribe(b, "task.", s_sink, &tasks, NULL, &err);
    weft_sub_t *s2 = weft_subscribe(b, "", s_sink, &all, NULL, &err);
    CHECK(s1 && s2);
    CHECK(weft_node_wait_peer_named(a, "beta", 5000) == WEFT_OK);
    int ready = weft_node_wait_peers(a, 15000);
    if (ready != 1)
        fprintf(stderr, "  wait_peers returned %d\n", ready);
    CHECK(ready >= 1);
    const char *hk[] = {"k"}, *hv[] = {"v1"};
    weft_meta_t meta = {.corr = "c-42", .header_keys = hk, .header_values = hv, .header_count = 1};
    for (int i = 0; i < 1000; i++)
        CHECK(weft_publish(a, i % 4 ? "task.created" : "audit.log", "hello", 5, &meta, NULL) > 0);
    CHECK(WAIT_UNTIL(atomic_load(&all.count) == 1000, 5000));
    CHECK(WAIT_UNTIL(atomic_load(&tasks.count) == 750, 5000));
    CHECK_EQ_INT(all.out_of_order, 0);
    CHECK_STR(tasks.last_corr, "c-42");
    CHECK_STR(tasks.last_header, "v1");
    CHECK_EQ_INT(tasks.last_size, 5);
    weft_stats_t st;
    weft_node_stats(b, &st);
    CHECK_EQ_INT(st.gaps, 0);
    CHECK_EQ_INT(st.received, 1000);

    /* Unsubscribe stops delivery. */
    CHECK(weft_unsubscribe(b, &s1) == WEFT_OK);
    CHECK(s1 == NULL);
    for (int i = 0; i < 10; i++)
        weft_publish(a, "task.created", "x", 1, NULL, NULL);
    CHECK(WAIT_UNTIL(atomic_load(&all.count) == 1010, 5000));
    CHECK_EQ_INT(atomic_load(&tasks.count), 750);
    weft_node_destroy(&b);
    weft_node_destroy(&a);
}

TEST_CASE("publish rejects bad topics, the reserved prefix and oversize payloads", t_pub_errors)
{
    weft_config_t *cfg = s_config(NULL, false);
    weft_config_set(cfg, "limits/max_payload", "1k");
    weft_node_t *node = weft_node_new("errs", cfg, NULL);
    weft_config_destroy(&cfg);
    CHECK(node);
    char big[2048] = {0};
    CHECK_EQ_INT(weft_publish(node, "", "x", 1, NULL, NULL), WEFT_ETOPIC);
    CHECK_EQ_INT(weft_publish(node, "has space", "x", 1, NULL, NULL), WEFT_ETOPIC);
    CHECK_EQ_INT(weft_publish(node, NULL, "x", 1, NULL, NULL), WEFT_ETOPIC);
    CHECK_EQ_INT(weft_publish(node, "_weft.hb", "x", 1, NULL, NULL), WEFT_ERESERVED);
    CHECK_EQ_INT(weft_publish(node, "a.b", big, sizeof(big), NULL, NULL), WEFT_ETOOBIG);
    CHECK_EQ_INT(weft_publish(node, "a.b", big, 1024, NULL, NULL), 1);
    CHECK_EQ_INT(weft_publish(NULL, "a.b", "x", 1, NULL, NULL), WEFT_EINVAL);
    weft_stats_t st;
    weft_node_stats(node, &st);
    CHECK_EQ_INT(st.publish_errors, 5);
    CHECK_EQ_INT(st.published, 1);
    weft_node_destroy(&node);
}

typedef struct {
    uint64_t expect;
    int bad;
} fetch_check_t;

static int s_fetch_cb(const weft_wire_event_t *ev, void *arg)
{
    fetch_check_t *fc = arg;
    weft_envelope_t env;
    if (weft_envelope_decode(&env, ev->envelope, ev->envelope_size) != 0 || env.seq != fc->expect)
        fc->bad++;
    fc->expect++;
    return 0;
}

TEST_CASE("FETCH returns what the outbox holds and a clear error for what it evicted",
          t_fetch)
{
    weft_config_t *cfg = s_config(NULL, false);
    weft_config_set(cfg, "outbox/events", "1000");
    weft_node_t *node = weft_node_new("fetcher", cfg, NULL);
    weft_config_destroy(&cfg);
    CHECK(node);
    for (int i = 0; i < 3000; i++)
        CHECK(weft_publish(node, "t.x", &i, sizeof(i), NULL, NULL) == i + 1);
    int err;
    weft_ctl_t *ctl = weft_ctl_new(weft_node_ctl_endpoint(node), &err);
    CHECK(ctl);
    fetch_check_t fc = {2001, 0};
    weft_fetch_totals_t tot;
    char msg[256] = "";
    CHECK_EQ_INT(weft_ctl_fetch(ctl, weft_node_inst(node), 2001, 3000, s_fetch_cb, &fc, 3000, &tot,
                                msg),
                 WEFT_OK);
    CHECK_EQ_INT(tot.events, 1000);
    CHECK_EQ_INT(tot.missing, 0);
    CHECK_EQ_INT(fc.bad, 0);
    /* Partly evicted: the held part comes back, the rest is counted missing. */
    fc.expect = 2001;
    CHECK_EQ_INT(weft_ctl_fetch(ctl, weft_node_inst(node), 1501, 2100, s_fetch_cb, &fc, 3000, &tot,
                                msg),
                 WEFT_OK);
    CHECK_EQ_INT(tot.events, 100);
    CHECK_EQ_INT(tot.missing, 500);
    /* Entirely evicted: ERR gone, saying what is held. */
    CHECK_EQ_INT(weft_ctl_fetch(ctl, weft_node_inst(node), 1, 10, s_fetch_cb, &fc, 3000, &tot, msg),
                 WEFT_EGONE);
    CHECK(strstr(msg, "2001..3000") != NULL);
    CHECK_EQ_INT(tot.held_from, 2001);
    /* Filtered by prefix: only matching events, and the others are not "missing". */
    {
        weft_config_t *c2 = s_config(NULL, false);
        weft_node_t *mixed = weft_node_new("mixed", c2, NULL);
        weft_config_destroy(&c2);
        CHECK(mixed);
        for (int i = 0; i < 100; i++)
            weft_publish(mixed, i % 2 ? "u.y" : "t.x", "p", 1, NULL, NULL);
        weft_ctl_t *c = weft_ctl_new(weft_node_ctl_endpoint(mixed), &err);
        const char *only_u[] = {"u."};
        fetch_check_t none = {0, 0};
        CHECK_EQ_INT(weft_ctl_fetch_filtered(c, weft_node_inst(mixed), 1, 100, only_u, 1,
                                             s_fetch_cb, &none, 3000, &tot, msg),
                     WEFT_OK);
        CHECK_EQ_INT(tot.events, 50);
        CHECK_EQ_INT(tot.missing, 0);
        weft_ctl_destroy(&c);
        weft_node_destroy(&mixed);
    }
    /* Wrong instance. */
    CHECK_EQ_INT(weft_ctl_fetch(ctl, weft_node_inst(node) + 1, 1, 10, s_fetch_cb, &fc, 3000, &tot,
                                msg),
                 WEFT_ENOTFOUND);
    int64_t rtt = 0;
    CHECK_EQ_INT(weft_ctl_ping(ctl, 3000, &rtt), WEFT_OK);
    CHECK(rtt > 0);
    weft_reply_t reply;
    CHECK_EQ_INT(weft_ctl_call(ctl, "INFO", NULL, 0, 3000, &reply), WEFT_OK);
    CHECK_STR(reply.status, "OK");
    weft_reply_clear(&reply);
    CHECK_EQ_INT(weft_ctl_call(ctl, "NOPE", NULL, 0, 3000, &reply), WEFT_OK);
    CHECK_STR(reply.status, "ERR");
    CHECK_STR(reply.err_code, "unknown_command");
    weft_reply_clear(&reply);
    weft_ctl_destroy(&ctl);
    weft_node_destroy(&node);
}

TEST_CASE("FETCH over an event too big for the outbox counts it missing and ends", t_fetch_hole)
{
    weft_config_t *cfg = s_config(NULL, false);
    weft_config_set(cfg, "outbox/bytes", "1k");
    weft_node_t *node = weft_node_new("holes", cfg, NULL);
    weft_config_destroy(&cfg);
    CHECK(node);
    static char big[2048];
    CHECK(weft_publish(node, "t.x", "a", 1, NULL, NULL) == 1);
    CHECK(weft_publish(node, "t.x", big, sizeof(big), NULL, NULL) == 2);
    CHECK(weft_publish(node, "t.x", "c", 1, NULL, NULL) == 3);
    int err;
    weft_ctl_t *ctl = weft_ctl_new(weft_node_ctl_endpoint(node), &err);
    fetch_check_t fc = {3, 0};
    weft_fetch_totals_t tot;
    /* The outbox restarted its run at seq 3 after seq 2 could not be held. */
    CHECK_EQ_INT(weft_ctl_fetch(ctl, weft_node_inst(node), 2, 3, s_fetch_cb, &fc, 3000, &tot, NULL),
                 WEFT_OK);
    CHECK_EQ_INT(tot.events, 1);
    CHECK_EQ_INT(tot.missing, 1);
    weft_ctl_destroy(&ctl);
    weft_node_destroy(&node);
}

/*  A TCP port the OS says is free now (for a seed that must be found again at the same place). */
static int s_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int port = -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static weft_node_t *s_auto_node(const char *name, const char *seed)
{
    weft_config_t *cfg = weft_config_new();
    weft_config_set(cfg, "gossip/seeds", seed);
    weft_config_set(cfg, "gossip/bind", "auto");
    weft_config_set(cfg, "heartbeat/interval", "100");
    weft_node_t *node = weft_node_new(name, cfg, NULL);
    weft_config_destroy(&cfg);
    return node;
}

TEST_CASE("when the seed's holder stops, another node takes the seed and newcomers are found",
          t_seed_takeover)
{
    char seed[64];
    snprintf(seed, sizeof(seed), "tcp://127.0.0.1:%d", s_free_port());
    weft_node_t *a = s_auto_node("seed-a", seed);
    CHECK(a && weft_node_gossip_endpoint(a));
    weft_node_t *b = s_auto_node("seed-b", seed);
    weft_node_t *c = s_auto_node("seed-c", seed);
    CHECK(b && c && !weft_node_gossip_endpoint(b) && !weft_node_gossip_endpoint(c));
    CHECK(weft_node_wait_peer_named(b, "seed-c", 5000) == WEFT_OK);
    weft_node_destroy(&a);
    /* b or c binds the free seed within a few seconds. */
    CHECK(WAIT_UNTIL(weft_node_gossip_endpoint(b) || weft_node_gossip_endpoint(c), 8000));
    weft_node_t *d = s_auto_node("seed-d", seed);
    CHECK(d);
    CHECK(weft_node_wait_peer_named(d, "seed-b", 8000) == WEFT_OK);
    CHECK(weft_node_wait_peer_named(d, "seed-c", 8000) == WEFT_OK);
    CHECK(weft_node_wait_peer_named(b, "seed-d", 8000) == WEFT_OK);
    CHECK(weft_node_wait_peer_named(c, "seed-d", 8000) == WEFT_OK);
    weft_node_destroy(&d);
    weft_node_destroy(&c);
    weft_node_destroy(&b);
}

static weft_node_t *s_fabric_node(const char *name, const char *fabric, const char *seed,
                                  bool bind_seed, const char *connect)
{
    weft_config_t *cfg = s_config(seed, bind_seed);
    weft_config_set(cfg, "fabric/name", fabric);
    if (connect)
        weft_config_set(cfg, "peers/connect", connect);
    int err = 0;
    weft_node_t *node = weft_node_new(name, cfg, &err);
    weft_config_destroy(&cfg);
    return node;
}

TEST_CASE("nodes of another fabric are ignored, even through a shared seed or a connection",
          t_fabrics)
{
    weft_node_t *a = s_fabric_node("red-a", "red", NULL, true, NULL);
    CHECK(a);
    const char *seed = weft_node_gossip_endpoint(a);
    CHECK(seed);
    weft_node_t *c = s_fabric_node("red-c", "red", seed, false, NULL);
    /* blue-b shares the seed and its publisher is even connected to red-a's SUB socket, as a
       reused port would do. */
    weft_node_t *b = s_fabric_node("blue-b", "blue", seed, false, weft_node_sub_endpoint(a));
    CHECK(b && c);
    sink_t sa = {0}, sb = {0}, sc = {0};
    int err;
    CHECK(weft_subscribe(a, "", s_sink, &sa, NULL, &err));
    CHECK(weft_subscribe(b, "", s_sink, &sb, NULL, &err));
    CHECK(weft_subscribe(c, "", s_sink, &sc, NULL, &err));
    CHECK(weft_node_wait_peer_named(a, "red-c", 5000) == WEFT_OK);
    CHECK(weft_node_wait_peer_named(c, "red-a", 5000) == WEFT_OK);
    CHECK(weft_node_wait_peers(a, 5000) >= 1);
    /* red-a has heard blue-b's heartbeat through that connection, and ignored it. */
    weft_stats_t st;
    CHECK(WAIT_UNTIL((weft_node_stats(a, &st), st.foreign > 0), 5000));
    weft_peer_info_t info;
    CHECK(weft_node_find_peer(a, 0, NULL, "blue-b", 0, &info) != WEFT_OK);
    CHECK(weft_node_find_peer(c, 0, NULL, "blue-b", 0, &info) != WEFT_OK);
    CHECK(weft_node_find_peer(b, 0, NULL, "red-a", 0, &info) != WEFT_OK);

    for (int i = 0; i < 100; i++)
        CHECK(weft_publish(a, "task.red", "x", 1, NULL, NULL) > 0);
    CHECK(WAIT_UNTIL(atomic_load(&sc.count) == 100, 5000));
    weft_node_stats(a, &st);
    uint64_t foreign_before = st.foreign;
    for (int i = 0; i < 50; i++)
        CHECK(weft_publish(b, "task.blue", "x", 1, NULL, NULL) > 0);
    CHECK(WAIT_UNTIL(atomic_load(&sb.count) == 50, 5000)); /* its own loopback */
    /* Each of the 50 reached red-a and was dropped there, counted. */
    CHECK(WAIT_UNTIL((weft_node_stats(a, &st), st.foreign >= foreign_before + 50), 5000));
    CHECK_EQ_INT(atomic_load(&sa.count), 100);
    CHECK_EQ_INT(atomic_load(&sc.count), 100);
    CHECK_EQ_INT(atomic_load(&sb.count), 50); /* nothing of red reached blue */
    CHECK_STR(sa.last_topic, "task.red");

    /* A fabric name that is not a name is refused. */
    weft_node_t *bad = s_fabric_node("bad", "two words", NULL, false, NULL);
    CHECK(bad == NULL);
    weft_node_destroy(&b);
    weft_node_destroy(&c);
    weft_node_destroy(&a);
}

TEST_CASE("a topic rate limit refuses (or drops) what is over it, per prefix", t_storm)
{
    weft_config_t *cfg = s_config(NULL, false);
    CHECK(weft_config_set(cfg, "limits/topic_rates", "noisy.=1/10,noisy.very.=1/2") == WEFT_OK);
    weft_node_t *node = weft_node_new("stormy", cfg, NULL);
    weft_config_destroy(&cfg);
    CHECK(node);
    int ok = 0, refused = 0;
    for (int i = 0; i < 50; i++) {
        int64_t rc = weft_publish(node, "noisy.x", "x", 1, NULL, NULL);
        ok += rc > 0;
        refused += rc == WEFT_ERATE;
    }
    /* The burst of 10 (plus at most a token refilled meanwhile), the rest refused. */
    CHECK(ok >= 10 && ok <= 11);
    CHECK_EQ_INT(ok + refused, 50);
    /* The longest prefix applies; other topics are not limited. */
    int very = 0;
    for (int i = 0; i < 10; i++)
        very += weft_publish(node, "noisy.very.loud", "x", 1, NULL, NULL) > 0;
    CHECK(very >= 2 && very <= 3);
    for (int i = 0; i < 100; i++)
        CHECK(weft_publish(node, "calm.x", "x", 1, NULL, NULL) > 0);
    weft_stats_t st;
    weft_node_stats(node, &st);
    CHECK_EQ_INT(st.rate_limited, (uint64_t)refused + (uint64_t)(10 - very));
    weft_node_destroy(&node);

    /* Policy drop: 0 instead of an error, counted, not a publish error. */
    cfg = s_config(NULL, false);
    weft_config_set(cfg, "limits/topic_rates", "=1/5");
    weft_config_set(cfg, "limits/rate_policy", "drop");
    node = weft_node_new("dropper", cfg, NULL);
    weft_config_destroy(&cfg);
    CHECK(node);
    int zero = 0;
    for (int i = 0; i < 20; i++)
        zero += weft_publish(node, "any.thing", "x", 1, NULL, NULL) == 0;
    CHECK(zero >= 14);
    weft_node_stats(node, &st);
    CHECK_EQ_INT(st.publish_errors, 0);
    CHECK_EQ_INT(st.rate_limited, (uint64_t)zero);
    weft_node_destroy(&node);

    /* A malformed limit is a configuration error. */
    cfg = s_config(NULL, false);
    weft_config_set(cfg, "limits/topic_rates", "oops");
    int err = 0;
    CHECK(weft_node_new("bad", cfg, &err) == NULL);
    CHECK_EQ_INT(err, WEFT_ECONFIG);
    weft_config_destroy(&cfg);
}

TEST_CASE("configuration resolves code over environment over file over defaults", t_config)
{
    char path[] = "/tmp/weft-test-cfg-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    const char *zpl = "outbox\n    events = 777\n    bytes = 2M\nnode\n    role = filerole\n";
    CHECK(write(fd, zpl, strlen(zpl)) == (ssize_t)strlen(zpl));
    close(fd);
    weft_config_t *cfg = weft_config_new();
    CHECK_EQ_INT(weft_config_load(cfg, path), WEFT_OK);
    CHECK_EQ_INT(weft_config_get_int(cfg, "outbox/events", 0), 777);
    CHECK_EQ_INT(weft_config_get_int(cfg, "outbox/bytes", 0), 2 << 20);
    setenv("WEFT_OUTBOX_EVENTS", "888", 1);
    CHECK_EQ_INT(weft_config_get_int(cfg, "outbox/events", 0), 888);
    CHECK_EQ_INT(weft_config_set(cfg, "outbox/events", "999"), WEFT_OK);
    CHECK_EQ_INT(weft_config_get_int(cfg, "outbox/events", 0), 999);
    unsetenv("WEFT_OUTBOX_EVENTS");
    CHECK_STR(weft_config_get(cfg, "node/role"), "filerole");
    CHECK_EQ_INT(weft_config_get_int(cfg, "heartbeat/interval", 0), 1000);
    CHECK_EQ_INT(weft_config_set(cfg, "no/such", "1"), WEFT_ECONFIG);
    CHECK_EQ_INT(weft_config_set(cfg, "outbox/events", "many"), WEFT_ECONFIG);
    CHECK(weft_config_get(cfg, "no/such") == NULL);
    weft_config_destroy(&cfg);
    /* A file with an unknown key is refused. */
    FILE *f = fopen(path, "w");
    fputs("outbox\n    eventz = 1\n", f);
    fclose(f);
    cfg = weft_config_new();
    CHECK_EQ_INT(weft_config_load(cfg, path), WEFT_ECONFIG);
    CHECK_EQ_INT(weft_config_load(cfg, "/nonexistent/weft.cfg"), WEFT_ENOTFOUND);
    weft_config_destroy(&cfg);
    unlink(path);
}

int main(void)
{
    zsys_init();
    RUN_CASE("a node delivers its own events to its own subscriptions", t_loopback);
    RUN_CASE("two nodes find each other through gossip and deliver by prefix", t_two_nodes);
    RUN_CASE("publish rejects bad topics, the reserved prefix and oversize payloads", t_pub_errors);
    RUN_CASE("FETCH returns what the outbox holds and a clear error for what it evicted", t_fetch);
    RUN_CASE("FETCH over an event too big for the outbox counts it missing and ends", t_fetch_hole);
    RUN_CASE("when the seed's holder stops, another node takes the seed and newcomers are found",
             t_seed_takeover);
    RUN_CASE("nodes of another fabric are ignored, even through a shared seed or a connection",
             t_fabrics);
    RUN_CASE("a topic rate limit refuses (or drops) what is over it, per prefix", t_storm);
    RUN_CASE("configuration resolves code over environment over file over defaults", t_config);
    return TEST_EXIT();
}

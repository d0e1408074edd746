/*  test_hostile.c - the network is hostile. Garbage sent with raw ZeroMQ sockets to a node's
    SUB endpoint is counted as malformed and dropped; garbage sent to its control endpoint is
    answered with ERR and a code; the node never crashes, and real traffic keeps flowing. */
#include <czmq.h>
#include <stdatomic.h>

#include "testing.h"
#include "weft.h"

static atomic_int s_received;

static int s_count(weft_event_t *ev, void *arg)
{
    (void)ev;
    (void)arg;
    atomic_fetch_add(&s_received, 1);
    return 0;
}

static weft_node_t *s_node(const char *name)
{
    weft_config_t *cfg = weft_config_new();
    weft_config_set(cfg, "gossip/seeds", "none");
    weft_config_set(cfg, "gossip/bind", "none");
    weft_config_set(cfg, "heartbeat/interval", "100");
    weft_config_set(cfg, "limits/max_payload", "4k");
    weft_node_t *node = weft_node_new(name, cfg, NULL);
    weft_config_destroy(&cfg);
    return node;
}

/*  Sends one multipart message of the given frames on a raw socket. */
static void s_send_frames(void *sock, const void *const *frames, const size_t *sizes, int n)
{
    for (int i = 0; i < n; i++)
        zmq_send(sock, frames[i], sizes[i], i + 1 < n ? ZMQ_SNDMORE : 0);
}

TEST_CASE("garbage on the SUB socket is counted and dropped, real events still arrive",
          t_sub_garbage)
{
    weft_node_t *victim = s_node("victim");
    CHECK(victim);
    int err;
    CHECK(weft_subscribe(victim, "", s_count, NULL, NULL, &err));
    void *ctx = zsys_init();
    void *raw = zmq_socket(ctx, ZMQ_PUB);
    CHECK(zmq_connect(raw, weft_node_sub_endpoint(victim)) == 0);
    /* A real publisher next to the attacker. */
    weft_node_t *good = s_node("good");
    CHECK(good);
    CHECK(weft_node_connect(good, weft_node_sub_endpoint(victim)) == WEFT_OK);
    CHECK(weft_node_wait_peers(good, 5000) >= 1);
    /* Wait until the raw PUB has the subscription: probe with valid-looking events. */
    uint8_t env[512];
    weft_envelope_t e;
    weft_envelope_init(&e);
    snprintf(e.src, sizeof(e.src), "raw");
    e.inst = 77;
    e.seq = 1;
    int elen = weft_envelope_encode(&e, env, sizeof(env));
    CHECK(elen > 0);
    int64_t deadline = t_mono_ms() + 5000;
    while (atomic_load(&s_received) == 0 && t_mono_ms() < deadline) {
        e.seq++;
        elen = weft_envelope_encode(&e, env, sizeof(env));
        const void *fr[] = {"probe.x", env, "p"};
        size_t sz[] = {7, (size_t)elen, 1};
        s_send_frames(raw, fr, sz, 3);
        t_nap_ms(20);
    }
    CHECK(atomic_load(&s_received) > 0);
    weft_stats_t before;
    weft_node_stats(victim, &before);

    static const uint8_t huge_array[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t huge_map[] = {0xdf, 0x7f, 0xff, 0xff, 0xff};
    static const uint8_t huge_str[] = {0x81, 0xa1, 'v', 0xdb, 0xff, 0xff, 0xff, 0xf0};
    static const uint8_t not_map[] = {0x93, 0x01, 0x02, 0x03};
    static const uint8_t wrong_type[] = {0x81, 0xa3, 's', 'e', 'q', 0xa3, 'o', 'n', 'e'};
    static const uint8_t reserved[] = {0xc1};
    char big[8192];
    memset(big, 'b', sizeof(big));
    int sent = 0;
    /* 1 frame; 2 frames; 4 frames. */
    { const void *f[] = {"g.one"}; size_t s[] = {5}; s_send_frames(raw, f, s, 1); sent++; }
    { const void *f[] = {"g.two", env}; size_t s[] = {5, (size_t)elen}; s_send_frames(raw, f, s, 2); sent++; }
    { const void *f[] = {"g.four", env, "p", "x"}; size_t s[] = {6, (size_t)elen, 1, 1}; s_send_frames(raw, f, s, 4); sent++; }
    /* Bad topic frame (a space), and malformed envelopes of every kind. */
    { const void *f[] = {"g bad", env, "p"}; size_t s[] = {5, (size_t)elen, 1}; s_send_frames(raw, f, s, 3); sent++; }
    const uint8_t *bad_envs[] = {huge_array, huge_map, huge_str, not_map, wrong_type, reserved};
    size_t bad_sizes[] = {sizeof(huge_array), sizeof(huge_map), sizeof(huge_str), sizeof(not_map),
                          sizeof(wrong_type), sizeof(reserved)};
    for (int i = 0; i < 6; i++) {
        const void *f[] = {"g.env", bad_envs[i], "p"};
        size_t s[] = {5, bad_sizes[i], 1};
        s_send_frames(raw, f, s, 3);
        sent++;
    }
    /* Truncated envelope: every prefix of a valid one. */
    for (int cut = 0; cut < elen; cut++) {
        const void *f[] = {"g.cut", env, "p"};
        size_t s[] = {5, (size_t)cut, 1};
        s_send_frames(raw, f, s, 3);
        sent++;
    }
    /* Payload over max_payload (4 KiB) is refused by ZeroMQ (MAXMSGSIZE) or by the node: it
       must not be delivered. Sent last, since ZeroMQ drops the connection for it. */
    e.seq = 1000000;
    elen = weft_envelope_encode(&e, env, sizeof(env));

    /* Real traffic keeps flowing. */
    int base = atomic_load(&s_received);
    for (int i = 0; i < 100; i++)
        CHECK(weft_publish(good, "real.event", "ok", 2, NULL, NULL) > 0);
    CHECK(WAIT_UNTIL(atomic_load(&s_received) >= base + 100, 5000));
    weft_stats_t after;
    CHECK(WAIT_UNTIL((weft_node_stats(victim, &after), after.malformed - before.malformed >= (uint64_t)sent), 5000));
    CHECK_EQ_INT(after.malformed - before.malformed, sent);
    { const void *f[] = {"g.big", env, big}; size_t s[] = {5, (size_t)elen, sizeof(big)}; s_send_frames(raw, f, s, 3); }
    base = atomic_load(&s_received);
    for (int i = 0; i < 10; i++)
        weft_publish(good, "real.event", "ok", 2, NULL, NULL);
    CHECK(WAIT_UNTIL(atomic_load(&s_received) >= base + 10, 5000));
    CHECK_EQ_INT(atomic_load(&s_received), base + 10); /* the oversize event was not delivered */
    zmq_close(raw);
    weft_node_destroy(&good);
    weft_node_destroy(&victim);
}

/*  Sends raw frames on a DEALER and returns the reply's status and ERR code. */
static int s_ctl_raw(void *dealer, const void *const *frames, const size_t *sizes, int n,
                     char *status, char *code)
{
    s_send_frames(dealer, frames, sizes, n);
    zmq_pollitem_t item = {dealer, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&item, 1, 3000) <= 0)
        return -1;
    zmsg_t *msg = zmsg_recv(dealer);
    if (!msg || zmsg_size(msg) != 4)
        return -1;
    char *proto = zmsg_popstr(msg), *st = zmsg_popstr(msg);
    zframe_t *rid = zmsg_pop(msg), *body = zmsg_pop(msg);
    snprintf(status, 16, "%s", st);
    code[0] = 0;
    /* body {code: str, message: str}: find "code" followed by its str value. */
    const uint8_t *b = zframe_data(body);
    size_t bs = zframe_size(body);
    for (size_t i = 0; i + 6 < bs; i++)
        if (b[i] == 0xa4 && memcmp(b + i + 1, "code", 4) == 0 && (b[i + 5] & 0xe0) == 0xa0) {
            size_t n2 = b[i + 5] & 0x1f;
            if (i + 6 + n2 <= bs)
                snprintf(code, 64, "%.*s", (int)n2, b + i + 6);
            break;
        }
    int ok = streq(proto, "weft/1") && zframe_size(rid) == 8 ? 0 : -1;
    zstr_free(&proto);
    zstr_free(&st);
    zframe_destroy(&rid);
    zframe_destroy(&body);
    zmsg_destroy(&msg);
    return ok;
}

TEST_CASE("garbage on the control endpoint gets ERR with a code, and PING still works",
          t_ctl_garbage)
{
    weft_node_t *node = s_node("ctl-victim");
    CHECK(node);
    void *ctx = zsys_init();
    void *dealer = zmq_socket(ctx, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt(dealer, ZMQ_LINGER, &linger, sizeof(linger));
    CHECK(zmq_connect(dealer, weft_node_ctl_endpoint(node)) == 0);
    char status[16], code[64];
    static const uint8_t rid[8] = {0, 0, 0, 0, 0, 0, 0, 7};
    static const uint8_t empty_map[] = {0x80};
    static const uint8_t huge[] = {0xdf, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t array[] = {0x91, 0x01};
    {   /* wrong protocol name */
        const void *f[] = {"weft/9", "PING", rid, empty_map};
        size_t s[] = {6, 4, 8, 1};
        CHECK(s_ctl_raw(dealer, f, s, 4, status, code) == 0);
        CHECK_STR(status, "ERR");
        CHECK_STR(code, "bad_version");
    }
    {   /* too few frames */
        const void *f[] = {"weft/1", "PING"};
        size_t s[] = {6, 4};
        CHECK(s_ctl_raw(dealer, f, s, 2, status, code) == 0);
        CHECK_STR(code, "bad_request");
    }
    {   /* request id of the wrong size */
        const void *f[] = {"weft/1", "PING", rid, empty_map};
        size_t s[] = {6, 4, 3, 1};
        CHECK(s_ctl_raw(dealer, f, s, 4, status, code) == 0);
        CHECK_STR(code, "bad_request");
    }
    {   /* args declaring 4 billion entries in 5 bytes */
        const void *f[] = {"weft/1", "FETCH", rid, huge};
        size_t s[] = {6, 5, 8, sizeof(huge)};
        CHECK(s_ctl_raw(dealer, f, s, 4, status, code) == 0);
        CHECK_STR(code, "bad_request");
    }
    {   /* args that are not a map */
        const void *f[] = {"weft/1", "FETCH", rid, array};
        size_t s[] = {6, 5, 8, sizeof(array)};
        CHECK(s_ctl_raw(dealer, f, s, 4, status, code) == 0);
        CHECK_STR(code, "bad_request");
    }
    {   /* FETCH with missing arguments */
        const void *f[] = {"weft/1", "FETCH", rid, empty_map};
        size_t s[] = {6, 5, 8, 1};
        CHECK(s_ctl_raw(dealer, f, s, 4, status, code) == 0);
        CHECK_STR(code, "bad_request");
    }
    {   /* unknown command */
        const void *f[] = {"weft/1", "DROP_TABLES", rid, empty_map};
        size_t s[] = {6, 11, 8, 1};
        CHECK(s_ctl_raw(dealer, f, s, 4, status, code) == 0);
        CHECK_STR(code, "unknown_command");
    }
    {   /* still alive */
        const void *f[] = {"weft/1", "PING", rid, empty_map};
        size_t s[] = {6, 4, 8, 1};
        CHECK(s_ctl_raw(dealer, f, s, 4, status, code) == 0);
        CHECK_STR(status, "OK");
    }
    weft_stats_t st;
    weft_node_stats(node, &st);
    CHECK_EQ_INT(st.ctl_errors, 7);
    zmq_close(dealer);
    weft_node_destroy(&node);
}

int main(void)
{
    zsys_init();
    RUN_CASE("garbage on the SUB socket is counted and dropped, real events still arrive",
             t_sub_garbage);
    RUN_CASE("garbage on the control endpoint gets ERR with a code, and PING still works",
             t_ctl_garbage);
    return TEST_EXIT();
}

/*  bench_dlq.c - `weft bench dlq`: performance figures of the DLQ, each next to raw baselines
    measured in the same run; summaries are medians over passes.

    1. PUT. A real DLQ (dlq_new, in this process, on a fresh directory, no gossip) is sent
       --letters PUTs of distinct events over TCP loopback by a raw DEALER, each a request
       as a subscriber's node sends it (event [topic, envelope, payload], subscriber, node,
       error, attempts, failed_at), first one at a time (wait for each OK), then with 16 in
       flight, each on a fresh DLQ, per sync policy (always, none). Rate = letters
       acknowledged / (first send -> last OK). The DLQ's backoff is an hour, so its scheduler
       stays idle. Baselines in the same pass: raw liblmdb puts of a record of the size the
       DLQ stored (read back from its store), one write transaction per put, with the same
       sync setting; and raw ZeroMQ DEALER/ROUTER round trips of the same request frames to a
       ROUTER thread that answers at once, one at a time and with 16 in flight.
    2. Redelivery. A DLQ and a subscriber node (in this process, joined through the DLQ's
       gossip seed, so the DLQ finds the node by name as in production) whose handler
       succeeds; --letters letters for that subscriber are PUT (not timed), then RETRY
       {all: true} makes them all due: rate = letters resolved / (RETRY sent -> the last one
       resolved), with the DLQ's 16 redeliveries in flight. Each letter costs three commits
       there (RETRY, retrying, resolved): the raw LMDB put rate / 3 is its storage bound.

    Progress goes to stderr; results to stdout (or one JSON line with --json).
*/
#include <czmq.h>
#include <inttypes.h>
#include <limits.h>
#include <lmdb.h>
#include <msgpack.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench_dir.h"
#include "bench_dlq.h"
#include "bench_opts.h"
#include "bench_stats.h"
#include "dlq.h"
#include "weft.h"

#define PROG "weft bench dlq"
#define TOPIC "bench.dlq.task"
#define WINDOW 16               /* requests in flight: the DLQ's default max_in_flight */
#define REPLY_TIMEOUT_MS 30000  /* one reply (sync always on a slow disk is slow, not stuck) */
#define STALL_TIMEOUT_MS 30000 /* part 2 fails when no letter is resolved for this long */
#define PEER_TIMEOUT_MS 15000   /* the DLQ sees the subscriber node up */
#define HB_MS 200               /* heartbeat interval of the nodes of part 2 */
#define NPOLICIES 2

static const dlq_sync_t s_policies[NPOLICIES] = {DLQ_SYNC_ALWAYS, DLQ_SYNC_NONE};
static const char *const s_policy_names[NPOLICIES] = {"always", "none"};

typedef struct {
    uint64_t letters;
    int passes;
    size_t size;               /* payload bytes */
    const char *dir;
    bool keep, json;
} dopts_t;

/*  What one pass measured; rates in letters (or requests, or puts) per second. */
typedef struct {
    double put_seq[NPOLICIES], put_win[NPOLICIES], lmdb[NPOLICIES], redeliver[NPOLICIES];
    double zmq_seq, zmq_win;
} pass_t;

typedef struct {
    const dopts_t *o;
    char root[PATH_MAX / 2];   /* directory of this run */
    int seq;                   /* numbers the DLQ directories */
    uint8_t **args;            /* PUT args of each letter, for the subscriber in part 1 */
    size_t *args_size;
    uint8_t **rargs;           /* the same for the subscriber node of part 2 */
    size_t *rargs_size;
    size_t record_size;        /* the DLQ's record of one such letter (0: not known yet) */
    size_t envelope_size;
    char sub_node[64];         /* part 2's subscriber node name */
} dctx_t;

/* ---- small helpers ------------------------------------------------------------------------- */

static void s_nap_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

static void s_next_dir(dctx_t *c, const char *what, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s-%d", c->root, what, ++c->seq);
}

static void s_pk_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

/*  The PUT args of letter i for subscriber "<node>/worker", as node_dlq.c packs them. */
static int s_build_args(const dctx_t *c, const char *node, uint64_t i, uint8_t **out,
                        size_t *size, size_t *envelope_size)
{
    const dopts_t *o = c->o;
    weft_envelope_t env;
    weft_envelope_init(&env);
    snprintf(env.src, sizeof(env.src), "bench-pub");
    env.inst = 0x0123456789abcdefULL;
    env.seq = i + 1;
    env.ts = weft_now_ns();
    weft_id_new(env.id);
    uint8_t envelope[WEFT_ENVELOPE_MAX];
    int n = weft_envelope_encode(&env, envelope, sizeof(envelope));
    if (n < 0)
        return -1;
    *envelope_size = (size_t)n;
    uint8_t *payload = malloc(o->size ? o->size : 1);
    if (!payload)
        return -1;
    memset(payload, 0xa5, o->size);
    if (o->size >= 2 && o->size - 2 <= 255) { /* a msgpack bin 8: a valid payload */
        payload[0] = 0xc4;
        payload[1] = (uint8_t)(o->size - 2);
    }
    char subscriber[128];
    snprintf(subscriber, sizeof(subscriber), "%s/worker", node);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 6);
    s_pk_str(&pk, "event");
    msgpack_pack_array(&pk, 3);
    s_pk_str(&pk, TOPIC);
    msgpack_pack_bin(&pk, (size_t)n);
    msgpack_pack_bin_body(&pk, envelope, (size_t)n);
    msgpack_pack_bin(&pk, o->size);
    msgpack_pack_bin_body(&pk, payload, o->size);
    s_pk_str(&pk, "subscriber");
    s_pk_str(&pk, subscriber);
    s_pk_str(&pk, "node");
    s_pk_str(&pk, node);
    s_pk_str(&pk, "error");
    msgpack_pack_map(&pk, 2);
    s_pk_str(&pk, "code");
    s_pk_str(&pk, "bench.fail");
    s_pk_str(&pk, "message");
    s_pk_str(&pk, "the handler gave up after 3 attempts: downstream unavailable");
    s_pk_str(&pk, "attempts");
    msgpack_pack_uint32(&pk, 3);
    s_pk_str(&pk, "failed_at");
    msgpack_pack_int64(&pk, weft_now_ns());
    free(payload);
    *size = sb.size;
    *out = (uint8_t *)msgpack_sbuffer_release(&sb);
    msgpack_sbuffer_destroy(&sb);
    return *out ? 0 : -1;
}

/* ---- requests over a raw DEALER ------------------------------------------------------------- */

static int s_send(void *sock, const char *cmd, uint64_t rid, const void *args, size_t size)
{
    uint8_t r[8];
    for (int i = 7; i >= 0; i--, rid >>= 8)
        r[i] = (uint8_t)rid;
    if (zmq_send(sock, "weft/1", 6, ZMQ_SNDMORE) < 0 ||
        zmq_send(sock, cmd, strlen(cmd), ZMQ_SNDMORE) < 0 || zmq_send(sock, r, 8, ZMQ_SNDMORE) < 0 ||
        zmq_send(sock, args, size, 0) < 0)
        return -1;
    return 0;
}

/*  Receives one reply (4 frames). Returns 1 OK, 0 another status, -1 nothing in time. */
static int s_recv(void *sock, int timeout_ms)
{
    zmq_pollitem_t item = {sock, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&item, 1, timeout_ms) <= 0)
        return -1;
    zmq_msg_t m;
    zmq_msg_init(&m);
    int frame = 0, ok = 0;
    do {
        if (zmq_msg_recv(&m, sock, 0) < 0) {
            zmq_msg_close(&m);
            return -1;
        }
        if (frame == 1)
            ok = zmq_msg_size(&m) == 2 && memcmp(zmq_msg_data(&m), "OK", 2) == 0;
        frame++;
    } while (zmq_msg_more(&m));
    zmq_msg_close(&m);
    return frame == 4 ? ok : 0;
}

/*  Sends n requests (args[i]) with at most window in flight and waits for every reply.
    Returns requests per second, or -1 (no reply in time, or a reply other than OK). */
static double s_drive(void *sock, const char *cmd, uint8_t **args, const size_t *sizes,
                      uint64_t n, int window)
{
    uint64_t sent = 0, done = 0;
    int64_t t0 = bench_now_ns();
    while (done < n) {
        while (sent < n && sent - done < (uint64_t)window) {
            if (s_send(sock, cmd, sent + 1, args[sent], sizes[sent]) != 0)
                return -1;
            sent++;
        }
        int rc = s_recv(sock, REPLY_TIMEOUT_MS);
        if (rc < 0) {
            fprintf(stderr, PROG ": no reply to %s within %d ms\n", cmd, REPLY_TIMEOUT_MS);
            return -1;
        }
        if (rc == 0) {
            fprintf(stderr, PROG ": %s was refused\n", cmd);
            return -1;
        }
        done++;
        if (zsys_interrupted)
            return -1;
    }
    int64_t dt = bench_now_ns() - t0;
    return dt > 0 ? (double)n * 1e9 / (double)dt : 0;
}

static void *s_dealer(const char *endpoint)
{
    void *sock = zmq_socket(zsys_init(), ZMQ_DEALER);
    if (!sock)
        return NULL;
    int zero = 0, hwm = 100000;
    zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof(zero));
    zmq_setsockopt(sock, ZMQ_SNDHWM, &hwm, sizeof(hwm));
    zmq_setsockopt(sock, ZMQ_RCVHWM, &hwm, sizeof(hwm));
    if (zmq_connect(sock, endpoint) != 0) {
        zmq_close(sock);
        return NULL;
    }
    return sock;
}

/* ---- the DLQ ------------------------------------------------------------------------------- */

/*  A DLQ on a fresh directory; with gossip it binds a seed on an ephemeral port (its node's
    gossip endpoint), else it has none. Backoff of an hour: nothing is due unless retried. */
static dlq_t *s_dlq_new(dctx_t *c, dlq_sync_t sync, bool gossip, char *dir, size_t cap)
{
    s_next_dir(c, "dlq", dir, cap);
    dlq_opts_t o;
    dlq_opts_defaults(&o);
    o.dir = dir;
    o.name = "bench-dlq";
    o.sync = sync;
    o.backoff_ms = o.backoff_max_ms = 3600000;
    o.jitter = 0;
    weft_config_t *cfg = weft_config_new();
    weft_config_set(cfg, "gossip/seeds", "none");
    weft_config_set(cfg, "gossip/bind", gossip ? "tcp://127.0.0.1:*" : "none");
    char hb[16];
    snprintf(hb, sizeof(hb), "%d", HB_MS);
    weft_config_set(cfg, "heartbeat/interval", hb);
    o.config = cfg;
    int err = 0;
    char why[256];
    dlq_t *d = dlq_new(&o, &err, why, sizeof(why));
    weft_config_destroy(&cfg);
    if (!d)
        fprintf(stderr, PROG ": cannot start a DLQ in %s: %s\n", dir,
                why[0] ? why : weft_strerror(err));
    else if (gossip && !weft_node_gossip_endpoint(dlq_node(d))) {
        fprintf(stderr, PROG ": the DLQ in %s has no gossip endpoint\n", dir);
        dlq_destroy(&d);
    }
    return d;
}

/*  Size of the first letter record of a closed DLQ store (raw LMDB read). */
static size_t s_record_size(const char *dir)
{
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    MDB_dbi dbi;
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    size_t size = 0;
    if (mdb_env_create(&env) == 0 && mdb_env_set_maxdbs(env, 16) == 0 &&
        mdb_env_open(env, dir, MDB_RDONLY, 0644) == 0 &&
        mdb_txn_begin(env, NULL, MDB_RDONLY, &txn) == 0 &&
        mdb_dbi_open(txn, "letters", 0, &dbi) == 0 && mdb_cursor_open(txn, dbi, &cur) == 0 &&
        mdb_cursor_get(cur, &k, &v, MDB_FIRST) == 0)
        size = v.mv_size;
    if (cur)
        mdb_cursor_close(cur);
    if (txn)
        mdb_txn_abort(txn);
    if (env)
        mdb_env_close(env);
    return size;
}

/*  PUT of every letter to a fresh DLQ, window in flight. Returns letters/s or -1. */
static double s_put_run(dctx_t *c, dlq_sync_t sync, int window)
{
    char dir[PATH_MAX];
    dlq_t *d = s_dlq_new(c, sync, false, dir, sizeof(dir));
    if (!d)
        return -1;
    void *sock = s_dealer(dlq_svc_endpoint(d));
    double rate = -1;
    if (sock) {
        rate = s_drive(sock, "PUT", c->args, c->args_size, c->o->letters, window);
        dlq_stats_t st;
        dlq_stats(d, &st);
        /* (>: a node of another fabric on this machine that knew a DLQ at this port may
           send PUTs too) */
        if (rate > 0 && st.created < c->o->letters) {
            fprintf(stderr, PROG ": %" PRIu64 " letters created of %" PRIu64 "\n", st.created,
                    c->o->letters);
            rate = -1;
        }
        zmq_close(sock);
    }
    dlq_destroy(&d);
    if (!c->record_size)
        c->record_size = s_record_size(dir);
    if (!c->o->keep)
        bench_rmtree(PROG, dir);
    return rate;
}

/* ---- baselines ----------------------------------------------------------------------------- */

/*  Raw LMDB: n puts of a record of size bytes under 16-byte time-ordered keys, one write
    transaction each, fsync per commit or MDB_NOSYNC. Returns puts/s or -1. */
static double s_lmdb_run(dctx_t *c, bool sync, size_t size, uint64_t n)
{
    char dir[PATH_MAX];
    s_next_dir(c, "lmdb", dir, sizeof(dir));
    if (mkdir(dir, 0755) != 0)
        return -1;
    uint8_t *rec = malloc(size ? size : 1);
    MDB_env *env = NULL;
    MDB_dbi dbi;
    MDB_txn *txn = NULL;
    double rate = -1;
    if (!rec || mdb_env_create(&env) != 0 || mdb_env_set_mapsize(env, (size_t)1 << 30) != 0 ||
        mdb_env_open(env, dir, sync ? 0 : MDB_NOSYNC, 0644) != 0 ||
        mdb_txn_begin(env, NULL, 0, &txn) != 0 || mdb_dbi_open(txn, NULL, 0, &dbi) != 0 ||
        mdb_txn_commit(txn) != 0) {
        fprintf(stderr, PROG ": cannot open the raw LMDB baseline in %s\n", dir);
        goto out;
    }
    memset(rec, 0x5a, size);
    int64_t t0 = bench_now_ns();
    for (uint64_t i = 0; i < n && !zsys_interrupted; i++) {
        uint8_t key[WEFT_ID_SIZE];
        weft_id_new(key);
        MDB_val k = {sizeof(key), key}, v = {size, rec};
        if (mdb_txn_begin(env, NULL, 0, &txn) != 0 || mdb_put(txn, dbi, &k, &v, 0) != 0 ||
            mdb_txn_commit(txn) != 0) {
            fprintf(stderr, PROG ": raw LMDB put failed\n");
            goto out;
        }
    }
    int64_t dt = bench_now_ns() - t0;
    rate = dt > 0 ? (double)n * 1e9 / (double)dt : 0;
out:
    if (env)
        mdb_env_close(env);
    free(rec);
    if (!c->o->keep)
        bench_rmtree(PROG, dir);
    return rate;
}

typedef struct {
    void *router;
    atomic_bool stop;
} echo_t;

/*  A ROUTER that answers every request at once with OK and a PUT-sized reply body. */
static void *s_echo_thread(void *arg)
{
    echo_t *e = arg;
    static const uint8_t body[] = {0x82, 0xa6, 'l', 'e', 't', 't', 'e', 'r', 0xc4, 16,
                                   1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                   0xa7, 'c', 'r', 'e', 'a', 't', 'e', 'd', 0xc3};
    zmq_msg_t routing, rid, m;
    zmq_msg_init(&routing);
    zmq_msg_init(&rid);
    zmq_msg_init(&m);
    while (!atomic_load(&e->stop)) {
        if (zmq_msg_recv(&routing, e->router, 0) < 0)
            continue; /* receive timeout: look at stop */
        /* ["weft/1"][command][request id][args] after the routing id */
        bool more = zmq_msg_more(&routing);
        for (int frame = 0; more; frame++) {
            zmq_msg_t *dst = frame == 2 ? &rid : &m;
            if (zmq_msg_recv(dst, e->router, 0) < 0)
                break;
            more = zmq_msg_more(dst);
        }
        zmq_msg_send(&routing, e->router, ZMQ_SNDMORE);
        zmq_send(e->router, "weft/1", 6, ZMQ_SNDMORE);
        zmq_send(e->router, "OK", 2, ZMQ_SNDMORE);
        zmq_msg_send(&rid, e->router, ZMQ_SNDMORE);
        zmq_send(e->router, body, sizeof(body), 0);
    }
    zmq_msg_close(&routing);
    zmq_msg_close(&rid);
    zmq_msg_close(&m);
    return NULL;
}

/*  Raw ZeroMQ DEALER/ROUTER round trips of the PUT frames, one at a time and with WINDOW in
    flight. Returns 0 and the rates, or -1. */
static int s_zmq_run(dctx_t *c, double *seq, double *win)
{
    echo_t e = {.router = zmq_socket(zsys_init(), ZMQ_ROUTER)};
    atomic_init(&e.stop, false);
    int timeo = 100, zero = 0, hwm = 100000;
    char endpoint[256];
    size_t len = sizeof(endpoint);
    if (!e.router)
        return -1;
    zmq_setsockopt(e.router, ZMQ_RCVTIMEO, &timeo, sizeof(timeo));
    zmq_setsockopt(e.router, ZMQ_LINGER, &zero, sizeof(zero));
    zmq_setsockopt(e.router, ZMQ_SNDHWM, &hwm, sizeof(hwm));
    zmq_setsockopt(e.router, ZMQ_RCVHWM, &hwm, sizeof(hwm));
    if (zmq_bind(e.router, "tcp://127.0.0.1:*") != 0 ||
        zmq_getsockopt(e.router, ZMQ_LAST_ENDPOINT, endpoint, &len) != 0) {
        zmq_close(e.router);
        return -1;
    }
    pthread_t t;
    if (pthread_create(&t, NULL, s_echo_thread, &e) != 0) {
        zmq_close(e.router);
        return -1;
    }
    void *sock = s_dealer(endpoint);
    int rc = -1;
    if (sock) {
        uint64_t n = c->o->letters;
        *seq = s_drive(sock, "PUT", c->args, c->args_size, n, 1);
        *win = *seq > 0 ? s_drive(sock, "PUT", c->args, c->args_size, n, WINDOW) : -1;
        rc = *seq > 0 && *win > 0 ? 0 : -1;
        zmq_close(sock);
    }
    atomic_store(&e.stop, true);
    pthread_join(t, NULL);
    zmq_close(e.router);
    return rc;
}

/* ---- redelivery ---------------------------------------------------------------------------- */

static int s_succeed(weft_event_t *ev, void *arg)
{
    atomic_fetch_add((atomic_uint_fast64_t *)arg, 1);
    return 0;
}

/*  Part 2 for one policy. Returns letters resolved per second, or -1. */
static double s_redeliver_run(dctx_t *c, dlq_sync_t sync)
{
    uint64_t n = c->o->letters;
    /* The subscriber node joins the DLQ's gossip seed. */
    char dir[PATH_MAX];
    dlq_t *d = s_dlq_new(c, sync, true, dir, sizeof(dir));
    if (!d)
        return -1;
    char seed[256];
    snprintf(seed, sizeof(seed), "%s", weft_node_gossip_endpoint(dlq_node(d)));
    double rate = -1;
    atomic_uint_fast64_t handled;
    atomic_init(&handled, 0);
    weft_config_t *cfg = weft_config_new();
    weft_config_set(cfg, "gossip/seeds", seed);
    weft_config_set(cfg, "gossip/bind", "none");
    char hb[16];
    snprintf(hb, sizeof(hb), "%d", HB_MS);
    weft_config_set(cfg, "heartbeat/interval", hb);
    int err = 0;
    weft_node_t *sub_node = weft_node_new(c->sub_node, cfg, &err);
    weft_config_destroy(&cfg);
    void *sock = NULL;
    if (!sub_node) {
        fprintf(stderr, PROG ": cannot start the subscriber node: %s\n", weft_strerror(err));
        goto out;
    }
    weft_sub_options_t so;
    memset(&so, 0, sizeof(so));
    so.name = "worker";
    if (!weft_subscribe(sub_node, TOPIC, s_succeed, &handled, &so, &err)) {
        fprintf(stderr, PROG ": cannot subscribe: %s\n", weft_strerror(err));
        goto out;
    }
    if (weft_node_wait_peer_named(dlq_node(d), c->sub_node, PEER_TIMEOUT_MS) != WEFT_OK) {
        fprintf(stderr, PROG ": the DLQ did not see the subscriber node within %d ms\n",
                PEER_TIMEOUT_MS);
        goto out;
    }
    sock = s_dealer(dlq_svc_endpoint(d));
    if (!sock || s_drive(sock, "PUT", c->rargs, c->rargs_size, n, WINDOW) < 0)
        goto out;
    /* RETRY by filter covers exactly the letters stored before it arrived: all n of them. */
    dlq_stats_t st;
    dlq_stats(d, &st);
    uint64_t base = st.resolved;
    /* RETRY {all: true} */
    static const uint8_t all[] = {0x81, 0xa3, 'a', 'l', 'l', 0xc3};
    int64_t t0 = bench_now_ns(), deadline = t0 + (int64_t)STALL_TIMEOUT_MS * 1000000;
    uint64_t seen = 0;
    if (s_send(sock, "RETRY", 1, all, sizeof(all)) != 0)
        goto out;
    int64_t t1 = 0;
    while (!zsys_interrupted) {
        dlq_stats(d, &st);
        int64_t now = bench_now_ns();
        if (st.resolved - base >= n) {
            t1 = now;
            break;
        }
        if (st.resolved - base > seen) { /* progress: the deadline moves */
            seen = st.resolved - base;
            deadline = now + (int64_t)STALL_TIMEOUT_MS * 1000000;
        }
        if (now > deadline) {
            fprintf(stderr, PROG ": %" PRIu64 " of %" PRIu64 " letters resolved, then none "
                            "for %d s (%" PRIu64 " redeliveries sent, %" PRIu64 " failed, %" PRIu64
                            " in flight, %" PRIu64 " held back)\n",
                    st.resolved - base, n, STALL_TIMEOUT_MS / 1000, st.redelivered, st.failed,
                    st.in_flight, st.deferred);
            break;
        }
        s_nap_us(200);
    }
    if (t1 && s_recv(sock, REPLY_TIMEOUT_MS) == 1) {
        rate = (double)n * 1e9 / (double)(t1 - t0);
        if (atomic_load(&handled) < n) {
            fprintf(stderr, PROG ": the handler ran %" PRIu64 " times for %" PRIu64 " letters\n",
                    (uint64_t)atomic_load(&handled), n);
            rate = -1;
        }
    }
out:
    if (sock)
        zmq_close(sock);
    dlq_destroy(&d);
    weft_node_destroy(&sub_node);
    if (!c->o->keep)
        bench_rmtree(PROG, dir);
    return rate;
}

/* ---- the command --------------------------------------------------------------------------- */

static void s_usage(FILE *out)
{
    fprintf(out,
            "usage: weft bench dlq [--letters N] [--passes P] [--size B] [--dir DIR] [--keep]\n"
            "                      [--json]\n\n"
            "Measures the DLQ in this process against raw baselines of the same run, medians\n"
            "over passes:\n"
            "  1. PUT: letters acknowledged per second by a real DLQ over TCP loopback, one at\n"
            "     a time and with %d in flight, per sync policy always/none, each on a fresh\n"
            "     store; next to raw LMDB puts of a record of the size the DLQ stores, one\n"
            "     transaction each with the same sync, and raw ZeroMQ DEALER/ROUTER round trips\n"
            "     of the same request frames (one at a time and %d in flight);\n"
            "  2. redelivery: letters resolved per second after RETRY {all: true}, redelivered\n"
            "     to a subscriber node of this process (found by name through gossip) whose\n"
            "     handler succeeds, %d in flight; each letter is three commits (RETRY,\n"
            "     retrying, resolved), so raw LMDB puts / 3 bound it.\n\n"
            "options:\n"
            "  --letters N  letters per pass, policy and variant (default 2000)\n"
            "  --passes P   passes (default 3)\n"
            "  --size B     event payload bytes (default 100)\n"
            "  --dir DIR    create the run's stores under DIR (default $TMPDIR or /tmp); the\n"
            "               figures for sync always depend on its fsync latency\n"
            "  --keep       keep them\n"
            "  --json       print the results as one JSON line on stdout (progress on stderr)\n"
            "  -h, --help   this help\n",
            WINDOW, WINDOW, WINDOW);
}

#define MED(arr, n, field)                                                                      \
    bench_median_field(arr, (size_t)(n), sizeof(pass_t), offsetof(pass_t, field))

static void s_free_args(uint8_t **a, size_t *s, uint64_t n)
{
    for (uint64_t i = 0; a && i < n; i++)
        free(a[i]);
    free(a);
    free(s);
}

int bench_dlq(int argc, char **argv)
{
    dopts_t o = {.letters = 2000, .passes = 3, .size = 100};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        double v;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            s_usage(stdout);
            return 0;
        } else if (!strcmp(a, "--json")) {
            o.json = true;
        } else if (!strcmp(a, "--keep")) {
            o.keep = true;
        } else if (!strcmp(a, "--letters")) {
            if ((v = bench_count_option(PROG, argc, argv, &i, 1, 1e6)) < 0)
                return 2;
            o.letters = (uint64_t)v;
        } else if (!strcmp(a, "--passes")) {
            if ((v = bench_count_option(PROG, argc, argv, &i, 1, 100)) < 0)
                return 2;
            o.passes = (int)v;
        } else if (!strcmp(a, "--size")) {
            if ((v = bench_count_option(PROG, argc, argv, &i, 0, 1000000)) < 0)
                return 2;
            o.size = (size_t)v;
        } else if (!strcmp(a, "--dir")) {
            if (i + 1 >= argc || !argv[i + 1][0]) {
                fprintf(stderr, PROG ": --dir needs a directory\n");
                return 2;
            }
            o.dir = argv[++i];
        } else {
            fprintf(stderr, PROG ": unknown option '%s'\n\n", a);
            s_usage(stderr);
            return 2;
        }
    }
    FILE *out = o.json ? stderr : stdout;
    dctx_t c;
    memset(&c, 0, sizeof(c));
    c.o = &o;
    snprintf(c.sub_node, sizeof(c.sub_node), "bench-dlq-sub-%d", (int)getpid());
    int status = 1, done = 0;
    pass_t *p = calloc((size_t)o.passes, sizeof(pass_t));
    c.args = calloc(o.letters, sizeof(uint8_t *));
    c.args_size = calloc(o.letters, sizeof(size_t));
    c.rargs = calloc(o.letters, sizeof(uint8_t *));
    c.rargs_size = calloc(o.letters, sizeof(size_t));
    if (!p || !c.args || !c.args_size || !c.rargs || !c.rargs_size) {
        fprintf(stderr, PROG ": out of memory\n");
        goto done;
    }
    for (uint64_t i = 0; i < o.letters; i++)
        if (s_build_args(&c, "bench-absent", i, &c.args[i], &c.args_size[i],
                         &c.envelope_size) != 0 ||
            s_build_args(&c, c.sub_node, i, &c.rargs[i], &c.rargs_size[i], &c.envelope_size) !=
                0) {
            fprintf(stderr, PROG ": cannot prepare the letters\n");
            goto done;
        }

    if (bench_run_dir(PROG, o.dir, "dlq", c.root, sizeof(c.root), NULL) != 0) {
        c.root[0] = 0;
        goto done;
    }
    fprintf(out,
            "weft bench dlq: %" PRIu64 " letters x %d passes; payload %zu B, envelope %zu B, "
            "PUT request %zu B; stores under %s\n",
            o.letters, o.passes, o.size, c.envelope_size, c.args_size[0], c.root);
    fflush(out);

    for (int k = 0; k < o.passes && !zsys_interrupted; k++) {
        pass_t *r = &p[k];
        bool ok = true;
        /* Baselines first on even passes, last on odd ones. */
        bool base_first = k % 2 == 0;
        for (int step = 0; step < 2 && ok && !zsys_interrupted; step++) {
            if ((step == 0) == base_first) {
                ok = s_zmq_run(&c, &r->zmq_seq, &r->zmq_win) == 0;
                for (int q = 0; q < NPOLICIES && ok; q++) {
                    if (!c.record_size) /* the record size comes from a DLQ store */
                        ok = s_put_run(&c, s_policies[q], 1) > 0 && c.record_size > 0;
                    r->lmdb[q] = ok ? s_lmdb_run(&c, s_policies[q] == DLQ_SYNC_ALWAYS,
                                                 c.record_size, o.letters)
                                    : -1;
                    ok = ok && r->lmdb[q] > 0;
                }
            } else {
                for (int q = 0; q < NPOLICIES && ok; q++) {
                    r->put_seq[q] = s_put_run(&c, s_policies[q], 1);
                    r->put_win[q] = r->put_seq[q] > 0 ? s_put_run(&c, s_policies[q], WINDOW) : -1;
                    r->redeliver[q] = r->put_win[q] > 0 ? s_redeliver_run(&c, s_policies[q]) : -1;
                    ok = r->redeliver[q] > 0;
                }
            }
        }
        if (!ok || zsys_interrupted)
            break;
        fprintf(out, "pass %d/%d:", k + 1, o.passes);
        for (int q = 0; q < NPOLICIES; q++)
            fprintf(out,
                    " sync %s: PUT %.0f/s, %d in flight %.0f/s, raw LMDB %.0f/s, redelivery "
                    "%.0f/s;",
                    s_policy_names[q], r->put_seq[q], WINDOW, r->put_win[q], r->lmdb[q],
                    r->redeliver[q]);
        fprintf(out, " raw zmq round trips %.0f/s, %d in flight %.0f/s\n", r->zmq_seq, WINDOW,
                r->zmq_win);
        fflush(out);
        done++;
    }
    if (done == 0) {
        status = zsys_interrupted ? 130 : 1;
        goto done;
    }

    double put_seq[NPOLICIES], put_win[NPOLICIES], lmdb[NPOLICIES], red[NPOLICIES];
    for (int q = 0; q < NPOLICIES; q++) {
        put_seq[q] = MED(p, done, put_seq[q]);
        put_win[q] = MED(p, done, put_win[q]);
        lmdb[q] = MED(p, done, lmdb[q]);
        red[q] = MED(p, done, redeliver[q]);
    }
    double zseq = MED(p, done, zmq_seq), zwin = MED(p, done, zmq_win);
    fprintf(out,
            "\nPUT, letters acknowledged per second (medians of %d pass%s; DLQ record %zu B):\n"
            "  %-8s %12s %14s %16s %14s %14s\n",
            done, done == 1 ? "" : "es", c.record_size, "sync", "sequential", "16 in flight",
            "raw LMDB put/s", "seq / LMDB", "16 / LMDB");
    for (int q = 0; q < NPOLICIES; q++)
        fprintf(out, "  %-8s %12.0f %14.0f %16.0f %14.2f %14.2f\n", s_policy_names[q],
                put_seq[q], put_win[q], lmdb[q], lmdb[q] > 0 ? put_seq[q] / lmdb[q] : 0,
                lmdb[q] > 0 ? put_win[q] / lmdb[q] : 0);
    fprintf(out,
            "  raw ZeroMQ DEALER/ROUTER round trips of the same request: %.0f/s sequential, "
            "%.0f/s with %d in flight\n",
            zseq, zwin, WINDOW);
    fprintf(out,
            "redelivery, letters resolved per second after RETRY all (%d in flight, handler "
            "succeeds; 3 commits per letter):\n",
            WINDOW);
    for (int q = 0; q < NPOLICIES; q++)
        fprintf(out, "  %-8s %12.0f   (raw LMDB put/s / 3 = %.0f)\n", s_policy_names[q], red[q],
                lmdb[q] / 3);
    fflush(out);
    if (o.json) {
        printf("{\"bench\":\"dlq\",\"letters\":%" PRIu64 ",\"passes\":%d,\"passes_done\":%d,"
               "\"size\":%zu,\"envelope_size\":%zu,\"request_size\":%zu,\"record_size\":%zu,"
               "\"window\":%d,\"put\":{",
               o.letters, o.passes, done, o.size, c.envelope_size, c.args_size[0],
               c.record_size, WINDOW);
        for (int q = 0; q < NPOLICIES; q++)
            printf("%s\"%s\":{\"sequential\":%.0f,\"in_flight\":%.0f,\"raw_lmdb\":%.0f}",
                   q ? "," : "", s_policy_names[q], put_seq[q], put_win[q], lmdb[q]);
        printf("},\"raw_zmq\":{\"sequential\":%.0f,\"in_flight\":%.0f},\"redelivery\":{", zseq,
               zwin);
        for (int q = 0; q < NPOLICIES; q++)
            printf("%s\"%s\":%.0f", q ? "," : "", s_policy_names[q], red[q]);
        printf("}}\n");
        fflush(stdout);
    }
    status = zsys_interrupted ? 130 : done < o.passes ? 1 : 0;
done:
    if (c.root[0] && !o.keep)
        bench_rmtree(PROG, c.root);
    s_free_args(c.args, c.args_size, o.letters);
    s_free_args(c.rargs, c.rargs_size, o.letters);
    free(p);
    return status;
}

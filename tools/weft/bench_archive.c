/*  bench_archive.c - `weft bench archive`: performance figures of the archiver, each next to a
    raw baseline measured in the same run; summaries are medians over passes.

    1. Durable ingest. A real archiver (archiver_new, in this process, on a fresh directory) is
       fed by a publisher node over TCP loopback (no gossip, a static connect, like the weft
       variant of `weft bench pubsub`), once per sync policy: always, interval, none. The
       publisher is bounded: it keeps at most INFLIGHT_MAX events published but not yet
       committed (well under both HWMs), so nothing is dropped on the way; an event that went
       missing anyway would be repaired from the publisher's outbox, and both are reported.
       Rate = events / (first publish -> the archive's last offset covers them all).
       Baselines, in the same pass: raw liblmdb MDB_APPEND of the same record bytes (the
       archive's own record layout: receive time, lengths, topic, envelope, payload) in one
       write transaction per batch of the archiver's batch size, with the same sync setting
       (interval: MDB_NOSYNC and a forced sync every second, as the archiver does); and raw
       libzmq PUB/SUB over TCP loopback sending the same three frames flat out
       (received / (first send -> last receive)), the ceiling the design measures against.
    2. Ingest as the archive grows. One archiver (sync always) ingests --passes windows of
       --window events each at archive sizes 0, 1M and --big. Between the points it is filled
       through the same path (publisher -> archiver), whose rate is recorded as well. Right
       after each window, the same window goes into a fresh archive (a second archiver,
       started for it): a run this long sees the machine's speed drift (other load, page
       cache), the pair does not. Reported: the median window rate at each point, rate@big /
       rate@0, and the median of the per-window ratios to the fresh archive.
    3. Memory. RssAnon of this process (the archiver and the publisher node both live here) is
       read from /proc/self/status after every window and fill step of part 2, with the bytes
       malloc holds in use (mallinfo2); the series is printed, and growth from the windows at
       size 0 (by then the publisher's outbox and the queues have filled) to those at --big is
       flagged.
    4. Replay. weft_replay from offset 1 to one client over TCP loopback, counting (and
       checking the order of) events in the callback, next to a raw liblmdb cursor scan of
       the same events of the same archive; a scan through archive_store in the server's
       read transactions of 512 events splits the difference between store and transport.
       Each is timed on its second pass over the range: the first maps the file's pages into
       the process (a fresh environment faults every page in), as in a long-running archiver.
    5. Time to the first event of a replay starting in the middle of the grown archive (send
       -> first callback; weft_replay opens its DEALER per call, so a connect is included),
       next to a raw ZeroMQ DEALER/ROUTER round trip over an open connection and with a fresh
       connection per request.

    Progress goes to stderr; results to stdout (or one JSON line with --json).
*/
#include <czmq.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <lmdb.h>
#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "archive_store.h"
#include "archiver.h"
#include "bench_archive.h"
#include "bench_dir.h"
#include "bench_node.h"
#include "bench_opts.h"
#include "bench_rawzmq.h"
#include "bench_stats.h"
#include "weft.h"

#define PROG "weft bench archive"
#define ARCH_TOPIC "bench.archive"
#define PUB_NAME "bench-pub"
#define BENCH_HWM 100000         /* net/sndhwm and net/rcvhwm, and the raw PUB/SUB HWMs */
#define INFLIGHT_MAX 20000       /* published - committed, at most (a fifth of the HWMs) */
#define READY_TIMEOUT_MS 5000    /* connection + subscription */
#define WARM_TIMEOUT_MS 10000    /* warm-up events committed (a repair may take a heartbeat) */
#define IDLE_END_MS 3000         /* a window ends early after this long without a commit */
#define RAW_IDLE_MS 1000         /* the raw subscriber stops after this long without a message */
#define REPLAY_TIMEOUT_MS 10000
#define TTFE_LIMIT 16            /* events asked for by each first-event replay */
#define TTFE_STRIDE 1009         /* successive first-event replays start this far apart */
#define STORE_SCAN_BATCH 512     /* = CTL_BATCH_EVENTS, the server's events per read txn */
#define MiB (1024.0 * 1024.0)
#define GiB (1024.0 * 1024.0 * 1024.0)

#define ZMQ_RATIO_TARGET 0.5     /* durable ingest (always) / raw libzmq PUB/SUB */
#define GROWTH_TARGET 0.90       /* ingest rate at --big / at 0 */
#define REPLAY_TARGET 1e6        /* events/s to one client */
#define TTFE_TARGET_NS 10000000  /* first event of a mid-archive replay */
#define MEM_FLAT_SHARE 0.10      /* RssAnon growth allowed from @0 to @big: 10 % ... */
#define MEM_FLAT_MIB 8.0         /* ... or 8 MiB, whichever is larger */

static const archive_sync_t s_policies[] = {ARCHIVE_SYNC_ALWAYS, ARCHIVE_SYNC_INTERVAL,
                                            ARCHIVE_SYNC_NONE};
static const char *const s_policy_names[] = {"always", "interval", "none"};
#define NPOLICIES 3

typedef struct {
    uint64_t events;   /* part 1: events per pass, policy and variant */
    int passes;
    uint64_t big;      /* part 2: largest archive size */
    uint64_t window;   /* part 2: events per measured window */
    uint64_t replay;   /* part 4: events per replay pass */
    int samples;       /* part 5: first-event samples over all passes */
    size_t size;       /* payload bytes */
    size_t batch;      /* events per commit, archiver and raw LMDB */
    const char *dir;
    bool keep, json, quick;
    bool fill_store;   /* part 2 fills with archive_store_append, not the archiver */
} arch_opts_t;

/*  The frames every variant sends or stores, and the run's directory. */
typedef struct {
    const arch_opts_t *o;
    uint8_t *envelope;        /* a real envelope of the publisher (same size as its events) */
    size_t envelope_size;
    uint8_t *payload;
    uint8_t *record;          /* the archive's record of such an event (raw LMDB baseline) */
    size_t record_size;
    char root[PATH_MAX];      /* directory of this run; removed at the end unless --keep */
} actx_t;

/* ---- small helpers --------------------------------------------------------------------------- */

static void s_put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static void s_nap_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

/*  CPU time of the whole process (every thread), ns. */
static int64_t s_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/*  RssAnon of this process in KiB, -1 when unknown. */
static long s_rss_anon_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    char line[256];
    long v = -1;
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, "RssAnon:", 8) == 0) {
            v = strtol(line + 8, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}

/*  Heap bytes in use (every malloc arena and mmapped chunk), KiB: tells retained memory
    (RssAnon up, heap flat) from live memory growing. */
static long s_heap_kib(void)
{
    struct mallinfo2 mi = mallinfo2();
    return (long)((mi.uordblks + mi.hblkhd) / 1024);
}

/*  "412k", "1.93M": an events/s figure in the summary style. */
static const char *s_rate(char *buf, size_t cap, double v)
{
    if (v >= 1e6)
        snprintf(buf, cap, "%.2fM", v / 1e6);
    else if (v >= 1e3)
        snprintf(buf, cap, "%.0fk", v / 1e3);
    else
        snprintf(buf, cap, "%.0f", v);
    return buf;
}
#define RATE(v) s_rate((char[24]){0}, 24, (v))

/*  "10M", "200k", "1.5M": an event count. */
static const char *s_count(char *buf, size_t cap, double v)
{
    if (v >= 1e6)
        snprintf(buf, cap, fmod(v, 1e6) == 0 ? "%.0fM" : "%.2fM", v / 1e6);
    else if (v >= 1e3)
        snprintf(buf, cap, fmod(v, 1e3) == 0 ? "%.0fk" : "%.1fk", v / 1e3);
    else
        snprintf(buf, cap, "%.0f", v);
    return buf;
}
#define COUNT(v) s_count((char[24]){0}, 24, (double)(v))

static double s_median(const double *v, int n)
{
    double tmp[n > 0 ? n : 1];
    memcpy(tmp, v, (size_t)n * sizeof(double));
    return bench_median(tmp, (size_t)n);
}

/*  Disk space used by the files of dir (not recursive: an archive directory), bytes. */
static uint64_t s_dir_usage(const char *dir)
{
    const char *names[] = {"data.mdb", "lock.mdb"};
    uint64_t total = 0;
    for (size_t i = 0; i < 2; i++) {
        char path[PATH_MAX + 64];
        struct stat st;
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        if (stat(path, &st) == 0)
            total += (uint64_t)st.st_blocks * 512;
    }
    return total;
}

/* ---- raw libzmq PUB/SUB ---------------------------------------------------------------------- */

typedef struct {
    double evs;
    uint64_t lost;
    double cpu_ns;    /* process CPU per received event */
} zres_t;

/*  Raw PUB -> SUB over TCP loopback, n messages of the three frames, flat out. */
static int s_raw_zmq(const actx_t *c, uint64_t n, zres_t *r)
{
    memset(r, 0, sizeof(*r));
    int rc = -1;
    const bench_frames_t f = {ARCH_TOPIC, sizeof(ARCH_TOPIC) - 1, c->envelope, c->envelope_size,
                              c->payload, c->o->size};
    bench_rawzmq_t z;
    int zrc = bench_rawzmq_open(&z, ARCH_TOPIC, BENCH_HWM);
    if (zrc == -2)
        fprintf(stderr, "weft bench archive: raw zmq: cannot bind/connect: %s\n",
                zmq_strerror(zmq_errno()));
    if (zrc != 0)
        goto out;
    /* Warm-up: until one message arrives (connected, subscribed), then drain. */
    if (bench_rawzmq_warm_up(&z, &f, READY_TIMEOUT_MS) != 0) {
        fprintf(stderr, "weft bench archive: raw zmq: no subscription within %d ms\n",
                READY_TIMEOUT_MS);
        goto out;
    }
    if (bench_rawzmq_receive(&z, n, RAW_IDLE_MS) != 0)
        goto out;
    int64_t cpu0 = s_cpu_ns(), first = bench_now_ns();
    uint64_t sent = 0;
    for (; sent < n; sent++) {
        if ((sent & 4095) == 0 && zsys_interrupted)
            break;
        bench_rawzmq_send(&z, &f);
    }
    bench_rawzmq_wait(&z);
    int64_t cpu = s_cpu_ns() - cpu0;
    r->lost = sent > z.rx.received ? sent - z.rx.received : 0;
    r->evs = z.rx.received && z.rx.last_ns > first
                 ? (double)z.rx.received * 1e9 / (double)(z.rx.last_ns - first)
                 : 0;
    /* The idle timeout at the end is CPU-free: the per-event figure stays honest. */
    r->cpu_ns = z.rx.received ? (double)cpu / (double)z.rx.received : 0;
    rc = 0;
out:
    bench_rawzmq_close(&z);
    return rc;
}

/* ---- raw LMDB ------------------------------------------------------------------------------- */

/*  Appends n records (the archive's record bytes) with MDB_APPEND, batch per write
    transaction, under the sync setting of policy; removes the environment afterwards. */
static int s_raw_lmdb(const actx_t *c, const char *dir, uint64_t n, archive_sync_t policy,
                      double *evs)
{
    *evs = 0;
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "weft bench archive: mkdir %s: %s\n", dir, strerror(errno));
        return -1;
    }
    MDB_env *env = NULL;
    MDB_dbi dbi;
    MDB_txn *txn = NULL;
    int rc = mdb_env_create(&env);
    size_t map = (size_t)((double)n * ((double)c->record_size + 64) * 1.5) + (64u << 20);
    if (!rc)
        rc = mdb_env_set_mapsize(env, map);
    unsigned flags = MDB_NOTLS;
    if (policy == ARCHIVE_SYNC_INTERVAL)
        flags |= MDB_NOSYNC;
    else if (policy == ARCHIVE_SYNC_NONE)
        flags |= MDB_NOSYNC | MDB_NOMETASYNC;
    if (!rc)
        rc = mdb_env_open(env, dir, flags, 0644);
    if (!rc)
        rc = mdb_txn_begin(env, NULL, 0, &txn);
    if (!rc)
        rc = mdb_dbi_open(txn, NULL, 0, &dbi);
    if (!rc)
        rc = mdb_txn_commit(txn);
    txn = NULL;
    const char *what = "open";
    int64_t t0 = bench_now_ns(), last_sync = t0;
    uint64_t off = 1;
    while (!rc && off <= n) {
        if ((off & 0xffff) == 1 && zsys_interrupted)
            break;
        what = "append";
        rc = mdb_txn_begin(env, NULL, 0, &txn);
        for (size_t j = 0; !rc && j < c->o->batch && off <= n; j++, off++) {
            uint8_t kb[8];
            s_put_u64(kb, off);
            MDB_val k = {8, kb}, v = {c->record_size, NULL};
            rc = mdb_put(txn, dbi, &k, &v, MDB_APPEND | MDB_RESERVE);
            if (!rc) {
                memcpy(v.mv_data, c->record, c->record_size);
                s_put_u64(v.mv_data, (uint64_t)weft_now_ns()); /* receive time, as archived */
            }
        }
        if (rc) {
            mdb_txn_abort(txn);
            break;
        }
        rc = mdb_txn_commit(txn);
        if (!rc && policy == ARCHIVE_SYNC_INTERVAL) {
            int64_t now = bench_now_ns();
            if (now - last_sync >= 1000000000LL) {
                rc = mdb_env_sync(env, 1);
                last_sync = now;
            }
        }
    }
    int64_t t1 = bench_now_ns();
    if (rc)
        fprintf(stderr, "weft bench archive: raw LMDB %s in %s: %s\n", what, dir,
                mdb_strerror(rc));
    else if (off > 1 && t1 > t0)
        *evs = (double)(off - 1) * 1e9 / (double)(t1 - t0);
    if (env)
        mdb_env_close(env);
    bench_rmtree(PROG, dir);
    return rc ? -1 : 0;
}

static volatile uint64_t s_sink;

/*  Raw cursor scan of the events database of an archive: n records from offset 1, each
    record's header read (lengths) so its page is touched. */
static int s_raw_scan(const char *dir, uint64_t n, double *evs, uint64_t *seen)
{
    *evs = 0;
    *seen = 0;
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_dbi dbi;
    int rc = mdb_env_create(&env);
    if (!rc)
        rc = mdb_env_set_maxdbs(env, 8);
    if (!rc)
        rc = mdb_env_open(env, dir, MDB_RDONLY | MDB_NOTLS, 0644);
    if (!rc)
        rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
    if (!rc)
        rc = mdb_dbi_open(txn, "events", 0, &dbi);
    if (!rc)
        rc = mdb_cursor_open(txn, dbi, &cur);
    if (rc) {
        fprintf(stderr, "weft bench archive: raw LMDB scan of %s: %s\n", dir, mdb_strerror(rc));
        if (txn)
            mdb_txn_abort(txn);
        if (env)
            mdb_env_close(env);
        return -1;
    }
    uint64_t count = 0, bytes = 0;
    int64_t t0 = 0, t1 = 0;
    for (int round = 0; round < 2; round++) { /* the first maps the pages in: untimed */
        uint8_t kb[8];
        s_put_u64(kb, 1);
        MDB_val k = {8, kb}, v;
        count = 0;
        t0 = bench_now_ns();
        int g = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
        while (g == MDB_SUCCESS && count < n) {
            const uint8_t *p = v.mv_data;
            if (v.mv_size >= 13)
                bytes += p[8] + ((uint32_t)p[9] << 24 | (uint32_t)p[10] << 16 |
                                 (uint32_t)p[11] << 8 | p[12]);
            count++;
            if (count < n)
                g = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
        }
        t1 = bench_now_ns();
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    mdb_env_close(env);
    s_sink = bytes; /* keeps the loads */
    *seen = count;
    *evs = t1 > t0 ? (double)count * 1e9 / (double)(t1 - t0) : 0;
    return 0;
}

typedef struct {
    uint64_t n, want, bytes;
} scan_ctx_t;

static int s_scan_cb(const archive_rec_t *rec, void *arg)
{
    scan_ctx_t *s = arg;
    s->n++;
    s->bytes += rec->topic_size + rec->envelope_size + rec->payload_size;
    return s->n >= s->want;
}

/*  The same events through archive_store, one read transaction per STORE_SCAN_BATCH events
    (how the server fills its EVENTS batches). */
static int s_store_scan(const char *dir, uint64_t n, double *evs)
{
    *evs = 0;
    archive_opts_t ao = {.dir = dir, .read_only = true};
    int err = 0;
    char why[512] = "";
    archive_store_t *s = archive_store_open(&ao, &err, why, sizeof(why));
    if (!s) {
        fprintf(stderr, "weft bench archive: store scan of %s: %s\n", dir, why);
        return -1;
    }
    archive_reader_t *r = archive_reader_new(s);
    scan_ctx_t sc = {0, n, 0};
    int rc = 0;
    int64_t t0 = 0, t1 = 0;
    for (int round = 0; round < 2 && rc == 0; round++) { /* the first maps the pages in */
        uint64_t next = 1;
        sc.n = 0;
        t0 = bench_now_ns();
        while (rc == 0 && sc.n < n) {
            uint64_t before = sc.n, from = next;
            rc = archive_reader_begin(r);
            if (rc == 0) {
                size_t max =
                    n - sc.n < STORE_SCAN_BATCH ? (size_t)(n - sc.n) : STORE_SCAN_BATCH;
                rc = archive_scan(r, from, UINT64_MAX, NULL, 0, max, s_scan_cb, &sc, &next);
                archive_reader_end(r);
            }
            if (sc.n == before)
                break; /* the end of the archive */
        }
        t1 = bench_now_ns();
    }
    archive_reader_destroy(&r);
    archive_store_close(&s);
    if (rc) {
        fprintf(stderr, "weft bench archive: store scan of %s: %s\n", dir, weft_strerror(rc));
        return -1;
    }
    *evs = t1 > t0 ? (double)sc.n * 1e9 / (double)(t1 - t0) : 0;
    return 0;
}

/* ---- an archiver and its publisher ----------------------------------------------------------- */

typedef struct {
    archiver_t *arch;
    weft_node_t *pub;
    uint64_t published;
} rig_t;

/*  A node for the benchmark: no gossip, no loopback, the benchmark's HWMs, a static peer. */
static weft_node_t *s_pub_node(const char *connect)
{
    int rc = 0;
    weft_node_t *node = bench_node_new(PUB_NAME, BENCH_HWM, connect, &rc);
    if (!node)
        fprintf(stderr, "weft bench archive: cannot start the publisher node: %s\n",
                weft_strerror(rc));
    return node;
}

static void s_rig_stop(rig_t *g)
{
    weft_node_destroy(&g->pub);
    archiver_destroy(&g->arch);
}

/*  Starts an archiver on dir (in this process) and, if wanted, a publisher connected to it;
    publishes warm-up events until they are all committed. */
static int s_rig_start(rig_t *g, const actx_t *c, const char *dir, archive_sync_t sync,
                       bool publisher)
{
    memset(g, 0, sizeof(*g));
    weft_config_t *cfg = weft_config_new();
    char hwm[32];
    snprintf(hwm, sizeof(hwm), "%d", BENCH_HWM);
    int rc = cfg ? WEFT_OK : WEFT_ENOMEM;
    if (rc == WEFT_OK)
        rc = weft_config_set(cfg, "gossip/seeds", "none");
    if (rc == WEFT_OK)
        rc = weft_config_set(cfg, "gossip/bind", "none");
    if (rc == WEFT_OK)
        rc = weft_config_set(cfg, "net/rcvhwm", hwm);
    /* Only this benchmark's topic: on a shared machine, nodes of other processes may still
       reconnect to an ephemeral port this archiver now holds, and must not add events. */
    static const char *const prefixes[] = {ARCH_TOPIC};
    archiver_opts_t ao = {.dir = dir, .name = "bench-archiver", .config = cfg,
                          .prefixes = prefixes, .nprefixes = 1,
                          .batch_events = c->o->batch, .sync = sync};
    int err = rc;
    char why[512] = "";
    if (rc == WEFT_OK)
        g->arch = archiver_new(&ao, &err, why, sizeof(why));
    weft_config_destroy(&cfg);
    if (!g->arch) {
        fprintf(stderr, "weft bench archive: cannot start the archiver on %s: %s\n", dir,
                why[0] ? why : weft_strerror(err));
        return -1;
    }
    if (!publisher)
        return 0;
    g->pub = s_pub_node(weft_node_sub_endpoint(archiver_node(g->arch)));
    if (!g->pub)
        goto fail;
    if (weft_node_wait_peers(g->pub, READY_TIMEOUT_MS) < 1) {
        fprintf(stderr, "weft bench archive: the archiver's node was not ready within %d ms\n",
                READY_TIMEOUT_MS);
        goto fail;
    }
    /* Warm-up: events until one is committed, then until all of them are (a lost one is
       repaired from the outbox once the archiver has heard the publisher's heartbeat). */
    archiver_stats_t st;
    archiver_stats(g->arch, &st);
    uint64_t base = st.last_offset;
    int64_t deadline = bench_now_ns() + (int64_t)READY_TIMEOUT_MS * 1000000;
    do {
        if (weft_publish(g->pub, ARCH_TOPIC, c->payload, c->o->size, NULL, NULL) < 0) {
            fprintf(stderr, "weft bench archive: warm-up publish failed\n");
            goto fail;
        }
        g->published++;
        zclock_sleep(2);
        archiver_stats(g->arch, &st);
    } while (st.last_offset == base && bench_now_ns() < deadline && !zsys_interrupted);
    deadline = bench_now_ns() + (int64_t)WARM_TIMEOUT_MS * 1000000;
    while (st.last_offset - base < g->published && bench_now_ns() < deadline &&
           !zsys_interrupted) {
        zclock_sleep(5);
        archiver_stats(g->arch, &st);
    }
    if (st.last_offset - base < g->published) {
        if (zsys_interrupted)
            goto fail;
        fprintf(stderr, "weft bench archive: %" PRIu64 " of %" PRIu64
                        " warm-up events were not archived within %d ms\n",
                g->published - (st.last_offset - base), g->published, WARM_TIMEOUT_MS);
        goto fail;
    }
    return 0;
fail:
    s_rig_stop(g);
    return -1;
}

/*  One measured window of ingest. */
typedef struct {
    double evs;             /* committed / (first publish -> all committed) */
    double cpu_ns;          /* process CPU per committed event */
    uint64_t sent, committed, lost;
    uint64_t repaired, unrepaired, duplicates, batches, send_errors, commit_errors;
    double commit_p50_us, commit_p99_us; /* archiver's last 1024 commits */
    uint64_t archive_before; /* last offset when the window began */
} win_t;

/*  Publish calls and commits that failed over the whole run (reported when not zero). */
static uint64_t s_publish_errors, s_commit_errors;

/*  Publishes n events, at most INFLIGHT_MAX ahead of the archive's last committed offset,
    and waits until the archive holds all of them (or IDLE_END_MS passes without a commit). */
static int s_window(rig_t *g, const actx_t *c, uint64_t n, win_t *w)
{
    memset(w, 0, sizeof(*w));
    archiver_stats_t st0, st;
    archiver_stats(g->arch, &st0);
    uint64_t base = st0.last_offset, done = 0;
    w->archive_before = base;
    int64_t cpu0 = s_cpu_ns(), t0 = bench_now_ns();
    uint64_t i = 0;
    for (; i < n; i++) {
        /* archiver_stats sorts the last 1024 commit times: look every 4096 events only. */
        if ((i & 4095) == 0) {
            if (zsys_interrupted)
                break;
            archiver_stats(g->arch, &st);
            done = st.last_offset - base;
            while (i > done && i - done >= INFLIGHT_MAX && !zsys_interrupted) {
                s_nap_us(1000);
                archiver_stats(g->arch, &st);
                done = st.last_offset - base;
            }
        }
        if (weft_publish(g->pub, ARCH_TOPIC, c->payload, c->o->size, NULL, NULL) < 0)
            w->send_errors++;
    }
    uint64_t sent = i;
    g->published += sent;
    int64_t last_progress = bench_now_ns(), t_end;
    while (1) {
        archiver_stats(g->arch, &st);
        uint64_t now_done = st.last_offset - base;
        int64_t now = bench_now_ns();
        if (now_done >= sent) {
            t_end = now;
            done = now_done;
            break;
        }
        if (now_done != done) {
            done = now_done;
            last_progress = now;
        } else if (now - last_progress > (int64_t)IDLE_END_MS * 1000000 || zsys_interrupted) {
            t_end = last_progress;
            break;
        }
        s_nap_us(1000);
    }
    int64_t cpu = s_cpu_ns() - cpu0;
    w->sent = sent;
    w->committed = done < sent ? done : sent;
    w->lost = sent - w->committed;
    w->evs = t_end > t0 ? (double)w->committed * 1e9 / (double)(t_end - t0) : 0;
    w->cpu_ns = w->committed ? (double)cpu / (double)w->committed : 0;
    w->repaired = st.repaired - st0.repaired;
    w->unrepaired = st.unrepaired - st0.unrepaired;
    w->duplicates = st.duplicates - st0.duplicates;
    w->batches = st.batches - st0.batches;
    w->commit_errors = st.commit_errors - st0.commit_errors;
    s_publish_errors += w->send_errors;
    s_commit_errors += w->commit_errors;
    w->commit_p50_us = (double)st.commit_p50_us;
    w->commit_p99_us = (double)st.commit_p99_us;
    return 0;
}

/* ---- replay and round trips ------------------------------------------------------------------ */

typedef struct {
    uint64_t n, expect_offset, out_of_order, bytes;
    int64_t first_ns;
} replay_ctx_t;

static int s_replay_cb(const weft_archived_t *ev, void *arg)
{
    replay_ctx_t *r = arg;
    if (r->n++ == 0)
        r->first_ns = bench_now_ns();
    if (ev->offset != r->expect_offset)
        r->out_of_order++;
    r->expect_offset = ev->offset + 1;
    r->bytes += ev->topic_size + ev->envelope_size + ev->payload_size;
    return 0;
}

/*  A ROUTER that echoes every message, on its own thread. */
typedef struct {
    char endpoint[256];
} echo_args_t;

static void s_echo_actor(zsock_t *pipe, void *args)
{
    echo_args_t *ea = args;
    zsock_t *router = zsock_new(ZMQ_ROUTER);
    if (!router || zsock_bind(router, "tcp://127.0.0.1:*") < 0) {
        zsock_destroy(&router);
        zsock_signal(pipe, 1);
        return;
    }
    zsock_set_linger(router, 0);
    snprintf(ea->endpoint, sizeof(ea->endpoint), "%s", zsock_endpoint(router));
    zsock_signal(pipe, 0);
    void *rs = zsock_resolve(router);
    zmq_pollitem_t items[2] = {{zsock_resolve(pipe), 0, ZMQ_POLLIN, 0}, {rs, 0, ZMQ_POLLIN, 0}};
    zmq_msg_t m;
    zmq_msg_init(&m);
    while (zmq_poll(items, 2, -1) >= 0) {
        if (items[0].revents & ZMQ_POLLIN)
            break; /* $TERM */
        while (zmq_msg_recv(&m, rs, ZMQ_DONTWAIT) >= 0) {
            int more;
            do {
                more = zmq_msg_more(&m);
                zmq_msg_send(&m, rs, more ? ZMQ_SNDMORE : 0);
                if (more && zmq_msg_recv(&m, rs, 0) < 0)
                    more = 0;
            } while (more);
        }
    }
    zmq_msg_close(&m);
    zsock_destroy(&router);
}

/*  Round trips of a small request to the echo ROUTER: over one open DEALER connection
    (open[]), and with a new DEALER per request, from zsock_new to the reply (fresh[]). */
static int s_raw_rtt(const char *endpoint, int n, uint32_t *open, uint32_t *fresh)
{
    char req[32];
    memset(req, 'r', sizeof(req));
    char buf[64];
    zsock_t *d = zsock_new(ZMQ_DEALER);
    if (!d || zsock_connect(d, "%s", endpoint) < 0) {
        zsock_destroy(&d);
        return -1;
    }
    zsock_set_linger(d, 0);
    zsock_set_rcvtimeo(d, 2000);
    void *ds = zsock_resolve(d);
    for (int i = 0; i < n + 20; i++) { /* 20 warm-up round trips */
        int64_t t0 = bench_now_ns();
        if (zmq_send(ds, req, sizeof(req), 0) < 0 || zmq_recv(ds, buf, sizeof(buf), 0) < 0) {
            zsock_destroy(&d);
            return -1;
        }
        if (i >= 20)
            open[i - 20] = bench_sample(bench_now_ns() - t0);
    }
    zsock_destroy(&d);
    for (int i = 0; i < n; i++) {
        int64_t t0 = bench_now_ns();
        zsock_t *f = zsock_new(ZMQ_DEALER);
        if (!f || zsock_connect(f, "%s", endpoint) < 0) {
            zsock_destroy(&f);
            return -1;
        }
        zsock_set_linger(f, 0);
        zsock_set_rcvtimeo(f, 2000);
        int ok = zmq_send(zsock_resolve(f), req, sizeof(req), 0) >= 0 &&
                 zmq_recv(zsock_resolve(f), buf, sizeof(buf), 0) >= 0;
        fresh[i] = bench_sample(bench_now_ns() - t0);
        zsock_destroy(&f);
        if (!ok)
            return -1;
    }
    return 0;
}

/* ---- the parts ------------------------------------------------------------------------------- */

typedef struct {
    zres_t zmq;
    win_t weft[NPOLICIES];
    double lmdb[NPOLICIES];
} ingest_pass_t;

typedef struct {
    uint64_t at;       /* archive events when the step began */
    uint64_t events;
    double evs;
    long rss_kib;      /* after the step */
    long heap_kib;     /* malloc'd bytes in use after the step */
    bool window;       /* measured window (else a fill step) */
    int point;         /* the growth point it measures or fills towards */
} step_t;

typedef struct {
    uint64_t size;     /* the point: archive size the windows start at */
    double *evs;       /* per pass */
    double *cpu_ns;
    double *p99_us;
    double *ref_evs;   /* per pass: a window on a fresh archive, measured right after */
    uint64_t start;    /* archive size the first window really started at */
} point_t;

typedef struct {
    double weft, raw, store, cpu_ns;
    uint64_t got, disorder;
} replay_pass_t;

typedef struct {
    ingest_pass_t *ingest;
    int ingest_done;
    point_t points[3];
    int npoints;
    step_t *steps;
    int nsteps, steps_cap;
    uint64_t grown;           /* archive events at the end of part 2 */
    uint64_t grown_disk;      /* bytes its files use */
    double fill_evs;          /* median fill-step rate */
    uint64_t growth_lost, growth_repaired;
    replay_pass_t *replay;
    int replay_done;
    uint32_t *ttfe, *rtt_open, *rtt_fresh;
    int nttfe, nrtt;
    uint64_t ttfe_bad;        /* first-event replays that failed or started elsewhere */
    uint64_t replay_n;
} results_t;

static void s_step(results_t *R, uint64_t at, const win_t *w, bool window, int point)
{
    if (R->nsteps == R->steps_cap) {
        int cap = R->steps_cap ? R->steps_cap * 2 : 64;
        step_t *s = realloc(R->steps, (size_t)cap * sizeof(step_t));
        if (!s)
            return;
        R->steps = s;
        R->steps_cap = cap;
    }
    R->steps[R->nsteps++] =
        (step_t){at, w->committed, w->evs, s_rss_anon_kib(), s_heap_kib(), window, point};
}

/*  Part 1: durable ingest per sync policy vs raw LMDB and raw zmq. */
static int s_part_ingest(const actx_t *c, results_t *R, FILE *out)
{
    const arch_opts_t *o = c->o;
    for (int p = 0; p < o->passes && !zsys_interrupted; p++) {
        ingest_pass_t *ip = &R->ingest[p];
        bool zmq_first = p % 2 == 0;
        if (zmq_first && s_raw_zmq(c, o->events, &ip->zmq) != 0)
            return -1;
        for (int k = 0; k < NPOLICIES && !zsys_interrupted; k++) {
            char dir[PATH_MAX + 32];
            bool weft_first = (p + k) % 2 == 0;
            for (int v = 0; v < 2; v++) {
                if ((v == 0) == weft_first) {
                    snprintf(dir, sizeof(dir), "%s/ingest-%s", c->root, s_policy_names[k]);
                    rig_t g;
                    fprintf(stderr, "  ingest pass %d/%d: weft, sync %s ...\n", p + 1, o->passes,
                            s_policy_names[k]);
                    if (s_rig_start(&g, c, dir, s_policies[k], true) != 0)
                        return -1;
                    s_window(&g, c, o->events, &ip->weft[k]);
                    s_rig_stop(&g);
                    bench_rmtree(PROG, dir);
                } else {
                    snprintf(dir, sizeof(dir), "%s/lmdb-%s", c->root, s_policy_names[k]);
                    if (s_raw_lmdb(c, dir, o->events, s_policies[k], &ip->lmdb[k]) != 0)
                        return -1;
                }
            }
        }
        if (!zmq_first && !zsys_interrupted && s_raw_zmq(c, o->events, &ip->zmq) != 0)
            return -1;
        if (zsys_interrupted)
            break;
        for (int k = 0; k < NPOLICIES; k++) {
            const win_t *w = &ip->weft[k];
            fprintf(out,
                    "ingest pass %d/%d sync %-8s weft %s ev/s (lost %" PRIu64 " repaired %" PRIu64
                    ", %.0f ev/commit, commit p50 %.2f p99 %.2f ms, cpu %.2f us/ev) | raw LMDB "
                    "%s ev/s | raw zmq %s ev/s (lost %" PRIu64 ", cpu %.2f us/ev) | ratio to zmq "
                    "%.2f to LMDB %.2f\n",
                    p + 1, o->passes, s_policy_names[k], RATE(w->evs), w->lost, w->repaired,
                    w->batches ? (double)w->committed / (double)w->batches : 0,
                    w->commit_p50_us / 1e3, w->commit_p99_us / 1e3, w->cpu_ns / 1e3,
                    RATE(ip->lmdb[k]), RATE(ip->zmq.evs), ip->zmq.lost, ip->zmq.cpu_ns / 1e3,
                    ip->zmq.evs > 0 ? w->evs / ip->zmq.evs : 0,
                    ip->lmdb[k] > 0 ? w->evs / ip->lmdb[k] : 0);
        }
        fflush(out);
        R->ingest_done++;
    }
    return 0;
}

#define FILL_BATCH 10000
#define FILL_ENV_CAP 256

/*  --fill store: appends n events of a source of its own straight to the store (the archiver
    is stopped meanwhile), FILL_BATCH per transaction, sync none (closing syncs once). */
static int s_store_fill(const actx_t *c, const char *dir, uint64_t n, double *evs)
{
    *evs = 0;
    archive_opts_t ao = {.dir = dir, .sync = ARCHIVE_SYNC_NONE};
    int err = 0;
    char why[512] = "";
    archive_store_t *s = archive_store_open(&ao, &err, why, sizeof(why));
    archive_in_t *ev = calloc(FILL_BATCH, sizeof(*ev));
    uint8_t *envs = malloc((size_t)FILL_BATCH * FILL_ENV_CAP);
    uint8_t *ids = malloc((size_t)FILL_BATCH * WEFT_ID_SIZE);
    int rc = -1;
    if (!s || !ev || !envs || !ids) {
        fprintf(stderr, "weft bench archive: store fill of %s: %s\n", dir,
                why[0] ? why : "out of memory");
        goto out;
    }
    weft_envelope_t env;
    weft_envelope_init(&env);
    snprintf(env.src, sizeof(env.src), "bench-fill");
    uint8_t rnd[WEFT_ID_SIZE];
    weft_id_new(rnd);
    memcpy(&env.inst, rnd + 8, sizeof(env.inst));
    int64_t t0 = bench_now_ns();
    uint64_t done = 0;
    while (done < n && !zsys_interrupted) {
        size_t m = n - done < FILL_BATCH ? (size_t)(n - done) : FILL_BATCH;
        for (size_t j = 0; j < m; j++) {
            env.seq = done + j + 1;
            env.ts = weft_now_ns();
            weft_id_new(env.id);
            uint8_t *eb = envs + j * FILL_ENV_CAP;
            int es = weft_envelope_encode(&env, eb, FILL_ENV_CAP);
            if (es < 0)
                goto out;
            memcpy(ids + j * WEFT_ID_SIZE, env.id, WEFT_ID_SIZE);
            ev[j] = (archive_in_t){ARCH_TOPIC, sizeof(ARCH_TOPIC) - 1, eb, (size_t)es,
                                   c->payload, c->o->size, env.inst, env.seq,
                                   ids + j * WEFT_ID_SIZE, env.ts};
        }
        archive_append_result_t res;
        int r = archive_store_append(s, ev, m, &res);
        if (r != WEFT_OK) {
            fprintf(stderr, "weft bench archive: store fill: %s (%s)\n", weft_strerror(r),
                    archive_store_last_error(s));
            goto out;
        }
        done += m;
    }
    int64_t t1 = bench_now_ns();
    *evs = t1 > t0 ? (double)done * 1e9 / (double)(t1 - t0) : 0;
    rc = 0;
out:
    archive_store_close(&s);
    free(ev);
    free(envs);
    free(ids);
    return rc;
}

/*  Part 2 and 3: windows at archive sizes 0, 1M, big; fill between (through the archiver, or
    with --fill store straight into the store); RssAnon after every step. The archive stays for
    parts 4 and 5. */
static int s_part_growth(const actx_t *c, results_t *R, const char *dir, FILE *out)
{
    const arch_opts_t *o = c->o;
    uint64_t sizes[3];
    int np = 0;
    sizes[np++] = 0;
    if (o->big > 1000000)
        sizes[np++] = 1000000;
    sizes[np++] = o->big;
    R->npoints = np;
    rig_t g;
    if (s_rig_start(&g, c, dir, ARCHIVE_SYNC_ALWAYS, true) != 0)
        return -1;
    long rss0 = s_rss_anon_kib();
    fprintf(out, "growth: archiver up (sync always), RssAnon %.1f MiB before the first window\n",
            rss0 / 1024.0);
    uint64_t step = o->big / 20 > o->window ? o->big / 20 : o->window;
    char ref_dir[PATH_MAX + 32];
    snprintf(ref_dir, sizeof(ref_dir), "%s-fresh", dir);
    double fills[64];
    int nfills = 0;
    int rc = 0;
    for (int k = 0; k < np && !zsys_interrupted && rc == 0; k++) {
        point_t *pt = &R->points[k];
        pt->size = sizes[k];
        if (o->fill_store && k > 0 && !zsys_interrupted) {
            archiver_stats_t st;
            archiver_stats(g.arch, &st);
            if (st.last_offset < sizes[k]) {
                win_t w = {.archive_before = st.last_offset,
                           .committed = sizes[k] - st.last_offset};
                s_rig_stop(&g);
                fprintf(stderr, "  store fill %s -> %s ...\n", COUNT(w.archive_before),
                        COUNT(sizes[k]));
                if (s_store_fill(c, dir, w.committed, &w.evs) != 0 ||
                    s_rig_start(&g, c, dir, ARCHIVE_SYNC_ALWAYS, true) != 0)
                    return -1;
                s_step(R, w.archive_before, &w, false, k);
                if (nfills < 64)
                    fills[nfills++] = w.evs;
            }
        }
        /* Fill up to the point through the same path, in steps (rate and memory recorded). */
        while (!zsys_interrupted) {
            archiver_stats_t st;
            archiver_stats(g.arch, &st);
            if (st.last_offset >= sizes[k])
                break;
            uint64_t n = sizes[k] - st.last_offset < step ? sizes[k] - st.last_offset : step;
            win_t w;
            s_window(&g, c, n, &w);
            s_step(R, w.archive_before, &w, false, k);
            R->growth_lost += w.lost;
            R->growth_repaired += w.repaired;
            if (nfills < 64)
                fills[nfills++] = w.evs;
            fprintf(stderr, "  fill %s -> %s: %s ev/s, RssAnon %.1f MiB\n",
                    COUNT(w.archive_before), COUNT(w.archive_before + w.committed), RATE(w.evs),
                    R->steps[R->nsteps - 1].rss_kib / 1024.0);
            if (w.committed == 0) {
                fprintf(stderr, "weft bench archive: the archiver stopped committing\n");
                rc = -1;
                break;
            }
        }
        for (int p = 0; p < o->passes && !zsys_interrupted && rc == 0; p++) {
            win_t w;
            s_window(&g, c, o->window, &w);
            s_step(R, w.archive_before, &w, true, k);
            R->growth_lost += w.lost;
            R->growth_repaired += w.repaired;
            if (p == 0)
                pt->start = w.archive_before;
            pt->evs[p] = w.evs;
            pt->cpu_ns[p] = w.cpu_ns;
            pt->p99_us[p] = w.commit_p99_us;
            long rss = R->steps[R->nsteps - 1].rss_kib;
            /* The same window on a fresh archive right after: the machine's speed drifts
               over a run this long, the pair does not. */
            rig_t rg;
            win_t rw;
            if (s_rig_start(&rg, c, ref_dir, ARCHIVE_SYNC_ALWAYS, true) != 0) {
                rc = -1;
                break;
            }
            s_window(&rg, c, o->window, &rw);
            s_rig_stop(&rg);
            bench_rmtree(PROG, ref_dir);
            pt->ref_evs[p] = rw.evs;
            fprintf(out,
                    "growth window %d/%d at %s events: %s ev/s (lost %" PRIu64
                    ", commit p50 %.2f p99 %.2f ms, cpu %.2f us/ev) | RssAnon %.1f MiB | fresh "
                    "archive %s ev/s (commit p50 %.2f ms) | ratio %.2f\n",
                    p + 1, o->passes, COUNT(w.archive_before), RATE(w.evs), w.lost,
                    w.commit_p50_us / 1e3, w.commit_p99_us / 1e3, w.cpu_ns / 1e3, rss / 1024.0,
                    RATE(rw.evs), rw.commit_p50_us / 1e3, rw.evs > 0 ? w.evs / rw.evs : 0);
            fflush(out);
        }
    }
    archiver_stats_t st;
    archiver_stats(g.arch, &st);
    R->grown = st.last_offset;
    R->fill_evs = s_median(fills, nfills);
    s_rig_stop(&g);
    R->grown_disk = s_dir_usage(dir);
    return rc;
}

/*  Parts 4 and 5 on the grown archive; each pass alternates which block goes first: the weft
    block (archiver up: replay, first-event samples, raw round trips) and the raw block
    (archiver down: raw LMDB scan, store scan). */
static int s_part_replay(const actx_t *c, results_t *R, const char *dir, FILE *out)
{
    const arch_opts_t *o = c->o;
    uint64_t n = o->replay < R->grown ? o->replay : R->grown;
    R->replay_n = n;
    uint64_t mid = R->grown / 2 ? R->grown / 2 : 1;
    int per_pass = (o->samples + o->passes - 1) / o->passes;
    echo_args_t ea = {{0}};
    zactor_t *echo = zactor_new(s_echo_actor, &ea);
    if (!echo || !ea.endpoint[0]) {
        fprintf(stderr, "weft bench archive: cannot start the echo ROUTER\n");
        zactor_destroy(&echo);
        return -1;
    }
    int rc = 0;
    for (int p = 0; p < o->passes && !zsys_interrupted && rc == 0; p++) {
        replay_pass_t *rp = &R->replay[p];
        bool weft_first = p % 2 == 0;
        for (int b = 0; b < 2 && rc == 0 && !zsys_interrupted; b++) {
            if ((b == 0) == weft_first) {
                rig_t g;
                if (s_rig_start(&g, c, dir, ARCHIVE_SYNC_ALWAYS, false) != 0) {
                    rc = -1;
                    break;
                }
                const char *svc = archiver_svc_endpoint(g.arch);
                fprintf(stderr, "  replay pass %d/%d: weft_replay of %s events ...\n", p + 1,
                        o->passes, COUNT(n));
                weft_replay_opts_t ro = {.from_offset = 1, .limit = n,
                                         .timeout_ms = REPLAY_TIMEOUT_MS};
                replay_ctx_t rx = {0, 1, 0, 0, 0};
                char err[256] = "";
                /* An untimed replay first maps the pages in, as the scans do: a long-running
                   archiver has its hot pages mapped. */
                weft_replay(svc, &ro, s_replay_cb, &rx, NULL, NULL, 0);
                rx = (replay_ctx_t){0, 1, 0, 0, 0};
                int64_t cpu0 = s_cpu_ns(), t0 = bench_now_ns();
                int r = weft_replay(svc, &ro, s_replay_cb, &rx, NULL, err, sizeof(err));
                int64_t t1 = bench_now_ns(), cpu = s_cpu_ns() - cpu0;
                if (r != WEFT_OK)
                    fprintf(stderr, "weft bench archive: weft_replay: %s %s\n", weft_strerror(r),
                            err);
                rp->got = rx.n;
                rp->disorder = rx.out_of_order;
                rp->weft = t1 > t0 ? (double)rx.n * 1e9 / (double)(t1 - t0) : 0;
                rp->cpu_ns = rx.n ? (double)cpu / (double)rx.n : 0;
                /* First events of replays from the middle. */
                for (int i = 0; i < per_pass && R->nttfe < o->samples && !zsys_interrupted; i++) {
                    uint64_t k = (uint64_t)R->nttfe;
                    uint64_t from = mid + k * TTFE_STRIDE;
                    if (from > R->grown)
                        from = mid;
                    weft_replay_opts_t fo = {.from_offset = from, .limit = TTFE_LIMIT,
                                             .timeout_ms = REPLAY_TIMEOUT_MS};
                    replay_ctx_t fx = {0, from, 0, 0, 0};
                    int64_t s0 = bench_now_ns();
                    r = weft_replay(svc, &fo, s_replay_cb, &fx, NULL, NULL, 0);
                    if (r != WEFT_OK || fx.n == 0 || fx.out_of_order) {
                        R->ttfe_bad++;
                        continue;
                    }
                    R->ttfe[R->nttfe++] = bench_sample(fx.first_ns - s0);
                }
                if (R->nrtt < o->samples) {
                    int m = per_pass < o->samples - R->nrtt ? per_pass : o->samples - R->nrtt;
                    if (s_raw_rtt(ea.endpoint, m, R->rtt_open + R->nrtt,
                                  R->rtt_fresh + R->nrtt) == 0)
                        R->nrtt += m;
                    else
                        fprintf(stderr, "weft bench archive: raw DEALER/ROUTER round trip "
                                        "failed\n");
                }
                s_rig_stop(&g);
            } else {
                uint64_t seen = 0;
                fprintf(stderr, "  replay pass %d/%d: raw LMDB and store scans ...\n", p + 1,
                        o->passes);
                if (s_raw_scan(dir, n, &rp->raw, &seen) != 0 ||
                    s_store_scan(dir, n, &rp->store) != 0)
                    rc = -1;
            }
        }
        if (rc || zsys_interrupted)
            break;
        fprintf(out,
                "replay pass %d/%d: weft %s ev/s (%" PRIu64 " events%s, cpu %.2f us/ev) | raw "
                "LMDB cursor scan %s ev/s | store scan %s ev/s | ratio %.2f\n",
                p + 1, o->passes, RATE(rp->weft), rp->got,
                rp->disorder ? ", OUT OF ORDER" : "", rp->cpu_ns / 1e3, RATE(rp->raw),
                RATE(rp->store), rp->raw > 0 ? rp->weft / rp->raw : 0);
        fflush(out);
        R->replay_done++;
    }
    zactor_destroy(&echo);
    return rc;
}

/* ---- options, summary ------------------------------------------------------------------------ */

static void s_usage(FILE *out)
{
    fprintf(out,
            "usage: weft bench archive [--events N] [--passes P] [--big N] [--window N]\n"
            "                          [--replay N] [--samples N] [--size B] [--batch N]\n"
            "                          [--fill archiver|store] [--quick] [--dir DIR] [--keep]\n"
            "                          [--json]\n\n"
            "Measures the archiver in this process against raw baselines of the same run,\n"
            "medians over passes:\n"
            "  1. durable ingest through a real archiver, fed by a publisher node over TCP\n"
            "     loopback (static connect, no gossip, about %d events in flight at most, so\n"
            "     none is dropped), per sync policy always/interval/none, next to raw LMDB\n"
            "     MDB_APPEND of the same records (same batch, same sync) and raw libzmq\n"
            "     PUB/SUB of the same three frames; target (always) >= %.1f x raw zmq;\n"
            "  2. ingest rate of --window events at archive sizes 0, 1M and --big (filled\n"
            "     through the archiver in between), each window paired with the same window\n"
            "     into a fresh archive right after; target rate@big >= %.2f x rate@0 (and\n"
            "     x the fresh archive's rate of the same pass, which cancels drift);\n"
            "  3. RssAnon of this process (archiver + publisher) after every step of 2;\n"
            "     target flat (largest after the windows at --big <= largest after those\n"
            "     at 0 + %.0f%% or %.0f MiB, whichever is more);\n"
            "  4. weft_replay of --replay events from offset 1 to one client, next to a raw\n"
            "     LMDB cursor scan of the same events; target >= %.0fM ev/s;\n"
            "  5. time from weft_replay to the first callback for replays starting in the\n"
            "     middle of the grown archive, next to raw ZeroMQ DEALER/ROUTER round trips;\n"
            "     target p99 < %.0f ms.\n\n"
            "options:\n"
            "  --events N   part 1 events per pass, policy and variant (default 500k)\n"
            "  --passes P   passes (default 3)\n"
            "  --big N      largest archive size of part 2 (default 10M)\n"
            "  --window N   events per measured window of part 2 (default 200k)\n"
            "  --replay N   events per replay pass (default 1M)\n"
            "  --samples N  first-event samples and round trips (default 200)\n"
            "  --size B     payload bytes (default 100)\n"
            "  --batch N    events per commit, archiver and raw LMDB (default 1000)\n"
            "  --fill F     how part 2 grows the archive between points: archiver (default:\n"
            "               publisher -> archiver, the measured path, memory sampled all along)\n"
            "               or store (archive_store_append in batches of %d with the archiver\n"
            "               stopped: faster on slow disks)\n"
            "  --quick      --big 1M --events 200k (unless given), for a fast run\n"
            "  --dir DIR    create the run's archives under DIR (default $TMPDIR or /tmp);\n"
            "               they are removed at the end\n"
            "  --keep       keep them\n"
            "  --json       print one JSON line with the summary (progress goes to stderr)\n\n"
            "reported: ingest ev/s = events / (first publish -> the archive's last offset\n"
            "covers them); raw LMDB = records / the append loop; raw zmq = received / (first\n"
            "send -> last receive), flat out (it may drop at the HWM); replay = events /\n"
            "(weft_replay call -> return), scans = events / loop, each on its second pass;\n"
            "first event = weft_replay call -> first callback (includes its DEALER connect).\n"
            "Ratios divide medians; the per-pass (paired) ratio medians are printed too; cpu =\n"
            "process CPU time per event (every thread). Archives are on the filesystem of\n"
            "--dir; the figures depend on its fsync latency (sync always).\n",
            INFLIGHT_MAX, ZMQ_RATIO_TARGET, GROWTH_TARGET, MEM_FLAT_SHARE * 100, MEM_FLAT_MIB,
            REPLAY_TARGET / 1e6, TTFE_TARGET_NS / 1e6, FILL_BATCH);
}

/*  Bytes on disk an archived event of this run is expected to take: its record plus the
    events key and node header, and the three index entries (by_source, by_id, by_topic) in
    B-tree pages about half full, with some slack. */
static double s_est_event_bytes(const actx_t *c)
{
    double idx = 2.0 * ((16 + 8 + 8) + (16 + 8 + 8) + (sizeof(ARCH_TOPIC) + 8 + 8));
    return (double)c->record_size + 16 + idx;
}

static int s_prepare_frames(actx_t *c)
{
    const arch_opts_t *o = c->o;
    weft_envelope_t env;
    weft_envelope_init(&env);
    snprintf(env.src, sizeof(env.src), PUB_NAME);
    env.inst = 0x0123456789abcdefULL;
    env.seq = o->big + o->events; /* a seq as large as the run's, same encoded size */
    env.ts = weft_now_ns();
    weft_id_new(env.id);
    c->envelope = malloc(WEFT_ENVELOPE_MAX);
    c->payload = malloc(o->size ? o->size : 1);
    if (!c->envelope || !c->payload)
        return -1;
    int es = weft_envelope_encode(&env, c->envelope, WEFT_ENVELOPE_MAX);
    if (es < 0)
        return -1;
    c->envelope_size = (size_t)es;
    memset(c->payload, 0xa5, o->size);
    if (o->size >= 2 && o->size - 2 <= 255) {
        c->payload[0] = 0xc4; /* msgpack bin 8: a valid payload of exactly size bytes */
        c->payload[1] = (uint8_t)(o->size - 2);
    }
    size_t tl = sizeof(ARCH_TOPIC) - 1;
    c->record_size = 13 + tl + c->envelope_size + o->size;
    c->record = malloc(c->record_size);
    if (!c->record)
        return -1;
    uint8_t *p = c->record;
    s_put_u64(p, (uint64_t)weft_now_ns());
    p[8] = (uint8_t)tl;
    p[9] = (uint8_t)(c->envelope_size >> 24);
    p[10] = (uint8_t)(c->envelope_size >> 16);
    p[11] = (uint8_t)(c->envelope_size >> 8);
    p[12] = (uint8_t)c->envelope_size;
    memcpy(p + 13, ARCH_TOPIC, tl);
    memcpy(p + 13 + tl, c->envelope, c->envelope_size);
    memcpy(p + 13 + tl + c->envelope_size, c->payload, o->size);
    return 0;
}

int bench_archive(int argc, char **argv)
{
    arch_opts_t o = {.events = 500000, .passes = 3, .big = 10000000, .window = 200000,
                     .replay = 1000000, .samples = 200, .size = 100, .batch = 1000};
    bool events_set = false, big_set = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        double v = 0;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            s_usage(stdout);
            return 0;
        } else if (!strcmp(a, "--json"))
            o.json = true;
        else if (!strcmp(a, "--quick"))
            o.quick = true;
        else if (!strcmp(a, "--keep"))
            o.keep = true;
        else if (!strcmp(a, "--fill")) {
            if (i + 1 >= argc ||
                (strcmp(argv[i + 1], "archiver") != 0 && strcmp(argv[i + 1], "store") != 0)) {
                fprintf(stderr, "weft bench archive: --fill takes archiver or store\n");
                return 2;
            }
            o.fill_store = !strcmp(argv[++i], "store");
        } else if (!strcmp(a, "--dir")) {
            if (i + 1 >= argc || !argv[i + 1][0]) {
                fprintf(stderr, "weft bench archive: --dir needs a directory\n");
                return 2;
            }
            o.dir = argv[++i];
        } else if (!strcmp(a, "--events")) {
            if ((v = bench_count_option(PROG, argc, argv, &i, 1000, 1e8)) < 0)
                return 2;
            o.events = (uint64_t)v;
            events_set = true;
        } else if (!strcmp(a, "--passes")) {
            if ((v = bench_count_option(PROG, argc, argv, &i, 1, 100)) < 0)
                return 2;
            o.passes = (int)v;
        } else if (!strcmp(a, "--big")) {
            if ((v = bench_count_option(PROG, argc, argv, &i, 1000, 1e9)) < 0)
                return 2;
            o.big = (uint64_t)v;
            big_set = true;
        } else if (!strcmp(a, "--window")) {
            if ((v = bench_count_option(PROG, argc, argv, &i, 1000, 1e8)) < 0)
                return 2;
            o.window = (uint64_t)v;
        } else if (!strcmp(a, "--replay")) {
            if ((v = bench_count_option(PROG, argc, argv, &i, 1000, 1e9)) < 0)
                return 2;
            o.replay = (uint64_t)v;
        } else if (!strcmp(a, "--samples")) {
            if ((v = bench_count_option(PROG, argc, argv, &i, 1, 100000)) < 0)
                return 2;
            o.samples = (int)v;
        } else if (!strcmp(a, "--size")) {
            if ((v = bench_count_option(PROG, argc, argv, &i, 0, 65536)) < 0)
                return 2;
            o.size = (size_t)v;
        } else if (!strcmp(a, "--batch")) {
            if ((v = bench_count_option(PROG, argc, argv, &i, 1, 100000)) < 0)
                return 2;
            o.batch = (size_t)v;
        } else {
            fprintf(stderr, "weft bench archive: unknown option '%s'\n\n", a);
            s_usage(stderr);
            return 2;
        }
    }
    if (o.quick) {
        if (!big_set)
            o.big = 1000000;
        if (!events_set)
            o.events = 200000;
    }
    FILE *out = o.json ? stderr : stdout;
    zsys_set_logstream(stderr); /* node and archiver logs stay off stdout (--json) */

    actx_t *c = calloc(1, sizeof(actx_t));
    results_t R = {0};
    int P = o.passes;
    R.ingest = calloc((size_t)P, sizeof(ingest_pass_t));
    R.replay = calloc((size_t)P, sizeof(replay_pass_t));
    R.ttfe = calloc((size_t)o.samples, sizeof(uint32_t));
    R.rtt_open = calloc((size_t)o.samples, sizeof(uint32_t));
    R.rtt_fresh = calloc((size_t)o.samples, sizeof(uint32_t));
    double *pt_mem = calloc((size_t)P * 12, sizeof(double));
    int status = 1;
    if (!c || !R.ingest || !R.replay || !R.ttfe || !R.rtt_open || !R.rtt_fresh || !pt_mem) {
        fprintf(stderr, "weft bench archive: out of memory\n");
        goto done;
    }
    for (int k = 0; k < 3; k++) {
        R.points[k].evs = pt_mem + (size_t)k * 4 * P;
        R.points[k].cpu_ns = pt_mem + (size_t)k * 4 * P + P;
        R.points[k].p99_us = pt_mem + (size_t)k * 4 * P + 2 * P;
        R.points[k].ref_evs = pt_mem + (size_t)k * 4 * P + 3 * P;
    }
    c->o = &o;
    if (s_prepare_frames(c) != 0) {
        fprintf(stderr, "weft bench archive: cannot prepare the frames\n");
        goto done;
    }

    /* The run's directory and the disk it needs. */
    const char *parent = NULL;
    if (bench_run_dir(PROG, o.dir, "archive", c->root, sizeof(c->root), &parent) != 0)
        goto done;
    int npts = o.big > 1000000 ? 3 : 2;
    uint64_t growth_events = o.big + (uint64_t)npts * (uint64_t)P * o.window;
    double per_event = s_est_event_bytes(c);
    double need = (double)growth_events * per_event + (double)o.events * per_event +
                  (double)o.events * ((double)c->record_size + 16) * 1.1 + 64 * MiB;
    struct statvfs vfs;
    double avail = statvfs(c->root, &vfs) == 0 ? (double)vfs.f_bavail * (double)vfs.f_frsize : -1;
    double timer_ns = bench_timer_overhead_ns();
    fprintf(out,
            "weft bench archive: %d passes; ingest %s events per policy and variant, batch %zu; "
            "growth to %s in windows of %s; replay %s; %d first-event samples; payload %zu B, "
            "envelope %zu B, record %zu B; timer %.0f ns/read\n",
            P, COUNT(o.events), o.batch, COUNT(o.big), COUNT(o.window), COUNT(o.replay),
            o.samples, o.size, c->envelope_size, c->record_size, timer_ns);
    double load[3] = {0};
    if (getloadavg(load, 3) < 1)
        load[0] = -1;
    fprintf(out, "machine: %ld cores, load average %.2f at the start%s\n",
            sysconf(_SC_NPROCESSORS_ONLN), load[0],
            load[0] > 0.5 ? " (other work is running: figures will be noisier)" : "");
    fprintf(out,
            "disk: about %.2f GiB needed in %s (about %.0f B per archived event); %.2f GiB "
            "free\n",
            need / GiB, c->root, per_event, avail / GiB);
    if (avail >= 0 && avail < need)
        fprintf(out, "WARNING: %.2f GiB free in %s is less than the about %.2f GiB this run "
                     "needs; lower --big or use --dir on a larger filesystem\n",
                avail / GiB, parent, need / GiB);
    fflush(out);

    int64_t run0 = bench_now_ns();
    fprintf(stderr, "part 1/4: durable ingest per sync policy ...\n");
    int rc = s_part_ingest(c, &R, out);
    char grow_dir[PATH_MAX + 16];
    snprintf(grow_dir, sizeof(grow_dir), "%s/grow", c->root);
    if (rc == 0 && !zsys_interrupted) {
        fprintf(stderr, "part 2/4: ingest and memory as the archive grows to %s ...\n",
                COUNT(o.big));
        rc = s_part_growth(c, &R, grow_dir, out);
    }
    if (rc == 0 && !zsys_interrupted && R.grown > 0) {
        fprintf(stderr, "part 3/4: replay and first event from the middle of %s events ...\n",
                COUNT(R.grown));
        rc = s_part_replay(c, &R, grow_dir, out);
    }
    if (getloadavg(load, 3) < 1)
        load[0] = -1;
    fprintf(stderr, "part 4/4: summary (run took %.0f s; load average now %.2f)\n",
            (double)(bench_now_ns() - run0) / 1e9, load[0]);

    /* ---- summary ---- */
    int n1 = R.ingest_done;
    double w_evs[NPOLICIES] = {0}, l_evs[NPOLICIES] = {0}, w_cpu[NPOLICIES] = {0};
    double w_p50[NPOLICIES] = {0}, w_p99[NPOLICIES] = {0}, w_per[NPOLICIES] = {0};
    double paired[NPOLICIES] = {0};
    uint64_t w_lost[NPOLICIES] = {0}, w_rep[NPOLICIES] = {0}, w_unrep[NPOLICIES] = {0};
    double z_evs = 0, z_cpu = 0;
    uint64_t z_lost = 0;
    if (n1 > 0) {
        z_evs = bench_median_field(R.ingest, (size_t)n1, sizeof(ingest_pass_t),
                                   offsetof(ingest_pass_t, zmq.evs));
        z_cpu = bench_median_field(R.ingest, (size_t)n1, sizeof(ingest_pass_t),
                                   offsetof(ingest_pass_t, zmq.cpu_ns));
        for (int p = 0; p < n1; p++)
            z_lost += R.ingest[p].zmq.lost;
        for (int k = 0; k < NPOLICIES; k++) {
            double v[n1], l[n1], cpu[n1], p50[n1], p99[n1], per[n1], pr[n1];
            for (int p = 0; p < n1; p++) {
                const win_t *w = &R.ingest[p].weft[k];
                v[p] = w->evs;
                l[p] = R.ingest[p].lmdb[k];
                cpu[p] = w->cpu_ns;
                p50[p] = w->commit_p50_us;
                p99[p] = w->commit_p99_us;
                per[p] = w->batches ? (double)w->committed / (double)w->batches : 0;
                pr[p] = R.ingest[p].zmq.evs > 0 ? w->evs / R.ingest[p].zmq.evs : 0;
                w_lost[k] += w->lost;
                w_rep[k] += w->repaired;
                w_unrep[k] += w->unrepaired;
            }
            w_evs[k] = s_median(v, n1);
            l_evs[k] = s_median(l, n1);
            w_cpu[k] = s_median(cpu, n1);
            w_p50[k] = s_median(p50, n1);
            w_p99[k] = s_median(p99, n1);
            w_per[k] = s_median(per, n1);
            paired[k] = s_median(pr, n1);
            fprintf(out,
                    "archive ingest (sync %s): weft %s ev/s | raw LMDB append %s ev/s | raw zmq "
                    "%s ev/s | ratio to zmq %.2f%s | ratio to LMDB %.2f | lost %" PRIu64
                    " repaired %" PRIu64 " unrepaired %" PRIu64 "\n",
                    s_policy_names[k], RATE(w_evs[k]), RATE(l_evs[k]), RATE(z_evs),
                    z_evs > 0 ? w_evs[k] / z_evs : 0,
                    k == 0 ? " (target >= 0.5)" : "", l_evs[k] > 0 ? w_evs[k] / l_evs[k] : 0,
                    w_lost[k], w_rep[k], w_unrep[k]);
        }
        fprintf(out,
                "  ingest details (medians): paired ratio to zmq always %.2f interval %.2f none "
                "%.2f | events per commit %.0f/%.0f/%.0f | commit p50 %.2f/%.2f/%.2f ms p99 "
                "%.2f/%.2f/%.2f ms | cpu per event weft %.2f/%.2f/%.2f us, raw zmq %.2f us "
                "(raw zmq lost %" PRIu64 " over all passes)\n",
                paired[0], paired[1], paired[2], w_per[0], w_per[1], w_per[2], w_p50[0] / 1e3,
                w_p50[1] / 1e3, w_p50[2] / 1e3, w_p99[0] / 1e3, w_p99[1] / 1e3, w_p99[2] / 1e3,
                w_cpu[0] / 1e3, w_cpu[1] / 1e3, w_cpu[2] / 1e3, z_cpu / 1e3, z_lost);
    }

    /* growth */
    int np = 0;
    double g_evs[3] = {0}, g_cpu[3] = {0}, g_ref[3] = {0}, g_pair[3] = {0};
    for (int k = 0; k < R.npoints; k++) {
        int filled = 0;
        for (int p = 0; p < P; p++)
            filled += R.points[k].evs[p] > 0;
        if (filled < P)
            break;
        g_evs[k] = s_median(R.points[k].evs, P);
        g_cpu[k] = s_median(R.points[k].cpu_ns, P);
        g_ref[k] = s_median(R.points[k].ref_evs, P);
        double pr[P];
        for (int p = 0; p < P; p++)
            pr[p] = R.points[k].ref_evs[p] > 0 ? R.points[k].evs[p] / R.points[k].ref_evs[p] : 0;
        g_pair[k] = s_median(pr, P);
        np++;
    }
    double g_ratio = np >= 2 && g_evs[0] > 0 ? g_evs[np - 1] / g_evs[0] : 0;
    if (np >= 2) {
        char line[512];
        int len = snprintf(line, sizeof(line), "archive growth (sync always, window %s):",
                           COUNT(o.window));
        for (int k = 0; k < np; k++)
            len += snprintf(line + len, sizeof(line) - (size_t)len, "%s @%s %s ev/s",
                            k ? " |" : "", COUNT(R.points[k].size), RATE(g_evs[k]));
        len += snprintf(line + len, sizeof(line) - (size_t)len, " | ratio @%s/@0 %.2f",
                        COUNT(R.points[np - 1].size), g_ratio);
        len += snprintf(line + len, sizeof(line) - (size_t)len,
                        " | fresh archive alongside");
        for (int k = 0; k < np; k++)
            len += snprintf(line + len, sizeof(line) - (size_t)len, "%s%s", k ? "/" : " ",
                            RATE(g_ref[k]));
        len += snprintf(line + len, sizeof(line) - (size_t)len, " ev/s, paired ratio");
        for (int k = 1; k < np; k++)
            len += snprintf(line + len, sizeof(line) - (size_t)len, " @%s %.2f",
                            COUNT(R.points[k].size), g_pair[k]);
        fprintf(out,
                "%s (target >= %.2f) | fill %s ev/s | lost %" PRIu64 " repaired %" PRIu64
                " | cpu per event %.2f -> %.2f us\n",
                line, GROWTH_TARGET, RATE(R.fill_evs), R.growth_lost, R.growth_repaired,
                g_cpu[0] / 1e3, g_cpu[np - 1] / 1e3);
    }

    /* memory */
    long mem_base = -1, mem_last = -1, mem_max = -1, heap_base = -1, heap_last = -1;
    bool judged = false;
    bool mem_flat = true;
    double mem_growth_mib = 0, mem_max_mib = 0;
    if (R.nsteps > 0) {
        fprintf(out, "archive memory series (after each step: archive events, RssAnon/heap in "
                     "use MiB; * = measured window):");
        for (int i = 0; i < R.nsteps; i++)
            fprintf(out, "%s %s%s %.1f/%.1f", i ? "," : "",
                    COUNT(R.steps[i].at + R.steps[i].events), R.steps[i].window ? "*" : "",
                    R.steps[i].rss_kib / 1024.0, R.steps[i].heap_kib / 1024.0);
        fprintf(out, "\n");
        /* Steady state at the first point (the publisher's outbox and the queues have filled
           by then) against the last point: the largest sample among each point's windows. */
        int last_pt = np > 0 ? np - 1 : 0;
        const step_t *b = NULL, *l = NULL;
        for (int i = 0; i < R.nsteps; i++) {
            const step_t *st = &R.steps[i];
            if (st->window && st->point == 0 && (!b || st->rss_kib > b->rss_kib))
                b = st;
            if (st->window && st->point == last_pt && (!l || st->rss_kib > l->rss_kib))
                l = st;
            if (b && st->rss_kib > mem_max)
                mem_max = st->rss_kib;
        }
        if (b && l && last_pt > 0) {
            weft_config_t *cfg = weft_config_new();
            char outbox[64];
            snprintf(outbox, sizeof(outbox), "%s",
                     cfg && weft_config_get(cfg, "outbox/events")
                         ? weft_config_get(cfg, "outbox/events")
                         : "?");
            weft_config_destroy(&cfg);
            mem_base = b->rss_kib;
            mem_last = l->rss_kib;
            mem_growth_mib = (double)(mem_last - mem_base) / 1024.0;
            mem_max_mib = (double)(mem_max - mem_base) / 1024.0;
            double allowed = mem_base / 1024.0 * MEM_FLAT_SHARE;
            if (allowed < MEM_FLAT_MIB)
                allowed = MEM_FLAT_MIB;
            mem_flat = mem_growth_mib <= allowed;
            /* Before the publisher's outbox is full its ring still grows: no verdict then. */
            judged = b->at + b->events >= strtoull(outbox, NULL, 10);
            heap_base = b->heap_kib;
            heap_last = l->heap_kib;
            fprintf(out,
                    "archive memory: RssAnon @0 %.1f MiB -> @%s %.1f MiB (largest after the "
                    "windows at each point; %+.1f MiB, %+.1f%%; peak of the series %+.1f MiB) | "
                    "%s (target flat: growth <= %.1f MiB) | heap in use %.1f -> %.1f MiB | "
                    "archiver in this process, with the publisher node (its outbox holds %s "
                    "events)\n",
                    mem_base / 1024.0, COUNT(R.points[last_pt].size), mem_last / 1024.0,
                    mem_growth_mib,
                    mem_base > 0 ? 100.0 * (double)(mem_last - mem_base) / (double)mem_base : 0,
                    mem_max_mib,
                    !judged   ? "not judged: the windows at 0 end before the outbox is full"
                    : mem_flat ? "flat"
                               : "GROWS",
                    allowed, heap_base / 1024.0,
                    heap_last / 1024.0, outbox);
        }
    }

    /* replay */
    int n4 = R.replay_done;
    double r_weft = 0, r_raw = 0, r_store = 0, r_cpu = 0;
    uint64_t r_disorder = 0;
    if (n4 > 0) {
        r_weft = bench_median_field(R.replay, (size_t)n4, sizeof(replay_pass_t),
                                    offsetof(replay_pass_t, weft));
        r_raw = bench_median_field(R.replay, (size_t)n4, sizeof(replay_pass_t),
                                   offsetof(replay_pass_t, raw));
        r_store = bench_median_field(R.replay, (size_t)n4, sizeof(replay_pass_t),
                                     offsetof(replay_pass_t, store));
        r_cpu = bench_median_field(R.replay, (size_t)n4, sizeof(replay_pass_t),
                                   offsetof(replay_pass_t, cpu_ns));
        for (int p = 0; p < n4; p++)
            r_disorder += R.replay[p].disorder + (R.replay[p].got != R.replay_n);
        fprintf(out,
                "archive replay (%s events from offset 1 of %s): weft %s ev/s | raw LMDB cursor "
                "scan %s ev/s | ratio %.2f | store scan (512-event read txns) %s ev/s | target "
                "weft >= %.0fM ev/s | cpu %.2f us/ev%s\n",
                COUNT(R.replay_n), COUNT(R.grown), RATE(r_weft), RATE(r_raw),
                r_raw > 0 ? r_weft / r_raw : 0, RATE(r_store), REPLAY_TARGET / 1e6,
                r_cpu / 1e3, r_disorder ? " | SOME REPLAYS INCOMPLETE OR OUT OF ORDER" : "");
    }
    bench_pct_t ft = {0}, ro = {0}, rf = {0};
    if (R.nttfe > 0 || R.nrtt > 0) {
        bench_percentiles(R.ttfe, (size_t)R.nttfe, &ft);
        bench_percentiles(R.rtt_open, (size_t)R.nrtt, &ro);
        bench_percentiles(R.rtt_fresh, (size_t)R.nrtt, &rf);
        fprintf(out,
                "archive first event (replay from offset %s of %s, %d samples): p50 %.2f ms p99 "
                "%.2f ms max %.2f ms (target < %.0f ms) | raw zmq DEALER/ROUTER round trip "
                "p50 %.0f us p99 %.0f us, with a new connection p50 %.0f us p99 %.0f us | "
                "ratio p50 to new-connection round trip %.1f%s\n",
                COUNT(R.grown / 2), COUNT(R.grown), R.nttfe, ft.p50 / 1e6, ft.p99 / 1e6,
                ft.max / 1e6, TTFE_TARGET_NS / 1e6, ro.p50 / 1e3, ro.p99 / 1e3, rf.p50 / 1e3,
                rf.p99 / 1e3, rf.p50 > 0 ? ft.p50 / rf.p50 : 0,
                R.ttfe_bad ? " | SOME FIRST-EVENT REPLAYS FAILED" : "");
    }
    if (s_publish_errors || s_commit_errors)
        fprintf(out, "WARNING: %" PRIu64 " weft_publish calls and %" PRIu64 " archiver commits "
                     "failed during the run\n",
                s_publish_errors, s_commit_errors);
    if (R.grown)
        fprintf(out, "disk: the grown archive (%s events) uses %.2f GiB (%.0f B/event; "
                     "estimated %.0f)\n",
                COUNT(R.grown), R.grown_disk / GiB, (double)R.grown_disk / (double)R.grown,
                per_event);
    fflush(out);

    if (o.json) {
        printf("{\"bench\":\"archive\",\"passes\":%d,\"events\":%" PRIu64 ",\"big\":%" PRIu64
               ",\"window\":%" PRIu64 ",\"replay_events\":%" PRIu64 ",\"size\":%zu,"
               "\"batch\":%zu,\"envelope_size\":%zu,\"record_size\":%zu,\"ingest\":{",
               P, o.events, o.big, o.window, R.replay_n, o.size, o.batch, c->envelope_size,
               c->record_size);
        for (int k = 0; k < NPOLICIES; k++)
            printf("%s\"%s\":{\"weft_evs\":%.0f,\"raw_lmdb_evs\":%.0f,\"ratio_zmq\":%.3f,"
                   "\"ratio_zmq_paired\":%.3f,\"ratio_lmdb\":%.3f,\"lost\":%" PRIu64
                   ",\"repaired\":%" PRIu64 ",\"unrepaired\":%" PRIu64 ",\"events_per_commit\":"
                   "%.0f,\"commit_p50_us\":%.0f,\"commit_p99_us\":%.0f,\"cpu_ns\":%.0f}",
                   k ? "," : "", s_policy_names[k], w_evs[k], l_evs[k],
                   z_evs > 0 ? w_evs[k] / z_evs : 0, paired[k],
                   l_evs[k] > 0 ? w_evs[k] / l_evs[k] : 0, w_lost[k], w_rep[k], w_unrep[k],
                   w_per[k], w_p50[k], w_p99[k], w_cpu[k]);
        printf("},\"raw_zmq_evs\":%.0f,\"raw_zmq_cpu_ns\":%.0f,\"raw_zmq_lost\":%" PRIu64
               ",\"ingest_ratio_target\":%.2f,\"growth\":{\"points\":[",
               z_evs, z_cpu, z_lost, ZMQ_RATIO_TARGET);
        for (int k = 0; k < np; k++)
            printf("%s{\"size\":%" PRIu64 ",\"start\":%" PRIu64 ",\"evs\":%.0f,\"cpu_ns\":%.0f,"
                   "\"fresh_evs\":%.0f,\"ratio_to_fresh\":%.3f}",
                   k ? "," : "", R.points[k].size, R.points[k].start, g_evs[k], g_cpu[k],
                   g_ref[k], g_pair[k]);
        printf("],\"ratio\":%.3f,\"ratio_paired\":%.3f,\"target\":%.2f,\"fill_evs\":%.0f,"
               "\"lost\":%" PRIu64 ",\"repaired\":%" PRIu64 "},\"memory\":{\"series\":[",
               g_ratio, np >= 2 ? g_pair[np - 1] : 0, GROWTH_TARGET, R.fill_evs, R.growth_lost,
               R.growth_repaired);
        for (int i = 0; i < R.nsteps; i++)
            printf("%s{\"events\":%" PRIu64 ",\"rss_anon_kib\":%ld,\"heap_kib\":%ld,"
                   "\"window\":%s,\"evs\":%.0f}",
                   i ? "," : "", R.steps[i].at + R.steps[i].events, R.steps[i].rss_kib,
                   R.steps[i].heap_kib, R.steps[i].window ? "true" : "false", R.steps[i].evs);
        printf("],\"base_kib\":%ld,\"last_kib\":%ld,\"peak_kib\":%ld,\"heap_base_kib\":%ld,"
               "\"heap_last_kib\":%ld,\"flat\":%s,\"judged\":%s},"
               "\"replay\":{\"weft_evs\":%.0f,\"raw_scan_evs\":%.0f,\"store_scan_evs\":%.0f,"
               "\"ratio\":%.3f,\"target_evs\":%.0f,\"cpu_ns\":%.0f,\"incomplete\":%" PRIu64 "},"
               "\"first_event\":{\"samples\":%d,\"from_offset\":%" PRIu64 ",\"archive\":%" PRIu64
               ",\"p50_ns\":%.0f,\"p99_ns\":%.0f,\"max_ns\":%.0f,\"target_ns\":%d,"
               "\"failed\":%" PRIu64 ",\"raw_rtt_ns\":{\"p50\":%.0f,\"p99\":%.0f},"
               "\"raw_rtt_new_connection_ns\":{\"p50\":%.0f,\"p99\":%.0f}},"
               "\"disk_bytes\":%" PRIu64 ",\"publish_errors\":%" PRIu64
               ",\"commit_errors\":%" PRIu64 ",\"timer_ns\":%.1f,\"passes_done\":%d}\n",
               mem_base, mem_last, mem_max, heap_base, heap_last, mem_flat ? "true" : "false",
               judged ? "true" : "false",
               r_weft, r_raw, r_store, r_raw > 0 ? r_weft / r_raw : 0, REPLAY_TARGET, r_cpu,
               r_disorder, R.nttfe, R.grown / 2, R.grown, ft.p50, ft.p99, ft.max, TTFE_TARGET_NS,
               R.ttfe_bad, ro.p50, ro.p99, rf.p50, rf.p99, R.grown_disk, s_publish_errors,
               s_commit_errors, timer_ns, n1);
        fflush(stdout);
    }
    status = zsys_interrupted ? 130 : rc ? 1 : 0;

done:
    if (c && c->root[0]) {
        if (o.keep)
            fprintf(stderr, "weft bench archive: kept %s\n", c->root);
        else
            bench_rmtree(PROG, c->root);
    }
    if (c) {
        free(c->envelope);
        free(c->payload);
        free(c->record);
    }
    free(c);
    free(R.ingest), free(R.replay), free(R.ttfe), free(R.rtt_open), free(R.rtt_fresh);
    free(R.steps), free(pt_mem);
    return status;
}

/*  bench_soak.c - `weft bench soak`: a small fabric of separate processes on this machine, run at
    a fixed rate for a long time (60 s by default; 10 minutes for the record), checked for loss
    and watched for memory growth.

    Processes. The benchmark runs this very binary again (/proc/self/exe) in an internal worker
    mode (`weft bench soak --worker ROLE ...`, not in --help) for each node: --nodes N splits
    into N/2 publishers (at least 1) and the rest subscribers. Each worker's stdin and fd 3
    are pipes to the benchmark: commands go down ("start", "drain ...", "stop"), reports come
    up as lines ("ready ...", "published ...", "result ...", "src ...", "hist ...", "end"); its
    stdout and stderr are the benchmark's stderr (a node that holds a gossip seed logs to
    stdout). Workers die with the benchmark (PR_SET_PDEATHSIG, and EOF on stdin), and the
    benchmark ends every worker it started, by PID, on every exit path.

    The fabric. The first subscriber binds a gossip seed on an ephemeral loopback port; every
    other node uses it as its only seed, so the run is one private fabric, apart from any other
    on this machine (the default seed 127.0.0.1:5670 is not used). Topics are
    "soak.<benchmark pid>.ev"; subscribers subscribe to that prefix with repair on
    (weft_sub_options_t.repair: at-least-once, a jump in a source's seq is fetched from the
    publisher's outbox, else an archiver) and count only events of this run's publishers.

    Phases. (1) Baseline: raw libzmq XPUB -> SUB between two worker processes over TCP
    loopback at the same total rate for 5 s, the same three frames (topic, a 100-byte blob
    carrying the send time, the payload), latency = receive time - send time. (2) Subscribers
    start and report ready; publishers start, wait until every other node is ready
    (weft_node_wait_peers / weft_node_readiness), report ready; then all publishers get
    "start" together and publish at rate R / publishers each, for S seconds, paced per tick
    (events due by now are published, then the worker sleeps until the next one is due).
    (3) Each subscriber gets the number of events each publisher published and waits (at most
    20 s) until it has every one of them, then reports. (4) Publishers are stopped last, so
    their outboxes serve repairs until the end.

    Per subscriber and source the worker keeps the highest seq seen and the ranges of seqs
    below it not seen yet (holes), so memory stays bounded however long the run: distinct
    events = highest seq - holes; an event at or below the highest seq that is not in a hole
    is a duplicate. Latency (receive time - envelope ts, both CLOCK_REALTIME on this machine)
    goes into a log-linear histogram (64 buckets per power of two, under 1.6 % error), merged
    by the benchmark over subscribers.

    Memory: the benchmark reads VmRSS of every node process from /proc/PID/status every few
    seconds while the publishers run (every S/20 s, between 2 and 10 s) and prints the series;
    a process is "flat" when the mean of the last third of its samples is within 10 % or 4 MiB
    of the mean of the first third.

    Output: progress on stderr; the header, the baseline, the RSS series, one line per
    subscriber, and as the last line `soak: lost=N ...` on stdout (all of it on stderr and one
    JSON object on stdout with --json). Exit status 0 when nothing was lost, 1 on a loss or a
    failure, 2 usage, 130 interrupted.
*/
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pipe2 */
#endif
#include <czmq.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_opts.h"
#include "bench_soak.h"
#include "bench_stats.h"
#include "weft.h"

#define PAYLOAD_SIZE 100          /* bytes per event (a msgpack bin) */
#define RAW_BLOB_SIZE 100         /* the raw baseline's envelope-sized frame */
#define RAW_SECONDS 5.0           /* baseline duration */
#define RAW_IDLE_MS 3000          /* the raw subscriber stops this long after its last message */
#define READY_TIMEOUT_MS 30000    /* a worker starts and (publishers) sees every peer ready */
#define DRAIN_TIMEOUT_MS 20000    /* subscribers' wait for the last events (and repairs) */
#define STOP_TIMEOUT_MS 10000     /* a worker's final report after "stop" */
#define MAX_NODES 64
#define MAX_SOURCES 64
#define MAX_RSS_SAMPLES 4096
#define MEM_FLAT_SHARE 0.10       /* last third vs first third of the RSS samples: 10 % ... */
#define MEM_FLAT_MIB 4.0          /* ... or 4 MiB, whichever is larger */
#define MiB (1024.0 * 1024.0)

/* ---- latency histogram ---------------------------------------------------------------------- */

#define HIST_BITS 6
#define HIST_SUB (1 << HIST_BITS)                 /* buckets per power of two */
#define HIST_BUCKETS (HIST_SUB + 40 * HIST_SUB)   /* up to 2^46 ns */

static int s_hist_index(int64_t ns)
{
    uint64_t v = ns < 0 ? 0 : (uint64_t)ns;
    if (v < HIST_SUB)
        return (int)v;
    int shift = 63 - __builtin_clzll(v) - HIST_BITS;
    int idx = HIST_SUB + shift * HIST_SUB + (int)((v >> shift) - HIST_SUB);
    return idx < HIST_BUCKETS ? idx : HIST_BUCKETS - 1;
}

/*  The middle of bucket idx, ns. */
static double s_hist_value(int idx)
{
    if (idx < HIST_SUB)
        return idx;
    int shift = (idx - HIST_SUB) / HIST_SUB;
    double m = HIST_SUB + (idx - HIST_SUB) % HIST_SUB;
    return (m + 0.5) * (double)(1ULL << shift);
}

/*  Nearest-rank percentile p (0..1) of a histogram with n samples, ns; 0 when empty. */
static double s_hist_pct(const uint64_t *h, uint64_t n, double p)
{
    if (n == 0)
        return 0;
    uint64_t rank = (uint64_t)ceil(p * (double)n);
    if (rank < 1)
        rank = 1;
    uint64_t cum = 0;
    for (int i = 0; i < HIST_BUCKETS; i++) {
        cum += h[i];
        if (cum >= rank)
            return s_hist_value(i);
    }
    return s_hist_value(HIST_BUCKETS - 1);
}

/*  Writes "hist i:c i:c ...\n" (non-zero buckets) to out. */
static void s_hist_write(FILE *out, const uint64_t *h)
{
    fputs("hist", out);
    for (int i = 0; i < HIST_BUCKETS; i++)
        if (h[i])
            fprintf(out, " %d:%" PRIu64, i, h[i]);
    fputc('\n', out);
}

/*  Adds a "hist ..." line into h; returns the number of samples added. */
static uint64_t s_hist_merge(uint64_t *h, const char *line)
{
    uint64_t n = 0;
    const char *p = line + 4;
    while (*p) {
        char *end;
        long idx = strtol(p, &end, 10);
        if (end == p || *end != ':')
            break;
        uint64_t c = strtoull(end + 1, &end, 10);
        if (idx >= 0 && idx < HIST_BUCKETS) {
            h[idx] += c;
            n += c;
        }
        p = end;
    }
    return n;
}

/* ---- small helpers -------------------------------------------------------------------------- */

/*  "60", "60s", "10m", "1h" -> seconds; -1 if bad. */
static double s_parse_seconds(const char *text)
{
    const char *end;
    double v = bench_parse_number(text, &end);
    if (v < 0)
        return -1;
    if (*end == 's')
        end++;
    else if (*end == 'm')
        v *= 60, end++;
    else if (*end == 'h')
        v *= 3600, end++;
    return *end ? -1 : v;
}

/*  The value of " key=" in line as a number (0 when absent). */
static uint64_t s_kv(const char *line, const char *key)
{
    size_t n = strlen(key);
    for (const char *p = line; (p = strstr(p, key)) != NULL; p += n)
        if ((p == line || p[-1] == ' ') && p[n] == '=')
            return strtoull(p + n + 1, NULL, 10);
    return 0;
}

/*  The value of " key=" in line as a word, copied into out. */
static bool s_kv_str(const char *line, const char *key, char *out, size_t cap)
{
    size_t n = strlen(key);
    for (const char *p = line; (p = strstr(p, key)) != NULL; p += n)
        if ((p == line || p[-1] == ' ') && p[n] == '=') {
            size_t len = strcspn(p + n + 1, " \n");
            if (len >= cap)
                return false;
            memcpy(out, p + n + 1, len);
            out[len] = 0;
            return true;
        }
    return false;
}

static void s_sleep_ns(int64_t ns)
{
    if (ns <= 0)
        return;
    struct timespec ts = {(time_t)(ns / 1000000000), (long)(ns % 1000000000)};
    nanosleep(&ts, NULL);
}

static const char *s_dur(char *buf, size_t cap, double ns)
{
    if (ns >= 1e9)
        snprintf(buf, cap, "%.2f s", ns / 1e9);
    else if (ns >= 1e6)
        snprintf(buf, cap, "%.2f ms", ns / 1e6);
    else
        snprintf(buf, cap, "%.0f us", ns / 1e3);
    return buf;
}

/* ---- options -------------------------------------------------------------------------------- */

typedef struct {
    double seconds;
    double rate;         /* total events/s */
    int nodes;
    bool json;
    /* worker mode */
    const char *worker;  /* pub, sub, rawpub, rawsub */
    long run;            /* the benchmark's pid: names and topics */
    int index;           /* 1.. within the role */
    const char *seed;    /* gossip seeds */
    const char *gbind;   /* gossip bind */
    int peers;           /* publishers: nodes to see ready before "ready" */
    const char *endpoint;/* rawsub: the rawpub's endpoint */
} soak_opts_t;

/* ---- worker side ---------------------------------------------------------------------------- */

/*  Commands from the benchmark on stdin, one per line. */
typedef struct {
    char buf[8192];
    size_t len;
    bool eof;
} cmdq_t;

/*  Waits up to timeout_ms for a command line; 1 with the line in out, 0 on timeout, -1 when
    the benchmark has gone (EOF) or this process was interrupted. */
static int s_cmd(cmdq_t *q, char *out, size_t cap, int timeout_ms)
{
    int64_t deadline = bench_now_ns() + (int64_t)timeout_ms * 1000000;
    while (1) {
        char *nl = memchr(q->buf, '\n', q->len);
        if (nl) {
            size_t n = (size_t)(nl - q->buf);
            size_t c = n < cap - 1 ? n : cap - 1;
            memcpy(out, q->buf, c);
            out[c] = 0;
            memmove(q->buf, nl + 1, q->len - n - 1);
            q->len -= n + 1;
            return 1;
        }
        if (q->eof || zsys_interrupted)
            return -1;
        int64_t left = deadline - bench_now_ns();
        if (left <= 0)
            return 0;
        struct pollfd pfd = {0, POLLIN, 0};
        int r = poll(&pfd, 1, (int)(left / 1000000) + 1);
        if (r > 0) {
            if (q->len == sizeof(q->buf))
                q->len = 0; /* an over-long line: dropped */
            ssize_t got = read(0, q->buf + q->len, sizeof(q->buf) - q->len);
            if (got <= 0)
                q->eof = true;
            else
                q->len += (size_t)got;
        } else if (r < 0 && errno != EINTR)
            q->eof = true;
    }
}

/*  Where a worker's reports go: fd 3, the benchmark's pipe (stdout when run by hand). Not
    stdout itself: log lines may go there (a node holding a gossip seed logs to stdout). */
static FILE *s_report;

/*  One line to the benchmark. */
static void s_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void s_say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(s_report, fmt, ap);
    va_end(ap);
    fflush(s_report);
}

static weft_node_t *s_node(const char *name, const soak_opts_t *o)
{
    weft_config_t *cfg = weft_config_new();
    int rc = cfg ? WEFT_OK : WEFT_ENOMEM;
    if (rc == WEFT_OK)
        rc = weft_config_set(cfg, "gossip/seeds", o->seed ? o->seed : "none");
    if (rc == WEFT_OK)
        rc = weft_config_set(cfg, "gossip/bind", o->gbind ? o->gbind : "none");
    if (rc == WEFT_OK)
        rc = weft_config_set(cfg, "node/role", "soak");
    weft_node_t *node = NULL;
    if (rc == WEFT_OK)
        node = weft_node_new(name, cfg, &rc);
    weft_config_destroy(&cfg);
    if (!node)
        fprintf(stderr, "weft bench soak: cannot start node %s: %s\n", name, weft_strerror(rc));
    return node;
}

/*  A msgpack bin 8 of exactly PAYLOAD_SIZE bytes. */
static void s_payload(uint8_t *p)
{
    memset(p, 0xa5, PAYLOAD_SIZE);
    p[0] = 0xc4;
    p[1] = PAYLOAD_SIZE - 2;
}

/* -- subscriber -- */

typedef struct {
    uint64_t from, to;
} range_t;

typedef struct {
    uint64_t inst;
    char name[WEFT_NAME_MAX + 1];
    uint64_t max_seq, distinct, dups;
    range_t *holes;      /* seqs below max_seq not received yet, ascending */
    size_t nholes, cap;
} source_rec_t;

typedef struct {
    pthread_mutex_t lock;
    char src_prefix[64]; /* "soak-<run>-pub-" */
    source_rec_t src[MAX_SOURCES];
    size_t nsrc;
    uint64_t received, foreign, lat_n;
    int64_t lat_max;
    uint64_t hist[HIST_BUCKETS];
} sink_t;

static void s_hole_add(source_rec_t *s, uint64_t from, uint64_t to)
{
    if (s->nholes == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 8;
        range_t *h = realloc(s->holes, cap * sizeof(range_t));
        if (!h)
            return;
        s->holes = h;
        s->cap = cap;
    }
    s->holes[s->nholes++] = (range_t){from, to};
}

/*  Removes seq from the holes; false when it was in none (a duplicate). */
static bool s_hole_fill(source_rec_t *s, uint64_t seq)
{
    for (size_t i = 0; i < s->nholes; i++) {
        range_t *h = &s->holes[i];
        if (seq < h->from || seq > h->to)
            continue;
        if (h->from == h->to) {
            memmove(h, h + 1, (s->nholes - i - 1) * sizeof(range_t));
            s->nholes--;
        } else if (seq == h->from)
            h->from++;
        else if (seq == h->to)
            h->to--;
        else {
            range_t tail = {seq + 1, h->to};
            size_t before = s->nholes;
            s_hole_add(s, tail.from, tail.to); /* may move the array */
            if (s->nholes == before)
                return true; /* out of memory: the hole stays whole (seq counted anyway) */
            range_t *hs = s->holes;
            hs[i].to = seq - 1;
            /* keep ascending order: the new tail right after hole i */
            memmove(&hs[i + 2], &hs[i + 1], (s->nholes - i - 2) * sizeof(range_t));
            hs[i + 1] = tail;
        }
        return true;
    }
    return false;
}

static uint64_t s_holes(const source_rec_t *s)
{
    uint64_t n = 0;
    for (size_t i = 0; i < s->nholes; i++)
        n += s->holes[i].to - s->holes[i].from + 1;
    return n;
}

static int s_on_soak(weft_event_t *ev, void *arg)
{
    sink_t *k = arg;
    int64_t lat = weft_now_ns() - ev->env->ts;
    pthread_mutex_lock(&k->lock);
    k->received++;
    source_rec_t *s = NULL;
    for (size_t i = 0; i < k->nsrc && !s; i++)
        if (k->src[i].inst == ev->env->inst)
            s = &k->src[i];
    if (!s && strncmp(ev->env->src, k->src_prefix, strlen(k->src_prefix)) == 0 &&
        k->nsrc < MAX_SOURCES) {
        s = &k->src[k->nsrc++];
        s->inst = ev->env->inst;
        snprintf(s->name, sizeof(s->name), "%s", ev->env->src);
    }
    if (!s) {
        k->foreign++;
        pthread_mutex_unlock(&k->lock);
        return 0;
    }
    uint64_t seq = ev->env->seq;
    if (seq > s->max_seq) {
        if (seq > s->max_seq + 1)
            s_hole_add(s, s->max_seq + 1, seq - 1);
        s->max_seq = seq;
        s->distinct++;
    } else if (s_hole_fill(s, seq))
        s->distinct++;
    else
        s->dups++;
    k->hist[s_hist_index(lat)]++;
    k->lat_n++;
    if (lat > k->lat_max)
        k->lat_max = lat;
    pthread_mutex_unlock(&k->lock);
    return 0;
}

/*  "name=count name=count ...": true when every named source has all its count events. */
static bool s_drained(sink_t *k, const char *spec)
{
    bool all = true;
    pthread_mutex_lock(&k->lock);
    for (const char *t = spec; *t && all;) {
        t += strspn(t, " ");
        size_t n = strcspn(t, " "), len = strcspn(t, "=");
        if (n == 0)
            break;
        if (len < n) {
            uint64_t want = strtoull(t + len + 1, NULL, 10);
            const source_rec_t *s = NULL;
            for (size_t i = 0; i < k->nsrc && !s; i++)
                if (strlen(k->src[i].name) == len && !strncmp(k->src[i].name, t, len))
                    s = &k->src[i];
            if (want > 0 && (!s || s->distinct < want))
                all = false;
        }
        t += n;
    }
    pthread_mutex_unlock(&k->lock);
    return all;
}

static int s_worker_sub(const soak_opts_t *o)
{
    char name[WEFT_NAME_MAX + 1], prefix[64];
    snprintf(name, sizeof(name), "soak-%ld-sub-%d", o->run, o->index);
    snprintf(prefix, sizeof(prefix), "soak.%ld.", o->run);
    sink_t *k = calloc(1, sizeof(sink_t));
    if (!k)
        return 1;
    pthread_mutex_init(&k->lock, NULL);
    snprintf(k->src_prefix, sizeof(k->src_prefix), "soak-%ld-pub-", o->run);
    weft_node_t *node = s_node(name, o);
    if (!node) {
        s_say("fail cannot start the node\n");
        free(k);
        return 1;
    }
    weft_sub_options_t so;
    memset(&so, 0, sizeof(so));
    so.repair = true;
    so.name = "soak";
    int err = 0;
    if (!weft_subscribe(node, prefix, s_on_soak, k, &so, &err)) {
        s_say("fail subscribe: %s\n", weft_strerror(err));
        weft_node_destroy(&node);
        free(k);
        return 1;
    }
    const char *g = weft_node_gossip_endpoint(node);
    s_say("ready sub=%s gossip=%s\n", weft_node_sub_endpoint(node), g ? g : "none");

    cmdq_t q = {.len = 0};
    char cmd[4096];
    int status = 1;
    while (1) {
        int r = s_cmd(&q, cmd, sizeof(cmd), 200);
        if (r < 0)
            break;
        if (r == 0 || strncmp(cmd, "drain ", 6) != 0)
            continue;
        char *spec = cmd + 6;
        long ms = strtol(spec, &spec, 10);
        int64_t deadline = bench_now_ns() + ms * 1000000LL;
        bool complete;
        while (!(complete = s_drained(k, spec)) && bench_now_ns() < deadline &&
               !zsys_interrupted)
            zclock_sleep(20);
        weft_stats_t st;
        weft_node_stats(node, &st);
        pthread_mutex_lock(&k->lock);
        uint64_t dups = 0;
        for (size_t i = 0; i < k->nsrc; i++)
            dups += k->src[i].dups;
        s_say("result received=%" PRIu64 " foreign=%" PRIu64 " dups=%" PRIu64 " gaps=%" PRIu64
              " repaired=%" PRIu64 " unrepaired=%" PRIu64 " lat_n=%" PRIu64 " lat_max=%" PRId64
              " complete=%d\n",
              k->received, k->foreign, dups, st.gaps, st.repaired, st.unrepaired, k->lat_n,
              k->lat_max, complete ? 1 : 0);
        for (size_t i = 0; i < k->nsrc; i++)
            s_say("src %s distinct=%" PRIu64 " max=%" PRIu64 " dups=%" PRIu64 " holes=%" PRIu64
                  "\n",
                  k->src[i].name, k->src[i].distinct, k->src[i].max_seq, k->src[i].dups,
                  s_holes(&k->src[i]));
        s_hist_write(s_report, k->hist);
        pthread_mutex_unlock(&k->lock);
        s_say("end\n");
        status = 0;
        break;
    }
    weft_node_destroy(&node);
    for (size_t i = 0; i < k->nsrc; i++)
        free(k->src[i].holes);
    pthread_mutex_destroy(&k->lock);
    free(k);
    return status;
}

/* -- publisher -- */

static int s_worker_pub(const soak_opts_t *o)
{
    char name[WEFT_NAME_MAX + 1], topic[64];
    snprintf(name, sizeof(name), "soak-%ld-pub-%d", o->run, o->index);
    snprintf(topic, sizeof(topic), "soak.%ld.ev", o->run);
    weft_node_t *node = s_node(name, o);
    if (!node) {
        s_say("fail cannot start the node\n");
        return 1;
    }
    /* Every other node ready: connected, and its subscriptions arrived. */
    int ready = 0, known = 0;
    int64_t deadline = bench_now_ns() + (int64_t)READY_TIMEOUT_MS * 1000000;
    while (!zsys_interrupted) {
        weft_node_wait_peers(node, 500);
        weft_node_readiness(node, &ready, &known);
        if (ready >= o->peers || bench_now_ns() >= deadline)
            break;
    }
    if (ready < o->peers) {
        s_say("fail only %d of %d peers ready (%d known) within %d ms\n", ready, o->peers, known,
              READY_TIMEOUT_MS);
        weft_node_destroy(&node);
        return 1;
    }
    s_say("ready peers=%d known=%d\n", ready, known);

    cmdq_t q = {.len = 0};
    char cmd[256];
    int r;
    while ((r = s_cmd(&q, cmd, sizeof(cmd), 200)) >= 0 && (r == 0 || strcmp(cmd, "start") != 0))
        ;
    if (r < 0) {
        weft_node_destroy(&node);
        return 1;
    }
    uint8_t payload[PAYLOAD_SIZE];
    s_payload(payload);
    uint64_t total = (uint64_t)llround(o->rate * o->seconds), i = 0, errors = 0;
    double period = 1e9 / o->rate;
    int64_t last_seq = 0;
    int64_t t0 = bench_now_ns();
    while (i < total && !zsys_interrupted) {
        uint64_t due = (uint64_t)((double)(bench_now_ns() - t0) / period) + 1;
        if (due > total)
            due = total;
        for (; i < due; i++) {
            int64_t seq = weft_publish(node, topic, payload, sizeof(payload), NULL, NULL);
            if (seq > 0)
                last_seq = seq;
            else
                errors++;
        }
        if (i < total)
            s_sleep_ns(t0 + (int64_t)((double)i * period) - bench_now_ns());
    }
    double secs = (double)(bench_now_ns() - t0) / 1e9;
    s_say("published n=%" PRIu64 " last_seq=%" PRId64 " errors=%" PRIu64 " seconds=%.3f\n",
          i - errors, last_seq, errors, secs);
    /* Stay up (the outbox serves repairs) until "stop". */
    while ((r = s_cmd(&q, cmd, sizeof(cmd), 200)) >= 0 && (r == 0 || strcmp(cmd, "stop") != 0))
        ;
    weft_stats_t st;
    weft_node_stats(node, &st);
    weft_node_destroy(&node);
    s_say("result published=%" PRIu64 " publish_errors=%" PRIu64 " outbox_events=%" PRIu64
          " ctl_requests=%" PRIu64 " peers_up=%u peers_down=%u\n",
          st.published, st.publish_errors, st.outbox_events, st.ctl_requests, st.peers_up,
          st.peers_down);
    s_say("end\n");
    return 0;
}

/* -- raw libzmq baseline -- */

#define RAW_TOPIC "soakraw.ev"
#define RAW_END "soakraw.end"

static int s_worker_rawpub(const soak_opts_t *o)
{
    zsock_t *pub = zsock_new(ZMQ_XPUB);
    if (!pub)
        return 1;
    zsock_set_sndhwm(pub, 100000);
    zsock_set_linger(pub, 2000);
    if (zsock_bind(pub, "tcp://127.0.0.1:*") < 0) {
        s_say("fail bind: %s\n", zmq_strerror(zmq_errno()));
        zsock_destroy(&pub);
        return 1;
    }
    s_say("ready endpoint=%s\n", zsock_endpoint(pub));
    /* The subscription message: the subscriber is connected and subscribed. */
    void *ps = zsock_resolve(pub);
    zsock_set_rcvtimeo(pub, READY_TIMEOUT_MS);
    uint8_t sub[64];
    int n = zmq_recv(ps, sub, sizeof(sub), 0);
    if (n < 1 || sub[0] != 1) {
        s_say("fail no subscription within %d ms\n", READY_TIMEOUT_MS);
        zsock_destroy(&pub);
        return 1;
    }
    uint8_t blob[RAW_BLOB_SIZE], payload[PAYLOAD_SIZE];
    memset(blob, 0x5a, sizeof(blob));
    s_payload(payload);
    uint64_t total = (uint64_t)llround(o->rate * o->seconds), i = 0, errors = 0;
    double period = 1e9 / o->rate;
    int64_t t0 = bench_now_ns();
    while (i < total && !zsys_interrupted) {
        uint64_t due = (uint64_t)((double)(bench_now_ns() - t0) / period) + 1;
        if (due > total)
            due = total;
        for (; i < due; i++) {
            int64_t ts = weft_now_ns();
            memcpy(blob, &ts, sizeof(ts));
            if (zmq_send(ps, RAW_TOPIC, sizeof(RAW_TOPIC) - 1, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
                zmq_send(ps, blob, sizeof(blob), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
                zmq_send(ps, payload, sizeof(payload), ZMQ_DONTWAIT) < 0)
                errors++;
        }
        if (i < total)
            s_sleep_ns(t0 + (int64_t)((double)i * period) - bench_now_ns());
    }
    double secs = (double)(bench_now_ns() - t0) / 1e9;
    zmq_send(ps, RAW_END, sizeof(RAW_END) - 1, ZMQ_SNDMORE);
    zmq_send(ps, blob, sizeof(blob), ZMQ_SNDMORE);
    zmq_send(ps, payload, 0, 0);
    s_say("result sent=%" PRIu64 " errors=%" PRIu64 " seconds=%.3f\n", i - errors, errors, secs);
    s_say("end\n");
    zsock_destroy(&pub); /* linger: the end message goes out */
    return 0;
}

static int s_worker_rawsub(const soak_opts_t *o)
{
    zsock_t *sub = zsock_new(ZMQ_SUB);
    uint64_t *hist = calloc(HIST_BUCKETS, sizeof(uint64_t));
    if (!sub || !hist || !o->endpoint) {
        zsock_destroy(&sub);
        free(hist);
        return 1;
    }
    zsock_set_rcvhwm(sub, 100000);
    zsock_set_linger(sub, 0);
    zsock_set_subscribe(sub, "soakraw.");
    zsock_set_rcvtimeo(sub, 200);
    if (zsock_connect(sub, "%s", o->endpoint) < 0) {
        s_say("fail connect %s\n", o->endpoint);
        zsock_destroy(&sub);
        free(hist);
        return 1;
    }
    void *ss = zsock_resolve(sub);
    uint64_t received = 0;
    int64_t lat_max = 0, last = bench_now_ns();
    int64_t give_up = last + (int64_t)(o->seconds * 1e9) + (int64_t)READY_TIMEOUT_MS * 1000000;
    bool ended = false;
    zmq_msg_t m;
    zmq_msg_init(&m);
    while (!ended && !zsys_interrupted) {
        int64_t now = bench_now_ns();
        if (now > give_up || (received && now - last > (int64_t)RAW_IDLE_MS * 1000000))
            break;
        if (zmq_msg_recv(&m, ss, 0) < 0)
            continue;
        int64_t t = weft_now_ns();
        bool end = zmq_msg_size(&m) == sizeof(RAW_END) - 1 &&
                   !memcmp(zmq_msg_data(&m), RAW_END, sizeof(RAW_END) - 1);
        int64_t ts = 0;
        int frame = 0;
        while (zmq_msg_more(&m) && zmq_msg_recv(&m, ss, 0) >= 0)
            if (++frame == 1 && zmq_msg_size(&m) >= sizeof(ts))
                memcpy(&ts, zmq_msg_data(&m), sizeof(ts));
        if (end) {
            ended = true;
            break;
        }
        received++;
        last = bench_now_ns();
        hist[s_hist_index(t - ts)]++;
        if (t - ts > lat_max)
            lat_max = t - ts;
    }
    zmq_msg_close(&m);
    s_say("result received=%" PRIu64 " lat_n=%" PRIu64 " lat_max=%" PRId64 " ended=%d\n",
          received, received, lat_max, ended ? 1 : 0);
    s_hist_write(s_report, hist);
    s_say("end\n");
    zsock_destroy(&sub);
    free(hist);
    return 0;
}

/* ---- benchmark side: the worker processes --------------------------------------------------- */

typedef enum { ROLE_PUB, ROLE_SUB, ROLE_RAWPUB, ROLE_RAWSUB } role_t;

typedef struct {
    char name[64];
    role_t role;
    int index;
    pid_t pid;             /* 0: not started or reaped */
    int in_fd, out_fd;     /* its stdin (we write), its stdout (we read); -1 when closed */
    char *buf;             /* what it wrote, not yet taken as lines */
    size_t len, cap;
    bool eof;
    long rss[MAX_RSS_SAMPLES]; /* VmRSS samples, KiB */
    size_t nrss;
} kid_t;

typedef struct {
    kid_t kids[MAX_NODES + 2];
    int nkids;
    bool sampling;
    int64_t next_sample, sample_every;
    char exe[64];
} soak_t;

static long s_vmrss_kib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long v = -1;
    while (fgets(line, sizeof(line), f))
        if (!strncmp(line, "VmRSS:", 6)) {
            v = strtol(line + 6, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}

static void s_sample(soak_t *S)
{
    for (int i = 0; i < S->nkids; i++) {
        kid_t *k = &S->kids[i];
        if (k->pid <= 0 || (k->role != ROLE_PUB && k->role != ROLE_SUB) ||
            k->nrss >= MAX_RSS_SAMPLES)
            continue;
        long v = s_vmrss_kib(k->pid);
        if (v >= 0)
            k->rss[k->nrss++] = v;
    }
}

/*  Starts `weft bench soak --worker ...` with args (NULL-terminated). Returns the kid or NULL. */
static kid_t *s_spawn(soak_t *S, role_t role, int index, const char *name, const char *const *args)
{
    if (S->nkids >= (int)(sizeof(S->kids) / sizeof(S->kids[0])))
        return NULL;
    kid_t *k = &S->kids[S->nkids];
    memset(k, 0, sizeof(*k));
    snprintf(k->name, sizeof(k->name), "%s", name);
    k->role = role;
    k->index = index;
    k->in_fd = k->out_fd = -1;
    const char *argv[40];
    int n = 0;
    argv[n++] = "weft";
    argv[n++] = "bench";
    argv[n++] = "soak";
    for (int i = 0; args[i] && n < 39; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) != 0)
        return NULL;
    if (pipe2(out, O_CLOEXEC) != 0) {
        close(in[0]), close(in[1]);
        return NULL;
    }
    pid_t parent = getpid();
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        close(in[0]), close(in[1]), close(out[0]), close(out[1]);
        return NULL;
    }
    if (pid == 0) {
        /* stdin: commands; fd 3: reports; stdout: our stderr, like its own stderr */
        if (dup2(in[0], 0) < 0 || dup2(2, 1) < 0)
            _exit(127);
        if (out[1] == 3 ? fcntl(3, F_SETFD, 0) < 0 : dup2(out[1], 3) < 0)
            _exit(127);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(1);
        execv(S->exe, (char *const *)argv);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    k->pid = pid;
    k->in_fd = in[1];
    k->out_fd = out[0];
    S->nkids++;
    return k;
}

/*  Reads what the workers wrote until `until` (monotonic ns) or until something arrives,
    sampling RSS when due. Returns 0 (something arrived, or until passed), -2 if interrupted. */
static int s_pump(soak_t *S, int64_t until)
{
    while (!zsys_interrupted) {
        int64_t now = bench_now_ns();
        if (S->sampling && now >= S->next_sample) {
            s_sample(S);
            S->next_sample += S->sample_every;
            if (S->next_sample < now)
                S->next_sample = now + S->sample_every;
        }
        int64_t stop = until;
        if (S->sampling && S->next_sample < stop)
            stop = S->next_sample;
        struct pollfd pfd[MAX_NODES + 2];
        int map[MAX_NODES + 2], np = 0;
        for (int i = 0; i < S->nkids; i++)
            if (S->kids[i].out_fd >= 0 && !S->kids[i].eof) {
                pfd[np] = (struct pollfd){S->kids[i].out_fd, POLLIN, 0};
                map[np++] = i;
            }
        int64_t left = stop - now;
        int r = poll(pfd, (nfds_t)np, left > 0 ? (int)(left / 1000000) + 1 : 0);
        if (r < 0 && errno != EINTR)
            return -2;
        bool got = false;
        for (int j = 0; j < np && r > 0; j++) {
            if (!pfd[j].revents)
                continue;
            kid_t *k = &S->kids[map[j]];
            if (k->cap - k->len < 4096) {
                size_t cap = k->cap ? k->cap * 2 : 16384;
                char *b = realloc(k->buf, cap);
                if (!b)
                    return -2;
                k->buf = b;
                k->cap = cap;
            }
            ssize_t n = read(k->out_fd, k->buf + k->len, k->cap - k->len);
            if (n <= 0)
                k->eof = true;
            else
                k->len += (size_t)n;
            got = true;
        }
        if (got || bench_now_ns() >= until)
            return 0;
    }
    return -2;
}

/*  The next line the worker wrote, NUL-terminated in *line (the caller frees it). Returns 0,
    -1 on timeout or when the worker ended without it, -2 if interrupted. */
static int s_line(soak_t *S, kid_t *k, int64_t deadline, char **line)
{
    while (1) {
        char *nl = k->buf ? memchr(k->buf, '\n', k->len) : NULL;
        if (nl) {
            size_t n = (size_t)(nl - k->buf);
            *line = malloc(n + 1);
            if (!*line)
                return -2;
            memcpy(*line, k->buf, n);
            (*line)[n] = 0;
            memmove(k->buf, nl + 1, k->len - n - 1);
            k->len -= n + 1;
            return 0;
        }
        if (k->eof) {
            fprintf(stderr, "weft bench soak: %s (pid %d) ended unexpectedly\n", k->name,
                    (int)k->pid);
            return -1;
        }
        if (bench_now_ns() >= deadline) {
            fprintf(stderr, "weft bench soak: %s (pid %d) did not answer in time\n", k->name,
                    (int)k->pid);
            return -1;
        }
        if (s_pump(S, deadline) == -2)
            return -2;
    }
}

/*  Waits for a line starting with `word` ("ready", ...); a "fail ..." line is reported. */
static int s_expect(soak_t *S, kid_t *k, const char *word, int64_t deadline, char **line)
{
    while (1) {
        int rc = s_line(S, k, deadline, line);
        if (rc != 0)
            return rc;
        size_t n = strlen(word);
        if (!strncmp(*line, word, n) && ((*line)[n] == ' ' || (*line)[n] == 0))
            return 0;
        if (!strncmp(*line, "fail", 4)) {
            fprintf(stderr, "weft bench soak: %s: %s\n", k->name, *line);
            free(*line);
            *line = NULL;
            return -1;
        }
        fprintf(stderr, "%s: %s\n", k->name, *line); /* anything else it wrote, e.g. a log */
        free(*line);
        *line = NULL;
    }
}

static void s_tell(kid_t *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void s_tell(kid_t *k, const char *fmt, ...)
{
    if (k->in_fd < 0)
        return;
    char buf[8192];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n > 0 && n < (int)sizeof(buf) && write(k->in_fd, buf, (size_t)n) != n)
        fprintf(stderr, "weft bench soak: cannot write to %s: %s\n", k->name, strerror(errno));
}

/*  Ends every worker still running: EOF on its stdin, then SIGTERM, then SIGKILL, by PID. */
static void s_end_all(soak_t *S)
{
    for (int i = 0; i < S->nkids; i++)
        if (S->kids[i].in_fd >= 0) {
            close(S->kids[i].in_fd);
            S->kids[i].in_fd = -1;
        }
    for (int stage = 0; stage < 3; stage++) {
        int64_t until = bench_now_ns() + (stage == 0 ? 3000 : 2000) * 1000000LL;
        bool alive = true;
        while (alive) {
            alive = false;
            for (int i = 0; i < S->nkids; i++) {
                kid_t *k = &S->kids[i];
                if (k->pid <= 0)
                    continue;
                pid_t r = waitpid(k->pid, NULL, WNOHANG);
                if (r == k->pid || (r < 0 && errno == ECHILD))
                    k->pid = 0;
                else
                    alive = true;
            }
            if (!alive || bench_now_ns() >= until)
                break;
            zclock_sleep(20);
        }
        if (!alive)
            break;
        for (int i = 0; i < S->nkids; i++)
            if (S->kids[i].pid > 0)
                kill(S->kids[i].pid, stage == 0 ? SIGTERM : SIGKILL);
        if (stage == 2)
            for (int i = 0; i < S->nkids; i++)
                if (S->kids[i].pid > 0) {
                    waitpid(S->kids[i].pid, NULL, 0);
                    S->kids[i].pid = 0;
                }
    }
    for (int i = 0; i < S->nkids; i++) {
        if (S->kids[i].out_fd >= 0)
            close(S->kids[i].out_fd);
        S->kids[i].out_fd = -1;
        free(S->kids[i].buf);
        S->kids[i].buf = NULL;
        S->kids[i].len = S->kids[i].cap = 0;
    }
}

/* ---- benchmark side: phases ----------------------------------------------------------------- */

typedef struct {
    bool ok;
    uint64_t sent, received;
    double p50, p99, max;
} raw_result_t;

static int s_baseline(soak_t *S, const soak_opts_t *o, raw_result_t *R)
{
    memset(R, 0, sizeof(*R));
    char rate[32], secs[32], run[32];
    snprintf(rate, sizeof(rate), "%.6g", o->rate);
    snprintf(secs, sizeof(secs), "%.6g", RAW_SECONDS);
    snprintf(run, sizeof(run), "%ld", (long)getpid());
    const char *pa[] = {"--worker", "rawpub", "--run", run, "--rate", rate, "--seconds", secs,
                        NULL};
    kid_t *pub = s_spawn(S, ROLE_RAWPUB, 1, "raw-pub", pa);
    if (!pub)
        return -1;
    char *line = NULL;
    int64_t deadline = bench_now_ns() + (int64_t)READY_TIMEOUT_MS * 1000000;
    int rc = s_expect(S, pub, "ready", deadline, &line);
    char ep[256] = "";
    if (rc == 0 && !s_kv_str(line, "endpoint", ep, sizeof(ep)))
        rc = -1;
    free(line);
    if (rc != 0)
        return rc;
    const char *sa[] = {"--worker", "rawsub", "--run", run, "--rate", rate, "--seconds", secs,
                        "--endpoint", ep, NULL};
    kid_t *sub = s_spawn(S, ROLE_RAWSUB, 1, "raw-sub", sa);
    if (!sub)
        return -1;
    deadline = bench_now_ns() + (int64_t)(RAW_SECONDS * 1e9) + 2LL * READY_TIMEOUT_MS * 1000000;
    if ((rc = s_expect(S, pub, "result", deadline, &line)) != 0)
        return rc;
    R->sent = s_kv(line, "sent");
    free(line);
    if ((rc = s_expect(S, sub, "result", deadline, &line)) != 0)
        return rc;
    R->received = s_kv(line, "received");
    R->max = (double)s_kv(line, "lat_max");
    free(line);
    uint64_t *h = calloc(HIST_BUCKETS, sizeof(uint64_t));
    if (!h)
        return -1;
    uint64_t n = 0;
    if ((rc = s_expect(S, sub, "hist", deadline, &line)) == 0) {
        n = s_hist_merge(h, line);
        free(line);
    }
    R->p50 = s_hist_pct(h, n, 0.50);
    R->p99 = s_hist_pct(h, n, 0.99);
    free(h);
    R->ok = rc == 0;
    return rc;
}

typedef struct {
    uint64_t received, foreign, dups, gaps, repaired, unrepaired, lat_n;
    int64_t lat_max;
    bool complete, reported;
    uint64_t distinct[MAX_NODES];  /* per publisher index (1..) */
    uint64_t lost;
    double p50, p99;
} sub_result_t;

typedef struct {
    uint64_t published, last_seq, errors;
    double seconds;
} pub_result_t;

/*  Mean of v[from..to). */
static double s_mean(const long *v, size_t from, size_t to)
{
    double s = 0;
    for (size_t i = from; i < to; i++)
        s += (double)v[i];
    return to > from ? s / (double)(to - from) : 0;
}

/*  Flatness of a series: first-third and last-third means (KiB); 1 flat, 0 not, -1 too few. */
static int s_flat(const kid_t *k, double *first, double *last)
{
    size_t n = k->nrss, t = n / 3;
    *first = *last = 0;
    if (t < 1)
        return -1;
    *first = s_mean(k->rss, 0, t);
    *last = s_mean(k->rss, n - t, n);
    double d = fabs(*last - *first);
    return d <= MEM_FLAT_SHARE * *first || d <= MEM_FLAT_MIB * 1024 ? 1 : 0;
}

static void s_usage(FILE *out)
{
    fprintf(out,
            "usage: weft bench soak [--seconds S] [--rate R] [--nodes N] [--json]\n\n"
            "Runs N weft nodes as separate processes on this machine (N/2 publishers, the rest\n"
            "subscribers, one private gossip seed) for S seconds: the publishers publish R\n"
            "events/s in total, the subscribers subscribe with repair on (at-least-once) and\n"
            "count every publisher's seqs and the end-to-end latency (receive time - envelope\n"
            "ts). At the end every process reports its counts; lost = events published minus\n"
            "distinct events received, per subscriber, summed (it must be 0). VmRSS of every\n"
            "process is sampled every few seconds; the series is printed and called flat when\n"
            "its last third is within %.0f%% or %.0f MiB of its first third. Baseline, in the\n"
            "same run: raw libzmq PUB/SUB between two processes at the same rate for %.0f s.\n\n"
            "options:\n"
            "  --seconds S  how long the publishers publish (default 60; s, m, h suffixes;\n"
            "               10m for the record)\n"
            "  --rate R     events/s over all publishers (default 5000; k suffix)\n"
            "  --nodes N    node processes, 2 to %d (default 5)\n"
            "  --json       results as one JSON object on stdout (the text goes to stderr)\n\n"
            "The last line of the text is `soak: lost=N ...`. Exit status: 0 nothing lost, 1 a\n"
            "loss or a failure, 2 usage error, 130 interrupted.\n",
            MEM_FLAT_SHARE * 100, MEM_FLAT_MIB, RAW_SECONDS, MAX_NODES);
}

static int s_parse(int argc, char **argv, soak_opts_t *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        double d;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            s_usage(stdout);
            return 0;
        } else if (!strcmp(a, "--json"))
            o->json = true;
        else if (!strcmp(a, "--seconds")) {
            if ((d = s_parse_seconds(v)) < 1 || d > 7 * 86400.0) {
                fprintf(stderr, "weft bench soak: --seconds wants 1 s to 7 days (60, 10m)\n");
                return 2;
            }
            o->seconds = d, i++;
        } else if (!strcmp(a, "--rate")) {
            if ((d = bench_parse_count(v)) < 1 || d > 1e6) {
                fprintf(stderr, "weft bench soak: --rate wants 1 to 1000000 events/s\n");
                return 2;
            }
            o->rate = d, i++;
        } else if (!strcmp(a, "--nodes")) {
            if ((d = bench_parse_count(v)) < 2 || d > MAX_NODES || d != floor(d)) {
                fprintf(stderr, "weft bench soak: --nodes wants a whole number from 2 to %d\n",
                        MAX_NODES);
                return 2;
            }
            o->nodes = (int)d, i++;
        }
        /* the worker mode's options (internal) */
        else if (!strcmp(a, "--worker") && v)
            o->worker = v, i++;
        else if (!strcmp(a, "--run") && v)
            o->run = strtol(v, NULL, 10), i++;
        else if (!strcmp(a, "--index") && v)
            o->index = atoi(v), i++;
        else if (!strcmp(a, "--seed") && v)
            o->seed = v, i++;
        else if (!strcmp(a, "--gossip-bind") && v)
            o->gbind = v, i++;
        else if (!strcmp(a, "--peers") && v)
            o->peers = atoi(v), i++;
        else if (!strcmp(a, "--endpoint") && v)
            o->endpoint = v, i++;
        else {
            fprintf(stderr, "weft bench soak: unknown option '%s'\n\n", a);
            s_usage(stderr);
            return 2;
        }
    }
    return -1;
}

int bench_soak(int argc, char **argv)
{
    soak_opts_t o = {.seconds = 60, .rate = 5000, .nodes = 5};
    int prc = s_parse(argc, argv, &o);
    if (prc >= 0)
        return prc;
    if (!o.worker && (o.run || o.index || o.seed || o.gbind || o.peers || o.endpoint)) {
        fprintf(stderr, "weft bench soak: --run, --index, --seed, --gossip-bind, --peers and "
                        "--endpoint are internal (worker processes)\n");
        return 2;
    }
    if (o.worker) {
        zsys_set_logstream(stderr);
        s_report = fcntl(3, F_GETFD) >= 0 ? fdopen(3, "w") : NULL;
        if (!s_report)
            s_report = stdout;
        if (!strcmp(o.worker, "pub"))
            return s_worker_pub(&o);
        if (!strcmp(o.worker, "sub"))
            return s_worker_sub(&o);
        if (!strcmp(o.worker, "rawpub"))
            return s_worker_rawpub(&o);
        if (!strcmp(o.worker, "rawsub"))
            return s_worker_rawsub(&o);
        fprintf(stderr, "weft bench soak: unknown worker '%s'\n", o.worker);
        return 2;
    }

    FILE *out = o.json ? stderr : stdout;
    zsys_set_logstream(stderr);
    signal(SIGPIPE, SIG_IGN);
    soak_t *S = calloc(1, sizeof(soak_t));
    uint64_t *hist = calloc(HIST_BUCKETS, sizeof(uint64_t));
    uint64_t *shist = calloc(HIST_BUCKETS, sizeof(uint64_t));
    if (!S || !hist || !shist) {
        fprintf(stderr, "weft bench soak: out of memory\n");
        free(S), free(hist), free(shist);
        return 1;
    }
    snprintf(S->exe, sizeof(S->exe), "/proc/self/exe");
    int npub = o.nodes / 2 > 0 ? o.nodes / 2 : 1;
    int nsub = o.nodes - npub;
    double every = o.seconds / 20;
    every = every < 2 ? 2 : every > 10 ? 10 : every;
    S->sample_every = (int64_t)(every * 1e9);
    long run = (long)getpid();
    char srun[32], rate_each[32], secs[32], peers[16];
    snprintf(srun, sizeof(srun), "%ld", run);
    snprintf(rate_each, sizeof(rate_each), "%.9g", o.rate / npub);
    snprintf(secs, sizeof(secs), "%.9g", o.seconds);
    snprintf(peers, sizeof(peers), "%d", o.nodes - 1);
    double load[3] = {0};
    if (getloadavg(load, 3) < 1)
        load[0] = -1;
    fprintf(out,
            "weft bench soak: %d node processes (%d publisher%s, %d subscriber%s with repair on, "
            "one private gossip seed), %.0f ev/s in total for %.0f s, payload %d B; VmRSS every "
            "%.0f s; machine: %ld cores, load average %.2f at the start%s\n",
            o.nodes, npub, npub == 1 ? "" : "s", nsub, nsub == 1 ? "" : "s", o.rate, o.seconds,
            PAYLOAD_SIZE, every, sysconf(_SC_NPROCESSORS_ONLN), load[0],
            load[0] > 0.5 ? " (other work is running: latencies will be noisier)" : "");
    fflush(out);

    int status = 1;
    char *line = NULL;
    raw_result_t raw;
    sub_result_t sres[MAX_NODES];
    pub_result_t pres[MAX_NODES];
    memset(sres, 0, sizeof(sres));
    memset(pres, 0, sizeof(pres));
    kid_t *pubs[MAX_NODES], *subs[MAX_NODES];
    int64_t pub_t0 = 0, pub_t1 = 0;

    /* 1. Baseline. */
    fprintf(stderr, "soak 1/4: baseline, raw libzmq PUB/SUB at %.0f ev/s for %.0f s ...\n",
            o.rate, RAW_SECONDS);
    int rc = s_baseline(S, &o, &raw);
    s_end_all(S);
    S->nkids = 0;
    if (rc != 0)
        goto done;
    char b1[32], b2[32], b3[32];
    fprintf(out,
            "baseline: raw libzmq XPUB -> SUB (2 processes, TCP loopback) at %.0f ev/s for %.0f "
            "s: sent %" PRIu64 " received %" PRIu64 " lost %" PRIu64
            ", latency p50 %s p99 %s max %s\n",
            o.rate, RAW_SECONDS, raw.sent, raw.received,
            raw.sent > raw.received ? raw.sent - raw.received : 0, s_dur(b1, 32, raw.p50),
            s_dur(b2, 32, raw.p99), s_dur(b3, 32, raw.max));
    fflush(out);

    /* 2. The fabric: subscribers first (the first holds the gossip seed), then publishers. */
    fprintf(stderr, "soak 2/4: starting %d subscriber%s and %d publisher%s ...\n", nsub,
            nsub == 1 ? "" : "s", npub, npub == 1 ? "" : "s");
    char seed[256] = "none";
    int64_t deadline = bench_now_ns() + (int64_t)READY_TIMEOUT_MS * 1000000;
    for (int i = 1; i <= nsub; i++) {
        char name[64], idx[16];
        snprintf(name, sizeof(name), "sub-%d", i);
        snprintf(idx, sizeof(idx), "%d", i);
        const char *a[] = {"--worker", "sub", "--run", srun, "--index", idx, "--seed",
                           i == 1 ? "none" : seed, "--gossip-bind",
                           i == 1 ? "tcp://127.0.0.1:*" : "none", NULL};
        subs[i - 1] = s_spawn(S, ROLE_SUB, i, name, a);
        if (!subs[i - 1] || (rc = s_expect(S, subs[i - 1], "ready", deadline, &line)) != 0)
            goto done;
        if (i == 1 && (!s_kv_str(line, "gossip", seed, sizeof(seed)) || !strcmp(seed, "none"))) {
            fprintf(stderr, "weft bench soak: the first subscriber holds no gossip seed\n");
            goto done;
        }
        free(line), line = NULL;
    }
    for (int i = 1; i <= npub; i++) {
        char name[64], idx[16];
        snprintf(name, sizeof(name), "pub-%d", i);
        snprintf(idx, sizeof(idx), "%d", i);
        const char *a[] = {"--worker", "pub", "--run", srun, "--index", idx, "--seed", seed,
                           "--gossip-bind", "none", "--peers", peers, "--rate", rate_each,
                           "--seconds", secs, NULL};
        if (!(pubs[i - 1] = s_spawn(S, ROLE_PUB, i, name, a)))
            goto done;
    }
    deadline = bench_now_ns() + (int64_t)READY_TIMEOUT_MS * 1000000;
    for (int i = 0; i < npub; i++) {
        if ((rc = s_expect(S, pubs[i], "ready", deadline, &line)) != 0)
            goto done;
        free(line), line = NULL;
    }

    /* 3. Publish; sample memory meanwhile. */
    fprintf(stderr, "soak 3/4: publishing for %.0f s (pids:", o.seconds);
    for (int i = 0; i < S->nkids; i++)
        fprintf(stderr, " %s=%d", S->kids[i].name, (int)S->kids[i].pid);
    fprintf(stderr, ") ...\n");
    pub_t0 = bench_now_ns();
    S->sampling = true;
    S->next_sample = pub_t0;
    for (int i = 0; i < npub; i++)
        s_tell(pubs[i], "start\n");
    deadline = pub_t0 + (int64_t)(o.seconds * 1e9) + (int64_t)READY_TIMEOUT_MS * 1000000;
    for (int i = 0; i < npub; i++) {
        if ((rc = s_expect(S, pubs[i], "published", deadline, &line)) != 0)
            goto done;
        pres[i].published = s_kv(line, "n");
        pres[i].last_seq = s_kv(line, "last_seq");
        pres[i].errors = s_kv(line, "errors");
        const char *sp = strstr(line, "seconds=");
        pres[i].seconds = sp ? strtod(sp + 8, NULL) : 0;
        free(line), line = NULL;
    }
    pub_t1 = bench_now_ns();
    s_sample(S);
    S->sampling = false;

    /* 4. Drain: each subscriber waits for every publisher's events, then reports. */
    fprintf(stderr, "soak 4/4: waiting for the subscribers to have every event ...\n");
    char spec[4096];
    size_t sl = (size_t)snprintf(spec, sizeof(spec), "drain %d", DRAIN_TIMEOUT_MS);
    for (int i = 0; i < npub && sl < sizeof(spec); i++)
        sl += (size_t)snprintf(spec + sl, sizeof(spec) - sl, " soak-%ld-pub-%d=%" PRIu64, run,
                               i + 1, pres[i].last_seq);
    for (int i = 0; i < nsub; i++)
        s_tell(subs[i], "%s\n", spec);
    deadline = bench_now_ns() + DRAIN_TIMEOUT_MS * 1000000LL + STOP_TIMEOUT_MS * 1000000LL;
    for (int i = 0; i < nsub; i++) {
        sub_result_t *r = &sres[i];
        if ((rc = s_expect(S, subs[i], "result", deadline, &line)) != 0)
            goto done;
        r->received = s_kv(line, "received");
        r->foreign = s_kv(line, "foreign");
        r->dups = s_kv(line, "dups");
        r->gaps = s_kv(line, "gaps");
        r->repaired = s_kv(line, "repaired");
        r->unrepaired = s_kv(line, "unrepaired");
        r->lat_max = (int64_t)s_kv(line, "lat_max");
        r->complete = s_kv(line, "complete") == 1;
        free(line), line = NULL;
        while ((rc = s_line(S, subs[i], deadline, &line)) == 0 && strcmp(line, "end") != 0) {
            if (!strncmp(line, "src ", 4)) {
                char name[128];
                const char *p = line + 4;
                size_t n = strcspn(p, " ");
                snprintf(name, sizeof(name), "%.*s", (int)(n < 127 ? n : 127), p);
                const char *dash = strrchr(name, '-');
                int k = dash ? atoi(dash + 1) : 0;
                if (k >= 1 && k <= npub)
                    r->distinct[k - 1] = s_kv(line, "distinct");
            } else if (!strncmp(line, "hist", 4)) {
                memset(shist, 0, HIST_BUCKETS * sizeof(uint64_t));
                r->lat_n = s_hist_merge(shist, line);
                s_hist_merge(hist, line);
                r->p50 = s_hist_pct(shist, r->lat_n, 0.50);
                r->p99 = s_hist_pct(shist, r->lat_n, 0.99);
            }
            free(line), line = NULL;
        }
        if (rc != 0)
            goto done;
        free(line), line = NULL;
        r->reported = true;
        for (int k = 0; k < npub; k++)
            r->lost += pres[k].published > r->distinct[k] ? pres[k].published - r->distinct[k]
                                                          : 0;
    }
    /* 5. Publishers last. */
    for (int i = 0; i < npub; i++)
        s_tell(pubs[i], "stop\n");
    deadline = bench_now_ns() + STOP_TIMEOUT_MS * 1000000LL;
    for (int i = 0; i < npub; i++) {
        if (s_expect(S, pubs[i], "result", deadline, &line) == 0)
            free(line), line = NULL;
        if (s_expect(S, pubs[i], "end", deadline, &line) == 0)
            free(line), line = NULL;
    }
    status = 0;

done:
    free(line);
    s_end_all(S);
    if (zsys_interrupted && status != 0) {
        fprintf(stderr, "weft bench soak: interrupted\n");
        free(S), free(hist), free(shist);
        return 130;
    }
    if (status != 0) {
        fprintf(stderr, "weft bench soak: the run failed (see above)\n");
        fprintf(out, "soak: FAILED before the end of the run (see stderr)\n");
        free(S), free(hist), free(shist);
        return 1;
    }

    /* ---- summary ---- */
    uint64_t published = 0, pub_errors = 0, lost = 0, dups = 0, gaps = 0, repaired = 0;
    uint64_t unrepaired = 0, foreign = 0, lat_n = 0;
    int64_t lat_max = 0;
    for (int i = 0; i < npub; i++)
        published += pres[i].published, pub_errors += pres[i].errors;
    for (int i = 0; i < nsub; i++) {
        const sub_result_t *r = &sres[i];
        lost += r->lost, dups += r->dups, gaps += r->gaps, repaired += r->repaired;
        unrepaired += r->unrepaired, foreign += r->foreign, lat_n += r->lat_n;
        if (r->lat_max > lat_max)
            lat_max = r->lat_max;
        fprintf(out,
                "subscriber sub-%d: distinct %" PRIu64 " of %" PRIu64 " (lost %" PRIu64
                ") duplicates %" PRIu64 " gaps %" PRIu64 " repaired %" PRIu64
                " unrepaired %" PRIu64 " | latency p50 %s p99 %s max %s%s\n",
                i + 1, published - r->lost, published, r->lost, r->dups, r->gaps, r->repaired,
                r->unrepaired, s_dur(b1, 32, r->p50), s_dur(b2, 32, r->p99),
                s_dur(b3, 32, (double)r->lat_max), r->complete ? "" : " (INCOMPLETE at the end)");
    }
    double p50 = s_hist_pct(hist, lat_n, 0.50), p99 = s_hist_pct(hist, lat_n, 0.99);
    double pub_secs = (double)(pub_t1 - pub_t0) / 1e9;
    bool all_flat = true;
    char rss_sum[4096];
    size_t rl = 0;
    rss_sum[0] = 0;
    for (int i = 0; i < S->nkids; i++) {
        kid_t *k = &S->kids[i];
        if (k->role != ROLE_PUB && k->role != ROLE_SUB)
            continue;
        double f, l;
        int flat = s_flat(k, &f, &l);
        all_flat = all_flat && flat != 0;
        fprintf(out, "rss %s (MiB, every %.0f s, %zu samples):", k->name, every, k->nrss);
        for (size_t j = 0; j < k->nrss; j++)
            fprintf(out, " %.1f", (double)k->rss[j] / 1024);
        fprintf(out, " | first third %.1f last third %.1f: %s\n", f / 1024, l / 1024,
                flat < 0 ? "too few samples" : flat ? "flat" : "GROWING");
        if (rl < sizeof(rss_sum))
            rl += (size_t)snprintf(rss_sum + rl, sizeof(rss_sum) - rl, "%s%s %.1f->%.1f%s",
                                   rl ? ", " : "", k->name, f / 1024, l / 1024,
                                   flat < 0 ? " (few samples)" : flat ? "" : " GROWING");
    }
    char l1[32], l2[32], l3[32], r1[32], r2[32];
    fprintf(out,
            "soak: lost=%" PRIu64 " (published %" PRIu64 " by %d publisher%s in %.1f s = %.0f "
            "ev/s, %d subscriber%s, at-least-once with repair) duplicates=%" PRIu64
            " gaps=%" PRIu64 " repaired=%" PRIu64 " unrepaired=%" PRIu64
            " | end-to-end latency p50 %s p99 %s max %s | raw zmq PUB/SUB same rate, %.0f s: "
            "p50 %s p99 %s (p50 ratio %.1f) | RSS MiB first->last third: %s: %s\n",
            lost, published, npub, npub == 1 ? "" : "s", pub_secs,
            pub_secs > 0 ? (double)published / pub_secs : 0, nsub, nsub == 1 ? "" : "s", dups,
            gaps, repaired, unrepaired, s_dur(l1, 32, p50), s_dur(l2, 32, p99),
            s_dur(l3, 32, (double)lat_max), RAW_SECONDS, s_dur(r1, 32, raw.p50),
            s_dur(r2, 32, raw.p99), raw.p50 > 0 ? p50 / raw.p50 : 0, rss_sum,
            all_flat ? "flat" : "NOT FLAT");
    fflush(out);
    if (o.json) {
        printf("{\"bench\":\"soak\",\"seconds\":%.3f,\"rate\":%.3f,\"nodes\":%d,"
               "\"publishers\":%d,\"subscribers\":%d,\"published\":%" PRIu64
               ",\"publish_errors\":%" PRIu64 ",\"publish_seconds\":%.3f,\"lost\":%" PRIu64
               ",\"duplicates\":%" PRIu64 ",\"gaps\":%" PRIu64 ",\"repaired\":%" PRIu64
               ",\"unrepaired\":%" PRIu64 ",\"foreign\":%" PRIu64
               ",\"latency_ns\":{\"p50\":%.0f,\"p99\":%.0f,\"max\":%" PRId64 "},"
               "\"raw\":{\"seconds\":%.0f,\"sent\":%" PRIu64 ",\"received\":%" PRIu64
               ",\"p50_ns\":%.0f,\"p99_ns\":%.0f,\"max_ns\":%.0f},\"rss_flat\":%s,"
               "\"rss_sample_seconds\":%.1f,\"processes\":[",
               o.seconds, o.rate, o.nodes, npub, nsub, published, pub_errors, pub_secs, lost,
               dups, gaps, repaired, unrepaired, foreign, p50, p99, lat_max, RAW_SECONDS,
               raw.sent, raw.received, raw.p50, raw.p99, raw.max, all_flat ? "true" : "false",
               every);
        bool first = true;
        for (int i = 0; i < S->nkids; i++) {
            kid_t *k = &S->kids[i];
            if (k->role != ROLE_PUB && k->role != ROLE_SUB)
                continue;
            double f, l;
            int flat = s_flat(k, &f, &l);
            printf("%s{\"name\":\"%s\",\"role\":\"%s\",\"rss_kib\":[", first ? "" : ",", k->name,
                   k->role == ROLE_PUB ? "pub" : "sub");
            for (size_t j = 0; j < k->nrss; j++)
                printf("%s%ld", j ? "," : "", k->rss[j]);
            printf("],\"first_third_kib\":%.0f,\"last_third_kib\":%.0f,\"flat\":%s", f, l,
                   flat < 0 ? "null" : flat ? "true" : "false");
            if (k->role == ROLE_SUB) {
                const sub_result_t *r = &sres[k->index - 1];
                printf(",\"lost\":%" PRIu64 ",\"duplicates\":%" PRIu64 ",\"gaps\":%" PRIu64
                       ",\"repaired\":%" PRIu64 ",\"p50_ns\":%.0f,\"p99_ns\":%.0f",
                       r->lost, r->dups, r->gaps, r->repaired, r->p50, r->p99);
            } else
                printf(",\"published\":%" PRIu64, pres[k->index - 1].published);
            printf("}");
            first = false;
        }
        printf("]}\n");
        fflush(stdout);
    }
    free(S), free(hist), free(shist);
    return lost == 0 ? 0 : 1;
}

/*  cmd_bench.c - `weft bench`: performance figures of weft measured against raw baselines in
    the same run. Each benchmark is a subcommand (one row of s_benches); `pubsub` compares
    node -> node publishing over TCP loopback with raw libzmq PUB/SUB sending the same three
    frames, and reports throughput, losses and per-call publish latency as medians over passes.
*/
#include <czmq.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_archive.h"
#include "bench_dlq.h"
#include "bench_node.h"
#include "bench_opts.h"
#include "bench_rawzmq.h"
#include "bench_soak.h"
#include "bench_stats.h"
#include "cli.h"

/* ---- pacing --------------------------------------------------------------------------------- */

/*  Waits until event number i (from 0) is due when pacing at rate events/s from t0: sleeps
    when far ahead, spins the last stretch. */
static void s_pace(int64_t t0, uint64_t i, double rate)
{
    int64_t due = t0 + (int64_t)((double)i * 1e9 / rate);
    while (1) {
        int64_t now = bench_now_ns();
        if (now >= due)
            return;
        if (due - now > 100000) {
            struct timespec ts = {0, (long)(due - now - 50000)};
            nanosleep(&ts, NULL);
        }
    }
}

/* ---- pubsub --------------------------------------------------------------------------------- */

#define PUBSUB_TOPIC "bench.pubsub"
#define READY_TIMEOUT_MS 5000   /* connection + subscription, for either variant */
#define IDLE_END_MS 1000        /* a receiver stops after this long without a message */
#define RATIO_TARGET 0.75       /* weft ev/s over raw zmq ev/s */
#define P99_TARGET_NS 2000      /* weft_publish p99 */

typedef struct {
    uint64_t events;        /* per pass and variant */
    int passes;
    size_t size;            /* payload bytes */
    double rate;            /* events/s, 0 = flat out */
    int hwm;                /* sndhwm and rcvhwm, both variants */
    bool json;
} pubsub_opts_t;

/*  What one variant measured in one pass. */
typedef struct {
    double evs;             /* received / (last receive - first send) */
    uint64_t received;
    uint64_t lost;          /* events - received */
    uint64_t gaps;          /* weft only: the subscriber's gaps counter */
    uint64_t send_errors;   /* calls that returned an error */
    bench_pct_t call;       /* per-call latency of the send (raw) or weft_publish (weft), ns */
    double slow;            /* share of calls over P99_TARGET_NS */
} variant_t;

/*  The shared inputs of a pass: frames and the latency sample buffer (events entries). The
    raw variant sends all three frames; the envelope is a real encoded envelope, so both
    variants send the same number of bytes. */
typedef struct {
    const pubsub_opts_t *o;
    bench_frames_t frames;     /* topic, envelope-sized blob (raw variant only), payload */
    uint32_t *samples;
} pubsub_ctx_t;

static int s_run_raw(const pubsub_ctx_t *c, variant_t *r)
{
    const pubsub_opts_t *o = c->o;
    memset(r, 0, sizeof(*r));
    int rc = -1;
    bench_rawzmq_t z;
    int zrc = bench_rawzmq_open(&z, PUBSUB_TOPIC, o->hwm);
    if (zrc == -2)
        fprintf(stderr, "weft bench: raw zmq: cannot bind/connect over TCP loopback: %s\n",
                zmq_strerror(zmq_errno()));
    if (zrc != 0)
        goto out;
    if (bench_rawzmq_warm_up(&z, &c->frames, READY_TIMEOUT_MS) != 0) {
        fprintf(stderr, "weft bench: raw zmq: the subscription did not arrive within %d ms\n",
                READY_TIMEOUT_MS);
        goto out;
    }
    if (bench_rawzmq_receive(&z, o->events, IDLE_END_MS) != 0)
        goto out;

    int64_t first = bench_now_ns();
    uint64_t sent = 0;
    for (uint64_t i = 0; i < o->events; i++, sent++) {
        if ((i & 4095) == 0 && zsys_interrupted)
            break;
        if (o->rate > 0)
            s_pace(first, i, o->rate);
        int64_t t0 = bench_now_ns();
        int err = bench_rawzmq_send(&z, &c->frames);
        int64_t t1 = bench_now_ns();
        c->samples[i] = bench_sample(t1 - t0);
        if (i == 0)
            first = t0;
        r->send_errors += err != 0;
    }
    bench_rawzmq_wait(&z);

    r->received = z.rx.received;
    r->lost = sent > z.rx.received ? sent - z.rx.received : 0;
    r->evs = z.rx.received && z.rx.last_ns > first
                 ? z.rx.received * 1e9 / (double)(z.rx.last_ns - first)
                 : 0;
    bench_percentiles(c->samples, sent, &r->call);
    r->slow = bench_share_above(c->samples, sent, P99_TARGET_NS);
    rc = 0;
out:
    bench_rawzmq_close(&z);
    return rc;
}

/*  The weft subscriber's handler state. Events with seq < start_seq are warm-up. Aligned and
    padded like bench_rawsub_t. */
typedef struct {
    _Alignas(64) atomic_uint_fast64_t start_seq;
    atomic_uint_fast64_t warm;
    atomic_uint_fast64_t count;
    atomic_int_fast64_t last_ns;
    char pad[64];
} weft_sink_t;

static int s_weft_sink(weft_event_t *ev, void *arg)
{
    weft_sink_t *s = arg;
    if (ev->env->seq < atomic_load_explicit(&s->start_seq, memory_order_acquire)) {
        atomic_fetch_add_explicit(&s->warm, 1, memory_order_relaxed);
        return 0;
    }
    atomic_store_explicit(&s->last_ns, bench_now_ns(), memory_order_relaxed);
    atomic_fetch_add_explicit(&s->count, 1, memory_order_release);
    return 0;
}

/*  A node for the benchmark: no gossip, no loopback, the benchmark's HWMs. */
static weft_node_t *s_bench_node(const char *name, const pubsub_opts_t *o, const char *connect)
{
    int err = 0;
    weft_node_t *node = bench_node_new(name, o->hwm, connect, &err);
    if (!node)
        fprintf(stderr, "weft bench: cannot start node %s: %s\n", name, weft_strerror(err));
    return node;
}

static int s_run_weft(const pubsub_ctx_t *c, variant_t *r)
{
    const pubsub_opts_t *o = c->o;
    memset(r, 0, sizeof(*r));
    int rc = -1;
    weft_node_t *pub = NULL;
    weft_sink_t sink;
    atomic_init(&sink.start_seq, UINT64_MAX);
    atomic_init(&sink.warm, 0);
    atomic_init(&sink.count, 0);
    atomic_init(&sink.last_ns, 0);

    weft_node_t *sub = s_bench_node("bench-sub", o, NULL);
    if (!sub)
        goto out;
    /* "" (every data topic) rather than the topic itself, so the gaps counter is kept. */
    int err = 0;
    if (!weft_subscribe(sub, "", s_weft_sink, &sink, NULL, &err)) {
        fprintf(stderr, "weft bench: subscribe: %s\n", weft_strerror(err));
        goto out;
    }
    pub = s_bench_node("bench-pub", o, weft_node_sub_endpoint(sub));
    if (!pub)
        goto out;
    if (weft_node_wait_peers(pub, READY_TIMEOUT_MS) < 1) {
        fprintf(stderr, "weft bench: the subscriber node was not ready within %d ms\n",
                READY_TIMEOUT_MS);
        goto out;
    }
    /* Warm-up: one event through end to end; later warm-up arrivals are told apart by seq. */
    int64_t deadline = bench_now_ns() + (int64_t)READY_TIMEOUT_MS * 1000000;
    int64_t last_warm = 0;
    while (atomic_load(&sink.warm) == 0 && bench_now_ns() < deadline && !zsys_interrupted) {
        last_warm = weft_publish(pub, PUBSUB_TOPIC, c->frames.payload, o->size, NULL, NULL);
        if (last_warm < 0) {
            fprintf(stderr, "weft bench: weft_publish: %s\n", weft_strerror((int)last_warm));
            goto out;
        }
        zclock_sleep(1);
    }
    if (atomic_load(&sink.warm) == 0) {
        fprintf(stderr, "weft bench: no warm-up event arrived within %d ms\n", READY_TIMEOUT_MS);
        goto out;
    }
    atomic_store_explicit(&sink.start_seq, (uint64_t)last_warm + 1, memory_order_release);

    int64_t first = bench_now_ns();
    uint64_t sent = 0;
    for (uint64_t i = 0; i < o->events; i++, sent++) {
        if ((i & 4095) == 0 && zsys_interrupted)
            break;
        if (o->rate > 0)
            s_pace(first, i, o->rate);
        int64_t t0 = bench_now_ns();
        int64_t seq = weft_publish(pub, PUBSUB_TOPIC, c->frames.payload, o->size, NULL, NULL);
        int64_t t1 = bench_now_ns();
        c->samples[i] = bench_sample(t1 - t0);
        if (i == 0)
            first = t0;
        r->send_errors += seq < 0;
    }
    /* Wait for everything, or until the subscriber has been idle for IDLE_END_MS. */
    uint64_t seen = 0;
    int64_t idle_since = bench_now_ns();
    while (1) {
        uint64_t n = atomic_load_explicit(&sink.count, memory_order_acquire);
        int64_t now = bench_now_ns();
        if (n >= sent || zsys_interrupted)
            break;
        if (n != seen) {
            seen = n;
            idle_since = now;
        } else if (now - idle_since >= (int64_t)IDLE_END_MS * 1000000)
            break;
        zclock_sleep(1);
    }
    uint64_t received = atomic_load_explicit(&sink.count, memory_order_acquire);
    int64_t last = atomic_load_explicit(&sink.last_ns, memory_order_relaxed);
    weft_stats_t st;
    weft_node_stats(sub, &st);
    r->received = received;
    r->lost = sent > received ? sent - received : 0;
    r->gaps = st.gaps;
    r->evs = received && last > first ? received * 1e9 / (double)(last - first) : 0;
    bench_percentiles(c->samples, sent, &r->call);
    r->slow = bench_share_above(c->samples, sent, P99_TARGET_NS);
    rc = 0;
out:
    weft_node_destroy(&pub);
    weft_node_destroy(&sub);
    return rc;
}

static void s_pubsub_usage(FILE *out)
{
    fprintf(out,
            "usage: weft bench pubsub [--events N] [--passes P] [--size B] [--rate R] [--hwm N]\n"
            "                         [--json]\n\n"
            "Publishes node -> node over TCP loopback (two weft nodes in this process, no gossip,\n"
            "a static connect) and compares with raw libzmq PUB/SUB sending the same three frames\n"
            "(topic, an envelope-sized blob, the payload) in the same run. Each pass runs both\n"
            "variants (alternating which goes first); the summary gives medians over passes.\n\n"
            "options:\n"
            "  --events N   events per pass and variant (default 1000000; k/M suffixes)\n"
            "  --passes P   passes (default 5)\n"
            "  --size B     payload bytes (default 100)\n"
            "  --rate R     pace the publishers at R events/s (default: flat out); with a rate\n"
            "               the subscriber keeps up and no event should be lost\n"
            "  --hwm N      net/sndhwm and net/rcvhwm, same for both variants (default 100000)\n"
            "  --json       print one JSON line with the summary (progress goes to stderr)\n\n"
            "reported: ev/s = received / (first send -> last receive); lost = sent - received\n"
            "(flat out, both variants may drop at the HWM); weft gaps = the subscriber's gaps\n"
            "counter; publish latency = each weft_publish call, timed with CLOCK_MONOTONIC (raw\n"
            "send latency = the three zmq_send calls), with the share of calls over the p99\n"
            "target. Targets: ratio >= %.2f, publish p99 <= %.0f us.\n",
            RATIO_TARGET, P99_TARGET_NS / 1e3);
}

static void s_pass_line(FILE *out, int pass, int passes, const variant_t *raw,
                        const variant_t *wf)
{
    fprintf(out,
            "pass %d/%d: raw %.0f ev/s lost %" PRIu64 " send p50 %.2f p99 %.2f us | "
            "weft %.0f ev/s lost %" PRIu64 " gaps %" PRIu64
            " publish p50 %.2f p99 %.2f p999 %.2f max %.1f us, %.2f%% over %.0f us | ratio %.2f\n",
            pass, passes, raw->evs, raw->lost, raw->call.p50 / 1e3, raw->call.p99 / 1e3, wf->evs,
            wf->lost, wf->gaps, wf->call.p50 / 1e3, wf->call.p99 / 1e3, wf->call.p999 / 1e3,
            wf->call.max / 1e3, wf->slow * 100, P99_TARGET_NS / 1e3,
            raw->evs > 0 ? wf->evs / raw->evs : 0);
    fflush(out);
}

static double s_median_u64(const variant_t *v, int n, size_t offset)
{
    double vals[n];
    for (int i = 0; i < n; i++)
        vals[i] = (double)*(const uint64_t *)((const char *)&v[i] + offset);
    return bench_median(vals, (size_t)n);
}

#define MEDIAN(arr, n, field)                                                                   \
    bench_median_field(arr, (size_t)(n), sizeof(variant_t), offsetof(variant_t, field))
#define MEDIAN_U64(arr, n, field) s_median_u64(arr, n, offsetof(variant_t, field))

static int s_bench_pubsub(int argc, char **argv)
{
    pubsub_opts_t o = {.events = 1000000, .passes = 5, .size = 100, .hwm = 100000};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        double v = 0;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            s_pubsub_usage(stdout);
            return 0;
        } else if (!strcmp(a, "--json"))
            o.json = true;
        else if (!strcmp(a, "--events")) {
            if ((v = bench_count_option("weft bench", argc, argv, &i, 1, 1e8)) < 0)
                return 2;
            o.events = (uint64_t)v;
        } else if (!strcmp(a, "--passes")) {
            if ((v = bench_count_option("weft bench", argc, argv, &i, 1, 1000)) < 0)
                return 2;
            o.passes = (int)v;
        } else if (!strcmp(a, "--size")) {
            if ((v = bench_count_option("weft bench", argc, argv, &i, 0,
                                        WEFT_PAYLOAD_MAX_DEFAULT)) < 0)
                return 2;
            o.size = (size_t)v;
        } else if (!strcmp(a, "--rate")) {
            if ((v = bench_count_option("weft bench", argc, argv, &i, 1, 1e9)) < 0)
                return 2;
            o.rate = v;
        } else if (!strcmp(a, "--hwm")) {
            if ((v = bench_count_option("weft bench", argc, argv, &i, 1, 1e9)) < 0)
                return 2;
            o.hwm = (int)v;
        } else {
            fprintf(stderr, "weft bench pubsub: unknown option '%s'\n\n", a);
            s_pubsub_usage(stderr);
            return 2;
        }
    }
    /* Flat out, each variant can queue up to hwm messages on each side: keep that bounded. */
    double queued = (double)(o.events < (uint64_t)o.hwm ? o.events : (uint64_t)o.hwm) *
                    ((double)o.size + 128) * 2;
    if (queued > 2.0 * (1 << 30)) {
        fprintf(stderr, "weft bench pubsub: --size %zu with --hwm %d could queue %.1f GiB; "
                        "lower --hwm or --events\n", o.size, o.hwm, queued / (1 << 30));
        return 2;
    }
    FILE *out = o.json ? stderr : stdout;

    /* The raw variant's envelope frame: what the weft publisher encodes for these events. */
    weft_envelope_t env;
    weft_envelope_init(&env);
    snprintf(env.src, sizeof(env.src), "bench-pub");
    env.inst = 0x0123456789abcdefULL;
    env.seq = o.events;
    env.ts = weft_now_ns();
    weft_id_new(env.id);
    uint8_t envelope[WEFT_ENVELOPE_MAX];
    int envelope_size = weft_envelope_encode(&env, envelope, sizeof(envelope));
    uint8_t *payload = malloc(o.size ? o.size : 1);
    uint32_t *samples = malloc(o.events * sizeof(uint32_t));
    variant_t *raw = calloc((size_t)o.passes, sizeof(variant_t));
    variant_t *wf = calloc((size_t)o.passes, sizeof(variant_t));
    double *ratios = calloc((size_t)o.passes, sizeof(double));
    if (envelope_size < 0 || !payload || !samples || !raw || !wf || !ratios) {
        fprintf(stderr, "weft bench: out of memory\n");
        free(payload), free(samples), free(raw), free(wf), free(ratios);
        return 1;
    }
    /* A msgpack bin 8 header and filler: a valid msgpack payload of exactly size bytes. */
    memset(payload, 0xa5, o.size);
    if (o.size >= 2 && o.size - 2 <= 255) {
        payload[0] = 0xc4;
        payload[1] = (uint8_t)(o.size - 2);
    }
    pubsub_ctx_t ctx = {&o,
                        {PUBSUB_TOPIC, sizeof(PUBSUB_TOPIC) - 1, envelope, (size_t)envelope_size,
                         payload, o.size},
                        samples};

    double timer_ns = bench_timer_overhead_ns();
    fprintf(out,
            "weft bench pubsub: %" PRIu64 " events x %d passes, payload %zu B, envelope %d B, "
            "hwm %d, %s; timer %.0f ns/read (two reads per timed call)\n",
            o.events, o.passes, o.size, envelope_size, o.hwm, o.rate > 0 ? "paced" : "flat out",
            timer_ns);
    if (o.rate > 0)
        fprintf(out, "pacing at %.0f events/s\n", o.rate);
    fflush(out);

    int rc = 0, done = 0;
    for (int p = 0; p < o.passes && !zsys_interrupted; p++) {
        bool raw_first = p % 2 == 0;
        for (int k = 0; k < 2 && rc == 0; k++)
            rc = (k == 0) == raw_first ? s_run_raw(&ctx, &raw[p]) : s_run_weft(&ctx, &wf[p]);
        if (rc != 0 || zsys_interrupted)
            break;
        ratios[p] = raw[p].evs > 0 ? wf[p].evs / raw[p].evs : 0;
        s_pass_line(out, p + 1, o.passes, &raw[p], &wf[p]);
        done++;
    }
    if (done == 0) {
        free(payload), free(samples), free(raw), free(wf), free(ratios);
        return rc ? 1 : 130;
    }

    double w_evs = MEDIAN(wf, done, evs), r_evs = MEDIAN(raw, done, evs);
    double ratio = r_evs > 0 ? w_evs / r_evs : 0;
    double paired = bench_median(ratios, (size_t)done);
    double w_lost = MEDIAN_U64(wf, done, lost), r_lost = MEDIAN_U64(raw, done, lost);
    bench_pct_t wl = {MEDIAN(wf, done, call.p50), MEDIAN(wf, done, call.p99),
                      MEDIAN(wf, done, call.p999), MEDIAN(wf, done, call.max)};
    bench_pct_t rl = {MEDIAN(raw, done, call.p50), MEDIAN(raw, done, call.p99),
                      MEDIAN(raw, done, call.p999), MEDIAN(raw, done, call.max)};
    double w_slow = MEDIAN(wf, done, slow), r_slow = MEDIAN(raw, done, slow);
    uint64_t w_lost_total = 0, r_lost_total = 0, w_gaps_total = 0, errors = 0;
    int w_lossy = 0, r_lossy = 0;
    for (int p = 0; p < done; p++) {
        w_lost_total += wf[p].lost;
        r_lost_total += raw[p].lost;
        w_gaps_total += wf[p].gaps;
        errors += wf[p].send_errors + raw[p].send_errors;
        w_lossy += wf[p].lost > 0;
        r_lossy += raw[p].lost > 0;
    }

    fprintf(out,
            "pubsub: weft %.0f ev/s | raw zmq %.0f ev/s | ratio %.2f (target >= %.2f) | "
            "lost weft %.0f raw %.0f | publish p50 %.2f us p99 %.2f us p999 %.2f us max %.1f us "
            "(target p99 <= %.0f us) | raw send p50 %.2f us p99 %.2f us\n",
            w_evs, r_evs, ratio, RATIO_TARGET, w_lost, r_lost, wl.p50 / 1e3, wl.p99 / 1e3,
            wl.p999 / 1e3, wl.max / 1e3, P99_TARGET_NS / 1e3, rl.p50 / 1e3, rl.p99 / 1e3);
    fprintf(out,
            "medians of %d pass%s; paired per-pass ratio median %.2f; calls over %.0f us: "
            "weft %.2f%% raw %.2f%%; lost over all passes: weft %" PRIu64 " (gaps %" PRIu64
            ") raw %" PRIu64 "%s\n",
            done, done == 1 ? "" : "es", paired, P99_TARGET_NS / 1e3, w_slow * 100, r_slow * 100,
            w_lost_total, w_gaps_total, r_lost_total, errors ? "; some sends failed" : "");
    if (o.rate > 0)
        fprintf(out, "paced at %.0f ev/s: %s\n", o.rate,
                w_lossy == 0 && r_lossy == 0
                    ? "0 lost in every pass (the subscriber keeps up)"
                    : "LOSSES: the subscriber did not keep up in some passes");
    if (o.json) {
        printf("{\"bench\":\"pubsub\",\"events\":%" PRIu64 ",\"passes\":%d,\"size\":%zu,"
               "\"envelope_size\":%d,\"hwm\":%d,\"rate\":%.0f,"
               "\"weft_evs\":%.0f,\"raw_evs\":%.0f,\"ratio\":%.3f,\"ratio_paired\":%.3f,"
               "\"ratio_target\":%.2f,\"lost_weft\":%.0f,\"lost_raw\":%.0f,"
               "\"lost_weft_total\":%" PRIu64 ",\"lost_raw_total\":%" PRIu64
               ",\"gaps_weft_total\":%" PRIu64 ",\"lossy_passes_weft\":%d,"
               "\"lossy_passes_raw\":%d,\"send_errors\":%" PRIu64 ","
               "\"publish_ns\":{\"p50\":%.0f,\"p99\":%.0f,\"p999\":%.0f,\"max\":%.0f},"
               "\"p99_target_ns\":%d,\"publish_over_target\":%.5f,"
               "\"raw_send_ns\":{\"p50\":%.0f,\"p99\":%.0f,\"p999\":%.0f,\"max\":%.0f},"
               "\"raw_send_over_target\":%.5f,"
               "\"timer_ns\":%.1f,\"passes_done\":%d}\n",
               o.events, o.passes, o.size, envelope_size, o.hwm, o.rate, w_evs, r_evs, ratio,
               paired, RATIO_TARGET, w_lost, r_lost, w_lost_total, r_lost_total, w_gaps_total,
               w_lossy, r_lossy, errors, wl.p50, wl.p99, wl.p999, wl.max, P99_TARGET_NS, w_slow,
               rl.p50, rl.p99, rl.p999, rl.max, r_slow, timer_ns, done);
        fflush(stdout);
    }
    free(payload), free(samples), free(raw), free(wf), free(ratios);
    return rc ? 1 : zsys_interrupted ? 130 : 0;
}

/* ---- subcommands ---------------------------------------------------------------------------- */

typedef struct {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
} bench_t;

/*  More benchmarks (archive, dlq, soak) are further rows here. */
static const bench_t s_benches[] = {
    {"pubsub", s_bench_pubsub,
     "node -> node over TCP loopback vs raw libzmq PUB/SUB: ev/s, losses, publish latency"},
    {"archive", bench_archive,
     "archiver ingest, growth, memory, replay vs raw LMDB and libzmq of the same run"},
    {"dlq", bench_dlq,
     "DLQ PUT and redelivery throughput vs raw LMDB and ZeroMQ of the same run"},
    {"soak", bench_soak,
     "node processes at a fixed rate for minutes: loss, latency, RSS over time vs raw libzmq"},
};
#define NBENCHES (sizeof(s_benches) / sizeof(s_benches[0]))

static void s_usage(FILE *out)
{
    fprintf(out, "usage: weft bench BENCHMARK [OPTIONS]\n\n"
                 "Performance figures of weft, each measured against a raw baseline in the same "
                 "run.\n\nbenchmarks:\n");
    for (size_t i = 0; i < NBENCHES; i++)
        fprintf(out, "  %-8s %s\n", s_benches[i].name, s_benches[i].summary);
    fprintf(out, "\n`weft bench BENCHMARK --help` describes a benchmark and its options.\n");
}

int cmd_bench(int argc, char **argv)
{
    if (argc < 2) {
        s_usage(stderr);
        return 2;
    }
    const char *name = argv[1];
    if (!strcmp(name, "--help") || !strcmp(name, "-h") || !strcmp(name, "help")) {
        s_usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < NBENCHES; i++)
        if (!strcmp(name, s_benches[i].name))
            return s_benches[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "weft bench: unknown benchmark '%s'\n\n", name);
    s_usage(stderr);
    return 2;
}

/*  chaos_sub.c - the subscriber of the chaos suite (test_chaos.c starts, kills and restarts it).

    One weft node with two subscriptions to "chaos.", both recording every handler call:
      - an at-least-once one (repair on), named "chaos" (so its dead letters belong to
        "NAME/chaos");
      - a durable named consumer "chaos-durable" (weft_sub_options_t.consumer), whose
        checkpoint lives in the state directory DIR (node/state_dir): the driver passes the
        same DIR to every incarnation, so each one catches up from the archive from where the
        previous ones got to, then goes live.

    usage: chaos_sub --seed ENDPOINT --name NAME --log FILE --stats FILE --state DIR
                     [--fail-mod N]

    The at-least-once handler fails on the first delivery of every event whose seq is a
    multiple of N (default 97): with retry_attempts 1 and no circuit breaker, each such event
    is dead-lettered at once; the DLQ's redelivery (envelope retry > 0) then succeeds. The
    durable consumer's handler never fails. FILE (append-only, one write() per line, written
    before the handler returns) gets:

        I <inst hex> <ns>               once, before subscribing
        W <ns> <ready peers>            once, after weft_node_wait_peers
        H <src inst hex> <seq>          an event handled (first delivery)
        F <src inst hex> <seq> <id>     an event failed on its first delivery (dead-lettered)
        R <src inst hex> <seq> <id>     a redelivery by the DLQ, handled
        C <ns>                          once, when the durable consumer is subscribed
        D <src inst hex> <seq>          an event handled by the durable consumer

    (id: the event id as 32 hex digits.) Every 200 ms the node's counters go to the stats
    file (through STATS.tmp and a rename), one "key value" a line. SIGTERM or SIGINT stops
    the node cleanly and exits 0.
*/
#include <czmq.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include "weft.h"

static volatile sig_atomic_t s_stop;
static int s_fd = -1;
static uint64_t s_fail_mod = 97;

static void s_on_signal(int sig)
{
    (void)sig;
    s_stop = 1;
}

static void s_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void s_line(const char *fmt, ...)
{
    char line[160];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n > 0 && (size_t)n < sizeof(line) && write(s_fd, line, (size_t)n) != n)
        fprintf(stderr, "chaos_sub: log write failed: %s\n", strerror(errno));
}

static void s_hex_id(const uint8_t id[WEFT_ID_SIZE], char out[2 * WEFT_ID_SIZE + 1])
{
    for (int i = 0; i < WEFT_ID_SIZE; i++)
        snprintf(out + 2 * i, 3, "%02x", id[i]);
}

static int s_handler(weft_event_t *ev, void *arg)
{
    (void)arg;
    const weft_envelope_t *env = ev->env;
    char id[2 * WEFT_ID_SIZE + 1];
    if (env->retry > 0) {
        s_hex_id(env->id, id);
        s_line("R %016" PRIx64 " %" PRIu64 " %s\n", env->inst, env->seq, id);
        return 0;
    }
    if (env->seq % s_fail_mod == 0) {
        s_hex_id(env->id, id);
        s_line("F %016" PRIx64 " %" PRIu64 " %s\n", env->inst, env->seq, id);
        return weft_event_fail(ev, "chaos.fail", "seq %" PRIu64 " fails on first delivery",
                               env->seq);
    }
    s_line("H %016" PRIx64 " %" PRIu64 "\n", env->inst, env->seq);
    return 0;
}

static int s_durable_handler(weft_event_t *ev, void *arg)
{
    (void)arg;
    s_line("D %016" PRIx64 " %" PRIu64 "\n", ev->env->inst, ev->env->seq);
    return 0;
}

static void s_write_stats(weft_node_t *node, const char *path)
{
    weft_stats_t st;
    weft_node_stats(node, &st);
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return;
    fprintf(f,
            "ts %" PRId64 "\ndelivered %" PRIu64 "\nreceived %" PRIu64 "\nhandler_errors %" PRIu64
            "\ndead_lettered %" PRIu64 "\ndead_letter_pending %" PRIu64
            "\ndead_letter_dropped %" PRIu64 "\ngaps %" PRIu64 "\nrepaired %" PRIu64
            "\nunrepaired %" PRIu64 "\nredelivered %" PRIu64 "\n",
            weft_now_ns(), st.delivered, st.received, st.handler_errors, st.dead_lettered,
            st.dead_letter_pending, st.dead_letter_dropped, st.gaps, st.repaired, st.unrepaired,
            st.redelivered);
    fclose(f);
    rename(tmp, path);
}

int main(int argc, char **argv)
{
    const char *seed = NULL, *name = NULL, *log = NULL, *stats = NULL, *state = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--seed"))
            seed = v;
        else if (!strcmp(k, "--name"))
            name = v;
        else if (!strcmp(k, "--log"))
            log = v;
        else if (!strcmp(k, "--stats"))
            stats = v;
        else if (!strcmp(k, "--state"))
            state = v;
        else if (!strcmp(k, "--fail-mod"))
            s_fail_mod = strtoull(v, NULL, 10);
        else {
            fprintf(stderr, "chaos_sub: unknown option %s\n", k);
            return 2;
        }
    }
    if (!seed || !name || !log || !stats || !state || s_fail_mod == 0) {
        fprintf(stderr, "usage: chaos_sub --seed EP --name NAME --log FILE --stats FILE "
                        "--state DIR [--fail-mod N]\n");
        return 2;
    }
    s_fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (s_fd < 0) {
        fprintf(stderr, "chaos_sub: %s: %s\n", log, strerror(errno));
        return 1;
    }
    weft_config_t *cfg = weft_config_new();
    weft_config_set(cfg, "gossip/seeds", seed);
    weft_config_set(cfg, "node/state_dir", state);
    int err = 0;
    weft_node_t *node = weft_node_new(name, cfg, &err);
    weft_config_destroy(&cfg);
    if (!node) {
        fprintf(stderr, "chaos_sub: cannot start the node: %s\n", weft_strerror(err));
        return 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = s_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    s_line("I %016" PRIx64 " %" PRId64 "\n", weft_node_inst(node), weft_now_ns());
    weft_sub_options_t o = {
        .repair = true,
        .name = "chaos",
        .retry_attempts = 1,
        .breaker_failures = -1,
    };
    if (!weft_subscribe(node, "chaos.", s_handler, NULL, &o, &err)) {
        fprintf(stderr, "chaos_sub: cannot subscribe: %s\n", weft_strerror(err));
        weft_node_destroy(&node);
        return 1;
    }
    weft_sub_options_t d = {
        .name = "chaos-durable",
        .consumer = "chaos-durable",
    };
    if (!weft_subscribe(node, "chaos.", s_durable_handler, NULL, &d, &err)) {
        fprintf(stderr, "chaos_sub: cannot subscribe the durable consumer: %s\n",
                weft_strerror(err));
        weft_node_destroy(&node);
        return 1;
    }
    s_line("C %" PRId64 "\n", weft_now_ns());
    int ready = weft_node_wait_peers(node, 3000);
    s_line("W %" PRId64 " %d\n", weft_now_ns(), ready);
    while (!s_stop) {
        s_write_stats(node, stats);
        usleep(200000);
    }
    s_write_stats(node, stats);
    weft_node_destroy(&node);
    close(s_fd);
    return 0;
}

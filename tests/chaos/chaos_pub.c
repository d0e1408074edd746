/*  chaos_pub.c - the publisher of the chaos suite (test_chaos.c starts, kills and restarts it).

    One weft node that publishes at a fixed rate and logs, durably, how far it got, so that
    after a kill -9 the driver knows what this instance had published.

    usage: chaos_pub --seed ENDPOINT --name NAME --progress FILE [--rate N] [--batch N]

    Publishes the topics chaos.a, chaos.b, chaos.c in turn, with the msgpack payload
    {"n": seq}, BATCH events at a time (default 5), RATE events per second (default 300).
    FILE is append-only, one line per record, each written with one write() and
    fdatasync'ed before anything else is published:

        I <inst hex> <ns>           once, when the node is up (before its first event)
        P <inst hex> <seq> <ns>     after every batch: the last seq published, and when
        Q <inst hex> <seq> <ns>     once, when SIGUSR1 stopped the load: the final seq

    (ns: wall clock, ns since the epoch.) SIGUSR1 stops publishing but keeps the node up, so
    its outbox goes on serving repairs; SIGTERM or SIGINT stops the node cleanly (exit 0).
    The gossip seed is bound with gossip/bind auto, like any node.
*/
#include <czmq.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include "weft.h"

static volatile sig_atomic_t s_stop, s_quiet;

static void s_on_signal(int sig)
{
    if (sig == SIGUSR1)
        s_quiet = 1;
    else
        s_stop = 1;
}

/*  One line, one write(), then fdatasync: the line is on disk before we go on. */
static void s_log(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void s_log(int fd, const char *fmt, ...)
{
    char line[160];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n <= 0 || (size_t)n >= sizeof(line))
        return;
    if (write(fd, line, (size_t)n) != n)
        fprintf(stderr, "chaos_pub: progress write failed: %s\n", strerror(errno));
    fdatasync(fd);
}

static int64_t s_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void s_sleep_until(int64_t mono_ns)
{
    struct timespec ts = {mono_ns / 1000000000LL, mono_ns % 1000000000LL};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR && !s_stop &&
           !s_quiet)
        ;
}

int main(int argc, char **argv)
{
    const char *seed = NULL, *name = NULL, *progress = NULL;
    int rate = 300, batch = 5;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--seed"))
            seed = v;
        else if (!strcmp(k, "--name"))
            name = v;
        else if (!strcmp(k, "--progress"))
            progress = v;
        else if (!strcmp(k, "--rate"))
            rate = atoi(v);
        else if (!strcmp(k, "--batch"))
            batch = atoi(v);
        else {
            fprintf(stderr, "chaos_pub: unknown option %s\n", k);
            return 2;
        }
    }
    if (!seed || !name || !progress || rate <= 0 || batch <= 0) {
        fprintf(stderr, "usage: chaos_pub --seed EP --name NAME --progress FILE [--rate N] "
                        "[--batch N]\n");
        return 2;
    }
    int fd = open(progress, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
        fprintf(stderr, "chaos_pub: %s: %s\n", progress, strerror(errno));
        return 1;
    }
    weft_config_t *cfg = weft_config_new();
    weft_config_set(cfg, "gossip/seeds", seed);
    int err = 0;
    weft_node_t *node = weft_node_new(name, cfg, &err);
    weft_config_destroy(&cfg);
    if (!node) {
        fprintf(stderr, "chaos_pub: cannot start the node: %s\n", weft_strerror(err));
        return 1;
    }
    /* Ours, not czmq's: SIGUSR1 quiets, SIGTERM/SIGINT stop. */
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = s_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    uint64_t inst = weft_node_inst(node);
    s_log(fd, "I %016" PRIx64 " %" PRId64 "\n", inst, weft_now_ns());
    static const char *topics[3] = {"chaos.a", "chaos.b", "chaos.c"};
    int64_t period = (int64_t)batch * 1000000000LL / rate;
    int64_t next = s_mono_ns();
    uint64_t last = 0, errors = 0;
    bool quiet_logged = false;
    while (!s_stop) {
        if (s_quiet) {
            if (!quiet_logged) {
                s_log(fd, "Q %016" PRIx64 " %" PRIu64 " %" PRId64 "\n", inst, last, weft_now_ns());
                quiet_logged = true;
            }
            usleep(20000);
            continue;
        }
        for (int i = 0; i < batch; i++) {
            uint64_t n = last + 1;
            uint8_t payload[12] = {0x81, 0xa1, 'n', 0xcf};
            for (int b = 0; b < 8; b++)
                payload[4 + b] = (uint8_t)(n >> (56 - 8 * b));
            int64_t seq = weft_publish(node, topics[n % 3], payload, sizeof(payload), NULL, NULL);
            if (seq > 0) {
                last = (uint64_t)seq;
            } else if (errors++ < 10) {
                fprintf(stderr, "chaos_pub: publish failed: %s\n", weft_strerror((int)seq));
            }
        }
        s_log(fd, "P %016" PRIx64 " %" PRIu64 " %" PRId64 "\n", inst, last, weft_now_ns());
        next += period;
        int64_t now = s_mono_ns();
        if (next < now - 1000000000LL)
            next = now; /* stalled for a second (a slow disk): do not burst to catch up */
        s_sleep_until(next);
    }
    weft_node_destroy(&node);
    close(fd);
    return errors ? 1 : 0;
}

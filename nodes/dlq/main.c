/*  weft-dlq - keeps the events subscribers failed to handle, redelivers them with backoff,
    parks those that keep failing, and serves LIST, GET, RETRY, PURGE and INFO to operators.
    A thin main over src/dlq.c: parse options, start, wait for a signal, stop (with the node
    options, ready file and wait of nodes/common/node_main.h). */
#include <czmq.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dlq.h"
#include "node_main.h"

static void s_help(void)
{
    printf(
        "%s%s",
        "usage: weft-dlq [OPTIONS]\n\n"
        "Stores the events that subscribers' handlers gave up on (PUT from their nodes), redelivers\n"
        "them to the subscribers' nodes with exponential backoff, parks those that still fail,\n"
        "and serves LIST, GET, RETRY, PURGE and INFO on its service endpoint (found by clients\n"
        "through gossip, role \"dlq\").\n\n"
        "DLQ options:\n"
        "  --data DIR            store directory (default ./weft-dlq)\n"
        "  --name NAME           node name (default dlq)\n"
        "  --max-attempts N      failed redeliveries before a letter is parked (default 5)\n"
        "  --backoff MS          wait before the first redelivery; doubles after each failure\n"
        "                        (default 1000)\n"
        "  --backoff-max MS      cap of that wait (default 60000)\n"
        "  --jitter F            random fraction 0..1 added to each wait (default 0.2)\n"
        "  --in-flight N         redeliveries outstanding at once, 1..1024 (default 16)\n"
        "  --timeout MS          a redelivery unanswered this long has failed (default 5000)\n"
        "  --sync POLICY         always | interval | none (default always; see docs/operations.md)\n"
        "  --svc-bind ENDPOINT   service endpoint (default tcp://127.0.0.1:*)\n"
        "  --ready-file PATH     write the service endpoint to PATH once serving\n",
        node_main_help);
}

/*  A whole decimal number in [min, max]. Returns 0 or -1. */
static int s_int(const char *text, long long min, long long max, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (end == text || *end || errno || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    dlq_opts_t o;
    dlq_opts_defaults(&o);
    const char *ready_file = NULL;
    weft_config_t *cfg = weft_config_new();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int rc = 0, used = 1;
        long long n = 0;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            s_help();
            weft_config_destroy(&cfg);
            return 0;
        } else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
            rc = weft_config_set(cfg, "log/verbose", "1"), used = 0;
        } else if (!v) {
            fprintf(stderr, "weft-dlq: unknown option or missing value: %s (see --help)\n", a);
            weft_config_destroy(&cfg);
            return 2;
        } else if (!strcmp(a, "--data")) {
            o.dir = v;
        } else if (!strcmp(a, "--name")) {
            o.name = v;
        } else if (!strcmp(a, "--max-attempts")) {
            if ((rc = s_int(v, 1, UINT32_MAX, &n)) == 0)
                o.max_attempts = (uint32_t)n;
        } else if (!strcmp(a, "--backoff")) {
            if ((rc = s_int(v, 1, 86400000LL * 365, &n)) == 0)
                o.backoff_ms = n;
        } else if (!strcmp(a, "--backoff-max")) {
            if ((rc = s_int(v, 1, 86400000LL * 365, &n)) == 0)
                o.backoff_max_ms = n;
        } else if (!strcmp(a, "--jitter")) {
            char *end;
            o.jitter = strtod(v, &end);
            rc = end != v && !*end && o.jitter >= 0 && o.jitter <= 1 ? 0 : -1;
        } else if (!strcmp(a, "--in-flight")) {
            if ((rc = s_int(v, 1, 1024, &n)) == 0)
                o.max_in_flight = (uint32_t)n;
        } else if (!strcmp(a, "--timeout")) {
            if ((rc = s_int(v, 1, 3600000, &n)) == 0)
                o.redeliver_timeout_ms = (int)n;
        } else if (!strcmp(a, "--sync")) {
            rc = dlq_parse_sync(v, &o.sync);
        } else if (!strcmp(a, "--svc-bind")) {
            o.svc_bind = v;
        } else if (!strcmp(a, "--ready-file")) {
            ready_file = v;
        } else if (!node_main_option(cfg, a, v, &rc)) {
            fprintf(stderr, "weft-dlq: unknown option %s (see --help)\n", a);
            weft_config_destroy(&cfg);
            return 2;
        }
        if (rc != 0) {
            fprintf(stderr, "weft-dlq: bad value for %s: '%s'\n", a, v ? v : "");
            weft_config_destroy(&cfg);
            return 2;
        }
        i += used;
    }
    if (o.backoff_max_ms < o.backoff_ms) {
        fprintf(stderr, "weft-dlq: --backoff-max (%lld) must be at least --backoff (%lld)\n",
                (long long)o.backoff_max_ms, (long long)o.backoff_ms);
        weft_config_destroy(&cfg);
        return 2;
    }
    o.config = cfg;
    node_main_log("weft-dlq");
    int err;
    char why[512];
    dlq_t *dlq = dlq_new(&o, &err, why, sizeof(why));
    weft_config_destroy(&cfg);
    if (!dlq) {
        fprintf(stderr, "weft-dlq: %s\n", why[0] ? why : weft_strerror(err));
        return 1;
    }
    weft_node_t *node = dlq_node(dlq);
    char seed[1024];
    fprintf(stderr, "weft-dlq: letters in %s (sync %s); service %s, node %s (sub %s, ctl %s)%s\n",
            o.dir, dlq_sync_name(o.sync), dlq_svc_endpoint(dlq), weft_node_name(node),
            weft_node_sub_endpoint(node), weft_node_ctl_endpoint(node),
            node_main_seed_note(node, seed, sizeof(seed)));
    node_main_serve(ready_file, dlq_svc_endpoint(dlq));
    dlq_stats_t st;
    dlq_stats(dlq, &st);
    dlq_destroy(&dlq);
    fprintf(stderr,
            "weft-dlq: stopped; this run: %llu PUTs (%llu new letters), %llu redeliveries, "
            "%llu resolved, %llu parked\n",
            (unsigned long long)st.puts, (unsigned long long)st.created,
            (unsigned long long)st.redelivered, (unsigned long long)st.resolved,
            (unsigned long long)st.parked);
    return 0;
}

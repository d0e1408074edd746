/*  weft-archiver - keeps every event of the fabric in LMDB and serves replay, look-ups and
    repair. A thin main over src/archiver.c: parse options, start, wait for a signal, stop
    (with the node options, ready file and wait of nodes/common/node_main.h). */
#include <czmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "archiver.h"
#include "node_main.h"

static void s_help(void)
{
    printf(
        "%s%s",
        "usage: weft-archiver [OPTIONS]\n\n"
        "Subscribes to the fabric, persists every event in LMDB (group commit), and serves\n"
        "REPLAY, GET, FETCH and INFO on its service endpoint (found by clients through gossip).\n\n"
        "archive options:\n"
        "  --data DIR            archive directory (default ./weft-archive)\n"
        "  --name NAME           node name (default archiver)\n"
        "  --prefix PREFIX       archive only topics with this prefix (repeatable; default all)\n"
        "  --archive-fabric      also archive _weft. topics (heartbeats)\n"
        "  --sync POLICY         always | interval | none (default always; see docs/operations.md)\n"
        "  --batch N             events per commit at most (default 1000)\n"
        "  --batch-ms MS         ms an event may wait for its commit (default 10)\n"
        "  --map-size SIZE       initial LMDB map size (default 1G; k/M/G/T suffixes)\n"
        "  --max-size SIZE       the map grows up to this on MDB_MAP_FULL (default 1T)\n"
        "  --retain-age DUR      remove events older than DUR (s, m, h, d suffixes)\n"
        "  --retain-bytes SIZE   keep at most SIZE bytes of events\n"
        "  --retain-events N     keep at most N events\n"
        "  --svc-bind ENDPOINT   service endpoint (default tcp://127.0.0.1:*)\n"
        "  --no-repair           do not fetch missing events from publishers' outboxes\n"
        "  --ready-file PATH     write the service endpoint to PATH once serving\n",
        node_main_help);
}

/*  "10", "10k", "3M", "2G", "1T" (powers of 1024). Returns 0 or -1. */
static int s_size(const char *text, uint64_t *out)
{
    char *end;
    double v = strtod(text, &end);
    if (end == text || v < 0)
        return -1;
    double mul = 1;
    switch (*end) {
    case 0: break;
    case 'k': case 'K': mul = 1024.0; end++; break;
    case 'm': case 'M': mul = 1024.0 * 1024; end++; break;
    case 'g': case 'G': mul = 1024.0 * 1024 * 1024; end++; break;
    case 't': case 'T': mul = 1024.0 * 1024 * 1024 * 1024; end++; break;
    default: return -1;
    }
    if (*end == 'i' || *end == 'B')
        end++;
    if (*end == 'B')
        end++;
    if (*end)
        return -1;
    *out = (uint64_t)(v * mul);
    return 0;
}

/*  "30", "30s", "15m", "12h", "7d" -> ns. Returns 0 or -1. */
static int s_duration(const char *text, int64_t *out)
{
    char *end;
    double v = strtod(text, &end);
    if (end == text || v < 0)
        return -1;
    double mul = 1e9;
    if (*end == 's')
        end++;
    else if (*end == 'm' && end[1] != 's')
        mul = 60e9, end++;
    else if (*end == 'h')
        mul = 3600e9, end++;
    else if (*end == 'd')
        mul = 86400e9, end++;
    else if (*end == 'm' && end[1] == 's')
        mul = 1e6, end += 2;
    if (*end)
        return -1;
    *out = (int64_t)(v * mul);
    return 0;
}

int main(int argc, char **argv)
{
    archiver_opts_t o;
    memset(&o, 0, sizeof(o));
    o.dir = "weft-archive";
    const char *prefixes[64];
    size_t nprefixes = 0;
    const char *ready_file = NULL;
    weft_config_t *cfg = weft_config_new();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int rc = 0, used = 1;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            s_help();
            weft_config_destroy(&cfg);
            return 0;
        } else if (!strcmp(a, "--archive-fabric")) {
            o.archive_fabric = true, used = 0;
        } else if (!strcmp(a, "--no-repair")) {
            o.no_repair = true, used = 0;
        } else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
            rc = weft_config_set(cfg, "log/verbose", "1"), used = 0;
        } else if (!v) {
            fprintf(stderr, "weft-archiver: unknown option or missing value: %s (see --help)\n", a);
            return 2;
        } else if (!strcmp(a, "--data")) {
            o.dir = v;
        } else if (!strcmp(a, "--name")) {
            o.name = v;
        } else if (!strcmp(a, "--prefix")) {
            if (nprefixes == 64) {
                fprintf(stderr, "weft-archiver: at most 64 --prefix\n");
                return 2;
            }
            prefixes[nprefixes++] = v;
        } else if (!strcmp(a, "--sync")) {
            rc = archiver_parse_sync(v, &o.sync);
        } else if (!strcmp(a, "--batch")) {
            rc = (o.batch_events = strtoul(v, NULL, 10)) > 0 ? 0 : -1;
        } else if (!strcmp(a, "--batch-ms")) {
            rc = (o.batch_ms = atoi(v)) > 0 ? 0 : -1;
        } else if (!strcmp(a, "--map-size")) {
            rc = s_size(v, &o.map_size);
        } else if (!strcmp(a, "--max-size")) {
            rc = s_size(v, &o.max_map_size);
        } else if (!strcmp(a, "--retain-age")) {
            rc = s_duration(v, &o.retention.max_age_ns);
        } else if (!strcmp(a, "--retain-bytes")) {
            rc = s_size(v, &o.retention.max_bytes);
        } else if (!strcmp(a, "--retain-events")) {
            rc = s_size(v, &o.retention.max_events);
        } else if (!strcmp(a, "--svc-bind")) {
            o.svc_bind = v;
        } else if (!strcmp(a, "--ready-file")) {
            ready_file = v;
        } else if (!node_main_option(cfg, a, v, &rc)) {
            fprintf(stderr, "weft-archiver: unknown option %s (see --help)\n", a);
            return 2;
        }
        if (rc != 0) {
            fprintf(stderr, "weft-archiver: bad value for %s: '%s'\n", a, v ? v : "");
            return 2;
        }
        i += used;
    }
    o.prefixes = prefixes;
    o.nprefixes = nprefixes;
    o.config = cfg;
    node_main_log("weft-archiver");
    int err;
    char why[512];
    archiver_t *arch = archiver_new(&o, &err, why, sizeof(why));
    if (!arch) {
        weft_config_destroy(&cfg);
        fprintf(stderr, "weft-archiver: %s\n", why[0] ? why : weft_strerror(err));
        return 1;
    }
    weft_node_t *node = archiver_node(arch);
    char seed[1024];
    fprintf(stderr, "weft-archiver: archiving into %s; service %s, node %s (sub %s)%s\n", o.dir,
            archiver_svc_endpoint(arch), weft_node_name(node), weft_node_sub_endpoint(node),
            node_main_seed_note(node, seed, sizeof(seed)));
    node_main_serve(ready_file, archiver_svc_endpoint(arch));
    archiver_stats_t st;
    archiver_stats(arch, &st);
    archiver_destroy(&arch);
    weft_config_destroy(&cfg);
    fprintf(stderr, "weft-archiver: stopped; %llu events archived this run, %llu duplicates skipped\n",
            (unsigned long long)st.ingested, (unsigned long long)st.duplicates);
    return 0;
}

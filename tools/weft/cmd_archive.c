/*  cmd_archive.c - `weft archive info`: asks the archiver for its INFO (weft_archive_info,
    weft/archive.h) and prints it as readable text, or as the raw JSON of the msgpack reply
    with --json (json_mp.h). Called by main.c through cmd_archive (cli.h); `archive` takes a
    subcommand so that later ones (compaction, export, ...) fit under it.
*/
#include <czmq.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "archive_cli.h"
#include "cli.h"
#include "cli_parse.h"
#include "json_mp.h"

#define PROG "weft archive info"

static void s_help(void)
{
    printf("usage: weft archive info [--json] [OPTIONS]\n"
           "\n"
           "Asks the archiver (weft-archiver) to describe its archive and prints:\n"
           "  the archiver's name, instance and service endpoint, its directory, the first and\n"
           "  last offset kept, the number of events, the bytes on disk and the LMDB map size,\n"
           "  the ingest counters (ingested, duplicates skipped, commits, commit errors, events\n"
           "  refused, map-full events), the commit time p50/p99 over the last 1024 commits,\n"
           "  events repaired from publishers' outboxes and those no outbox held any more\n"
           "  (unrepaired), events removed by retention, replay sessions open, and the number\n"
           "  of sources (publisher instances) seen.\n"
           "\n"
           "options:\n"
           "  --json              print the INFO reply as it is, as one JSON object on one line:\n"
           "                      name, inst, dir, format, first_offset, last_offset, events,\n"
           "                      bytes_on_disk, map_size, ingest {ingested, duplicates,\n"
           "                      batches, commit_errors, refused, map_full, repaired,\n"
           "                      unrepaired, retention_removed, commit_p50_us,\n"
           "                      commit_p99_us}, replay_sessions, sources [[inst, last seq],\n"
           "                      ...] (null beyond 10000); integers above 2^63-1, such as\n"
           "                      some instance ids, as {\"$uint64\": \"<decimal>\"}\n"
           "  -h, --help          this help\n"
           "\n"
           "%s"
           "\n"
           "%s"
           "  default --name for this command: weft-archive-<pid>; default --gossip-bind: none\n"
           "\n"
           "Exit status: 0 printed, 1 failure (no archiver found, it did not answer or refused),\n"
           "2 usage error.\n"
           "\n"
           "examples:\n"
           "  weft archive info\n"
           "  weft archive info --json | jq .events\n"
           "  weft archive info --archiver tcp://10.0.0.5:40123\n",
           archive_cli_help, cli_node_help);
}

static int s_usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "weft archive: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (see weft archive --help)\n");
    return 2;
}

/*  An unsigned integer member: a JSON integer >= 0 or {"$uint64": "<decimal>"}. */
static bool s_uint(const json_t *obj, const char *key, uint64_t *out)
{
    const json_t *v = json_object_get(obj, key);
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        *out = (uint64_t)json_integer_value(v);
        return true;
    }
    const char *text = json_string_value(json_object_get(v, "$uint64"));
    return text && cli_parse_u64(text, 0, UINT64_MAX, out);
}

/*  The member as a decimal number, or "?" when absent. */
static const char *s_num(const json_t *obj, const char *key, char *buf, size_t cap)
{
    uint64_t v;
    if (!s_uint(obj, key, &v))
        return "?";
    snprintf(buf, cap, "%" PRIu64, v);
    return buf;
}

/*  The member as a size in bytes: "1.5 MiB (1572864 bytes)", or "?". */
static const char *s_bytes(const json_t *obj, const char *key, char *buf, size_t cap)
{
    uint64_t v;
    if (!s_uint(obj, key, &v))
        return "?";
    static const char *const units[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB"};
    double x = (double)v;
    size_t u = 0;
    while (x >= 1024 && u + 1 < sizeof(units) / sizeof(units[0]))
        x /= 1024, u++;
    if (u == 0)
        snprintf(buf, cap, "%" PRIu64 " bytes", v);
    else
        snprintf(buf, cap, "%.1f %s (%" PRIu64 " bytes)", x, units[u], v);
    return buf;
}

static void s_print_text(const json_t *info, const char *svc)
{
    char a[64], b[64], c[64], d[64], e[64], f[64];
    const json_t *ingest = json_object_get(info, "ingest");
    const char *name = json_string_value(json_object_get(info, "name"));
    const char *dir = json_string_value(json_object_get(info, "dir"));
    uint64_t inst = 0, events = 0;
    bool has_inst = s_uint(info, "inst", &inst);
    bool has_events = s_uint(info, "events", &events);
    printf("archiver          %s", name ? name : "?");
    if (has_inst)
        printf(" (inst %016" PRIx64 ")", inst);
    printf(" at %s\n", svc);
    printf("directory         %s\n", dir ? dir : "?");
    printf("format            %s\n", s_num(info, "format", a, sizeof(a)));
    if (has_events && events == 0)
        printf("offsets           none (the archive is empty)\n");
    else
        printf("offsets           %s .. %s\n", s_num(info, "first_offset", a, sizeof(a)),
               s_num(info, "last_offset", b, sizeof(b)));
    printf("events            %s\n", s_num(info, "events", a, sizeof(a)));
    printf("bytes on disk     %s\n", s_bytes(info, "bytes_on_disk", a, sizeof(a)));
    printf("map size          %s\n", s_bytes(info, "map_size", a, sizeof(a)));
    printf("ingest            %s ingested, %s duplicates skipped, %s commits, %s commit errors,\n"
           "                  %s refused, %s map full\n",
           s_num(ingest, "ingested", a, sizeof(a)), s_num(ingest, "duplicates", b, sizeof(b)),
           s_num(ingest, "batches", c, sizeof(c)), s_num(ingest, "commit_errors", d, sizeof(d)),
           s_num(ingest, "refused", e, sizeof(e)), s_num(ingest, "map_full", f, sizeof(f)));
    printf("commit time       p50 %s us, p99 %s us\n", s_num(ingest, "commit_p50_us", a, sizeof(a)),
           s_num(ingest, "commit_p99_us", b, sizeof(b)));
    printf("repair            %s repaired, %s unrepaired\n",
           s_num(ingest, "repaired", a, sizeof(a)), s_num(ingest, "unrepaired", b, sizeof(b)));
    printf("retention         %s removed\n", s_num(ingest, "retention_removed", a, sizeof(a)));
    printf("replay sessions   %s\n", s_num(info, "replay_sessions", a, sizeof(a)));
    const json_t *sources = json_object_get(info, "sources");
    if (json_is_array(sources))
        printf("sources           %zu\n", json_array_size(sources));
    else if (json_is_null(sources))
        printf("sources           more than 10000\n");
    else
        printf("sources           ?\n");
}

static int s_info(int argc, char **argv)
{
    svc_cli_t ao;
    archive_cli_init(&ao, PROG);
    char default_name[64];
    snprintf(default_name, sizeof(default_name), "weft-archive-%d", (int)getpid());
    bool as_json = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            s_help();
            return 0;
        }
        int rc = svc_cli_option(&ao, argc, argv, &i);
        if (rc < 0)
            return 2;
        if (rc > 0)
            continue;
        if (!strcmp(a, "--json")) {
            as_json = true;
            continue;
        }
        if (a[0] == '-')
            return s_usage_error("unknown option '%s'", a);
        return s_usage_error("unexpected argument '%s'", a);
    }
    if (!ao.node.name)
        ao.node.name = default_name;
    long timeout_ms = ao.timeout_ms > 0 ? ao.timeout_ms : 5000;

    char svc[256];
    if (svc_cli_locate(&ao, svc, sizeof(svc), NULL) != 0)
        return 1;
    weft_reply_t reply;
    memset(&reply, 0, sizeof(reply));
    int rc = weft_archive_info(svc, (int)timeout_ms, &reply);
    if (rc != WEFT_OK) {
        weft_reply_clear(&reply);
        archive_cli_report(&ao, svc, rc, NULL, timeout_ms);
        return 1;
    }
    if (strcmp(reply.status, "OK") != 0) {
        char remote[400];
        snprintf(remote, sizeof(remote), "%s: %s", reply.err_code, reply.err_message);
        weft_reply_clear(&reply);
        archive_cli_report(&ao, svc, WEFT_EREMOTE, remote, timeout_ms);
        return 1;
    }
    int err = 0;
    json_t *info = json_mp_to_json(reply.body, reply.body_size, &err);
    weft_reply_clear(&reply);
    if (!info || !json_is_object(info)) {
        json_decref(info);
        archive_cli_report(&ao, svc, WEFT_EMALFORMED, NULL, timeout_ms);
        return 1;
    }
    int status = 0;
    if (as_json) {
        char *text = json_dumps(info, JSON_COMPACT);
        if (text)
            printf("%s\n", text);
        else {
            fprintf(stderr, PROG ": out of memory\n");
            status = 1;
        }
        free(text);
    } else {
        s_print_text(info, svc);
    }
    json_decref(info);
    if (fflush(stdout) == EOF) {
        fprintf(stderr, PROG ": cannot write to stdout\n");
        status = 1;
    }
    return status;
}

static void s_usage(FILE *out)
{
    fprintf(out, "usage: weft archive SUBCOMMAND [OPTIONS]\n"
                 "\n"
                 "subcommands:\n"
                 "  info      what the archiver keeps and how its ingest goes (--json for JSON)\n"
                 "\n"
                 "`weft archive SUBCOMMAND --help` describes a subcommand. To read the archive:\n"
                 "`weft replay` and `weft get ID`.\n");
}

int cmd_archive(int argc, char **argv)
{
    if (argc < 2) {
        s_usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        s_usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "info"))
        return s_info(argc - 1, argv + 1);
    fprintf(stderr, "weft archive: unknown subcommand '%s'\n\n", argv[1]);
    s_usage(stderr);
    return 2;
}

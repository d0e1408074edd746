/*  cmd_replay.c - `weft replay`: prints events kept by the archiver as JSON lines on stdout,
    in archive order, selected by position (--from, --since, --from-id, --to, --until), topic
    prefix, source and count; with --follow it then keeps printing new events as they are
    committed, until Ctrl-C.

    The archiver is found on the fabric by a short-lived node (or given with --archiver); the
    replay itself streams from its service endpoint under credit (weft_replay, weft/archive.h).
    Lines are those of `weft sub` plus "offset" and "recv_ts" (archive_cli_print). Called by
    main.c through cmd_replay (cli.h).
*/
#include <czmq.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "archive_cli.h"
#include "cli.h"
#include "cli_parse.h"

#define PROG "weft replay"
#define MAX_LIST 64 /* prefixes, sources: what the archiver accepts */

typedef struct {
    event_json_t buf;
    bool flush;
    uint64_t printed;
    uint64_t undecodable;
    bool oom;
    int write_errno;
} replay_state_t;

static int s_on_event(const weft_archived_t *ev, void *arg)
{
    replay_state_t *st = arg;
    if (zsys_interrupted)
        return 1;
    switch (archive_cli_print(ev, &st->buf, stdout, st->flush)) {
    case ARCHIVE_PRINT_OK:
        st->printed++;
        return 0;
    case ARCHIVE_PRINT_BAD:
        st->undecodable++;
        fprintf(stderr, PROG ": offset %" PRIu64 ": the stored envelope does not decode; "
                        "skipped\n",
                ev->offset);
        return 0;
    case ARCHIVE_PRINT_OOM:
        st->oom = true;
        return 1;
    default:
        st->write_errno = errno ? errno : EIO;
        return 1;
    }
}

static void s_help(void)
{
    printf(
        "usage: weft replay [--from OFFSET | --since TIME | --from-id ID] [--to OFFSET]\n"
        "                   [--until TIME] [--topic PREFIX]... [--source NAME]... [--limit N]\n"
        "                   [--follow] [--archiver ENDPOINT] [--json-offsets] [OPTIONS]\n"
        "\n"
        "Prints the events the archiver (weft-archiver) keeps, in archive order, one compact\n"
        "JSON object per line on stdout: the keys of `weft sub` (see weft sub --help) plus\n"
        "\"offset\", the event's position in the archive (1, 2, ...), first, and \"recv_ts\",\n"
        "when the archiver received it (ns since the epoch), after \"ts\".\n"
        "\n"
        "where to start (at most one; default: the first event kept):\n"
        "  --from OFFSET       at this offset\n"
        "  --since TIME        at the first event received at or after TIME\n"
        "  --from-id ID        at the event with this id (a UUID, as `weft sub` prints it)\n"
        "where to stop (default: the last event committed when the replay reaches it):\n"
        "  --to OFFSET         after this offset\n"
        "  --until TIME        after the last event received at or before TIME\n"
        "  --limit N           after N events printed\n"
        "  --follow            at the end, keep printing events as they are archived, until\n"
        "                      Ctrl-C (or --to, --until, --limit)\n"
        "which events:\n"
        "  --topic PREFIX      only topics that start with PREFIX (repeatable, at most %d)\n"
        "  --source NAME       only events published by the node called NAME (repeatable, at\n"
        "                      most %d)\n"
        "output:\n"
        "  --json-offsets      at the end, write {\"events\":N,\"next_offset\":M} on stderr:\n"
        "                      `--from M` continues where this replay stopped (null when\n"
        "                      unknown)\n"
        "  -h, --help          this help\n"
        "\n"
        "TIME is one of: ns since the Unix epoch (1795383000000000000); an RFC 3339 / ISO 8601\n"
        "time (2026-11-22T21:30:00Z, 2026-11-22T22:30:00.5+01:00, 2026-11-22 21:30, 2026-11-22;\n"
        "UTC when no Z or offset is given); an age, meaning that long ago: 90s, 10m, 2h, 3d, 1w,\n"
        "500ms, 1.5h; or now. Durations (S) are seconds (\"1.5\", \"2s\"), or with a unit:\n"
        "\"500ms\", \"2m\".\n"
        "\n"
        "%s"
        "\n"
        "%s"
        "  default --name for this command: weft-replay-<pid>; default --gossip-bind: none\n"
        "\n"
        "Exit status: 0 the replay ended (its end, --to, --until, --limit, or Ctrl-C), 1 failure\n"
        "(no archiver found, the archiver did not answer or refused, unknown --from-id, stdout\n"
        "closed, an archived event that does not decode), 2 usage error.\n"
        "\n"
        "examples:\n"
        "  weft replay                               everything the archive keeps\n"
        "  weft replay --since 10m --topic task.     task.* events of the last 10 minutes\n"
        "  weft replay --from 5000 --limit 100 --source billing\n"
        "  weft replay --since 2026-11-22T21:30:00Z --until 2026-11-22T22:00:00Z | jq .payload\n"
        "  weft replay --since now --follow          new events only, as they are archived\n"
        "  weft replay --archiver tcp://10.0.0.5:40123 --from-id 0199...\n",
        MAX_LIST, MAX_LIST, archive_cli_help, cli_node_help);
}

static int s_usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, PROG ": ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (see weft replay --help)\n");
    return 2;
}

int cmd_replay(int argc, char **argv)
{
    svc_cli_t ao;
    archive_cli_init(&ao, PROG);
    char default_name[64];
    snprintf(default_name, sizeof(default_name), "weft-replay-%d", (int)getpid());
    weft_replay_opts_t ro;
    memset(&ro, 0, sizeof(ro));
    const char *prefixes[MAX_LIST], *sources[MAX_LIST];
    size_t nprefixes = 0, nsources = 0;
    bool all_topics = false, json_offsets = false;
    int starts = 0;
    uint8_t from_id[WEFT_ID_SIZE];
    int64_t now = weft_now_ns();

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
        if (!strcmp(a, "--follow")) {
            ro.live = true;
            continue;
        }
        if (!strcmp(a, "--json-offsets")) {
            json_offsets = true;
            continue;
        }
        if (a[0] != '-')
            return s_usage_error("unexpected argument '%s' (a topic prefix goes after --topic)",
                                 a);
        static const char *const with_value[] = {"--from",  "--since", "--from-id",
                                                 "--to",    "--until", "--topic",
                                                 "--source", "--limit"};
        bool known = false;
        for (size_t k = 0; k < sizeof(with_value) / sizeof(with_value[0]); k++)
            known = known || !strcmp(a, with_value[k]);
        if (!known)
            return s_usage_error("unknown option '%s'", a);
        if (i + 1 >= argc)
            return s_usage_error("%s needs a value", a);
        const char *v = argv[++i];
        if (!strcmp(a, "--from")) {
            if (!cli_parse_u64(v, 1, UINT64_MAX, &ro.from_offset))
                return s_usage_error("--from wants an offset >= 1, not '%s'", v);
            starts++;
        } else if (!strcmp(a, "--to")) {
            if (!cli_parse_u64(v, 1, UINT64_MAX, &ro.to_offset))
                return s_usage_error("--to wants an offset >= 1, not '%s'", v);
        } else if (!strcmp(a, "--limit")) {
            if (!cli_parse_u64(v, 1, UINT64_MAX, &ro.limit))
                return s_usage_error("--limit wants a whole number >= 1, not '%s'", v);
        } else if (!strcmp(a, "--since") || !strcmp(a, "--until")) {
            int64_t t;
            if (archive_cli_parse_time(v, now, &t) != 0)
                return s_usage_error("bad TIME '%s' (ns since the epoch, "
                                     "2026-11-22T21:30:00Z, or an age such as 10m, 2h, 3d)",
                                     v);
            if (!strcmp(a, "--since")) {
                /* 0 would mean "no --since": the epoch itself starts at the first event. */
                ro.since_ns = t > 0 ? t : 0;
                starts++;
            } else {
                ro.until_ns = t > 0 ? t : 1;
            }
        } else if (!strcmp(a, "--from-id")) {
            if (weft_id_parse(v, from_id) != WEFT_OK)
                return s_usage_error("--from-id wants an event id (a UUID), not '%s'", v);
            ro.from_id = from_id;
            starts++;
        } else if (!strcmp(a, "--topic")) {
            size_t n = strlen(v);
            if (n > 0 && weft_topic_check(v, n) != WEFT_OK)
                return s_usage_error("'%s' is not a valid topic prefix (up to 255 printable "
                                     "ASCII bytes, no spaces)",
                                     v);
            if (nprefixes >= MAX_LIST)
                return s_usage_error("at most %s --topic", "64");
            if (n == 0)
                all_topics = true;
            else
                prefixes[nprefixes++] = v;
        } else { /* --source */
            size_t n = strlen(v);
            if (n == 0 || n > WEFT_NAME_MAX)
                return s_usage_error("--source wants a node name of 1 to 255 bytes, not '%s'",
                                     v);
            if (nsources >= MAX_LIST)
                return s_usage_error("at most %s --source", "64");
            sources[nsources++] = v;
        }
    }
    if (starts > 1)
        return s_usage_error("%s", "give at most one of --from, --since and --from-id");
    if (ro.from_offset && ro.to_offset && ro.to_offset < ro.from_offset)
        return s_usage_error("%s", "--to is before --from");
    if (ro.since_ns && ro.until_ns && ro.until_ns < ro.since_ns)
        return s_usage_error("%s", "--until is before --since");
    if (!ao.node.name)
        ao.node.name = default_name;
    if (!all_topics && nprefixes) {
        ro.prefixes = prefixes;
        ro.nprefixes = nprefixes;
    }
    if (nsources) {
        ro.sources = sources;
        ro.nsources = nsources;
    }
    long timeout_ms = ao.timeout_ms > 0 ? ao.timeout_ms : 5000;
    ro.timeout_ms = (int)timeout_ms;
    ro.stop = &zsys_interrupted;

    char svc[256];
    bool interrupted = false;
    if (svc_cli_locate(&ao, svc, sizeof(svc), &interrupted) != 0)
        return interrupted ? 0 : 1;

    replay_state_t st;
    memset(&st, 0, sizeof(st));
    st.flush = ro.live || isatty(STDOUT_FILENO);
    weft_replay_totals_t totals;
    char remote[320] = "";
    int rc = weft_replay(svc, &ro, s_on_event, &st, &totals, remote, sizeof(remote));
    event_json_free(&st.buf);
    if (fflush(stdout) == EOF && !st.write_errno)
        st.write_errno = errno ? errno : EIO;

    int status = 0;
    if (st.write_errno) {
        fprintf(stderr, PROG ": cannot write to stdout: %s\n", strerror(st.write_errno));
        status = 1;
    } else if (st.oom) {
        fprintf(stderr, PROG ": out of memory formatting an event\n");
        status = 1;
    } else if (rc == WEFT_ENOTFOUND && ro.from_id) {
        char text[WEFT_ID_STR];
        fprintf(stderr, PROG ": --from-id: event %s not found in the archive\n",
                weft_id_format(from_id, text));
        status = 1;
    } else if (rc != WEFT_OK) {
        archive_cli_report(&ao, svc, rc, remote, timeout_ms);
        status = 1;
    } else if (st.undecodable) {
        fprintf(stderr, PROG ": %" PRIu64 " archived events could not be decoded\n",
                st.undecodable);
        status = 1;
    }
    if (json_offsets) {
        char next[32] = "null";
        if (totals.next_offset)
            snprintf(next, sizeof(next), "%" PRIu64, totals.next_offset);
        else if (st.printed == 0 && ro.from_offset && rc == WEFT_OK)
            snprintf(next, sizeof(next), "%" PRIu64, ro.from_offset);
        fprintf(stderr, "{\"events\":%" PRIu64 ",\"next_offset\":%s}\n", st.printed, next);
    }
    return status;
}

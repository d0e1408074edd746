/*  cmd_sub.c - `weft sub PREFIX...`: prints the events of one or more topic prefixes as JSON
    lines on stdout.

    The command starts a node (role "cli"), subscribes a handler to each prefix and prints one
    compact JSON object per event, flushed per line, so the output can be piped into jq, a test
    or a file. The handler runs on the node's thread and only formats and writes; the main
    thread waits for --count events, the --timeout deadline or Ctrl-C, then destroys the node.
    msgpack payloads are shown as JSON (json_mp.h), anything else as base64. --ready-file lets a
    script know when the subscriber is listening and where to --connect. Called by main.c
    through cmd_sub (cli.h); the node options are shared with the other commands
    (tools/common/node_opts.h), the line format with `weft replay` and `weft get`
    (event_json.h).

    --fail P makes the handler fail with probability P (code demo.fail, weft_event_fail), so
    the node's retries, dead letters and the DLQ can be watched at work; such an event is
    still printed, with "failed":true added. --sub-name and --retries set the subscription's
    name (its subscriber id is "<node name>/<sub name>") and its handler calls per event.
*/
#include <czmq.h>
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cli_parse.h"
#include "event_json.h"

#define DEFAULT_WAIT_MS 3000
#define MAX_PREFIXES 64

static const struct {
    const char *name;
    unsigned bit;
} s_fields[] = {
    {"topic", EVENT_JSON_TOPIC},   {"id", EVENT_JSON_ID},         {"src", EVENT_JSON_SRC},
    {"inst", EVENT_JSON_INST},     {"seq", EVENT_JSON_SEQ},       {"ts", EVENT_JSON_TS},
    {"ver", EVENT_JSON_VER},       {"corr", EVENT_JSON_CORR},     {"trace", EVENT_JSON_TRACE},
    {"reply", EVENT_JSON_REPLY},   {"tenant", EVENT_JSON_TENANT}, {"retry", EVENT_JSON_RETRY},
    {"ct", EVENT_JSON_CT},         {"h", EVENT_JSON_H},           {"payload", EVENT_JSON_PAYLOAD},
};
#define NFIELDS (sizeof(s_fields) / sizeof(s_fields[0]))

/*  Shared between the main thread and the handler (node thread). */
typedef struct {
    unsigned fields;
    uint64_t limit; /* stop printing after this many events; 0 = no limit */
    double fail;    /* --fail: probability that a handler call fails (0: never) */
    uint64_t rng;   /* xorshift64 state for --fail; touched by the node thread only */
    atomic_uint_fast64_t printed;
    atomic_int write_errno; /* errno of a failed write to stdout, 0 if none */
} sub_state_t;

/*  Uniform in [0, 1). */
static double s_uniform(sub_state_t *st)
{
    st->rng ^= st->rng << 13;
    st->rng ^= st->rng >> 7;
    st->rng ^= st->rng << 17;
    return (double)(st->rng >> 11) / 9007199254740992.0; /* 2^53 */
}

/*  The handler, on the node's thread: format, write, count. */
static int s_on_event(weft_event_t *ev, void *arg)
{
    sub_state_t *st = arg;
    if (st->limit && atomic_load(&st->printed) >= st->limit)
        return 0;
    bool failed = st->fail > 0 && s_uniform(st) < st->fail;
    event_json_t t = {NULL, 0, 0, false};
    event_json_src_t src = {ev->topic, strlen(ev->topic), ev->env, ev->payload, ev->size, 0, 0};
    event_json_format(&t, st->fields, &src);
    if (t.oom) {
        event_json_free(&t);
        return weft_event_fail(ev, "cli.oom", "out of memory formatting the event");
    }
    bool write_ok;
    if (failed && t.len >= 2) /* the line ends with "}\n": add the key before the brace */
        write_ok = fwrite(t.data, 1, t.len - 2, stdout) == t.len - 2 &&
                   fputs(",\"failed\":true}\n", stdout) != EOF;
    else
        write_ok = fputs(t.data, stdout) != EOF;
    if (!write_ok || fflush(stdout) == EOF)
        atomic_store(&st->write_errno, errno ? errno : EIO);
    event_json_free(&t);
    atomic_fetch_add(&st->printed, 1);
    if (failed)
        return weft_event_fail(ev, "demo.fail",
                               "simulated failure (weft sub --fail %g), attempt %u of %s",
                               st->fail, ev->env->retry + 1, ev->topic);
    return 0;
}

/* ---- command line --------------------------------------------------------------------------- */

static void s_help(void)
{
    printf(
        "usage: weft sub PREFIX... [OPTIONS]\n"
        "\n"
        "Subscribes to every event whose topic starts with one of the PREFIXes and prints one\n"
        "compact JSON object per event on stdout, one per line, flushed per line:\n"
        "  {\"topic\":..,\"id\":\"<uuid>\",\"src\":..,\"inst\":N,\"seq\":N,\"ts\":<ns>,\"ver\":N,\n"
        "   \"corr\",\"trace\",\"reply\",\"tenant\",\"retry\": when set, \"ct\": when not\n"
        "   application/msgpack, \"h\":{headers} when any,\n"
        "   \"payload\": the msgpack payload as JSON, or \"payload_base64\": the bytes otherwise}\n"
        "'' (empty) subscribes to every data topic. Fabric topics (_weft.*, e.g. heartbeats on\n"
        "_weft.hb) are printed only for prefixes that start with _weft. (the node also treats\n"
        "a start of it, such as _ or _we, as a fabric prefix). A prefix covered by another one\n"
        "given (task. and task.created) is not subscribed twice, so each event is printed once.\n"
        "\n"
        "options:\n"
        "  --count N           exit with status 0 after N events (default: no limit)\n"
        "  --timeout S         exit after S; the status is then 0 without --count, else 1 if\n"
        "                      fewer than N events arrived (default: no timeout)\n"
        "  --fields a,b,c      print only these keys: topic,id,src,inst,seq,ts,ver,corr,trace,\n"
        "                      reply,tenant,retry,ct,h,payload (default: all)\n"
        "  --wait S            after subscribing, how long to wait for discovery to connect\n"
        "                      the peers this node learns of (default 3s)\n"
        "  --ready-file PATH   once subscribed and after that wait, write this node's SUB\n"
        "                      endpoint into PATH (no newline; written to PATH.tmp, then\n"
        "                      renamed), so a script knows it is listening and where\n"
        "  --print-endpoint    print 'sub=<ep> ctl=<ep> gossip=<ep|none>' on stderr at start\n"
        "  -h, --help          this help\n"
        "Durations (S) are seconds (\"1.5\", \"2s\"), or with a unit: \"500ms\", \"2m\".\n"
        "\n"
        "failures (to watch retries, dead letters and the DLQ at work):\n"
        "  --fail P            the handler fails with probability P (0..1) with error code\n"
        "                      demo.fail and a message; the event is still printed, with\n"
        "                      \"failed\":true added. Each handler call prints a line: local\n"
        "                      retries and the DLQ's redeliveries print the event again, with\n"
        "                      \"retry\":N (earlier attempts). --count counts every line.\n"
        "  --sub-name NAME     the subscription's name (default: the prefix); the DLQ knows it\n"
        "                      as the subscriber \"<node name>/NAME\" and redelivers to the node\n"
        "                      of that name, so keep --name too when the command is restarted.\n"
        "                      With one PREFIX only.\n"
        "  --retries N         handler calls per event before it is dead-lettered: sent to the\n"
        "                      DLQ (weft-dlq) when one is on the fabric (default 3)\n"
        "\n"
        "%s"
        "  default --name for this command: weft-sub-<pid>\n"
        "\n"
        "Exit status: 0 ok (--count reached, timeout without --count, Ctrl-C), 1 failure\n"
        "(fewer than --count events before the timeout or Ctrl-C, cannot start the node or\n"
        "write the ready file, stdout closed), 2 usage error.\n"
        "\n"
        "examples:\n"
        "  weft sub task.\n"
        "  weft sub ''                            every data event\n"
        "  weft sub task. audit. --count 10 --timeout 30s\n"
        "  weft sub task. --fail 0.2 --sub-name worker --name worker-1   letters for weft dlq\n"
        "  weft sub _weft.hb --fields src,payload  heartbeats of the fabric\n"
        "  weft sub orders. | jq -c .payload\n"
        "  weft sub task. --seed none --ready-file /tmp/sub.ep &\n"
        "  weft pub task.created '{}' --seed none --connect \"$(cat /tmp/sub.ep)\"\n",
        cli_node_help);
}

static int s_usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "weft sub: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (see weft sub --help)\n");
    return 2;
}

/*  "a,b,c" -> bit mask. Returns 0 after reporting an unknown name. */
static unsigned s_parse_fields(const char *list)
{
    unsigned mask = 0;
    const char *p = list;
    while (*p) {
        size_t n = strcspn(p, ",");
        bool found = false;
        for (size_t i = 0; i < NFIELDS && n; i++)
            if (strlen(s_fields[i].name) == n && !strncmp(p, s_fields[i].name, n)) {
                mask |= s_fields[i].bit;
                found = true;
            }
        if (n && !found) {
            fprintf(stderr,
                    "weft sub: --fields: unknown field '%.*s' (known: topic,id,src,inst,"
                    "seq,ts,ver,corr,trace,reply,tenant,retry,ct,h,payload)\n",
                    (int)n, p);
            return 0;
        }
        p += n;
        if (*p == ',')
            p++;
    }
    if (!mask)
        fprintf(stderr, "weft sub: --fields needs at least one field name\n");
    return mask;
}

/*  The library treats a prefix as a fabric one when it starts with "_weft." or could still
    grow into it ("_we"); such a prefix only sees fabric topics. */
static bool s_prefix_is_fabric(const char *p)
{
    size_t n = strlen(p);
    return weft_topic_is_fabric(p, n) || (n > 0 && strncmp(WEFT_FABRIC_PREFIX, p, n) == 0);
}

/*  True when prefix a already receives everything prefix b would. */
static bool s_prefix_covers(const char *a, const char *b)
{
    return s_prefix_is_fabric(a) == s_prefix_is_fabric(b) && strncmp(a, b, strlen(a)) == 0;
}

static int s_write_ready_file(const char *path, const char *endpoint)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
        fprintf(stderr, "weft sub: --ready-file path too long\n");
        return -1;
    }
    FILE *f = fopen(tmp, "w");
    bool ok = f && fputs(endpoint, f) != EOF;
    if (f && fclose(f) != 0)
        ok = false;
    if (ok && rename(tmp, path) != 0)
        ok = false;
    if (!ok) {
        fprintf(stderr, "weft sub: cannot write ready file %s: %s\n", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

int cmd_sub(int argc, char **argv)
{
    const char *prefixes[MAX_PREFIXES];
    int nprefixes = 0;
    uint64_t count = 0;
    long timeout_ms = -1, wait_ms = DEFAULT_WAIT_MS;
    const char *ready_file = NULL;
    bool print_endpoint = false, options_done = false;
    unsigned fields = EVENT_JSON_ALL;
    double fail = 0;
    const char *sub_name = NULL;
    uint64_t retries = 0;
    cli_node_opts_t nopts;
    memset(&nopts, 0, sizeof(nopts));
    nopts.role = "cli";
    char default_name[64];
    snprintf(default_name, sizeof(default_name), "weft-sub-%d", (int)getpid());

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (options_done || a[0] != '-') {
            size_t n = strlen(a);
            if (n > 0 && weft_topic_check(a, n) != WEFT_OK)
                return s_usage_error("'%s' is not a valid prefix (up to 255 printable ASCII "
                                     "bytes, no spaces)",
                                     a);
            if (nprefixes >= MAX_PREFIXES)
                return s_usage_error("at most %s prefixes", "64");
            prefixes[nprefixes++] = a;
            continue;
        }
        if (!strcmp(a, "--")) {
            options_done = true;
            continue;
        }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            s_help();
            return 0;
        }
        int rc = cli_node_option(&nopts, argc, argv, &i);
        if (rc < 0)
            return 2;
        if (rc > 0)
            continue;
        if (!strcmp(a, "--print-endpoint")) {
            print_endpoint = true;
            continue;
        }
        if (strcmp(a, "--count") && strcmp(a, "--timeout") && strcmp(a, "--fields") &&
            strcmp(a, "--wait") && strcmp(a, "--ready-file") && strcmp(a, "--fail") &&
            strcmp(a, "--sub-name") && strcmp(a, "--retries"))
            return s_usage_error("unknown option '%s'", a);
        if (i + 1 >= argc)
            return s_usage_error("%s needs a value", a);
        const char *v = argv[++i];
        if (!strcmp(a, "--count")) {
            if (!cli_parse_u64(v, 1, UINT64_MAX, &count))
                return s_usage_error("--count wants a whole number >= 1, not '%s'", v);
        } else if (!strcmp(a, "--timeout") || !strcmp(a, "--wait")) {
            long ms = cli_parse_ms(v);
            if (ms < 0)
                return s_usage_error("bad duration '%s' (e.g. 3, 1.5s, 500ms, 2m)", v);
            if (!strcmp(a, "--timeout"))
                timeout_ms = ms;
            else
                wait_ms = ms;
        } else if (!strcmp(a, "--fields")) {
            if (!(fields = s_parse_fields(v)))
                return 2;
        } else if (!strcmp(a, "--fail")) {
            char *end;
            errno = 0;
            fail = strtod(v, &end);
            if (end == v || *end || errno || !(fail >= 0 && fail <= 1))
                return s_usage_error("--fail wants a probability from 0 to 1, not '%s'", v);
        } else if (!strcmp(a, "--sub-name")) {
            if (!*v || strlen(v) > WEFT_NAME_MAX)
                return s_usage_error("--sub-name needs a name of 1 to 255 bytes%s", "");
            sub_name = v;
        } else if (!strcmp(a, "--retries")) {
            if (!cli_parse_u64(v, 1, 1000000, &retries))
                return s_usage_error("--retries wants a whole number from 1 to 1000000, not "
                                     "'%s'",
                                     v);
        } else {
            if (!*v)
                return s_usage_error("%s needs a non-empty path", a);
            ready_file = v;
        }
    }
    if (nprefixes == 0)
        return s_usage_error("%s", "at least one PREFIX is needed ('' subscribes to everything)");
    if (sub_name && nprefixes > 1)
        return s_usage_error("%s", "--sub-name names one subscription: give one PREFIX");
    if (!nopts.name)
        nopts.name = default_name;
    /* Options only when asked for: without them the subscription is the library's default. */
    weft_sub_options_t sopts;
    memset(&sopts, 0, sizeof(sopts));
    sopts.name = sub_name;
    sopts.retry_attempts = (int)retries;
    const weft_sub_options_t *sopts_p = sub_name || retries ? &sopts : NULL;

    sub_state_t *st = calloc(1, sizeof(*st));
    if (!st) {
        fprintf(stderr, "weft sub: out of memory\n");
        return 1;
    }
    st->fields = fields;
    st->limit = count;
    st->fail = fail;
    st->rng = ((uint64_t)getpid() << 32) ^ (uint64_t)zclock_time() ^ 0x9e3779b97f4a7c15ULL;
    if (!st->rng)
        st->rng = 1;
    weft_node_t *node = cli_node_new(&nopts);
    if (!node) {
        free(st);
        return 1;
    }
    int status = 0;
    for (int i = 0; i < nprefixes && status == 0; i++) {
        bool covered = false;
        for (int j = 0; j < nprefixes && !covered; j++)
            if (j != i && s_prefix_covers(prefixes[j], prefixes[i]) &&
                (!s_prefix_covers(prefixes[i], prefixes[j]) || j < i))
                covered = true;
        if (covered)
            continue;
        int err = 0;
        if (!weft_subscribe(node, prefixes[i], s_on_event, st, sopts_p, &err)) {
            fprintf(stderr, "weft sub: cannot subscribe to '%s': %s\n", prefixes[i],
                    weft_strerror(err));
            status = 1;
        }
    }
    int64_t start = zclock_mono();
    if (status == 0 && print_endpoint)
        fprintf(stderr, "sub=%s ctl=%s gossip=%s\n", weft_node_sub_endpoint(node),
                weft_node_ctl_endpoint(node),
                weft_node_gossip_endpoint(node) ? weft_node_gossip_endpoint(node) : "none");
    /* Discovery, in slices so Ctrl-C is noticed. */
    int64_t wait_until = zclock_mono() + wait_ms;
    while (status == 0 && wait_ms > 0 && !zsys_interrupted) {
        int64_t left = wait_until - zclock_mono();
        if (weft_node_wait_peers(node, left < 100 ? (int)(left > 0 ? left : 0) : 100) >= 0 ||
            left <= 0)
            break;
    }
    if (status == 0 && ready_file && !zsys_interrupted &&
        s_write_ready_file(ready_file, weft_node_sub_endpoint(node)) != 0)
        status = 1;

    int64_t deadline = timeout_ms >= 0 ? start + timeout_ms : INT64_MAX;
    bool timed_out = false;
    while (status == 0 && !zsys_interrupted) {
        if (count && atomic_load(&st->printed) >= count)
            break;
        if (atomic_load(&st->write_errno))
            break;
        if (zclock_mono() >= deadline) {
            timed_out = true;
            break;
        }
        zclock_sleep(10);
    }
    weft_node_destroy(&node);
    uint64_t printed = atomic_load(&st->printed);
    if (status == 0 && atomic_load(&st->write_errno)) {
        fprintf(stderr, "weft sub: cannot write to stdout: %s\n",
                strerror(atomic_load(&st->write_errno)));
        status = 1;
    } else if (status == 0 && count && printed < count) {
        fprintf(stderr, "weft sub: %s: %" PRIu64 " of %" PRIu64 " events arrived\n",
                timed_out ? "timeout" : "interrupted", printed, count);
        status = 1;
    }
    free(st);
    return status;
}

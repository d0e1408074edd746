/*  cmd_pub.c - `weft pub TOPIC [JSON|-]`: publishes events from the command line.

    The command starts a short-lived node (role "cli"), waits for discovery to connect it to the
    peers it learns of (weft_node_wait_peers), publishes, then stays up for --linger so that a
    receiver that missed an event can still FETCH it from this node's outbox. The payload is a
    JSON value converted to msgpack (json_mp.h), or with --raw the bytes as given. A JSON object
    member whose value is the string "{{seq}}" becomes the number of the event in this run
    (1, 2, ...), which makes `--count N --rate R` usable as demo load. Called by main.c through
    cmd_pub (cli.h); the node options are shared with the other commands (cli_common.c).
*/
#include <czmq.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "cli_parse.h"
#include "json_mp.h"

#define SEQ_MARK "{{seq}}"
#define DEFAULT_WAIT_MS 3000
#define DEFAULT_LINGER_MS 2000

typedef struct {
    const char *topic;
    const char *input; /* JSON text, raw text, or "-" for stdin */
    uint64_t count;    /* times each event is published */
    double rate;       /* events/s, 0 = unpaced */
    long wait_ms;
    long linger_ms;
    bool raw;
    bool quiet;
    weft_meta_t meta;
    char *hkeys[WEFT_HEADERS_MAX];
    const char *hvals[WEFT_HEADERS_MAX];
    size_t hcount;
} pub_opts_t;

/*  State of one run: what was published, the pacing schedule. */
typedef struct {
    weft_node_t *node;
    pub_opts_t *o;
    uint64_t published; /* events accepted by weft_publish */
    int64_t last_seq;
    int64_t first_ns; /* monotonic time of the first publish */
    int64_t last_ns;  /* monotonic time after the last publish */
    int64_t next_ns;  /* pacing: when the next event is due (0: not started) */
    int64_t period_ns;
    int fatal; /* a publish error that ends the run (weft_err_t), 0 if none */
} pub_run_t;

static void s_help(void)
{
    printf(
        "usage: weft pub TOPIC [JSON|-] [OPTIONS]\n"
        "\n"
        "Publishes events on TOPIC. The payload is the JSON value given as argument (default\n"
        "{}), converted to msgpack. With -, JSON values are read from stdin, one per line: each\n"
        "line is one event, blank lines are skipped, a line that is not valid JSON is reported\n"
        "with its line number and skipped (the exit status is then 1). In a JSON object, a\n"
        "member whose value is the string \"{{seq}}\" is replaced by the number of the event in\n"
        "this run (1, 2, ... N).\n"
        "\n"
        "options:\n"
        "  --count N       publish the payload N times; with -, each line N times (default 1)\n"
        "  --rate R        events per second, may be fractional; 0 = as fast as possible\n"
        "                  (default 0)\n"
        "  --corr ID       correlation id (default none)\n"
        "  --trace ID      trace id (default none)\n"
        "  --reply TOPIC   reply-to topic (default none)\n"
        "  --tenant ID     tenant id (default none)\n"
        "  --header K=V    free header, repeatable up to %d times (default none)\n"
        "  --ct TYPE       payload content type (default application/msgpack, or\n"
        "                  application/octet-stream with --raw)\n"
        "  --ver N         payload schema version, 1..4294967295 (default 1)\n"
        "  --raw           send the argument's bytes as they are instead of converting JSON;\n"
        "                  with -, all of stdin is one payload (default: empty payload)\n"
        "  --wait S        how long to wait for discovery to connect the peers before\n"
        "                  publishing; on timeout warn and publish anyway (default 3s)\n"
        "  --linger S      stay up after the last event so peers can FETCH it from this\n"
        "                  node's outbox (default 2s)\n"
        "  --quiet         no summary or warnings on stderr (errors are still shown)\n"
        "  -h, --help      this help\n"
        "Durations (S) are seconds (\"1.5\", \"2s\"), or with a unit: \"500ms\", \"2m\".\n"
        "\n"
        "%s"
        "  default --name for this command: weft-pub-<pid>\n"
        "\n"
        "At the end a summary goes to stderr: published N events to TOPIC in X s (R/s), last\n"
        "seq S. Ctrl-C stops early and still prints it. Exit status: 0 ok, 1 a publish error\n"
        "or a bad stdin line, 2 usage error.\n"
        "\n"
        "examples:\n"
        "  weft pub task.created '{\"id\":42,\"title\":\"write docs\"}'\n"
        "  weft pub task.created '{\"id\":\"{{seq}}\"}' --count 1000 --rate 100\n"
        "  weft pub orders.new '{\"sku\":\"A1\"}' --corr req-7 --header source=shop --ver 2\n"
        "  jq -c '.[]' events.json | weft pub audit.imported -\n"
        "  weft pub blobs.png --raw - --ct image/png < picture.png\n"
        "  weft pub task.created --seed none --connect tcp://127.0.0.1:40123 --wait 1\n",
        WEFT_HEADERS_MAX, cli_node_help);
}

static int s_usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "weft pub: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (see weft pub --help)\n");
    return 2;
}

static int64_t s_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/*  Sleeps until the monotonic time `until` (ns), in slices, returning early on Ctrl-C. */
static void s_sleep_until(int64_t until)
{
    while (!zsys_interrupted) {
        int64_t now = s_mono_ns();
        if (now >= until)
            return;
        int64_t slice = until - now > 100000000 ? now + 100000000 : until;
        struct timespec ts = {(time_t)(slice / 1000000000), (long)(slice % 1000000000)};
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
    }
}

/*  Paces to --rate: waits until the next event is due. When the command fell far behind (it
    was waiting on stdin, say), the schedule restarts from now instead of bursting. */
static void s_pace(pub_run_t *r)
{
    if (r->period_ns <= 0)
        return;
    int64_t now = s_mono_ns();
    int64_t slack = r->period_ns > 50000000 ? r->period_ns : 50000000;
    if (r->next_ns == 0 || now - r->next_ns > slack)
        r->next_ns = now;
    /* Sleeping for less than ~50 us costs more than it waits; such events go out at once and
       the schedule catches up, so the average rate holds without spinning. */
    if (r->next_ns - now > 50000)
        s_sleep_until(r->next_ns);
    r->next_ns += r->period_ns;
}

/*  Publishes one event. Returns 0, or the weft error (also stored in r->fatal unless it is
    specific to this payload, i.e. too big, in which case the run can go on). */
static int s_publish(pub_run_t *r, const void *data, size_t size)
{
    s_pace(r);
    if (zsys_interrupted)
        return 0;
    int64_t t = s_mono_ns();
    if (r->published == 0)
        r->first_ns = t;
    int64_t seq = weft_publish(r->node, r->o->topic, data, size, &r->o->meta, NULL);
    r->last_ns = s_mono_ns();
    if (seq < 0) {
        if (seq != WEFT_ETOOBIG)
            r->fatal = (int)seq;
        return (int)seq;
    }
    r->published++;
    r->last_seq = seq;
    return 0;
}

/*  The "{{seq}}" members of a JSON object, turned into integers updated per event. */
typedef struct {
    json_t *slots[64];
    int n;
} seq_slots_t;

static void s_seq_prepare(json_t *json, seq_slots_t *s)
{
    s->n = 0;
    if (!json_is_object(json))
        return;
    const char *key;
    json_t *value;
    json_object_foreach(json, key, value)
    {
        if (s->n < 64 && json_is_string(value) && strcmp(json_string_value(value), SEQ_MARK) == 0) {
            json_t *num = json_integer(0);
            if (num && json_object_set_new(json, key, num) == 0)
                s->slots[s->n++] = num;
        }
    }
}

/*  Publishes a JSON value `count` times, substituting "{{seq}}" members when there are any,
    else packing once. *seqno is the running event number across the whole run. Returns 0, or a
    weft error for the value (too big) or the run (r->fatal set). */
static int s_publish_json(pub_run_t *r, json_t *json, msgpack_sbuffer *sb, uint64_t *seqno,
                          char *err, size_t errcap)
{
    seq_slots_t slots;
    s_seq_prepare(json, &slots);
    if (slots.n == 0) {
        msgpack_sbuffer_clear(sb);
        int rc = json_mp_from_json(json, sb);
        if (rc != 0) {
            snprintf(err, errcap, "%s", rc == WEFT_EINVAL ? "nested too deep" : weft_strerror(rc));
            return rc;
        }
    }
    for (uint64_t i = 0; i < r->o->count && !zsys_interrupted; i++) {
        ++*seqno;
        if (slots.n) {
            for (int k = 0; k < slots.n; k++)
                json_integer_set(slots.slots[k], (json_int_t)*seqno);
            msgpack_sbuffer_clear(sb);
            int rc = json_mp_from_json(json, sb);
            if (rc != 0) {
                snprintf(err, errcap, "%s",
                         rc == WEFT_EINVAL ? "nested too deep" : weft_strerror(rc));
                return rc;
            }
        }
        int rc = s_publish(r, sb->data, sb->size);
        if (rc != 0) {
            snprintf(err, errcap, "%s", weft_strerror(rc));
            return rc;
        }
    }
    return 0;
}

/*  Reads all of stdin (for --raw -). Returns a malloc'd buffer (never NULL on success). */
static uint8_t *s_read_all(FILE *in, size_t *size)
{
    size_t cap = 65536, len = 0;
    uint8_t *buf = malloc(cap);
    while (buf) {
        if (len == cap) {
            uint8_t *bigger = realloc(buf, cap * 2);
            if (!bigger) {
                free(buf);
                return NULL;
            }
            buf = bigger;
            cap *= 2;
        }
        size_t n = fread(buf + len, 1, cap - len, in);
        len += n;
        if (n == 0) {
            if (ferror(in) && errno == EINTR && !zsys_interrupted) {
                clearerr(in);
                continue;
            }
            break;
        }
    }
    if (buf && ferror(in)) {
        free(buf);
        return NULL;
    }
    *size = len;
    return buf;
}

static bool s_blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
            return false;
    return true;
}

/*  Publishes one event per stdin line. Returns the number of bad lines, or -1 after a fatal
    publish error (already reported). */
static long s_publish_lines(pub_run_t *r, msgpack_sbuffer *sb, uint64_t *seqno)
{
    char *line = NULL;
    size_t cap = 0;
    long bad = 0;
    uint64_t lineno = 0;
    while (!zsys_interrupted && !r->fatal) {
        errno = 0;
        ssize_t n = getline(&line, &cap, stdin);
        if (n < 0) {
            if (errno == EINTR && !zsys_interrupted) {
                clearerr(stdin);
                continue;
            }
            if (ferror(stdin) && !zsys_interrupted) {
                fprintf(stderr, "weft pub: reading stdin: %s\n", strerror(errno));
                bad++;
            }
            break;
        }
        lineno++;
        if (s_blank(line, (size_t)n))
            continue;
        json_error_t je;
        json_t *json = json_loadb(line, (size_t)n, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
        if (!json) {
            fprintf(stderr, "weft pub: stdin line %" PRIu64 ": not valid JSON: column %d: %s\n",
                    lineno, je.column, je.text);
            bad++;
            continue;
        }
        char err[160];
        int rc = s_publish_json(r, json, sb, seqno, err, sizeof(err));
        json_decref(json);
        if (rc != 0 && r->fatal) {
            fprintf(stderr, "weft pub: %s\n", weft_strerror(r->fatal));
            break;
        }
        if (rc != 0) {
            fprintf(stderr, "weft pub: stdin line %" PRIu64 ": %s\n", lineno, err);
            bad++;
        }
    }
    free(line);
    return r->fatal ? -1 : bad;
}

/*  Parses the command line into o and nopts. Returns 0, 1 after --help, or 2 (reported). */
static int s_parse(pub_opts_t *o, cli_node_opts_t *nopts, int argc, char **argv)
{
    int npos = 0;
    bool options_done = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        /* A lone "-" (stdin) and negative numbers ("-5" is valid JSON) are arguments. */
        bool positional = options_done || a[0] != '-' || a[1] == 0 || (a[1] >= '0' && a[1] <= '9');
        if (positional) {
            if (npos == 0)
                o->topic = a;
            else if (npos == 1)
                o->input = a;
            else
                return s_usage_error("unexpected argument '%s'", a);
            npos++;
            continue;
        }
        if (!strcmp(a, "--")) {
            options_done = true;
            continue;
        }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            s_help();
            return 1;
        }
        int rc = cli_node_option(nopts, argc, argv, &i);
        if (rc < 0)
            return 2;
        if (rc > 0)
            continue;
        if (!strcmp(a, "--raw")) {
            o->raw = true;
            continue;
        }
        if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) {
            o->quiet = true;
            continue;
        }
        static const char *const with_value[] = {"--count", "--rate",   "--corr",   "--trace",
                                                 "--reply", "--tenant", "--header", "--ct",
                                                 "--ver",   "--wait",   "--linger"};
        bool known = false;
        for (size_t k = 0; k < sizeof(with_value) / sizeof(with_value[0]); k++)
            known = known || !strcmp(a, with_value[k]);
        if (!known)
            return s_usage_error("unknown option '%s'", a);
        if (i + 1 >= argc)
            return s_usage_error("%s needs a value", a);
        const char *v = argv[++i];
        if (!strcmp(a, "--count")) {
            if (!cli_parse_u64(v, 1, UINT64_MAX, &o->count))
                return s_usage_error("--count wants a whole number >= 1, not '%s'", v);
        } else if (!strcmp(a, "--rate")) {
            char *end;
            errno = 0;
            o->rate = strtod(v, &end);
            if (end == v || *end || errno || !isfinite(o->rate) || o->rate < 0)
                return s_usage_error("--rate wants events per second >= 0, not '%s'", v);
        } else if (!strcmp(a, "--corr") || !strcmp(a, "--trace") || !strcmp(a, "--tenant")) {
            if (strlen(v) > WEFT_NAME_MAX)
                return s_usage_error("%s: at most 255 bytes", a);
            if (!strcmp(a, "--corr"))
                o->meta.corr = v;
            else if (!strcmp(a, "--trace"))
                o->meta.trace = v;
            else
                o->meta.tenant = v;
        } else if (!strcmp(a, "--reply")) {
            if (weft_topic_check(v, strlen(v)) != WEFT_OK)
                return s_usage_error("--reply '%s' is not a valid topic (1..255 printable ASCII "
                                     "bytes, no spaces)",
                                     v);
            o->meta.reply = v;
        } else if (!strcmp(a, "--header")) {
            const char *eq = strchr(v, '=');
            if (!eq || eq == v)
                return s_usage_error("--header wants KEY=VALUE with a non-empty KEY, not '%s'", v);
            if (o->hcount >= WEFT_HEADERS_MAX)
                return s_usage_error("at most %s --header options", "64");
            char *key = strndup(v, (size_t)(eq - v));
            if (!key) {
                fprintf(stderr, "weft pub: out of memory\n");
                return 2;
            }
            o->hkeys[o->hcount] = key;
            o->hvals[o->hcount] = eq + 1;
            o->hcount++;
        } else if (!strcmp(a, "--ct")) {
            if (!*v || strlen(v) > WEFT_CT_MAX)
                return s_usage_error("--ct wants 1..127 bytes, not '%s'", v);
            o->meta.ct = v;
        } else if (!strcmp(a, "--ver")) {
            uint64_t ver;
            if (!cli_parse_u64(v, 1, UINT32_MAX, &ver))
                return s_usage_error("--ver wants a whole number 1..4294967295, not '%s'", v);
            o->meta.ver = (uint32_t)ver;
        } else if (!strcmp(a, "--wait") || !strcmp(a, "--linger")) {
            long ms = cli_parse_ms(v);
            if (ms < 0)
                return s_usage_error("bad duration '%s' (e.g. 3, 1.5s, 500ms, 2m)", v);
            if (!strcmp(a, "--wait"))
                o->wait_ms = ms;
            else
                o->linger_ms = ms;
        }
    }
    if (!o->topic)
        return s_usage_error("%s", "a TOPIC is needed: weft pub TOPIC [JSON|-]");
    return 0;
}

static void s_summary(const pub_run_t *r)
{
    double secs = r->published ? (double)(r->last_ns - r->first_ns) / 1e9 : 0.0;
    /* Between the first and the last event there are N-1 intervals: that is what --rate paces. */
    uint64_t spans = r->published > 1 ? r->published - 1 : r->published;
    double rate = secs > 0 ? (double)spans / secs : 0.0;
    fprintf(stderr, "published %" PRIu64 " events to %s in %.3f s (%.*f/s), last seq %" PRId64 "\n",
            r->published, r->o->topic, secs, rate < 100 ? 1 : 0, rate, r->last_seq);
}

/*  Waits for discovery in slices so Ctrl-C is noticed. Warns on timeout unless quiet. */
static void s_wait_peers(weft_node_t *node, const pub_opts_t *o)
{
    if (o->wait_ms <= 0)
        return;
    int64_t deadline = zclock_mono() + o->wait_ms;
    while (!zsys_interrupted) {
        int64_t left = deadline - zclock_mono();
        int rc = weft_node_wait_peers(node, left < 100 ? (int)(left > 0 ? left : 0) : 100);
        if (rc >= 0)
            return;
        if (zclock_mono() >= deadline)
            break;
    }
    if (zsys_interrupted || o->quiet)
        return;
    weft_stats_t st;
    weft_node_stats(node, &st);
    /* The node does not say how many of its peers were ready when the wait timed out; the
       peers it hears heartbeats from are the closest public figure. */
    fprintf(stderr,
            "weft pub: warning: not every peer was ready after %.1f s (%" PRIu32 " peer(s) up); "
            "publishing anyway, peers that miss events can FETCH them from the outbox\n",
            o->wait_ms / 1000.0, st.peers_up);
}

int cmd_pub(int argc, char **argv)
{
    pub_opts_t o;
    memset(&o, 0, sizeof(o));
    o.count = 1;
    o.wait_ms = DEFAULT_WAIT_MS;
    o.linger_ms = DEFAULT_LINGER_MS;
    cli_node_opts_t nopts;
    memset(&nopts, 0, sizeof(nopts));
    nopts.role = "cli";
    char default_name[64];
    snprintf(default_name, sizeof(default_name), "weft-pub-%d", (int)getpid());

    int status = s_parse(&o, &nopts, argc, argv);
    json_t *json = NULL;
    uint8_t *raw = NULL;
    size_t raw_size = 0;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    weft_node_t *node = NULL;
    if (status != 0) {
        status = status == 1 ? 0 : 2;
        goto done;
    }
    if (!nopts.name)
        nopts.name = default_name;
    o.meta.header_keys = (const char *const *)o.hkeys;
    o.meta.header_values = o.hvals;
    o.meta.header_count = o.hcount;
    if (o.raw && !o.meta.ct)
        o.meta.ct = "application/octet-stream";
    bool from_stdin = o.input && !strcmp(o.input, "-");

    /* Check what can be checked before starting a node. */
    size_t tlen = strlen(o.topic);
    int trc = weft_topic_check(o.topic, tlen);
    if (trc == WEFT_OK && weft_topic_is_fabric(o.topic, tlen))
        trc = WEFT_ERESERVED;
    if (trc != WEFT_OK) {
        fprintf(stderr, "weft pub: %s\n", weft_strerror(trc));
        status = 1;
        goto done;
    }
    if (!o.raw && !from_stdin) {
        const char *text = o.input ? o.input : "{}";
        json_error_t je;
        json = json_loadb(text, strlen(text), JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
        if (!json) {
            fprintf(stderr, "weft pub: the payload is not valid JSON: line %d column %d: %s\n",
                    je.line, je.column, je.text);
            status = 2;
            goto done;
        }
        if (json_mp_from_json(json, &sb) != 0) {
            fprintf(stderr, "weft pub: the payload nests deeper than %d levels\n",
                    JSON_MP_MAX_DEPTH);
            status = 2;
            goto done;
        }
    }

    node = cli_node_new(&nopts);
    if (!node) {
        status = 1;
        goto done;
    }
    s_wait_peers(node, &o);

    pub_run_t run;
    memset(&run, 0, sizeof(run));
    run.node = node;
    run.o = &o;
    if (o.rate > 0) {
        double period = 1e9 / o.rate; /* at most a day between events, at least 1 ns */
        run.period_ns = period > 86400e9 ? (int64_t)86400e9 : period < 1 ? 1 : (int64_t)period;
    }
    uint64_t seqno = 0;
    char err[160];
    if (o.raw) {
        const void *data = o.input ? o.input : "";
        size_t size = o.input ? strlen(o.input) : 0;
        if (from_stdin) {
            raw = s_read_all(stdin, &raw_size);
            if (!raw) {
                fprintf(stderr, "weft pub: reading stdin: %s\n", strerror(errno));
                status = 1;
                goto summary;
            }
            data = raw;
            size = raw_size;
        }
        for (uint64_t i = 0; i < o.count && !zsys_interrupted; i++)
            if (s_publish(&run, data, size) != 0) {
                fprintf(stderr, "weft pub: %s\n",
                        weft_strerror(run.fatal ? run.fatal : WEFT_ETOOBIG));
                status = 1;
                break;
            }
    } else if (from_stdin) {
        long bad = s_publish_lines(&run, &sb, &seqno);
        if (bad != 0)
            status = 1;
    } else if (s_publish_json(&run, json, &sb, &seqno, err, sizeof(err)) != 0) {
        fprintf(stderr, "weft pub: %s\n", err);
        status = 1;
    }

    if (!run.fatal && o.linger_ms > 0) {
        int64_t until = zclock_mono() + o.linger_ms;
        while (!zsys_interrupted && zclock_mono() < until)
            zclock_sleep(10);
    }
summary:
    if (!o.quiet)
        s_summary(&run);
done:
    weft_node_destroy(&node);
    json_decref(json);
    free(raw);
    msgpack_sbuffer_destroy(&sb);
    for (size_t i = 0; i < o.hcount; i++)
        free(o.hkeys[i]);
    return status;
}

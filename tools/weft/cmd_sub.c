/*  cmd_sub.c - `weft sub PREFIX...`: prints the events of one or more topic prefixes as JSON
    lines on stdout.

    The command starts a node (role "cli"), subscribes a handler to each prefix and prints one
    compact JSON object per event, flushed per line, so the output can be piped into jq, a test
    or a file. The handler runs on the node's thread and only formats and writes; the main
    thread waits for --count events, the --timeout deadline or Ctrl-C, then destroys the node.
    msgpack payloads are shown as JSON (json_mp.h), anything else as base64. --ready-file lets a
    script know when the subscriber is listening and where to --connect. Called by main.c
    through cmd_sub (cli.h); the node options are shared with the other commands
    (cli_common.c).
*/
#include <czmq.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "json_mp.h"

#define DEFAULT_WAIT_MS 3000
#define MAX_PREFIXES 64
#define CT_MSGPACK "application/msgpack"

/*  The keys of a printed event, in output order; --fields selects a subset. */
enum {
    F_TOPIC = 1 << 0,
    F_ID = 1 << 1,
    F_SRC = 1 << 2,
    F_INST = 1 << 3,
    F_SEQ = 1 << 4,
    F_TS = 1 << 5,
    F_VER = 1 << 6,
    F_CORR = 1 << 7,
    F_TRACE = 1 << 8,
    F_REPLY = 1 << 9,
    F_TENANT = 1 << 10,
    F_RETRY = 1 << 11,
    F_CT = 1 << 12,
    F_H = 1 << 13,
    F_PAYLOAD = 1 << 14,
    F_ALL = (1 << 15) - 1,
};

static const struct {
    const char *name;
    unsigned bit;
} s_fields[] = {
    {"topic", F_TOPIC}, {"id", F_ID},       {"src", F_SRC},         {"inst", F_INST},
    {"seq", F_SEQ},     {"ts", F_TS},       {"ver", F_VER},         {"corr", F_CORR},
    {"trace", F_TRACE}, {"reply", F_REPLY}, {"tenant", F_TENANT},   {"retry", F_RETRY},
    {"ct", F_CT},       {"h", F_H},         {"payload", F_PAYLOAD},
};
#define NFIELDS (sizeof(s_fields) / sizeof(s_fields[0]))

/*  Shared between the main thread and the handler (node thread). */
typedef struct {
    unsigned fields;
    uint64_t limit; /* stop printing after this many events; 0 = no limit */
    atomic_uint_fast64_t printed;
    atomic_int write_errno; /* errno of a failed write to stdout, 0 if none */
} sub_state_t;

/* ---- a small growable text buffer ------------------------------------------------------- */

typedef struct {
    char *data;
    size_t len, cap;
    bool oom;
} text_t;

static void s_put(text_t *t, const char *s, size_t n)
{
    if (t->oom)
        return;
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 1024;
        while (t->len + n + 1 > cap)
            cap *= 2;
        char *data = realloc(t->data, cap);
        if (!data) {
            t->oom = true;
            return;
        }
        t->data = data;
        t->cap = cap;
    }
    memcpy(t->data + t->len, s, n);
    t->len += n;
    t->data[t->len] = 0;
}

static void s_puts(text_t *t, const char *s)
{
    s_put(t, s, strlen(s));
}

/*  Length of the valid UTF-8 sequence at s (at most n bytes), or 0 if it is not one. */
static size_t s_utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    unsigned min;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2, min = 0x80;
    else if (c >= 0xe0 && c <= 0xef)
        len = 3, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4, min = 0x10000;
    else
        return 0;
    if (len > n)
        return 0;
    unsigned cp = c & (0x3f >> (len - 1));
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

/*  Appends s as a JSON string. Bytes that are not UTF-8 (the fields come from the network)
    become U+FFFD, so every line stays valid JSON. */
static void s_put_jstr(text_t *t, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    s_put(t, "\"", 1);
    size_t i = 0;
    while (i < n) {
        size_t run = i;
        while (run < n && p[run] >= 0x20 && p[run] < 0x80 && p[run] != '"' && p[run] != '\\')
            run++;
        s_put(t, s + i, run - i);
        i = run;
        if (i >= n)
            break;
        unsigned char c = p[i];
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\', esc[1] = (char)c;
            s_put(t, esc, 2);
            i++;
        } else if (c < 0x20) {
            static const char *named = "\b\f\n\r\t";
            const char *hit = c ? strchr(named, c) : NULL;
            if (hit) {
                esc[0] = '\\', esc[1] = "bfnrt"[hit - named];
                s_put(t, esc, 2);
            } else {
                snprintf(esc, sizeof(esc), "\\u%04x", c);
                s_put(t, esc, 6);
            }
            i++;
        } else {
            size_t len = s_utf8_len(p + i, n - i);
            if (len) {
                s_put(t, s + i, len);
                i += len;
            } else {
                s_puts(t, "\\ufffd");
                i++;
            }
        }
    }
    s_put(t, "\"", 1);
}

static void s_put_key(text_t *t, bool *first, const char *key)
{
    if (!*first)
        s_put(t, ",", 1);
    *first = false;
    s_put(t, "\"", 1);
    s_puts(t, key);
    s_put(t, "\":", 2);
}

static void s_put_kv_str(text_t *t, bool *first, const char *key, const char *val)
{
    s_put_key(t, first, key);
    s_put_jstr(t, val, strlen(val));
}

static void s_put_kv_num(text_t *t, bool *first, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void s_put_kv_num(text_t *t, bool *first, const char *key, const char *fmt, ...)
{
    char num[32];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(num, sizeof(num), fmt, ap);
    va_end(ap);
    s_put_key(t, first, key);
    s_puts(t, num);
}

static int s_put_header(const char *key, size_t klen, const char *val, size_t vlen, void *arg)
{
    text_t *t = arg;
    if (t->oom)
        return 1;
    if (t->data[t->len - 1] != '{')
        s_put(t, ",", 1);
    s_put_jstr(t, key, klen);
    s_put(t, ":", 1);
    s_put_jstr(t, val, vlen);
    return 0;
}

/*  Formats one event as a JSON line (with the newline). */
static void s_format(text_t *t, unsigned fields, const weft_event_t *ev)
{
    const weft_envelope_t *env = ev->env;
    bool first = true;
    t->len = 0;
    s_put(t, "{", 1);
    if (fields & F_TOPIC)
        s_put_kv_str(t, &first, "topic", ev->topic);
    if (fields & F_ID) {
        char id[WEFT_ID_STR];
        s_put_kv_str(t, &first, "id", weft_id_format(env->id, id));
    }
    if (fields & F_SRC)
        s_put_kv_str(t, &first, "src", env->src);
    if (fields & F_INST)
        s_put_kv_num(t, &first, "inst", "%" PRIu64, env->inst);
    if (fields & F_SEQ)
        s_put_kv_num(t, &first, "seq", "%" PRIu64, env->seq);
    if (fields & F_TS)
        s_put_kv_num(t, &first, "ts", "%" PRId64, env->ts);
    if (fields & F_VER)
        s_put_kv_num(t, &first, "ver", "%" PRIu32, env->ver);
    if ((fields & F_CORR) && env->corr[0])
        s_put_kv_str(t, &first, "corr", env->corr);
    if ((fields & F_TRACE) && env->trace[0])
        s_put_kv_str(t, &first, "trace", env->trace);
    if ((fields & F_REPLY) && env->reply[0])
        s_put_kv_str(t, &first, "reply", env->reply);
    if ((fields & F_TENANT) && env->tenant[0])
        s_put_kv_str(t, &first, "tenant", env->tenant);
    if ((fields & F_RETRY) && env->retry)
        s_put_kv_num(t, &first, "retry", "%" PRIu32, env->retry);
    bool msgpack = env->ct[0] == 0 || strcmp(env->ct, CT_MSGPACK) == 0;
    if ((fields & F_CT) && !msgpack)
        s_put_kv_str(t, &first, "ct", env->ct);
    if ((fields & F_H) && env->h_count) {
        s_put_key(t, &first, "h");
        s_put(t, "{", 1);
        weft_envelope_headers_each(env, s_put_header, t);
        s_put(t, "}", 1);
    }
    if (fields & F_PAYLOAD) {
        json_t *json = msgpack ? json_mp_to_json(ev->payload, ev->size, NULL) : NULL;
        char *text = json ? json_dumps(json, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
        if (text) {
            s_put_key(t, &first, "payload");
            s_puts(t, text);
        } else {
            char *b64 = json_mp_base64(ev->payload, ev->size);
            s_put_kv_str(t, &first, "payload_base64", b64 ? b64 : "");
            free(b64);
        }
        free(text);
        json_decref(json);
    }
    s_put(t, "}\n", 2);
}

/*  The handler, on the node's thread: format, write, count. */
static int s_on_event(weft_event_t *ev, void *arg)
{
    sub_state_t *st = arg;
    if (st->limit && atomic_load(&st->printed) >= st->limit)
        return 0;
    text_t t = {NULL, 0, 0, false};
    s_format(&t, st->fields, ev);
    if (t.oom) {
        free(t.data);
        return weft_event_fail(ev, "cli.oom", "out of memory formatting the event");
    }
    if (fputs(t.data, stdout) == EOF || fflush(stdout) == EOF)
        atomic_store(&st->write_errno, errno ? errno : EIO);
    free(t.data);
    atomic_fetch_add(&st->printed, 1);
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

static bool s_parse_u64(const char *text, uint64_t min, uint64_t max, uint64_t *out)
{
    if (!text || *text < '0' || *text > '9')
        return false;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno || *end || v < min || v > max)
        return false;
    *out = v;
    return true;
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
    unsigned fields = F_ALL;
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
            strcmp(a, "--wait") && strcmp(a, "--ready-file"))
            return s_usage_error("unknown option '%s'", a);
        if (i + 1 >= argc)
            return s_usage_error("%s needs a value", a);
        const char *v = argv[++i];
        if (!strcmp(a, "--count")) {
            if (!s_parse_u64(v, 1, UINT64_MAX, &count))
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
        } else {
            if (!*v)
                return s_usage_error("%s needs a non-empty path", a);
            ready_file = v;
        }
    }
    if (nprefixes == 0)
        return s_usage_error("%s", "at least one PREFIX is needed ('' subscribes to everything)");
    if (!nopts.name)
        nopts.name = default_name;

    sub_state_t *st = calloc(1, sizeof(*st));
    if (!st) {
        fprintf(stderr, "weft sub: out of memory\n");
        return 1;
    }
    st->fields = fields;
    st->limit = count;
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
        if (!weft_subscribe(node, prefixes[i], s_on_event, st, NULL, &err)) {
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

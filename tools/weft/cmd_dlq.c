/*  cmd_dlq.c - `weft dlq`: the operator's view of the dead letters a DLQ (weft-dlq) keeps.

      weft dlq list   [filters] [--limit N] [--json]   LIST, paged with its cursor
      weft dlq show   ID                               GET: the letter and its event
      weft dlq retry  ID | [filters] [--all]           RETRY: due again now
      weft dlq purge  ID | [filters] [--all]           PURGE: deleted
      weft dlq stats  [--json]                         INFO: counts, aggregates, scheduler

    The DLQ is found like the archiver by `weft replay` (svc_cli.h): --dlq ENDPOINT, or a
    short-lived node joins the fabric (the common node options) and looks for a peer of role
    "dlq" (and name --dlq-name) for --wait; its "svc" endpoint serves the requests (control framing,
    docs/protocol.md, section "DLQ service"). Replies are decoded through json_mp (mp_guard
    first), so letters print as JSON with their ids as UUID strings; `show` prints the event
    as `weft sub` does (event_json.h). Called by main.c through cmd_dlq (cli.h).
*/
#include <czmq.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cli_parse.h"
#include "event_json.h"
#include "json_mp.h"
#include "svc_cli.h"

#define DLQ_TIMEOUT_MS 5000       /* default --timeout of one request */
#define DLQ_BULK_TIMEOUT_MS 120000 /* ... of RETRY/PURGE by filter (worked through in slices) */
#define LIST_PAGE 1000            /* the DLQ's largest LIST page */
#define COL_MAX 48                /* widest subscriber/topic/code column of the text table */

/* ---- options shared by the subcommands ------------------------------------------------------ */

typedef struct {
    const char *prog;         /* "weft dlq list", ... for messages */
    svc_cli_t svc;            /* --dlq, --dlq-name, --wait, --timeout and the node options */
    bool json;                /* --json */
    char default_name[64];
} dlq_cli_t;

static const svc_kind_t s_dlq_kind = {"dlq", "DLQ", "--dlq", "--dlq-name", "weft-dlq"};

/*  Filters of LIST, RETRY and PURGE (empty: not given). */
typedef struct {
    const char *subscriber, *topic, *state, *code;
    long long older_than_ms;  /* -1: not given */
    bool all;
    int given;
} filters_t;

static const char *const s_states[] = {"pending", "retrying", "parked", "resolved"};

static const char *s_common_help =
    "finding the DLQ:\n"
    "  --dlq ENDPOINT       the DLQ's service endpoint (as weft-dlq prints it at start); no\n"
    "                       lookup on the fabric\n"
    "  --dlq-name NAME      otherwise, look on the fabric for the DLQ node called NAME\n"
    "                       (default: any node of role dlq)\n"
    "  --wait S             how long to look for the DLQ on the fabric (default 3s)\n"
    "  --timeout S          how long to wait for each answer (default 5s; 120s for RETRY and\n"
    "                       PURGE by filter, which the DLQ works through in slices)\n";

static const char *s_filter_help =
    "filters (all given must match):\n"
    "  --subscriber S       exactly this subscriber (\"<node name>/<subscription name>\")\n"
    "  --topic PREFIX       topics that start with PREFIX\n"
    "  --state ST           pending, retrying, parked or resolved\n"
    "  --code C             exactly this error code (the last failure's)\n"
    "  --older-than D       first failure at least D ago: 30s, 10m, 2h, 1d (also ms, w; a\n"
    "                       bare number is seconds)\n";

static void s_init(dlq_cli_t *o, const char *prog, const char *what)
{
    memset(o, 0, sizeof(*o));
    o->prog = prog;
    svc_cli_init(&o->svc, &s_dlq_kind, prog);
    snprintf(o->default_name, sizeof(o->default_name), "weft-dlq-%s-%d", what, (int)getpid());
}

static int s_usage_error(const dlq_cli_t *o, const char *fmt, const char *arg)
{
    fprintf(stderr, "%s: ", o->prog);
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (see %s --help)\n", o->prog);
    return 2;
}

/*  A duration for --older-than: a number and a unit (ms, s, m, h, d, w; none: seconds), in
    ms. Returns -1 when bad. */
static long long s_parse_age(const char *text)
{
    double v, unit_ns;
    if (cli_parse_age(text, 1e9, &v, &unit_ns) != 0)
        return -1;
    double ms = v * (unit_ns / 1e6); /* (unit_ns / 1e6: exact, a whole number of ms) */
    if (ms > 9.2e15) /* the DLQ's bound: ms that fit in ns as int64 */
        return -1;
    return (long long)ms;
}

/*  Offers argv[*i] to the filters. Returns 1 consumed, 0 not one, -1 bad (reported). */
static int s_filter_option(dlq_cli_t *o, filters_t *f, int argc, char **argv, int *i)
{
    const char *a = argv[*i];
    const char **slot = NULL;
    if (!strcmp(a, "--subscriber"))
        slot = &f->subscriber;
    else if (!strcmp(a, "--topic"))
        slot = &f->topic;
    else if (!strcmp(a, "--state"))
        slot = &f->state;
    else if (!strcmp(a, "--code"))
        slot = &f->code;
    else if (strcmp(a, "--older-than"))
        return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "%s: %s needs a value (see %s --help)\n", o->prog, a, o->prog);
        return -1;
    }
    const char *v = argv[++*i];
    if (!slot) {
        f->older_than_ms = s_parse_age(v);
        if (f->older_than_ms <= 0) {
            fprintf(stderr,
                    "%s: bad duration for --older-than: '%s' (more than 0: e.g. 30s, 10m, 2h, "
                    "1d)\n",
                    o->prog, v);
            return -1;
        }
        f->given++;
        return 1;
    }
    if (!*v) {
        fprintf(stderr, "%s: %s needs a non-empty value\n", o->prog, a);
        return -1;
    }
    if (slot == &f->state) {
        bool known = false;
        for (size_t k = 0; k < 4; k++)
            known |= !strcmp(v, s_states[k]);
        if (!known) {
            fprintf(stderr, "%s: --state must be pending, retrying, parked or resolved, not "
                            "'%s'\n",
                    o->prog, v);
            return -1;
        }
    }
    if (!*slot)
        f->given++;
    *slot = v;
    return 1;
}

/* ---- finding the DLQ and asking it ---------------------------------------------------------- */

/*  A connection to the DLQ for one subcommand. */
typedef struct {
    const dlq_cli_t *o;
    char svc[256];
    weft_ctl_t *ctl;
    char err_code[64];        /* of the last ERR reply */
    char err_message[256];
} conn_t;

static int s_connect(conn_t *c, const dlq_cli_t *o)
{
    memset(c, 0, sizeof(*c));
    c->o = o;
    if (svc_cli_locate(&o->svc, c->svc, sizeof(c->svc), NULL) != 0)
        return 1;
    int err = 0;
    c->ctl = weft_ctl_new(c->svc, &err);
    if (!c->ctl) {
        fprintf(stderr, "%s: cannot connect to the DLQ at '%s': %s\n", o->prog, c->svc,
                weft_strerror(err));
        return 1;
    }
    return 0;
}

static void s_disconnect(conn_t *c)
{
    weft_ctl_destroy(&c->ctl);
}

enum { CALL_OK = 0, CALL_FAILED = 1, CALL_ERR = 2 };

/*  Sends cmd with args (a msgpack map) and decodes the OK reply into *out (a JSON object the
    caller frees). Returns CALL_OK; CALL_ERR for an ERR reply (code and message in c, nothing
    printed); CALL_FAILED after saying why (no answer, a reply off the protocol). */
static int s_call(conn_t *c, const char *cmd, const msgpack_sbuffer *args, long timeout_ms,
                  json_t **out)
{
    *out = NULL;
    c->err_code[0] = c->err_message[0] = 0;
    weft_reply_t reply;
    memset(&reply, 0, sizeof(reply));
    int rc = weft_ctl_call(c->ctl, cmd, args->data, args->size, (int)timeout_ms, &reply);
    if (rc == WEFT_ETIMEOUT) {
        fprintf(stderr, "%s: the DLQ at %s did not answer %s within %g s\n", c->o->prog, c->svc,
                cmd, timeout_ms / 1000.0);
    } else if (rc != WEFT_OK) {
        fprintf(stderr, "%s: %s to the DLQ at %s failed: %s\n", c->o->prog, cmd, c->svc,
                weft_strerror(rc));
    } else if (!strcmp(reply.status, "ERR")) {
        snprintf(c->err_code, sizeof(c->err_code), "%s", reply.err_code);
        snprintf(c->err_message, sizeof(c->err_message), "%s", reply.err_message);
        weft_reply_clear(&reply);
        return CALL_ERR;
    } else if (strcmp(reply.status, "OK") != 0) {
        fprintf(stderr, "%s: the DLQ at %s answered %s with status %s\n", c->o->prog, c->svc, cmd,
                reply.status);
    } else {
        int err = 0;
        json_t *body = json_mp_to_json(reply.body, reply.body_size, &err);
        weft_reply_clear(&reply);
        if (body && json_is_object(body)) {
            *out = body;
            return CALL_OK;
        }
        json_decref(body);
        fprintf(stderr, "%s: the DLQ at %s sent a reply to %s that does not follow the "
                        "protocol\n",
                c->o->prog, c->svc, cmd);
        return CALL_FAILED;
    }
    weft_reply_clear(&reply);
    return CALL_FAILED;
}

static void s_report_err(const conn_t *c, const char *cmd)
{
    fprintf(stderr, "%s: the DLQ at %s refused %s: %s: %s\n", c->o->prog, c->svc, cmd,
            c->err_code[0] ? c->err_code : "?", c->err_message);
}

/* ---- msgpack arguments ---------------------------------------------------------------------- */

static void s_pk_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

static void s_pk_kv_str(msgpack_packer *pk, const char *key, const char *v)
{
    s_pk_str(pk, key);
    s_pk_str(pk, v);
}

static void s_pk_kv_uint(msgpack_packer *pk, const char *key, uint64_t v)
{
    s_pk_str(pk, key);
    msgpack_pack_uint64(pk, v);
}

static void s_pk_kv_id(msgpack_packer *pk, const char *key, const uint8_t id[WEFT_ID_SIZE])
{
    s_pk_str(pk, key);
    msgpack_pack_bin(pk, WEFT_ID_SIZE);
    msgpack_pack_bin_body(pk, id, WEFT_ID_SIZE);
}

/*  Number of map entries s_pk_filters writes. */
static uint32_t s_filter_count(const filters_t *f)
{
    return (uint32_t)((f->subscriber != NULL) + (f->topic != NULL) + (f->state != NULL) +
                      (f->code != NULL) + (f->older_than_ms >= 0) + f->all);
}

static void s_pk_filters(msgpack_packer *pk, const filters_t *f)
{
    if (f->subscriber)
        s_pk_kv_str(pk, "subscriber", f->subscriber);
    if (f->topic)
        s_pk_kv_str(pk, "topic", f->topic);
    if (f->state)
        s_pk_kv_str(pk, "state", f->state);
    if (f->code)
        s_pk_kv_str(pk, "code", f->code);
    if (f->older_than_ms >= 0)
        s_pk_kv_uint(pk, "older_than_ms", (uint64_t)f->older_than_ms);
    if (f->all) {
        s_pk_str(pk, "all");
        msgpack_pack_true(pk);
    }
}

/* ---- JSON helpers --------------------------------------------------------------------------- */

/*  An unsigned member: a JSON integer >= 0 or {"$uint64": "<decimal>"}. */
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

static uint64_t s_u(const json_t *obj, const char *key)
{
    uint64_t v = 0;
    s_uint(obj, key, &v);
    return v;
}

static int64_t s_i(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
}

static const char *s_s(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? s : "?";
}

/*  The bytes of a {"$base64": ...} value (as json_mp shows a bin). Returns 0 and a buffer the
    caller frees, or -1. */
static int s_bin(const json_t *v, uint8_t **data, size_t *size)
{
    const char *text = json_string_value(json_object_get(v, "$base64"));
    if (!text || json_object_size(v) != 1)
        return -1;
    return json_mp_unbase64(text, data, size) == 0 ? 0 : -1;
}

/*  A bin 16 member as an id. Returns 0 or -1. */
static int s_id(const json_t *obj, const char *key, uint8_t id[WEFT_ID_SIZE])
{
    uint8_t *data = NULL;
    size_t size = 0;
    if (s_bin(json_object_get(obj, key), &data, &size) != 0)
        return -1;
    int rc = size == WEFT_ID_SIZE ? 0 : -1;
    if (rc == 0)
        memcpy(id, data, WEFT_ID_SIZE);
    free(data);
    return rc;
}

/*  A letter's id and event_id as UUID strings, in place. */
static void s_fix_ids(json_t *letter)
{
    static const char *const keys[] = {"id", "event_id"};
    for (size_t k = 0; k < 2; k++) {
        uint8_t id[WEFT_ID_SIZE];
        char text[WEFT_ID_STR];
        if (s_id(letter, keys[k], id) == 0)
            json_object_set_new(letter, keys[k], json_string(weft_id_format(id, text)));
    }
}

/*  Prints v as one compact JSON line. Returns 0 or -1 (out of memory, or stdout closed). */
static int s_print_json(const dlq_cli_t *o, const json_t *v)
{
    /* (15 digits: the policy's jitter 0.2 prints as 0.2, not 0.20000000000000001) */
    char *text = json_dumps(v, JSON_COMPACT | JSON_REAL_PRECISION(15));
    if (!text) {
        fprintf(stderr, "%s: out of memory\n", o->prog);
        return -1;
    }
    int rc = printf("%s\n", text) < 0 ? -1 : 0;
    free(text);
    return rc;
}

static int s_flush(const dlq_cli_t *o)
{
    if (fflush(stdout) == EOF) {
        fprintf(stderr, "%s: cannot write to stdout: %s\n", o->prog, strerror(errno));
        return 1;
    }
    return 0;
}

/*  A duration for people: 850ms, 42s, 3m05s, 2h10m, 4d03h. */
static const char *s_dur(int64_t ms, char *buf, size_t cap)
{
    if (ms < 0)
        ms = 0;
    int64_t s = ms / 1000;
    if (ms < 1000)
        snprintf(buf, cap, "%" PRId64 "ms", ms);
    else if (s < 60)
        snprintf(buf, cap, "%" PRId64 "s", s);
    else if (s < 3600)
        snprintf(buf, cap, "%" PRId64 "m%02" PRId64 "s", s / 60, s % 60);
    else if (s < 86400)
        snprintf(buf, cap, "%" PRId64 "h%02" PRId64 "m", s / 3600, s % 3600 / 60);
    else
        snprintf(buf, cap, "%" PRId64 "d%02" PRId64 "h", s / 86400, s % 86400 / 3600);
    return buf;
}

/* ---- list ----------------------------------------------------------------------------------- */

static void s_list_help(void)
{
    printf("usage: weft dlq list [--subscriber S] [--topic P] [--state ST] [--code C]\n"
           "                     [--older-than D] [--limit N] [--json] [OPTIONS]\n"
           "\n"
           "Lists the letters the DLQ keeps, oldest first (by first failure), as a table:\n"
           "  ID (the letter's id), STATE (pending: waits for its next redelivery; retrying:\n"
           "  a redelivery is in flight; parked: max attempts reached, waits for an operator;\n"
           "  resolved: a redelivery was handled), SUBSCRIBER, TOPIC, CODE (the last error),\n"
           "  ATTEMPTS (handler calls that failed, on the node and redelivered), AGE (since the\n"
           "  first failure) and NEXT RETRY (pending letters: when, or due).\n"
           "The DLQ is asked page by page (1000 letters at most each) until the end or --limit.\n"
           "\n"
           "options:\n"
           "  --limit N           at most N letters\n"
           "  --json              one JSON object per letter and line: id, event_id (UUIDs),\n"
           "                      topic, subscriber, node, code, message, attempts,\n"
           "                      redeliveries, first_failure, last_failure, next_retry_at\n"
           "                      (ns since the epoch), state\n"
           "  -h, --help          this help\n"
           "\n"
           "%s\n%s\n%s"
           "  default --name for this command: weft-dlq-list-<pid>; default --gossip-bind: none\n"
           "\n"
           "Exit status: 0 listed (even none), 1 failure (no DLQ found, it did not answer or\n"
           "refused), 2 usage error.\n"
           "\n"
           "examples:\n"
           "  weft dlq list --state parked\n"
           "  weft dlq list --subscriber billing/invoices --older-than 1h\n"
           "  weft dlq list --json | jq -r 'select(.code == \"db.timeout\") | .id'\n",
           s_filter_help, s_common_help, cli_node_help);
}

/*  Widths of the text table's variable columns. */
typedef struct {
    int sub, topic, code;
    bool header;
} table_t;

static int s_width(int w, const char *s)
{
    int n = (int)strlen(s);
    if (n > COL_MAX)
        n = COL_MAX;
    return n > w ? n : w;
}

static void s_table_row(const table_t *t, const json_t *l, int64_t now)
{
    char age[32], next[40];
    const char *state = s_s(l, "state");
    s_dur((now - s_i(l, "first_failure")) / 1000000, age, sizeof(age));
    if (!strcmp(state, "pending")) {
        int64_t due = s_i(l, "next_retry_at") - now;
        if (due <= 0)
            snprintf(next, sizeof(next), "due");
        else {
            char d[32];
            snprintf(next, sizeof(next), "in %s", s_dur(due / 1000000, d, sizeof(d)));
        }
    } else if (!strcmp(state, "retrying")) {
        snprintf(next, sizeof(next), "in flight");
    } else {
        snprintf(next, sizeof(next), "-");
    }
    printf("%-36s  %-8s  %-*s  %-*s  %-*s  %8" PRIu64 "  %6s  %s\n", s_s(l, "id"), state, t->sub,
           s_s(l, "subscriber"), t->topic, s_s(l, "topic"), t->code, s_s(l, "code"),
           s_u(l, "attempts"), age, next);
}

static int s_list(int argc, char **argv)
{
    dlq_cli_t o;
    s_init(&o, "weft dlq list", "list");
    filters_t f = {.older_than_ms = -1};
    uint64_t limit = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            s_list_help();
            return 0;
        }
        int rc = svc_cli_option(&o.svc, argc, argv, &i);
        if (rc == 0)
            rc = s_filter_option(&o, &f, argc, argv, &i);
        if (rc < 0)
            return 2;
        if (rc > 0)
            continue;
        if (!strcmp(a, "--json")) {
            o.json = true;
        } else if (!strcmp(a, "--limit")) {
            if (i + 1 >= argc || !cli_parse_u64(argv[i + 1], 1, UINT64_MAX, &limit))
                return s_usage_error(&o, "--limit wants a whole number >= 1%s", "");
            i++;
        } else if (a[0] == '-') {
            return s_usage_error(&o, "unknown option '%s'", a);
        } else {
            return s_usage_error(&o, "unexpected argument '%s'", a);
        }
    }
    if (!o.svc.node.name)
        o.svc.node.name = o.default_name;
    long timeout_ms = o.svc.timeout_ms > 0 ? o.svc.timeout_ms : DLQ_TIMEOUT_MS;
    conn_t c;
    if (s_connect(&c, &o) != 0)
        return 1;

    int status = 0;
    uint64_t printed = 0;
    bool has_cursor = false;
    uint8_t cursor[WEFT_ID_SIZE];
    table_t t = {10, 5, 4, false};
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    while (!zsys_interrupted) {
        uint64_t page = LIST_PAGE;
        if (limit && limit - printed < page)
            page = limit - printed;
        msgpack_sbuffer_clear(&sb);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_map(&pk, s_filter_count(&f) + 1 + has_cursor);
        s_pk_filters(&pk, &f);
        s_pk_kv_uint(&pk, "limit", page);
        if (has_cursor)
            s_pk_kv_id(&pk, "cursor", cursor);
        json_t *body = NULL;
        int rc = s_call(&c, "LIST", &sb, timeout_ms, &body);
        if (rc == CALL_ERR)
            s_report_err(&c, "LIST");
        if (rc != CALL_OK) {
            status = 1;
            break;
        }
        const json_t *letters = json_object_get(body, "letters");
        const json_t *next = json_object_get(body, "next_cursor");
        if (!json_is_array(letters) || (!json_is_null(next) && s_id(body, "next_cursor",
                                                                    cursor) != 0)) {
            json_decref(body);
            fprintf(stderr, "%s: the DLQ at %s sent a LIST reply that does not follow the "
                            "protocol\n",
                    o.prog, c.svc);
            status = 1;
            break;
        }
        int64_t now = weft_now_ns();
        if (!o.json && !t.header && json_array_size(letters) > 0) {
            size_t k;
            json_t *l;
            json_array_foreach(letters, k, l)
            {
                t.sub = s_width(t.sub, s_s(l, "subscriber"));
                t.topic = s_width(t.topic, s_s(l, "topic"));
                t.code = s_width(t.code, s_s(l, "code"));
            }
            printf("%-36s  %-8s  %-*s  %-*s  %-*s  %8s  %6s  %s\n", "ID", "STATE", t.sub,
                   "SUBSCRIBER", t.topic, "TOPIC", t.code, "CODE", "ATTEMPTS", "AGE",
                   "NEXT RETRY");
            t.header = true;
        }
        size_t k;
        json_t *l;
        json_array_foreach(letters, k, l)
        {
            if (limit && printed >= limit)
                break;
            if (!json_is_object(l))
                continue;
            s_fix_ids(l);
            if (o.json) {
                if (s_print_json(&o, l) != 0) {
                    status = 1;
                    break;
                }
            } else {
                s_table_row(&t, l, now);
            }
            printed++;
        }
        has_cursor = !json_is_null(next);
        json_decref(body);
        if (status || !has_cursor || (limit && printed >= limit))
            break;
    }
    msgpack_sbuffer_destroy(&sb);
    s_disconnect(&c);
    if (status == 0 && !o.json && printed == 0)
        printf("no letters%s\n", f.given ? " match" : "");
    if (status == 0)
        status = s_flush(&o);
    return status;
}

/* ---- show ----------------------------------------------------------------------------------- */

static void s_show_help(void)
{
    printf("usage: weft dlq show ID [OPTIONS]\n"
           "\n"
           "Prints one letter as one JSON line: the keys of `weft dlq list --json` and \"event\",\n"
           "the dead-lettered event as `weft sub` prints it (topic, id, src, inst, seq, ts, ...,\n"
           "payload decoded from msgpack).\n"
           "\n"
           "options:\n"
           "  -h, --help          this help\n"
           "\n"
           "%s\n%s"
           "  default --name for this command: weft-dlq-show-<pid>; default --gossip-bind: none\n"
           "\n"
           "Exit status: 0 printed, 1 no such letter or failure (no DLQ found, it did not\n"
           "answer), 2 usage error.\n"
           "\n"
           "examples:\n"
           "  weft dlq show 0199f3a2-5c1e-7d2b-9a4f-3e2d1c0b9a87\n"
           "  weft dlq show \"$(weft dlq list --json --limit 1 | jq -r .id)\" | jq .event.payload\n",
           s_common_help, cli_node_help);
}

/*  The letter's "event" ([topic, envelope bin, payload bin]) as the JSON line weft sub prints
    for it (event_json.h), without its newline, into *text (the caller frees it with
    event_json_free). The line is kept as text: instance ids above 2^63-1 are printed as plain
    integers, which jansson cannot hold. Returns 0, or -1 when the event does not decode. */
static int s_event_text(const json_t *letter, event_json_t *text)
{
    const json_t *ev = json_object_get(letter, "event");
    const char *topic = json_string_value(json_array_get(ev, 0));
    uint8_t *env_bytes = NULL, *payload = NULL;
    size_t env_size = 0, payload_size = 0;
    int rc = -1;
    weft_envelope_t env;
    if (json_array_size(ev) >= 3 && topic &&
        s_bin(json_array_get(ev, 1), &env_bytes, &env_size) == 0 &&
        s_bin(json_array_get(ev, 2), &payload, &payload_size) == 0 &&
        weft_envelope_decode(&env, env_bytes, env_size) == WEFT_OK) {
        event_json_src_t src = {topic, strlen(topic), &env, payload, payload_size, 0, 0};
        event_json_format(text, EVENT_JSON_ALL, &src);
        if (!text->oom && text->len > 0 && text->data[text->len - 1] == '\n') {
            text->data[--text->len] = 0;
            rc = 0;
        }
    }
    free(env_bytes);
    free(payload);
    return rc;
}

/*  Prints a letter of GET: its keys, then "event" as weft sub prints it (or as stored when it
    does not decode). Returns 0 or -1. */
static int s_print_letter(const dlq_cli_t *o, json_t *letter)
{
    event_json_t ev = {NULL, 0, 0, false};
    if (s_event_text(letter, &ev) != 0) {
        event_json_free(&ev);
        fprintf(stderr, "%s: the letter's event does not decode; shown as stored\n", o->prog);
        return s_print_json(o, letter);
    }
    json_object_del(letter, "event");
    char *text = json_dumps(letter, JSON_COMPACT);
    int rc = -1;
    if (!text) {
        fprintf(stderr, "%s: out of memory\n", o->prog);
    } else {
        size_t n = strlen(text);
        if (n >= 2 && text[n - 1] == '}') /* {...} -> {...,"event":{...}} */
            rc = printf("%.*s,\"event\":%s}\n", (int)(n - 1), text, ev.data) < 0 ? -1 : 0;
        else
            rc = printf("{\"event\":%s}\n", ev.data) < 0 ? -1 : 0;
    }
    free(text);
    event_json_free(&ev);
    return rc;
}

/*  Reads a letter id argument. Returns 0 or a usage error status. */
static int s_id_arg(const dlq_cli_t *o, const char *text, uint8_t id[WEFT_ID_SIZE])
{
    if (weft_id_parse(text, id) != WEFT_OK)
        return s_usage_error(o, "'%s' is not a letter id (a UUID, as weft dlq list prints it)",
                             text);
    return 0;
}

static int s_show(int argc, char **argv)
{
    dlq_cli_t o;
    s_init(&o, "weft dlq show", "show");
    const char *id_text = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            s_show_help();
            return 0;
        }
        int rc = svc_cli_option(&o.svc, argc, argv, &i);
        if (rc < 0)
            return 2;
        if (rc > 0)
            continue;
        if (a[0] == '-')
            return s_usage_error(&o, "unknown option '%s'", a);
        if (id_text)
            return s_usage_error(&o, "one ID only ('%s' is a second one)", a);
        id_text = a;
    }
    if (!id_text)
        return s_usage_error(&o, "%s", "the ID of a letter is needed");
    uint8_t id[WEFT_ID_SIZE];
    if (s_id_arg(&o, id_text, id) != 0)
        return 2;
    if (!o.svc.node.name)
        o.svc.node.name = o.default_name;
    long timeout_ms = o.svc.timeout_ms > 0 ? o.svc.timeout_ms : DLQ_TIMEOUT_MS;
    conn_t c;
    if (s_connect(&c, &o) != 0)
        return 1;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    s_pk_kv_id(&pk, "id", id);
    json_t *letter = NULL;
    int rc = s_call(&c, "GET", &sb, timeout_ms, &letter);
    msgpack_sbuffer_destroy(&sb);
    int status = 1;
    char text[WEFT_ID_STR];
    if (rc == CALL_ERR && !strcmp(c.err_code, "not_found")) {
        fprintf(stderr, "%s: letter %s not found in the DLQ\n", o.prog, weft_id_format(id, text));
    } else if (rc == CALL_ERR) {
        s_report_err(&c, "GET");
    } else if (rc == CALL_OK) {
        s_fix_ids(letter);
        status = s_print_letter(&o, letter) == 0 ? s_flush(&o) : 1;
    }
    json_decref(letter);
    s_disconnect(&c);
    return status;
}

/* ---- retry and purge ------------------------------------------------------------------------ */

static void s_bulk_help(bool purge)
{
    const char *cmd = purge ? "purge" : "retry";
    printf("usage: weft dlq %s ID [OPTIONS]\n"
           "       weft dlq %s [--subscriber S] [--topic P] [--state ST] [--code C]\n"
           "                     [--older-than D] [--all] [OPTIONS]\n"
           "\n",
           cmd, cmd);
    if (purge)
        printf("Deletes letters from the DLQ: one by its ID, or every letter the filters match.\n"
               "A purged letter is gone: its event is not redelivered any more.\n");
    else
        printf("Makes letters due for redelivery now: one by its ID, or every letter the filters\n"
               "match. Pending and parked letters are retried (a parked letter gets max attempts\n"
               "more redeliveries); letters in flight or resolved are left as they are.\n");
    printf("Without an ID, give at least one filter, or --all for every letter (the DLQ refuses\n"
           "a request without either). Letters stored after the request arrived are left alone.\n"
           "Prints how many letters were %s: \"%s N letters\".\n"
           "\n"
           "options:\n"
           "  --all               every letter (with filters: no difference)\n"
           "  --json              print {\"count\":N} instead\n"
           "  -h, --help          this help\n"
           "\n"
           "%s\n%s\n%s"
           "  default --name for this command: weft-dlq-%s-<pid>; default --gossip-bind: none\n"
           "\n"
           "Exit status: 0 done (even for 0 letters), 1 no such letter or failure (no DLQ found,\n"
           "it did not answer or refused), 2 usage error (no ID, filter or --all; an ID with\n"
           "filters).\n"
           "\n"
           "examples:\n",
           purge ? "purged" : "retried", purge ? "purged" : "retried", s_filter_help,
           s_common_help, cli_node_help, cmd);
    if (purge)
        printf("  weft dlq purge --state resolved\n"
               "  weft dlq purge --subscriber billing/invoices --older-than 7d\n"
               "  weft dlq purge 0199f3a2-5c1e-7d2b-9a4f-3e2d1c0b9a87\n");
    else
        printf("  weft dlq retry --state parked\n"
               "  weft dlq retry --code db.timeout --subscriber billing/invoices\n"
               "  weft dlq retry 0199f3a2-5c1e-7d2b-9a4f-3e2d1c0b9a87\n"
               "  weft dlq retry --all\n");
}

static int s_retry_or_purge(int argc, char **argv, bool purge)
{
    dlq_cli_t o;
    s_init(&o, purge ? "weft dlq purge" : "weft dlq retry", purge ? "purge" : "retry");
    const char *cmd = purge ? "PURGE" : "RETRY";
    filters_t f = {.older_than_ms = -1};
    const char *id_text = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            s_bulk_help(purge);
            return 0;
        }
        int rc = svc_cli_option(&o.svc, argc, argv, &i);
        if (rc == 0)
            rc = s_filter_option(&o, &f, argc, argv, &i);
        if (rc < 0)
            return 2;
        if (rc > 0)
            continue;
        if (!strcmp(a, "--all")) {
            f.all = true;
        } else if (!strcmp(a, "--json")) {
            o.json = true;
        } else if (a[0] == '-') {
            return s_usage_error(&o, "unknown option '%s'", a);
        } else if (id_text) {
            return s_usage_error(&o, "one ID only ('%s' is a second one)", a);
        } else {
            id_text = a;
        }
    }
    uint8_t id[WEFT_ID_SIZE];
    if (id_text && s_id_arg(&o, id_text, id) != 0)
        return 2;
    if (id_text && (f.given || f.all))
        return s_usage_error(&o, "%s", "give either a letter ID or filters (or --all), not both");
    if (!id_text && !f.given && !f.all)
        return s_usage_error(&o, "%s",
                             "give a letter ID, a filter (--subscriber, --topic, --state, "
                             "--code, --older-than) or --all for every letter");
    if (!o.svc.node.name)
        o.svc.node.name = o.default_name;
    long timeout_ms = o.svc.timeout_ms > 0 ? o.svc.timeout_ms
                      : id_text    ? DLQ_TIMEOUT_MS
                                   : DLQ_BULK_TIMEOUT_MS;
    conn_t c;
    if (s_connect(&c, &o) != 0)
        return 1;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    if (id_text) {
        msgpack_pack_map(&pk, 1);
        s_pk_kv_id(&pk, "id", id);
    } else {
        msgpack_pack_map(&pk, s_filter_count(&f));
        s_pk_filters(&pk, &f);
    }
    json_t *body = NULL;
    int rc = s_call(&c, cmd, &sb, timeout_ms, &body);
    msgpack_sbuffer_destroy(&sb);
    int status = 1;
    char text[WEFT_ID_STR];
    uint64_t count = 0;
    if (rc == CALL_ERR && id_text && !strcmp(c.err_code, "not_found")) {
        fprintf(stderr, "%s: letter %s not found in the DLQ\n", o.prog, weft_id_format(id, text));
    } else if (rc == CALL_ERR) {
        s_report_err(&c, cmd);
    } else if (rc == CALL_OK && !s_uint(body, "count", &count)) {
        fprintf(stderr, "%s: the DLQ at %s answered %s without a count\n", o.prog, c.svc, cmd);
    } else if (rc == CALL_OK) {
        if (o.json)
            printf("{\"count\":%" PRIu64 "}\n", count);
        else
            printf("%s %" PRIu64 " letter%s\n", purge ? "purged" : "retried", count,
                   count == 1 ? "" : "s");
        if (!o.json && id_text && count == 0 && !purge)
            fprintf(stderr, "%s: letter %s is being redelivered or is resolved: not retried\n",
                    o.prog, weft_id_format(id, text));
        status = s_flush(&o);
    }
    json_decref(body);
    s_disconnect(&c);
    return status;
}

static int s_retry(int argc, char **argv)
{
    return s_retry_or_purge(argc, argv, false);
}

static int s_purge(int argc, char **argv)
{
    return s_retry_or_purge(argc, argv, true);
}

/* ---- stats ---------------------------------------------------------------------------------- */

static void s_stats_help(void)
{
    printf("usage: weft dlq stats [--json] [OPTIONS]\n"
           "\n"
           "Asks the DLQ for its INFO and prints: its name, instance and endpoint, directory and\n"
           "sync policy; letters by state; the age of the oldest pending letter (since its first\n"
           "failure); the retry policy; the scheduler's counters since it started (redeliveries\n"
           "sent, resolved, parked, failed, in flight, held back because the subscriber's node\n"
           "was not up); the open letters (pending, retrying and parked) by subscriber and by\n"
           "topic (the top 50), and the most frequent error codes (top 10).\n"
           "\n"
           "options:\n"
           "  --json              the INFO reply as it is, as one JSON object on one line: name,\n"
           "                      inst, dir, sync, counts {pending, retrying, parked, resolved},\n"
           "                      by_subscriber {S: {pending, parked}}, by_topic {T: {pending,\n"
           "                      parked}}, oldest_pending_age_ms, top_codes [[code, n], ...],\n"
           "                      scheduler {redelivered, resolved, parked, failed,\n"
           "                      no_subscriber, in_flight, held_back}, policy {max_attempts,\n"
           "                      backoff_ms, backoff_max_ms, jitter, max_in_flight,\n"
           "                      redeliver_timeout_ms}; integers above 2^63-1 (some instance\n"
           "                      ids) as {\"$uint64\": \"<decimal>\"}\n"
           "  -h, --help          this help\n"
           "\n"
           "%s\n%s"
           "  default --name for this command: weft-dlq-stats-<pid>; default --gossip-bind: none\n"
           "\n"
           "Exit status: 0 printed, 1 failure (no DLQ found, it did not answer or refused), 2\n"
           "usage error.\n"
           "\n"
           "examples:\n"
           "  weft dlq stats\n"
           "  weft dlq stats --json | jq .counts\n",
           s_common_help, cli_node_help);
}

/*  A {key: {pending, parked}} map as an indented table. */
static void s_print_groups(const char *title, const char *what, const json_t *groups)
{
    if (!json_is_object(groups) || json_object_size(groups) == 0) {
        printf("%-17s none\n", title);
        return;
    }
    printf("%s:\n  %8s  %8s  %s\n", title, "PENDING", "PARKED", what);
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)groups, key, v)
        printf("  %8" PRIu64 "  %8" PRIu64 "  %s\n", s_u(v, "pending"), s_u(v, "parked"), key);
}

static void s_print_stats(const json_t *info, const char *svc)
{
    char a[64];
    const json_t *counts = json_object_get(info, "counts");
    const json_t *sched = json_object_get(info, "scheduler");
    const json_t *policy = json_object_get(info, "policy");
    uint64_t inst = 0;
    printf("dlq               %s", s_s(info, "name"));
    if (s_uint(info, "inst", &inst))
        printf(" (inst %016" PRIx64 ")", inst);
    printf(" at %s\n", svc);
    printf("directory         %s (sync %s)\n", s_s(info, "dir"), s_s(info, "sync"));
    printf("letters           %" PRIu64 " pending, %" PRIu64 " retrying, %" PRIu64
           " parked, %" PRIu64 " resolved\n",
           s_u(counts, "pending"), s_u(counts, "retrying"), s_u(counts, "parked"),
           s_u(counts, "resolved"));
    int64_t oldest = s_i(info, "oldest_pending_age_ms");
    if (oldest > 0)
        printf("oldest pending    %s (since its first failure)\n", s_dur(oldest, a, sizeof(a)));
    else
        printf("oldest pending    none\n");
    const json_t *jitter = json_object_get(policy, "jitter");
    printf("policy            parked after %" PRIu64 " failed redeliveries; backoff %" PRIu64
           " ms doubling up to %" PRIu64 " ms, jitter %.2f;\n"
           "                  %" PRIu64 " redeliveries in flight at most, %" PRIu64
           " ms timeout\n",
           s_u(policy, "max_attempts"), s_u(policy, "backoff_ms"), s_u(policy, "backoff_max_ms"),
           json_is_number(jitter) ? json_number_value(jitter) : 0.0,
           s_u(policy, "max_in_flight"), s_u(policy, "redeliver_timeout_ms"));
    printf("scheduler         %" PRIu64 " redelivered, %" PRIu64 " resolved, %" PRIu64
           " parked, %" PRIu64 " failed, %" PRIu64 " in flight;\n"
           "                  %" PRIu64 " held back now (subscriber's node not up; %" PRIu64
           " times so far)\n",
           s_u(sched, "redelivered"), s_u(sched, "resolved"), s_u(sched, "parked"),
           s_u(sched, "failed"), s_u(sched, "in_flight"), s_u(sched, "held_back"),
           s_u(sched, "no_subscriber"));
    s_print_groups("by subscriber", "SUBSCRIBER", json_object_get(info, "by_subscriber"));
    s_print_groups("by topic", "TOPIC", json_object_get(info, "by_topic"));
    const json_t *codes = json_object_get(info, "top_codes");
    if (!json_is_array(codes) || json_array_size(codes) == 0) {
        printf("%-17s none\n", "top codes");
        return;
    }
    printf("top codes:\n  %8s  %s\n", "LETTERS", "CODE");
    size_t k;
    json_t *v;
    json_array_foreach(codes, k, v)
    {
        json_t *n = json_array_get(v, 1);
        printf("  %8" PRIu64 "  %s\n",
               json_is_integer(n) ? (uint64_t)json_integer_value(n) : 0,
               json_string_value(json_array_get(v, 0)) ? json_string_value(json_array_get(v, 0))
                                                       : "?");
    }
}

static int s_stats(int argc, char **argv)
{
    dlq_cli_t o;
    s_init(&o, "weft dlq stats", "stats");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            s_stats_help();
            return 0;
        }
        int rc = svc_cli_option(&o.svc, argc, argv, &i);
        if (rc < 0)
            return 2;
        if (rc > 0)
            continue;
        if (!strcmp(a, "--json"))
            o.json = true;
        else if (a[0] == '-')
            return s_usage_error(&o, "unknown option '%s'", a);
        else
            return s_usage_error(&o, "unexpected argument '%s'", a);
    }
    if (!o.svc.node.name)
        o.svc.node.name = o.default_name;
    long timeout_ms = o.svc.timeout_ms > 0 ? o.svc.timeout_ms : DLQ_TIMEOUT_MS;
    conn_t c;
    if (s_connect(&c, &o) != 0)
        return 1;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 0);
    json_t *info = NULL;
    int rc = s_call(&c, "INFO", &sb, timeout_ms, &info);
    msgpack_sbuffer_destroy(&sb);
    int status = 1;
    if (rc == CALL_ERR) {
        s_report_err(&c, "INFO");
    } else if (rc == CALL_OK) {
        if (o.json)
            status = s_print_json(&o, info) == 0 ? 0 : 1;
        else
            s_print_stats(info, c.svc), status = 0;
        if (status == 0)
            status = s_flush(&o);
    }
    json_decref(info);
    s_disconnect(&c);
    return status;
}

/* ---- dispatch ------------------------------------------------------------------------------- */

typedef struct {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
} sub_t;

static const sub_t s_subs[] = {
    {"list", s_list, "the letters, filtered, as a table or JSON lines"},
    {"show", s_show, "one letter and its event as JSON"},
    {"retry", s_retry, "redeliver letters now: one by ID, or by filter / --all"},
    {"purge", s_purge, "delete letters: one by ID, or by filter / --all"},
    {"stats", s_stats, "counts, oldest pending, by subscriber and topic, top codes, scheduler"},
};
#define NSUBS (sizeof(s_subs) / sizeof(s_subs[0]))

static void s_usage(FILE *out)
{
    fprintf(out, "usage: weft dlq SUBCOMMAND [OPTIONS]\n"
                 "\n"
                 "Operates the dead letters kept by the DLQ (weft-dlq): events that a subscriber's\n"
                 "handler failed to handle after its retries, which the DLQ redelivers to the\n"
                 "subscriber's node with backoff and parks after max attempts.\n"
                 "\n"
                 "subcommands:\n");
    for (size_t i = 0; i < NSUBS; i++)
        fprintf(out, "  %-8s %s\n", s_subs[i].name, s_subs[i].summary);
    fprintf(out, "\n`weft dlq SUBCOMMAND --help` describes a subcommand. The DLQ is found on the\n"
                 "fabric (role dlq) within --wait (default 3s), or given with --dlq ENDPOINT.\n"
                 "\n"
                 "examples:\n"
                 "  weft dlq stats\n"
                 "  weft dlq list --state parked\n"
                 "  weft dlq show 0199f3a2-5c1e-7d2b-9a4f-3e2d1c0b9a87\n"
                 "  weft dlq retry --state parked --subscriber billing/invoices\n"
                 "  weft dlq purge --state resolved\n");
}

int cmd_dlq(int argc, char **argv)
{
    if (argc < 2) {
        s_usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        s_usage(stdout);
        return 0;
    }
    /* stdout carries what the command prints; the node's log lines go to stderr. */
    zsys_set_logstream(stderr);
    for (size_t i = 0; i < NSUBS; i++)
        if (!strcmp(argv[1], s_subs[i].name))
            return s_subs[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "weft dlq: unknown subcommand '%s'\n\n", argv[1]);
    s_usage(stderr);
    return 2;
}

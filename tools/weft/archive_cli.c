/*  archive_cli.c - locating the archiver, parsing times and printing archived events for
    `weft replay`, `weft get` and `weft archive info` (archive_cli.h). */
#include <czmq.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "archive_cli.h"

const char *archive_cli_help =
    "finding the archiver:\n"
    "  --archiver ENDPOINT  the archiver's service endpoint (as weft-archiver prints it at\n"
    "                       start); no lookup on the fabric\n"
    "  --archiver-name NAME otherwise, look on the fabric for the archiver node called NAME\n"
    "                       (default: any archiver; give it when the fabric has several)\n"
    "  --wait S             how long to look for the archiver on the fabric (default 3s)\n"
    "  --timeout S          how long to wait for each answer of the archiver (default 5s)\n";

void archive_cli_init(archive_cli_opts_t *o, const char *prog)
{
    memset(o, 0, sizeof(*o));
    o->prog = prog;
    o->wait_ms = ARCHIVE_CLI_WAIT_MS;
    o->timeout_ms = -1;
    o->node.role = "cli";
    o->node.prog = prog;
    /* The lookup node lives for a moment: it must not hold the local gossip seed. */
    o->node.gossip_bind = "none";
    /* stdout carries the events only; the node's log lines go to stderr. */
    zsys_set_logstream(stderr);
}

int archive_cli_option(archive_cli_opts_t *o, int argc, char **argv, int *i)
{
    const char *a = argv[*i];
    int rc = cli_node_option(&o->node, argc, argv, i);
    if (rc != 0)
        return rc;
    if (strcmp(a, "--archiver") && strcmp(a, "--archiver-name") && strcmp(a, "--wait") &&
        strcmp(a, "--timeout"))
        return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "%s: %s needs a value (see %s --help)\n", o->prog, a, o->prog);
        return -1;
    }
    const char *v = argv[++*i];
    if (!strcmp(a, "--archiver")) {
        if (!*v) {
            fprintf(stderr, "%s: --archiver needs an endpoint such as tcp://127.0.0.1:40123\n",
                    o->prog);
            return -1;
        }
        o->archiver = v;
        return 1;
    }
    if (!strcmp(a, "--archiver-name")) {
        if (!*v || strlen(v) > WEFT_NAME_MAX) {
            fprintf(stderr, "%s: --archiver-name needs a node name of 1 to 255 bytes\n",
                    o->prog);
            return -1;
        }
        o->archiver_name = v;
        return 1;
    }
    long ms = cli_parse_ms(v);
    if (ms < 0 || ms > INT32_MAX) {
        fprintf(stderr, "%s: bad duration for %s: '%s' (e.g. 3, 1.5s, 500ms, 2m)\n", o->prog, a,
                v);
        return -1;
    }
    if (!strcmp(a, "--wait"))
        o->wait_ms = ms;
    else
        o->timeout_ms = ms > 0 ? ms : 1;
    return 1;
}

int archive_cli_locate(const archive_cli_opts_t *o, char *svc, size_t cap, bool *interrupted)
{
    if (interrupted)
        *interrupted = false;
    if (o->archiver) {
        snprintf(svc, cap, "%s", o->archiver);
        return 0;
    }
    weft_node_t *node = cli_node_new(&o->node);
    if (!node)
        return 1;
    weft_peer_info_t info;
    int64_t deadline = zclock_mono() + o->wait_ms;
    int rc;
    /* In slices, so Ctrl-C is noticed. */
    while (1) {
        int64_t left = deadline - zclock_mono();
        rc = weft_node_find_peer(node, 0, "archiver", o->archiver_name,
                                 left > 100 ? 100 : left > 0 ? (int)left : 0, &info);
        if (rc == WEFT_OK || zsys_interrupted || zclock_mono() >= deadline)
            break;
    }
    weft_node_destroy(&node);
    if (rc != WEFT_OK) {
        if (zsys_interrupted) {
            if (interrupted)
                *interrupted = true;
        } else if (o->archiver_name) {
            fprintf(stderr,
                    "%s: no archiver named '%s' found on the fabric within %g s; start "
                    "weft-archiver --name %s or pass --archiver ENDPOINT\n",
                    o->prog, o->archiver_name, o->wait_ms / 1000.0, o->archiver_name);
        } else {
            fprintf(stderr,
                    "%s: no archiver found on the fabric within %g s; start weft-archiver or "
                    "pass --archiver ENDPOINT\n",
                    o->prog, o->wait_ms / 1000.0);
        }
        return 1;
    }
    if (!info.svc[0]) {
        fprintf(stderr, "%s: the archiver %s announces no service endpoint; pass --archiver "
                        "ENDPOINT\n",
                o->prog, info.name);
        return 1;
    }
    snprintf(svc, cap, "%s", info.svc);
    return 0;
}

void archive_cli_report(const archive_cli_opts_t *o, const char *svc, int rc,
                        const char *remote, long timeout_ms)
{
    switch (rc) {
    case WEFT_ETIMEOUT:
        fprintf(stderr, "%s: the archiver at %s did not answer within %g s\n", o->prog, svc,
                timeout_ms / 1000.0);
        break;
    case WEFT_EREMOTE:
        fprintf(stderr, "%s: the archiver at %s refused the request: %s\n", o->prog, svc,
                remote && *remote ? remote : "(no reason given)");
        break;
    case WEFT_EMALFORMED:
        fprintf(stderr, "%s: the archiver at %s sent a reply that does not follow the protocol\n",
                o->prog, svc);
        break;
    case WEFT_ENET:
    case WEFT_EINVAL:
        fprintf(stderr, "%s: cannot connect to the archiver at '%s': %s\n", o->prog, svc,
                weft_strerror(rc));
        break;
    default:
        fprintf(stderr, "%s: %s%s%s\n", o->prog, weft_strerror(rc), remote && *remote ? ": " : "",
                remote && *remote ? remote : "");
    }
}

/* ---- times ---------------------------------------------------------------------------------- */

bool archive_cli_parse_u64(const char *text, uint64_t min, uint64_t max, uint64_t *out)
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

/*  Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar. */
static int64_t s_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

/*  Reads exactly n digits at *p into *out and advances *p. */
static bool s_digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return false;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return true;
}

/*  RFC 3339 / ISO 8601 date and time. Returns 0 or -1. */
static int s_parse_iso(const char *p, int64_t *out)
{
    int year, mon, day, hour = 0, min = 0, sec = 0;
    int64_t frac_ns = 0;
    if (!s_digits(&p, 4, &year) || *p++ != '-' || !s_digits(&p, 2, &mon) || *p++ != '-' ||
        !s_digits(&p, 2, &day))
        return -1;
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    if (year < 1678 || year > 2261 || mon < 1 || mon > 12 || day < 1 ||
        day > mdays[mon - 1] + (mon == 2 && leap))
        return -1;
    int64_t offset_s = 0;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        if (!s_digits(&p, 2, &hour) || *p++ != ':' || !s_digits(&p, 2, &min))
            return -1;
        if (*p == ':') {
            p++;
            if (!s_digits(&p, 2, &sec))
                return -1;
            if (*p == '.' || *p == ',') {
                p++;
                if (!isdigit((unsigned char)*p))
                    return -1;
                int64_t scale = 100000000;
                for (; isdigit((unsigned char)*p); p++, scale /= 10)
                    frac_ns += (*p - '0') * scale; /* digits past ns add 0 */
            }
        }
        if (hour > 23 || min > 59 || sec > 60)
            return -1;
        if (sec == 60) /* a leap second: the last instant of that minute */
            sec = 59, frac_ns = 999999999;
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int sign = *p++ == '-' ? -1 : 1, oh, om = 0;
            if (!s_digits(&p, 2, &oh))
                return -1;
            if (*p == ':')
                p++;
            if (*p && !s_digits(&p, 2, &om))
                return -1;
            if (oh > 23 || om > 59)
                return -1;
            offset_s = sign * (oh * 3600 + om * 60);
        }
    }
    if (*p)
        return -1;
    int64_t secs = s_days_from_civil(year, (unsigned)mon, (unsigned)day) * 86400 +
                   hour * 3600 + min * 60 + sec - offset_s;
    int64_t ns;
    if (__builtin_mul_overflow(secs, (int64_t)1000000000, &ns) ||
        __builtin_add_overflow(ns, frac_ns, &ns))
        return -1;
    *out = ns;
    return 0;
}

int archive_cli_parse_time(const char *text, int64_t now_ns, int64_t *out)
{
    if (!text || !*text)
        return -1;
    if (!strcmp(text, "now")) {
        *out = now_ns;
        return 0;
    }
    size_t ndigits = strspn(text, "0123456789");
    if (ndigits && !text[ndigits]) { /* a whole number: ns since the epoch */
        uint64_t v;
        if (!archive_cli_parse_u64(text, 0, INT64_MAX, &v))
            return -1;
        *out = (int64_t)v;
        return 0;
    }
    if (ndigits == 4 && text[4] == '-')
        return s_parse_iso(text, out);
    /* A relative age: a number and a unit. */
    if (!isdigit((unsigned char)*text) && *text != '.')
        return -1;
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || !isfinite(v) || v < 0)
        return -1;
    double mul;
    if (!strcmp(end, "ms"))
        mul = 1e6;
    else if (!strcmp(end, "s"))
        mul = 1e9;
    else if (!strcmp(end, "m"))
        mul = 60e9;
    else if (!strcmp(end, "h"))
        mul = 3600e9;
    else if (!strcmp(end, "d"))
        mul = 86400e9;
    else if (!strcmp(end, "w"))
        mul = 7 * 86400e9;
    else
        return -1;
    double age = v * mul;
    if (age > (double)now_ns) /* before the epoch: every event is younger */
        age = (double)now_ns;
    *out = now_ns - (int64_t)age;
    return 0;
}

/* ---- printing ------------------------------------------------------------------------------- */

int archive_cli_print(const weft_archived_t *ev, event_json_t *buf, FILE *out, bool flush)
{
    weft_envelope_t env;
    if (weft_envelope_decode(&env, ev->envelope, ev->envelope_size) != WEFT_OK)
        return ARCHIVE_PRINT_BAD;
    event_json_src_t src = {ev->topic,   ev->topic_size, &env,       ev->payload,
                            ev->payload_size, ev->offset, ev->recv_ts};
    event_json_format(buf, EVENT_JSON_ALL | EVENT_JSON_OFFSET | EVENT_JSON_RECV_TS, &src);
    if (buf->oom)
        return ARCHIVE_PRINT_OOM;
    errno = 0;
    if (fwrite(buf->data, 1, buf->len, out) != buf->len || (flush && fflush(out) == EOF)) {
        if (!errno)
            errno = EIO;
        return ARCHIVE_PRINT_WRITE;
    }
    return ARCHIVE_PRINT_OK;
}

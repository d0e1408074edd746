/*  archive_cli.c - the archiver as a service to locate, reports of failed requests, parsing
    times and printing archived events for `weft replay`, `weft get` and `weft archive info`
    (archive_cli.h). */
#include <czmq.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "archive_cli.h"
#include "cli_parse.h"

const char *archive_cli_help =
    "finding the archiver:\n"
    "  --archiver ENDPOINT  the archiver's service endpoint (as weft-archiver prints it at\n"
    "                       start); no lookup on the fabric\n"
    "  --archiver-name NAME otherwise, look on the fabric for the archiver node called NAME\n"
    "                       (default: any archiver; give it when the fabric has several)\n"
    "  --wait S             how long to look for the archiver on the fabric (default 3s)\n"
    "  --timeout S          how long to wait for each answer of the archiver (default 5s)\n";

static const svc_kind_t s_archiver = {"archiver", "archiver", "--archiver", "--archiver-name",
                                      "weft-archiver"};

void archive_cli_init(svc_cli_t *o, const char *prog)
{
    svc_cli_init(o, &s_archiver, prog);
    /* stdout carries the events only; the node's log lines go to stderr. */
    zsys_set_logstream(stderr);
}

void archive_cli_report(const svc_cli_t *o, const char *svc, int rc, const char *remote,
                        long timeout_ms)
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
        if (!cli_parse_u64(text, 0, INT64_MAX, &v))
            return -1;
        *out = (int64_t)v;
        return 0;
    }
    if (ndigits == 4 && text[4] == '-')
        return s_parse_iso(text, out);
    /* A relative age: a number and a unit. */
    double v, unit_ns;
    if (cli_parse_age(text, 0, &v, &unit_ns) != 0)
        return -1;
    double age = v * unit_ns;
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

/*  archive_cli.h - what `weft replay`, `weft get` and `weft archive info` share: the options
    that locate the archiver (--archiver, --wait, --timeout and the node options), finding its
    service endpoint on the fabric, parsing times (--since, --until), and printing one archived
    event as a JSON line (event_json.h, with offset and recv_ts).
*/
#ifndef WEFT_ARCHIVE_CLI_H_INCLUDED
#define WEFT_ARCHIVE_CLI_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "event_json.h"
#include "node_opts.h"
#include "weft.h"

#define ARCHIVE_CLI_WAIT_MS 3000 /* default --wait */

/*  How to reach the archiver. */
typedef struct {
    const char *prog;       /* "weft replay", ... for messages */
    const char *archiver;   /* --archiver ENDPOINT: its service endpoint, no lookup */
    const char *archiver_name; /* --archiver-name NAME: look for the archiver called NAME */
    long wait_ms;           /* --wait: how long to look for one on the fabric */
    long timeout_ms;        /* --timeout: how long to wait for an answer (-1: command default) */
    cli_node_opts_t node;   /* node options of the lookup node */
} archive_cli_opts_t;

/*  Zeroes o and sets the defaults (role "cli", --wait 3 s, --gossip-bind none); sends the
    process's log lines (zsys) to stderr, so that stdout holds only what the command prints. */
void archive_cli_init(archive_cli_opts_t *o, const char *prog);

/*  If argv[*i] is one of the options above, consumes it (and its value, advancing *i) and
    returns 1; returns 0 if it is not one; returns -1 (after printing why on stderr) for a
    missing or bad value. */
int archive_cli_option(archive_cli_opts_t *o, int argc, char **argv, int *i);

/*  Help text for those options (static string). */
extern const char *archive_cli_help;

/*  Fills svc (cap bytes) with the archiver's service endpoint: --archiver, or the svc of a
    peer whose role is "archiver" (and whose name is --archiver-name, if given), found by a
    short-lived node within --wait. Returns 0, or 1
    after printing why on stderr (no archiver found, the node cannot start) or when
    interrupted (Ctrl-C; then nothing is printed and *interrupted is set if not NULL). */
int archive_cli_locate(const archive_cli_opts_t *o, char *svc, size_t cap, bool *interrupted);

/*  Prints on stderr why a request to the archiver at svc failed: rc is what weft_replay,
    weft_archive_get or weft_archive_info returned, remote the ERR text they filled (may be
    NULL or ""), timeout_ms the deadline used. */
void archive_cli_report(const archive_cli_opts_t *o, const char *svc, int rc,
                        const char *remote, long timeout_ms);

/*  Parses TIME into ns since the Unix epoch, given now (ns):
      - a whole number: ns since the epoch (1795383000000000000);
      - RFC 3339 / ISO 8601: 2026-11-22T21:30:00Z, 2026-11-22T21:30:00.250+01:00,
        2026-11-22 21:30, 2026-11-22 (without Z or an offset the time is UTC);
      - a relative age, meaning that long before now: 90s, 10m, 2h, 3d, 1w, 500ms, 1.5h;
      - now.
    Returns 0, or -1 when text is none of these. */
int archive_cli_parse_time(const char *text, int64_t now_ns, int64_t *out);

/*  Parses a whole number in [min, max]. Returns true on success. */
bool archive_cli_parse_u64(const char *text, uint64_t min, uint64_t max, uint64_t *out);

/*  Result of archive_cli_print. */
enum {
    ARCHIVE_PRINT_OK = 0,
    ARCHIVE_PRINT_BAD = 1,     /* the stored envelope does not decode: nothing printed */
    ARCHIVE_PRINT_OOM = 2,     /* out of memory: nothing printed */
    ARCHIVE_PRINT_WRITE = 3,   /* writing to out failed (errno tells why) */
};

/*  Prints one archived event on out as a JSON line (every key of `weft sub` plus offset and
    recv_ts), using buf as scratch (reusable; the caller frees it with event_json_free).
    Flushes out when flush is true. Returns one of ARCHIVE_PRINT_*. */
int archive_cli_print(const weft_archived_t *ev, event_json_t *buf, FILE *out, bool flush);

#endif

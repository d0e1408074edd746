/*  archive_cli.h - what `weft replay`, `weft get` and `weft archive info` share: the archiver
    as a service to locate (its svc_kind_t for svc_cli.h: --archiver, --archiver-name, role
    "archiver"), reporting why a request to it failed, parsing times (--since, --until), and
    printing one archived event as a JSON line (event_json.h, with offset and recv_ts).
*/
#ifndef WEFT_ARCHIVE_CLI_H_INCLUDED
#define WEFT_ARCHIVE_CLI_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "event_json.h"
#include "svc_cli.h"
#include "weft.h"

/*  svc_cli_init for the archiver (role "archiver", --archiver, --archiver-name); also sends
    the process's log lines (zsys) to stderr, so that stdout holds only what the command
    prints. The command then offers its arguments to svc_cli_option and finds the archiver
    with svc_cli_locate. */
void archive_cli_init(svc_cli_t *o, const char *prog);

/*  Help text for the options that find the archiver (static string). */
extern const char *archive_cli_help;

/*  Prints on stderr why a request to the archiver at svc failed: rc is what weft_replay,
    weft_archive_get or weft_archive_info returned, remote the ERR text they filled (may be
    NULL or ""), timeout_ms the deadline used. */
void archive_cli_report(const svc_cli_t *o, const char *svc, int rc, const char *remote,
                        long timeout_ms);

/*  Parses TIME into ns since the Unix epoch, given now (ns):
      - a whole number: ns since the epoch (1795383000000000000);
      - RFC 3339 / ISO 8601: 2026-11-22T21:30:00Z, 2026-11-22T21:30:00.250+01:00,
        2026-11-22 21:30, 2026-11-22 (without Z or an offset the time is UTC);
      - a relative age, meaning that long before now: 90s, 10m, 2h, 3d, 1w, 500ms, 1.5h;
      - now.
    Returns 0, or -1 when text is none of these. */
int archive_cli_parse_time(const char *text, int64_t now_ns, int64_t *out);

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

/*  weft/archive.h - client side of the archiver: replay, look-up by id, archive info.

    The archiver serves these on its service endpoint (weft_peer_info_t.svc of a peer whose
    role is "archiver"; weft_node_find_peer finds it). Replays stream under credit, so a slow
    handler slows the archiver's sending to this client only, never its ingest.
*/
#ifndef WEFT_ARCHIVE_H_INCLUDED
#define WEFT_ARCHIVE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "weft/control.h"
#include "weft/envelope.h"

#ifdef __cplusplus
extern "C" {
#endif

/*  Where a replay starts and what it returns. Zero-initialise; set at most one start. */
typedef struct {
    uint64_t from_offset;              /* start at this offset (default: the first) */
    int64_t since_ns;                  /* or: the first event received at or after this time */
    const uint8_t *from_id;            /* or: the event with this id (WEFT_ID_SIZE bytes) */
    uint64_t to_offset;                /* last offset (0: no limit) */
    int64_t until_ns;                  /* stop after events received later (0: no limit) */
    const char *const *prefixes;       /* topic prefixes (NULL/0: every topic) */
    size_t nprefixes;
    const char *const *sources;        /* source node names (NULL/0: every source) */
    size_t nsources;
    uint64_t limit;                    /* at most this many events (0: no limit) */
    bool live;                         /* after the end, keep following new commits */
    int timeout_ms;                    /* longest wait for a reply when not live (default 5000) */
    const volatile int *stop;          /* polled every 100 ms; non-zero ends the replay */
} weft_replay_opts_t;

/*  One archived event, pointing into the reply: valid during the callback only. */
typedef struct {
    const char *topic;                 /* not NUL-terminated */
    size_t topic_size;
    const uint8_t *envelope;
    size_t envelope_size;
    const uint8_t *payload;
    size_t payload_size;
    uint64_t offset;                   /* position in the archive */
    int64_t recv_ts;                   /* when the archiver received it, ns */
} weft_archived_t;

/*  Called for each event in archive order; return non-zero to stop the replay. */
typedef int(weft_archived_fn)(const weft_archived_t *event, void *arg);

typedef struct {
    uint64_t events;                   /* events passed to the callback */
    uint64_t next_offset;              /* where a later replay would continue */
} weft_replay_totals_t;

/*  Replays from the archiver at svc_endpoint. Returns WEFT_OK when the replay ended (its end,
    its limit, the callback or opts->stop stopped it), WEFT_ENOTFOUND (from_id unknown),
    WEFT_ETIMEOUT (the archiver stopped answering), WEFT_EREMOTE (ERR: text in err),
    WEFT_EMALFORMED (a reply that does not follow the protocol), WEFT_ENET, WEFT_EINVAL.
    err (errcap bytes) may be NULL. */
int weft_replay(const char *svc_endpoint, const weft_replay_opts_t *opts, weft_archived_fn *fn,
                void *arg, weft_replay_totals_t *totals, char *err, size_t errcap);

/*  Looks up one event by id; calls fn once. Returns WEFT_OK, WEFT_ENOTFOUND, WEFT_ETIMEOUT,
    WEFT_EREMOTE or WEFT_ENET. */
int weft_archive_get(const char *svc_endpoint, const uint8_t id[WEFT_ID_SIZE],
                     weft_archived_fn *fn, void *arg, int timeout_ms, char *err, size_t errcap);

/*  INFO: fills reply (the caller clears it with weft_reply_clear) with the archiver's msgpack
    description (see docs/protocol.md). Returns WEFT_OK, WEFT_ETIMEOUT or WEFT_ENET. */
int weft_archive_info(const char *svc_endpoint, int timeout_ms, weft_reply_t *reply);

#ifdef __cplusplus
}
#endif

#endif

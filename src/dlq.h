/*  dlq.h - the DLQ: a node that keeps every event a subscriber failed to handle, and
    redelivers it later (design section 6).

    A letter comes in with PUT (from a node whose handler gave up on an event), is stored in
    LMDB (dlq_store.h) and acknowledged once committed. The scheduler REDELIVERs it to the
    subscriber's node when it is due, with exponential backoff between failed redeliveries;
    after max_attempts failed redeliveries the letter is parked until an operator RETRYs or
    PURGEs it. LIST, GET, RETRY, PURGE and INFO serve operators (weft dlq ...).

    Threads:
      - the service thread (an actor) owns the store: it answers requests on the DLQ's own
        ROUTER endpoint (announced as the node's "svc"), runs the scheduler's timers and talks
        to subscriber nodes through one DEALER per control endpoint, all without blocking;
      - the node's thread does discovery and heartbeats; the heartbeat's "dlq" section is a
        snapshot the service thread refreshes once per heartbeat interval.

    nodes/dlq/main.c is a thin main over this.
*/
#ifndef WEFT_DLQ_H_INCLUDED
#define WEFT_DLQ_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>

#include "weft.h"

typedef enum {
    DLQ_SYNC_ALWAYS = 0, /* fsync every commit: an acknowledged letter survives a power cut */
    DLQ_SYNC_INTERVAL,   /* fsync once a second */
    DLQ_SYNC_NONE,       /* the OS decides (survives a crash of the process, not of the host) */
} dlq_sync_t;

typedef struct {
    const char *dir;            /* store directory (created if missing); default "weft-dlq" */
    const char *name;           /* node name; default "dlq" */
    weft_config_t *config;      /* node configuration (may be NULL) */
    uint32_t max_attempts;      /* failed redeliveries before a letter is parked (>= 1) */
    int64_t backoff_ms;         /* wait before the first redelivery; doubles after each failure */
    int64_t backoff_max_ms;     /* cap of that wait */
    double jitter;              /* random fraction 0..1 added to each wait */
    dlq_sync_t sync;
    const char *svc_bind;       /* service endpoint; default tcp://127.0.0.1:* */
    uint32_t max_in_flight;     /* REDELIVERs outstanding at once */
    int redeliver_timeout_ms;   /* a REDELIVER unanswered this long has failed (dlq.timeout) */
} dlq_opts_t;

/*  Fills o with the defaults: max_attempts 5, backoff 1000 ms, cap 60000 ms, jitter 0.2,
    sync always, 16 in flight, timeout 5000 ms, dir "weft-dlq", name "dlq". */
void dlq_opts_defaults(dlq_opts_t *o);

typedef struct dlq_t dlq_t;

/*  Service and scheduler counters (totals since start, except in_flight and deferred). */
typedef struct {
    uint64_t requests;        /* service requests */
    uint64_t request_errors;  /* answered ERR */
    uint64_t puts;            /* PUTs acknowledged */
    uint64_t created;         /* of those, letters that were new */
    uint64_t redelivered;     /* REDELIVERs sent */
    uint64_t resolved;        /* letters a redelivery resolved */
    uint64_t parked;          /* letters parked after max_attempts failed redeliveries */
    uint64_t failed;          /* redeliveries that failed (answer, ERR or timeout) */
    uint64_t no_subscriber;   /* due letters held back because their node was not up */
    uint64_t in_flight;       /* REDELIVERs outstanding now */
    uint64_t deferred;        /* letters waiting for their node to come up now */
} dlq_stats_t;

/*  Opens the store, starts the service thread and the node. Letters left "retrying" by a crash
    become pending again. Returns NULL with *err and a sentence in why on failure (store in use,
    unknown format, bad directory, bad options, sockets). */
dlq_t *dlq_new(const dlq_opts_t *opts, int *err, char *why, size_t why_cap);

/*  Stops the service (letters in flight become pending again) and the node, closes the store. */
void dlq_destroy(dlq_t **self_p);

void dlq_stats(dlq_t *self, dlq_stats_t *stats);
weft_node_t *dlq_node(dlq_t *self);
const char *dlq_svc_endpoint(dlq_t *self);

/*  Parses "always" | "interval" | "none". Returns 0 or -1. */
int dlq_parse_sync(const char *text, dlq_sync_t *out);
const char *dlq_sync_name(dlq_sync_t sync);

#endif

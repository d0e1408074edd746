/*  archiver.h - the archiver: a node that keeps every event of the fabric in LMDB and serves
    replay, look-ups and repair (design section 5; docs/protocol.md "Archiver").

    Threads:
      - the node's thread runs the subscription handler: it checks each event's (inst, seq)
        against what it has seen, asks for repair when a seq jumps, and appends the frames to
        the ingest batch;
      - the writer thread commits batches (group commit: one LMDB write transaction per batch,
        closed by count or by time), syncs per policy, and applies retention in small steps;
      - the repair thread FETCHes missing ranges from publishers' outboxes into the batch;
      - the server thread answers REPLAY, GET, FETCH, INFO, PING, CREDIT, CANCEL on the
        archiver's own ROUTER endpoint (announced as "svc"), streaming under credit.

    nodes/archiver/main.c is a thin main over this.
*/
#ifndef WEFT_ARCHIVER_H_INCLUDED
#define WEFT_ARCHIVER_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>

#include "archive_store.h"
#include "weft.h"

typedef struct {
    const char *dir;                 /* archive directory (created if missing) */
    const char *name;                /* node name, default "archiver" */
    weft_config_t *config;           /* node configuration (may be NULL); the archiver sets
                                        node/role and node/service in it */
    const char *const *prefixes;     /* topic prefixes to archive; NULL/0 = everything */
    size_t nprefixes;
    bool archive_fabric;             /* also archive _weft. topics (heartbeats, ...) */
    size_t batch_events;             /* events per commit, at most (default 1000) */
    int batch_ms;                    /* ms an event may wait for its commit (default 10) */
    archive_sync_t sync;             /* default ARCHIVE_SYNC_ALWAYS */
    uint64_t map_size;               /* initial LMDB map size (default 1 GiB) */
    uint64_t max_map_size;           /* growth limit (default 1 TiB) */
    archive_retention_t retention;   /* 0 = keep forever */
    const char *svc_bind;            /* service endpoint (default tcp://127.0.0.1:*) */
    bool no_repair;                  /* do not FETCH missing ranges from outboxes */
} archiver_opts_t;

typedef struct archiver_t archiver_t;

/*  Ingest and service counters. */
typedef struct {
    uint64_t ingested;        /* events committed */
    uint64_t duplicates;      /* arrivals already archived (skipped) */
    uint64_t batches;         /* commits */
    uint64_t commit_errors;   /* batches that could not be committed (e.g. map full) */
    uint64_t refused;         /* events lost with those batches */
    uint64_t repaired;        /* events recovered from outboxes */
    uint64_t unrepaired;      /* events missing that no outbox held any more */
    uint64_t repair_requests; /* FETCHes sent */
    uint64_t retained_removed;/* events removed by retention */
    uint64_t replay_sessions; /* streams open now */
    uint64_t requests;        /* service requests */
    uint64_t request_errors;  /* answered ERR */
    uint64_t commit_p50_us, commit_p99_us; /* over the last 1024 commits */
    uint64_t last_offset;
} archiver_stats_t;

/*  Opens the archive, starts the node and the threads. Returns NULL with *err and a sentence in
    why (why_cap bytes) on failure: archive in use, unknown format, bad directory, sockets. */
archiver_t *archiver_new(const archiver_opts_t *opts, int *err, char *why, size_t why_cap);

/*  Stops everything (pending events are committed first) and closes the archive. */
void archiver_destroy(archiver_t **self_p);

void archiver_stats(archiver_t *self, archiver_stats_t *stats);
weft_node_t *archiver_node(archiver_t *self);
const char *archiver_svc_endpoint(archiver_t *self);

/*  Parses "always" | "interval" | "none". Returns 0 or -1. */
int archiver_parse_sync(const char *text, archive_sync_t *out);

#endif

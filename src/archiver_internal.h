/*  archiver_internal.h - the archiver object shared by its threads (see archiver.h). Fields
    are grouped by the lock or thread that owns them. */
#ifndef WEFT_ARCHIVER_INTERNAL_H_INCLUDED
#define WEFT_ARCHIVER_INTERNAL_H_INCLUDED

#include <czmq.h>
#include <pthread.h>
#include <stdatomic.h>

#include "archiver.h"

#define COMMIT_SAMPLES 1024
#define REPAIR_QUEUE_MAX 1024
#define REPAIR_WORKERS 4         /* repairs of different instances run side by side */
#define BATCH_BYTES_MAX (64u << 20)

/*  One batch being filled or committed. Events are stored in the arena back to back; their
    pointers are set just before the commit (the arena may move while it fills). */
typedef struct {
    uint8_t *arena;
    size_t used, cap;
    archive_in_t *ev;
    size_t *at;            /* arena offset of each event's topic */
    uint8_t *ids;          /* WEFT_ID_SIZE bytes per event, filled at commit */
    size_t n, ev_cap;
    int64_t first_ms;      /* when the first event (or op) arrived (batch age) */
    archive_repair_op_t *ops; /* owed-repair bookkeeping committed with the events */
    size_t nops, ops_cap;
} batch_t;

typedef struct {
    uint64_t inst, from, to;
    int attempts;          /* tries while the publisher was not (yet) reachable */
    int64_t not_before;    /* monotonic ms */
} repair_req_t;

/*  What a repair worker thread is given: the archiver and its slot in `repairing`. */
typedef struct {
    archiver_t *self;
    int slot;
} worker_arg_t;

typedef struct {
    uint64_t last_seq;     /* highest seq known archived or seen live from this instance */
    uint64_t hb_seq;       /* seq its previous heartbeat announced */
    uint64_t requested_to; /* highest seq a repair was asked for ... */
    int64_t requested_ms;  /* ... and when (repairs are not asked again for 10 s) */
} seen_t;

struct archiver_t {
    archiver_opts_t opts;
    char dir[4096];
    char **prefixes;       /* owned copies */
    size_t nprefixes;
    archive_store_t *store;
    weft_node_t *node;
    char svc_endpoint[256];

    /* node thread only */
    zhashx_t *seen;               /* inst hex -> seen_t */
    seen_t *last_seen;            /* cache: the source of the previous event */
    uint64_t last_seen_inst;
    archive_reader_t *hwm_reader; /* for the archived high-water mark of a new source */

    /* ingest: under ingest_lock */
    pthread_mutex_t ingest_lock;
    pthread_cond_t ingest_cond;   /* writer: work or stop; handlers: room */
    batch_t batches[2];
    batch_t *filling;
    bool stopping;
    pthread_t writer;

    /* repair: under repair_lock */
    pthread_mutex_t repair_lock;
    pthread_cond_t repair_cond;
    repair_req_t repairs[REPAIR_QUEUE_MAX];
    size_t nrepairs;
    bool repair_stop;
    bool repair_joined;           /* the threads have ended (requests still queue, unserved) */
    pthread_t repairers[REPAIR_WORKERS];
    int nrepairers;               /* started */
    worker_arg_t repair_args[REPAIR_WORKERS];
    uint64_t repairing[REPAIR_WORKERS]; /* instance each worker is repairing, 0 when idle */

    /* service */
    zactor_t *server;
    char commit_endpoint[64];     /* inproc: writer -> server, "new data" */

    /* counters (atomics) and commit latency samples (writer writes, others read) */
    atomic_uint_fast64_t ingested, duplicates, batches_done, commit_errors, refused, repaired,
        unrepaired, repair_requests, retained_removed, replay_sessions, requests,
        request_errors, last_offset;
    uint32_t commit_us[COMMIT_SAMPLES];
    atomic_uint commit_next;
    /* heartbeat rate */
    uint64_t hb_prev_ingested;
    int64_t hb_prev_ms;
    double events_per_s;
};

/*  Adds one event to the filling batch (any thread). Waits while the batch is full and the
    writer busy (backpressure to the node's receive queue). Returns 0, or -1 when stopping. */
int archiver_ingest_add(archiver_t *self, const char *topic, size_t topic_size,
                        const uint8_t *envelope, size_t envelope_size, const uint8_t *payload,
                        size_t payload_size, const weft_envelope_t *env);

/*  Adds an owed-repair record (or its clearing) to the filling batch, after the events
    already in it: it commits with them (any thread, never waits). Returns 0, or -1 when
    stopping or out of memory. */
int archiver_ingest_note(archiver_t *self, const archive_repair_op_t *op);

int archiver_ingest_start(archiver_t *self);
void archiver_ingest_stop(archiver_t *self);

int archiver_repair_start(archiver_t *self);
/*  Ends the repair thread (waits for a fetch in progress); requests may still be queued
    afterwards and are not served. */
void archiver_repair_halt(archiver_t *self);
/*  archiver_repair_halt, then frees the lock and condition: no request may come after. */
void archiver_repair_stop(archiver_t *self);
/*  Queues a repair of seq from..to of inst (merged with a queued one of the same inst) and
    records the range as owed in the filling batch, so that it survives a crash. */
void archiver_repair_request(archiver_t *self, uint64_t inst, uint64_t from, uint64_t to);
/*  Queues again the ranges the archive records as owed (after a restart). Returns how many. */
size_t archiver_repair_resume(archiver_t *self);

/*  The service actor (zactor_fn); args is the archiver. */
void archiver_server(zsock_t *pipe, void *args);

/*  True when topic matches the configured prefixes. */
bool archiver_wants(archiver_t *self, const char *topic, size_t len);

#endif

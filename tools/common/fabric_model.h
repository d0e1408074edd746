/*  fabric_model.h - the operator's picture of the fabric, built only from `_weft.hb` heartbeats.

    weft-top, `weft stat` and the Prometheus exporter all look at the fabric the same way: they
    subscribe to `_weft.hb` and hand every heartbeat payload to a fabric model, then take
    snapshots of it to draw, print or export. The model joins nothing itself and does no I/O.

    What it keeps, per node instance (keyed by `inst`): name, role, host, pid, the counters and
    outbox figures of its last heartbeat, out/s and in/s computed from the counter deltas
    between its last two heartbeats (over the sender's own uptime clock, so network jitter
    does not skew them), its per-topic rows with their rates, its `sources` rows, its delivery
    latency histogram, and the role sections an archiver (`archive`) or a DLQ (`dlq`) adds.
    A node is down once nothing was heard from it for FABRIC_DOWN_BEATS x its own `hb_ms`, and
    forgotten once silent for FABRIC_FORGET_MS, so memory stays bounded by the live fabric.

    From that a snapshot derives per-topic aggregates across nodes, lag pairs (each
    subscriber's `sources` row against the publisher's own heartbeat `seq`), fabric totals and
    the rate history kept by fabric_model_tick.

    Heartbeats are untrusted network input: they pass mp_guard_check before msgpack-c sees them;
    every field is type-checked; strings are cut to size and bytes outside printable ASCII are
    replaced by '?' (they end up on terminals and in Prometheus labels); row counts are capped.
    A heartbeat that is not a map with a uint `inst` is rejected and counted, never fatal.

    Times: now_ms is wall-clock milliseconds since the Unix epoch (zclock_time), the same clock
    for every call: time lag compares it with publish timestamps carried in heartbeats.

    Not thread-safe: a program that feeds the model on one thread and reads it on another (the
    exporter's HTTP thread, weft-top's UI) holds one mutex around every call. Snapshots are
    independent copies and can be read without the lock.
*/
#ifndef WEFT_TOOLS_FABRIC_MODEL_H_INCLUDED
#define WEFT_TOOLS_FABRIC_MODEL_H_INCLUDED

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FABRIC_DOWN_BEATS 3        /* missed heartbeats (x the node's hb_ms) before "down" */
#define FABRIC_FORGET_MS 60000     /* a node silent this long is forgotten */
#define FABRIC_NODES_MAX 4096      /* instances tracked at once; more are rejected */
#define FABRIC_TOPICS_MAX 64       /* topic rows kept per node (heartbeats carry 33) */
#define FABRIC_SOURCES_MAX 128     /* source rows kept per node (heartbeats carry 64) */
#define FABRIC_LATENCY_MAX 64      /* latency bucket bounds kept (heartbeats carry 25) */
#define FABRIC_HISTORY 60          /* samples in the rate history (one per tick) */
#define FABRIC_SECTION_ITEMS 512   /* elements kept of a role section (archive, dlq) */
#define FABRIC_STR_MAX 255         /* longest name, host, topic or source kept */

/*  A node's counters, as in its heartbeat's `counters` map (totals since it started). */
typedef struct {
    uint64_t published, publish_errors, received, delivered, dropped, gaps, repaired,
        handler_errors, dead_lettered, malformed, ctl_requests, ctl_errors;
} fabric_counters_t;

/*  One row of a node's `topics`, plus rates against its previous heartbeat. */
typedef struct {
    char topic[FABRIC_STR_MAX + 1];
    uint64_t pub_events, pub_bytes, recv_events, recv_bytes;
    bool has_rates;                 /* false until the topic was in two heartbeats */
    double pub_eps, pub_bps;        /* published events/s, bytes/s */
    double recv_eps, recv_bps;      /* received events/s, bytes/s */
} fabric_topic_row_t;

/*  One row of a node's `sources`: what it has received from one publisher instance. */
typedef struct {
    char src[FABRIC_STR_MAX + 1];   /* publisher name */
    uint64_t inst;                  /* publisher instance */
    uint64_t last_seq;              /* last seq received from it */
    int64_t last_ts;                /* publish ts (ns since the epoch) of that event */
    uint64_t gaps;                  /* events found missing from it */
} fabric_source_row_t;

/*  A node's delivery latency histogram (publish ts -> receipt), from its `latency` map. */
typedef struct {
    bool present;                   /* false: absent or malformed in the heartbeat */
    size_t nbounds;                 /* upper bounds (>= 1 when present); counts has one more */
    uint64_t le_us[FABRIC_LATENCY_MAX];        /* bucket i counts latencies < le_us[i] us */
    uint64_t counts[FABRIC_LATENCY_MAX + 1];   /* the last bucket has no upper bound */
    uint64_t count;                 /* as sent (should equal the sum of counts) */
    uint64_t sum_us;                /* sum of all latencies, us */
} fabric_latency_t;

/*  One node instance. In a snapshot every pointer is owned by the snapshot. */
typedef struct {
    uint64_t inst;
    char name[FABRIC_STR_MAX + 1];
    char role[32];
    char host[FABRIC_STR_MAX + 1];
    uint64_t pid;
    bool up;                        /* heard from within FABRIC_DOWN_BEATS x hb_ms */
    uint64_t uptime_ms;             /* as of its last heartbeat */
    uint64_t hb_ms;                 /* its heartbeat interval (1000 when not sent) */
    uint64_t seq;                   /* last data seq it published */
    uint64_t peers_up, peers_down;
    fabric_counters_t c;
    uint64_t outbox_events, outbox_bytes, outbox_first_seq;
    bool has_rates;                 /* false until two heartbeats were heard */
    double out_eps, in_eps;         /* published/s and received/s between its last two beats */
    int64_t first_heard_ms, last_heard_ms;
    uint64_t heartbeats;            /* heartbeats accepted from it */
    size_t ntopics;
    fabric_topic_row_t *topics;     /* ntopics rows, NULL when none */
    size_t nsources;
    fabric_source_row_t *sources;   /* nsources rows, NULL when none */
    fabric_latency_t latency;
    json_t *archive;                /* the `archive` map as JSON, NULL when absent */
    json_t *dlq;                    /* the `dlq` map as JSON, NULL when absent */
} fabric_node_t;

/*  One topic across every node that reported it. Rates and counts of publishers and
    subscribers cover the nodes that are up; totals cover every node still known. */
typedef struct {
    char topic[FABRIC_STR_MAX + 1];
    uint32_t publishers;            /* nodes up with pub_events > 0 on it */
    uint32_t subscribers;           /* nodes up with recv_events > 0 on it */
    double out_eps, out_bps;        /* published events/s, bytes/s */
    double in_eps, in_bps;          /* received events/s, bytes/s */
    uint64_t pub_events, pub_bytes, recv_events, recv_bytes;   /* totals */
} fabric_topic_t;

/*  One (subscriber, publisher instance) pair from a subscriber's `sources`. */
typedef struct {
    char subscriber[FABRIC_STR_MAX + 1];
    uint64_t sub_inst;
    bool sub_up;
    char source[FABRIC_STR_MAX + 1];
    uint64_t src_inst;
    bool pub_known;                 /* the publisher's own heartbeat is in the model */
    uint64_t pub_seq;               /* the publisher's heartbeat `seq` (when pub_known) */
    uint64_t last_seq;              /* last seq the subscriber received from it */
    uint64_t seq_lag;               /* pub_seq - last_seq, 0 when not behind or unknown */
    int64_t time_lag_ms;            /* now - last_ts when behind, else 0 */
    uint64_t gaps;
} fabric_lag_t;

/*  Fabric totals. Rates sum the nodes that are up; counters sum every node still known. */
typedef struct {
    uint32_t nodes_up, nodes_down;
    double out_eps, in_eps;
    uint64_t published, received, dropped, gaps, repaired, handler_errors, dead_lettered,
        malformed;
    uint64_t heartbeats;            /* heartbeats the model accepted */
    uint64_t rejected;              /* heartbeats it rejected (malformed, table full) */
} fabric_totals_t;

/*  A self-contained copy of the model at one moment (fabric_model_snapshot). */
typedef struct {
    int64_t now_ms;                 /* the time it was taken at */
    size_t nnodes;
    fabric_node_t *nodes;           /* sorted by name, then inst */
    size_t ntopics;
    fabric_topic_t *topics;         /* sorted by topic */
    size_t nlags;
    fabric_lag_t *lags;             /* sorted by subscriber, then source */
    fabric_totals_t totals;
    size_t nhistory;                /* samples in history_*, oldest first */
    double history_out[FABRIC_HISTORY];
    double history_in[FABRIC_HISTORY];
} fabric_snapshot_t;

typedef struct fabric_model_t fabric_model_t;

/*  Creates an empty model. Returns NULL only when out of memory. The caller owns it. */
fabric_model_t *fabric_model_new(void);

/*  Destroys the model and sets *self_p to NULL. Safe on NULL and twice. */
void fabric_model_destroy(fabric_model_t **self_p);

/*  Feeds one `_weft.hb` payload (msgpack bytes, untrusted; not kept) received at now_ms.
    expect_inst, when not 0, is the envelope's `inst`: a payload whose `inst` differs is
    rejected (docs/protocol.md 5.1). A heartbeat from a known instance updates its row and
    computes its rates; a new instance gets a row. Also forgets instances silent for more than
    FABRIC_FORGET_MS (at most once a second), so memory stays bounded with no other call.
    Returns 0; WEFT_EMALFORMED (not one bounded msgpack map with a uint `inst`, or an `inst`
    mismatch); WEFT_ENOMEM (out of memory, or FABRIC_NODES_MAX instances already tracked).
    Every non-zero return is counted in the totals' `rejected`; the model is unchanged. */
int fabric_model_feed(fabric_model_t *self, const void *data, size_t size, uint64_t expect_inst,
                      int64_t now_ms);

/*  Advances the model to now_ms: forgets silent instances and appends one sample of the
    fabric's out/s and in/s to the rate history (keeps the last FABRIC_HISTORY). Call it once
    per display refresh. */
void fabric_model_tick(fabric_model_t *self, int64_t now_ms);

/*  Takes a snapshot as of now_ms (up/down and time lags are evaluated then; silent instances
    are forgotten first). Returns a new snapshot the caller owns (fabric_snapshot_destroy), or
    NULL when out of memory. */
fabric_snapshot_t *fabric_model_snapshot(fabric_model_t *self, int64_t now_ms);

/*  Number of instances the model currently tracks. */
size_t fabric_model_size(const fabric_model_t *self);

/*  Heartbeats accepted and rejected since the model was created. Either pointer may be NULL. */
void fabric_model_counts(const fabric_model_t *self, uint64_t *accepted, uint64_t *rejected);

/*  Frees a snapshot and everything in it, and sets *self_p to NULL. Safe on NULL and twice. */
void fabric_snapshot_destroy(fabric_snapshot_t **self_p);

/*  The node of a snapshot with this instance, or NULL. */
const fabric_node_t *fabric_snapshot_node(const fabric_snapshot_t *snap, uint64_t inst);

#ifdef __cplusplus
}
#endif

#endif

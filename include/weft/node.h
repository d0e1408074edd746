/*  weft/node.h - a node: the part of the fabric a service embeds.

    A node publishes events on an XPUB socket that connects to the SUB socket of every peer it
    knows, receives on one SUB socket of its own, serves the control protocol (PING, INFO,
    FETCH) on a ROUTER socket, and finds peers through zgossip. Everything that receives or
    answers runs on the node's own thread (an actor); weft_publish runs on the caller's thread.

    Ownership: weft_node_new returns a node the caller owns and frees with weft_node_destroy.
    Subscriptions (weft_sub_t) are owned by the node; weft_unsubscribe or node destruction frees
    them. Events passed to handlers are valid only for the duration of the call.
*/
#ifndef WEFT_NODE_H_INCLUDED
#define WEFT_NODE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "weft/config.h"
#include "weft/envelope.h"
#include "weft/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_node_t weft_node_t;
typedef struct weft_sub_t weft_sub_t;

/*  Optional envelope fields for weft_publish. Zero-initialise and set what you need; NULL or ""
    strings are left out of the envelope. */
typedef struct {
    const char *corr;                 /* correlation id */
    const char *trace;                /* trace id */
    const char *reply;                /* reply-to topic */
    const char *tenant;               /* tenant id */
    const char *ct;                   /* payload content type; default application/msgpack */
    uint32_t ver;                     /* payload schema version; 0 means 1 */
    const char *const *header_keys;   /* header_count keys ... */
    const char *const *header_values; /* ... and their values */
    size_t header_count;
} weft_meta_t;

/*  One received event, as a handler sees it. Valid only during the handler call. */
typedef struct {
    const char *topic;            /* NUL-terminated */
    const weft_envelope_t *env;   /* decoded envelope */
    const void *payload;          /* payload bytes (msgpack by convention) */
    size_t size;                  /* payload size */
    const uint8_t *envelope_raw;  /* the envelope frame as received (for archiving as is) */
    size_t envelope_size;
    /* Set by weft_event_fail; read by the node after the handler returns. */
    char error_code[64];
    char error_message[256];
} weft_event_t;

/*  A handler runs on the node's thread for each event whose topic starts with the
    subscription's prefix. Return 0 for success; on failure return weft_event_fail(...). A
    handler must not call weft_node_destroy on its own node. It may publish, subscribe and
    unsubscribe (including its own subscription). */
typedef int(weft_handler_fn)(weft_event_t *event, void *arg);

/*  Records a handler failure with a short machine-readable code ("db.timeout") and a printf-
    style message; both are truncated to fit. Returns WEFT_EHANDLER, so a handler can write
    `return weft_event_fail(ev, "db.timeout", "after %d ms", ms);`. */
int weft_event_fail(weft_event_t *event, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*  Where a subscription starts. */
typedef enum {
    WEFT_START_LIVE = 0,  /* events published from now on (at-most-once) */
    WEFT_START_OFFSET,    /* first the archive from from_offset, then live */
    WEFT_START_TIME,      /* first the archive from events received at since_ns, then live */
} weft_start_t;

/*  Options for weft_subscribe. Zero-initialise; NULL means all defaults (live).

    Catching up (start OFFSET or TIME): the subscription replays matching events from an
    archiver, then continues live without a gap or a duplicate, even while publishers keep
    publishing. Live events are buffered (bounded) while the archive is replayed; the switch
    happens once, for every source seen live, the replay has delivered everything before the
    first buffered live event; the merge is by (inst, seq), so each event is handled once and
    in seq order per source. If no archiver is found, or the archive does not reach the live
    stream within catchup_timeout_ms, the subscription goes live anyway and the missing
    events are counted as gaps. */
typedef struct {
    weft_start_t start;
    uint64_t from_offset;        /* WEFT_START_OFFSET: first archive offset (>= 1) */
    int64_t since_ns;            /* WEFT_START_TIME: receive time, ns since the epoch */
    const char *archiver;        /* archiver service endpoint; NULL: find role "archiver" */
    int catchup_timeout_ms;      /* default 10000 */
    size_t buffer_events;        /* live events held while catching up; default 100000 */

    /* Failure handling. A failed handler call is retried on this node (attempts, with
       exponential backoff and jitter, while later events keep flowing); when the attempts
       are spent the event is dead-lettered: sent with PUT to a DLQ node (role "dlq"),
       acknowledged, resent until acknowledged, idempotent on (event id, subscriber). The DLQ
       redelivers it later (REDELIVER on this node's control endpoint). A circuit breaker per
       subscription stops calling a handler that keeps failing: after breaker_failures
       failures within breaker_window_ms it opens and events are dead-lettered directly; after
       breaker_cooldown_ms one event is tried (half-open): success closes it. */
    const char *name;            /* subscription name, part of the subscriber id
                                    "<node name>/<name>"; default: the prefix ("*" for "") */
    int retry_attempts;          /* handler calls per event before dead-lettering; default 3 */
    int retry_backoff_ms;        /* wait before the 2nd call; doubles each time; default 100 */
    int retry_backoff_max_ms;    /* cap of that wait; default 5000 */
    double retry_jitter;         /* random fraction added to each wait, 0..1; default 0.2 */
    int breaker_failures;        /* default 20 (-1: no breaker) */
    int breaker_window_ms;       /* default 10000 */
    int breaker_cooldown_ms;     /* default 30000 */
    bool no_dead_letter;         /* when attempts are spent, drop (counted) instead */

    /* At-least-once delivery of live events: when a source's seq jumps (events dropped at a
       full queue, a reconnection), the missing range is fetched from the publisher's outbox,
       then from an archiver for what the outbox no longer holds; the source's later events
       are held back meanwhile, so this subscription sees each source's events in seq order.
       What neither holds is counted (unrepaired). Costs a round trip per jump; with a
       prefix, every seq the publisher filtered out is a jump. */
    bool repair;

    /* A durable named consumer: the subscription keeps a checkpoint (per source, the highest
       seq handled) in the node's state directory (node/state_dir, default ./weft-state), and
       after a restart catches up from the archive from that checkpoint, then goes live with
       repair on, skipping every event it already handled: each event is handled once across
       restarts (effectively once; after a crash, the events of the last checkpoint interval,
       at most 250 ms, may be handled again - see docs/operations.md). One process at a time
       may use a state directory. */
    const char *consumer;
} weft_sub_options_t;

/*  Counters of a node. All are totals since the node started. */
typedef struct {
    uint64_t published;       /* events accepted by weft_publish */
    uint64_t publish_errors;  /* weft_publish calls rejected (bad topic, too big, ...) */
    uint64_t received;        /* well-formed data events received (fabric topics excluded) */
    uint64_t delivered;       /* handler calls made */
    uint64_t dropped;         /* events dropped by this node (no matching handler, shutdown) */
    uint64_t gaps;            /* events detected missing from a source's seq */
    uint64_t repaired;        /* missing events later recovered */
    uint64_t unrepaired;      /* missing events no outbox or archive held any more */
    uint64_t handler_errors;  /* handler calls that returned failure */
    uint64_t dead_lettered;   /* events acknowledged by a DLQ */
    uint64_t dead_letter_pending; /* events waiting to be acknowledged by a DLQ (bounded) */
    uint64_t dead_letter_dropped; /* events that could not be dead-lettered (queue full, or
                                     no_dead_letter) */
    uint64_t retries;         /* local handler retries */
    uint64_t rate_limited;    /* events refused or dropped by a topic rate limit */
    uint64_t foreign;         /* messages from nodes of another fabric (fabric/name), ignored */
    uint64_t redelivered;     /* REDELIVER requests served */
    uint64_t malformed;       /* data messages rejected by the decoder */
    uint64_t ctl_requests;    /* control requests served */
    uint64_t ctl_errors;      /* control requests answered with ERR */
    uint64_t outbox_events;   /* events currently in the outbox */
    uint64_t outbox_bytes;    /* bytes currently in the outbox */
    uint64_t outbox_first_seq;/* oldest seq the outbox holds (0 when empty) */
    uint64_t last_seq;        /* last seq this node published */
    uint32_t peers_up;        /* peers whose heartbeat is recent */
    uint32_t peers_down;      /* peers silent for 3 heartbeats or more */
} weft_stats_t;

/*  Creates and starts a node called name (1..255 printable bytes; if NULL, the node/name
    setting or "node-<pid>"). config may be NULL (defaults, environment and $WEFT_CONFIG); the
    node copies what it needs, the caller keeps ownership of config. Binds its SUB and control
    endpoints, joins discovery, starts heartbeats. Returns NULL on failure and, if err is not
    NULL, stores the reason (WEFT_ECONFIG, WEFT_ENET, WEFT_EINVAL, WEFT_ENOMEM); the reason is
    also logged. */
weft_node_t *weft_node_new(const char *name, weft_config_t *config, int *err);

/*  Stops the node: leaves discovery, closes its sockets (pending outgoing messages are given
    node/linger ms), frees every subscription, and sets *self_p to NULL. Safe on NULL and twice.
    Must not be called from one of the node's own handlers. */
void weft_node_destroy(weft_node_t **self_p);

/*  Publishes one event. Thread-safe; never waits on the network: when no peer is connected or
    a peer's queue is full the event is not sent to it (it stays in the outbox, from which a
    receiver can FETCH it). topic must pass weft_topic_check and must not start with "_weft.".
    payload may be NULL when size is 0. meta may be NULL.
    Storm control: limits/topic_rates sets token buckets per topic prefix (the longest
    matching prefix applies); over its limit an event is refused with WEFT_ERATE (policy
    reject, the default) or discarded with return value 0 (policy drop); both are counted.
    Returns the event's seq (>= 1), 0 (dropped by a rate limit), or WEFT_ETOPIC,
    WEFT_ERESERVED, WEFT_ETOOBIG (payload over max_payload, or envelope over 64 KiB),
    WEFT_EINVAL (NULL node, bad meta), WEFT_ERATE, WEFT_ESTATE (node stopping). If id_out is not NULL the event id is copied there. */
int64_t weft_publish(weft_node_t *self, const char *topic, const void *payload, size_t size,
                     const weft_meta_t *meta, uint8_t id_out[WEFT_ID_SIZE]);

/*  Subscribes handler to every event whose topic starts with prefix ("" means all data topics;
    fabric topics are delivered only to prefixes that start with "_weft."). Several
    subscriptions may share a prefix; each gets every matching event. Thread-safe; callable from
    a handler. Returns a handle owned by the node, or NULL with *err set (WEFT_EINVAL for a bad
    prefix or options - a fabric prefix cannot catch up -, WEFT_ESTATE if the node is stopping,
    WEFT_ENOMEM). */
weft_sub_t *weft_subscribe(weft_node_t *self, const char *prefix, weft_handler_fn *handler,
                           void *arg, const weft_sub_options_t *options, int *err);

/*  Removes a subscription and sets *sub_p to NULL. After it returns the handler is not called
    again (when called from a handler, not after that handler returns). Returns WEFT_OK or
    WEFT_EINVAL (NULL or unknown handle). */
int weft_unsubscribe(weft_node_t *self, weft_sub_t **sub_p);

/*  Waits until every peer the node has learned of (through gossip or static connect) has
    completed its connection and sent its subscriptions, the node has heard from the gossip
    network (when it uses a seed held by another node), its own loopback connection is ready,
    and no new peer was learned for node/settle ms; at most timeout_ms. Peers whose endpoint
    refuses connections (exited nodes whose gossip tuples live on) are not waited for. Returns
    the number of ready peers (the node itself not counted), or WEFT_ETIMEOUT if the deadline
    passed first (events published now may miss some peers; see weft_node_readiness). */
int weft_node_wait_peers(weft_node_t *self, int timeout_ms);

/*  Current readiness: peers ready, and peers known and waited for (the node itself not
    counted). Either pointer may be NULL. Thread-safe. */
void weft_node_readiness(weft_node_t *self, int *ready, int *known);

/*  Waits until the node has received the heartbeat of a peer called name, at most timeout_ms.
    Returns WEFT_OK or WEFT_ETIMEOUT. */
int weft_node_wait_peer_named(weft_node_t *self, const char *name, int timeout_ms);

/*  Copies the node's counters into stats. Thread-safe. */
void weft_node_stats(weft_node_t *self, weft_stats_t *stats);

/*  The node's name, instance id, and bound endpoints ("tcp://127.0.0.1:PORT"). Strings are owned
    by the node and valid until it is destroyed. */
const char *weft_node_name(weft_node_t *self);
uint64_t weft_node_inst(weft_node_t *self);
const char *weft_node_sub_endpoint(weft_node_t *self);
const char *weft_node_ctl_endpoint(weft_node_t *self);
/*  The gossip endpoint this node bound (it holds the seed), or NULL. */
const char *weft_node_gossip_endpoint(weft_node_t *self);

/*  What a node knows of one peer (weft_node_find_peer). */
typedef struct {
    char name[WEFT_NAME_MAX + 1];
    char role[32];
    uint64_t inst;
    char sub[256];      /* SUB endpoint */
    char ctl[256];      /* control endpoint (PING, INFO, FETCH) */
    char svc[256];      /* role service endpoint (archiver, DLQ), "" if none */
    bool up;            /* its heartbeat is recent */
} weft_peer_info_t;

/*  Finds a peer that is up: by instance (inst != 0), else by role and/or name (NULL = any).
    Waits up to timeout_ms for one to appear. Thread-safe, but not from a handler when
    timeout_ms > 0. Returns WEFT_OK and fills out, or WEFT_ETIMEOUT / WEFT_ENOTFOUND. */
int weft_node_find_peer(weft_node_t *self, uint64_t inst, const char *role, const char *name,
                        int timeout_ms, weft_peer_info_t *out);

/*  Connects the node's publisher to the SUB endpoint of a peer it will not learn through gossip
    (static peer). Thread-safe. Returns WEFT_OK, WEFT_EINVAL or WEFT_ENET. */
int weft_node_connect(weft_node_t *self, const char *sub_endpoint);

#ifdef __cplusplus
}
#endif

#endif

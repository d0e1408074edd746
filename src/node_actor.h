/*  node_actor.h - the state of a node's own thread, shared by the files that run on it:
    node_actor.c (the loop: receive, dispatch, control, peers, heartbeats) and node_catchup.c
    (subscriptions that start from an archive and then continue live). Private.
*/
#ifndef WEFT_NODE_ACTOR_H_INCLUDED
#define WEFT_NODE_ACTOR_H_INCLUDED

#include <czmq.h>

#include "ctl_proto.h"
#include "discovery.h"
#include "node_internal.h"
#include "node_stats.h"
#include "peers.h"
#include "weft/control.h"

typedef struct catchup_t catchup_t;
typedef struct durable_t durable_t;

#define SOURCES_MAX 16384       /* sources tracked for seq gaps */
#define HB_SOURCES 64           /* sources listed in a heartbeat (most recently heard) */
#define RECV_BURST 1024         /* events handled per wake-up before looking at other sockets */
#define LOG_PER_SECOND 10       /* rate limit for logs caused by the network */

struct weft_sub_t {
    char prefix[WEFT_TOPIC_MAX + 1];
    size_t len;
    bool fabric;                /* prefix starts with "_weft." */
    weft_handler_fn *handler;
    void *arg;
    bool dead;                  /* unsubscribed during dispatch; freed after it */
    uint64_t id;                /* names the subscription in messages from other threads */
    catchup_t *catchup;         /* while catching up from an archive, else NULL */
    /* failure handling (node_dlq.c) */
    char name[WEFT_TOPIC_MAX + 1]; /* subscription name; subscriber id = "<node>/<name>" */
    int retry_attempts, retry_backoff_ms, retry_backoff_max_ms;
    double retry_jitter;
    int breaker_failures, breaker_window_ms, breaker_cooldown_ms;
    bool no_dead_letter;
    bool repair;                /* at-least-once: gaps are repaired, events held in order */
    durable_t *durable;         /* durable consumer: its checkpoint, else NULL */
    int64_t start_ns;           /* wall clock (ns) from which events are its: now, or where
                                   its catch-up starts; a new source's early events published
                                   before are not delivered to it (DISPATCH_EARLY) */
    int breaker;                /* BREAKER_CLOSED, _OPEN, _HALF_OPEN */
    int64_t fail_ms[64];        /* ring of recent failure times (ms) */
    unsigned fail_next;
    int64_t opened_ms;          /* when the breaker opened */
    bool probing;               /* half-open: one trial call is under way */
    uint64_t failures, dead_lettered, retried;
};

enum { BREAKER_CLOSED = 0, BREAKER_OPEN, BREAKER_HALF_OPEN };

typedef struct {
    uint64_t inst;              /* the source instance */
    uint64_t delivered;         /* repair: highest seq settled for repairing subscriptions */
    bool repairing;             /* repair: a FETCH for this source is under way */
    zlistx_t *held;             /* repair: live events held back meanwhile (blobs) */
    uint64_t hb_seq;            /* repair: the seq its previous heartbeat announced */
    uint64_t last_seq;          /* highest seq seen from this instance */
    int64_t last_ms;            /* monotonic ms of the last event */
    int64_t last_ts;            /* publish ts of the last event */
    uint64_t gaps;              /* events found missing from this source */
    uint64_t early_until;       /* repair: the seqs below this one being repaired are a new
                                   source's early events, each delivered only to the
                                   subscriptions it belongs to (DISPATCH_EARLY); 0: none */
    int64_t awaiting_ms;        /* repair: since when a new source's early events wait for
                                   its control endpoint (its heartbeat), 0 when not */
    uint64_t await_next;        /* ... and the first seq heard from it */
    bool tail_wanted;           /* repair: its node went down while a repair of it was under
                                   way; its tail is asked of an archive once that is settled */
    char name[WEFT_NAME_MAX + 1]; /* its src name */
    bool foreign;               /* of another fabric (its heartbeat said): events dropped */
} source_t;

/*  A control PING to a down peer, waiting for its answer (node_probe.c). */
#define PROBES_MAX 8
typedef struct {
    uint64_t inst;              /* the peer probed */
    weft_ctl_t *ctl;            /* DEALER to its control endpoint */
    uint64_t id;                /* request id of the PING */
    int64_t deadline;           /* monotonic ms; no answer by then: given up */
} node_probe_t;

typedef struct {
    weft_node_t *node;
    zsock_t *pipe;
    zsock_t *sub;               /* SUB, bound */
    zsock_t *ctl;               /* ROUTER, bound */
    zsock_t *monitor;           /* PAIR, XPUB socket events */
    discovery_t *discovery;     /* NULL without gossip */
    peers_t *peers;
    zlistx_t *subs;             /* weft_sub_t, in subscription order */
    int full_subs;              /* subscriptions to "" (see gap accounting) */
    bool dispatching;
    bool sweep;                 /* some subs are dead */
    zhashx_t *sources;          /* inst hex -> source_t */
    source_t *last_source;      /* cache: the source of the previous event */
    ctl_streams_t *streams;
    topic_table_t *recv_topics; /* events received per topic */
    latency_hist_t latency;     /* publish ts -> receipt, data events */
    msgpack_sbuffer scratch;
    int64_t next_hb;
    int64_t next_tick;
    int64_t next_seed_check;    /* discovery housekeeping (seed take-over) */
    int64_t log_window;         /* second of the current log budget */
    int log_budget;
    uint64_t log_suppressed;
    bool terminated;
    uint64_t next_sub_id;
    zsock_t *catchup_in;        /* PULL: events replayed for catching-up subscriptions */
    char catchup_endpoint[64];
    zlistx_t *retries;          /* retry_item_t: failed events waiting for their next call */
    zlistx_t *letters;          /* letter_t: dead letters waiting for a DLQ's acknowledgement */
    zsock_t *dlq;               /* DEALER to the DLQ's service endpoint, or NULL */
    char dlq_endpoint[256];
    uint64_t dlq_next_id;       /* request ids of PUTs */
    int64_t dlq_warned_ms;      /* last "no DLQ reachable" warning */
    int repair_subs;            /* subscriptions with repair on */
    int repair_awaiting;        /* sources whose awaiting_ms is set */
    void *state_env;            /* MDB_env of node/state_dir, opened for durable consumers */
    unsigned state_dbi;
    int state_lock;             /* lock file descriptor of the state directory, -1 */
    struct repairer_t *repairer; /* its thread (node_repair.c), started on first use */
    node_probe_t probes[PROBES_MAX]; /* PINGs to down peers under way (node_probe.c) */
    int nprobes;
} self_t;

/*  Which subscriptions a dispatch goes to: all, those without repair, those with repair, or
    those with repair that an early event of a new source belongs to (published since the
    subscription's start_ns, or of a source its durable checkpoint already follows). */
enum { DISPATCH_ALL = 0, DISPATCH_PLAIN, DISPATCH_REPAIR, DISPATCH_EARLY };


/*  Calls a handler once and counts it; copies the failure code and message out. Returns the
    handler's result. */
int node_actor_invoke(self_t *self, weft_sub_t *sub, const char *topic,
                      const weft_envelope_t *env, const uint8_t *envelope_raw,
                      size_t envelope_size, const void *payload, size_t size, char *code,
                      size_t code_cap, char *message, size_t message_cap);

/*  Delivers an event to one subscription: breaker check, call, then retry/dead-letter on
    failure. */
void node_actor_call(self_t *self, weft_sub_t *sub, const char *topic,
                     const weft_envelope_t *env, const uint8_t *envelope_raw,
                     size_t envelope_size, const void *payload, size_t size);

/*  Connects the publisher to a peer's SUB endpoint (no-op when connected, when it has none,
    or when it is this node), or disconnects it (no-op when not connected). */
void node_actor_peer_connect(self_t *self, peer_t *p);
void node_actor_peer_disconnect(self_t *self, peer_t *p);

/* ---- probes: reaching down peers again (node_probe.c) --------------------------------- */

/*  Starts the PINGs that are due to down, disconnected peers (called from the peers tick). */
void node_probe_tick(self_t *self, int64_t now_ms);
/*  Reads the answers that arrived (never waits): the same instance is connected again,
    another instance at its endpoint makes the record forgotten; unanswered probes end at
    their deadline. */
void node_probe_poll(self_t *self, int64_t now_ms);
/*  Ends every probe (node stop). */
void node_probe_stop(self_t *self);

/*  The tracking record of a source instance, or NULL. */
source_t *node_actor_source(self_t *self, uint64_t inst);

/*  Looks a subscription up by id (NULL when it is gone). */
weft_sub_t *node_actor_sub_by_id(self_t *self, uint64_t id);

/* ---- failures: retries, circuit breaker, dead letters (node_dlq.c) --------------------- */

/*  Sets a subscription's failure policy from its options (NULL: defaults). */
void node_dlq_sub_init(weft_sub_t *sub, const weft_sub_options_t *options,
                       const char *node_name);

/*  Whether the breaker lets the handler be called now; when it does not, the event must be
    dead-lettered instead (node_dlq_failed with no call). */
bool node_dlq_breaker_allows(self_t *self, weft_sub_t *sub, int64_t now_ms);

/*  Records the outcome of a handler call: success closes a half-open breaker; failure is
    retried later or dead-lettered. attempt = 1 for the first call. Returns true when the
    event is settled (handled, dead-lettered or dropped), false when a retry is scheduled. */
bool node_dlq_outcome(self_t *self, weft_sub_t *sub, bool ok, uint32_t attempt,
                      const char *topic, size_t topic_len, const uint8_t *envelope_raw,
                      size_t envelope_size, const void *payload, size_t size, const char *code,
                      const char *message);

/*  Runs due retries, sends and resends dead letters, reads acknowledgements. */
void node_dlq_tick(self_t *self, int64_t now_ms);
void node_dlq_handle_acks(self_t *self);

/*  Serves REDELIVER on the control endpoint. */
void node_dlq_redeliver(self_t *self, ctl_request_t *req);

/*  Heartbeat section "subs": [[subscriber, breaker, failures, dead_lettered], ...]. */
void node_dlq_pack_subs(self_t *self, msgpack_packer *pk);

void node_dlq_start(self_t *self);
void node_dlq_stop(self_t *self);

/* ---- durable consumers (node_durable.c) ------------------------------------------------- */

/*  Opens the checkpoint of consumer `name` for sub; *since_ns is where a catch-up should start
    (0: no checkpoint yet). Returns 0 or an error (state directory unusable or in use). */
int node_durable_open(self_t *self, weft_sub_t *sub, const char *name, int64_t *since_ns);
bool node_durable_seen(weft_sub_t *sub, const weft_envelope_t *env);
/*  Whether the checkpoint follows source inst; if so *mark is the seq below which (and at
    which) everything of it is settled. */
bool node_durable_mark(const weft_sub_t *sub, uint64_t inst, uint64_t *mark);
void node_durable_record(weft_sub_t *sub, const weft_envelope_t *env);
void node_durable_flush(self_t *self);
void node_durable_close(self_t *self, weft_sub_t *sub);
void node_durable_stop(self_t *self);

/* ---- gap repair (node_repair.c) --------------------------------------------------------- */

/*  A live data event from src, for the node's repairing subscriptions: delivered now, held
    back while a repair of src is under way, or starting one when its seq jumps. */
void node_repair_live(self_t *self, source_t *src, const char *topic, size_t topic_len,
                      const weft_envelope_t *env, const zmq_msg_t *env_frame,
                      const void *payload, size_t size);

/*  A heartbeat of a source announced seq: the tail of a burst that lost its last events
    shows only here. Repairs what is still missing one heartbeat later. */
void node_repair_heartbeat(self_t *self, uint64_t inst, uint64_t seq);
/*  A peer went down (silent for down_beats heartbeats): the last events it published before
    dying may never have reached us, and nothing will announce them. Asks an archiver for
    whatever it holds of that source past what was delivered (no-op without repairing
    subscriptions, without an archiver, or while a repair of it is under way). */
void node_repair_peer_down(self_t *self, uint64_t inst);
/*  Gives up waiting for the heartbeat of a new source whose early events wait (after
    peers/down_beats heartbeat intervals): what was held is delivered without them. */
void node_repair_tick(self_t *self, int64_t now_ms);

/*  Handles a message of the repair thread (arriving on catchup_in with id 0). */
void node_repair_handle(self_t *self, zmsg_t *msg);

/*  Frees a source's repair state (held events). */
void node_repair_source_free(source_t *src);

void node_repair_stop(self_t *self);

/*  Dispatch of one event to a class of subscriptions (DISPATCH_*); returns how many got it. */
int node_actor_dispatch(self_t *self, const char *topic, size_t topic_len, bool fabric,
                        const weft_envelope_t *env, const uint8_t *env_raw, size_t env_size,
                        const void *payload, size_t size, int which);

/* ---- catching up (node_catchup.c) ------------------------------------------------------- */

/*  Starts catching up sub from the archive as options say. Returns WEFT_OK, or WEFT_EINVAL
    (fabric prefix) / WEFT_ENOMEM. The subscription buffers its live events meanwhile. */
int catchup_start(self_t *self, weft_sub_t *sub, const weft_sub_options_t *options);

/*  A live event for a subscription that is still catching up: buffered (bounded). */
void catchup_buffer(self_t *self, weft_sub_t *sub, const char *topic, size_t topic_len,
                    const weft_envelope_t *env, const uint8_t *envelope_raw,
                    size_t envelope_size, const void *payload, size_t size);

/*  Handles one message from a catch-up thread (on self->catchup_in). */
void catchup_handle(self_t *self);

/*  Periodic check: gives up waiting for the archive after the catch-up timeout. */
void catchup_tick(self_t *self, int64_t now);

/*  Stops a subscription's catch-up thread and frees its state (unsubscribe, node stop). */
void catchup_stop(self_t *self, weft_sub_t *sub);

#endif

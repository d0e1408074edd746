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

typedef struct catchup_t catchup_t;

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
};

typedef struct {
    uint64_t inst;              /* the source instance */
    uint64_t last_seq;          /* highest seq seen from this instance */
    int64_t last_ms;            /* monotonic ms of the last event */
    int64_t last_ts;            /* publish ts of the last event */
    uint64_t gaps;              /* events found missing from this source */
    char name[WEFT_NAME_MAX + 1]; /* its src name */
} source_t;

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
} self_t;


/*  Calls one subscription's handler with an event and counts the outcome. */
void node_actor_call(self_t *self, weft_sub_t *sub, const char *topic,
                     const weft_envelope_t *env, const uint8_t *envelope_raw,
                     size_t envelope_size, const void *payload, size_t size);

/*  Looks a subscription up by id (NULL when it is gone). */
weft_sub_t *node_actor_sub_by_id(self_t *self, uint64_t id);

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

/*  node_internal.h - the node object shared by the publish path (node.c, any thread) and the
    node's actor thread (node_actor.c). Fields are grouped by who may touch them:

      - immutable after weft_node_new returns: configuration, names, endpoints;
      - under pub_lock: the XPUB socket, seq, the envelope scratch buffer, the outbox;
      - atomics: counters, read by anyone, written by the owner of the event;
      - the actor's own state lives in node_actor.c and is reached only through the pipe.
*/
#ifndef WEFT_NODE_INTERNAL_H_INCLUDED
#define WEFT_NODE_INTERNAL_H_INCLUDED

#include <czmq.h>
#include <pthread.h>
#include <stdatomic.h>

#include "node_stats.h"
#include "outbox.h"
#include "weft/node.h"
#include "weft/service.h"

#define WEFT_ROLE_MAX 31
#define WEFT_ENDPOINT_MAX 255

/*  Counters, one atomic each, so weft_node_stats needs no lock. */
typedef struct {
    atomic_uint_fast64_t published, publish_errors, received, delivered, dropped, gaps, repaired,
        handler_errors, dead_lettered, malformed, ctl_requests, ctl_errors, dead_letter_pending,
        dead_letter_dropped, retries, redelivered, unrepaired, rate_limited, foreign;
    atomic_uint_fast32_t peers_up, peers_down;
} node_counters_t;

/*  Readiness as the actor last computed it, for weft_node_wait_peers. */
typedef struct {
    atomic_int known;          /* peer endpoints to wait for (own loopback excluded) */
    atomic_int ready;          /* of those, connected with subscriptions received */
    atomic_bool self_ready;    /* the loopback connection is ready (or loopback is off) */
    atomic_bool gossip_heard;  /* a tuple came from the gossip network (or no gossip client) */
    atomic_int_fast64_t last_learned_ms; /* monotonic ms of the last new peer */
} node_readiness_t;


#define RATE_BUCKETS_MAX 32

/*  A token bucket: up to `burst` events at once, refilled at `rate` per second. */
typedef struct {
    char prefix[WEFT_TOPIC_MAX + 1];
    size_t len;
    double rate, burst, tokens;
    int64_t last_ns;
} rate_bucket_t;

struct weft_node_t {
    /* immutable after start */
    char name[WEFT_NAME_MAX + 1];
    char role[WEFT_ROLE_MAX + 1];
    char fabric[WEFT_FABRIC_MAX + 1]; /* fabric/name: peers of another fabric are ignored */
    uint64_t inst;
    uint8_t env_prefix[320];       /* envelope bytes up to seq's value: v, src, inst (envelope.c) */
    size_t env_prefix_len;
    int64_t started_ms;            /* zclock_time at start */
    size_t max_payload;
    int heartbeat_ms;
    int down_beats;
    int disconnect_after_ms;
    int settle_ms;
    int linger_ms;
    bool loopback;
    bool verbose;
    char sub_endpoint[WEFT_ENDPOINT_MAX + 1];
    char ctl_endpoint[WEFT_ENDPOINT_MAX + 1];
    char gossip_endpoint[WEFT_ENDPOINT_MAX + 1]; /* "" unless this node holds the seed */
    char svc_endpoint[WEFT_ENDPOINT_MAX + 1];    /* role service endpoint (node/service) */
    weft_config_t *config;         /* private copy of the caller's layers */

    /* under pub_lock */
    pthread_mutex_t pub_lock;
    zsock_t *pub;                  /* XPUB, verbose, immediate */
    uint64_t seq;                  /* last data seq published */
    uint8_t env_buf[WEFT_ENVELOPE_MAX];
    outbox_t *outbox;
    topic_table_t *pub_topics;     /* events published per topic */
    uint64_t hb_subs_seen;         /* "_weft.hb" subscriptions received on the XPUB */
    rate_bucket_t buckets[RATE_BUCKETS_MAX]; /* storm control (limits/topic_rates) */
    size_t nbuckets;
    bool rate_drop;                /* policy drop (else reject) */
    weft_heartbeat_extra_fn *hb_extra; /* role figures for heartbeats, or NULL */
    void *hb_extra_arg;
    bool stopping;

    node_counters_t counters;
    node_readiness_t readiness;

    zactor_t *actor;
    pthread_mutex_t api_lock;      /* one caller at a time on the actor's pipe */
    pthread_t actor_thread;        /* to recognise calls made from handlers */
    atomic_bool actor_running;
    void *actor_self;              /* the actor's state, for calls made on its own thread */
};

/*  Publishes an event with the given seq (0 for fabric topics, which skip the outbox) under
    pub_lock. Used by weft_publish and by the actor for heartbeats. Returns seq or an error. */
int64_t node_publish_locked(weft_node_t *self, const char *topic, size_t topic_len,
                            const void *payload, size_t size, const weft_meta_t *meta,
                            bool fabric, uint8_t id_out[WEFT_ID_SIZE]);

/*  Connects / disconnects the XPUB to a peer's SUB endpoint (takes pub_lock). */
int node_pub_connect(weft_node_t *self, const char *endpoint);
int node_pub_disconnect(weft_node_t *self, const char *endpoint);

/*  Reads pending subscription messages from the XPUB (takes pub_lock) so they never pile up,
    counting "_weft.hb" subscriptions for readiness. Returns the running count. */
uint64_t node_pub_drain_subscriptions(weft_node_t *self);

/*  The actor body (zactor_fn); args is the weft_node_t. */
void node_actor(zsock_t *pipe, void *args);

/*  Subscription calls on the actor thread (from a handler) or via the pipe (other threads). */
weft_sub_t *node_actor_subscribe(void *actor_self, const char *prefix, weft_handler_fn *handler,
                                 void *arg, const weft_sub_options_t *options, int *err);
int node_actor_unsubscribe(void *actor_self, weft_sub_t *sub);
int node_actor_find_peer(void *actor_self, uint64_t inst, const char *role, const char *name,
                         weft_peer_info_t *out);

static inline int64_t node_mono_ms(void)
{
    return zclock_mono();
}

#endif

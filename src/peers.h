/*  peers.h - what a node knows of the other nodes of the fabric.

    A peer is keyed by its instance id. It is learned from a gossip tuple (name, role, SUB and
    control endpoints) or from its heartbeat. The table also tracks the SUB endpoints the node's
    publisher is connected to (several peer records may share one, e.g. after a restart on a
    fixed port), so an endpoint is connected once and disconnected when its last user goes.

    Gossip tuple (czmq zgossip key/value strings):
        key   = instance id as 16 lower-case hex digits
        value = "weft/1 name=<name> role=<role> sub=<endpoint> ctl=<endpoint>[ svc=<endpoint>]
                 [ fabric=<name>]"
    Fields are separated by single spaces; values contain no spaces. Unknown fields are ignored;
    svc (the endpoint of a role's service, e.g. the archiver's) is optional.

    Owned and used by the node's actor thread only.
*/
#ifndef WEFT_PEERS_H_INCLUDED
#define WEFT_PEERS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "weft/envelope.h"

typedef enum { PEER_NEW = 0, PEER_UP, PEER_DOWN } peer_state_t;

typedef struct {
    uint64_t inst;
    char name[WEFT_NAME_MAX + 1];
    char role[32];
    char sub[256];          /* SUB endpoint ("" if only heard through a heartbeat) */
    char ctl[256];          /* control endpoint */
    char svc[256];          /* role service endpoint, "" if none */
    peer_state_t state;
    int64_t learned_ms;     /* monotonic ms when first learned */
    int64_t last_hb_ms;     /* monotonic ms of the last heartbeat, 0 = none yet */
    bool connected;         /* our publisher is connected to sub */
    int64_t next_probe_ms;  /* down: when to PING its control endpoint next (node_probe.c) */
    int probe_gap_ms;       /* down: the current interval between those PINGs */
} peer_t;

typedef struct peers_t peers_t;

peers_t *peers_new(void);
void peers_destroy(peers_t **self_p);

/*  Finds a peer, or NULL. */
peer_t *peers_lookup(peers_t *self, uint64_t inst);

/*  Adds a peer if unknown (fields copied; NULL strings leave fields as they are), or fills in
    empty fields of a known one. Sets *is_new. Returns the record, or NULL when the table is
    full (4096 peers). */
peer_t *peers_learn(peers_t *self, uint64_t inst, const char *name, const char *role,
                    const char *sub, const char *ctl, const char *svc, int64_t now_ms,
                    bool *is_new);

/*  Removes a peer record. */
void peers_forget(peers_t *self, uint64_t inst);

/*  Iteration: first/next over all records (do not forget during iteration). */
peer_t *peers_first(peers_t *self);
peer_t *peers_next(peers_t *self);
size_t peers_size(peers_t *self);

/*  Endpoint reference counting. peers_endpoint_ref returns true when this is the first user
    (the caller must connect); peers_endpoint_unref returns true when it was the last (the
    caller must disconnect). */
bool peers_endpoint_ref(peers_t *self, const char *endpoint);
bool peers_endpoint_unref(peers_t *self, const char *endpoint);
/*  Marks an endpoint's connection handshake as done (true) or lost (false). */
void peers_endpoint_handshake(peers_t *self, const char *endpoint, bool done);
/*  Marks an endpoint whose connection attempt was refused (nobody listens there any more, e.g.
    a node that exited but whose gossip tuple lives on). It stops counting as a peer to wait
    for until it completes a handshake. */
void peers_endpoint_refused(peers_t *self, const char *endpoint);
/*  Counts endpoints the node should wait for (connected and not refused), and of those the
    ones that completed the handshake; `self_endpoint` (the node's own SUB, may be NULL) is left
    out of both and reported in *self_done. */
void peers_endpoint_counts(peers_t *self, const char *self_endpoint, int *waiting,
                           int *handshaked, bool *self_done);

/*  Formats this node's gossip tuple value. Returns 0, or -1 if it does not fit. */
int peers_tuple_format(char *out, size_t cap, const char *fabric, const char *name,
                       const char *role, const char *sub, const char *ctl, const char *svc);

/*  Parses a gossip tuple. fabric (PEERS_FABRIC_CAP bytes) gets the tuple's fabric, "weft"
    when it has none. Returns 0, or -1 for a tuple that is not a weft/1 node tuple (other
    applications may share the gossip network; such tuples are ignored). */
#define PEERS_FABRIC_CAP (WEFT_FABRIC_MAX + 1)
int peers_tuple_parse(const char *key, const char *value, uint64_t *inst, char *fabric,
                      char *name, char *role, char *sub, char *ctl, char *svc);

#endif

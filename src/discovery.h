/*  discovery.h - finding peers without a broker, with czmq zgossip.

    Each node runs one zgossip actor. It connects to the configured seeds and publishes one
    tuple describing itself (see peers.h for the tuple format); zgossip forwards every tuple to
    every node, so each node learns every other node's SUB and control endpoints.

    Seeds: gossip/seeds (comma-separated, default tcp://127.0.0.1:5670). gossip/bind "auto"
    makes the node bind the first seed itself when that seed is on this host and the port is
    free, so on a single machine the first node to start becomes the seed and no configuration
    is needed; a node keeps checking, so when the seed's holder goes away another node takes
    the seed over.

    Stock zgossip has two gaps this module closes:
      - its server forgets a client silent for one second and stops forwarding to it: client
        expiry is switched off;
      - a client whose seed restarted is unknown to the new seed and never hears of new nodes:
        a watcher connection to each seed notices the reconnection, and the node then rejoins
        (a fresh gossip actor says HELLO again and re-announces the node);
      - its actor ends for good on the first message it cannot parse (any stray client on the
        seed's port, or whatever listens on a dead seed's port): the node never blocks on the
        actor's pipe, notices its end and starts a fresh one, on the same port when it held a
        seed.
*/
#ifndef WEFT_DISCOVERY_H_INCLUDED
#define WEFT_DISCOVERY_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>

typedef struct discovery_t discovery_t;

/*  Starts gossip for a node. seeds "none" (or "") and bind "auto"/"none" disables it: returns
    NULL with *err = 0. Returns NULL with *err < 0 when an explicit bind fails. */
discovery_t *discovery_new(const char *name, const char *seeds, const char *bind, int *err);

void discovery_destroy(discovery_t **self_p);

/*  The gossip endpoint this node holds ("" if none). Changes when the node takes over a seed. */
const char *discovery_bound(discovery_t *self);

/*  True when some seed is held by another node (so there is something to hear from). */
bool discovery_has_remote_seed(discovery_t *self);

/*  Announces this node (key = instance id in hex, value = tuple); kept for rejoins. */
void discovery_announce(discovery_t *self, const char *key, const char *value);

/*  Sockets to poll: learned tuples, and the seed watcher's events. */
zsock_t *discovery_socket(discovery_t *self);
zsock_t *discovery_watch_socket(discovery_t *self);

/*  Reads one message from the gossip actor. Returns 0 with *key and *value (caller frees with
    zstr_free) for a delivered tuple, -1 for anything else. */
int discovery_recv(discovery_t *self, char **key, char **value);

/*  Handles one watcher event; rejoins the gossip network when a seed came back after a
    disconnection. Returns true when it rejoined. */
bool discovery_handle_watch(discovery_t *self);

/*  Housekeeping, every second or two: takes over a free local seed (gossip/bind auto) and
    retries a bind that failed. Returns true when the bound endpoint changed. */
bool discovery_tick(discovery_t *self);

#endif

/*  discovery.h - finding peers without a broker, with czmq zgossip.

    Each node runs one zgossip actor. It connects to the configured seeds and publishes one
    tuple describing itself (see peers.h for the tuple format); zgossip forwards every tuple to
    every node, so each node learns every other node's SUB and control endpoints.

    Seeds: gossip/seeds (comma-separated, default tcp://127.0.0.1:5670). gossip/bind "auto"
    makes the node bind the first seed itself when that seed is on this host and the port is
    free, so on a single machine the first node to start becomes the seed and no configuration
    is needed. Client expiry in the zgossip server is switched off: stock zgossip forgets a
    client that stays silent for one second and then stops forwarding tuples to it.
*/
#ifndef WEFT_DISCOVERY_H_INCLUDED
#define WEFT_DISCOVERY_H_INCLUDED

#include <czmq.h>

typedef struct discovery_t discovery_t;

/*  Starts gossip for a node. seeds "none" (or "") disables it: returns NULL with *err = 0.
    bound_out (cap bytes) receives the endpoint bound when this node holds a seed, else "".
    Returns NULL with *err < 0 when gossip could not start. */
discovery_t *discovery_new(const char *name, const char *seeds, const char *bind,
                           char *bound_out, size_t cap, int *err);

void discovery_destroy(discovery_t **self_p);

/*  Announces this node (key = instance id in hex, value = tuple). */
void discovery_announce(discovery_t *self, const char *key, const char *value);

/*  The socket to poll for learned tuples. */
zsock_t *discovery_socket(discovery_t *self);

/*  Reads one message from the gossip actor. Returns 0 with *key and *value (caller frees with
    zstr_free) for a delivered tuple, -1 for anything else. */
int discovery_recv(discovery_t *self, char **key, char **value);

#endif

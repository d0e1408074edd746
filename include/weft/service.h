/*  weft/service.h - what a node that offers a service (the archiver, the DLQ) adds to itself.

    A service node is an ordinary node (weft/node.h) that also binds a ROUTER endpoint of its
    own for its commands, announces that endpoint to the fabric (gossip tuple and heartbeat key
    "svc"), and adds its own figures to its heartbeats.
*/
#ifndef WEFT_SERVICE_H_INCLUDED
#define WEFT_SERVICE_H_INCLUDED

#include <msgpack.h>

#include "weft/node.h"

#ifdef __cplusplus
extern "C" {
#endif

/*  Adds role figures to each heartbeat: called on the node's thread while its heartbeat map is
    being packed; must pack exactly *count key/value pairs into pk and set *count (at most 16).
    Keep it cheap: it runs once per heartbeat/interval. */
typedef void(weft_heartbeat_extra_fn)(void *arg, msgpack_packer *pk, uint32_t *count);

/*  Installs (or with fn NULL removes) the heartbeat hook. Thread-safe. */
void weft_node_set_heartbeat_extra(weft_node_t *self, weft_heartbeat_extra_fn *fn, void *arg);

/*  Publishes a fabric event (topic must start with "_weft.", e.g. "_weft.dlq.parked"): not
    sequenced (seq 0), not kept in the outbox. Thread-safe. Returns 0 or WEFT_ETOPIC,
    WEFT_ETOOBIG, WEFT_ESTATE. */
int weft_publish_fabric(weft_node_t *self, const char *topic, const void *payload, size_t size);

#ifdef __cplusplus
}
#endif

#endif

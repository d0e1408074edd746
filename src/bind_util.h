/*  bind_util.h - how weft binds its sockets to ephemeral ports. Private.

    zsock_bind gives "tcp://host:*" the lowest free port from 49152 up, so the port of a node
    that just died is handed out again at once, to whatever process binds next, and the dead
    node's peers (reconnecting, probing) reach that process. Every weft socket bound to an
    ephemeral port (SUB, control, gossip seed, archiver and DLQ service) therefore asks czmq to
    start its search at a random port of the same range ("tcp://host:!").
*/
#ifndef WEFT_BIND_UTIL_H_INCLUDED
#define WEFT_BIND_UTIL_H_INCLUDED
#include <stddef.h>

/*  Writes to out (cap bytes) the endpoint to bind for `endpoint`: "tcp://host:*" becomes
    "tcp://host:!", anything else is copied unchanged. Returns out. */
const char *bind_util_endpoint(const char *endpoint, char *out, size_t cap);

#endif

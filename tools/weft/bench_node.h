/*  bench_node.h - a weft node set up the way the benchmarks that publish measure it (`weft
    bench pubsub`, `weft bench archive`): no gossip, no loopback, no linger, the run's HWMs and
    static peers, so that nothing but the benchmark's own traffic reaches it.
*/
#ifndef WEFT_BENCH_NODE_H_INCLUDED
#define WEFT_BENCH_NODE_H_INCLUDED

#include "weft.h"

/*  A node called name with gossip/seeds and gossip/bind none, node/loopback 0, node/role
    "bench", node/linger 0, net/sndhwm and net/rcvhwm hwm, and peers/connect connect (when not
    NULL). Returns the node (the caller owns it), or NULL with *err set. */
weft_node_t *bench_node_new(const char *name, int hwm, const char *connect, int *err);

#endif

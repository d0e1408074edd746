/*  bench_node.c - the benchmarks' weft node (bench_node.h). */
#include "bench_node.h"

#include <stdio.h>

weft_node_t *bench_node_new(const char *name, int hwm, const char *connect, int *err)
{
    weft_config_t *cfg = weft_config_new();
    char hwm_text[32];
    snprintf(hwm_text, sizeof(hwm_text), "%d", hwm);
    int rc = cfg ? WEFT_OK : WEFT_ENOMEM;
    const char *kv[][2] = {{"gossip/seeds", "none"}, {"gossip/bind", "none"},
                           {"node/loopback", "0"},   {"node/role", "bench"},
                           {"node/linger", "0"},     {"net/sndhwm", hwm_text},
                           {"net/rcvhwm", hwm_text}, {"peers/connect", connect}};
    for (size_t i = 0; rc == WEFT_OK && i < sizeof(kv) / sizeof(kv[0]); i++)
        if (kv[i][1])
            rc = weft_config_set(cfg, kv[i][0], kv[i][1]);
    weft_node_t *node = NULL;
    if (rc == WEFT_OK)
        node = weft_node_new(name, cfg, &rc);
    weft_config_destroy(&cfg);
    if (!node)
        *err = rc;
    return node;
}

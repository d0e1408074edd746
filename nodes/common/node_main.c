/*  node_main.c - node options, logging, the start line's gossip seed, the ready file and the
    wait for a signal, for the mains of the service nodes (node_main.h). */
#include "node_main.h"

#include <czmq.h>
#include <stdio.h>
#include <string.h>

const char *node_main_help =
    "node options:\n"
    "  --fabric NAME         the fabric to join (default weft; others are ignored)\n"
    "  --seed ENDPOINTS      gossip seeds, comma-separated, or none (default tcp://127.0.0.1:5670)\n"
    "  --gossip-bind EP      bind a gossip seed: endpoint, auto or none (default auto)\n"
    "  --connect ENDPOINT    static peer SUB endpoint (repeatable; comma-separated list allowed)\n"
    "  --bind ENDPOINT       where the SUB socket binds (default tcp://127.0.0.1:*)\n"
    "  --config FILE         ZPL configuration file\n"
    "  -v, --verbose         log peers and control traffic\n"
    "  -h, --help            this help\n";

bool node_main_option(weft_config_t *cfg, const char *opt, const char *value, int *rc)
{
    if (!strcmp(opt, "--seed"))
        *rc = weft_config_set(cfg, "gossip/seeds", value);
    else if (!strcmp(opt, "--fabric"))
        *rc = weft_config_set(cfg, "fabric/name", value);
    else if (!strcmp(opt, "--gossip-bind"))
        *rc = weft_config_set(cfg, "gossip/bind", value);
    else if (!strcmp(opt, "--bind"))
        *rc = weft_config_set(cfg, "node/bind", value);
    else if (!strcmp(opt, "--config"))
        *rc = weft_config_load(cfg, value);
    else if (!strcmp(opt, "--connect")) {
        /* repeatable: the static peers accumulate */
        char list[4096];
        const char *have = weft_config_get(cfg, "peers/connect");
        int n = snprintf(list, sizeof(list), "%s%s%s", have && *have ? have : "",
                         have && *have ? "," : "", value);
        *rc = n < 0 || (size_t)n >= sizeof(list) ? WEFT_EINVAL
                                                 : weft_config_set(cfg, "peers/connect", list);
    } else
        return false;
    return true;
}

void node_main_log(const char *ident)
{
    zsys_init();
    zsys_set_logident(ident);
    zsys_set_logstream(stderr);
}

const char *node_main_seed_note(weft_node_t *node, char *buf, size_t cap)
{
    const char *seed = weft_node_gossip_endpoint(node);
    snprintf(buf, cap, "%s%s", seed ? ", gossip seed " : "", seed ? seed : "");
    return buf;
}

void node_main_serve(const char *ready_file, const char *endpoint)
{
    if (ready_file) {
        char tmp[4096];
        snprintf(tmp, sizeof(tmp), "%s.tmp", ready_file);
        FILE *f = fopen(tmp, "w");
        if (f) {
            fprintf(f, "%s\n", endpoint);
            fclose(f);
            rename(tmp, ready_file);
        }
    }
    while (!zsys_interrupted)
        zclock_sleep(100);
}

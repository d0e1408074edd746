/*  node_opts.c - option parsing and node creation shared by the `weft` commands, weft-top and
    the exporter node (node_opts.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node_opts.h"

const char *cli_node_help =
    "node options:\n"
    "  --name NAME          this node's name on the fabric\n"
    "  --fabric NAME        the fabric to join (default weft; others are ignored)\n"
    "  --connect ENDPOINT   static peer: a node's SUB endpoint (repeatable; works without gossip)\n"
    "  --seed ENDPOINTS     gossip seeds, comma-separated, or none (default tcp://127.0.0.1:5670)\n"
    "  --gossip-bind EP     bind a gossip seed here: an endpoint, auto or none (default auto)\n"
    "  --bind ENDPOINT      where this node's SUB socket binds (default tcp://127.0.0.1:*)\n"
    "  --config FILE        ZPL configuration file (see `weft config`)\n"
    "  -v, --verbose        log peers and control traffic\n";

static const char *s_prog(const cli_node_opts_t *o)
{
    return o->prog ? o->prog : "weft";
}

static const char *s_value(const cli_node_opts_t *o, int argc, char **argv, int *i)
{
    if (*i + 1 >= argc) {
        fprintf(stderr, "%s: %s needs a value\n", s_prog(o), argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

int cli_node_option(cli_node_opts_t *o, int argc, char **argv, int *i)
{
    const char *a = argv[*i];
    const char **slot = NULL;
    if (!strcmp(a, "--name"))
        slot = &o->name;
    else if (!strcmp(a, "--config"))
        slot = &o->config_file;
    else if (!strcmp(a, "--seed"))
        slot = &o->seed;
    else if (!strcmp(a, "--bind"))
        slot = &o->bind;
    else if (!strcmp(a, "--gossip-bind"))
        slot = &o->gossip_bind;
    else if (!strcmp(a, "--fabric"))
        slot = &o->fabric;
    else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
        o->verbose = true;
        return 1;
    } else if (!strcmp(a, "--connect")) {
        const char *v = s_value(o, argc, argv, i);
        if (!v)
            return -1;
        if (o->nconnect >= 16) {
            fprintf(stderr, "%s: at most 16 --connect\n", s_prog(o));
            return -1;
        }
        o->connect[o->nconnect++] = v;
        return 1;
    } else
        return 0;
    const char *v = s_value(o, argc, argv, i);
    if (!v)
        return -1;
    *slot = v;
    return 1;
}

weft_node_t *cli_node_new(const cli_node_opts_t *o)
{
    weft_config_t *cfg = weft_config_new();
    int rc = WEFT_OK;
    if (o->config_file)
        rc = weft_config_load(cfg, o->config_file);
    if (rc == WEFT_OK)
        rc = weft_config_set(cfg, "node/role", o->role ? o->role : "cli");
    if (rc == WEFT_OK && o->seed)
        rc = weft_config_set(cfg, "gossip/seeds", o->seed);
    if (rc == WEFT_OK && o->gossip_bind)
        rc = weft_config_set(cfg, "gossip/bind", o->gossip_bind);
    if (rc == WEFT_OK && o->bind)
        rc = weft_config_set(cfg, "node/bind", o->bind);
    if (rc == WEFT_OK && o->fabric)
        rc = weft_config_set(cfg, "fabric/name", o->fabric);
    if (rc == WEFT_OK && o->verbose)
        rc = weft_config_set(cfg, "log/verbose", "1");
    if (rc == WEFT_OK && o->nconnect) {
        char list[4096] = "";
        for (int i = 0; i < o->nconnect; i++) {
            if (i)
                strncat(list, ",", sizeof(list) - strlen(list) - 1);
            strncat(list, o->connect[i], sizeof(list) - strlen(list) - 1);
        }
        rc = weft_config_set(cfg, "peers/connect", list);
    }
    if (rc != WEFT_OK) {
        fprintf(stderr, "%s: configuration: %s\n", s_prog(o), weft_strerror(rc));
        weft_config_destroy(&cfg);
        return NULL;
    }
    int err = 0;
    weft_node_t *node = weft_node_new(o->name, cfg, &err);
    weft_config_destroy(&cfg);
    if (!node)
        fprintf(stderr, "%s: cannot start node: %s\n", s_prog(o), weft_strerror(err));
    return node;
}

long cli_parse_ms(const char *text)
{
    if (!text || !*text)
        return -1;
    char *end;
    double v = strtod(text, &end);
    if (end == text || v < 0)
        return -1;
    if (!*end || !strcmp(end, "s"))
        return (long)(v * 1000);
    if (!strcmp(end, "ms"))
        return (long)v;
    if (!strcmp(end, "m"))
        return (long)(v * 60000);
    return -1;
}

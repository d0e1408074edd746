/*  node_opts.h - the options every program that joins the fabric accepts (--name, --connect,
    --seed, --gossip-bind, --bind, --config, -v), parsed the same way by the `weft` commands,
    weft-top and the nodes under nodes/ (the exporter), and the node they describe.

    A program zero-initialises a cli_node_opts_t, sets role (and prog for messages), offers each
    argument to cli_node_option in its own parse loop, then calls cli_node_new.
*/
#ifndef WEFT_TOOLS_NODE_OPTS_H_INCLUDED
#define WEFT_TOOLS_NODE_OPTS_H_INCLUDED

#include <stdbool.h>

#include "weft.h"

/*  Options every node-creating program accepts. Strings are borrowed (usually from argv). */
typedef struct {
    const char *name;        /* --name NAME */
    const char *role;        /* set by the program: "cli" by default */
    const char *prog;        /* program name in messages ("weft" when NULL) */
    const char *config_file; /* --config FILE (ZPL) */
    const char *connect[16]; /* --connect ENDPOINT (static peer SUB endpoint), repeatable */
    int nconnect;
    const char *seed;        /* --seed ENDPOINT[,ENDPOINT...] gossip seeds, or "none" */
    const char *bind;        /* --bind ENDPOINT for the SUB socket */
    const char *gossip_bind; /* --gossip-bind ENDPOINT|auto|none */
    const char *fabric;      /* --fabric NAME (fabric/name) */
    bool verbose;            /* -v */
} cli_node_opts_t;

/*  If argv[*i] is a common node option, consumes it (and its value, advancing *i) into o and
    returns 1; returns 0 if it is not one; returns -1 (after printing why on stderr) if its
    value is missing or there are too many --connect. */
int cli_node_option(cli_node_opts_t *o, int argc, char **argv, int *i);

/*  Help text for the common node options, for each program's --help (static string). */
extern const char *cli_node_help;

/*  Creates a node from the options (the caller owns it: weft_node_destroy). On failure prints
    the reason on stderr and returns NULL. */
weft_node_t *cli_node_new(const cli_node_opts_t *o);

/*  Parses a duration such as "2", "1.5", "500ms", "3s", "2m" into milliseconds; -1 if bad. */
long cli_parse_ms(const char *text);

#endif

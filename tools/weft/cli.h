/*  cli.h - shared pieces of the `weft` command line: each command is one function in its own
    file (cmd_pub.c, cmd_sub.c, cmd_bench.c, ...), dispatched by main.c. Common options that
    create a node (--name, --connect, --seed, --bind, --config) are parsed by cli_node_option
    and applied by cli_node_new, so every command spells them the same way.
*/
#ifndef WEFT_CLI_H_INCLUDED
#define WEFT_CLI_H_INCLUDED

#include <stdbool.h>

#include "weft.h"

/*  Options every node-creating command accepts. */
typedef struct {
    const char *name;        /* --name NAME */
    const char *role;        /* set by the command: "cli" by default */
    const char *config_file; /* --config FILE (ZPL) */
    const char *connect[16]; /* --connect ENDPOINT (static peer SUB endpoint), repeatable */
    int nconnect;
    const char *seed;        /* --seed ENDPOINT[,ENDPOINT...] gossip seeds, or "none" */
    const char *bind;        /* --bind ENDPOINT for the SUB socket */
    const char *gossip_bind; /* --gossip-bind ENDPOINT|auto|none */
    bool verbose;            /* -v */
} cli_node_opts_t;

/*  If argv[*i] is a common node option, consumes it (and its value, advancing *i) into o and
    returns 1; returns 0 if it is not one; returns -1 (after printing why) if its value is
    missing. */
int cli_node_option(cli_node_opts_t *o, int argc, char **argv, int *i);

/*  Help text for the common node options, for each command's --help. */
extern const char *cli_node_help;

/*  Creates a node from the options. On failure prints the reason and returns NULL. */
weft_node_t *cli_node_new(const cli_node_opts_t *o);

/*  Parses a duration such as "2", "1.5", "500ms", "3s", "2m" into milliseconds; -1 if bad. */
long cli_parse_ms(const char *text);

/*  Commands. Each returns the process exit status (0 ok, 1 failure, 2 usage). */
int cmd_pub(int argc, char **argv);
int cmd_sub(int argc, char **argv);
int cmd_bench(int argc, char **argv);

#endif

/*  cli.h - shared pieces of the `weft` command line: each command is one function in its own
    file (cmd_pub.c, cmd_sub.c, cmd_bench.c, ...), dispatched by main.c. Common options that
    create a node (--name, --connect, --seed, --bind, --config) are parsed by cli_node_option
    and applied by cli_node_new (tools/common/node_opts.h, shared with weft-top and the
    exporter), so every program spells them the same way.
*/
#ifndef WEFT_CLI_H_INCLUDED
#define WEFT_CLI_H_INCLUDED

#include <stdbool.h>

#include "node_opts.h"
#include "weft.h"

/*  Commands. Each returns the process exit status (0 ok, 1 failure, 2 usage). */
int cmd_pub(int argc, char **argv);
int cmd_sub(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_stat(int argc, char **argv);
int cmd_replay(int argc, char **argv);
int cmd_get(int argc, char **argv);
int cmd_archive(int argc, char **argv);
int cmd_dlq(int argc, char **argv);

#endif

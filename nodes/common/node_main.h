/*  node_main.h - what the mains of the service nodes (nodes/archiver, nodes/dlq) share around
    the library object they run: the node options of their command line (--fabric, --seed,
    --gossip-bind, --connect, --bind, --config, and their help text), logging to stderr, the gossip seed
    in the line they print at start, then the ready file that tells scripts and tests the
    service endpoint and the wait for SIGINT or SIGTERM. Each main keeps its own option loop
    and offers each valued option to node_main_option.
*/
#ifndef WEFT_NODE_MAIN_H_INCLUDED
#define WEFT_NODE_MAIN_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#include "weft.h"

/*  The "node options:" section of --help, ending with -v and -h (static string). */
extern const char *node_main_help;

/*  If opt is --fabric, --seed, --gossip-bind, --connect (repeatable: the lists add up),
    --bind or --config, applies it with its value to cfg, sets *rc to 0 (or non-zero when cfg
    refuses the value, or the --connect list grows past 4 KiB) and returns true; returns false
    for any other option. -v stays with each main. */
bool node_main_option(weft_config_t *cfg, const char *opt, const char *value, int *rc);

/*  Starts czmq's logging for the program: ident, and every line on stderr. */
void node_main_log(const char *ident);

/*  ", gossip seed ENDPOINT" when node holds the gossip seed, else "": the end of the line a
    main prints once started. Written into buf (cap bytes), which is returned. */
const char *node_main_seed_note(weft_node_t *node, char *buf, size_t cap);

/*  Serves until SIGINT or SIGTERM (czmq's handler) and then returns. First, when ready_file
    is not NULL, writes endpoint and a newline to it (through ready_file.tmp and a rename, so
    that a reader never sees it half written; a failure is ignored, as the node serves
    anyway). */
void node_main_serve(const char *ready_file, const char *endpoint);

#endif

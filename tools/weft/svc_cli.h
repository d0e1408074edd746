/*  svc_cli.h - finding a service node for the `weft` commands that talk to one: `weft replay`,
    `weft get` and `weft archive` ask an archiver, `weft dlq` a DLQ. They share the options
    that locate it (--archiver / --dlq ENDPOINT, --archiver-name / --dlq-name NAME, --wait,
    --timeout, and the common node options of node_opts.h) and the lookup itself: unless the
    endpoint is given, a short-lived node joins the fabric and waits for a peer of the
    service's role that announces a service endpoint. A svc_kind_t names the service in the
    options and messages (archive_cli.h has the archiver's, cmd_dlq.c the DLQ's).
*/
#ifndef WEFT_SVC_CLI_H_INCLUDED
#define WEFT_SVC_CLI_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#include "node_opts.h"

#define SVC_CLI_WAIT_MS 3000 /* default --wait */

/*  What a service is called on the fabric, on the command line and in messages. */
typedef struct {
    const char *role;        /* the peer role it announces: "archiver", "dlq" */
    const char *label;       /* in messages: "archiver", "DLQ" */
    const char *option;      /* the endpoint option: "--archiver", "--dlq" */
    const char *name_option; /* the node name option: "--archiver-name", "--dlq-name" */
    const char *program;     /* the program that serves it: "weft-archiver", "weft-dlq" */
} svc_kind_t;

/*  How a command reaches the service. */
typedef struct {
    const char *prog;        /* "weft replay", "weft dlq list", ... for messages */
    const svc_kind_t *kind;
    const char *endpoint;    /* the endpoint option: its service endpoint, no lookup */
    const char *name;        /* the name option: look for the service node called NAME */
    long wait_ms;            /* --wait: how long to look for it on the fabric */
    long timeout_ms;         /* --timeout: how long to wait for an answer (-1: command default) */
    cli_node_opts_t node;    /* node options of the lookup node */
} svc_cli_t;

/*  Zeroes o and sets the defaults: role "cli", --wait 3 s, and --gossip-bind none (the lookup
    node lives for a moment: it must not hold the local gossip seed). */
void svc_cli_init(svc_cli_t *o, const svc_kind_t *kind, const char *prog);

/*  If argv[*i] is one of the options above, consumes it (and its value, advancing *i) and
    returns 1; returns 0 if it is not one; returns -1 (after printing why on stderr) for a
    missing or bad value. */
int svc_cli_option(svc_cli_t *o, int argc, char **argv, int *i);

/*  Fills svc (cap bytes) with the service endpoint: the endpoint option, or the svc of a peer
    of the service's role (and with the name option's name, if given) found by a short-lived
    node within --wait. Returns 0, or 1 after printing why on stderr (none found, the node
    cannot start) or when interrupted (Ctrl-C; then nothing is printed and *interrupted is set
    if not NULL). */
int svc_cli_locate(const svc_cli_t *o, char *svc, size_t cap, bool *interrupted);

#endif

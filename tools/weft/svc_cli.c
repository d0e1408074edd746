/*  svc_cli.c - the options that locate a service node and the lookup on the fabric
    (svc_cli.h). */
#include "svc_cli.h"

#include <czmq.h>
#include <stdio.h>
#include <string.h>

void svc_cli_init(svc_cli_t *o, const svc_kind_t *kind, const char *prog)
{
    memset(o, 0, sizeof(*o));
    o->prog = prog;
    o->kind = kind;
    o->wait_ms = SVC_CLI_WAIT_MS;
    o->timeout_ms = -1;
    o->node.role = "cli";
    o->node.prog = prog;
    o->node.gossip_bind = "none";
}

int svc_cli_option(svc_cli_t *o, int argc, char **argv, int *i)
{
    const char *a = argv[*i];
    int rc = cli_node_option(&o->node, argc, argv, i);
    if (rc != 0)
        return rc;
    bool endpoint = !strcmp(a, o->kind->option), name = !strcmp(a, o->kind->name_option);
    if (!endpoint && !name && strcmp(a, "--wait") && strcmp(a, "--timeout"))
        return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "%s: %s needs a value (see %s --help)\n", o->prog, a, o->prog);
        return -1;
    }
    const char *v = argv[++*i];
    if (endpoint) {
        if (!*v) {
            fprintf(stderr, "%s: %s needs an endpoint such as tcp://127.0.0.1:40123\n", o->prog,
                    a);
            return -1;
        }
        o->endpoint = v;
        return 1;
    }
    if (name) {
        if (!*v || strlen(v) > WEFT_NAME_MAX) {
            fprintf(stderr, "%s: %s needs a node name of 1 to 255 bytes\n", o->prog, a);
            return -1;
        }
        o->name = v;
        return 1;
    }
    long ms = cli_parse_ms(v);
    if (ms < 0 || ms > INT32_MAX) {
        fprintf(stderr, "%s: bad duration for %s: '%s' (e.g. 3, 1.5s, 500ms, 2m)\n", o->prog, a,
                v);
        return -1;
    }
    if (!strcmp(a, "--wait"))
        o->wait_ms = ms;
    else
        o->timeout_ms = ms > 0 ? ms : 1;
    return 1;
}

int svc_cli_locate(const svc_cli_t *o, char *svc, size_t cap, bool *interrupted)
{
    const svc_kind_t *k = o->kind;
    if (interrupted)
        *interrupted = false;
    if (o->endpoint) {
        snprintf(svc, cap, "%s", o->endpoint);
        return 0;
    }
    weft_node_t *node = cli_node_new(&o->node);
    if (!node)
        return 1;
    weft_peer_info_t info;
    int64_t deadline = zclock_mono() + o->wait_ms;
    int rc;
    while (1) { /* in slices, so Ctrl-C is noticed */
        int64_t left = deadline - zclock_mono();
        rc = weft_node_find_peer(node, 0, k->role, o->name,
                                 left > 100 ? 100 : left > 0 ? (int)left : 0, &info);
        if (rc == WEFT_OK || zsys_interrupted || zclock_mono() >= deadline)
            break;
    }
    weft_node_destroy(&node);
    if (rc != WEFT_OK) {
        if (zsys_interrupted) {
            if (interrupted)
                *interrupted = true;
        } else if (o->name) {
            fprintf(stderr,
                    "%s: no %s named '%s' found on the fabric within %g s; start %s --name %s "
                    "or pass %s ENDPOINT\n",
                    o->prog, k->label, o->name, o->wait_ms / 1000.0, k->program, o->name,
                    k->option);
        } else {
            fprintf(stderr, "%s: no %s found on the fabric within %g s; start %s or pass %s "
                            "ENDPOINT\n",
                    o->prog, k->label, o->wait_ms / 1000.0, k->program, k->option);
        }
        return 1;
    }
    if (!info.svc[0]) {
        fprintf(stderr, "%s: the %s %s announces no service endpoint; pass %s ENDPOINT\n",
                o->prog, k->label, info.name, k->option);
        return 1;
    }
    snprintf(svc, cap, "%s", info.svc);
    return 0;
}

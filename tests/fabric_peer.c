/*  fabric_peer.c - one node of the multi-process fabric test (test_fabric.c starts several).

    It joins the fabric through gossip, subscribes to the given prefixes, tells the driver it
    is ready (--ready FILE, written once it sees every --peers NAME up and its publisher is
    connected), waits for the driver's go file, publishes --publish N events cycling through
    --topics, then waits until it has received --expect events (or --timeout ms) and writes one
    line per received event to --out: "<src> <seq> <topic>". Exit status 0 when --expect was
    reached, 1 otherwise.
*/
#include <czmq.h>
#include <stdatomic.h>

#include "weft.h"

typedef struct {
    FILE *out;
    atomic_int count;
} recv_t;

static int s_record(weft_event_t *ev, void *arg)
{
    recv_t *r = arg;
    fprintf(r->out, "%s %" PRIu64 " %s\n", ev->env->src, ev->env->seq, ev->topic);
    atomic_fetch_add(&r->count, 1);
    return 0;
}

static void s_write_file(const char *path, const char *text)
{
    char tmp[512];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return;
    fputs(text, f);
    fclose(f);
    rename(tmp, path);
}

int main(int argc, char **argv)
{
    const char *name = NULL, *seed = "none", *gossip_bind = "none", *seed_file = NULL;
    const char *ready = NULL, *go = NULL, *out = NULL, *topics = "t.a";
    const char *prefixes[8], *peers[8];
    int nprefix = 0, npeers = 0, publish = 0, expect = 0, timeout_ms = 30000;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--name")) name = v;
        else if (!strcmp(k, "--seed")) seed = v;
        else if (!strcmp(k, "--gossip-bind")) gossip_bind = v;
        else if (!strcmp(k, "--seed-file")) seed_file = v;
        else if (!strcmp(k, "--ready")) ready = v;
        else if (!strcmp(k, "--go")) go = v;
        else if (!strcmp(k, "--out")) out = v;
        else if (!strcmp(k, "--topics")) topics = v;
        else if (!strcmp(k, "--prefix") && nprefix < 8) prefixes[nprefix++] = v;
        else if (!strcmp(k, "--peers") && npeers < 8) peers[npeers++] = v;
        else if (!strcmp(k, "--publish")) publish = atoi(v);
        else if (!strcmp(k, "--expect")) expect = atoi(v);
        else if (!strcmp(k, "--timeout")) timeout_ms = atoi(v);
        else {
            fprintf(stderr, "fabric_peer: unknown option %s\n", k);
            return 2;
        }
    }
    if (!name || !out) {
        fprintf(stderr, "fabric_peer: --name and --out are required\n");
        return 2;
    }
    zsys_init();
    weft_config_t *cfg = weft_config_new();
    weft_config_set(cfg, "gossip/seeds", seed);
    weft_config_set(cfg, "gossip/bind", gossip_bind);
    weft_config_set(cfg, "heartbeat/interval", "200");
    int err;
    weft_node_t *node = weft_node_new(name, cfg, &err);
    weft_config_destroy(&cfg);
    if (!node) {
        fprintf(stderr, "fabric_peer %s: %s\n", name, weft_strerror(err));
        return 1;
    }
    if (seed_file && weft_node_gossip_endpoint(node))
        s_write_file(seed_file, weft_node_gossip_endpoint(node));
    recv_t r = {fopen(out, "w"), 0};
    if (!r.out)
        return 1;
    for (int i = 0; i < nprefix; i++)
        weft_subscribe(node, prefixes[i], s_record, &r, NULL, &err);
    int64_t deadline = zclock_mono() + timeout_ms;
    for (int i = 0; i < npeers; i++)
        if (weft_node_wait_peer_named(node, peers[i], (int)(deadline - zclock_mono())) != 0) {
            fprintf(stderr, "fabric_peer %s: peer %s never came up\n", name, peers[i]);
            return 1;
        }
    if (weft_node_wait_peers(node, (int)(deadline - zclock_mono())) < 0) {
        fprintf(stderr, "fabric_peer %s: peers not ready\n", name);
        return 1;
    }
    if (ready)
        s_write_file(ready, weft_node_sub_endpoint(node));
    while (go && !zsys_file_exists(go) && zclock_mono() < deadline)
        zclock_sleep(5);
    char *topic_list = strdup(topics), *save = NULL;
    const char *tv[16];
    int nt = 0;
    for (char *t = strtok_r(topic_list, ",", &save); t && nt < 16; t = strtok_r(NULL, ",", &save))
        tv[nt++] = t;
    for (int i = 0; i < publish; i++) {
        char payload[32];
        int n = snprintf(payload, sizeof(payload), "%d", i);
        if (weft_publish(node, tv[i % nt], payload, (size_t)n, NULL, NULL) <= 0)
            return 1;
    }
    while (atomic_load(&r.count) < expect && zclock_mono() < deadline)
        zclock_sleep(5);
    int got = atomic_load(&r.count);
    /* Stay a moment so late duplicates, if any, would be recorded too. */
    zclock_sleep(300);
    weft_node_destroy(&node);
    fclose(r.out);
    free(topic_list);
    if (got < expect)
        fprintf(stderr, "fabric_peer %s: received %d of %d\n", name, got, expect);
    return got >= expect ? 0 : 1;
}

/*  dlq.c - the DLQ's assembly: opens the store, binds the service endpoint, starts the node
    (role "dlq", announcing the endpoint as its service) and the service thread, and adds the
    DLQ's figures to the node's heartbeats (key "dlq", a snapshot the service thread keeps).
*/
#include "bind_util.h"
#include "dlq_internal.h"

void dlq_opts_defaults(dlq_opts_t *o)
{
    memset(o, 0, sizeof(*o));
    o->dir = "weft-dlq";
    o->name = "dlq";
    o->max_attempts = 5;
    o->backoff_ms = 1000;
    o->backoff_max_ms = 60000;
    o->jitter = 0.2;
    o->sync = DLQ_SYNC_ALWAYS;
    o->max_in_flight = 16;
    o->redeliver_timeout_ms = 5000;
}

int dlq_parse_sync(const char *text, dlq_sync_t *out)
{
    if (!text)
        return -1;
    if (strcmp(text, "always") == 0)
        *out = DLQ_SYNC_ALWAYS;
    else if (strcmp(text, "interval") == 0)
        *out = DLQ_SYNC_INTERVAL;
    else if (strcmp(text, "none") == 0)
        *out = DLQ_SYNC_NONE;
    else
        return -1;
    return 0;
}

const char *dlq_sync_name(dlq_sync_t sync)
{
    return sync == DLQ_SYNC_INTERVAL ? "interval" : sync == DLQ_SYNC_NONE ? "none" : "always";
}

static void s_heartbeat_extra(void *arg, msgpack_packer *pk, uint32_t *count)
{
    dlq_t *self = arg;
    pthread_mutex_lock(&self->snap_lock);
    if (self->snap && self->snap_size) {
        ctl_pack_str(pk, "dlq");
        pk->callback(pk->data, (const char *)self->snap, self->snap_size);
        *count += 1;
    }
    pthread_mutex_unlock(&self->snap_lock);
}

void dlq_stats(dlq_t *self, dlq_stats_t *st)
{
    memset(st, 0, sizeof(*st));
    st->requests = atomic_load(&self->requests);
    st->request_errors = atomic_load(&self->request_errors);
    st->puts = atomic_load(&self->puts);
    st->created = atomic_load(&self->created);
    st->redelivered = atomic_load(&self->redelivered);
    st->resolved = atomic_load(&self->resolved);
    st->parked = atomic_load(&self->parked);
    st->failed = atomic_load(&self->failed);
    st->no_subscriber = atomic_load(&self->no_subscriber);
    st->in_flight = atomic_load(&self->in_flight);
    st->deferred = atomic_load(&self->deferred);
}

weft_node_t *dlq_node(dlq_t *self)
{
    return self ? self->node : NULL;
}

const char *dlq_svc_endpoint(dlq_t *self)
{
    return self ? self->svc_endpoint : NULL;
}

static const char *s_check_opts(const dlq_opts_t *o)
{
    if (o->max_attempts < 1)
        return "max attempts must be at least 1";
    if (o->backoff_ms < 1 || o->backoff_max_ms < o->backoff_ms || o->backoff_max_ms > 86400000LL * 365)
        return "backoff must be >= 1 ms and the cap at least the backoff (at most a year)";
    if (!(o->jitter >= 0 && o->jitter <= 1))
        return "jitter must be a fraction between 0 and 1";
    if (o->max_in_flight < 1 || o->max_in_flight > 1024)
        return "redeliveries in flight must be 1..1024";
    if (o->redeliver_timeout_ms < 1)
        return "the redelivery timeout must be at least 1 ms";
    return NULL;
}

dlq_t *dlq_new(const dlq_opts_t *opts, int *err, char *why, size_t why_cap)
{
    int dummy;
    if (!err)
        err = &dummy;
    *err = WEFT_OK;
    char scratch[8];
    if (!why || !why_cap) {
        why = scratch;
        why_cap = sizeof(scratch);
    }
    why[0] = 0;
    const char *bad = s_check_opts(opts);
    if (bad) {
        *err = WEFT_EINVAL;
        snprintf(why, why_cap, "%s", bad);
        return NULL;
    }
    dlq_t *self = calloc(1, sizeof(*self));
    if (!self) {
        *err = WEFT_ENOMEM;
        return NULL;
    }
    pthread_mutex_init(&self->snap_lock, NULL);
    self->opts = *opts;
    snprintf(self->dir, sizeof(self->dir), "%s", opts->dir ? opts->dir : "weft-dlq");
    snprintf(self->name, sizeof(self->name), "%s", opts->name ? opts->name : "dlq");
    self->opts.dir = self->dir;
    self->opts.name = self->name;
    self->opts.config = NULL;
    self->opts.svc_bind = NULL;

    self->store = dlq_store_open(self->dir, opts->sync == DLQ_SYNC_ALWAYS, err, why, why_cap);
    if (!self->store) {
        dlq_destroy(&self);
        return NULL;
    }
    const char *bind = opts->svc_bind ? opts->svc_bind : "tcp://127.0.0.1:*";
    self->router = zsock_new(ZMQ_ROUTER);
    char bind_random[256];
    bind_util_endpoint(bind, bind_random, sizeof(bind_random));
    if (!self->router || zsock_bind(self->router, "%s", bind_random) < 0) {
        *err = WEFT_ENET;
        snprintf(why, why_cap, "cannot bind the service endpoint %s", bind);
        dlq_destroy(&self);
        return NULL;
    }
    zsock_set_linger(self->router, 0);
    zsock_set_maxmsgsize(self->router, (int)(CTL_ARGS_MAX + 4096));
    snprintf(self->svc_endpoint, sizeof(self->svc_endpoint), "%s",
             zsock_endpoint(self->router));

    weft_config_t *cfg = weft_config_new();
    if (opts->config)
        for (const char *const *k = (const char *const[]){"gossip/seeds", "gossip/bind",
                                                          "peers/connect", "node/bind",
                                                          "node/advertise", "heartbeat/interval",
                                                          "net/rcvhwm", "log/verbose", NULL};
             *k; k++)
            weft_config_set(cfg, *k, weft_config_get(opts->config, *k));
    weft_config_set(cfg, "node/role", "dlq");
    weft_config_set(cfg, "node/service", self->svc_endpoint);
    self->hb_ms = (int)weft_config_get_int(cfg, "heartbeat/interval", 1000);
    if (self->hb_ms < 10)
        self->hb_ms = 10;
    self->node = weft_node_new(self->name, cfg, err);
    weft_config_destroy(&cfg);
    if (!self->node) {
        snprintf(why, why_cap, "cannot start the DLQ's node: %s", weft_strerror(*err));
        dlq_destroy(&self);
        return NULL;
    }
    /* The service thread takes the ROUTER over; it recovers letters left in flight and builds
       the aggregates before it signals. */
    self->server = zactor_new(dlq_server, self);
    if (!self->server) {
        *err = WEFT_ENOMEM;
        snprintf(why, why_cap, "cannot start the DLQ's service thread");
        dlq_destroy(&self);
        return NULL;
    }
    weft_node_set_heartbeat_extra(self->node, s_heartbeat_extra, self);
    return self;
}

void dlq_destroy(dlq_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    dlq_t *self = *self_p;
    zactor_destroy(&self->server); /* letters in flight become pending again */
    if (self->node)
        weft_node_set_heartbeat_extra(self->node, NULL, NULL);
    weft_node_destroy(&self->node);
    zsock_destroy(&self->router);
    dlq_store_close(&self->store);
    free(self->snap);
    pthread_mutex_destroy(&self->snap_lock);
    free(self);
    *self_p = NULL;
}

/*  node.c - node lifecycle and the publish path (weft/node.h).

    weft_publish is the hot path: check the topic, take pub_lock, read the clock once (ts, and
    the id's timestamp), encode the envelope into a scratch buffer from the prefix laid out at
    node start (v, src, inst never change; see envelope.c) followed by seq, ts and any optional
    fields, copy the event into the outbox, send three frames on the XPUB with ZMQ_DONTWAIT,
    release the lock. Nothing in it waits on the network: a peer whose queue is full (sndhwm)
    simply does not get the event, and it stays in the outbox for FETCH.
*/
#include "node_internal.h"

#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <unistd.h>

#include "weft/error.h"

/*  Codec entry points for the publish path, defined in envelope.c (not public API). */
int envelope_prefix_encode(uint8_t *out, size_t cap, const char *src, uint64_t inst);
int envelope_encode_prefixed(uint8_t *buf, size_t cap, const uint8_t *prefix, size_t prefix_len,
                             const uint8_t id[WEFT_ID_SIZE], uint64_t seq, int64_t ts,
                             const weft_envelope_t *opt);
void envelope_id_at(uint8_t id[WEFT_ID_SIZE], int64_t now_ns);

static bool s_on_actor_thread(weft_node_t *self);
static int s_rate_parse(weft_node_t *self, const char *spec);

int weft_event_fail(weft_event_t *event, const char *code, const char *fmt, ...)
{
    if (event) {
        snprintf(event->error_code, sizeof(event->error_code), "%s", code ? code : "error");
        event->error_message[0] = 0;
        if (fmt) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(event->error_message, sizeof(event->error_message), fmt, ap);
            va_end(ap);
        }
    }
    return WEFT_EHANDLER;
}

static bool s_name_ok(const char *name)
{
    return name && weft_topic_check(name, strlen(name)) == WEFT_OK;
}

weft_node_t *weft_node_new(const char *name, weft_config_t *config, int *err)
{
    int dummy;
    if (!err)
        err = &dummy;
    *err = WEFT_OK;
    weft_node_t *self = calloc(1, sizeof(*self));
    if (!self) {
        *err = WEFT_ENOMEM;
        return NULL;
    }
    self->config = weft_config_dup(config);
    if (!self->config || weft_config_check_env(self->config) != WEFT_OK) {
        *err = self->config ? WEFT_ECONFIG : WEFT_ENOMEM;
        weft_config_destroy(&self->config);
        free(self);
        return NULL;
    }
    weft_config_t *cfg = self->config;
    const char *cfg_name = weft_config_get(cfg, "node/name");
    if (name && *name)
        snprintf(self->name, sizeof(self->name), "%s", name);
    else if (cfg_name && *cfg_name)
        snprintf(self->name, sizeof(self->name), "%s", cfg_name);
    else
        snprintf(self->name, sizeof(self->name), "node-%d", (int)getpid());
    snprintf(self->role, sizeof(self->role), "%s", weft_config_get(cfg, "node/role"));
    snprintf(self->svc_endpoint, sizeof(self->svc_endpoint), "%s",
             weft_config_get(cfg, "node/service"));
    const char *fabric = weft_config_get(cfg, "fabric/name");
    if (!fabric || !s_name_ok(fabric) || strlen(fabric) > WEFT_FABRIC_MAX) {
        zsys_error("weft: fabric/name '%s': 1..%d printable ASCII bytes, no spaces",
                   fabric ? fabric : "", WEFT_FABRIC_MAX);
        *err = WEFT_ECONFIG;
        weft_config_destroy(&self->config);
        free(self);
        return NULL;
    }
    snprintf(self->fabric, sizeof(self->fabric), "%s", fabric);
    if (!s_name_ok(self->name) || !s_name_ok(self->role)) {
        zsys_error("weft: node name '%s' / role '%s': 1..255 printable ASCII bytes, no spaces",
                   self->name, self->role);
        *err = WEFT_EINVAL;
        weft_config_destroy(&self->config);
        free(self);
        return NULL;
    }
    uint8_t rnd[WEFT_ID_SIZE];
    weft_id_new(rnd);
    memcpy(&self->inst, rnd + 8, 8);
    self->inst ^= (uint64_t)zclock_usecs() << 16;
    if (self->inst == 0)
        self->inst = 1;
    self->started_ms = zclock_time();
    self->max_payload = (size_t)weft_config_get_int(cfg, "limits/max_payload", 1 << 20);
    self->heartbeat_ms = (int)weft_config_get_int(cfg, "heartbeat/interval", 1000);
    self->down_beats = (int)weft_config_get_int(cfg, "peers/down_beats", 3);
    self->disconnect_after_ms = (int)weft_config_get_int(cfg, "peers/disconnect_after", 60000);
    self->settle_ms = (int)weft_config_get_int(cfg, "node/settle", 200);
    self->linger_ms = (int)weft_config_get_int(cfg, "node/linger", 500);
    self->loopback = weft_config_get_int(cfg, "node/loopback", 1) != 0;
    const char *policy = weft_config_get(cfg, "limits/rate_policy");
    self->rate_drop = policy && strcmp(policy, "drop") == 0;
    if ((policy && strcmp(policy, "drop") != 0 && strcmp(policy, "reject") != 0) ||
        s_rate_parse(self, weft_config_get(cfg, "limits/topic_rates")) != 0) {
        zsys_error("weft: limits/rate_policy must be reject or drop; limits/topic_rates "
                   "PREFIX=RATE[/BURST],...");
        *err = WEFT_ECONFIG;
        weft_config_destroy(&self->config);
        free(self);
        return NULL;
    }
    self->verbose = weft_config_get_int(cfg, "log/verbose", 0) != 0;
    if (self->heartbeat_ms < 10)
        self->heartbeat_ms = 10;
    if (self->down_beats < 1)
        self->down_beats = 1;

    /* The name passed s_name_ok (1..255 bytes), so the prefix always fits. */
    int prefix_len = envelope_prefix_encode(self->env_prefix, sizeof(self->env_prefix),
                                            self->name, self->inst);
    assert(prefix_len > 0);
    self->env_prefix_len = (size_t)prefix_len;

    int64_t ob_events = weft_config_get_int(cfg, "outbox/events", 100000);
    int64_t ob_bytes = weft_config_get_int(cfg, "outbox/bytes", 64 << 20);
    self->outbox = outbox_new(ob_events > 0 ? (size_t)ob_events : 1,
                              ob_bytes > 0 ? (size_t)ob_bytes : 1);
    self->pub_topics = topic_table_new(TOPIC_TABLE_MAX);
    pthread_mutex_init(&self->pub_lock, NULL);
    pthread_mutex_init(&self->api_lock, NULL);

    self->pub = zsock_new(ZMQ_XPUB);
    if (!self->outbox || !self->pub) {
        *err = self->outbox ? WEFT_ENET : WEFT_ENOMEM;
        weft_node_destroy(&self);
        return NULL;
    }
    zsock_set_sndhwm(self->pub, (int)weft_config_get_int(cfg, "net/sndhwm", 100000));
    zsock_set_xpub_verbose(self->pub, 1);
    zsock_set_immediate(self->pub, 1);
    zsock_set_linger(self->pub, self->linger_ms);

    self->actor = zactor_new(node_actor, self);
    if (!self->actor || !atomic_load(&self->actor_running)) {
        *err = WEFT_ENET;
        weft_node_destroy(&self);
        return NULL;
    }
    return self;
}

void weft_node_destroy(weft_node_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    weft_node_t *self = *self_p;
    pthread_mutex_lock(&self->pub_lock);
    self->stopping = true;
    pthread_mutex_unlock(&self->pub_lock);
    zactor_destroy(&self->actor);
    zsock_destroy(&self->pub);
    outbox_destroy(&self->outbox);
    topic_table_destroy(&self->pub_topics);
    pthread_mutex_destroy(&self->pub_lock);
    pthread_mutex_destroy(&self->api_lock);
    weft_config_destroy(&self->config);
    free(self);
    *self_p = NULL;
}

/*  Sets the optional envelope fields from meta, and only those (the rest of *env is not
    read by envelope_encode_prefixed): absent strings are "", an absent ct is "" (which, like
    the default content type, is left out of the envelope), ver 0 means 1. */
static void s_fill_meta(weft_envelope_t *env, const weft_meta_t *meta)
{
    const char *strs[4] = {meta->corr, meta->trace, meta->reply, meta->tenant};
    char *fields[4] = {env->corr, env->trace, env->reply, env->tenant};
    for (int i = 0; i < 4; i++) {
        if (strs[i])
            snprintf(fields[i], WEFT_NAME_MAX + 1, "%s", strs[i]);
        else
            fields[i][0] = 0;
    }
    if (meta->ct && *meta->ct)
        snprintf(env->ct, sizeof(env->ct), "%s", meta->ct);
    else
        env->ct[0] = 0;
    env->ver = meta->ver ? meta->ver : 1;
    env->retry = 0;
    env->h_keys = meta->header_keys;
    env->h_values = meta->header_values;
    env->h_count = meta->header_count;
}

static int s_check_meta(const weft_meta_t *meta)
{
    if (!meta)
        return WEFT_OK;
    const char *strs[] = {meta->corr, meta->trace, meta->reply, meta->tenant};
    for (int i = 0; i < 4; i++)
        if (strs[i] && strlen(strs[i]) > WEFT_NAME_MAX)
            return WEFT_EINVAL;
    if (meta->ct && strlen(meta->ct) > WEFT_CT_MAX)
        return WEFT_EINVAL;
    if (meta->header_count > WEFT_HEADERS_MAX ||
        (meta->header_count && (!meta->header_keys || !meta->header_values)))
        return WEFT_EINVAL;
    return WEFT_OK;
}

/*  Takes a token from the bucket of the longest prefix matching topic; false when empty.
    Under pub_lock. */
static bool s_rate_take(weft_node_t *self, const char *topic, size_t len, int64_t now_ns)
{
    rate_bucket_t *b = NULL;
    for (size_t i = 0; i < self->nbuckets; i++) {
        rate_bucket_t *c = &self->buckets[i];
        if (c->len <= len && memcmp(c->prefix, topic, c->len) == 0 && (!b || c->len > b->len))
            b = c;
    }
    if (!b)
        return true;
    double refill = (double)(now_ns - b->last_ns) * 1e-9 * b->rate;
    b->last_ns = now_ns;
    b->tokens = b->tokens + refill > b->burst ? b->burst : b->tokens + refill;
    if (b->tokens < 1.0)
        return false;
    b->tokens -= 1.0;
    return true;
}

/*  Parses limits/topic_rates: "PREFIX=RATE[/BURST],..." (burst defaults to the rate, at least
    1). Returns 0, or -1 with a message logged. */
static int s_rate_parse(weft_node_t *self, const char *spec)
{
    if (!spec || !*spec)
        return 0;
    char *copy = strdup(spec), *save = NULL;
    int rc = 0;
    for (char *item = strtok_r(copy, ",", &save); item && rc == 0;
         item = strtok_r(NULL, ",", &save)) {
        char *eq = strrchr(item, '=');
        char *end = NULL;
        double rate = eq ? strtod(eq + 1, &end) : -1;
        double burst = rate;
        if (end && *end == '/')
            burst = strtod(end + 1, &end);
        if (!eq || rate <= 0 || burst <= 0 || (end && *end) || self->nbuckets == RATE_BUCKETS_MAX ||
            (size_t)(eq - item) > WEFT_TOPIC_MAX) {
            zsys_error("weft: limits/topic_rates: bad item '%s' (PREFIX=RATE[/BURST], at most %d)",
                       item, RATE_BUCKETS_MAX);
            rc = -1;
            break;
        }
        rate_bucket_t *b = &self->buckets[self->nbuckets++];
        memcpy(b->prefix, item, (size_t)(eq - item));
        b->prefix[eq - item] = 0;
        b->len = (size_t)(eq - item);
        b->rate = rate;
        b->burst = burst < 1 ? 1 : burst;
        b->tokens = b->burst;
        b->last_ns = weft_now_ns();
    }
    free(copy);
    return rc;
}

int64_t node_publish_locked(weft_node_t *self, const char *topic, size_t topic_len,
                            const void *payload, size_t size, const weft_meta_t *meta,
                            bool fabric, uint8_t id_out[WEFT_ID_SIZE])
{
    /* Optional fields, when meta gives any, are set up before taking the lock. */
    weft_envelope_t opt_fields;
    const weft_envelope_t *opt = NULL;
    if (meta) {
        s_fill_meta(&opt_fields, meta);
        opt = &opt_fields;
    }
    uint8_t id[WEFT_ID_SIZE];
    pthread_mutex_lock(&self->pub_lock);
    if (self->stopping) {
        pthread_mutex_unlock(&self->pub_lock);
        return WEFT_ESTATE;
    }
    uint64_t seq = fabric ? 0 : self->seq + 1;
    int64_t ts = weft_now_ns();
    if (!fabric && self->nbuckets && !s_rate_take(self, topic, topic_len, ts)) {
        pthread_mutex_unlock(&self->pub_lock);
        atomic_fetch_add(&self->counters.rate_limited, 1);
        return self->rate_drop ? 0 : WEFT_ERATE;
    }
    envelope_id_at(id, ts);
    int n = envelope_encode_prefixed(self->env_buf, sizeof(self->env_buf), self->env_prefix,
                                     self->env_prefix_len, id, seq, ts, opt);
    if (n < 0) {
        pthread_mutex_unlock(&self->pub_lock);
        return n;
    }
    if (!fabric) {
        self->seq = seq;
        topic_table_add(self->pub_topics, topic, size);
        /* An event larger than outbox/bytes is sent but cannot be held for FETCH. */
        (void)outbox_put(self->outbox, seq, topic, topic_len, self->env_buf, (size_t)n, payload,
                         size);
    }
    void *sock = zsock_resolve(self->pub);
    zmq_send(sock, topic, topic_len, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send(sock, self->env_buf, (size_t)n, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send(sock, payload, size, ZMQ_DONTWAIT);
    if (id_out)
        memcpy(id_out, id, WEFT_ID_SIZE);
    pthread_mutex_unlock(&self->pub_lock);
    return (int64_t)seq;
}

int64_t weft_publish(weft_node_t *self, const char *topic, const void *payload, size_t size,
                     const weft_meta_t *meta, uint8_t id_out[WEFT_ID_SIZE])
{
    if (!self || (!payload && size))
        return WEFT_EINVAL;
    size_t topic_len = topic ? strnlen(topic, WEFT_TOPIC_MAX + 1) : 0;
    int rc = weft_topic_check(topic, topic_len);
    if (rc == WEFT_OK && weft_topic_is_fabric(topic, topic_len))
        rc = WEFT_ERESERVED;
    if (rc == WEFT_OK && size > self->max_payload)
        rc = WEFT_ETOOBIG;
    if (rc == WEFT_OK)
        rc = s_check_meta(meta);
    if (rc != WEFT_OK) {
        atomic_fetch_add(&self->counters.publish_errors, 1);
        return rc;
    }
    int64_t seq = node_publish_locked(self, topic, topic_len, payload ? payload : "", size, meta,
                                      false, id_out);
    if (seq > 0)
        atomic_fetch_add(&self->counters.published, 1);
    else if (seq < 0)
        atomic_fetch_add(&self->counters.publish_errors, 1);
    return seq;
}

int weft_publish_fabric(weft_node_t *self, const char *topic, const void *payload, size_t size)
{
    size_t len = topic ? strnlen(topic, WEFT_TOPIC_MAX + 1) : 0;
    if (!self || weft_topic_check(topic, len) != WEFT_OK || !weft_topic_is_fabric(topic, len))
        return WEFT_ETOPIC;
    if (size > self->max_payload)
        return WEFT_ETOOBIG;
    int64_t rc = node_publish_locked(self, topic, len, payload ? payload : "", size, NULL, true,
                                     NULL);
    return rc < 0 ? (int)rc : 0;
}

int node_pub_connect(weft_node_t *self, const char *endpoint)
{
    pthread_mutex_lock(&self->pub_lock);
    int rc = zsock_connect(self->pub, "%s", endpoint);
    pthread_mutex_unlock(&self->pub_lock);
    return rc == 0 ? WEFT_OK : WEFT_ENET;
}

int node_pub_disconnect(weft_node_t *self, const char *endpoint)
{
    pthread_mutex_lock(&self->pub_lock);
    int rc = zsock_disconnect(self->pub, "%s", endpoint);
    pthread_mutex_unlock(&self->pub_lock);
    return rc == 0 ? WEFT_OK : WEFT_ENET;
}

uint64_t node_pub_drain_subscriptions(weft_node_t *self)
{
    static const char hb[] = "\x01" "_weft.hb";
    char buf[300];
    pthread_mutex_lock(&self->pub_lock);
    void *sock = zsock_resolve(self->pub);
    int n;
    while ((n = zmq_recv(sock, buf, sizeof(buf), ZMQ_DONTWAIT)) >= 0)
        if ((size_t)n == sizeof(hb) - 1 && memcmp(buf, hb, sizeof(hb) - 1) == 0)
            self->hb_subs_seen++;
    uint64_t seen = self->hb_subs_seen;
    pthread_mutex_unlock(&self->pub_lock);
    return seen;
}

int weft_node_connect(weft_node_t *self, const char *sub_endpoint)
{
    if (!self || !sub_endpoint || !*sub_endpoint)
        return WEFT_EINVAL;
    pthread_mutex_lock(&self->api_lock);
    zstr_sendx(self->actor, "CONNECT", sub_endpoint, NULL);
    char *reply = zstr_recv(self->actor);
    pthread_mutex_unlock(&self->api_lock);
    int rc = reply && streq(reply, "0") ? WEFT_OK : WEFT_ENET;
    zstr_free(&reply);
    return rc;
}

static bool s_on_actor_thread(weft_node_t *self)
{
    return atomic_load(&self->actor_running) && pthread_equal(pthread_self(), self->actor_thread);
}

weft_sub_t *weft_subscribe(weft_node_t *self, const char *prefix, weft_handler_fn *handler,
                           void *arg, const weft_sub_options_t *options, int *err)
{
    int dummy;
    if (!err)
        err = &dummy;
    size_t len = prefix ? strnlen(prefix, WEFT_TOPIC_MAX + 1) : WEFT_TOPIC_MAX + 1;
    if (!self || !handler || len > WEFT_TOPIC_MAX ||
        (len > 0 && weft_topic_check(prefix, len) != WEFT_OK) ||
        (options && (options->start > WEFT_START_TIME ||
                     (options->start == WEFT_START_OFFSET && options->from_offset == 0) ||
                     (options->start != WEFT_START_LIVE &&
                      weft_topic_is_fabric(prefix, len))))) {
        *err = WEFT_EINVAL;
        return NULL;
    }
    if (s_on_actor_thread(self))
        return node_actor_subscribe(self->actor_self, prefix, handler, arg, options, err);
    pthread_mutex_lock(&self->api_lock);
    zsock_send(self->actor, "ssppp", "SUB", prefix, (void *)handler, arg, (void *)options);
    weft_sub_t *sub = NULL;
    int rc = 0;
    zsock_recv(self->actor, "pi", &sub, &rc);
    pthread_mutex_unlock(&self->api_lock);
    *err = rc;
    return sub;
}

int weft_unsubscribe(weft_node_t *self, weft_sub_t **sub_p)
{
    if (!self || !sub_p || !*sub_p)
        return WEFT_EINVAL;
    int rc;
    if (s_on_actor_thread(self))
        rc = node_actor_unsubscribe(self->actor_self, *sub_p);
    else {
        pthread_mutex_lock(&self->api_lock);
        zsock_send(self->actor, "sp", "UNSUB", (void *)*sub_p);
        zsock_recv(self->actor, "i", &rc);
        pthread_mutex_unlock(&self->api_lock);
    }
    if (rc == WEFT_OK)
        *sub_p = NULL;
    return rc;
}

int weft_node_wait_peers(weft_node_t *self, int timeout_ms)
{
    if (!self)
        return WEFT_EINVAL;
    int64_t deadline = node_mono_ms() + timeout_ms;
    while (1) {
        int known = atomic_load(&self->readiness.known);
        int ready = atomic_load(&self->readiness.ready);
        int64_t last = atomic_load(&self->readiness.last_learned_ms);
        int64_t now = node_mono_ms();
        if (ready >= known && atomic_load(&self->readiness.self_ready) &&
            atomic_load(&self->readiness.gossip_heard) && now - last >= self->settle_ms)
            return ready;
        if (now >= deadline)
            return WEFT_ETIMEOUT;
        zclock_sleep(5);
    }
}

int weft_node_wait_peer_named(weft_node_t *self, const char *name, int timeout_ms)
{
    if (!self || !name)
        return WEFT_EINVAL;
    int64_t deadline = node_mono_ms() + timeout_ms;
    while (1) {
        int up = 0;
        pthread_mutex_lock(&self->api_lock);
        zsock_send(self->actor, "ss", "HASPEER", name);
        zsock_recv(self->actor, "i", &up);
        pthread_mutex_unlock(&self->api_lock);
        if (up)
            return WEFT_OK;
        if (node_mono_ms() >= deadline)
            return WEFT_ETIMEOUT;
        zclock_sleep(5);
    }
}

void weft_node_set_heartbeat_extra(weft_node_t *self, weft_heartbeat_extra_fn *fn, void *arg)
{
    if (!self)
        return;
    pthread_mutex_lock(&self->pub_lock);
    self->hb_extra = fn;
    self->hb_extra_arg = arg;
    pthread_mutex_unlock(&self->pub_lock);
}

int weft_node_find_peer(weft_node_t *self, uint64_t inst, const char *role, const char *name,
                        int timeout_ms, weft_peer_info_t *out)
{
    if (!self || !out)
        return WEFT_EINVAL;
    if (s_on_actor_thread(self)) /* from a handler: look now, never wait */
        return node_actor_find_peer(self->actor_self, inst, role, name, out) ? WEFT_OK
                                                                            : WEFT_ENOTFOUND;
    int64_t deadline = node_mono_ms() + timeout_ms;
    while (1) {
        int found = 0;
        char inst_hex[17];
        snprintf(inst_hex, sizeof(inst_hex), "%016" PRIx64, inst);
        pthread_mutex_lock(&self->api_lock);
        zsock_send(self->actor, "ssssp", "FINDPEER", inst_hex, role ? role : "", name ? name : "",
                   (void *)out);
        zsock_recv(self->actor, "i", &found);
        pthread_mutex_unlock(&self->api_lock);
        if (found)
            return WEFT_OK;
        if (node_mono_ms() >= deadline)
            return timeout_ms > 0 ? WEFT_ETIMEOUT : WEFT_ENOTFOUND;
        zclock_sleep(10);
    }
}

void weft_node_readiness(weft_node_t *self, int *ready, int *known)
{
    if (ready)
        *ready = self ? atomic_load(&self->readiness.ready) : 0;
    if (known)
        *known = self ? atomic_load(&self->readiness.known) : 0;
}

void weft_node_stats(weft_node_t *self, weft_stats_t *s)
{
    if (!self || !s)
        return;
    memset(s, 0, sizeof(*s));
    node_counters_t *c = &self->counters;
    s->published = atomic_load(&c->published);
    s->publish_errors = atomic_load(&c->publish_errors);
    s->received = atomic_load(&c->received);
    s->delivered = atomic_load(&c->delivered);
    s->dropped = atomic_load(&c->dropped);
    s->gaps = atomic_load(&c->gaps);
    s->repaired = atomic_load(&c->repaired);
    s->unrepaired = atomic_load(&c->unrepaired);
    s->handler_errors = atomic_load(&c->handler_errors);
    s->dead_lettered = atomic_load(&c->dead_lettered);
    s->dead_letter_pending = atomic_load(&c->dead_letter_pending);
    s->dead_letter_dropped = atomic_load(&c->dead_letter_dropped);
    s->retries = atomic_load(&c->retries);
    s->rate_limited = atomic_load(&c->rate_limited);
    s->foreign = atomic_load(&c->foreign);
    s->redelivered = atomic_load(&c->redelivered);
    s->malformed = atomic_load(&c->malformed);
    s->ctl_requests = atomic_load(&c->ctl_requests);
    s->ctl_errors = atomic_load(&c->ctl_errors);
    s->peers_up = atomic_load(&c->peers_up);
    s->peers_down = atomic_load(&c->peers_down);
    pthread_mutex_lock(&self->pub_lock);
    uint64_t first, last;
    s->outbox_events = outbox_range(self->outbox, &first, &last);
    s->outbox_first_seq = first;
    s->outbox_bytes = outbox_bytes(self->outbox);
    s->last_seq = self->seq;
    pthread_mutex_unlock(&self->pub_lock);
}

const char *weft_node_name(weft_node_t *self)
{
    return self ? self->name : NULL;
}

uint64_t weft_node_inst(weft_node_t *self)
{
    return self ? self->inst : 0;
}

const char *weft_node_sub_endpoint(weft_node_t *self)
{
    return self ? self->sub_endpoint : NULL;
}

const char *weft_node_ctl_endpoint(weft_node_t *self)
{
    return self ? self->ctl_endpoint : NULL;
}

const char *weft_node_gossip_endpoint(weft_node_t *self)
{
    return self && self->gossip_endpoint[0] ? self->gossip_endpoint : NULL;
}

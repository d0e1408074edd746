/*  archiver.c - the archiver's assembly: opens the store, starts the node with its
    subscriptions, the writer, repair and server threads, and adds the archive's figures to
    the node's heartbeats. The node-thread handlers live here too: they watch each source's
    seq for jumps (asking the repair thread for what is missing) and append events to the
    ingest batch.
*/
#include "archiver_internal.h"

#include <inttypes.h>

#include "ctl_proto.h"
#include "heartbeat.h"

bool archiver_wants(archiver_t *self, const char *topic, size_t len)
{
    if (weft_topic_is_fabric(topic, len))
        return self->opts.archive_fabric;
    if (self->nprefixes == 0)
        return true;
    for (size_t i = 0; i < self->nprefixes; i++) {
        size_t n = strlen(self->prefixes[i]);
        if (n <= len && memcmp(self->prefixes[i], topic, n) == 0)
            return true;
    }
    return false;
}

static seen_t *s_seen_lookup(archiver_t *self, uint64_t inst, bool *is_new);

/*  What the archive already holds of a source this run has not seen yet. */
static seen_t *s_seen(archiver_t *self, uint64_t inst, bool *is_new)
{
    /* Events come in runs from one source: the last one is cached. */
    if (self->last_seen && self->last_seen_inst == inst) {
        *is_new = false;
        return self->last_seen;
    }
    seen_t *s = s_seen_lookup(self, inst, is_new);
    self->last_seen = s;
    self->last_seen_inst = inst;
    return s;
}

static seen_t *s_seen_lookup(archiver_t *self, uint64_t inst, bool *is_new)
{
    char key[17];
    snprintf(key, sizeof(key), "%016" PRIx64, inst);
    seen_t *s = zhashx_lookup(self->seen, key);
    *is_new = s == NULL;
    if (s)
        return s;
    if (zhashx_size(self->seen) >= 65536) {
        zhashx_purge(self->seen); /* bounded; the store still dedupes */
        self->last_seen = NULL;
    }
    s = calloc(1, sizeof(*s));
    assert(s);
    archive_reader_begin(self->hwm_reader);
    archive_source_hwm(self->hwm_reader, inst, &s->last_seq);
    archive_reader_end(self->hwm_reader);
    zhashx_insert(self->seen, key, s);
    return s;
}

static int s_on_event(weft_event_t *ev, void *arg)
{
    archiver_t *self = arg;
    const weft_envelope_t *env = ev->env;
    size_t tlen = strlen(ev->topic);
    if (!archiver_wants(self, ev->topic, tlen))
        return 0;
    if (env->seq > 0) {
        bool is_new;
        seen_t *s = s_seen(self, env->inst, &is_new);
        if (env->seq <= s->last_seq) {
            atomic_fetch_add(&self->duplicates, 1); /* already archived: skip early */
            return 0;
        }
        /* A jump: ask the publisher's outbox for what is missing. With prefixes configured
           the publisher filtered the rest; the repair fetches and drops it (costly but exact). */
        if (env->seq > s->last_seq + 1)
            archiver_repair_request(self, env->inst, s->last_seq + 1, env->seq - 1);
        s->last_seq = env->seq;
    }
    if (archiver_ingest_add(self, ev->topic, tlen, ev->envelope_raw, ev->envelope_size,
                            ev->payload, ev->size, env) != 0)
        return weft_event_fail(ev, "archive.refused", "event not archived");
    return 0;
}

/*  Heartbeats announce each publisher's last seq: a seq the archive has not received after
    two heartbeats is fetched (the tail of a burst we dropped, or events from before we
    started). */
static int s_on_heartbeat(weft_event_t *ev, void *arg)
{
    archiver_t *self = arg;
    heartbeat_info_t hb;
    /* With prefixes the heartbeat's seq counts topics we do not archive: it says nothing. */
    if (self->nprefixes || strcmp(ev->topic, "_weft.hb") != 0 ||
        heartbeat_read(ev->payload, ev->size, &hb) != 0 || hb.inst == weft_node_inst(self->node) ||
        hb.seq == 0)
        return 0;
    bool is_new;
    seen_t *s = s_seen(self, hb.inst, &is_new);
    if (s->hb_seq && s->last_seq < s->hb_seq) {
        /* Behind for two heartbeats: what the archive holds may have moved on through a
           repair, so ask the store before asking the publisher again. */
        uint64_t hwm = 0;
        archive_reader_begin(self->hwm_reader);
        archive_source_hwm(self->hwm_reader, hb.inst, &hwm);
        archive_reader_end(self->hwm_reader);
        if (hwm > s->last_seq)
            s->last_seq = hwm;
        int64_t now = zclock_mono();
        if (s->last_seq < s->hb_seq &&
            (s->hb_seq > s->requested_to || now - s->requested_ms > 10000)) {
            archiver_repair_request(self, hb.inst, s->last_seq + 1, s->hb_seq);
            s->requested_to = s->hb_seq;
            s->requested_ms = now;
        }
    }
    s->hb_seq = hb.seq;
    return 0; /* archiving heartbeats themselves (archive_fabric) is the "_weft." handler's job */
}

static void s_heartbeat_extra(void *arg, msgpack_packer *pk, uint32_t *count)
{
    archiver_t *self = arg;
    archiver_stats_t st;
    archiver_stats(self, &st);
    archive_info_t info;
    archive_store_info(self->store, &info);
    int64_t now = zclock_mono();
    if (self->hb_prev_ms && now > self->hb_prev_ms)
        self->events_per_s =
            (double)(st.ingested - self->hb_prev_ingested) * 1000.0 / (double)(now - self->hb_prev_ms);
    self->hb_prev_ms = now;
    self->hb_prev_ingested = st.ingested;
    ctl_pack_str(pk, "archive");
    msgpack_pack_map(pk, 15);
    ctl_pack_kv_uint(pk, "first_offset", info.first_offset);
    ctl_pack_kv_uint(pk, "last_offset", info.last_offset);
    ctl_pack_kv_uint(pk, "events", info.events);
    ctl_pack_str(pk, "events_per_s");
    msgpack_pack_double(pk, self->events_per_s);
    ctl_pack_kv_uint(pk, "bytes_on_disk", info.bytes_on_disk);
    ctl_pack_kv_uint(pk, "commit_p50_us", st.commit_p50_us);
    ctl_pack_kv_uint(pk, "commit_p99_us", st.commit_p99_us);
    ctl_pack_kv_uint(pk, "replay_sessions", st.replay_sessions);
    ctl_pack_kv_uint(pk, "duplicates", st.duplicates);
    ctl_pack_kv_uint(pk, "repaired", st.repaired);
    ctl_pack_kv_uint(pk, "unrepaired", st.unrepaired);
    ctl_pack_kv_uint(pk, "refused", st.refused);
    ctl_pack_kv_uint(pk, "map_full", info.map_full);
    ctl_pack_kv_uint(pk, "retention_removed", st.retained_removed);
    ctl_pack_str(pk, "retention");
    msgpack_pack_map(pk, 3);
    ctl_pack_kv_uint(pk, "max_age_s", (uint64_t)(self->opts.retention.max_age_ns / 1000000000));
    ctl_pack_kv_uint(pk, "max_bytes", self->opts.retention.max_bytes);
    ctl_pack_kv_uint(pk, "max_events", self->opts.retention.max_events);
    *count += 1;
}

static int s_cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

void archiver_stats(archiver_t *self, archiver_stats_t *st)
{
    memset(st, 0, sizeof(*st));
    st->ingested = atomic_load(&self->ingested);
    st->duplicates = atomic_load(&self->duplicates);
    st->batches = atomic_load(&self->batches_done);
    st->commit_errors = atomic_load(&self->commit_errors);
    st->refused = atomic_load(&self->refused);
    st->repaired = atomic_load(&self->repaired);
    st->unrepaired = atomic_load(&self->unrepaired);
    st->repair_requests = atomic_load(&self->repair_requests);
    st->retained_removed = atomic_load(&self->retained_removed);
    st->replay_sessions = atomic_load(&self->replay_sessions);
    st->requests = atomic_load(&self->requests);
    st->request_errors = atomic_load(&self->request_errors);
    st->last_offset = atomic_load(&self->last_offset);
    unsigned n = atomic_load(&self->commit_next);
    if (n > COMMIT_SAMPLES)
        n = COMMIT_SAMPLES;
    if (n) {
        uint32_t sorted[COMMIT_SAMPLES];
        memcpy(sorted, self->commit_us, n * sizeof(uint32_t));
        qsort(sorted, n, sizeof(uint32_t), s_cmp_u32);
        st->commit_p50_us = sorted[n / 2];
        st->commit_p99_us = sorted[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1];
    }
}

weft_node_t *archiver_node(archiver_t *self)
{
    return self ? self->node : NULL;
}

const char *archiver_svc_endpoint(archiver_t *self)
{
    return self ? self->svc_endpoint : NULL;
}

int archiver_parse_sync(const char *text, archive_sync_t *out)
{
    if (!text)
        return -1;
    if (strcmp(text, "always") == 0)
        *out = ARCHIVE_SYNC_ALWAYS;
    else if (strcmp(text, "interval") == 0)
        *out = ARCHIVE_SYNC_INTERVAL;
    else if (strcmp(text, "none") == 0)
        *out = ARCHIVE_SYNC_NONE;
    else
        return -1;
    return 0;
}

archiver_t *archiver_new(const archiver_opts_t *opts, int *err, char *why, size_t why_cap)
{
    int dummy;
    if (!err)
        err = &dummy;
    *err = WEFT_OK;
    if (why && why_cap)
        why[0] = 0;
    archiver_t *self = calloc(1, sizeof(*self));
    if (!self) {
        *err = WEFT_ENOMEM;
        return NULL;
    }
    self->opts = *opts;
    snprintf(self->dir, sizeof(self->dir), "%s", opts->dir ? opts->dir : "weft-archive");
    self->opts.dir = self->dir;
    if (!self->opts.batch_events)
        self->opts.batch_events = 1000;
    if (self->opts.batch_ms <= 0)
        self->opts.batch_ms = 10;
    self->prefixes = calloc(opts->nprefixes ? opts->nprefixes : 1, sizeof(char *));
    for (size_t i = 0; i < opts->nprefixes; i++)
        if (opts->prefixes[i][0]) /* "" means everything, which is no filter */
            self->prefixes[self->nprefixes++] = strdup(opts->prefixes[i]);
    bool everything = opts->nprefixes == 0;
    for (size_t i = 0; i < opts->nprefixes; i++)
        everything |= opts->prefixes[i][0] == 0;
    if (everything) {
        for (size_t i = 0; i < self->nprefixes; i++)
            free(self->prefixes[i]);
        self->nprefixes = 0;
    }
    self->opts.prefixes = NULL;
    snprintf(self->commit_endpoint, sizeof(self->commit_endpoint),
             "inproc://weft-archiver-commits-%p", (void *)self);

    /* A growth limit below the initial size means the initial size is the limit. */
    uint64_t map_size = opts->map_size ? opts->map_size : ARCHIVE_MAP_SIZE_DEFAULT;
    if (opts->max_map_size && opts->max_map_size < map_size)
        map_size = opts->max_map_size;
    archive_opts_t so = {self->dir, map_size, opts->max_map_size, opts->sync, false};
    self->store = archive_store_open(&so, err, why, why_cap);
    if (!self->store) {
        archiver_destroy(&self);
        return NULL;
    }
    archive_info_t info;
    archive_store_info(self->store, &info);
    atomic_store(&self->last_offset, info.last_offset);
    self->hwm_reader = archive_reader_new(self->store);
    self->seen = zhashx_new();
    zhashx_set_destructor(self->seen, (zhashx_destructor_fn *)zstr_free);

    if (archiver_ingest_start(self) != 0 || archiver_repair_start(self) != 0) {
        *err = WEFT_ENOMEM;
        archiver_destroy(&self);
        return NULL;
    }
    self->server = zactor_new(archiver_server, self);
    if (!self->server || !self->svc_endpoint[0]) {
        *err = WEFT_ENET;
        if (why && why_cap)
            snprintf(why, why_cap, "cannot bind the service endpoint %s",
                     opts->svc_bind ? opts->svc_bind : "tcp://127.0.0.1:*");
        archiver_destroy(&self);
        return NULL;
    }

    /* The node takes every setting of the caller's configuration; role and service are
       the archiver's. */
    weft_config_t *cfg = opts->config ? opts->config : weft_config_new();
    weft_config_set(cfg, "node/role", "archiver");
    weft_config_set(cfg, "node/service", self->svc_endpoint);
    self->node = weft_node_new(opts->name ? opts->name : "archiver", cfg, err);
    if (!opts->config)
        weft_config_destroy(&cfg);
    if (!self->node) {
        if (why && why_cap)
            snprintf(why, why_cap, "cannot start the archiver's node: %s", weft_strerror(*err));
        archiver_destroy(&self);
        return NULL;
    }
    weft_node_set_heartbeat_extra(self->node, s_heartbeat_extra, self);
    int e;
    if (self->nprefixes == 0) {
        weft_subscribe(self->node, "", s_on_event, self, NULL, &e);
    } else {
        for (size_t i = 0; i < self->nprefixes; i++)
            weft_subscribe(self->node, self->prefixes[i], s_on_event, self, NULL, &e);
    }
    weft_subscribe(self->node, "_weft.hb", s_on_heartbeat, self, NULL, &e);
    if (self->opts.archive_fabric)
        weft_subscribe(self->node, "_weft.", s_on_event, self, NULL, &e);
    archiver_repair_resume(self); /* what a crash left owed */
    return self;
}

void archiver_destroy(archiver_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    archiver_t *self = *self_p;
    if (self->nrepairers)
        archiver_repair_halt(self);      /* the repair thread no longer uses the node */
    weft_node_destroy(&self->node);      /* no more handler calls */
    if (self->nrepairers)
        archiver_repair_stop(self);
    if (self->writer)
        archiver_ingest_stop(self);      /* commits what is pending */
    zactor_destroy(&self->server);
    archive_reader_destroy(&self->hwm_reader);
    zhashx_destroy(&self->seen);
    archive_store_close(&self->store);
    for (size_t i = 0; i < self->nprefixes; i++)
        free(self->prefixes[i]);
    free(self->prefixes);
    free(self);
    *self_p = NULL;
}

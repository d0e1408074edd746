/*  archiver_server.c - the archiver's service endpoint: a ROUTER on its own thread.

    Commands (docs/protocol.md, "Archiver"): PING, INFO, GET {id}, FETCH {inst, from_seq,
    to_seq}, REPLAY {from_offset | since | from_id, to_offset, until, prefixes, sources, limit,
    live}, CREDIT, CANCEL. FETCH and REPLAY stream EVENTS batches under credit (ctl_streams):
    each batch is read in its own short LMDB read transaction, so a long replay never pins old
    pages and the writer is never blocked. A live replay that has caught up waits for the
    writer's "new commit" signal (inproc PULL) and then continues.

    Events in archiver batches are [topic, envelope, payload, offset, recv_ts].
*/
#include <inttypes.h>

#include "archiver_internal.h"
#include "bind_util.h"
#include "ctl_proto.h"

typedef struct {
    archiver_t *arch;
    archive_reader_t *reader;
    /* REPLAY */
    uint64_t next;          /* next offset to read */
    uint64_t to;            /* last offset (UINT64_MAX: open) */
    int64_t until;          /* stop after recv_ts > until (0: no limit) */
    char **prefixes;
    size_t nprefixes;
    char **sources;
    size_t nsources;
    uint64_t limit;         /* 0: none */
    bool live;
    /* FETCH */
    bool fetch;
    uint64_t inst, seq_to;
    /* totals */
    uint64_t sent, missing;
    /* fill scratch */
    msgpack_packer *pk;
    size_t batch_n, batch_max, batch_bytes, batch_bytes_max;
    bool stop_scan;
    bool finished;
} stream_state_t;

static void s_state_free(void *arg)
{
    stream_state_t *st = arg;
    if (!st)
        return;
    archive_reader_destroy(&st->reader);
    for (size_t i = 0; i < st->nprefixes; i++)
        free(st->prefixes[i]);
    for (size_t i = 0; i < st->nsources; i++)
        free(st->sources[i]);
    free(st->prefixes);
    free(st->sources);
    atomic_fetch_sub(&st->arch->replay_sessions, 1);
    free(st);
}

static void s_pack_rec(msgpack_packer *pk, const archive_rec_t *rec)
{
    msgpack_pack_array(pk, 5);
    msgpack_pack_str(pk, rec->topic_size);
    msgpack_pack_str_body(pk, rec->topic, rec->topic_size);
    msgpack_pack_bin(pk, rec->envelope_size);
    msgpack_pack_bin_body(pk, rec->envelope, rec->envelope_size);
    msgpack_pack_bin(pk, rec->payload_size);
    msgpack_pack_bin_body(pk, rec->payload, rec->payload_size);
    msgpack_pack_uint64(pk, rec->offset);
    msgpack_pack_int64(pk, rec->recv_ts);
}

static bool s_source_ok(stream_state_t *st, const archive_rec_t *rec)
{
    if (st->nsources == 0)
        return true;
    weft_envelope_t env;
    if (weft_envelope_decode(&env, rec->envelope, rec->envelope_size) != 0)
        return false;
    for (size_t i = 0; i < st->nsources; i++)
        if (strcmp(env.src, st->sources[i]) == 0)
            return true;
    return false;
}

static int s_on_rec(const archive_rec_t *rec, void *arg)
{
    stream_state_t *st = arg;
    if (st->until && rec->recv_ts > st->until) {
        st->next = rec->offset; /* not sent: a later replay starts here */
        st->finished = true;
        return 1;
    }
    st->next = rec->offset + 1;
    if (!s_source_ok(st, rec))
        return 0;
    s_pack_rec(st->pk, rec);
    st->batch_n++;
    st->sent++;
    st->batch_bytes += rec->topic_size + rec->envelope_size + rec->payload_size;
    if (st->limit && st->sent >= st->limit) {
        st->finished = true;
        return 1;
    }
    return st->batch_n >= st->batch_max || st->batch_bytes >= st->batch_bytes_max;
}

static size_t s_replay_fill(void *state, msgpack_packer *pk, size_t max_events, size_t max_bytes,
                            bool *done)
{
    stream_state_t *st = state;
    st->pk = pk;
    st->batch_n = 0;
    st->batch_max = max_events;
    st->batch_bytes = 0;
    st->batch_bytes_max = max_bytes;
    if (archive_reader_begin(st->reader) != 0) {
        *done = true;
        return 0;
    }
    /* Scan in slices until the batch is full or what exists now is exhausted: a selective
       filter (sources) may skip many events per match. */
    uint64_t last = atomic_load(&st->arch->last_offset);
    uint64_t bound = st->to < last ? st->to : last;
    while (!st->finished && st->batch_n < max_events && st->batch_bytes < max_bytes &&
           st->next <= bound) {
        uint64_t from = st->next, next = st->next;
        size_t before = st->batch_n;
        archive_scan(st->reader, from, bound, (const char *const *)st->prefixes, st->nprefixes,
                     max_events - st->batch_n, s_on_rec, st, &next);
        if (next > st->next)
            st->next = next;
        if (st->next == from && st->batch_n == before) {
            st->next = bound + 1; /* nothing (more) matches up to the bound */
            break;
        }
    }
    archive_reader_end(st->reader);
    if (st->finished || st->next > st->to || (!st->live && st->next > last))
        *done = true;
    return st->batch_n;
}

static size_t s_fetch_fill(void *state, msgpack_packer *pk, size_t max_events, size_t max_bytes,
                           bool *done)
{
    stream_state_t *st = state;
    size_t n = 0, bytes = 0;
    if (archive_reader_begin(st->reader) != 0) {
        *done = true;
        return 0;
    }
    while (st->next <= st->seq_to && n < max_events && bytes < max_bytes) {
        uint64_t offset;
        archive_rec_t rec;
        if (archive_find_source(st->reader, st->inst, st->next, &offset) == 0 &&
            archive_read(st->reader, offset, &rec) == 0) {
            s_pack_rec(pk, &rec);
            n++;
            bytes += rec.topic_size + rec.envelope_size + rec.payload_size;
        } else {
            st->missing++;
        }
        st->next++;
    }
    archive_reader_end(st->reader);
    st->sent += n;
    *done = st->next > st->seq_to;
    return n;
}

static void s_end(void *state, msgpack_packer *pk, bool cancelled)
{
    stream_state_t *st = state;
    msgpack_pack_map(pk, 4);
    ctl_pack_kv_uint(pk, "sent", st->sent);
    ctl_pack_kv_uint(pk, "missing", st->missing);
    ctl_pack_kv_uint(pk, "next_offset", st->fetch ? 0 : st->next);
    ctl_pack_str(pk, "cancelled");
    if (cancelled)
        msgpack_pack_true(pk);
    else
        msgpack_pack_false(pk);
}

typedef struct {
    archiver_t *arch;
    zsock_t *router;
    zsock_t *commits;
    ctl_streams_t *streams;
    msgpack_sbuffer sb;
} server_t;

static void s_err(server_t *sv, ctl_request_t *req, const char *code, const char *msg)
{
    atomic_fetch_add(&sv->arch->request_errors, 1);
    ctl_reply_err(sv->router, req->routing, req->request_id, code, "%s", msg);
}

/*  Reads an array of strings argument into owned copies. Returns 0, 1 absent, -1 bad. */
static int s_str_list(const msgpack_object *args, const char *key, char ***out, size_t *n)
{
    const msgpack_object *v = ctl_arg(args, key);
    if (!v)
        return 1;
    if (v->type != MSGPACK_OBJECT_ARRAY || v->via.array.size > 64)
        return -1;
    *out = calloc(v->via.array.size ? v->via.array.size : 1, sizeof(char *));
    *n = 0;
    for (uint32_t i = 0; i < v->via.array.size; i++) {
        const msgpack_object *e = &v->via.array.ptr[i];
        if (e->type != MSGPACK_OBJECT_STR || e->via.str.size > WEFT_NAME_MAX)
            return -1;
        (*out)[(*n)++] = strndup(e->via.str.ptr, e->via.str.size);
    }
    return 0;
}

static int s_arg_bool(const msgpack_object *args, const char *key, bool *out)
{
    const msgpack_object *v = ctl_arg(args, key);
    if (!v)
        return 1;
    if (v->type != MSGPACK_OBJECT_BOOLEAN)
        return -1;
    *out = v->via.boolean;
    return 0;
}

static int s_arg_int(const msgpack_object *args, const char *key, int64_t *out)
{
    const msgpack_object *v = ctl_arg(args, key);
    if (!v)
        return 1;
    if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER && v->via.u64 <= INT64_MAX)
        *out = (int64_t)v->via.u64;
    else if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        *out = v->via.i64;
    else
        return -1;
    return 0;
}

/*  Reads an id given as bin 16 or as a UUID string. Returns 0, 1 absent, -1 bad. */
static int s_arg_id(const msgpack_object *args, const char *key, uint8_t id[WEFT_ID_SIZE])
{
    const msgpack_object *v = ctl_arg(args, key);
    if (!v)
        return 1;
    if (v->type == MSGPACK_OBJECT_BIN && v->via.bin.size == WEFT_ID_SIZE) {
        memcpy(id, v->via.bin.ptr, WEFT_ID_SIZE);
        return 0;
    }
    if (v->type == MSGPACK_OBJECT_STR && v->via.str.size < 64) {
        char text[64];
        memcpy(text, v->via.str.ptr, v->via.str.size);
        text[v->via.str.size] = 0;
        return weft_id_parse(text, id) == 0 ? 0 : -1;
    }
    return -1;
}

static stream_state_t *s_state_new(server_t *sv)
{
    stream_state_t *st = calloc(1, sizeof(*st));
    st->arch = sv->arch;
    st->reader = archive_reader_new(sv->arch->store);
    st->to = UINT64_MAX;
    atomic_fetch_add(&sv->arch->replay_sessions, 1);
    return st;
}

static uint32_t s_credit(const msgpack_object *args)
{
    uint64_t credit = 8;
    ctl_arg_uint(args, "credit", &credit);
    return credit == 0 ? 1 : credit > 1024 ? 1024 : (uint32_t)credit;
}

static void s_replay(server_t *sv, ctl_request_t *req)
{
    stream_state_t *st = s_state_new(sv);
    uint64_t from_offset = 1, to_offset = UINT64_MAX, limit = 0;
    int64_t since = 0, until = 0;
    uint8_t id[WEFT_ID_SIZE];
    int r_off = ctl_arg_uint(req->args, "from_offset", &from_offset);
    int r_since = s_arg_int(req->args, "since", &since);
    int r_id = s_arg_id(req->args, "from_id", id);
    if (r_off < 0 || r_since < 0 || r_id < 0 ||
        ctl_arg_uint(req->args, "to_offset", &to_offset) < 0 ||
        s_arg_int(req->args, "until", &until) < 0 || ctl_arg_uint(req->args, "limit", &limit) < 0 ||
        s_arg_bool(req->args, "live", &st->live) < 0 ||
        s_str_list(req->args, "prefixes", &st->prefixes, &st->nprefixes) < 0 ||
        s_str_list(req->args, "sources", &st->sources, &st->nsources) < 0 ||
        (r_off == 0) + (r_since == 0) + (r_id == 0) > 1) {
        s_state_free(st);
        s_err(sv, req, "bad_request",
              "REPLAY takes at most one of from_offset (uint), since (int ns), from_id (bin 16 or "
              "uuid str); to_offset (uint), until (int ns), prefixes and sources (arrays of "
              "str, at most 64), limit (uint), live (bool), credit (uint)");
        return;
    }
    for (size_t i = 0; i < st->nprefixes; i++)
        if (weft_topic_check(st->prefixes[i], strlen(st->prefixes[i])) != 0 &&
            st->prefixes[i][0]) {
            s_state_free(st);
            s_err(sv, req, "bad_request", "a prefix is not a valid topic prefix");
            return;
        }
    uint64_t start = from_offset ? from_offset : 1;
    if (r_since == 0 || r_id == 0) {
        archive_reader_begin(st->reader);
        int rc = r_since == 0 ? archive_seek_time(st->reader, since, &start)
                              : archive_find_id(st->reader, id, &start);
        archive_reader_end(st->reader);
        if (rc != 0 && r_id == 0) {
            s_state_free(st);
            s_err(sv, req, "not_found", "no event with that id in the archive");
            return;
        }
        if (rc != 0) /* nothing at or after that time yet */
            start = atomic_load(&sv->arch->last_offset) + 1;
    }
    st->next = start;
    st->to = to_offset;
    st->until = until;
    st->limit = limit;
    if (ctl_streams_add(sv->streams, req, s_credit(req->args), s_replay_fill, s_end, st,
                        s_state_free) != 0)
        s_err(sv, req, "busy", "too many streams open; retry later");
}

static void s_fetch(server_t *sv, ctl_request_t *req)
{
    uint64_t inst = 0, from = 0, to = UINT64_MAX;
    if (ctl_arg_uint(req->args, "inst", &inst) != 0 ||
        ctl_arg_uint(req->args, "from_seq", &from) != 0 ||
        ctl_arg_uint(req->args, "to_seq", &to) < 0 || from == 0 || from > to) {
        s_err(sv, req, "bad_request",
              "FETCH needs {inst: uint, from_seq: uint >= 1, to_seq: uint >= from_seq}");
        return;
    }
    stream_state_t *st = s_state_new(sv);
    uint64_t hwm = 0;
    archive_reader_begin(st->reader);
    archive_source_hwm(st->reader, inst, &hwm);
    archive_reader_end(st->reader);
    if (hwm == 0 || from > hwm) {
        s_state_free(st);
        char msg[160];
        snprintf(msg, sizeof(msg), "the archive holds no seq >= %" PRIu64 " of %016" PRIx64,
                 from, inst);
        s_err(sv, req, hwm == 0 ? "not_found" : "gone", msg);
        return;
    }
    st->fetch = true;
    st->inst = inst;
    st->next = from;
    st->seq_to = to < hwm ? to : hwm;
    if (ctl_streams_add(sv->streams, req, s_credit(req->args), s_fetch_fill, s_end, st,
                        s_state_free) != 0)
        s_err(sv, req, "busy", "too many streams open; retry later");
}

static void s_get(server_t *sv, ctl_request_t *req)
{
    uint8_t id[WEFT_ID_SIZE];
    if (s_arg_id(req->args, "id", id) != 0) {
        s_err(sv, req, "bad_request", "GET needs {id: bin 16 or uuid str}");
        return;
    }
    archive_reader_t *r = archive_reader_new(sv->arch->store);
    uint64_t offset;
    archive_rec_t rec;
    archive_reader_begin(r);
    if (archive_find_id(r, id, &offset) == 0 && archive_read(r, offset, &rec) == 0) {
        msgpack_sbuffer_clear(&sv->sb);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sv->sb, msgpack_sbuffer_write);
        s_pack_rec(&pk, &rec);
        ctl_reply(sv->router, req->routing, "OK", req->request_id, sv->sb.data, sv->sb.size);
    } else {
        char text[WEFT_ID_STR];
        char msg[96];
        snprintf(msg, sizeof(msg), "no event %s in the archive", weft_id_format(id, text));
        s_err(sv, req, "not_found", msg);
    }
    archive_reader_end(r);
    archive_reader_destroy(&r);
}

static int s_pack_source(uint64_t inst, uint64_t hwm, void *arg)
{
    msgpack_packer *pk = arg;
    msgpack_pack_array(pk, 2);
    msgpack_pack_uint64(pk, inst);
    msgpack_pack_uint64(pk, hwm);
    return 0;
}

static int s_count_source(uint64_t inst, uint64_t hwm, void *arg)
{
    (void)inst;
    (void)hwm;
    (*(uint32_t *)arg)++;
    return 0;
}

static void s_info(server_t *sv, ctl_request_t *req)
{
    archiver_t *a = sv->arch;
    archive_info_t info;
    archive_store_info(a->store, &info);
    archiver_stats_t st;
    archiver_stats(a, &st);
    msgpack_sbuffer_clear(&sv->sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sv->sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 12);
    ctl_pack_kv_str(&pk, "name", weft_node_name(a->node));
    ctl_pack_kv_uint(&pk, "inst", weft_node_inst(a->node));
    ctl_pack_kv_str(&pk, "dir", a->dir);
    ctl_pack_kv_uint(&pk, "format", info.format);
    ctl_pack_kv_uint(&pk, "first_offset", info.first_offset);
    ctl_pack_kv_uint(&pk, "last_offset", info.last_offset);
    ctl_pack_kv_uint(&pk, "events", info.events);
    ctl_pack_kv_uint(&pk, "bytes_on_disk", info.bytes_on_disk);
    ctl_pack_kv_uint(&pk, "map_size", info.map_size);
    ctl_pack_str(&pk, "ingest");
    msgpack_pack_map(&pk, 12);
    ctl_pack_kv_uint(&pk, "ingested", st.ingested);
    ctl_pack_kv_uint(&pk, "duplicates", st.duplicates);
    ctl_pack_kv_uint(&pk, "batches", st.batches);
    ctl_pack_kv_uint(&pk, "commit_errors", st.commit_errors);
    ctl_pack_kv_uint(&pk, "refused", st.refused);
    ctl_pack_kv_uint(&pk, "map_full", info.map_full);
    ctl_pack_kv_uint(&pk, "repaired", st.repaired);
    ctl_pack_kv_uint(&pk, "unrepaired", st.unrepaired);
    ctl_pack_kv_uint(&pk, "repair_requests", st.repair_requests);
    ctl_pack_kv_uint(&pk, "retention_removed", st.retained_removed);
    ctl_pack_kv_uint(&pk, "commit_p50_us", st.commit_p50_us);
    ctl_pack_kv_uint(&pk, "commit_p99_us", st.commit_p99_us);
    ctl_pack_kv_uint(&pk, "replay_sessions", st.replay_sessions);
    /* Per-source high-water marks, at most 10,000 (the reply stays bounded). */
    archive_reader_t *r = archive_reader_new(a->store);
    uint32_t nsrc = 0;
    archive_reader_begin(r);
    archive_sources_each(r, s_count_source, &nsrc);
    ctl_pack_str(&pk, "sources");
    if (nsrc > 10000) {
        msgpack_pack_nil(&pk);
    } else {
        msgpack_pack_array(&pk, nsrc);
        archive_sources_each(r, s_pack_source, &pk);
    }
    archive_reader_end(r);
    archive_reader_destroy(&r);
    ctl_reply(sv->router, req->routing, "OK", req->request_id, sv->sb.data, sv->sb.size);
}

static void s_handle(server_t *sv)
{
    archiver_t *a = sv->arch;
    ctl_request_t req;
    const char *why = NULL;
    int rc = ctl_request_recv(sv->router, &req, &why);
    if (rc == WEFT_ENET) {
        ctl_request_clear(&req);
        return;
    }
    atomic_fetch_add(&a->requests, 1);
    if (rc != 0) {
        s_err(sv, &req, rc == WEFT_EVERSION ? "bad_version" : "bad_request", why);
    } else if (streq(req.command, "PING")) {
        msgpack_sbuffer_clear(&sv->sb);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sv->sb, msgpack_sbuffer_write);
        msgpack_pack_map(&pk, 3);
        ctl_pack_kv_str(&pk, "name", weft_node_name(a->node));
        ctl_pack_kv_uint(&pk, "inst", weft_node_inst(a->node));
        ctl_pack_kv_int(&pk, "ts", weft_now_ns());
        ctl_reply(sv->router, req.routing, "OK", req.request_id, sv->sb.data, sv->sb.size);
    } else if (streq(req.command, "INFO")) {
        s_info(sv, &req);
    } else if (streq(req.command, "GET")) {
        s_get(sv, &req);
    } else if (streq(req.command, "FETCH")) {
        s_fetch(sv, &req);
    } else if (streq(req.command, "REPLAY")) {
        s_replay(sv, &req);
    } else if (streq(req.command, "CREDIT") || streq(req.command, "CANCEL")) {
        uint64_t stream = req.request_id, batches = 1;
        if (ctl_arg_uint(req.args, "stream", &stream) < 0 ||
            ctl_arg_uint(req.args, "batches", &batches) < 0 || batches > UINT32_MAX)
            s_err(sv, &req, "bad_request", "CREDIT and CANCEL take {stream: uint, batches: uint}");
        else if (streq(req.command, "CREDIT"))
            ctl_streams_credit(sv->streams, &req, stream, (uint32_t)batches);
        else
            ctl_streams_cancel(sv->streams, sv->router, &req, stream);
    } else {
        char msg[128];
        snprintf(msg, sizeof(msg),
                 "unknown command '%s'; the archiver serves PING, INFO, GET, FETCH, REPLAY, "
                 "CREDIT, CANCEL",
                 req.command);
        s_err(sv, &req, "unknown_command", msg);
    }
    ctl_request_clear(&req);
}

void archiver_server(zsock_t *pipe, void *args)
{
    server_t sv = {0};
    sv.arch = args;
    sv.router = zsock_new(ZMQ_ROUTER);
    sv.commits = zsock_new(ZMQ_PULL);
    sv.streams = ctl_streams_new();
    msgpack_sbuffer_init(&sv.sb);
    const char *bind = sv.arch->opts.svc_bind ? sv.arch->opts.svc_bind : "tcp://127.0.0.1:*";
    char bind_random[256];
    bind_util_endpoint(bind, bind_random, sizeof(bind_random));
    int ok = sv.router && sv.commits && zsock_bind(sv.router, "%s", bind_random) >= 0 &&
             zsock_bind(sv.commits, "%s", sv.arch->commit_endpoint) == 0;
    if (ok) {
        zsock_set_linger(sv.router, 0);
        zsock_set_maxmsgsize(sv.router, (int)(CTL_ARGS_MAX + 4096));
        /* A wildcard bind is announced with a host clients can use. */
        const char *bound = zsock_endpoint(sv.router);
        const char *colon = strrchr(bound, ':');
        const char *adv = sv.arch->opts.config ? weft_config_get(sv.arch->opts.config, "node/advertise")
                                               : NULL;
        if (colon && (strncmp(bound, "tcp://0.0.0.0:", 14) == 0 || strncmp(bound, "tcp://*:", 8) == 0))
            snprintf(sv.arch->svc_endpoint, sizeof(sv.arch->svc_endpoint), "tcp://%s%s",
                     adv && *adv ? adv : "127.0.0.1", colon);
        else
            snprintf(sv.arch->svc_endpoint, sizeof(sv.arch->svc_endpoint), "%s", bound);
    } else {
        zsys_error("weft-archiver: cannot bind the service endpoint %s", bind);
    }
    zsock_signal(pipe, ok ? 0 : 1);
    bool busy = false;
    bool terminated = !ok;
    while (!terminated) {
        zmq_pollitem_t items[3] = {{zsock_resolve(pipe), 0, ZMQ_POLLIN, 0},
                                   {zsock_resolve(sv.router), 0, ZMQ_POLLIN, 0},
                                   {zsock_resolve(sv.commits), 0, ZMQ_POLLIN, 0}};
        if (zmq_poll(items, 3, busy ? 0 : 1000) < 0)
            break;
        if (items[0].revents & ZMQ_POLLIN) {
            char *cmd = zstr_recv(pipe);
            terminated = !cmd || streq(cmd, "$TERM");
            zstr_free(&cmd);
        }
        if (items[1].revents & ZMQ_POLLIN)
            for (int i = 0; i < 64 && (zsock_events(sv.router) & ZMQ_POLLIN); i++)
                s_handle(&sv);
        if (items[2].revents & ZMQ_POLLIN) {
            char buf[8];
            while (zmq_recv(zsock_resolve(sv.commits), buf, sizeof(buf), ZMQ_DONTWAIT) >= 0)
                ;
        }
        busy = ctl_streams_pump(sv.streams, sv.router, zclock_mono());
    }
    ctl_streams_destroy(&sv.streams);
    msgpack_sbuffer_destroy(&sv.sb);
    zsock_destroy(&sv.commits);
    zsock_destroy(&sv.router);
}

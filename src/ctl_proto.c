/*  ctl_proto.c - see ctl_proto.h. Parsing never trusts the peer: frame counts and sizes are
    checked before anything is copied, the args frame passes mp_guard before msgpack-c, and a
    bad request still yields a routing envelope so the peer gets an ERR rather than silence.
*/
#include "ctl_proto.h"

#include <stdarg.h>

#include "mp_guard.h"
#include "weft/control.h"
#include "weft/error.h"

static uint64_t s_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

static void s_put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

int ctl_request_recv(zsock_t *router, ctl_request_t *req, const char **why)
{
    static const char *dummy;
    if (!why)
        why = &dummy;
    memset(req, 0, sizeof(*req));
    msgpack_unpacked_init(&req->args_zone);
    zmsg_t *msg = zmsg_recv(router);
    if (!msg)
        return WEFT_ENET;
    req->routing = zmsg_new();
    zframe_t *id = zmsg_pop(msg);
    if (id)
        zmsg_append(req->routing, &id);
    /* A REQ-style empty delimiter belongs to the routing envelope. */
    zframe_t *first = zmsg_first(msg);
    if (first && zframe_size(first) == 0) {
        zframe_t *delim = zmsg_pop(msg);
        zmsg_append(req->routing, &delim);
    }
    int rc = 0;
    size_t nframes = zmsg_size(msg);
    zframe_t *proto = zmsg_pop(msg);
    zframe_t *cmd = zmsg_pop(msg);
    zframe_t *rid = zmsg_pop(msg);
    zframe_t *args = zmsg_pop(msg);
    if (rid && zframe_size(rid) == 8) {
        req->request_id = s_be64(zframe_data(rid));
        req->has_request_id = true;
    }
    if (!proto || zframe_size(proto) != strlen(WEFT_CTL_PROTOCOL) ||
        memcmp(zframe_data(proto), WEFT_CTL_PROTOCOL, zframe_size(proto)) != 0) {
        *why = "first frame must be the protocol name \"weft/1\"";
        rc = WEFT_EVERSION;
    } else if (nframes != 4) {
        *why = "a request has exactly 4 frames: protocol, command, request id, args";
        rc = WEFT_EMALFORMED;
    } else if (zframe_size(cmd) == 0 || zframe_size(cmd) > CTL_COMMAND_MAX) {
        *why = "command must be 1..31 bytes";
        rc = WEFT_EMALFORMED;
    } else if (!req->has_request_id) {
        *why = "request id must be 8 bytes (uint64 big-endian)";
        rc = WEFT_EMALFORMED;
    } else if (zframe_size(args) > CTL_ARGS_MAX) {
        *why = "args frame larger than 4 MiB";
        rc = WEFT_EMALFORMED;
    } else {
        memcpy(req->command, zframe_data(cmd), zframe_size(cmd));
        req->command[zframe_size(cmd)] = 0;
        for (char *c = req->command; *c; c++)
            if (*c < 0x21 || *c > 0x7e) {
                *why = "command must be printable ASCII";
                rc = WEFT_EMALFORMED;
                break;
            }
        if (rc == 0 && zframe_size(args) == 0) {
            req->args = NULL; /* an empty frame is read as an empty map */
        } else if (rc == 0) {
            const char *gwhy = NULL;
            size_t off = 0;
            if (mp_guard_check(zframe_data(args), zframe_size(args), 0, &gwhy) != 0) {
                *why = gwhy;
                rc = WEFT_EMALFORMED;
            } else if (msgpack_unpack_next(&req->args_zone, (const char *)zframe_data(args),
                                           zframe_size(args), &off) != MSGPACK_UNPACK_SUCCESS ||
                       req->args_zone.data.type != MSGPACK_OBJECT_MAP) {
                *why = "args must be a msgpack map";
                rc = WEFT_EMALFORMED;
            } else {
                /* Unpacked objects point into the frame for str/bin: keep the bytes alive by
                   keeping the frame in the routing message's shadow. */
                req->args = &req->args_zone.data;
            }
        }
    }
    zframe_destroy(&proto);
    zframe_destroy(&cmd);
    zframe_destroy(&rid);
    req->args_frame = args; /* msgpack-c references str/bin inside it */
    zmsg_destroy(&msg);
    return rc;
}

void ctl_request_clear(ctl_request_t *req)
{
    if (!req)
        return;
    zmsg_destroy(&req->routing);
    zframe_destroy(&req->args_frame);
    msgpack_unpacked_destroy(&req->args_zone);
    msgpack_unpacked_init(&req->args_zone);
    req->args = NULL;
}

int ctl_reply(zsock_t *router, zmsg_t *routing, const char *status, uint64_t request_id,
              const void *body, size_t body_size)
{
    zmsg_t *msg = routing ? zmsg_dup(routing) : zmsg_new();
    uint8_t rid[8];
    s_put_be64(rid, request_id);
    zmsg_addstr(msg, WEFT_CTL_PROTOCOL);
    zmsg_addstr(msg, status);
    zmsg_addmem(msg, rid, 8);
    static const uint8_t empty_map = 0x80;
    if (body && body_size)
        zmsg_addmem(msg, body, body_size);
    else
        zmsg_addmem(msg, &empty_map, 1);
    /* ROUTER_MANDATORY is not set: a reply to a vanished peer is dropped silently by ZeroMQ,
       and a full peer queue drops too; neither blocks the server. */
    int rc = zmsg_send(&msg, router);
    zmsg_destroy(&msg);
    return rc;
}

int ctl_reply_err(zsock_t *router, zmsg_t *routing, uint64_t request_id, const char *code,
                  const char *fmt, ...)
{
    char message[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    ctl_pack_kv_str(&pk, "code", code);
    ctl_pack_kv_str(&pk, "message", message);
    int rc = ctl_reply(router, routing, "ERR", request_id, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

const msgpack_object *ctl_arg(const msgpack_object *args, const char *key)
{
    if (!args || args->type != MSGPACK_OBJECT_MAP)
        return NULL;
    size_t n = strlen(key);
    for (uint32_t i = 0; i < args->via.map.size; i++) {
        const msgpack_object *k = &args->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
            memcmp(k->via.str.ptr, key, n) == 0)
            return &args->via.map.ptr[i].val;
    }
    return NULL;
}

int ctl_arg_uint(const msgpack_object *args, const char *key, uint64_t *out)
{
    const msgpack_object *v = ctl_arg(args, key);
    if (!v)
        return 1;
    if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return -1;
    *out = v->via.u64;
    return 0;
}

int ctl_arg_str(const msgpack_object *args, const char *key, const char **ptr, size_t *size)
{
    const msgpack_object *v = ctl_arg(args, key);
    if (!v)
        return 1;
    if (v->type != MSGPACK_OBJECT_STR)
        return -1;
    *ptr = v->via.str.ptr;
    *size = v->via.str.size;
    return 0;
}

void ctl_pack_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

void ctl_pack_kv_uint(msgpack_packer *pk, const char *key, uint64_t v)
{
    ctl_pack_str(pk, key);
    msgpack_pack_uint64(pk, v);
}

void ctl_pack_kv_int(msgpack_packer *pk, const char *key, int64_t v)
{
    ctl_pack_str(pk, key);
    msgpack_pack_int64(pk, v);
}

void ctl_pack_kv_str(msgpack_packer *pk, const char *key, const char *v)
{
    ctl_pack_str(pk, key);
    ctl_pack_str(pk, v);
}

void ctl_pack_event(msgpack_packer *pk, const char *topic, size_t topic_size,
                    const uint8_t *envelope, size_t envelope_size, const uint8_t *payload,
                    size_t payload_size)
{
    msgpack_pack_array(pk, 3);
    msgpack_pack_str(pk, topic_size);
    msgpack_pack_str_body(pk, topic, topic_size);
    msgpack_pack_bin(pk, envelope_size);
    msgpack_pack_bin_body(pk, envelope, envelope_size);
    msgpack_pack_bin(pk, payload_size);
    msgpack_pack_bin_body(pk, payload, payload_size);
}

/* ---- streams ---------------------------------------------------------------------------- */

typedef struct {
    zmsg_t *routing;       /* where batches go */
    zframe_t *peer;        /* first routing frame: identifies the peer for CREDIT/CANCEL */
    uint64_t request_id;   /* the request this stream answers */
    uint32_t credit;       /* batches the client still accepts */
    uint64_t batches;      /* batches sent */
    int64_t last_active;   /* ms, for idle expiry */
    bool done;             /* fill said there is nothing more */
    bool last_full;        /* the last fill produced a full batch */
    ctl_fill_fn *fill;
    ctl_end_fn *end;
    void *state;
    void (*free_fn)(void *);
} stream_t;

struct ctl_streams_t {
    zlistx_t *streams; /* of stream_t */
    msgpack_sbuffer batch;
};

static void s_stream_free(stream_t **sp)
{
    stream_t *s = *sp;
    if (!s)
        return;
    zmsg_destroy(&s->routing);
    zframe_destroy(&s->peer);
    if (s->free_fn)
        s->free_fn(s->state);
    free(s);
    *sp = NULL;
}

ctl_streams_t *ctl_streams_new(void)
{
    ctl_streams_t *self = calloc(1, sizeof(*self));
    if (!self)
        return NULL;
    self->streams = zlistx_new();
    zlistx_set_destructor(self->streams, (zlistx_destructor_fn *)s_stream_free);
    msgpack_sbuffer_init(&self->batch);
    return self;
}

void ctl_streams_destroy(ctl_streams_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    ctl_streams_t *self = *self_p;
    zlistx_destroy(&self->streams);
    msgpack_sbuffer_destroy(&self->batch);
    free(self);
    *self_p = NULL;
}

size_t ctl_streams_count(const ctl_streams_t *self)
{
    return zlistx_size(self->streams);
}

int ctl_streams_add(ctl_streams_t *self, const ctl_request_t *req, uint32_t credit,
                    ctl_fill_fn *fill, ctl_end_fn *end, void *state, void (*free_fn)(void *))
{
    if (zlistx_size(self->streams) >= CTL_STREAMS_MAX) {
        if (free_fn)
            free_fn(state);
        return -1;
    }
    stream_t *s = calloc(1, sizeof(*s));
    assert(s);
    s->routing = zmsg_dup(req->routing);
    s->peer = zframe_dup(zmsg_first(req->routing));
    s->request_id = req->request_id;
    s->credit = credit;
    s->last_active = zclock_mono();
    s->fill = fill;
    s->end = end;
    s->state = state;
    s->free_fn = free_fn;
    zlistx_add_end(self->streams, s);
    return 0;
}

static stream_t *s_find(ctl_streams_t *self, const ctl_request_t *req, uint64_t stream_id)
{
    zframe_t *peer = zmsg_first(req->routing);
    for (stream_t *s = zlistx_first(self->streams); s; s = zlistx_next(self->streams))
        if (s->request_id == stream_id && zframe_eq(s->peer, peer))
            return s;
    return NULL;
}

int ctl_streams_credit(ctl_streams_t *self, const ctl_request_t *req, uint64_t stream_id,
                       uint32_t batches)
{
    stream_t *s = s_find(self, req, stream_id);
    if (!s)
        return -1;
    uint64_t c = (uint64_t)s->credit + batches;
    s->credit = c > UINT32_MAX ? UINT32_MAX : (uint32_t)c;
    if (batches > 0)
        s->last_active = zclock_mono(); /* CREDIT 0 must not keep a stream alive forever */
    return 0;
}

static void s_send_end(ctl_streams_t *self, zsock_t *router, stream_t *s, bool cancelled)
{
    msgpack_sbuffer_clear(&self->batch);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &self->batch, msgpack_sbuffer_write);
    s->end(s->state, &pk, cancelled);
    ctl_reply(router, s->routing, "END", s->request_id, self->batch.data, self->batch.size);
}

int ctl_streams_cancel(ctl_streams_t *self, zsock_t *router, const ctl_request_t *req,
                       uint64_t stream_id)
{
    stream_t *s = s_find(self, req, stream_id);
    if (!s)
        return -1;
    s_send_end(self, router, s, true);
    zlistx_delete(self->streams, zlistx_cursor(self->streams));
    return 0;
}

bool ctl_streams_pump(ctl_streams_t *self, zsock_t *router, int64_t now_ms)
{
    bool more = false;
    msgpack_sbuffer events;
    msgpack_sbuffer_init(&events);
    stream_t *s = zlistx_first(self->streams);
    while (s) {
        bool remove = false;
        if (!s->done && s->credit > 0) {
            msgpack_sbuffer_clear(&events);
            msgpack_packer pk;
            msgpack_packer_init(&pk, &events, msgpack_sbuffer_write);
            size_t n = s->fill(s->state, &pk, CTL_BATCH_EVENTS, CTL_BATCH_BYTES, &s->done);
            /* A short batch means the source is drained for now (a live replay waits for
               new commits; ctl_streams_pump is called again when they come). */
            s->last_full = n == CTL_BATCH_EVENTS || events.size >= CTL_BATCH_BYTES;
            if (n > 0) {
                /* The batch body is an array of n events: header, then the packed events. */
                msgpack_sbuffer_clear(&self->batch);
                msgpack_packer hp;
                msgpack_packer_init(&hp, &self->batch, msgpack_sbuffer_write);
                msgpack_pack_array(&hp, (uint32_t)n);
                msgpack_sbuffer_write(&self->batch, events.data, events.size);
                ctl_reply(router, s->routing, "EVENTS", s->request_id, self->batch.data,
                          self->batch.size);
                s->credit--;
                s->batches++;
                s->last_active = now_ms;
            }
        }
        if (s->done) {
            s_send_end(self, router, s, false);
            remove = true;
        } else if (s->credit == 0 && now_ms - s->last_active > CTL_STREAM_IDLE_MS) {
            s_send_end(self, router, s, true);
            remove = true;
        } else if (s->credit > 0 && s->last_full) {
            more = true; /* a full batch went out: there is probably more right away */
        }
        void *handle = zlistx_cursor(self->streams);
        s = zlistx_next(self->streams);
        if (remove)
            zlistx_delete(self->streams, handle);
    }
    msgpack_sbuffer_destroy(&events);
    return more;
}

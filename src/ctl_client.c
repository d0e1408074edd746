/*  ctl_client.c - client side of the control protocol (weft/control.h): one DEALER socket,
    request ids counting up from a random start, replies checked frame by frame.
*/
#include <czmq.h>
#include <msgpack.h>

#include "ctl_proto.h"
#include "mp_guard.h"
#include "weft/control.h"
#include "weft/envelope.h"

struct weft_ctl_t {
    zsock_t *dealer;
    uint64_t next_id;
    uint64_t malformed;  /* replies that did not follow the framing */
    uint64_t stray;      /* replies for other request ids */
};

void weft_reply_clear(weft_reply_t *reply)
{
    if (!reply)
        return;
    free(reply->body);
    memset(reply, 0, sizeof(*reply));
}

weft_ctl_t *weft_ctl_new(const char *endpoint, int *err)
{
    int dummy;
    if (!err)
        err = &dummy;
    if (!endpoint || !*endpoint) {
        *err = WEFT_EINVAL;
        return NULL;
    }
    weft_ctl_t *self = calloc(1, sizeof(*self));
    if (!self) {
        *err = WEFT_ENOMEM;
        return NULL;
    }
    self->dealer = zsock_new(ZMQ_DEALER);
    if (!self->dealer || zsock_connect(self->dealer, "%s", endpoint) != 0) {
        zsock_destroy(&self->dealer);
        free(self);
        *err = WEFT_ENET;
        return NULL;
    }
    zsock_set_linger(self->dealer, 0);
    uint8_t id[WEFT_ID_SIZE];
    weft_id_new(id);
    memcpy(&self->next_id, id + 8, 4); /* random start, small enough never to wrap */
    self->next_id = (self->next_id & 0xffffffu) + 1;
    *err = WEFT_OK;
    return self;
}

void weft_ctl_destroy(weft_ctl_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zsock_destroy(&(*self_p)->dealer);
    free(*self_p);
    *self_p = NULL;
}

static void s_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static int s_send(weft_ctl_t *self, const char *command, uint64_t id, const void *args,
                  size_t args_size)
{
    uint8_t rid[8];
    s_be64(rid, id);
    static const uint8_t empty_map = 0x80;
    zmsg_t *msg = zmsg_new();
    zmsg_addstr(msg, WEFT_CTL_PROTOCOL);
    zmsg_addstr(msg, command);
    zmsg_addmem(msg, rid, 8);
    if (args && args_size)
        zmsg_addmem(msg, args, args_size);
    else
        zmsg_addmem(msg, &empty_map, 1);
    int rc = zmsg_send(&msg, self->dealer);
    zmsg_destroy(&msg);
    return rc == 0 ? WEFT_OK : WEFT_ENET;
}

int64_t weft_ctl_send(weft_ctl_t *self, const char *command, const void *args, size_t args_size)
{
    if (!self || !command)
        return WEFT_EINVAL;
    uint64_t id = self->next_id++;
    int rc = s_send(self, command, id, args, args_size);
    return rc == WEFT_OK ? (int64_t)id : rc;
}

/*  Reads {code, message} out of an ERR body into the reply. */
static void s_parse_err(weft_reply_t *reply)
{
    snprintf(reply->err_code, sizeof(reply->err_code), "unknown");
    if (mp_guard_check(reply->body, reply->body_size, 0, NULL) != 0)
        return;
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    if (msgpack_unpack_next(&u, (const char *)reply->body, reply->body_size, &off) ==
        MSGPACK_UNPACK_SUCCESS) {
        const char *p;
        size_t n;
        if (ctl_arg_str(&u.data, "code", &p, &n) == 0)
            snprintf(reply->err_code, sizeof(reply->err_code), "%.*s", (int)n, p);
        if (ctl_arg_str(&u.data, "message", &p, &n) == 0)
            snprintf(reply->err_message, sizeof(reply->err_message), "%.*s", (int)n, p);
    }
    msgpack_unpacked_destroy(&u);
}

int weft_ctl_recv(weft_ctl_t *self, uint64_t request_id, int timeout_ms, weft_reply_t *reply)
{
    if (!self || !reply)
        return WEFT_EINVAL;
    memset(reply, 0, sizeof(*reply));
    int64_t deadline = zclock_mono() + timeout_ms;
    while (1) {
        int64_t left = deadline - zclock_mono();
        if (left < 0)
            left = 0;
        zmq_pollitem_t item = {zsock_resolve(self->dealer), 0, ZMQ_POLLIN, 0};
        int rc = zmq_poll(&item, 1, (long)left);
        if (rc <= 0)
            return WEFT_ETIMEOUT;
        zmsg_t *msg = zmsg_recv(self->dealer);
        if (!msg)
            return WEFT_ETIMEOUT;
        zframe_t *proto = zmsg_first(msg);
        zframe_t *status = zmsg_next(msg);
        zframe_t *rid = zmsg_next(msg);
        zframe_t *body = zmsg_next(msg);
        if (zmsg_size(msg) != 4 || !zframe_streq(proto, WEFT_CTL_PROTOCOL) ||
            zframe_size(status) == 0 || zframe_size(status) >= sizeof(reply->status) ||
            zframe_size(rid) != 8) {
            self->malformed++;
            zmsg_destroy(&msg);
            return WEFT_EMALFORMED;
        }
        uint64_t id = 0;
        for (int i = 0; i < 8; i++)
            id = (id << 8) | zframe_data(rid)[i];
        if (id != request_id) {
            self->stray++;
            zmsg_destroy(&msg);
            continue;
        }
        memcpy(reply->status, zframe_data(status), zframe_size(status));
        reply->status[zframe_size(status)] = 0;
        reply->request_id = id;
        reply->body_size = zframe_size(body);
        reply->body = malloc(reply->body_size ? reply->body_size : 1);
        if (!reply->body) {
            zmsg_destroy(&msg);
            return WEFT_ENOMEM;
        }
        memcpy(reply->body, zframe_data(body), reply->body_size);
        zmsg_destroy(&msg);
        if (strcmp(reply->status, "ERR") == 0)
            s_parse_err(reply);
        return WEFT_OK;
    }
}

int weft_ctl_call(weft_ctl_t *self, const char *command, const void *args, size_t args_size,
                  int timeout_ms, weft_reply_t *reply)
{
    int64_t id = weft_ctl_send(self, command, args, args_size);
    if (id < 0)
        return (int)id;
    return weft_ctl_recv(self, (uint64_t)id, timeout_ms, reply);
}

static int s_send_stream_op(weft_ctl_t *self, const char *command, uint64_t stream_id,
                            int64_t batches)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, batches >= 0 ? 2 : 1);
    ctl_pack_kv_uint(&pk, "stream", stream_id);
    if (batches >= 0)
        ctl_pack_kv_uint(&pk, "batches", (uint64_t)batches);
    /* CREDIT and CANCEL carry the stream's request id in their own request id frame too, so
       that a server can route them without reading args. */
    int rc = s_send(self, command, stream_id, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

int weft_ctl_credit(weft_ctl_t *self, uint64_t request_id, uint32_t batches)
{
    return self ? s_send_stream_op(self, "CREDIT", request_id, batches) : WEFT_EINVAL;
}

int weft_ctl_cancel(weft_ctl_t *self, uint64_t request_id)
{
    return self ? s_send_stream_op(self, "CANCEL", request_id, -1) : WEFT_EINVAL;
}

int weft_ctl_ping(weft_ctl_t *self, int timeout_ms, int64_t *rtt_ns)
{
    int64_t t0 = zclock_usecs();
    weft_reply_t reply;
    int rc = weft_ctl_call(self, "PING", NULL, 0, timeout_ms, &reply);
    if (rc == WEFT_OK && strcmp(reply.status, "OK") != 0)
        rc = WEFT_EREMOTE;
    weft_reply_clear(&reply);
    if (rc == WEFT_OK && rtt_ns)
        *rtt_ns = (zclock_usecs() - t0) * 1000;
    return rc;
}

int weft_reply_each_event(const weft_reply_t *reply,
                          int (*fn)(const weft_wire_event_t *ev, void *arg), void *arg)
{
    if (!reply || !fn || mp_guard_check(reply->body, reply->body_size, 0, NULL) != 0)
        return WEFT_EMALFORMED;
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    int rc = WEFT_OK;
    if (msgpack_unpack_next(&u, (const char *)reply->body, reply->body_size, &off) !=
            MSGPACK_UNPACK_SUCCESS ||
        u.data.type != MSGPACK_OBJECT_ARRAY) {
        rc = WEFT_EMALFORMED;
    } else {
        for (uint32_t i = 0; i < u.data.via.array.size && rc == WEFT_OK; i++) {
            const msgpack_object *e = &u.data.via.array.ptr[i];
            if (e->type != MSGPACK_OBJECT_ARRAY || e->via.array.size < 3 ||
                e->via.array.ptr[0].type != MSGPACK_OBJECT_STR ||
                e->via.array.ptr[1].type != MSGPACK_OBJECT_BIN ||
                e->via.array.ptr[2].type != MSGPACK_OBJECT_BIN) {
                rc = WEFT_EMALFORMED;
                break;
            }
            weft_wire_event_t ev = {
                e->via.array.ptr[0].via.str.ptr,
                e->via.array.ptr[0].via.str.size,
                (const uint8_t *)e->via.array.ptr[1].via.bin.ptr,
                e->via.array.ptr[1].via.bin.size,
                (const uint8_t *)e->via.array.ptr[2].via.bin.ptr,
                e->via.array.ptr[2].via.bin.size,
            };
            rc = fn(&ev, arg);
        }
    }
    msgpack_unpacked_destroy(&u);
    return rc;
}

/*  Reads the uint fields of an END or ERR body into totals. */
static void s_read_totals(const weft_reply_t *reply, weft_fetch_totals_t *t)
{
    if (mp_guard_check(reply->body, reply->body_size, 0, NULL) != 0)
        return;
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    if (msgpack_unpack_next(&u, (const char *)reply->body, reply->body_size, &off) ==
        MSGPACK_UNPACK_SUCCESS) {
        ctl_arg_uint(&u.data, "missing", &t->missing);
        ctl_arg_uint(&u.data, "held_from", &t->held_from);
        ctl_arg_uint(&u.data, "held_to", &t->held_to);
    }
    msgpack_unpacked_destroy(&u);
}

typedef struct {
    int (*fn)(const weft_wire_event_t *, void *);
    void *arg;
    uint64_t count;
} fetch_ctx_t;

static int s_fetch_one(const weft_wire_event_t *ev, void *arg)
{
    fetch_ctx_t *ctx = arg;
    ctx->count++;
    return ctx->fn(ev, ctx->arg);
}

int weft_ctl_fetch(weft_ctl_t *self, uint64_t inst, uint64_t from_seq, uint64_t to_seq,
                   int (*fn)(const weft_wire_event_t *ev, void *arg), void *arg, int timeout_ms,
                   weft_fetch_totals_t *totals, char *err_out)
{
    return weft_ctl_fetch_filtered(self, inst, from_seq, to_seq, NULL, 0, fn, arg, timeout_ms,
                                   totals, err_out);
}

int weft_ctl_fetch_filtered(weft_ctl_t *self, uint64_t inst, uint64_t from_seq, uint64_t to_seq,
                            const char *const *prefixes, size_t nprefixes,
                            int (*fn)(const weft_wire_event_t *ev, void *arg), void *arg,
                            int timeout_ms, weft_fetch_totals_t *totals, char *err_out)
{
    if (!self || !fn)
        return WEFT_EINVAL;
    weft_fetch_totals_t dummy;
    if (!totals)
        totals = &dummy;
    memset(totals, 0, sizeof(*totals));
    const uint32_t window = 4;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, nprefixes ? 5 : 4);
    ctl_pack_kv_uint(&pk, "inst", inst);
    ctl_pack_kv_uint(&pk, "from_seq", from_seq);
    ctl_pack_kv_uint(&pk, "to_seq", to_seq);
    ctl_pack_kv_uint(&pk, "credit", window);
    if (nprefixes) {
        ctl_pack_str(&pk, "prefixes");
        msgpack_pack_array(&pk, (uint32_t)nprefixes);
        for (size_t i = 0; i < nprefixes; i++)
            ctl_pack_str(&pk, prefixes[i]);
    }
    int64_t id = weft_ctl_send(self, "FETCH", sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
    if (id < 0)
        return (int)id;
    fetch_ctx_t ctx = {fn, arg, 0};
    while (1) {
        weft_reply_t reply;
        int rc = weft_ctl_recv(self, (uint64_t)id, timeout_ms, &reply);
        if (rc != WEFT_OK)
            return rc;
        if (strcmp(reply.status, "EVENTS") == 0) {
            rc = weft_reply_each_event(&reply, s_fetch_one, &ctx);
            weft_reply_clear(&reply);
            if (rc != WEFT_OK) {
                weft_ctl_cancel(self, (uint64_t)id);
                return rc;
            }
            weft_ctl_credit(self, (uint64_t)id, 1); /* keep `window` batches in flight */
            continue;
        }
        if (strcmp(reply.status, "END") == 0) {
            s_read_totals(&reply, totals);
            totals->events = ctx.count;
            weft_reply_clear(&reply);
            return WEFT_OK;
        }
        if (strcmp(reply.status, "ERR") == 0) {
            s_read_totals(&reply, totals);
            if (err_out)
                snprintf(err_out, 256, "%.60s: %.190s", reply.err_code, reply.err_message);
            rc = strcmp(reply.err_code, "gone") == 0        ? WEFT_EGONE
                 : strcmp(reply.err_code, "not_found") == 0 ? WEFT_ENOTFOUND
                                                            : WEFT_EREMOTE;
            weft_reply_clear(&reply);
            return rc;
        }
        weft_reply_clear(&reply);
        return WEFT_EMALFORMED;
    }
}

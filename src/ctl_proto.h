/*  ctl_proto.h - server side of the control protocol: request parsing, replies, and
    credit-controlled streams. Shared by every node's control endpoint and by the archiver and
    DLQ servers.

    Request on a ROUTER: [routing id...][""?]["weft/1"][command][request id: u64 BE][args map]
    Reply:               [routing id...]["weft/1"][status][request id][body: msgpack]

    The args frame is checked with mp_guard before msgpack-c unpacks it, and must be a map.
*/
#ifndef WEFT_CTL_PROTO_H_INCLUDED
#define WEFT_CTL_PROTO_H_INCLUDED

#include <czmq.h>
#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>

#define CTL_ARGS_MAX (4u << 20)  /* largest args frame: a dead letter carries a whole event */
#define CTL_COMMAND_MAX 31

/*  A parsed request. Owns routing (the envelope frames to reply to) and the unpacked args. */
typedef struct {
    zmsg_t *routing;              /* routing-id frames, in order */
    char command[CTL_COMMAND_MAX + 1];
    uint64_t request_id;
    zframe_t *args_frame;         /* the bytes args points into */
    msgpack_unpacked args_zone;   /* owns args */
    const msgpack_object *args;   /* a map (possibly empty) */
    bool has_request_id;
} ctl_request_t;

/*  Reads one multipart message from router and parses it. Returns 0 and fills req; or a
    negative weft_err_t with req->routing (and request_id when it was readable) still set so
    the caller can answer ERR: WEFT_EVERSION (protocol frame is not "weft/1"), WEFT_EMALFORMED
    (wrong frame count or sizes, args not a bounded msgpack map). *why says what was wrong.
    Returns WEFT_ENET when nothing could be read. Always call ctl_request_clear afterwards. */
int ctl_request_recv(zsock_t *router, ctl_request_t *req, const char **why);

/*  Frees what req holds. Safe twice. */
void ctl_request_clear(ctl_request_t *req);

/*  Sends a reply with a ready msgpack body. Does not take ownership of anything. Returns 0 or
    -1 (the peer is gone or its queue is full; the reply is dropped). */
int ctl_reply(zsock_t *router, zmsg_t *routing, const char *status, uint64_t request_id,
              const void *body, size_t body_size);

/*  Sends ERR with body {code, message}. */
int ctl_reply_err(zsock_t *router, zmsg_t *routing, uint64_t request_id, const char *code,
                  const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/*  Argument access on a request's args map. Each returns 1 when the key is absent (out is
    untouched), 0 when present and of the right type, -1 when present with a wrong type. */
int ctl_arg_uint(const msgpack_object *args, const char *key, uint64_t *out);
int ctl_arg_str(const msgpack_object *args, const char *key, const char **ptr, size_t *size);
const msgpack_object *ctl_arg(const msgpack_object *args, const char *key);

/*  msgpack helpers for building bodies. */
void ctl_pack_str(msgpack_packer *pk, const char *s);
void ctl_pack_kv_uint(msgpack_packer *pk, const char *key, uint64_t v);
void ctl_pack_kv_int(msgpack_packer *pk, const char *key, int64_t v);
void ctl_pack_kv_str(msgpack_packer *pk, const char *key, const char *v);
/*  Packs one wire event as the array [topic, envelope, payload]. */
void ctl_pack_event(msgpack_packer *pk, const char *topic, size_t topic_size,
                    const uint8_t *envelope, size_t envelope_size, const uint8_t *payload,
                    size_t payload_size);

/* ---- streams under credit ---------------------------------------------------------------- */

typedef struct ctl_streams_t ctl_streams_t;

/*  Fills one batch: packs up to max_events events (each with ctl_pack_event, or any array
    whose first three elements are topic, envelope, payload) into pk, stopping early once
    max_bytes have been packed. Returns the number packed and sets *done when the stream has
    nothing more to send. */
typedef size_t(ctl_fill_fn)(void *state, msgpack_packer *pk, size_t max_events,
                            size_t max_bytes, bool *done);
/*  Packs the END body (one msgpack object) for a stream that finished or was cancelled. */
typedef void(ctl_end_fn)(void *state, msgpack_packer *pk, bool cancelled);

#define CTL_STREAMS_MAX 64
#define CTL_BATCH_EVENTS 512
#define CTL_BATCH_BYTES (256u * 1024u)
#define CTL_STREAM_IDLE_MS 30000

ctl_streams_t *ctl_streams_new(void);
void ctl_streams_destroy(ctl_streams_t **self_p);

/*  Starts a stream answering request (routing is duplicated) with `credit` batches allowed.
    Takes ownership of state (freed with free_fn when the stream ends). Returns 0, or -1 when
    CTL_STREAMS_MAX streams are open (state is freed; answer ERR busy). */
int ctl_streams_add(ctl_streams_t *self, const ctl_request_t *req, uint32_t credit,
                    ctl_fill_fn *fill, ctl_end_fn *end, void *state, void (*free_fn)(void *));

/*  CREDIT {n} / CANCEL for a stream of this peer. Returns 0, or -1 if no such stream. */
int ctl_streams_credit(ctl_streams_t *self, const ctl_request_t *req, uint64_t stream_id,
                       uint32_t batches);
int ctl_streams_cancel(ctl_streams_t *self, zsock_t *router, const ctl_request_t *req,
                       uint64_t stream_id);

/*  Sends at most one batch per stream that has credit, ends finished streams, expires idle
    ones. Returns true when some stream has credit and just sent a full batch (call again
    soon). A stream whose fill returned a short batch without being done (a live replay that
    caught up) is pumped again only when the caller next calls, e.g. after new data arrived. */
bool ctl_streams_pump(ctl_streams_t *self, zsock_t *router, int64_t now_ms);

size_t ctl_streams_count(const ctl_streams_t *self);

#endif

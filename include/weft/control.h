/*  weft/control.h - client side of the control protocol (DEALER towards a ROUTER endpoint).

    Every request is four frames ["weft/1"][command][request id: 8 bytes big-endian][args: msgpack
    map]; every reply is ["weft/1"][status][request id][body: msgpack], status one of OK, ERR,
    EVENTS, END. Streams (FETCH, REPLAY) send EVENTS batches only while the client has credit
    (CREDIT grants more batches), then END. docs/protocol.md is the full specification.

    A weft_ctl_t is one DEALER socket; it is not thread-safe (use one per thread). Replies for
    request ids other than the one being waited for are discarded and counted.
*/
#ifndef WEFT_CONTROL_H_INCLUDED
#define WEFT_CONTROL_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#include "weft/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define WEFT_CTL_PROTOCOL "weft/1"

typedef struct weft_ctl_t weft_ctl_t;

/*  One reply. body points into memory owned by the reply; release with weft_reply_clear. */
typedef struct {
    char status[8];          /* "OK", "ERR", "EVENTS" or "END" */
    uint64_t request_id;
    uint8_t *body;           /* msgpack bytes */
    size_t body_size;
    char err_code[64];       /* for ERR: the code, e.g. "bad_request" */
    char err_message[256];   /* for ERR: the sentence */
} weft_reply_t;

/*  Releases what a reply holds and zeroes it. Safe to call twice. */
void weft_reply_clear(weft_reply_t *reply);

/*  Creates a client connected to endpoint. Returns NULL with *err = WEFT_ENET or WEFT_EINVAL. */
weft_ctl_t *weft_ctl_new(const char *endpoint, int *err);

/*  Closes the client and sets *self_p to NULL. Safe on NULL and twice. */
void weft_ctl_destroy(weft_ctl_t **self_p);

/*  Sends a request. args is a msgpack map (NULL/0 sends an empty map). Returns the request id
    (> 0), or WEFT_ENET if the socket refused the message. */
int64_t weft_ctl_send(weft_ctl_t *self, const char *command, const void *args, size_t args_size);

/*  Waits for the next reply to request_id (at most timeout_ms) and fills reply. Returns WEFT_OK
    (whatever the status, including ERR), WEFT_ETIMEOUT, or WEFT_EMALFORMED for a reply that
    does not follow the framing (counted, and skipped). */
int weft_ctl_recv(weft_ctl_t *self, uint64_t request_id, int timeout_ms, weft_reply_t *reply);

/*  Sends a request and waits for its first reply. Returns as weft_ctl_recv, or WEFT_ENET. */
int weft_ctl_call(weft_ctl_t *self, const char *command, const void *args, size_t args_size,
                  int timeout_ms, weft_reply_t *reply);

/*  Grants `batches` more EVENTS batches to stream request_id. Returns WEFT_OK or WEFT_ENET. */
int weft_ctl_credit(weft_ctl_t *self, uint64_t request_id, uint32_t batches);

/*  Ends stream request_id early; the server answers END. Returns WEFT_OK or WEFT_ENET. */
int weft_ctl_cancel(weft_ctl_t *self, uint64_t request_id);

/*  PING round trip. Returns WEFT_OK and the round trip time in ns, or WEFT_ETIMEOUT. */
int weft_ctl_ping(weft_ctl_t *self, int timeout_ms, int64_t *rtt_ns);

/*  One event of an EVENTS batch, pointing into the batch. */
typedef struct {
    const char *topic;  /* not NUL-terminated */
    size_t topic_size;
    const uint8_t *envelope;
    size_t envelope_size;
    const uint8_t *payload;
    size_t payload_size;
} weft_wire_event_t;

/*  Calls fn for each event of an EVENTS reply body. Returns WEFT_OK, fn's non-zero value if it
    stopped early, or WEFT_EMALFORMED if the body is not an array of [topic, envelope, payload]. */
int weft_reply_each_event(const weft_reply_t *reply,
                          int (*fn)(const weft_wire_event_t *ev, void *arg), void *arg);

/*  Totals of a FETCH. */
typedef struct {
    uint64_t events;     /* events delivered to the callback */
    uint64_t missing;    /* events in the asked range the server no longer held */
    uint64_t held_from;  /* oldest seq the server held when the stream ended (0: none) */
    uint64_t held_to;    /* newest seq it held */
} weft_fetch_totals_t;

/*  FETCH {inst, from_seq, to_seq} from a node's outbox: calls fn for every event, in seq order,
    granting credit as it goes. Returns WEFT_OK (totals filled), WEFT_EGONE when the server holds
    none of the range (totals' held_* say what it holds), WEFT_ENOTFOUND when inst is not the
    server's instance, WEFT_EREMOTE for another ERR (reply text in err_out if not NULL, 256
    bytes), WEFT_ETIMEOUT when a reply takes longer than timeout_ms. */
int weft_ctl_fetch(weft_ctl_t *self, uint64_t inst, uint64_t from_seq, uint64_t to_seq,
                   int (*fn)(const weft_wire_event_t *ev, void *arg), void *arg, int timeout_ms,
                   weft_fetch_totals_t *totals, char *err_out);

/*  As weft_ctl_fetch, but the server sends only events whose topic starts with one of the
    prefixes (nprefixes 0: all). Events filtered out are neither sent nor counted missing. */
int weft_ctl_fetch_filtered(weft_ctl_t *self, uint64_t inst, uint64_t from_seq, uint64_t to_seq,
                            const char *const *prefixes, size_t nprefixes,
                            int (*fn)(const weft_wire_event_t *ev, void *arg), void *arg,
                            int timeout_ms, weft_fetch_totals_t *totals, char *err_out);

#ifdef __cplusplus
}
#endif

#endif

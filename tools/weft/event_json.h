/*  event_json.h - one event as one compact JSON line: the output format of `weft sub`,
    `weft replay` and `weft get`.

    The keys, in output order: topic, id, src, inst, seq, ts, ver, then corr, trace, reply,
    tenant, retry when set, ct when not application/msgpack, h when there are headers, and
    payload (the msgpack payload as JSON, json_mp.h) or payload_base64 (anything else). An
    archived event adds offset (first) and recv_ts (after ts). Strings that are not UTF-8
    (fields come from the network) have their bad bytes replaced by U+FFFD, so every line is
    valid JSON.
*/
#ifndef WEFT_EVENT_JSON_H_INCLUDED
#define WEFT_EVENT_JSON_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "weft.h"

/*  The keys of a printed event; a mask of them selects a subset (weft sub --fields). */
enum {
    EVENT_JSON_TOPIC = 1 << 0,
    EVENT_JSON_ID = 1 << 1,
    EVENT_JSON_SRC = 1 << 2,
    EVENT_JSON_INST = 1 << 3,
    EVENT_JSON_SEQ = 1 << 4,
    EVENT_JSON_TS = 1 << 5,
    EVENT_JSON_VER = 1 << 6,
    EVENT_JSON_CORR = 1 << 7,
    EVENT_JSON_TRACE = 1 << 8,
    EVENT_JSON_REPLY = 1 << 9,
    EVENT_JSON_TENANT = 1 << 10,
    EVENT_JSON_RETRY = 1 << 11,
    EVENT_JSON_CT = 1 << 12,
    EVENT_JSON_H = 1 << 13,
    EVENT_JSON_PAYLOAD = 1 << 14,
    EVENT_JSON_ALL = (1 << 15) - 1, /* every key of a live event */
    EVENT_JSON_OFFSET = 1 << 15,    /* archived events only */
    EVENT_JSON_RECV_TS = 1 << 16,   /* archived events only */
};

/*  What is printed of one event. Pointers are borrowed for the call. */
typedef struct {
    const char *topic;          /* need not be NUL-terminated */
    size_t topic_size;
    const weft_envelope_t *env; /* decoded envelope (h_raw valid during the call) */
    const void *payload;
    size_t payload_size;
    uint64_t offset;            /* printed with EVENT_JSON_OFFSET */
    int64_t recv_ts;            /* printed with EVENT_JSON_RECV_TS */
} event_json_src_t;

/*  A growable text buffer, reusable from one event to the next. Zero-initialise; release
    with event_json_free. */
typedef struct {
    char *data;
    size_t len, cap;
    bool oom; /* an allocation failed: data is incomplete */
} event_json_t;

/*  Formats ev as one JSON object followed by "\n" into t (replacing what t held). On return
    t->data is NUL-terminated, unless t->oom is set. */
void event_json_format(event_json_t *t, unsigned fields, const event_json_src_t *ev);

/*  Frees the buffer and zeroes it. */
void event_json_free(event_json_t *t);

#endif

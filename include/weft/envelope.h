/*  weft/envelope.h - wire format v1: topic rules and the envelope codec.

    A data message on the fabric is three ZeroMQ frames: topic, envelope, payload. The envelope
    is a msgpack map with short keys (see docs/protocol.md, section "Envelope"). This module
    encodes and decodes it. The decoder treats its input as hostile: every size and count is
    checked against the bytes actually present before msgpack-c allocates anything, types and
    required keys are checked, unknown keys are skipped.

    Strings in a decoded envelope are copied into fixed, NUL-terminated fields, so a decoded
    weft_envelope_t owns nothing and stays valid after the frame it came from is freed. The one
    exception is the header map `h`, which is kept as a pointer into the frame (see h_raw).
*/
#ifndef WEFT_ENVELOPE_H_INCLUDED
#define WEFT_ENVELOPE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define WEFT_WIRE_VERSION 1            /* value of envelope key "v" */
#define WEFT_TOPIC_MAX 255             /* bytes, frame 0 */
#define WEFT_ENVELOPE_MAX 65536        /* bytes, frame 1 */
#define WEFT_PAYLOAD_MAX_DEFAULT 1048576 /* bytes, frame 2, unless max_payload says otherwise */
#define WEFT_ID_SIZE 16                /* bytes of an event id (UUIDv7 layout) */
#define WEFT_ID_STR 37                 /* "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" + NUL */
#define WEFT_NAME_MAX 255              /* bytes of src, corr, trace, reply, tenant */
#define WEFT_FABRIC_MAX 64             /* bytes of a fabric name (fabric/name setting) */
#define WEFT_CT_MAX 127                /* bytes of ct */
#define WEFT_HEADERS_MAX 64            /* entries in h */
#define WEFT_FABRIC_PREFIX "_weft."    /* topics reserved for the fabric itself */

/*  A decoded (or to-be-encoded) envelope. All strings are NUL-terminated; an absent optional
    string is "". */
typedef struct {
    uint32_t v;                          /* envelope version, WEFT_WIRE_VERSION */
    uint8_t id[WEFT_ID_SIZE];            /* event id, time-ordered */
    char src[WEFT_NAME_MAX + 1];         /* source node name */
    uint64_t inst;                       /* source instance, random at node start */
    uint64_t seq;                        /* per-instance sequence; 0 for fabric (_weft.) events */
    int64_t ts;                          /* publish time, ns since the Unix epoch */
    uint32_t ver;                        /* payload schema version, default 1 */
    char corr[WEFT_NAME_MAX + 1];        /* correlation id, optional */
    char trace[WEFT_NAME_MAX + 1];       /* trace id, optional */
    char reply[WEFT_NAME_MAX + 1];       /* reply-to topic, optional */
    char tenant[WEFT_NAME_MAX + 1];      /* tenant id, optional */
    uint32_t retry;                      /* delivery attempt of a redelivered event, default 0 */
    char ct[WEFT_CT_MAX + 1];            /* payload content type, default "application/msgpack" */
    /* Free headers. Decoding: h_raw points at the msgpack map inside the decoded frame (valid
       only while that frame lives), h_count is its entry count. Encoding: set h_keys/h_values/
       h_count instead; h_raw is ignored. */
    const uint8_t *h_raw;
    size_t h_raw_size;
    const char *const *h_keys;
    const char *const *h_values;
    size_t h_count;
} weft_envelope_t;

/*  Sets every field to its default: v = 1, ver = 1, ct = "application/msgpack", the rest zero
    or empty. */
void weft_envelope_init(weft_envelope_t *env);

/*  Encodes env into buf (capacity cap bytes). Returns the number of bytes written, or
    WEFT_ETOOBIG when it does not fit (WEFT_ENVELOPE_MAX is always enough for valid input), or
    WEFT_EINVAL for an invalid field (string too long, more than WEFT_HEADERS_MAX headers).
    Optional fields equal to their default are left out. */
int weft_envelope_encode(const weft_envelope_t *env, uint8_t *buf, size_t cap);

/*  Decodes one envelope frame. Returns WEFT_OK and fills env, or:
    WEFT_EMALFORMED  not one msgpack map, trailing bytes, a declared size larger than the bytes
                     left, a known key with the wrong type, a required key (v, id, src, inst,
                     seq, ts) missing, a string longer than its limit;
    WEFT_ETOOBIG     size > WEFT_ENVELOPE_MAX;
    WEFT_EVERSION    v is not 1.
    On error env is unspecified. Never allocates more than a small multiple of size. */
int weft_envelope_decode(weft_envelope_t *env, const void *data, size_t size);

/*  Looks up header key in a decoded envelope; copies its value, NUL-terminated, into out
    (capacity cap). Returns the value length, WEFT_ENOTFOUND, or WEFT_ETOOBIG if it does not fit. */
int weft_envelope_header(const weft_envelope_t *env, const char *key, char *out, size_t cap);

/*  Calls fn for each header of a decoded envelope, in wire order, with pointers into the frame
    (not NUL-terminated). Stops early and returns fn's value if fn returns non-zero. */
int weft_envelope_headers_each(const weft_envelope_t *env,
                               int (*fn)(const char *key, size_t klen, const char *val,
                                         size_t vlen, void *arg),
                               void *arg);

/*  Checks a topic: 1..255 bytes, each 0x21..0x7e. Returns WEFT_OK or WEFT_ETOPIC. */
int weft_topic_check(const char *topic, size_t len);

/*  True when topic starts with the reserved fabric prefix "_weft.". */
bool weft_topic_is_fabric(const char *topic, size_t len);

/*  Fills id with a new time-ordered id (UUIDv7 layout: 48-bit ms timestamp, version 7,
    random bits, variant 10). Thread-safe. */
void weft_id_new(uint8_t id[WEFT_ID_SIZE]);

/*  Formats an id as a lower-case UUID string into out (WEFT_ID_STR bytes). Returns out. */
char *weft_id_format(const uint8_t id[WEFT_ID_SIZE], char out[WEFT_ID_STR]);

/*  Parses a UUID string (with or without dashes). Returns WEFT_OK or WEFT_EINVAL. */
int weft_id_parse(const char *text, uint8_t id[WEFT_ID_SIZE]);

/*  Current time in ns since the Unix epoch (CLOCK_REALTIME). */
int64_t weft_now_ns(void);

#ifdef __cplusplus
}
#endif

#endif

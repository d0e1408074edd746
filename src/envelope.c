/*  envelope.c - wire format v1: the envelope codec, topic rules, event ids.

    The envelope map, as encoded (keys in this order; optional keys only when not default):

        { "v": 1, "id": bin16, "src": str, "inst": u64, "seq": u64, "ts": i64,
          ["ver": uint], ["corr": str], ["trace": str], ["reply": str], ["tenant": str],
          ["retry": uint], ["ct": str], ["h": {str: str, ...}] }

    Encoding. weft_envelope_encode writes the map straight into a caller buffer through a
    bounded msgpack-c writer (no allocation). The publish path does less: v, src and inst never
    change for a node, so envelope_prefix_encode lays them out once, and
    envelope_encode_prefixed copies that prefix, patches the pair count, drops the id in, and
    writes seq, ts (minimal msgpack integers, as msgpack-c picks them) and the optional pairs
    (through the same code weft_envelope_encode uses). The prefix, byte by byte:

        0   0x80|n              map header; n = 6 + optional pairs, always < 16 (fixmap)
        1   a1 'v' 01           "v": 1
        4   a2 'i' 'd' c4 10    "id": bin 8, 16 bytes follow
        9   16 bytes            the id (zero in the prefix, written per event)
        25  a3 's' 'r' 'c' ..   "src": str (fixstr or str8, 1..255 bytes)
        ..  a4 'i' 'n' 's' 't'  "inst": uint (1..9 bytes)
        ..  a3 's' 'e' 'q'      "seq" key; its value is the first byte written per event

    Both encoders produce the same bytes for the same fields (tests/test_envelope.c checks it).

    Decoding is one pass over the bytes with no allocation and no msgpack-c object tree: it
    reads the map header, then each key, matching known keys by length and bytes and reading
    their values with a type check; any other value is skipped by a walk that checks every
    declared length and element count against the bytes left and limits nesting to
    ENV_DEPTH_MAX containers (the envelope map included), exactly as mp_guard_check(..., 4)
    would. Every way to fail is WEFT_EMALFORMED except a wrong "v", which is WEFT_EVERSION only
    once the rest of the envelope is valid, so the order in which problems are found does not
    change the verdict. Only the fields the wire can leave out are reset before decoding; the
    ~1.4 KB of string fields are not cleared (each gets its terminator).

    With WEFT_ENVELOPE_REFERENCE defined (tests and the fuzz target only) the file also builds
    a reference decoder on msgpack-c (mp_guard_check, then msgpack-c's object tree) as
    envelope_decode_reference; the tests require both decoders to agree on every input.
*/
#include "weft/envelope.h"

#include <msgpack.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/random.h>

#include "weft/error.h"
#ifdef WEFT_ENVELOPE_REFERENCE
#include "mp_guard.h"
#endif

/*  Internal interface (not in the public header), used by the publish path in node.c and by
    the tests; node.c, tests/test_envelope.c and tests/fuzz/fuzz_envelope.c declare the same
    prototypes. */
int envelope_prefix_encode(uint8_t *out, size_t cap, const char *src, uint64_t inst);
int envelope_encode_prefixed(uint8_t *buf, size_t cap, const uint8_t *prefix, size_t prefix_len,
                             const uint8_t id[WEFT_ID_SIZE], uint64_t seq, int64_t ts,
                             const weft_envelope_t *opt);
void envelope_id_at(uint8_t id[WEFT_ID_SIZE], int64_t now_ns);
#ifdef WEFT_ENVELOPE_REFERENCE
int envelope_decode_reference(weft_envelope_t *env, const void *data, size_t size);
#endif

#define CT_DEFAULT "application/msgpack"
#define ENV_DEPTH_MAX 4      /* containers open at once while decoding, the envelope map too */
#define PREFIX_ID_OFF 9      /* where the id goes in a prefix (see the table above) */

void weft_envelope_init(weft_envelope_t *env)
{
    memset(env, 0, sizeof(*env));
    env->v = WEFT_WIRE_VERSION;
    env->ver = 1;
    memcpy(env->ct, CT_DEFAULT, sizeof(CT_DEFAULT));
}

/* ---- encoding ------------------------------------------------------------------------- */

typedef struct {
    uint8_t *buf;
    size_t len;
    size_t cap;
} fixed_buf_t;

static int s_fixed_write(void *data, const char *bytes, size_t n)
{
    fixed_buf_t *fb = data;
    if (n > fb->cap - fb->len)
        return -1;
    memcpy(fb->buf + fb->len, bytes, n);
    fb->len += n;
    return 0;
}

static int s_pack_str(msgpack_packer *pk, const char *s, size_t n)
{
    return msgpack_pack_str(pk, n) || msgpack_pack_str_body(pk, s, n);
}

static int s_pack_kv_str(msgpack_packer *pk, const char *key, const char *val, size_t max)
{
    size_t n = strnlen(val, max + 1);
    if (n > max)
        return WEFT_EINVAL;
    if (s_pack_str(pk, key, strlen(key)) || s_pack_str(pk, val, n))
        return WEFT_ETOOBIG;
    return 0;
}

/*  Checks the header arguments of env: WEFT_EINVAL or 0. */
static int s_check_headers(const weft_envelope_t *env)
{
    if (env->h_count > WEFT_HEADERS_MAX || (env->h_count && (!env->h_keys || !env->h_values)))
        return WEFT_EINVAL;
    return 0;
}

/*  The number of optional pairs env adds to the map; *has_ct says whether ct is one of them. */
static unsigned s_optional_pairs(const weft_envelope_t *env, bool *has_ct)
{
    *has_ct = env->ct[0] && strcmp(env->ct, CT_DEFAULT) != 0;
    return (env->ver != 1) + (env->corr[0] != 0) + (env->trace[0] != 0) + (env->reply[0] != 0) +
           (env->tenant[0] != 0) + (env->retry != 0) + *has_ct + (env->h_count != 0);
}

/*  Packs the optional pairs of env after the required ones. Returns 0, WEFT_EINVAL or
    WEFT_ETOOBIG, the first problem met in key order. */
static int s_pack_optional(msgpack_packer *pk, const weft_envelope_t *env, bool has_ct)
{
    int rc;
    if (env->ver != 1 && (s_pack_str(pk, "ver", 3) || msgpack_pack_uint32(pk, env->ver)))
        return WEFT_ETOOBIG;
    if (env->corr[0] && (rc = s_pack_kv_str(pk, "corr", env->corr, WEFT_NAME_MAX)))
        return rc;
    if (env->trace[0] && (rc = s_pack_kv_str(pk, "trace", env->trace, WEFT_NAME_MAX)))
        return rc;
    if (env->reply[0] && (rc = s_pack_kv_str(pk, "reply", env->reply, WEFT_NAME_MAX)))
        return rc;
    if (env->tenant[0] && (rc = s_pack_kv_str(pk, "tenant", env->tenant, WEFT_NAME_MAX)))
        return rc;
    if (env->retry && (s_pack_str(pk, "retry", 5) || msgpack_pack_uint32(pk, env->retry)))
        return WEFT_ETOOBIG;
    if (has_ct && (rc = s_pack_kv_str(pk, "ct", env->ct, WEFT_CT_MAX)))
        return rc;
    if (env->h_count) {
        if (s_pack_str(pk, "h", 1) || msgpack_pack_map(pk, env->h_count))
            return WEFT_ETOOBIG;
        for (size_t i = 0; i < env->h_count; i++) {
            const char *k = env->h_keys[i], *v = env->h_values[i];
            if (!k || !v || !*k)
                return WEFT_EINVAL;
            if (s_pack_str(pk, k, strlen(k)) || s_pack_str(pk, v, strlen(v)))
                return WEFT_ETOOBIG;
        }
    }
    return 0;
}

int weft_envelope_encode(const weft_envelope_t *env, uint8_t *buf, size_t cap)
{
    if (!env || !buf)
        return WEFT_EINVAL;
    if (s_check_headers(env))
        return WEFT_EINVAL;
    size_t src_len = strnlen(env->src, WEFT_NAME_MAX + 1);
    if (src_len == 0 || src_len > WEFT_NAME_MAX)
        return WEFT_EINVAL;

    bool has_ct;
    unsigned n = 6 + s_optional_pairs(env, &has_ct);

    fixed_buf_t fb = {buf, 0, cap};
    msgpack_packer pk;
    msgpack_packer_init(&pk, &fb, s_fixed_write);
    if (msgpack_pack_map(&pk, n) || s_pack_str(&pk, "v", 1) || msgpack_pack_uint32(&pk, env->v) ||
        s_pack_str(&pk, "id", 2) || msgpack_pack_bin(&pk, WEFT_ID_SIZE) ||
        msgpack_pack_bin_body(&pk, env->id, WEFT_ID_SIZE) || s_pack_str(&pk, "src", 3) ||
        s_pack_str(&pk, env->src, src_len) || s_pack_str(&pk, "inst", 4) ||
        msgpack_pack_uint64(&pk, env->inst) || s_pack_str(&pk, "seq", 3) ||
        msgpack_pack_uint64(&pk, env->seq) || s_pack_str(&pk, "ts", 2) ||
        msgpack_pack_int64(&pk, env->ts))
        return WEFT_ETOOBIG;
    int rc = s_pack_optional(&pk, env, has_ct);
    if (rc)
        return rc;
    if (fb.len > WEFT_ENVELOPE_MAX)
        return WEFT_ETOOBIG;
    return (int)fb.len;
}

/* ---- encoding from a prefix (the publish path) ---------------------------------------- */

static void s_put_be(uint8_t *p, uint64_t v, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
}

/*  Bytes msgpack-c uses for an unsigned value (msgpack_pack_uint64). */
static size_t s_uint_size(uint64_t v)
{
    return v < 128 ? 1 : v < 256 ? 2 : v < 65536 ? 3 : v <= UINT32_MAX ? 5 : 9;
}

static size_t s_put_uint(uint8_t *p, uint64_t v)
{
    size_t n = s_uint_size(v);
    static const uint8_t type[10] = {0, 0, 0xcc, 0xcd, 0, 0xce, 0, 0, 0, 0xcf};
    if (n == 1) {
        p[0] = (uint8_t)v;
        return 1;
    }
    p[0] = type[n];
    s_put_be(p + 1, v, (unsigned)n - 1);
    return n;
}

/*  Bytes msgpack-c uses for a signed value (msgpack_pack_int64): negative values below -32
    take the smallest signed form, the rest the unsigned forms. */
static size_t s_int_size(int64_t v)
{
    if (v >= -32)
        return s_uint_size(v < 0 ? 0 : (uint64_t)v);
    return v >= -128 ? 2 : v >= -32768 ? 3 : v >= INT32_MIN ? 5 : 9;
}

static size_t s_put_int(uint8_t *p, int64_t v)
{
    if (v >= 0)
        return s_put_uint(p, (uint64_t)v);
    if (v >= -32) {
        p[0] = (uint8_t)(int8_t)v; /* negative fixint */
        return 1;
    }
    size_t n = s_int_size(v);
    static const uint8_t type[10] = {0, 0, 0xd0, 0xd1, 0, 0xd2, 0, 0, 0, 0xd3};
    p[0] = type[n];
    s_put_be(p + 1, (uint64_t)v, (unsigned)n - 1);
    return n;
}

static size_t s_put_str_header(uint8_t *p, size_t n)
{
    if (n < 32) {
        p[0] = (uint8_t)(0xa0 | n);
        return 1;
    }
    p[0] = 0xd9; /* n <= WEFT_NAME_MAX here */
    p[1] = (uint8_t)n;
    return 2;
}

/*  Lays out the constant start of every envelope src/inst will publish (table at the top of
    this file) into out. Returns its length, WEFT_EINVAL for a src that is empty or longer
    than WEFT_NAME_MAX, or WEFT_ETOOBIG when cap is too small (320 bytes always suffice). */
int envelope_prefix_encode(uint8_t *out, size_t cap, const char *src, uint64_t inst)
{
    if (!out || !src)
        return WEFT_EINVAL;
    size_t src_len = strnlen(src, WEFT_NAME_MAX + 1);
    if (src_len == 0 || src_len > WEFT_NAME_MAX)
        return WEFT_EINVAL;
    size_t need = PREFIX_ID_OFF + WEFT_ID_SIZE + 4 + (src_len < 32 ? 1 : 2) + src_len + 5 +
                  s_uint_size(inst) + 4;
    if (need > cap)
        return WEFT_ETOOBIG;
    static const uint8_t head[PREFIX_ID_OFF] = {0x86, 0xa1, 'v', WEFT_WIRE_VERSION,
                                                0xa2, 'i',  'd', 0xc4, WEFT_ID_SIZE};
    uint8_t *p = out;
    memcpy(p, head, sizeof(head));
    p += sizeof(head);
    memset(p, 0, WEFT_ID_SIZE);
    p += WEFT_ID_SIZE;
    memcpy(p, "\xa3src", 4);
    p += 4;
    p += s_put_str_header(p, src_len);
    memcpy(p, src, src_len);
    p += src_len;
    memcpy(p, "\xa4inst", 5);
    p += 5;
    p += s_put_uint(p, inst);
    memcpy(p, "\xa3seq", 4);
    p += 4;
    return (int)(p - out);
}

/*  Encodes an envelope from a prefix made by envelope_prefix_encode: the same bytes as
    weft_envelope_encode gives for v = 1, that src and inst, and id, seq, ts. The optional
    fields (ver, corr, trace, reply, tenant, retry, ct, headers) come from opt, whose other
    fields are not read; opt NULL means none. Returns the length or the error
    weft_envelope_encode would give. */
int envelope_encode_prefixed(uint8_t *buf, size_t cap, const uint8_t *prefix, size_t prefix_len,
                             const uint8_t id[WEFT_ID_SIZE], uint64_t seq, int64_t ts,
                             const weft_envelope_t *opt)
{
    if (!buf || !prefix || !id || prefix_len < PREFIX_ID_OFF + WEFT_ID_SIZE)
        return WEFT_EINVAL;
    unsigned n = 6;
    bool has_ct = false;
    if (opt) {
        if (s_check_headers(opt))
            return WEFT_EINVAL;
        n += s_optional_pairs(opt, &has_ct);
    }
    size_t len = prefix_len + s_uint_size(seq) + 3 + s_int_size(ts);
    if (len > cap)
        return WEFT_ETOOBIG;
    memcpy(buf, prefix, prefix_len);
    buf[0] = (uint8_t)(0x80 | n);
    memcpy(buf + PREFIX_ID_OFF, id, WEFT_ID_SIZE);
    uint8_t *p = buf + prefix_len;
    p += s_put_uint(p, seq);
    memcpy(p, "\xa2ts", 3);
    p += 3;
    p += s_put_int(p, ts);
    if (n == 6)
        return (int)len;
    fixed_buf_t fb = {buf, len, cap};
    msgpack_packer pk;
    msgpack_packer_init(&pk, &fb, s_fixed_write);
    int rc = s_pack_optional(&pk, opt, has_ct);
    if (rc)
        return rc;
    if (fb.len > WEFT_ENVELOPE_MAX)
        return WEFT_ETOOBIG;
    return (int)fb.len;
}

/* ---- decoding ------------------------------------------------------------------------- */

enum {
    K_V = 1 << 0, K_ID = 1 << 1, K_SRC = 1 << 2, K_INST = 1 << 3, K_SEQ = 1 << 4,
    K_TS = 1 << 5, K_VER = 1 << 6, K_CORR = 1 << 7, K_TRACE = 1 << 8, K_REPLY = 1 << 9,
    K_TENANT = 1 << 10, K_RETRY = 1 << 11, K_CT = 1 << 12, K_H = 1 << 13,
};
#define K_REQUIRED (K_V | K_ID | K_SRC | K_INST | K_SEQ | K_TS)

/*  A read position in the frame; every read checks against end first. */
typedef struct {
    const uint8_t *p;
    const uint8_t *end;
} rd_t;

static inline size_t s_left(const rd_t *r)
{
    return (size_t)(r->end - r->p);
}

static inline uint64_t s_be(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

/*  Reads a str (fixstr, str 8/16/32) whose body fits in the bytes left. Returns 0, or -1 for
    another type or a short input. */
static inline int s_rd_str(rd_t *r, const char **s, size_t *n)
{
    size_t left = s_left(r);
    if (left == 0)
        return -1;
    uint8_t t = r->p[0];
    size_t hdr;
    uint64_t len;
    if ((t & 0xe0) == 0xa0) {
        hdr = 1;
        len = t & 0x1f;
    } else if (t >= 0xd9 && t <= 0xdb) {
        hdr = 1 + ((size_t)1 << (t - 0xd9)); /* 2, 3, 5 */
        if (left < hdr)
            return -1;
        len = s_be(r->p + 1, (unsigned)hdr - 1);
    } else {
        return -1;
    }
    if (len > left - hdr)
        return -1;
    *s = (const char *)r->p + hdr;
    *n = (size_t)len;
    r->p += hdr + len;
    return 0;
}

/*  Reads a map header (fixmap, map 16/32) whose pairs could fit in the bytes left (each
    element takes at least one byte). Returns 0, or -1. */
static inline int s_rd_map(rd_t *r, uint64_t *pairs)
{
    size_t left = s_left(r);
    if (left == 0)
        return -1;
    uint8_t t = r->p[0];
    size_t hdr;
    uint64_t n;
    if ((t & 0xf0) == 0x80) {
        hdr = 1;
        n = t & 0x0f;
    } else if (t == 0xde || t == 0xdf) {
        hdr = t == 0xde ? 3 : 5;
        if (left < hdr)
            return -1;
        n = s_be(r->p + 1, (unsigned)hdr - 1);
    } else {
        return -1;
    }
    if (n * 2 > left - hdr)
        return -1;
    r->p += hdr;
    *pairs = n;
    return 0;
}

/*  Reads an integer of any msgpack int type. Returns 1 with *u for a value >= 0 (signed types
    holding a value >= 0 included, as msgpack-c reads them), -1 with *i for a negative value,
    0 for another type or a short input. */
static inline int s_rd_int(rd_t *r, uint64_t *u, int64_t *i)
{
    size_t left = s_left(r);
    if (left == 0)
        return 0;
    uint8_t t = r->p[0];
    if (t <= 0x7f) {
        r->p++;
        *u = t;
        return 1;
    }
    if (t >= 0xe0) {
        r->p++;
        *i = (int8_t)t;
        return -1;
    }
    if (t < 0xcc || t > 0xd3)
        return 0;
    unsigned n = 1u << ((t - 0xcc) & 3); /* 0xcc..0xcf and 0xd0..0xd3: 1, 2, 4, 8 bytes */
    if (left < 1 + (size_t)n)
        return 0;
    uint64_t v = s_be(r->p + 1, n);
    r->p += 1 + n;
    if (t <= 0xcf) {
        *u = v;
        return 1;
    }
    int64_t s = n == 1 ? (int8_t)v : n == 2 ? (int16_t)v : n == 4 ? (int32_t)v : (int64_t)v;
    if (s >= 0) {
        *u = (uint64_t)s;
        return 1;
    }
    *i = s;
    return -1;
}

static inline int s_rd_uint(rd_t *r, uint64_t max, uint64_t *out)
{
    int64_t neg;
    return s_rd_int(r, out, &neg) == 1 && *out <= max ? 0 : -1;
}

/*  Reads a str value into a fixed field: at most max bytes, not empty unless allowed, no NUL
    (it would silently truncate the field). */
static inline int s_rd_field(rd_t *r, char *out, size_t max, bool allow_empty)
{
    const char *s;
    size_t n;
    if (s_rd_str(r, &s, &n) || n > max || (n == 0 && !allow_empty) || memchr(s, 0, n))
        return -1;
    memcpy(out, s, n);
    out[n] = 0;
    return 0;
}

/*  Reads the header map: at most WEFT_HEADERS_MAX pairs of str -> str, keys not empty, no NUL
    anywhere (headers are C strings to the API). */
static int s_rd_headers(rd_t *r, weft_envelope_t *env)
{
    const uint8_t *start = r->p;
    uint64_t pairs;
    if (s_rd_map(r, &pairs) || pairs > WEFT_HEADERS_MAX)
        return -1;
    for (uint64_t i = 0; i < pairs; i++) {
        const char *k, *v;
        size_t kl, vl;
        if (s_rd_str(r, &k, &kl) || kl == 0 || memchr(k, 0, kl) || s_rd_str(r, &v, &vl) ||
            memchr(v, 0, vl))
            return -1;
    }
    env->h_count = (size_t)pairs;
    if (pairs) { /* an empty map leaves h_raw NULL (nothing to read) */
        env->h_raw = start;
        env->h_raw_size = (size_t)(r->p - start);
    }
    return 0;
}

/*  Skips one object of any type, `depth` containers deep (the envelope map is 1). Follows
    mp_guard_check's rules: a declared length must fit in the bytes left, a container's
    element count too (every element is at least one byte), 0xc1 is refused, and at most
    ENV_DEPTH_MAX non-empty containers may be open at once. Returns 0, or -1. */
static int s_skip(rd_t *r, unsigned depth)
{
    uint64_t stack[ENV_DEPTH_MAX]; /* elements left in each container opened here */
    unsigned sp = 0;
    uint64_t top = 1;
    for (;;) {
        uint64_t *left = sp ? &stack[sp - 1] : &top;
        if (*left == 0) {
            if (sp == 0)
                return 0;
            sp--;
            continue;
        }
        size_t rest = s_left(r);
        if (rest == 0)
            return -1;
        (*left)--;
        uint8_t t = *r->p++;
        rest--;
        uint64_t len = 0, count = 0;
        unsigned hdr = 0;
        int container = 0; /* 1 array, 2 map */
        if (t <= 0x7f || t >= 0xe0 || t == 0xc0 || t == 0xc2 || t == 0xc3) {
            continue; /* fixint, nil, bool */
        } else if (t >= 0xa0 && t <= 0xbf) {
            len = t & 0x1f;
        } else if (t >= 0x90 && t <= 0x9f) {
            count = t & 0x0f;
            container = 1;
        } else if (t >= 0x80 && t <= 0x8f) {
            count = (uint64_t)(t & 0x0f) * 2;
            container = 2;
        } else {
            switch (t) {
            case 0xcc: case 0xd0: len = 1; break;
            case 0xcd: case 0xd1: len = 2; break;
            case 0xce: case 0xd2: case 0xca: len = 4; break;
            case 0xcf: case 0xd3: case 0xcb: len = 8; break;
            case 0xd4: len = 2; break; /* fixext: type byte + data */
            case 0xd5: len = 3; break;
            case 0xd6: len = 5; break;
            case 0xd7: len = 9; break;
            case 0xd8: len = 17; break;
            case 0xc4: case 0xd9: case 0xc7: hdr = 1; break; /* bin8, str8, ext8 */
            case 0xc5: case 0xda: case 0xc8: hdr = 2; break;
            case 0xc6: case 0xdb: case 0xc9: hdr = 4; break;
            case 0xdc: hdr = 2; container = 1; break;
            case 0xdd: hdr = 4; container = 1; break;
            case 0xde: hdr = 2; container = 2; break;
            case 0xdf: hdr = 4; container = 2; break;
            default: return -1; /* 0xc1 */
            }
            if (hdr) {
                if (rest < hdr)
                    return -1;
                uint64_t n = s_be(r->p, hdr);
                r->p += hdr;
                rest -= hdr;
                if (container)
                    count = container == 2 ? n * 2 : n;
                else
                    len = (t >= 0xc7 && t <= 0xc9) ? n + 1 : n; /* ext: type byte + data */
            }
        }
        if (container) {
            if (count > rest)
                return -1;
            if (count == 0)
                continue;
            if (depth + sp >= ENV_DEPTH_MAX)
                return -1;
            stack[sp++] = count;
            continue;
        }
        if (len > rest)
            return -1;
        r->p += len;
    }
}

int weft_envelope_decode(weft_envelope_t *env, const void *data, size_t size)
{
    if (!env || !data)
        return WEFT_EINVAL;
    if (size > WEFT_ENVELOPE_MAX)
        return WEFT_ETOOBIG;
    rd_t r = {data, (const uint8_t *)data + size};
    uint64_t pairs;
    if (s_rd_map(&r, &pairs))
        return WEFT_EMALFORMED;

    /* Required fields are all written before success; reset only what may be absent. */
    env->v = 0;
    env->ver = 1;
    env->corr[0] = env->trace[0] = env->reply[0] = env->tenant[0] = 0;
    env->retry = 0;
    memcpy(env->ct, CT_DEFAULT, sizeof(CT_DEFAULT));
    env->h_raw = NULL;
    env->h_raw_size = 0;
    env->h_keys = NULL;
    env->h_values = NULL;
    env->h_count = 0;

    unsigned seen = 0;
    for (uint64_t i = 0; i < pairs; i++) {
        const char *k;
        size_t kl;
        if (s_rd_str(&r, &k, &kl))
            return WEFT_EMALFORMED;
        unsigned bit = 0;
        int bad = 0;
        uint64_t u = 0;
        switch (kl) {
        case 1:
            if (k[0] == 'v') {
                bit = K_V;
                bad = s_rd_uint(&r, UINT32_MAX, &u);
                env->v = (uint32_t)u;
            } else if (k[0] == 'h') {
                bit = K_H;
                bad = s_rd_headers(&r, env);
            }
            break;
        case 2:
            if (k[0] == 'i' && k[1] == 'd') {
                /* bin 8/16/32 holding exactly WEFT_ID_SIZE bytes */
                bit = K_ID;
                size_t left = s_left(&r);
                uint8_t t = left ? r.p[0] : 0;
                unsigned hdr = t >= 0xc4 && t <= 0xc6 ? 1u << (t - 0xc4) : 0;
                if (!hdr || left < 1 + hdr || s_be(r.p + 1, hdr) != WEFT_ID_SIZE ||
                    left - 1 - hdr < WEFT_ID_SIZE)
                    return WEFT_EMALFORMED;
                memcpy(env->id, r.p + 1 + hdr, WEFT_ID_SIZE);
                r.p += 1 + hdr + WEFT_ID_SIZE;
            } else if (k[0] == 't' && k[1] == 's') {
                bit = K_TS;
                int64_t neg = 0;
                int sign = s_rd_int(&r, &u, &neg);
                if (sign == 1 && u <= INT64_MAX)
                    env->ts = (int64_t)u;
                else if (sign == -1)
                    env->ts = neg;
                else
                    bad = 1;
            } else if (k[0] == 'c' && k[1] == 't') {
                bit = K_CT;
                bad = s_rd_field(&r, env->ct, WEFT_CT_MAX, false);
            }
            break;
        case 3:
            if (memcmp(k, "src", 3) == 0) {
                bit = K_SRC;
                bad = s_rd_field(&r, env->src, WEFT_NAME_MAX, false);
            } else if (memcmp(k, "seq", 3) == 0) {
                bit = K_SEQ;
                bad = s_rd_uint(&r, UINT64_MAX, &env->seq);
            } else if (memcmp(k, "ver", 3) == 0) {
                bit = K_VER;
                bad = s_rd_uint(&r, UINT32_MAX, &u);
                env->ver = (uint32_t)u;
            }
            break;
        case 4:
            if (memcmp(k, "inst", 4) == 0) {
                bit = K_INST;
                bad = s_rd_uint(&r, UINT64_MAX, &env->inst);
            } else if (memcmp(k, "corr", 4) == 0) {
                bit = K_CORR;
                bad = s_rd_field(&r, env->corr, WEFT_NAME_MAX, true);
            }
            break;
        case 5:
            if (memcmp(k, "trace", 5) == 0) {
                bit = K_TRACE;
                bad = s_rd_field(&r, env->trace, WEFT_NAME_MAX, true);
            } else if (memcmp(k, "reply", 5) == 0) {
                bit = K_REPLY;
                bad = s_rd_field(&r, env->reply, WEFT_NAME_MAX, true);
            } else if (memcmp(k, "retry", 5) == 0) {
                bit = K_RETRY;
                bad = s_rd_uint(&r, UINT32_MAX, &u);
                env->retry = (uint32_t)u;
            }
            break;
        case 6:
            if (memcmp(k, "tenant", 6) == 0) {
                bit = K_TENANT;
                bad = s_rd_field(&r, env->tenant, WEFT_NAME_MAX, true);
            }
            break;
        }
        if (bit == 0)
            bad = s_skip(&r, 1); /* unknown key: any value, so that the format can grow */
        if (bad || (bit & seen))
            return WEFT_EMALFORMED; /* a key given twice is ambiguous: refuse */
        seen |= bit;
    }
    if (r.p != r.end)
        return WEFT_EMALFORMED; /* trailing bytes */
    if ((seen & K_REQUIRED) != K_REQUIRED)
        return WEFT_EMALFORMED;
    if (env->v != WEFT_WIRE_VERSION)
        return WEFT_EVERSION;
    return 0;
}

/* ---- the reference decoder (tests only) ---------------------------------------------- */

#ifdef WEFT_ENVELOPE_REFERENCE
/*  The specification weft_envelope_decode must match, written on msgpack-c: mp_guard_check
    first, so msgpack-c only sees input whose declared sizes fit the bytes present, then each
    known key mapped to a field with a type check on msgpack-c's object tree, unknown keys
    skipped. */

static bool s_ref_key_is(const msgpack_object_str *k, const char *name)
{
    size_t n = strlen(name);
    return k->size == n && memcmp(k->ptr, name, n) == 0;
}

static int s_ref_get_uint(const msgpack_object *o, uint64_t max, uint64_t *out)
{
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 > max)
        return WEFT_EMALFORMED;
    *out = o->via.u64;
    return 0;
}

static int s_ref_get_str(const msgpack_object *o, char *out, size_t max, bool allow_empty)
{
    if (o->type != MSGPACK_OBJECT_STR || o->via.str.size > max ||
        (!allow_empty && o->via.str.size == 0))
        return WEFT_EMALFORMED;
    /* An embedded NUL would silently truncate the field: refuse it. */
    if (memchr(o->via.str.ptr, 0, o->via.str.size))
        return WEFT_EMALFORMED;
    memcpy(out, o->via.str.ptr, o->via.str.size);
    out[o->via.str.size] = 0;
    return 0;
}

static int s_ref_decode_map(weft_envelope_t *env, const msgpack_object *root,
                            const uint8_t *base, size_t size)
{
    if (root->type != MSGPACK_OBJECT_MAP)
        return WEFT_EMALFORMED;
    unsigned seen = 0;
    uint64_t u = 0;
    for (uint32_t i = 0; i < root->via.map.size; i++) {
        const msgpack_object *k = &root->via.map.ptr[i].key;
        const msgpack_object *v = &root->via.map.ptr[i].val;
        if (k->type != MSGPACK_OBJECT_STR)
            return WEFT_EMALFORMED;
        const msgpack_object_str *ks = &k->via.str;
        unsigned bit = 0;
        int rc = 0;
        if (s_ref_key_is(ks, "v")) {
            bit = K_V;
            rc = s_ref_get_uint(v, UINT32_MAX, &u);
            env->v = (uint32_t)u;
        } else if (s_ref_key_is(ks, "id")) {
            bit = K_ID;
            if (v->type != MSGPACK_OBJECT_BIN || v->via.bin.size != WEFT_ID_SIZE)
                return WEFT_EMALFORMED;
            memcpy(env->id, v->via.bin.ptr, WEFT_ID_SIZE);
        } else if (s_ref_key_is(ks, "src")) {
            bit = K_SRC;
            rc = s_ref_get_str(v, env->src, WEFT_NAME_MAX, false);
        } else if (s_ref_key_is(ks, "inst")) {
            bit = K_INST;
            rc = s_ref_get_uint(v, UINT64_MAX, &env->inst);
        } else if (s_ref_key_is(ks, "seq")) {
            bit = K_SEQ;
            rc = s_ref_get_uint(v, UINT64_MAX, &env->seq);
        } else if (s_ref_key_is(ks, "ts")) {
            bit = K_TS;
            if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER && v->via.u64 <= INT64_MAX)
                env->ts = (int64_t)v->via.u64;
            else if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
                env->ts = v->via.i64;
            else
                return WEFT_EMALFORMED;
        } else if (s_ref_key_is(ks, "ver")) {
            bit = K_VER;
            rc = s_ref_get_uint(v, UINT32_MAX, &u);
            env->ver = (uint32_t)u;
        } else if (s_ref_key_is(ks, "corr")) {
            bit = K_CORR;
            rc = s_ref_get_str(v, env->corr, WEFT_NAME_MAX, true);
        } else if (s_ref_key_is(ks, "trace")) {
            bit = K_TRACE;
            rc = s_ref_get_str(v, env->trace, WEFT_NAME_MAX, true);
        } else if (s_ref_key_is(ks, "reply")) {
            bit = K_REPLY;
            rc = s_ref_get_str(v, env->reply, WEFT_NAME_MAX, true);
        } else if (s_ref_key_is(ks, "tenant")) {
            bit = K_TENANT;
            rc = s_ref_get_str(v, env->tenant, WEFT_NAME_MAX, true);
        } else if (s_ref_key_is(ks, "retry")) {
            bit = K_RETRY;
            rc = s_ref_get_uint(v, UINT32_MAX, &u);
            env->retry = (uint32_t)u;
        } else if (s_ref_key_is(ks, "ct")) {
            bit = K_CT;
            rc = s_ref_get_str(v, env->ct, WEFT_CT_MAX, false);
        } else if (s_ref_key_is(ks, "h")) {
            bit = K_H;
            if (v->type != MSGPACK_OBJECT_MAP || v->via.map.size > WEFT_HEADERS_MAX)
                return WEFT_EMALFORMED;
            for (uint32_t j = 0; j < v->via.map.size; j++) {
                const msgpack_object *hk = &v->via.map.ptr[j].key, *hv = &v->via.map.ptr[j].val;
                if (hk->type != MSGPACK_OBJECT_STR || hk->via.str.size == 0 ||
                    hv->type != MSGPACK_OBJECT_STR)
                    return WEFT_EMALFORMED;
                /* Headers are C strings to the API (lookup key, encode): refuse a NUL. */
                if (memchr(hk->via.str.ptr, 0, hk->via.str.size) ||
                    memchr(hv->via.str.ptr, 0, hv->via.str.size))
                    return WEFT_EMALFORMED;
            }
            env->h_count = v->via.map.size;
        }
        if (rc)
            return rc;
        if (bit & seen)
            return WEFT_EMALFORMED; /* a key given twice is ambiguous: refuse */
        seen |= bit;
    }
    if ((seen & K_REQUIRED) != K_REQUIRED)
        return WEFT_EMALFORMED;
    if (env->v != WEFT_WIRE_VERSION)
        return WEFT_EVERSION;
    (void)base;
    (void)size;
    return 0;
}

/*  Finds the raw bytes of the "h" value inside the encoded map, so headers can be read later
    without keeping msgpack-c's zone alive. Walks the top-level map with the guard's rules. */
static void s_ref_locate_headers(weft_envelope_t *env, const uint8_t *data, size_t size)
{
    size_t off = 0;
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    /* Skip the map header, then read keys and values one object at a time. */
    uint8_t t = data[0];
    uint64_t pairs;
    if (t >= 0x80 && t <= 0x8f) {
        pairs = t & 0x0f;
        off = 1;
    } else if (t == 0xde) {
        pairs = ((uint64_t)data[1] << 8) | data[2];
        off = 3;
    } else {
        pairs = ((uint64_t)data[1] << 24) | ((uint64_t)data[2] << 16) |
                ((uint64_t)data[3] << 8) | data[4];
        off = 5;
    }
    for (uint64_t i = 0; i < pairs; i++) {
        if (msgpack_unpack_next(&u, (const char *)data, size, &off) < 0)
            break;
        bool is_h = u.data.type == MSGPACK_OBJECT_STR && s_ref_key_is(&u.data.via.str, "h");
        size_t voff = off;
        if (msgpack_unpack_next(&u, (const char *)data, size, &off) < 0)
            break;
        if (is_h) {
            env->h_raw = data + voff;
            env->h_raw_size = off - voff;
            break;
        }
    }
    msgpack_unpacked_destroy(&u);
}

static int s_decode_reference(weft_envelope_t *env, const void *data, size_t size)
{
    if (!env || !data)
        return WEFT_EINVAL;
    if (size > WEFT_ENVELOPE_MAX)
        return WEFT_ETOOBIG;
    const uint8_t *bytes = data;
    if (mp_guard_check(bytes, size, 4, NULL))
        return WEFT_EMALFORMED;
    weft_envelope_init(env);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    int rc = WEFT_EMALFORMED;
    if (msgpack_unpack_next(&u, (const char *)bytes, size, &off) == MSGPACK_UNPACK_SUCCESS &&
        off == size)
        rc = s_ref_decode_map(env, &u.data, bytes, size);
    msgpack_unpacked_destroy(&u);
    if (rc == 0 && env->h_count)
        s_ref_locate_headers(env, bytes, size);
    return rc;
}

int envelope_decode_reference(weft_envelope_t *env, const void *data, size_t size)
{
    return s_decode_reference(env, data, size);
}
#endif

int weft_envelope_headers_each(const weft_envelope_t *env,
                               int (*fn)(const char *, size_t, const char *, size_t, void *),
                               void *arg)
{
    if (!env || !fn || !env->h_raw || env->h_count == 0)
        return 0;
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    int rc = 0;
    if (msgpack_unpack_next(&u, (const char *)env->h_raw, env->h_raw_size, &off) ==
            MSGPACK_UNPACK_SUCCESS &&
        u.data.type == MSGPACK_OBJECT_MAP) {
        for (uint32_t i = 0; i < u.data.via.map.size && rc == 0; i++) {
            const msgpack_object *k = &u.data.via.map.ptr[i].key;
            const msgpack_object *v = &u.data.via.map.ptr[i].val;
            if (k->type == MSGPACK_OBJECT_STR && v->type == MSGPACK_OBJECT_STR)
                rc = fn(k->via.str.ptr, k->via.str.size, v->via.str.ptr, v->via.str.size, arg);
        }
    }
    msgpack_unpacked_destroy(&u);
    return rc;
}

typedef struct {
    const char *key;
    char *out;
    size_t cap;
    int result;
} header_find_t;

static int s_header_find(const char *k, size_t kl, const char *v, size_t vl, void *arg)
{
    header_find_t *hf = arg;
    if (strlen(hf->key) != kl || memcmp(hf->key, k, kl) != 0)
        return 0;
    if (vl + 1 > hf->cap) {
        hf->result = WEFT_ETOOBIG;
        return 1;
    }
    memcpy(hf->out, v, vl);
    hf->out[vl] = 0;
    hf->result = (int)vl;
    return 1;
}

int weft_envelope_header(const weft_envelope_t *env, const char *key, char *out, size_t cap)
{
    if (!env || !key || !out || cap == 0)
        return WEFT_EINVAL;
    header_find_t hf = {key, out, cap, WEFT_ENOTFOUND};
    weft_envelope_headers_each(env, s_header_find, &hf);
    return hf.result;
}

/* ---- topics, ids, time ---------------------------------------------------------------- */

int weft_topic_check(const char *topic, size_t len)
{
    if (!topic || len == 0 || len > WEFT_TOPIC_MAX)
        return WEFT_ETOPIC;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)topic[i];
        if (c < 0x21 || c > 0x7e)
            return WEFT_ETOPIC;
    }
    return WEFT_OK;
}

bool weft_topic_is_fabric(const char *topic, size_t len)
{
    const size_t n = sizeof(WEFT_FABRIC_PREFIX) - 1;
    return topic && len >= n && memcmp(topic, WEFT_FABRIC_PREFIX, n) == 0;
}

int64_t weft_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/*  Random bits for ids come from a per-thread xorshift generator seeded from getrandom():
    ids must be unique, not secret, and the publish path cannot afford a syscall per event. */
static __thread uint64_t t_rng;

static uint64_t s_rand64(void)
{
    if (t_rng == 0) {
        if (getrandom(&t_rng, sizeof(t_rng), 0) != sizeof(t_rng))
            t_rng = (uint64_t)weft_now_ns() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)&t_rng;
        if (t_rng == 0)
            t_rng = 0x9e3779b97f4a7c15ULL;
    }
    t_rng ^= t_rng << 13;
    t_rng ^= t_rng >> 7;
    t_rng ^= t_rng << 17;
    return t_rng * 0x2545F4914F6CDD1DULL;
}

/*  An id whose timestamp is now_ns (the caller's clock reading), so that the publish path
    reads the clock once for both ts and id. */
void envelope_id_at(uint8_t id[WEFT_ID_SIZE], int64_t now_ns)
{
    uint64_t ms = (uint64_t)(now_ns / 1000000);
    uint64_t r1 = s_rand64(), r2 = s_rand64();
    for (int i = 0; i < 6; i++)
        id[i] = (uint8_t)(ms >> (8 * (5 - i)));
    id[6] = (uint8_t)(0x70 | (r1 & 0x0f));           /* version 7 */
    id[7] = (uint8_t)(r1 >> 8);
    id[8] = (uint8_t)(0x80 | ((r1 >> 16) & 0x3f));   /* variant 10 */
    for (int i = 9; i < 16; i++)
        id[i] = (uint8_t)(r2 >> (8 * (i - 9)));
}

void weft_id_new(uint8_t id[WEFT_ID_SIZE])
{
    envelope_id_at(id, weft_now_ns());
}

char *weft_id_format(const uint8_t id[WEFT_ID_SIZE], char out[WEFT_ID_STR])
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (int i = 0; i < WEFT_ID_SIZE; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[id[i] >> 4];
        out[o++] = hex[id[i] & 0x0f];
    }
    out[o] = 0;
    return out;
}

static int s_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int weft_id_parse(const char *text, uint8_t id[WEFT_ID_SIZE])
{
    if (!text || !id)
        return WEFT_EINVAL;
    int n = 0;
    for (const char *p = text; *p; p++) {
        if (*p == '-')
            continue;
        int hi = s_hexval(*p), lo = p[1] ? s_hexval(p[1]) : -1;
        if (hi < 0 || lo < 0 || n >= WEFT_ID_SIZE)
            return WEFT_EINVAL;
        id[n++] = (uint8_t)(hi << 4 | lo);
        p++;
    }
    return n == WEFT_ID_SIZE ? WEFT_OK : WEFT_EINVAL;
}

/*  envelope.c - wire format v1: the envelope codec, topic rules, event ids.

    Encoding writes a msgpack map straight into a caller buffer through a bounded writer (no
    allocation on the publish path). Decoding runs mp_guard_check first, so msgpack-c only ever
    sees input whose declared sizes fit the bytes present, then maps each known key to a field
    with a type check, skipping unknown keys so that the format can grow.

    The envelope map, as encoded (keys in this order; optional keys only when not default):

        { "v": 1, "id": bin16, "src": str, "inst": u64, "seq": u64, "ts": i64,
          ["ver": uint], ["corr": str], ["trace": str], ["reply": str], ["tenant": str],
          ["retry": uint], ["ct": str], ["h": {str: str, ...}] }
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

#include "mp_guard.h"
#include "weft/error.h"

#define CT_DEFAULT "application/msgpack"

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

int weft_envelope_encode(const weft_envelope_t *env, uint8_t *buf, size_t cap)
{
    if (!env || !buf)
        return WEFT_EINVAL;
    if (env->h_count > WEFT_HEADERS_MAX || (env->h_count && (!env->h_keys || !env->h_values)))
        return WEFT_EINVAL;
    size_t src_len = strnlen(env->src, WEFT_NAME_MAX + 1);
    if (src_len == 0 || src_len > WEFT_NAME_MAX)
        return WEFT_EINVAL;

    bool has_ct = env->ct[0] && strcmp(env->ct, CT_DEFAULT) != 0;
    unsigned n = 6 + (env->ver != 1) + (env->corr[0] != 0) + (env->trace[0] != 0) +
                 (env->reply[0] != 0) + (env->tenant[0] != 0) + (env->retry != 0) + has_ct +
                 (env->h_count != 0);

    fixed_buf_t fb = {buf, 0, cap};
    msgpack_packer pk;
    msgpack_packer_init(&pk, &fb, s_fixed_write);
    int rc = 0;
    if (msgpack_pack_map(&pk, n) || s_pack_str(&pk, "v", 1) || msgpack_pack_uint32(&pk, env->v) ||
        s_pack_str(&pk, "id", 2) || msgpack_pack_bin(&pk, WEFT_ID_SIZE) ||
        msgpack_pack_bin_body(&pk, env->id, WEFT_ID_SIZE) || s_pack_str(&pk, "src", 3) ||
        s_pack_str(&pk, env->src, src_len) || s_pack_str(&pk, "inst", 4) ||
        msgpack_pack_uint64(&pk, env->inst) || s_pack_str(&pk, "seq", 3) ||
        msgpack_pack_uint64(&pk, env->seq) || s_pack_str(&pk, "ts", 2) ||
        msgpack_pack_int64(&pk, env->ts))
        return WEFT_ETOOBIG;
    if (env->ver != 1 && (s_pack_str(&pk, "ver", 3) || msgpack_pack_uint32(&pk, env->ver)))
        return WEFT_ETOOBIG;
    if (env->corr[0] && (rc = s_pack_kv_str(&pk, "corr", env->corr, WEFT_NAME_MAX)))
        return rc;
    if (env->trace[0] && (rc = s_pack_kv_str(&pk, "trace", env->trace, WEFT_NAME_MAX)))
        return rc;
    if (env->reply[0] && (rc = s_pack_kv_str(&pk, "reply", env->reply, WEFT_NAME_MAX)))
        return rc;
    if (env->tenant[0] && (rc = s_pack_kv_str(&pk, "tenant", env->tenant, WEFT_NAME_MAX)))
        return rc;
    if (env->retry && (s_pack_str(&pk, "retry", 5) || msgpack_pack_uint32(&pk, env->retry)))
        return WEFT_ETOOBIG;
    if (has_ct && (rc = s_pack_kv_str(&pk, "ct", env->ct, WEFT_CT_MAX)))
        return rc;
    if (env->h_count) {
        if (s_pack_str(&pk, "h", 1) || msgpack_pack_map(&pk, env->h_count))
            return WEFT_ETOOBIG;
        for (size_t i = 0; i < env->h_count; i++) {
            const char *k = env->h_keys[i], *v = env->h_values[i];
            if (!k || !v || !*k)
                return WEFT_EINVAL;
            if (s_pack_str(&pk, k, strlen(k)) || s_pack_str(&pk, v, strlen(v)))
                return WEFT_ETOOBIG;
        }
    }
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

static bool s_key_is(const msgpack_object_str *k, const char *name)
{
    size_t n = strlen(name);
    return k->size == n && memcmp(k->ptr, name, n) == 0;
}

static int s_get_uint(const msgpack_object *o, uint64_t max, uint64_t *out)
{
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 > max)
        return WEFT_EMALFORMED;
    *out = o->via.u64;
    return 0;
}

static int s_get_str(const msgpack_object *o, char *out, size_t max, bool allow_empty)
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

static int s_decode_map(weft_envelope_t *env, const msgpack_object *root, const uint8_t *base,
                        size_t size)
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
        if (s_key_is(ks, "v")) {
            bit = K_V;
            rc = s_get_uint(v, UINT32_MAX, &u);
            env->v = (uint32_t)u;
        } else if (s_key_is(ks, "id")) {
            bit = K_ID;
            if (v->type != MSGPACK_OBJECT_BIN || v->via.bin.size != WEFT_ID_SIZE)
                return WEFT_EMALFORMED;
            memcpy(env->id, v->via.bin.ptr, WEFT_ID_SIZE);
        } else if (s_key_is(ks, "src")) {
            bit = K_SRC;
            rc = s_get_str(v, env->src, WEFT_NAME_MAX, false);
        } else if (s_key_is(ks, "inst")) {
            bit = K_INST;
            rc = s_get_uint(v, UINT64_MAX, &env->inst);
        } else if (s_key_is(ks, "seq")) {
            bit = K_SEQ;
            rc = s_get_uint(v, UINT64_MAX, &env->seq);
        } else if (s_key_is(ks, "ts")) {
            bit = K_TS;
            if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER && v->via.u64 <= INT64_MAX)
                env->ts = (int64_t)v->via.u64;
            else if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
                env->ts = v->via.i64;
            else
                return WEFT_EMALFORMED;
        } else if (s_key_is(ks, "ver")) {
            bit = K_VER;
            rc = s_get_uint(v, UINT32_MAX, &u);
            env->ver = (uint32_t)u;
        } else if (s_key_is(ks, "corr")) {
            bit = K_CORR;
            rc = s_get_str(v, env->corr, WEFT_NAME_MAX, true);
        } else if (s_key_is(ks, "trace")) {
            bit = K_TRACE;
            rc = s_get_str(v, env->trace, WEFT_NAME_MAX, true);
        } else if (s_key_is(ks, "reply")) {
            bit = K_REPLY;
            rc = s_get_str(v, env->reply, WEFT_NAME_MAX, true);
        } else if (s_key_is(ks, "tenant")) {
            bit = K_TENANT;
            rc = s_get_str(v, env->tenant, WEFT_NAME_MAX, true);
        } else if (s_key_is(ks, "retry")) {
            bit = K_RETRY;
            rc = s_get_uint(v, UINT32_MAX, &u);
            env->retry = (uint32_t)u;
        } else if (s_key_is(ks, "ct")) {
            bit = K_CT;
            rc = s_get_str(v, env->ct, WEFT_CT_MAX, false);
        } else if (s_key_is(ks, "h")) {
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
static void s_locate_headers(weft_envelope_t *env, const uint8_t *data, size_t size)
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
        bool is_h = u.data.type == MSGPACK_OBJECT_STR && s_key_is(&u.data.via.str, "h");
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

int weft_envelope_decode(weft_envelope_t *env, const void *data, size_t size)
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
        rc = s_decode_map(env, &u.data, bytes, size);
    msgpack_unpacked_destroy(&u);
    if (rc == 0 && env->h_count)
        s_locate_headers(env, bytes, size);
    return rc;
}

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

void weft_id_new(uint8_t id[WEFT_ID_SIZE])
{
    uint64_t ms = (uint64_t)(weft_now_ns() / 1000000);
    uint64_t r1 = s_rand64(), r2 = s_rand64();
    for (int i = 0; i < 6; i++)
        id[i] = (uint8_t)(ms >> (8 * (5 - i)));
    id[6] = (uint8_t)(0x70 | (r1 & 0x0f));           /* version 7 */
    id[7] = (uint8_t)(r1 >> 8);
    id[8] = (uint8_t)(0x80 | ((r1 >> 16) & 0x3f));   /* variant 10 */
    for (int i = 9; i < 16; i++)
        id[i] = (uint8_t)(r2 >> (8 * (i - 9)));
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

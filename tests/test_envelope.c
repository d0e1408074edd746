/*  test_envelope.c - unit tests for the envelope codec (weft/envelope.h): round trips of every
    field, defaults, size and count limits, hostile and malformed input, topic rules, event ids
    and the error vocabulary. Malformed inputs are built by hand with msgpack_pack_* or as
    literal bytes, and decoded from exact-size heap copies so over-reads show up under ASan.

    The file is built with src/envelope.c compiled in with WEFT_ENVELOPE_REFERENCE, which adds
    a reference decoder on msgpack-c: differential tests require the direct decoder to give
    the same result and fields on valid envelopes, every single-byte mutation, truncation,
    deletion and insertion of them (and of the fuzz seeds), random envelopes and random bytes.
    Other tests require the publish path's encoding from a per-node prefix to give exactly the
    bytes (and errors) of weft_envelope_encode.
*/
#include <dirent.h>
#include <limits.h>
#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testing.h"
#include "weft/envelope.h"
#include "weft/error.h"

/* ---- helpers ------------------------------------------------------------------------- */

static const uint8_t k_id[WEFT_ID_SIZE] = {0x01, 0x8f, 0x3a, 0x10, 0x22, 0x33, 0x71, 0x44,
                                           0x95, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc};

/* Decodes from an exact-size heap copy of data; the copy is freed before returning, so only
   use this where the envelope's h_raw is not read afterwards. */
static int s_decode_copy(weft_envelope_t *env, const void *data, size_t size)
{
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        abort();
    if (size)
        memcpy(copy, data, size);
    int rc = weft_envelope_decode(env, copy, size);
    free(copy);
    return rc;
}

typedef struct {
    msgpack_sbuffer sb;
    msgpack_packer pk;
} mp_t;

static void mp_init(mp_t *m)
{
    msgpack_sbuffer_init(&m->sb);
    msgpack_packer_init(&m->pk, &m->sb, msgpack_sbuffer_write);
}

static void mp_free(mp_t *m)
{
    msgpack_sbuffer_destroy(&m->sb);
}

static int mp_decode(const mp_t *m, weft_envelope_t *env)
{
    return s_decode_copy(env, m->sb.data, m->sb.size);
}

static void mp_strn(msgpack_packer *pk, const char *s, size_t n)
{
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

static void mp_str(msgpack_packer *pk, const char *s)
{
    mp_strn(pk, s, strlen(s));
}

enum { R_V, R_ID, R_SRC, R_INST, R_SEQ, R_TS, R_COUNT };
static const char *const k_required[R_COUNT] = {"v", "id", "src", "inst", "seq", "ts"};

/* Packs required key/value pair i with a valid value. */
static void mp_required_pair(msgpack_packer *pk, int i)
{
    mp_str(pk, k_required[i]);
    switch (i) {
    case R_V: msgpack_pack_uint32(pk, 1); break;
    case R_ID:
        msgpack_pack_bin(pk, WEFT_ID_SIZE);
        msgpack_pack_bin_body(pk, k_id, WEFT_ID_SIZE);
        break;
    case R_SRC: mp_str(pk, "node-a"); break;
    case R_INST: msgpack_pack_uint64(pk, 42); break;
    case R_SEQ: msgpack_pack_uint64(pk, 7); break;
    case R_TS: msgpack_pack_int64(pk, 1700000000000000000LL); break;
    }
}

/* Packs the required key/value pairs with valid values, leaving out index skip (-1: none). */
static void mp_required(msgpack_packer *pk, int skip)
{
    for (int i = 0; i < R_COUNT; i++)
        if (i != skip)
            mp_required_pair(pk, i);
}

/* Starts an envelope map holding the required pairs (minus skip) and room for extra pairs,
   which the caller packs next. */
static void mp_envelope(mp_t *m, int skip, unsigned extra)
{
    mp_init(m);
    msgpack_pack_map(&m->pk, (skip >= 0 ? R_COUNT - 1 : R_COUNT) + extra);
    mp_required(&m->pk, skip);
}

static bool s_required_ok(const weft_envelope_t *e)
{
    return e->v == 1 && memcmp(e->id, k_id, WEFT_ID_SIZE) == 0 && strcmp(e->src, "node-a") == 0 &&
           e->inst == 42 && e->seq == 7 && e->ts == 1700000000000000000LL;
}

/* A complete envelope with every optional field and three headers. */
static const char *const k_hkeys[] = {"x-first", "x-second", "x-empty"};
static const char *const k_hvals[] = {"1", "two", ""};

static void s_full(weft_envelope_t *e)
{
    weft_envelope_init(e);
    memcpy(e->id, k_id, WEFT_ID_SIZE);
    strcpy(e->src, "orders-node");
    e->inst = 0xfedcba9876543210ULL;
    e->seq = UINT64_MAX;
    e->ts = -1234567890123456789LL;
    e->ver = 7;
    strcpy(e->corr, "corr-1");
    strcpy(e->trace, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    strcpy(e->reply, "orders.reply.42");
    strcpy(e->tenant, "acme");
    e->retry = 3;
    strcpy(e->ct, "application/json");
    e->h_keys = k_hkeys;
    e->h_values = k_hvals;
    e->h_count = 3;
}

static void s_minimal(weft_envelope_t *e)
{
    weft_envelope_init(e);
    memcpy(e->id, k_id, WEFT_ID_SIZE);
    strcpy(e->src, "node-a");
    e->inst = 42;
    e->seq = 7;
    e->ts = 1700000000000000000LL;
}

/* Collects headers in wire order. */
typedef struct {
    char keys[WEFT_HEADERS_MAX + 1][64];
    char vals[WEFT_HEADERS_MAX + 1][64];
    size_t n;
    size_t stop_after; /* return 99 after this many calls; 0 = never */
} hdr_list_t;

static int s_collect(const char *k, size_t kl, const char *v, size_t vl, void *arg)
{
    hdr_list_t *l = arg;
    if (l->n > WEFT_HEADERS_MAX || kl >= 64 || vl >= 64)
        return -1;
    memcpy(l->keys[l->n], k, kl);
    l->keys[l->n][kl] = 0;
    memcpy(l->vals[l->n], v, vl);
    l->vals[l->n][vl] = 0;
    l->n++;
    return l->stop_after && l->n == l->stop_after ? 99 : 0;
}

/* Number of pairs in the top-level map of an encoded envelope and whether key is among them. */
static int s_wire_pairs(const uint8_t *data, size_t size, const char *key, bool *has_key)
{
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    int pairs = -1;
    *has_key = false;
    if (msgpack_unpack_next(&u, (const char *)data, size, &off) == MSGPACK_UNPACK_SUCCESS &&
        u.data.type == MSGPACK_OBJECT_MAP) {
        pairs = (int)u.data.via.map.size;
        for (uint32_t i = 0; i < u.data.via.map.size; i++) {
            const msgpack_object *k = &u.data.via.map.ptr[i].key;
            if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == strlen(key) &&
                memcmp(k->via.str.ptr, key, k->via.str.size) == 0)
                *has_key = true;
        }
    }
    msgpack_unpacked_destroy(&u);
    return pairs;
}

/* ---- round trips and defaults -------------------------------------------------------- */

TEST_CASE("every envelope field survives an encode/decode round trip", t_round_trip_all)
{
    weft_envelope_t in, out;
    uint8_t buf[1024];
    s_full(&in);
    int n = weft_envelope_encode(&in, buf, sizeof(buf));
    CHECK(n > 0);
    CHECK_EQ_INT(weft_envelope_decode(&out, buf, (size_t)n), WEFT_OK);
    CHECK_EQ_INT(out.v, 1);
    CHECK(memcmp(out.id, k_id, WEFT_ID_SIZE) == 0);
    CHECK_STR(out.src, "orders-node");
    CHECK(out.inst == 0xfedcba9876543210ULL);
    CHECK(out.seq == UINT64_MAX);
    CHECK(out.ts == -1234567890123456789LL);
    CHECK_EQ_INT(out.ver, 7);
    CHECK_STR(out.corr, "corr-1");
    CHECK_STR(out.trace, in.trace);
    CHECK_STR(out.reply, "orders.reply.42");
    CHECK_STR(out.tenant, "acme");
    CHECK_EQ_INT(out.retry, 3);
    CHECK_STR(out.ct, "application/json");
    CHECK_EQ_INT(out.h_count, 3);
    CHECK(out.h_raw != NULL);
    CHECK(out.h_raw >= buf && out.h_raw + out.h_raw_size <= buf + n);
}

TEST_CASE("headers are read back by key and in wire order", t_headers_lookup)
{
    weft_envelope_t in, out;
    uint8_t buf[1024];
    char val[16];
    s_full(&in);
    int n = weft_envelope_encode(&in, buf, sizeof(buf));
    CHECK(n > 0);
    CHECK_EQ_INT(weft_envelope_decode(&out, buf, (size_t)n), WEFT_OK);

    CHECK_EQ_INT(weft_envelope_header(&out, "x-second", val, sizeof(val)), 3);
    CHECK_STR(val, "two");
    CHECK_EQ_INT(weft_envelope_header(&out, "x-first", val, sizeof(val)), 1);
    CHECK_STR(val, "1");
    CHECK_EQ_INT(weft_envelope_header(&out, "x-empty", val, sizeof(val)), 0);
    CHECK_STR(val, "");
    CHECK_EQ_INT(weft_envelope_header(&out, "x-secon", val, sizeof(val)), WEFT_ENOTFOUND);
    CHECK_EQ_INT(weft_envelope_header(&out, "x-second-", val, sizeof(val)), WEFT_ENOTFOUND);
    CHECK_EQ_INT(weft_envelope_header(&out, "x-second", val, 4), 3);      /* exact fit */
    CHECK_EQ_INT(weft_envelope_header(&out, "x-second", val, 3), WEFT_ETOOBIG);
    CHECK_EQ_INT(weft_envelope_header(&out, "x-second", val, 0), WEFT_EINVAL);
    CHECK_EQ_INT(weft_envelope_header(&out, NULL, val, sizeof(val)), WEFT_EINVAL);
    CHECK_EQ_INT(weft_envelope_header(NULL, "x-second", val, sizeof(val)), WEFT_EINVAL);

    hdr_list_t *l = calloc(1, sizeof(*l));
    CHECK(l != NULL);
    int rc = weft_envelope_headers_each(&out, s_collect, l);
    size_t got = l->n;
    bool same = got == 3;
    for (size_t i = 0; same && i < 3; i++)
        same = strcmp(l->keys[i], k_hkeys[i]) == 0 && strcmp(l->vals[i], k_hvals[i]) == 0;
    memset(l, 0, sizeof(*l));
    l->stop_after = 2;
    int rc_stop = weft_envelope_headers_each(&out, s_collect, l);
    size_t got_stop = l->n;
    free(l);
    CHECK_EQ_INT(rc, 0);
    CHECK(same);
    CHECK_EQ_INT(rc_stop, 99);
    CHECK_EQ_INT(got_stop, 2);
}

TEST_CASE("an envelope without headers has none to look up or iterate", t_headers_none)
{
    weft_envelope_t in, out;
    uint8_t buf[256];
    char val[16];
    hdr_list_t l;
    memset(&l, 0, sizeof(l));
    s_minimal(&in);
    int n = weft_envelope_encode(&in, buf, sizeof(buf));
    CHECK(n > 0);
    CHECK_EQ_INT(weft_envelope_decode(&out, buf, (size_t)n), WEFT_OK);
    CHECK_EQ_INT(out.h_count, 0);
    CHECK(out.h_raw == NULL);
    CHECK_EQ_INT(weft_envelope_header(&out, "x", val, sizeof(val)), WEFT_ENOTFOUND);
    CHECK_EQ_INT(weft_envelope_headers_each(&out, s_collect, &l), 0);
    CHECK_EQ_INT(l.n, 0);
}

TEST_CASE("extreme integer values of inst, seq and ts round trip", t_round_trip_extremes)
{
    const int64_t tss[] = {INT64_MIN, -1, 0, 1, INT64_MAX, -32, -33, -129, -32769};
    const uint64_t us[] = {0, 1, 127, 128, 255, 256, 65535, 65536, UINT32_MAX,
                           (uint64_t)UINT32_MAX + 1, UINT64_MAX};
    for (size_t i = 0; i < sizeof(tss) / sizeof(tss[0]); i++) {
        for (size_t j = 0; j < sizeof(us) / sizeof(us[0]); j++) {
            weft_envelope_t in, out;
            uint8_t buf[256];
            s_minimal(&in);
            in.ts = tss[i];
            in.seq = us[j];
            in.inst = us[sizeof(us) / sizeof(us[0]) - 1 - j];
            in.retry = (uint32_t)us[j];
            in.ver = (uint32_t)us[j];
            int n = weft_envelope_encode(&in, buf, sizeof(buf));
            CHECK(n > 0);
            CHECK_EQ_INT(weft_envelope_decode(&out, buf, (size_t)n), WEFT_OK);
            CHECK(out.ts == in.ts);
            CHECK(out.seq == in.seq);
            CHECK(out.inst == in.inst);
            CHECK(out.retry == in.retry);
            CHECK(out.ver == in.ver);
        }
    }
}

TEST_CASE("optional fields equal to their default are left out and restored on decode",
          t_defaults)
{
    weft_envelope_t in, out;
    uint8_t buf[256];
    bool has;
    s_minimal(&in);
    int n = weft_envelope_encode(&in, buf, sizeof(buf));
    CHECK(n > 0);
    CHECK_EQ_INT(s_wire_pairs(buf, (size_t)n, "ct", &has), 6);
    const char *const optional[] = {"ver", "corr", "trace", "reply", "tenant", "retry", "ct", "h"};
    for (size_t i = 0; i < sizeof(optional) / sizeof(optional[0]); i++) {
        s_wire_pairs(buf, (size_t)n, optional[i], &has);
        CHECK(!has);
    }
    for (int i = 0; i < R_COUNT; i++) {
        s_wire_pairs(buf, (size_t)n, k_required[i], &has);
        CHECK(has);
    }

    /* Fill the output with junk first: decode must restore every default itself. */
    memset(&out, 0x5a, sizeof(out));
    CHECK_EQ_INT(weft_envelope_decode(&out, buf, (size_t)n), WEFT_OK);
    CHECK(s_required_ok(&out));
    CHECK_EQ_INT(out.ver, 1);
    CHECK_STR(out.corr, "");
    CHECK_STR(out.trace, "");
    CHECK_STR(out.reply, "");
    CHECK_STR(out.tenant, "");
    CHECK_EQ_INT(out.retry, 0);
    CHECK_STR(out.ct, "application/msgpack");
    CHECK_EQ_INT(out.h_count, 0);
    CHECK(out.h_raw == NULL);

    /* The default content type spelled out, or an empty one, is left out as well. */
    strcpy(in.ct, "application/msgpack");
    n = weft_envelope_encode(&in, buf, sizeof(buf));
    CHECK(n > 0);
    CHECK_EQ_INT(s_wire_pairs(buf, (size_t)n, "ct", &has), 6);
    CHECK(!has);
    in.ct[0] = 0;
    n = weft_envelope_encode(&in, buf, sizeof(buf));
    CHECK(n > 0);
    CHECK_EQ_INT(s_wire_pairs(buf, (size_t)n, "ct", &has), 6);
    CHECK_EQ_INT(weft_envelope_decode(&out, buf, (size_t)n), WEFT_OK);
    CHECK_STR(out.ct, "application/msgpack");
}

TEST_CASE("weft_envelope_init sets the documented defaults", t_init)
{
    weft_envelope_t e;
    memset(&e, 0x5a, sizeof(e));
    weft_envelope_init(&e);
    CHECK_EQ_INT(e.v, WEFT_WIRE_VERSION);
    CHECK_EQ_INT(e.ver, 1);
    CHECK_STR(e.ct, "application/msgpack");
    CHECK_STR(e.src, "");
    CHECK(e.inst == 0 && e.seq == 0 && e.ts == 0 && e.retry == 0);
    CHECK(e.h_raw == NULL && e.h_keys == NULL && e.h_values == NULL && e.h_count == 0);
}

TEST_CASE("defaults written out explicitly on the wire decode to the same values",
          t_explicit_defaults)
{
    mp_t m;
    weft_envelope_t e;
    mp_envelope(&m, -1, 4);
    mp_str(&m.pk, "ver");
    msgpack_pack_uint32(&m.pk, 1);
    mp_str(&m.pk, "ct");
    mp_str(&m.pk, "application/msgpack");
    mp_str(&m.pk, "corr");
    mp_str(&m.pk, "");
    mp_str(&m.pk, "h");
    msgpack_pack_map(&m.pk, 0);
    int rc = mp_decode(&m, &e);
    mp_free(&m);
    CHECK_EQ_INT(rc, WEFT_OK);
    CHECK(s_required_ok(&e));
    CHECK_EQ_INT(e.ver, 1);
    CHECK_STR(e.ct, "application/msgpack");
    CHECK_STR(e.corr, "");
    CHECK_EQ_INT(e.h_count, 0);
}

/* ---- limits -------------------------------------------------------------------------- */

TEST_CASE("src of 255 bytes is accepted and 256 bytes is rejected by encode", t_src_limit)
{
    weft_envelope_t in, out;
    uint8_t buf[1024];
    s_minimal(&in);
    memset(in.src, 's', 255);
    in.src[255] = 0;
    int n = weft_envelope_encode(&in, buf, sizeof(buf));
    CHECK(n > 0);
    CHECK_EQ_INT(weft_envelope_decode(&out, buf, (size_t)n), WEFT_OK);
    CHECK_EQ_INT(strlen(out.src), 255);
    CHECK(memcmp(out.src, in.src, 256) == 0);

    memset(in.src, 's', sizeof(in.src)); /* 256 bytes, no terminator inside the field */
    CHECK_EQ_INT(weft_envelope_encode(&in, buf, sizeof(buf)), WEFT_EINVAL);
    in.src[0] = 0;
    CHECK_EQ_INT(weft_envelope_encode(&in, buf, sizeof(buf)), WEFT_EINVAL); /* empty */
}

TEST_CASE("optional strings at their limit are accepted and one byte more is rejected",
          t_optional_string_limits)
{
    weft_envelope_t in, out;
    uint8_t buf[2048];
    char *fields[4];
    for (int f = 0; f < 5; f++) {
        s_minimal(&in);
        fields[0] = in.corr;
        fields[1] = in.trace;
        fields[2] = in.reply;
        fields[3] = in.tenant;
        char *s = f < 4 ? fields[f] : in.ct;
        size_t max = f < 4 ? WEFT_NAME_MAX : WEFT_CT_MAX;
        memset(s, 'a' + f, max);
        s[max] = 0;
        int n = weft_envelope_encode(&in, buf, sizeof(buf));
        CHECK(n > 0);
        CHECK_EQ_INT(weft_envelope_decode(&out, buf, (size_t)n), WEFT_OK);
        const char *o = f == 0 ? out.corr : f == 1 ? out.trace : f == 2 ? out.reply
                        : f == 3 ? out.tenant : out.ct;
        CHECK_STR(o, s);
        memset(s, 'a' + f, max + 1); /* the whole field, no terminator */
        CHECK_EQ_INT(weft_envelope_encode(&in, buf, sizeof(buf)), WEFT_EINVAL);
    }
}

static char s_hk[WEFT_HEADERS_MAX + 1][8];
static const char *s_hkp[WEFT_HEADERS_MAX + 1];
static const char *s_hvp[WEFT_HEADERS_MAX + 1];

TEST_CASE("64 headers are accepted and 65 are rejected by encode", t_header_count_limit)
{
    weft_envelope_t in, out;
    static uint8_t buf[4096];
    for (int i = 0; i <= WEFT_HEADERS_MAX; i++) {
        snprintf(s_hk[i], sizeof(s_hk[i]), "k%d", i);
        s_hkp[i] = s_hk[i];
        s_hvp[i] = "v";
    }
    s_minimal(&in);
    in.h_keys = s_hkp;
    in.h_values = s_hvp;
    in.h_count = WEFT_HEADERS_MAX;
    int n = weft_envelope_encode(&in, buf, sizeof(buf));
    CHECK(n > 0);
    CHECK_EQ_INT(weft_envelope_decode(&out, buf, (size_t)n), WEFT_OK);
    CHECK_EQ_INT(out.h_count, 64);
    char val[8];
    CHECK_EQ_INT(weft_envelope_header(&out, "k63", val, sizeof(val)), 1);
    CHECK_EQ_INT(weft_envelope_header(&out, "k64", val, sizeof(val)), WEFT_ENOTFOUND);

    in.h_count = WEFT_HEADERS_MAX + 1;
    CHECK_EQ_INT(weft_envelope_encode(&in, buf, sizeof(buf)), WEFT_EINVAL);
}

TEST_CASE("invalid header arguments are rejected by encode", t_header_args)
{
    weft_envelope_t in;
    uint8_t buf[256];
    const char *keys[2] = {"a", ""};
    const char *vals[2] = {"1", "2"};
    s_minimal(&in);
    in.h_count = 1;
    CHECK_EQ_INT(weft_envelope_encode(&in, buf, sizeof(buf)), WEFT_EINVAL); /* NULL arrays */
    in.h_keys = keys;
    in.h_values = vals;
    in.h_count = 2;
    CHECK_EQ_INT(weft_envelope_encode(&in, buf, sizeof(buf)), WEFT_EINVAL); /* empty key */
    keys[1] = NULL;
    CHECK_EQ_INT(weft_envelope_encode(&in, buf, sizeof(buf)), WEFT_EINVAL);
    keys[1] = "b";
    vals[1] = NULL;
    CHECK_EQ_INT(weft_envelope_encode(&in, buf, sizeof(buf)), WEFT_EINVAL);
    vals[1] = "2";
    CHECK(weft_envelope_encode(&in, buf, sizeof(buf)) > 0);
    CHECK_EQ_INT(weft_envelope_encode(NULL, buf, sizeof(buf)), WEFT_EINVAL);
    CHECK_EQ_INT(weft_envelope_encode(&in, NULL, sizeof(buf)), WEFT_EINVAL);
}

TEST_CASE("encode into a buffer one byte too small at any size fails with ETOOBIG",
          t_encode_small_buffer)
{
    weft_envelope_t in;
    uint8_t buf[1024];
    s_full(&in);
    int n = weft_envelope_encode(&in, buf, sizeof(buf));
    CHECK(n > 0);
    for (int cap = 0; cap < n; cap++) {
        uint8_t *small = malloc((size_t)cap + 1);
        CHECK(small != NULL);
        small[cap] = 0xee; /* guard byte */
        int rc = weft_envelope_encode(&in, small, (size_t)cap);
        uint8_t guard = small[cap];
        free(small);
        if (rc != WEFT_ETOOBIG)
            fprintf(stderr, "  cap %d gave %d\n", cap, rc);
        CHECK_EQ_INT(rc, WEFT_ETOOBIG);
        CHECK_EQ_INT(guard, 0xee);
    }
    uint8_t exact[1024];
    CHECK_EQ_INT(weft_envelope_encode(&in, exact, (size_t)n), n);
    CHECK(memcmp(exact, buf, (size_t)n) == 0);
}

TEST_CASE("encode of headers adding up to more than 64 KiB fails with ETOOBIG",
          t_encode_too_big)
{
    weft_envelope_t in;
    static char big[2000];
    static uint8_t buf[2 * WEFT_ENVELOPE_MAX];
    memset(big, 'b', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    for (int i = 0; i < WEFT_HEADERS_MAX; i++) {
        snprintf(s_hk[i], sizeof(s_hk[i]), "k%d", i);
        s_hkp[i] = s_hk[i];
        s_hvp[i] = big;
    }
    s_minimal(&in);
    in.h_keys = s_hkp;
    in.h_values = s_hvp;
    in.h_count = 32; /* about 64 KB: fits */
    int n = weft_envelope_encode(&in, buf, sizeof(buf));
    CHECK(n > 0 && n <= WEFT_ENVELOPE_MAX);
    in.h_count = WEFT_HEADERS_MAX; /* about 128 KB */
    CHECK_EQ_INT(weft_envelope_encode(&in, buf, sizeof(buf)), WEFT_ETOOBIG);
}

/* Builds a valid envelope of exactly `size` bytes by padding it with an unknown bin key. */
static bool s_envelope_of_size(mp_t *m, size_t size)
{
    size_t pad = 300;
    for (int attempt = 0; attempt < 4; attempt++) {
        mp_envelope(m, -1, 1);
        mp_str(&m->pk, "pad");
        uint8_t *zeros = calloc(1, pad);
        msgpack_pack_bin(&m->pk, pad);
        msgpack_pack_bin_body(&m->pk, zeros, pad);
        free(zeros);
        if (m->sb.size == size)
            return true;
        pad += size - m->sb.size;
        mp_free(m);
    }
    return false;
}

TEST_CASE("an envelope of exactly 64 KiB decodes and one byte more is ETOOBIG",
          t_decode_size_limit)
{
    mp_t m;
    weft_envelope_t e;
    CHECK(s_envelope_of_size(&m, WEFT_ENVELOPE_MAX));
    int rc = mp_decode(&m, &e);
    mp_free(&m);
    CHECK_EQ_INT(rc, WEFT_OK);
    CHECK(s_required_ok(&e));

    CHECK(s_envelope_of_size(&m, WEFT_ENVELOPE_MAX + 1));
    rc = mp_decode(&m, &e);
    mp_free(&m);
    CHECK_EQ_INT(rc, WEFT_ETOOBIG);

    /* Size alone decides, whatever the bytes. */
    uint8_t *junk = calloc(1, 1 << 20);
    CHECK(junk != NULL);
    rc = weft_envelope_decode(&e, junk, 1 << 20);
    free(junk);
    CHECK_EQ_INT(rc, WEFT_ETOOBIG);
}

/* ---- malformed input ----------------------------------------------------------------- */

TEST_CASE("decode rejects NULL arguments with EINVAL and empty input as malformed",
          t_decode_empty)
{
    weft_envelope_t e;
    uint8_t b = 0x80;
    CHECK_EQ_INT(weft_envelope_decode(NULL, &b, 1), WEFT_EINVAL);
    CHECK_EQ_INT(weft_envelope_decode(&e, NULL, 1), WEFT_EINVAL);
    CHECK_EQ_INT(weft_envelope_decode(&e, &b, 0), WEFT_EMALFORMED);
    CHECK_EQ_INT(s_decode_copy(&e, &b, 0), WEFT_EMALFORMED);
    CHECK_EQ_INT(s_decode_copy(&e, &b, 1), WEFT_EMALFORMED); /* empty map: keys missing */
}

TEST_CASE("a msgpack object that is not a map is malformed", t_not_a_map)
{
    weft_envelope_t e;
    const uint8_t nil[] = {0xc0}, one[] = {0x01}, neg[] = {0xff}, t[] = {0xc3};
    const uint8_t arr[] = {0x92, 0x01, 0x02}, str[] = {0xa1, 'v'}, bin[] = {0xc4, 0x01, 0x00};
    const uint8_t dbl[] = {0xcb, 0, 0, 0, 0, 0, 0, 0, 0}, ext[] = {0xd4, 0x01, 0x00};
    CHECK_EQ_INT(s_decode_copy(&e, nil, sizeof(nil)), WEFT_EMALFORMED);
    CHECK_EQ_INT(s_decode_copy(&e, one, sizeof(one)), WEFT_EMALFORMED);
    CHECK_EQ_INT(s_decode_copy(&e, neg, sizeof(neg)), WEFT_EMALFORMED);
    CHECK_EQ_INT(s_decode_copy(&e, t, sizeof(t)), WEFT_EMALFORMED);
    CHECK_EQ_INT(s_decode_copy(&e, arr, sizeof(arr)), WEFT_EMALFORMED);
    CHECK_EQ_INT(s_decode_copy(&e, str, sizeof(str)), WEFT_EMALFORMED);
    CHECK_EQ_INT(s_decode_copy(&e, bin, sizeof(bin)), WEFT_EMALFORMED);
    CHECK_EQ_INT(s_decode_copy(&e, dbl, sizeof(dbl)), WEFT_EMALFORMED);
    CHECK_EQ_INT(s_decode_copy(&e, ext, sizeof(ext)), WEFT_EMALFORMED);

    /* An array holding a perfectly good envelope is still not an envelope. */
    mp_t m;
    mp_init(&m);
    msgpack_pack_array(&m.pk, 1);
    msgpack_pack_map(&m.pk, R_COUNT);
    mp_required(&m.pk, -1);
    int rc = mp_decode(&m, &e);
    mp_free(&m);
    CHECK_EQ_INT(rc, WEFT_EMALFORMED);
}

TEST_CASE("every truncated prefix of a valid envelope is malformed", t_truncated)
{
    weft_envelope_t in, out;
    uint8_t buf[1024];
    s_full(&in);
    int n = weft_envelope_encode(&in, buf, sizeof(buf));
    CHECK(n > 0);
    for (int len = 0; len < n; len++) {
        int rc = s_decode_copy(&out, buf, (size_t)len);
        if (rc != WEFT_EMALFORMED)
            fprintf(stderr, "  prefix of %d bytes gave %d\n", len, rc);
        CHECK_EQ_INT(rc, WEFT_EMALFORMED);
    }
    CHECK_EQ_INT(s_decode_copy(&out, buf, (size_t)n), WEFT_OK);
}

TEST_CASE("trailing bytes after the envelope map are malformed", t_trailing)
{
    weft_envelope_t in, out;
    uint8_t buf[2048];
    s_full(&in);
    int n = weft_envelope_encode(&in, buf, sizeof(buf));
    CHECK(n > 0);
    buf[n] = 0xc0;
    CHECK_EQ_INT(s_decode_copy(&out, buf, (size_t)n + 1), WEFT_EMALFORMED);
    buf[n] = 0x00;
    CHECK_EQ_INT(s_decode_copy(&out, buf, (size_t)n + 1), WEFT_EMALFORMED);
    memcpy(buf + n, buf, (size_t)n); /* two envelopes back to back */
    CHECK_EQ_INT(s_decode_copy(&out, buf, 2 * (size_t)n), WEFT_EMALFORMED);
}

TEST_CASE("an envelope missing any one required key is malformed", t_missing_required)
{
    for (int skip = 0; skip < R_COUNT; skip++) {
        mp_t m;
        weft_envelope_t e;
        mp_envelope(&m, skip, 0);
        int rc = mp_decode(&m, &e);
        mp_free(&m);
        if (rc != WEFT_EMALFORMED)
            fprintf(stderr, "  without \"%s\": %d\n", k_required[skip], rc);
        CHECK_EQ_INT(rc, WEFT_EMALFORMED);
    }
    /* And with the key present under a different spelling. */
    mp_t m;
    weft_envelope_t e;
    mp_envelope(&m, R_SEQ, 1);
    mp_str(&m.pk, "Seq");
    msgpack_pack_uint64(&m.pk, 7);
    int rc = mp_decode(&m, &e);
    mp_free(&m);
    CHECK_EQ_INT(rc, WEFT_EMALFORMED);
}

typedef enum {
    W_NIL, W_FALSE, W_UINT1, W_NEGINT, W_FLOAT, W_DOUBLE, W_STR, W_EMPTY_STR, W_BIN1, W_BIN15,
    W_BIN16, W_BIN17, W_EMPTY_ARRAY, W_ARRAY, W_EMPTY_MAP, W_MAP_INT_VALUE, W_MAP_INT_KEY,
    W_MAP_BIN_VALUE, W_EXT, W_COUNT
} wval_t;

static const char *const k_wnames[W_COUNT] = {
    "nil", "false", "uint 1", "-5", "float", "double", "str", "empty str", "bin1", "bin15",
    "bin16", "bin17", "[]", "[1]", "{}", "{str: int}", "{int: str}", "{str: bin}", "ext",
};

static void mp_wval(msgpack_packer *pk, wval_t w)
{
    static const uint8_t bytes[17] = {0};
    switch (w) {
    case W_NIL: msgpack_pack_nil(pk); break;
    case W_FALSE: msgpack_pack_false(pk); break;
    case W_UINT1: msgpack_pack_uint8(pk, 1); break;
    case W_NEGINT: msgpack_pack_int8(pk, -5); break;
    case W_FLOAT: msgpack_pack_float(pk, 1.5f); break;
    case W_DOUBLE: msgpack_pack_double(pk, 1.5); break;
    case W_STR: mp_str(pk, "x"); break;
    case W_EMPTY_STR: mp_str(pk, ""); break;
    case W_BIN1: msgpack_pack_bin(pk, 1); msgpack_pack_bin_body(pk, bytes, 1); break;
    case W_BIN15: msgpack_pack_bin(pk, 15); msgpack_pack_bin_body(pk, bytes, 15); break;
    case W_BIN16: msgpack_pack_bin(pk, 16); msgpack_pack_bin_body(pk, bytes, 16); break;
    case W_BIN17: msgpack_pack_bin(pk, 17); msgpack_pack_bin_body(pk, bytes, 17); break;
    case W_EMPTY_ARRAY: msgpack_pack_array(pk, 0); break;
    case W_ARRAY: msgpack_pack_array(pk, 1); msgpack_pack_uint8(pk, 1); break;
    case W_EMPTY_MAP: msgpack_pack_map(pk, 0); break;
    case W_MAP_INT_VALUE: msgpack_pack_map(pk, 1); mp_str(pk, "a"); msgpack_pack_int(pk, 1); break;
    case W_MAP_INT_KEY: msgpack_pack_map(pk, 1); msgpack_pack_int(pk, 1); mp_str(pk, "a"); break;
    case W_MAP_BIN_VALUE:
        msgpack_pack_map(pk, 1);
        mp_str(pk, "a");
        msgpack_pack_bin(pk, 1);
        msgpack_pack_bin_body(pk, bytes, 1);
        break;
    case W_EXT: msgpack_pack_ext(pk, 1, 5); msgpack_pack_ext_body(pk, bytes, 1); break;
    case W_COUNT: break;
    }
}

/* Whether value kind w is acceptable for a known key. */
static bool s_wval_valid(const char *key, wval_t w)
{
    if (!strcmp(key, "v") || !strcmp(key, "inst") || !strcmp(key, "seq") ||
        !strcmp(key, "ver") || !strcmp(key, "retry"))
        return w == W_UINT1;
    if (!strcmp(key, "ts"))
        return w == W_UINT1 || w == W_NEGINT;
    if (!strcmp(key, "id"))
        return w == W_BIN16;
    if (!strcmp(key, "src") || !strcmp(key, "ct"))
        return w == W_STR;
    if (!strcmp(key, "corr") || !strcmp(key, "trace") || !strcmp(key, "reply") ||
        !strcmp(key, "tenant"))
        return w == W_STR || w == W_EMPTY_STR;
    if (!strcmp(key, "h"))
        return w == W_EMPTY_MAP;
    return true;
}

static const char *const k_known[] = {"v", "id", "src", "inst", "seq", "ts", "ver",
                                      "corr", "trace", "reply", "tenant", "retry", "ct", "h"};

/* Decodes a valid envelope in which `key` has a value of kind w. */
static int s_decode_with(const char *key, wval_t w)
{
    int skip = -1;
    for (int i = 0; i < R_COUNT; i++)
        if (!strcmp(key, k_required[i]))
            skip = i;
    mp_t m;
    weft_envelope_t e;
    mp_envelope(&m, skip, 1);
    mp_str(&m.pk, key);
    mp_wval(&m.pk, w);
    int rc = mp_decode(&m, &e);
    mp_free(&m);
    return rc;
}

TEST_CASE("every known key with a value of the wrong type is malformed", t_wrong_types)
{
    int checked = 0;
    for (size_t k = 0; k < sizeof(k_known) / sizeof(k_known[0]); k++) {
        for (int w = 0; w < W_COUNT; w++) {
            int rc = s_decode_with(k_known[k], (wval_t)w);
            int want = s_wval_valid(k_known[k], (wval_t)w) ? WEFT_OK : WEFT_EMALFORMED;
            if (rc != want)
                fprintf(stderr, "  \"%s\": %s gave %d, expected %d\n", k_known[k],
                        k_wnames[w], rc, want);
            CHECK_EQ_INT(rc, want);
            checked += want == WEFT_EMALFORMED;
        }
    }
    CHECK(checked > 200);
}

TEST_CASE("the classic wrong types are malformed: seq as string, id as 15-byte bin, src as "
          "int, ts as float, h as array, h value as int",
          t_wrong_types_named)
{
    CHECK_EQ_INT(s_decode_with("seq", W_STR), WEFT_EMALFORMED);
    CHECK_EQ_INT(s_decode_with("id", W_BIN15), WEFT_EMALFORMED);
    CHECK_EQ_INT(s_decode_with("src", W_UINT1), WEFT_EMALFORMED);
    CHECK_EQ_INT(s_decode_with("ts", W_DOUBLE), WEFT_EMALFORMED);
    CHECK_EQ_INT(s_decode_with("ts", W_FLOAT), WEFT_EMALFORMED);
    CHECK_EQ_INT(s_decode_with("h", W_ARRAY), WEFT_EMALFORMED);
    CHECK_EQ_INT(s_decode_with("h", W_MAP_INT_VALUE), WEFT_EMALFORMED);
}

TEST_CASE("integers outside the range of their field are malformed", t_int_ranges)
{
    const char *const u32_keys[] = {"v", "ver", "retry"};
    for (size_t i = 0; i < 3; i++) {
        int skip = i == 0 ? R_V : -1;
        mp_t m;
        weft_envelope_t e;
        mp_envelope(&m, skip, 1);
        mp_str(&m.pk, u32_keys[i]);
        msgpack_pack_uint64(&m.pk, (uint64_t)UINT32_MAX + 1);
        int rc = mp_decode(&m, &e);
        mp_free(&m);
        CHECK_EQ_INT(rc, WEFT_EMALFORMED);
    }
    /* ts above INT64_MAX, encoded as uint64 */
    mp_t m;
    weft_envelope_t e;
    mp_envelope(&m, R_TS, 1);
    mp_str(&m.pk, "ts");
    msgpack_pack_uint64(&m.pk, (uint64_t)INT64_MAX + 1);
    int rc = mp_decode(&m, &e);
    mp_free(&m);
    CHECK_EQ_INT(rc, WEFT_EMALFORMED);
    /* negative inst and seq */
    mp_envelope(&m, R_INST, 1);
    mp_str(&m.pk, "inst");
    msgpack_pack_int64(&m.pk, -1);
    rc = mp_decode(&m, &e);
    mp_free(&m);
    CHECK_EQ_INT(rc, WEFT_EMALFORMED);
    /* a positive value written with a signed wire type is still a valid seq */
    mp_envelope(&m, R_SEQ, 1);
    mp_str(&m.pk, "seq");
    msgpack_pack_fix_int64(&m.pk, 7);
    rc = mp_decode(&m, &e);
    mp_free(&m);
    CHECK_EQ_INT(rc, WEFT_OK);
    CHECK(s_required_ok(&e));
}

TEST_CASE("strings longer than their limit on the wire are malformed", t_wire_string_limits)
{
    char s[300];
    memset(s, 'x', sizeof(s));
    const struct {
        const char *key;
        size_t ok, bad;
    } rows[] = {{"src", 255, 256}, {"corr", 255, 256}, {"trace", 255, 256},
                {"reply", 255, 256}, {"tenant", 255, 256}, {"ct", 127, 128}};
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        for (int bad = 0; bad < 2; bad++) {
            mp_t m;
            weft_envelope_t e;
            bool is_src = !strcmp(rows[i].key, "src");
            mp_envelope(&m, is_src ? R_SRC : -1, 1);
            mp_str(&m.pk, rows[i].key);
            mp_strn(&m.pk, s, bad ? rows[i].bad : rows[i].ok);
            int rc = mp_decode(&m, &e);
            mp_free(&m);
            CHECK_EQ_INT(rc, bad ? WEFT_EMALFORMED : WEFT_OK);
        }
    }
}

TEST_CASE("a key given twice is malformed", t_duplicate_key)
{
    for (int i = 0; i < R_COUNT; i++) {
        mp_t m;
        weft_envelope_t e;
        mp_envelope(&m, -1, 1);
        mp_required_pair(&m.pk, i); /* the same key again, identical value */
        int rc = mp_decode(&m, &e);
        mp_free(&m);
        if (rc != WEFT_EMALFORMED)
            fprintf(stderr, "  \"%s\" twice gave %d\n", k_required[i], rc);
        CHECK_EQ_INT(rc, WEFT_EMALFORMED);
    }
    const char *const opt[] = {"ver", "corr", "trace", "reply", "tenant", "retry", "ct", "h"};
    for (size_t i = 0; i < sizeof(opt) / sizeof(opt[0]); i++) {
        mp_t m;
        weft_envelope_t e;
        wval_t w = !strcmp(opt[i], "h") ? W_EMPTY_MAP : (!strcmp(opt[i], "ver") ||
                   !strcmp(opt[i], "retry")) ? W_UINT1 : W_STR;
        mp_envelope(&m, -1, 2);
        mp_str(&m.pk, opt[i]);
        mp_wval(&m.pk, w);
        mp_str(&m.pk, opt[i]);
        mp_wval(&m.pk, w);
        int rc = mp_decode(&m, &e);
        mp_free(&m);
        if (rc != WEFT_EMALFORMED)
            fprintf(stderr, "  \"%s\" twice gave %d\n", opt[i], rc);
        CHECK_EQ_INT(rc, WEFT_EMALFORMED);
    }
    /* seq twice with different values, the second one last */
    mp_t m;
    weft_envelope_t e;
    mp_envelope(&m, -1, 1);
    mp_str(&m.pk, "seq");
    msgpack_pack_uint64(&m.pk, 8);
    int rc = mp_decode(&m, &e);
    mp_free(&m);
    CHECK_EQ_INT(rc, WEFT_EMALFORMED);
}

TEST_CASE("a top-level key that is not a string is malformed", t_non_string_key)
{
    mp_t m;
    weft_envelope_t e;
    mp_envelope(&m, -1, 1);
    msgpack_pack_int(&m.pk, 1);
    mp_str(&m.pk, "x");
    int rc = mp_decode(&m, &e);
    mp_free(&m);
    CHECK_EQ_INT(rc, WEFT_EMALFORMED);

    mp_envelope(&m, R_V, 1); /* "v" spelled as bin instead of str */
    msgpack_pack_bin(&m.pk, 1);
    msgpack_pack_bin_body(&m.pk, "v", 1);
    msgpack_pack_uint8(&m.pk, 1);
    rc = mp_decode(&m, &e);
    mp_free(&m);
    CHECK_EQ_INT(rc, WEFT_EMALFORMED);
}

TEST_CASE("a string field with an embedded NUL is malformed", t_embedded_nul)
{
    const char *const keys[] = {"src", "corr", "trace", "reply", "tenant", "ct"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        for (int where = 0; where < 3; where++) {
            char s[6] = "abcde";
            s[where == 0 ? 0 : where == 1 ? 2 : 4] = 0;
            mp_t m;
            weft_envelope_t e;
            bool is_src = !strcmp(keys[i], "src");
            mp_envelope(&m, is_src ? R_SRC : -1, 1);
            mp_str(&m.pk, keys[i]);
            mp_strn(&m.pk, s, 5);
            int rc = mp_decode(&m, &e);
            mp_free(&m);
            if (rc != WEFT_EMALFORMED)
                fprintf(stderr, "  \"%s\" with NUL at %d gave %d\n", keys[i], where, rc);
            CHECK_EQ_INT(rc, WEFT_EMALFORMED);
        }
    }
}

TEST_CASE("a header key or value with an embedded NUL is malformed", t_header_nul)
{
    for (int in_key = 0; in_key < 2; in_key++) {
        mp_t m;
        weft_envelope_t e;
        mp_envelope(&m, -1, 1);
        mp_str(&m.pk, "h");
        msgpack_pack_map(&m.pk, 1);
        if (in_key) {
            mp_strn(&m.pk, "a\0b", 3);
            mp_str(&m.pk, "v");
        } else {
            mp_str(&m.pk, "k");
            mp_strn(&m.pk, "a\0b", 3);
        }
        int rc = mp_decode(&m, &e);
        mp_free(&m);
        CHECK_EQ_INT(rc, WEFT_EMALFORMED);
    }
}

TEST_CASE("malformed headers are rejected: empty key, non-string key or value, more than 64",
          t_wire_headers)
{
    mp_t m;
    weft_envelope_t e;
    char key[8];
    for (int count = 64; count <= 65; count++) {
        mp_envelope(&m, -1, 1);
        mp_str(&m.pk, "h");
        msgpack_pack_map(&m.pk, (size_t)count);
        for (int i = 0; i < count; i++) {
            snprintf(key, sizeof(key), "k%d", i);
            mp_str(&m.pk, key);
            mp_str(&m.pk, "v");
        }
        int rc = mp_decode(&m, &e);
        mp_free(&m);
        CHECK_EQ_INT(rc, count == 64 ? WEFT_OK : WEFT_EMALFORMED);
    }
    mp_envelope(&m, -1, 1);
    mp_str(&m.pk, "h");
    msgpack_pack_map(&m.pk, 1);
    mp_str(&m.pk, "");
    mp_str(&m.pk, "v");
    int rc = mp_decode(&m, &e);
    mp_free(&m);
    CHECK_EQ_INT(rc, WEFT_EMALFORMED);

    CHECK_EQ_INT(s_decode_with("h", W_MAP_INT_KEY), WEFT_EMALFORMED);
    CHECK_EQ_INT(s_decode_with("h", W_MAP_BIN_VALUE), WEFT_EMALFORMED);

    mp_envelope(&m, -1, 1); /* a nested map as header value */
    mp_str(&m.pk, "h");
    msgpack_pack_map(&m.pk, 1);
    mp_str(&m.pk, "k");
    msgpack_pack_map(&m.pk, 0);
    rc = mp_decode(&m, &e);
    mp_free(&m);
    CHECK_EQ_INT(rc, WEFT_EMALFORMED);
}

TEST_CASE("containers and strings declaring billions of elements or bytes are rejected",
          t_huge_declarations)
{
    weft_envelope_t e;
    const uint8_t map32[] = {0xdf, 0xff, 0xff, 0xff, 0xff};
    const uint8_t arr32[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
    const uint8_t str32[] = {0xdb, 0xff, 0xff, 0xff, 0xff};
    const uint8_t bin32[] = {0xc6, 0xff, 0xff, 0xff, 0xff};
    const uint8_t ext32[] = {0xc9, 0xff, 0xff, 0xff, 0xff};
    const uint8_t map16[] = {0xde, 0xff, 0xff, 0xc0, 0xc0};
    CHECK_EQ_INT(s_decode_copy(&e, map32, sizeof(map32)), WEFT_EMALFORMED);
    CHECK_EQ_INT(s_decode_copy(&e, arr32, sizeof(arr32)), WEFT_EMALFORMED);
    CHECK_EQ_INT(s_decode_copy(&e, str32, sizeof(str32)), WEFT_EMALFORMED);
    CHECK_EQ_INT(s_decode_copy(&e, bin32, sizeof(bin32)), WEFT_EMALFORMED);
    CHECK_EQ_INT(s_decode_copy(&e, ext32, sizeof(ext32)), WEFT_EMALFORMED);
    CHECK_EQ_INT(s_decode_copy(&e, map16, sizeof(map16)), WEFT_EMALFORMED);

    /* The same declarations inside an otherwise valid envelope. */
    const uint8_t *const bodies[] = {map32, arr32, str32, bin32, ext32};
    const char *const keys[] = {"h", "x", "src", "id", "y"};
    for (size_t i = 0; i < 5; i++) {
        mp_t m;
        mp_envelope(&m, !strcmp(keys[i], "src") ? R_SRC : !strcmp(keys[i], "id") ? R_ID : -1, 1);
        mp_str(&m.pk, keys[i]);
        msgpack_sbuffer_write(&m.sb, (const char *)bodies[i], 5);
        int rc = mp_decode(&m, &e);
        mp_free(&m);
        CHECK_EQ_INT(rc, WEFT_EMALFORMED);
    }
}

TEST_CASE("envelope version 2 or 0 is EVERSION", t_version)
{
    const uint32_t versions[] = {0, 2, 255, UINT32_MAX};
    for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
        mp_t m;
        weft_envelope_t e;
        mp_envelope(&m, R_V, 1);
        mp_str(&m.pk, "v");
        msgpack_pack_uint32(&m.pk, versions[i]);
        int rc = mp_decode(&m, &e);
        mp_free(&m);
        CHECK_EQ_INT(rc, WEFT_EVERSION);
    }
    weft_envelope_t in, out;
    uint8_t buf[256];
    s_minimal(&in);
    in.v = 2;
    int n = weft_envelope_encode(&in, buf, sizeof(buf));
    CHECK(n > 0);
    CHECK_EQ_INT(weft_envelope_decode(&out, buf, (size_t)n), WEFT_EVERSION);
}

TEST_CASE("unknown keys, including nested maps and arrays, are ignored", t_unknown_keys)
{
    mp_t m;
    weft_envelope_t e;
    static const uint8_t raw[3] = {1, 2, 3};
    mp_init(&m);
    msgpack_pack_map(&m.pk, R_COUNT + 8);
    /* before the known keys: a map holding an array holding a map */
    mp_str(&m.pk, "zz");
    msgpack_pack_map(&m.pk, 2);
    mp_str(&m.pk, "a");
    msgpack_pack_array(&m.pk, 3);
    msgpack_pack_int(&m.pk, -1);
    msgpack_pack_map(&m.pk, 1);
    mp_str(&m.pk, "h");
    mp_str(&m.pk, "not the headers");
    msgpack_pack_nil(&m.pk);
    mp_str(&m.pk, "h");
    msgpack_pack_array(&m.pk, 0);
    mp_required(&m.pk, -1);
    /* between known keys: a value that is the string "h" */
    mp_str(&m.pk, "x");
    mp_str(&m.pk, "h");
    mp_str(&m.pk, "H");
    msgpack_pack_uint8(&m.pk, 1);
    mp_str(&m.pk, "hh");
    msgpack_pack_map(&m.pk, 1);
    mp_str(&m.pk, "k");
    msgpack_pack_int(&m.pk, 1);
    mp_str(&m.pk, "h");
    msgpack_pack_map(&m.pk, 1);
    mp_str(&m.pk, "real");
    mp_str(&m.pk, "yes");
    /* after the headers: ext, bin, double, and an empty key */
    mp_str(&m.pk, "ext");
    msgpack_pack_ext(&m.pk, 3, 9);
    msgpack_pack_ext_body(&m.pk, raw, 3);
    mp_str(&m.pk, "raw");
    msgpack_pack_bin(&m.pk, 3);
    msgpack_pack_bin_body(&m.pk, raw, 3);
    mp_str(&m.pk, "");
    msgpack_pack_double(&m.pk, 2.5);

    uint8_t *copy = malloc(m.sb.size);
    CHECK(copy != NULL);
    memcpy(copy, m.sb.data, m.sb.size);
    int rc = weft_envelope_decode(&e, copy, m.sb.size);
    char val[8] = "";
    int hl = rc == 0 ? weft_envelope_header(&e, "real", val, sizeof(val)) : -100;
    int hn = rc == 0 ? weft_envelope_header(&e, "k", val + 4, 4) : -100;
    free(copy);
    mp_free(&m);
    CHECK_EQ_INT(rc, WEFT_OK);
    CHECK(s_required_ok(&e));
    CHECK_EQ_INT(e.h_count, 1);
    CHECK_EQ_INT(hl, 3);
    CHECK_STR(val, "yes");
    CHECK_EQ_INT(hn, WEFT_ENOTFOUND);
}

TEST_CASE("a deeply nested unknown value is rejected without crashing", t_deep_nesting)
{
    for (int levels = 1; levels <= 2000; levels *= 3) {
        mp_t m;
        weft_envelope_t e;
        mp_envelope(&m, -1, 1);
        mp_str(&m.pk, "deep");
        for (int i = 0; i < levels; i++)
            msgpack_pack_array(&m.pk, 1);
        msgpack_pack_nil(&m.pk);
        int rc = mp_decode(&m, &e);
        mp_free(&m);
        /* the envelope map itself is one level: three more nested levels are fine */
        CHECK_EQ_INT(rc, levels <= 3 ? WEFT_OK : WEFT_EMALFORMED);
    }
}

/* ---- the direct decoder against the reference decoder -------------------------------- */

/*  Defined in src/envelope.c, which this test compiles with WEFT_ENVELOPE_REFERENCE: the
    decoder on msgpack-c's object tree that states what weft_envelope_decode must do. */
int envelope_decode_reference(weft_envelope_t *env, const void *data, size_t size);

typedef struct {
    size_t runs, ok, malformed, version, mismatches;
} diff_stats_t;

/* Names the first field in which two decoded envelopes differ, or returns NULL. Strings are
   compared up to their terminator (what follows it is unspecified). */
static const char *s_field_diff(const weft_envelope_t *a, const weft_envelope_t *b)
{
    if (a->v != b->v)
        return "v";
    if (memcmp(a->id, b->id, WEFT_ID_SIZE) != 0)
        return "id";
    if (strcmp(a->src, b->src) != 0)
        return "src";
    if (a->inst != b->inst)
        return "inst";
    if (a->seq != b->seq)
        return "seq";
    if (a->ts != b->ts)
        return "ts";
    if (a->ver != b->ver)
        return "ver";
    if (strcmp(a->corr, b->corr) != 0)
        return "corr";
    if (strcmp(a->trace, b->trace) != 0)
        return "trace";
    if (strcmp(a->reply, b->reply) != 0)
        return "reply";
    if (strcmp(a->tenant, b->tenant) != 0)
        return "tenant";
    if (a->retry != b->retry)
        return "retry";
    if (strcmp(a->ct, b->ct) != 0)
        return "ct";
    if (a->h_raw != b->h_raw)
        return "h_raw";
    if (a->h_raw_size != b->h_raw_size)
        return "h_raw_size";
    if (a->h_keys != b->h_keys || a->h_values != b->h_values)
        return "h_keys/h_values";
    if (a->h_count != b->h_count)
        return "h_count";
    return NULL;
}

/* Decodes data with both decoders from one exact-size heap copy (so over-reads show under
   ASan) and records whether they agree: same result and, on success, the same fields. The
   direct decoder's output starts as garbage, so a field it does not set shows up. Returns
   false on disagreement (and prints the first few). */
static bool s_diff_one(const uint8_t *data, size_t size, diff_stats_t *st)
{
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        abort();
    if (size)
        memcpy(copy, data, size);
    weft_envelope_t fast, ref;
    memset(&fast, 0xa5, sizeof(fast));
    memset(&ref, 0x5a, sizeof(ref));
    int rc_fast = weft_envelope_decode(&fast, copy, size);
    int rc_ref = envelope_decode_reference(&ref, copy, size);
    const char *what = NULL;
    if (rc_fast != rc_ref)
        what = "result";
    else if (rc_fast == WEFT_OK)
        what = s_field_diff(&fast, &ref);
    free(copy);
    st->runs++;
    st->ok += rc_ref == WEFT_OK;
    st->malformed += rc_ref == WEFT_EMALFORMED;
    st->version += rc_ref == WEFT_EVERSION;
    if (!what)
        return true;
    if (st->mismatches++ < 5) {
        fprintf(stderr, "  decoders differ (%s): direct %d, reference %d, %zu bytes:", what,
                rc_fast, rc_ref, size);
        for (size_t i = 0; i < size && i < 128; i++)
            fprintf(stderr, " %02x", data[i]);
        fprintf(stderr, "%s\n", size > 128 ? " ..." : "");
    }
    return false;
}

/* The input itself, every truncation, one trailing byte, every single-byte replacement (all
   256 values), every deletion, and an insertion of a few type bytes at every position. */
static void s_diff_mutations(const uint8_t *data, size_t size, diff_stats_t *st)
{
    static uint8_t buf[WEFT_ENVELOPE_MAX + 2];
    if (size > WEFT_ENVELOPE_MAX)
        return;
    for (size_t len = 0; len <= size; len++)
        s_diff_one(data, len, st);
    memcpy(buf, data, size);
    buf[size] = 0xc0;
    s_diff_one(buf, size + 1, st);
    for (size_t i = 0; i < size; i++) {
        for (int b = 0; b < 256; b++) {
            if (b == data[i])
                continue;
            buf[i] = (uint8_t)b;
            s_diff_one(buf, size, st);
        }
        buf[i] = data[i];
    }
    for (size_t i = 0; i < size; i++) {
        memcpy(buf, data, i);
        memcpy(buf + i, data + i + 1, size - i - 1);
        s_diff_one(buf, size - 1, st);
    }
    static const uint8_t ins[] = {0x00, 0xc0, 0xa0, 0x80, 0x81, 0x90, 0x91, 0xc4, 0xd9, 0xdc};
    for (size_t i = 0; i <= size; i++) {
        for (size_t j = 0; j < sizeof(ins); j++) {
            memcpy(buf, data, i);
            buf[i] = ins[j];
            memcpy(buf + i + 1, data + i, size - i);
            s_diff_one(buf, size + 1, st);
        }
    }
}

static uint64_t s_rng_state = 0x853c49e6748fea9bULL;

static uint64_t s_rand(void)
{
    s_rng_state ^= s_rng_state << 13;
    s_rng_state ^= s_rng_state >> 7;
    s_rng_state ^= s_rng_state << 17;
    return s_rng_state;
}

/* A random value of random magnitude (0 to 64 significant bits). */
static uint64_t s_rand_magnitude(void)
{
    unsigned shift = (unsigned)(s_rand() % 64);
    return s_rand() >> shift;
}

/* Appends raw bytes to what a packer writes. */
static void mp_raw(msgpack_packer *pk, const void *bytes, size_t n)
{
    pk->callback(pk->data, (const char *)bytes, n);
}

/* Packs a random value of any msgpack type, nested a few levels (sometimes past the decoder's
   limit), with lengths around the limits that matter (16-byte bin, 255/256-byte str). */
static void mp_random_value(msgpack_packer *pk, int depth)
{
    static const uint8_t zeros[300] = {0};
    char s[300];
    memset(s, 'q', sizeof(s));
    size_t n;
    switch (s_rand() % (depth < 6 ? 16 : 12)) {
    case 0: msgpack_pack_nil(pk); break;
    case 1: msgpack_pack_true(pk); break;
    case 2: msgpack_pack_uint64(pk, s_rand_magnitude()); break;
    case 3: msgpack_pack_int64(pk, -(int64_t)(s_rand_magnitude() >> 1)); break;
    case 4: msgpack_pack_fix_int8(pk, (int8_t)s_rand()); break;
    case 5: msgpack_pack_double(pk, 1.5); break;
    case 6:
        n = s_rand() % 3 == 0 ? 250 + s_rand() % 10 : s_rand() % 40;
        mp_strn(pk, s, n);
        break;
    case 7:
        n = s_rand() % 2 ? WEFT_ID_SIZE : s_rand() % 20;
        msgpack_pack_bin(pk, n);
        msgpack_pack_bin_body(pk, zeros, n);
        break;
    case 8: mp_str(pk, ""); break;
    case 9:
        n = s_rand() % 20;
        msgpack_pack_ext(pk, n, 1);
        msgpack_pack_ext_body(pk, zeros, n);
        break;
    case 10: msgpack_pack_fix_uint16(pk, (uint16_t)s_rand()); break;
    case 11: msgpack_pack_array(pk, 0); break;
    default:
        n = s_rand() % 4;
        if (s_rand() % 2) {
            msgpack_pack_array(pk, n);
            for (size_t i = 0; i < n; i++)
                mp_random_value(pk, depth + 1);
        } else {
            msgpack_pack_map(pk, n);
            for (size_t i = 0; i < n; i++) {
                if (s_rand() % 4)
                    mp_strn(pk, "abc", 1 + s_rand() % 3);
                else
                    mp_random_value(pk, depth + 1);
                mp_random_value(pk, depth + 1);
            }
        }
        break;
    }
}

/* Packs a value for known key `key`: usually of the type it wants, in any of the wire forms
   msgpack allows for it, sometimes at or past its limits, sometimes anything at all. */
static void mp_random_for_key(msgpack_packer *pk, const char *key)
{
    char s[300];
    memset(s, 'k', sizeof(s));
    if (s_rand() % 16 == 0) {
        mp_random_value(pk, 1);
        return;
    }
    if (!strcmp(key, "v") || !strcmp(key, "ver") || !strcmp(key, "retry") ||
        !strcmp(key, "inst") || !strcmp(key, "seq") || !strcmp(key, "ts")) {
        bool one = !strcmp(key, "v") ? s_rand() % 8 != 0 : s_rand() % 3 == 0;
        uint64_t u = one ? 1 : s_rand_magnitude();
        switch (s_rand() % 6) {
        case 0: msgpack_pack_uint64(pk, u); break;
        case 1: msgpack_pack_fix_uint64(pk, u); break;
        case 2: msgpack_pack_fix_int64(pk, (int64_t)u); break;
        case 3: msgpack_pack_fix_int8(pk, (int8_t)u); break;
        case 4: msgpack_pack_fix_int32(pk, (int32_t)u); break;
        default: msgpack_pack_int64(pk, (int64_t)u); break;
        }
    } else if (!strcmp(key, "id")) {
        static const uint8_t raw[WEFT_ID_SIZE] = {1, 2, 3, 4};
        static const uint8_t bin16[3] = {0xc5, 0x00, WEFT_ID_SIZE};
        static const uint8_t bin32[5] = {0xc6, 0x00, 0x00, 0x00, WEFT_ID_SIZE};
        int form = (int)(s_rand() % 4);
        if (form == 0)
            mp_raw(pk, bin16, sizeof(bin16));
        else if (form == 1)
            mp_raw(pk, bin32, sizeof(bin32));
        else
            msgpack_pack_bin(pk, WEFT_ID_SIZE);
        msgpack_pack_bin_body(pk, raw, WEFT_ID_SIZE);
    } else if (!strcmp(key, "h")) {
        size_t n = s_rand() % 4 == 0 ? 63 + s_rand() % 3 : s_rand() % 4;
        msgpack_pack_map(pk, n);
        for (size_t i = 0; i < n; i++) {
            char k[24];
            snprintf(k, sizeof(k), "k%zu", i);
            mp_strn(pk, k, s_rand() % 256 ? strlen(k) : 0);
            size_t vl = s_rand() % 8;
            if (vl == 7 && s_rand() % 64 == 0)
                s[3] = 0; /* a NUL in the value */
            mp_strn(pk, s, vl);
            s[3] = 'k';
        }
    } else {
        size_t limit = !strcmp(key, "ct") ? WEFT_CT_MAX : WEFT_NAME_MAX;
        size_t n = s_rand() % 8 == 0 ? limit - 1 + s_rand() % 3 : s_rand() % 12;
        if (s_rand() % 16 == 0 && n > 2)
            s[n / 2] = 0;
        mp_strn(pk, s, n);
    }
}

/* A random envelope: usually every required key, some optional and unknown ones, in random
   order; now and then a key missing or given twice. */
static void mp_random_envelope(mp_t *m)
{
    static const char *const keys[] = {"v", "id", "src", "inst", "seq", "ts", "ver", "corr",
                                       "trace", "reply", "tenant", "retry", "ct", "h"};
    const char *chosen[24];
    size_t n = 0;
    for (size_t i = 0; i < 6; i++)
        if (s_rand() % 64)
            chosen[n++] = keys[i];
    for (size_t i = 6; i < 14; i++)
        if (s_rand() % 3 == 0)
            chosen[n++] = keys[i];
    size_t extra = s_rand() % 3;
    for (size_t i = 0; i < extra; i++)
        chosen[n++] = s_rand() % 5 ? "unknown" : keys[s_rand() % 14];
    for (size_t i = n; i > 1; i--) {
        size_t j = s_rand() % i;
        const char *t = chosen[i - 1];
        chosen[i - 1] = chosen[j];
        chosen[j] = t;
    }
    mp_init(m);
    msgpack_pack_map(&m->pk, n);
    for (size_t i = 0; i < n; i++) {
        mp_str(&m->pk, chosen[i]);
        if (!strcmp(chosen[i], "unknown"))
            mp_random_value(&m->pk, 1);
        else
            mp_random_for_key(&m->pk, chosen[i]);
    }
}

#ifdef WEFT_FUZZ_CORPUS
/* Runs s_diff_mutations on every seed of the fuzz corpus. Returns the number of seeds. */
static int s_diff_corpus(diff_stats_t *st)
{
    DIR *d = opendir(WEFT_FUZZ_CORPUS);
    if (!d)
        return 0;
    int seeds = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char path[1024];
        snprintf(path, sizeof(path), "%s/%s", WEFT_FUZZ_CORPUS, de->d_name);
        FILE *f = fopen(path, "rb");
        if (!f)
            continue;
        static uint8_t data[8192];
        size_t n = fread(data, 1, sizeof(data), f);
        fclose(f);
        s_diff_mutations(data, n, st);
        seeds++;
    }
    closedir(d);
    return seeds;
}
#endif

TEST_CASE("the direct decoder agrees with the reference decoder on valid envelopes and every "
          "single-byte mutation, truncation, deletion and insertion of them",
          t_differential_mutations)
{
    diff_stats_t st = {0};
    weft_envelope_t in;
    uint8_t buf[4096];
    int n, originals = 0;

    s_full(&in);
    CHECK((n = weft_envelope_encode(&in, buf, sizeof(buf))) > 0);
    s_diff_mutations(buf, (size_t)n, &st);
    originals++;
    s_minimal(&in);
    CHECK((n = weft_envelope_encode(&in, buf, sizeof(buf))) > 0);
    s_diff_mutations(buf, (size_t)n, &st);
    originals++;
    s_minimal(&in); /* a fabric event: seq 0, the lowest ts, the longest src */
    in.seq = 0;
    in.ts = INT64_MIN;
    memset(in.src, 's', WEFT_NAME_MAX);
    in.src[WEFT_NAME_MAX] = 0;
    CHECK((n = weft_envelope_encode(&in, buf, sizeof(buf))) > 0);
    s_diff_mutations(buf, (size_t)n, &st);
    originals++;

    for (int i = 0; i < WEFT_HEADERS_MAX; i++) {
        snprintf(s_hk[i], sizeof(s_hk[i]), "k%d", i);
        s_hkp[i] = s_hk[i];
        s_hvp[i] = i % 2 ? "v" : "";
    }
    s_minimal(&in);
    in.h_keys = s_hkp;
    in.h_values = s_hvp;
    in.h_count = WEFT_HEADERS_MAX;
    CHECK((n = weft_envelope_encode(&in, buf, sizeof(buf))) > 0);
    s_diff_mutations(buf, (size_t)n, &st);
    originals++;

    /* unknown keys of several types, one nested to the limit, and an empty header map */
    mp_t m;
    mp_envelope(&m, -1, 5);
    mp_str(&m.pk, "deep");
    msgpack_pack_array(&m.pk, 1);
    msgpack_pack_map(&m.pk, 1);
    mp_str(&m.pk, "a");
    msgpack_pack_array(&m.pk, 2);
    msgpack_pack_array(&m.pk, 0);
    msgpack_pack_nil(&m.pk);
    mp_str(&m.pk, "e");
    msgpack_pack_ext(&m.pk, 2, 7);
    msgpack_pack_ext_body(&m.pk, "xy", 2);
    mp_str(&m.pk, "f");
    msgpack_pack_float(&m.pk, 0.5f);
    mp_str(&m.pk, "b");
    msgpack_pack_bin(&m.pk, 3);
    msgpack_pack_bin_body(&m.pk, "abc", 3);
    mp_str(&m.pk, "h");
    msgpack_pack_map(&m.pk, 0);
    s_diff_mutations((const uint8_t *)m.sb.data, m.sb.size, &st);
    mp_free(&m);
    originals++;

    /* wider wire forms than the encoder picks: map 16, v as int 8, id as bin 16, src as
       str 16, inst as uint 64, seq as int 64, ts as uint 64, h as map 16 of str 8 -> str 32 */
    static const uint8_t wide[] = {
        0xde, 0x00, 0x07,
        0xa1, 'v', 0xd0, 0x01,
        0xa2, 'i', 'd', 0xc5, 0x00, 0x10, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
        0xa3, 's', 'r', 'c', 0xda, 0x00, 0x02, 'n', '1',
        0xa4, 'i', 'n', 's', 't', 0xcf, 0, 0, 0, 0, 0, 0, 0, 9,
        0xa3, 's', 'e', 'q', 0xd3, 0, 0, 0, 0, 0, 0, 0, 3,
        0xa2, 't', 's', 0xcf, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xa1, 'h', 0xde, 0x00, 0x01, 0xd9, 0x01, 'k', 0xdb, 0, 0, 0, 1, 'v',
    };
    weft_envelope_t e;
    CHECK_EQ_INT(s_decode_copy(&e, wide, sizeof(wide)), WEFT_OK);
    s_diff_mutations(wide, sizeof(wide), &st);
    originals++;

#ifdef WEFT_FUZZ_CORPUS
    originals += s_diff_corpus(&st);
#endif
    fprintf(stderr, "  %zu inputs: %zu ok, %zu malformed, %zu bad version; %zu disagreements\n",
            st.runs, st.ok, st.malformed, st.version, st.mismatches);
    CHECK_EQ_INT(st.mismatches, 0);
    CHECK(st.ok >= (size_t)originals);
    CHECK(st.version > 0 && st.malformed > 0);
}

TEST_CASE("the direct decoder agrees with the reference decoder on random envelopes, random "
          "byte flips of them, and random bytes",
          t_differential_random)
{
    diff_stats_t st = {0};
    static uint8_t buf[WEFT_ENVELOPE_MAX];
    for (int i = 0; i < 100000; i++) {
        mp_t m;
        mp_random_envelope(&m);
        size_t n = m.sb.size;
        if (n <= sizeof(buf)) {
            memcpy(buf, m.sb.data, n);
            s_diff_one(buf, n, &st);
            for (int flip = 0; flip < 3 && n > 0; flip++) {
                size_t at = (size_t)(s_rand() % n);
                uint8_t was = buf[at];
                buf[at] = (uint8_t)s_rand();
                s_diff_one(buf, n, &st);
                buf[at] = was;
            }
        }
        mp_free(&m);
    }
    for (int i = 0; i < 100000; i++) {
        size_t n = (size_t)(s_rand() % 48);
        for (size_t j = 0; j < n; j++)
            buf[j] = (uint8_t)s_rand();
        if (n && i % 2)
            buf[0] = (uint8_t)(0x80 | (s_rand() % 16)); /* a map, most of the time */
        s_diff_one(buf, n, &st);
    }
    fprintf(stderr, "  %zu inputs: %zu ok, %zu malformed, %zu bad version; %zu disagreements\n",
            st.runs, st.ok, st.malformed, st.version, st.mismatches);
    CHECK_EQ_INT(st.mismatches, 0);
    CHECK(st.ok > 10000 && st.version > 100 && st.malformed > 10000);
}

/* ---- encoding from a prefix (the publish path) --------------------------------------- */

/*  Defined in src/envelope.c (internal; node.c declares the same). */
int envelope_prefix_encode(uint8_t *out, size_t cap, const char *src, uint64_t inst);
int envelope_encode_prefixed(uint8_t *buf, size_t cap, const uint8_t *prefix, size_t prefix_len,
                             const uint8_t id[WEFT_ID_SIZE], uint64_t seq, int64_t ts,
                             const weft_envelope_t *opt);
void envelope_id_at(uint8_t id[WEFT_ID_SIZE], int64_t now_ns);

/* Encodes env both ways (prefix + envelope_encode_prefixed, and weft_envelope_encode) into
   buffers of capacity cap; without with_opt, the prefixed encoding gets no optional fields
   and the full one gets them all at their defaults. Returns false, after printing, when the
   results or the bytes differ. */
static bool s_same_encoding(const weft_envelope_t *with, bool with_opt, size_t cap)
{
    static uint8_t prefix[320], a[2 * WEFT_ENVELOPE_MAX], b[2 * WEFT_ENVELOPE_MAX];
    static weft_envelope_t plain;
    const weft_envelope_t *env = with;
    if (!with_opt) {
        weft_envelope_init(&plain);
        memcpy(plain.id, with->id, WEFT_ID_SIZE);
        strcpy(plain.src, with->src);
        plain.inst = with->inst;
        plain.seq = with->seq;
        plain.ts = with->ts;
        env = &plain;
    }
    int pl = envelope_prefix_encode(prefix, sizeof(prefix), env->src, env->inst);
    if (pl <= 0) {
        fprintf(stderr, "  prefix for src of %zu bytes: %d\n", strlen(env->src), pl);
        return false;
    }
    int na = envelope_encode_prefixed(a, cap, prefix, (size_t)pl, env->id, env->seq, env->ts,
                                      with_opt ? env : NULL);
    int nb = weft_envelope_encode(env, b, cap);
    if (na != nb || (na > 0 && memcmp(a, b, (size_t)na) != 0)) {
        fprintf(stderr, "  encodings differ: prefixed %d, full %d (cap %zu, inst %" PRIu64
                        ", seq %" PRIu64 ", ts %" PRId64 ")\n",
                na, nb, cap, env->inst, env->seq, env->ts);
        return false;
    }
    return true;
}

TEST_CASE("encoding from a prefix gives the bytes of weft_envelope_encode for every src "
          "length and integer width of inst, seq and ts",
          t_prefix_encoding_integers)
{
    static const uint64_t us[] = {0, 1, 127, 128, 255, 256, 65535, 65536, UINT32_MAX,
                                  (uint64_t)UINT32_MAX + 1, (uint64_t)INT64_MAX, UINT64_MAX};
    static const int64_t ts[] = {
        INT64_MIN, (int64_t)INT32_MIN - 1, INT32_MIN, -32769, -32768, -129, -128, -33, -32, -1,
        0, 1, 127, 128, 255, 256, 65535, 65536, UINT32_MAX, (int64_t)UINT32_MAX + 1,
        1700000000123456789LL, INT64_MAX};
    static const size_t src_lens[] = {1, 5, 31, 32, 200, 255};
    weft_envelope_t env;
    int checked = 0;
    for (size_t s = 0; s < sizeof(src_lens) / sizeof(src_lens[0]); s++) {
        s_minimal(&env);
        memset(env.src, 'a' + (int)s, src_lens[s]);
        env.src[src_lens[s]] = 0;
        for (size_t i = 0; i < sizeof(us) / sizeof(us[0]); i++)
            for (size_t q = 0; q < sizeof(us) / sizeof(us[0]); q++)
                for (size_t t = 0; t < sizeof(ts) / sizeof(ts[0]); t++) {
                    env.inst = us[i];
                    env.seq = us[q];
                    env.ts = ts[t];
                    env.id[15] = (uint8_t)(i + q + t);
                    CHECK(s_same_encoding(&env, false, WEFT_ENVELOPE_MAX));
                    CHECK(s_same_encoding(&env, true, WEFT_ENVELOPE_MAX));
                    checked++;
                }
    }
    CHECK(checked > 10000);
}

TEST_CASE("encoding from a prefix gives the bytes and the errors of weft_envelope_encode with "
          "every optional field, headers, defaults written explicitly, and small buffers",
          t_prefix_encoding_optional)
{
    weft_envelope_t env;
    /* every optional field and three headers */
    s_full(&env);
    CHECK(s_same_encoding(&env, true, WEFT_ENVELOPE_MAX));
    /* each optional field alone */
    for (int f = 0; f < 8; f++) {
        s_minimal(&env);
        switch (f) {
        case 0: env.ver = 9; break;
        case 1: strcpy(env.corr, "c"); break;
        case 2: memset(env.trace, 't', WEFT_NAME_MAX); env.trace[WEFT_NAME_MAX] = 0; break;
        case 3: strcpy(env.reply, "r.x"); break;
        case 4: strcpy(env.tenant, "acme"); break;
        case 5: env.retry = UINT32_MAX; break;
        case 6: memset(env.ct, 'j', WEFT_CT_MAX); env.ct[WEFT_CT_MAX] = 0; break;
        case 7:
            env.h_keys = k_hkeys;
            env.h_values = k_hvals;
            env.h_count = 1;
            break;
        }
        CHECK(s_same_encoding(&env, true, WEFT_ENVELOPE_MAX));
    }
    /* defaults given explicitly are left out by both; an empty ct is as good as the default */
    s_minimal(&env);
    env.ver = 1;
    strcpy(env.ct, "application/msgpack");
    CHECK(s_same_encoding(&env, true, WEFT_ENVELOPE_MAX));
    env.ct[0] = 0;
    CHECK(s_same_encoding(&env, true, WEFT_ENVELOPE_MAX));
    /* 64 headers, and headers that make the map header and the strings wide */
    static char big[70000];
    memset(big, 'b', sizeof(big) - 1);
    for (int i = 0; i < WEFT_HEADERS_MAX; i++) {
        snprintf(s_hk[i], sizeof(s_hk[i]), "k%d", i);
        s_hkp[i] = s_hk[i];
        s_hvp[i] = i == 5 ? big + sizeof(big) - 40 : i == 6 ? big + sizeof(big) - 300 : "v";
    }
    s_minimal(&env);
    env.h_keys = s_hkp;
    env.h_values = s_hvp;
    env.h_count = WEFT_HEADERS_MAX;
    CHECK(s_same_encoding(&env, true, WEFT_ENVELOPE_MAX));
    /* errors: too many headers, NULL arrays, an empty or NULL key, a NULL value, a string
       field without a terminator, headers over 64 KiB (in a larger buffer too) */
    env.h_count = WEFT_HEADERS_MAX + 1;
    CHECK(s_same_encoding(&env, true, WEFT_ENVELOPE_MAX));
    env.h_count = 2;
    env.h_keys = NULL;
    CHECK(s_same_encoding(&env, true, WEFT_ENVELOPE_MAX));
    const char *keys[2] = {"a", ""}, *vals[2] = {"1", "2"};
    env.h_keys = keys;
    env.h_values = vals;
    CHECK(s_same_encoding(&env, true, WEFT_ENVELOPE_MAX));
    keys[1] = NULL;
    CHECK(s_same_encoding(&env, true, WEFT_ENVELOPE_MAX));
    keys[1] = "b";
    vals[1] = NULL;
    CHECK(s_same_encoding(&env, true, WEFT_ENVELOPE_MAX));
    s_minimal(&env);
    memset(env.tenant, 'x', sizeof(env.tenant));
    CHECK(s_same_encoding(&env, true, WEFT_ENVELOPE_MAX));
    s_minimal(&env);
    s_hvp[5] = big;
    env.h_keys = s_hkp;
    env.h_values = s_hvp;
    env.h_count = 8;
    CHECK(s_same_encoding(&env, true, WEFT_ENVELOPE_MAX));
    CHECK(s_same_encoding(&env, true, 2 * WEFT_ENVELOPE_MAX));
    /* every buffer size up to the full encoding, with and without optional fields */
    s_full(&env);
    uint8_t full[1024];
    int n = weft_envelope_encode(&env, full, sizeof(full));
    CHECK(n > 0);
    for (int cap = 0; cap <= n; cap++) {
        CHECK(s_same_encoding(&env, true, (size_t)cap));
        CHECK(s_same_encoding(&env, false, (size_t)cap));
    }
}

TEST_CASE("a prefix is refused for an empty or over-long src and a short buffer, and an "
          "envelope encoded from it decodes to the fields given",
          t_prefix_limits)
{
    uint8_t prefix[320];
    char src[WEFT_NAME_MAX + 2];
    memset(src, 's', sizeof(src));
    src[WEFT_NAME_MAX + 1] = 0;
    CHECK_EQ_INT(envelope_prefix_encode(prefix, sizeof(prefix), "", 1), WEFT_EINVAL);
    CHECK_EQ_INT(envelope_prefix_encode(prefix, sizeof(prefix), src, 1), WEFT_EINVAL);
    CHECK_EQ_INT(envelope_prefix_encode(prefix, sizeof(prefix), NULL, 1), WEFT_EINVAL);
    src[WEFT_NAME_MAX] = 0;
    int pl = envelope_prefix_encode(prefix, sizeof(prefix), src, UINT64_MAX);
    CHECK(pl > 0 && pl <= (int)sizeof(prefix));
    CHECK_EQ_INT(envelope_prefix_encode(prefix, (size_t)pl - 1, src, UINT64_MAX), WEFT_ETOOBIG);
    CHECK_EQ_INT(envelope_prefix_encode(prefix, (size_t)pl, src, UINT64_MAX), pl);

    uint8_t id[WEFT_ID_SIZE], buf[WEFT_ENVELOPE_MAX];
    envelope_id_at(id, 1700000000123456789LL);
    weft_envelope_t opt, out;
    weft_envelope_init(&opt);
    strcpy(opt.corr, "c-1");
    opt.h_keys = k_hkeys;
    opt.h_values = k_hvals;
    opt.h_count = 3;
    int n = envelope_encode_prefixed(buf, sizeof(buf), prefix, (size_t)pl, id, 42, -5, &opt);
    CHECK(n > 0);
    CHECK_EQ_INT(weft_envelope_decode(&out, buf, (size_t)n), WEFT_OK);
    CHECK_STR(out.src, src);
    CHECK(out.inst == UINT64_MAX && out.seq == 42 && out.ts == -5);
    CHECK(memcmp(out.id, id, WEFT_ID_SIZE) == 0);
    CHECK_STR(out.corr, "c-1");
    CHECK_EQ_INT(out.h_count, 3);
    char val[8];
    CHECK_EQ_INT(weft_envelope_header(&out, "x-second", val, sizeof(val)), 3);
    CHECK_EQ_INT(envelope_encode_prefixed(buf, sizeof(buf), prefix, 3, id, 1, 1, NULL),
                 WEFT_EINVAL);
}

TEST_CASE("an id made from a given time carries that time in ms, version 7 and variant 10",
          t_id_at)
{
    const int64_t times[] = {0, 999999, 1000000, 1700000000123456789LL, INT64_MAX};
    for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
        uint8_t a[WEFT_ID_SIZE], b[WEFT_ID_SIZE];
        envelope_id_at(a, times[i]);
        envelope_id_at(b, times[i]);
        uint64_t ms = 0;
        for (int j = 0; j < 6; j++)
            ms = ms << 8 | a[j];
        CHECK(ms == ((uint64_t)(times[i] / 1000000) & 0xffffffffffffULL));
        CHECK_EQ_INT(a[6] >> 4, 7);
        CHECK_EQ_INT(a[8] >> 6, 2);
        CHECK(memcmp(a, b, WEFT_ID_SIZE) != 0);
    }
}

/* ---- topics, ids, errors ------------------------------------------------------------- */

TEST_CASE("topics must be 1 to 255 bytes of 0x21 to 0x7e", t_topic_check)
{
    char t[300];
    memset(t, 'a', sizeof(t));
    CHECK_EQ_INT(weft_topic_check("", 0), WEFT_ETOPIC);
    CHECK_EQ_INT(weft_topic_check(NULL, 3), WEFT_ETOPIC);
    CHECK_EQ_INT(weft_topic_check(t, 1), WEFT_OK);
    CHECK_EQ_INT(weft_topic_check(t, 255), WEFT_OK);
    CHECK_EQ_INT(weft_topic_check(t, 256), WEFT_ETOPIC);
    CHECK_EQ_INT(weft_topic_check("orders.created", 14), WEFT_OK);
    CHECK_EQ_INT(weft_topic_check("orders created", 14), WEFT_ETOPIC);
    CHECK_EQ_INT(weft_topic_check(" orders", 7), WEFT_ETOPIC);
    CHECK_EQ_INT(weft_topic_check("orders\x7f", 7), WEFT_ETOPIC);
    CHECK_EQ_INT(weft_topic_check("a\tb", 3), WEFT_ETOPIC);
    CHECK_EQ_INT(weft_topic_check("a\0b", 3), WEFT_ETOPIC);
    CHECK_EQ_INT(weft_topic_check("caf\xc3\xa9", 5), WEFT_ETOPIC);
    CHECK_EQ_INT(weft_topic_check("\x80", 1), WEFT_ETOPIC);
    CHECK_EQ_INT(weft_topic_check("\xff", 1), WEFT_ETOPIC);
    CHECK_EQ_INT(weft_topic_check("!~", 2), WEFT_OK); /* 0x21 and 0x7e */
    for (int c = 0; c < 256; c++) {
        char one = (char)c;
        CHECK_EQ_INT(weft_topic_check(&one, 1), c >= 0x21 && c <= 0x7e ? WEFT_OK : WEFT_ETOPIC);
    }
}

TEST_CASE("fabric topics are exactly those starting with _weft.", t_topic_is_fabric)
{
    CHECK(weft_topic_is_fabric("_weft.hello", 11));
    CHECK(weft_topic_is_fabric("_weft.", 6));
    CHECK(!weft_topic_is_fabric("_weft", 5));
    CHECK(!weft_topic_is_fabric("_weft.hello", 5));
    CHECK(!weft_topic_is_fabric("_WEFT.hello", 11));
    CHECK(!weft_topic_is_fabric("weft.hello", 10));
    CHECK(!weft_topic_is_fabric("x_weft.hello", 12));
    CHECK(!weft_topic_is_fabric("", 0));
    CHECK(!weft_topic_is_fabric(NULL, 6));
}

TEST_CASE("new ids carry version 7 and variant 10 and differ from each other", t_id_new)
{
    uint8_t a[WEFT_ID_SIZE], b[WEFT_ID_SIZE];
    for (int i = 0; i < 1000; i++) {
        weft_id_new(a);
        weft_id_new(b);
        CHECK_EQ_INT(a[6] >> 4, 7);
        CHECK_EQ_INT(a[8] >> 6, 2);
        CHECK_EQ_INT(b[6] >> 4, 7);
        CHECK_EQ_INT(b[8] >> 6, 2);
        CHECK(memcmp(a, b, WEFT_ID_SIZE) != 0);
    }
    /* the first 48 bits are the current time in ms */
    int64_t before = weft_now_ns() / 1000000;
    weft_id_new(a);
    int64_t after = weft_now_ns() / 1000000;
    int64_t ms = 0;
    for (int i = 0; i < 6; i++)
        ms = ms << 8 | a[i];
    CHECK(ms >= before && ms <= after);
}

TEST_CASE("ids generated at least 1 ms apart sort in time order by memcmp", t_id_order)
{
    uint8_t prev[WEFT_ID_SIZE], next[WEFT_ID_SIZE];
    weft_id_new(prev);
    for (int i = 0; i < 20; i++) {
        t_nap_ms(2);
        weft_id_new(next);
        CHECK(memcmp(prev, next, WEFT_ID_SIZE) < 0);
        memcpy(prev, next, WEFT_ID_SIZE);
    }
}

TEST_CASE("ids format as lower-case UUIDs and parse back", t_id_format_parse)
{
    const uint8_t seq[WEFT_ID_SIZE] = {0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
                                       0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0xff};
    char s[WEFT_ID_STR];
    uint8_t back[WEFT_ID_SIZE];
    CHECK(weft_id_format(seq, s) == s);
    CHECK_STR(s, "00010203-0405-0607-0809-0a0b0c0d0eff");
    CHECK_EQ_INT(weft_id_parse(s, back), WEFT_OK);
    CHECK(memcmp(back, seq, WEFT_ID_SIZE) == 0);
    memset(back, 0, sizeof(back));
    CHECK_EQ_INT(weft_id_parse("000102030405060708090A0B0C0D0EFF", back), WEFT_OK);
    CHECK(memcmp(back, seq, WEFT_ID_SIZE) == 0);

    for (int i = 0; i < 100; i++) {
        uint8_t id[WEFT_ID_SIZE];
        weft_id_new(id);
        weft_id_format(id, s);
        CHECK_EQ_INT(strlen(s), 36);
        CHECK(s[8] == '-' && s[13] == '-' && s[18] == '-' && s[23] == '-');
        for (int j = 0; j < 36; j++)
            CHECK(s[j] == '-' || (s[j] >= '0' && s[j] <= '9') || (s[j] >= 'a' && s[j] <= 'f'));
        CHECK_EQ_INT(weft_id_parse(s, back), WEFT_OK);
        CHECK(memcmp(back, id, WEFT_ID_SIZE) == 0);
    }
}

TEST_CASE("malformed id text is rejected with EINVAL", t_id_parse_bad)
{
    uint8_t id[WEFT_ID_SIZE];
    const char *const bad[] = {
        "",
        "-",
        "00010203-0405-0607-0809-0a0b0c0d0e",     /* 15 bytes */
        "00010203-0405-0607-0809-0a0b0c0d0eff00", /* 17 bytes */
        "00010203-0405-0607-0809-0a0b0c0d0ef",    /* odd digit count */
        "00010203-0405-0607-0809-0a0b0c0d0efg",   /* not hex */
        "00010203-0405-0607-0809-0a0b0c0d0ef ",   /* space */
        " 00010203-0405-0607-0809-0a0b0c0d0eff",
        "0x010203-0405-0607-0809-0a0b0c0d0eff",
        "00010203-0405-0607-0809-0a0b0c0d0e\xc3\xa9",
        "0-0010203040506070809a0b0c0d0e0ff", /* dash splitting a byte */
        "{00010203-0405-0607-0809-0a0b0c0d0eff}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = weft_id_parse(bad[i], id);
        if (rc != WEFT_EINVAL)
            fprintf(stderr, "  \"%s\" gave %d\n", bad[i], rc);
        CHECK_EQ_INT(rc, WEFT_EINVAL);
    }
    CHECK_EQ_INT(weft_id_parse(NULL, id), WEFT_EINVAL);
    CHECK_EQ_INT(weft_id_parse("00010203-0405-0607-0809-0a0b0c0d0eff", NULL), WEFT_EINVAL);
}

TEST_CASE("weft_strerror and weft_errname never return NULL", t_errors)
{
    for (int code = -40; code <= 10; code++) {
        CHECK(weft_strerror(code) != NULL && weft_strerror(code)[0] != 0);
        CHECK(weft_errname(code) != NULL && weft_errname(code)[0] != 0);
    }
    CHECK(weft_strerror(INT_MIN) != NULL);
    CHECK(weft_errname(INT_MAX) != NULL);
    CHECK_STR(weft_strerror(12345), "unknown error");
    CHECK_STR(weft_errname(WEFT_OK), "ok");
    CHECK_STR(weft_errname(WEFT_ETOPIC), "bad_topic");
    CHECK_STR(weft_errname(WEFT_ETOOBIG), "too_big");
    CHECK_STR(weft_errname(WEFT_EMALFORMED), "malformed");
    CHECK_STR(weft_errname(WEFT_EVERSION), "bad_version");
    /* every defined code has its own sentence and name */
    for (int code = WEFT_EHANDLER; code <= WEFT_OK; code++) {
        CHECK(strcmp(weft_strerror(code), "unknown error") != 0);
        CHECK(strcmp(weft_errname(code), "unknown") != 0);
        for (int other = code + 1; other <= WEFT_OK; other++)
            CHECK(strcmp(weft_errname(code), weft_errname(other)) != 0);
    }
}

int main(void)
{
    RUN_CASE("every envelope field survives an encode/decode round trip", t_round_trip_all);
    RUN_CASE("headers are read back by key and in wire order", t_headers_lookup);
    RUN_CASE("an envelope without headers has none to look up or iterate", t_headers_none);
    RUN_CASE("extreme integer values of inst, seq and ts round trip", t_round_trip_extremes);
    RUN_CASE("optional fields equal to their default are left out and restored on decode",
             t_defaults);
    RUN_CASE("weft_envelope_init sets the documented defaults", t_init);
    RUN_CASE("defaults written out explicitly on the wire decode to the same values",
             t_explicit_defaults);
    RUN_CASE("src of 255 bytes is accepted and 256 bytes is rejected by encode", t_src_limit);
    RUN_CASE("optional strings at their limit are accepted and one byte more is rejected",
             t_optional_string_limits);
    RUN_CASE("64 headers are accepted and 65 are rejected by encode", t_header_count_limit);
    RUN_CASE("invalid header arguments are rejected by encode", t_header_args);
    RUN_CASE("encode into a buffer one byte too small at any size fails with ETOOBIG",
             t_encode_small_buffer);
    RUN_CASE("encode of headers adding up to more than 64 KiB fails with ETOOBIG",
             t_encode_too_big);
    RUN_CASE("an envelope of exactly 64 KiB decodes and one byte more is ETOOBIG",
             t_decode_size_limit);
    RUN_CASE("decode rejects NULL arguments with EINVAL and empty input as malformed",
             t_decode_empty);
    RUN_CASE("a msgpack object that is not a map is malformed", t_not_a_map);
    RUN_CASE("every truncated prefix of a valid envelope is malformed", t_truncated);
    RUN_CASE("trailing bytes after the envelope map are malformed", t_trailing);
    RUN_CASE("an envelope missing any one required key is malformed", t_missing_required);
    RUN_CASE("every known key with a value of the wrong type is malformed", t_wrong_types);
    RUN_CASE("the classic wrong types are malformed: seq as string, id as 15-byte bin, src as "
             "int, ts as float, h as array, h value as int",
             t_wrong_types_named);
    RUN_CASE("integers outside the range of their field are malformed", t_int_ranges);
    RUN_CASE("strings longer than their limit on the wire are malformed", t_wire_string_limits);
    RUN_CASE("a key given twice is malformed", t_duplicate_key);
    RUN_CASE("a top-level key that is not a string is malformed", t_non_string_key);
    RUN_CASE("a string field with an embedded NUL is malformed", t_embedded_nul);
    RUN_CASE("a header key or value with an embedded NUL is malformed", t_header_nul);
    RUN_CASE("malformed headers are rejected: empty key, non-string key or value, more than 64",
             t_wire_headers);
    RUN_CASE("containers and strings declaring billions of elements or bytes are rejected",
             t_huge_declarations);
    RUN_CASE("envelope version 2 or 0 is EVERSION", t_version);
    RUN_CASE("unknown keys, including nested maps and arrays, are ignored", t_unknown_keys);
    RUN_CASE("a deeply nested unknown value is rejected without crashing", t_deep_nesting);
    RUN_CASE("the direct decoder agrees with the reference decoder on valid envelopes and every "
             "single-byte mutation, truncation, deletion and insertion of them",
             t_differential_mutations);
    RUN_CASE("the direct decoder agrees with the reference decoder on random envelopes, random "
             "byte flips of them, and random bytes",
             t_differential_random);
    RUN_CASE("encoding from a prefix gives the bytes of weft_envelope_encode for every src "
             "length and integer width of inst, seq and ts",
             t_prefix_encoding_integers);
    RUN_CASE("encoding from a prefix gives the bytes and the errors of weft_envelope_encode "
             "with every optional field, headers, defaults written explicitly, and small "
             "buffers",
             t_prefix_encoding_optional);
    RUN_CASE("a prefix is refused for an empty or over-long src and a short buffer, and an "
             "envelope encoded from it decodes to the fields given",
             t_prefix_limits);
    RUN_CASE("an id made from a given time carries that time in ms, version 7 and variant 10",
             t_id_at);
    RUN_CASE("topics must be 1 to 255 bytes of 0x21 to 0x7e", t_topic_check);
    RUN_CASE("fabric topics are exactly those starting with _weft.", t_topic_is_fabric);
    RUN_CASE("new ids carry version 7 and variant 10 and differ from each other", t_id_new);
    RUN_CASE("ids generated at least 1 ms apart sort in time order by memcmp", t_id_order);
    RUN_CASE("ids format as lower-case UUIDs and parse back", t_id_format_parse);
    RUN_CASE("malformed id text is rejected with EINVAL", t_id_parse_bad);
    RUN_CASE("weft_strerror and weft_errname never return NULL", t_errors);
    return TEST_EXIT();
}

/*  test_envelope.c - unit tests for the envelope codec (weft/envelope.h): round trips of every
    field, defaults, size and count limits, hostile and malformed input, topic rules, event ids
    and the error vocabulary. Malformed inputs are built by hand with msgpack_pack_* or as
    literal bytes, and decoded from exact-size heap copies so over-reads show up under ASan.
*/
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
    RUN_CASE("topics must be 1 to 255 bytes of 0x21 to 0x7e", t_topic_check);
    RUN_CASE("fabric topics are exactly those starting with _weft.", t_topic_is_fabric);
    RUN_CASE("new ids carry version 7 and variant 10 and differ from each other", t_id_new);
    RUN_CASE("ids generated at least 1 ms apart sort in time order by memcmp", t_id_order);
    RUN_CASE("ids format as lower-case UUIDs and parse back", t_id_format_parse);
    RUN_CASE("malformed id text is rejected with EINVAL", t_id_parse_bad);
    RUN_CASE("weft_strerror and weft_errname never return NULL", t_errors);
    return TEST_EXIT();
}

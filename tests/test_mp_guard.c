/*  test_mp_guard.c - unit tests for mp_guard_check (src/mp_guard.h), the allocation-free
    structural check that runs before msgpack-c sees untrusted bytes: every msgpack type of
    every width passes, and truncation, oversized declarations, the reserved byte, excess
    nesting, trailing bytes and empty input are rejected with a reason.
*/
#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mp_guard.h"
#include "testing.h"
#include "weft/error.h"

/* ---- helpers ------------------------------------------------------------------------- */

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

static uint8_t s_zeros[70000];

/* Runs the guard on an exact-size heap copy (so over-reads show up under ASan). Empty input
   still gets a non-NULL one-byte buffer, zeroed so that nothing the guard is handed is
   indeterminate. Returns the result and stores the reason in *why. */
static int s_check(const void *data, size_t size, unsigned max_depth, const char **why)
{
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        abort();
    if (size)
        memcpy(copy, data, size);
    else
        copy[0] = 0;
    int rc = mp_guard_check(copy, size, max_depth, why);
    free(copy);
    return rc;
}

/* True when data passes the guard with no reason given, and msgpack-c then unpacks exactly
   one object that uses every byte. */
static bool s_passes(const void *data, size_t size, unsigned max_depth)
{
    const char *why = "unset";
    int rc = s_check(data, size, max_depth, &why);
    if (rc != 0) {
        fprintf(stderr, "  rejected (%s), first byte 0x%02x, %zu bytes\n", why ? why : "?",
                size ? ((const uint8_t *)data)[0] : 0, size);
        return false;
    }
    if (why != NULL)
        return false;
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    int ur = msgpack_unpack_next(&u, data, size, &off);
    msgpack_unpacked_destroy(&u);
    return ur == MSGPACK_UNPACK_SUCCESS && off == size;
}

/* True when data is rejected with WEFT_EMALFORMED and a non-empty reason. */
static bool s_rejected(const void *data, size_t size, unsigned max_depth)
{
    const char *why = NULL;
    int rc = s_check(data, size, max_depth, &why);
    if (rc != WEFT_EMALFORMED || why == NULL || why[0] == 0) {
        fprintf(stderr, "  not rejected: rc %d, first byte 0x%02x, %zu bytes\n", rc,
                size ? ((const uint8_t *)data)[0] : 0, size);
        return false;
    }
    return true;
}

#define CHECK_PASSES(m, type_byte)                                                              \
    do {                                                                                        \
        CHECK((m)->sb.size > 0);                                                                \
        CHECK_EQ_INT((uint8_t)(m)->sb.data[0], (type_byte));                                    \
        CHECK(s_passes((m)->sb.data, (m)->sb.size, 0));                                         \
    } while (0)

/* ---- valid objects ------------------------------------------------------------------- */

TEST_CASE("nil, booleans and integers of every width pass", t_scalars)
{
    mp_t m;
    const struct {
        int kind;
        int64_t value;
        uint8_t byte;
    } rows[] = {
        {0, 0, 0xc0},            {1, 0, 0xc2},           {2, 0, 0xc3},
        {3, 5, 0x05},            {3, 127, 0x7f},         {3, -1, 0xff},
        {3, -32, 0xe0},          {3, 200, 0xcc},         {3, 60000, 0xcd},
        {3, 4000000000LL, 0xce}, {3, 1LL << 40, 0xcf},   {3, -100, 0xd0},
        {3, -30000, 0xd1},       {3, -2000000000, 0xd2}, {3, -(1LL << 40), 0xd3},
        {4, 1, 0xcc},            {5, 1, 0xcd},           {6, 1, 0xce},
        {7, 1, 0xcf},            {8, 1, 0xd0},           {9, 1, 0xd1},
        {10, 1, 0xd2},           {11, 1, 0xd3},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        mp_init(&m);
        switch (rows[i].kind) {
        case 0: msgpack_pack_nil(&m.pk); break;
        case 1: msgpack_pack_false(&m.pk); break;
        case 2: msgpack_pack_true(&m.pk); break;
        case 3:
            if (rows[i].value > 127)
                msgpack_pack_uint64(&m.pk, (uint64_t)rows[i].value);
            else
                msgpack_pack_int64(&m.pk, rows[i].value);
            break;
        case 4: msgpack_pack_fix_uint8(&m.pk, 1); break;
        case 5: msgpack_pack_fix_uint16(&m.pk, 1); break;
        case 6: msgpack_pack_fix_uint32(&m.pk, 1); break;
        case 7: msgpack_pack_fix_uint64(&m.pk, 1); break;
        case 8: msgpack_pack_fix_int8(&m.pk, 1); break;
        case 9: msgpack_pack_fix_int16(&m.pk, 1); break;
        case 10: msgpack_pack_fix_int32(&m.pk, 1); break;
        case 11: msgpack_pack_fix_int64(&m.pk, 1); break;
        }
        if ((uint8_t)m.sb.data[0] != rows[i].byte)
            fprintf(stderr, "  row %zu packed as 0x%02x\n", i, (uint8_t)m.sb.data[0]);
        CHECK_PASSES(&m, rows[i].byte);
        mp_free(&m);
    }
}

TEST_CASE("float and double pass", t_floats)
{
    mp_t m;
    mp_init(&m);
    msgpack_pack_float(&m.pk, 1.25f);
    CHECK_PASSES(&m, 0xca);
    CHECK_EQ_INT(m.sb.size, 5);
    mp_free(&m);
    mp_init(&m);
    msgpack_pack_double(&m.pk, -1e300);
    CHECK_PASSES(&m, 0xcb);
    CHECK_EQ_INT(m.sb.size, 9);
    mp_free(&m);
}

TEST_CASE("strings and binaries of every width pass, including empty ones", t_str_bin)
{
    const struct {
        size_t len;
        uint8_t str_byte, bin_byte;
    } rows[] = {
        {0, 0xa0, 0xc4}, {5, 0xa5, 0xc4}, {31, 0xbf, 0xc4}, {32, 0xd9, 0xc4},
        {255, 0xd9, 0xc4}, {256, 0xda, 0xc5}, {65535, 0xda, 0xc5}, {65536, 0xdb, 0xc6},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        mp_t m;
        mp_init(&m);
        msgpack_pack_str(&m.pk, rows[i].len);
        msgpack_pack_str_body(&m.pk, s_zeros, rows[i].len);
        CHECK_PASSES(&m, rows[i].str_byte);
        mp_free(&m);
        mp_init(&m);
        msgpack_pack_bin(&m.pk, rows[i].len);
        msgpack_pack_bin_body(&m.pk, s_zeros, rows[i].len);
        CHECK_PASSES(&m, rows[i].bin_byte);
        mp_free(&m);
    }
}

TEST_CASE("fixext and ext of every width pass", t_ext)
{
    const struct {
        size_t len;
        uint8_t byte;
    } rows[] = {
        {1, 0xd4}, {2, 0xd5}, {4, 0xd6}, {8, 0xd7}, {16, 0xd8}, {0, 0xc7}, {3, 0xc7},
        {255, 0xc7}, {256, 0xc8}, {65535, 0xc8}, {65536, 0xc9},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        mp_t m;
        mp_init(&m);
        msgpack_pack_ext(&m.pk, rows[i].len, (int8_t)(i - 3));
        msgpack_pack_ext_body(&m.pk, s_zeros, rows[i].len);
        CHECK_PASSES(&m, rows[i].byte);
        mp_free(&m);
    }
}

TEST_CASE("arrays and maps of every width pass, including empty and nested ones", t_containers)
{
    const struct {
        size_t n;
        uint8_t arr_byte, map_byte;
    } rows[] = {
        {0, 0x90, 0x80}, {1, 0x91, 0x81}, {15, 0x9f, 0x8f}, {16, 0xdc, 0xde},
        {65535, 0xdc, 0xde}, {65536, 0xdd, 0xdf},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        mp_t m;
        mp_init(&m);
        msgpack_pack_array(&m.pk, rows[i].n);
        for (size_t j = 0; j < rows[i].n; j++)
            msgpack_pack_nil(&m.pk);
        CHECK_PASSES(&m, rows[i].arr_byte);
        mp_free(&m);
        mp_init(&m);
        msgpack_pack_map(&m.pk, rows[i].n);
        for (size_t j = 0; j < rows[i].n; j++) {
            msgpack_pack_uint32(&m.pk, (uint32_t)j);
            msgpack_pack_true(&m.pk);
        }
        CHECK_PASSES(&m, rows[i].map_byte);
        mp_free(&m);
    }
    /* empty containers inside containers */
    const uint8_t nested_empty[] = {0x93, 0x90, 0x80, 0x91, 0x81, 0xa0, 0x90};
    CHECK(s_passes(nested_empty, sizeof(nested_empty), 0));
    const uint8_t arr16_empty[] = {0xdc, 0x00, 0x00}, map32_empty[] = {0xdf, 0, 0, 0, 0};
    CHECK(s_passes(arr16_empty, sizeof(arr16_empty), 0));
    CHECK(s_passes(map32_empty, sizeof(map32_empty), 0));
}

/* One object using every type, nested a few levels deep. */
static void s_pack_complex(mp_t *m)
{
    msgpack_packer *pk = &m->pk;
    mp_init(m);
    msgpack_pack_map(pk, 4);
    msgpack_pack_str(pk, 7);
    msgpack_pack_str_body(pk, "scalars", 7);
    msgpack_pack_array(pk, 12);
    msgpack_pack_nil(pk);
    msgpack_pack_true(pk);
    msgpack_pack_int8(pk, -3);
    msgpack_pack_uint16(pk, 60000);
    msgpack_pack_fix_uint32(pk, 7);
    msgpack_pack_uint64(pk, UINT64_MAX);
    msgpack_pack_int64(pk, INT64_MIN);
    msgpack_pack_float(pk, 0.5f);
    msgpack_pack_double(pk, 0.25);
    msgpack_pack_fix_int16(pk, -2);
    msgpack_pack_fix_int32(pk, -70000);
    msgpack_pack_uint8(pk, 200);
    msgpack_pack_str(pk, 40);
    msgpack_pack_str_body(pk, s_zeros, 40);
    msgpack_pack_bin(pk, 300);
    msgpack_pack_bin_body(pk, s_zeros, 300);
    msgpack_pack_int(pk, 9);
    msgpack_pack_ext(pk, 4, 1);
    msgpack_pack_ext_body(pk, s_zeros, 4);
    msgpack_pack_ext(pk, 20, -1);
    msgpack_pack_ext_body(pk, s_zeros, 20);
    msgpack_pack_array(pk, 3);
    msgpack_pack_map(pk, 1);
    msgpack_pack_str(pk, 1);
    msgpack_pack_str_body(pk, "k", 1);
    msgpack_pack_array(pk, 2);
    msgpack_pack_map(pk, 0);
    msgpack_pack_array(pk, 0);
    msgpack_pack_array(pk, 20);
    for (int i = 0; i < 20; i++)
        msgpack_pack_int(pk, -i);
    msgpack_pack_map(pk, 17);
    for (int i = 0; i < 17; i++) {
        msgpack_pack_int(pk, i);
        msgpack_pack_str(pk, 1);
        msgpack_pack_str_body(pk, "v", 1);
    }
}

TEST_CASE("a complex object mixing every type passes", t_complex)
{
    mp_t m;
    s_pack_complex(&m);
    bool ok = s_passes(m.sb.data, m.sb.size, 0) && s_passes(m.sb.data, m.sb.size, 4);
    mp_free(&m);
    CHECK(ok);
}

TEST_CASE("a NULL reason pointer is allowed", t_null_why)
{
    const uint8_t good[] = {0x91, 0x01}, bad[] = {0x92, 0x01};
    CHECK_EQ_INT(mp_guard_check(good, sizeof(good), 0, NULL), 0);
    CHECK_EQ_INT(mp_guard_check(bad, sizeof(bad), 0, NULL), WEFT_EMALFORMED);
}

/* ---- rejected input ------------------------------------------------------------------ */

TEST_CASE("empty input is rejected", t_empty)
{
    const uint8_t b = 0xc0;
    const char *why = NULL;
    CHECK_EQ_INT(mp_guard_check(&b, 0, 0, &why), WEFT_EMALFORMED);
    CHECK(why != NULL && why[0] != 0);
    why = NULL;
    CHECK_EQ_INT(mp_guard_check(NULL, 0, 0, &why), WEFT_EMALFORMED);
    CHECK(why != NULL && why[0] != 0);
    why = NULL;
    CHECK_EQ_INT(mp_guard_check(NULL, 5, 0, &why), WEFT_EMALFORMED);
    CHECK(why != NULL && why[0] != 0);
}

TEST_CASE("every truncated prefix of a complex object is rejected", t_truncated)
{
    mp_t m;
    s_pack_complex(&m);
    bool ok = true;
    for (size_t len = 0; ok && len < m.sb.size; len++)
        ok = s_rejected(m.sb.data, len, 0);
    mp_free(&m);
    CHECK(ok);
}

TEST_CASE("every truncated prefix of each fixed-size scalar is rejected", t_truncated_scalars)
{
    const uint8_t types[] = {0xcc, 0xcd, 0xce, 0xcf, 0xd0, 0xd1, 0xd2, 0xd3, 0xca, 0xcb,
                             0xd4, 0xd5, 0xd6, 0xd7, 0xd8};
    const size_t sizes[] = {2, 3, 5, 9, 2, 3, 5, 9, 5, 9, 3, 4, 6, 10, 18};
    uint8_t buf[19];
    memset(buf, 0x01, sizeof(buf));
    for (size_t i = 0; i < sizeof(types); i++) {
        buf[0] = types[i];
        CHECK(s_passes(buf, sizes[i], 0));
        for (size_t len = 1; len < sizes[i]; len++)
            CHECK(s_rejected(buf, len, 0));
        CHECK(s_rejected(buf, sizes[i] + 1, 0)); /* and one byte too many */
    }
}

TEST_CASE("containers declaring more elements than bytes left are rejected", t_count_too_big)
{
    const uint8_t fixarray15[] = {0x9f, 0x01, 0x02, 0x03};
    const uint8_t fixmap2[] = {0x82, 0x01, 0x02, 0x03};
    const uint8_t fixmap15[] = {0x8f, 0x01, 0x02, 0x03};
    const uint8_t array16[] = {0xdc, 0x00, 0x10, 0x01, 0x02, 0x03};
    const uint8_t array16_max[] = {0xdc, 0xff, 0xff, 0xc0};
    const uint8_t array32[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
    const uint8_t array32_small[] = {0xdd, 0x00, 0x00, 0x00, 0x04, 0x01, 0x02, 0x03};
    const uint8_t map16[] = {0xde, 0x00, 0x02, 0x01, 0x02, 0x03};
    const uint8_t map16_max[] = {0xde, 0xff, 0xff, 0xc0, 0xc0};
    const uint8_t map32[] = {0xdf, 0xff, 0xff, 0xff, 0xff};
    const uint8_t map32_small[] = {0xdf, 0x00, 0x00, 0x00, 0x02, 0x01, 0x02, 0x03};
    /* nested: the inner array is the one that lies */
    const uint8_t inner[] = {0x92, 0xdd, 0x7f, 0xff, 0xff, 0xff, 0xc0, 0xc0};
    CHECK(s_rejected(fixarray15, sizeof(fixarray15), 0));
    CHECK(s_rejected(fixmap2, sizeof(fixmap2), 0));
    CHECK(s_rejected(fixmap15, sizeof(fixmap15), 0));
    CHECK(s_rejected(array16, sizeof(array16), 0));
    CHECK(s_rejected(array16_max, sizeof(array16_max), 0));
    CHECK(s_rejected(array32, sizeof(array32), 0));
    CHECK(s_rejected(array32_small, sizeof(array32_small), 0));
    CHECK(s_rejected(map16, sizeof(map16), 0));
    CHECK(s_rejected(map16_max, sizeof(map16_max), 0));
    CHECK(s_rejected(map32, sizeof(map32), 0));
    CHECK(s_rejected(map32_small, sizeof(map32_small), 0));
    CHECK(s_rejected(inner, sizeof(inner), 0));
    /* the exact counts pass */
    const uint8_t fixarray3[] = {0x93, 0x01, 0x02, 0x03};
    const uint8_t array32_3[] = {0xdd, 0x00, 0x00, 0x00, 0x03, 0x01, 0x02, 0x03};
    const uint8_t map16_1[] = {0xde, 0x00, 0x01, 0x01, 0x02};
    CHECK(s_passes(fixarray3, sizeof(fixarray3), 0));
    CHECK(s_passes(array32_3, sizeof(array32_3), 0));
    CHECK(s_passes(map16_1, sizeof(map16_1), 0));
}

TEST_CASE("str, bin and ext lengths larger than the bytes left are rejected at every width",
          t_length_too_big)
{
    const struct {
        uint8_t bytes[8];
        size_t size;
    } rows[] = {
        {{0xa5, 'a', 'b'}, 3},                              /* fixstr 5, 2 left */
        {{0xbf}, 1},                                        /* fixstr 31, 0 left */
        {{0xd9, 0x0a, 'a'}, 3},                             /* str8 */
        {{0xd9, 0xff}, 2},
        {{0xda, 0x01, 0x00, 'a'}, 4},                       /* str16 */
        {{0xda, 0xff, 0xff}, 3},
        {{0xdb, 0x00, 0x00, 0x00, 0x02, 'a'}, 6},           /* str32 */
        {{0xdb, 0xff, 0xff, 0xff, 0xff}, 5},                /* 4 GB */
        {{0xc4, 0x05, 0x01}, 3},                            /* bin8 */
        {{0xc5, 0x01, 0x00, 0x01}, 4},                      /* bin16 */
        {{0xc6, 0x00, 0x00, 0x00, 0x02, 0x01}, 6},          /* bin32 */
        {{0xc6, 0xff, 0xff, 0xff, 0xff}, 5},
        {{0xc7, 0x02, 0x01, 0x00}, 4},                      /* ext8: type + 1 of 2 bytes */
        {{0xc7, 0x00}, 2},                                  /* ext8 without its type byte */
        {{0xc8, 0x00, 0x02, 0x01, 0x00}, 5},                /* ext16 */
        {{0xc8, 0xff, 0xff, 0x01}, 4},
        {{0xc9, 0x00, 0x00, 0x00, 0x02, 0x01, 0x00}, 7},    /* ext32 */
        {{0xc9, 0xff, 0xff, 0xff, 0xff}, 5},
        {{0xd4, 0x01}, 2},                                  /* fixext1 without data */
        {{0xd5, 0x01, 0x00}, 3},                            /* fixext2 */
        {{0xd6, 0x01, 0x00, 0x00, 0x00}, 5},                /* fixext4 */
        {{0xd7, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}, 8}, /* fixext8 */
        {{0xd8, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}, 8}, /* fixext16 */
        {{0xd9}, 1},                                        /* headers cut short */
        {{0xda, 0x00}, 2},
        {{0xdb, 0x00, 0x00, 0x00}, 4},
        {{0xc4}, 1},
        {{0xc5, 0x00}, 2},
        {{0xc6, 0x00, 0x00}, 3},
        {{0xc7}, 1},
        {{0xc8, 0x00}, 2},
        {{0xc9, 0x00, 0x00, 0x00}, 4},
        {{0xdc, 0x00}, 2},
        {{0xdd, 0x00, 0x00, 0x00}, 4},
        {{0xde}, 1},
        {{0xdf, 0x00, 0x00}, 3},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        if (!s_rejected(rows[i].bytes, rows[i].size, 0))
            fprintf(stderr, "  row %zu\n", i);
        CHECK(s_rejected(rows[i].bytes, rows[i].size, 0));
    }
    /* and the same lengths with exactly enough bytes pass */
    const uint8_t ext8_ok[] = {0xc7, 0x02, 0x01, 0x00, 0x00};
    const uint8_t ext8_empty[] = {0xc7, 0x00, 0x05};
    const uint8_t str8_ok[] = {0xd9, 0x01, 'a'};
    CHECK(s_passes(ext8_ok, sizeof(ext8_ok), 0));
    CHECK(s_passes(ext8_empty, sizeof(ext8_empty), 0));
    CHECK(s_passes(str8_ok, sizeof(str8_ok), 0));
}

TEST_CASE("the reserved type byte 0xc1 is rejected anywhere", t_reserved)
{
    const uint8_t alone[] = {0xc1};
    const uint8_t in_array[] = {0x92, 0x01, 0xc1};
    const uint8_t as_key[] = {0x81, 0xc1, 0x01};
    const uint8_t as_value[] = {0x81, 0x01, 0xc1};
    CHECK(s_rejected(alone, sizeof(alone), 0));
    CHECK(s_rejected(in_array, sizeof(in_array), 0));
    CHECK(s_rejected(as_key, sizeof(as_key), 0));
    CHECK(s_rejected(as_value, sizeof(as_value), 0));
    const char *why = NULL;
    mp_guard_check(alone, 1, 0, &why);
    CHECK(why != NULL && strstr(why, "0xc1") != NULL);
}

TEST_CASE("every single-byte input passes or fails as its type byte says", t_single_bytes)
{
    for (int b = 0; b < 256; b++) {
        uint8_t byte = (uint8_t)b;
        /* complete on its own: fixint, nil, bool, empty fixstr/fixarray/fixmap */
        bool complete = b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3 ||
                        b == 0xa0 || b == 0x90 || b == 0x80;
        const char *why = "unset";
        int rc = s_check(&byte, 1, 0, &why);
        if (complete) {
            CHECK_EQ_INT(rc, 0);
            CHECK(why == NULL);
        } else {
            CHECK_EQ_INT(rc, WEFT_EMALFORMED);
            CHECK(why != NULL && why[0] != 0);
        }
    }
}

/* Packs `levels` nested one-element arrays around a nil. */
static void s_pack_nested(mp_t *m, unsigned levels, bool use_maps)
{
    mp_init(m);
    for (unsigned i = 0; i < levels; i++) {
        if (use_maps) {
            msgpack_pack_map(&m->pk, 1);
            msgpack_pack_nil(&m->pk);
        } else {
            msgpack_pack_array(&m->pk, 1);
        }
    }
    msgpack_pack_nil(&m->pk);
}

TEST_CASE("nesting up to max_depth passes and one level deeper is rejected", t_depth)
{
    const unsigned depths[] = {1, 2, 4, 16, 32, 64};
    for (size_t i = 0; i < sizeof(depths) / sizeof(depths[0]); i++) {
        for (int maps = 0; maps < 2; maps++) {
            mp_t m;
            const char *why = NULL;
            s_pack_nested(&m, depths[i], maps);
            /* msgpack-c itself stops at 32 levels, so only the guard is asked beyond that */
            int rc_ok = s_check(m.sb.data, m.sb.size, depths[i], NULL);
            bool unpack_ok = depths[i] > 32 || s_passes(m.sb.data, m.sb.size, depths[i]);
            mp_free(&m);
            s_pack_nested(&m, depths[i] + 1, maps);
            int rc_deep = s_check(m.sb.data, m.sb.size, depths[i], &why);
            mp_free(&m);
            CHECK_EQ_INT(rc_ok, 0);
            CHECK(unpack_ok);
            CHECK_EQ_INT(rc_deep, WEFT_EMALFORMED);
            CHECK(why != NULL && why[0] != 0);
        }
    }
}

TEST_CASE("max_depth 0 or above 64 means the default of 16", t_depth_default)
{
    const unsigned weird[] = {0, 65, 1000, 0xffffffffu};
    for (size_t i = 0; i < sizeof(weird) / sizeof(weird[0]); i++) {
        mp_t m;
        s_pack_nested(&m, MP_GUARD_DEPTH_DEFAULT, false);
        int rc_ok = s_check(m.sb.data, m.sb.size, weird[i], NULL);
        mp_free(&m);
        s_pack_nested(&m, MP_GUARD_DEPTH_DEFAULT + 1, false);
        int rc_deep = s_check(m.sb.data, m.sb.size, weird[i], NULL);
        mp_free(&m);
        CHECK_EQ_INT(rc_ok, 0);
        CHECK_EQ_INT(rc_deep, WEFT_EMALFORMED);
    }
}

TEST_CASE("thousands of nesting levels are rejected without recursion", t_depth_huge)
{
    mp_t m;
    s_pack_nested(&m, 100000, false);
    int rc = s_check(m.sb.data, m.sb.size, 64, NULL);
    mp_free(&m);
    CHECK_EQ_INT(rc, WEFT_EMALFORMED);
}

TEST_CASE("empty containers do not count towards the nesting depth", t_depth_empty)
{
    const uint8_t two[] = {0x91, 0x90};           /* [[]] */
    const uint8_t two_maps[] = {0x81, 0xc0, 0x80}; /* {nil: {}} */
    CHECK(s_passes(two, sizeof(two), 1));
    CHECK(s_passes(two_maps, sizeof(two_maps), 1));
    const uint8_t three[] = {0x91, 0x91, 0x90};   /* [[[]]] */
    CHECK(s_rejected(three, sizeof(three), 1));
}

TEST_CASE("two objects back to back are rejected as trailing bytes", t_trailing)
{
    const uint8_t ints[] = {0x01, 0x02};
    const uint8_t nils[] = {0xc0, 0xc0};
    const uint8_t maps[] = {0x81, 0x01, 0x02, 0x81, 0x01, 0x02};
    const uint8_t arr_then_byte[] = {0x92, 0x01, 0x02, 0x03};
    const uint8_t str_then_nil[] = {0xa2, 'h', 'i', 0xc0};
    CHECK(s_rejected(ints, sizeof(ints), 0));
    CHECK(s_rejected(nils, sizeof(nils), 0));
    CHECK(s_rejected(maps, sizeof(maps), 0));
    CHECK(s_rejected(arr_then_byte, sizeof(arr_then_byte), 0));
    CHECK(s_rejected(str_then_nil, sizeof(str_then_nil), 0));
    const char *why = NULL;
    mp_guard_check(ints, sizeof(ints), 0, &why);
    CHECK(why != NULL && strstr(why, "trailing") != NULL);

    mp_t m;
    s_pack_complex(&m);
    size_t n = m.sb.size;
    msgpack_sbuffer_write(&m.sb, m.sb.data, n); /* the complex object twice */
    bool twice = s_rejected(m.sb.data, m.sb.size, 0);
    mp_free(&m);
    CHECK(twice);
}

int main(void)
{
    RUN_CASE("nil, booleans and integers of every width pass", t_scalars);
    RUN_CASE("float and double pass", t_floats);
    RUN_CASE("strings and binaries of every width pass, including empty ones", t_str_bin);
    RUN_CASE("fixext and ext of every width pass", t_ext);
    RUN_CASE("arrays and maps of every width pass, including empty and nested ones",
             t_containers);
    RUN_CASE("a complex object mixing every type passes", t_complex);
    RUN_CASE("a NULL reason pointer is allowed", t_null_why);
    RUN_CASE("empty input is rejected", t_empty);
    RUN_CASE("every truncated prefix of a complex object is rejected", t_truncated);
    RUN_CASE("every truncated prefix of each fixed-size scalar is rejected",
             t_truncated_scalars);
    RUN_CASE("containers declaring more elements than bytes left are rejected",
             t_count_too_big);
    RUN_CASE("str, bin and ext lengths larger than the bytes left are rejected at every width",
             t_length_too_big);
    RUN_CASE("the reserved type byte 0xc1 is rejected anywhere", t_reserved);
    RUN_CASE("every single-byte input passes or fails as its type byte says", t_single_bytes);
    RUN_CASE("nesting up to max_depth passes and one level deeper is rejected", t_depth);
    RUN_CASE("max_depth 0 or above 64 means the default of 16", t_depth_default);
    RUN_CASE("thousands of nesting levels are rejected without recursion", t_depth_huge);
    RUN_CASE("empty containers do not count towards the nesting depth", t_depth_empty);
    RUN_CASE("two objects back to back are rejected as trailing bytes", t_trailing);
    return TEST_EXIT();
}

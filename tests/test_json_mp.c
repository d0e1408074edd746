/*  test_json_mp.c - tests of tools/common/json_mp: JSON <-> msgpack conversion for the weft
    command line (payloads of `weft pub`, JSON lines printed for received events) and the base64
    helpers. Round trips, the tagged forms of msgpack-only types, and hostile msgpack input.
*/
#include <stdint.h>

#include <jansson.h>
#include <msgpack.h>

#include "json_mp.h"
#include "testing.h"
#include "weft/error.h"

/* ---- helpers ------------------------------------------------------------------------------ */

/* Compact JSON text of j (keys in object order), malloc'd; "(null)" text for NULL. */
static char *t_dump(const json_t *j)
{
    if (!j)
        return strdup("(null)");
    return json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
}

/* JSON text -> msgpack -> JSON; checks both steps succeed and the result equals the input.
   Returns 1 when everything matched. */
static int t_roundtrip_ok(const char *text)
{
    json_error_t je;
    json_t *want = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    char err[200];
    int rc = json_mp_from_text(text, strlen(text), &sb, err, sizeof(err));
    int derr = 1;
    json_t *got = rc == 0 ? json_mp_to_json(sb.data, sb.size, &derr) : NULL;
    char *a = t_dump(want), *b = t_dump(got);
    int ok = want && got && rc == 0 && derr == 0 && json_equal(want, got) && strcmp(a, b) == 0;
    if (!ok)
        fprintf(stderr, "  round trip of %s: rc %d (%s), decode %d, got %s\n", text, rc, err,
                derr, b);
    free(a);
    free(b);
    json_decref(want);
    json_decref(got);
    msgpack_sbuffer_destroy(&sb);
    return ok;
}

/* Decodes bytes and compares the compact JSON text with want. Returns 1 on match. */
static int t_decodes_to(const void *bytes, size_t size, const char *want)
{
    int err = 1;
    json_t *j = json_mp_to_json(bytes, size, &err);
    char *got = t_dump(j);
    int ok = j && err == 0 && strcmp(got, want) == 0;
    if (!ok)
        fprintf(stderr, "  decoded to %s (err %d), wanted %s\n", got, err, want);
    free(got);
    json_decref(j);
    return ok;
}

/* Decoding must fail with NULL and *err == want. */
static int t_decode_fails(const void *bytes, size_t size, int want)
{
    int err = 0;
    json_t *j = json_mp_to_json(bytes, size, &err);
    int ok = j == NULL && err == want;
    if (!ok)
        fprintf(stderr, "  decode of %zu bytes gave %s err %d, wanted NULL err %d\n", size,
                j ? "a value" : "NULL", err, want);
    json_decref(j);
    return ok;
}

/* Packs text and compares the msgpack bytes with want. Returns 1 on match. */
static int t_packs_to(const char *text, const void *want, size_t want_size)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    int rc = json_mp_from_text(text, strlen(text), &sb, NULL, 0);
    int ok = rc == 0 && sb.size == want_size && memcmp(sb.data, want, want_size) == 0;
    if (!ok) {
        fprintf(stderr, "  %s packed (rc %d) to", text, rc);
        for (size_t i = 0; i < sb.size; i++)
            fprintf(stderr, " %02x", (unsigned char)sb.data[i]);
        fprintf(stderr, "\n");
    }
    msgpack_sbuffer_destroy(&sb);
    return ok;
}

/* n nested arrays around 1: "[[...[1]...]]". Caller frees. */
static char *t_nested_text(int n)
{
    char *s = malloc((size_t)n * 2 + 2);
    int o = 0;
    for (int i = 0; i < n; i++)
        s[o++] = '[';
    s[o++] = '1';
    for (int i = 0; i < n; i++)
        s[o++] = ']';
    s[o] = '\0';
    return s;
}

/* ---- round trips -------------------------------------------------------------------------- */

TEST_CASE("a nested document survives JSON to msgpack and back unchanged", nested_roundtrip)
{
    CHECK(t_roundtrip_ok("{\"order\":{\"id\":\"A-17\",\"lines\":[{\"sku\":\"x\",\"qty\":2,"
                         "\"price\":9.5},{\"sku\":\"y\",\"qty\":1,\"price\":0.25}],"
                         "\"paid\":true,\"note\":null,\"tags\":[[],{},[[1,[2,[3]]]]]},"
                         "\"z\":false,\"a\":-3}"));
    CHECK(t_roundtrip_ok("[1,\"two\",3.5,true,false,null,{\"k\":[]}]"));
}

TEST_CASE("top-level scalars round trip", scalar_roundtrip)
{
    CHECK(t_roundtrip_ok("0"));
    CHECK(t_roundtrip_ok("\"just a string\""));
    CHECK(t_roundtrip_ok("true"));
    CHECK(t_roundtrip_ok("false"));
    CHECK(t_roundtrip_ok("null"));
    CHECK(t_roundtrip_ok("-0.5"));
}

TEST_CASE("unicode strings and keys round trip, including NUL and astral characters",
          unicode_roundtrip)
{
    CHECK(t_roundtrip_ok("\"h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9d\x84\x9e \xe4\xb8\xad\xe6\x96\x87\""));
    CHECK(t_roundtrip_ok("\"\\u00e9\\ud834\\udd1e\\u2028\""));
    CHECK(t_roundtrip_ok("{\"cl\xc3\xa9\":\"\xf0\x9f\x98\x80\",\"\":\"empty key\"}"));
    CHECK(t_roundtrip_ok("\"a\\u0000b\""));
    /* jansson's parser refuses NUL in keys, but a decoded key with NUL packs back intact */
    const char with_nul[] = "\x81\xa3k\x00y\x01";
    int err = 1;
    json_t *j = json_mp_to_json(with_nul, 6, &err);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    int rc = json_mp_from_json(j, &sb);
    int same = rc == 0 && sb.size == 6 && memcmp(sb.data, with_nul, 6) == 0;
    msgpack_sbuffer_destroy(&sb);
    json_decref(j);
    CHECK_EQ_INT(err, 0);
    CHECK(same);
    CHECK(t_roundtrip_ok("\"\""));
}

TEST_CASE("large and negative integers round trip exactly", integer_roundtrip)
{
    CHECK(t_roundtrip_ok("[-9223372036854775808,9223372036854775807,-1,0,1,127,128,-32,-33,"
                         "255,256,65535,65536,4294967295,4294967296,-2147483649]"));
    CHECK(t_packs_to("-9223372036854775808",
                     "\xd3\x80\x00\x00\x00\x00\x00\x00\x00", 9));
    CHECK(t_packs_to("9223372036854775807",
                     "\xcf\x7f\xff\xff\xff\xff\xff\xff\xff", 9));
}

TEST_CASE("UINT64_MAX decodes as a $uint64 tag that packs back to the same uint64",
          uint64_max_roundtrip)
{
    const char mp_max[] = "\xcf\xff\xff\xff\xff\xff\xff\xff\xff";
    CHECK(t_decodes_to(mp_max, 9, "{\"$uint64\":\"18446744073709551615\"}"));
    CHECK(t_packs_to("{\"$uint64\":\"18446744073709551615\"}", mp_max, 9));
    CHECK(t_roundtrip_ok("{\"n\":{\"$uint64\":\"18446744073709551615\"},"
                         "\"m\":{\"$uint64\":\"9223372036854775808\"}}"));
    /* Only the canonical tag for values jansson cannot hold is special. */
    CHECK(t_packs_to("{\"$uint64\":\"5\"}", "\x81\xa7$uint64\xa1" "5", 11));
    CHECK(t_packs_to("{\"$uint64\":\"18446744073709551616\"}",
                     "\x81\xa7$uint64\xb4" "18446744073709551616", 30));
    CHECK(t_roundtrip_ok("{\"$uint64\":\"18446744073709551615\",\"x\":1}"));
}

TEST_CASE("floats round trip exactly and pack as float64", float_roundtrip)
{
    CHECK(t_roundtrip_ok("[0.5,-1.25,3.141592653589793,1e308,-2.2250738585072014e-308,"
                         "5e-324,0.1,123456789.125,0.0]"));
    CHECK(t_packs_to("1.5", "\xcb\x3f\xf8\x00\x00\x00\x00\x00\x00", 9));
    /* float32 decodes to the same value. */
    CHECK(t_decodes_to("\xca\x3f\xc0\x00\x00", 5, "1.5"));
}

TEST_CASE("non-finite floats decode as the strings NaN, Infinity and -Infinity", float_special)
{
    CHECK(t_decodes_to("\x93\xcb\x7f\xf8\x00\x00\x00\x00\x00\x00"
                       "\xcb\x7f\xf0\x00\x00\x00\x00\x00\x00"
                       "\xca\xff\x80\x00\x00",
                       24, "[\"NaN\",\"Infinity\",\"-Infinity\"]"));
}

TEST_CASE("empty object and empty array round trip and pack minimally", empty_containers)
{
    CHECK(t_roundtrip_ok("{}"));
    CHECK(t_roundtrip_ok("[]"));
    CHECK(t_roundtrip_ok("{\"a\":{},\"b\":[],\"c\":[{}]}"));
    CHECK(t_packs_to("{}", "\x80", 1));
    CHECK(t_packs_to("[]", "\x90", 1));
}

TEST_CASE("JSON values pack to the expected msgpack types", pack_types)
{
    CHECK(t_packs_to("{\"a\":1}", "\x81\xa1" "a\x01", 4));
    CHECK(t_packs_to("[true,false,null]", "\x93\xc3\xc2\xc0", 4));
    CHECK(t_packs_to("-5", "\xfb", 1));
    CHECK(t_packs_to("200", "\xcc\xc8", 2));
    CHECK(t_packs_to("-200", "\xd1\xff\x38", 3));
    CHECK(t_packs_to("\"hi\"", "\xa2hi", 3));
}

TEST_CASE("packing appends to the buffer and leaves it unchanged on error", pack_appends)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    json_t *one = json_integer(1);
    CHECK_EQ_INT(json_mp_from_json(one, &sb), 0);
    CHECK_EQ_INT(json_mp_from_json(one, &sb), 0);
    json_decref(one);
    CHECK_EQ_INT(sb.size, 2);
    CHECK(memcmp(sb.data, "\x01\x01", 2) == 0);

    char *deep = t_nested_text(JSON_MP_MAX_DEPTH + 1);
    char err[100];
    CHECK_EQ_INT(json_mp_from_text(deep, strlen(deep), &sb, err, sizeof(err)), WEFT_EINVAL);
    free(deep);
    CHECK(strstr(err, "deeper") != NULL);
    CHECK_EQ_INT(sb.size, 2);
    msgpack_sbuffer_destroy(&sb);
}

TEST_CASE("nesting up to the depth limit packs and deeper is refused", pack_depth)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    char *ok = t_nested_text(JSON_MP_MAX_DEPTH);
    char *bad = t_nested_text(JSON_MP_MAX_DEPTH + 1);
    int rc_ok = json_mp_from_text(ok, strlen(ok), &sb, NULL, 0);
    size_t size_ok = sb.size;
    json_t *jbad = json_loads(bad, 0, NULL);
    int rc_bad = json_mp_from_json(jbad, &sb);
    json_decref(jbad);
    free(ok);
    free(bad);
    msgpack_sbuffer_destroy(&sb);
    CHECK_EQ_INT(rc_ok, 0);
    CHECK_EQ_INT(size_ok, JSON_MP_MAX_DEPTH + 1);
    CHECK_EQ_INT(rc_bad, WEFT_EINVAL);
}

TEST_CASE("NULL arguments are refused with WEFT_EINVAL", null_arguments)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    json_t *j = json_true();
    CHECK_EQ_INT(json_mp_from_json(NULL, &sb), WEFT_EINVAL);
    CHECK_EQ_INT(json_mp_from_json(j, NULL), WEFT_EINVAL);
    CHECK_EQ_INT(json_mp_from_text(NULL, 0, &sb, NULL, 0), WEFT_EINVAL);
    CHECK_EQ_INT(json_mp_from_text("1", 1, NULL, NULL, 0), WEFT_EINVAL);
    CHECK(t_decode_fails(NULL, 3, WEFT_EINVAL));
    CHECK_EQ_INT(sb.size, 0);
    uint8_t *out = (uint8_t *)1;
    size_t n = 7;
    CHECK_EQ_INT(json_mp_unbase64(NULL, &out, &n), WEFT_EINVAL);
    CHECK(out == NULL && n == 0);
    CHECK(json_mp_base64(NULL, 1) == NULL);
    /* A decode without an err pointer still works. */
    json_t *v = json_mp_to_json("\xc3", 1, NULL);
    CHECK(json_is_true(v));
    CHECK(json_mp_to_json("\xc1", 1, NULL) == NULL);
    msgpack_sbuffer_destroy(&sb);
}

/* ---- msgpack-only types ------------------------------------------------------------------- */

TEST_CASE("bin decodes as a $base64 object", bin_as_base64)
{
    CHECK(t_decodes_to("\xc4\x04\x00\x01\x02\xff", 6, "{\"$base64\":\"AAEC/w==\"}"));
    CHECK(t_decodes_to("\xc4\x00", 2, "{\"$base64\":\"\"}"));
    CHECK(t_decodes_to("\x81\xa1" "b\xc4\x03" "abc", 8, "{\"b\":{\"$base64\":\"YWJj\"}}"));
}

TEST_CASE("a str that is not valid UTF-8 decodes as a $base64 object", invalid_utf8_str)
{
    CHECK(t_decodes_to("\xa2\xc3\x28", 3, "{\"$base64\":\"wyg=\"}"));
    /* overlong encoding of '/' */
    CHECK(t_decodes_to("\xa2\xc0\xaf", 3, "{\"$base64\":\"wK8=\"}"));
    /* UTF-16 surrogate U+D800 encoded in UTF-8 */
    CHECK(t_decodes_to("\xa3\xed\xa0\x80", 4, "{\"$base64\":\"7aCA\"}"));
    /* above U+10FFFF */
    CHECK(t_decodes_to("\xa4\xf4\x90\x80\x80", 5, "{\"$base64\":\"9JCAgA==\"}"));
    /* truncated sequence */
    CHECK(t_decodes_to("\xa2" "a\xe2", 3, "{\"$base64\":\"YeI=\"}"));
    /* valid multi-byte text stays a string */
    CHECK(t_decodes_to("\xa4\xf0\x9f\x98\x80", 5, "\"\xf0\x9f\x98\x80\""));
}

TEST_CASE("ext decodes as an object with $ext type and $base64 data", ext_as_tag)
{
    CHECK(t_decodes_to("\xd4\x05\x2a", 3, "{\"$ext\":5,\"$base64\":\"Kg==\"}"));
    CHECK(t_decodes_to("\xc7\x03\xff" "abc", 6, "{\"$ext\":-1,\"$base64\":\"YWJj\"}"));
    CHECK(t_decodes_to("\xc7\x00\x07", 3, "{\"$ext\":7,\"$base64\":\"\"}"));
}

TEST_CASE("map keys that are not strings become their JSON text", non_string_keys)
{
    CHECK(t_decodes_to("\x81\x01\xa1x", 4, "{\"1\":\"x\"}"));
    CHECK(t_decodes_to("\x82\xff\x01\xcf\xff\xff\xff\xff\xff\xff\xff\xff\x02", 13,
                       "{\"-1\":1,\"18446744073709551615\":2}"));
    CHECK(t_decodes_to("\x83\xc3\x01\xc0\x02\x92\x01\x02\x03", 9,
                       "{\"true\":1,\"null\":2,\"[1,2]\":3}"));
    CHECK(t_decodes_to("\x81\xcb\x3f\xf8\x00\x00\x00\x00\x00\x00\x00", 11, "{\"1.5\":0}"));
    CHECK(t_decodes_to("\x81\x81\xa1" "a\x01\x02", 6, "{\"{\\\"a\\\":1}\":2}"));
    /* a str key that is not UTF-8 is keyed by the text of its tag */
    CHECK(t_decodes_to("\x81\xa1\xff\x01", 4, "{\"{\\\"$base64\\\":\\\"/w==\\\"}\":1}"));
    /* repeated keys: the last one wins */
    CHECK(t_decodes_to("\x82\xa1k\x01\xa1k\x02", 7, "{\"k\":2}"));
}

/* ---- hostile msgpack ---------------------------------------------------------------------- */

TEST_CASE("truncated msgpack gives NULL and WEFT_EMALFORMED", truncated)
{
    const uint8_t doc[] = {0x82, 0xa1, 'a', 0x92, 0x01, 0xcd, 0x01, 0x00,
                           0xa1, 'b', 0xc4, 0x02, 0xaa, 0xbb};
    CHECK(t_decodes_to(doc, sizeof(doc), "{\"a\":[1,256],\"b\":{\"$base64\":\"qrs=\"}}"));
    for (size_t n = 0; n < sizeof(doc); n++)
        CHECK(t_decode_fails(doc, n, WEFT_EMALFORMED));
    CHECK(t_decode_fails("\xdb\x00\x00\x00\x10" "abc", 8, WEFT_EMALFORMED));
}

TEST_CASE("a huge declared array count in five bytes is refused without allocating",
          huge_count)
{
    CHECK(t_decode_fails("\xdd\xff\xff\xff\xff", 5, WEFT_EMALFORMED));
    CHECK(t_decode_fails("\xdf\xff\xff\xff\xff", 5, WEFT_EMALFORMED));
    CHECK(t_decode_fails("\xc6\xff\xff\xff\xff", 5, WEFT_EMALFORMED));
    CHECK(t_decode_fails("\x91\xdd\x7f\xff\xff\xff", 6, WEFT_EMALFORMED));
}

TEST_CASE("trailing bytes after one object are refused", trailing_bytes)
{
    CHECK(t_decode_fails("\x01\x02", 2, WEFT_EMALFORMED));
    CHECK(t_decode_fails("\x80\x00", 2, WEFT_EMALFORMED));
    CHECK(t_decode_fails("\xa1x\xc0", 3, WEFT_EMALFORMED));
}

TEST_CASE("empty input and reserved type bytes are malformed", other_malformed)
{
    CHECK(t_decode_fails("", 0, WEFT_EMALFORMED));
    CHECK(t_decode_fails(NULL, 0, WEFT_EMALFORMED));
    CHECK(t_decode_fails("\xc1", 1, WEFT_EMALFORMED));
    CHECK(t_decode_fails("\x92\x01\xc1", 3, WEFT_EMALFORMED));
}

TEST_CASE("nesting beyond what the unpacker handles is malformed, up to it decodes",
          unpack_depth)
{
    uint8_t buf[80];
    /* JSON_MP_UNPACK_DEPTH arrays around 1 */
    memset(buf, 0x91, JSON_MP_UNPACK_DEPTH);
    buf[JSON_MP_UNPACK_DEPTH] = 0x01;
    int err = 1;
    json_t *j = json_mp_to_json(buf, JSON_MP_UNPACK_DEPTH + 1, &err);
    CHECK(j != NULL);
    CHECK_EQ_INT(err, 0);
    json_decref(j);
    /* one more level, innermost empty: passes the guard, the unpacker refuses */
    memset(buf, 0x91, JSON_MP_UNPACK_DEPTH);
    buf[JSON_MP_UNPACK_DEPTH] = 0x90;
    CHECK(t_decode_fails(buf, JSON_MP_UNPACK_DEPTH + 1, WEFT_EMALFORMED));
    /* clearly deeper */
    memset(buf, 0x91, 70);
    buf[70] = 0x01;
    CHECK(t_decode_fails(buf, 71, WEFT_EMALFORMED));
}

TEST_CASE("random bytes never crash the decoder", random_bytes)
{
    uint32_t x = 2463534242u;
    uint8_t buf[64];
    for (int round = 0; round < 20000; round++) {
        size_t n = (size_t)(x % sizeof(buf)) + 1;
        for (size_t i = 0; i < n; i++) {
            x ^= x << 13, x ^= x >> 17, x ^= x << 5;
            buf[i] = (uint8_t)x;
        }
        int err = 1;
        json_t *j = json_mp_to_json(buf, n, &err);
        CHECK(j ? err == 0 : err == WEFT_EMALFORMED);
        json_decref(j);
    }
}

/* ---- JSON text errors --------------------------------------------------------------------- */

TEST_CASE("a JSON parse error reports line and column", parse_error_position)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    const char *text = "{\n  \"a\": 1,\n  \"b\": }";
    char err[200];
    int rc = json_mp_from_text(text, strlen(text), &sb, err, sizeof(err));
    size_t size = sb.size;
    msgpack_sbuffer_destroy(&sb);
    CHECK_EQ_INT(rc, WEFT_EINVAL);
    CHECK_EQ_INT(size, 0);
    CHECK(strncmp(err, "line 3 column 8: ", 17) == 0);
    CHECK(strlen(err) > 17);
}

TEST_CASE("bad JSON text is refused, and the message fits a small buffer", parse_error_misc)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    char err[200];
    CHECK_EQ_INT(json_mp_from_text("", 0, &sb, err, sizeof(err)), WEFT_EINVAL);
    CHECK(strncmp(err, "line ", 5) == 0);
    CHECK_EQ_INT(json_mp_from_text("[1,2", 4, &sb, err, sizeof(err)), WEFT_EINVAL);
    CHECK(strstr(err, "column") != NULL);
    CHECK_EQ_INT(json_mp_from_text("1 2", 3, &sb, err, sizeof(err)), WEFT_EINVAL);
    CHECK_EQ_INT(json_mp_from_text("18446744073709551615", 20, &sb, err, sizeof(err)),
                 WEFT_EINVAL);
    CHECK(strstr(err, "$uint64") != NULL);
    char tiny[8];
    CHECK_EQ_INT(json_mp_from_text("{x}", 3, &sb, tiny, sizeof(tiny)), WEFT_EINVAL);
    CHECK_EQ_INT(strlen(tiny), 7);
    CHECK_EQ_INT(json_mp_from_text("{x}", 3, &sb, NULL, 0), WEFT_EINVAL);
    /* length is honoured: the text need not be NUL-terminated */
    CHECK_EQ_INT(json_mp_from_text("[7]garbage", 3, &sb, err, sizeof(err)), 0);
    CHECK_STR(err, "");
    CHECK_EQ_INT(sb.size, 2);
    msgpack_sbuffer_destroy(&sb);
}

/* ---- base64 ------------------------------------------------------------------------------- */

TEST_CASE("base64 matches the RFC 4648 test vectors", base64_vectors)
{
    static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const coded[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=",
                                        "Zm9vYmFy"};
    for (int i = 0; i < 7; i++) {
        char *s = json_mp_base64(plain[i], strlen(plain[i]));
        int same = s && strcmp(s, coded[i]) == 0;
        free(s);
        CHECK(same);
        uint8_t *out = NULL;
        size_t n = 0;
        CHECK_EQ_INT(json_mp_unbase64(coded[i], &out, &n), 0);
        same = out && n == strlen(plain[i]) && memcmp(out, plain[i], n) == 0;
        free(out);
        CHECK(same);
    }
}

TEST_CASE("base64 round trips every length from 0 to 64", base64_roundtrip)
{
    uint8_t data[64];
    for (int i = 0; i < 64; i++)
        data[i] = (uint8_t)(i * 37 + 250);
    for (size_t len = 0; len <= 64; len++) {
        char *s = json_mp_base64(data, len);
        CHECK(s != NULL);
        size_t slen = strlen(s);
        uint8_t *out = NULL;
        size_t n = 99;
        int rc = json_mp_unbase64(s, &out, &n);
        free(s);
        int same = rc == 0 && out != NULL && n == len && memcmp(out, data, len) == 0;
        free(out);
        CHECK_EQ_INT(slen, (len + 2) / 3 * 4);
        CHECK(same);
    }
}

TEST_CASE("base64 input may be unpadded or wrapped with whitespace", base64_lenient)
{
    uint8_t *out = NULL;
    size_t n = 0;
    CHECK_EQ_INT(json_mp_unbase64("Zm9vYg", &out, &n), 0);
    CHECK(n == 4 && memcmp(out, "foob", 4) == 0);
    free(out);
    CHECK_EQ_INT(json_mp_unbase64(" Zm9v\r\nYmFy\n", &out, &n), 0);
    CHECK(n == 6 && memcmp(out, "foobar", 6) == 0);
    free(out);
    CHECK_EQ_INT(json_mp_unbase64("Zg= =\n", &out, &n), 0);
    CHECK(n == 1 && out[0] == 'f');
    free(out);
    CHECK_EQ_INT(json_mp_unbase64("+/+/", &out, &n), 0);
    CHECK(n == 3 && memcmp(out, "\xfb\xff\xbf", 3) == 0);
    free(out);
}

TEST_CASE("base64 input with bad characters or padding is refused", base64_rejects)
{
    static const char *const bad[] = {
        "Zm9v!", "Zm9v-_", "Zm 9v.", "Zg=a", "Z", "Zm9vY", "Zg===", "Zg=", "=Zg", "Zm9v=",
        "Zm8==", "====", "Zm9v\x80", "Zm9v\tYg=\x01", "Zg==Zg==",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint8_t *out = (uint8_t *)1;
        size_t n = 5;
        int rc = json_mp_unbase64(bad[i], &out, &n);
        if (rc != WEFT_EINVAL)
            fprintf(stderr, "  accepted \"%s\"\n", bad[i]);
        CHECK_EQ_INT(rc, WEFT_EINVAL);
        CHECK(out == NULL && n == 0);
    }
}

int main(void)
{
    RUN_CASE("a nested document survives JSON to msgpack and back unchanged", nested_roundtrip);
    RUN_CASE("top-level scalars round trip", scalar_roundtrip);
    RUN_CASE("unicode strings and keys round trip, including NUL and astral characters",
             unicode_roundtrip);
    RUN_CASE("large and negative integers round trip exactly", integer_roundtrip);
    RUN_CASE("UINT64_MAX decodes as a $uint64 tag that packs back to the same uint64",
             uint64_max_roundtrip);
    RUN_CASE("floats round trip exactly and pack as float64", float_roundtrip);
    RUN_CASE("non-finite floats decode as the strings NaN, Infinity and -Infinity",
             float_special);
    RUN_CASE("empty object and empty array round trip and pack minimally", empty_containers);
    RUN_CASE("JSON values pack to the expected msgpack types", pack_types);
    RUN_CASE("packing appends to the buffer and leaves it unchanged on error", pack_appends);
    RUN_CASE("nesting up to the depth limit packs and deeper is refused", pack_depth);
    RUN_CASE("NULL arguments are refused with WEFT_EINVAL", null_arguments);
    RUN_CASE("bin decodes as a $base64 object", bin_as_base64);
    RUN_CASE("a str that is not valid UTF-8 decodes as a $base64 object", invalid_utf8_str);
    RUN_CASE("ext decodes as an object with $ext type and $base64 data", ext_as_tag);
    RUN_CASE("map keys that are not strings become their JSON text", non_string_keys);
    RUN_CASE("truncated msgpack gives NULL and WEFT_EMALFORMED", truncated);
    RUN_CASE("a huge declared array count in five bytes is refused without allocating",
             huge_count);
    RUN_CASE("trailing bytes after one object are refused", trailing_bytes);
    RUN_CASE("empty input and reserved type bytes are malformed", other_malformed);
    RUN_CASE("nesting beyond what the unpacker handles is malformed, up to it decodes",
             unpack_depth);
    RUN_CASE("random bytes never crash the decoder", random_bytes);
    RUN_CASE("a JSON parse error reports line and column", parse_error_position);
    RUN_CASE("bad JSON text is refused, and the message fits a small buffer", parse_error_misc);
    RUN_CASE("base64 matches the RFC 4648 test vectors", base64_vectors);
    RUN_CASE("base64 round trips every length from 0 to 64", base64_roundtrip);
    RUN_CASE("base64 input may be unpadded or wrapped with whitespace", base64_lenient);
    RUN_CASE("base64 input with bad characters or padding is refused", base64_rejects);
    return TEST_EXIT();
}

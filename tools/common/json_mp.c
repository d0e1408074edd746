/*  json_mp.c - see json_mp.h. JSON <-> msgpack for the command line tools.

    Packing walks a jansson tree with a msgpack_packer writing into the caller's sbuffer.
    Unpacking first checks the bytes with mp_guard_check (so msgpack-c never allocates for sizes
    the input does not back), unpacks one object with msgpack_unpack_next and converts the
    resulting msgpack_object tree into jansson values. Both walks are recursive; their depth is
    bounded by JSON_MP_MAX_DEPTH and by the unpacker respectively.
*/
#include "json_mp.h"

#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mp_guard.h"
#include "weft/error.h"

#define UINT64_TAG "$uint64"
#define BASE64_TAG "$base64"
#define EXT_TAG "$ext"

/* ---- base64 ----------------------------------------------------------------------------- */

static const char s_b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *json_mp_base64(const void *data, size_t size)
{
    if (!data && size)
        return NULL;
    if (size / 3 >= (SIZE_MAX - 8) / 4)
        return NULL;
    const uint8_t *p = data;
    char *s = malloc((size + 2) / 3 * 4 + 1);
    if (!s)
        return NULL;
    size_t o = 0, i = 0;
    for (; i + 3 <= size; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        s[o++] = s_b64[v >> 18];
        s[o++] = s_b64[(v >> 12) & 63];
        s[o++] = s_b64[(v >> 6) & 63];
        s[o++] = s_b64[v & 63];
    }
    if (size - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        s[o++] = s_b64[v >> 18];
        s[o++] = s_b64[(v >> 12) & 63];
        s[o++] = '=';
        s[o++] = '=';
    } else if (size - i == 2) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        s[o++] = s_b64[v >> 18];
        s[o++] = s_b64[(v >> 12) & 63];
        s[o++] = s_b64[(v >> 6) & 63];
        s[o++] = '=';
    }
    s[o] = '\0';
    return s;
}

/* Value of a base64 character, or -1. */
static int s_b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

static bool s_is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int json_mp_unbase64(const char *text, uint8_t **out, size_t *out_size)
{
    if (out)
        *out = NULL;
    if (out_size)
        *out_size = 0;
    if (!text || !out || !out_size)
        return WEFT_EINVAL;
    size_t len = strlen(text);
    uint8_t *buf = malloc(len / 4 * 3 + 3);
    if (!buf)
        return WEFT_ENOMEM;

    size_t o = 0;       /* bytes written */
    size_t chars = 0;   /* alphabet characters seen */
    size_t pads = 0;    /* '=' seen */
    uint32_t acc = 0;
    unsigned bits = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (s_is_space(c))
            continue;
        if (c == '=') {
            pads++;
            continue;
        }
        int v = s_b64_value(c);
        if (v < 0 || pads)              /* foreign character, or data after padding */
            goto invalid;
        chars++;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[o++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    /* A final group of 1 character cannot encode a byte; padding, when present, must complete
       the final group to 4 characters. */
    size_t tail = chars % 4;
    if (tail == 1)
        goto invalid;
    if (pads && (tail == 0 || pads != 4 - tail))
        goto invalid;
    *out = buf;
    *out_size = o;
    return 0;

invalid:
    free(buf);
    return WEFT_EINVAL;
}

/* ---- JSON -> msgpack -------------------------------------------------------------------- */

/* True when obj is {"$uint64": "<canonical decimal above INT64_MAX>"}; sets *value. */
static bool s_uint64_tag(const json_t *obj, uint64_t *value)
{
    if (json_object_size(obj) != 1)
        return false;
    const json_t *v = json_object_getn(obj, UINT64_TAG, sizeof(UINT64_TAG) - 1);
    if (!v || !json_is_string(v))
        return false;
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (n == 0 || n > 20 || s[0] == '0')
        return false;
    uint64_t u = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        unsigned d = (unsigned)(s[i] - '0');
        if (u > (UINT64_MAX - d) / 10)
            return false;
        u = u * 10 + d;
    }
    if (u <= (uint64_t)INT64_MAX)
        return false;
    *value = u;
    return true;
}

static int s_pack(msgpack_packer *pk, const json_t *j, unsigned depth)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        uint64_t u;
        if (s_uint64_tag(j, &u))
            return msgpack_pack_uint64(pk, u) ? WEFT_ENOMEM : 0;
        if (depth >= JSON_MP_MAX_DEPTH)
            return WEFT_EINVAL;
        size_t n = json_object_size(j);
        if (n > UINT32_MAX)
            return WEFT_EINVAL;
        if (msgpack_pack_map(pk, n))
            return WEFT_ENOMEM;
        /* jansson's iterator API takes a non-const object; it does not modify it. */
        json_t *obj = (json_t *)j;
        for (void *it = json_object_iter(obj); it; it = json_object_iter_next(obj, it)) {
            const char *key = json_object_iter_key(it);
            size_t klen = json_object_iter_key_len(it);
            if (msgpack_pack_str(pk, klen) || msgpack_pack_str_body(pk, key, klen))
                return WEFT_ENOMEM;
            int rc = s_pack(pk, json_object_iter_value(it), depth + 1);
            if (rc)
                return rc;
        }
        return 0;
    }
    case JSON_ARRAY: {
        if (depth >= JSON_MP_MAX_DEPTH)
            return WEFT_EINVAL;
        size_t n = json_array_size(j);
        if (n > UINT32_MAX)
            return WEFT_EINVAL;
        if (msgpack_pack_array(pk, n))
            return WEFT_ENOMEM;
        for (size_t i = 0; i < n; i++) {
            int rc = s_pack(pk, json_array_get(j, i), depth + 1);
            if (rc)
                return rc;
        }
        return 0;
    }
    case JSON_STRING: {
        size_t n = json_string_length(j);
        if (n > UINT32_MAX)
            return WEFT_EINVAL;
        if (msgpack_pack_str(pk, n) || msgpack_pack_str_body(pk, json_string_value(j), n))
            return WEFT_ENOMEM;
        return 0;
    }
    case JSON_INTEGER: {
        json_int_t v = json_integer_value(j);
        int rc = v >= 0 ? msgpack_pack_uint64(pk, (uint64_t)v) : msgpack_pack_int64(pk, (int64_t)v);
        return rc ? WEFT_ENOMEM : 0;
    }
    case JSON_REAL:
        return msgpack_pack_double(pk, json_real_value(j)) ? WEFT_ENOMEM : 0;
    case JSON_TRUE:
        return msgpack_pack_true(pk) ? WEFT_ENOMEM : 0;
    case JSON_FALSE:
        return msgpack_pack_false(pk) ? WEFT_ENOMEM : 0;
    case JSON_NULL:
        return msgpack_pack_nil(pk) ? WEFT_ENOMEM : 0;
    }
    return WEFT_EINVAL;
}

int json_mp_from_json(const json_t *json, msgpack_sbuffer *out)
{
    if (!json || !out)
        return WEFT_EINVAL;
    size_t mark = out->size;
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    int rc = s_pack(&pk, json, 0);
    if (rc)
        out->size = mark;
    return rc;
}

static void s_set_err(char *err, size_t errcap, const char *msg)
{
    if (err && errcap)
        snprintf(err, errcap, "%s", msg);
}

int json_mp_from_text(const char *text, size_t len, msgpack_sbuffer *out, char *err,
                      size_t errcap)
{
    s_set_err(err, errcap, "");
    if (!text || !out) {
        s_set_err(err, errcap, "no input");
        return WEFT_EINVAL;
    }
    json_error_t je;
    json_t *j = json_loadb(text, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (!j) {
        enum json_error_code code = json_error_code(&je);
        if (code == json_error_out_of_memory) {
            s_set_err(err, errcap, "out of memory");
            return WEFT_ENOMEM;
        }
        if (err && errcap) {
            const char *hint = "";
            if (code == json_error_numeric_overflow && strstr(je.text, "integer"))
                hint = " (write integers above 9223372036854775807 as {\"$uint64\": \"...\"})";
            if (je.line >= 0)
                snprintf(err, errcap, "line %d column %d: %s%s", je.line, je.column, je.text,
                         hint);
            else
                snprintf(err, errcap, "%s%s", je.text, hint);
        }
        return WEFT_EINVAL;
    }
    int rc = json_mp_from_json(j, out);
    json_decref(j);
    if (rc == WEFT_EINVAL && err && errcap)
        snprintf(err, errcap, "nested deeper than %d levels", JSON_MP_MAX_DEPTH);
    else if (rc == WEFT_ENOMEM)
        s_set_err(err, errcap, "out of memory");
    return rc;
}

/* ---- msgpack -> JSON -------------------------------------------------------------------- */

/* Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF. NUL is allowed. */
static bool s_utf8_valid(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t k;
        uint32_t cp, min;
        if (c >= 0xc2 && c <= 0xdf) {
            k = 1, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            k = 2, cp = c & 0x0f, min = 0x800;
        } else if (c >= 0xf0 && c <= 0xf4) {
            k = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if (n - i - 1 < k)
            return false;
        for (size_t m = 1; m <= k; m++) {
            uint8_t d = s[i + m];
            if ((d & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (d & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += k + 1;
    }
    return true;
}

/* {"$base64": ...}, with "$ext": type first when ext is true. NULL when memory runs out. */
static json_t *s_tagged_bytes(const char *ptr, size_t size, bool ext, int8_t type)
{
    char *b64 = json_mp_base64(ptr, size);
    if (!b64)
        return NULL;
    json_t *obj = json_object();
    json_t *s = json_string_nocheck(b64);
    free(b64);
    if (!obj || !s)
        goto fail;
    if (ext && json_object_set_new_nocheck(obj, EXT_TAG, json_integer(type)))
        goto fail;
    if (json_object_set_new_nocheck(obj, BASE64_TAG, s)) {
        s = NULL;                       /* consumed by the failed call */
        goto fail;
    }
    return obj;
fail:
    json_decref(s);
    json_decref(obj);
    return NULL;
}

static json_t *s_to_json(const msgpack_object *o);

static json_t *s_real(double d)
{
    if (isnan(d))
        return json_string("NaN");
    if (isinf(d))
        return json_string(d > 0 ? "Infinity" : "-Infinity");
    return json_real(d);
}

/* msgpack-c may leave the pointer of a zero-length str/bin/ext NULL; jansson wants a pointer. */
static const char *s_ptr(const char *p)
{
    return p ? p : "";
}

/* Adds val (reference stolen, also on failure) to obj under the JSON rendering of key k.
   Returns 0 or -1 (out of memory). */
static int s_set_member(json_t *obj, const msgpack_object *k, json_t *val)
{
    char num[32];
    switch (k->type) {
    case MSGPACK_OBJECT_STR:
        if (s_utf8_valid((const uint8_t *)k->via.str.ptr, k->via.str.size))
            return json_object_setn_new_nocheck(obj, s_ptr(k->via.str.ptr), k->via.str.size,
                                                val);
        break;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        snprintf(num, sizeof(num), "%" PRIu64, k->via.u64);
        return json_object_set_new_nocheck(obj, num, val);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        snprintf(num, sizeof(num), "%" PRId64, k->via.i64);
        return json_object_set_new_nocheck(obj, num, val);
    default:
        break;
    }
    /* Any other key: its JSON value, as text unless that value already is a string. */
    json_t *kj = s_to_json(k);
    if (!kj) {
        json_decref(val);
        return -1;
    }
    int rc;
    if (json_is_string(kj)) {
        rc = json_object_setn_new_nocheck(obj, json_string_value(kj), json_string_length(kj),
                                          val);
    } else {
        char *text = json_dumps(kj, JSON_COMPACT | JSON_ENCODE_ANY);
        if (text)
            rc = json_object_set_new_nocheck(obj, text, val);
        else {
            json_decref(val);
            rc = -1;
        }
        free(text);
    }
    json_decref(kj);
    return rc;
}

/* Converts one unpacked object; NULL means out of memory (the input was already validated). */
static json_t *s_to_json(const msgpack_object *o)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        return json_null();
    case MSGPACK_OBJECT_BOOLEAN:
        return json_boolean(o->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER: {
        if (o->via.u64 <= (uint64_t)INT64_MAX)
            return json_integer((json_int_t)o->via.u64);
        char num[32];
        snprintf(num, sizeof(num), "%" PRIu64, o->via.u64);
        return json_pack("{s:s}", UINT64_TAG, num);
    }
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return json_integer((json_int_t)o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return s_real(o->via.f64);
    case MSGPACK_OBJECT_STR:
        if (s_utf8_valid((const uint8_t *)o->via.str.ptr, o->via.str.size))
            return json_stringn_nocheck(s_ptr(o->via.str.ptr), o->via.str.size);
        return s_tagged_bytes(o->via.str.ptr, o->via.str.size, false, 0);
    case MSGPACK_OBJECT_BIN:
        return s_tagged_bytes(o->via.bin.ptr, o->via.bin.size, false, 0);
    case MSGPACK_OBJECT_EXT:
        return s_tagged_bytes(o->via.ext.ptr, o->via.ext.size, true, o->via.ext.type);
    case MSGPACK_OBJECT_ARRAY: {
        json_t *arr = json_array();
        if (!arr)
            return NULL;
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            json_t *v = s_to_json(&o->via.array.ptr[i]);
            if (!v || json_array_append_new(arr, v)) {
                json_decref(arr);
                return NULL;
            }
        }
        return arr;
    }
    case MSGPACK_OBJECT_MAP: {
        json_t *obj = json_object();
        if (!obj)
            return NULL;
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            const msgpack_object_kv *kv = &o->via.map.ptr[i];
            json_t *v = s_to_json(&kv->val);
            if (!v || s_set_member(obj, &kv->key, v)) {
                json_decref(obj);
                return NULL;
            }
        }
        return obj;
    }
    }
    return NULL;
}

json_t *json_mp_to_json(const void *data, size_t size, int *err)
{
    int dummy;
    if (!err)
        err = &dummy;
    *err = 0;
    if (!data && size) {
        *err = WEFT_EINVAL;
        return NULL;
    }
    if (mp_guard_check(data, size, JSON_MP_UNPACK_DEPTH, NULL)) {
        *err = WEFT_EMALFORMED;
        return NULL;
    }
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    json_t *result = NULL;
    msgpack_unpack_return r = msgpack_unpack_next(&u, data, size, &off);
    if (r == MSGPACK_UNPACK_SUCCESS && off == size) {
        result = s_to_json(&u.data);
        if (!result)
            *err = WEFT_ENOMEM;
    } else if (r == MSGPACK_UNPACK_NOMEM_ERROR &&
               mp_guard_check(data, size, JSON_MP_UNPACK_DEPTH - 1, NULL) == 0) {
        /* msgpack-c also reports nesting beyond its fixed stack as NOMEM (the guard above lets
           one empty container through below JSON_MP_UNPACK_DEPTH full ones). Input shallow
           enough for that stack really did run out of memory. */
        *err = WEFT_ENOMEM;
    } else {
        *err = WEFT_EMALFORMED;
    }
    msgpack_unpacked_destroy(&u);
    return result;
}

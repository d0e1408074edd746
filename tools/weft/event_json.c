/*  event_json.c - formats an event as one compact JSON line (event_json.h), for `weft sub`,
    `weft replay` and `weft get`. */
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event_json.h"
#include "json_mp.h"

#define CT_MSGPACK "application/msgpack"

static void s_put(event_json_t *t, const char *s, size_t n)
{
    if (t->oom)
        return;
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 1024;
        while (t->len + n + 1 > cap)
            cap *= 2;
        char *data = realloc(t->data, cap);
        if (!data) {
            t->oom = true;
            return;
        }
        t->data = data;
        t->cap = cap;
    }
    memcpy(t->data + t->len, s, n);
    t->len += n;
    t->data[t->len] = 0;
}

static void s_puts(event_json_t *t, const char *s)
{
    s_put(t, s, strlen(s));
}

/*  Length of the valid UTF-8 sequence at s (at most n bytes), or 0 if it is not one. */
static size_t s_utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    unsigned min;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2, min = 0x80;
    else if (c >= 0xe0 && c <= 0xef)
        len = 3, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4, min = 0x10000;
    else
        return 0;
    if (len > n)
        return 0;
    unsigned cp = c & (0x3f >> (len - 1));
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

/*  Appends s as a JSON string. Bytes that are not UTF-8 (the fields come from the network)
    become U+FFFD, so every line stays valid JSON. */
static void s_put_jstr(event_json_t *t, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    s_put(t, "\"", 1);
    size_t i = 0;
    while (i < n) {
        size_t run = i;
        while (run < n && p[run] >= 0x20 && p[run] < 0x80 && p[run] != '"' && p[run] != '\\')
            run++;
        s_put(t, s + i, run - i);
        i = run;
        if (i >= n)
            break;
        unsigned char c = p[i];
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\', esc[1] = (char)c;
            s_put(t, esc, 2);
            i++;
        } else if (c < 0x20) {
            static const char *named = "\b\f\n\r\t";
            const char *hit = c ? strchr(named, c) : NULL;
            if (hit) {
                esc[0] = '\\', esc[1] = "bfnrt"[hit - named];
                s_put(t, esc, 2);
            } else {
                snprintf(esc, sizeof(esc), "\\u%04x", c);
                s_put(t, esc, 6);
            }
            i++;
        } else {
            size_t len = s_utf8_len(p + i, n - i);
            if (len) {
                s_put(t, s + i, len);
                i += len;
            } else {
                s_puts(t, "\\ufffd");
                i++;
            }
        }
    }
    s_put(t, "\"", 1);
}

static void s_put_key(event_json_t *t, bool *first, const char *key)
{
    if (!*first)
        s_put(t, ",", 1);
    *first = false;
    s_put(t, "\"", 1);
    s_puts(t, key);
    s_put(t, "\":", 2);
}

static void s_put_kv_str(event_json_t *t, bool *first, const char *key, const char *val)
{
    s_put_key(t, first, key);
    s_put_jstr(t, val, strlen(val));
}

static void s_put_kv_num(event_json_t *t, bool *first, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void s_put_kv_num(event_json_t *t, bool *first, const char *key, const char *fmt, ...)
{
    char num[32];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(num, sizeof(num), fmt, ap);
    va_end(ap);
    s_put_key(t, first, key);
    s_puts(t, num);
}

static int s_put_header(const char *key, size_t klen, const char *val, size_t vlen, void *arg)
{
    event_json_t *t = arg;
    if (t->oom)
        return 1;
    if (t->data[t->len - 1] != '{')
        s_put(t, ",", 1);
    s_put_jstr(t, key, klen);
    s_put(t, ":", 1);
    s_put_jstr(t, val, vlen);
    return 0;
}

void event_json_format(event_json_t *t, unsigned fields, const event_json_src_t *ev)
{
    const weft_envelope_t *env = ev->env;
    bool first = true;
    t->len = 0;
    t->oom = false;
    s_put(t, "{", 1);
    if (fields & EVENT_JSON_OFFSET)
        s_put_kv_num(t, &first, "offset", "%" PRIu64, ev->offset);
    if (fields & EVENT_JSON_TOPIC) {
        s_put_key(t, &first, "topic");
        s_put_jstr(t, ev->topic, ev->topic_size);
    }
    if (fields & EVENT_JSON_ID) {
        char id[WEFT_ID_STR];
        s_put_kv_str(t, &first, "id", weft_id_format(env->id, id));
    }
    if (fields & EVENT_JSON_SRC)
        s_put_kv_str(t, &first, "src", env->src);
    if (fields & EVENT_JSON_INST)
        s_put_kv_num(t, &first, "inst", "%" PRIu64, env->inst);
    if (fields & EVENT_JSON_SEQ)
        s_put_kv_num(t, &first, "seq", "%" PRIu64, env->seq);
    if (fields & EVENT_JSON_TS)
        s_put_kv_num(t, &first, "ts", "%" PRId64, env->ts);
    if (fields & EVENT_JSON_RECV_TS)
        s_put_kv_num(t, &first, "recv_ts", "%" PRId64, ev->recv_ts);
    if (fields & EVENT_JSON_VER)
        s_put_kv_num(t, &first, "ver", "%" PRIu32, env->ver);
    if ((fields & EVENT_JSON_CORR) && env->corr[0])
        s_put_kv_str(t, &first, "corr", env->corr);
    if ((fields & EVENT_JSON_TRACE) && env->trace[0])
        s_put_kv_str(t, &first, "trace", env->trace);
    if ((fields & EVENT_JSON_REPLY) && env->reply[0])
        s_put_kv_str(t, &first, "reply", env->reply);
    if ((fields & EVENT_JSON_TENANT) && env->tenant[0])
        s_put_kv_str(t, &first, "tenant", env->tenant);
    if ((fields & EVENT_JSON_RETRY) && env->retry)
        s_put_kv_num(t, &first, "retry", "%" PRIu32, env->retry);
    bool msgpack = env->ct[0] == 0 || strcmp(env->ct, CT_MSGPACK) == 0;
    if ((fields & EVENT_JSON_CT) && !msgpack)
        s_put_kv_str(t, &first, "ct", env->ct);
    if ((fields & EVENT_JSON_H) && env->h_count) {
        s_put_key(t, &first, "h");
        s_put(t, "{", 1);
        weft_envelope_headers_each(env, s_put_header, t);
        s_put(t, "}", 1);
    }
    if (fields & EVENT_JSON_PAYLOAD) {
        json_t *json = msgpack ? json_mp_to_json(ev->payload, ev->payload_size, NULL) : NULL;
        char *text = json ? json_dumps(json, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
        if (text) {
            s_put_key(t, &first, "payload");
            s_puts(t, text);
        } else {
            char *b64 = json_mp_base64(ev->payload, ev->payload_size);
            s_put_kv_str(t, &first, "payload_base64", b64 ? b64 : "");
            free(b64);
        }
        free(text);
        json_decref(json);
    }
    s_put(t, "}\n", 2);
}

void event_json_free(event_json_t *t)
{
    free(t->data);
    t->data = NULL;
    t->len = t->cap = 0;
    t->oom = false;
}

/*  fuzz_envelope.c - libFuzzer target for the envelope decoder and the msgpack guard.

    Each input goes to mp_guard_check, weft_envelope_decode and the reference decoder that
    envelope.c builds with WEFT_ENVELOPE_REFERENCE (msgpack-c's object tree behind the guard).
    Properties checked (abort() on violation, so libFuzzer records the input as a crash):
      - decode returns only OK, EMALFORMED, ETOOBIG or EVERSION;
      - decode and the reference decoder return the same code and, on success, the same
        fields (h_raw and h_raw_size included);
      - anything decode accepts also passes the guard;
      - whatever the guard passes (within msgpack-c's own nesting limit) unpacks with msgpack-c
        as exactly one object using every byte;
      - a decoded envelope re-encodes, the encoding decodes again, and every field (headers
        included) comes back equal; re-encoding that again gives the same bytes;
      - encoding it the publish path's way (a prefix for src/inst, then id, seq, ts and the
        optional fields) gives the same bytes as weft_envelope_encode.
*/
#include <msgpack.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mp_guard.h"
#include "weft/envelope.h"
#include "weft/error.h"

/*  Defined in src/envelope.c (internal interface; the reference decoder only with
    WEFT_ENVELOPE_REFERENCE). */
int envelope_decode_reference(weft_envelope_t *env, const void *data, size_t size);
int envelope_prefix_encode(uint8_t *out, size_t cap, const char *src, uint64_t inst);
int envelope_encode_prefixed(uint8_t *buf, size_t cap, const uint8_t *prefix, size_t prefix_len,
                             const uint8_t id[WEFT_ID_SIZE], uint64_t seq, int64_t ts,
                             const weft_envelope_t *opt);

#define FAIL(what)                                                                              \
    do {                                                                                        \
        fprintf(stderr, "fuzz_envelope: %s (line %d)\n", what, __LINE__);                      \
        abort();                                                                                \
    } while (0)

/* Headers of a decoded envelope, copied out NUL-terminated. */
typedef struct {
    char *keys[WEFT_HEADERS_MAX];
    char *vals[WEFT_HEADERS_MAX];
    size_t klen[WEFT_HEADERS_MAX];
    size_t vlen[WEFT_HEADERS_MAX];
    size_t n;
} headers_t;

static char *s_dup(const char *p, size_t n)
{
    char *s = malloc(n + 1);
    if (!s)
        abort();
    memcpy(s, p, n);
    s[n] = 0;
    return s;
}

static int s_collect(const char *k, size_t kl, const char *v, size_t vl, void *arg)
{
    headers_t *h = arg;
    if (h->n >= WEFT_HEADERS_MAX)
        FAIL("more headers than h_count allows");
    h->keys[h->n] = s_dup(k, kl);
    h->vals[h->n] = s_dup(v, vl);
    h->klen[h->n] = kl;
    h->vlen[h->n] = vl;
    h->n++;
    return 0;
}

static void s_headers_free(headers_t *h)
{
    for (size_t i = 0; i < h->n; i++) {
        free(h->keys[i]);
        free(h->vals[i]);
    }
    h->n = 0;
}

static void s_headers_equal(const headers_t *a, const headers_t *b)
{
    if (a->n != b->n)
        FAIL("header count differs after the round trip");
    for (size_t i = 0; i < a->n; i++)
        if (a->klen[i] != b->klen[i] || a->vlen[i] != b->vlen[i] ||
            memcmp(a->keys[i], b->keys[i], a->klen[i]) != 0 ||
            memcmp(a->vals[i], b->vals[i], a->vlen[i]) != 0)
            FAIL("a header differs after the round trip");
}

static void s_fields_equal(const weft_envelope_t *a, const weft_envelope_t *b)
{
    if (a->v != b->v)
        FAIL("v differs");
    if (memcmp(a->id, b->id, WEFT_ID_SIZE) != 0)
        FAIL("id differs");
    if (strcmp(a->src, b->src) != 0)
        FAIL("src differs");
    if (a->inst != b->inst)
        FAIL("inst differs");
    if (a->seq != b->seq)
        FAIL("seq differs");
    if (a->ts != b->ts)
        FAIL("ts differs");
    if (a->ver != b->ver)
        FAIL("ver differs");
    if (strcmp(a->corr, b->corr) != 0)
        FAIL("corr differs");
    if (strcmp(a->trace, b->trace) != 0)
        FAIL("trace differs");
    if (strcmp(a->reply, b->reply) != 0)
        FAIL("reply differs");
    if (strcmp(a->tenant, b->tenant) != 0)
        FAIL("tenant differs");
    if (a->retry != b->retry)
        FAIL("retry differs");
    if (strcmp(a->ct, b->ct) != 0)
        FAIL("ct differs");
    if (a->h_count != b->h_count)
        FAIL("h_count differs");
}

/* What the reference decoder gives, against what the direct decoder gave (rc, env). */
static void s_check_reference(const uint8_t *data, size_t size, int rc, const weft_envelope_t *env)
{
    weft_envelope_t ref;
    memset(&ref, 0x5a, sizeof(ref));
    int ref_rc = envelope_decode_reference(&ref, data, size);
    if (ref_rc != rc) {
        fprintf(stderr, "decode %d, reference %d\n", rc, ref_rc);
        FAIL("decode and the reference decoder disagree");
    }
    if (rc != WEFT_OK)
        return;
    s_fields_equal(env, &ref);
    if (env->h_raw != ref.h_raw || env->h_raw_size != ref.h_raw_size || env->h_keys != NULL ||
        env->h_values != NULL || ref.h_keys != NULL || ref.h_values != NULL)
        FAIL("raw headers differ from the reference decoder's");
}

static uint8_t s_prefix[320];
static uint8_t s_enc3[WEFT_ENVELOPE_MAX];

static uint8_t s_enc1[WEFT_ENVELOPE_MAX];
static uint8_t s_enc2[WEFT_ENVELOPE_MAX];

static void s_check_guard(const uint8_t *data, size_t size)
{
    const char *why = NULL;
    int g = mp_guard_check(data, size, MP_GUARD_DEPTH_DEFAULT, &why);
    if (g != 0) {
        if (g != WEFT_EMALFORMED || why == NULL)
            FAIL("guard rejected without EMALFORMED and a reason");
        return;
    }
    if (why != NULL)
        FAIL("guard passed but gave a reason");
    /* msgpack-c allocates up to ~48 bytes per declared element: keep the run cheap. */
    if (size > WEFT_ENVELOPE_MAX)
        return;
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    int rc = msgpack_unpack_next(&u, (const char *)data, size, &off);
    msgpack_unpacked_destroy(&u);
    if (rc != MSGPACK_UNPACK_SUCCESS || off != size)
        FAIL("guard passed input that msgpack-c does not unpack as one whole object");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Decode from an exact-size copy so any read past the end is caught. */
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    if (size)
        memcpy(copy, data, size);

    s_check_guard(copy, size);

    weft_envelope_t env;
    memset(&env, 0xa5, sizeof(env)); /* so that a field decode does not set shows */
    int rc = weft_envelope_decode(&env, copy, size);
    if (rc != WEFT_OK && rc != WEFT_EMALFORMED && rc != WEFT_ETOOBIG && rc != WEFT_EVERSION)
        FAIL("decode returned an undocumented code");
    s_check_reference(copy, size, rc, &env);
    if (rc != WEFT_OK) {
        free(copy);
        return 0;
    }
    if (mp_guard_check(copy, size, 4, NULL) != 0)
        FAIL("decode accepted input the guard rejects");
    if (env.h_count > WEFT_HEADERS_MAX || (env.h_count > 0 && env.h_raw == NULL))
        FAIL("decoded headers are inconsistent");

    static headers_t h1, h2; /* empty: every run frees what it collected */
    weft_envelope_t out = env;
    out.h_raw = NULL;
    out.h_raw_size = 0;
    out.h_keys = NULL;
    out.h_values = NULL;
    out.h_count = 0;
    if (env.h_count > 0) {
        if (weft_envelope_headers_each(&env, s_collect, &h1) != 0)
            FAIL("headers_each stopped although the callback never asked to");
        if (h1.n != env.h_count)
            FAIL("headers_each saw a different number of headers than h_count");
        for (size_t i = 0; i < h1.n; i++) {
            /* weft_envelope_header finds the first header with this key */
            size_t first = i;
            for (size_t j = 0; j < i; j++)
                if (h1.klen[j] == h1.klen[i] && memcmp(h1.keys[j], h1.keys[i], h1.klen[i]) == 0) {
                    first = j;
                    break;
                }
            static char val[WEFT_ENVELOPE_MAX];
            int hl = weft_envelope_header(&env, h1.keys[i], val, sizeof(val));
            if (hl != (int)h1.vlen[first] || memcmp(val, h1.vals[first], h1.vlen[first]) != 0)
                FAIL("weft_envelope_header disagrees with headers_each");
        }
        out.h_keys = (const char *const *)h1.keys;
        out.h_values = (const char *const *)h1.vals;
        out.h_count = h1.n;
    }

    int n1 = weft_envelope_encode(&out, s_enc1, sizeof(s_enc1));
    if (n1 <= 0) {
        fprintf(stderr, "encode returned %d\n", n1);
        FAIL("a decoded envelope does not re-encode");
    }
    int pl = envelope_prefix_encode(s_prefix, sizeof(s_prefix), out.src, out.inst);
    int n3 = pl > 0 ? envelope_encode_prefixed(s_enc3, sizeof(s_enc3), s_prefix, (size_t)pl,
                                               out.id, out.seq, out.ts, &out)
                    : pl;
    if (n3 != n1 || memcmp(s_enc1, s_enc3, (size_t)n1) != 0)
        FAIL("encoding from a prefix differs from weft_envelope_encode");
    free(copy); /* env.h_raw dangles from here on; h1 holds copies */

    uint8_t *enc = malloc((size_t)n1);
    if (!enc)
        abort();
    memcpy(enc, s_enc1, (size_t)n1);
    weft_envelope_t again;
    rc = weft_envelope_decode(&again, enc, (size_t)n1);
    if (rc != WEFT_OK) {
        fprintf(stderr, "decode of the re-encoding returned %d\n", rc);
        FAIL("a re-encoded envelope does not decode");
    }
    s_fields_equal(&env, &again);
    if (again.h_count > 0 && weft_envelope_headers_each(&again, s_collect, &h2) != 0)
        FAIL("headers_each stopped early on the re-encoding");
    s_headers_equal(&h1, &h2);

    /* The encoding is canonical: encoding the second decode gives the same bytes. */
    weft_envelope_t out2 = again;
    out2.h_keys = (const char *const *)h2.keys;
    out2.h_values = (const char *const *)h2.vals;
    out2.h_count = h2.n;
    int n2 = weft_envelope_encode(&out2, s_enc2, sizeof(s_enc2));
    if (n2 != n1 || memcmp(s_enc1, s_enc2, (size_t)n1) != 0)
        FAIL("encoding is not stable across a round trip");

    free(enc);
    s_headers_free(&h1);
    s_headers_free(&h2);
    return 0;
}

/*  test_dlq_node.c - the DLQ as a separate process (weft-dlq), with this process as its
    client and as a fake subscriber node.

    The fake subscriber is a raw ROUTER that answers REDELIVER as each case needs (by the
    event's topic: t.ok resolves, t.failN fails N times then resolves, t.fail always fails
    until healed, t.gone answers ERR not_found, t.hold never answers). The DLQ finds it by
    name: the fake sends `_weft.hb` heartbeats for the node names "fake-sub" (and, when a case
    turns it on, "late-sub") from a raw PUB connected to the DLQ's SUB endpoint, with its
    ROUTER as their control endpoint and a SUB socket of its own as their SUB endpoint, on
    which the DLQ's announcements (_weft.dlq.*) and heartbeats arrive. Letters for the node
    "ghost" are never delivered (no such node is up), which keeps them pending for the
    listing cases.

    Cases: PUT is acknowledged and idempotent; a redelivery answered ok resolves; K failures
    then ok resolve after K+1 redeliveries with the backoff respected; a letter that keeps
    failing is parked after max attempts with its error kept; RETRY of a parked letter
    redelivers it; PURGE removes; RETRY and PURGE by filter cover exactly the letters stored
    before them; LIST filters and pages (in PUT order); INFO and the heartbeat count; an absent
    subscriber costs no attempts and gets its letter when it comes up; no answer and ERR
    not_found fail with dlq.timeout and dlq.no_subscriber; kill -9 after acknowledged PUTs
    loses none of them and a redelivery in flight is redone; malformed requests get ERR
    bad_request, unknown commands unknown_command.

    usage: test_dlq_node PATH/TO/weft-dlq
*/
#include <arpa/inet.h>
#include <czmq.h>
#include <msgpack.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "testing.h"
#include "weft.h"

#define MAX_ATTEMPTS 3
#define BACKOFF_MS 50
#define BACKOFF_MAX_MS 200
#define TIMEOUT_MS 400

static const char *s_bin;
static char s_tmp[64];

/* ---- the DLQ process ------------------------------------------------------------------ */

typedef struct {
    pid_t pid;
    char dir[128];
    char seed[64];
    char bind[64];
    char svc[256];
    char ready[160];
    char log[160];
} dlq_proc_t;

static dlq_proc_t s_dlq;
static weft_ctl_t *s_ctl;

static int s_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int port = -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static int s_dlq_start(dlq_proc_t *d)
{
    unlink(d->ready);
    char *argv[] = {(char *)s_bin, "--data", d->dir, "--seed", d->seed, "--gossip-bind", d->seed,
                    "--bind", d->bind, "--ready-file", d->ready,
                    "--max-attempts", "3", "--backoff", "50", "--backoff-max", "200",
                    "--jitter", "0.1", "--timeout", "400", NULL};
    d->pid = fork();
    if (d->pid == 0) {
        FILE *f = freopen(d->log, "a", stderr);
        (void)f;
        setenv("WEFT_HEARTBEAT_INTERVAL", "100", 1);
        execv(argv[0], argv);
        _exit(127);
    }
    int64_t deadline = t_mono_ms() + 10000;
    while (t_mono_ms() < deadline) {
        FILE *f = fopen(d->ready, "r");
        if (f) {
            bool ok = fgets(d->svc, sizeof(d->svc), f) != NULL;
            fclose(f);
            if (ok) {
                d->svc[strcspn(d->svc, "\n")] = 0;
                weft_ctl_destroy(&s_ctl);
                s_ctl = weft_ctl_new(d->svc, NULL);
                return s_ctl ? 0 : -1;
            }
        }
        int status;
        if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
            d->pid = 0;
            return -1;
        }
        t_nap_ms(10);
    }
    return -1;
}

/*  Signals the DLQ and reaps it. Returns its exit code, or -1 when a signal ended it. */
static int s_dlq_stop(dlq_proc_t *d, int sig)
{
    if (d->pid <= 0)
        return -1;
    kill(d->pid, sig);
    int status = 0;
    waitpid(d->pid, &status, 0);
    d->pid = 0;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* ---- msgpack helpers ------------------------------------------------------------------ */

static void pk_str(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str(pk, strlen(s));
    msgpack_pack_str_body(pk, s, strlen(s));
}

static void pk_kv_str(msgpack_packer *pk, const char *k, const char *v)
{
    pk_str(pk, k);
    pk_str(pk, v);
}

static void pk_kv_uint(msgpack_packer *pk, const char *k, uint64_t v)
{
    pk_str(pk, k);
    msgpack_pack_uint64(pk, v);
}

static void pk_kv_bin(msgpack_packer *pk, const char *k, const void *v, size_t n)
{
    pk_str(pk, k);
    msgpack_pack_bin(pk, n);
    msgpack_pack_bin_body(pk, v, n);
}

static const msgpack_object *s_key(const msgpack_object *map, const char *key)
{
    if (!map || map->type != MSGPACK_OBJECT_MAP)
        return NULL;
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == strlen(key) &&
            memcmp(k->via.str.ptr, key, k->via.str.size) == 0)
            return &map->via.map.ptr[i].val;
    }
    return NULL;
}

static uint64_t s_u64(const msgpack_object *map, const char *key)
{
    const msgpack_object *v = s_key(map, key);
    return v && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? v->via.u64 : UINT64_MAX;
}

static int64_t s_i64(const msgpack_object *map, const char *key)
{
    const msgpack_object *v = s_key(map, key);
    if (v && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        return (int64_t)v->via.u64;
    if (v && v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        return v->via.i64;
    return INT64_MIN;
}

static void s_str(const msgpack_object *map, const char *key, char *out, size_t cap)
{
    const msgpack_object *v = s_key(map, key);
    out[0] = 0;
    if (v && v->type == MSGPACK_OBJECT_STR)
        snprintf(out, cap, "%.*s", (int)v->via.str.size, v->via.str.ptr);
}

/* ---- requests ------------------------------------------------------------------------- */

typedef struct {
    weft_reply_t reply;
    msgpack_unpacked u;
    const msgpack_object *body;
    bool ok;                 /* status OK */
    char code[64];           /* ERR code */
} resp_t;

static void s_resp_clear(resp_t *r)
{
    weft_reply_clear(&r->reply);
    msgpack_unpacked_destroy(&r->u);
    memset(r, 0, sizeof(*r));
}

/*  Sends command with raw args; returns 0 when a reply came. */
static int s_call_raw(const char *cmd, const void *args, size_t size, resp_t *r)
{
    memset(r, 0, sizeof(*r));
    msgpack_unpacked_init(&r->u);
    if (weft_ctl_call(s_ctl, cmd, args, size, 5000, &r->reply) != WEFT_OK)
        return -1;
    size_t off = 0;
    if (r->reply.body_size &&
        msgpack_unpack_next(&r->u, (const char *)r->reply.body, r->reply.body_size, &off) ==
            MSGPACK_UNPACK_SUCCESS)
        r->body = &r->u.data;
    r->ok = strcmp(r->reply.status, "OK") == 0;
    snprintf(r->code, sizeof(r->code), "%s", r->ok ? "OK" : r->reply.err_code);
    return 0;
}

static int s_call(const char *cmd, const msgpack_sbuffer *sb, resp_t *r)
{
    return s_call_raw(cmd, sb ? sb->data : NULL, sb ? sb->size : 0, r);
}

/*  The reply code of a request ("OK" or the ERR code). */
static void s_code_of(const char *cmd, const void *args, size_t size, char out[64])
{
    resp_t r;
    if (s_call_raw(cmd, args, size, &r) == 0)
        snprintf(out, 64, "%s", r.code);
    else
        snprintf(out, 64, "(no reply)");
    s_resp_clear(&r);
}

typedef struct {
    char topic[64];
    uint8_t env[512];
    size_t env_size;
    uint8_t id[WEFT_ID_SIZE];
    char payload[64];
    size_t payload_size;
} event_t;

static uint64_t s_seq;

static void s_event(event_t *e, const char *topic)
{
    memset(e, 0, sizeof(*e));
    snprintf(e->topic, sizeof(e->topic), "%s", topic);
    weft_envelope_t env;
    weft_envelope_init(&env);
    weft_id_new(env.id);
    snprintf(env.src, sizeof(env.src), "producer");
    env.inst = 0x1234;
    env.seq = ++s_seq;
    env.ts = weft_now_ns();
    int n = weft_envelope_encode(&env, e->env, sizeof(e->env));
    assert(n > 0);
    e->env_size = (size_t)n;
    memcpy(e->id, env.id, WEFT_ID_SIZE);
    e->payload_size = (size_t)snprintf(e->payload, sizeof(e->payload), "payload %" PRIu64, s_seq);
}

/*  PUT {event, subscriber, node, error, attempts}. Returns the reply code in r. */
static void s_put_args(msgpack_sbuffer *sb, const event_t *e, const char *sub, const char *node,
                       const char *code, const char *message, uint32_t attempts)
{
    msgpack_sbuffer_clear(sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 6);
    pk_str(&pk, "event");
    msgpack_pack_array(&pk, 3);
    pk_str(&pk, e->topic);
    msgpack_pack_bin(&pk, e->env_size);
    msgpack_pack_bin_body(&pk, e->env, e->env_size);
    msgpack_pack_bin(&pk, e->payload_size);
    msgpack_pack_bin_body(&pk, e->payload, e->payload_size);
    pk_kv_str(&pk, "subscriber", sub);
    pk_kv_str(&pk, "node", node);
    pk_str(&pk, "error");
    msgpack_pack_map(&pk, 2);
    pk_kv_str(&pk, "code", code);
    pk_kv_str(&pk, "message", message);
    pk_kv_uint(&pk, "attempts", attempts);
    pk_str(&pk, "failed_at");
    msgpack_pack_int64(&pk, weft_now_ns());
}

/*  PUTs e; returns 0 with the letter id, or -1. */
static int s_put(const event_t *e, const char *sub, const char *node, uint8_t letter[16],
                 bool *created)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    s_put_args(&sb, e, sub, node, "h.first", "first failure", 3);
    resp_t r;
    int rc = -1;
    if (s_call("PUT", &sb, &r) == 0 && r.ok) {
        const msgpack_object *l = s_key(r.body, "letter");
        const msgpack_object *c = s_key(r.body, "created");
        if (l && l->type == MSGPACK_OBJECT_BIN && l->via.bin.size == 16 && c &&
            c->type == MSGPACK_OBJECT_BOOLEAN) {
            memcpy(letter, l->via.bin.ptr, 16);
            if (created)
                *created = c->via.boolean;
            rc = 0;
        }
    } else {
        fprintf(stderr, "  PUT: %s %s\n", r.code, r.reply.err_message);
    }
    s_resp_clear(&r);
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

typedef struct {
    char state[16];
    char code[64];
    char message[1024];
    char subscriber[256];
    char topic[256];
    uint64_t attempts, redeliveries;
    int64_t first_failure, last_failure, next_retry_at;
    uint8_t event_id[16];
    size_t envelope_size;
} letter_t;

static void s_letter_read(const msgpack_object *m, letter_t *out)
{
    memset(out, 0, sizeof(*out));
    s_str(m, "state", out->state, sizeof(out->state));
    s_str(m, "code", out->code, sizeof(out->code));
    s_str(m, "message", out->message, sizeof(out->message));
    s_str(m, "subscriber", out->subscriber, sizeof(out->subscriber));
    s_str(m, "topic", out->topic, sizeof(out->topic));
    out->attempts = s_u64(m, "attempts");
    out->redeliveries = s_u64(m, "redeliveries");
    out->first_failure = s_i64(m, "first_failure");
    out->last_failure = s_i64(m, "last_failure");
    out->next_retry_at = s_i64(m, "next_retry_at");
    const msgpack_object *ev = s_key(m, "event_id");
    if (ev && ev->type == MSGPACK_OBJECT_BIN && ev->via.bin.size == 16)
        memcpy(out->event_id, ev->via.bin.ptr, 16);
    const msgpack_object *e = s_key(m, "event");
    if (e && e->type == MSGPACK_OBJECT_ARRAY && e->via.array.size == 3 &&
        e->via.array.ptr[1].type == MSGPACK_OBJECT_BIN)
        out->envelope_size = e->via.array.ptr[1].via.bin.size;
}

/*  GET {id}: 0 found, 1 not_found, -1 other. */
static int s_get(const uint8_t id[16], letter_t *out)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    pk_kv_bin(&pk, "id", id, 16);
    resp_t r;
    int rc = -1;
    if (s_call("GET", &sb, &r) == 0) {
        if (r.ok && r.body) {
            s_letter_read(r.body, out);
            rc = 0;
        } else if (strcmp(r.code, "not_found") == 0) {
            rc = 1;
        }
    }
    s_resp_clear(&r);
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

static bool s_state_is(const uint8_t id[16], const char *state)
{
    letter_t l;
    return s_get(id, &l) == 0 && strcmp(l.state, state) == 0;
}

/*  RETRY or PURGE of one letter: the count, or -1 (code in *code). */
static int64_t s_by_id(const char *cmd, const uint8_t id[16], char code[64])
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    pk_kv_bin(&pk, "id", id, 16);
    resp_t r;
    int64_t count = -1;
    if (s_call(cmd, &sb, &r) == 0 && r.ok)
        count = (int64_t)s_u64(r.body, "count");
    if (code)
        snprintf(code, 64, "%s", r.code);
    s_resp_clear(&r);
    msgpack_sbuffer_destroy(&sb);
    return count;
}

/*  LIST with a filter (NULL strings: none), following cursors with pages of `limit`. Letter
    ids go to ids (at most cap). Returns the number listed, or -1. *pages counts pages. */
static int s_list_all(const char *sub, const char *topic, const char *state, const char *code,
                      uint64_t limit, uint8_t (*ids)[16], size_t cap, int *pages)
{
    uint8_t cursor[16];
    bool have_cursor = false;
    size_t n = 0;
    if (pages)
        *pages = 0;
    for (int guard = 0; guard < 10000; guard++) {
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_map(&pk, (sub != NULL) + (topic != NULL) + (state != NULL) +
                                  (code != NULL) + 1 + have_cursor);
        if (sub)
            pk_kv_str(&pk, "subscriber", sub);
        if (topic)
            pk_kv_str(&pk, "topic", topic);
        if (state)
            pk_kv_str(&pk, "state", state);
        if (code)
            pk_kv_str(&pk, "code", code);
        pk_kv_uint(&pk, "limit", limit);
        if (have_cursor)
            pk_kv_bin(&pk, "cursor", cursor, 16);
        resp_t r;
        int rc = s_call("LIST", &sb, &r);
        msgpack_sbuffer_destroy(&sb);
        const msgpack_object *letters = rc == 0 && r.ok ? s_key(r.body, "letters") : NULL;
        const msgpack_object *next = rc == 0 && r.ok ? s_key(r.body, "next_cursor") : NULL;
        if (!letters || letters->type != MSGPACK_OBJECT_ARRAY || !next ||
            letters->via.array.size > limit) {
            fprintf(stderr, "  LIST failed: %s\n", rc == 0 ? r.code : "no reply");
            s_resp_clear(&r);
            return -1;
        }
        if (pages)
            (*pages)++;
        for (uint32_t i = 0; i < letters->via.array.size; i++) {
            const msgpack_object *id = s_key(&letters->via.array.ptr[i], "id");
            if (!id || id->type != MSGPACK_OBJECT_BIN || id->via.bin.size != 16) {
                s_resp_clear(&r);
                return -1;
            }
            if (n < cap)
                memcpy(ids[n], id->via.bin.ptr, 16);
            n++;
        }
        bool more = next->type == MSGPACK_OBJECT_BIN && next->via.bin.size == 16;
        if (more) {
            memcpy(cursor, next->via.bin.ptr, 16);
            have_cursor = true;
        }
        s_resp_clear(&r);
        if (!more)
            return (int)n;
    }
    return -1;
}

/*  INFO: the reply (caller clears), 0 or -1. */
static int s_info(resp_t *r)
{
    return s_call_raw("INFO", NULL, 0, r) == 0 && r->ok && r->body ? 0 : -1;
}

static uint64_t s_info_sched(const char *key)
{
    resp_t r;
    uint64_t v = UINT64_MAX;
    if (s_info(&r) == 0)
        v = s_u64(s_key(r.body, "scheduler"), key);
    s_resp_clear(&r);
    return v;
}

/* ---- the fake subscriber -------------------------------------------------------------- */

typedef struct {
    uint8_t letter[16];
    char topic[64];
    char subscriber[256];
    uint64_t attempt;
    uint8_t event_id[16];
    int64_t at_ms;
} redeliver_t;

#define NIDENT 2
#define MAX_RECS 8192

static struct {
    pthread_mutex_t lock;
    redeliver_t recs[MAX_RECS];
    size_t nrecs;
    zhashx_t *seen;           /* letter hex -> redeliveries seen (int) */
    zhashx_t *healed;         /* letter hex -> "1" */
    bool hb_on[NIDENT];
    uint64_t inst[NIDENT];
    char ctl[256];
    char sub[256];
    char dlq_sub[64];
    uint64_t announced[5];    /* put, resolved, parked, retried, purged */
    bool dlq_hb;              /* a heartbeat of the DLQ with its "dlq" section */
    uint64_t dlq_hb_pending, dlq_hb_parked;
} F;

static const char *s_names[NIDENT] = {"fake-sub", "late-sub"};
static const char *s_ann[5] = {"put", "resolved", "parked", "retried", "purged"};
static zactor_t *s_fake;

static void s_hex(const uint8_t id[16], char out[33])
{
    for (int i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", id[i]);
}

static void s_send_hb(zsock_t *pub, int i)
{
    weft_envelope_t env;
    weft_envelope_init(&env);
    weft_id_new(env.id);
    snprintf(env.src, sizeof(env.src), "%s", s_names[i]);
    env.inst = F.inst[i];
    env.seq = 0;
    env.ts = weft_now_ns();
    uint8_t eb[512];
    int n = weft_envelope_encode(&env, eb, sizeof(eb));
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    /* Of the fabric this test runs in (WEFT_FABRIC_NAME, which the DLQ reads too). */
    const char *fabric = getenv("WEFT_FABRIC_NAME");
    msgpack_pack_map(&pk, 8);
    pk_kv_str(&pk, "fabric", fabric && *fabric ? fabric : "weft");
    pk_kv_str(&pk, "name", s_names[i]);
    pk_kv_str(&pk, "role", "node");
    pk_kv_uint(&pk, "inst", F.inst[i]);
    pk_kv_str(&pk, "sub", F.sub);
    pk_kv_str(&pk, "ctl", F.ctl);
    pk_kv_uint(&pk, "seq", 0);
    pk_kv_uint(&pk, "hb_ms", 50);
    zmsg_t *m = zmsg_new();
    zmsg_addstr(m, "_weft.hb");
    zmsg_addmem(m, eb, (size_t)n);
    zmsg_addmem(m, sb.data, sb.size);
    zmsg_send(&m, pub);
    msgpack_sbuffer_destroy(&sb);
}

static void s_reply(zsock_t *router, zframe_t *routing, zframe_t *rid, const void *body,
                    size_t size, const char *status)
{
    zmsg_t *m = zmsg_new();
    zmsg_append(m, &routing);
    zmsg_addstr(m, "weft/1");
    zmsg_addstr(m, status);
    zmsg_append(m, &rid);
    zmsg_addmem(m, body, size);
    zmsg_send(&m, router);
}

/*  One REDELIVER: record it, answer per the topic. */
static void s_on_redeliver(zsock_t *router)
{
    zmsg_t *msg = zmsg_recv(router);
    if (!msg)
        return;
    zframe_t *routing = zmsg_pop(msg);
    zframe_t *proto = zmsg_pop(msg), *cmd = zmsg_pop(msg), *rid = zmsg_pop(msg),
             *args = zmsg_pop(msg);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    redeliver_t rec = {0};
    bool ok = args && zframe_streq(cmd, "REDELIVER") &&
              msgpack_unpack_next(&u, (const char *)zframe_data(args), zframe_size(args), &off) ==
                  MSGPACK_UNPACK_SUCCESS;
    const msgpack_object *l = ok ? s_key(&u.data, "letter") : NULL;
    const msgpack_object *ev = ok ? s_key(&u.data, "event") : NULL;
    if (l && l->type == MSGPACK_OBJECT_BIN && l->via.bin.size == 16 && ev &&
        ev->type == MSGPACK_OBJECT_ARRAY && ev->via.array.size == 3 &&
        ev->via.array.ptr[0].type == MSGPACK_OBJECT_STR &&
        ev->via.array.ptr[1].type == MSGPACK_OBJECT_BIN) {
        memcpy(rec.letter, l->via.bin.ptr, 16);
        snprintf(rec.topic, sizeof(rec.topic), "%.*s", (int)ev->via.array.ptr[0].via.str.size,
                 ev->via.array.ptr[0].via.str.ptr);
        s_str(&u.data, "subscriber", rec.subscriber, sizeof(rec.subscriber));
        rec.attempt = s_u64(&u.data, "attempt");
        weft_envelope_t env;
        if (weft_envelope_decode(&env, ev->via.array.ptr[1].via.bin.ptr,
                                 ev->via.array.ptr[1].via.bin.size) == 0)
            memcpy(rec.event_id, env.id, 16);
        rec.at_ms = t_mono_ms();
    } else {
        ok = false;
    }
    msgpack_unpacked_destroy(&u);
    zframe_destroy(&proto);
    zframe_destroy(&cmd);
    zframe_destroy(&args);
    zmsg_destroy(&msg);
    if (!ok) {
        zframe_destroy(&routing);
        zframe_destroy(&rid);
        return;
    }
    char hex[33];
    s_hex(rec.letter, hex);
    pthread_mutex_lock(&F.lock);
    if (F.nrecs < MAX_RECS)
        F.recs[F.nrecs++] = rec;
    intptr_t count = (intptr_t)zhashx_lookup(F.seen, hex) + 1;
    zhashx_update(F.seen, hex, (void *)count);
    bool healed = zhashx_lookup(F.healed, hex) != NULL;
    pthread_mutex_unlock(&F.lock);

    const char *t = rec.topic + 2;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    if (strncmp(t, "hold", 4) == 0) {
        zframe_destroy(&routing);
        zframe_destroy(&rid);
    } else if (strncmp(t, "gone", 4) == 0) {
        msgpack_pack_map(&pk, 2);
        pk_kv_str(&pk, "code", "not_found");
        pk_kv_str(&pk, "message", "no subscription s1 on this node");
        s_reply(router, routing, rid, sb.data, sb.size, "ERR");
    } else if (strncmp(t, "fail", 4) == 0 &&
               ((t[4] >= '0' && t[4] <= '9') ? count <= atoi(t + 4) : !healed)) {
        char message[64];
        snprintf(message, sizeof(message), "boom %d", (int)count);
        msgpack_pack_map(&pk, 3);
        pk_str(&pk, "ok");
        msgpack_pack_false(&pk);
        pk_kv_str(&pk, "code", "h.err");
        pk_kv_str(&pk, "message", message);
        s_reply(router, routing, rid, sb.data, sb.size, "OK");
    } else {
        msgpack_pack_map(&pk, 1);
        pk_str(&pk, "ok");
        msgpack_pack_true(&pk);
        s_reply(router, routing, rid, sb.data, sb.size, "OK");
    }
    msgpack_sbuffer_destroy(&sb);
}

/*  What the DLQ publishes: _weft.dlq.* and its heartbeats. */
static void s_on_sub(zsock_t *sub)
{
    zmsg_t *m = zmsg_recv(sub);
    if (!m || zmsg_size(m) != 3) {
        zmsg_destroy(&m);
        return;
    }
    char *topic = zmsg_popstr(m);
    zframe_t *env = zmsg_pop(m), *payload = zmsg_pop(m);
    if (strncmp(topic, "_weft.dlq.", 10) == 0) {
        pthread_mutex_lock(&F.lock);
        for (int i = 0; i < 5; i++)
            if (strcmp(topic + 10, s_ann[i]) == 0)
                F.announced[i]++;
        pthread_mutex_unlock(&F.lock);
    } else if (strcmp(topic, "_weft.hb") == 0) {
        msgpack_unpacked u;
        msgpack_unpacked_init(&u);
        size_t off = 0;
        if (msgpack_unpack_next(&u, (const char *)zframe_data(payload), zframe_size(payload),
                                &off) == MSGPACK_UNPACK_SUCCESS) {
            const msgpack_object *d = s_key(&u.data, "dlq");
            if (d && s_key(d, "by_subscriber") && s_key(d, "top_codes") &&
                s_key(d, "oldest_pending_age_ms")) {
                pthread_mutex_lock(&F.lock);
                F.dlq_hb = true;
                F.dlq_hb_pending = s_u64(d, "pending");
                F.dlq_hb_parked = s_u64(d, "parked");
                pthread_mutex_unlock(&F.lock);
            }
        }
        msgpack_unpacked_destroy(&u);
    }
    zstr_free(&topic);
    zframe_destroy(&env);
    zframe_destroy(&payload);
    zmsg_destroy(&m);
}

static void s_fake_actor(zsock_t *pipe, void *arg)
{
    zsock_t *router = zsock_new_router("tcp://127.0.0.1:*");
    zsock_t *sub = zsock_new_sub("@tcp://127.0.0.1:*", "_weft.dlq.");
    zsock_set_subscribe(sub, "_weft.hb");
    zsock_t *pub = zsock_new(ZMQ_PUB);
    zsock_connect(pub, "%s", F.dlq_sub);
    snprintf(F.ctl, sizeof(F.ctl), "%s", zsock_endpoint(router));
    snprintf(F.sub, sizeof(F.sub), "%s", zsock_endpoint(sub));
    zsock_signal(pipe, 0);
    int64_t next_hb = 0;
    bool stop = false;
    while (!stop) {
        int64_t now = t_mono_ms();
        if (now >= next_hb) {
            pthread_mutex_lock(&F.lock);
            bool on[NIDENT];
            memcpy(on, F.hb_on, sizeof(on));
            pthread_mutex_unlock(&F.lock);
            for (int i = 0; i < NIDENT; i++)
                if (on[i])
                    s_send_hb(pub, i);
            next_hb = now + 50;
        }
        zmq_pollitem_t items[3] = {{zsock_resolve(pipe), 0, ZMQ_POLLIN, 0},
                                   {zsock_resolve(router), 0, ZMQ_POLLIN, 0},
                                   {zsock_resolve(sub), 0, ZMQ_POLLIN, 0}};
        int64_t wait = next_hb - t_mono_ms();
        if (zmq_poll(items, 3, wait < 0 ? 0 : wait) < 0)
            break;
        if (items[0].revents & ZMQ_POLLIN) {
            char *cmd = zstr_recv(pipe);
            stop = !cmd || streq(cmd, "$TERM");
            zstr_free(&cmd);
        }
        while (zsock_events(router) & ZMQ_POLLIN)
            s_on_redeliver(router);
        while (zsock_events(sub) & ZMQ_POLLIN)
            s_on_sub(sub);
    }
    zsock_destroy(&pub);
    zsock_destroy(&sub);
    zsock_destroy(&router);
}

static void s_hb(int ident, bool on)
{
    pthread_mutex_lock(&F.lock);
    F.hb_on[ident] = on;
    pthread_mutex_unlock(&F.lock);
}

static void s_heal(const uint8_t id[16])
{
    char hex[33];
    s_hex(id, hex);
    pthread_mutex_lock(&F.lock);
    zhashx_update(F.healed, hex, "1");
    pthread_mutex_unlock(&F.lock);
}

/*  REDELIVERs received for a letter: their receive times (ms) and attempt fields. */
static size_t s_redelivers(const uint8_t id[16], int64_t *at, uint64_t *attempt, size_t cap)
{
    size_t n = 0;
    pthread_mutex_lock(&F.lock);
    for (size_t i = 0; i < F.nrecs; i++)
        if (memcmp(F.recs[i].letter, id, 16) == 0) {
            if (n < cap) {
                if (at)
                    at[n] = F.recs[i].at_ms;
                if (attempt)
                    attempt[n] = F.recs[i].attempt;
            }
            n++;
        }
    pthread_mutex_unlock(&F.lock);
    return n;
}

static uint64_t s_announced(int i)
{
    pthread_mutex_lock(&F.lock);
    uint64_t v = F.announced[i];
    pthread_mutex_unlock(&F.lock);
    return v;
}

/* ---- cases ---------------------------------------------------------------------------- */

TEST_CASE("PUT is acknowledged and idempotent; a redelivery answered ok resolves", t_put_ok)
{
    event_t e;
    s_event(&e, "t.ok.first");
    uint8_t l1[16], l2[16];
    bool created = false;
    CHECK(s_put(&e, "fake-sub/s1", "fake-sub", l1, &created) == 0);
    CHECK(created);
    CHECK(s_put(&e, "fake-sub/s1", "fake-sub", l2, &created) == 0);
    CHECK(!created);
    CHECK(memcmp(l1, l2, 16) == 0);
    /* Another subscriber of the same event is another letter. */
    uint8_t l3[16];
    CHECK(s_put(&e, "fake-sub/s2", "fake-sub", l3, &created) == 0);
    CHECK(created);
    CHECK(memcmp(l1, l3, 16) != 0);

    CHECK(WAIT_UNTIL(s_state_is(l1, "resolved") && s_state_is(l3, "resolved"), 10000));
    letter_t l;
    CHECK(s_get(l1, &l) == 0);
    CHECK_EQ_INT(l.redeliveries, 1);
    CHECK_EQ_INT(l.attempts, 3);
    CHECK_STR(l.subscriber, "fake-sub/s1");
    CHECK_STR(l.topic, "t.ok.first");
    CHECK_STR(l.code, "h.first");
    CHECK(memcmp(l.event_id, e.id, 16) == 0);
    CHECK_EQ_INT(l.envelope_size, e.env_size);
    uint64_t attempt[4];
    CHECK_EQ_INT(s_redelivers(l1, NULL, attempt, 4), 1);
    CHECK_EQ_INT(attempt[0], 4);
    pthread_mutex_lock(&F.lock);
    bool same_event = false;
    for (size_t i = 0; i < F.nrecs; i++)
        if (memcmp(F.recs[i].letter, l1, 16) == 0)
            same_event = memcmp(F.recs[i].event_id, e.id, 16) == 0 &&
                         strcmp(F.recs[i].subscriber, "fake-sub/s1") == 0;
    pthread_mutex_unlock(&F.lock);
    CHECK(same_event);
    CHECK(WAIT_UNTIL(s_announced(0) >= 2 && s_announced(1) >= 2, 3000));
    /* A resolved letter that fails again is reopened: same letter, pending. */
    CHECK(s_put(&e, "fake-sub/s1", "fake-sub", l2, &created) == 0);
    CHECK(!created);
    CHECK(memcmp(l1, l2, 16) == 0);
    CHECK(WAIT_UNTIL(s_redelivers(l1, NULL, NULL, 0) == 2, 5000));
    CHECK(WAIT_UNTIL(s_state_is(l1, "resolved"), 5000));
}

TEST_CASE("K failed redeliveries then ok: resolved after K+1, backoff respected", t_fail_then_ok)
{
    event_t e;
    s_event(&e, "t.fail2");
    uint8_t id[16];
    int64_t put_ms = t_mono_ms();
    CHECK(s_put(&e, "fake-sub/s1", "fake-sub", id, NULL) == 0);
    CHECK(WAIT_UNTIL(s_state_is(id, "resolved"), 10000));
    int64_t at[8];
    uint64_t attempt[8];
    CHECK_EQ_INT(s_redelivers(id, at, attempt, 8), 3);
    /* backoff(n) = min(50 x 2^(n-1), 200) x (1 + 0.1 u): 50, then 100, then 200 */
    CHECK(at[0] - put_ms >= BACKOFF_MS - 3);
    CHECK(at[1] - at[0] >= 2 * BACKOFF_MS - 3);
    CHECK(at[2] - at[1] >= BACKOFF_MAX_MS - 3);
    CHECK(at[1] - at[0] < 1000 && at[2] - at[1] < 1500);
    CHECK_EQ_INT(attempt[0], 4);
    CHECK_EQ_INT(attempt[1], 5);
    CHECK_EQ_INT(attempt[2], 6);
    letter_t l;
    CHECK(s_get(id, &l) == 0);
    CHECK_EQ_INT(l.redeliveries, 3);
    CHECK_EQ_INT(l.attempts, 5);
    CHECK_STR(l.code, "h.err");
    CHECK_STR(l.message, "boom 2");
}

static uint8_t s_parked_id[16];

TEST_CASE("a letter that keeps failing is parked after max attempts, error kept", t_parked)
{
    event_t e;
    s_event(&e, "t.fail");
    uint64_t parked_before = s_announced(2);
    CHECK(s_put(&e, "fake-sub/parked", "fake-sub", s_parked_id, NULL) == 0);
    CHECK(WAIT_UNTIL(s_state_is(s_parked_id, "parked"), 10000));
    letter_t l;
    CHECK(s_get(s_parked_id, &l) == 0);
    CHECK_EQ_INT(l.redeliveries, MAX_ATTEMPTS);
    CHECK_EQ_INT(l.attempts, 3 + MAX_ATTEMPTS);
    CHECK_STR(l.code, "h.err");
    CHECK_STR(l.message, "boom 3");
    CHECK(l.last_failure > l.first_failure);
    /* Parked stays parked: no more redeliveries. */
    t_nap_ms(3 * BACKOFF_MAX_MS);
    CHECK_EQ_INT(s_redelivers(s_parked_id, NULL, NULL, 0), MAX_ATTEMPTS);
    uint8_t ids[8][16];
    CHECK_EQ_INT(s_list_all("fake-sub/parked", NULL, "parked", NULL, 10, ids, 8, NULL), 1);
    CHECK(memcmp(ids[0], s_parked_id, 16) == 0);
    CHECK(WAIT_UNTIL(s_announced(2) > parked_before, 3000));
}

TEST_CASE("RETRY of a parked letter redelivers it with a fresh budget", t_retry_parked)
{
    char code[64];
    /* Still failing: max_attempts more redeliveries, then parked again. */
    CHECK_EQ_INT(s_by_id("RETRY", s_parked_id, code), 1);
    CHECK(WAIT_UNTIL(s_redelivers(s_parked_id, NULL, NULL, 0) == 2 * MAX_ATTEMPTS &&
                         s_state_is(s_parked_id, "parked"),
                     10000));
    letter_t l;
    CHECK(s_get(s_parked_id, &l) == 0);
    CHECK_EQ_INT(l.redeliveries, 2 * MAX_ATTEMPTS);
    CHECK_STR(l.message, "boom 6");
    /* The subscriber is fixed: RETRY resolves it at once. */
    s_heal(s_parked_id);
    uint64_t retried = s_announced(3);
    CHECK_EQ_INT(s_by_id("RETRY", s_parked_id, code), 1);
    CHECK(WAIT_UNTIL(s_state_is(s_parked_id, "resolved"), 5000));
    CHECK_EQ_INT(s_redelivers(s_parked_id, NULL, NULL, 0), 2 * MAX_ATTEMPTS + 1);
    CHECK(WAIT_UNTIL(s_announced(3) > retried, 3000));
    /* A resolved letter is not retried. */
    CHECK_EQ_INT(s_by_id("RETRY", s_parked_id, code), 0);
}

TEST_CASE("no answer fails with dlq.timeout; ERR not_found with dlq.no_subscriber",
          t_timeout_gone)
{
    event_t e1, e2;
    s_event(&e1, "t.hold.timeout");
    s_event(&e2, "t.gone");
    uint8_t a[16], b[16];
    CHECK(s_put(&e1, "fake-sub/slow", "fake-sub", a, NULL) == 0);
    CHECK(s_put(&e2, "fake-sub/gone", "fake-sub", b, NULL) == 0);
    CHECK(WAIT_UNTIL(s_state_is(b, "parked"), 10000));
    letter_t l;
    CHECK(s_get(b, &l) == 0);
    CHECK_STR(l.code, "dlq.no_subscriber");
    CHECK(strstr(l.message, "not_found") != NULL);
    CHECK(WAIT_UNTIL(s_state_is(a, "parked"), 15000));
    CHECK(s_get(a, &l) == 0);
    CHECK_STR(l.code, "dlq.timeout");
    CHECK_EQ_INT(l.redeliveries, MAX_ATTEMPTS);
    CHECK(s_info_sched("failed") >= 2 * MAX_ATTEMPTS);
}

TEST_CASE("an absent subscriber costs no attempts and gets its letter when it comes up",
          t_subscriber_down)
{
    event_t e;
    s_event(&e, "t.ok.late");
    uint8_t id[16];
    uint64_t held_before = s_info_sched("no_subscriber");
    CHECK(s_put(&e, "late-sub/s", "late-sub", id, NULL) == 0);
    t_nap_ms(1500);
    letter_t l;
    CHECK(s_get(id, &l) == 0);
    CHECK_STR(l.state, "pending");
    CHECK_EQ_INT(l.redeliveries, 0);
    CHECK_EQ_INT(l.attempts, 3);
    CHECK_EQ_INT(s_redelivers(id, NULL, NULL, 0), 0);
    CHECK(s_info_sched("no_subscriber") > held_before);
    s_hb(1, true);
    CHECK(WAIT_UNTIL(s_state_is(id, "resolved"), 5000));
    CHECK(s_get(id, &l) == 0);
    CHECK_EQ_INT(l.redeliveries, 1);
    CHECK_EQ_INT(s_redelivers(id, NULL, NULL, 0), 1);
    s_hb(1, false);
}

static atomic_int s_e2e_calls;

static int s_e2e_handler(weft_event_t *ev, void *arg)
{
    int call = atomic_fetch_add(&s_e2e_calls, 1) + 1;
    if (call <= 3)
        return weft_event_fail(ev, "e2e.busy", "call %d of %s", call, ev->topic);
    return 0;
}

TEST_CASE("end to end: a real node dead-letters a failing event, the DLQ redelivers it",
          t_end_to_end)
{
    weft_config_t *cfg = weft_config_new();
    weft_config_set(cfg, "gossip/seeds", s_dlq.seed);
    weft_config_set(cfg, "gossip/bind", "none");
    weft_config_set(cfg, "heartbeat/interval", "100");
    weft_node_t *node = weft_node_new("real-sub", cfg, NULL);
    weft_config_destroy(&cfg);
    CHECK(node);
    weft_sub_options_t o = {.name = "h", .retry_attempts = 1};
    int err;
    CHECK(weft_subscribe(node, "e2e.", s_e2e_handler, NULL, &o, &err) != NULL);
    bool ready = weft_node_wait_peer_named(node, "dlq", 10000) == WEFT_OK &&
                 weft_node_wait_peers(node, 5000) >= 1;
    if (!ready)
        weft_node_destroy(&node);
    CHECK(ready);
    CHECK(weft_publish(node, "e2e.x", "{}", 2, NULL, NULL) > 0);
    /* call 1 fails: dead-lettered; redeliveries 1 and 2 fail, 3 succeeds */
    uint8_t ids[4][16];
    bool resolved = WAIT_UNTIL(s_list_all("real-sub/h", NULL, "resolved", NULL, 10, ids, 4, NULL) == 1,
                               15000);
    weft_node_destroy(&node);
    CHECK(resolved);
    letter_t l;
    CHECK(s_get(ids[0], &l) == 0);
    CHECK_EQ_INT(l.redeliveries, 3);
    CHECK_EQ_INT(l.attempts, 3);
    CHECK_STR(l.code, "e2e.busy");
    CHECK_STR(l.topic, "e2e.x");
    CHECK_EQ_INT(atomic_load(&s_e2e_calls), 4);
}

#define NLIST 25

TEST_CASE("LIST filters and pages; INFO and heartbeats count", t_list_info)
{
    /* For node "ghost", never up: the letters stay pending. */
    uint8_t ids[NLIST][16];
    for (int i = 0; i < NLIST; i++) {
        event_t e;
        s_event(&e, i % 2 ? "t.ok.odd" : "t.ok.even");
        CHECK(s_put(&e, i < 15 ? "ghost/a" : "ghost/b", "ghost", ids[i], NULL) == 0);
    }
    uint8_t got[64][16];
    int pages = 0;
    CHECK_EQ_INT(s_list_all("ghost/a", NULL, NULL, NULL, 4, got, 64, &pages), 15);
    CHECK_EQ_INT(pages, 4);
    /* letter ids increase in the order letters are stored: LIST gives them in PUT order */
    CHECK(memcmp(got, ids, 15 * 16) == 0);
    CHECK_EQ_INT(s_list_all("ghost/b", NULL, "pending", NULL, 100, got, 64, NULL), 10);
    CHECK_EQ_INT(s_list_all("ghost/a", "t.ok.o", NULL, NULL, 100, got, 64, NULL), 7);
    CHECK_EQ_INT(s_list_all("ghost/a", NULL, "parked", NULL, 100, got, 64, NULL), 0);
    CHECK_EQ_INT(s_list_all("ghost/a", NULL, NULL, "h.first", 100, got, 64, NULL), 15);
    CHECK_EQ_INT(s_list_all("ghost/a", NULL, NULL, "h.other", 100, got, 64, NULL), 0);
    CHECK_EQ_INT(s_list_all(NULL, "t.ok.", "pending", NULL, 1000, got, 64, NULL), NLIST);
    /* older_than_ms: none of them is an hour old */
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    pk_kv_str(&pk, "subscriber", "ghost/a");
    pk_kv_uint(&pk, "older_than_ms", 3600000);
    resp_t r;
    CHECK(s_call("LIST", &sb, &r) == 0 && r.ok);
    const msgpack_object *letters = s_key(r.body, "letters");
    CHECK(letters && letters->type == MSGPACK_OBJECT_ARRAY && letters->via.array.size == 0);
    const msgpack_object *nc = s_key(r.body, "next_cursor");
    CHECK(nc && nc->type == MSGPACK_OBJECT_NIL);
    s_resp_clear(&r);
    msgpack_sbuffer_destroy(&sb);

    /* INFO: counts agree with LIST by state; per subscriber and per code. */
    static uint8_t all[4096][16];
    int by_state[4];
    const char *states[4] = {"pending", "retrying", "parked", "resolved"};
    for (int i = 0; i < 4; i++)
        by_state[i] = s_list_all(NULL, NULL, states[i], NULL, 1000, all, 4096, NULL);
    CHECK(s_info(&r) == 0);
    const msgpack_object *counts = s_key(r.body, "counts");
    CHECK_EQ_INT(s_u64(counts, "pending") + s_u64(counts, "retrying"),
                 by_state[0] + by_state[1]);
    CHECK_EQ_INT(s_u64(counts, "parked"), by_state[2]);
    CHECK_EQ_INT(s_u64(counts, "resolved"), by_state[3]);
    const msgpack_object *ga = s_key(s_key(r.body, "by_subscriber"), "ghost/a");
    CHECK(ga);
    CHECK_EQ_INT(s_u64(ga, "pending"), 15);
    CHECK_EQ_INT(s_u64(ga, "parked"), 0);
    const msgpack_object *gp = s_key(s_key(r.body, "by_subscriber"), "fake-sub/parked");
    CHECK(gp == NULL); /* resolved letters are not counted */
    const msgpack_object *top = s_key(r.body, "top_codes");
    CHECK(top && top->type == MSGPACK_OBJECT_ARRAY && top->via.array.size >= 1);
    const msgpack_object *first = &top->via.array.ptr[0];
    CHECK(first->type == MSGPACK_OBJECT_ARRAY && first->via.array.size == 2);
    CHECK(first->via.array.ptr[0].type == MSGPACK_OBJECT_STR &&
          first->via.array.ptr[0].via.str.size == 7 &&
          memcmp(first->via.array.ptr[0].via.str.ptr, "h.first", 7) == 0);
    CHECK(first->via.array.ptr[1].via.u64 >= NLIST);
    CHECK(s_i64(r.body, "oldest_pending_age_ms") >= 0);
    const msgpack_object *policy = s_key(r.body, "policy");
    CHECK_EQ_INT(s_u64(policy, "max_attempts"), MAX_ATTEMPTS);
    CHECK_EQ_INT(s_u64(policy, "backoff_ms"), BACKOFF_MS);
    CHECK_EQ_INT(s_u64(policy, "backoff_max_ms"), BACKOFF_MAX_MS);
    const msgpack_object *sched = s_key(r.body, "scheduler");
    CHECK(s_u64(sched, "redelivered") >= 10 && s_u64(sched, "resolved") >= 4);
    uint64_t pending = s_u64(counts, "pending");
    s_resp_clear(&r);
    /* The heartbeat's "dlq" section shows the same pending count. */
    bool hb_ok = WAIT_UNTIL(({
                                pthread_mutex_lock(&F.lock);
                                bool x = F.dlq_hb && F.dlq_hb_pending == pending;
                                pthread_mutex_unlock(&F.lock);
                                x;
                            }),
                            3000);
    CHECK(hb_ok);
}

TEST_CASE("PURGE removes one letter, or all that match a filter", t_purge)
{
    event_t e;
    s_event(&e, "t.ok.purge");
    uint8_t id[16];
    CHECK(s_put(&e, "ghost/purge", "ghost", id, NULL) == 0);
    char code[64];
    uint64_t purged = s_announced(4);
    CHECK_EQ_INT(s_by_id("PURGE", id, code), 1);
    letter_t l;
    CHECK_EQ_INT(s_get(id, &l), 1);
    CHECK_EQ_INT(s_by_id("PURGE", id, code), -1);
    CHECK_STR(code, "not_found");
    /* By filter: all ghost/b letters (10), and only them. */
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    pk_kv_str(&pk, "subscriber", "ghost/b");
    resp_t r;
    CHECK(s_call("PURGE", &sb, &r) == 0 && r.ok);
    CHECK_EQ_INT(s_u64(r.body, "count"), 10);
    s_resp_clear(&r);
    uint8_t got[64][16];
    CHECK_EQ_INT(s_list_all("ghost/b", NULL, NULL, NULL, 100, got, 64, NULL), 0);
    CHECK_EQ_INT(s_list_all("ghost/a", NULL, NULL, NULL, 100, got, 64, NULL), 15);
    CHECK(WAIT_UNTIL(s_announced(4) >= purged + 2, 3000));
    /* RETRY by filter: the ghost/a letters are pending already; they are made due now. */
    msgpack_sbuffer_clear(&sb);
    msgpack_pack_map(&pk, 2);
    pk_kv_str(&pk, "subscriber", "ghost/a");
    pk_kv_str(&pk, "state", "pending");
    CHECK(s_call("RETRY", &sb, &r) == 0 && r.ok);
    CHECK_EQ_INT(s_u64(r.body, "count"), 15);
    s_resp_clear(&r);
    /* Without id or filter, all: true is required. */
    msgpack_sbuffer_clear(&sb);
    msgpack_pack_map(&pk, 0);
    CHECK(s_call("PURGE", &sb, &r) == 0 && !r.ok);
    CHECK_STR(r.code, "bad_request");
    s_resp_clear(&r);
    msgpack_sbuffer_destroy(&sb);
}

/*  RETRY and PURGE by filter, each with a PUT sent right behind it on the same connection (so
    the DLQ reads the PUT after the request, mostly within the same millisecond): the request
    covers the letter stored just before it and never the one stored after it. */
TEST_CASE("RETRY and PURGE by filter cover exactly the letters stored before them", t_bulk_cut)
{
    msgpack_sbuffer sb, put;
    msgpack_sbuffer_init(&sb);
    msgpack_sbuffer_init(&put);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    int wrong = 0;
    for (int i = 0; i < 40; i++) {
        bool purge = i % 2 == 0;
        char sub[32];
        snprintf(sub, sizeof(sub), "ghost/cut%d", i);
        event_t before, after;
        s_event(&before, "t.ok.cut");
        s_event(&after, "t.ok.cut");
        uint8_t id_before[16];
        CHECK(s_put(&before, sub, "ghost", id_before, NULL) == 0);
        msgpack_sbuffer_clear(&sb);
        msgpack_pack_map(&pk, 1);
        pk_kv_str(&pk, "subscriber", sub);
        s_put_args(&put, &after, sub, "ghost", "h.first", "first failure", 3);
        int64_t rid = weft_ctl_send(s_ctl, purge ? "PURGE" : "RETRY", sb.data, sb.size);
        CHECK(rid > 0);
        CHECK(weft_ctl_send(s_ctl, "PUT", put.data, put.size) > 0);
        /* The PUT's reply may come first; it is not needed (LIST below runs after the PUT). */
        weft_reply_t reply;
        CHECK_EQ_INT(weft_ctl_recv(s_ctl, (uint64_t)rid, 5000, &reply), WEFT_OK);
        msgpack_unpacked u;
        msgpack_unpacked_init(&u);
        size_t off = 0;
        bool ok = strcmp(reply.status, "OK") == 0 &&
                  msgpack_unpack_next(&u, (const char *)reply.body, reply.body_size, &off) ==
                      MSGPACK_UNPACK_SUCCESS;
        uint64_t count = ok ? s_u64(&u.data, "count") : UINT64_MAX;
        msgpack_unpacked_destroy(&u);
        weft_reply_clear(&reply);
        CHECK(ok);
        uint8_t got[4][16];
        int listed = s_list_all(sub, NULL, NULL, NULL, 10, got, 4, NULL);
        CHECK(listed >= 0);
        if (count != 1 || listed != (purge ? 1 : 2)) {
            fprintf(stderr, "  %s %s: count %" PRIu64 ", %d letters left\n",
                    purge ? "PURGE" : "RETRY", sub, count, listed);
            wrong++;
        }
    }
    msgpack_sbuffer_destroy(&put);
    msgpack_sbuffer_destroy(&sb);
    CHECK_EQ_INT(wrong, 0);
}

TEST_CASE("kill -9 after acknowledged PUTs loses none; a redelivery in flight is redone",
          t_kill9)
{
    enum { N = 300 };
    static uint8_t ids[N][16];
    for (int i = 0; i < N; i++) {
        event_t e;
        s_event(&e, "t.ok.k9");
        CHECK(s_put(&e, "ghost/k9", "ghost", ids[i], NULL) == 0);
    }
    /* A letter whose REDELIVER is never answered: kill while it is in flight. */
    event_t hold;
    s_event(&hold, "t.hold.crash");
    uint8_t hid[16];
    CHECK(s_put(&hold, "fake-sub/crash", "fake-sub", hid, NULL) == 0);
    CHECK(WAIT_UNTIL(s_redelivers(hid, NULL, NULL, 0) == 1, 5000));
    s_dlq_stop(&s_dlq, SIGKILL);
    CHECK_EQ_INT(s_redelivers(hid, NULL, NULL, 0), 1);
    CHECK(s_dlq_start(&s_dlq) == 0);
    static uint8_t got[N + 8][16];
    CHECK_EQ_INT(s_list_all("ghost/k9", NULL, NULL, NULL, 128, got, N + 8, NULL), N);
    CHECK(memcmp(got, ids, sizeof(ids)) == 0); /* every one, in PUT order */
    /* The letter that was in flight is pending again and redelivered. */
    CHECK(WAIT_UNTIL(s_redelivers(hid, NULL, NULL, 0) >= 2, 10000));
    letter_t l;
    CHECK(s_get(hid, &l) == 0);
    CHECK(l.redeliveries >= 2);
}

TEST_CASE("malformed requests get ERR bad_request; unknown commands unknown_command",
          t_malformed)
{
    char code[64];
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    event_t e;
    s_event(&e, "t.ok.bad");

    /* PUT without event, subscriber, error */
    msgpack_pack_map(&pk, 1);
    pk_kv_str(&pk, "subscriber", "x/y");
    s_code_of("PUT", sb.data, sb.size, code);
    CHECK_STR(code, "bad_request");
    s_put_args(&sb, &e, "fake-sub/s1", "fake-sub", "c", "m", 1);
    s_code_of("PUT", sb.data, sb.size, code);
    CHECK_STR(code, "OK");
    /* bad envelope */
    event_t bad = e;
    bad.env[0] = 0x91; /* an array, not a map */
    s_put_args(&sb, &bad, "fake-sub/s1", "fake-sub", "c", "m", 1);
    s_code_of("PUT", sb.data, sb.size, code);
    CHECK_STR(code, "bad_request");
    /* bad topic */
    bad = e;
    snprintf(bad.topic, sizeof(bad.topic), "has space");
    s_put_args(&sb, &bad, "fake-sub/s1", "fake-sub", "c", "m", 1);
    s_code_of("PUT", sb.data, sb.size, code);
    CHECK_STR(code, "bad_request");
    snprintf(bad.topic, sizeof(bad.topic), "_weft.hb");
    s_put_args(&sb, &bad, "fake-sub/s1", "fake-sub", "c", "m", 1);
    s_code_of("PUT", sb.data, sb.size, code);
    CHECK_STR(code, "bad_request");
    /* subscriber over 255 bytes, empty code, code over 63 bytes */
    char longs[300];
    memset(longs, 'a', sizeof(longs) - 1);
    longs[299] = 0;
    s_put_args(&sb, &e, longs, "fake-sub", "c", "m", 1);
    s_code_of("PUT", sb.data, sb.size, code);
    CHECK_STR(code, "bad_request");
    s_put_args(&sb, &e, "fake-sub/s1", "fake-sub", "", "m", 1);
    s_code_of("PUT", sb.data, sb.size, code);
    CHECK_STR(code, "bad_request");
    longs[64] = 0;
    s_put_args(&sb, &e, "fake-sub/s1", "fake-sub", longs, "m", 1);
    s_code_of("PUT", sb.data, sb.size, code);
    CHECK_STR(code, "bad_request");
    /* attempts beyond 32 bits, of the wrong type */
    msgpack_sbuffer_clear(&sb);
    msgpack_pack_map(&pk, 4);
    pk_str(&pk, "event");
    msgpack_pack_array(&pk, 3);
    pk_str(&pk, e.topic);
    msgpack_pack_bin(&pk, e.env_size);
    msgpack_pack_bin_body(&pk, e.env, e.env_size);
    msgpack_pack_bin(&pk, 0);
    pk_kv_str(&pk, "subscriber", "fake-sub/s1");
    pk_str(&pk, "error");
    msgpack_pack_map(&pk, 1);
    pk_kv_str(&pk, "code", "c");
    pk_kv_uint(&pk, "attempts", 1ull << 40);
    s_code_of("PUT", sb.data, sb.size, code);
    CHECK_STR(code, "bad_request");
    /* event elements of the wrong types */
    msgpack_sbuffer_clear(&sb);
    msgpack_pack_map(&pk, 3);
    pk_str(&pk, "event");
    msgpack_pack_array(&pk, 3);
    pk_str(&pk, e.topic);
    pk_str(&pk, "not bin");
    msgpack_pack_bin(&pk, 0);
    pk_kv_str(&pk, "subscriber", "fake-sub/s1");
    pk_str(&pk, "error");
    msgpack_pack_map(&pk, 1);
    pk_kv_str(&pk, "code", "c");
    s_code_of("PUT", sb.data, sb.size, code);
    CHECK_STR(code, "bad_request");
    /* declared counts far beyond the bytes: a map of 2^31 entries, an array of 2^32-1 */
    static const uint8_t huge_map[] = {0xdf, 0x7f, 0xff, 0xff, 0xff};
    static const uint8_t huge_array[] = {0x81, 0xa5, 'e', 'v', 'e', 'n', 't',
                                         0xdd, 0xff, 0xff, 0xff, 0xff};
    s_code_of("PUT", huge_map, sizeof(huge_map), code);
    CHECK_STR(code, "bad_request");
    s_code_of("PUT", huge_array, sizeof(huge_array), code);
    CHECK_STR(code, "bad_request");
    /* LIST with bad types */
    msgpack_sbuffer_clear(&sb);
    msgpack_pack_map(&pk, 1);
    pk_kv_str(&pk, "state", "bogus");
    s_code_of("LIST", sb.data, sb.size, code);
    CHECK_STR(code, "bad_request");
    msgpack_sbuffer_clear(&sb);
    msgpack_pack_map(&pk, 1);
    pk_kv_str(&pk, "limit", "10");
    s_code_of("LIST", sb.data, sb.size, code);
    CHECK_STR(code, "bad_request");
    msgpack_sbuffer_clear(&sb);
    msgpack_pack_map(&pk, 1);
    pk_kv_uint(&pk, "cursor", 7);
    s_code_of("LIST", sb.data, sb.size, code);
    CHECK_STR(code, "bad_request");
    msgpack_sbuffer_clear(&sb);
    msgpack_pack_map(&pk, 1);
    pk_kv_uint(&pk, "subscriber", 7);
    s_code_of("LIST", sb.data, sb.size, code);
    CHECK_STR(code, "bad_request");
    /* GET / RETRY without what they need */
    s_code_of("GET", NULL, 0, code);
    CHECK_STR(code, "bad_request");
    msgpack_sbuffer_clear(&sb);
    msgpack_pack_map(&pk, 1);
    pk_kv_str(&pk, "id", "not-a-uuid");
    s_code_of("GET", sb.data, sb.size, code);
    CHECK_STR(code, "bad_request");
    s_code_of("RETRY", NULL, 0, code);
    CHECK_STR(code, "bad_request");
    /* A uuid string is accepted as id. */
    char text[WEFT_ID_STR];
    uint8_t zero[16] = {0};
    msgpack_sbuffer_clear(&sb);
    msgpack_pack_map(&pk, 1);
    pk_kv_str(&pk, "id", weft_id_format(zero, text));
    s_code_of("GET", sb.data, sb.size, code);
    CHECK_STR(code, "not_found");
    s_code_of("REPLAY", NULL, 0, code);
    CHECK_STR(code, "unknown_command");
    s_code_of("PING", NULL, 0, code);
    CHECK_STR(code, "OK");
    msgpack_sbuffer_destroy(&sb);
}

TEST_CASE("SIGTERM stops the DLQ cleanly", t_sigterm)
{
    CHECK_EQ_INT(s_dlq_stop(&s_dlq, SIGTERM), 0);
    /* and it starts again on the same store */
    CHECK(s_dlq_start(&s_dlq) == 0);
    char code[64];
    s_code_of("PING", NULL, 0, code);
    CHECK_STR(code, "OK");
    CHECK_EQ_INT(s_dlq_stop(&s_dlq, SIGINT), 0);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_dlq_node PATH/TO/weft-dlq\n");
        return 2;
    }
    s_bin = argv[1];
    snprintf(s_tmp, sizeof(s_tmp), "/tmp/weft-dlq-XXXXXX");
    if (!mkdtemp(s_tmp))
        return 1;
    zsys_init();
    memset(&s_dlq, 0, sizeof(s_dlq));
    snprintf(s_dlq.dir, sizeof(s_dlq.dir), "%s/dlq", s_tmp);
    snprintf(s_dlq.ready, sizeof(s_dlq.ready), "%s/dlq.ready", s_tmp);
    snprintf(s_dlq.log, sizeof(s_dlq.log), "%s/dlq.log", s_tmp);
    snprintf(s_dlq.seed, sizeof(s_dlq.seed), "tcp://127.0.0.1:%d", s_free_port());
    snprintf(s_dlq.bind, sizeof(s_dlq.bind), "tcp://127.0.0.1:%d", s_free_port());
    pthread_mutex_init(&F.lock, NULL);
    F.seen = zhashx_new();
    F.healed = zhashx_new();
    for (int i = 0; i < NIDENT; i++)
        F.inst[i] = ((uint64_t)randof(0x7fffffff) << 32) | (uint64_t)(i + 1);
    snprintf(F.dlq_sub, sizeof(F.dlq_sub), "%s", s_dlq.bind);
    F.hb_on[0] = true;
    if (s_dlq_start(&s_dlq) != 0) {
        fprintf(stderr, "weft-dlq did not start (log: %s)\n", s_dlq.log);
        return 1;
    }
    s_fake = zactor_new(s_fake_actor, NULL);
    /* The DLQ has learned the fake subscriber and connected to it once its heartbeats (with
       their "dlq" section) arrive. */
    bool connected = WAIT_UNTIL(({
                                    pthread_mutex_lock(&F.lock);
                                    bool x = F.dlq_hb;
                                    pthread_mutex_unlock(&F.lock);
                                    x;
                                }),
                                10000);
    if (!connected)
        fprintf(stderr, "no heartbeat from weft-dlq\n");
    RUN_CASE("PUT is acknowledged and idempotent; a redelivery answered ok resolves", t_put_ok);
    RUN_CASE("K failed redeliveries then ok: resolved after K+1, backoff respected",
             t_fail_then_ok);
    RUN_CASE("a letter that keeps failing is parked after max attempts, error kept", t_parked);
    RUN_CASE("RETRY of a parked letter redelivers it with a fresh budget", t_retry_parked);
    RUN_CASE("no answer fails with dlq.timeout; ERR not_found with dlq.no_subscriber",
             t_timeout_gone);
    RUN_CASE("an absent subscriber costs no attempts and gets its letter when it comes up",
             t_subscriber_down);
    RUN_CASE("end to end: a real node dead-letters a failing event, the DLQ redelivers it",
             t_end_to_end);
    RUN_CASE("LIST filters and pages; INFO and heartbeats count", t_list_info);
    RUN_CASE("PURGE removes one letter, or all that match a filter", t_purge);
    RUN_CASE("RETRY and PURGE by filter cover exactly the letters stored before them",
             t_bulk_cut);
    RUN_CASE("kill -9 after acknowledged PUTs loses none; a redelivery in flight is redone",
             t_kill9);
    RUN_CASE("malformed requests get ERR bad_request; unknown commands unknown_command",
             t_malformed);
    RUN_CASE("SIGTERM stops the DLQ cleanly", t_sigterm);
    s_dlq_stop(&s_dlq, SIGTERM);
    weft_ctl_destroy(&s_ctl);
    zactor_destroy(&s_fake);
    zhashx_destroy(&F.seen);
    zhashx_destroy(&F.healed);
    int failed = t_failed_cases;
    if (failed) {
        fprintf(stderr, "weft-dlq log (%s):\n", s_dlq.log);
        char cmd[256];
        snprintf(cmd, sizeof(cmd), "tail -n 30 %s >&2", s_dlq.log);
        if (system(cmd) != 0)
            fprintf(stderr, "(no log)\n");
    }
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", s_tmp);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", s_tmp);
    return TEST_EXIT();
}

/*  test_dlq_store.c - unit tests for dlq_store (src/dlq_store.h), the DLQ's LMDB store of dead
    letters: letters read back exactly, PUT is idempotent per (event, subscriber) and reopens
    resolved letters, updates move letters between states and in and out of the retry index,
    the counts follow a model through thousands of random operations, due/next_due/list answer
    from the right index with filters and cursor paging, letter ids increase strictly in the
    order letters are stored (so dlq_store_last_id bounds a bulk request exactly), delete
    leaves no index entry behind, the lock and format checks refuse what they must, damaged
    records are errors and not crashes, the map grows and then fails clearly, and a writer
    killed with SIGKILL loses no acknowledged letter.

    Each case runs in a fresh mkdtemp directory, removed afterwards. The case that forks can be
    skipped with DLQ_TEST_NO_FORK=1 (for runs under tools that dislike fork + kill).
*/
#define _GNU_SOURCE
#include <errno.h>
#include <ftw.h>
#include <lmdb.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dlq_store.h"
#include "testing.h"
#include "weft/envelope.h"
#include "weft/error.h"

/* ---- fixture --------------------------------------------------------------------------------- */

static char g_dir[64];        /* this case's store directory */
static dlq_store_t *g_s;      /* closed by teardown if a case stops early */
static uint8_t *g_buf;        /* a dlq_store_get buffer, freed by teardown */
static void *g_mem;           /* any other allocation of a case, freed by teardown */

static int s_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void t_setup(void)
{
    snprintf(g_dir, sizeof(g_dir), "/tmp/weft-dlq-test-XXXXXX");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        exit(1);
    }
}

static void t_teardown(void)
{
    dlq_store_close(&g_s);
    free(g_buf);
    g_buf = NULL;
    free(g_mem);
    g_mem = NULL;
    nftw(g_dir, s_rm, 16, FTW_DEPTH | FTW_PHYS);
}

#define RUN(name, fn)                                                                           \
    do {                                                                                        \
        t_setup();                                                                              \
        RUN_CASE(name, fn);                                                                     \
        t_teardown();                                                                           \
    } while (0)

static dlq_store_t *t_open_sync(bool sync_always)
{
    int err = 0;
    char why[512] = "";
    dlq_store_t *s = dlq_store_open(g_dir, sync_always, &err, why, sizeof(why));
    if (!s)
        fprintf(stderr, "  open failed: %d %s\n", err, why);
    return s;
}

static dlq_store_t *t_open(void)
{
    return t_open_sync(false);
}

/* A deterministic 16-byte event id from a number. */
static void t_event_id(uint8_t id[WEFT_ID_SIZE], unsigned n)
{
    memset(id, 0xe0, WEFT_ID_SIZE);
    id[12] = (uint8_t)(n >> 24);
    id[13] = (uint8_t)(n >> 16);
    id[14] = (uint8_t)(n >> 8);
    id[15] = (uint8_t)n;
}

/* A letter with every field set; event frames point at the given bytes. */
static void t_letter(dlq_letter_t *l, unsigned event, const char *sub, const char *topic,
                     int64_t first_failure, int64_t next_retry_at)
{
    memset(l, 0, sizeof(*l));
    t_event_id(l->event_id, event);
    snprintf(l->subscriber, sizeof(l->subscriber), "%s", sub);
    snprintf(l->node, sizeof(l->node), "%.*s", (int)strcspn(sub, "/"), sub);
    snprintf(l->topic, sizeof(l->topic), "%s", topic);
    snprintf(l->code, sizeof(l->code), "handler_failed");
    snprintf(l->message, sizeof(l->message), "event %u failed", event);
    l->attempts = 3;
    l->redeliveries = 0;
    l->first_failure = first_failure;
    l->last_failure = first_failure + 10;
    l->next_retry_at = next_retry_at;
    l->state = DLQ_PENDING;
    static const uint8_t env[] = {0x81, 0xa1, 'v', 0x01};
    static const uint8_t pay[] = "payload bytes";
    l->envelope = env;
    l->envelope_size = sizeof(env);
    l->payload = pay;
    l->payload_size = sizeof(pay) - 1;
}

static dlq_filter_t t_any(void)
{
    return (dlq_filter_t){.state = -1};
}

/* Collects the ids a listing visits. */
typedef struct {
    uint8_t ids[1024][WEFT_ID_SIZE];
    dlq_letter_t last;
    size_t n;
    size_t stop_after; /* 0: never stop */
} coll_t;

static int coll_fn(const dlq_letter_t *l, void *arg)
{
    coll_t *c = arg;
    if (c->n < 1024)
        memcpy(c->ids[c->n], l->id, WEFT_ID_SIZE);
    c->last = *l;
    c->n++;
    return c->stop_after && c->n >= c->stop_after;
}

static int id_cmp(const void *a, const void *b)
{
    return memcmp(a, b, WEFT_ID_SIZE);
}

/* Opens the environment directly with LMDB (the store must be closed). */
static int t_raw_begin(MDB_env **env, MDB_txn **txn)
{
    int rc = mdb_env_create(env);
    if (!rc)
        rc = mdb_env_set_maxdbs(*env, 8);
    if (!rc)
        rc = mdb_env_open(*env, g_dir, 0, 0644);
    if (!rc)
        rc = mdb_txn_begin(*env, NULL, 0, txn);
    return rc;
}

static int t_raw_put(const char *db, const void *k, size_t klen, const void *v, size_t vlen)
{
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    MDB_dbi dbi;
    int rc = t_raw_begin(&env, &txn);
    if (!rc)
        rc = mdb_dbi_open(txn, db, 0, &dbi);
    MDB_val kv = {klen, (void *)k}, vv = {vlen, (void *)v};
    if (!rc)
        rc = mdb_put(txn, dbi, &kv, &vv, 0);
    if (!rc)
        rc = mdb_txn_commit(txn);
    else if (txn)
        mdb_txn_abort(txn);
    if (env)
        mdb_env_close(env);
    return rc;
}

/* Index entries (in any database but letters and meta) that mention id; -1 on failure. */
static long t_raw_refs(const uint8_t id[WEFT_ID_SIZE])
{
    static const char *const dbs[] = {"by_key", "by_retry", "by_sub", "by_topic"};
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    long refs = 0;
    int rc = t_raw_begin(&env, &txn);
    for (size_t i = 0; !rc && i < 4; i++) {
        MDB_dbi dbi;
        MDB_cursor *c;
        rc = mdb_dbi_open(txn, dbs[i], 0, &dbi);
        if (!rc)
            rc = mdb_cursor_open(txn, dbi, &c);
        if (rc)
            break;
        MDB_val k, v;
        while (mdb_cursor_get(c, &k, &v, MDB_NEXT) == 0) {
            if (memmem(k.mv_data, k.mv_size, id, WEFT_ID_SIZE) ||
                memmem(v.mv_data, v.mv_size, id, WEFT_ID_SIZE))
                refs++;
        }
        mdb_cursor_close(c);
    }
    if (txn)
        mdb_txn_abort(txn);
    if (env)
        mdb_env_close(env);
    return rc ? -1 : refs;
}

static uint64_t t_rand_state = 0x9e3779b97f4a7c15ull;

static uint64_t t_rand(void)
{
    uint64_t x = t_rand_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return t_rand_state = x;
}

/* ---- cases ----------------------------------------------------------------------------------- */

TEST_CASE("a stored letter reads back with every field and the event bytes", t_round_trip)
{
    CHECK((g_s = t_open()) != NULL);
    size_t psize = 100000;
    uint8_t *pay = g_mem = malloc(psize);
    CHECK(pay != NULL);
    for (size_t i = 0; i < psize; i++)
        pay[i] = (uint8_t)(i * 7 + 3);
    uint8_t env[300];
    for (size_t i = 0; i < sizeof(env); i++)
        env[i] = (uint8_t)(255 - i);

    dlq_letter_t in;
    t_letter(&in, 1, "billing/invoices", "orders.created", 1000, 5000);
    memset(in.subscriber, 's', DLQ_SUBSCRIBER_MAX);
    in.subscriber[DLQ_SUBSCRIBER_MAX] = 0;
    memset(in.node, 'n', WEFT_NAME_MAX);
    in.node[WEFT_NAME_MAX] = 0;
    memset(in.topic, 't', WEFT_TOPIC_MAX);
    in.topic[WEFT_TOPIC_MAX] = 0;
    memset(in.code, 'c', DLQ_CODE_MAX);
    in.code[DLQ_CODE_MAX] = 0;
    memset(in.message, 'm', DLQ_MESSAGE_MAX);
    in.message[DLQ_MESSAGE_MAX] = 0;
    in.attempts = UINT32_MAX;
    in.redeliveries = 7;
    in.first_failure = -5;
    in.last_failure = INT64_MAX;
    in.next_retry_at = 1234567890123456789ll;
    in.state = DLQ_PARKED; /* ignored: a new letter is pending */
    in.envelope = env;
    in.envelope_size = sizeof(env);
    in.payload = pay;
    in.payload_size = psize;

    uint8_t id[WEFT_ID_SIZE];
    bool created = false;
    CHECK_EQ_INT(dlq_store_put(g_s, &in, id, &created), WEFT_OK);
    CHECK(created);

    dlq_letter_t out;
    CHECK_EQ_INT(dlq_store_get(g_s, id, &out, &g_buf), WEFT_OK);
    CHECK(g_buf != NULL);
    CHECK(memcmp(out.id, id, WEFT_ID_SIZE) == 0);
    CHECK(memcmp(out.event_id, in.event_id, WEFT_ID_SIZE) == 0);
    CHECK_STR(out.subscriber, in.subscriber);
    CHECK_STR(out.node, in.node);
    CHECK_STR(out.topic, in.topic);
    CHECK_STR(out.code, in.code);
    CHECK_STR(out.message, in.message);
    CHECK(out.attempts == UINT32_MAX);
    CHECK_EQ_INT(out.redeliveries, 7);
    CHECK_EQ_INT(out.first_failure, -5);
    CHECK(out.last_failure == INT64_MAX);
    CHECK_EQ_INT(out.next_retry_at, 1234567890123456789ll);
    CHECK_EQ_INT(out.state, DLQ_PENDING);
    CHECK_EQ_INT(out.envelope_size, sizeof(env));
    CHECK(memcmp(out.envelope, env, sizeof(env)) == 0);
    CHECK_EQ_INT(out.payload_size, psize);
    CHECK(memcmp(out.payload, pay, psize) == 0);
    free(g_buf);
    g_buf = NULL;

    /* an event without payload, and the same after reopening */
    dlq_letter_t in2;
    t_letter(&in2, 2, "a/b", "x", 1, 2);
    in2.payload = NULL;
    in2.payload_size = 0;
    uint8_t id2[WEFT_ID_SIZE];
    CHECK_EQ_INT(dlq_store_put(g_s, &in2, id2, NULL), WEFT_OK);
    dlq_store_close(&g_s);
    CHECK((g_s = t_open()) != NULL);
    CHECK_EQ_INT(dlq_store_get(g_s, id2, &out, &g_buf), WEFT_OK);
    CHECK_EQ_INT(out.payload_size, 0);
    CHECK_EQ_INT(out.envelope_size, in2.envelope_size);
    CHECK(memcmp(out.envelope, in2.envelope, in2.envelope_size) == 0);
    CHECK_STR(out.node, "a");
    free(g_buf);
    g_buf = NULL;
    CHECK_EQ_INT(dlq_store_get(g_s, id, &out, &g_buf), WEFT_OK);
    CHECK(memcmp(out.payload, pay, psize) == 0);

    /* unknown ids, bad input */
    uint8_t none[WEFT_ID_SIZE] = {0};
    uint8_t *b2 = NULL;
    CHECK_EQ_INT(dlq_store_get(g_s, none, &out, &b2), WEFT_ENOTFOUND);
    CHECK(b2 == NULL);
    CHECK(strstr(dlq_store_last_error(g_s), "no letter") != NULL);
    dlq_letter_t bad = in2;
    bad.subscriber[0] = 0;
    CHECK_EQ_INT(dlq_store_put(g_s, &bad, id2, NULL), WEFT_EINVAL);
    bad = in2;
    snprintf(bad.topic, sizeof(bad.topic), "has space");
    CHECK_EQ_INT(dlq_store_put(g_s, &bad, id2, NULL), WEFT_ETOPIC);
    bad = in2;
    bad.envelope = NULL;
    CHECK_EQ_INT(dlq_store_put(g_s, &bad, id2, NULL), WEFT_EINVAL);
    bad = in2;
    memset(bad.code, 'x', sizeof(bad.code)); /* unterminated */
    CHECK_EQ_INT(dlq_store_put(g_s, &bad, id2, NULL), WEFT_EINVAL);
    dlq_counts_t c;
    dlq_store_counts(g_s, &c);
    CHECK_EQ_INT(c.pending, 2);

    CHECK_STR(dlq_store_state_name(DLQ_PENDING), "pending");
    CHECK_STR(dlq_store_state_name(DLQ_RETRYING), "retrying");
    CHECK_STR(dlq_store_state_name(DLQ_PARKED), "parked");
    CHECK_STR(dlq_store_state_name(DLQ_RESOLVED), "resolved");
    CHECK_EQ_INT(dlq_store_state_parse("parked"), DLQ_PARKED);
    CHECK_EQ_INT(dlq_store_state_parse("resolved"), DLQ_RESOLVED);
    CHECK_EQ_INT(dlq_store_state_parse("bogus"), -1);
    CHECK_EQ_INT(dlq_store_state_parse(NULL), -1);
}

TEST_CASE("put is idempotent per event and subscriber; another subscriber gets its own letter",
          t_idempotent)
{
    CHECK((g_s = t_open()) != NULL);
    dlq_letter_t l;
    t_letter(&l, 10, "n1/s1", "orders.created", 100, 200);
    uint8_t id1[WEFT_ID_SIZE], id2[WEFT_ID_SIZE], id3[WEFT_ID_SIZE];
    bool created = false;
    CHECK_EQ_INT(dlq_store_put(g_s, &l, id1, &created), WEFT_OK);
    CHECK(created);

    /* the same failure reported again (other attempts, other error): left as is */
    dlq_letter_t again = l;
    again.attempts = 9;
    snprintf(again.code, sizeof(again.code), "other");
    again.next_retry_at = 999;
    created = true;
    CHECK_EQ_INT(dlq_store_put(g_s, &again, id2, &created), WEFT_OK);
    CHECK(!created);
    CHECK(memcmp(id1, id2, WEFT_ID_SIZE) == 0);
    dlq_letter_t out;
    CHECK_EQ_INT(dlq_store_get(g_s, id1, &out, &g_buf), WEFT_OK);
    CHECK_EQ_INT(out.attempts, 3);
    CHECK_STR(out.code, "handler_failed");
    CHECK_EQ_INT(out.next_retry_at, 200);
    free(g_buf);
    g_buf = NULL;

    /* also when it is retrying or parked, and across reopen */
    dlq_store_close(&g_s);
    CHECK((g_s = t_open()) != NULL);
    out = l;
    memcpy(out.id, id1, WEFT_ID_SIZE);
    out.state = DLQ_PARKED;
    CHECK_EQ_INT(dlq_store_update(g_s, &out), WEFT_OK);
    CHECK_EQ_INT(dlq_store_put(g_s, &again, id2, &created), WEFT_OK);
    CHECK(!created);
    CHECK(memcmp(id1, id2, WEFT_ID_SIZE) == 0);

    /* a different subscriber of the same event */
    dlq_letter_t other = l;
    snprintf(other.subscriber, sizeof(other.subscriber), "n2/s1");
    CHECK_EQ_INT(dlq_store_put(g_s, &other, id3, &created), WEFT_OK);
    CHECK(created);
    CHECK(memcmp(id1, id3, WEFT_ID_SIZE) != 0);
    /* a subscriber whose name extends the first one's is a different subscriber too */
    dlq_letter_t longer = l;
    snprintf(longer.subscriber, sizeof(longer.subscriber), "n1/s10");
    CHECK_EQ_INT(dlq_store_put(g_s, &longer, id2, &created), WEFT_OK);
    CHECK(created);

    dlq_counts_t c;
    dlq_store_counts(g_s, &c);
    CHECK_EQ_INT(c.pending, 2);
    CHECK_EQ_INT(c.parked, 1);
    CHECK_EQ_INT(c.retrying + c.resolved, 0);
}

TEST_CASE("a put of a resolved letter's event reopens that letter", t_reopen)
{
    CHECK((g_s = t_open()) != NULL);
    dlq_letter_t l;
    t_letter(&l, 20, "n/s", "t.a", 1000, 2000);
    uint8_t id[WEFT_ID_SIZE], id2[WEFT_ID_SIZE];
    bool created;
    CHECK_EQ_INT(dlq_store_put(g_s, &l, id, &created), WEFT_OK);
    dlq_letter_t u = l;
    memcpy(u.id, id, WEFT_ID_SIZE);
    u.state = DLQ_RESOLVED;
    u.redeliveries = 4;
    u.attempts = 6;
    CHECK_EQ_INT(dlq_store_update(g_s, &u), WEFT_OK);
    uint8_t due[4][WEFT_ID_SIZE];
    CHECK_EQ_INT(dlq_store_due(g_s, INT64_MAX, due, 4), 0);
    dlq_counts_t c;
    dlq_store_counts(g_s, &c);
    CHECK_EQ_INT(c.resolved, 1);
    CHECK_EQ_INT(c.pending, 0);

    dlq_letter_t again;
    t_letter(&again, 20, "n/s", "t.a", 50000, 60000);
    again.attempts = 1;
    snprintf(again.code, sizeof(again.code), "timeout");
    snprintf(again.message, sizeof(again.message), "took too long");
    CHECK_EQ_INT(dlq_store_put(g_s, &again, id2, &created), WEFT_OK);
    CHECK(!created);
    CHECK(memcmp(id, id2, WEFT_ID_SIZE) == 0);

    dlq_letter_t out;
    CHECK_EQ_INT(dlq_store_get(g_s, id, &out, &g_buf), WEFT_OK);
    CHECK_EQ_INT(out.state, DLQ_PENDING);
    CHECK_EQ_INT(out.attempts, 1);
    CHECK_EQ_INT(out.redeliveries, 0);
    CHECK_STR(out.code, "timeout");
    CHECK_STR(out.message, "took too long");
    CHECK_EQ_INT(out.first_failure, 1000); /* the letter's history stays */
    CHECK_EQ_INT(out.last_failure, 50010);
    CHECK_EQ_INT(out.next_retry_at, 60000);
    CHECK_EQ_INT(out.payload_size, l.payload_size);
    CHECK(memcmp(out.payload, l.payload, l.payload_size) == 0);
    dlq_store_counts(g_s, &c);
    CHECK_EQ_INT(c.resolved, 0);
    CHECK_EQ_INT(c.pending, 1);
    CHECK_EQ_INT(dlq_store_due(g_s, 59999, due, 4), 0);
    CHECK_EQ_INT(dlq_store_due(g_s, 60000, due, 4), 1);
    CHECK(memcmp(due[0], id, WEFT_ID_SIZE) == 0);
    CHECK_EQ_INT(dlq_store_next_due(g_s), 60000);
}

TEST_CASE("update moves a letter between states and in and out of the retry index", t_update)
{
    CHECK((g_s = t_open()) != NULL);
    dlq_letter_t l;
    t_letter(&l, 30, "n/s", "t.b", 100, 500);
    uint8_t id[WEFT_ID_SIZE], due[4][WEFT_ID_SIZE];
    CHECK_EQ_INT(dlq_store_put(g_s, &l, id, NULL), WEFT_OK);
    CHECK_EQ_INT(dlq_store_next_due(g_s), 500);

    dlq_letter_t u;
    dlq_counts_t c;
    CHECK_EQ_INT(dlq_store_get(g_s, id, &u, &g_buf), WEFT_OK);
    u.state = DLQ_RETRYING;
    u.redeliveries = 1;
    snprintf(u.topic, sizeof(u.topic), "ignored.topic"); /* not a mutable field */
    snprintf(u.subscriber, sizeof(u.subscriber), "ignored/sub");
    CHECK_EQ_INT(dlq_store_update(g_s, &u), WEFT_OK);
    CHECK_EQ_INT(dlq_store_due(g_s, INT64_MAX, due, 4), 0);
    CHECK_EQ_INT(dlq_store_next_due(g_s), 0);
    dlq_store_counts(g_s, &c);
    CHECK_EQ_INT(c.pending, 0);
    CHECK_EQ_INT(c.retrying, 1);

    /* the redelivery failed: pending again, later */
    u.state = DLQ_PENDING;
    u.attempts = 4;
    u.last_failure = 700;
    u.next_retry_at = 900;
    snprintf(u.code, sizeof(u.code), "again");
    snprintf(u.message, sizeof(u.message), "still failing");
    CHECK_EQ_INT(dlq_store_update(g_s, &u), WEFT_OK);
    CHECK_EQ_INT(dlq_store_due(g_s, 899, due, 4), 0);
    CHECK_EQ_INT(dlq_store_due(g_s, 900, due, 4), 1);
    CHECK_EQ_INT(dlq_store_next_due(g_s), 900);

    /* a pending letter whose time moves keeps exactly one retry entry */
    u.next_retry_at = 300;
    CHECK_EQ_INT(dlq_store_update(g_s, &u), WEFT_OK);
    CHECK_EQ_INT(dlq_store_due(g_s, INT64_MAX, due, 4), 1);
    CHECK_EQ_INT(dlq_store_next_due(g_s), 300);

    u.state = DLQ_PARKED;
    CHECK_EQ_INT(dlq_store_update(g_s, &u), WEFT_OK);
    CHECK_EQ_INT(dlq_store_due(g_s, INT64_MAX, due, 4), 0);
    dlq_store_counts(g_s, &c);
    CHECK_EQ_INT(c.parked, 1);
    CHECK_EQ_INT(c.pending + c.retrying + c.resolved, 0);

    dlq_letter_t out;
    free(g_buf);
    g_buf = NULL;
    CHECK_EQ_INT(dlq_store_get(g_s, id, &out, &g_buf), WEFT_OK);
    CHECK_EQ_INT(out.state, DLQ_PARKED);
    CHECK_EQ_INT(out.attempts, 4);
    CHECK_EQ_INT(out.redeliveries, 1);
    CHECK_EQ_INT(out.last_failure, 700);
    CHECK_EQ_INT(out.next_retry_at, 300);
    CHECK_STR(out.code, "again");
    CHECK_STR(out.message, "still failing");
    CHECK_STR(out.topic, "t.b");
    CHECK_STR(out.subscriber, "n/s");
    CHECK_EQ_INT(out.first_failure, 100);
    CHECK(memcmp(out.payload, l.payload, l.payload_size) == 0);

    u.state = DLQ_RESOLVED;
    CHECK_EQ_INT(dlq_store_update(g_s, &u), WEFT_OK);
    dlq_store_counts(g_s, &c);
    CHECK_EQ_INT(c.resolved, 1);
    CHECK_EQ_INT(c.parked, 0);

    /* errors */
    dlq_letter_t missing = u;
    memset(missing.id, 0x11, WEFT_ID_SIZE);
    CHECK_EQ_INT(dlq_store_update(g_s, &missing), WEFT_ENOTFOUND);
    u.state = (dlq_state_t)9;
    CHECK_EQ_INT(dlq_store_update(g_s, &u), WEFT_EINVAL);
    dlq_store_counts(g_s, &c);
    CHECK_EQ_INT(c.resolved, 1);
}

/* ---- the model of the random-operations case ------------------------------------------------- */

#define M_EVENTS 150
#define M_SUBS 3
#define M_KEYS (M_EVENTS * M_SUBS)

typedef struct {
    bool live;
    uint8_t id[WEFT_ID_SIZE];
    int state;
    int64_t nra;
} m_letter_t;

typedef struct {
    int64_t nra;
    uint8_t id[WEFT_ID_SIZE];
} m_due_t;

static int m_due_cmp(const void *a, const void *b)
{
    const m_due_t *x = a, *y = b;
    if (x->nra != y->nra)
        return x->nra < y->nra ? -1 : 1;
    return memcmp(x->id, y->id, WEFT_ID_SIZE);
}

static const char *const m_subs[M_SUBS] = {"n1/a", "n1/b", "n2/a"};

TEST_CASE("counts, due and list agree with a model through thousands of random operations",
          t_model)
{
    CHECK((g_s = t_open()) != NULL);
    m_letter_t *m = g_mem = calloc(M_KEYS, sizeof(*m));
    CHECK(m != NULL);
    static m_due_t want[M_KEYS];
    static uint8_t got[M_KEYS][WEFT_ID_SIZE];
    uint64_t mc[4] = {0};
    t_rand_state = 0x2545f4914f6cdd1dull;

    for (int op = 0; op < 4000; op++) {
        unsigned r = (unsigned)(t_rand() % 100);
        unsigned key = (unsigned)(t_rand() % M_KEYS);
        m_letter_t *e = &m[key];
        if (r < 45) {
            dlq_letter_t l;
            int64_t nra = (int64_t)(t_rand() % 10000);
            t_letter(&l, key / M_SUBS, m_subs[key % M_SUBS], (key & 1) ? "odd.t" : "even.t",
                     op, nra);
            uint8_t id[WEFT_ID_SIZE];
            bool created;
            CHECK_EQ_INT(dlq_store_put(g_s, &l, id, &created), WEFT_OK);
            CHECK(created == !e->live);
            if (!e->live) {
                e->live = true;
                memcpy(e->id, id, WEFT_ID_SIZE);
                e->state = DLQ_PENDING;
                e->nra = nra;
                mc[DLQ_PENDING]++;
            } else {
                CHECK(memcmp(e->id, id, WEFT_ID_SIZE) == 0);
                if (e->state == DLQ_RESOLVED) {
                    mc[DLQ_RESOLVED]--;
                    mc[DLQ_PENDING]++;
                    e->state = DLQ_PENDING;
                    e->nra = nra;
                }
            }
        } else if (r < 80) {
            dlq_letter_t l;
            t_letter(&l, key / M_SUBS, m_subs[key % M_SUBS], "even.t", 0, 0);
            int st = (int)(t_rand() % 4);
            int64_t nra = (int64_t)(t_rand() % 10000);
            memcpy(l.id, e->id, WEFT_ID_SIZE);
            l.state = (dlq_state_t)st;
            l.next_retry_at = nra;
            int rc = dlq_store_update(g_s, &l);
            if (!e->live) {
                CHECK_EQ_INT(rc, WEFT_ENOTFOUND);
                continue;
            }
            CHECK_EQ_INT(rc, WEFT_OK);
            mc[e->state]--;
            mc[st]++;
            e->state = st;
            e->nra = nra;
        } else {
            int rc = dlq_store_delete(g_s, e->id);
            if (!e->live) {
                CHECK_EQ_INT(rc, WEFT_ENOTFOUND);
                continue;
            }
            CHECK_EQ_INT(rc, WEFT_OK);
            mc[e->state]--;
            e->live = false;
        }
        dlq_counts_t c;
        dlq_store_counts(g_s, &c);
        CHECK_EQ_INT(c.pending, mc[0]);
        CHECK_EQ_INT(c.retrying, mc[1]);
        CHECK_EQ_INT(c.parked, mc[2]);
        CHECK_EQ_INT(c.resolved, mc[3]);

        if (op % 200 == 199) {
            int64_t now = (int64_t)(t_rand() % 11000);
            size_t nw = 0;
            int64_t first = INT64_MAX;
            for (unsigned k = 0; k < M_KEYS; k++) {
                if (m[k].live && m[k].state == DLQ_PENDING) {
                    if (m[k].nra < first)
                        first = m[k].nra;
                    if (m[k].nra <= now) {
                        want[nw].nra = m[k].nra;
                        memcpy(want[nw].id, m[k].id, WEFT_ID_SIZE);
                        nw++;
                    }
                }
            }
            qsort(want, nw, sizeof(want[0]), m_due_cmp);
            size_t n = dlq_store_due(g_s, now, got, M_KEYS);
            CHECK_EQ_INT(n, nw);
            for (size_t i = 0; i < n; i++)
                CHECK(memcmp(got[i], want[i].id, WEFT_ID_SIZE) == 0);
            /* 0 means "none", so a letter due at 0 reports 1 */
            int64_t next = mc[DLQ_PENDING] == 0 ? 0 : first == 0 ? 1 : first;
            CHECK_EQ_INT(dlq_store_next_due(g_s), next);
        }
    }

    /* after reopening, the counts in meta and a listing per state still agree */
    dlq_store_close(&g_s);
    CHECK((g_s = t_open()) != NULL);
    dlq_counts_t c;
    dlq_store_counts(g_s, &c);
    CHECK_EQ_INT(c.pending, mc[0]);
    CHECK_EQ_INT(c.retrying, mc[1]);
    CHECK_EQ_INT(c.parked, mc[2]);
    CHECK_EQ_INT(c.resolved, mc[3]);
    for (int st = 0; st < 4; st++) {
        dlq_filter_t f = t_any();
        f.state = st;
        bool more = true;
        size_t n = dlq_store_list(g_s, &f, 0, NULL, 0, NULL, NULL, NULL, &more);
        CHECK_EQ_INT(n, mc[st]);
        CHECK(!more);
    }
}

/* ---- due ------------------------------------------------------------------------------------- */

TEST_CASE("due returns exactly the pending letters with next_retry_at <= now, oldest first",
          t_due)
{
    CHECK((g_s = t_open()) != NULL);
    uint8_t ids[64][WEFT_ID_SIZE], got[64][WEFT_ID_SIZE];
    CHECK_EQ_INT(dlq_store_due(g_s, INT64_MAX, got, 64), 0);
    CHECK_EQ_INT(dlq_store_next_due(g_s), 0);

    /* 40 letters due at 1000 + (i * 37) % 40 * 10; every 4th one moved out of pending */
    m_due_t want[40];
    size_t nw = 0;
    for (unsigned i = 0; i < 40; i++) {
        dlq_letter_t l;
        int64_t at = 1000 + (int64_t)((i * 37) % 40) * 10;
        if (i == 5)
            at = 1100; /* two letters at the same time: ordered by id */
        t_letter(&l, i, "n/s", "due.t", i, at);
        CHECK_EQ_INT(dlq_store_put(g_s, &l, ids[i], NULL), WEFT_OK);
        if (i % 4 == 3) {
            memcpy(l.id, ids[i], WEFT_ID_SIZE);
            l.state = (dlq_state_t)(1 + (i / 4) % 3);
            CHECK_EQ_INT(dlq_store_update(g_s, &l), WEFT_OK);
        } else if (at <= 1200) {
            want[nw].nra = at;
            memcpy(want[nw].id, ids[i], WEFT_ID_SIZE);
            nw++;
        }
    }
    qsort(want, nw, sizeof(want[0]), m_due_cmp);
    size_t n = dlq_store_due(g_s, 1200, got, 64);
    CHECK_EQ_INT(n, nw);
    for (size_t i = 0; i < n; i++)
        CHECK(memcmp(got[i], want[i].id, WEFT_ID_SIZE) == 0);
    /* max caps it, keeping the oldest */
    CHECK_EQ_INT(dlq_store_due(g_s, 1200, got, 3), 3);
    for (size_t i = 0; i < 3; i++)
        CHECK(memcmp(got[i], want[i].id, WEFT_ID_SIZE) == 0);
    CHECK_EQ_INT(dlq_store_due(g_s, 999, got, 64), 0);
    CHECK_EQ_INT(dlq_store_due(g_s, 1000, got, 64), 1);
    CHECK_EQ_INT(dlq_store_due(g_s, 1200, got, 0), 0);
    CHECK_EQ_INT(dlq_store_next_due(g_s), 1000);

    /* a negative retry time is due at once */
    dlq_letter_t l;
    t_letter(&l, 100, "n/s", "due.t", 0, -50);
    CHECK_EQ_INT(dlq_store_put(g_s, &l, ids[40], NULL), WEFT_OK);
    CHECK_EQ_INT(dlq_store_due(g_s, 0, got, 64), 1);
    CHECK(memcmp(got[0], ids[40], WEFT_ID_SIZE) == 0);
    CHECK(dlq_store_next_due(g_s) > 0);
}

/* ---- list ------------------------------------------------------------------------------------ */

#define L_N 100

typedef struct {
    uint8_t id[WEFT_ID_SIZE];
    char sub[32];
    char topic[32];
    char code[16];
    int state;
    int64_t ff;
} l_model_t;

static l_model_t g_lm[L_N];

static const char *const l_subs[] = {"n1/orders", "n1/orders2", "n2/audit"};
static const char *const l_topics[] = {"orders.created", "orders.paid", "ordersx", "users.new",
                                       "orders.created.eu"};
static const char *const l_codes[] = {"timeout", "bad_input"};

/* Stores L_N letters with varied fields; g_lm describes them. */
static int l_fill(void)
{
    for (unsigned i = 0; i < L_N; i++) {
        l_model_t *e = &g_lm[i];
        snprintf(e->sub, sizeof(e->sub), "%s", l_subs[(i * 7) % 3]);
        snprintf(e->topic, sizeof(e->topic), "%s", l_topics[(i * 3) % 5]);
        snprintf(e->code, sizeof(e->code), "%s", l_codes[(i / 3) % 2]);
        e->ff = 1000 + (int64_t)i * 100;
        e->state = (int)((i * 5) % 4);
        dlq_letter_t l;
        t_letter(&l, i, e->sub, e->topic, e->ff, 5000);
        snprintf(l.code, sizeof(l.code), "%s", e->code);
        if (dlq_store_put(g_s, &l, e->id, NULL) != WEFT_OK)
            return -1;
        if (e->state != DLQ_PENDING) {
            memcpy(l.id, e->id, WEFT_ID_SIZE);
            l.state = (dlq_state_t)e->state;
            if (dlq_store_update(g_s, &l) != WEFT_OK)
                return -1;
        }
    }
    return 0;
}

static bool l_match(const l_model_t *e, const dlq_filter_t *f, int64_t now)
{
    if (f->subscriber && f->subscriber[0] && strcmp(e->sub, f->subscriber))
        return false;
    if (f->topic_prefix && strncmp(e->topic, f->topic_prefix, strlen(f->topic_prefix)))
        return false;
    if (f->state >= 0 && e->state != f->state)
        return false;
    if (f->code && f->code[0] && strcmp(e->code, f->code))
        return false;
    if (f->older_than_ns > 0 && !(e->ff < now - f->older_than_ns))
        return false;
    return true;
}

/* Lists with f in pages of `page` (0: one call) and checks the result against the model:
   each matching letter exactly once, in id order. Returns the number found, -1 on mismatch. */
static long l_check(const dlq_filter_t *f, int64_t now, size_t page)
{
    static uint8_t want[L_N][WEFT_ID_SIZE];
    size_t nw = 0;
    for (size_t i = 0; i < L_N; i++)
        if (l_match(&g_lm[i], f, now))
            memcpy(want[nw++], g_lm[i].id, WEFT_ID_SIZE);
    qsort(want, nw, WEFT_ID_SIZE, id_cmp);

    static coll_t c;
    memset(&c, 0, sizeof(c));
    uint8_t cur[WEFT_ID_SIZE];
    bool first = true, more = true;
    int calls = 0;
    while (more) {
        size_t before = c.n;
        size_t n = dlq_store_list(g_s, f, now, first ? NULL : cur, page, coll_fn, &c, cur, &more);
        first = false;
        if (n != c.n - before || (page && n > page) || ++calls > L_N + 2) {
            fprintf(stderr, "  page of %zu returned %zu, visited %zu\n", page, n, c.n - before);
            return -1;
        }
        if (c.n && memcmp(cur, c.ids[c.n - 1], WEFT_ID_SIZE) != 0) {
            fprintf(stderr, "  next_cursor is not the last visited id\n");
            return -1;
        }
        if (!page && more)
            return -1;
    }
    if (c.n != nw) {
        fprintf(stderr, "  listed %zu, expected %zu\n", c.n, nw);
        return -1;
    }
    for (size_t i = 0; i < nw; i++)
        if (memcmp(c.ids[i], want[i], WEFT_ID_SIZE) != 0) {
            fprintf(stderr, "  letter %zu out of order or wrong\n", i);
            return -1;
        }
    return (long)nw;
}

TEST_CASE("list filters by subscriber, topic prefix, state, code and age, alone and combined",
          t_list)
{
    CHECK((g_s = t_open()) != NULL);
    CHECK(l_fill() == 0);
    int64_t now = 1000 + 100 * 100;
    dlq_filter_t f = t_any();
    CHECK_EQ_INT(l_check(&f, now, 0), L_N);

    f = t_any();
    f.subscriber = "n1/orders";
    long by_sub = l_check(&f, now, 0);
    CHECK(by_sub > 10 && by_sub < L_N);
    f.subscriber = "n1/order"; /* exact, not a prefix */
    CHECK_EQ_INT(l_check(&f, now, 0), 0);
    f.subscriber = "nobody/x";
    CHECK_EQ_INT(l_check(&f, now, 0), 0);

    f = t_any();
    f.topic_prefix = "orders.";
    long orders = l_check(&f, now, 0);
    CHECK(orders > 30);
    f.topic_prefix = "orders";
    CHECK(l_check(&f, now, 0) > orders); /* includes "ordersx" */
    f.topic_prefix = "orders.created";
    CHECK(l_check(&f, now, 0) > 0);
    f.topic_prefix = "zzz";
    CHECK_EQ_INT(l_check(&f, now, 0), 0);
    f.topic_prefix = "";
    CHECK_EQ_INT(l_check(&f, now, 0), L_N);

    for (int st = 0; st < 4; st++) {
        f = t_any();
        f.state = st;
        CHECK_EQ_INT(l_check(&f, now, 0), L_N / 4);
    }
    f = t_any();
    f.code = "timeout";
    CHECK(l_check(&f, now, 0) > 0);
    f = t_any();
    f.older_than_ns = 5000; /* first_failure < now - 5000: the first 50 */
    CHECK_EQ_INT(l_check(&f, now, 0), 50);

    f = t_any();
    f.subscriber = "n2/audit";
    f.state = DLQ_PARKED;
    CHECK(l_check(&f, now, 0) > 0);
    f.topic_prefix = "orders.";
    f.state = -1;
    CHECK(l_check(&f, now, 0) > 0);
    f = t_any();
    f.topic_prefix = "orders.c";
    f.code = "bad_input";
    f.older_than_ns = 3000;
    f.state = DLQ_PENDING;
    CHECK(l_check(&f, now, 0) >= 0);
    f = t_any();
    f.subscriber = "n1/orders2";
    f.topic_prefix = "users";
    f.code = "timeout";
    CHECK(l_check(&f, now, 0) >= 0);

    /* fn can stop the listing; it may update the letters it is given */
    coll_t *c = g_mem = calloc(1, sizeof(coll_t));
    CHECK(c != NULL);
    c->stop_after = 5;
    f = t_any();
    uint8_t cur[WEFT_ID_SIZE];
    bool more = false;
    CHECK_EQ_INT(dlq_store_list(g_s, &f, now, NULL, 0, coll_fn, c, cur, &more), 5);
    CHECK(more);
    CHECK(memcmp(cur, c->ids[4], WEFT_ID_SIZE) == 0);
}

static int park_fn(const dlq_letter_t *l, void *arg)
{
    dlq_letter_t u = *l;
    u.state = DLQ_PARKED;
    if (dlq_store_update(arg, &u) != WEFT_OK)
        return 1;
    return 0;
}

TEST_CASE("pages of 7 over 100 letters return each letter exactly once", t_paging)
{
    CHECK((g_s = t_open()) != NULL);
    CHECK(l_fill() == 0);
    int64_t now = 1000 + 100 * 100;
    dlq_filter_t f = t_any();
    CHECK_EQ_INT(l_check(&f, now, 7), L_N);
    CHECK_EQ_INT(l_check(&f, now, 1), L_N);
    CHECK_EQ_INT(l_check(&f, now, 100), L_N);
    CHECK_EQ_INT(l_check(&f, now, 99), L_N);
    f.subscriber = "n2/audit";
    CHECK(l_check(&f, now, 7) > 7);
    f = t_any();
    f.topic_prefix = "orders";
    CHECK(l_check(&f, now, 7) > 7);
    f.state = DLQ_RETRYING;
    CHECK(l_check(&f, now, 7) > 0);
    f = t_any();
    f.code = "timeout";
    f.older_than_ns = 2000;
    CHECK(l_check(&f, now, 7) > 7);

    /* letters deleted between pages are simply not seen; the cursor still works */
    f = t_any();
    f.topic_prefix = "orders";
    static coll_t c;
    memset(&c, 0, sizeof(c));
    uint8_t cur[WEFT_ID_SIZE];
    bool more;
    CHECK_EQ_INT(dlq_store_list(g_s, &f, now, NULL, 7, coll_fn, &c, cur, &more), 7);
    CHECK(more);
    CHECK_EQ_INT(dlq_store_delete(g_s, c.ids[6]), WEFT_OK); /* the cursor's own letter */
    size_t total = 7;
    while (more)
        total += dlq_store_list(g_s, &f, now, cur, 7, coll_fn, &c, cur, &more);
    qsort(c.ids, c.n, WEFT_ID_SIZE, id_cmp);
    for (size_t i = 1; i < c.n; i++)
        CHECK(memcmp(c.ids[i - 1], c.ids[i], WEFT_ID_SIZE) != 0);
    size_t expect = 0;
    for (size_t i = 0; i < L_N; i++)
        expect += strncmp(g_lm[i].topic, "orders", 6) == 0;
    CHECK_EQ_INT(total, expect);

    /* a callback that updates every letter it visits */
    f = t_any();
    size_t n = dlq_store_list(g_s, &f, now, NULL, 0, park_fn, g_s, NULL, &more);
    CHECK_EQ_INT(n, L_N - 1);
    dlq_counts_t cnt;
    dlq_store_counts(g_s, &cnt);
    CHECK_EQ_INT(cnt.parked, L_N - 1);
    CHECK_EQ_INT(cnt.pending + cnt.retrying + cnt.resolved, 0);
}

TEST_CASE("a topic prefix over more than 256 topics lists the same letters in id order",
          t_many_topics)
{
    CHECK((g_s = t_open()) != NULL);
    enum { N = 300 };
    static uint8_t ids[N][WEFT_ID_SIZE];
    for (unsigned i = 0; i < N; i++) {
        dlq_letter_t l;
        char topic[32];
        snprintf(topic, sizeof(topic), "many.%03u", (i * 7) % N);
        t_letter(&l, i, "n/s", topic, i, 0);
        CHECK_EQ_INT(dlq_store_put(g_s, &l, ids[i], NULL), WEFT_OK);
    }
    dlq_letter_t other;
    uint8_t other_id[WEFT_ID_SIZE];
    t_letter(&other, N, "n/s", "other", 0, 0);
    CHECK_EQ_INT(dlq_store_put(g_s, &other, other_id, NULL), WEFT_OK);
    qsort(ids, N, WEFT_ID_SIZE, id_cmp);
    dlq_filter_t f = t_any();
    f.topic_prefix = "many.";
    static coll_t c;
    uint8_t cur[WEFT_ID_SIZE];
    bool more = true, first = true;
    while (more) {
        size_t n = dlq_store_list(g_s, &f, 0, first ? NULL : cur, 7, coll_fn, &c, cur, &more);
        CHECK(n <= 7);
        first = false;
    }
    CHECK_EQ_INT(c.n, N);
    for (size_t i = 0; i < N; i++)
        CHECK(memcmp(c.ids[i], ids[i], WEFT_ID_SIZE) == 0);
    /* under 256 topics the merge gives the same order */
    memset(&c, 0, sizeof(c));
    f.topic_prefix = "many.1";
    CHECK_EQ_INT(dlq_store_list(g_s, &f, 0, NULL, 0, coll_fn, &c, NULL, &more), 100);
    for (size_t i = 1; i < c.n; i++)
        CHECK(memcmp(c.ids[i - 1], c.ids[i], WEFT_ID_SIZE) < 0);
}

/* ---- letter id order ------------------------------------------------------------------------- */

/* The millisecond field of a letter id. */
static uint64_t t_id_ms(const uint8_t id[WEFT_ID_SIZE])
{
    uint64_t ms = 0;
    for (int i = 0; i < 6; i++)
        ms = ms << 8 | id[i];
    return ms;
}

TEST_CASE("letter ids increase in the order letters are stored, within one millisecond too, and "
          "last_id is the exact bound between letters stored before and after it",
          t_id_order)
{
    CHECK((g_s = t_open()) != NULL);
    uint8_t bound[WEFT_ID_SIZE];
    static const uint8_t zero[WEFT_ID_SIZE];
    dlq_store_last_id(g_s, bound);
    CHECK(memcmp(bound, zero, WEFT_ID_SIZE) == 0);
    enum { N = 1000 };
    static uint8_t ids[N][WEFT_ID_SIZE];
    size_t same_ms = 0;
    for (unsigned i = 0; i < N; i++) {
        /* the bound a RETRY or PURGE by filter arriving now would take */
        dlq_store_last_id(g_s, bound);
        dlq_letter_t l;
        t_letter(&l, i, i % 2 ? "n/odd" : "n/even", "order.t", i, 0);
        CHECK_EQ_INT(dlq_store_put(g_s, &l, ids[i], NULL), WEFT_OK);
        CHECK(memcmp(ids[i], bound, WEFT_ID_SIZE) > 0);
        CHECK_EQ_INT(ids[i][6] >> 4, 7); /* still a UUIDv7 */
        CHECK_EQ_INT(ids[i][8] >> 6, 2);
        if (i > 0) {
            CHECK(memcmp(ids[i - 1], bound, WEFT_ID_SIZE) <= 0);
            CHECK(memcmp(ids[i - 1], ids[i], WEFT_ID_SIZE) < 0);
            same_ms += t_id_ms(ids[i - 1]) == t_id_ms(ids[i]);
        }
    }
    CHECK(same_ms > 0); /* the case did store letters within one millisecond */
    dlq_store_last_id(g_s, bound);
    CHECK(memcmp(bound, ids[N - 1], WEFT_ID_SIZE) == 0);
    /* a listing by subscriber gives the store order */
    static coll_t c;
    memset(&c, 0, sizeof(c));
    dlq_filter_t f = t_any();
    f.subscriber = "n/odd";
    bool more;
    CHECK_EQ_INT(dlq_store_list(g_s, &f, 0, NULL, 0, coll_fn, &c, NULL, &more), N / 2);
    for (size_t i = 0; i < N / 2; i++)
        CHECK(memcmp(c.ids[i], ids[2 * i + 1], WEFT_ID_SIZE) == 0);

    /* After a reopen the bound is the highest letter held, even one whose time is ahead of the
       clock (as after a clock step back): the next letter still sorts after it. */
    dlq_store_close(&g_s);
    uint8_t ahead[WEFT_ID_SIZE];
    memcpy(ahead, ids[N - 1], WEFT_ID_SIZE);
    uint64_t ms = t_id_ms(ahead) + 3600 * 1000;
    for (int i = 0; i < 6; i++)
        ahead[i] = (uint8_t)(ms >> (8 * (5 - i)));
    ahead[8] = 0x80;                           /* variant 10, rand_b's top bits zero */
    memset(ahead + 9, 0xff, WEFT_ID_SIZE - 9); /* so the next id carries into byte 8 */
    CHECK_EQ_INT(t_raw_put("letters", ahead, WEFT_ID_SIZE, "x", 1), 0);
    CHECK((g_s = t_open()) != NULL);
    dlq_store_last_id(g_s, bound);
    CHECK(memcmp(bound, ahead, WEFT_ID_SIZE) == 0);
    dlq_letter_t l;
    uint8_t id[WEFT_ID_SIZE];
    t_letter(&l, N, "n/odd", "order.t", 0, 0);
    CHECK_EQ_INT(dlq_store_put(g_s, &l, id, NULL), WEFT_OK);
    CHECK(memcmp(id, ahead, WEFT_ID_SIZE) > 0);
    CHECK_EQ_INT(t_id_ms(id), ms);
    CHECK(memcmp(id, ahead, 8) == 0);
    CHECK_EQ_INT(id[8], 0x81);
    for (int i = 9; i < WEFT_ID_SIZE; i++)
        CHECK_EQ_INT(id[i], 0);
    dlq_store_last_id(g_s, bound);
    CHECK(memcmp(bound, id, WEFT_ID_SIZE) == 0);
}

/* ---- delete ---------------------------------------------------------------------------------- */

TEST_CASE("delete removes a letter from every index", t_delete)
{
    CHECK((g_s = t_open()) != NULL);
    dlq_letter_t l;
    uint8_t ids[3][WEFT_ID_SIZE], got[4][WEFT_ID_SIZE];
    for (unsigned i = 0; i < 3; i++) {
        t_letter(&l, 40 + i, "n/del", "del.t", i, 100 + i);
        CHECK_EQ_INT(dlq_store_put(g_s, &l, ids[i], NULL), WEFT_OK);
    }
    /* one pending, one parked, one resolved get deleted */
    t_letter(&l, 41, "n/del", "del.t", 1, 101);
    memcpy(l.id, ids[1], WEFT_ID_SIZE);
    l.state = DLQ_PARKED;
    CHECK_EQ_INT(dlq_store_update(g_s, &l), WEFT_OK);

    CHECK_EQ_INT(dlq_store_delete(g_s, ids[0]), WEFT_OK);
    CHECK_EQ_INT(dlq_store_delete(g_s, ids[1]), WEFT_OK);
    CHECK_EQ_INT(dlq_store_delete(g_s, ids[1]), WEFT_ENOTFOUND);
    dlq_letter_t out;
    CHECK_EQ_INT(dlq_store_get(g_s, ids[0], &out, &g_buf), WEFT_ENOTFOUND);
    CHECK_EQ_INT(dlq_store_due(g_s, INT64_MAX, got, 4), 1);
    CHECK(memcmp(got[0], ids[2], WEFT_ID_SIZE) == 0);
    dlq_counts_t c;
    dlq_store_counts(g_s, &c);
    CHECK_EQ_INT(c.pending, 1);
    CHECK_EQ_INT(c.parked, 0);
    dlq_filter_t f = t_any();
    f.subscriber = "n/del";
    bool more;
    CHECK_EQ_INT(dlq_store_list(g_s, &f, 0, NULL, 0, NULL, NULL, NULL, &more), 1);
    f = t_any();
    f.topic_prefix = "del.";
    CHECK_EQ_INT(dlq_store_list(g_s, &f, 0, NULL, 0, NULL, NULL, NULL, &more), 1);

    /* the event can fail again: a new letter */
    t_letter(&l, 40, "n/del", "del.t", 5, 105);
    uint8_t again[WEFT_ID_SIZE];
    bool created;
    CHECK_EQ_INT(dlq_store_put(g_s, &l, again, &created), WEFT_OK);
    CHECK(created);
    CHECK(memcmp(again, ids[0], WEFT_ID_SIZE) != 0);

    dlq_store_close(&g_s);
    CHECK_EQ_INT(t_raw_refs(ids[0]), 0);
    CHECK_EQ_INT(t_raw_refs(ids[1]), 0);
    CHECK_EQ_INT(t_raw_refs(ids[2]), 4); /* by_key, by_retry, by_sub, by_topic */
    CHECK_EQ_INT(t_raw_refs(again), 4);
}

/* ---- lock, format, damage -------------------------------------------------------------------- */

TEST_CASE("a second open of the same directory is refused as in use", t_in_use)
{
    CHECK((g_s = t_open()) != NULL);
    int err = 0;
    char why[512] = "";
    dlq_store_t *second = dlq_store_open(g_dir, false, &err, why, sizeof(why));
    CHECK(second == NULL);
    CHECK_EQ_INT(err, WEFT_ESTATE);
    CHECK(strstr(why, "in use") != NULL);
    char pid[32];
    snprintf(pid, sizeof(pid), "(pid %ld)", (long)getpid());
    CHECK(strstr(why, pid) != NULL);
    dlq_store_close(&g_s);
    CHECK((g_s = t_open()) != NULL); /* released on close */

    CHECK(dlq_store_open("", false, &err, why, sizeof(why)) == NULL);
    CHECK_EQ_INT(err, WEFT_EINVAL);
    char file[128];
    snprintf(file, sizeof(file), "%s/weft-dlq.lock", g_dir);
    CHECK(dlq_store_open(file, false, &err, why, sizeof(why)) == NULL);
    CHECK_EQ_INT(err, WEFT_ECONFIG);
}

TEST_CASE("a store of an unknown format version is refused", t_format)
{
    CHECK((g_s = t_open()) != NULL);
    dlq_store_close(&g_s);
    uint8_t v2[4] = {0, 0, 0, 2};
    CHECK_EQ_INT(t_raw_put("meta", "format", 6, v2, 4), 0);
    int err = 0;
    char why[512] = "";
    CHECK(dlq_store_open(g_dir, false, &err, why, sizeof(why)) == NULL);
    CHECK_EQ_INT(err, WEFT_EVERSION);
    CHECK(strstr(why, "format version 2") != NULL);
    uint8_t bad[3] = {0, 0, 1};
    CHECK_EQ_INT(t_raw_put("meta", "format", 6, bad, 3), 0);
    CHECK(dlq_store_open(g_dir, false, &err, why, sizeof(why)) == NULL);
    CHECK_EQ_INT(err, WEFT_ECONFIG);
    uint8_t v1[4] = {0, 0, 0, 1};
    CHECK_EQ_INT(t_raw_put("meta", "format", 6, v1, 4), 0);
    CHECK((g_s = t_open()) != NULL);
}

/* A record that is valid msgpack but breaks one rule. */
static size_t t_bad_record(int variant, const uint8_t id[WEFT_ID_SIZE], uint8_t *out, size_t cap)
{
    size_t n = 0;
    switch (variant) {
    case 0: /* garbage */
        for (n = 0; n < 40; n++)
            out[n] = (uint8_t)(0xc1 + n * 13);
        return n;
    case 1: /* an array claiming four billion elements */
        memcpy(out, "\xdd\xff\xff\xff\xff\x01", 6);
        return 6;
    case 2: /* not a map */
        out[0] = 0x93, out[1] = 1, out[2] = 2, out[3] = 3;
        return 4;
    case 3: /* a map with only the id */
        out[n++] = 0x81;
        out[n++] = 0xa2, out[n++] = 'i', out[n++] = 'd';
        out[n++] = 0xc4, out[n++] = WEFT_ID_SIZE;
        memcpy(out + n, id, WEFT_ID_SIZE);
        return n + WEFT_ID_SIZE;
    default:
        (void)cap;
        return 0;
    }
}

TEST_CASE("a damaged record is malformed for get, skipped by list and removable by delete",
          t_damaged)
{
    CHECK((g_s = t_open()) != NULL);
    enum { N = 10 };
    uint8_t ids[N][WEFT_ID_SIZE];
    for (unsigned i = 0; i < N; i++) {
        dlq_letter_t l;
        t_letter(&l, 50 + i, "n/dmg", "dmg.t", i, 100);
        CHECK_EQ_INT(dlq_store_put(g_s, &l, ids[i], NULL), WEFT_OK);
    }
    dlq_store_close(&g_s);
    uint8_t rec[128];
    for (int v = 0; v < 4; v++) {
        size_t n = t_bad_record(v, ids[v], rec, sizeof(rec));
        CHECK_EQ_INT(t_raw_put("letters", ids[v], WEFT_ID_SIZE, rec, n), 0);
    }
    /* a valid record of another letter under this key: the ids differ */
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    CHECK_EQ_INT(t_raw_begin(&env, &txn), 0);
    CHECK_EQ_INT(mdb_dbi_open(txn, "letters", 0, &dbi), 0);
    MDB_val k = {WEFT_ID_SIZE, ids[9]}, val;
    CHECK_EQ_INT(mdb_get(txn, dbi, &k, &val), 0);
    uint8_t *copy = g_mem = malloc(val.mv_size);
    CHECK(copy != NULL);
    memcpy(copy, val.mv_data, val.mv_size);
    MDB_val k4 = {WEFT_ID_SIZE, ids[4]}, v4 = {val.mv_size, copy};
    CHECK_EQ_INT(mdb_put(txn, dbi, &k4, &v4, 0), 0);
    CHECK_EQ_INT(mdb_txn_commit(txn), 0);
    mdb_env_close(env);

    CHECK((g_s = t_open()) != NULL);
    for (int v = 0; v < 5; v++) {
        dlq_letter_t out;
        uint8_t *b = (uint8_t *)1;
        CHECK_EQ_INT(dlq_store_get(g_s, ids[v], &out, &b), WEFT_EMALFORMED);
        CHECK(b == NULL);
        CHECK(strstr(dlq_store_last_error(g_s), "damaged") != NULL);
    }
    dlq_letter_t out;
    CHECK_EQ_INT(dlq_store_get(g_s, ids[5], &out, &g_buf), WEFT_OK);

    dlq_filter_t f = t_any();
    bool more;
    CHECK_EQ_INT(dlq_store_list(g_s, &f, 0, NULL, 0, NULL, NULL, NULL, &more), N - 5);
    f.subscriber = "n/dmg";
    CHECK_EQ_INT(dlq_store_list(g_s, &f, 0, NULL, 3, NULL, NULL, NULL, &more), 3);
    CHECK(more);
    f = t_any();
    f.topic_prefix = "dmg";
    CHECK_EQ_INT(dlq_store_list(g_s, &f, 0, NULL, 0, NULL, NULL, NULL, &more), N - 5);

    /* updating a damaged letter is refused; putting its event again too */
    dlq_letter_t l;
    t_letter(&l, 50, "n/dmg", "dmg.t", 0, 100);
    memcpy(l.id, ids[0], WEFT_ID_SIZE);
    CHECK_EQ_INT(dlq_store_update(g_s, &l), WEFT_EMALFORMED);
    CHECK_EQ_INT(dlq_store_put(g_s, &l, ids[0], NULL), WEFT_EMALFORMED);

    /* delete removes them with every index entry, and the counts are recomputed */
    for (int v = 0; v < 5; v++)
        CHECK_EQ_INT(dlq_store_delete(g_s, ids[v]), WEFT_OK);
    dlq_counts_t c;
    dlq_store_counts(g_s, &c);
    CHECK_EQ_INT(c.pending, N - 5);
    uint8_t due[N][WEFT_ID_SIZE];
    CHECK_EQ_INT(dlq_store_due(g_s, INT64_MAX, due, N), N - 5);
    dlq_store_close(&g_s);
    for (int v = 0; v < 5; v++)
        CHECK_EQ_INT(t_raw_refs(ids[v]), 0);
    CHECK_EQ_INT(t_raw_refs(ids[9]), 4);
}

TEST_CASE("damaged counts in meta are recomputed on open", t_counts_repair)
{
    CHECK((g_s = t_open()) != NULL);
    for (unsigned i = 0; i < 5; i++) {
        dlq_letter_t l;
        uint8_t id[WEFT_ID_SIZE];
        t_letter(&l, i, "n/c", "c.t", i, 100);
        CHECK_EQ_INT(dlq_store_put(g_s, &l, id, NULL), WEFT_OK);
        if (i < 2) {
            memcpy(l.id, id, WEFT_ID_SIZE);
            l.state = DLQ_PARKED;
            CHECK_EQ_INT(dlq_store_update(g_s, &l), WEFT_OK);
        }
    }
    dlq_store_close(&g_s);
    CHECK_EQ_INT(t_raw_put("meta", "counts", 6, "x", 1), 0);
    CHECK((g_s = t_open()) != NULL);
    dlq_counts_t c;
    dlq_store_counts(g_s, &c);
    CHECK_EQ_INT(c.pending, 3);
    CHECK_EQ_INT(c.parked, 2);
}

/* ---- map, durability ------------------------------------------------------------------------- */

TEST_CASE("a full map grows, then a write beyond the ceiling fails with a clear error",
          t_map_full)
{
    CHECK((g_s = t_open()) != NULL);
    CHECK_EQ_INT(dlq_store_set_map_size(g_s, 256 * 1024, 2 * 1024 * 1024), WEFT_OK);
    size_t psize = 16 * 1024;
    uint8_t *pay = g_mem = calloc(1, psize);
    CHECK(pay != NULL);
    int rc = WEFT_OK;
    unsigned stored = 0;
    static uint8_t ids[1000][WEFT_ID_SIZE];
    for (unsigned i = 0; i < 1000 && rc == WEFT_OK; i++) {
        dlq_letter_t l;
        t_letter(&l, i, "n/big", "big.t", i, 100);
        memset(pay, (int)i, psize);
        l.payload = pay;
        l.payload_size = psize;
        rc = dlq_store_put(g_s, &l, ids[i], NULL);
        if (rc == WEFT_OK)
            stored++;
    }
    CHECK_EQ_INT(rc, WEFT_ENOMEM);
    CHECK(stored > 20);   /* more than 256 KiB held: it grew */
    CHECK(stored < 130);  /* but not past 2 MiB */
    CHECK(strstr(dlq_store_last_error(g_s), "full") != NULL);
    dlq_counts_t c;
    dlq_store_counts(g_s, &c);
    CHECK_EQ_INT(c.pending, stored);
    dlq_letter_t out;
    CHECK_EQ_INT(dlq_store_get(g_s, ids[stored - 1], &out, &g_buf), WEFT_OK);
    CHECK_EQ_INT(out.payload[0], (uint8_t)(stored - 1));

    /* a higher ceiling lets it go on */
    CHECK_EQ_INT(dlq_store_set_map_size(g_s, 0, 64 * 1024 * 1024), WEFT_OK);
    dlq_letter_t l;
    t_letter(&l, 5000, "n/big", "big.t", 0, 100);
    l.payload = pay;
    l.payload_size = psize;
    CHECK_EQ_INT(dlq_store_put(g_s, &l, ids[999], NULL), WEFT_OK);
}

TEST_CASE("a store opened without sync_always keeps its letters across close and sync",
          t_nosync)
{
    CHECK((g_s = t_open_sync(false)) != NULL);
    dlq_letter_t l;
    uint8_t id[WEFT_ID_SIZE];
    t_letter(&l, 1, "n/s", "sync.t", 0, 0);
    CHECK_EQ_INT(dlq_store_put(g_s, &l, id, NULL), WEFT_OK);
    CHECK_EQ_INT(dlq_store_sync(g_s), WEFT_OK);
    dlq_store_close(&g_s);
    CHECK((g_s = t_open_sync(true)) != NULL);
    dlq_letter_t out;
    CHECK_EQ_INT(dlq_store_get(g_s, id, &out, &g_buf), WEFT_OK);
    CHECK_EQ_INT(dlq_store_sync(g_s), WEFT_OK);
}

static bool t_fork_allowed(void)
{
    const char *no = getenv("DLQ_TEST_NO_FORK");
    if (no && *no && strcmp(no, "0") != 0) {
        fprintf(stderr, "  (skipped: DLQ_TEST_NO_FORK)\n");
        return false;
    }
    return true;
}

static void crash_child(int fd)
{
    int err;
    char why[256];
    dlq_store_t *s = dlq_store_open(g_dir, true, &err, why, sizeof(why));
    if (!s)
        _exit(2);
    for (unsigned i = 0; i < 1000000; i++) {
        dlq_letter_t l;
        uint8_t id[WEFT_ID_SIZE];
        t_letter(&l, i, i % 2 ? "n/odd" : "n/even", "crash.t", i, 100 + i);
        if (dlq_store_put(s, &l, id, NULL) != WEFT_OK)
            _exit(3);
        if (write(fd, id, WEFT_ID_SIZE) != WEFT_ID_SIZE)
            _exit(4);
    }
    _exit(0);
}

TEST_CASE("every acknowledged put survives kill -9 of the writer", t_crash)
{
    if (!t_fork_allowed())
        return;
    int p[2];
    CHECK(pipe(p) == 0);
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        crash_child(p[1]);
    }
    close(p[1]);
    static uint8_t acked[4096][WEFT_ID_SIZE];
    size_t n = 0;
    while (n < 25 && read(p[0], acked[n], WEFT_ID_SIZE) == WEFT_ID_SIZE)
        n++;
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    while (n < 4096 && read(p[0], acked[n], WEFT_ID_SIZE) == WEFT_ID_SIZE)
        n++; /* acknowledged before it died */
    close(p[0]);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    CHECK(n >= 25);

    CHECK((g_s = t_open()) != NULL); /* the lock died with the child */
    for (size_t i = 0; i < n; i++) {
        dlq_letter_t out;
        CHECK_EQ_INT(dlq_store_get(g_s, acked[i], &out, &g_buf), WEFT_OK);
        CHECK_STR(out.topic, "crash.t");
        free(g_buf);
        g_buf = NULL;
    }
    dlq_counts_t c;
    dlq_store_counts(g_s, &c);
    CHECK(c.pending >= n);
    CHECK(c.pending <= n + 1); /* at most one committed but not yet acknowledged */
    dlq_filter_t f = t_any();
    bool more;
    CHECK_EQ_INT(dlq_store_list(g_s, &f, 0, NULL, 0, NULL, NULL, NULL, &more), c.pending);
}

int main(void)
{
    RUN("a stored letter reads back with every field and the event bytes", t_round_trip);
    RUN("put is idempotent per event and subscriber; another subscriber gets its own letter",
        t_idempotent);
    RUN("a put of a resolved letter's event reopens that letter", t_reopen);
    RUN("update moves a letter between states and in and out of the retry index", t_update);
    RUN("counts, due and list agree with a model through thousands of random operations",
        t_model);
    RUN("due returns exactly the pending letters with next_retry_at <= now, oldest first",
        t_due);
    RUN("list filters by subscriber, topic prefix, state, code and age, alone and combined",
        t_list);
    RUN("pages of 7 over 100 letters return each letter exactly once", t_paging);
    RUN("a topic prefix over more than 256 topics lists the same letters in id order",
        t_many_topics);
    RUN("letter ids increase in the order letters are stored, within one millisecond too, and "
        "last_id is the exact bound between letters stored before and after it",
        t_id_order);
    RUN("delete removes a letter from every index", t_delete);
    RUN("a second open of the same directory is refused as in use", t_in_use);
    RUN("a store of an unknown format version is refused", t_format);
    RUN("a damaged record is malformed for get, skipped by list and removable by delete",
        t_damaged);
    RUN("damaged counts in meta are recomputed on open", t_counts_repair);
    RUN("a full map grows, then a write beyond the ceiling fails with a clear error",
        t_map_full);
    RUN("a store opened without sync_always keeps its letters across close and sync",
        t_nosync);
    RUN("every acknowledged put survives kill -9 of the writer", t_crash);
    return TEST_EXIT();
}

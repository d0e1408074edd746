/*  test_archive_store.c - unit tests for archive_store (src/archive_store.h), the archiver's
    LMDB layer: records read back exactly, offsets never repeat, archiving is idempotent, every
    index answers (id, source, high-water marks, time, topic prefixes merged in offset order),
    format and lock checks refuse what they must, a full map is an error and not a crash, the
    map grows under concurrent readers, retention removes the oldest events from every index,
    and a writer killed with SIGKILL loses no committed batch.

    Each case runs in a fresh mkdtemp directory, removed afterwards. Cases that fork can be
    skipped with ARCHIVE_TEST_NO_FORK=1 (for runs under tools that dislike fork + kill).
*/
#define _GNU_SOURCE
#include <errno.h>
#include <ftw.h>
#include <lmdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "archive_store.h"
#include "testing.h"
#include "weft/envelope.h"
#include "weft/error.h"

/* ---- fixture ---------------------------------------------------------------------------- */

static char g_dir[64];            /* this case's archive directory */
static archive_store_t *g_s;      /* closed by teardown if a case stops early */
static archive_reader_t *g_r;

typedef struct {
    archive_in_t in;
    char topic[WEFT_TOPIC_MAX + 1];
    uint8_t id[WEFT_ID_SIZE];
    uint8_t env[512];
    uint8_t *payload;
} ev_t;

static ev_t *g_ev;                /* events of this case, freed by teardown */
static size_t g_nev;

static int s_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void t_setup(void)
{
    snprintf(g_dir, sizeof(g_dir), "/tmp/weft-archive-test-XXXXXX");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        exit(1);
    }
}

static void t_free_events(void)
{
    for (size_t i = 0; i < g_nev; i++)
        free(g_ev[i].payload);
    free(g_ev);
    g_ev = NULL;
    g_nev = 0;
}

static void t_teardown(void)
{
    archive_reader_destroy(&g_r);
    archive_store_close(&g_s);
    t_free_events();
    nftw(g_dir, s_rm, 16, FTW_DEPTH | FTW_PHYS);
}

#define RUN(name, fn)                                                                           \
    do {                                                                                        \
        t_setup();                                                                              \
        RUN_CASE(name, fn);                                                                     \
        t_teardown();                                                                           \
    } while (0)

static archive_store_t *t_open_ex(uint64_t map, uint64_t max, archive_sync_t sync, bool ro,
                                  int *err, char *why, size_t cap)
{
    archive_opts_t o = {
        .dir = g_dir, .map_size = map, .max_map_size = max, .sync = sync, .read_only = ro};
    return archive_store_open(&o, err, why, cap);
}

static archive_store_t *t_open(void)
{
    int err = 0;
    char why[512] = "";
    archive_store_t *s = t_open_ex(0, 0, ARCHIVE_SYNC_NONE, false, &err, why, sizeof(why));
    if (!s)
        fprintf(stderr, "  open failed: %d %s\n", err, why);
    return s;
}

/* Fills e with a real encoded envelope, so retention can decode it. payload bytes are a
   pattern of (fill + i). */
static void ev_make(ev_t *e, const char *topic, uint64_t inst, uint64_t seq, int64_t recv_ts,
                    size_t payload_size, unsigned fill)
{
    free(e->payload);
    memset(e, 0, sizeof(*e));
    snprintf(e->topic, sizeof(e->topic), "%s", topic);
    weft_envelope_t env;
    weft_envelope_init(&env);
    weft_id_new(env.id);
    snprintf(env.src, sizeof(env.src), "test");
    env.inst = inst;
    env.seq = seq;
    env.ts = recv_ts;
    int n = weft_envelope_encode(&env, e->env, sizeof(e->env));
    if (n <= 0)
        abort();
    memcpy(e->id, env.id, WEFT_ID_SIZE);
    if (payload_size) {
        e->payload = malloc(payload_size);
        if (!e->payload)
            abort();
        for (size_t i = 0; i < payload_size; i++)
            e->payload[i] = (uint8_t)(fill + i);
    }
    e->in = (archive_in_t){.topic = e->topic,
                           .topic_size = strlen(e->topic),
                           .envelope = e->env,
                           .envelope_size = (size_t)n,
                           .payload = e->payload,
                           .payload_size = payload_size,
                           .inst = inst,
                           .seq = seq,
                           .id = e->id,
                           .recv_ts = recv_ts};
}

/* Makes room for n events in g_ev (zeroed). */
static ev_t *t_events(size_t n)
{
    t_free_events();
    g_ev = calloc(n, sizeof(ev_t));
    if (!g_ev)
        abort();
    g_nev = n;
    return g_ev;
}

/* Appends ev[from..from+n) one batch, as archive_in_t copies. */
static int t_append(archive_store_t *s, const ev_t *ev, size_t n, archive_append_result_t *res)
{
    archive_in_t *in = calloc(n ? n : 1, sizeof(*in));
    if (!in)
        abort();
    for (size_t i = 0; i < n; i++)
        in[i] = ev[i].in;
    int rc = archive_store_append(s, in, n, res);
    free(in);
    return rc;
}

static size_t t_rec_size(const ev_t *e)
{
    return 13 + e->in.topic_size + e->in.envelope_size + e->in.payload_size;
}

static bool t_same_event(const archive_rec_t *rec, const ev_t *e)
{
    return rec->recv_ts == e->in.recv_ts && rec->topic_size == e->in.topic_size &&
           memcmp(rec->topic, e->in.topic, rec->topic_size) == 0 &&
           rec->envelope_size == e->in.envelope_size &&
           memcmp(rec->envelope, e->in.envelope, rec->envelope_size) == 0 &&
           rec->payload_size == e->in.payload_size &&
           (rec->payload_size == 0 || memcmp(rec->payload, e->in.payload, rec->payload_size) == 0);
}

/* Collects visited offsets; stops after stop_after when set. */
typedef struct {
    uint64_t offs[4096];
    size_t n;
    size_t stop_after;
} coll_t;

static int coll_fn(const archive_rec_t *rec, void *arg)
{
    coll_t *c = arg;
    if (c->n < sizeof(c->offs) / sizeof(c->offs[0]))
        c->offs[c->n] = rec->offset;
    c->n++;
    return c->stop_after && c->n >= c->stop_after;
}

static bool t_has_prefix(const char *topic, const char *const *prefixes, size_t n)
{
    if (n == 0)
        return true;
    for (size_t i = 0; i < n; i++)
        if (strncmp(topic, prefixes[i], strlen(prefixes[i])) == 0)
            return true;
    return false;
}

/* The offsets a scan must return, computed from g_ev (event i has offset i + 1). */
static size_t t_expected(uint64_t from, uint64_t to, const char *const *prefixes, size_t n,
                         uint64_t *out, size_t cap)
{
    size_t k = 0;
    for (size_t i = 0; i < g_nev; i++) {
        uint64_t off = i + 1;
        if (off < from || off > to || !t_has_prefix(g_ev[i].topic, prefixes, n))
            continue;
        if (k < cap)
            out[k] = off;
        k++;
    }
    return k;
}

/* Scans and compares with t_expected; prints the first difference. */
static bool t_scan_is(archive_reader_t *r, uint64_t from, uint64_t to,
                      const char *const *prefixes, size_t n)
{
    static coll_t c;
    static uint64_t want[4096];
    memset(&c, 0, sizeof(c));
    uint64_t next = 0;
    int rc = archive_scan(r, from, to, prefixes, n, 0, coll_fn, &c, &next);
    size_t nw = t_expected(from, to, prefixes, n, want, 4096);
    if (rc != WEFT_OK || c.n != nw) {
        fprintf(stderr, "  scan rc %d: %zu events, expected %zu\n", rc, c.n, nw);
        return false;
    }
    for (size_t i = 0; i < nw; i++) {
        if (c.offs[i] != want[i]) {
            fprintf(stderr, "  scan event %zu: offset %" PRIu64 ", expected %" PRIu64 "\n", i,
                    c.offs[i], want[i]);
            return false;
        }
    }
    return true;
}

static bool t_fork_allowed(void)
{
    const char *v = getenv("ARCHIVE_TEST_NO_FORK");
    if (v && *v && strcmp(v, "0") != 0) {
        fprintf(stderr, "  (skipped: ARCHIVE_TEST_NO_FORK is set)\n");
        return false;
    }
    return true;
}

/* ---- cases ---------------------------------------------------------------------------- */

TEST_CASE("an appended event reads back with every field as given", t_round_trip)
{
    ev_t *ev = t_events(4);
    ev_make(&ev[0], "orders.created", 7, 1, 1700000000123456789LL, 100, 1);
    ev_make(&ev[1], "_weft.hb", 7, 0, -5, 0, 0);                /* fabric, empty payload */
    ev_make(&ev[2], "x", 8, 3, 0, 70000, 9);                      /* overflow page */
    char long_topic[WEFT_TOPIC_MAX + 1];
    memset(long_topic, 'T', WEFT_TOPIC_MAX);
    long_topic[WEFT_TOPIC_MAX] = 0;
    ev_make(&ev[3], long_topic, 8, 4, INT64_MAX, 1, 3);
    CHECK((g_s = t_open()) != NULL);
    archive_append_result_t res;
    CHECK_EQ_INT(t_append(g_s, ev, 4, &res), WEFT_OK);
    CHECK_EQ_INT(res.appended, 4);
    CHECK_EQ_INT(res.duplicates, 0);
    CHECK_EQ_INT(res.first_offset, 1);
    CHECK_EQ_INT(res.last_offset, 4);

    CHECK((g_r = archive_reader_new(g_s)) != NULL);
    archive_rec_t rec;
    CHECK_EQ_INT(archive_read(g_r, 1, &rec), WEFT_ESTATE); /* not begun */
    CHECK_EQ_INT(archive_reader_begin(g_r), WEFT_OK);
    for (int i = 0; i < 4; i++) {
        CHECK_EQ_INT(archive_read(g_r, (uint64_t)i + 1, &rec), WEFT_OK);
        CHECK_EQ_INT(rec.offset, i + 1);
        CHECK(t_same_event(&rec, &ev[i]));
        weft_envelope_t env;
        CHECK_EQ_INT(weft_envelope_decode(&env, rec.envelope, rec.envelope_size), WEFT_OK);
        CHECK(memcmp(env.id, ev[i].id, WEFT_ID_SIZE) == 0);
    }
    CHECK_EQ_INT(archive_read(g_r, 0, &rec), WEFT_ENOTFOUND);
    CHECK_EQ_INT(archive_read(g_r, 5, &rec), WEFT_ENOTFOUND);
    CHECK(strstr(archive_reader_last_error(g_r), "offset 5") != NULL);
    archive_reader_end(g_r);

    archive_info_t info;
    CHECK_EQ_INT(archive_store_info(g_s, &info), WEFT_OK);
    CHECK_EQ_INT(info.first_offset, 1);
    CHECK_EQ_INT(info.last_offset, 4);
    CHECK_EQ_INT(info.events, 4);
    CHECK_EQ_INT(info.format, 1);
    CHECK_EQ_INT(info.bytes, t_rec_size(&ev[0]) + t_rec_size(&ev[1]) + t_rec_size(&ev[2]) +
                                 t_rec_size(&ev[3]));
    CHECK(info.bytes_on_disk > 0);
    CHECK_EQ_INT(info.map_size, ARCHIVE_MAP_SIZE_DEFAULT);
}

TEST_CASE("invalid events are refused and nothing of their batch is stored", t_invalid)
{
    ev_t *ev = t_events(3);
    ev_make(&ev[0], "good", 1, 1, 1, 1, 0);
    ev_make(&ev[1], "bad topic", 1, 2, 1, 1, 0);
    ev_make(&ev[2], "good", 1, 3, 1, 1, 0);
    CHECK((g_s = t_open()) != NULL);
    archive_append_result_t res;
    CHECK_EQ_INT(t_append(g_s, ev, 3, &res), WEFT_ETOPIC);
    CHECK(strstr(archive_store_last_error(g_s), "event 1") != NULL);
    CHECK_EQ_INT(res.appended, 0);
    ev[1].in.topic_size = 0;
    CHECK_EQ_INT(t_append(g_s, ev, 3, &res), WEFT_ETOPIC);
    ev_make(&ev[1], "good", 1, 2, 1, 1, 0);
    ev[1].in.id = NULL;
    CHECK_EQ_INT(t_append(g_s, ev, 3, &res), WEFT_EINVAL);
    CHECK_EQ_INT(archive_store_append(g_s, NULL, 0, &res), WEFT_OK);
    CHECK_EQ_INT(res.appended, 0);
    archive_info_t info;
    CHECK_EQ_INT(archive_store_info(g_s, &info), WEFT_OK);
    CHECK_EQ_INT(info.events, 0);
    ev[1].in.id = ev[1].id;
    CHECK_EQ_INT(t_append(g_s, ev, 3, &res), WEFT_OK);
    CHECK_EQ_INT(res.first_offset, 1); /* failed batches consumed no offsets */
}

TEST_CASE("offsets start at 1 and are never reused, across reopen and after retention",
          t_offsets)
{
    ev_t *ev = t_events(9);
    for (int i = 0; i < 9; i++)
        ev_make(&ev[i], "t", 1, (uint64_t)i + 1, i, 10, (unsigned)i);
    CHECK((g_s = t_open()) != NULL);
    archive_append_result_t res;
    CHECK_EQ_INT(t_append(g_s, ev, 5, &res), WEFT_OK);
    CHECK_EQ_INT(res.first_offset, 1);
    CHECK_EQ_INT(res.last_offset, 5);
    archive_store_close(&g_s);
    CHECK(g_s == NULL);
    archive_store_close(&g_s); /* twice is fine */

    CHECK((g_s = t_open()) != NULL);
    CHECK_EQ_INT(t_append(g_s, ev + 5, 2, &res), WEFT_OK);
    CHECK_EQ_INT(res.first_offset, 6);
    CHECK_EQ_INT(res.last_offset, 7);

    /* Retention removes everything; the next event still gets a new offset, also after
       reopening. */
    archive_retention_t ret = {.max_events = 0, .max_bytes = 1};
    archive_trim_result_t tr;
    CHECK_EQ_INT(archive_store_trim(g_s, &ret, 0, 100, &tr), WEFT_OK);
    CHECK_EQ_INT(tr.removed, 7);
    CHECK_EQ_INT(tr.first_offset, 0);
    CHECK(!tr.more);
    archive_store_close(&g_s);
    CHECK((g_s = t_open()) != NULL);
    archive_info_t info;
    CHECK_EQ_INT(archive_store_info(g_s, &info), WEFT_OK);
    CHECK_EQ_INT(info.events, 0);
    CHECK_EQ_INT(info.bytes, 0);
    CHECK_EQ_INT(t_append(g_s, ev + 7, 2, &res), WEFT_OK);
    CHECK_EQ_INT(res.first_offset, 8);
    CHECK_EQ_INT(res.last_offset, 9);
}

TEST_CASE("duplicates are skipped within a batch, across batches and across reopen",
          t_duplicates)
{
    ev_t *ev = t_events(7);
    ev_make(&ev[0], "a", 1, 1, 10, 5, 0);
    ev_make(&ev[1], "a", 1, 2, 11, 5, 0);
    ev_make(&ev[2], "a", 1, 1, 12, 5, 0); /* same (inst, seq) as ev[0], another id */
    ev_make(&ev[3], "a", 1, 3, 13, 5, 0);
    ev_make(&ev[4], "_weft.hb", 1, 0, 14, 5, 0);
    ev[5] = ev[4];                        /* the same fabric event again: same id */
    ev[5].payload = NULL;
    ev[5].in.payload_size = 0;
    ev_make(&ev[6], "a", 2, 1, 15, 5, 0);
    CHECK((g_s = t_open()) != NULL);
    archive_append_result_t res;
    CHECK_EQ_INT(t_append(g_s, ev, 3, &res), WEFT_OK);
    CHECK_EQ_INT(res.appended, 2);
    CHECK_EQ_INT(res.duplicates, 1);
    CHECK_EQ_INT(res.first_offset, 1);
    CHECK_EQ_INT(res.last_offset, 2);

    ev_t batch2[3] = {ev[1], ev[3], ev[4]}; /* ev[1] again */
    CHECK_EQ_INT(t_append(g_s, batch2, 3, &res), WEFT_OK);
    CHECK_EQ_INT(res.appended, 2);
    CHECK_EQ_INT(res.duplicates, 1);
    CHECK_EQ_INT(res.first_offset, 3);
    CHECK_EQ_INT(res.last_offset, 4);

    archive_store_close(&g_s);
    CHECK((g_s = t_open()) != NULL);
    ev_t batch3[4] = {ev[0], ev[3], ev[5], ev[2]};
    CHECK_EQ_INT(t_append(g_s, batch3, 4, &res), WEFT_OK);
    CHECK_EQ_INT(res.appended, 0);
    CHECK_EQ_INT(res.duplicates, 4);
    CHECK_EQ_INT(res.first_offset, 0);
    CHECK_EQ_INT(t_append(g_s, ev + 6, 1, &res), WEFT_OK);
    CHECK_EQ_INT(res.first_offset, 5); /* an all-duplicate batch used no offset */

    archive_info_t info;
    CHECK_EQ_INT(archive_store_info(g_s, &info), WEFT_OK);
    CHECK_EQ_INT(info.events, 5);

    /* The id of a skipped duplicate does not point anywhere. */
    CHECK((g_r = archive_reader_new(g_s)) != NULL);
    CHECK_EQ_INT(archive_reader_begin(g_r), WEFT_OK);
    uint64_t off;
    CHECK_EQ_INT(archive_find_id(g_r, ev[2].id, &off), WEFT_ENOTFOUND);
    CHECK_EQ_INT(archive_find_source(g_r, 1, 1, &off), WEFT_OK);
    CHECK_EQ_INT(off, 1);
}

/* Collects owed repairs as (inst, from, to) triples. */
typedef struct {
    uint64_t r[16][3];
    size_t n;
} owed_t;

static int owed_fn(uint64_t inst, uint64_t from, uint64_t to, void *arg)
{
    owed_t *o = arg;
    if (o->n < 16) {
        o->r[o->n][0] = inst;
        o->r[o->n][1] = from;
        o->r[o->n][2] = to;
    }
    o->n++;
    return 0;
}

static owed_t t_owed(archive_store_t *s)
{
    owed_t o = {0};
    archive_reader_t *r = archive_reader_new(s);
    if (!r || archive_reader_begin(r) != WEFT_OK || archive_repairs_each(r, owed_fn, &o) != WEFT_OK)
        o.n = 999;
    archive_reader_destroy(&r);
    return o;
}

TEST_CASE("owed repairs commit with their batch, survive reopen and are cleared by range",
          t_owed_repairs)
{
    ev_t *ev = t_events(2);
    ev_make(&ev[0], "a", 7, 10, 10, 5, 0);
    ev_make(&ev[1], "a", 7, 4, 11, 5, 0);
    CHECK((g_s = t_open()) != NULL);
    archive_append_result_t res;
    /* The event that reveals the gap and the debt, in one transaction. */
    archive_repair_op_t owe[3] = {{7, 1, 9, false}, {8, 5, 6, false}, {7, 20, 30, false}};
    CHECK_EQ_INT(archive_store_append_ops(g_s, &ev[0].in, 1, owe, 3, &res), WEFT_OK);
    CHECK_EQ_INT(res.appended, 1);
    owed_t o = t_owed(g_s);
    CHECK_EQ_INT(o.n, 3);
    CHECK(o.r[0][0] == 7 && o.r[0][1] == 1 && o.r[0][2] == 9);
    CHECK(o.r[1][0] == 7 && o.r[1][1] == 20 && o.r[1][2] == 30);
    CHECK(o.r[2][0] == 8 && o.r[2][1] == 5 && o.r[2][2] == 6);

    /* The same start again keeps the larger end; ops alone (no event) still commit. */
    archive_repair_op_t wider = {7, 1, 12, false}, narrower = {7, 1, 3, false};
    CHECK_EQ_INT(archive_store_append_ops(g_s, NULL, 0, &wider, 1, &res), WEFT_OK);
    CHECK_EQ_INT(archive_store_append_ops(g_s, NULL, 0, &narrower, 1, &res), WEFT_OK);
    CHECK_EQ_INT(res.appended, 0);
    archive_store_close(&g_s);
    CHECK((g_s = t_open()) != NULL);
    o = t_owed(g_s);
    CHECK_EQ_INT(o.n, 3);
    CHECK(o.r[0][1] == 1 && o.r[0][2] == 12);

    /* Clearing 1..12 of inst 7, with the repaired event: 20..30 and inst 8 stay. */
    archive_repair_op_t done = {7, 1, 12, true};
    CHECK_EQ_INT(archive_store_append_ops(g_s, &ev[1].in, 1, &done, 1, &res), WEFT_OK);
    CHECK_EQ_INT(res.appended, 1);
    o = t_owed(g_s);
    CHECK_EQ_INT(o.n, 2);
    CHECK(o.r[0][0] == 7 && o.r[0][1] == 20);
    CHECK(o.r[1][0] == 8);
    /* A clearing that covers only part of a range leaves it owed. */
    archive_repair_op_t part = {7, 20, 25, true};
    CHECK_EQ_INT(archive_store_append_ops(g_s, NULL, 0, &part, 1, &res), WEFT_OK);
    CHECK_EQ_INT(t_owed(g_s).n, 2);
    archive_repair_op_t all7 = {7, 1, UINT64_MAX, true}, all8 = {8, 0, UINT64_MAX, true};
    archive_repair_op_t both[2] = {all7, all8};
    CHECK_EQ_INT(archive_store_append_ops(g_s, NULL, 0, both, 2, &res), WEFT_OK);
    CHECK_EQ_INT(t_owed(g_s).n, 0);
    CHECK_EQ_INT(archive_store_append_ops(g_s, NULL, 1, NULL, 0, &res), WEFT_EINVAL);
    CHECK_EQ_INT(archive_store_append_ops(g_s, NULL, 0, NULL, 1, &res), WEFT_EINVAL);
}

TEST_CASE("fabric events with seq 0 are stored but not indexed by source", t_fabric)
{
    ev_t *ev = t_events(3);
    ev_make(&ev[0], "_weft.hb", 42, 0, 1, 8, 0);
    ev_make(&ev[1], "_weft.hb", 42, 0, 2, 8, 1);
    ev_make(&ev[2], "data", 43, 1, 3, 8, 2);
    CHECK((g_s = t_open()) != NULL);
    archive_append_result_t res;
    CHECK_EQ_INT(t_append(g_s, ev, 3, &res), WEFT_OK);
    CHECK_EQ_INT(res.appended, 3); /* two seq-0 events of one instance are not duplicates */
    CHECK((g_r = archive_reader_new(g_s)) != NULL);
    CHECK_EQ_INT(archive_reader_begin(g_r), WEFT_OK);
    uint64_t off, hwm;
    CHECK_EQ_INT(archive_find_source(g_r, 42, 0, &off), WEFT_ENOTFOUND);
    CHECK_EQ_INT(archive_find_id(g_r, ev[1].id, &off), WEFT_OK);
    CHECK_EQ_INT(off, 2);
    CHECK_EQ_INT(archive_source_hwm(g_r, 42, &hwm), WEFT_OK);
    CHECK_EQ_INT(hwm, 0);
    CHECK_EQ_INT(archive_source_hwm(g_r, 43, &hwm), WEFT_OK);
    CHECK_EQ_INT(hwm, 1);
    const char *fabric[] = {"_weft."};
    CHECK(t_scan_is(g_r, 1, UINT64_MAX, fabric, 1));
}

typedef struct {
    uint64_t inst[8], hwm[8];
    size_t n;
    size_t stop_at;
} srcs_t;

static int srcs_fn(uint64_t inst, uint64_t hwm, void *arg)
{
    srcs_t *s = arg;
    if (s->n < 8) {
        s->inst[s->n] = inst;
        s->hwm[s->n] = hwm;
    }
    s->n++;
    return s->stop_at && s->n >= s->stop_at ? 77 : 0;
}

TEST_CASE("events are found by id and by source, with a high-water mark per source",
          t_find)
{
    /* Sources 0, 5, 9 and UINT64_MAX, interleaved, with seq gaps. */
    const uint64_t insts[4] = {5, UINT64_MAX, 0, 9};
    const uint64_t counts[4] = {7, 3, 4, 10};
    ev_t *ev = t_events(24);
    uint64_t seqs[4] = {0}, made[4] = {0};
    size_t k = 0;
    while (k < 24) {
        for (int j = 0; j < 4 && k < 24; j++) {
            if (made[j] >= counts[j])
                continue;
            made[j]++;
            seqs[j] += (insts[j] == 9 && seqs[j] == 3) ? 5 : 1; /* 9: 1,2,3,8,9,... */
            ev_make(&ev[k], "src", insts[j], seqs[j], (int64_t)k, 3, 0);
            k++;
        }
    }
    CHECK((g_s = t_open()) != NULL);
    archive_append_result_t res;
    CHECK_EQ_INT(t_append(g_s, ev, 10, &res), WEFT_OK);
    CHECK_EQ_INT(t_append(g_s, ev + 10, 14, &res), WEFT_OK);
    CHECK((g_r = archive_reader_new(g_s)) != NULL);
    CHECK_EQ_INT(archive_reader_begin(g_r), WEFT_OK);
    for (size_t i = 0; i < 24; i++) {
        uint64_t off = 0;
        CHECK_EQ_INT(archive_find_id(g_r, ev[i].id, &off), WEFT_OK);
        CHECK_EQ_INT(off, i + 1);
        CHECK_EQ_INT(archive_find_source(g_r, ev[i].in.inst, ev[i].in.seq, &off), WEFT_OK);
        CHECK_EQ_INT(off, i + 1);
    }
    uint64_t off, hwm;
    uint8_t unknown[WEFT_ID_SIZE] = {0};
    CHECK_EQ_INT(archive_find_id(g_r, unknown, &off), WEFT_ENOTFOUND);
    CHECK_EQ_INT(archive_find_source(g_r, 9, 4, &off), WEFT_ENOTFOUND); /* in the gap */
    CHECK_EQ_INT(archive_find_source(g_r, 6, 1, &off), WEFT_ENOTFOUND);

    uint64_t want_hwm[4];
    for (int j = 0; j < 4; j++) {
        want_hwm[j] = seqs[j];
        CHECK_EQ_INT(archive_source_hwm(g_r, insts[j], &hwm), WEFT_OK);
        CHECK(hwm == want_hwm[j]);
    }
    CHECK_EQ_INT(archive_source_hwm(g_r, 6, &hwm), WEFT_OK);
    CHECK_EQ_INT(hwm, 0);
    CHECK_EQ_INT(archive_source_hwm(g_r, 10, &hwm), WEFT_OK);
    CHECK_EQ_INT(hwm, 0);

    srcs_t s = {0};
    CHECK_EQ_INT(archive_sources_each(g_r, srcs_fn, &s), WEFT_OK);
    CHECK_EQ_INT(s.n, 4);
    const uint64_t order_inst[4] = {0, 5, 9, UINT64_MAX};
    const uint64_t order_hwm[4] = {want_hwm[2], want_hwm[0], want_hwm[3], want_hwm[1]};
    for (int j = 0; j < 4; j++) {
        CHECK(s.inst[j] == order_inst[j]);
        CHECK(s.hwm[j] == order_hwm[j]);
    }
    srcs_t stop = {.stop_at = 2};
    CHECK_EQ_INT(archive_sources_each(g_r, srcs_fn, &stop), 77);
    CHECK_EQ_INT(stop.n, 2);
}

TEST_CASE("seek_time finds the first offset received at or after a time, also when the "
          "clock stepped back",
          t_seek_time)
{
    /* 300 batches of 1..7 events; receive times mostly rise, sometimes step back, and
       include negative times and repeats. */
    ev_t *ev = t_events(1200);
    size_t n = 0;
    int64_t ts = -3000;
    uint32_t rnd = 12345;
    CHECK((g_s = t_open()) != NULL);
    for (int b = 0; b < 300; b++) {
        rnd = rnd * 1103515245u + 12345u;
        size_t bn = 1 + (rnd >> 16) % 7;
        size_t start = n;
        for (size_t i = 0; i < bn; i++) {
            rnd = rnd * 1103515245u + 12345u;
            uint32_t x = (rnd >> 16) % 100;
            ts += x < 10 ? -40 : x < 20 ? 0 : (int64_t)(x % 13);
            ev_make(&ev[n], "t", 1, n + 1, ts, 0, 0);
            n++;
        }
        archive_append_result_t res;
        CHECK_EQ_INT(t_append(g_s, ev + start, bn, &res), WEFT_OK);
    }
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    for (size_t i = 0; i < n; i++) {
        lo = ev[i].in.recv_ts < lo ? ev[i].in.recv_ts : lo;
        hi = ev[i].in.recv_ts > hi ? ev[i].in.recv_ts : hi;
    }
    CHECK((g_r = archive_reader_new(g_s)) != NULL);
    CHECK_EQ_INT(archive_reader_begin(g_r), WEFT_OK);
    for (int64_t t = lo - 2; t <= hi + 2; t++) {
        uint64_t want = 0, got = 0;
        for (size_t i = 0; i < n && !want; i++)
            if (ev[i].in.recv_ts >= t)
                want = i + 1;
        int rc = archive_seek_time(g_r, t, &got);
        if (want == 0) {
            CHECK_EQ_INT(rc, WEFT_ENOTFOUND);
        } else {
            CHECK_EQ_INT(rc, WEFT_OK);
            if (got != want)
                fprintf(stderr, "  ts %" PRId64 ": got %" PRIu64 ", want %" PRIu64 "\n", t, got,
                        want);
            CHECK(got == want);
        }
    }
    uint64_t got;
    CHECK_EQ_INT(archive_seek_time(g_r, INT64_MIN, &got), WEFT_OK);
    CHECK_EQ_INT(got, 1);
    CHECK_EQ_INT(archive_seek_time(g_r, INT64_MAX, &got), WEFT_ENOTFOUND);
    archive_reader_end(g_r);

    /* The same answers after reopening (the running maximum is rebuilt) and more appends. */
    archive_reader_destroy(&g_r);
    archive_store_close(&g_s);
    CHECK((g_s = t_open()) != NULL);
    ev_make(&ev[n], "t", 1, n + 1, lo - 100, 0, 0); /* far in the past */
    archive_append_result_t res;
    CHECK_EQ_INT(t_append(g_s, ev + n, 1, &res), WEFT_OK);
    n++;
    CHECK((g_r = archive_reader_new(g_s)) != NULL);
    CHECK_EQ_INT(archive_reader_begin(g_r), WEFT_OK);
    CHECK_EQ_INT(archive_seek_time(g_r, hi + 1, &got), WEFT_ENOTFOUND);
    CHECK_EQ_INT(archive_seek_time(g_r, hi, &got), WEFT_OK);
    for (size_t i = 0; i < n; i++)
        if (ev[i].in.recv_ts >= hi) {
            CHECK_EQ_INT(got, i + 1);
            break;
        }
}

TEST_CASE("scans return events in offset order, filtered by prefixes, within bounds, in "
          "resumable pages",
          t_scan)
{
    const char *topics[] = {"a.x", "b.z", "a.y", "ab", "a.x", "c", "b.z", "a.y.deep", "ab"};
    ev_t *ev = t_events(90);
    for (size_t i = 0; i < 90; i++)
        ev_make(&ev[i], topics[(i * 7 + i / 9) % 9], 1, i + 1, (int64_t)i, i % 5, 0);
    CHECK((g_s = t_open()) != NULL);
    archive_append_result_t res;
    for (size_t i = 0; i < 90; i += 15)
        CHECK_EQ_INT(t_append(g_s, ev + i, 15, &res), WEFT_OK);
    CHECK((g_r = archive_reader_new(g_s)) != NULL);
    CHECK_EQ_INT(archive_reader_begin(g_r), WEFT_OK);

    CHECK(t_scan_is(g_r, 1, UINT64_MAX, NULL, 0));
    CHECK(t_scan_is(g_r, 0, UINT64_MAX, NULL, 0));
    const char *one[] = {"a."};
    CHECK(t_scan_is(g_r, 1, UINT64_MAX, one, 1));
    const char *two[] = {"b.", "ab"};
    CHECK(t_scan_is(g_r, 1, UINT64_MAX, two, 2));
    const char *overlap[] = {"a", "a.y", "a.x"};
    CHECK(t_scan_is(g_r, 1, UINT64_MAX, overlap, 3));
    const char *exact[] = {"c"};
    CHECK(t_scan_is(g_r, 1, UINT64_MAX, exact, 1));
    const char *none[] = {"zzz", "a.q"};
    CHECK(t_scan_is(g_r, 1, UINT64_MAX, none, 2));
    const char *all[] = {"nothing", ""};
    CHECK(t_scan_is(g_r, 1, UINT64_MAX, all, 2));
    CHECK(t_scan_is(g_r, 10, 20, NULL, 0));
    CHECK(t_scan_is(g_r, 10, 20, two, 2));
    CHECK(t_scan_is(g_r, 37, 37, one, 1));
    CHECK(t_scan_is(g_r, 200, UINT64_MAX, one, 1));

    /* Pages of 4 with next_offset cover exactly the full answer, for each mode. */
    const char *const *sets[] = {NULL, one, two};
    const size_t nsets[] = {0, 1, 2};
    for (int m = 0; m < 3; m++) {
        static uint64_t want[128];
        size_t nw = t_expected(1, UINT64_MAX, sets[m], nsets[m], want, 128);
        static coll_t page;
        uint64_t from = 1, got = 0;
        int pages = 0;
        for (;;) {
            memset(&page, 0, sizeof(page));
            uint64_t next = 0;
            CHECK_EQ_INT(archive_scan(g_r, from, UINT64_MAX, sets[m], nsets[m], 4, coll_fn,
                                      &page, &next),
                         WEFT_OK);
            CHECK(page.n <= 4);
            for (size_t i = 0; i < page.n; i++)
                CHECK(got + i < nw && page.offs[i] == want[got + i]);
            got += page.n;
            CHECK(next > from || page.n == 0);
            pages++;
            if (page.n < 4) {
                CHECK_EQ_INT(next, 91); /* exhausted: continue after the last offset */
                break;
            }
            CHECK_EQ_INT(next, page.offs[3] + 1);
            from = next;
            CHECK(pages < 100);
        }
        CHECK_EQ_INT(got, nw);
    }

    /* fn stops: the stopping event counts as visited. */
    static coll_t c;
    memset(&c, 0, sizeof(c));
    c.stop_after = 2;
    uint64_t next = 0;
    CHECK_EQ_INT(archive_scan(g_r, 1, UINT64_MAX, two, 2, 0, coll_fn, &c, &next), WEFT_OK);
    CHECK_EQ_INT(c.n, 2);
    CHECK_EQ_INT(next, c.offs[1] + 1);
    /* A bounded range that is exhausted continues after `to`. */
    memset(&c, 0, sizeof(c));
    CHECK_EQ_INT(archive_scan(g_r, 5, 30, one, 1, 0, coll_fn, &c, &next), WEFT_OK);
    CHECK_EQ_INT(next, 31);
    CHECK_EQ_INT(archive_scan(g_r, 200, 300, one, 1, 0, coll_fn, &c, &next), WEFT_OK);
    CHECK_EQ_INT(next, 200);
    CHECK_EQ_INT(archive_scan(g_r, 30, 5, NULL, 0, 0, coll_fn, &c, &next), WEFT_EINVAL);

    /* A live replay: the snapshot does not see later commits until the reader is renewed. */
    ev_t *more = &ev[0];
    ev_make(more, "a.new", 1, 1000, 1000, 1, 0);
    CHECK_EQ_INT(t_append(g_s, more, 1, &res), WEFT_OK);
    CHECK_EQ_INT(res.first_offset, 91);
    memset(&c, 0, sizeof(c));
    CHECK_EQ_INT(archive_scan(g_r, 91, UINT64_MAX, one, 1, 0, coll_fn, &c, &next), WEFT_OK);
    CHECK_EQ_INT(c.n, 0);
    CHECK_EQ_INT(next, 91);
    CHECK_EQ_INT(archive_reader_begin(g_r), WEFT_OK); /* refresh */
    CHECK_EQ_INT(archive_scan(g_r, 91, UINT64_MAX, one, 1, 0, coll_fn, &c, &next), WEFT_OK);
    CHECK_EQ_INT(c.n, 1);
    CHECK_EQ_INT(c.offs[0], 91);
    CHECK_EQ_INT(next, 92);
}

TEST_CASE("a prefix with more than 256 distinct topics gives the same answer by the "
          "fallback scan",
          t_many_topics)
{
    ev_t *ev = t_events(900);
    char topic[32];
    for (size_t i = 0; i < 900; i++) {
        if (i % 3 == 2)
            snprintf(topic, sizeof(topic), "u.%zu", i % 5);
        else
            snprintf(topic, sizeof(topic), "t.%03zu", (i * 37) % 300);
        ev_make(&ev[i], topic, 3, i + 1, (int64_t)i, 2, 0);
    }
    CHECK((g_s = t_open()) != NULL);
    archive_append_result_t res;
    for (size_t i = 0; i < 900; i += 100)
        CHECK_EQ_INT(t_append(g_s, ev + i, 100, &res), WEFT_OK);
    CHECK((g_r = archive_reader_new(g_s)) != NULL);
    CHECK_EQ_INT(archive_reader_begin(g_r), WEFT_OK);
    const char *many[] = {"t."};                 /* 300 topics: fallback */
    CHECK(t_scan_is(g_r, 1, UINT64_MAX, many, 1));
    CHECK(t_scan_is(g_r, 100, 700, many, 1));
    const char *mixed[] = {"u.", "t."};          /* 305 topics: fallback */
    CHECK(t_scan_is(g_r, 1, UINT64_MAX, mixed, 2));
    const char *few[] = {"t.1", "u."};           /* 105 topics: merged cursors */
    CHECK(t_scan_is(g_r, 1, UINT64_MAX, few, 2));
    const char *edge[] = {"t.0", "t.1", "t.20", "t.21", "t.22", "t.23", "t.24", "t.250"};
    CHECK(t_scan_is(g_r, 1, UINT64_MAX, edge, 8)); /* 256 topics: still merged */
    const char *edge2[] = {"t.0", "t.1", "t.20", "t.21", "t.22", "t.23", "t.24", "t.25"};
    CHECK(t_scan_is(g_r, 1, UINT64_MAX, edge2, 8)); /* 260 topics: fallback */

    /* Pages through the fallback as well. */
    static coll_t page;
    static uint64_t want[1024];
    size_t nw = t_expected(1, UINT64_MAX, many, 1, want, 1024);
    uint64_t from = 1;
    size_t got = 0;
    for (int pages = 0; pages < 1000; pages++) {
        memset(&page, 0, sizeof(page));
        uint64_t next = 0;
        CHECK_EQ_INT(archive_scan(g_r, from, UINT64_MAX, many, 1, 50, coll_fn, &page, &next),
                     WEFT_OK);
        for (size_t i = 0; i < page.n; i++)
            CHECK(page.offs[i] == want[got + i]);
        got += page.n;
        if (page.n < 50)
            break;
        from = next;
    }
    CHECK_EQ_INT(got, nw);
}

TEST_CASE("an archive of another format version is refused with a clear message", t_format)
{
    CHECK((g_s = t_open()) != NULL);
    archive_store_close(&g_s);

    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi meta;
    CHECK_EQ_INT(mdb_env_create(&env), 0);
    CHECK_EQ_INT(mdb_env_set_maxdbs(env, 8), 0);
    CHECK_EQ_INT(mdb_env_open(env, g_dir, 0, 0644), 0);
    CHECK_EQ_INT(mdb_txn_begin(env, NULL, 0, &txn), 0);
    CHECK_EQ_INT(mdb_dbi_open(txn, "meta", 0, &meta), 0);
    uint8_t two[4] = {0, 0, 0, 2};
    MDB_val k = {6, "format"}, v = {4, two};
    CHECK_EQ_INT(mdb_put(txn, meta, &k, &v, 0), 0);
    CHECK_EQ_INT(mdb_txn_commit(txn), 0);
    mdb_env_close(env);

    int err = 0;
    char why[512] = "";
    char want[256];
    snprintf(want, sizeof(want), "archive %s has format version 2; this build reads version 1",
             g_dir);
    CHECK(t_open_ex(0, 0, ARCHIVE_SYNC_NONE, false, &err, why, sizeof(why)) == NULL);
    CHECK_EQ_INT(err, WEFT_EVERSION);
    CHECK_STR(why, want);
    CHECK(t_open_ex(0, 0, ARCHIVE_SYNC_NONE, true, &err, why, sizeof(why)) == NULL);
    CHECK_EQ_INT(err, WEFT_EVERSION);
    CHECK_STR(why, want);
    /* The refused writable open released its lock: another open gets the same answer. */
    CHECK(t_open_ex(0, 0, ARCHIVE_SYNC_NONE, false, &err, why, sizeof(why)) == NULL);
    CHECK_EQ_INT(err, WEFT_EVERSION);
}

TEST_CASE("opening a missing or foreign archive fails with a reason", t_open_errors)
{
    int err = 0;
    char why[512] = "";
    archive_opts_t none = {0};
    CHECK(archive_store_open(&none, &err, why, sizeof(why)) == NULL);
    CHECK_EQ_INT(err, WEFT_EINVAL);
    CHECK(archive_store_open(NULL, NULL, NULL, 0) == NULL);

    /* read-only on an empty directory: nothing to read */
    CHECK(t_open_ex(0, 0, ARCHIVE_SYNC_NONE, true, &err, why, sizeof(why)) == NULL);
    CHECK_EQ_INT(err, WEFT_ENOTFOUND);
    CHECK(strstr(why, "no data.mdb") != NULL);
    /* read-only on a missing directory */
    archive_opts_t o = {.dir = "/nonexistent/weft/archive", .read_only = true};
    CHECK(archive_store_open(&o, &err, why, sizeof(why)) == NULL);
    CHECK_EQ_INT(err, WEFT_ENOTFOUND);
    CHECK(strstr(why, "does not exist") != NULL);

    /* an LMDB environment that is not an archive */
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    CHECK_EQ_INT(mdb_env_create(&env), 0);
    CHECK_EQ_INT(mdb_env_open(env, g_dir, 0, 0644), 0);
    CHECK_EQ_INT(mdb_txn_begin(env, NULL, 0, &txn), 0);
    CHECK_EQ_INT(mdb_dbi_open(txn, NULL, 0, &dbi), 0);
    MDB_val k = {3, "key"}, v = {5, "value"};
    CHECK_EQ_INT(mdb_put(txn, dbi, &k, &v, 0), 0);
    CHECK_EQ_INT(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    CHECK(t_open_ex(0, 0, ARCHIVE_SYNC_NONE, false, &err, why, sizeof(why)) == NULL);
    CHECK_EQ_INT(err, WEFT_ECONFIG);
    CHECK(strstr(why, "not a weft archive") != NULL);
}

TEST_CASE("a second open of an archive in use is refused, in this process and in another",
          t_in_use)
{
    CHECK((g_s = t_open()) != NULL);
    int err = 0;
    char why[512] = "", want[256];
    snprintf(want, sizeof(want), "archive %s is in use by another archiver (pid %ld)", g_dir,
             (long)getpid());
    CHECK(t_open_ex(0, 0, ARCHIVE_SYNC_NONE, false, &err, why, sizeof(why)) == NULL);
    CHECK_EQ_INT(err, WEFT_ESTATE);
    CHECK_STR(why, want);
    /* read-only beside the writer is for other processes; in this one LMDB forbids it */
    CHECK(t_open_ex(0, 0, ARCHIVE_SYNC_NONE, true, &err, why, sizeof(why)) == NULL);
    CHECK_EQ_INT(err, WEFT_ESTATE);
    CHECK(strstr(why, "in use") != NULL);

    if (t_fork_allowed()) {
        /* The child reports through a pipe, not its exit status (which tools like valgrind
           replace with their own verdict on the child's inherited heap). */
        int p[2];
        CHECK(pipe(p) == 0);
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
            close(p[0]);
            char cwhy[512] = "";
            archive_store_t *s =
                t_open_ex(0, 0, ARCHIVE_SYNC_NONE, false, &err, cwhy, sizeof(cwhy));
            int good = s == NULL && err == WEFT_ESTATE && strcmp(cwhy, want) == 0;
            if (!good)
                fprintf(stderr, "  child: %d %s\n", err, cwhy);
            if (write(p[1], &good, sizeof(good)) != sizeof(good))
                _exit(2);
            _exit(0);
        }
        close(p[1]);
        int good = 0;
        ssize_t got = read(p[0], &good, sizeof(good));
        close(p[0]);
        CHECK(waitpid(pid, NULL, 0) == pid);
        CHECK(got == sizeof(good) && good == 1);
    }
    archive_store_close(&g_s);
    CHECK((g_s = t_open()) != NULL); /* released on close */
}

TEST_CASE("a read-only open reads beside a live writer in another process, across map growth",
          t_read_only)
{
    ev_t *ev = t_events(400);
    for (size_t i = 0; i < 400; i++)
        ev_make(&ev[i], "ro", 1, i + 1, (int64_t)i, 8000, (unsigned)i);
    int err = 0;
    char why[512] = "";
    g_s = t_open_ex(1 << 20, 64 << 20, ARCHIVE_SYNC_NONE, false, &err, why, sizeof(why));
    CHECK(g_s != NULL);
    archive_append_result_t res;
    CHECK_EQ_INT(t_append(g_s, ev, 10, &res), WEFT_OK);
    archive_store_close(&g_s);

    /* Read-only in this process when no writer is open. */
    g_s = t_open_ex(0, 0, ARCHIVE_SYNC_NONE, true, &err, why, sizeof(why));
    CHECK(g_s != NULL);
    CHECK_EQ_INT(t_append(g_s, ev + 10, 1, &res), WEFT_ESTATE);
    CHECK(strstr(archive_store_last_error(g_s), "read-only") != NULL);
    CHECK_EQ_INT(archive_store_sync(g_s), WEFT_ESTATE);
    archive_retention_t ret = {.max_events = 1};
    archive_trim_result_t tr;
    CHECK_EQ_INT(archive_store_trim(g_s, &ret, 0, 10, &tr), WEFT_ESTATE);
    CHECK((g_r = archive_reader_new(g_s)) != NULL);
    CHECK_EQ_INT(archive_reader_begin(g_r), WEFT_OK);
    archive_rec_t rec;
    CHECK_EQ_INT(archive_read(g_r, 10, &rec), WEFT_OK);
    CHECK(t_same_event(&rec, &ev[9]));
    archive_reader_destroy(&g_r);
    archive_store_close(&g_s);

    if (!t_fork_allowed())
        return;
    /* Writer here; a read-only reader in a child opens at the small map, then the writer grows
       the map well past it, then the child reads the newest event. */
    g_s = t_open_ex(1 << 20, 64 << 20, ARCHIVE_SYNC_NONE, false, &err, why, sizeof(why));
    CHECK(g_s != NULL);
    int up[2], down[2];
    CHECK(pipe(up) == 0 && pipe(down) == 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        close(up[0]);
        close(down[1]);
        int cerr = 0;
        char cwhy[512];
        archive_store_t *s = t_open_ex(0, 0, ARCHIVE_SYNC_NONE, true, &cerr, cwhy, sizeof(cwhy));
        archive_reader_t *r = s ? archive_reader_new(s) : NULL;
        int ok = r && archive_reader_begin(r) == WEFT_OK ? 1 : 0;
        archive_reader_end(r);
        if (write(up[1], &ok, sizeof(ok)) != sizeof(ok))
            _exit(2);
        uint64_t last = 0;
        if (read(down[0], &last, sizeof(last)) != sizeof(last))
            _exit(3);
        archive_rec_t crec;
        int rc = archive_reader_begin(r);
        if (rc == WEFT_OK)
            rc = archive_read(r, last, &crec);
        if (rc != WEFT_OK)
            fprintf(stderr, "  child: %d %s\n", rc, archive_reader_last_error(r));
        int good = rc == WEFT_OK && crec.offset == last && crec.payload_size == 8000;
        archive_reader_destroy(&r);
        archive_store_close(&s);
        if (write(up[1], &good, sizeof(good)) != sizeof(good))
            _exit(4);
        _exit(0);
    }
    close(up[1]);
    close(down[0]);
    int ok = 0;
    CHECK(read(up[0], &ok, sizeof(ok)) == sizeof(ok));
    CHECK_EQ_INT(ok, 1);
    for (size_t i = 10; i < 400; i += 10)
        CHECK_EQ_INT(t_append(g_s, ev + i, 10, &res), WEFT_OK);
    archive_info_t info;
    CHECK_EQ_INT(archive_store_info(g_s, &info), WEFT_OK);
    CHECK(info.map_grows >= 1 && info.map_size > (1 << 20));
    uint64_t last = res.last_offset;
    CHECK(write(down[1], &last, sizeof(last)) == sizeof(last));
    int good = 0;
    ssize_t got = read(up[0], &good, sizeof(good));
    close(up[0]);
    close(down[1]);
    CHECK(waitpid(pid, NULL, 0) == pid);
    CHECK(got == sizeof(good) && good == 1);
}

TEST_CASE("a full map that cannot grow is a clear error, the archive stays readable and "
          "retention makes room again",
          t_map_full)
{
    ev_t *ev = t_events(10);
    int err = 0;
    char why[512] = "";
    g_s = t_open_ex(1 << 20, 1 << 20, ARCHIVE_SYNC_NONE, false, &err, why, sizeof(why));
    CHECK(g_s != NULL);
    uint64_t last = 0, seq = 0;
    int rc = WEFT_OK;
    int batches = 0;
    archive_append_result_t res;
    while (batches < 1000) {
        for (int i = 0; i < 10; i++, seq++)
            ev_make(&ev[i], "full", 1, seq + 1, (int64_t)seq + 1, 4000, (unsigned)seq + 1);
        rc = t_append(g_s, ev, 10, &res);
        if (rc != WEFT_OK)
            break;
        last = res.last_offset;
        batches++;
    }
    CHECK_EQ_INT(rc, WEFT_ENOMEM);
    CHECK(batches > 5 && batches < 1000);
    CHECK_EQ_INT(res.appended, 0);
    const char *msg = archive_store_last_error(g_s);
    CHECK(strstr(msg, "is full") != NULL && strstr(msg, "max_map_size") != NULL);
    archive_info_t info;
    CHECK_EQ_INT(archive_store_info(g_s, &info), WEFT_OK);
    CHECK(info.map_full >= 1);
    CHECK_EQ_INT(info.map_grows, 0);
    CHECK_EQ_INT(info.last_offset, last);
    CHECK_EQ_INT(info.map_size, 1 << 20);
    /* A second refusal counts again and is just as harmless. */
    CHECK_EQ_INT(t_append(g_s, ev, 10, &res), WEFT_ENOMEM);
    CHECK_EQ_INT(archive_store_info(g_s, &info), WEFT_OK);
    CHECK(info.map_full >= 2);

    CHECK((g_r = archive_reader_new(g_s)) != NULL);
    CHECK_EQ_INT(archive_reader_begin(g_r), WEFT_OK);
    for (uint64_t off = 1; off <= last; off++) {
        archive_rec_t rec;
        CHECK_EQ_INT(archive_read(g_r, off, &rec), WEFT_OK);
        CHECK_EQ_INT(rec.payload_size, 4000);
        CHECK_EQ_INT(rec.payload[0], (uint8_t)off);
    }
    archive_reader_end(g_r);

    /* Retention frees pages; appends fit again. */
    archive_retention_t ret = {.max_events = last / 2};
    archive_trim_result_t tr;
    do {
        CHECK_EQ_INT(archive_store_trim(g_s, &ret, 0, 20, &tr), WEFT_OK);
    } while (tr.more);
    CHECK_EQ_INT(archive_store_info(g_s, &info), WEFT_OK);
    CHECK_EQ_INT(info.events, last / 2);
    for (int i = 0; i < 10; i++, seq++)
        ev_make(&ev[i], "full", 1, seq + 1, (int64_t)seq + 1, 4000, (unsigned)seq + 1);
    CHECK_EQ_INT(t_append(g_s, ev, 10, &res), WEFT_OK);
    CHECK_EQ_INT(res.first_offset, last + 1);
}

typedef struct {
    archive_store_t *s;
    atomic_bool stop;
    atomic_uint_fast64_t reads;
    atomic_int failures;
} readers_t;

static int count_fn(const archive_rec_t *rec, void *arg)
{
    (void)rec;
    (*(size_t *)arg)++;
    return 0;
}

static void *reader_thread(void *arg)
{
    readers_t *rt = arg;
    archive_reader_t *r = archive_reader_new(rt->s);
    if (!r) {
        atomic_fetch_add(&rt->failures, 1);
        return NULL;
    }
    while (!atomic_load(&rt->stop)) {
        if (archive_reader_begin(r) != WEFT_OK) {
            atomic_fetch_add(&rt->failures, 1);
            break;
        }
        /* info (a nested read transaction of its own), then the first and the newest event
           of this snapshot; end quickly */
        archive_info_t info;
        archive_rec_t rec;
        uint64_t next = 0;
        size_t seen = 0;
        int rc = archive_store_info(rt->s, &info);
        if (rc == WEFT_OK)
            rc = archive_read(r, 1, &rec);
        if (rc == WEFT_OK && (rec.payload_size != 4000 || rec.payload[0] != 1))
            rc = WEFT_EMALFORMED;
        if (rc == WEFT_OK)
            rc = archive_scan(r, info.last_offset, UINT64_MAX, NULL, 0, 1, count_fn, &seen, &next);
        if (rc != WEFT_OK) {
            fprintf(stderr, "  reader: %d %s\n", rc, archive_reader_last_error(r));
            atomic_fetch_add(&rt->failures, 1);
        }
        archive_reader_end(r);
        atomic_fetch_add(&rt->reads, 1);
    }
    archive_reader_destroy(&r);
    return NULL;
}

TEST_CASE("the map grows on demand while reader threads keep reading", t_map_grows)
{
    ev_t *ev = t_events(10);
    int err = 0;
    char why[512] = "";
    g_s = t_open_ex(1 << 20, 64 << 20, ARCHIVE_SYNC_NONE, false, &err, why, sizeof(why));
    CHECK(g_s != NULL);
    uint64_t seq = 0;
    archive_append_result_t res;
    for (int i = 0; i < 10; i++, seq++)
        ev_make(&ev[i], "grow", 1, seq + 1, (int64_t)seq + 1, 4000, (unsigned)seq + 1);
    CHECK_EQ_INT(t_append(g_s, ev, 10, &res), WEFT_OK); /* readers always find offset 1 */
    readers_t rt = {.s = g_s};
    pthread_t th[3];
    for (int i = 0; i < 3; i++)
        CHECK(pthread_create(&th[i], NULL, reader_thread, &rt) == 0);
    int rc = WEFT_OK;
    for (int b = 1; b < 200 && rc == WEFT_OK; b++) { /* ~8 MB through a 1 MiB start */
        for (int i = 0; i < 10; i++, seq++)
            ev_make(&ev[i], "grow", 1, seq + 1, (int64_t)seq + 1, 4000, (unsigned)seq + 1);
        rc = t_append(g_s, ev, 10, &res);
    }
    WAIT_UNTIL(atomic_load(&rt.reads) >= 100, 10000);
    atomic_store(&rt.stop, true);
    for (int i = 0; i < 3; i++)
        pthread_join(th[i], NULL);
    CHECK_EQ_INT(rc, WEFT_OK);
    CHECK_EQ_INT(atomic_load(&rt.failures), 0);
    CHECK(atomic_load(&rt.reads) >= 100);
    archive_info_t info;
    CHECK_EQ_INT(archive_store_info(g_s, &info), WEFT_OK);
    CHECK_EQ_INT(info.events, 2000);
    CHECK(info.map_size >= 8u << 20 && info.map_size <= 64u << 20);
    CHECK(info.map_grows >= 3);
    CHECK_EQ_INT(info.map_full, 0);
    uint64_t grown = info.map_size;

    /* Reopening with the small initial size keeps the grown map. */
    archive_store_close(&g_s);
    g_s = t_open_ex(1 << 20, 64 << 20, ARCHIVE_SYNC_NONE, false, &err, why, sizeof(why));
    CHECK(g_s != NULL);
    CHECK_EQ_INT(archive_store_info(g_s, &info), WEFT_OK);
    CHECK(info.map_size >= grown);

    /* A thread that holds a reader cannot make the map grow: an error, not a deadlock. */
    archive_store_close(&g_s);
    g_s = t_open_ex(1 << 20, 64 << 20, ARCHIVE_SYNC_NONE, false, &err, why, sizeof(why));
    CHECK(g_s != NULL);
    CHECK((g_r = archive_reader_new(g_s)) != NULL);
    CHECK_EQ_INT(archive_reader_begin(g_r), WEFT_OK);
    rc = WEFT_OK;
    for (int b = 0; b < 2000 && rc == WEFT_OK; b++) {
        for (int i = 0; i < 10; i++, seq++)
            ev_make(&ev[i], "grow", 1, seq + 1, (int64_t)seq + 1, 4000, (unsigned)seq + 1);
        rc = t_append(g_s, ev, 10, &res);
    }
    CHECK_EQ_INT(rc, WEFT_ESTATE);
    CHECK(strstr(archive_store_last_error(g_s), "holds a read transaction") != NULL);
    archive_reader_end(g_r);
    CHECK_EQ_INT(t_append(g_s, ev, 10, &res), WEFT_OK); /* now it can grow */
}

/* Checks that offsets first..last are stored and every other index entry of 1..first-1 is
   gone (ev[i] has offset i + 1). */
static bool t_trimmed(archive_reader_t *r, uint64_t first, uint64_t last)
{
    const char *pre[] = {"ret."};
    for (uint64_t off = 1; off <= last; off++) {
        const ev_t *e = &g_ev[off - 1];
        archive_rec_t rec;
        uint64_t got;
        bool kept = off >= first;
        if ((archive_read(r, off, &rec) == WEFT_OK) != kept ||
            (archive_find_id(r, e->id, &got) == WEFT_OK) != kept ||
            (archive_find_source(r, e->in.inst, e->in.seq, &got) == WEFT_OK) != kept) {
            fprintf(stderr, "  offset %" PRIu64 " should be %s\n", off, kept ? "kept" : "gone");
            return false;
        }
    }
    static coll_t c;
    memset(&c, 0, sizeof(c));
    uint64_t next;
    if (archive_scan(r, 1, UINT64_MAX, pre, 1, 0, coll_fn, &c, &next) != WEFT_OK)
        return false;
    for (size_t i = 0; i < c.n; i++)
        if (c.offs[i] < first)
            return false;
    if (archive_scan(r, 1, UINT64_MAX, NULL, 0, 0, coll_fn, &c, &next) != WEFT_OK)
        return false;
    uint64_t at = 0;
    if (archive_seek_time(r, INT64_MIN, &at) != WEFT_OK || at != first)
        return false;
    return true;
}

TEST_CASE("retention by count, bytes and age removes exactly the oldest events from every "
          "index",
          t_retention)
{
    ev_t *ev = t_events(100);
    for (size_t i = 0; i < 100; i++) /* recv_ts = offset * 1000, sizes vary */
        ev_make(&ev[i], i % 2 ? "ret.odd" : "ret.even", 1, i + 1, (int64_t)(i + 1) * 1000,
                (i * 13) % 200, (unsigned)i);
    CHECK((g_s = t_open()) != NULL);
    archive_append_result_t res;
    for (size_t i = 0; i < 100; i += 8)
        CHECK_EQ_INT(t_append(g_s, ev + i, i + 8 <= 100 ? 8 : 100 - i, &res), WEFT_OK);
    CHECK((g_r = archive_reader_new(g_s)) != NULL);
    archive_trim_result_t tr;
    archive_info_t info;

    /* Nothing over a limit: nothing removed. */
    archive_retention_t none = {.max_events = 100, .max_bytes = 1 << 30, .max_age_ns = 1000000};
    CHECK_EQ_INT(archive_store_trim(g_s, &none, 100000, 1000, &tr), WEFT_OK);
    CHECK_EQ_INT(tr.removed, 0);
    CHECK_EQ_INT(tr.first_offset, 1);
    CHECK(!tr.more);

    /* By count: keep 90. */
    archive_retention_t by_count = {.max_events = 90};
    CHECK_EQ_INT(archive_store_trim(g_s, &by_count, 0, 1000, &tr), WEFT_OK);
    CHECK_EQ_INT(tr.removed, 10);
    CHECK_EQ_INT(tr.first_offset, 11);
    CHECK(!tr.more);
    CHECK_EQ_INT(archive_reader_begin(g_r), WEFT_OK);
    CHECK(t_trimmed(g_r, 11, 100));
    archive_reader_end(g_r);

    /* By bytes: keep the newest events whose records fit in the budget. */
    uint64_t budget = 0;
    for (size_t i = 70; i < 100; i++)
        budget += t_rec_size(&ev[i]);
    archive_retention_t by_bytes = {.max_bytes = budget + t_rec_size(&ev[69]) - 1};
    CHECK_EQ_INT(archive_store_trim(g_s, &by_bytes, 0, 1000, &tr), WEFT_OK);
    CHECK_EQ_INT(tr.removed, 60);
    CHECK_EQ_INT(tr.first_offset, 71);
    CHECK_EQ_INT(archive_store_info(g_s, &info), WEFT_OK);
    CHECK_EQ_INT(info.bytes, budget);
    CHECK_EQ_INT(archive_reader_begin(g_r), WEFT_OK);
    CHECK(t_trimmed(g_r, 71, 100));
    archive_reader_end(g_r);

    /* By age: now = 100000; older than 20500 ns means recv_ts < 79500: offsets 71..79. */
    archive_retention_t by_age = {.max_age_ns = 20500};
    CHECK_EQ_INT(archive_store_trim(g_s, &by_age, 100000, 1000, &tr), WEFT_OK);
    CHECK_EQ_INT(tr.removed, 9);
    CHECK_EQ_INT(tr.first_offset, 80);
    CHECK_EQ_INT(archive_reader_begin(g_r), WEFT_OK);
    CHECK(t_trimmed(g_r, 80, 100));
    uint64_t hwm;
    CHECK_EQ_INT(archive_source_hwm(g_r, 1, &hwm), WEFT_OK);
    CHECK_EQ_INT(hwm, 100);
    archive_reader_end(g_r);

    /* Small transactions: keep 3 of 21, 4 per call. */
    archive_retention_t keep3 = {.max_events = 3};
    int calls = 0;
    uint64_t removed = 0;
    do {
        CHECK_EQ_INT(archive_store_trim(g_s, &keep3, 0, 4, &tr), WEFT_OK);
        removed += tr.removed;
        calls++;
        CHECK(tr.removed <= 4);
        CHECK(calls <= 10);
    } while (tr.more);
    CHECK_EQ_INT(removed, 18);
    CHECK_EQ_INT(calls, 5); /* 4+4+4+4+2 */
    CHECK_EQ_INT(tr.first_offset, 98);
    CHECK_EQ_INT(archive_reader_begin(g_r), WEFT_OK);
    CHECK(t_trimmed(g_r, 98, 100));
    archive_reader_end(g_r);
    CHECK_EQ_INT(archive_store_info(g_s, &info), WEFT_OK);
    CHECK_EQ_INT(info.events, 3);
    CHECK_EQ_INT(info.first_offset, 98);
    CHECK_EQ_INT(info.bytes, t_rec_size(&ev[97]) + t_rec_size(&ev[98]) + t_rec_size(&ev[99]));

    /* A removed event may be archived again (it is gone, not a duplicate). */
    CHECK_EQ_INT(t_append(g_s, ev, 1, &res), WEFT_OK);
    CHECK_EQ_INT(res.appended, 1);
    CHECK_EQ_INT(res.first_offset, 101);
}

/* The child of the crash test: appends batches of 100 forever, reporting each commit. */
static void crash_child(int fd)
{
    int err = 0;
    char why[512];
    archive_store_t *s = t_open_ex(0, 0, ARCHIVE_SYNC_ALWAYS, false, &err, why, sizeof(why));
    if (!s)
        _exit(2);
    static ev_t ev[100];
    uint64_t seq = 0;
    for (;;) {
        archive_in_t in[100];
        for (int i = 0; i < 100; i++) {
            seq++;
            ev_make(&ev[i], "crash", 77, seq, (int64_t)seq, 64, (unsigned)seq);
            in[i] = ev[i].in;
        }
        archive_append_result_t res;
        if (archive_store_append(s, in, 100, &res) != WEFT_OK || res.last_offset != seq)
            _exit(3);
        if (write(fd, &res.last_offset, sizeof(res.last_offset)) != sizeof(res.last_offset))
            _exit(4);
    }
}

TEST_CASE("a writer killed with SIGKILL loses no committed batch", t_crash)
{
    if (!t_fork_allowed())
        return;
    int p[2];
    CHECK(pipe(p) == 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        crash_child(p[1]);
    }
    close(p[1]);
    uint64_t reported = 0, v;
    int reports = 0;
    while (reports < 5 && read(p[0], &v, sizeof(v)) == sizeof(v)) {
        reported = v;
        reports++;
    }
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    while (read(p[0], &v, sizeof(v)) == sizeof(v)) /* reports written before it died */
        reported = v;
    close(p[0]);
    CHECK_EQ_INT(reports, 5);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    CHECK(reported >= 500);

    CHECK((g_s = t_open()) != NULL); /* the lock died with the child */
    archive_info_t info;
    CHECK_EQ_INT(archive_store_info(g_s, &info), WEFT_OK);
    CHECK(info.last_offset >= reported);
    CHECK_EQ_INT(info.last_offset % 100, 0); /* whole batches only */
    CHECK_EQ_INT(info.events, info.last_offset);
    CHECK((g_r = archive_reader_new(g_s)) != NULL);
    CHECK_EQ_INT(archive_reader_begin(g_r), WEFT_OK);
    for (uint64_t off = 1; off <= info.last_offset; off++) {
        archive_rec_t rec;
        weft_envelope_t env;
        uint64_t at;
        CHECK_EQ_INT(archive_read(g_r, off, &rec), WEFT_OK);
        CHECK_EQ_INT(weft_envelope_decode(&env, rec.envelope, rec.envelope_size), WEFT_OK);
        CHECK_EQ_INT(env.seq, off); /* each seq once, in order */
        CHECK_EQ_INT(archive_find_source(g_r, 77, off, &at), WEFT_OK);
        CHECK_EQ_INT(at, off);
    }
    uint64_t hwm;
    CHECK_EQ_INT(archive_source_hwm(g_r, 77, &hwm), WEFT_OK);
    CHECK_EQ_INT(hwm, info.last_offset);
    archive_reader_end(g_r);

    /* The archiver restarts: a repaired copy of the last event is a duplicate, new events
       continue after the last offset. */
    ev_t *ev = t_events(2);
    ev_make(&ev[0], "crash", 77, info.last_offset, 0, 1, 0);
    ev_make(&ev[1], "crash", 77, info.last_offset + 1, 0, 1, 0);
    archive_append_result_t res;
    CHECK_EQ_INT(t_append(g_s, ev, 2, &res), WEFT_OK);
    CHECK_EQ_INT(res.duplicates, 1);
    CHECK_EQ_INT(res.appended, 1);
    CHECK_EQ_INT(res.first_offset, info.last_offset + 1);
}

TEST_CASE("mdb_stat reads the archive", t_mdb_stat)
{
    if (access("/usr/bin/mdb_stat", X_OK) != 0) {
        fprintf(stderr, "  (skipped: /usr/bin/mdb_stat not installed; package lmdb-utils)\n");
        return;
    }
    ev_t *ev = t_events(5);
    for (int i = 0; i < 5; i++)
        ev_make(&ev[i], "stat", 1, (uint64_t)i + 1, i, 10, 0);
    CHECK((g_s = t_open()) != NULL);
    archive_append_result_t res;
    CHECK_EQ_INT(t_append(g_s, ev, 5, &res), WEFT_OK);
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "/usr/bin/mdb_stat -a %s 2>&1", g_dir);
    FILE *f = popen(cmd, "r");
    CHECK(f != NULL);
    char out[8192];
    size_t n = fread(out, 1, sizeof(out) - 1, f);
    out[n] = 0;
    int status = pclose(f);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    const char *dbs[] = {"events", "by_source", "by_id", "by_topic", "by_time", "meta", "repairs"};
    for (int i = 0; i < 6; i++) {
        char line[64];
        snprintf(line, sizeof(line), "Status of %s", dbs[i]);
        CHECK(strstr(out, line) != NULL);
    }
}

int main(void)
{
    RUN("an appended event reads back with every field as given", t_round_trip);
    RUN("invalid events are refused and nothing of their batch is stored", t_invalid);
    RUN("offsets start at 1 and are never reused, across reopen and after retention",
        t_offsets);
    RUN("duplicates are skipped within a batch, across batches and across reopen",
        t_duplicates);
    RUN("owed repairs commit with their batch, survive reopen and are cleared by range",
        t_owed_repairs);
    RUN("fabric events with seq 0 are stored but not indexed by source", t_fabric);
    RUN("events are found by id and by source, with a high-water mark per source", t_find);
    RUN("seek_time finds the first offset received at or after a time, also when the clock "
        "stepped back",
        t_seek_time);
    RUN("scans return events in offset order, filtered by prefixes, within bounds, in "
        "resumable pages",
        t_scan);
    RUN("a prefix with more than 256 distinct topics gives the same answer by the fallback scan",
        t_many_topics);
    RUN("an archive of another format version is refused with a clear message", t_format);
    RUN("opening a missing or foreign archive fails with a reason", t_open_errors);
    RUN("a second open of an archive in use is refused, in this process and in another",
        t_in_use);
    RUN("a read-only open reads beside a live writer in another process, across map growth",
        t_read_only);
    RUN("a full map that cannot grow is a clear error, the archive stays readable and "
        "retention makes room again",
        t_map_full);
    RUN("the map grows on demand while reader threads keep reading", t_map_grows);
    RUN("retention by count, bytes and age removes exactly the oldest events from every index",
        t_retention);
    RUN("a writer killed with SIGKILL loses no committed batch", t_crash);
    RUN("mdb_stat reads the archive", t_mdb_stat);
    return TEST_EXIT();
}

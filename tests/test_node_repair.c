/*  test_node_repair.c - at-least-once subscriptions: a subscriber slower than its publisher
    makes the publisher drop at its high-water mark; the subscriber detects the gaps, fetches
    them from the publisher's outbox and ends with every event, exactly once and in seq order,
    while a plain subscription on the same node only counts what it missed. Memory stays
    bounded: the node's RSS is sampled during the run. */
#include <czmq.h>
#include <pthread.h>
#include <stdatomic.h>

#include "testing.h"
#include "weft.h"

#define EVENTS 20000

typedef struct {
    pthread_mutex_t lock;
    uint64_t *seqs;
    size_t n;
    int slow_us;
} rec_t;

static int s_record(weft_event_t *ev, void *arg)
{
    rec_t *r = arg;
    pthread_mutex_lock(&r->lock);
    if (r->n < EVENTS * 2)
        r->seqs[r->n] = ev->env->seq;
    r->n++;
    pthread_mutex_unlock(&r->lock);
    if (r->slow_us) {
        struct timespec ts = {0, r->slow_us * 1000L};
        nanosleep(&ts, NULL);
    }
    return 0;
}

static size_t s_count(rec_t *r)
{
    pthread_mutex_lock(&r->lock);
    size_t n = r->n;
    pthread_mutex_unlock(&r->lock);
    return n;
}

static long s_rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kb = atol(line + 6);
    if (f)
        fclose(f);
    return kb;
}

static weft_node_t *s_node(const char *name, const char *hwm)
{
    weft_config_t *cfg = weft_config_new();
    weft_config_set(cfg, "gossip/seeds", "none");
    weft_config_set(cfg, "gossip/bind", "none");
    weft_config_set(cfg, "heartbeat/interval", "100");
    weft_config_set(cfg, "net/sndhwm", hwm);
    weft_config_set(cfg, "net/rcvhwm", hwm);
    weft_node_t *n = weft_node_new(name, cfg, NULL);
    weft_config_destroy(&cfg);
    return n;
}

TEST_CASE("a slow subscriber repairs what its publisher dropped and gets every event in order",
          t_slow_subscriber)
{
    weft_node_t *pub = s_node("fast-pub", "50");
    weft_node_t *sub = s_node("slow-sub", "50");
    CHECK(pub && sub);
    rec_t repaired = {PTHREAD_MUTEX_INITIALIZER, calloc(EVENTS * 2, 8), 0, 30};
    rec_t plain = {PTHREAD_MUTEX_INITIALIZER, calloc(EVENTS * 2, 8), 0, 0};
    weft_sub_options_t o = {.repair = true, .name = "all"};
    int err;
    CHECK(weft_subscribe(sub, "", s_record, &repaired, &o, &err));
    CHECK(weft_subscribe(sub, "", s_record, &plain, NULL, &err));
    CHECK(weft_node_connect(pub, weft_node_sub_endpoint(sub)) == WEFT_OK);
    /* the subscriber learns the publisher (and its control endpoint) from its heartbeat */
    CHECK(weft_node_wait_peer_named(sub, "fast-pub", 5000) == WEFT_OK);
    CHECK(weft_node_wait_peers(pub, 5000) >= 1);
    long rss0 = s_rss_kb(), rss_max = rss0;
    for (int i = 0; i < EVENTS; i++) {
        char payload[100] = {0};
        CHECK(weft_publish(pub, "load.x", payload, sizeof(payload), NULL, NULL) == i + 1);
    }
    int64_t deadline = t_mono_ms() + 60000;
    while (s_count(&repaired) < EVENTS && t_mono_ms() < deadline) {
        long rss = s_rss_kb();
        if (rss > rss_max)
            rss_max = rss;
        t_nap_ms(20);
    }
    weft_stats_t st;
    weft_node_stats(sub, &st);
    fprintf(stderr, "  handled %zu of %d; plain saw %zu; gaps %" PRIu64 " repaired %" PRIu64
                    " unrepaired %" PRIu64 "; RSS %ld -> max %ld kB\n",
            s_count(&repaired), EVENTS, s_count(&plain), st.gaps, st.repaired, st.unrepaired,
            rss0, rss_max);
    CHECK_EQ_INT(s_count(&repaired), EVENTS);
    for (size_t i = 0; i < EVENTS; i++)
        CHECK_EQ_INT(repaired.seqs[i], i + 1);
    CHECK(st.gaps > 0); /* the publisher did drop: otherwise this test proves nothing */
    CHECK_EQ_INT(st.repaired, st.gaps);
    CHECK_EQ_INT(st.unrepaired, 0);
    CHECK(s_count(&plain) < EVENTS); /* the plain subscription only saw what arrived */
#if !defined(__SANITIZE_ADDRESS__)
    CHECK(rss_max - rss0 < 64 * 1024); /* bounded: well under the 64 MiB outbox of the peer */
#endif
    weft_node_destroy(&sub);
    weft_node_destroy(&pub);
    free(repaired.seqs);
    free(plain.seqs);
}

/*  A publisher that starts after an at-least-once subscription publishes its first events
    before it is connected to the subscriber: they are the subscriber's too, fetched from the
    outbox when its first event arrives. A publisher older than the subscription is not
    replayed from its start: its events from before the subscription are left out. */
TEST_CASE("a repairing subscriber gets a new publisher's first events, not an old one's past",
          t_new_source)
{
    weft_node_t *old = s_node("old-pub", "1000");
    CHECK(old);
    for (int i = 0; i < 20; i++)
        CHECK(weft_publish(old, "early.x", "o", 1, NULL, NULL) == i + 1);
    t_nap_ms(5); /* publish times before the subscription's, on any clock resolution */
    weft_node_t *sub = s_node("repair-sub", "1000");
    CHECK(sub);
    rec_t repaired = {PTHREAD_MUTEX_INITIALIZER, calloc(EVENTS * 2, 8), 0, 0};
    rec_t plain = {PTHREAD_MUTEX_INITIALIZER, calloc(EVENTS * 2, 8), 0, 0};
    weft_sub_options_t o = {.repair = true, .name = "new"};
    int err;
    CHECK(weft_subscribe(sub, "new.", s_record, &repaired, &o, &err));
    CHECK(weft_subscribe(sub, "new.", s_record, &plain, NULL, &err));
    rec_t old_seen = {PTHREAD_MUTEX_INITIALIZER, calloc(EVENTS * 2, 8), 0, 0};
    CHECK(weft_subscribe(sub, "early.", s_record, &old_seen, &o, &err));

    weft_node_t *pub = s_node("new-pub", "1000");
    CHECK(pub);
    for (int i = 0; i < 30; i++) /* nobody is connected yet: only the outbox keeps these */
        CHECK(weft_publish(pub, "new.x", "n", 1, NULL, NULL) == i + 1);
    CHECK(weft_node_connect(pub, weft_node_sub_endpoint(sub)) == WEFT_OK);
    CHECK(weft_node_connect(old, weft_node_sub_endpoint(sub)) == WEFT_OK);
    CHECK(weft_node_wait_peer_named(sub, "new-pub", 5000) == WEFT_OK);
    CHECK(weft_node_wait_peer_named(sub, "old-pub", 5000) == WEFT_OK);
    CHECK(weft_node_wait_peers(pub, 5000) >= 1);
    CHECK(weft_node_wait_peers(old, 5000) >= 1);
    for (int i = 30; i < 60; i++)
        CHECK(weft_publish(pub, "new.x", "n", 1, NULL, NULL) == i + 1);
    for (int i = 20; i < 25; i++)
        CHECK(weft_publish(old, "early.x", "o", 1, NULL, NULL) == i + 1);
    CHECK(WAIT_UNTIL(s_count(&repaired) == 60 && s_count(&old_seen) == 5, 10000));
    for (size_t i = 0; i < 60; i++)
        CHECK_EQ_INT(repaired.seqs[i], i + 1); /* all of them, in order */
    CHECK_EQ_INT(s_count(&plain), 30);          /* live: only what came after connecting */
    for (size_t i = 0; i < 5; i++)
        CHECK_EQ_INT(old_seen.seqs[i], 21 + i); /* not the old publisher's past */
    WAIT_UNTIL(s_count(&repaired) > 60 || s_count(&old_seen) > 5, 300);
    CHECK_EQ_INT(s_count(&repaired), 60);
    CHECK_EQ_INT(s_count(&old_seen), 5);
    weft_node_destroy(&pub);
    weft_node_destroy(&old);
    weft_node_destroy(&sub);
    free(repaired.seqs);
    free(plain.seqs);
    free(old_seen.seqs);
}

/*  A durable consumer that resumes while no archiver holds what was published during its
    absence: each source's events past its checkpoint come from the publisher's outbox when it
    is first heard - a known source from its mark on (whatever their publish time), a source
    that started during the absence from its first event - each handled exactly once. */
typedef struct {
    pthread_mutex_t lock;
    unsigned a[256], b[256];    /* handler calls per seq of dur.a / dur.b */
    size_t n;
} by_topic_t;

static int s_by_topic(weft_event_t *ev, void *arg)
{
    by_topic_t *r = arg;
    pthread_mutex_lock(&r->lock);
    unsigned *t = strcmp(ev->topic, "dur.a") == 0 ? r->a : r->b;
    if (ev->env->seq < 256)
        t[ev->env->seq]++;
    r->n++;
    pthread_mutex_unlock(&r->lock);
    return 0;
}

static size_t s_by_topic_count(by_topic_t *r)
{
    pthread_mutex_lock(&r->lock);
    size_t n = r->n;
    pthread_mutex_unlock(&r->lock);
    return n;
}

static weft_node_t *s_durable_node(const char *state)
{
    weft_config_t *cfg = weft_config_new();
    weft_config_set(cfg, "gossip/seeds", "none");
    weft_config_set(cfg, "gossip/bind", "none");
    weft_config_set(cfg, "heartbeat/interval", "100");
    weft_config_set(cfg, "node/state_dir", state);
    weft_node_t *n = weft_node_new("durable", cfg, NULL);
    weft_config_destroy(&cfg);
    return n;
}

TEST_CASE("a durable consumer resuming without an archive gets what it missed from the outboxes",
          t_durable_resume_from_outbox)
{
    char state[] = "/tmp/weft-repair-state.XXXXXX";
    CHECK(mkdtemp(state) != NULL);
    weft_sub_options_t o = {.consumer = "resume"};
    int err;
    weft_node_t *pub = s_node("dur-pub", "1000");
    weft_node_t *c = s_durable_node(state);
    CHECK(pub && c);
    by_topic_t first = {PTHREAD_MUTEX_INITIALIZER, {0}, {0}, 0};
    CHECK(weft_subscribe(c, "dur.", s_by_topic, &first, &o, &err));
    CHECK(weft_node_connect(pub, weft_node_sub_endpoint(c)) == WEFT_OK);
    CHECK(weft_node_wait_peers(pub, 5000) >= 1);
    for (int i = 1; i <= 50; i++)
        CHECK(weft_publish(pub, "dur.a", "x", 1, NULL, NULL) == i);
    CHECK(WAIT_UNTIL(s_by_topic_count(&first) == 50, 10000));
    weft_node_destroy(&c); /* checkpoint: dur-pub up to 50 */

    /* While it is away: 51..100 of the known source, and a new source's 1..20. */
    for (int i = 51; i <= 100; i++)
        CHECK(weft_publish(pub, "dur.a", "x", 1, NULL, NULL) == i);
    weft_node_t *late = s_node("late-pub", "1000");
    CHECK(late);
    for (int i = 1; i <= 20; i++)
        CHECK(weft_publish(late, "dur.b", "y", 1, NULL, NULL) == i);

    c = s_durable_node(state);
    CHECK(c);
    by_topic_t second = {PTHREAD_MUTEX_INITIALIZER, {0}, {0}, 0};
    CHECK(weft_subscribe(c, "dur.", s_by_topic, &second, &o, &err));
    CHECK(weft_node_connect(pub, weft_node_sub_endpoint(c)) == WEFT_OK);
    CHECK(weft_node_connect(late, weft_node_sub_endpoint(c)) == WEFT_OK);
    CHECK(weft_node_wait_peer_named(c, "dur-pub", 5000) == WEFT_OK);
    CHECK(weft_node_wait_peer_named(c, "late-pub", 5000) == WEFT_OK);
    CHECK(weft_node_wait_peers(pub, 5000) >= 1);
    CHECK(weft_node_wait_peers(late, 5000) >= 1);
    for (int i = 101; i <= 110; i++)
        CHECK(weft_publish(pub, "dur.a", "x", 1, NULL, NULL) == i);
    for (int i = 21; i <= 25; i++)
        CHECK(weft_publish(late, "dur.b", "y", 1, NULL, NULL) == i);
    /* 60 of dur-pub (51..110), 25 of late-pub; the catch-up finds no archiver within 5 s. */
    CHECK(WAIT_UNTIL(s_by_topic_count(&second) >= 85, 20000));
    WAIT_UNTIL(s_by_topic_count(&second) > 85, 300);
    CHECK_EQ_INT(s_by_topic_count(&second), 85);
    int wrong = 0;
    for (int i = 1; i <= 110; i++)
        wrong += second.a[i] != (i > 50 ? 1u : 0u);
    for (int i = 1; i <= 25; i++)
        wrong += second.b[i] != 1u;
    CHECK_EQ_INT(wrong, 0); /* each once, nothing from before the checkpoint */
    weft_node_destroy(&c);
    weft_node_destroy(&late);
    weft_node_destroy(&pub);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", state);
    CHECK(system(cmd) == 0);
}

int main(void)
{
    zsys_init();
    RUN_CASE("a slow subscriber repairs what its publisher dropped and gets every event in order",
             t_slow_subscriber);
    RUN_CASE("a repairing subscriber gets a new publisher's first events, not an old one's past",
             t_new_source);
    RUN_CASE("a durable consumer resuming without an archive gets what it missed from the outboxes",
             t_durable_resume_from_outbox);
    return TEST_EXIT();
}

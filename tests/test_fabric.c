/*  test_fabric.c - multi-process fabric test. Starts real nodes (fabric_peer) as separate
    processes on 127.0.0.1 with ephemeral ports; they find each other through gossip, each
    publishes N events on three topics, and each subscriber must receive exactly the events
    matching its prefixes, in seq order per source, with no duplicates. Then a node is killed
    with SIGKILL and must be marked down by the others.

    usage: test_fabric PATH/TO/fabric_peer
*/
#include <czmq.h>
#include <msgpack.h>
#include <signal.h>
#include <sys/wait.h>

#include "testing.h"
#include "weft.h"

#define N_EVENTS 2000
#define HB_MS 200

static const char *s_peer_bin;
static char s_dir[64];
static const char *s_topics[3] = {"task.created", "user.deleted", "audit.log"};

static pid_t s_spawn(char *const argv[])
{
    pid_t pid = fork();
    if (pid == 0) {
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

/*  Waits for a child with a deadline; returns its exit status, or -1 (it is then killed). */
static int s_wait_child(pid_t pid, int timeout_ms)
{
    int64_t deadline = t_mono_ms() + timeout_ms;
    int status;
    while (t_mono_ms() < deadline) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        t_nap_ms(10);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -1;
}

static char *s_path(const char *name)
{
    static char buf[8][256];
    static int next;
    char *p = buf[next++ % 8];
    snprintf(p, 256, "%s/%s", s_dir, name);
    return p;
}

static bool s_matches(const char *topic, const char *const *prefixes, int n)
{
    for (int i = 0; i < n; i++)
        if (strncmp(topic, prefixes[i], strlen(prefixes[i])) == 0)
            return true;
    return false;
}

/*  Checks a subscriber's output: for each source, exactly the matching seqs, in order. */
static int s_check_output(const char *file, const char *const *prefixes, int nprefix,
                          const char *const *sources, int nsources)
{
    FILE *f = fopen(file, "r");
    if (!f) {
        fprintf(stderr, "  no output file %s\n", file);
        return -1;
    }
    uint64_t next_expected[8];
    for (int s = 0; s < nsources; s++) {
        next_expected[s] = 1;
        while (next_expected[s] <= N_EVENTS &&
               !s_matches(s_topics[(next_expected[s] - 1) % 3], prefixes, nprefix))
            next_expected[s]++;
    }
    char src[256], topic[256];
    uint64_t seq;
    int errors = 0, lines = 0;
    while (fscanf(f, "%255s %" SCNu64 " %255s", src, &seq, topic) == 3) {
        lines++;
        int s = 0;
        while (s < nsources && strcmp(sources[s], src) != 0)
            s++;
        if (s == nsources || seq != next_expected[s] ||
            strcmp(topic, s_topics[(seq - 1) % 3]) != 0) {
            if (errors++ < 5)
                fprintf(stderr, "  %s: unexpected %s %" PRIu64 " %s (expected seq %" PRIu64 ")\n",
                        file, src, seq, topic, s < nsources ? next_expected[s] : 0);
            continue;
        }
        do
            next_expected[s]++;
        while (next_expected[s] <= N_EVENTS &&
               !s_matches(s_topics[(next_expected[s] - 1) % 3], prefixes, nprefix));
    }
    fclose(f);
    for (int s = 0; s < nsources; s++)
        if (next_expected[s] != N_EVENTS + 1 && errors++ < 10)
            fprintf(stderr, "  %s: source %s stopped before seq %" PRIu64 "\n", file, sources[s],
                    next_expected[s]);
    return errors ? -1 : lines;
}

static int s_expected(const char *const *prefixes, int n)
{
    int count = 0;
    for (int seq = 1; seq <= N_EVENTS; seq++)
        count += s_matches(s_topics[(seq - 1) % 3], prefixes, n);
    return count * 3;
}

/*  Reads a peer's state ("up", "down", "new") from a node's INFO; "" if not listed. */
static void s_peer_state(weft_ctl_t *ctl, const char *name, char *state, size_t cap)
{
    state[0] = 0;
    weft_reply_t reply;
    if (weft_ctl_call(ctl, "INFO", NULL, 0, 2000, &reply) != WEFT_OK)
        return;
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    if (msgpack_unpack_next(&u, (const char *)reply.body, reply.body_size, &off) > 0 &&
        u.data.type == MSGPACK_OBJECT_MAP) {
        for (uint32_t i = 0; i < u.data.via.map.size; i++) {
            msgpack_object_kv *kv = &u.data.via.map.ptr[i];
            if (kv->key.via.str.size != 5 || memcmp(kv->key.via.str.ptr, "peers", 5) ||
                kv->val.type != MSGPACK_OBJECT_ARRAY)
                continue;
            for (uint32_t j = 0; j < kv->val.via.array.size; j++) {
                msgpack_object *p = &kv->val.via.array.ptr[j];
                const char *pn = NULL, *ps = NULL;
                size_t pnl = 0, psl = 0;
                for (uint32_t k = 0; k < p->via.map.size; k++) {
                    msgpack_object_kv *f = &p->via.map.ptr[k];
                    if (f->key.via.str.size == 4 && !memcmp(f->key.via.str.ptr, "name", 4)) {
                        pn = f->val.via.str.ptr;
                        pnl = f->val.via.str.size;
                    }
                    if (f->key.via.str.size == 5 && !memcmp(f->key.via.str.ptr, "state", 5)) {
                        ps = f->val.via.str.ptr;
                        psl = f->val.via.str.size;
                    }
                }
                if (pn && ps && pnl == strlen(name) && !memcmp(pn, name, pnl) && psl < cap) {
                    memcpy(state, ps, psl);
                    state[psl] = 0;
                }
            }
        }
    }
    msgpack_unpacked_destroy(&u);
    weft_reply_clear(&reply);
}

TEST_CASE("three processes find each other by gossip and each gets exactly its events",
          t_three_nodes)
{
    char n_events[16], ex_a[16], ex_b[16], ex_c[16];
    const char *pa[] = {"task."}, *pb[] = {"user.", "task."}, *pc[] = {""};
    snprintf(n_events, sizeof(n_events), "%d", N_EVENTS);
    snprintf(ex_a, sizeof(ex_a), "%d", s_expected(pa, 1));
    snprintf(ex_b, sizeof(ex_b), "%d", s_expected(pb, 2));
    snprintf(ex_c, sizeof(ex_c), "%d", s_expected(pc, 1));
    const char *topics = "task.created,user.deleted,audit.log";

    char *argv_a[] = {(char *)s_peer_bin, "--name", "node-a", "--gossip-bind", "tcp://127.0.0.1:*",
                      "--seed-file", s_path("seed"), "--prefix", "task.", "--peers", "node-b",
                      "--peers", "node-c", "--publish", n_events, "--topics", (char *)topics,
                      "--expect", ex_a, "--ready", s_path("ready-a"), "--go", s_path("go"),
                      "--out", s_path("out-a"), NULL};
    pid_t a = s_spawn(argv_a);
    CHECK(WAIT_UNTIL(zsys_file_exists(s_path("seed")), 10000));
    char seed[256] = "";
    FILE *f = fopen(s_path("seed"), "r");
    CHECK(f && fgets(seed, sizeof(seed), f));
    fclose(f);
    char *argv_b[] = {(char *)s_peer_bin, "--name", "node-b", "--seed", seed, "--prefix", "user.",
                      "--prefix", "task.", "--peers", "node-a", "--peers", "node-c", "--publish",
                      n_events, "--topics", (char *)topics, "--expect", ex_b, "--ready",
                      s_path("ready-b"), "--go", s_path("go"), "--out", s_path("out-b"), NULL};
    char *argv_c[] = {(char *)s_peer_bin, "--name", "node-c", "--seed", seed, "--prefix", "",
                      "--peers", "node-a", "--peers", "node-b", "--publish", n_events, "--topics",
                      (char *)topics, "--expect", ex_c, "--ready", s_path("ready-c"), "--go",
                      s_path("go"), "--out", s_path("out-c"), NULL};
    pid_t b = s_spawn(argv_b), c = s_spawn(argv_c);
    bool all_ready = WAIT_UNTIL(zsys_file_exists(s_path("ready-a")) &&
                                    zsys_file_exists(s_path("ready-b")) &&
                                    zsys_file_exists(s_path("ready-c")),
                                20000);
    FILE *go = fopen(s_path("go"), "w");
    if (go)
        fclose(go);
    int ra = s_wait_child(a, 30000), rb = s_wait_child(b, 30000), rc = s_wait_child(c, 30000);
    CHECK(all_ready);
    CHECK_EQ_INT(ra, 0);
    CHECK_EQ_INT(rb, 0);
    CHECK_EQ_INT(rc, 0);
    const char *sources[] = {"node-a", "node-b", "node-c"};
    CHECK_EQ_INT(s_check_output(s_path("out-a"), pa, 1, sources, 3), atoi(ex_a));
    CHECK_EQ_INT(s_check_output(s_path("out-b"), pb, 2, sources, 3), atoi(ex_b));
    CHECK_EQ_INT(s_check_output(s_path("out-c"), pc, 1, sources, 3), atoi(ex_c));
}

TEST_CASE("a node killed with SIGKILL is marked down by its peers", t_kill_marks_down)
{
    weft_config_t *cfg = weft_config_new();
    weft_config_set(cfg, "gossip/seeds", "none");
    weft_config_set(cfg, "gossip/bind", "tcp://127.0.0.1:*");
    char hb[16];
    snprintf(hb, sizeof(hb), "%d", HB_MS);
    weft_config_set(cfg, "heartbeat/interval", hb);
    int err;
    weft_node_t *watcher = weft_node_new("watcher", cfg, &err);
    weft_config_destroy(&cfg);
    CHECK(watcher);
    char seed[256];
    snprintf(seed, sizeof(seed), "%s", weft_node_gossip_endpoint(watcher));
    char *argv_v[] = {(char *)s_peer_bin, "--name", "victim", "--seed", seed, "--prefix", "x.",
                      "--expect", "1", "--timeout", "60000", "--out", s_path("out-victim"), NULL};
    pid_t v = s_spawn(argv_v);
    CHECK(weft_node_wait_peer_named(watcher, "victim", 10000) == WEFT_OK);
    weft_ctl_t *ctl = weft_ctl_new(weft_node_ctl_endpoint(watcher), &err);
    char state[16];
    s_peer_state(ctl, "victim", state, sizeof(state));
    CHECK_STR(state, "up");
    int64_t t0 = t_mono_ms();
    kill(v, SIGKILL);
    s_wait_child(v, 5000);
    bool down = WAIT_UNTIL((s_peer_state(ctl, "victim", state, sizeof(state)),
                            strcmp(state, "down") == 0),
                           10 * HB_MS);
    fprintf(stderr, "  victim marked down after %lld ms (heartbeat %d ms)\n",
            (long long)(t_mono_ms() - t0), HB_MS);
    weft_ctl_destroy(&ctl);
    weft_node_destroy(&watcher);
    CHECK(down);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_fabric PATH/TO/fabric_peer\n");
        return 2;
    }
    s_peer_bin = argv[1];
    snprintf(s_dir, sizeof(s_dir), "/tmp/weft-fabric-XXXXXX");
    if (!mkdtemp(s_dir))
        return 1;
    zsys_init();
    RUN_CASE("three processes find each other by gossip and each gets exactly its events",
             t_three_nodes);
    RUN_CASE("a node killed with SIGKILL is marked down by its peers", t_kill_marks_down);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", s_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", s_dir);
    return TEST_EXIT();
}

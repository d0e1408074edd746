/*  test_chaos.c - the chaos suite: a small fabric under steady load whose processes are killed
    with SIGKILL at random moments and restarted, after which the archive, the subscriber, its
    durable consumer and the DLQ must account for every event.

    usage: test_chaos WEFT-ARCHIVER WEFT-DLQ CHAOS_PUB CHAOS_SUB

    The fabric (every process a separate one; one gossip seed for all, every node with
    gossip/bind auto so that whoever is up holds the seed; heartbeats every 200 ms; every
    endpoint - seed, SUB, control, service - on a random free port of 20000-31999 that the run
    never uses twice, outside the ephemeral range that other tests and tools on the machine
    use, so that no other fabric's stale connections reach our sockets):
      - weft-archiver on one archive directory, restarted on the same directory;
      - weft-dlq on one store directory (redelivery backoff 200 ms .. 1 s, 10 attempts);
      - chaos_sub "chaos-sub-TAG": one at-least-once subscription (repair on) to "chaos.", whose
        handler fails the first delivery of every seq divisible by 97 (retry attempts 1, no
        breaker), so those events are dead-lettered and the DLQ's redeliveries succeed; and a
        durable named consumer "chaos-durable" on "chaos.", whose handler never fails, with
        its checkpoint in one state directory that every incarnation reuses (--state), so
        each one catches up from the archive from where the previous ones got to; it logs
        every handler call of both (chaos_sub.c);
      - NPUB chaos_pub "pub-K-TAG", each publishing RATE events/s in batches of 5 and logging,
        fsync'ed, its instance and last seq after every batch (chaos_pub.c).
    (TAG: 4 hex digits drawn for the run, in every node name, so that a node of another fabric
    that reaches ours anyway is recognised as such.) Each restart is a new incarnation with its
    own log files, so the driver knows what every instance did up to its death.

    The run: everything starts; then ROUNDS rounds, each killing every role once (archiver,
    DLQ, subscriber, each publisher) in a random order, 0.3-2 s apart, each victim restarted
    0.1-2 s after its death (so outages overlap); then 6 s of load with everything up; then
    the publishers stop publishing (SIGUSR1; they stay up, their outboxes still serve) and a
    quiet period, polled every second with a 30 s deadline, lets repairs, dead letters and
    redeliveries settle. The kill schedule comes from a seeded generator: the seed is
    printed, WEFT_CHAOS_SEED=N replays the same schedule (process timing still varies); without
    it the schedule of seed 1 runs, WEFT_CHAOS_SEED=random draws one.
    WEFT_CHAOS_ROUNDS (default 4) and WEFT_CHAOS_RATE (default 300) change the size;
    WEFT_CHAOS_KEEP=1 keeps the work directory (it is always kept when the run fails).

    The checks, at the end:

    (a) The archive. Every event is stored once: no (inst, seq) and no event id twice, nothing
        from an instance no publisher logged (events from other fabrics' nodes, which only a
        port collision brings here, are counted apart), no seq beyond what its instance
        published. For each
        publisher instance, the seqs it must hold:
          - an instance alive at the end: every seq from 1 to its last published seq (the
            outbox still serves all of them);
          - an instance killed at time D: every seq from 1 to H, the highest seq of it that a
            live node saw (stored in the archive, or handled by any subscriber instance),
            except seqs that died with its outbox before the archiver could have them:
              * tail: seqs published less than 300 ms before D (possibly still in its send
                queues when it died);
              * archiver outage: when D falls in [E - 1 s, R + 3 s], E the death of an
                archiver instance and R the moment the next one was serving, the seqs
                published from E - 1 s on (lost with the archiver's open batch, or never
                received, and not yet repaired from the outbox when it died);
              * publisher start: an instance killed within 3 s of its start is exempt as a
                whole (its first events, published before the archiver was connected to it,
                are fetched from its outbox only once the archiver has heard from it).
            "published at" is the time of the batch line in its progress log (an upper bound),
            or D for seqs after its last line.
        Seqs a publisher killed at once published but nobody saw are legitimately lost.
    (b) The subscriber instance alive at the end handled, for every publisher instance alive
        at the end, every seq from the first one it handled of that instance to the last
        published one, and every event published (envelope ts) at least 4 s after both it and
        the publisher instance started: i.e. nothing is missing once it is connected, and it
        connects within 4 s. Within one subscriber instance each source comes in seq order
        with no duplicate (the repair holds later events back). Duplicates across instances
        (the same event handled by two incarnations) are allowed and counted.
    (c) Counters add up: the archiver's INFO `events` equals the number of distinct events
        replayed. DLQ: the letters (LIST, every state) equal its INFO counts (pending +
        retrying + parked + resolved); every letter is for an event a subscriber instance
        failed, for subscriber "chaos-sub-TAG/chaos", one per event; every event the final
        subscriber instance failed has a letter, and its `dead_lettered` counter equals the
        number of events it failed (none pending, none dropped); a killed instance's last
        reported `dead_lettered` is not more than its letters in the DLQ (an acknowledged
        letter survives a DLQ kill -9); at the end nothing is pending or retrying, and every
        resolved letter's event was handled by a redelivery. (Dead letters a killed subscriber
        instance still held unacknowledged died with it; they are counted, not required.)
    (d) The durable consumer, after (a) to (c): every event the final replay of (a) returned
        whose topic starts with "chaos." (of this fabric's nodes; each (inst, seq) once) and
        whose envelope ts is not before the durable consumer first existed (the C line of the
        first subscriber instance: a first run starts live) was handled by the durable consumer
        of at least one subscriber instance (its D lines).
        The final instance may still be catching up from the archive: the D lines of every
        instance are read again every 500 ms until their union covers those events, for at
        most 30 s; what is still missing then fails the run (listed per source, with what
        each subscriber instance handled of it, and for the first 12 missing ranges when they
        were published and which subscriber instances were running then). Within
        one subscriber instance no event is handled twice (the checkpoint skips what it
        handled). Across instances duplicates are allowed and counted: a kill -9 between a
        handler call and the next checkpoint write (every 250 ms at most) makes the next
        instance handle those events again. Events handled that the archive does not hold
        (a killed publisher's tail the archiver never had) are counted, not required.
    Besides: a role that exits by itself (a crash, an assert) fails the run, and at the end
    every process stops cleanly on SIGTERM (exit status 0; under the sanitizers a leak fails
    it); a failure quotes the telling lines of the process's log. Running nodes that, at the
    end, still consider another running node down (their last log line about it says so) are
    reported as partitions, since such a pair no longer exchanges anything. What each check
    found is printed per instance, and a summary gives the figures.

    Only processes this driver started are signalled (a table of pids, each reaped with
    waitpid); every wait is a poll with a deadline.
*/
#include <arpa/inet.h>
#include <czmq.h>
#include <errno.h>
#include <fcntl.h>
#include <msgpack.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testing.h"
#include "weft.h"

#define NPUB 3
#define HB_MS "200"
#define FAIL_MOD "97" /* the subscriber fails seqs divisible by this */
#define PUB_BATCH 5
#define GRACE_MS 4000         /* (b): a subscriber is connected within this */
#define TAIL_MS 300           /* (a): a killed publisher's last events may be in flight */
#define OUTAGE_BEFORE_MS 1000 /* (a): an archiver's kill loses what it had not committed */
#define REPAIR_GRACE_MS 3000  /* (a): time to reconnect and repair after a (re)start */
#define QUIET_DEADLINE_MS 30000
#define DURABLE_DEADLINE_MS 30000 /* (d): the final subscriber instance catches up within this */
#define DURABLE_POLL_MS 500
#define TAIL_LOAD_MS 6000
#define MAX_INC 1024
#define NS_PER_MS 1000000LL

enum { R_ARCH, R_DLQ, R_SUB, R_PUB0, NROLES = R_PUB0 + NPUB };

/* ---- run state ------------------------------------------------------------------------------- */

typedef struct {
    int role, n;      /* role and incarnation number */
    pid_t pid;        /* 0 once reaped */
    int64_t spawn_ns; /* wall clock */
    int64_t ready_ns; /* archiver, DLQ: serving (ready file); 0 = not yet */
    int64_t end_ns;   /* death; 0 while it runs */
    bool killed;      /* by our SIGKILL */
    bool crashed;     /* ended by itself */
    int status;
    char file[320];  /* pub: progress log; sub: event log; archiver, DLQ: ready file */
    char stats[320]; /* sub: stats file */
    char svc[256];   /* archiver, DLQ: service endpoint */
} inc_t;

static const char *s_bin[4]; /* archiver, dlq, pub, sub */
static char s_dir[256];
static char s_seed[64];
static int s_rate = 300;
static int s_rounds = 4;
static inc_t s_inc[MAX_INC];
static int s_ninc;
static int s_cur[NROLES];            /* running incarnation of each role, -1 when down */
static int s_count[NROLES];          /* incarnations started */
static int64_t s_restart_ms[NROLES]; /* mono ms when a down role comes back; 0: not planned */
static int s_kills[NROLES];
static int64_t s_t0_ns;
static int s_failures;
static uint64_t s_rng;
static uint64_t s_seed_value;
static char s_tag[8];         /* this run's tag, in every node name it starts */
static char s_sub_name[32];   /* chaos-sub-TAG */
static char s_subscriber[48]; /* chaos-sub-TAG/chaos: its dead letters' subscriber */

static void s_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void s_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "  FAILED: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    s_failures++;
}

static void s_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void s_say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "chaos: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
}

static double s_rel(int64_t wall_ns)
{
    return (double)(wall_ns - s_t0_ns) / 1e9;
}

/*  splitmix64: the kill schedule, reproducible from the seed (s_rng), and the ports, drawn
    apart (s_port_rng) so that they neither depend on the seed nor disturb the schedule. */
static uint64_t s_port_rng;

static uint64_t s_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t s_rand(void)
{
    return s_next(&s_rng);
}

static int s_between(int lo, int hi)
{
    return lo + (int)(s_rand() % (uint64_t)(hi - lo + 1));
}

static const char *s_role_name(int role)
{
    static const char *pubs[NPUB] = {"pub-0", "pub-1", "pub-2"};
    switch (role) {
    case R_ARCH:
        return "archiver";
    case R_DLQ:
        return "dlq";
    case R_SUB:
        return "sub";
    default:
        return pubs[role - R_PUB0];
    }
}

static const char *s_inc_name(const inc_t *c)
{
    static char buf[4][64];
    static int next;
    char *b = buf[next++ % 4];
    snprintf(b, 64, "%s#%d", s_role_name(c->role), c->n);
    return b;
}

/*  A random free TCP port in 20000..31999, never one this run used before. Every endpoint of
    the fabric (seed, SUB, control, service) is bound on such a port, outside Linux's
    ephemeral range (32768-60999): other tests and tools on the machine bind ephemeral ports,
    and a port one of their nodes used, reused by one of ours, would join their fabric to
    ours (their stale connections reach our sockets). */
static uint8_t s_port_used[12000];

static int s_free_port(void)
{
    for (int attempt = 0; attempt < 1000; attempt++) {
        int port = 20000 + (int)(s_next(&s_port_rng) % 12000);
        if (s_port_used[port - 20000])
            continue;
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons((uint16_t)port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        bool ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
        close(fd);
        if (ok) {
            s_port_used[port - 20000] = 1;
            return port;
        }
    }
    return -1;
}

/* ---- processes ------------------------------------------------------------------------------- */

static void s_spawn(int role)
{
    if (s_ninc == MAX_INC) {
        s_fail("too many incarnations");
        return;
    }
    inc_t *c = &s_inc[s_ninc];
    memset(c, 0, sizeof(*c));
    c->role = role;
    c->n = s_count[role]++;
    const char *name = s_role_name(role);
    char log[320], data[320], rate[16], batch[16], bind[64], ctl_bind[64], svc_bind[64];
    char node_name[64];
    snprintf(node_name, sizeof(node_name), "%s-%s", name, s_tag);
    snprintf(bind, sizeof(bind), "tcp://127.0.0.1:%d", s_free_port());
    snprintf(ctl_bind, sizeof(ctl_bind), "tcp://127.0.0.1:%d", s_free_port());
    snprintf(svc_bind, sizeof(svc_bind), "tcp://127.0.0.1:%d", s_free_port());
    snprintf(log, sizeof(log), "%s/%s.log", s_dir, name);
    snprintf(rate, sizeof(rate), "%d", s_rate);
    snprintf(batch, sizeof(batch), "%d", PUB_BATCH);
    const char *argv[40];
    int n = 0;
    switch (role) {
    case R_ARCH:
        snprintf(data, sizeof(data), "%s/archive", s_dir);
        snprintf(c->file, sizeof(c->file), "%s/archiver.%d.ready", s_dir, c->n);
        argv[n++] = s_bin[0];
        argv[n++] = "--data", argv[n++] = data;
        argv[n++] = "--name", argv[n++] = node_name;
        argv[n++] = "--seed", argv[n++] = s_seed;
        argv[n++] = "--ready-file", argv[n++] = c->file;
        argv[n++] = "--svc-bind", argv[n++] = svc_bind;
        break;
    case R_DLQ:
        snprintf(data, sizeof(data), "%s/dlq", s_dir);
        snprintf(c->file, sizeof(c->file), "%s/dlq.%d.ready", s_dir, c->n);
        argv[n++] = s_bin[1];
        argv[n++] = "--data", argv[n++] = data;
        argv[n++] = "--name", argv[n++] = node_name;
        argv[n++] = "--seed", argv[n++] = s_seed;
        argv[n++] = "--ready-file", argv[n++] = c->file;
        argv[n++] = "--backoff", argv[n++] = "200";
        argv[n++] = "--backoff-max", argv[n++] = "1000";
        argv[n++] = "--jitter", argv[n++] = "0.2";
        argv[n++] = "--timeout", argv[n++] = "2000";
        argv[n++] = "--max-attempts", argv[n++] = "10";
        argv[n++] = "--svc-bind", argv[n++] = svc_bind;
        break;
    case R_SUB:
        snprintf(c->file, sizeof(c->file), "%s/sub.%d.events", s_dir, c->n);
        snprintf(c->stats, sizeof(c->stats), "%s/sub.%d.stats", s_dir, c->n);
        argv[n++] = s_bin[3];
        argv[n++] = "--seed", argv[n++] = s_seed;
        argv[n++] = "--name", argv[n++] = s_sub_name;
        argv[n++] = "--log", argv[n++] = c->file;
        argv[n++] = "--stats", argv[n++] = c->stats;
        argv[n++] = "--fail-mod", argv[n++] = FAIL_MOD;
        snprintf(data, sizeof(data), "%s/sub-state", s_dir);
        argv[n++] = "--state", argv[n++] = data;
        break;
    default:
        snprintf(c->file, sizeof(c->file), "%s/%s.%d.progress", s_dir, name, c->n);
        argv[n++] = s_bin[2];
        argv[n++] = "--seed", argv[n++] = s_seed;
        argv[n++] = "--name", argv[n++] = node_name;
        argv[n++] = "--progress", argv[n++] = c->file;
        argv[n++] = "--rate", argv[n++] = rate;
        argv[n++] = "--batch", argv[n++] = batch;
        break;
    }
    argv[n] = NULL;
    unlink(c->file);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dprintf(fd, "---- %s#%d (pid %d)\n", name, c->n, (int)getpid());
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        setenv("WEFT_HEARTBEAT_INTERVAL", HB_MS, 1);
        setenv("WEFT_NODE_BIND", bind, 1);
        setenv("WEFT_NODE_CTL_BIND", ctl_bind, 1);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    if (pid < 0) {
        s_fail("fork: %s", strerror(errno));
        return;
    }
    c->pid = pid;
    c->spawn_ns = weft_now_ns();
    s_cur[role] = s_ninc++;
    s_restart_ms[role] = 0;
}

static const char *s_log_excerpt(const inc_t *c);

/*  Reaps a role that ended by itself (a crash), picks up service endpoints, restarts what is
    due. */
static void s_tick(void)
{
    int64_t now = t_mono_ms();
    for (int role = 0; role < NROLES; role++) {
        int i = s_cur[role];
        if (i < 0) {
            if (s_restart_ms[role] && now >= s_restart_ms[role])
                s_spawn(role);
            continue;
        }
        inc_t *c = &s_inc[i];
        int st = 0;
        if (waitpid(c->pid, &st, WNOHANG) == c->pid) {
            c->status = st;
            c->pid = 0;
            c->end_ns = weft_now_ns();
            c->crashed = true;
            s_cur[role] = -1;
            s_restart_ms[role] = now + 500;
            s_fail("%s ended by itself at +%.1f s: %s %d (see %s/%s.log)%s", s_inc_name(c),
                   s_rel(c->end_ns), WIFEXITED(st) ? "exit status" : "signal",
                   WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st), s_dir, s_role_name(role),
                   s_log_excerpt(c));
            continue;
        }
        if ((role == R_ARCH || role == R_DLQ) && !c->ready_ns) {
            FILE *f = fopen(c->file, "r");
            if (f) {
                if (fgets(c->svc, sizeof(c->svc), f) && strchr(c->svc, '\n')) {
                    c->svc[strcspn(c->svc, "\n")] = 0;
                    c->ready_ns = weft_now_ns();
                } else {
                    c->svc[0] = 0;
                }
                fclose(f);
            }
        }
    }
}

static void s_run_for(int ms)
{
    int64_t end = t_mono_ms() + ms;
    do {
        s_tick();
        t_nap_ms(10);
    } while (t_mono_ms() < end);
}

static bool s_role_ready(int role)
{
    int i = s_cur[role];
    if (i < 0)
        return false;
    return (role != R_ARCH && role != R_DLQ) || s_inc[i].ready_ns;
}

static bool s_all_ready(void)
{
    for (int role = 0; role < NROLES; role++)
        if (!s_role_ready(role))
            return false;
    return true;
}

/*  Polls (ticking) until cond or the deadline. */
#define TICK_UNTIL(cond, timeout_ms)                                                               \
    ({                                                                                             \
        int64_t _dl = t_mono_ms() + (timeout_ms);                                                  \
        while (!(cond) && t_mono_ms() < _dl) {                                                     \
            s_tick();                                                                              \
            t_nap_ms(10);                                                                          \
        }                                                                                          \
        (cond);                                                                                    \
    })

static void s_kill(int role, int back_in_ms)
{
    int i = s_cur[role];
    if (i < 0)
        return;
    inc_t *c = &s_inc[i];
    kill(c->pid, SIGKILL);
    int st = 0;
    waitpid(c->pid, &st, 0);
    c->end_ns = weft_now_ns();
    c->status = st;
    c->pid = 0;
    s_cur[role] = -1;
    s_kills[role]++;
    s_restart_ms[role] = t_mono_ms() + back_in_ms;
    if (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) {
        c->killed = true;
        s_say("+%5.1f s  kill -9 %s, back in %d ms", s_rel(c->end_ns), s_inc_name(c), back_in_ms);
    } else {
        c->crashed = true;
        s_fail("%s had ended by itself before its kill: %s %d (see %s/%s.log)%s", s_inc_name(c),
               WIFEXITED(st) ? "exit status" : "signal",
               WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st), s_dir, s_role_name(role),
               s_log_excerpt(c));
    }
}

static const inc_t *s_current(int role)
{
    return s_cur[role] >= 0 ? &s_inc[s_cur[role]] : NULL;
}

/*  SIGTERM to every running process; each must exit 0 within 15 s. */
static void s_stop_all(void)
{
    for (int role = 0; role < NROLES; role++)
        if (s_cur[role] >= 0)
            kill(s_inc[s_cur[role]].pid, SIGTERM);
    int64_t deadline = t_mono_ms() + 15000;
    for (int role = 0; role < NROLES; role++) {
        if (s_cur[role] < 0)
            continue;
        inc_t *c = &s_inc[s_cur[role]];
        int st = 0;
        pid_t r;
        while ((r = waitpid(c->pid, &st, WNOHANG)) == 0 && t_mono_ms() < deadline)
            t_nap_ms(10);
        if (r != c->pid) {
            kill(c->pid, SIGKILL);
            waitpid(c->pid, &st, 0);
            s_fail("%s did not stop within 15 s of SIGTERM", s_inc_name(c));
        } else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            s_fail("%s stopped with %s %d on SIGTERM (see %s/%s.log)%s", s_inc_name(c),
                   WIFEXITED(st) ? "exit status" : "signal",
                   WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st), s_dir, s_role_name(role),
                   s_log_excerpt(c));
        }
        c->pid = 0;
        c->end_ns = weft_now_ns();
        s_cur[role] = -1;
    }
}

/*  On any exit: no process of ours outlives the driver. */
static void s_kill_leftovers(void)
{
    for (int i = 0; i < s_ninc; i++)
        if (s_inc[i].pid > 0) {
            kill(s_inc[i].pid, SIGKILL);
            waitpid(s_inc[i].pid, NULL, 0);
            s_inc[i].pid = 0;
        }
}

/* ---- what the processes wrote ---------------------------------------------------------------- */

static char *s_slurp(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            cap *= 2;
            buf = realloc(buf, cap + 1);
        }
    }
    fclose(f);
    buf[n] = 0;
    *size = n;
    return buf;
}

/*  The telling lines (errors, assertions, sanitizer reports) an incarnation wrote to its
    role's log, as ": line | line", or "". */
static const char *s_log_excerpt(const inc_t *c)
{
    static char out[600];
    out[0] = 0;
    char path[320], head[64];
    snprintf(path, sizeof(path), "%s/%s.log", s_dir, s_role_name(c->role));
    snprintf(head, sizeof(head), "---- %s#%d ", s_role_name(c->role), c->n);
    size_t size;
    char *buf = s_slurp(path, &size);
    if (!buf)
        return out;
    char *p = strstr(buf, head);
    static const char *marks[] = {"Assertion", "ERROR:",        "SUMMARY:",  "dangling",
                                  "E: ",       "runtime error", "created at"};
    size_t n = 0;
    int lines = 0;
    while (p && *p && lines < 4) {
        char *nl = strchr(p, '\n');
        if (nl)
            *nl = 0;
        for (size_t m = 0; m < sizeof(marks) / sizeof(marks[0]); m++)
            if (strstr(p, marks[m])) {
                n += (size_t)snprintf(out + n, sizeof(out) - n, "%s%.160s", lines++ ? " | " : ": ",
                                      p);
                if (n >= sizeof(out))
                    n = sizeof(out) - 1;
                break;
            }
        p = nl ? nl + 1 : NULL;
    }
    free(buf);
    return out;
}

/*  What an incarnation wrote to its role's log (from its header to the next one), or NULL. */
static char *s_log_section(const inc_t *c)
{
    char path[320], head[64];
    snprintf(path, sizeof(path), "%s/%s.log", s_dir, s_role_name(c->role));
    snprintf(head, sizeof(head), "---- %s#%d ", s_role_name(c->role), c->n);
    size_t size;
    char *buf = s_slurp(path, &size);
    char *p = buf ? strstr(buf, head) : NULL;
    if (!p) {
        free(buf);
        return NULL;
    }
    char *end = strstr(p + 1, "\n---- ");
    if (end)
        end[1] = 0;
    char *out = strdup(p);
    free(buf);
    return out;
}

/*  Calls fn for each complete line (a torn last line is ignored). */
static void s_each_line(const char *path, void (*fn)(char *line, void *arg), void *arg)
{
    size_t size;
    char *buf = s_slurp(path, &size);
    if (!buf)
        return;
    char *p = buf;
    char *nl;
    while ((nl = memchr(p, '\n', (size_t)(buf + size - p))) != NULL) {
        *nl = 0;
        fn(p, arg);
        p = nl + 1;
    }
    free(buf);
}

typedef struct {
    uint64_t seq;
    int64_t ts;
} mark_t;

typedef struct {
    const inc_t *c;
    uint64_t inst; /* 0: it never came up */
    mark_t *marks; /* one per batch line, in order */
    size_t nmarks, cap;
    uint64_t logged; /* last seq in its log */
    uint64_t final;  /* Q line: final seq (0: none) */
    bool has_final;
    bool alive; /* running at the end */
} publog_t;

static void s_pub_line(char *line, void *arg)
{
    publog_t *p = arg;
    char kind;
    uint64_t inst, seq = 0;
    long long ts = 0;
    if (line[0] == 'I' && sscanf(line, "%c %" SCNx64 " %lld", &kind, &inst, &ts) == 3) {
        p->inst = inst;
        return;
    }
    if ((line[0] == 'P' || line[0] == 'Q') &&
        sscanf(line, "%c %" SCNx64 " %" SCNu64 " %lld", &kind, &inst, &seq, &ts) == 4) {
        if (p->nmarks == p->cap) {
            p->cap = p->cap ? p->cap * 2 : 256;
            p->marks = realloc(p->marks, p->cap * sizeof(mark_t));
        }
        p->marks[p->nmarks++] = (mark_t){seq, (int64_t)ts};
        if (seq > p->logged)
            p->logged = seq;
        if (kind == 'Q') {
            p->final = seq;
            p->has_final = true;
        }
    }
}

/*  Upper bound of when seq was published: its batch line, or the death for a seq after the
    last line. */
static int64_t s_published_at(const publog_t *p, uint64_t seq)
{
    size_t lo = 0, hi = p->nmarks;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (p->marks[mid].seq >= seq)
            hi = mid;
        else
            lo = mid + 1;
    }
    if (lo < p->nmarks)
        return p->marks[lo].ts;
    return p->c->end_ns ? p->c->end_ns : INT64_MAX;
}

/*  A set of seqs of one source instance. */
typedef struct {
    uint64_t inst;
    uint8_t *count; /* per seq, saturating at 255 */
    size_t cap;
    uint64_t min, max, distinct;
} seqset_t;

typedef struct {
    seqset_t *v;
    size_t n, cap;
} seqsets_t;

static seqset_t *s_set(seqsets_t *ss, uint64_t inst, bool create)
{
    for (size_t i = 0; i < ss->n; i++)
        if (ss->v[i].inst == inst)
            return &ss->v[i];
    if (!create)
        return NULL;
    if (ss->n == ss->cap) {
        ss->cap = ss->cap ? ss->cap * 2 : 16;
        ss->v = realloc(ss->v, ss->cap * sizeof(seqset_t));
    }
    seqset_t *s = &ss->v[ss->n++];
    memset(s, 0, sizeof(*s));
    s->inst = inst;
    return s;
}

/*  Adds seq; returns how many times it was there before. */
static unsigned s_set_add(seqset_t *s, uint64_t seq)
{
    if (seq >= s->cap) {
        size_t cap = s->cap ? s->cap : 1024;
        while (cap <= seq)
            cap *= 2;
        s->count = realloc(s->count, cap);
        memset(s->count + s->cap, 0, cap - s->cap);
        s->cap = cap;
    }
    unsigned before = s->count[seq];
    if (s->count[seq] < 255)
        s->count[seq]++;
    if (before == 0) {
        s->distinct++;
        if (!s->min || seq < s->min)
            s->min = seq;
        if (seq > s->max)
            s->max = seq;
    }
    return before;
}

static unsigned s_set_has(const seqset_t *s, uint64_t seq)
{
    return s && seq < s->cap ? s->count[seq] : 0;
}

static void s_sets_free(seqsets_t *ss)
{
    for (size_t i = 0; i < ss->n; i++)
        free(ss->v[i].count);
    free(ss->v);
    memset(ss, 0, sizeof(*ss));
}

typedef struct {
    char kind; /* H, F, R */
    uint64_t inst, seq;
    char id[33];
} subev_t;

typedef struct {
    const inc_t *c;
    uint64_t inst;
    bool alive;
    subev_t *ev;
    size_t n, cap;
    seqsets_t handled; /* H and F, per source */
    uint64_t dup_within, out_of_order;
    char order_example[160];
    /* its last stats */
    bool have_stats;
    int64_t stats_ts;
    uint64_t dead_lettered, dl_pending, dl_dropped, gaps, repaired, unrepaired, delivered;
} sublog_t;

static void s_sub_line(char *line, void *arg)
{
    sublog_t *s = arg;
    subev_t e;
    memset(&e, 0, sizeof(e));
    long long ts;
    if (line[0] == 'I') {
        sscanf(line, "I %" SCNx64 " %lld", &s->inst, &ts);
        return;
    }
    if (line[0] == 'H' && sscanf(line, "H %" SCNx64 " %" SCNu64, &e.inst, &e.seq) == 2) {
        e.kind = 'H';
    } else if ((line[0] == 'F' || line[0] == 'R') && sscanf(line, "%c %" SCNx64 " %" SCNu64 " %32s",
                                                            &e.kind, &e.inst, &e.seq, e.id) == 4) {
    } else {
        return;
    }
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 4096;
        s->ev = realloc(s->ev, s->cap * sizeof(subev_t));
    }
    s->ev[s->n++] = e;
    if (e.kind == 'R')
        return;
    seqset_t *set = s_set(&s->handled, e.inst, true);
    uint64_t last = set->max;
    if (s_set_add(set, e.seq) > 0) {
        if (s->dup_within++ == 0)
            snprintf(s->order_example, sizeof(s->order_example),
                     "%016" PRIx64 " seq %" PRIu64 " handled twice", e.inst, e.seq);
    } else if (e.seq < last) {
        if (s->out_of_order++ == 0 && !s->order_example[0])
            snprintf(s->order_example, sizeof(s->order_example),
                     "%016" PRIx64 " seq %" PRIu64 " after %" PRIu64, e.inst, e.seq, last);
    }
}

static void s_sub_stats_line(char *line, void *arg)
{
    sublog_t *s = arg;
    char key[64];
    long long v;
    if (sscanf(line, "%63s %lld", key, &v) != 2)
        return;
    s->have_stats = true;
    if (!strcmp(key, "ts"))
        s->stats_ts = v;
    else if (!strcmp(key, "dead_lettered"))
        s->dead_lettered = (uint64_t)v;
    else if (!strcmp(key, "dead_letter_pending"))
        s->dl_pending = (uint64_t)v;
    else if (!strcmp(key, "dead_letter_dropped"))
        s->dl_dropped = (uint64_t)v;
    else if (!strcmp(key, "gaps"))
        s->gaps = (uint64_t)v;
    else if (!strcmp(key, "repaired"))
        s->repaired = (uint64_t)v;
    else if (!strcmp(key, "unrepaired"))
        s->unrepaired = (uint64_t)v;
    else if (!strcmp(key, "delivered"))
        s->delivered = (uint64_t)v;
}

/* ---- the archive and the DLQ ----------------------------------------------------------------- */

typedef struct {
    uint64_t inst, seq;
    int64_t ts;
    uint8_t id[WEFT_ID_SIZE];
    char src[16]; /* the source name, cut */
    bool chaos;   /* its topic starts with "chaos." */
} arec_t;

typedef struct {
    arec_t *v;
    size_t n, cap, bad;
} arecs_t;

static int s_on_archived(const weft_archived_t *ev, void *arg)
{
    arecs_t *a = arg;
    weft_envelope_t env;
    if (weft_envelope_decode(&env, ev->envelope, ev->envelope_size) != 0) {
        a->bad++;
        return 0;
    }
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 16384;
        a->v = realloc(a->v, a->cap * sizeof(arec_t));
    }
    arec_t *r = &a->v[a->n++];
    r->inst = env.inst;
    snprintf(r->src, sizeof(r->src), "%.15s", env.src);
    r->seq = env.seq;
    r->ts = env.ts;
    memcpy(r->id, env.id, WEFT_ID_SIZE);
    r->chaos = ev->topic_size >= 6 && memcmp(ev->topic, "chaos.", 6) == 0;
    return 0;
}

static const msgpack_object *s_key(const msgpack_object *map, const char *key)
{
    if (!map || map->type != MSGPACK_OBJECT_MAP)
        return NULL;
    size_t len = strlen(key);
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == len &&
            memcmp(k->via.str.ptr, key, len) == 0)
            return &map->via.map.ptr[i].val;
    }
    return NULL;
}

static uint64_t s_u64(const msgpack_object *map, const char *key)
{
    const msgpack_object *v = s_key(map, key);
    return v && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? v->via.u64 : 0;
}

static void s_str(const msgpack_object *map, const char *key, char *out, size_t cap)
{
    const msgpack_object *v = s_key(map, key);
    out[0] = 0;
    if (v && v->type == MSGPACK_OBJECT_STR)
        snprintf(out, cap, "%.*s", (int)v->via.str.size, v->via.str.ptr);
}

typedef struct {
    bool ok;
    uint64_t inst, events, unrepaired, repaired, duplicates;
} arch_info_t;

static arch_info_t s_arch_info(const char *svc)
{
    arch_info_t out = {0};
    weft_reply_t reply;
    if (weft_archive_info(svc, 3000, &reply) != WEFT_OK)
        return out;
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    if (strcmp(reply.status, "OK") == 0 &&
        msgpack_unpack_next(&u, (const char *)reply.body, reply.body_size, &off) > 0) {
        out.ok = true;
        out.inst = s_u64(&u.data, "inst");
        out.events = s_u64(&u.data, "events");
        const msgpack_object *ing = s_key(&u.data, "ingest");
        out.unrepaired = s_u64(ing, "unrepaired");
        out.repaired = s_u64(ing, "repaired");
        out.duplicates = s_u64(ing, "duplicates");
    }
    msgpack_unpacked_destroy(&u);
    weft_reply_clear(&reply);
    return out;
}

typedef struct {
    char event_id[33];
    char subscriber[256];
    char state[16];
} letter_t;

typedef struct {
    bool ok;
    uint64_t inst, pending, retrying, parked, resolved;
    letter_t *letters;
    size_t n, cap;
} dlq_view_t;

static void s_hex(const uint8_t *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", p[i]);
}

/*  INFO, then LIST of every letter (pages of 1000). */
static dlq_view_t s_dlq_view(const char *svc)
{
    dlq_view_t v = {0};
    weft_ctl_t *ctl = weft_ctl_new(svc, NULL);
    if (!ctl)
        return v;
    weft_reply_t reply;
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    bool info_ok = weft_ctl_call(ctl, "INFO", NULL, 0, 3000, &reply) == WEFT_OK &&
                   strcmp(reply.status, "OK") == 0 &&
                   msgpack_unpack_next(&u, (const char *)reply.body, reply.body_size, &off) > 0;
    if (info_ok) {
        const msgpack_object *counts = s_key(&u.data, "counts");
        v.inst = s_u64(&u.data, "inst");
        v.pending = s_u64(counts, "pending");
        v.retrying = s_u64(counts, "retrying");
        v.parked = s_u64(counts, "parked");
        v.resolved = s_u64(counts, "resolved");
    }
    weft_reply_clear(&reply);
    bool list_ok = info_ok;
    uint8_t cursor[WEFT_ID_SIZE] = {0};
    bool have_cursor = false;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    while (list_ok) {
        msgpack_sbuffer_clear(&sb);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_map(&pk, have_cursor ? 2 : 1);
        msgpack_pack_str(&pk, 5);
        msgpack_pack_str_body(&pk, "limit", 5);
        msgpack_pack_uint64(&pk, 1000);
        if (have_cursor) {
            msgpack_pack_str(&pk, 6);
            msgpack_pack_str_body(&pk, "cursor", 6);
            msgpack_pack_bin(&pk, WEFT_ID_SIZE);
            msgpack_pack_bin_body(&pk, cursor, WEFT_ID_SIZE);
        }
        off = 0;
        if (weft_ctl_call(ctl, "LIST", sb.data, sb.size, 5000, &reply) != WEFT_OK ||
            strcmp(reply.status, "OK") != 0 ||
            msgpack_unpack_next(&u, (const char *)reply.body, reply.body_size, &off) <= 0) {
            list_ok = false;
            weft_reply_clear(&reply);
            break;
        }
        const msgpack_object *arr = s_key(&u.data, "letters");
        for (uint32_t i = 0; arr && arr->type == MSGPACK_OBJECT_ARRAY && i < arr->via.array.size;
             i++) {
            const msgpack_object *l = &arr->via.array.ptr[i];
            if (v.n == v.cap) {
                v.cap = v.cap ? v.cap * 2 : 512;
                v.letters = realloc(v.letters, v.cap * sizeof(letter_t));
            }
            letter_t *x = &v.letters[v.n++];
            memset(x, 0, sizeof(*x));
            const msgpack_object *eid = s_key(l, "event_id");
            if (eid && eid->type == MSGPACK_OBJECT_BIN && eid->via.bin.size == WEFT_ID_SIZE)
                s_hex((const uint8_t *)eid->via.bin.ptr, WEFT_ID_SIZE, x->event_id);
            s_str(l, "subscriber", x->subscriber, sizeof(x->subscriber));
            s_str(l, "state", x->state, sizeof(x->state));
        }
        const msgpack_object *next = s_key(&u.data, "next_cursor");
        have_cursor =
            next && next->type == MSGPACK_OBJECT_BIN && next->via.bin.size == WEFT_ID_SIZE;
        if (have_cursor)
            memcpy(cursor, next->via.bin.ptr, WEFT_ID_SIZE);
        weft_reply_clear(&reply);
        if (!have_cursor)
            break;
    }
    msgpack_sbuffer_destroy(&sb);
    msgpack_unpacked_destroy(&u);
    weft_ctl_destroy(&ctl);
    v.ok = info_ok && list_ok;
    return v;
}

/* ---- the checks ------------------------------------------------------------------------------ */

typedef struct {
    /* (a) */
    uint64_t arch_events, arch_distinct, arch_dup, arch_dup_ids, arch_unknown, arch_bad;
    uint64_t foreign, foreign_distinct; /* events of other fabrics' nodes */
    char foreign_src[16];
    int unsettled; /* what may still change with time: missing events, open letters */
    uint64_t required, missing, beyond, exempt_tail, exempt_outage, exempt_start, lost;
    uint64_t holes; /* missing seqs below the highest archived seq of their instance */
    uint64_t published;
    arch_info_t info;
    /* (b) */
    int sub_incs;
    uint64_t sub_required, sub_missing, sub_missing_start, dup_within, out_of_order, dup_across,
        redeliveries;
    /* (c) */
    dlq_view_t dlq;
    char foreign_subscriber[64];
    uint64_t failed_all, failed_final, letters_unknown, letters_foreign, letters_dup,
        final_without_letter, resolved_without_redelivery, redelivered_without_letter,
        killed_acked_over, lost_letters;
    bool final_stats_ok;
    const sublog_t *final_sub;
    uint64_t partitions; /* running nodes that consider a running peer down */
    /* (d): the distinct archived events of this fabric whose topic starts with "chaos." */
    arec_t *chaos_ev;
    size_t nchaos, chaos_cap;
} figures_t;

/*  Either counts (report false) or also explains (report true) what is wrong. Returns the
    number of problems. */
static int s_check(figures_t *f, bool report, int64_t stats_after_ns)
{
    int problems = 0;
#define PROBLEM(...)                                                                               \
    do {                                                                                           \
        problems++;                                                                                \
        if (report)                                                                                \
            s_fail(__VA_ARGS__);                                                                   \
    } while (0)
    /* a problem that time may still solve (repairs, dead letters, redeliveries under way) */
#define UNSETTLED(...)                                                                             \
    do {                                                                                           \
        f->unsettled++;                                                                            \
        PROBLEM(__VA_ARGS__);                                                                      \
    } while (0)
    memset(f, 0, sizeof(*f));

    /* -- what every incarnation wrote -- */
    publog_t pubs[MAX_INC];
    sublog_t *subs = calloc(MAX_INC, sizeof(sublog_t));
    int npubs = 0, nsubs = 0;
    for (int i = 0; i < s_ninc; i++) {
        const inc_t *c = &s_inc[i];
        if (c->role >= R_PUB0) {
            publog_t *p = &pubs[npubs++];
            memset(p, 0, sizeof(*p));
            p->c = c;
            p->alive = c->end_ns == 0;
            s_each_line(c->file, s_pub_line, p);
        } else if (c->role == R_SUB) {
            sublog_t *s = &subs[nsubs++];
            s->c = c;
            s->alive = c->end_ns == 0;
            s_each_line(c->file, s_sub_line, s);
            s_each_line(c->stats, s_sub_stats_line, s);
        }
    }
    f->sub_incs = nsubs;

    /* -- the archive -- */
    const inc_t *arch = s_current(R_ARCH);
    arecs_t ar = {0};
    arch_info_t info_before = {0};
    if (!arch || !arch->ready_ns) {
        UNSETTLED("no archiver serving at the end");
    } else {
        /* INFO before and after the replay: a commit in between must not look like a
           mismatch */
        info_before = s_arch_info(arch->svc);
        weft_replay_opts_t o = {.timeout_ms = 10000};
        char err[256] = "";
        int rc = weft_replay(arch->svc, &o, s_on_archived, &ar, NULL, err, sizeof(err));
        if (rc != WEFT_OK)
            UNSETTLED("replay of the archive failed: %s %s", weft_strerror(rc), err);
        f->info = s_arch_info(arch->svc);
        if (!f->info.ok)
            UNSETTLED("no INFO from the archiver");
    }
    f->arch_events = ar.n;
    f->arch_bad = ar.bad;
    if (ar.bad)
        PROBLEM("%zu archived events have an envelope that does not decode", ar.bad);
    seqsets_t archived = {0}, foreign = {0};
    zhashx_t *ids = zhashx_new();
    int64_t **ts_of = NULL; /* per archived set index: envelope ts per seq */
    for (size_t i = 0; i < ar.n; i++) {
        const arec_t *r = &ar.v[i];
        char id[33];
        s_hex(r->id, WEFT_ID_SIZE, id);
        if (zhashx_lookup(ids, id)) {
            if (f->arch_dup_ids++ == 0)
                PROBLEM("event id %s is archived twice", id);
        } else {
            zhashx_insert(ids, id, (void *)1);
        }
        bool known = false;
        for (int p = 0; p < npubs && !known; p++)
            known = pubs[p].inst == r->inst;
        size_t srclen = strlen(r->src), taglen = strlen(s_tag);
        bool ours = srclen > taglen && strcmp(r->src + srclen - taglen, s_tag) == 0;
        if (!known && !ours) {
            /* Another fabric's node on this machine reached our archiver (a stale endpoint
               of its own whose port one of ours now uses): not ours to account for. */
            if (f->foreign++ == 0)
                snprintf(f->foreign_src, sizeof(f->foreign_src), "%s", r->src);
            seqset_t *fs = s_set(&foreign, r->inst, true);
            s_set_add(fs, r->seq);
            continue;
        }
        if (!known && f->arch_unknown++ == 0)
            PROBLEM("archived event %016" PRIx64 " seq %" PRIu64 " of %s is from no instance "
                    "the publishers logged",
                    r->inst, r->seq, r->src);
        seqset_t *set = s_set(&archived, r->inst, true);
        if (s_set_add(set, r->seq) > 0) {
            if (f->arch_dup++ == 0)
                PROBLEM("%016" PRIx64 " seq %" PRIu64 " is archived twice", r->inst, r->seq);
        } else if (r->chaos) {
            if (f->nchaos == f->chaos_cap) {
                f->chaos_cap = f->chaos_cap ? f->chaos_cap * 2 : 16384;
                f->chaos_ev = realloc(f->chaos_ev, f->chaos_cap * sizeof(arec_t));
            }
            f->chaos_ev[f->nchaos++] = *r;
        }
    }
    f->arch_events = ar.n - f->foreign;
    f->arch_distinct = 0;
    for (size_t i = 0; i < archived.n; i++)
        f->arch_distinct += archived.v[i].distinct;
    for (size_t i = 0; i < foreign.n; i++)
        f->foreign_distinct += foreign.v[i].distinct;
    if (f->arch_dup || f->arch_dup_ids)
        PROBLEM("%" PRIu64 " (inst, seq) and %" PRIu64 " ids archived more than once", f->arch_dup,
                f->arch_dup_ids);
    ts_of = calloc(archived.n ? archived.n : 1, sizeof(int64_t *));
    for (size_t i = 0; i < archived.n; i++)
        ts_of[i] = calloc(archived.v[i].cap ? archived.v[i].cap : 1, sizeof(int64_t));
    for (size_t i = 0; i < ar.n; i++) {
        seqset_t *set = s_set(&archived, ar.v[i].inst, false);
        if (set)
            ts_of[set - archived.v][ar.v[i].seq] = ar.v[i].ts;
    }

    /* seen by any subscriber instance, per source */
    seqsets_t seen_by_subs = {0};
    for (int s = 0; s < nsubs; s++)
        for (size_t k = 0; k < subs[s].handled.n; k++) {
            const seqset_t *h = &subs[s].handled.v[k];
            seqset_t *all = s_set(&seen_by_subs, h->inst, true);
            for (uint64_t q = h->min; q && q <= h->max; q++)
                if (s_set_has(h, q))
                    s_set_add(all, q);
        }

    /* archiver outage windows: [death - 1 s, the next one serving + 3 s] */
    int64_t win_from[MAX_INC], win_to[MAX_INC];
    int nwin = 0;
    for (int i = 0; i < s_ninc; i++) {
        const inc_t *x = &s_inc[i];
        if (x->role != R_ARCH || !x->end_ns)
            continue;
        int64_t next_ready = INT64_MAX;
        for (int j = i + 1; j < s_ninc && next_ready == INT64_MAX; j++)
            if (s_inc[j].role == R_ARCH && s_inc[j].ready_ns)
                next_ready = s_inc[j].ready_ns;
        win_from[nwin] = x->end_ns - OUTAGE_BEFORE_MS * NS_PER_MS;
        win_to[nwin++] =
            next_ready == INT64_MAX ? INT64_MAX : next_ready + REPAIR_GRACE_MS * NS_PER_MS;
    }

    /* -- (a) per publisher instance -- */
    for (int p = 0; p < npubs; p++) {
        publog_t *pl = &pubs[p];
        if (!pl->inst)
            continue; /* killed before its node was up: it published nothing */
        const seqset_t *a = s_set(&archived, pl->inst, false);
        const seqset_t *v = s_set(&seen_by_subs, pl->inst, false);
        uint64_t upper, most;
        if (pl->alive) {
            upper = pl->has_final ? pl->final : pl->logged;
            most = upper;
            if (!pl->has_final)
                PROBLEM("%s never logged its final seq", s_inc_name(pl->c));
        } else {
            upper = a ? a->max : 0;
            if (v && v->max > upper)
                upper = v->max;
            most = pl->logged + PUB_BATCH;
        }
        uint64_t published = pl->alive || upper > pl->logged ? upper : pl->logged;
        f->published += published;
        uint64_t req = 0, miss = 0, ex_tail = 0, ex_out = 0, ex_start = 0, lost = 0;
        uint64_t miss_from = 0, miss_to = 0;
        int64_t death = pl->c->end_ns;
        /* the earliest start of an archiver outage window its death falls in */
        int64_t outage_from = INT64_MAX;
        for (int w = 0; !pl->alive && w < nwin; w++)
            if (death >= win_from[w] && death <= win_to[w] && win_from[w] < outage_from)
                outage_from = win_from[w];
        for (uint64_t q = 1; q <= upper; q++) {
            bool have = s_set_has(a, q) > 0;
            bool required = true;
            if (!pl->alive) {
                int64_t at = s_published_at(pl, q);
                if (at >= death - TAIL_MS * NS_PER_MS) {
                    required = false, ex_tail++;
                } else if (death < pl->c->spawn_ns + REPAIR_GRACE_MS * NS_PER_MS) {
                    required = false, ex_start++;
                } else if (at >= outage_from) {
                    required = false, ex_out++;
                }
                if (!required && !have)
                    lost++;
            }
            if (!required)
                continue;
            req++;
            if (!have) {
                if (miss++ == 0)
                    miss_from = q;
                miss_to = q;
                f->holes += a && q < a->max;
            }
        }
        uint64_t beyond = 0;
        for (uint64_t q = most + 1; a && q <= a->max; q++)
            beyond += s_set_has(a, q) > 0;
        f->required += req;
        f->missing += miss;
        f->exempt_tail += ex_tail;
        f->exempt_outage += ex_out;
        f->exempt_start += ex_start;
        f->lost += lost;
        f->beyond += beyond;
        if (report) {
            char died[64];
            if (pl->alive)
                snprintf(died, sizeof(died), "alive");
            else
                snprintf(died, sizeof(died), "killed at +%.1f s", s_rel(death));
            fprintf(stderr,
                    "chaos:   %-9s %016" PRIx64 " +%5.1f s, %-17s logged %5" PRIu64
                    ", seen %5" PRIu64 ", archived %5" PRIu64 ", required %5" PRIu64
                    ", exempt %4" PRIu64 " (lost %" PRIu64 "), missing %" PRIu64 "\n",
                    s_inc_name(pl->c), pl->inst, s_rel(pl->c->spawn_ns), died, pl->logged, upper,
                    a ? a->distinct : 0, req, ex_tail + ex_out + ex_start, lost, miss);
        }
        if (miss) {
            /* Explain: a hole below what the archive holds of it is something the archiver
               knew it lacked (a seq jump) and never fetched, although the outbox held it. */
            char why[512];
            int n = snprintf(why, sizeof(why),
                             "the instance ran from +%.1f s to %s%.1f s; the archive's highest "
                             "seq of it is %" PRIu64 "%s; archiver restarts meanwhile (serving "
                             "at):",
                             s_rel(pl->c->spawn_ns), pl->alive ? "the end, +" : "+",
                             s_rel(pl->alive ? weft_now_ns() : death), a ? a->max : 0,
                             a && miss_to < a->max ? " (so these form a hole below it)" : "");
            for (int i = 0; i < s_ninc && n > 0 && (size_t)n < sizeof(why) - 16; i++)
                if (s_inc[i].role == R_ARCH && s_inc[i].ready_ns > pl->c->spawn_ns &&
                    (pl->alive || s_inc[i].ready_ns < death))
                    n += snprintf(why + n, sizeof(why) - (size_t)n, " +%.1f s",
                                  s_rel(s_inc[i].ready_ns));
            if (pl->alive)
                UNSETTLED("(a) the archive lacks %" PRIu64 " events of %s (%016" PRIx64
                          ") that its outbox still holds, seq %" PRIu64 "..%" PRIu64
                          " (first..last missing); %s",
                          miss, s_inc_name(pl->c), pl->inst, miss_from, miss_to, why);
            else
                PROBLEM("(a) the archive lacks %" PRIu64 " events of %s (%016" PRIx64
                        ") that the archiver could have had while it ran, seq %" PRIu64 "..%" PRIu64
                        " (first..last missing); %s",
                        miss, s_inc_name(pl->c), pl->inst, miss_from, miss_to, why);
        }
        if (beyond)
            PROBLEM("(a) the archive holds %" PRIu64 " seqs of %s beyond the %" PRIu64
                    " it published",
                    beyond, s_inc_name(pl->c), most);
    }
    if (f->info.ok && f->info.events != f->arch_distinct + f->foreign_distinct &&
        info_before.events != f->arch_distinct + f->foreign_distinct)
        PROBLEM("(c) the archiver's INFO says %" PRIu64 " events, the replay has %" PRIu64
                " distinct ones (%" PRIu64 " in all)",
                f->info.events, f->arch_distinct + f->foreign_distinct, f->arch_events);

    /* -- (b) the subscriber -- */
    const inc_t *subc = s_current(R_SUB);
    sublog_t *fin = NULL;
    for (int s = 0; s < nsubs; s++)
        if (subc && subs[s].c == subc)
            fin = &subs[s];
    f->final_sub = fin;
    for (int s = 0; s < nsubs; s++) {
        f->dup_within += subs[s].dup_within;
        f->out_of_order += subs[s].out_of_order;
        for (size_t k = 0; k < subs[s].n; k++)
            f->redeliveries += subs[s].ev[k].kind == 'R';
        if (subs[s].dup_within || subs[s].out_of_order)
            PROBLEM("(b) %s handled a source out of order or twice: %" PRIu64
                    " duplicates, %" PRIu64 " out of order (e.g. %s)",
                    s_inc_name(subs[s].c), subs[s].dup_within, subs[s].out_of_order,
                    subs[s].order_example);
    }
    for (size_t k = 0; k < seen_by_subs.n; k++) {
        const seqset_t *all = &seen_by_subs.v[k];
        for (uint64_t q = all->min; q && q <= all->max; q++) {
            unsigned incs = 0;
            for (int s = 0; s < nsubs; s++)
                incs += s_set_has(s_set(&subs[s].handled, all->inst, false), q) > 0;
            if (incs > 1)
                f->dup_across += incs - 1;
        }
    }
    if (!fin || !fin->inst) {
        UNSETTLED("(b) no subscriber instance running at the end");
    } else {
        for (int p = 0; p < npubs; p++) {
            const publog_t *pl = &pubs[p];
            if (!pl->alive || !pl->inst)
                continue;
            const seqset_t *h = s_set(&fin->handled, pl->inst, false);
            const seqset_t *a = s_set(&archived, pl->inst, false);
            const int64_t *ts = a ? ts_of[a - archived.v] : NULL;
            uint64_t first = h ? h->min : UINT64_MAX;
            int64_t start = fin->c->spawn_ns > pl->c->spawn_ns ? fin->c->spawn_ns : pl->c->spawn_ns;
            int64_t threshold = start + GRACE_MS * NS_PER_MS;
            uint64_t upper = pl->has_final ? pl->final : pl->logged;
            uint64_t req = 0, miss = 0, miss_start = 0, mf = 0, mt = 0;
            for (uint64_t q = 1; q <= upper; q++) {
                int64_t at = ts && q < a->cap && ts[q] ? ts[q] : s_published_at(pl, q);
                if (q < first && at < threshold)
                    continue;
                req++;
                if (!s_set_has(h, q)) {
                    if (q < first)
                        miss_start++;
                    if (miss++ == 0)
                        mf = q;
                    mt = q;
                }
            }
            f->sub_required += req;
            f->sub_missing += miss;
            f->sub_missing_start += miss_start;
            if (miss)
                UNSETTLED("(b) %s did not handle %" PRIu64 " events of %s (%016" PRIx64
                          "), seq %" PRIu64 "..%" PRIu64 " (first..last missing; %" PRIu64
                          " of them before the first it handled, %" PRIu64 ")",
                          s_inc_name(fin->c), miss, s_inc_name(pl->c), pl->inst, mf, mt, miss_start,
                          first == UINT64_MAX ? 0 : first);
        }
    }

    /* -- (c) dead letters -- */
    const inc_t *dlqc = s_current(R_DLQ);
    if (!dlqc || !dlqc->ready_ns) {
        UNSETTLED("no DLQ serving at the end");
    } else {
        f->dlq = s_dlq_view(dlqc->svc);
        if (!f->dlq.ok)
            UNSETTLED("(c) no INFO or LIST from the DLQ");
    }
    zhashx_t *failed = zhashx_new(); /* event id -> sublog_t* that failed it */
    zhashx_t *redelivered = zhashx_new();
    for (int s = 0; s < nsubs; s++)
        for (size_t k = 0; k < subs[s].n; k++) {
            const subev_t *e = &subs[s].ev[k];
            if (e->kind == 'F' && !zhashx_lookup(failed, e->id))
                zhashx_insert(failed, e->id, &subs[s]);
            else if (e->kind == 'R' && !zhashx_lookup(redelivered, e->id))
                zhashx_insert(redelivered, e->id, (void *)1);
        }
    f->failed_all = zhashx_size(failed);
    zhashx_t *letters = zhashx_new(); /* event id -> letter_t* (ours) */
    char ex_dup[40] = "", ex_unknown[40] = "", ex_resolved[40] = "", ex_redelivered[40] = "";
    for (size_t i = 0; i < f->dlq.n; i++) {
        letter_t *l = &f->dlq.letters[i];
        if (strcmp(l->subscriber, s_subscriber) != 0) {
            /* a subscriber of another fabric reached our DLQ (see the note on ports) */
            if (f->letters_foreign++ == 0)
                snprintf(f->foreign_subscriber, sizeof(f->foreign_subscriber), "%.63s",
                         l->subscriber);
            continue;
        }
        if (zhashx_lookup(letters, l->event_id)) {
            if (f->letters_dup++ == 0)
                snprintf(ex_dup, sizeof(ex_dup), "%s", l->event_id);
            continue;
        }
        zhashx_insert(letters, l->event_id, l);
        if (!zhashx_lookup(failed, l->event_id) && f->letters_unknown++ == 0)
            snprintf(ex_unknown, sizeof(ex_unknown), "%s", l->event_id);
        if (!strcmp(l->state, "resolved") && !zhashx_lookup(redelivered, l->event_id) &&
            f->resolved_without_redelivery++ == 0)
            snprintf(ex_resolved, sizeof(ex_resolved), "%s", l->event_id);
    }
    for (const void *it = zhashx_first(redelivered); it; it = zhashx_next(redelivered))
        if (!zhashx_lookup(letters, zhashx_cursor(redelivered)) &&
            f->redelivered_without_letter++ == 0)
            snprintf(ex_redelivered, sizeof(ex_redelivered), "%s",
                     (const char *)zhashx_cursor(redelivered));
    if (f->letters_dup)
        PROBLEM("(c) %" PRIu64 " events have two letters (e.g. event %s)", f->letters_dup, ex_dup);
    if (f->letters_unknown)
        PROBLEM("(c) %" PRIu64 " letters are for events no subscriber instance failed (e.g. "
                "event %s)",
                f->letters_unknown, ex_unknown);
    if (f->resolved_without_redelivery)
        PROBLEM("(c) %" PRIu64 " letters are resolved though no subscriber instance handled "
                "their redelivery (e.g. event %s)",
                f->resolved_without_redelivery, ex_resolved);
    if (f->redelivered_without_letter)
        PROBLEM("(c) %" PRIu64 " events were redelivered but have no letter (e.g. event %s)",
                f->redelivered_without_letter, ex_redelivered);
    if (f->dlq.ok) {
        uint64_t counted = f->dlq.pending + f->dlq.retrying + f->dlq.parked + f->dlq.resolved;
        if (counted != f->dlq.n)
            PROBLEM("(c) the DLQ's INFO counts %" PRIu64 " letters, LIST gives %zu", counted,
                    f->dlq.n);
        if (f->dlq.pending || f->dlq.retrying)
            UNSETTLED("(c) the DLQ still has %" PRIu64 " letters pending and %" PRIu64 " retrying",
                      f->dlq.pending, f->dlq.retrying);
    }
    for (int s = 0; s < nsubs; s++) {
        sublog_t *sl = &subs[s];
        uint64_t mine = 0, with_letter = 0;
        zhashx_t *once = zhashx_new();
        for (size_t k = 0; k < sl->n; k++) {
            const subev_t *e = &sl->ev[k];
            if (e->kind != 'F' || zhashx_lookup(once, e->id))
                continue;
            zhashx_insert(once, e->id, (void *)1);
            mine++;
            with_letter += zhashx_lookup(letters, e->id) != NULL;
        }
        zhashx_destroy(&once);
        if (sl == fin) {
            f->failed_final = mine;
            f->final_without_letter = mine - with_letter;
            if (mine != with_letter)
                UNSETTLED("(c) %" PRIu64 " events the final subscriber instance failed have no "
                          "letter in the DLQ",
                          mine - with_letter);
            f->final_stats_ok = sl->have_stats && sl->stats_ts > stats_after_ns &&
                                sl->dead_lettered == mine && sl->dl_pending == 0 &&
                                sl->dl_dropped == 0;
            if (!f->final_stats_ok)
                UNSETTLED("(c) the final subscriber instance reports dead_lettered %" PRIu64
                          ", pending %" PRIu64 ", dropped %" PRIu64 " (stats %s) for %" PRIu64
                          " events it failed",
                          sl->dead_lettered, sl->dl_pending, sl->dl_dropped,
                          !sl->have_stats                 ? "missing"
                          : sl->stats_ts > stats_after_ns ? "fresh"
                                                          : "stale",
                          mine);
        } else {
            f->lost_letters += mine - with_letter;
            if (sl->have_stats && sl->dead_lettered > with_letter) {
                f->killed_acked_over += sl->dead_lettered - with_letter;
                PROBLEM("(c) %s had %" PRIu64 " dead letters acknowledged, the DLQ holds only "
                        "%" PRIu64 " of its failed events",
                        s_inc_name(sl->c), sl->dead_lettered, with_letter);
            }
        }
    }

    /* -- partitions: a running node that has considered another running one down since its
       last word on it (each disconnects from the other, and no heartbeat flows again) -- */
    uint64_t live_inst[NROLES] = {0};
    for (int role = 0; role < NROLES; role++) {
        const inc_t *c = s_current(role);
        if (!c)
            continue;
        if (role == R_ARCH)
            live_inst[role] = f->info.inst;
        else if (role == R_DLQ)
            live_inst[role] = f->dlq.inst;
        else if (role == R_SUB)
            live_inst[role] = fin ? fin->inst : 0;
        else
            for (int p = 0; p < npubs; p++)
                if (pubs[p].c == c)
                    live_inst[role] = pubs[p].inst;
    }
    for (int role = 0; role < NROLES; role++) {
        const inc_t *c = s_current(role);
        char *text = c ? s_log_section(c) : NULL;
        for (int other = 0; text && other < NROLES; other++) {
            if (other == role || !live_inst[other])
                continue;
            char needle[40];
            snprintf(needle, sizeof(needle), "(%016" PRIx64 ") is ", live_inst[other]);
            const char *last = NULL;
            for (const char *q = strstr(text, needle); q; q = strstr(q + 1, needle))
                last = q;
            if (!last || strncmp(last + strlen(needle), "down", 4) != 0)
                continue;
            const char *line = last;
            while (line > text && line[-1] != '\n')
                line--;
            f->partitions++;
            UNSETTLED("partition: %s has considered %s (%016" PRIx64 ") down since its log line "
                      "\"%.*s\", and both are running: each side disconnects from a peer it "
                      "thinks down, so no heartbeat flows again",
                      s_inc_name(c), s_inc_name(s_current(other)), live_inst[other],
                      (int)(strchr(last, '\n') ? strchr(last, '\n') - line : 80), line);
        }
        free(text);
    }

    if (report) {
        fprintf(stderr, "chaos:   subscriber instances:\n");
        for (int s = 0; s < nsubs; s++) {
            const sublog_t *sl = &subs[s];
            uint64_t h = 0, fl = 0, r = 0;
            for (size_t k = 0; k < sl->n; k++)
                h += sl->ev[k].kind == 'H', fl += sl->ev[k].kind == 'F', r += sl->ev[k].kind == 'R';
            fprintf(stderr,
                    "chaos:   %-7s %016" PRIx64 " +%5.1f s, %-17s handled %6" PRIu64
                    ", failed %3" PRIu64 ", redeliveries %3" PRIu64 "; gaps %" PRIu64
                    ", repaired %" PRIu64 ", unrepaired %" PRIu64 ", dead_lettered %" PRIu64 "\n",
                    s_inc_name(sl->c), sl->inst, s_rel(sl->c->spawn_ns),
                    sl->alive ? "alive" : "killed", h, fl, r, sl->gaps, sl->repaired,
                    sl->unrepaired, sl->dead_lettered);
        }
    }

    zhashx_destroy(&letters);
    zhashx_destroy(&failed);
    zhashx_destroy(&redelivered);
    zhashx_destroy(&ids);
    for (size_t i = 0; i < archived.n; i++)
        free(ts_of[i]);
    free(ts_of);
    s_sets_free(&archived);
    s_sets_free(&foreign);
    s_sets_free(&seen_by_subs);
    free(ar.v);
    for (int p = 0; p < npubs; p++)
        free(pubs[p].marks);
    for (int s = 0; s < nsubs; s++) {
        free(subs[s].ev);
        s_sets_free(&subs[s].handled);
    }
    /* final_sub points into subs: keep only what the summary needs */
    if (f->final_sub) {
        static sublog_t keep;
        keep = *f->final_sub;
        keep.ev = NULL;
        memset(&keep.handled, 0, sizeof(keep.handled));
        f->final_sub = &keep;
    }
    free(subs);
#undef PROBLEM
#undef UNSETTLED
    return problems;
}

static void s_figures_free(figures_t *f)
{
    free(f->dlq.letters);
    f->dlq.letters = NULL;
    free(f->chaos_ev);
    f->chaos_ev = NULL;
}

/* ---- (d) the durable consumer ---------------------------------------------------------------- */

/*  The D lines of one subscriber incarnation. */
typedef struct {
    const inc_t *c;
    seqsets_t handled; /* per source */
    uint64_t lines, dup_within;
    int64_t created_ns; /* its C line: the durable consumer subscribed (0: not logged) */
    char dup_example[80];
} dlog_t;

static void s_sub_dline(char *line, void *arg)
{
    dlog_t *d = arg;
    uint64_t inst, seq;
    long long ns;
    if (line[0] == 'C' && sscanf(line, "C %lld", &ns) == 1) {
        d->created_ns = (int64_t)ns;
        return;
    }
    if (line[0] != 'D' || sscanf(line, "D %" SCNx64 " %" SCNu64, &inst, &seq) != 2 || !seq)
        return;
    d->lines++;
    if (s_set_add(s_set(&d->handled, inst, true), seq) > 0 && d->dup_within++ == 0)
        snprintf(d->dup_example, sizeof(d->dup_example), "%016" PRIx64 " seq %" PRIu64, inst, seq);
}

typedef struct {
    int incs;             /* subscriber incarnations */
    uint64_t archived;    /* distinct archived chaos.* events of this fabric */
    uint64_t exempt;      /* of those, published before the durable consumer first existed */
    uint64_t required;    /* the others */
    uint64_t handled;     /* of those, handled by the durable consumer of some incarnation */
    uint64_t missing;     /* of those, handled by none, of which: */
    uint64_t miss_unseen; /* of a source no instance handled any event of */
    uint64_t miss_before; /* below the seqs handled of their source */
    uint64_t miss_hole;   /* between them */
    uint64_t miss_after;  /* above them */
    uint64_t lines;       /* D lines in all */
    uint64_t dup_across;  /* an event handled by k incarnations counts k - 1 */
    uint64_t dup_within;  /* D lines repeating an event within one incarnation */
    uint64_t unarchived;  /* events handled that the archive does not hold */
} durable_figures_t;

/*  Reads every subscriber incarnation's D lines and holds them against the archived chaos.*
    events of f (the final (a) replay). With report, explains and fails what is wrong: an event
    handled twice by one incarnation, an archived event handled by none. */
static void s_durable_check(const figures_t *f, durable_figures_t *d, bool report)
{
    memset(d, 0, sizeof(*d));
    dlog_t *logs = calloc(MAX_INC, sizeof(dlog_t));
    int n = 0;
    for (int i = 0; i < s_ninc; i++)
        if (s_inc[i].role == R_SUB) {
            logs[n].c = &s_inc[i];
            s_each_line(s_inc[i].file, s_sub_dline, &logs[n]);
            n++;
        }
    d->incs = n;
    /* the union, counting the incarnations each event was handled by beyond the first */
    seqsets_t all = {0};
    for (int k = 0; k < n; k++) {
        d->lines += logs[k].lines;
        d->dup_within += logs[k].dup_within;
        for (size_t j = 0; j < logs[k].handled.n; j++) {
            const seqset_t *h = &logs[k].handled.v[j];
            seqset_t *u = s_set(&all, h->inst, true);
            for (uint64_t q = h->min; q && q <= h->max; q++)
                if (s_set_has(h, q) && s_set_add(u, q) > 0)
                    d->dup_across++;
        }
    }
    /* The durable consumer exists from the first subscription of it on (a first run starts
       live): what was published before is not its to handle. */
    int64_t created = 0;
    for (int k = 0; k < n && !created; k++)
        created = logs[k].created_ns;
    d->archived = f->nchaos;
    for (size_t i = 0; i < f->nchaos; i++) {
        if (!created || f->chaos_ev[i].ts < created) {
            d->exempt++;
            continue;
        }
        d->required++;
        d->handled += s_set_has(s_set(&all, f->chaos_ev[i].inst, false), f->chaos_ev[i].seq) > 0;
    }
    d->missing = d->required - d->handled;
    for (size_t i = 0; d->missing && i < f->nchaos; i++) {
        const seqset_t *u = s_set(&all, f->chaos_ev[i].inst, false);
        uint64_t q = f->chaos_ev[i].seq;
        if (f->chaos_ev[i].ts < created)
            continue;
        if (!u)
            d->miss_unseen++;
        else if (s_set_has(u, q))
            continue;
        else if (q < u->min)
            d->miss_before++;
        else if (q > u->max)
            d->miss_after++;
        else
            d->miss_hole++;
    }
    uint64_t distinct = 0;
    for (size_t j = 0; j < all.n; j++)
        distinct += all.v[j].distinct;
    uint64_t handled_all = 0;
    for (size_t i = 0; i < f->nchaos; i++)
        handled_all += s_set_has(s_set(&all, f->chaos_ev[i].inst, false), f->chaos_ev[i].seq) > 0;
    d->unarchived = distinct - handled_all;

    if (report && !created)
        s_fail("(d) no subscriber instance logged the subscription of its durable consumer");
    if (report) {
        fprintf(stderr, "chaos:   durable consumer, per subscriber instance:\n");
        for (int k = 0; k < n; k++)
            fprintf(stderr,
                    "chaos:   %-7s +%5.1f s, %-17s handled %6" PRIu64 ", duplicates within %" PRIu64
                    "\n",
                    s_inc_name(logs[k].c), s_rel(logs[k].c->spawn_ns),
                    logs[k].c->end_ns ? "killed" : "alive", logs[k].lines - logs[k].dup_within,
                    logs[k].dup_within);
        for (int k = 0; k < n; k++)
            if (logs[k].dup_within)
                s_fail("(d) %s's durable consumer handled %" PRIu64 " events a second time (e.g. "
                       "%s): within one process the checkpoint must skip what it handled",
                       s_inc_name(logs[k].c), logs[k].dup_within, logs[k].dup_example);
    }
    if (report && d->missing) {
        /* which publisher incarnation each source is */
        publog_t *pubs = calloc(MAX_INC, sizeof(publog_t));
        int npubs = 0;
        for (int i = 0; i < s_ninc; i++)
            if (s_inc[i].role >= R_PUB0) {
                pubs[npubs].c = &s_inc[i];
                s_each_line(s_inc[i].file, s_pub_line, &pubs[npubs]);
                npubs++;
            }
        s_fail("(d) %" PRIu64 " of the %" PRIu64 " archived chaos.* events published since the "
               "durable consumer exists were handled by it in no subscriber instance (listed "
               "below)",
               d->missing, d->required);
        /* per source: how many, what each incarnation handled of it, the missing ranges */
        seqsets_t miss = {0};
        for (size_t i = 0; i < f->nchaos; i++) {
            const arec_t *r = &f->chaos_ev[i];
            if (r->ts >= created && !s_set_has(s_set(&all, r->inst, false), r->seq))
                s_set_add(s_set(&miss, r->inst, true), r->seq);
        }
        int shown = 0;
        for (size_t j = 0; j < miss.n; j++) {
            const seqset_t *m = &miss.v[j];
            const char *who = "?";
            for (int p = 0; p < npubs; p++)
                if (pubs[p].inst == m->inst)
                    who = s_inc_name(pubs[p].c);
            char seen[512];
            int w = 0;
            seen[0] = 0;
            for (int k = 0; k < n && w >= 0 && (size_t)w < sizeof(seen) - 48; k++) {
                const seqset_t *h = s_set(&logs[k].handled, m->inst, false);
                if (h)
                    w += snprintf(seen + w, sizeof(seen) - (size_t)w,
                                  "; %s handled %" PRIu64 " of seq %" PRIu64 "..%" PRIu64,
                                  s_inc_name(logs[k].c), h->distinct, h->min, h->max);
            }
            fprintf(stderr, "chaos:   (d) %016" PRIx64 " (%s): %" PRIu64 " missing%s\n", m->inst,
                    who, m->distinct,
                    seen[0] ? seen : "; no subscriber instance handled any of it");
            /* each missing range: when it was published, who was running then */
            int64_t *ts = calloc(m->max + 1, sizeof(int64_t));
            for (size_t i = 0; i < f->nchaos; i++)
                if (f->chaos_ev[i].inst == m->inst && f->chaos_ev[i].seq <= m->max)
                    ts[f->chaos_ev[i].seq] = f->chaos_ev[i].ts;
            for (uint64_t q = m->min; q <= m->max; q++) {
                if (!s_set_has(m, q))
                    continue;
                uint64_t e = q;
                while (e < m->max && s_set_has(m, e + 1))
                    e++;
                if (shown++ < 12) {
                    char alive[256];
                    int a = 0;
                    alive[0] = 0;
                    for (int k = 0; k < n && a >= 0 && (size_t)a < sizeof(alive) - 16; k++)
                        if (logs[k].c->spawn_ns <= ts[e] &&
                            (!logs[k].c->end_ns || logs[k].c->end_ns > ts[q]))
                            a += snprintf(alive + a, sizeof(alive) - (size_t)a, " %s",
                                          s_inc_name(logs[k].c));
                    fprintf(stderr,
                            "chaos:   (d)   seq %" PRIu64 "..%" PRIu64 " (%" PRIu64
                            "), published +%.2f..+%.2f s; subscriber instances running then:%s\n",
                            q, e, e - q + 1, s_rel(ts[q]), s_rel(ts[e]),
                            alive[0] ? alive : " none");
                }
                q = e;
            }
            free(ts);
        }
        s_sets_free(&miss);
        for (int p = 0; p < npubs; p++)
            free(pubs[p].marks);
        free(pubs);
    }
    s_sets_free(&all);
    for (int k = 0; k < n; k++)
        s_sets_free(&logs[k].handled);
    free(logs);
}

/*  Every running publisher has logged its final seq (after SIGUSR1). */
static bool s_publishers_quiet(void)
{
    bool all = true;
    for (int k = 0; k < NPUB && all; k++) {
        publog_t p = {.c = s_current(R_PUB0 + k)};
        if (p.c)
            s_each_line(p.c->file, s_pub_line, &p);
        all = p.has_final;
        free(p.marks);
    }
    return all;
}

/* ---- the run --------------------------------------------------------------------------------- */

TEST_CASE("under kill -9 of every role, the archive, the subscriber and the DLQ account for "
          "every event",
          t_chaos)
{
    /* start: the archiver first (it is the one most likely to hold the seed), then the DLQ,
       the subscriber, the publishers */
    s_spawn(R_ARCH);
    CHECK(TICK_UNTIL(s_role_ready(R_ARCH), 15000));
    s_spawn(R_DLQ);
    CHECK(TICK_UNTIL(s_role_ready(R_DLQ), 15000));
    s_spawn(R_SUB);
    for (int k = 0; k < NPUB; k++)
        s_spawn(R_PUB0 + k);
    s_run_for(2000);

    /* rounds: every role killed once per round, in a random order */
    for (int round = 0; round < s_rounds; round++) {
        int order[NROLES];
        for (int i = 0; i < NROLES; i++)
            order[i] = i;
        for (int i = NROLES - 1; i > 0; i--) {
            int j = (int)(s_rand() % (uint64_t)(i + 1));
            int t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        s_say("round %d of %d", round + 1, s_rounds);
        for (int i = 0; i < NROLES; i++) {
            int wait = s_between(300, 2000), back = s_between(100, 2000);
            s_run_for(wait);
            if (s_cur[order[i]] >= 0)
                s_kill(order[i], back);
        }
    }
    /* everything back, then load with everything up */
    for (int role = 0; role < NROLES; role++)
        if (s_cur[role] < 0 && s_restart_ms[role] > t_mono_ms())
            s_restart_ms[role] = t_mono_ms();
    CHECK(TICK_UNTIL(s_all_ready(), 20000));
    s_say("+%5.1f s  every role up; %d s of load", s_rel(weft_now_ns()), TAIL_LOAD_MS / 1000);
    s_run_for(TAIL_LOAD_MS);

    /* quiet: the publishers stop publishing and stay up */
    int64_t quiet_ns = weft_now_ns();
    for (int k = 0; k < NPUB; k++)
        if (s_current(R_PUB0 + k))
            kill(s_current(R_PUB0 + k)->pid, SIGUSR1);
    bool logged = TICK_UNTIL(s_publishers_quiet(), 10000);
    CHECK(logged);
    s_say("+%5.1f s  publishers stopped; quiet period (deadline %d s)", s_rel(weft_now_ns()),
          QUIET_DEADLINE_MS / 1000);
    figures_t f;
    int64_t deadline = t_mono_ms() + QUIET_DEADLINE_MS;
    int unsettled;
    do {
        s_run_for(1000);
        s_check(&f, false, quiet_ns);
        unsettled = f.unsettled;
        s_figures_free(&f);
    } while (unsettled && t_mono_ms() < deadline && s_all_ready());
    double quiet_s = (double)(weft_now_ns() - quiet_ns) / 1e9;
    s_say("+%5.1f s  %s after %.1f s", s_rel(weft_now_ns()),
          unsettled ? "NOT settled (deadline passed, or a role went down)" : "settled", quiet_s);

    /* the final checks, with explanations */
    s_say("publisher instances (time of start):");
    int before = s_failures;
    s_check(&f, true, quiet_ns);

    /* (d): the durable consumer of the final subscriber instance may still be catching up */
    durable_figures_t d;
    int64_t durable_from = t_mono_ms();
    for (;;) {
        s_durable_check(&f, &d, false);
        if (!d.missing || t_mono_ms() >= durable_from + DURABLE_DEADLINE_MS)
            break;
        s_run_for(DURABLE_POLL_MS);
    }
    double durable_s = (double)(t_mono_ms() - durable_from) / 1e3;
    s_durable_check(&f, &d, true);

    s_say("summary: seed %" PRIu64 ", %d rounds, %d publishers at %d events/s, %.0f s",
          s_seed_value, s_rounds, NPUB, s_rate, s_rel(weft_now_ns()));
    s_say("  kills: archiver %d, dlq %d, sub %d, pub-0 %d, pub-1 %d, pub-2 %d (incarnations: %d "
          "in all)",
          s_kills[R_ARCH], s_kills[R_DLQ], s_kills[R_SUB], s_kills[R_PUB0], s_kills[R_PUB0 + 1],
          s_kills[R_PUB0 + 2], s_ninc);
    s_say("  (a) archive: %" PRIu64 " events replayed, %" PRIu64 " distinct, %" PRIu64
          " duplicates; of %" PRIu64 " seqs published (or seen), %" PRIu64 " required and %" PRIu64
          " missing; exempt: %" PRIu64 " tail, %" PRIu64 " archiver outage, %" PRIu64
          " publisher start; legitimately lost %" PRIu64,
          f.arch_events, f.arch_distinct, f.arch_dup + f.arch_dup_ids, f.published, f.required,
          f.missing, f.exempt_tail, f.exempt_outage, f.exempt_start, f.lost);
    s_say("      archiver INFO (this run of it): events %" PRIu64 ", repaired %" PRIu64
          ", unrepaired %" PRIu64 ", duplicates skipped %" PRIu64,
          f.info.events, f.info.repaired, f.info.unrepaired, f.info.duplicates);
    s_say("  (b) subscriber: %d instances; the final one had to handle %" PRIu64
          " events of the live publishers, missed %" PRIu64 " (%" PRIu64
          " before its first); duplicates within an instance %" PRIu64 ", out of order %" PRIu64
          ", across restarts %" PRIu64 "; DLQ redeliveries handled %" PRIu64,
          f.sub_incs, f.sub_required, f.sub_missing, f.sub_missing_start, f.dup_within,
          f.out_of_order, f.dup_across, f.redeliveries);
    s_say("  (c) INFO events %" PRIu64 " vs %" PRIu64 " distinct archived; DLQ letters %zu "
          "(pending %" PRIu64 ", retrying %" PRIu64 ", parked %" PRIu64 ", resolved %" PRIu64
          "); failed events %" PRIu64 " (final instance %" PRIu64 ", dead_lettered %" PRIu64
          "), lost with killed subscriber instances %" PRIu64,
          f.info.events, f.arch_distinct, f.dlq.n, f.dlq.pending, f.dlq.retrying, f.dlq.parked,
          f.dlq.resolved, f.failed_all, f.failed_final,
          f.final_sub ? f.final_sub->dead_lettered : 0, f.lost_letters);
    s_say("  (d) durable consumer: %" PRIu64 " chaos.* events archived (%" PRIu64
          " of them published before it existed), of the %" PRIu64 " others %" PRIu64
          " handled by it (in %d subscriber instances, %" PRIu64 " handler calls), %" PRIu64
          " missing (%" PRIu64 " below the first seq handled of their source, %" PRIu64
          " in holes, %" PRIu64 " above the last, %" PRIu64 " of sources never handled); "
          "duplicates across instances %" PRIu64 ", within an instance %" PRIu64
          "; handled but not archived %" PRIu64 "; %s %.1f s after the final checks",
          d.archived, d.exempt, d.required, d.handled, d.incs, d.lines, d.missing, d.miss_before,
          d.miss_hole, d.miss_after, d.miss_unseen, d.dup_across, d.dup_within, d.unarchived,
          d.missing ? "still missing" : "covered", durable_s);
    if (d.miss_before)
        s_say("  (d) %" PRIu64 " missing events lie below the first seq the durable consumer "
              "handled of their publisher instance: typically its first events, published "
              "before the subscriber's node received anything from it. A live subscription "
              "starts a source at the first event it receives, and the checkpoint (the highest "
              "seq handled) then makes every later catch-up skip what lies below.",
              d.miss_before);
    if (d.miss_hole)
        s_say("  (d) %" PRIu64 " missing events lie between seqs the durable consumer handled "
              "of their publisher instance: typically events the archive received late "
              "(repaired from the outbox after an archiver restart), so that a catch-up "
              "replaying the archive in its order met later events of that source first.",
              d.miss_hole);
    if (d.miss_after)
        s_say("  (d) %" PRIu64 " missing events lie above the last seq the durable consumer "
              "handled of their publisher instance: typically the last events of a publisher "
              "killed right after publishing them, which the subscriber's node never received "
              "and no heartbeat announced, so nothing made it fetch them from the archive.",
              d.miss_after);
    if (f.holes)
        s_say("  (a) %" PRIu64 " of the missing events lie below the highest archived seq of "
              "their publisher instance: the archiver received later events of it, so it knew "
              "of the jump, and never fetched these from an outbox that held them. This shows "
              "when an archiver is killed while such a repair is pending (typically a "
              "publisher's first events, published before the archiver connected to it): its "
              "successor fetches only what lies above the highest seq stored.",
              f.holes);
    if (f.foreign || f.letters_foreign)
        s_say("  note: %" PRIu64 " archived events (%" PRIu64 " distinct; e.g. from '%s') and "
              "%" PRIu64 " dead letters (e.g. of '%s') came from nodes of another fabric on "
              "this machine; not counted above",
              f.foreign, f.foreign_distinct, f.foreign_src, f.letters_foreign,
              f.foreign_subscriber);
    if (f.partitions)
        s_say("  %" PRIu64 " partition(s) between running nodes at the end (see above): a peer "
              "marked down after 3 heartbeats of silence (a process starved of CPU for "
              "%d ms is enough) is disconnected at once, and when both sides do it neither "
              "hears the other again",
              f.partitions, 3 * atoi(HB_MS));
    s_say("  quiet period %.1f s; %d problem(s)", quiet_s, s_failures - before);
    s_figures_free(&f);
    if (s_failures)
        t_case_failed = 1;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: test_chaos WEFT-ARCHIVER WEFT-DLQ CHAOS_PUB CHAOS_SUB\n");
        return 2;
    }
    for (int i = 0; i < 4; i++)
        s_bin[i] = argv[i + 1];
    /* Unset: seed 1, so that the default suite replays one known schedule run after run;
       WEFT_CHAOS_SEED=random draws a new schedule, WEFT_CHAOS_SEED=N replays schedule N. */
    const char *env = getenv("WEFT_CHAOS_SEED");
    uint64_t seed = !env || !*env ? 1 : strcmp(env, "random") == 0 ? 0 : strtoull(env, NULL, 10);
    if (!seed) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        seed = ((uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 20) ^ (uint64_t)ts.tv_sec) %
                   1000000000ULL +
               1;
    }
    s_rng = seed;
    s_seed_value = seed;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    s_port_rng = (uint64_t)now.tv_nsec ^ ((uint64_t)now.tv_sec << 24) ^ ((uint64_t)getpid() << 40);
    snprintf(s_tag, sizeof(s_tag), "%04x", (unsigned)((seed ^ (uint64_t)getpid()) & 0xffff));
    snprintf(s_sub_name, sizeof(s_sub_name), "chaos-sub-%s", s_tag);
    snprintf(s_subscriber, sizeof(s_subscriber), "%s/chaos", s_sub_name);
    if ((env = getenv("WEFT_CHAOS_ROUNDS")) && atoi(env) > 0)
        s_rounds = atoi(env);
    if ((env = getenv("WEFT_CHAOS_RATE")) && atoi(env) > 0)
        s_rate = atoi(env);
    for (int r = 0; r < NROLES; r++)
        s_cur[r] = -1;
    snprintf(s_dir, sizeof(s_dir), "/tmp/weft-chaos-XXXXXX");
    if (!mkdtemp(s_dir)) {
        perror("mkdtemp");
        return 1;
    }
    int port = s_free_port();
    if (port < 0) {
        fprintf(stderr, "no free port for the gossip seed\n");
        return 1;
    }
    snprintf(s_seed, sizeof(s_seed), "tcp://127.0.0.1:%d", port);
    s_t0_ns = weft_now_ns();
    atexit(s_kill_leftovers);
    signal(SIGPIPE, SIG_IGN);
    s_say("seed %" PRIu64 " (WEFT_CHAOS_SEED=%" PRIu64 " replays this schedule); gossip seed %s; "
          "work dir %s",
          seed, seed, s_seed, s_dir);

    RUN_CASE("under kill -9 of every role, the archive, the subscriber and the DLQ account for "
             "every event",
             t_chaos);
    int before_stop = s_failures;
    s_stop_all();
    if (s_failures > before_stop) {
        fprintf(stderr, "FAIL: every process stops cleanly on SIGTERM\n");
        t_failed_cases++;
    }
    const char *keep = getenv("WEFT_CHAOS_KEEP");
    if (s_failures || t_failed_cases || (keep && *keep && strcmp(keep, "0") != 0)) {
        s_say("seed %" PRIu64 "; work dir kept: %s", seed, s_dir);
    } else {
        char cmd[512];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", s_dir);
        if (system(cmd) != 0)
            s_say("could not remove %s", s_dir);
    }
    return TEST_EXIT();
}

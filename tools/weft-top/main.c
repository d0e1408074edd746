/*  main.c - weft-top, the live monitor of a weft fabric.

    weft-top joins the fabric as a node (role "monitor", name weft-top-<pid>) with the usual
    node options (tools/common/node_opts.h), subscribes to `_weft.hb` and feeds every
    heartbeat to a fabric model (tools/common/fabric_model.h). Every -d seconds it ticks the
    model and takes a snapshot, which it shows either full-screen with ncurses (ui.c) or, with
    --batch, as plain-text tables on stdout like `top -b` (tools/common/fabric_view.h), for
    scripts and tests. Everything it knows comes from heartbeats; it asks no node anything.
*/
#include <czmq.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "node_opts.h"
#include "top.h"

#define DEFAULT_DELAY_MS 1000
#define MIN_DELAY_MS 100

/*  On the node's thread: one heartbeat into the model. */
static int s_on_heartbeat(weft_event_t *ev, void *arg)
{
    top_feed_t *feed = arg;
    pthread_mutex_lock(&feed->lock);
    fabric_model_feed(feed->model, ev->payload, ev->size, ev->env->inst, zclock_time());
    pthread_mutex_unlock(&feed->lock);
    return 0;
}

fabric_snapshot_t *top_refresh(top_feed_t *feed)
{
    int64_t now = zclock_time();
    pthread_mutex_lock(&feed->lock);
    fabric_model_tick(feed->model, now);
    fabric_snapshot_t *snap = fabric_model_snapshot(feed->model, now);
    pthread_mutex_unlock(&feed->lock);
    return snap;
}

/*  Sleeps until the monotonic time `until`, in slices, so Ctrl-C is noticed. */
static void s_sleep_until(int64_t until)
{
    while (!zsys_interrupted) {
        int64_t left = until - zclock_mono();
        if (left <= 0)
            break;
        zclock_sleep(left < 100 ? (int)left : 100);
    }
}

/*  --batch: a snapshot every delay, count times (0 = until Ctrl-C). */
static int s_batch(top_feed_t *feed, const top_opts_t *o)
{
    int64_t next = zclock_mono() + o->delay_ms;
    for (uint64_t i = 1; (!o->count || i <= o->count) && !zsys_interrupted; i++) {
        s_sleep_until(next);
        if (zsys_interrupted)
            break;
        next += o->delay_ms;
        fabric_snapshot_t *snap = top_refresh(feed);
        if (!snap) {
            fprintf(stderr, "weft-top: out of memory\n");
            return 1;
        }
        char when[32];
        time_t secs = (time_t)(snap->now_ms / 1000);
        struct tm tm;
        strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", localtime_r(&secs, &tm));
        if (o->count)
            printf("weft-top %s snapshot %llu/%llu at %s.%03d\n", WEFT_VERSION_STRING,
                   (unsigned long long)i, (unsigned long long)o->count, when,
                   (int)(snap->now_ms % 1000));
        else
            printf("weft-top %s snapshot %llu at %s.%03d\n", WEFT_VERSION_STRING,
                   (unsigned long long)i, when, (int)(snap->now_ms % 1000));
        fabric_print_snapshot(stdout, snap, o->views);
        printf("\n");
        fabric_snapshot_destroy(&snap);
        if (fflush(stdout) != 0) {
            fprintf(stderr, "weft-top: cannot write to stdout: %s\n", strerror(errno));
            return 1;
        }
    }
    return 0;
}

static void s_help(void)
{
    printf("usage: weft-top [OPTIONS]\n"
           "\n"
           "Live monitor of a weft fabric, from the `_weft.hb` heartbeats every node sends.\n"
           "weft-top is a node itself (role monitor) and shows itself too. Views:\n"
           "  1 Nodes     name, role, host:pid, up/down (down after 3 missed heartbeats),\n"
           "              uptime, events out/s and in/s, counters, outbox, peers, latency p99\n"
           "  2 Topics    per topic across nodes: publishers, subscribers, events/s, bytes/s\n"
           "  3 Lag       per subscriber and publisher: seq lag, time lag, gaps\n"
           "  4 Archiver  what archivers report: last offset, events/s, bytes on disk, commit\n"
           "              p99, replay sessions, retention (- when not reported)\n"
           "  5 DLQ       what DLQs report: pending, parked, by subscriber, by topic, oldest,\n"
           "              top error codes (- when not reported)\n"
           "The header shows fabric totals and a sparkline of events/s out over the last 60\n"
           "refreshes. Rates need two heartbeats of a node: a node heard once shows -.\n"
           "\n"
           "keys:\n"
           "  1-5, Tab, Shift-Tab  switch view       s / S    sort by the next / previous column\n"
           "  r                    reverse the sort  /        filter rows (Enter applies, Esc clears)\n"
           "  Up, Down, PgUp, PgDn, Home, End  scroll  Left, Right  scroll sideways\n"
           "  p   pause (the display freezes; heartbeats are still counted)\n"
           "  h   help              q   quit (Ctrl-C too)\n"
           "\n"
           "options:\n"
           "  -d SECONDS       time between refreshes (default 1; at least 0.1)\n"
           "  -b, --batch      no screen: print every view as plain text every -d seconds,\n"
           "                   like top -b\n"
           "  -n COUNT         exit after COUNT refreshes (default: run until q or Ctrl-C)\n"
           "  --view NAME      nodes, topics, lag, archiver or dlq: with --batch, print only\n"
           "                   these views (repeatable; default all); on screen, start there\n"
           "  -h, --help       this help\n"
           "\n"
           "%s"
           "  default --name: weft-top-<pid>\n"
           "\n"
           "Exit status: 0 ok, 1 cannot start the node or drive the terminal, 2 usage error.\n"
           "\n"
           "examples:\n"
           "  weft-top\n"
           "  weft-top --seed tcp://10.0.0.5:5670 -d 2\n"
           "  weft-top --batch -n 3 --view nodes | grep down\n",
           cli_node_help);
}

static int s_usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "weft-top: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (see weft-top --help)\n");
    return 2;
}

int main(int argc, char **argv)
{
    top_opts_t o = {DEFAULT_DELAY_MS, 0, 0};
    bool batch = false;
    cli_node_opts_t nopts;
    memset(&nopts, 0, sizeof(nopts));
    nopts.role = "monitor";
    nopts.prog = "weft-top";
    char default_name[64];
    snprintf(default_name, sizeof(default_name), "weft-top-%d", (int)getpid());

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            s_help();
            return 0;
        }
        if (!strcmp(a, "--version")) {
            printf("weft-top %s\n", WEFT_VERSION_STRING);
            return 0;
        }
        int rc = cli_node_option(&nopts, argc, argv, &i);
        if (rc < 0)
            return 2;
        if (rc > 0)
            continue;
        if (!strcmp(a, "-b") || !strcmp(a, "--batch")) {
            batch = true;
            continue;
        }
        if (strcmp(a, "-d") && strcmp(a, "-n") && strcmp(a, "--view"))
            return s_usage_error("unknown option or argument '%s'", a);
        if (i + 1 >= argc)
            return s_usage_error("%s needs a value", a);
        const char *v = argv[++i];
        if (!strcmp(a, "-d")) {
            o.delay_ms = cli_parse_ms(v);
            if (o.delay_ms < MIN_DELAY_MS)
                return s_usage_error("-d wants seconds >= 0.1, not '%s'", v);
        } else if (!strcmp(a, "-n")) {
            char *end;
            errno = 0;
            unsigned long long n = strtoull(v, &end, 10);
            if (errno || *end || !*v || *v == '-' || n == 0)
                return s_usage_error("-n wants a whole number >= 1, not '%s'", v);
            o.count = n;
        } else {
            int view = fabric_view_parse(v);
            if (view < 0)
                return s_usage_error("unknown view '%s' (nodes, topics, lag, archiver, dlq)", v);
            o.views |= 1u << view;
        }
    }
    if (!nopts.name)
        nopts.name = default_name;
    if (!o.views)
        o.views = batch ? FABRIC_VIEW_ALL : 1u << FABRIC_VIEW_NODES;
    if (!batch && (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO))) {
        fprintf(stderr, "weft-top: not a terminal; use --batch for plain-text snapshots\n");
        return 2;
    }

    zsys_init();
    zsys_set_logident("weft-top");
    /* czmq logs to stdout by default: that is where the snapshots or the screen go. */
    zsys_set_logstream(stderr);

    top_feed_t feed;
    pthread_mutex_init(&feed.lock, NULL);
    feed.model = fabric_model_new();
    if (!feed.model) {
        fprintf(stderr, "weft-top: out of memory\n");
        return 1;
    }
    int status = 0, err = 0;
    weft_node_t *node = cli_node_new(&nopts);
    if (!node)
        status = 1;
    else if (!weft_subscribe(node, "_weft.hb", s_on_heartbeat, &feed, NULL, &err)) {
        fprintf(stderr, "weft-top: cannot subscribe to _weft.hb: %s\n", weft_strerror(err));
        status = 1;
    }
    if (status == 0)
        status = batch ? s_batch(&feed, &o) : top_ui_run(&feed, &o, weft_node_name(node));
    weft_node_destroy(&node);
    fabric_model_destroy(&feed.model);
    pthread_mutex_destroy(&feed.lock);
    return status;
}

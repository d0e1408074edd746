/*  cmd_stat.c - `weft stat`: a one-shot snapshot of the fabric, from its heartbeats.

    The command starts a node (role "cli"), subscribes to `_weft.hb`, feeds every heartbeat to
    a fabric model (tools/common/fabric_model.h) for --wait seconds, then prints one snapshot:
    the same views weft-top shows (nodes, topics, lag, archivers, DLQs, totals) as text tables,
    or as one JSON document with --json (tools/common/fabric_view.h). The default wait, 2.5 s,
    lets every node send two heartbeats, so per-node rates exist. The handler runs on the
    node's thread and the main thread takes the snapshot, so a mutex guards the model. Called
    by main.c through cmd_stat (cli.h).
*/
#include <czmq.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "fabric_model.h"
#include "fabric_view.h"

#define DEFAULT_WAIT_MS 2500

typedef struct {
    pthread_mutex_t lock;
    fabric_model_t *model;
} stat_state_t;

/*  On the node's thread: one heartbeat into the model. */
static int s_on_heartbeat(weft_event_t *ev, void *arg)
{
    stat_state_t *st = arg;
    pthread_mutex_lock(&st->lock);
    fabric_model_feed(st->model, ev->payload, ev->size, ev->env->inst, zclock_time());
    pthread_mutex_unlock(&st->lock);
    return 0;
}

static void s_help(void)
{
    printf("usage: weft stat [--json] [--wait S] [--view NAME] [OPTIONS]\n"
           "\n"
           "Joins the fabric, collects the `_weft.hb` heartbeats every node sends for S seconds,\n"
           "and prints one snapshot of what they say (the views of weft-top):\n"
           "  nodes     name, role, host:pid, up/down, uptime, events out/s and in/s, counters\n"
           "  topics    per topic across nodes: publishers, subscribers, events/s, bytes/s\n"
           "  lag       per subscriber and publisher: seq lag, time lag, gaps\n"
           "  archiver  what archivers report (last offset, events/s, bytes on disk, ...)\n"
           "  dlq       what DLQs report (pending, parked, by subscriber, by topic, ...)\n"
           "and fabric totals. Rates need two heartbeats of a node: a node heard once shows -.\n"
           "This command is a node too and appears in the snapshot (role cli).\n"
           "\n"
           "options:\n"
           "  --json          one JSON document: {time_ms, totals, nodes, topics, lag,\n"
           "                  archivers, dlqs}; instance ids are decimal strings, rates not\n"
           "                  yet measured are null\n"
           "  --wait S        how long to collect heartbeats (default 2.5s)\n"
           "  --view NAME     text output: only this view (nodes, topics, lag, archiver, dlq);\n"
           "                  repeatable (default: all)\n"
           "  -h, --help      this help\n"
           "Durations (S) are seconds (\"1.5\", \"2s\"), or with a unit: \"500ms\", \"2m\".\n"
           "\n"
           "%s"
           "  default --name for this command: weft-stat-<pid>\n"
           "\n"
           "Exit status: 0 ok, 1 cannot start the node, 2 usage error.\n"
           "\n"
           "examples:\n"
           "  weft stat\n"
           "  weft stat --json | jq '.nodes[] | {name, out_per_s}'\n"
           "  weft stat --view lag --wait 5\n",
           cli_node_help);
}

static int s_usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "weft stat: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (see weft stat --help)\n");
    return 2;
}

int cmd_stat(int argc, char **argv)
{
    bool json = false;
    long wait_ms = DEFAULT_WAIT_MS;
    unsigned views = 0;
    cli_node_opts_t nopts;
    memset(&nopts, 0, sizeof(nopts));
    nopts.role = "cli";
    nopts.prog = "weft stat";
    char default_name[64];
    snprintf(default_name, sizeof(default_name), "weft-stat-%d", (int)getpid());

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            s_help();
            return 0;
        }
        int rc = cli_node_option(&nopts, argc, argv, &i);
        if (rc < 0)
            return 2;
        if (rc > 0)
            continue;
        if (!strcmp(a, "--json")) {
            json = true;
            continue;
        }
        if (strcmp(a, "--wait") && strcmp(a, "--view"))
            return s_usage_error("unknown option or argument '%s'", a);
        if (i + 1 >= argc)
            return s_usage_error("%s needs a value", a);
        const char *v = argv[++i];
        if (!strcmp(a, "--wait")) {
            if ((wait_ms = cli_parse_ms(v)) < 0)
                return s_usage_error("bad duration '%s' (e.g. 3, 1.5s, 500ms, 2m)", v);
        } else {
            int view = fabric_view_parse(v);
            if (view < 0)
                return s_usage_error("unknown view '%s' (nodes, topics, lag, archiver, dlq)", v);
            views |= 1u << view;
        }
    }
    if (!nopts.name)
        nopts.name = default_name;
    if (!views)
        views = FABRIC_VIEW_ALL;
    /* The library logs through czmq, to stdout by default: keep stdout for the snapshot. */
    zsys_set_logstream(stderr);

    stat_state_t st;
    pthread_mutex_init(&st.lock, NULL);
    st.model = fabric_model_new();
    if (!st.model) {
        fprintf(stderr, "weft stat: out of memory\n");
        return 1;
    }
    weft_node_t *node = cli_node_new(&nopts);
    int status = 0, err = 0;
    if (!node)
        status = 1;
    else if (!weft_subscribe(node, "_weft.hb", s_on_heartbeat, &st, NULL, &err)) {
        fprintf(stderr, "weft stat: cannot subscribe to _weft.hb: %s\n", weft_strerror(err));
        status = 1;
    }
    int64_t until = zclock_mono() + wait_ms;
    while (status == 0 && !zsys_interrupted && zclock_mono() < until) {
        int64_t left = until - zclock_mono();
        zclock_sleep(left < 100 ? (int)left : 100);
    }
    /* Destroying the node first means no handler runs while the snapshot is printed. */
    weft_node_destroy(&node);
    fabric_snapshot_t *snap = NULL;
    if (status == 0) {
        int64_t now = zclock_time();
        fabric_model_tick(st.model, now);
        snap = fabric_model_snapshot(st.model, now);
        if (!snap) {
            fprintf(stderr, "weft stat: out of memory\n");
            status = 1;
        }
    }
    if (snap && json) {
        json_t *doc = fabric_snapshot_json(snap);
        size_t flags = JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(12);
        char *text = doc ? json_dumps(doc, flags) : NULL;
        if (text)
            printf("%s\n", text);
        else {
            fprintf(stderr, "weft stat: out of memory\n");
            status = 1;
        }
        free(text);
        json_decref(doc);
    } else if (snap)
        fabric_print_snapshot(stdout, snap, views);
    if (fflush(stdout) != 0) {
        fprintf(stderr, "weft stat: cannot write to stdout\n");
        status = 1;
    }
    fabric_snapshot_destroy(&snap);
    fabric_model_destroy(&st.model);
    pthread_mutex_destroy(&st.lock);
    return status;
}

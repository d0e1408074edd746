/*  main.c - weft-exporter, the fabric's metrics for Prometheus.

    A node (role "exporter") that subscribes to `_weft.hb`, feeds every heartbeat into a fabric
    model (tools/common/fabric_model.h) and serves, over HTTP with libmicrohttpd:
      /metrics        the model as Prometheus text format 0.0.4 (prom.h)
      /health/live    200 "ok" while the process runs
      /health/ready   200 once a heartbeat has been accepted (its own counts: the receive path
                      works), else 503
      /health         the same as /health/ready
    and 404 for anything else (405 for methods other than GET and HEAD).

    Two threads touch the model: the node's handler thread feeds it, libmicrohttpd's thread
    takes snapshots for /metrics. One mutex guards it; the text is rendered from the snapshot
    after the lock is released, so a slow scrape never delays heartbeats for long.
*/
#include <arpa/inet.h>
#include <czmq.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fabric_model.h"
#include "node_opts.h"
#include "prom.h"

#define DEFAULT_LISTEN "127.0.0.1:9464"
#define CONNECTION_LIMIT 64     /* concurrent HTTP connections */
#define CONNECTION_TIMEOUT_S 10 /* idle HTTP connections are closed after this */
#define CT_METRICS "text/plain; version=0.0.4; charset=utf-8"
#define CT_TEXT "text/plain; charset=utf-8"

typedef struct {
    pthread_mutex_t lock;  /* held around every call on model */
    fabric_model_t *model;
} exporter_t;

/*  On the node's thread: one heartbeat into the model. */
static int s_on_heartbeat(weft_event_t *ev, void *arg)
{
    exporter_t *x = arg;
    pthread_mutex_lock(&x->lock);
    fabric_model_feed(x->model, ev->payload, ev->size, ev->env->inst, zclock_time());
    pthread_mutex_unlock(&x->lock);
    return 0;
}

static enum MHD_Result s_reply(struct MHD_Connection *c, unsigned status, const char *type,
                               char *body, size_t len, enum MHD_ResponseMemoryMode mode)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, mode);
    if (!r) {
        if (mode == MHD_RESPMEM_MUST_FREE)
            free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    enum MHD_Result rc = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result s_text(struct MHD_Connection *c, unsigned status, const char *text)
{
    return s_reply(c, status, CT_TEXT, (char *)text, strlen(text), MHD_RESPMEM_PERSISTENT);
}

/*  libmicrohttpd's request handler, on its thread. */
static enum MHD_Result s_handle(void *cls, struct MHD_Connection *c, const char *url,
                                const char *method, const char *version, const char *upload,
                                size_t *upload_size, void **state)
{
    exporter_t *x = cls;
    (void)version;
    (void)upload;
    if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
        return s_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n");
    if (*upload_size) { /* a GET with a body: ignore the body */
        *upload_size = 0;
        return MHD_YES;
    }
    (void)state;
    if (!strcmp(url, "/metrics")) {
        pthread_mutex_lock(&x->lock);
        fabric_snapshot_t *snap = fabric_model_snapshot(x->model, zclock_time());
        pthread_mutex_unlock(&x->lock);
        size_t len = 0;
        char *text = snap ? prom_render(snap, &len) : NULL;
        fabric_snapshot_destroy(&snap);
        if (!text)
            return s_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
        return s_reply(c, MHD_HTTP_OK, CT_METRICS, text, len, MHD_RESPMEM_MUST_FREE);
    }
    if (!strcmp(url, "/health/live"))
        return s_text(c, MHD_HTTP_OK, "ok\n");
    if (!strcmp(url, "/health/ready") || !strcmp(url, "/health")) {
        uint64_t accepted = 0;
        pthread_mutex_lock(&x->lock);
        fabric_model_counts(x->model, &accepted, NULL);
        pthread_mutex_unlock(&x->lock);
        return accepted ? s_text(c, MHD_HTTP_OK, "ok\n")
                        : s_text(c, MHD_HTTP_SERVICE_UNAVAILABLE, "no heartbeat yet\n");
    }
    return s_text(c, MHD_HTTP_NOT_FOUND, "not found: try /metrics, /health/live, /health/ready\n");
}

/*  "HOST:PORT" or "[V6]:PORT" (numeric host) into an address. Returns 0 or -1. */
static int s_parse_listen(const char *text, struct sockaddr_storage *sa, socklen_t *len)
{
    char host[256];
    const char *colon = strrchr(text, ':');
    if (!colon || colon == text || strlen(colon + 1) == 0)
        return -1;
    size_t hn = (size_t)(colon - text);
    if (text[0] == '[' && hn >= 2 && text[hn - 1] == ']') {
        text++;
        hn -= 2;
    }
    if (hn >= sizeof(host))
        return -1;
    memcpy(host, text, hn);
    host[hn] = 0;
    char *end;
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    if (errno || *end || port < 0 || port > 65535)
        return -1;
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    char service[8];
    snprintf(service, sizeof(service), "%ld", port);
    if (getaddrinfo(host, service, &hints, &res) != 0 || !res)
        return -1;
    memcpy(sa, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

static int s_write_port_file(const char *path, unsigned port)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
        return -1;
    FILE *f = fopen(tmp, "w");
    bool ok = f && fprintf(f, "%u\n", port) > 0;
    if (f && fclose(f) != 0)
        ok = false;
    if (ok && rename(tmp, path) != 0)
        ok = false;
    if (!ok)
        unlink(tmp);
    return ok ? 0 : -1;
}

static void s_help(void)
{
    printf("usage: weft-exporter [OPTIONS]\n"
           "\n"
           "Joins the fabric (role exporter), reads the `_weft.hb` heartbeats of every node and\n"
           "serves them to Prometheus over HTTP:\n"
           "  /metrics        Prometheus text format 0.0.4: per node (labels node, role,\n"
           "                  instance) counters weft_events_published_total, _received_,\n"
           "                  _dropped_, weft_gaps_total, weft_repaired_total,\n"
           "                  weft_handler_errors_total, weft_dead_lettered_total,\n"
           "                  weft_malformed_total, ...; gauges weft_node_up,\n"
           "                  weft_outbox_events, weft_peers_up, weft_peers_down, ...;\n"
           "                  weft_topic_events_total and weft_topic_bytes_total per topic\n"
           "                  (direction out|in); the histogram weft_delivery_latency_seconds;\n"
           "                  weft_archiver_* and weft_dlq_* from archiver and DLQ heartbeats\n"
           "  /health/live    200 while the process runs\n"
           "  /health/ready   200 once a heartbeat arrived, else 503 (/health: the same)\n"
           "A node is down (weft_node_up 0) after 3 missed heartbeats and its series vanish\n"
           "after 60 s of silence. Prometheus renames the `instance` label of scraped series\n"
           "to exported_instance unless the scrape job sets honor_labels: true.\n"
           "\n"
           "options:\n"
           "  --listen HOST:PORT   where to serve HTTP, numeric host (default %s);\n"
           "                       port 0 picks a free port, printed on stderr\n"
           "  --port-file PATH     write the port served on into PATH once listening\n"
           "                       (written to PATH.tmp, then renamed)\n"
           "  -h, --help           this help\n"
           "\n"
           "%s"
           "  default --name: weft-exporter-<pid>\n"
           "\n"
           "Runs until SIGINT or SIGTERM. Exit status: 0 ok, 1 cannot start the node or listen,\n"
           "2 usage error.\n",
           DEFAULT_LISTEN, cli_node_help);
}

static int s_usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "weft-exporter: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (see weft-exporter --help)\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *listen = DEFAULT_LISTEN, *port_file = NULL;
    cli_node_opts_t nopts;
    memset(&nopts, 0, sizeof(nopts));
    nopts.role = "exporter";
    nopts.prog = "weft-exporter";
    char default_name[64];
    snprintf(default_name, sizeof(default_name), "weft-exporter-%d", (int)getpid());
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
        if (strcmp(a, "--listen") && strcmp(a, "--port-file"))
            return s_usage_error("unknown option or argument '%s'", a);
        if (i + 1 >= argc || !*argv[i + 1])
            return s_usage_error("%s needs a value", a);
        if (!strcmp(a, "--listen"))
            listen = argv[++i];
        else
            port_file = argv[++i];
    }
    if (!nopts.name)
        nopts.name = default_name;
    struct sockaddr_storage sa;
    socklen_t salen = 0;
    if (s_parse_listen(listen, &sa, &salen) != 0)
        return s_usage_error("--listen wants HOST:PORT with a numeric host, not '%s'", listen);

    zsys_init();
    zsys_set_logident("weft-exporter");
    zsys_set_logstream(stderr);
    exporter_t x;
    pthread_mutex_init(&x.lock, NULL);
    x.model = fabric_model_new();
    if (!x.model) {
        fprintf(stderr, "weft-exporter: out of memory\n");
        return 1;
    }
    int status = 0, err = 0;
    struct MHD_Daemon *http = NULL;
    weft_node_t *node = cli_node_new(&nopts);
    if (!node)
        status = 1;
    else if (!weft_subscribe(node, "_weft.hb", s_on_heartbeat, &x, NULL, &err)) {
        fprintf(stderr, "weft-exporter: cannot subscribe to _weft.hb: %s\n", weft_strerror(err));
        status = 1;
    }
    if (status == 0) {
        unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
        if (sa.ss_family == AF_INET6)
            flags |= MHD_USE_IPv6;
        http = MHD_start_daemon(flags, 0, NULL, NULL, s_handle, &x, MHD_OPTION_SOCK_ADDR,
                                (struct sockaddr *)&sa, MHD_OPTION_CONNECTION_LIMIT,
                                (unsigned)CONNECTION_LIMIT, MHD_OPTION_CONNECTION_TIMEOUT,
                                (unsigned)CONNECTION_TIMEOUT_S, MHD_OPTION_END);
        if (!http) {
            fprintf(stderr, "weft-exporter: cannot listen on %s\n", listen);
            status = 1;
        }
    }
    if (status == 0) {
        const union MHD_DaemonInfo *info = MHD_get_daemon_info(http, MHD_DAEMON_INFO_BIND_PORT);
        unsigned port = info ? info->port : 0;
        char host[INET6_ADDRSTRLEN] = "?";
        if (sa.ss_family == AF_INET6)
            inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&sa)->sin6_addr, host, sizeof(host));
        else
            inet_ntop(AF_INET, &((struct sockaddr_in *)&sa)->sin_addr, host, sizeof(host));
        fprintf(stderr, "weft-exporter: serving http://%s%s%s:%u/metrics as node %s\n",
                sa.ss_family == AF_INET6 ? "[" : "", host, sa.ss_family == AF_INET6 ? "]" : "",
                port, weft_node_name(node));
        if (port_file && s_write_port_file(port_file, port) != 0) {
            fprintf(stderr, "weft-exporter: cannot write %s: %s\n", port_file, strerror(errno));
            status = 1;
        }
    }
    while (status == 0 && !zsys_interrupted)
        zclock_sleep(100);
    /* HTTP first: no scrape may run once the model is gone. */
    if (http)
        MHD_stop_daemon(http);
    weft_node_destroy(&node);
    fabric_model_destroy(&x.model);
    pthread_mutex_destroy(&x.lock);
    return status;
}

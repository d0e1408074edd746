/*  dlq_server.c - the DLQ's service thread: a ROUTER serving PING, INFO, PUT, LIST, GET,
    RETRY and PURGE, the scheduler's DEALERs and timers, slices of RETRY/PURGE by filter, the
    heartbeat snapshot and, with sync "interval", the periodic flush. Single-threaded over the
    store: no locks around letters.

    The service (control framing of docs/protocol.md; ERR bodies {code, message}):
      PING -> OK {name, inst, ts}
      PUT {event: [topic, envelope, payload], subscriber, node?, error: {code, message?},
           attempts?, failed_at?} -> OK {letter: bin 16, created: bool}       (dlq_put.c)
      LIST {subscriber?, topic?, state?, code?, older_than_ms?, cursor?, limit?}
           -> OK {letters: [letter...], next_cursor: bin 16 | nil}             (dlq_admin.c)
      GET {id} -> OK letter + event | ERR not_found
      RETRY {id} | {filters..., all?} -> OK {count}
      PURGE {id} | {filters..., all?} -> OK {count}
      INFO -> OK {name, inst, dir, sync,
                  counts: {pending, retrying, parked, resolved},
                  by_subscriber: {subscriber: {pending, parked}} (top 50 by open letters;
                      pending includes retrying; resolved letters are not counted),
                  by_topic: {topic: {pending, parked}} (top 50),
                  oldest_pending_age_ms: age (from its first failure) of the earliest stored
                      letter that is pending or retrying, 0 when none,
                  top_codes: [[code, open letters], ...] (top 10),
                  scheduler: {redelivered, resolved, parked, failed, no_subscriber, in_flight,
                              held_back},
                  policy: {max_attempts, backoff_ms, backoff_max_ms, jitter (float),
                           max_in_flight, redeliver_timeout_ms}}
      anything else -> ERR unknown_command; unparsable requests -> ERR bad_request or
      bad_version; store failures -> ERR with the library's error name (e.g. no_memory).

    Heartbeat key "dlq": {pending, retrying, parked, resolved, by_subscriber (top 20),
    by_topic (top 20), oldest_pending_age_ms, top_codes (top 5)}, as in INFO.

    Announcements (weft_publish_fabric, msgpack map payloads):
      _weft.dlq.put       a new letter, or a resolved one reopened by a PUT
      _weft.dlq.resolved  a redelivery was handled
      _weft.dlq.parked    max_attempts redeliveries failed
      _weft.dlq.retried   RETRY {id}        } {letter: uuid str, subscriber, topic, code,
      _weft.dlq.purged    PURGE {id}        }  attempts, state}
      _weft.dlq.retried / _weft.dlq.purged by filter, when count > 0: {count, all?: true,
                          subscriber?, topic?, state?, code?, older_than_ms?} (the filters
                          given)
*/
#include <stdarg.h>

#include "dlq_internal.h"

#define SYNC_INTERVAL_MS 1000

void dlq_svc_err(dlq_svc_t *sv, const ctl_request_t *req, const char *code, const char *fmt, ...)
{
    char message[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    atomic_fetch_add(&sv->dlq->request_errors, 1);
    ctl_reply_err(sv->router, req->routing, req->request_id, code, "%s", message);
}

msgpack_packer dlq_svc_body(dlq_svc_t *sv)
{
    msgpack_sbuffer_clear(&sv->sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sv->sb, msgpack_sbuffer_write);
    return pk;
}

void dlq_svc_ok(dlq_svc_t *sv, const ctl_request_t *req)
{
    ctl_reply(sv->router, req->routing, "OK", req->request_id, sv->sb.data, sv->sb.size);
}

int dlq_svc_update(dlq_svc_t *sv, const dlq_letter_t *was, const dlq_letter_t *l)
{
    int rc = dlq_store_update(sv->store, l);
    if (rc == 0)
        dlq_agg_move(sv->agg, was, l);
    else if (rc != WEFT_ENOTFOUND)
        zsys_error("weft-dlq: cannot update a letter: %s", weft_strerror(rc));
    return rc;
}

int dlq_svc_delete(dlq_svc_t *sv, const dlq_letter_t *was)
{
    int rc = dlq_store_delete(sv->store, was->id);
    if (rc == 0)
        dlq_agg_move(sv->agg, was, NULL);
    else if (rc != WEFT_ENOTFOUND)
        zsys_error("weft-dlq: cannot delete a letter: %s", weft_strerror(rc));
    return rc;
}

static void s_pack_counts(msgpack_packer *pk, const dlq_counts_t *c)
{
    ctl_pack_kv_uint(pk, "pending", c->pending);
    ctl_pack_kv_uint(pk, "retrying", c->retrying);
    ctl_pack_kv_uint(pk, "parked", c->parked);
    ctl_pack_kv_uint(pk, "resolved", c->resolved);
}

/*  The heartbeat's "dlq" value, refreshed once per heartbeat interval. */
static void s_snapshot(dlq_svc_t *sv)
{
    dlq_counts_t c;
    dlq_store_counts(sv->store, &c);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 8);
    s_pack_counts(&pk, &c);
    ctl_pack_str(&pk, "by_subscriber");
    dlq_agg_pack_by_subscriber(sv->agg, &pk, 20);
    ctl_pack_str(&pk, "by_topic");
    dlq_agg_pack_by_topic(sv->agg, &pk, 20);
    ctl_pack_kv_int(&pk, "oldest_pending_age_ms",
                    dlq_agg_oldest_pending_ms(sv->agg, sv->store, weft_now_ns()));
    ctl_pack_str(&pk, "top_codes");
    dlq_agg_pack_top_codes(sv->agg, &pk, 5);
    dlq_t *d = sv->dlq;
    pthread_mutex_lock(&d->snap_lock);
    free(d->snap);
    d->snap_size = sb.size;
    d->snap = (uint8_t *)msgpack_sbuffer_release(&sb);
    pthread_mutex_unlock(&d->snap_lock);
    msgpack_sbuffer_destroy(&sb);
}

static void s_info(dlq_svc_t *sv, ctl_request_t *req)
{
    dlq_t *d = sv->dlq;
    const dlq_opts_t *o = &d->opts;
    dlq_counts_t c;
    dlq_store_counts(sv->store, &c);
    int64_t oldest = dlq_agg_oldest_pending_ms(sv->agg, sv->store, weft_now_ns());
    msgpack_packer pk = dlq_svc_body(sv);
    msgpack_pack_map(&pk, 11);
    ctl_pack_kv_str(&pk, "name", weft_node_name(d->node));
    ctl_pack_kv_uint(&pk, "inst", weft_node_inst(d->node));
    ctl_pack_kv_str(&pk, "dir", d->dir);
    ctl_pack_kv_str(&pk, "sync", dlq_sync_name(o->sync));
    ctl_pack_str(&pk, "counts");
    msgpack_pack_map(&pk, 4);
    s_pack_counts(&pk, &c);
    ctl_pack_str(&pk, "by_subscriber");
    dlq_agg_pack_by_subscriber(sv->agg, &pk, 50);
    ctl_pack_str(&pk, "by_topic");
    dlq_agg_pack_by_topic(sv->agg, &pk, 50);
    ctl_pack_kv_int(&pk, "oldest_pending_age_ms", oldest);
    ctl_pack_str(&pk, "top_codes");
    dlq_agg_pack_top_codes(sv->agg, &pk, 10);
    ctl_pack_str(&pk, "scheduler");
    dlq_sched_pack_info(sv->sched, &pk);
    ctl_pack_str(&pk, "policy");
    msgpack_pack_map(&pk, 6);
    ctl_pack_kv_uint(&pk, "max_attempts", o->max_attempts);
    ctl_pack_kv_uint(&pk, "backoff_ms", (uint64_t)o->backoff_ms);
    ctl_pack_kv_uint(&pk, "backoff_max_ms", (uint64_t)o->backoff_max_ms);
    ctl_pack_str(&pk, "jitter");
    msgpack_pack_double(&pk, o->jitter);
    ctl_pack_kv_uint(&pk, "max_in_flight", o->max_in_flight);
    ctl_pack_kv_uint(&pk, "redeliver_timeout_ms", (uint64_t)o->redeliver_timeout_ms);
    dlq_svc_ok(sv, req);
}

static void s_ping(dlq_svc_t *sv, ctl_request_t *req)
{
    msgpack_packer pk = dlq_svc_body(sv);
    msgpack_pack_map(&pk, 3);
    ctl_pack_kv_str(&pk, "name", weft_node_name(sv->dlq->node));
    ctl_pack_kv_uint(&pk, "inst", weft_node_inst(sv->dlq->node));
    ctl_pack_kv_int(&pk, "ts", weft_now_ns());
    dlq_svc_ok(sv, req);
}

static void s_handle(dlq_svc_t *sv)
{
    ctl_request_t req;
    const char *why = NULL;
    int rc = ctl_request_recv(sv->router, &req, &why);
    if (rc == WEFT_ENET) {
        ctl_request_clear(&req);
        return;
    }
    atomic_fetch_add(&sv->dlq->requests, 1);
    if (rc != 0)
        dlq_svc_err(sv, &req, rc == WEFT_EVERSION ? "bad_version" : "bad_request", "%s", why);
    else if (streq(req.command, "PING"))
        s_ping(sv, &req);
    else if (streq(req.command, "PUT"))
        dlq_put(sv, &req);
    else if (streq(req.command, "LIST"))
        dlq_list(sv, &req);
    else if (streq(req.command, "GET"))
        dlq_get(sv, &req);
    else if (streq(req.command, "RETRY"))
        dlq_retry_or_purge(sv, &req, false);
    else if (streq(req.command, "PURGE"))
        dlq_retry_or_purge(sv, &req, true);
    else if (streq(req.command, "INFO"))
        s_info(sv, &req);
    else
        dlq_svc_err(sv, &req, "unknown_command",
                    "unknown command '%s'; the DLQ serves PING, INFO, PUT, LIST, GET, RETRY, "
                    "PURGE",
                    req.command);
    ctl_request_clear(&req);
}

void dlq_server(zsock_t *pipe, void *args)
{
    dlq_t *d = args;
    dlq_svc_t sv = {0};
    sv.dlq = d;
    sv.store = d->store;
    sv.router = d->router;
    d->router = NULL;
    msgpack_sbuffer_init(&sv.sb);
    sv.agg = dlq_agg_new();
    size_t recovered = dlq_agg_load(sv.agg, sv.store, weft_now_ns());
    if (recovered)
        zsys_info("weft-dlq: %zu letters were being redelivered when the DLQ stopped: due again",
                  recovered);
    sv.sched = dlq_sched_new(&sv);
    s_snapshot(&sv);
    size_t cap = 2 + d->opts.max_in_flight + 16;
    zmq_pollitem_t *items = calloc(cap, sizeof(zmq_pollitem_t));
    assert(items);
    zsock_signal(pipe, 0);

    int64_t next_snapshot = zclock_mono() + d->hb_ms;
    int64_t next_sync = zclock_mono() + SYNC_INTERVAL_MS;
    bool busy = false, terminated = false;
    while (!terminated) {
        items[0] = (zmq_pollitem_t){zsock_resolve(pipe), 0, ZMQ_POLLIN, 0};
        items[1] = (zmq_pollitem_t){zsock_resolve(sv.router), 0, ZMQ_POLLIN, 0};
        size_t nd = dlq_sched_poll_prepare(sv.sched, items + 2, cap - 2);
        int64_t now = zclock_mono();
        int64_t timeout = busy ? 0 : dlq_sched_timeout_ms(sv.sched);
        if (next_snapshot - now < timeout)
            timeout = next_snapshot - now;
        if (d->opts.sync == DLQ_SYNC_INTERVAL && next_sync - now < timeout)
            timeout = next_sync - now;
        if (zmq_poll(items, (int)(2 + nd), timeout < 0 ? 0 : (long)timeout) < 0 && errno != EINTR)
            break;
        if (items[0].revents & ZMQ_POLLIN) {
            char *cmd = zstr_recv(pipe);
            terminated = !cmd || streq(cmd, "$TERM");
            zstr_free(&cmd);
        }
        if (items[1].revents & ZMQ_POLLIN)
            for (int i = 0; i < 64 && (zsock_events(sv.router) & ZMQ_POLLIN); i++)
                s_handle(&sv);
        dlq_sched_poll_done(sv.sched, items + 2, nd);
        dlq_sched_tick(sv.sched);
        busy = dlq_bulk_step(&sv);
        now = zclock_mono();
        if (now >= next_snapshot) {
            s_snapshot(&sv);
            next_snapshot = now + d->hb_ms;
        }
        if (d->opts.sync == DLQ_SYNC_INTERVAL && now >= next_sync) {
            dlq_store_sync(sv.store);
            next_sync = now + SYNC_INTERVAL_MS;
        }
    }
    dlq_sched_destroy(&sv.sched);
    dlq_bulk_destroy(&sv.bulk);
    dlq_agg_destroy(&sv.agg);
    if (d->opts.sync != DLQ_SYNC_ALWAYS)
        dlq_store_sync(sv.store);
    free(items);
    msgpack_sbuffer_destroy(&sv.sb);
    zsock_destroy(&sv.router);
}

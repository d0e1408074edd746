/*  dlq_internal.h - the DLQ's objects shared by its source files (see dlq.h).

    dlq_t is the assembly (dlq.c); dlq_svc_t is the state of the service thread, which alone
    touches the store: request handlers (dlq_server.c, dlq_put.c, dlq_admin.c), the scheduler
    (dlq_scheduler.c) with its requests to subscriber nodes (dlq_redeliver.c) and the
    aggregates (dlq_agg.c) all run on it; dlq_letter.c holds what they share about letters.
    Other threads read only the heartbeat snapshot (under snap_lock) and the counters.
*/
#ifndef WEFT_DLQ_INTERNAL_H_INCLUDED
#define WEFT_DLQ_INTERNAL_H_INCLUDED

#include <czmq.h>
#include <msgpack.h>
#include <pthread.h>
#include <stdatomic.h>

#include "ctl_proto.h"
#include "dlq.h"
#include "dlq_store.h"

#define DLQ_LIST_DEFAULT 100
#define DLQ_LIST_MAX 1000
#define DLQ_NODE_RECHECK_MS 1000   /* a subscriber node that is not up is looked for again */

struct dlq_t {
    dlq_opts_t opts;
    char dir[4096];
    char name[WEFT_NAME_MAX + 1];
    dlq_store_t *store;
    weft_node_t *node;
    zsock_t *router;              /* bound by dlq_new, then owned by the service thread */
    char svc_endpoint[256];
    zactor_t *server;
    int hb_ms;                    /* the node's heartbeat interval: snapshot refresh period */
    char why[256];                /* set by the service thread when it cannot start */

    /* heartbeat snapshot: the packed value of key "dlq"; service thread writes, node reads */
    pthread_mutex_t snap_lock;
    uint8_t *snap;
    size_t snap_size;

    atomic_uint_fast64_t requests, request_errors, puts, created, redelivered, resolved, parked,
        failed, no_subscriber, in_flight, deferred;
};

typedef struct dlq_agg_t dlq_agg_t;
typedef struct dlq_sched_t dlq_sched_t;
typedef struct dlq_bulk_t dlq_bulk_t;

/*  The service thread's state. */
typedef struct {
    dlq_t *dlq;
    dlq_store_t *store;
    zsock_t *router;
    msgpack_sbuffer sb;           /* reply bodies */
    dlq_agg_t *agg;
    dlq_sched_t *sched;
    dlq_bulk_t *bulk;             /* RETRY / PURGE by filter, worked through in slices */
} dlq_svc_t;

/* ---- dlq_server.c ---------------------------------------------------------------------- */

/*  The service actor (zactor_fn); args is the dlq_t. */
void dlq_server(zsock_t *pipe, void *args);

/*  ERR reply, counted. */
void dlq_svc_err(dlq_svc_t *sv, const ctl_request_t *req, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/*  Starts a reply body in sv->sb and returns its packer. */
msgpack_packer dlq_svc_body(dlq_svc_t *sv);
void dlq_svc_ok(dlq_svc_t *sv, const ctl_request_t *req);

/*  Writes a letter's new state to the store and moves the aggregates: was is the letter as it
    was (NULL for a letter that did not exist), l as it is now (NULL: deleted). Returns 0 or
    the store's error. */
int dlq_svc_update(dlq_svc_t *sv, const dlq_letter_t *was, const dlq_letter_t *l);
int dlq_svc_delete(dlq_svc_t *sv, const dlq_letter_t *was);

/* ---- dlq_letter.c: letters on the wire ------------------------------------------------- */

/*  Packs a letter as the map of LIST (13 keys), or of GET (14: + event). */
void dlq_pack_letter(msgpack_packer *pk, const dlq_letter_t *l, bool with_event);

/*  Publishes _weft.dlq.<what> for one letter: {letter, subscriber, topic, code, attempts,
    state}. */
void dlq_announce(dlq_svc_t *sv, const char *what, const dlq_letter_t *l);

/*  Wait before redelivery n (n >= 1): min(backoff_ms x 2^(n-1), backoff_max_ms) x
    (1 + jitter x u), u uniform in [0, 1); in ns. */
int64_t dlq_backoff_ns(const dlq_opts_t *o, uint32_t n);

/*  Copies a bounded string (not NUL-terminated) into a fixed field; false when it does not
    fit or holds a NUL byte. */
bool dlq_copy_str(char *dst, size_t cap, const char *src, size_t len);

/*  Reads an id argument given as bin 16 or uuid str. Returns 0, 1 absent, -1 bad. */
int dlq_arg_id(const msgpack_object *args, const char *key, uint8_t id[WEFT_ID_SIZE]);

/* ---- dlq_put.c ----------------------------------------------------------------------- */

void dlq_put(dlq_svc_t *sv, ctl_request_t *req);

/* ---- dlq_admin.c: LIST, GET, RETRY, PURGE ----------------------------------------------- */

void dlq_list(dlq_svc_t *sv, ctl_request_t *req);
void dlq_get(dlq_svc_t *sv, ctl_request_t *req);
void dlq_retry_or_purge(dlq_svc_t *sv, ctl_request_t *req, bool purge);
/*  Works on the current RETRY/PURGE by filter for a slice of letters. Returns true while
    work remains (poll without waiting). */
bool dlq_bulk_step(dlq_svc_t *sv);
void dlq_bulk_destroy(dlq_bulk_t **self_p);

/* ---- dlq_agg.c: aggregates of the open letters ------------------------------------------ */

dlq_agg_t *dlq_agg_new(void);
void dlq_agg_destroy(dlq_agg_t **self_p);

/*  Moves one letter's contribution: was (NULL: did not exist) -> now (NULL: deleted). Pending
    and retrying letters count as pending; parked as parked; resolved letters do not count. */
void dlq_agg_move(dlq_agg_t *self, const dlq_letter_t *was, const dlq_letter_t *now);

/*  Age of the oldest stored letter that is pending or retrying, in ms (0: none). Keeps it
    exact with a bounded scan of the store when the oldest one went away. */
int64_t dlq_agg_oldest_pending_ms(dlq_agg_t *self, dlq_store_t *store, int64_t now_ns);

/*  Packs `by_subscriber` and `by_topic` values: maps {key: {pending, parked}} of the top n
    keys by pending + parked. */
void dlq_agg_pack_by_subscriber(dlq_agg_t *self, msgpack_packer *pk, size_t n);
void dlq_agg_pack_by_topic(dlq_agg_t *self, msgpack_packer *pk, size_t n);
/*  Packs `top_codes`: [[code, count], ...] of the open letters, the n most frequent. */
void dlq_agg_pack_top_codes(dlq_agg_t *self, msgpack_packer *pk, size_t n);

/*  Startup: reads every letter once to build the aggregates, and turns letters left
    "retrying" by a crash back to pending (due now). Returns the number recovered. */
size_t dlq_agg_load(dlq_agg_t *self, dlq_store_t *store, int64_t now_ns);

/* ---- dlq_redeliver.c: REDELIVER requests to subscriber nodes ---------------------------- */

typedef struct dlq_link_t dlq_link_t;

/*  A redelivery ended: ok, or failed with code and message (the request is no longer in
    flight when this is called). */
typedef void(dlq_outcome_fn)(void *arg, const uint8_t id[WEFT_ID_SIZE], bool ok,
                             const char *code, const char *message);

dlq_link_t *dlq_link_new(uint32_t max_in_flight, int timeout_ms, dlq_outcome_fn *fn, void *arg);
void dlq_link_destroy(dlq_link_t **self_p);
uint32_t dlq_link_in_flight(const dlq_link_t *self);
/*  Calls fn for the id of each letter in flight. */
void dlq_link_each(dlq_link_t *self, void (*fn)(void *arg, const uint8_t id[WEFT_ID_SIZE]),
                   void *arg);
/*  Sends REDELIVER for l (read with its event) to a node's control endpoint. Returns 0, or -1
    when it cannot go now: max_in_flight reached, endpoint not connectable, queue full. */
int dlq_link_send(dlq_link_t *self, const char *endpoint, const dlq_letter_t *l, int64_t now_ms);
size_t dlq_link_poll_prepare(dlq_link_t *self, zmq_pollitem_t *items, size_t cap);
void dlq_link_poll_done(dlq_link_t *self, const zmq_pollitem_t *items, size_t n);
/*  Fails requests past their deadline (dlq.timeout); closes broken and idle DEALERs. */
void dlq_link_tick(dlq_link_t *self, int64_t now_ms);
/*  Earliest deadline of a request in flight, monotonic ms (0: none in flight). */
int64_t dlq_link_next_deadline(const dlq_link_t *self);

/* ---- dlq_scheduler.c ------------------------------------------------------------------- */

dlq_sched_t *dlq_sched_new(dlq_svc_t *sv);
/*  Letters in flight become pending again (due now). */
void dlq_sched_destroy(dlq_sched_t **self_p);

/*  A letter became due at due_ns (PUT, RETRY, a failed redelivery). */
void dlq_sched_wake(dlq_sched_t *self, int64_t due_ns);
/*  A letter was deleted: forget it if held back. */
void dlq_sched_forget(dlq_sched_t *self, const uint8_t id[WEFT_ID_SIZE]);

/*  Poll items for the DEALERs towards subscriber nodes, and their handling after zmq_poll. */
size_t dlq_sched_poll_prepare(dlq_sched_t *self, zmq_pollitem_t *items, size_t cap);
void dlq_sched_poll_done(dlq_sched_t *self, const zmq_pollitem_t *items, size_t n);

/*  Fails REDELIVERs past their deadline, looks again for absent nodes, sends due letters. */
void dlq_sched_tick(dlq_sched_t *self);
/*  ms until the scheduler needs the next tick (0..1000). */
int dlq_sched_timeout_ms(dlq_sched_t *self);

/*  Packs the `scheduler` map of INFO. */
void dlq_sched_pack_info(dlq_sched_t *self, msgpack_packer *pk);

#endif

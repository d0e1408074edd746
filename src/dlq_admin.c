/*  dlq_admin.c - the operator's commands: LIST, GET, RETRY, PURGE.

    Filters (LIST, and RETRY/PURGE without id): subscriber (exact), topic (prefix), state,
    code (exact), older_than_ms (first failure at least that long ago). Empty strings are no
    filter.

    RETRY and PURGE of one letter are done at once. By filter they can touch any number of
    letters, each its own commit, so they are worked through in slices of BULK_SLICE letters
    between other requests and the scheduler's work (the server never stalls on them); the
    reply goes out when the last slice is done. Letters stored after the request arrived are
    left alone: the request takes the store's last letter id as its bound when it arrives,
    and letter ids increase strictly in the order letters are stored (dlq_store_last_id), so
    the cut is exact even within one millisecond. At most BULK_QUEUE such requests wait; more
    get ERR busy.
*/
#include "dlq_internal.h"

#define BULK_SLICE 256
#define BULK_QUEUE 16

typedef struct {
    char subscriber[DLQ_SUBSCRIBER_MAX + 1];
    char topic[WEFT_TOPIC_MAX + 1];
    char code[DLQ_CODE_MAX + 1];
    int state;                /* -1: any */
    uint64_t older_than_ms;   /* 0: any */
    int given;                /* number of filters given */
} filt_t;

typedef struct {
    bool purge;
    bool all;
    filt_t filter;
    zmsg_t *routing;
    uint64_t request_id;
    int64_t now;              /* when the request arrived */
    uint8_t bound[WEFT_ID_SIZE]; /* the last letter id at arrival: greater ids came later */
    bool started;
    uint8_t cursor[WEFT_ID_SIZE];
    uint64_t count;
} job_t;

struct dlq_bulk_t {
    job_t jobs[BULK_QUEUE];
    size_t head, n;
    dlq_letter_t *slice;      /* BULK_SLICE letters, without their events */
    size_t nslice;
};

static int s_str_arg(const msgpack_object *args, const char *key, char *dst, size_t cap)
{
    const char *p;
    size_t n;
    int rc = ctl_arg_str(args, key, &p, &n);
    if (rc != 0)
        return rc;
    return dlq_copy_str(dst, cap, p, n) ? 0 : -1;
}

static const char *s_filter_parse(const msgpack_object *args, filt_t *f)
{
    memset(f, 0, sizeof(*f));
    f->state = -1;
    if (s_str_arg(args, "subscriber", f->subscriber, sizeof(f->subscriber)) < 0)
        return "subscriber must be a str of at most 255 bytes";
    if (s_str_arg(args, "topic", f->topic, sizeof(f->topic)) < 0)
        return "topic must be a str (a topic prefix) of at most 255 bytes";
    if (s_str_arg(args, "code", f->code, sizeof(f->code)) < 0)
        return "code must be a str of at most 63 bytes";
    char state[16] = "";
    int rc = s_str_arg(args, "state", state, sizeof(state));
    if (rc < 0 || (rc == 0 && (f->state = dlq_store_state_parse(state)) < 0))
        return "state must be one of \"pending\", \"retrying\", \"parked\", \"resolved\"";
    if (ctl_arg_uint(args, "older_than_ms", &f->older_than_ms) < 0 ||
        f->older_than_ms > (uint64_t)INT64_MAX / 1000000)
        return "older_than_ms must be a uint (ms)";
    f->given = (f->subscriber[0] != 0) + (f->topic[0] != 0) + (f->code[0] != 0) +
               (f->state >= 0) + (f->older_than_ms > 0);
    return NULL;
}

static void s_filter_view(const filt_t *a, dlq_filter_t *f)
{
    f->subscriber = a->subscriber[0] ? a->subscriber : NULL;
    f->topic_prefix = a->topic[0] ? a->topic : NULL;
    f->state = a->state;
    f->code = a->code[0] ? a->code : NULL;
    f->older_than_ns = (int64_t)a->older_than_ms * 1000000;
}

static int s_arg_bool(const msgpack_object *args, const char *key, bool *out)
{
    const msgpack_object *v = ctl_arg(args, key);
    if (!v)
        return 1;
    if (v->type != MSGPACK_OBJECT_BOOLEAN)
        return -1;
    *out = v->via.boolean;
    return 0;
}

/* ---- LIST and GET ---------------------------------------------------------------------- */

typedef struct {
    msgpack_packer pk;
    uint32_t n;
} list_t;

static int s_list_cb(const dlq_letter_t *l, void *arg)
{
    list_t *ls = arg;
    dlq_pack_letter(&ls->pk, l, false);
    ls->n++;
    return 0;
}

void dlq_list(dlq_svc_t *sv, ctl_request_t *req)
{
    filt_t fa;
    const char *why = s_filter_parse(req->args, &fa);
    uint8_t cursor[WEFT_ID_SIZE];
    int rc_cursor = dlq_arg_id(req->args, "cursor", cursor);
    uint64_t limit = DLQ_LIST_DEFAULT;
    if (!why && rc_cursor < 0)
        why = "cursor must be a letter id (bin 16 or uuid str)";
    if (!why && (ctl_arg_uint(req->args, "limit", &limit) < 0 || limit == 0))
        why = "limit must be a uint of 1..1000";
    if (why) {
        dlq_svc_err(sv, req, "bad_request", "%s", why);
        return;
    }
    if (limit > DLQ_LIST_MAX)
        limit = DLQ_LIST_MAX;
    dlq_filter_t f;
    s_filter_view(&fa, &f);
    msgpack_sbuffer side;
    msgpack_sbuffer_init(&side);
    list_t ls = {.n = 0};
    msgpack_packer_init(&ls.pk, &side, msgpack_sbuffer_write);
    uint8_t next[WEFT_ID_SIZE];
    bool more = false;
    size_t n = dlq_store_list(sv->store, &f, weft_now_ns(), rc_cursor == 0 ? cursor : NULL,
                              (size_t)limit, s_list_cb, &ls, next, &more);
    msgpack_packer pk = dlq_svc_body(sv);
    msgpack_pack_map(&pk, 2);
    ctl_pack_str(&pk, "letters");
    msgpack_pack_array(&pk, ls.n);
    if (side.size)
        pk.callback(pk.data, side.data, side.size);
    ctl_pack_str(&pk, "next_cursor");
    if (more && n > 0) {
        msgpack_pack_bin(&pk, WEFT_ID_SIZE);
        msgpack_pack_bin_body(&pk, next, WEFT_ID_SIZE);
    } else {
        msgpack_pack_nil(&pk);
    }
    msgpack_sbuffer_destroy(&side);
    dlq_svc_ok(sv, req);
}

static void s_not_found(dlq_svc_t *sv, ctl_request_t *req, const uint8_t id[WEFT_ID_SIZE])
{
    char text[WEFT_ID_STR];
    dlq_svc_err(sv, req, "not_found", "no letter %s in the DLQ", weft_id_format(id, text));
}

void dlq_get(dlq_svc_t *sv, ctl_request_t *req)
{
    uint8_t id[WEFT_ID_SIZE];
    if (dlq_arg_id(req->args, "id", id) != 0) {
        dlq_svc_err(sv, req, "bad_request", "GET needs {id: bin 16 or uuid str}");
        return;
    }
    dlq_letter_t l;
    uint8_t *buf = NULL;
    int rc = dlq_store_get(sv->store, id, &l, &buf);
    if (rc == WEFT_ENOTFOUND) {
        s_not_found(sv, req, id);
    } else if (rc != 0) {
        dlq_svc_err(sv, req, weft_errname(rc), "the letter could not be read: %s",
                    weft_strerror(rc));
    } else {
        msgpack_packer pk = dlq_svc_body(sv);
        dlq_pack_letter(&pk, &l, true);
        dlq_svc_ok(sv, req);
    }
    free(buf);
}

/* ---- RETRY and PURGE -------------------------------------------------------------------- */

/*  Applies RETRY or PURGE to one letter (as read from the store). Returns true if it did. */
static bool s_apply(dlq_svc_t *sv, const dlq_letter_t *was, bool purge, int64_t now)
{
    if (purge) {
        if (dlq_svc_delete(sv, was) != 0)
            return false;
        dlq_sched_forget(sv->sched, was->id);
        return true;
    }
    if (was->state != DLQ_PENDING && was->state != DLQ_PARKED)
        return false; /* in flight, or resolved */
    /* Re-read with its event: the store rewrites the whole record. */
    dlq_letter_t l;
    uint8_t *buf = NULL;
    if (dlq_store_get(sv->store, was->id, &l, &buf) != 0) {
        free(buf);
        return false;
    }
    dlq_letter_t before = l;
    /* A parked letter gets a fresh budget: parking happens when the redelivery count reaches
       the next multiple of max_attempts. */
    l.state = DLQ_PENDING;
    l.next_retry_at = now;
    int rc = dlq_svc_update(sv, &before, &l);
    free(buf);
    if (rc != 0)
        return false;
    dlq_sched_wake(sv->sched, now);
    return true;
}

static void s_reply_count(dlq_svc_t *sv, zmsg_t *routing, uint64_t request_id, uint64_t count)
{
    msgpack_packer pk = dlq_svc_body(sv);
    msgpack_pack_map(&pk, 1);
    ctl_pack_kv_uint(&pk, "count", count);
    ctl_reply(sv->router, routing, "OK", request_id, sv->sb.data, sv->sb.size);
}

static void s_one(dlq_svc_t *sv, ctl_request_t *req, const uint8_t id[WEFT_ID_SIZE], bool purge)
{
    dlq_letter_t l;
    uint8_t *buf = NULL;
    int rc = dlq_store_get(sv->store, id, &l, &buf);
    if (rc == WEFT_ENOTFOUND) {
        s_not_found(sv, req, id);
    } else if (rc != 0) {
        dlq_svc_err(sv, req, weft_errname(rc), "the letter could not be read: %s",
                    weft_strerror(rc));
    } else {
        bool done = s_apply(sv, &l, purge, weft_now_ns());
        if (done) {
            dlq_letter_t shown = l;
            if (!purge)
                shown.state = DLQ_PENDING;
            dlq_announce(sv, purge ? "purged" : "retried", &shown);
        }
        s_reply_count(sv, req->routing, req->request_id, done ? 1 : 0);
    }
    free(buf);
}

void dlq_retry_or_purge(dlq_svc_t *sv, ctl_request_t *req, bool purge)
{
    const char *cmd = purge ? "PURGE" : "RETRY";
    uint8_t id[WEFT_ID_SIZE];
    int rc_id = dlq_arg_id(req->args, "id", id);
    filt_t fa;
    const char *why = s_filter_parse(req->args, &fa);
    bool all = false;
    if (!why && rc_id < 0)
        why = "id must be a letter id (bin 16 or uuid str)";
    if (!why && s_arg_bool(req->args, "all", &all) < 0)
        why = "all must be a bool";
    if (!why && rc_id == 0 && (fa.given || all))
        why = "give either id or filters, not both";
    if (!why && rc_id != 0 && fa.given == 0 && !all)
        why = "without id, give a filter (subscriber, topic, state, code, older_than_ms) or "
              "all: true";
    if (why) {
        dlq_svc_err(sv, req, "bad_request", "%s: %s", cmd, why);
        return;
    }
    if (rc_id == 0) {
        s_one(sv, req, id, purge);
        return;
    }
    if (!sv->bulk) {
        sv->bulk = calloc(1, sizeof(*sv->bulk));
        sv->bulk->slice = calloc(BULK_SLICE, sizeof(dlq_letter_t));
        assert(sv->bulk && sv->bulk->slice);
    }
    dlq_bulk_t *b = sv->bulk;
    if (b->n == BULK_QUEUE) {
        dlq_svc_err(sv, req, "busy", "%d RETRY/PURGE by filter are waiting; retry later",
                    BULK_QUEUE);
        return;
    }
    job_t *j = &b->jobs[(b->head + b->n++) % BULK_QUEUE];
    memset(j, 0, sizeof(*j));
    j->purge = purge;
    j->all = all;
    j->filter = fa;
    j->routing = zmsg_dup(req->routing);
    j->request_id = req->request_id;
    j->now = weft_now_ns();
    dlq_store_last_id(sv->store, j->bound);
}

static int s_slice_cb(const dlq_letter_t *l, void *arg)
{
    dlq_bulk_t *b = arg;
    if (b->nslice < BULK_SLICE)
        b->slice[b->nslice++] = *l;
    return 0;
}

static void s_announce_bulk(dlq_svc_t *sv, const job_t *j)
{
    const filt_t *f = &j->filter;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1 + (uint32_t)f->given + (j->all ? 1 : 0));
    ctl_pack_kv_uint(&pk, "count", j->count);
    if (j->all) {
        ctl_pack_str(&pk, "all");
        msgpack_pack_true(&pk);
    }
    if (f->subscriber[0])
        ctl_pack_kv_str(&pk, "subscriber", f->subscriber);
    if (f->topic[0])
        ctl_pack_kv_str(&pk, "topic", f->topic);
    if (f->state >= 0)
        ctl_pack_kv_str(&pk, "state", dlq_store_state_name((dlq_state_t)f->state));
    if (f->code[0])
        ctl_pack_kv_str(&pk, "code", f->code);
    if (f->older_than_ms)
        ctl_pack_kv_uint(&pk, "older_than_ms", f->older_than_ms);
    weft_publish_fabric(sv->dlq->node, j->purge ? "_weft.dlq.purged" : "_weft.dlq.retried",
                        sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
}

bool dlq_bulk_step(dlq_svc_t *sv)
{
    dlq_bulk_t *b = sv->bulk;
    if (!b || b->n == 0)
        return false;
    job_t *j = &b->jobs[b->head];
    dlq_filter_t f;
    s_filter_view(&j->filter, &f);
    uint8_t next[WEFT_ID_SIZE];
    bool more = false;
    b->nslice = 0;
    size_t n = dlq_store_list(sv->store, &f, j->now, j->started ? j->cursor : NULL, BULK_SLICE,
                              s_slice_cb, b, next, &more);
    bool past = false;
    for (size_t i = 0; i < b->nslice && !past; i++) {
        if (memcmp(b->slice[i].id, j->bound, WEFT_ID_SIZE) > 0)
            past = true;
        else if (s_apply(sv, &b->slice[i], j->purge, j->now))
            j->count++;
    }
    if (n > 0) {
        memcpy(j->cursor, next, WEFT_ID_SIZE);
        j->started = true;
    }
    if (n == 0 || !more || past) {
        s_reply_count(sv, j->routing, j->request_id, j->count);
        if (j->count)
            s_announce_bulk(sv, j);
        zmsg_destroy(&j->routing);
        b->head = (b->head + 1) % BULK_QUEUE;
        b->n--;
    }
    return b->n > 0;
}

void dlq_bulk_destroy(dlq_bulk_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    dlq_bulk_t *b = *self_p;
    for (size_t i = 0; i < b->n; i++)
        zmsg_destroy(&b->jobs[(b->head + i) % BULK_QUEUE].routing);
    free(b->slice);
    free(b);
    *self_p = NULL;
}

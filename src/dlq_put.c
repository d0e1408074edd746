/*  dlq_put.c - PUT: a node hands the DLQ an event one of its subscribers failed to handle.

    PUT {event: [topic, envelope, payload], subscriber, node, error: {code, message}, attempts,
    failed_at} -> OK {letter: bin 16, created: bool}

      event       [topic str, envelope bin, payload bin]: the topic is a data topic (1..255
                  bytes of 0x21..0x7e, not _weft.), the envelope decodes (its id is the event
                  id); further elements are ignored
      subscriber  str, 1..255 bytes, no control characters: "<node name>/<subscription name>"
      node        str, 1..255 bytes of 0x21..0x7e: the subscriber's node, where REDELIVER goes;
                  optional, default the subscriber's part before its first "/"
      error       map: code (str, 1..63 bytes of 0x21..0x7e), message (str, 0..1023 bytes, no
                  NUL; optional, default "")
      attempts    uint < 2^32: handler calls that failed so far (optional, default 0)
      failed_at   int > 0, ns since the epoch (optional, default now): first and last failure

    Anything else is ERR bad_request with a sentence naming the field. The letter is stored
    (idempotent on event id + subscriber: created false and the same letter for a repeat; a
    resolved letter is reopened) and the reply goes out only after the commit, so an
    acknowledged letter is in the store (durable per the sync policy). A new letter is first
    redelivered after backoff(1).
*/
#include "dlq_internal.h"

/*  Bytes allowed in subscriber names and error codes: no control characters. */
static bool s_printable(const char *s, size_t len, bool space_ok)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f || (c == 0x20 && !space_ok))
            return false;
    }
    return true;
}

/*  Reads a str argument of obj (a map) into dst. Returns 0, 1 absent, -1 bad. */
static int s_str(const msgpack_object *obj, const char *key, char *dst, size_t cap, size_t min)
{
    const char *p;
    size_t n;
    int rc = ctl_arg_str(obj, key, &p, &n);
    if (rc != 0)
        return rc;
    return n >= min && dlq_copy_str(dst, cap, p, n) ? 0 : -1;
}

/*  Checks the args and fills l (event pointers into the request). Returns NULL or why not. */
static const char *s_parse(const msgpack_object *args, dlq_letter_t *l, int64_t now)
{
    memset(l, 0, sizeof(*l));
    const msgpack_object *ev = ctl_arg(args, "event");
    if (!ev || ev->type != MSGPACK_OBJECT_ARRAY || ev->via.array.size < 3)
        return "PUT needs event: [topic str, envelope bin, payload bin]";
    const msgpack_object *t = &ev->via.array.ptr[0], *e = &ev->via.array.ptr[1],
                         *p = &ev->via.array.ptr[2];
    if (t->type != MSGPACK_OBJECT_STR || e->type != MSGPACK_OBJECT_BIN ||
        p->type != MSGPACK_OBJECT_BIN)
        return "event must be [topic str, envelope bin, payload bin]";
    if (weft_topic_check(t->via.str.ptr, t->via.str.size) != WEFT_OK)
        return "event topic must be 1..255 bytes of 0x21..0x7e";
    if (weft_topic_is_fabric(t->via.str.ptr, t->via.str.size))
        return "event topic is a fabric topic (_weft.): fabric events are not dead-lettered";
    memcpy(l->topic, t->via.str.ptr, t->via.str.size);
    l->topic[t->via.str.size] = 0;
    weft_envelope_t env;
    int rc = weft_envelope_decode(&env, e->via.bin.ptr, e->via.bin.size);
    if (rc != WEFT_OK)
        return rc == WEFT_ETOOBIG  ? "event envelope is larger than 64 KiB"
               : rc == WEFT_EVERSION ? "event envelope has an unsupported version (v)"
                                     : "event envelope does not decode (docs/protocol.md 3.2)";
    memcpy(l->event_id, env.id, WEFT_ID_SIZE);
    l->envelope = (const uint8_t *)e->via.bin.ptr;
    l->envelope_size = e->via.bin.size;
    l->payload = (const uint8_t *)p->via.bin.ptr;
    l->payload_size = p->via.bin.size;

    rc = s_str(args, "subscriber", l->subscriber, sizeof(l->subscriber), 1);
    if (rc != 0 || !s_printable(l->subscriber, strlen(l->subscriber), true))
        return "PUT needs subscriber: str of 1..255 bytes without control characters "
               "(\"<node name>/<subscription name>\")";
    rc = s_str(args, "node", l->node, sizeof(l->node), 1);
    if (rc == 1) { /* the node part of the subscriber id */
        const char *slash = strchr(l->subscriber, '/');
        if (!slash || slash == l->subscriber)
            return "PUT needs node: str (the subscriber's node name)";
        memcpy(l->node, l->subscriber, (size_t)(slash - l->subscriber));
        l->node[slash - l->subscriber] = 0;
        rc = 0;
    }
    if (rc != 0 || !s_printable(l->node, strlen(l->node), false))
        return "node must be a str of 1..255 bytes of 0x21..0x7e (the subscriber's node name)";

    const msgpack_object *err = ctl_arg(args, "error");
    if (!err || err->type != MSGPACK_OBJECT_MAP)
        return "PUT needs error: {code: str, message: str}";
    rc = s_str(err, "code", l->code, sizeof(l->code), 1);
    if (rc != 0 || !s_printable(l->code, strlen(l->code), false))
        return "error.code must be a str of 1..63 bytes of 0x21..0x7e";
    rc = s_str(err, "message", l->message, sizeof(l->message), 0);
    if (rc < 0)
        return "error.message must be a str of at most 1023 bytes without NUL";

    uint64_t attempts = 0;
    if (ctl_arg_uint(args, "attempts", &attempts) < 0 || attempts > UINT32_MAX)
        return "attempts must be a uint below 2^32";
    l->attempts = (uint32_t)attempts;
    const msgpack_object *fa = ctl_arg(args, "failed_at");
    int64_t failed_at = now;
    if (fa) {
        if (fa->type != MSGPACK_OBJECT_POSITIVE_INTEGER || fa->via.u64 == 0 ||
            fa->via.u64 > INT64_MAX)
            return "failed_at must be a positive int (ns since the epoch)";
        failed_at = (int64_t)fa->via.u64;
    }
    l->first_failure = failed_at;
    l->last_failure = failed_at;
    l->state = DLQ_PENDING;
    return NULL;
}

void dlq_put(dlq_svc_t *sv, ctl_request_t *req)
{
    int64_t now = weft_now_ns();
    dlq_letter_t l;
    const char *why = s_parse(req->args, &l, now);
    if (why) {
        dlq_svc_err(sv, req, "bad_request", "%s", why);
        return;
    }
    l.next_retry_at = now + dlq_backoff_ns(&sv->dlq->opts, 1);
    dlq_counts_t before, after;
    dlq_store_counts(sv->store, &before);
    bool created = false;
    uint8_t id[WEFT_ID_SIZE];
    int rc = dlq_store_put(sv->store, &l, id, &created);
    if (rc != 0) {
        dlq_svc_err(sv, req, weft_errname(rc), "the letter could not be stored: %s",
                    weft_strerror(rc));
        return;
    }
    memcpy(l.id, id, WEFT_ID_SIZE);
    dlq_store_counts(sv->store, &after);
    if (created) {
        dlq_agg_move(sv->agg, NULL, &l);
        dlq_announce(sv, "put", &l);
        dlq_sched_wake(sv->sched, l.next_retry_at);
        atomic_fetch_add(&sv->dlq->created, 1);
    } else if (after.resolved + 1 == before.resolved) {
        /* A resolved letter failed again: reopened by the store. */
        dlq_letter_t r;
        uint8_t *buf = NULL;
        if (dlq_store_get(sv->store, l.id, &r, &buf) == 0) {
            dlq_agg_move(sv->agg, NULL, &r);
            dlq_announce(sv, "put", &r);
            dlq_sched_wake(sv->sched, r.next_retry_at);
        }
        free(buf);
    }
    atomic_fetch_add(&sv->dlq->puts, 1);
    msgpack_packer pk = dlq_svc_body(sv);
    msgpack_pack_map(&pk, 2);
    ctl_pack_str(&pk, "letter");
    msgpack_pack_bin(&pk, WEFT_ID_SIZE);
    msgpack_pack_bin_body(&pk, l.id, WEFT_ID_SIZE);
    ctl_pack_str(&pk, "created");
    if (created)
        msgpack_pack_true(&pk);
    else
        msgpack_pack_false(&pk);
    dlq_svc_ok(sv, req);
}

/*  archive_client.c - replay, GET and INFO against an archiver (weft/archive.h). */
#include <czmq.h>
#include <msgpack.h>

#include "ctl_proto.h"
#include "mp_guard.h"
#include "weft/archive.h"

/*  Calls fn for each [topic, envelope, payload, offset, recv_ts] of a batch body (or a single
    event when single). Returns 0, fn's non-zero value, or WEFT_EMALFORMED. */
static int s_each(const weft_reply_t *reply, bool single, weft_archived_fn *fn, void *arg,
                  uint64_t *count, uint64_t *last_offset)
{
    if (mp_guard_check(reply->body, reply->body_size, 0, NULL) != 0)
        return WEFT_EMALFORMED;
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    int rc = 0;
    if (msgpack_unpack_next(&u, (const char *)reply->body, reply->body_size, &off) !=
            MSGPACK_UNPACK_SUCCESS ||
        u.data.type != MSGPACK_OBJECT_ARRAY) {
        msgpack_unpacked_destroy(&u);
        return WEFT_EMALFORMED;
    }
    const msgpack_object *items = single ? &u.data : u.data.via.array.ptr;
    uint32_t n = single ? 1 : u.data.via.array.size;
    for (uint32_t i = 0; i < n && rc == 0; i++) {
        const msgpack_object *e = &items[i];
        if (e->type != MSGPACK_OBJECT_ARRAY || e->via.array.size < 5 ||
            e->via.array.ptr[0].type != MSGPACK_OBJECT_STR ||
            e->via.array.ptr[1].type != MSGPACK_OBJECT_BIN ||
            e->via.array.ptr[2].type != MSGPACK_OBJECT_BIN ||
            e->via.array.ptr[3].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
            (e->via.array.ptr[4].type != MSGPACK_OBJECT_POSITIVE_INTEGER &&
             e->via.array.ptr[4].type != MSGPACK_OBJECT_NEGATIVE_INTEGER)) {
            rc = WEFT_EMALFORMED;
            break;
        }
        const msgpack_object *f = e->via.array.ptr;
        weft_archived_t ev = {f[0].via.str.ptr,
                              f[0].via.str.size,
                              (const uint8_t *)f[1].via.bin.ptr,
                              f[1].via.bin.size,
                              (const uint8_t *)f[2].via.bin.ptr,
                              f[2].via.bin.size,
                              f[3].via.u64,
                              f[4].via.i64};
        if (count)
            (*count)++;
        if (last_offset)
            *last_offset = ev.offset;
        rc = fn(&ev, arg);
    }
    msgpack_unpacked_destroy(&u);
    return rc;
}

static void s_pack_strs(msgpack_packer *pk, const char *key, const char *const *v, size_t n)
{
    ctl_pack_str(pk, key);
    msgpack_pack_array(pk, (uint32_t)n);
    for (size_t i = 0; i < n; i++)
        ctl_pack_str(pk, v[i]);
}

static void s_err_text(char *err, size_t cap, const weft_reply_t *r)
{
    if (err && cap)
        snprintf(err, cap, "%s: %s", r->err_code, r->err_message);
}

int weft_replay(const char *svc_endpoint, const weft_replay_opts_t *o, weft_archived_fn *fn,
                void *arg, weft_replay_totals_t *totals, char *err, size_t errcap)
{
    if (!svc_endpoint || !o || !fn)
        return WEFT_EINVAL;
    weft_replay_totals_t dummy;
    if (!totals)
        totals = &dummy;
    memset(totals, 0, sizeof(*totals));
    int rc;
    weft_ctl_t *ctl = weft_ctl_new(svc_endpoint, &rc);
    if (!ctl)
        return rc;
    const uint32_t window = 8;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    uint32_t n = 2 + (o->from_offset > 0) + (o->since_ns != 0) + (o->from_id != NULL) +
                 (o->to_offset > 0) + (o->until_ns != 0) + (o->nprefixes > 0) +
                 (o->nsources > 0) + (o->limit > 0);
    msgpack_pack_map(&pk, n);
    ctl_pack_kv_uint(&pk, "credit", window);
    ctl_pack_str(&pk, "live");
    if (o->live)
        msgpack_pack_true(&pk);
    else
        msgpack_pack_false(&pk);
    if (o->from_offset)
        ctl_pack_kv_uint(&pk, "from_offset", o->from_offset);
    if (o->since_ns)
        ctl_pack_kv_int(&pk, "since", o->since_ns);
    if (o->from_id) {
        ctl_pack_str(&pk, "from_id");
        msgpack_pack_bin(&pk, WEFT_ID_SIZE);
        msgpack_pack_bin_body(&pk, o->from_id, WEFT_ID_SIZE);
    }
    if (o->to_offset)
        ctl_pack_kv_uint(&pk, "to_offset", o->to_offset);
    if (o->until_ns)
        ctl_pack_kv_int(&pk, "until", o->until_ns);
    if (o->nprefixes)
        s_pack_strs(&pk, "prefixes", o->prefixes, o->nprefixes);
    if (o->nsources)
        s_pack_strs(&pk, "sources", o->sources, o->nsources);
    if (o->limit)
        ctl_pack_kv_uint(&pk, "limit", o->limit);
    int64_t id = weft_ctl_send(ctl, "REPLAY", sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
    if (id < 0) {
        weft_ctl_destroy(&ctl);
        return (int)id;
    }
    int timeout = o->timeout_ms > 0 ? o->timeout_ms : 5000;
    int64_t silent_since = zclock_mono();
    rc = WEFT_OK;
    while (1) {
        if (o->stop && *o->stop) {
            weft_ctl_cancel(ctl, (uint64_t)id);
            break;
        }
        weft_reply_t reply;
        int r = weft_ctl_recv(ctl, (uint64_t)id, 100, &reply);
        if (r == WEFT_ETIMEOUT) {
            if (!o->live && zclock_mono() - silent_since > timeout) {
                rc = WEFT_ETIMEOUT;
                break;
            }
            continue;
        }
        if (r != WEFT_OK) {
            rc = r;
            break;
        }
        silent_since = zclock_mono();
        if (strcmp(reply.status, "EVENTS") == 0) {
            int stop = s_each(&reply, false, fn, arg, &totals->events, &totals->next_offset);
            weft_reply_clear(&reply);
            if (totals->next_offset)
                totals->next_offset++;
            if (stop == WEFT_EMALFORMED) {
                rc = WEFT_EMALFORMED;
                weft_ctl_cancel(ctl, (uint64_t)id);
                break;
            }
            if (stop) {
                weft_ctl_cancel(ctl, (uint64_t)id);
                break;
            }
            weft_ctl_credit(ctl, (uint64_t)id, 1);
        } else if (strcmp(reply.status, "END") == 0) {
            msgpack_unpacked u;
            msgpack_unpacked_init(&u);
            size_t off = 0;
            if (mp_guard_check(reply.body, reply.body_size, 0, NULL) == 0 &&
                msgpack_unpack_next(&u, (const char *)reply.body, reply.body_size, &off) ==
                    MSGPACK_UNPACK_SUCCESS) {
                uint64_t next = 0;
                if (ctl_arg_uint(&u.data, "next_offset", &next) == 0 && next)
                    totals->next_offset = next;
            }
            msgpack_unpacked_destroy(&u);
            weft_reply_clear(&reply);
            break;
        } else if (strcmp(reply.status, "ERR") == 0) {
            s_err_text(err, errcap, &reply);
            rc = strcmp(reply.err_code, "not_found") == 0 ? WEFT_ENOTFOUND : WEFT_EREMOTE;
            weft_reply_clear(&reply);
            break;
        } else {
            weft_reply_clear(&reply);
            rc = WEFT_EMALFORMED;
            break;
        }
    }
    weft_ctl_destroy(&ctl);
    return rc;
}

int weft_archive_get(const char *svc_endpoint, const uint8_t id[WEFT_ID_SIZE],
                     weft_archived_fn *fn, void *arg, int timeout_ms, char *err, size_t errcap)
{
    if (!svc_endpoint || !id || !fn)
        return WEFT_EINVAL;
    int rc;
    weft_ctl_t *ctl = weft_ctl_new(svc_endpoint, &rc);
    if (!ctl)
        return rc;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    ctl_pack_str(&pk, "id");
    msgpack_pack_bin(&pk, WEFT_ID_SIZE);
    msgpack_pack_bin_body(&pk, id, WEFT_ID_SIZE);
    weft_reply_t reply;
    rc = weft_ctl_call(ctl, "GET", sb.data, sb.size, timeout_ms, &reply);
    msgpack_sbuffer_destroy(&sb);
    if (rc == WEFT_OK) {
        if (strcmp(reply.status, "OK") == 0) {
            int r = s_each(&reply, true, fn, arg, NULL, NULL);
            rc = r == WEFT_EMALFORMED ? r : WEFT_OK;
        } else {
            s_err_text(err, errcap, &reply);
            rc = strcmp(reply.err_code, "not_found") == 0 ? WEFT_ENOTFOUND : WEFT_EREMOTE;
        }
        weft_reply_clear(&reply);
    }
    weft_ctl_destroy(&ctl);
    return rc;
}

int weft_archive_info(const char *svc_endpoint, int timeout_ms, weft_reply_t *reply)
{
    if (!svc_endpoint || !reply)
        return WEFT_EINVAL;
    int rc;
    weft_ctl_t *ctl = weft_ctl_new(svc_endpoint, &rc);
    if (!ctl)
        return rc;
    rc = weft_ctl_call(ctl, "INFO", NULL, 0, timeout_ms, reply);
    weft_ctl_destroy(&ctl);
    return rc;
}

/*  dlq_letter.c - the DLQ's letters on the wire: the letter map of LIST and GET, the
    _weft.dlq.* announcements, the backoff rule, and small argument helpers shared by the
    request handlers.
*/
#include "dlq_internal.h"

void dlq_pack_letter(msgpack_packer *pk, const dlq_letter_t *l, bool with_event)
{
    msgpack_pack_map(pk, with_event ? 14 : 13);
    ctl_pack_str(pk, "id");
    msgpack_pack_bin(pk, WEFT_ID_SIZE);
    msgpack_pack_bin_body(pk, l->id, WEFT_ID_SIZE);
    ctl_pack_str(pk, "event_id");
    msgpack_pack_bin(pk, WEFT_ID_SIZE);
    msgpack_pack_bin_body(pk, l->event_id, WEFT_ID_SIZE);
    ctl_pack_kv_str(pk, "topic", l->topic);
    ctl_pack_kv_str(pk, "subscriber", l->subscriber);
    ctl_pack_kv_str(pk, "node", l->node);
    ctl_pack_kv_str(pk, "code", l->code);
    ctl_pack_kv_str(pk, "message", l->message);
    ctl_pack_kv_uint(pk, "attempts", l->attempts);
    ctl_pack_kv_uint(pk, "redeliveries", l->redeliveries);
    ctl_pack_kv_int(pk, "first_failure", l->first_failure);
    ctl_pack_kv_int(pk, "last_failure", l->last_failure);
    ctl_pack_kv_int(pk, "next_retry_at", l->next_retry_at);
    ctl_pack_kv_str(pk, "state", dlq_store_state_name(l->state));
    if (with_event) {
        ctl_pack_str(pk, "event");
        ctl_pack_event(pk, l->topic, strlen(l->topic), l->envelope, l->envelope_size, l->payload,
                       l->payload_size);
    }
}

void dlq_announce(dlq_svc_t *sv, const char *what, const dlq_letter_t *l)
{
    char topic[64];
    snprintf(topic, sizeof(topic), "_weft.dlq.%s", what);
    char id[WEFT_ID_STR];
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 6);
    ctl_pack_kv_str(&pk, "letter", weft_id_format(l->id, id));
    ctl_pack_kv_str(&pk, "subscriber", l->subscriber);
    ctl_pack_kv_str(&pk, "topic", l->topic);
    ctl_pack_kv_str(&pk, "code", l->code);
    ctl_pack_kv_uint(&pk, "attempts", l->attempts);
    ctl_pack_kv_str(&pk, "state", dlq_store_state_name(l->state));
    weft_publish_fabric(sv->dlq->node, topic, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
}

int64_t dlq_backoff_ns(const dlq_opts_t *o, uint32_t n)
{
    double ms = (double)o->backoff_ms;
    for (uint32_t i = 1; i < n && ms < (double)o->backoff_max_ms; i++)
        ms *= 2;
    if (ms > (double)o->backoff_max_ms)
        ms = (double)o->backoff_max_ms;
    if (o->jitter > 0)
        ms += ms * o->jitter * ((double)random() / ((double)RAND_MAX + 1.0));
    return (int64_t)(ms * 1e6);
}

bool dlq_copy_str(char *dst, size_t cap, const char *src, size_t len)
{
    if (len >= cap || memchr(src, 0, len))
        return false;
    memcpy(dst, src, len);
    dst[len] = 0;
    return true;
}

int dlq_arg_id(const msgpack_object *args, const char *key, uint8_t id[WEFT_ID_SIZE])
{
    const msgpack_object *v = ctl_arg(args, key);
    if (!v)
        return 1;
    if (v->type == MSGPACK_OBJECT_BIN && v->via.bin.size == WEFT_ID_SIZE) {
        memcpy(id, v->via.bin.ptr, WEFT_ID_SIZE);
        return 0;
    }
    if (v->type == MSGPACK_OBJECT_STR && v->via.str.size < 64) {
        char text[64];
        memcpy(text, v->via.str.ptr, v->via.str.size);
        text[v->via.str.size] = 0;
        return weft_id_parse(text, id) == 0 ? 0 : -1;
    }
    return -1;
}

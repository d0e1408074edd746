/*  heartbeat.c - packing and reading `_weft.hb` payloads (see heartbeat.h). */
#include "heartbeat.h"

#include <unistd.h>

#include "ctl_proto.h"
#include "mp_guard.h"
#include "weft/error.h"

void heartbeat_pack(weft_node_t *node, msgpack_sbuffer *sb,
                    void (*more)(void *arg, msgpack_packer *pk, uint32_t *count), void *arg)
{
    weft_stats_t st;
    weft_node_stats(node, &st);
    char host[256] = "";
    gethostname(host, sizeof(host) - 1);

    /* Sections whose size is known only once packed go to a side buffer first: the map
       header needs the total number of keys. */
    msgpack_sbuffer side;
    msgpack_sbuffer_init(&side);
    msgpack_packer sp;
    msgpack_packer_init(&sp, &side, msgpack_sbuffer_write);
    uint32_t extra = 0;
    if (more)
        more(arg, &sp, &extra);
    pthread_mutex_lock(&node->pub_lock);
    weft_heartbeat_extra_fn *role_fn = node->hb_extra;
    void *role_arg = node->hb_extra_arg;
    pthread_mutex_unlock(&node->pub_lock);
    if (role_fn) {
        uint32_t n = 0;
        role_fn(role_arg, &sp, &n);
        extra += n;
    }

    msgpack_sbuffer_clear(sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 16 + extra);
    ctl_pack_kv_str(&pk, "name", node->name);
    ctl_pack_kv_str(&pk, "role", node->role);
    ctl_pack_kv_str(&pk, "fabric", node->fabric);
    ctl_pack_kv_uint(&pk, "inst", node->inst);
    ctl_pack_kv_uint(&pk, "pid", (uint64_t)getpid());
    ctl_pack_kv_str(&pk, "host", host);
    ctl_pack_kv_uint(&pk, "uptime_ms", (uint64_t)(zclock_time() - node->started_ms));
    ctl_pack_kv_uint(&pk, "hb_ms", (uint64_t)node->heartbeat_ms);
    ctl_pack_kv_uint(&pk, "seq", st.last_seq);
    ctl_pack_kv_str(&pk, "sub", node->sub_endpoint);
    ctl_pack_kv_str(&pk, "ctl", node->ctl_endpoint);
    ctl_pack_kv_str(&pk, "svc", node->svc_endpoint);
    ctl_pack_kv_uint(&pk, "peers_up", st.peers_up);
    ctl_pack_kv_uint(&pk, "peers_down", st.peers_down);
    ctl_pack_str(&pk, "counters");
    msgpack_pack_map(&pk, 15);
    ctl_pack_kv_uint(&pk, "published", st.published);
    ctl_pack_kv_uint(&pk, "publish_errors", st.publish_errors);
    ctl_pack_kv_uint(&pk, "rate_limited", st.rate_limited);
    ctl_pack_kv_uint(&pk, "received", st.received);
    ctl_pack_kv_uint(&pk, "delivered", st.delivered);
    ctl_pack_kv_uint(&pk, "dropped", st.dropped);
    ctl_pack_kv_uint(&pk, "gaps", st.gaps);
    ctl_pack_kv_uint(&pk, "repaired", st.repaired);
    ctl_pack_kv_uint(&pk, "unrepaired", st.unrepaired);
    ctl_pack_kv_uint(&pk, "handler_errors", st.handler_errors);
    ctl_pack_kv_uint(&pk, "dead_lettered", st.dead_lettered);
    ctl_pack_kv_uint(&pk, "malformed", st.malformed);
    ctl_pack_kv_uint(&pk, "ctl_requests", st.ctl_requests);
    ctl_pack_kv_uint(&pk, "ctl_errors", st.ctl_errors);
    ctl_pack_kv_uint(&pk, "foreign", st.foreign);
    ctl_pack_str(&pk, "outbox");
    msgpack_pack_map(&pk, 3);
    ctl_pack_kv_uint(&pk, "events", st.outbox_events);
    ctl_pack_kv_uint(&pk, "bytes", st.outbox_bytes);
    ctl_pack_kv_uint(&pk, "first_seq", st.outbox_first_seq);
    msgpack_sbuffer_write(sb, side.data, side.size);
    msgpack_sbuffer_destroy(&side);
}

static void s_copy_str(const msgpack_object *map, const char *key, char *out, size_t cap)
{
    const char *p;
    size_t n;
    if (ctl_arg_str(map, key, &p, &n) == 0 && n < cap && !memchr(p, 0, n)) {
        memcpy(out, p, n);
        out[n] = 0;
    }
}

int heartbeat_read(const void *data, size_t size, heartbeat_info_t *info)
{
    memset(info, 0, sizeof(*info));
    if (mp_guard_check(data, size, 8, NULL) != 0)
        return WEFT_EMALFORMED;
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    int rc = WEFT_EMALFORMED;
    if (msgpack_unpack_next(&u, data, size, &off) == MSGPACK_UNPACK_SUCCESS &&
        u.data.type == MSGPACK_OBJECT_MAP && ctl_arg_uint(&u.data, "inst", &info->inst) == 0) {
        ctl_arg_uint(&u.data, "seq", &info->seq);
        ctl_arg_uint(&u.data, "hb_ms", &info->hb_ms);
        s_copy_str(&u.data, "name", info->name, sizeof(info->name));
        s_copy_str(&u.data, "role", info->role, sizeof(info->role));
        s_copy_str(&u.data, "sub", info->sub, sizeof(info->sub));
        s_copy_str(&u.data, "ctl", info->ctl, sizeof(info->ctl));
        s_copy_str(&u.data, "svc", info->svc, sizeof(info->svc));
        s_copy_str(&u.data, "fabric", info->fabric, sizeof(info->fabric));
        if (!info->fabric[0])
            snprintf(info->fabric, sizeof(info->fabric), "weft");
        rc = 0;
    }
    msgpack_unpacked_destroy(&u);
    return rc;
}

/*  peers.c - see peers.h. Two czmq hash tables: instance (hex) -> peer_t, and SUB endpoint ->
    endpoint_t (reference count and handshake state). */
#include "peers.h"

#include <czmq.h>
#include <inttypes.h>

#define PEERS_MAX 4096

typedef struct {
    int refs;
    bool handshaked;
    bool refused;      /* a connection attempt was refused since the last handshake */
} endpoint_t;

struct peers_t {
    zhashx_t *by_inst;      /* "%016" PRIx64 -> peer_t */
    zhashx_t *endpoints;    /* endpoint -> endpoint_t */
};

peers_t *peers_new(void)
{
    peers_t *self = calloc(1, sizeof(*self));
    assert(self);
    self->by_inst = zhashx_new();
    self->endpoints = zhashx_new();
    zhashx_set_destructor(self->by_inst, (zhashx_destructor_fn *)zstr_free);
    zhashx_set_destructor(self->endpoints, (zhashx_destructor_fn *)zstr_free);
    return self;
}

void peers_destroy(peers_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zhashx_destroy(&(*self_p)->by_inst);
    zhashx_destroy(&(*self_p)->endpoints);
    free(*self_p);
    *self_p = NULL;
}

static void s_key(char out[17], uint64_t inst)
{
    snprintf(out, 17, "%016" PRIx64, inst);
}

peer_t *peers_lookup(peers_t *self, uint64_t inst)
{
    char key[17];
    s_key(key, inst);
    return zhashx_lookup(self->by_inst, key);
}

static void s_fill(char *dst, size_t cap, const char *src)
{
    if (src && *src && !*dst)
        snprintf(dst, cap, "%s", src);
}

peer_t *peers_learn(peers_t *self, uint64_t inst, const char *name, const char *role,
                    const char *sub, const char *ctl, const char *svc, int64_t now_ms,
                    bool *is_new)
{
    *is_new = false;
    peer_t *p = peers_lookup(self, inst);
    if (!p) {
        if (zhashx_size(self->by_inst) >= PEERS_MAX)
            return NULL;
        p = calloc(1, sizeof(*p));
        assert(p);
        p->inst = inst;
        p->learned_ms = now_ms;
        char key[17];
        s_key(key, inst);
        zhashx_insert(self->by_inst, key, p);
        *is_new = true;
    }
    s_fill(p->name, sizeof(p->name), name);
    s_fill(p->role, sizeof(p->role), role);
    s_fill(p->sub, sizeof(p->sub), sub);
    s_fill(p->ctl, sizeof(p->ctl), ctl);
    s_fill(p->svc, sizeof(p->svc), svc);
    return p;
}

void peers_forget(peers_t *self, uint64_t inst)
{
    char key[17];
    s_key(key, inst);
    zhashx_delete(self->by_inst, key);
}

peer_t *peers_first(peers_t *self)
{
    return zhashx_first(self->by_inst);
}

peer_t *peers_next(peers_t *self)
{
    return zhashx_next(self->by_inst);
}

size_t peers_size(peers_t *self)
{
    return zhashx_size(self->by_inst);
}

bool peers_endpoint_ref(peers_t *self, const char *endpoint)
{
    endpoint_t *e = zhashx_lookup(self->endpoints, endpoint);
    if (e) {
        e->refs++;
        return false;
    }
    e = calloc(1, sizeof(*e));
    assert(e);
    e->refs = 1;
    zhashx_insert(self->endpoints, endpoint, e);
    return true;
}

bool peers_endpoint_unref(peers_t *self, const char *endpoint)
{
    endpoint_t *e = zhashx_lookup(self->endpoints, endpoint);
    if (!e)
        return false;
    if (--e->refs > 0)
        return false;
    zhashx_delete(self->endpoints, endpoint);
    return true;
}

void peers_endpoint_handshake(peers_t *self, const char *endpoint, bool done)
{
    endpoint_t *e = zhashx_lookup(self->endpoints, endpoint);
    if (e) {
        e->handshaked = done;
        if (done)
            e->refused = false;
    }
}

void peers_endpoint_refused(peers_t *self, const char *endpoint)
{
    endpoint_t *e = zhashx_lookup(self->endpoints, endpoint);
    if (e && !e->handshaked)
        e->refused = true;
}

void peers_endpoint_counts(peers_t *self, const char *self_endpoint, int *waiting,
                           int *handshaked, bool *self_done)
{
    *waiting = *handshaked = 0;
    *self_done = false;
    for (endpoint_t *e = zhashx_first(self->endpoints); e; e = zhashx_next(self->endpoints)) {
        const char *ep = zhashx_cursor(self->endpoints);
        if (self_endpoint && strcmp(ep, self_endpoint) == 0) {
            *self_done = e->handshaked;
            continue;
        }
        if (e->refused && !e->handshaked)
            continue;
        (*waiting)++;
        *handshaked += e->handshaked;
    }
}

int peers_tuple_format(char *out, size_t cap, const char *fabric, const char *name,
                       const char *role, const char *sub, const char *ctl, const char *svc)
{
    int n = snprintf(out, cap, "weft/1 name=%s role=%s sub=%s ctl=%s%s%s fabric=%s", name, role,
                     sub, ctl, svc && *svc ? " svc=" : "", svc && *svc ? svc : "", fabric);
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

/*  Copies the value of "field=" from a space-separated list into out (cap bytes). */
static int s_field(const char *value, const char *field, char *out, size_t cap)
{
    size_t flen = strlen(field);
    const char *p = value;
    while (p && *p) {
        if (strncmp(p, field, flen) == 0 && p[flen] == '=') {
            const char *v = p + flen + 1;
            size_t n = strcspn(v, " ");
            if (n == 0 || n >= cap)
                return -1;
            memcpy(out, v, n);
            out[n] = 0;
            return 0;
        }
        p = strchr(p, ' ');
        if (p)
            p++;
    }
    return -1;
}

int peers_tuple_parse(const char *key, const char *value, uint64_t *inst, char *fabric,
                      char *name, char *role, char *sub, char *ctl, char *svc)
{
    if (!key || !value || strlen(key) != 16 || strncmp(value, "weft/1 ", 7) != 0)
        return -1;
    char *end;
    *inst = strtoull(key, &end, 16);
    if (*end || *inst == 0)
        return -1;
    if (s_field(value, "name", name, WEFT_NAME_MAX + 1) || s_field(value, "role", role, 32) ||
        s_field(value, "sub", sub, 256) || s_field(value, "ctl", ctl, 256))
        return -1;
    if (s_field(value, "svc", svc, 256) != 0)
        svc[0] = 0;
    if (s_field(value, "fabric", fabric, PEERS_FABRIC_CAP) != 0)
        snprintf(fabric, PEERS_FABRIC_CAP, "weft");
    return 0;
}

/*  config.c - node configuration layers (see weft/config.h).

    Each known setting is a row of s_keys: its path, its default, its kind (text, number, size,
    milliseconds, boolean) and one line of description. Resolution walks the layers in order
    code -> environment -> file -> default, so nothing is copied between layers and a later
    weft_config_set always wins.
*/
#include "weft/config.h"

#include <czmq.h>
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "weft/error.h"

typedef enum { KIND_TEXT, KIND_NUM, KIND_SIZE, KIND_BOOL } key_kind_t;

typedef struct {
    const char *path;
    const char *fallback;
    key_kind_t kind;
    const char *help;
} key_row_t;

static const key_row_t s_keys[] = {
    {"fabric/name", "weft", KIND_TEXT, "fabric this node belongs to; nodes of other fabrics are ignored"},
    {"node/name", "", KIND_TEXT, "node name (default: the name given in code, or node-<pid>)"},
    {"node/role", "node", KIND_TEXT, "role shown to the fabric: node, cli, archiver, dlq, ..."},
    {"node/bind", "tcp://127.0.0.1:*", KIND_TEXT, "endpoint the SUB socket binds (port * = ephemeral)"},
    {"node/ctl_bind", "", KIND_TEXT, "endpoint the control ROUTER binds (default: host of node/bind, port *)"},
    {"node/advertise", "", KIND_TEXT, "host to announce when binding a wildcard address"},
    {"node/service", "", KIND_TEXT, "service endpoint a role node announces (set by archiver, DLQ)"},
    {"node/linger", "500", KIND_NUM, "ms to flush outgoing messages when the node stops"},
    {"node/state_dir", "weft-state", KIND_TEXT, "where durable consumers keep their checkpoints"},
    {"node/loopback", "1", KIND_BOOL, "deliver the node's own events to its own subscriptions"},
    {"node/settle", "200", KIND_NUM, "ms without a new peer before weft_node_wait_peers returns"},
    {"gossip/seeds", "tcp://127.0.0.1:5670", KIND_TEXT, "comma-separated gossip seeds; none = no gossip"},
    {"gossip/bind", "auto", KIND_TEXT, "auto (bind the first local seed if free), none, or an endpoint"},
    {"peers/connect", "", KIND_TEXT, "comma-separated SUB endpoints of static peers"},
    {"peers/down_beats", "3", KIND_NUM, "heartbeats missed before a peer is marked down"},
    {"peers/disconnect_after", "60000", KIND_NUM, "ms of silence before a down peer is disconnected"},
    {"outbox/events", "100000", KIND_NUM, "events the outbox keeps for FETCH (oldest evicted first)"},
    {"outbox/bytes", "64M", KIND_SIZE, "bytes the outbox keeps for FETCH"},
    {"limits/max_payload", "1M", KIND_SIZE, "largest payload accepted or sent"},
    {"limits/topic_rates", "", KIND_TEXT, "per-prefix publish limits: PREFIX=RATE[/BURST],... (events/s)"},
    {"limits/rate_policy", "reject", KIND_TEXT, "over a limit: reject (error) or drop (counted)"},
    {"net/sndhwm", "100000", KIND_NUM, "messages queued per peer before sends to it are dropped"},
    {"net/rcvhwm", "100000", KIND_NUM, "messages queued on receive before ZeroMQ drops"},
    {"heartbeat/interval", "1000", KIND_NUM, "ms between heartbeats on _weft.hb"},
    {"log/verbose", "0", KIND_BOOL, "log every peer and control event"},
};
#define KEY_COUNT (sizeof(s_keys) / sizeof(s_keys[0]))

struct weft_config_t {
    zconfig_t *file;   /* file layer, or NULL */
    zhashx_t *code;    /* path -> value (strings) */
    char env_name[96]; /* scratch for the environment variable name */
};

static const key_row_t *s_row(const char *path)
{
    for (size_t i = 0; i < KEY_COUNT; i++)
        if (strcmp(s_keys[i].path, path) == 0)
            return &s_keys[i];
    return NULL;
}

/*  Parses a number with an optional k/M/G suffix (powers of 1024) when sizes is true. */
static int s_parse_num(const char *text, bool sizes, int64_t *out)
{
    if (!text || !*text)
        return -1;
    errno = 0;
    char *end;
    long long v = strtoll(text, &end, 10);
    if (errno || end == text)
        return -1;
    if (sizes && *end) {
        int shift = 0;
        switch (toupper((unsigned char)*end)) {
        case 'K': shift = 10; break;
        case 'M': shift = 20; break;
        case 'G': shift = 30; break;
        default: return -1;
        }
        end++;
        if (*end == 'i' || *end == 'I')
            end++;
        if (*end == 'b' || *end == 'B')
            end++;
        if (v < 0 || v > (INT64_MAX >> shift))
            return -1;
        v <<= shift;
    }
    if (*end)
        return -1;
    *out = v;
    return 0;
}

static int s_valid(const key_row_t *row, const char *value)
{
    int64_t n;
    switch (row->kind) {
    case KIND_TEXT: return 0;
    case KIND_NUM: return s_parse_num(value, false, &n);
    case KIND_SIZE: return s_parse_num(value, true, &n);
    case KIND_BOOL:
        return (strcmp(value, "0") == 0 || strcmp(value, "1") == 0 || strcmp(value, "true") == 0 ||
                strcmp(value, "false") == 0)
                   ? 0
                   : -1;
    }
    return -1;
}

weft_config_t *weft_config_new(void)
{
    weft_config_t *self = calloc(1, sizeof(*self));
    if (!self)
        return NULL;
    self->code = zhashx_new();
    if (!self->code) {
        free(self);
        return NULL;
    }
    zhashx_set_destructor(self->code, (zhashx_destructor_fn *)zstr_free);
    zhashx_set_duplicator(self->code, (zhashx_duplicator_fn *)strdup);
    const char *path = getenv("WEFT_CONFIG");
    if (path && *path && weft_config_load(self, path) != WEFT_OK)
        zsys_error("weft: ignoring WEFT_CONFIG=%s (see the error above)", path);
    return self;
}

weft_config_t *weft_config_dup(weft_config_t *from)
{
    weft_config_t *copy = weft_config_new();
    if (!copy || !from)
        return copy;
    /* A value that does not validate (from an environment variable) is left out: the copy
       reads the same environment, and weft_config_check_env reports it. */
    for (size_t i = 0; i < KEY_COUNT; i++)
        weft_config_set(copy, s_keys[i].path, weft_config_get(from, s_keys[i].path));
    return copy;
}

void weft_config_destroy(weft_config_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    weft_config_t *self = *self_p;
    zconfig_destroy(&self->file);
    zhashx_destroy(&self->code);
    free(self);
    *self_p = NULL;
}

/*  Checks every leaf of a loaded file against the known keys. */
static int s_check_file(zconfig_t *root, const char *file)
{
    for (zconfig_t *sect = zconfig_child(root); sect; sect = zconfig_next(sect)) {
        zconfig_t *leaf = zconfig_child(sect);
        if (!leaf) {
            zsys_error("weft: %s: '%s' is not a section with keys", file, zconfig_name(sect));
            return WEFT_ECONFIG;
        }
        for (; leaf; leaf = zconfig_next(leaf)) {
            char path[256];
            snprintf(path, sizeof(path), "%s/%s", zconfig_name(sect), zconfig_name(leaf));
            const key_row_t *row = s_row(path);
            if (!row) {
                zsys_error("weft: %s: unknown setting '%s'", file, path);
                return WEFT_ECONFIG;
            }
            const char *value = zconfig_value(leaf);
            if (!value || s_valid(row, value) != 0) {
                zsys_error("weft: %s: bad value '%s' for '%s'", file, value ? value : "", path);
                return WEFT_ECONFIG;
            }
        }
    }
    return WEFT_OK;
}

int weft_config_load(weft_config_t *self, const char *path)
{
    if (!self || !path)
        return WEFT_EINVAL;
    if (!zsys_file_exists(path)) {
        zsys_error("weft: config file %s: no such file", path);
        return WEFT_ENOTFOUND;
    }
    zconfig_t *root = zconfig_load(path);
    if (!root) {
        zsys_error("weft: config file %s: syntax error (ZPL expected)", path);
        return WEFT_ECONFIG;
    }
    if (s_check_file(root, path) != WEFT_OK) {
        zconfig_destroy(&root);
        return WEFT_ECONFIG;
    }
    zconfig_destroy(&self->file);
    self->file = root;
    return WEFT_OK;
}

int weft_config_set(weft_config_t *self, const char *key, const char *value)
{
    if (!self || !key || !value)
        return WEFT_EINVAL;
    const key_row_t *row = s_row(key);
    if (!row || s_valid(row, value) != 0)
        return WEFT_ECONFIG;
    zhashx_update(self->code, key, (void *)value);
    return WEFT_OK;
}

static const char *s_env(weft_config_t *self, const char *path)
{
    size_t o = 0;
    o += (size_t)snprintf(self->env_name, sizeof(self->env_name), "WEFT_");
    for (const char *p = path; *p && o + 1 < sizeof(self->env_name); p++)
        self->env_name[o++] = *p == '/' ? '_' : (char)toupper((unsigned char)*p);
    self->env_name[o] = 0;
    return getenv(self->env_name);
}

const char *weft_config_get(weft_config_t *self, const char *key)
{
    const key_row_t *row = key ? s_row(key) : NULL;
    if (!row)
        return NULL;
    if (!self)
        return row->fallback;
    const char *v = zhashx_lookup(self->code, key);
    if (v)
        return v;
    v = s_env(self, key);
    if (v && s_valid(row, v) == 0)
        return v;
    if (self->file) {
        zconfig_t *item = zconfig_locate(self->file, key);
        if (item && zconfig_value(item))
            return zconfig_value(item);
    }
    return row->fallback;
}

int64_t weft_config_get_int(weft_config_t *self, const char *key, int64_t fallback)
{
    const key_row_t *row = key ? s_row(key) : NULL;
    const char *v = weft_config_get(self, key);
    if (!row || !v)
        return fallback;
    if (row->kind == KIND_BOOL)
        return strcmp(v, "1") == 0 || strcmp(v, "true") == 0;
    int64_t n;
    if (s_parse_num(v, row->kind == KIND_SIZE, &n) != 0)
        return fallback;
    return n;
}

void weft_config_describe(weft_config_t *self, FILE *out)
{
    for (size_t i = 0; i < KEY_COUNT; i++) {
        const char *v = weft_config_get(self, s_keys[i].path);
        fprintf(out, "  %-24s = %-22s %s\n", s_keys[i].path, v && *v ? v : "\"\"", s_keys[i].help);
    }
}

int weft_config_check_env(weft_config_t *self)
{
    if (!self)
        return WEFT_EINVAL;
    for (size_t i = 0; i < KEY_COUNT; i++) {
        const char *v = s_env(self, s_keys[i].path);
        if (v && s_valid(&s_keys[i], v) != 0) {
            zsys_error("weft: environment %s='%s' is not a valid value", self->env_name, v);
            return WEFT_ECONFIG;
        }
    }
    return WEFT_OK;
}

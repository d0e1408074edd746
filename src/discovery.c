/*  discovery.c - see discovery.h. */
#include "discovery.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "weft/error.h"

struct discovery_t {
    zactor_t *gossip;
};

/*  True when endpoint is a TCP endpoint on this host that we could bind. */
static bool s_is_local(const char *endpoint)
{
    return strncmp(endpoint, "tcp://127.0.0.1:", 16) == 0 ||
           strncmp(endpoint, "tcp://localhost:", 16) == 0;
}

/*  Probes whether a local TCP endpoint's port is free, with a plain socket: closing it is
    synchronous, whereas a ZeroMQ listener releases its port asynchronously and would make the
    real bind that follows fail at random. SO_REUSEADDR matches what libzmq sets. */
static bool s_can_bind(const char *endpoint)
{
    const char *colon = strrchr(endpoint, ':');
    int port = colon ? atoi(colon + 1) : 0;
    if (port <= 0 || port > 65535)
        return false;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return false;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = bind(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0;
    close(fd);
    return ok;
}

static int s_bind(discovery_t *self, const char *endpoint)
{
    zstr_sendx(self->gossip, "BIND", endpoint, NULL);
    zstr_sendx(self->gossip, "PORT", NULL);
    char *cmd = NULL, *port = NULL;
    zstr_recvx(self->gossip, &cmd, &port, NULL);
    int rc = port ? atoi(port) : -1;
    zstr_free(&cmd);
    zstr_free(&port);
    return rc;
}

discovery_t *discovery_new(const char *name, const char *seeds, const char *bind,
                           char *bound_out, size_t cap, int *err)
{
    *err = 0;
    bound_out[0] = 0;
    bool have_seeds = seeds && *seeds && strcmp(seeds, "none") != 0;
    bool explicit_bind = bind && *bind && strcmp(bind, "auto") != 0 && strcmp(bind, "none") != 0;
    if (!have_seeds && !explicit_bind)
        return NULL;
    discovery_t *self = calloc(1, sizeof(*self));
    assert(self);
    self->gossip = zactor_new(zgossip, (void *)name);
    if (!self->gossip) {
        free(self);
        *err = WEFT_ENET;
        return NULL;
    }
    zstr_sendx(self->gossip, "SET", "server/timeout", "0", NULL);

    /* Bind: explicitly, or the first seed when it is local and free. */
    const char *to_bind = NULL;
    char first_seed[256] = "";
    if (have_seeds) {
        size_t n = strcspn(seeds, ",");
        if (n < sizeof(first_seed)) {
            memcpy(first_seed, seeds, n);
            first_seed[n] = 0;
        }
    }
    if (explicit_bind)
        to_bind = bind;
    else if (bind && strcmp(bind, "auto") == 0 && first_seed[0] && s_is_local(first_seed) &&
             s_can_bind(first_seed))
        to_bind = first_seed;
    if (to_bind) {
        int port = s_bind(self, to_bind);
        const char *colon = strrchr(to_bind, ':');
        if (port > 0 && colon)
            snprintf(bound_out, cap, "%.*s:%d", (int)(colon - to_bind), to_bind, port);
        else if (explicit_bind) {
            zsys_error("weft: cannot bind gossip endpoint %s", to_bind);
            discovery_destroy(&self);
            *err = WEFT_ENET;
            return NULL;
        }
    }
    /* Connect to every seed we do not hold ourselves. */
    if (have_seeds) {
        char *save = NULL;
        char *copy = strdup(seeds);
        for (char *s = strtok_r(copy, ",", &save); s; s = strtok_r(NULL, ",", &save)) {
            while (*s == ' ')
                s++;
            if (*s && strcmp(s, bound_out) != 0)
                zstr_sendx(self->gossip, "CONNECT", s, NULL);
        }
        free(copy);
    }
    return self;
}

void discovery_destroy(discovery_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zactor_destroy(&(*self_p)->gossip);
    free(*self_p);
    *self_p = NULL;
}

void discovery_announce(discovery_t *self, const char *key, const char *value)
{
    zstr_sendx(self->gossip, "PUBLISH", key, value, NULL);
}

zsock_t *discovery_socket(discovery_t *self)
{
    return zactor_sock(self->gossip);
}

int discovery_recv(discovery_t *self, char **key, char **value)
{
    char *cmd = NULL;
    *key = *value = NULL;
    zmsg_t *msg = zmsg_recv(self->gossip);
    if (!msg)
        return -1;
    cmd = zmsg_popstr(msg);
    int rc = -1;
    if (cmd && streq(cmd, "DELIVER") && zmsg_size(msg) == 2) {
        *key = zmsg_popstr(msg);
        *value = zmsg_popstr(msg);
        rc = 0;
    }
    zstr_free(&cmd);
    zmsg_destroy(&msg);
    return rc;
}

/*  discovery.c - see discovery.h. */
#include "discovery.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bind_util.h"
#include "weft/error.h"

#define SEEDS_MAX 16

struct discovery_t {
    char name[256];
    char *seeds[SEEDS_MAX];    /* configured seeds */
    int nseeds;
    bool auto_bind;            /* gossip/bind auto */
    char explicit_bind[256];   /* gossip/bind endpoint, or "" */
    char bound[256];           /* endpoint held now, or "" */
    char held[256];            /* endpoint we bound once and announced: rebound after a restart */
    bool dead;                 /* the gossip actor ended: revive it */
    int64_t revived_ms;        /* when the actor was last renewed (a clock for the back-off) */
    char key[32];              /* our tuple, for rejoins */
    char *value;
    zactor_t *gossip;
    zsock_t *watch;            /* DEALER connected to each remote seed; never sends */
    zsock_t *watch_events;     /* PAIR: the watcher's socket monitor */
    bool seen_down[SEEDS_MAX]; /* the watcher lost seed i since its last handshake */
    char watch_endpoint[64];
};

/*  Configures a fresh gossip actor. czmq's server engine switches the process's log stream to
    stdout when it is configured; programs whose stdout carries data (JSON lines) log to
    stderr, so once the actor has applied the setting (a STATUS round trip) stderr is put
    back.
    zgossip ends its actor on the first message it cannot parse, on its ROUTER or from a seed
    (czmq's engine returns -1 from the reader, which stops its zloop). Ephemeral ports are
    reused at once by other processes, so such a message arrives sooner or later: a control
    PING of a node probing a dead peer whose control port our seed now has, or a control
    ROUTER answering our HELLO from our dead seed's port. The node's thread must then never
    block on the actor's pipe (a send to a PAIR whose peer has gone blocks forever): sends give
    up at once and replies are waited for at most a second. The actor's end is noticed by its
    farewell signal (discovery_recv) and the actor is revived. */
static void s_configure(zactor_t *gossip)
{
    zsock_set_sndtimeo(zactor_sock(gossip), 0);
    zsock_set_rcvtimeo(zactor_sock(gossip), 1000);
    zstr_sendx(gossip, "SET", "server/timeout", "0", NULL);
    zstr_sendx(gossip, "STATUS", NULL);
    char *cmd = NULL, *n = NULL;
    zstr_recvx(gossip, &cmd, &n, NULL);
    zstr_free(&cmd);
    zstr_free(&n);
    zsys_set_logstream(stderr);
}

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

/*  Binds the gossip actor; on success records the endpoint (with the real port). */
static bool s_bind(discovery_t *self, const char *endpoint)
{
    char random[256];
    endpoint = bind_util_endpoint(endpoint, random, sizeof(random));
    if (zstr_sendx(self->gossip, "BIND", endpoint, NULL) != 0 ||
        zstr_sendx(self->gossip, "PORT", NULL) != 0)
        return false; /* the actor has ended */
    /* The reply may come after tuples delivered meanwhile (those are lost, as before). */
    int p = -1;
    bool replied = false;
    for (int i = 0; i < 1000 && !replied; i++) {
        char *cmd = NULL, *port = NULL;
        if (zstr_recvx(self->gossip, &cmd, &port, NULL) < 0)
            replied = true; /* no reply within the receive timeout */
        else if (cmd && streq(cmd, "PORT")) {
            replied = true;
            p = port ? atoi(port) : -1;
        }
        zstr_free(&cmd);
        zstr_free(&port);
    }
    const char *colon = strrchr(endpoint, ':');
    if (p <= 0 || !colon)
        return false;
    snprintf(self->bound, sizeof(self->bound), "%.*s:%d", (int)(colon - endpoint), endpoint, p);
    snprintf(self->held, sizeof(self->held), "%s", self->bound);
    return true;
}

/*  True when seed i is the endpoint we hold ourselves. */
static bool s_is_ours(discovery_t *self, int i)
{
    return self->bound[0] && strcmp(self->seeds[i], self->bound) == 0;
}

static void s_watch_connect(discovery_t *self)
{
    for (int i = 0; i < self->nseeds; i++)
        if (!s_is_ours(self, i))
            zsock_connect(self->watch, "%s", self->seeds[i]);
}

discovery_t *discovery_new(const char *name, const char *seeds, const char *bind, int *err)
{
    *err = 0;
    bool have_seeds = seeds && *seeds && strcmp(seeds, "none") != 0;
    bool explicit_bind = bind && *bind && strcmp(bind, "auto") != 0 && strcmp(bind, "none") != 0;
    if (!have_seeds && !explicit_bind)
        return NULL;
    discovery_t *self = calloc(1, sizeof(*self));
    assert(self);
    snprintf(self->name, sizeof(self->name), "%s", name);
    self->auto_bind = bind && strcmp(bind, "auto") == 0;
    if (explicit_bind)
        snprintf(self->explicit_bind, sizeof(self->explicit_bind), "%s", bind);
    if (have_seeds) {
        char *copy = strdup(seeds), *save = NULL;
        for (char *s = strtok_r(copy, ",", &save); s && self->nseeds < SEEDS_MAX;
             s = strtok_r(NULL, ",", &save)) {
            while (*s == ' ')
                s++;
            if (*s)
                self->seeds[self->nseeds++] = strdup(s);
        }
        free(copy);
    }
    self->gossip = zactor_new(zgossip, self->name);
    if (!self->gossip) {
        discovery_destroy(&self);
        *err = WEFT_ENET;
        return NULL;
    }
    s_configure(self->gossip);
    if (explicit_bind) {
        if (!s_bind(self, self->explicit_bind)) {
            zsys_error("weft: cannot bind gossip endpoint %s", self->explicit_bind);
            discovery_destroy(&self);
            *err = WEFT_ENET;
            return NULL;
        }
    } else if (self->auto_bind && self->nseeds && s_is_local(self->seeds[0]) &&
               s_can_bind(self->seeds[0])) {
        s_bind(self, self->seeds[0]);
    }
    for (int i = 0; i < self->nseeds; i++)
        if (!s_is_ours(self, i))
            zstr_sendx(self->gossip, "CONNECT", self->seeds[i], NULL);

    /* The watcher: a plain DEALER to each remote seed, whose connection events tell when a
       seed went away and came back. */
    snprintf(self->watch_endpoint, sizeof(self->watch_endpoint), "inproc://weft-gossip-watch-%p",
             (void *)self);
    self->watch = zsock_new(ZMQ_DEALER);
    self->watch_events = zsock_new(ZMQ_PAIR);
    if (!self->watch || !self->watch_events ||
        zmq_socket_monitor(zsock_resolve(self->watch), self->watch_endpoint,
                           ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED) != 0 ||
        zsock_connect(self->watch_events, "%s", self->watch_endpoint) != 0) {
        discovery_destroy(&self);
        *err = WEFT_ENET;
        return NULL;
    }
    zsock_set_linger(self->watch, 0);
    s_watch_connect(self);
    return self;
}

void discovery_destroy(discovery_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    discovery_t *self = *self_p;
    if (self->watch)
        zmq_socket_monitor(zsock_resolve(self->watch), NULL, 0);
    zsock_destroy(&self->watch_events);
    zsock_destroy(&self->watch);
    /* zgossip ends by itself on SIGINT, and its farewell signal may already have been read
       as a message: do not wait for it forever. */
    if (self->gossip)
        zsock_set_rcvtimeo(zactor_sock(self->gossip), self->dead ? 0 : 1000);
    zactor_destroy(&self->gossip);
    for (int i = 0; i < self->nseeds; i++)
        free(self->seeds[i]);
    free(self->value);
    free(self);
    *self_p = NULL;
}

const char *discovery_bound(discovery_t *self)
{
    return self->bound;
}

bool discovery_has_remote_seed(discovery_t *self)
{
    for (int i = 0; i < self->nseeds; i++)
        if (!s_is_ours(self, i))
            return true;
    return false;
}

void discovery_announce(discovery_t *self, const char *key, const char *value)
{
    snprintf(self->key, sizeof(self->key), "%s", key);
    free(self->value);
    self->value = strdup(value);
    if (self->gossip) /* else announced by the actor's restart */
        zstr_sendx(self->gossip, "PUBLISH", key, value, NULL);
}

zsock_t *discovery_socket(discovery_t *self)
{
    return self->gossip ? zactor_sock(self->gossip) : NULL;
}

zsock_t *discovery_watch_socket(discovery_t *self)
{
    return self->watch_events;
}

static void s_renew(discovery_t *self);

int discovery_recv(discovery_t *self, char **key, char **value)
{
    *key = *value = NULL;
    zmsg_t *msg = zmsg_recv(self->gossip);
    if (!msg)
        return -1;
    if (zmsg_signal(msg) >= 0) { /* the actor's farewell: it ended (see s_configure) */
        zmsg_destroy(&msg);
        self->dead = true;
        if (zsys_interrupted)
            return -1; /* zgossip also ends on SIGINT/SIGTERM: the node is stopping */
        zsys_warning("weft[%s]: the gossip service stopped (zgossip ends on a message it "
                     "cannot parse); restarting it", self->name);
        /* At once, so that a seed we hold is bound again before another process takes the
           port; a gossip service that keeps dying is revived by discovery_tick only. */
        if (zclock_mono() - self->revived_ms >= 1000)
            s_renew(self);
        return -1;
    }
    char *cmd = zmsg_popstr(msg);
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

/*  Replaces the gossip actor by a fresh one, connected to every seed it does not hold, with
    our tuple announced: to rejoin a seed that restarted (a node that holds no seed), or after
    the actor ended. A seed held before is bound again on the same port (it is released when
    the ended actor's ROUTER closes, shortly after its farewell); if that fails, nothing is held
    for now and discovery_tick tries again. The seeds' holders learn our tuples again from the
    fresh actor's HELLO and PUBLISH; clients of our seed reconnect by themselves. */
static void s_renew(discovery_t *self)
{
    self->revived_ms = zclock_mono();
    bool held = self->bound[0] != 0;
    self->bound[0] = 0;
    if (self->gossip) /* a live actor answers its $TERM; an ended one never will */
        zsock_set_rcvtimeo(zactor_sock(self->gossip), self->dead ? 0 : 1000);
    zactor_destroy(&self->gossip);
    self->gossip = zactor_new(zgossip, self->name);
    if (!self->gossip) {
        zsys_error("weft[%s]: cannot restart the gossip service", self->name);
        self->dead = true; /* discovery_tick tries again */
        return;
    }
    s_configure(self->gossip);
    self->dead = false;
    if (held) {
        for (int i = 0; i < 50 && !s_can_bind(self->held); i++)
            zclock_sleep(2);
        if (!s_bind(self, self->held))
            zsys_warning("weft[%s]: cannot bind the gossip seed %s again yet", self->name,
                         self->held);
    }
    for (int i = 0; i < self->nseeds; i++)
        if (!s_is_ours(self, i))
            zstr_sendx(self->gossip, "CONNECT", self->seeds[i], NULL);
    if (self->value)
        zstr_sendx(self->gossip, "PUBLISH", self->key, self->value, NULL);
}

bool discovery_handle_watch(discovery_t *self)
{
    zmsg_t *msg = zmsg_recv(self->watch_events);
    if (!msg)
        return false;
    zframe_t *ev = zmsg_first(msg);
    zframe_t *addr = zmsg_next(msg);
    bool rejoined = false;
    if (ev && addr && zframe_size(ev) >= 2) {
        uint16_t event;
        memcpy(&event, zframe_data(ev), 2);
        char *endpoint = zframe_strdup(addr);
        for (int i = 0; i < self->nseeds; i++) {
            if (strcmp(self->seeds[i], endpoint) != 0 || s_is_ours(self, i))
                continue;
            if (event == ZMQ_EVENT_DISCONNECTED) {
                self->seen_down[i] = true;
            } else if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED && self->seen_down[i]) {
                self->seen_down[i] = false;
                zsys_info("weft[%s]: gossip seed %s came back; rejoining", self->name,
                          self->seeds[i]);
                if (self->bound[0]) {
                    /* We hold a seed ourselves and must not drop it: a new CONNECT makes
                       zgossip open a fresh link and say HELLO (the old link stays idle). */
                    zstr_sendx(self->gossip, "CONNECT", self->seeds[i], NULL);
                } else {
                    s_renew(self); /* a fresh gossip actor: HELLO to every seed, announce */
                }
                rejoined = true;
            }
        }
        zstr_free(&endpoint);
    }
    zmsg_destroy(&msg);
    return rejoined;
}

bool discovery_tick(discovery_t *self)
{
    if (self->dead) {
        if (zsys_interrupted)
            return false;
        s_renew(self);
        if (self->dead)
            return false;
        if (self->bound[0])
            return true;
    }
    if (self->bound[0])
        return false;
    const char *want = NULL;
    if (self->held[0])
        want = s_can_bind(self->held) ? self->held : NULL; /* ours, lost when our gossip
                                                                service ended */
    else if (self->explicit_bind[0])
        want = self->explicit_bind;
    else if (self->auto_bind && self->nseeds && s_is_local(self->seeds[0]) &&
             s_can_bind(self->seeds[0]))
        want = self->seeds[0];
    if (!want || !s_bind(self, want))
        return false;
    /* We were a client of that seed; as its holder we keep every tuple we learned and serve
       them to whoever connects. */
    zsys_info("weft[%s]: now holding the gossip seed %s", self->name, self->bound);
    zsock_disconnect(self->watch, "%s", self->bound);
    return true;
}

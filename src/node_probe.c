/*  node_probe.c - finding a live peer again after a partition.

    A node disconnects its publisher from a learned peer as soon as the peer is marked down
    (heartbeats missed): its port may soon belong to another process, which must not receive
    our events. When the peer was only unreachable for a while (a network partition, a process
    starved of CPU) and both sides did the same, nothing flows between them any more and
    neither would hear the other's heartbeat again. So, while a down peer is remembered
    (peers/disconnect_after), the node sends a control PING to the peer's control endpoint,
    first PROBE_FIRST_MS after it went down, then at doubling intervals up to PROBE_GAP_MAX_MS.
    A reply from the same instance connects the publisher to the peer's SUB endpoint again:
    our heartbeats reach it, it connects back, and its heartbeats mark it up. A reply from
    another instance means the endpoint now belongs to someone else: the old record is
    forgotten. Probes are asynchronous (at most PROBES_MAX at once, each with its own DEALER),
    so the actor never waits for an answer.
*/
#include "node_actor.h"

#include <inttypes.h>
#include <msgpack.h>

#include "ctl_proto.h"
#include "mp_guard.h"

#define PROBE_FIRST_MS 1000
#define PROBE_GAP_MAX_MS 8000
#define PROBE_TIMEOUT_MS 2000

static bool s_probing(const self_t *self, uint64_t inst)
{
    for (int i = 0; i < self->nprobes; i++)
        if (self->probes[i].inst == inst)
            return true;
    return false;
}

static void s_probe_end(self_t *self, int i)
{
    weft_ctl_destroy(&self->probes[i].ctl);
    self->probes[i] = self->probes[--self->nprobes];
}

static void s_probe_start(self_t *self, peer_t *p, int64_t now)
{
    int err;
    weft_ctl_t *ctl = weft_ctl_new(p->ctl, &err);
    if (!ctl)
        return;
    int64_t id = weft_ctl_send(ctl, "PING", NULL, 0);
    if (id < 0) {
        weft_ctl_destroy(&ctl);
        return;
    }
    self->probes[self->nprobes++] = (node_probe_t){p->inst, ctl, (uint64_t)id,
                                                   now + PROBE_TIMEOUT_MS};
}

void node_probe_tick(self_t *self, int64_t now)
{
    for (peer_t *p = peers_first(self->peers); p; p = peers_next(self->peers)) {
        if (p->state != PEER_DOWN || p->connected || !p->ctl[0] || !p->sub[0]) {
            p->next_probe_ms = 0;
            p->probe_gap_ms = 0;
            continue;
        }
        if (p->next_probe_ms == 0) {
            p->probe_gap_ms = PROBE_FIRST_MS;
            p->next_probe_ms = now + p->probe_gap_ms;
            continue;
        }
        if (now < p->next_probe_ms || self->nprobes == PROBES_MAX || s_probing(self, p->inst))
            continue;
        s_probe_start(self, p, now);
        p->probe_gap_ms = p->probe_gap_ms * 2 > PROBE_GAP_MAX_MS ? PROBE_GAP_MAX_MS
                                                                 : p->probe_gap_ms * 2;
        p->next_probe_ms = now + p->probe_gap_ms;
    }
}

/*  The inst of a PING reply body, 0 when it has none. */
static uint64_t s_reply_inst(const weft_reply_t *reply)
{
    uint64_t inst = 0;
    if (mp_guard_check(reply->body, reply->body_size, 0, NULL) != 0)
        return 0;
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    if (msgpack_unpack_next(&u, (const char *)reply->body, reply->body_size, &off) ==
            MSGPACK_UNPACK_SUCCESS &&
        ctl_arg_uint(&u.data, "inst", &inst) != 0)
        inst = 0;
    msgpack_unpacked_destroy(&u);
    return inst;
}

void node_probe_poll(self_t *self, int64_t now)
{
    for (int i = self->nprobes - 1; i >= 0; i--) {
        node_probe_t *pr = &self->probes[i];
        weft_reply_t reply;
        int rc = weft_ctl_recv(pr->ctl, pr->id, 0, &reply);
        if (rc == WEFT_ETIMEOUT && now < pr->deadline)
            continue;
        peer_t *p = peers_lookup(self->peers, pr->inst);
        if (rc == WEFT_OK && p && strcmp(reply.status, "OK") == 0) {
            uint64_t inst = s_reply_inst(&reply);
            if (inst == p->inst) {
                if (p->state == PEER_DOWN && !p->connected) {
                    zsys_info("weft[%s]: peer %s (%016" PRIx64 ") answers on %s: connecting "
                              "to it again",
                              self->node->name, p->name, p->inst, p->ctl);
                    node_actor_peer_connect(self, p);
                }
            } else if (inst) {
                zsys_info("weft[%s]: %s now belongs to another node (%016" PRIx64 "): peer "
                          "%s (%016" PRIx64 ") is forgotten",
                          self->node->name, p->ctl, inst, p->name, p->inst);
                node_actor_peer_disconnect(self, p);
                peers_forget(self->peers, pr->inst);
            }
        }
        weft_reply_clear(&reply);
        s_probe_end(self, i);
    }
}

void node_probe_stop(self_t *self)
{
    while (self->nprobes > 0)
        s_probe_end(self, self->nprobes - 1);
}

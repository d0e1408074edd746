/*  heartbeat.h - the payload of `_weft.hb`, sent by every node every heartbeat/interval.

    A msgpack map (docs/protocol.md, "Heartbeat"):
      name, role, fabric, inst, pid, host, uptime_ms, hb_ms, seq (last data seq published),
      sub, ctl (endpoints), peers_up, peers_down,
      counters: {published, received, delivered, dropped, gaps, repaired, handler_errors,
                 dead_lettered, malformed, ctl_requests, ctl_errors},
      outbox: {events, bytes, first_seq},
      svc (role service endpoint, "" if none),
      topics: [[topic, pub_events, pub_bytes, recv_events, recv_bytes], ...] (top 32 + "_other"),
      latency: {unit, le, counts, count, sum} (publish ts -> receipt, data events),
      sources: [[src, inst, last_seq, last_ts, gaps], ...] (the 64 most recently heard;
               last_ts = publish ts of the last event received from it)
    plus role-specific keys added by the role (archiver, DLQ).
*/
#ifndef WEFT_HEARTBEAT_H_INCLUDED
#define WEFT_HEARTBEAT_H_INCLUDED

#include <msgpack.h>

#include "node_internal.h"

/*  Packs this node's heartbeat into sb (cleared first). more (may be NULL) adds the actor's
    sections (topics, latency, sources): it packs key/value pairs into pk and adds their number
    to *count. The node's role hook (weft_node_set_heartbeat_extra) is called too. */
void heartbeat_pack(weft_node_t *node, msgpack_sbuffer *sb,
                    void (*more)(void *arg, msgpack_packer *pk, uint32_t *count), void *arg);

/*  The fields a receiving node needs from a heartbeat. */
typedef struct {
    uint64_t inst;
    uint64_t seq;
    uint64_t hb_ms;
    char name[WEFT_NAME_MAX + 1];
    char role[32];
    char sub[256];
    char ctl[256];
    char svc[256];
    char fabric[WEFT_FABRIC_MAX + 1]; /* "weft" when the heartbeat has none */
} heartbeat_info_t;

/*  Reads a heartbeat payload (untrusted). Returns 0, or WEFT_EMALFORMED. */
int heartbeat_read(const void *data, size_t size, heartbeat_info_t *info);

#endif

/*  outbox.h - the bounded ring of a node's most recent published events.

    Every event a node publishes is copied here, frames as sent, so that a receiver that saw a
    gap in the node's seq can FETCH what it missed. The events live back to back in one byte
    ring of max_bytes bytes allocated at creation (no allocation per event), indexed by a ring
    of max_events slots; the oldest events are evicted first, when the slots run out or when a
    new event's bytes would overwrite them. Seqs are consecutive by construction, so an event
    is found by arithmetic, not search. The layout is drawn in outbox.c.

    Not thread-safe: the node serialises access with its publish lock.
*/
#ifndef WEFT_OUTBOX_H_INCLUDED
#define WEFT_OUTBOX_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

typedef struct outbox_t outbox_t;

/*  One stored event; pointers valid until the next outbox_put or outbox_destroy. */
typedef struct {
    uint64_t seq;
    const char *topic;
    size_t topic_size;
    const uint8_t *envelope;
    size_t envelope_size;
    const uint8_t *payload;
    size_t payload_size;
} outbox_event_t;

/*  Creates an outbox holding at most max_events events and max_bytes bytes (both >= 1); the
    byte ring (max_bytes) and the slots are allocated here. Returns NULL when out of memory. */
outbox_t *outbox_new(size_t max_events, size_t max_bytes);

/*  Frees the outbox and sets *self_p to NULL. Safe on NULL. */
void outbox_destroy(outbox_t **self_p);

/*  Stores a copy of an event. seq must be last_seq + 1 (or anything when empty); otherwise
    the outbox is emptied first, so it always holds one consecutive run. Evicts the oldest
    events to make room: a free slot, and contiguous bytes for the event (an event never wraps
    around the end of the ring, so up to one event's size may be left unused there and the
    outbox can hold a little less than max_bytes). Returns 0, or -1 when the event alone is
    larger than max_bytes (it is then not stored and the outbox is left as it was). */
int outbox_put(outbox_t *self, uint64_t seq, const char *topic, size_t topic_size,
               const uint8_t *envelope, size_t envelope_size, const uint8_t *payload,
               size_t payload_size);

/*  The seqs held: *first..*last, both 0 when empty. Returns the number of events held. */
size_t outbox_range(const outbox_t *self, uint64_t *first, uint64_t *last);

/*  Bytes currently held (frames only). */
size_t outbox_bytes(const outbox_t *self);

/*  Looks up one event by seq. Returns 0 and fills ev, or -1 when not held. */
int outbox_get(const outbox_t *self, uint64_t seq, outbox_event_t *ev);

#endif

/*  outbox.c - see outbox.h. One byte ring, allocated once, holds the events back to back;
    a ring of slots indexes them. The byte ring after the writes have wrapped once:

        0                                                                       max_bytes
        +--------------+-----------+----------+-----------+-----+-------------+-------+
        | seq s+k-1    | seq s+k   |   free   | seq s     | ... | seq s+k-2   |  gap  |
        +--------------+-----------+----------+-----------+-----+-------------+-------+
                                   ^          ^                               ^
                                   wpos       the oldest event (slot head)    s+k-1 did not
                                   (next write)                               fit: unused

        one event:  [topic bytes][envelope bytes][payload bytes]

        slots (max_events, a ring too): slot (head + i) % max_events describes seq
        first_seq + i: its virtual start (below) and its three frame sizes.

    Each event is [topic][envelope][payload], contiguous: it never straddles the end of the
    ring. An event that does not fit between wpos and the end goes to offset 0 instead, and the
    bytes it skips (the gap) stay unused until the write position passes them again. Writing
    evicts the oldest events its bytes would overwrite; the count limit evicts one more when
    all slots are in use.

    To decide what to evict without circular interval arithmetic, every byte written gets a
    virtual address that only grows (vend, the end of the newest event; a skipped gap counts
    too), and a slot keeps its event's virtual start. The ring holds one window of max_bytes
    virtual bytes: an event stays while newest_end - its_start <= max_bytes. Its physical
    offset is its virtual start modulo max_bytes.

    Eviction is O(1) per event (advance head), putting costs one copy of the event, and there
    is no allocation after outbox_new. The ring can hold a little less than max_bytes at once:
    up to one event's size minus one byte may sit in the gap.

    The ring and the slots are anonymous mappings. Each one of at most OUTBOX_PRETOUCH_MAX
    bytes has its pages made present at creation (MAP_POPULATE), so the first pass of
    publishing through the outbox takes no page faults under the publish lock (each costs
    microseconds; a ring filled with small events faults every few dozen puts). That costs the
    full size in resident memory from the start, and the time to zero it; a larger ring faults
    its pages in as it fills.
*/
#include "outbox.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define OUTBOX_PRETOUCH_MAX ((size_t)64 << 20)

typedef struct {
    uint64_t vstart;          /* virtual address of the event's first byte */
    uint32_t topic_size;
    uint32_t envelope_size;
    uint32_t payload_size;
} slot_t;

struct outbox_t {
    uint8_t *ring;            /* max_bytes bytes, mapped */
    size_t max_bytes;
    slot_t *slots;            /* ring of max_events slots, mapped */
    size_t cap;               /* max_events */
    size_t head;              /* slot of the oldest event */
    size_t count;             /* events held */
    size_t bytes;             /* frame bytes held (gaps not counted) */
    uint64_t first_seq;       /* seq of slots[head] */
    uint64_t vend;            /* virtual address just past the newest event */
    size_t wpos;              /* vend % max_bytes: where the next event would start */
};

/*  Zeroed memory of n bytes, an anonymous mapping: its pages present up front when n is at
    most OUTBOX_PRETOUCH_MAX, else committed as they are first written (as heap memory would
    be), so a large outbox/bytes costs only what is used. NULL when out of memory. */
static void *s_map(size_t n)
{
    int flags = MAP_PRIVATE | MAP_ANONYMOUS |
                (n <= OUTBOX_PRETOUCH_MAX ? MAP_POPULATE : MAP_NORESERVE);
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, flags, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static void s_unmap(void *p, size_t n)
{
    if (p)
        munmap(p, n);
}

outbox_t *outbox_new(size_t max_events, size_t max_bytes)
{
    if (max_events == 0 || max_bytes == 0)
        return NULL;
    if (max_events > SIZE_MAX / sizeof(slot_t))
        return NULL;
    outbox_t *self = calloc(1, sizeof(*self));
    if (!self)
        return NULL;
    self->slots = s_map(max_events * sizeof(slot_t));
    self->ring = s_map(max_bytes);
    if (!self->slots || !self->ring) {
        s_unmap(self->slots, max_events * sizeof(slot_t));
        s_unmap(self->ring, max_bytes);
        free(self);
        return NULL;
    }
    self->cap = max_events;
    self->max_bytes = max_bytes;
    return self;
}

static size_t s_slot_bytes(const slot_t *s)
{
    return (size_t)s->topic_size + s->envelope_size + s->payload_size;
}

static void s_evict_oldest(outbox_t *self)
{
    self->bytes -= s_slot_bytes(&self->slots[self->head]);
    self->head = self->head + 1 == self->cap ? 0 : self->head + 1;
    self->count--;
    self->first_seq++;
}

static void s_clear(outbox_t *self)
{
    self->head = 0;
    self->count = 0;
    self->bytes = 0;
    self->first_seq = 0;
    self->vend = 0;
    self->wpos = 0;
}

void outbox_destroy(outbox_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    outbox_t *self = *self_p;
    s_unmap(self->ring, self->max_bytes);
    s_unmap(self->slots, self->cap * sizeof(slot_t));
    free(self);
    *self_p = NULL;
}

int outbox_put(outbox_t *self, uint64_t seq, const char *topic, size_t topic_size,
               const uint8_t *envelope, size_t envelope_size, const uint8_t *payload,
               size_t payload_size)
{
    if (topic_size > UINT32_MAX || envelope_size > UINT32_MAX || payload_size > UINT32_MAX)
        return -1;
    size_t need = topic_size + envelope_size + payload_size;
    if (need > self->max_bytes)
        return -1;
    if (self->count && seq != self->first_seq + self->count)
        s_clear(self);

    /* Where it goes: at wpos, or at 0 when it would run past the end of the ring. */
    uint64_t vstart = self->vend;
    size_t pos = self->wpos;
    if (need > self->max_bytes - pos) {
        vstart += self->max_bytes - pos;
        pos = 0;
    }
    uint64_t vend = vstart + need;
    /* Make room: a free slot, and no held event in the bytes about to be written. */
    while (self->count &&
           (self->count == self->cap || vend - self->slots[self->head].vstart > self->max_bytes))
        s_evict_oldest(self);
    if (self->count == 0)
        self->first_seq = seq;

    uint8_t *blob = self->ring + pos;
    if (topic_size)
        memcpy(blob, topic, topic_size);
    if (envelope_size)
        memcpy(blob + topic_size, envelope, envelope_size);
    if (payload_size)
        memcpy(blob + topic_size + envelope_size, payload, payload_size);

    size_t i = self->head + self->count;
    slot_t *s = &self->slots[i >= self->cap ? i - self->cap : i];
    s->vstart = vstart;
    s->topic_size = (uint32_t)topic_size;
    s->envelope_size = (uint32_t)envelope_size;
    s->payload_size = (uint32_t)payload_size;
    self->count++;
    self->bytes += need;
    self->vend = vend;
    self->wpos = pos + need == self->max_bytes ? 0 : pos + need;
    return 0;
}

size_t outbox_range(const outbox_t *self, uint64_t *first, uint64_t *last)
{
    *first = self->count ? self->first_seq : 0;
    *last = self->count ? self->first_seq + self->count - 1 : 0;
    return self->count;
}

size_t outbox_bytes(const outbox_t *self)
{
    return self->bytes;
}

int outbox_get(const outbox_t *self, uint64_t seq, outbox_event_t *ev)
{
    if (self->count == 0 || seq < self->first_seq || seq - self->first_seq >= self->count)
        return -1;
    size_t i = self->head + (size_t)(seq - self->first_seq);
    const slot_t *s = &self->slots[i >= self->cap ? i - self->cap : i];
    const uint8_t *blob = self->ring + (size_t)(s->vstart % self->max_bytes);
    ev->seq = seq;
    ev->topic = (const char *)blob;
    ev->topic_size = s->topic_size;
    ev->envelope = blob + s->topic_size;
    ev->envelope_size = s->envelope_size;
    ev->payload = blob + s->topic_size + s->envelope_size;
    ev->payload_size = s->payload_size;
    return 0;
}

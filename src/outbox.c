/*  outbox.c - see outbox.h. A ring of slots, each with one malloc'd blob holding
    topic | envelope | payload back to back:

        slot[(head + i) % cap]  ->  blob: [topic bytes][envelope bytes][payload bytes]
                                     seq = first_seq + i
*/
#include "outbox.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    uint8_t *blob;
    uint32_t topic_size;
    uint32_t envelope_size;
    uint32_t payload_size;
} slot_t;

struct outbox_t {
    slot_t *slots;       /* ring of max_events slots */
    size_t cap;          /* max_events */
    size_t max_bytes;
    size_t head;         /* index of the oldest event */
    size_t count;        /* events held */
    size_t bytes;        /* sum of blob sizes held */
    uint64_t first_seq;  /* seq of slots[head] */
};

outbox_t *outbox_new(size_t max_events, size_t max_bytes)
{
    if (max_events == 0 || max_bytes == 0)
        return NULL;
    outbox_t *self = calloc(1, sizeof(*self));
    if (!self)
        return NULL;
    self->slots = calloc(max_events, sizeof(slot_t));
    if (!self->slots) {
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
    slot_t *s = &self->slots[self->head];
    self->bytes -= s_slot_bytes(s);
    free(s->blob);
    memset(s, 0, sizeof(*s));
    self->head = (self->head + 1) % self->cap;
    self->count--;
    self->first_seq++;
}

static void s_clear(outbox_t *self)
{
    while (self->count)
        s_evict_oldest(self);
    self->first_seq = 0;
}

void outbox_destroy(outbox_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    outbox_t *self = *self_p;
    s_clear(self);
    free(self->slots);
    free(self);
    *self_p = NULL;
}

int outbox_put(outbox_t *self, uint64_t seq, const char *topic, size_t topic_size,
               const uint8_t *envelope, size_t envelope_size, const uint8_t *payload,
               size_t payload_size)
{
    size_t need = topic_size + envelope_size + payload_size;
    if (need > self->max_bytes || payload_size > UINT32_MAX)
        return -1;
    if (self->count && seq != self->first_seq + self->count)
        s_clear(self);
    uint8_t *blob = malloc(need ? need : 1);
    if (!blob)
        return -1;
    memcpy(blob, topic, topic_size);
    memcpy(blob + topic_size, envelope, envelope_size);
    if (payload_size)
        memcpy(blob + topic_size + envelope_size, payload, payload_size);
    while (self->count && (self->count == self->cap || self->bytes + need > self->max_bytes))
        s_evict_oldest(self);
    if (self->count == 0)
        self->first_seq = seq;
    slot_t *s = &self->slots[(self->head + self->count) % self->cap];
    s->blob = blob;
    s->topic_size = (uint32_t)topic_size;
    s->envelope_size = (uint32_t)envelope_size;
    s->payload_size = (uint32_t)payload_size;
    self->count++;
    self->bytes += need;
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
    const slot_t *s = &self->slots[(self->head + (seq - self->first_seq)) % self->cap];
    ev->seq = seq;
    ev->topic = (const char *)s->blob;
    ev->topic_size = s->topic_size;
    ev->envelope = s->blob + s->topic_size;
    ev->envelope_size = s->envelope_size;
    ev->payload = s->blob + s->topic_size + s->envelope_size;
    ev->payload_size = s->payload_size;
    return 0;
}

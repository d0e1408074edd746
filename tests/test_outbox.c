/*  test_outbox.c - unit tests for the outbox (src/outbox.h): consecutive puts and lookups,
    eviction by event count and by bytes, wrap-around of the byte ring, events too big to
    hold, the reset on a seq that does not follow, and lookups of evicted or unknown seqs.

    The property test runs thousands of random operations against a reference model that
    places events the simple way: each event in one contiguous span of a ring of max_bytes
    bytes, right after the previous one or at offset 0 when it would run past the end, the
    oldest events dropped while the slots are full or while any held event overlaps the span.
    (Events there are never empty; t_empty_events pins down what happens to those.)
    After every operation the outbox must hold exactly the model's seqs, byte total and bytes.
    Independently of the model, it must never hold more than its limits, and never lose an
    event that a plain byte budget of max_bytes minus the largest event would have kept.
*/
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "outbox.h"
#include "testing.h"

/* ---- events with contents derived from their seq ------------------------------------- */

static uint8_t s_byte(uint64_t seq, int frame, size_t i)
{
    return (uint8_t)(seq * 131 + (uint64_t)frame * 37 + i * 7 + (i >> 8));
}

static void s_fill(uint8_t *buf, uint64_t seq, int frame, size_t n)
{
    for (size_t i = 0; i < n; i++)
        buf[i] = s_byte(seq, frame, i);
}

static bool s_check(const uint8_t *buf, uint64_t seq, int frame, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (buf[i] != s_byte(seq, frame, i))
            return false;
    return true;
}

/* Puts event seq with frames of the given sizes (contents from s_byte). */
static int s_put(outbox_t *ob, uint64_t seq, size_t t, size_t e, size_t p)
{
    static uint8_t tb[70000], eb[70000], pb[70000];
    if (t > sizeof(tb) || e > sizeof(eb) || p > sizeof(pb))
        abort();
    s_fill(tb, seq, 0, t);
    s_fill(eb, seq, 1, e);
    s_fill(pb, seq, 2, p);
    return outbox_put(ob, seq, (const char *)tb, t, eb, e, pb, p);
}

/* Whether seq is held with frames of the given sizes and the right contents. */
static bool s_has(const outbox_t *ob, uint64_t seq, size_t t, size_t e, size_t p)
{
    outbox_event_t ev;
    if (outbox_get(ob, seq, &ev) != 0)
        return false;
    return ev.seq == seq && ev.topic_size == t && ev.envelope_size == e &&
           ev.payload_size == p && s_check((const uint8_t *)ev.topic, seq, 0, t) &&
           s_check(ev.envelope, seq, 1, e) && s_check(ev.payload, seq, 2, p);
}

static bool s_range_is(const outbox_t *ob, uint64_t first, uint64_t last, size_t count)
{
    uint64_t f, l;
    size_t n = outbox_range(ob, &f, &l);
    if (n != count || f != first || l != last) {
        fprintf(stderr, "  range %" PRIu64 "..%" PRIu64 " (%zu), expected %" PRIu64
                        "..%" PRIu64 " (%zu)\n",
                f, l, n, first, last, count);
        return false;
    }
    return true;
}

/* ---- cases --------------------------------------------------------------------------- */

TEST_CASE("an outbox needs at least one event and one byte", t_new_limits)
{
    CHECK(outbox_new(0, 100) == NULL);
    CHECK(outbox_new(10, 0) == NULL);
    outbox_t *ob = outbox_new(1, 1);
    CHECK(ob != NULL);
    CHECK(s_range_is(ob, 0, 0, 0));
    CHECK_EQ_INT(outbox_bytes(ob), 0);
    outbox_destroy(&ob);
    CHECK(ob == NULL);
    outbox_destroy(&ob); /* safe on NULL */
    outbox_destroy(NULL);
}

TEST_CASE("consecutive puts are all held and read back by seq", t_consecutive)
{
    outbox_t *ob = outbox_new(100, 1 << 20);
    CHECK(ob != NULL);
    size_t total = 0;
    for (uint64_t seq = 1; seq <= 50; seq++) {
        CHECK_EQ_INT(s_put(ob, seq, 5 + seq % 7, 60 + seq, seq * 3), 0);
        total += 5 + seq % 7 + 60 + seq + seq * 3;
    }
    CHECK(s_range_is(ob, 1, 50, 50));
    CHECK_EQ_INT(outbox_bytes(ob), total);
    for (uint64_t seq = 1; seq <= 50; seq++)
        CHECK(s_has(ob, seq, 5 + seq % 7, 60 + seq, seq * 3));
    outbox_event_t ev;
    CHECK_EQ_INT(outbox_get(ob, 0, &ev), -1);
    CHECK_EQ_INT(outbox_get(ob, 51, &ev), -1);
    CHECK_EQ_INT(outbox_get(ob, UINT64_MAX, &ev), -1);
    outbox_destroy(&ob);

    /* the first seq may be anything, empty frames included */
    ob = outbox_new(4, 64);
    CHECK(ob != NULL);
    CHECK_EQ_INT(s_put(ob, 1000, 0, 0, 0), 0);
    CHECK_EQ_INT(s_put(ob, 1001, 1, 0, 0), 0);
    CHECK_EQ_INT(s_put(ob, 1002, 0, 0, 3), 0);
    CHECK(s_range_is(ob, 1000, 1002, 3));
    CHECK(s_has(ob, 1000, 0, 0, 0) && s_has(ob, 1001, 1, 0, 0) && s_has(ob, 1002, 0, 0, 3));
    CHECK_EQ_INT(outbox_bytes(ob), 4);
    outbox_destroy(&ob);
}

TEST_CASE("the count limit evicts the oldest events", t_evict_by_count)
{
    outbox_t *ob = outbox_new(5, 1 << 20);
    CHECK(ob != NULL);
    for (uint64_t seq = 1; seq <= 12; seq++) {
        CHECK_EQ_INT(s_put(ob, seq, 4, 20, 10), 0);
        uint64_t first = seq > 5 ? seq - 4 : 1;
        CHECK(s_range_is(ob, first, seq, (size_t)(seq - first + 1)));
        CHECK_EQ_INT(outbox_bytes(ob), (seq - first + 1) * 34);
    }
    outbox_event_t ev;
    CHECK_EQ_INT(outbox_get(ob, 7, &ev), -1);
    for (uint64_t seq = 8; seq <= 12; seq++)
        CHECK(s_has(ob, seq, 4, 20, 10));
    outbox_destroy(&ob);

    ob = outbox_new(1, 1000); /* one slot: every put replaces the last event */
    CHECK(ob != NULL);
    for (uint64_t seq = 1; seq <= 3; seq++) {
        CHECK_EQ_INT(s_put(ob, seq, 1, 2, 3), 0);
        CHECK(s_range_is(ob, seq, seq, 1));
        CHECK(s_has(ob, seq, 1, 2, 3));
        CHECK_EQ_INT(outbox_bytes(ob), 6);
    }
    outbox_destroy(&ob);
}

TEST_CASE("the byte limit evicts the oldest events, and an event never wraps around the "
          "end of the ring",
          t_evict_by_bytes)
{
    /* 30-byte events in 100 bytes: three fit; the fourth does not fit in the 10 bytes left
       at the end, goes to offset 0 and takes the place of the first. */
    outbox_t *ob = outbox_new(100, 100);
    CHECK(ob != NULL);
    for (uint64_t seq = 1; seq <= 3; seq++)
        CHECK_EQ_INT(s_put(ob, seq, 5, 15, 10), 0);
    CHECK(s_range_is(ob, 1, 3, 3));
    CHECK_EQ_INT(s_put(ob, 4, 5, 15, 10), 0);
    CHECK(s_range_is(ob, 2, 4, 3));
    CHECK_EQ_INT(outbox_bytes(ob), 90);
    for (uint64_t seq = 2; seq <= 4; seq++)
        CHECK(s_has(ob, seq, 5, 15, 10));
    outbox_event_t ev;
    CHECK_EQ_INT(outbox_get(ob, 4, &ev), 0);
    CHECK_EQ_INT(outbox_get(ob, 2, &ev), 0);
    /* 5 goes to 30..60, over 2 */
    CHECK_EQ_INT(s_put(ob, 5, 5, 15, 10), 0);
    CHECK(s_range_is(ob, 3, 5, 3));
    /* a 70-byte event needs 60..130: it goes to 0 and evicts 3 (60..90), 4 (0..30) and 5 */
    CHECK_EQ_INT(s_put(ob, 6, 10, 30, 30), 0);
    CHECK(s_range_is(ob, 6, 6, 1));
    CHECK_EQ_INT(outbox_bytes(ob), 70);
    CHECK(s_has(ob, 6, 10, 30, 30));
    /* 7 (30 bytes) fits at 70..100, right after 6 */
    CHECK_EQ_INT(s_put(ob, 7, 5, 15, 10), 0);
    CHECK(s_range_is(ob, 6, 7, 2));
    CHECK_EQ_INT(outbox_bytes(ob), 100);
    CHECK(s_has(ob, 6, 10, 30, 30) && s_has(ob, 7, 5, 15, 10));
    outbox_destroy(&ob);

    /* events that exactly fill the ring: the next one starts at 0 again */
    ob = outbox_new(100, 90);
    CHECK(ob != NULL);
    for (uint64_t seq = 1; seq <= 3; seq++)
        CHECK_EQ_INT(s_put(ob, seq, 5, 15, 10), 0);
    CHECK_EQ_INT(outbox_bytes(ob), 90);
    CHECK_EQ_INT(s_put(ob, 4, 5, 15, 10), 0);
    CHECK(s_range_is(ob, 2, 4, 3));
    CHECK(s_has(ob, 2, 5, 15, 10) && s_has(ob, 3, 5, 15, 10) && s_has(ob, 4, 5, 15, 10));
    outbox_destroy(&ob);
}

TEST_CASE("an event larger than the ring is refused and leaves the outbox as it was",
          t_too_big)
{
    outbox_t *ob = outbox_new(10, 100);
    CHECK(ob != NULL);
    for (uint64_t seq = 1; seq <= 3; seq++)
        CHECK_EQ_INT(s_put(ob, seq, 5, 15, 10), 0);
    CHECK_EQ_INT(s_put(ob, 4, 1, 50, 50), -1);
    CHECK(s_range_is(ob, 1, 3, 3));
    CHECK_EQ_INT(outbox_bytes(ob), 90);
    CHECK_EQ_INT(s_put(ob, 99, 1, 50, 50), -1); /* not consecutive, but refused first */
    CHECK(s_range_is(ob, 1, 3, 3));
    for (uint64_t seq = 1; seq <= 3; seq++)
        CHECK(s_has(ob, seq, 5, 15, 10));
    /* seq 4 was not stored, so 5 does not follow the run: the outbox starts again at 5 */
    CHECK_EQ_INT(s_put(ob, 5, 5, 15, 10), 0);
    CHECK(s_range_is(ob, 5, 5, 1));
    /* an event of exactly max_bytes is held, alone */
    CHECK_EQ_INT(s_put(ob, 6, 0, 40, 60), 0);
    CHECK(s_range_is(ob, 6, 6, 1));
    CHECK(s_has(ob, 6, 0, 40, 60));
    CHECK_EQ_INT(outbox_bytes(ob), 100);
    CHECK_EQ_INT(s_put(ob, 7, 1, 0, 0), 0);
    CHECK(s_range_is(ob, 7, 7, 1));
    outbox_destroy(&ob);

    ob = outbox_new(3, 1); /* a one-byte ring */
    CHECK(ob != NULL);
    CHECK_EQ_INT(s_put(ob, 1, 1, 0, 0), 0);
    CHECK_EQ_INT(s_put(ob, 2, 0, 0, 0), 0);
    CHECK_EQ_INT(s_put(ob, 3, 0, 1, 0), 0);
    CHECK(s_range_is(ob, 2, 3, 2));
    CHECK_EQ_INT(s_put(ob, 4, 1, 1, 0), -1);
    CHECK(s_range_is(ob, 2, 3, 2));
    CHECK(s_has(ob, 2, 0, 0, 0) && s_has(ob, 3, 0, 1, 0));
    outbox_destroy(&ob);
}

TEST_CASE("a seq that does not follow the run empties the outbox first", t_reset)
{
    outbox_t *ob = outbox_new(10, 1000);
    CHECK(ob != NULL);
    for (uint64_t seq = 1; seq <= 5; seq++)
        CHECK_EQ_INT(s_put(ob, seq, 3, 10, 20), 0);
    CHECK_EQ_INT(s_put(ob, 10, 3, 10, 21), 0); /* a jump forward */
    CHECK(s_range_is(ob, 10, 10, 1));
    CHECK_EQ_INT(outbox_bytes(ob), 34);
    outbox_event_t ev;
    CHECK_EQ_INT(outbox_get(ob, 5, &ev), -1);
    CHECK(s_has(ob, 10, 3, 10, 21));
    CHECK_EQ_INT(s_put(ob, 11, 3, 10, 22), 0);
    CHECK(s_range_is(ob, 10, 11, 2));
    CHECK_EQ_INT(s_put(ob, 3, 3, 10, 23), 0); /* backwards */
    CHECK(s_range_is(ob, 3, 3, 1));
    CHECK_EQ_INT(s_put(ob, 3, 3, 10, 24), 0); /* the same seq again */
    CHECK(s_range_is(ob, 3, 3, 1));
    CHECK(s_has(ob, 3, 3, 10, 24));
    CHECK_EQ_INT(outbox_bytes(ob), 37);
    outbox_destroy(&ob);
}

TEST_CASE("lookups of evicted, future and unknown seqs fail", t_get_missing)
{
    outbox_t *ob = outbox_new(4, 1000);
    CHECK(ob != NULL);
    outbox_event_t ev;
    CHECK_EQ_INT(outbox_get(ob, 0, &ev), -1); /* empty */
    CHECK_EQ_INT(outbox_get(ob, 1, &ev), -1);
    for (uint64_t seq = 100; seq < 110; seq++)
        CHECK_EQ_INT(s_put(ob, seq, 2, 2, 2), 0);
    CHECK(s_range_is(ob, 106, 109, 4));
    for (uint64_t seq = 0; seq < 120; seq++)
        CHECK_EQ_INT(outbox_get(ob, seq, &ev), seq >= 106 && seq <= 109 ? 0 : -1);
    CHECK_EQ_INT(outbox_get(ob, UINT64_MAX, &ev), -1);
    outbox_destroy(&ob);
}

TEST_CASE("an empty event is held while the events written after it add up to at most "
          "max_bytes",
          t_empty_events)
{
    outbox_t *ob = outbox_new(10, 10);
    CHECK(ob != NULL);
    CHECK_EQ_INT(s_put(ob, 1, 2, 3, 5), 0); /* fills the ring */
    CHECK_EQ_INT(s_put(ob, 2, 0, 0, 0), 0);
    CHECK(s_range_is(ob, 1, 2, 2));
    CHECK_EQ_INT(s_put(ob, 3, 1, 0, 0), 0); /* overwrites 1 */
    CHECK(s_range_is(ob, 2, 3, 2));
    CHECK_EQ_INT(s_put(ob, 4, 0, 9, 0), 0); /* 10 bytes after 2 */
    CHECK(s_range_is(ob, 2, 4, 3));
    CHECK(s_has(ob, 2, 0, 0, 0) && s_has(ob, 3, 1, 0, 0) && s_has(ob, 4, 0, 9, 0));
    CHECK_EQ_INT(s_put(ob, 5, 0, 0, 1), 0); /* 11 bytes after 2: 2 and 3 go */
    CHECK(s_range_is(ob, 4, 5, 2));
    CHECK_EQ_INT(outbox_bytes(ob), 10);
    outbox_destroy(&ob);
}

/* ---- the property test --------------------------------------------------------------- */

typedef struct {
    uint64_t seq;
    size_t off, len;
    size_t t, e, p;
} mev_t;

/* The reference model: events as explicit spans of a ring of max_bytes bytes. */
typedef struct {
    size_t max_events, max_bytes;
    mev_t ev[512];
    size_t n;
    size_t next_off; /* where the next event goes if it fits before the end */
} model_t;

static void m_drop_oldest(model_t *m)
{
    memmove(m->ev, m->ev + 1, (m->n - 1) * sizeof(mev_t));
    m->n--;
}

/* Whether writing [off, off + len) would overwrite a held event (the property test never
   puts empty events: an empty event overwrites nothing and is not overwritten). */
static bool m_overlaps_any(const model_t *m, size_t off, size_t len)
{
    for (size_t i = 0; i < m->n; i++)
        if (off < m->ev[i].off + m->ev[i].len && m->ev[i].off < off + len)
            return true;
    return false;
}

static int m_put(model_t *m, uint64_t seq, size_t t, size_t e, size_t p)
{
    size_t need = t + e + p;
    if (need > m->max_bytes)
        return -1;
    if (m->n && seq != m->ev[m->n - 1].seq + 1) {
        m->n = 0;
        m->next_off = 0;
    }
    if (m->n == m->max_events)
        m_drop_oldest(m);
    size_t off = m->next_off + need > m->max_bytes ? 0 : m->next_off;
    while (m->n && m_overlaps_any(m, off, need))
        m_drop_oldest(m);
    m->ev[m->n++] = (mev_t){seq, off, need, t, e, p};
    m->next_off = off + need == m->max_bytes ? 0 : off + need;
    return 0;
}

/* Compares the outbox with the model: seqs, byte total, every event's frames. */
static bool s_matches(const outbox_t *ob, const model_t *m)
{
    uint64_t first, last;
    size_t n = outbox_range(ob, &first, &last);
    if (n != m->n)
        return false;
    if (n && (first != m->ev[0].seq || last != m->ev[n - 1].seq))
        return false;
    size_t bytes = 0;
    for (size_t i = 0; i < m->n; i++) {
        const mev_t *ev = &m->ev[i];
        bytes += ev->len;
        if (!s_has(ob, ev->seq, ev->t, ev->e, ev->p))
            return false;
    }
    outbox_event_t oe;
    if (n && (outbox_get(ob, first - 1, &oe) == 0 || outbox_get(ob, last + 1, &oe) == 0))
        return false;
    return outbox_bytes(ob) == bytes;
}

static void s_dump(const outbox_t *ob, const model_t *m)
{
    uint64_t first, last;
    size_t n = outbox_range(ob, &first, &last);
    fprintf(stderr, "    outbox: %" PRIu64 "..%" PRIu64 " (%zu events, %zu bytes)\n    model: ",
            first, last, n, outbox_bytes(ob));
    for (size_t i = 0; i < m->n; i++)
        fprintf(stderr, "%" PRIu64 "@%zu+%zu ", m->ev[i].seq, m->ev[i].off, m->ev[i].len);
    fprintf(stderr, "(next %zu)\n", m->next_off);
}

/* Random frame sizes: mostly small, some near the ring size, some frames empty (never all
   three). */
static void s_random_sizes(uint64_t *rng, size_t max_bytes, size_t *t, size_t *e, size_t *p)
{
    uint64_t r = (*rng = *rng * 6364136223846793005ULL + 1442695040888963407ULL) >> 16;
    size_t budget;
    switch (r % 10) {
    case 0: budget = 1; break;
    case 1: budget = max_bytes + (r >> 8) % 3; break;         /* at or just over the limit */
    case 2: budget = max_bytes / 2 + (r >> 8) % (max_bytes / 2 + 1); break;
    default: budget = (r >> 8) % (max_bytes / 4 + 2); break;
    }
    if (budget == 0)
        budget = 1;
    *t = (r >> 20) % (budget < 256 ? budget + 1 : 256);
    *e = (r >> 30) % (budget - *t + 1);
    *p = budget - *t - *e;
}

TEST_CASE("thousands of random puts with mixed sizes wrap the ring and match a reference "
          "model of contiguous placement, and never hold more than the limits nor less than "
          "a byte budget of max_bytes minus the largest event",
          t_property)
{
    static const size_t rings[] = {1, 7, 64, 100, 257, 1000, 4096, 65536};
    static const size_t slots[] = {1, 2, 3, 10, 50, 500};
    enum { OPS = 4000 };
    static model_t m;
    static size_t run[OPS]; /* sizes of the events stored since the run last restarted */
    uint64_t rng = 42;
    size_t ops = 0, wraps = 0, refused = 0, jumps = 0;
    for (size_t r = 0; r < sizeof(rings) / sizeof(rings[0]); r++) {
        for (size_t s = 0; s < sizeof(slots) / sizeof(slots[0]); s++) {
            outbox_t *ob = outbox_new(slots[s], rings[r]);
            CHECK(ob != NULL);
            memset(&m, 0, sizeof(m));
            m.max_events = slots[s];
            m.max_bytes = rings[r];
            uint64_t seq = 1 + rng % 1000, prev = 0;
            size_t run_n = 0, largest = 0;
            for (int i = 0; i < OPS; i++) {
                rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
                if ((rng >> 33) % 100 == 0) { /* now and then a seq that does not follow */
                    seq += 2 + (rng >> 40) % 5;
                    jumps++;
                }
                size_t t, e, p;
                s_random_sizes(&rng, rings[r], &t, &e, &p);
                size_t need = t + e + p, was_next = m.next_off;
                int want = m_put(&m, seq, t, e, p);
                int got = s_put(ob, seq, t, e, p);
                ops++;
                if (got != want)
                    fprintf(stderr, "  ring %zu slots %zu op %d: put gave %d, model %d\n",
                            rings[r], slots[s], i, got, want);
                CHECK_EQ_INT(got, want);
                if (!s_matches(ob, &m)) {
                    fprintf(stderr, "  ring %zu slots %zu op %d (seq %" PRIu64
                                    ", %zu bytes): outbox and model differ\n",
                            rings[r], slots[s], i, seq, need);
                    s_dump(ob, &m);
                    CHECK(false);
                }
                CHECK(outbox_bytes(ob) <= rings[r]);
                uint64_t first, last;
                size_t held = outbox_range(ob, &first, &last);
                CHECK(held <= slots[s]);
                if (got != 0) {
                    refused++;
                    seq++; /* skipped: the next put restarts the run */
                    continue;
                }
                wraps += m.ev[m.n - 1].off == 0 && was_next != 0;
                if (run_n == 0 || seq != prev + 1)
                    run_n = largest = 0;
                run[run_n++] = need;
                largest = need > largest ? need : largest;
                prev = seq++;
                /* The floor: the newest events whose sizes add up to at most max_bytes minus
                   the largest event of the run are all held (at most one gap, smaller than
                   the event after it, lies among them), unless the slots run out first. */
                size_t floor_count = 0, sum = 0;
                while (floor_count < run_n) {
                    sum += run[run_n - 1 - floor_count];
                    if (sum + largest > rings[r])
                        break;
                    floor_count++;
                }
                if (floor_count > slots[s])
                    floor_count = slots[s];
                if (held < floor_count)
                    fprintf(stderr, "  ring %zu slots %zu op %d: holds %zu, floor %zu\n",
                            rings[r], slots[s], i, held, floor_count);
                CHECK(held >= floor_count);
            }
            outbox_destroy(&ob);
        }
    }
    fprintf(stderr, "  %zu puts: %zu refused, %zu seq jumps, %zu wraps to offset 0\n", ops,
            refused, jumps, wraps);
    CHECK(ops >= 100000 && refused > 1000 && jumps > 1000 && wraps > 1000);
}

int main(void)
{
    RUN_CASE("an outbox needs at least one event and one byte", t_new_limits);
    RUN_CASE("consecutive puts are all held and read back by seq", t_consecutive);
    RUN_CASE("the count limit evicts the oldest events", t_evict_by_count);
    RUN_CASE("the byte limit evicts the oldest events, and an event never wraps around the "
             "end of the ring",
             t_evict_by_bytes);
    RUN_CASE("an event larger than the ring is refused and leaves the outbox as it was",
             t_too_big);
    RUN_CASE("a seq that does not follow the run empties the outbox first", t_reset);
    RUN_CASE("lookups of evicted, future and unknown seqs fail", t_get_missing);
    RUN_CASE("an empty event is held while the events written after it add up to at most "
             "max_bytes",
             t_empty_events);
    RUN_CASE("thousands of random puts with mixed sizes wrap the ring and match a reference "
             "model of contiguous placement, and never hold more than the limits nor less "
             "than a byte budget of max_bytes minus the largest event",
             t_property);
    return TEST_EXIT();
}

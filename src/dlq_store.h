/*  dlq_store.h - the DLQ's LMDB store of dead letters.

    A letter is an event a subscriber failed to handle, with the subscriber, the error, the
    attempts so far and when to try again. Letters are keyed by a letter id (16 bytes,
    time-ordered like event ids, and strictly increasing in the order letters are stored) and
    found by (event id, subscriber) so that PUT is idempotent.

    Named databases (all integers big-endian, so byte order is numeric order):
      letters      letter id (16)                          -> letter record (below)
      by_key       event id (16) + subscriber bytes        -> letter id (16)
      by_retry     next_retry_at (u64 BE ns) + letter id   -> empty   (pending only)
      by_sub       subscriber + 0x00 + letter id           -> empty
      by_topic     topic + 0x00 + letter id                -> empty
      meta         "format" -> u32 BE (1); "counts" -> 4 x u64 BE (pending, retrying, parked,
                   resolved)

    Letter record: a msgpack map (fields of dlq_letter_t, event frames as bin), so the format
    can grow; decoded with mp_guard first like every msgpack input.

    Threads: one writer (the DLQ's thread); any call here opens and closes its own
    transaction. Not for use by several writers at once.

    Map: starts at DLQ_MAP_SIZE_DEFAULT (address space, not disk) and doubles on MDB_MAP_FULL up
    to DLQ_MAP_SIZE_LIMIT; a write that does not fit then fails with WEFT_ENOMEM. Failures
    leave a one-line reason in dlq_store_last_error.
*/
#ifndef WEFT_DLQ_STORE_H_INCLUDED
#define WEFT_DLQ_STORE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "weft/envelope.h"

typedef enum {
    DLQ_PENDING = 0,   /* waiting for next_retry_at */
    DLQ_RETRYING,      /* a REDELIVER is in flight */
    DLQ_PARKED,        /* max attempts reached: waits for an operator */
    DLQ_RESOLVED,      /* handled successfully on a redelivery (kept until purged) */
} dlq_state_t;

#define DLQ_SUBSCRIBER_MAX 255
#define DLQ_CODE_MAX 63
#define DLQ_MESSAGE_MAX 1023

typedef struct {
    uint8_t id[WEFT_ID_SIZE];          /* letter id */
    uint8_t event_id[WEFT_ID_SIZE];    /* the event's id (from its envelope) */
    char subscriber[DLQ_SUBSCRIBER_MAX + 1]; /* "<node name>/<subscription name>" */
    char node[WEFT_NAME_MAX + 1];      /* the subscriber's node name, for REDELIVER */
    char topic[WEFT_TOPIC_MAX + 1];
    char code[DLQ_CODE_MAX + 1];       /* last error code */
    char message[DLQ_MESSAGE_MAX + 1]; /* last error message */
    uint32_t attempts;                 /* handler calls that failed so far (local + DLQ) */
    uint32_t redeliveries;             /* REDELIVERs sent by the DLQ */
    int64_t first_failure;             /* ns */
    int64_t last_failure;              /* ns */
    int64_t next_retry_at;             /* ns; meaningful when pending */
    dlq_state_t state;
    /* the event as received: pointers into memory owned by whoever filled the struct */
    const uint8_t *envelope;
    size_t envelope_size;
    const uint8_t *payload;
    size_t payload_size;
} dlq_letter_t;

typedef struct dlq_store_t dlq_store_t;

#define DLQ_FORMAT 1                        /* meta "format" this build reads and writes */
#define DLQ_LOCK_FILE "weft-dlq.lock"
#define DLQ_MAP_SIZE_DEFAULT (1ull << 30)   /* 1 GiB */
#define DLQ_MAP_SIZE_LIMIT (1ull << 36)     /* 64 GiB: growth ceiling */

/*  Opens (creating) the store in dir; exclusive flock on DIR/weft-dlq.lock ("in use by another
    DLQ (pid N)" otherwise); refuses an unknown format. sync_always: fsync every commit;
    false: MDB_NOSYNC, commits survive a crash of the process but an OS crash may undo the
    last ones, so the DLQ node then calls dlq_store_sync every second itself.
    Returns NULL with *err and why on failure. */
dlq_store_t *dlq_store_open(const char *dir, bool sync_always, int *err, char *why, size_t cap);
void dlq_store_close(dlq_store_t **self_p);

/*  Forces the committed writes to disk (for sync_always false). Returns 0 or WEFT_ECONFIG. */
int dlq_store_sync(dlq_store_t *self);

/*  The reason of the last failure, as a sentence ("" when none); the buffer is the store's. */
const char *dlq_store_last_error(const dlq_store_t *self);

/*  Sets the map size now (raised to what the data needs) and the growth ceiling (0:
    DLQ_MAP_SIZE_LIMIT). For configuration and tests. Returns 0, WEFT_EINVAL or an error. */
int dlq_store_set_map_size(dlq_store_t *self, uint64_t size, uint64_t max);

/*  Stores a new letter, or finds the existing one for (event_id, subscriber). For a new letter
    the id is generated (greater than every id before it, see dlq_store_last_id), state
    pending, next_retry_at as given. An existing letter that is resolved is reopened (pending,
    attempts and error updated); an existing open letter is left as is. *created tells which.
    The letter's id is copied to id_out. Returns 0 or an error.
    Reopening takes attempts, code, message, last_failure and next_retry_at from letter and
    resets redeliveries to 0; the id, first_failure and the stored event stay. Errors:
    WEFT_EINVAL (empty subscriber, unterminated string, NULL frame with a size), WEFT_ETOPIC,
    WEFT_ETOOBIG (a frame over 4 GiB - 1), WEFT_ENOMEM (map full at its ceiling),
    WEFT_EMALFORMED (the existing letter is damaged), WEFT_ECONFIG. */
int dlq_store_put(dlq_store_t *self, const dlq_letter_t *letter, uint8_t id_out[WEFT_ID_SIZE],
                  bool *created);

/*  Reads a letter (with its event) into *out; the event pointers point into *buf, which the
    caller frees with free(). Returns 0, WEFT_ENOTFOUND, WEFT_EMALFORMED (damaged record). */
int dlq_store_get(dlq_store_t *self, const uint8_t id[WEFT_ID_SIZE], dlq_letter_t *out,
                  uint8_t **buf);

/*  Rewrites a letter's mutable fields (state, attempts, redeliveries, code, message,
    last_failure, next_retry_at), keeping indexes right. Returns 0, WEFT_ENOTFOUND. */
int dlq_store_update(dlq_store_t *self, const dlq_letter_t *letter);

/*  Deletes a letter and its index entries. Returns 0, WEFT_ENOTFOUND. A damaged letter is
    deleted too: its index entries are found by scanning and the counts are recomputed. */
int dlq_store_delete(dlq_store_t *self, const uint8_t id[WEFT_ID_SIZE]);

/*  Filters for listing, retrying and purging; zero/empty fields match everything. */
typedef struct {
    const char *subscriber;     /* exact */
    const char *topic_prefix;
    int state;                  /* -1: any; else a dlq_state_t */
    const char *code;           /* exact */
    int64_t older_than_ns;      /* first_failure older than now - this (0: any) */
} dlq_filter_t;

/*  Calls fn for letters matching f, in letter id order (= first failure order), starting after
    cursor (NULL: from the start), at most limit. fn gets the letter without its event
    (envelope/payload NULL). Sets *next_cursor (may be NULL) to the last visited id and *more
    to whether more may follow. Returns the number visited.
    fn returning non-zero stops the listing after that letter; fn may be NULL; limit 0: no
    limit. fn runs outside any transaction, so it may call update or delete. Damaged records
    are skipped. */
size_t dlq_store_list(dlq_store_t *self, const dlq_filter_t *f, int64_t now_ns,
                      const uint8_t *cursor, size_t limit,
                      int (*fn)(const dlq_letter_t *l, void *arg), void *arg,
                      uint8_t next_cursor[WEFT_ID_SIZE], bool *more);

/*  The pending letters due at now_ns (next_retry_at <= now), oldest first, at most max: ids
    copied to ids. Returns how many. */
size_t dlq_store_due(dlq_store_t *self, int64_t now_ns, uint8_t (*ids)[WEFT_ID_SIZE], size_t max);

/*  Earliest next_retry_at of a pending letter, or 0 when none. */
int64_t dlq_store_next_due(dlq_store_t *self);

typedef struct {
    uint64_t pending, retrying, parked, resolved;
} dlq_counts_t;

/*  The highest letter id the store holds or has given out since it was opened (all zero when
    it never held a letter). Every letter stored before the call has an id <= this one, every
    letter stored after it a greater id, also within the same millisecond: the exact bound
    between the two, for work that must cover only the letters present when it started. */
void dlq_store_last_id(dlq_store_t *self, uint8_t id[WEFT_ID_SIZE]);

/*  Counts by state (kept in meta, O(1)). */
void dlq_store_counts(dlq_store_t *self, dlq_counts_t *c);

const char *dlq_store_state_name(dlq_state_t s); /* "pending", ... */
int dlq_store_state_parse(const char *text);    /* -1 when unknown */

#endif

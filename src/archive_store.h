/*  archive_store.h - the LMDB storage layer of the archiver.

    The archiver node receives every event it is configured for and hands them here in batches;
    this module stores them in one LMDB environment (a directory) and answers the look-ups that
    replay, GET, FETCH and INFO need. It knows nothing about sockets: the archiver's ingest thread
    is the one writer, its replay threads are the readers, and tools such as `weft archive info`
    open the same directory read-only from another process.

    Each event gets an offset on arrival: 1, 2, 3... strictly increasing, never reused (also
    across restarts and after retention removed everything). Events are stored as received
    (topic, envelope, payload frames, no re-encoding) with the receive time, and indexed by
    (inst, seq), by id, by topic and (sparsely) by receive time. Archiving is idempotent: an
    event whose (inst, seq) or id is already stored is skipped and counted as a duplicate, so
    repairs and replicas never store an event twice.

    Named databases in the environment (all integer keys are 8-byte big-endian, so byte order
    is numeric order):

        events     offset                          -> record (layout drawn in archive_store.c)
        by_source  inst | seq          (seq > 0)   -> offset
        by_id      id (16 bytes)                   -> offset
        by_topic   topic | 0x00 | offset           -> (empty)
        by_time    batch time (see archive_store.c) -> offset of the batch's first event
        meta       "format" u32 (1), "created" i64 ns, "next_offset" u64, "bytes" u64

    Thread rules, in short:
    - One writer: archive_store_append, archive_store_trim and archive_store_sync are meant for
      one thread (the ingest thread). Append and trim are serialised internally, so a second
      thread calling them is safe but waits; sync may run beside them.
    - Readers: any number of threads, each with its own archive_reader_t (a reader belongs to one
      thread from archive_reader_begin to archive_reader_end; it may move to another thread in
      between). A thread may hold several readers at once.
    - Read transactions must be SHORT: begin, read a batch, copy what must outlive it, end. While
      any read transaction is open the writer cannot grow the map (it waits for it), and an open
      read transaction pins the pages of its snapshot, so the file cannot reuse them. Never block
      on the network or on another thread between archive_reader_begin and archive_reader_end.
    - Never call append or trim from a thread that has a reader begun on the same store: if the
      map then has to grow, the call fails with WEFT_ESTATE instead of waiting for itself.
    - Open a directory once per process (a second open in the same process is refused): LMDB's
      locks are per process, and closing a second handle would silently drop the first one's.

    Every function returns a weft_err_t code; LMDB and errno codes never come out. The reason of
    a store-level failure is kept in archive_store_last_error, a reader's in
    archive_reader_last_error.
*/
#ifndef WEFT_ARCHIVE_STORE_H_INCLUDED
#define WEFT_ARCHIVE_STORE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ARCHIVE_FORMAT 1                  /* meta "format" this build reads and writes */
#define ARCHIVE_LOCK_FILE "weft-archive.lock"
#define ARCHIVE_MAP_SIZE_DEFAULT (1ull << 30)   /* 1 GiB: address space, not disk */
#define ARCHIVE_MAP_SIZE_LIMIT (1ull << 40)     /* 1 TiB: growth ceiling when max_map_size is 0 */
#define ARCHIVE_SCAN_MAX_TOPICS 256       /* distinct matching topics merged via by_topic */

typedef struct archive_store_t archive_store_t;
typedef struct archive_reader_t archive_reader_t;

/*  What a committed append promises.

    ARCHIVE_SYNC_ALWAYS    LMDB's default durability: every commit is fsync'ed (data, then the
                           meta page) before archive_store_append returns. A committed batch
                           survives a process crash, kill -9, an OS crash and a power loss.
                           Costs one or two fsyncs per batch: batch generously.
    ARCHIVE_SYNC_INTERVAL  MDB_NOSYNC: commits are written to the file (OS page cache) but not
                           flushed; the archiver calls archive_store_sync every second. A
                           committed batch survives a process crash or kill -9 at once; an OS
                           crash or power loss may undo the commits made since the last
                           archive_store_sync (about one second). The archive stays consistent
                           (LMDB keeps atomicity and consistency, only durability is deferred),
                           provided the filesystem preserves write order.
    ARCHIVE_SYNC_NONE      MDB_NOSYNC | MDB_NOMETASYNC: nothing is flushed by the archiver (a
                           clean close still syncs once); the OS writes pages back when it
                           chooses. Survives a process crash or kill -9 (the pages are in the
                           page cache); an OS crash or power loss may lose any commits not yet
                           written back, with the same consistency caveat as INTERVAL. */
typedef enum { ARCHIVE_SYNC_ALWAYS, ARCHIVE_SYNC_INTERVAL, ARCHIVE_SYNC_NONE } archive_sync_t;

typedef struct {
    const char *dir;       /* the archive directory; created (with parents) unless read_only */
    uint64_t map_size;     /* initial map size in bytes, 0 = ARCHIVE_MAP_SIZE_DEFAULT. An
                              existing archive that grew earlier keeps its larger size. */
    uint64_t max_map_size; /* growth ceiling on MDB_MAP_FULL; 0 = ARCHIVE_MAP_SIZE_LIMIT;
                              a value below map_size means "never grow" */
    archive_sync_t sync;   /* durability of commits, see archive_sync_t */
    bool read_only;        /* MDB_RDONLY, no lock file, no writes; for tools and tests */
} archive_opts_t;

/*  Opens (creating when needed) the archive in opts->dir. A writable open:
    - creates the directory if missing, then takes a non-blocking exclusive flock on
      DIR/weft-archive.lock and writes its pid there; if another process (or another open in
      this process) holds it, fails with WEFT_ESTATE and "archive DIR is in use by another
      archiver (pid N)";
    - gives a new, empty archive format 1 and its creation time.
    A read_only open takes no lock, needs the archive to exist (WEFT_ENOTFOUND otherwise), and
    may run beside a writer in another process.
    Both clear stale reader slots of dead processes (mdb_reader_check) and refuse an archive of
    another format with WEFT_EVERSION and "archive DIR has format version N; this build reads
    version 1". Other errors: WEFT_EINVAL (opts or dir NULL/empty), WEFT_ESTATE (directory
    already open in this process), WEFT_ECONFIG (directory unusable: permissions, not a
    directory, not a weft archive, corrupt), WEFT_ENOMEM.
    Returns the store (the caller owns it: archive_store_close), or NULL with *err (if err is
    not NULL) set and a one-line reason in why (if why is not NULL, truncated to why_cap). */
archive_store_t *archive_store_open(const archive_opts_t *opts, int *err, char *why,
                                    size_t why_cap);

/*  Syncs (writable stores), closes the environment, releases the lock and frees the store;
    sets *self_p to NULL. Safe on NULL and on *self_p == NULL. Every reader of the store must
    have been destroyed first, and no other thread may be using the store. */
void archive_store_close(archive_store_t **self_p);

/*  The reason of the last failed append, trim or sync, as a sentence ("" when none). The
    buffer belongs to the store; read it from the writer thread, right after the failure. */
const char *archive_store_last_error(const archive_store_t *s);

/* ---- writing (one writer thread) ---------------------------------------------------------- */

/*  One event to append. Pointers are borrowed for the duration of the call only. inst, seq and
    id must be the values inside the envelope (the archiver decoded them from it): retention
    finds the index entries again by decoding the stored envelope (an envelope that does not
    decode would leave its by_id and by_source entries behind when its event is removed). */
typedef struct {
    const char *topic;       /* frame 0, 1..255 bytes, passes weft_topic_check */
    size_t topic_size;
    const uint8_t *envelope; /* frame 1, as received, at most 4 GiB - 1 */
    size_t envelope_size;
    const uint8_t *payload;  /* frame 2, as received; may be NULL when payload_size is 0 */
    size_t payload_size;
    uint64_t inst;           /* source instance */
    uint64_t seq;            /* per-instance sequence; 0 = fabric event, not indexed by source */
    const uint8_t *id;       /* 16 bytes: the event id */
    int64_t recv_ts;         /* receive time, ns since the Unix epoch (any int64 is allowed) */
} archive_in_t;

typedef struct {
    uint64_t appended;     /* events stored by this call */
    uint64_t duplicates;   /* events skipped: (inst, seq) or id already stored, or earlier in
                              the same batch */
    uint64_t first_offset; /* offsets given to the stored events, consecutive; 0 when none */
    uint64_t last_offset;
} archive_append_result_t;

/*  Appends a batch of n events in ONE write transaction (group commit), in the given order,
    skipping duplicates. With ARCHIVE_SYNC_ALWAYS the batch is on disk when this returns.
    On MDB_MAP_FULL the transaction is aborted, the map doubled (up to max_map_size; this waits
    until no read transaction is open in this process) and the batch retried once; if it still
    does not fit the call fails with WEFT_ENOMEM, nothing of the batch is stored, and the
    map_full counter (archive_store_info) goes up: make room with archive_store_trim or a larger
    max_map_size. Other errors: WEFT_EINVAL (s/res NULL, events NULL with n > 0, id NULL),
    WEFT_ETOPIC (a topic fails weft_topic_check; nothing stored), WEFT_ETOOBIG (an envelope
    over 4 GiB - 1), WEFT_ESTATE (read-only store; or the map must grow while this thread holds
    a reader), WEFT_ECONFIG (I/O or LMDB failure: see archive_store_last_error). On any error
    nothing of the batch is stored and *res is all zero. n == 0 is a no-op.
    Cost: per event one B-tree insert per index (4, or 3 for seq 0) plus the MDB_APPEND of the
    record; the dominant cost with ARCHIVE_SYNC_ALWAYS is the fsync per call. */
int archive_store_append(archive_store_t *s, const archive_in_t *events, size_t n,
                         archive_append_result_t *res);

/*  Repair bookkeeping written in the same transaction as a batch. An archiver that sees a seq
    jump owes the source the missing range until a repair has fetched it; recording the debt
    with the event that revealed it (and clearing it with the repaired events) means a crash
    can never forget it: a restarted archiver reads what is still owed (archive_repairs_each)
    and asks again.
      done false: inst owes from..to (a range already owed from the same `from` keeps the
                  larger `to`);
      done true:  every owed range of inst lying inside from..to is cleared. */
typedef struct {
    uint64_t inst, from, to;
    bool done;
} archive_repair_op_t;

/*  archive_store_append, plus nops repair operations applied after the events, in the same
    transaction (committed even when every event was a duplicate or n is 0). Errors as
    archive_store_append; WEFT_EINVAL also for ops NULL with nops > 0. */
int archive_store_append_ops(archive_store_t *s, const archive_in_t *events, size_t n,
                             const archive_repair_op_t *ops, size_t nops,
                             archive_append_result_t *res);

/*  Forces the written commits to disk (mdb_env_sync with force). The archiver calls it every
    second with ARCHIVE_SYNC_INTERVAL; harmless with the other policies. WEFT_ESTATE on a
    read-only store, WEFT_ECONFIG when the sync fails (the reason in last_error). */
int archive_store_sync(archive_store_t *s);

/* ---- reading (any thread, one reader per thread at a time) ---------------------------------- */

/*  One stored event. Pointers point into the LMDB map: valid only until archive_reader_end
    (or destroy) of the reader that produced it. Copy what must live longer. */
typedef struct {
    uint64_t offset;
    int64_t recv_ts;
    const char *topic; /* not NUL-terminated */
    size_t topic_size;
    const uint8_t *envelope;
    size_t envelope_size;
    const uint8_t *payload;
    size_t payload_size;
} archive_rec_t;

/*  Creates a reader on s (no transaction yet). Returns NULL when out of memory or s is NULL.
    The caller owns it and destroys it before closing the store. */
archive_reader_t *archive_reader_new(archive_store_t *s);

/*  Ends the reader's transaction if one is open, frees it, sets *r to NULL. Safe on NULL. Must
    run on the thread that began the open transaction, if any. */
void archive_reader_destroy(archive_reader_t **r);

/*  Starts a read transaction: a consistent snapshot of every commit made so far. A reader that
    is already begun is first ended (so this also means "refresh"). Waits while the writer grows
    the map. Returns WEFT_OK, or WEFT_ECONFIG / WEFT_ESTATE when LMDB refuses (reason in
    archive_reader_last_error). All look-ups below need a begun reader (WEFT_ESTATE otherwise).
    Cheap: the transaction object is reused (mdb_txn_renew). */
int archive_reader_begin(archive_reader_t *r);

/*  Ends (resets) the read transaction; every archive_rec_t from it becomes invalid. Safe when
    not begun. Keep the span between begin and end short (see the thread rules above). */
void archive_reader_end(archive_reader_t *r);

/*  The reason of the reader's last failure ("" when none); buffer owned by the reader. */
const char *archive_reader_last_error(const archive_reader_t *r);

/*  Reads the event at offset. WEFT_ENOTFOUND when no such offset is stored (never assigned,
    or removed by retention), WEFT_EMALFORMED when the stored record is damaged. */
int archive_read(archive_reader_t *r, uint64_t offset, archive_rec_t *rec);

/*  Offset of the event with this id, or WEFT_ENOTFOUND. */
int archive_find_id(archive_reader_t *r, const uint8_t id[16], uint64_t *offset);

/*  Offset of the event (inst, seq), or WEFT_ENOTFOUND (also for seq 0: not indexed). */
int archive_find_source(archive_reader_t *r, uint64_t inst, uint64_t seq, uint64_t *offset);

/*  First offset whose recv_ts >= ts_ns, exactly, even when receive times went backwards. Uses
    by_time to skip whole batches that end before ts_ns, then scans events (about one batch).
    WEFT_ENOTFOUND when no stored event is that recent. */
int archive_seek_time(archive_reader_t *r, int64_t ts_ns, uint64_t *offset);

/*  Called for each event of a scan; return 0 to continue, non-zero to stop (the event counts
    as visited). rec's pointers stay valid until archive_reader_end, like archive_read's. fn
    must not begin, end or destroy the reader it is called from. */
typedef int(archive_scan_fn)(const archive_rec_t *rec, void *arg);

/*  Visits the events with from <= offset <= to (to = UINT64_MAX: to the end of the snapshot)
    in offset order, only those whose topic starts with one of the prefixes (nprefixes 0, or an
    empty prefix among them: all topics), at most max_events of them (0 = no limit).
    Sets *next_offset (if not NULL) to where the next scan should start: the visited offset + 1
    when it stopped on max_events or on fn, otherwise the end of the examined range + 1
    (min(to, last offset assigned in the snapshot) + 1, and at least from), so a live replay
    can keep calling with from = *next_offset.
    With prefixes, only matching events are read: the distinct topics under each prefix are
    found in by_topic (one seek per topic), each gets a cursor, and the cursors are merged by
    offset. With more than ARCHIVE_SCAN_MAX_TOPICS distinct matching topics it scans events
    and filters instead (same result, reads everything in range).
    Returns WEFT_OK (also when nothing matched or fn stopped), WEFT_EINVAL (to < from, fn
    NULL, a NULL prefix), WEFT_ESTATE (not begun), WEFT_ENOMEM, WEFT_ECONFIG/WEFT_EMALFORMED
    (LMDB failure or damaged record). */
int archive_scan(archive_reader_t *r, uint64_t from, uint64_t to, const char *const *prefixes,
                 size_t nprefixes, size_t max_events, archive_scan_fn *fn, void *arg,
                 uint64_t *next_offset);

/*  Highest stored seq of source inst, 0 when none is stored (never seen, or all removed by
    retention). One seek. */
int archive_source_hwm(archive_reader_t *r, uint64_t inst, uint64_t *seq);

/*  Calls fn(inst, hwm, arg) for each source with stored sequenced events, in inst order (two
    seeks per source, not one per event). Stops early and returns fn's value if it is
    non-zero; WEFT_OK otherwise. */
int archive_sources_each(archive_reader_t *r, int (*fn)(uint64_t inst, uint64_t hwm, void *arg),
                         void *arg);

/*  Calls fn(inst, from, to, arg) for each range still owed (archive_repair_op_t), in (inst,
    from) order. Stops early and returns fn's value if it is non-zero; WEFT_OK otherwise (also
    for an archive written before owed repairs were recorded). */
int archive_repairs_each(archive_reader_t *r,
                         int (*fn)(uint64_t inst, uint64_t from, uint64_t to, void *arg),
                         void *arg);

/* ---- info and retention ---------------------------------------------------------------------- */

typedef struct {
    uint64_t first_offset;  /* oldest stored offset, 0 when empty */
    uint64_t last_offset;   /* newest stored offset, 0 when empty */
    uint64_t events;        /* events stored */
    uint64_t bytes_on_disk; /* size of DIR/data.mdb (the file only grows; freed pages are reused) */
    uint64_t map_size;      /* current map size (address space reserved) */
    uint64_t map_full;      /* batches refused because the map was full and could not grow */
    uint64_t format;        /* meta "format" */
    uint64_t bytes;         /* total stored record bytes (what max_bytes retention counts) */
    uint64_t map_grows;     /* times this process grew the map */
} archive_info_t;

/*  Fills info from a short read transaction of its own (so it may see newer commits than a
    reader the calling thread holds). Any thread. Returns WEFT_OK, WEFT_EINVAL, or WEFT_ECONFIG
    when LMDB fails. */
int archive_store_info(archive_store_t *s, archive_info_t *info);

typedef struct {
    int64_t max_age_ns;  /* remove events with now - recv_ts > max_age_ns; 0 = no limit */
    uint64_t max_bytes;  /* keep total record bytes <= max_bytes; 0 = no limit */
    uint64_t max_events; /* keep at most max_events events; 0 = no limit */
} archive_retention_t;

typedef struct {
    uint64_t removed;      /* events removed by this call */
    uint64_t first_offset; /* oldest offset still stored after the call, 0 when empty */
    bool more;             /* a limit is still exceeded: call again (later) */
} archive_trim_result_t;

/*  Removes the OLDEST events, from the first offset on, while any limit of r is exceeded, at
    most max_per_txn of them (0 is taken as 1), in one write transaction that deletes them from
    every index. res->more tells the caller to come back, so ingest never waits behind a big
    delete. Removal is strictly oldest-first: with max_age_ns it stops at the first event that
    is young enough even if a later one (clock step) is older. If the map is full, the delete
    itself may need pages: the map is grown if allowed, else fewer events are removed.
    Writer thread. Errors: WEFT_EINVAL, WEFT_ESTATE (read-only), WEFT_ENOMEM (map full, even one
    event cannot be removed), WEFT_ECONFIG (LMDB failure; reason in last_error). */
int archive_store_trim(archive_store_t *s, const archive_retention_t *r, int64_t now_ns,
                       size_t max_per_txn, archive_trim_result_t *res);

#endif

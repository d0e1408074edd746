/*  node_stats.h - the figures a node reports in its heartbeats beyond plain counters: events
    and bytes per topic (published and received), and a histogram of delivery latency (publish
    ts to receipt). The monitor, `weft stat` and the Prometheus exporter read them.

    Bounded: a topic table tracks at most `max` topics; events on further topics are added to
    one "_other" row. Heartbeats carry the top N topics by events plus a remainder row, so their
    size stays bounded however many topics there are.

    Not thread-safe: the publish table lives under the node's publish lock, the receive table
    and the histogram on the node's thread.
*/
#ifndef WEFT_NODE_STATS_H_INCLUDED
#define WEFT_NODE_STATS_H_INCLUDED

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#define TOPIC_TABLE_MAX 1024
#define HB_TOPICS_TOP 32
#define LATENCY_BUCKETS 26 /* bucket i counts latencies < 2^i us; the last one everything above */

typedef struct topic_table_t topic_table_t;

topic_table_t *topic_table_new(size_t max);
void topic_table_destroy(topic_table_t **self_p);

/*  Counts one event of `bytes` payload bytes on topic (NUL-terminated). */
void topic_table_add(topic_table_t *self, const char *topic, size_t bytes);

/*  Packs the heartbeat "topics" value: an array of [topic, pub_events, pub_bytes, recv_events,
    recv_bytes], the top_n topics by pub_events + recv_events, then one "_other" row with the
    sum of the rest (only when there is a rest). Either table may be NULL. */
void topic_tables_pack(msgpack_packer *pk, topic_table_t *pub, topic_table_t *recv, size_t top_n);

typedef struct {
    uint64_t buckets[LATENCY_BUCKETS];
    uint64_t count;
    uint64_t sum_us;
} latency_hist_t;

/*  Adds one latency in ns (negative values, from clock skew, count as 0). */
void latency_hist_add(latency_hist_t *h, int64_t ns);

/*  Packs {"unit": "us", "le": [1, 2, 4, ...], "counts": [...], "count": n, "sum": us}: counts[i]
    is the number of latencies < le[i] us and >= le[i-1]; the last bucket has no upper bound. */
void latency_hist_pack(msgpack_packer *pk, const latency_hist_t *h);

#endif

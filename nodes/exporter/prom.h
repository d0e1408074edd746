/*  prom.h - a fabric snapshot in the Prometheus text exposition format, version 0.0.4.

    The exporter node (main.c) serves this on /metrics. Every metric family is written once,
    as "# HELP", "# TYPE" and then all its samples, one per node (or per node and topic, or
    per histogram bucket); label values are escaped as the format requires (backslash, double
    quote, newline). Per-node metrics carry the labels node, role and instance (the decimal
    instance id, so two runs of one node name stay apart; note that Prometheus renames a
    scraped `instance` label to `exported_instance` unless the job sets honor_labels: true).

    Families (counters end in _total):
      weft_events_published_total, weft_events_received_total, weft_events_delivered_total,
      weft_events_dropped_total, weft_gaps_total, weft_repaired_total,
      weft_handler_errors_total, weft_dead_lettered_total, weft_malformed_total,
      weft_publish_errors_total, weft_ctl_requests_total, weft_ctl_errors_total
      weft_node_up, weft_node_uptime_seconds, weft_node_heartbeat_age_seconds,
      weft_outbox_events, weft_outbox_bytes, weft_peers_up, weft_peers_down   (gauges)
      weft_topic_events_total, weft_topic_bytes_total {topic, ..., direction="out"|"in"}
      weft_delivery_latency_seconds   histogram from the heartbeat `latency` buckets
      weft_archiver_<key>, weft_dlq_<key>   gauges from the numeric values of the `archive`
          and `dlq` heartbeat maps, whatever keys they carry. A breakdown gives one sample per
          entry, labelled by what it breaks down: by_subscriber -> subscriber="..",
          by_topic -> topic="..", top_codes -> code="..", other maps -> key="..";
          {name: n} and [[name, n], ...] give weft_dlq_<key>{<label>="name"}, and
          {name: {field: n}} gives weft_dlq_<key>_<field>{<label>="name"}
      weft_fabric_nodes {state="up"|"down"}, weft_exporter_heartbeats_total
          {result="accepted"|"rejected"}
*/
#ifndef WEFT_EXPORTER_PROM_H_INCLUDED
#define WEFT_EXPORTER_PROM_H_INCLUDED

#include <stddef.h>

#include "fabric_model.h"

/*  Renders snap. Returns a malloc'd NUL-terminated text the caller frees and stores its length
    in *len, or NULL when out of memory. */
char *prom_render(const fabric_snapshot_t *snap, size_t *len);

/*  Appends value to out (capacity cap, always NUL-terminated) escaped as a label value:
    \ becomes \\, " becomes \", a newline becomes \n. Returns the length the full escaped text
    needs (excluding the NUL), like snprintf. */
size_t prom_escape_label(const char *value, char *out, size_t cap);

#endif

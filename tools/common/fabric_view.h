/*  fabric_view.h - the fabric model's snapshots as tables, text and JSON.

    weft-top (screen and --batch), `weft stat` (text and --json) show the same five views of a
    fabric_snapshot_t (fabric_model.h): Nodes, Topics, Lag, Archiver, DLQ. This module turns a
    snapshot into a table of text cells per view, with per-column sorting (numbers by value,
    text alphabetically) and a substring filter, formats table lines with aligned columns,
    and writes whole snapshots as plain text or as one JSON document. It does no terminal I/O:
    weft-top draws the lines it formats.

    A table copies what it needs from the snapshot: the snapshot may be destroyed first.
    Nothing here is thread-safe; each table belongs to one thread.
*/
#ifndef WEFT_TOOLS_FABRIC_VIEW_H_INCLUDED
#define WEFT_TOOLS_FABRIC_VIEW_H_INCLUDED

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "fabric_model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    FABRIC_VIEW_NODES,
    FABRIC_VIEW_TOPICS,
    FABRIC_VIEW_LAG,
    FABRIC_VIEW_ARCHIVER,
    FABRIC_VIEW_DLQ,
    FABRIC_VIEW_COUNT
} fabric_view_t;

#define FABRIC_VIEW_ALL ((1u << FABRIC_VIEW_COUNT) - 1) /* mask of every view */
#define FABRIC_COL_MAX 48                               /* widest column, except the last */

/*  "nodes", "topics", "lag", "archiver", "dlq" (for --view); NULL for an unknown view. */
const char *fabric_view_name(fabric_view_t view);

/*  "Nodes", "Topics", "Lag", "Archiver", "DLQ" (titles); NULL for an unknown view. */
const char *fabric_view_title(fabric_view_t view);

/*  The view called name (as fabric_view_name gives it, any case), or -1. */
int fabric_view_parse(const char *name);

typedef struct fabric_table_t fabric_table_t;

/*  Builds the table of one view of snap: every row, sorted by column 0 ascending, no filter.
    Returns a table the caller owns (fabric_table_destroy), or NULL when out of memory or for
    an unknown view. */
fabric_table_t *fabric_table_new(const fabric_snapshot_t *snap, fabric_view_t view);

/*  Frees the table and sets *self_p to NULL. Safe on NULL and twice. */
void fabric_table_destroy(fabric_table_t **self_p);

fabric_view_t fabric_table_view(const fabric_table_t *self);
size_t fabric_table_ncols(const fabric_table_t *self);

/*  Header of column col (static string), or NULL past the last column. */
const char *fabric_table_col_name(const fabric_table_t *self, size_t col);

/*  True when column col holds numbers (right-aligned, sorted by value; weft-top sorts them
    largest first by default). */
bool fabric_table_col_numeric(const fabric_table_t *self, size_t col);

/*  Number of rows that pass the filter (all rows when there is none). */
size_t fabric_table_nrows(const fabric_table_t *self);

/*  Number of rows before filtering. */
size_t fabric_table_total_rows(const fabric_table_t *self);

/*  Text of cell (row, col), row counted among the visible rows in sorted order; "-" marks a
    value the heartbeats did not carry. The string is owned by the table. NULL when out of
    range. */
const char *fabric_table_cell(const fabric_table_t *self, size_t row, size_t col);

/*  Sorts by column col (out of range: column 0), descending when desc. Numeric columns sort
    by value with missing values last; text columns by byte order; ties keep the snapshot's
    order, so the result is stable from one refresh to the next. */
void fabric_table_sort(fabric_table_t *self, size_t col, bool desc);

/*  The column and direction of the last sort. */
size_t fabric_table_sort_col(const fabric_table_t *self);
bool fabric_table_sort_desc(const fabric_table_t *self);

/*  Keeps only the rows where some cell contains filter, ignoring case. NULL or "" shows every
    row. The text is copied. Returns the number of visible rows. */
size_t fabric_table_filter(fabric_table_t *self, const char *filter);

/*  Width of each column (header and visible rows, at most FABRIC_COL_MAX except the last
    column) and of a whole formatted line. */
size_t fabric_table_line_width(const fabric_table_t *self);

/*  Formats one line into buf (always NUL-terminated, cut to cap - 1 bytes): row -1 is the
    header (column names, no marks, so scripts can split it on blanks); other rows are visible
    rows. Columns are separated by two spaces, numbers right-aligned. Returns the length
    written. */
size_t fabric_table_line(const fabric_table_t *self, long row, char *buf, size_t cap);

/*  Where column col sits in a formatted line: its first character and its width. Returns
    false for a column out of range. */
bool fabric_table_col_span(const fabric_table_t *self, size_t col, size_t *start, size_t *width);

/*  Prints the header and every visible row, one per line, with trailing spaces removed. */
void fabric_table_print(const fabric_table_t *self, FILE *out);

/*  One line of fabric totals: nodes up/down, events/s out and in, dropped, gaps, errors. */
void fabric_totals_line(const fabric_snapshot_t *snap, char *buf, size_t cap);

/*  A sparkline of the last `width` values of v[0..n) (oldest first), scaled to their maximum:
    with utf8, the block characters U+2581..U+2588 (3 bytes each); else the ASCII ramp
    "_.:-=+*#". Writes at most cap - 1 bytes plus a NUL. */
void fabric_sparkline(const double *v, size_t n, size_t width, bool utf8, char *buf, size_t cap);

/*  Formats a rate for a table cell: "0.0", "12.5", "250.0". */
void fabric_format_rate(double v, char *buf, size_t cap);

/*  The upper bound, in us, of the histogram bucket holding quantile q (0 < q <= 1) of the
    latencies; UINT64_MAX when it falls in the last (unbounded) bucket, 0 when there is no
    data. */
uint64_t fabric_latency_quantile(const fabric_latency_t *l, double q);

/*  Prints the totals line, the rate sparkline (when the snapshot has two samples or more) and
    each view in view_mask (bit 1 << view) as a titled table, sorted by column 0, like
    `top -b`. */
void fabric_print_snapshot(FILE *out, const fabric_snapshot_t *snap, unsigned view_mask);

/*  The snapshot as one JSON object: {"time_ms", "totals", "nodes", "topics", "lag",
    "archivers", "dlqs"}. Instance ids are decimal strings (they do not fit every JSON
    reader's numbers); rates not yet measured are null. Returns a new value the caller owns
    (json_decref), or NULL when out of memory. */
json_t *fabric_snapshot_json(const fabric_snapshot_t *snap);

#ifdef __cplusplus
}
#endif

#endif

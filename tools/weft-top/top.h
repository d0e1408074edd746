/*  top.h - pieces of weft-top shared between its main (options, node, batch mode; main.c) and
    its screen (ncurses; ui.c).

    The node's handler thread feeds every `_weft.hb` heartbeat into the fabric model; the main
    thread ticks the model and takes snapshots to show. top_feed_t is what both threads share:
    the model and the mutex that guards it.
*/
#ifndef WEFT_TOP_H_INCLUDED
#define WEFT_TOP_H_INCLUDED

#include <pthread.h>
#include <stdint.h>

#include "fabric_model.h"
#include "fabric_view.h"

typedef struct {
    pthread_mutex_t lock;  /* held around every call on model */
    fabric_model_t *model; /* owned by main */
} top_feed_t;

/*  Settings of one run, from the command line. */
typedef struct {
    long delay_ms;         /* -d: time between refreshes */
    uint64_t count;        /* -n: refreshes before exiting, 0 = until q */
    unsigned views;        /* --view mask (batch: views printed; screen: first one shown) */
} top_opts_t;

/*  Ticks the model and takes a snapshot as of now (under the feed's lock). Returns a new
    snapshot the caller owns, or NULL when out of memory. */
fabric_snapshot_t *top_refresh(top_feed_t *feed);

/*  Runs the full-screen monitor until q, Ctrl-C or o->count refreshes. Returns the exit status
    (0, or 1 when the terminal cannot be driven). */
int top_ui_run(top_feed_t *feed, const top_opts_t *o, const char *node_name);

#endif

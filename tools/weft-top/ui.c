/*  ui.c - weft-top's full screen (ncurses), see top.h.

    One loop on the main thread: every -d it ticks the model and, unless paused, takes a new
    snapshot; between refreshes it waits for keys (100 ms at a time, so Ctrl-C and resizes are
    seen quickly). Every frame is erase + draw into ncurses' back buffer + one refresh, so
    ncurses sends only what changed and large tables do not flicker. The table of the current
    view is rebuilt from the snapshot on each frame (cheap next to a terminal write), with the
    view's sort and the filter applied.

    Screen layout:
        row 0        title and fabric totals (nodes up/down, events/s out and in, ...)
        row 1        sparkline of events/s out, one cell per refresh
        row 2        view tabs 1-5
        row 3        column header; the sorted column is underlined
        rows 4..-2   the table, scrolled
        last row     status: rows shown, sort, filter; or the filter being typed
*/
#include <ctype.h>
#include <curses.h>
#include <langinfo.h>
#include <locale.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <czmq.h>

#include "top.h"

#define HEAD_ROWS 4
#define FOOT_ROWS 1
#define KEY_WAIT_MS 100
#define HSCROLL_STEP 8
#define FILTER_MAX 128
#define KEY_ESC 27
#define TEXT_MAX 4096

enum { PAIR_HEAD = 1, PAIR_DOWN, PAIR_TAB, PAIR_PAUSE };

typedef struct {
    top_feed_t *feed;
    const top_opts_t *o;
    const char *node_name;
    fabric_view_t view;
    size_t sort_col[FABRIC_VIEW_COUNT];
    bool sort_desc[FABRIC_VIEW_COUNT];
    size_t scroll[FABRIC_VIEW_COUNT];
    size_t hscroll;
    char filter[FILTER_MAX];  /* applied filter, "" for none */
    bool editing;             /* typing a filter */
    char edit[FILTER_MAX];    /* the filter being typed */
    bool paused, help, quit;
    bool utf8, colors;
    fabric_snapshot_t *snap;  /* what is shown (kept while paused) */
    fabric_table_t *table;    /* the current view of snap, sorted and filtered */
} ui_t;

static const char *const s_help_lines[] = {
    "weft-top keys",
    "",
    "1 2 3 4 5   Nodes, Topics, Lag, Archiver, DLQ",
    "Tab         next view (Shift-Tab: previous)",
    "s / S       sort by the next / previous column",
    "r           reverse the sort order",
    "/           filter rows: type, Enter applies, Esc clears",
    "Esc         clear the filter",
    "p           pause / resume the display",
    "Up Down PgUp PgDn Home End   scroll",
    "Left Right  scroll sideways",
    "h           this help (any key closes it)",
    "q           quit",
};
#define HELP_LINES (sizeof(s_help_lines) / sizeof(s_help_lines[0]))

/*  Rebuilds the current view's table from the snapshot with its sort and filter. */
static void s_build(ui_t *u)
{
    fabric_table_destroy(&u->table);
    if (!u->snap)
        return;
    u->table = fabric_table_new(u->snap, u->view);
    if (!u->table)
        return;
    fabric_table_sort(u->table, u->sort_col[u->view], u->sort_desc[u->view]);
    fabric_table_filter(u->table, u->filter);
}

static int s_body_rows(void)
{
    int n = LINES - HEAD_ROWS - FOOT_ROWS;
    return n > 0 ? n : 0;
}

/*  Writes text at (y, x), cut at the right edge of the screen. */
static void s_put(int y, int x, const char *text)
{
    if (y < 0 || y >= LINES || x >= COLS)
        return;
    mvaddnstr(y, x, text, COLS - x);
}

static void s_draw_head(ui_t *u)
{
    char line[TEXT_MAX];
    const fabric_totals_t *t = &u->snap->totals;
    attron(A_BOLD);
    s_put(0, 0, "weft-top");
    attroff(A_BOLD);
    snprintf(line, sizeof(line),
             "  nodes %u up, %u down | out %.1f/s  in %.1f/s | dropped %llu  gaps %llu  "
             "errors %llu  dead-lettered %llu",
             (unsigned)t->nodes_up, (unsigned)t->nodes_down, t->out_eps, t->in_eps,
             (unsigned long long)t->dropped, (unsigned long long)t->gaps,
             (unsigned long long)t->handler_errors, (unsigned long long)t->dead_lettered);
    s_put(0, 8, line);
    if (t->nodes_down > 0 && u->colors) {
        /* the down count in the down colour */
        char down[32];
        snprintf(down, sizeof(down), "%u down", (unsigned)t->nodes_down);
        char *at = strstr(line, down);
        if (at) {
            attron(COLOR_PAIR(PAIR_DOWN) | A_BOLD);
            s_put(0, 8 + (int)(at - line), down);
            attroff(COLOR_PAIR(PAIR_DOWN) | A_BOLD);
        }
    }
    char clock[16];
    time_t secs = (time_t)(u->snap->now_ms / 1000);
    struct tm tm;
    strftime(clock, sizeof(clock), "%H:%M:%S", localtime_r(&secs, &tm));
    const char *mark = u->paused ? "PAUSED " : "";
    int right = COLS - (int)strlen(clock) - (int)strlen(mark);
    if (right > 8 + (int)strlen(line) + 1) {
        if (u->paused) {
            attron(A_REVERSE | A_BOLD);
            s_put(0, right, "PAUSED");
            attroff(A_REVERSE | A_BOLD);
        }
        s_put(0, COLS - (int)strlen(clock), clock);
    } else if (u->paused) {
        attron(A_REVERSE | A_BOLD);
        s_put(0, COLS > 6 ? COLS - 6 : 0, "PAUSED");
        attroff(A_REVERSE | A_BOLD);
    }

    /* Row 1: the rate history. */
    double max = 0;
    for (size_t i = 0; i < u->snap->nhistory; i++)
        if (u->snap->history_out[i] > max)
            max = u->snap->history_out[i];
    char tail[64];
    snprintf(tail, sizeof(tail), "  max %.1f/s", max);
    int width = COLS - 7 - (int)strlen(tail);
    if (width > FABRIC_HISTORY)
        width = FABRIC_HISTORY;
    s_put(1, 0, "out/s");
    if (width > 0) {
        char spark[FABRIC_HISTORY * 3 + 1];
        fabric_sparkline(u->snap->history_out, u->snap->nhistory, (size_t)width, u->utf8, spark,
                         sizeof(spark));
        attron(A_BOLD);
        mvaddstr(1, 7, spark);
        attroff(A_BOLD);
        s_put(1, 7 + (int)(u->snap->nhistory < (size_t)width ? u->snap->nhistory : (size_t)width),
              tail);
    }

    /* Row 2: tabs. */
    int x = 0;
    for (int v = 0; v < FABRIC_VIEW_COUNT; v++) {
        snprintf(line, sizeof(line), " %d %s ", v + 1, fabric_view_title((fabric_view_t)v));
        int attr = v == (int)u->view ? (A_REVERSE | A_BOLD) : A_NORMAL;
        if (v == (int)u->view && u->colors)
            attr |= COLOR_PAIR(PAIR_TAB);
        attron(attr);
        s_put(2, x, line);
        attroff(attr);
        x += (int)strlen(line) + 1;
    }
}

/*  Draws a table line from column hscroll on, cut at the screen's edge. */
static void s_put_line(int y, const char *line, size_t hscroll)
{
    size_t len = strlen(line);
    s_put(y, 0, hscroll < len ? line + hscroll : "");
}

static long s_state_col(const fabric_table_t *t)
{
    for (size_t c = 0; c < fabric_table_ncols(t); c++)
        if (!strcmp(fabric_table_col_name(t, c), "STATE"))
            return (long)c;
    return -1;
}

static void s_draw_table(ui_t *u)
{
    fabric_table_t *t = u->table;
    char *line = malloc(TEXT_MAX);
    if (!t || !line) {
        s_put(HEAD_ROWS, 0, "out of memory");
        free(line);
        return;
    }
    size_t width = fabric_table_line_width(t);
    if (u->hscroll > width)
        u->hscroll = width;
    /* Header, full width, with the sorted column underlined. */
    fabric_table_line(t, -1, line, TEXT_MAX);
    attron(A_REVERSE | (u->colors ? COLOR_PAIR(PAIR_HEAD) : 0));
    mvhline(3, 0, ' ', COLS);
    s_put_line(3, line, u->hscroll);
    size_t start, w;
    if (fabric_table_col_span(t, fabric_table_sort_col(t), &start, &w) && start + w > u->hscroll) {
        size_t from = start > u->hscroll ? start : u->hscroll;
        attron(A_BOLD | A_UNDERLINE);
        mvaddnstr(3, (int)(from - u->hscroll), line + from, (int)(start + w - from));
        attroff(A_BOLD | A_UNDERLINE);
    }
    attroff(A_REVERSE | (u->colors ? COLOR_PAIR(PAIR_HEAD) : 0));

    size_t rows = fabric_table_nrows(t), body = (size_t)s_body_rows();
    size_t *scroll = &u->scroll[u->view];
    if (rows <= body)
        *scroll = 0;
    else if (*scroll > rows - body)
        *scroll = rows - body;
    long state = s_state_col(t);
    for (size_t i = 0; i < body && *scroll + i < rows; i++) {
        size_t r = *scroll + i;
        bool down = state >= 0 && !strcmp(fabric_table_cell(t, r, (size_t)state), "down");
        int attr = down ? (A_BOLD | (u->colors ? COLOR_PAIR(PAIR_DOWN) : 0)) : A_NORMAL;
        fabric_table_line(t, (long)r, line, TEXT_MAX);
        attron(attr);
        s_put_line(HEAD_ROWS + (int)i, line, u->hscroll);
        attroff(attr);
    }
    if (rows == 0)
        s_put(HEAD_ROWS, 0,
              fabric_table_total_rows(t) ? "(no row matches the filter)"
              : u->view == FABRIC_VIEW_ARCHIVER ? "(no archiver has sent a heartbeat)"
              : u->view == FABRIC_VIEW_DLQ      ? "(no DLQ has sent a heartbeat)"
                                                : "(nothing yet)");
    free(line);
}

static void s_draw_foot(ui_t *u)
{
    char line[TEXT_MAX];
    int y = LINES - 1;
    if (u->editing) {
        snprintf(line, sizeof(line), "filter: %s", u->edit);
        attron(A_BOLD);
        s_put(y, 0, line);
        attroff(A_BOLD);
        curs_set(1);
        move(y, (int)strlen(line) < COLS ? (int)strlen(line) : COLS - 1);
        return;
    }
    curs_set(0);
    const fabric_table_t *t = u->table;
    size_t rows = fabric_table_nrows(t), body = (size_t)s_body_rows();
    size_t first = rows ? u->scroll[u->view] + 1 : 0;
    size_t last = u->scroll[u->view] + body < rows ? u->scroll[u->view] + body : rows;
    int n = snprintf(line, sizeof(line), "%s: rows %zu-%zu of %zu", fabric_view_title(u->view),
                     first, last, rows);
    if (u->filter[0])
        n += snprintf(line + n, sizeof(line) - (size_t)n, " (filter '%s', %zu in all)", u->filter,
                      fabric_table_total_rows(t));
    if (t)
        n += snprintf(line + n, sizeof(line) - (size_t)n, " | sort %s %s",
                      fabric_table_col_name(t, fabric_table_sort_col(t)),
                      fabric_table_sort_desc(t) ? "desc" : "asc");
    snprintf(line + n, sizeof(line) - (size_t)n, " | %s | h help  q quit", u->node_name);
    attron(A_REVERSE);
    mvhline(y, 0, ' ', COLS);
    s_put(y, 0, line);
    attroff(A_REVERSE);
}

static void s_draw_help(void)
{
    int w = 0;
    for (size_t i = 0; i < HELP_LINES; i++)
        if ((int)strlen(s_help_lines[i]) > w)
            w = (int)strlen(s_help_lines[i]);
    int h = (int)HELP_LINES + 2;
    w += 4;
    int y0 = (LINES - h) / 2, x0 = (COLS - w) / 2;
    if (y0 < 0)
        y0 = 0;
    if (x0 < 0)
        x0 = 0;
    for (int y = 0; y < h && y0 + y < LINES; y++) {
        mvhline(y0 + y, x0, ' ', w < COLS - x0 ? w : COLS - x0);
        if (y == 0 || y == h - 1) {
            mvaddch(y0 + y, x0, y == 0 ? ACS_ULCORNER : ACS_LLCORNER);
            mvhline(y0 + y, x0 + 1, ACS_HLINE, w - 2);
            mvaddch(y0 + y, x0 + w - 1, y == 0 ? ACS_URCORNER : ACS_LRCORNER);
        } else {
            mvaddch(y0 + y, x0, ACS_VLINE);
            if (y == 1)
                attron(A_BOLD);
            s_put(y0 + y, x0 + 2, s_help_lines[y - 1]);
            if (y == 1)
                attroff(A_BOLD);
            mvaddch(y0 + y, x0 + w - 1, ACS_VLINE);
        }
    }
}

static void s_draw(ui_t *u)
{
    erase();
    if (LINES < HEAD_ROWS + FOOT_ROWS + 1 || COLS < 20) {
        s_put(0, 0, "weft-top: terminal too small");
    } else if (!u->snap) {
        s_put(0, 0, "weft-top: waiting for the first refresh...");
    } else {
        s_build(u);
        s_draw_head(u);
        s_draw_table(u);
        s_draw_foot(u);
        if (u->help)
            s_draw_help();
    }
    refresh();
}

static void s_set_view(ui_t *u, int view)
{
    u->view = (fabric_view_t)((view + FABRIC_VIEW_COUNT) % FABRIC_VIEW_COUNT);
    u->hscroll = 0;
}

/*  s / S: the next or previous column; numbers start largest first, text A to Z. */
static void s_next_sort(ui_t *u, int step)
{
    long ncols = u->table ? (long)fabric_table_ncols(u->table) : 1;
    size_t col = (size_t)(((long)u->sort_col[u->view] + ncols + step) % ncols);
    u->sort_col[u->view] = col;
    u->sort_desc[u->view] = u->table && fabric_table_col_numeric(u->table, col);
    u->scroll[u->view] = 0;
}

static void s_key_edit(ui_t *u, int ch)
{
    size_t n = strlen(u->edit);
    if (ch == '\n' || ch == '\r' || ch == KEY_ENTER) {
        snprintf(u->filter, sizeof(u->filter), "%s", u->edit);
        u->editing = false;
        u->scroll[u->view] = 0;
    } else if (ch == KEY_ESC) {
        u->filter[0] = 0;
        u->edit[0] = 0;
        u->editing = false;
    } else if (ch == KEY_BACKSPACE || ch == 127 || ch == 8) {
        if (n)
            u->edit[n - 1] = 0;
    } else if (ch >= 0x20 && ch < 0x7f && n + 1 < sizeof(u->edit)) {
        u->edit[n] = (char)ch;
        u->edit[n + 1] = 0;
    }
}

static void s_key(ui_t *u, int ch)
{
    if (u->editing) {
        s_key_edit(u, ch);
        return;
    }
    if (u->help) {
        u->help = false; /* any key closes the help */
        if (ch != 'q')
            return;
    }
    size_t body = (size_t)s_body_rows(), *scroll = &u->scroll[u->view];
    switch (ch) {
    case 'q':
    case 'Q':
        u->quit = true;
        break;
    case '1':
    case '2':
    case '3':
    case '4':
    case '5':
        s_set_view(u, ch - '1');
        break;
    case '\t':
        s_set_view(u, (int)u->view + 1);
        break;
    case KEY_BTAB:
        s_set_view(u, (int)u->view - 1);
        break;
    case 's':
        s_next_sort(u, 1);
        break;
    case 'S':
        s_next_sort(u, -1);
        break;
    case 'r':
        u->sort_desc[u->view] = !u->sort_desc[u->view];
        break;
    case '/':
        u->editing = true;
        snprintf(u->edit, sizeof(u->edit), "%s", u->filter);
        break;
    case KEY_ESC:
        u->filter[0] = 0;
        break;
    case 'p':
    case ' ':
        u->paused = !u->paused;
        break;
    case 'h':
    case '?':
        u->help = true;
        break;
    case KEY_UP:
        if (*scroll)
            (*scroll)--;
        break;
    case KEY_DOWN:
        (*scroll)++; /* clamped when drawn */
        break;
    case KEY_PPAGE:
        *scroll = *scroll > body ? *scroll - body : 0;
        break;
    case KEY_NPAGE:
        *scroll += body;
        break;
    case KEY_HOME:
        *scroll = 0;
        break;
    case KEY_END:
        *scroll = (size_t)-1 / 2;
        break;
    case KEY_LEFT:
        u->hscroll = u->hscroll > HSCROLL_STEP ? u->hscroll - HSCROLL_STEP : 0;
        break;
    case KEY_RIGHT:
        u->hscroll += HSCROLL_STEP;
        break;
    case KEY_RESIZE:
    default:
        break;
    }
}

int top_ui_run(top_feed_t *feed, const top_opts_t *o, const char *node_name)
{
    setlocale(LC_ALL, "");
    ui_t u;
    memset(&u, 0, sizeof(u));
    u.feed = feed;
    u.o = o;
    u.node_name = node_name;
    u.utf8 = strcmp(nl_langinfo(CODESET), "UTF-8") == 0;
    for (int v = 0; v < FABRIC_VIEW_COUNT; v++)
        if (o->views & (1u << v)) {
            u.view = (fabric_view_t)v;
            break;
        }
    if (!initscr()) {
        fprintf(stderr, "weft-top: cannot initialise the terminal\n");
        return 1;
    }
    /* Log lines would scribble over the screen: none while it is up. */
    zsys_set_logstream(NULL);
    cbreak();
    noecho();
    keypad(stdscr, TRUE);
    curs_set(0);
    set_escdelay(25);
    timeout(KEY_WAIT_MS);
    if (has_colors()) {
        start_color();
        use_default_colors();
        init_pair(PAIR_HEAD, COLOR_BLACK, COLOR_CYAN);
        init_pair(PAIR_DOWN, COLOR_RED, -1);
        init_pair(PAIR_TAB, COLOR_BLACK, COLOR_YELLOW);
        u.colors = true;
    }
    int status = 0;
    uint64_t refreshes = 0;
    /* The first refresh comes at once: even before any heartbeat, the screen has its shape. */
    int64_t next = zclock_mono();
    bool dirty = true;
    while (!u.quit && !zsys_interrupted) {
        if (zclock_mono() >= next) {
            fabric_snapshot_t *snap = top_refresh(feed);
            if (snap && !u.paused) {
                fabric_snapshot_destroy(&u.snap);
                u.snap = snap;
            } else
                fabric_snapshot_destroy(&snap);
            next += o->delay_ms;
            if (next < zclock_mono())
                next = zclock_mono() + o->delay_ms;
            dirty = true;
            if (o->count && ++refreshes > o->count)
                break;
        }
        if (dirty) {
            s_draw(&u);
            dirty = false;
        }
        int ch = getch();
        if (ch != ERR) {
            s_key(&u, ch);
            dirty = true;
        }
    }
    endwin();
    zsys_set_logstream(stderr);
    fabric_table_destroy(&u.table);
    fabric_snapshot_destroy(&u.snap);
    return status;
}

/*  cmd_get.c - `weft get ID`: looks one event up in the archiver by its id and prints it as
    one JSON line, in the format of `weft replay` (weft_archive_get, weft/archive.h). Called by
    main.c through cmd_get (cli.h).
*/
#include <czmq.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "archive_cli.h"
#include "cli.h"

#define PROG "weft get"

typedef struct {
    event_json_t buf;
    int result; /* ARCHIVE_PRINT_* */
    int write_errno;
} get_state_t;

static int s_on_event(const weft_archived_t *ev, void *arg)
{
    get_state_t *st = arg;
    st->result = archive_cli_print(ev, &st->buf, stdout, true);
    if (st->result == ARCHIVE_PRINT_WRITE)
        st->write_errno = errno ? errno : EIO;
    return 0;
}

static void s_help(void)
{
    printf("usage: weft get ID [OPTIONS]\n"
           "\n"
           "Looks up the event with this id (a UUID, as `weft sub` and `weft replay` print it,\n"
           "with or without dashes) in the archiver and prints it as one JSON line, as\n"
           "`weft replay` does (with \"offset\" and \"recv_ts\").\n"
           "\n"
           "options:\n"
           "  -h, --help          this help\n"
           "\n"
           "%s"
           "\n"
           "%s"
           "  default --name for this command: weft-get-<pid>; default --gossip-bind: none\n"
           "\n"
           "Exit status: 0 printed, 1 not found in the archive or failure (no archiver found, it\n"
           "did not answer), 2 usage error.\n"
           "\n"
           "examples:\n"
           "  weft get 0199f3a2-5c1e-7d2b-9a4f-3e2d1c0b9a87\n"
           "  weft get \"$(weft replay --limit 1 | jq -r .id)\" | jq .payload\n",
           archive_cli_help, cli_node_help);
}

static int s_usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, PROG ": ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (see weft get --help)\n");
    return 2;
}

int cmd_get(int argc, char **argv)
{
    svc_cli_t ao;
    archive_cli_init(&ao, PROG);
    char default_name[64];
    snprintf(default_name, sizeof(default_name), "weft-get-%d", (int)getpid());
    const char *id_text = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            s_help();
            return 0;
        }
        int rc = svc_cli_option(&ao, argc, argv, &i);
        if (rc < 0)
            return 2;
        if (rc > 0)
            continue;
        if (a[0] == '-')
            return s_usage_error("unknown option '%s'", a);
        if (id_text)
            return s_usage_error("one ID only ('%s' is a second one)", a);
        id_text = a;
    }
    if (!id_text)
        return s_usage_error("%s", "the ID of an event is needed");
    uint8_t id[WEFT_ID_SIZE];
    if (weft_id_parse(id_text, id) != WEFT_OK)
        return s_usage_error("'%s' is not an event id (a UUID)", id_text);
    if (!ao.node.name)
        ao.node.name = default_name;
    long timeout_ms = ao.timeout_ms > 0 ? ao.timeout_ms : 5000;

    char svc[256];
    bool interrupted = false;
    if (svc_cli_locate(&ao, svc, sizeof(svc), &interrupted) != 0)
        return 1;
    get_state_t st;
    memset(&st, 0, sizeof(st));
    st.result = -1;
    char remote[320] = "";
    int rc = weft_archive_get(svc, id, s_on_event, &st, (int)timeout_ms, remote, sizeof(remote));
    event_json_free(&st.buf);
    char text[WEFT_ID_STR];
    weft_id_format(id, text);
    if (rc == WEFT_ENOTFOUND) {
        fprintf(stderr, PROG ": event %s not found in the archive\n", text);
        return 1;
    }
    if (rc != WEFT_OK) {
        archive_cli_report(&ao, svc, rc, remote, timeout_ms);
        return 1;
    }
    switch (st.result) {
    case ARCHIVE_PRINT_OK:
        return 0;
    case ARCHIVE_PRINT_BAD:
        fprintf(stderr, PROG ": the archived envelope of %s does not decode\n", text);
        return 1;
    case ARCHIVE_PRINT_OOM:
        fprintf(stderr, PROG ": out of memory formatting the event\n");
        return 1;
    case ARCHIVE_PRINT_WRITE:
        fprintf(stderr, PROG ": cannot write to stdout: %s\n", strerror(st.write_errno));
        return 1;
    default:
        fprintf(stderr, PROG ": the archiver answered without the event\n");
        return 1;
    }
}

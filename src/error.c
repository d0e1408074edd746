/*  error.c - sentences and stable names for the weft_err_t codes (weft/error.h). */
#include "weft/error.h"

typedef struct {
    int code;
    const char *name;     /* stable, used on the wire in ERR replies */
    const char *sentence; /* for people */
} err_row_t;

static const err_row_t s_errors[] = {
    {WEFT_OK, "ok", "success"},
    {WEFT_EINVAL, "invalid", "invalid argument"},
    {WEFT_ETOPIC, "bad_topic", "topic must be 1..255 printable ASCII bytes without spaces"},
    {WEFT_ERESERVED, "reserved_topic", "topics starting with \"_weft.\" are reserved for the fabric"},
    {WEFT_ETOOBIG, "too_big", "event too big (payload over max_payload or envelope over 64 KiB)"},
    {WEFT_ENOMEM, "no_memory", "out of memory"},
    {WEFT_EMALFORMED, "malformed", "malformed input: does not follow the wire format"},
    {WEFT_EVERSION, "bad_version", "unsupported protocol or envelope version"},
    {WEFT_ENET, "network", "socket could not be created, bound or connected"},
    {WEFT_ECONFIG, "bad_config", "invalid configuration"},
    {WEFT_ETIMEOUT, "timeout", "no answer before the deadline"},
    {WEFT_ENOTFOUND, "not_found", "not found"},
    {WEFT_ESTATE, "bad_state", "operation not allowed in the current state"},
    {WEFT_EREMOTE, "remote_error", "the remote side answered with an error"},
    {WEFT_EGONE, "gone", "no longer held (evicted)"},
    {WEFT_EHANDLER, "handler_failed", "the handler reported a failure"},
    {WEFT_ERATE, "rate_limited", "the topic's rate limit refused the event"},
};

static const err_row_t *s_find(int err)
{
    for (unsigned i = 0; i < sizeof(s_errors) / sizeof(s_errors[0]); i++)
        if (s_errors[i].code == err)
            return &s_errors[i];
    return 0;
}

const char *weft_strerror(int err)
{
    const err_row_t *row = s_find(err);
    return row ? row->sentence : "unknown error";
}

const char *weft_errname(int err)
{
    const err_row_t *row = s_find(err);
    return row ? row->name : "unknown";
}

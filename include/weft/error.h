/*  weft/error.h - the one error vocabulary of libweft.

    Every public function that can fail returns one of these codes (negative), or a
    non-negative value on success. Codes from libzmq, LMDB, msgpack-c and errno are translated
    into these at the module boundary; they never leak through the public API.
*/
#ifndef WEFT_ERROR_H_INCLUDED
#define WEFT_ERROR_H_INCLUDED

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    WEFT_OK = 0,
    WEFT_EINVAL = -1,     /* an argument is invalid (NULL, out of range, unknown key) */
    WEFT_ETOPIC = -2,     /* topic is empty, longer than 255 bytes or has a byte outside 0x21..0x7e */
    WEFT_ERESERVED = -3,  /* topic starts with the reserved "_weft." prefix */
    WEFT_ETOOBIG = -4,    /* payload larger than max_payload, or envelope larger than 64 KiB */
    WEFT_ENOMEM = -5,     /* an allocation failed */
    WEFT_EMALFORMED = -6, /* input bytes do not follow the wire format */
    WEFT_EVERSION = -7,   /* wire or envelope version this build does not speak */
    WEFT_ENET = -8,       /* a ZeroMQ socket could not be created, bound or connected */
    WEFT_ECONFIG = -9,    /* a configuration file or value is invalid */
    WEFT_ETIMEOUT = -10,  /* no answer within the deadline */
    WEFT_ENOTFOUND = -11, /* the thing asked for does not exist */
    WEFT_ESTATE = -12,    /* the object is not in a state that allows this call */
    WEFT_EREMOTE = -13,   /* the remote side answered ERR; see the reply's code and message */
    WEFT_EGONE = -14,     /* the data asked for is no longer held (evicted from an outbox) */
    WEFT_EHANDLER = -15,  /* a handler reported failure (see weft_event_fail) */
    WEFT_ERATE = -16,     /* a rate limit of the topic refused the event (limits/topic_rates) */
} weft_err_t;

/*  Returns a static, human-readable sentence for an error code; never NULL. Unknown codes give
    "unknown error". */
const char *weft_strerror(int err);

/*  Returns the short, stable, machine-readable name of an error code ("bad_topic", "too_big",
    ...), as used in control protocol ERR replies; never NULL. */
const char *weft_errname(int err);

#ifdef __cplusplus
}
#endif

#endif

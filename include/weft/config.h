/*  weft/config.h - node configuration: ZPL file, WEFT_* environment, code.

    A weft_config_t is a set of "section/key" = value strings. A node resolves each setting from
    four layers, highest precedence first:

        1. values set in code with weft_config_set()
        2. the environment: WEFT_<SECTION>_<KEY>, upper case ("outbox/events" -> WEFT_OUTBOX_EVENTS)
        3. a ZPL file (czmq zconfig format), loaded with weft_config_load() or named by $WEFT_CONFIG
        4. built-in defaults

    The settings are listed in docs/operations.md and by weft_config_describe(). Unknown keys are
    rejected with WEFT_ECONFIG, so a typo is an error rather than a silently ignored setting.
*/
#ifndef WEFT_CONFIG_H_INCLUDED
#define WEFT_CONFIG_H_INCLUDED

#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_config_t weft_config_t;

/*  Creates an empty configuration (all defaults). Returns NULL only when out of memory. */
weft_config_t *weft_config_new(void);

/*  Creates a configuration whose code layer holds every known setting as `from` resolves it
    (code, environment, file or default), so it no longer depends on `from`, which the caller
    may destroy (a value that does not validate, from the environment, is left out: the copy
    reads the environment too, and weft_config_check_env reports it). from NULL gives an empty
    configuration. The caller owns the result
    (weft_config_destroy); NULL only when out of memory. */
weft_config_t *weft_config_dup(weft_config_t *from);

/*  Destroys a configuration and sets *self_p to NULL. Safe on NULL and twice. */
void weft_config_destroy(weft_config_t **self_p);

/*  Loads a ZPL file into the file layer, replacing what an earlier load put there. Returns
    WEFT_OK, WEFT_ENOTFOUND (no such file) or WEFT_ECONFIG (syntax error or unknown key; the
    message is logged with the file name). */
int weft_config_load(weft_config_t *self, const char *path);

/*  Sets key ("section/key") in the code layer, the highest precedence. value is copied.
    Returns WEFT_OK, or WEFT_ECONFIG for an unknown key or a value of the wrong form (a number
    where a number is expected, with optional k/M/G suffix for sizes). */
int weft_config_set(weft_config_t *self, const char *key, const char *value);

/*  Resolves key through the layers and returns its value; the string is owned by self (or
    static) and valid until the next call on self. Returns NULL for an unknown key. */
const char *weft_config_get(weft_config_t *self, const char *key);

/*  Resolves a numeric key (sizes accept k, M, G suffixes, powers of 1024). Returns the value,
    or fallback when the key is unknown or its value does not parse. */
int64_t weft_config_get_int(weft_config_t *self, const char *key, int64_t fallback);

/*  Prints every known key with its resolved value and one line of description to out. */
void weft_config_describe(weft_config_t *self, FILE *out);

/*  Checks the environment layer: returns WEFT_ECONFIG (and logs the variable) if a WEFT_*
    variable that names a setting has a malformed value, else WEFT_OK. */
int weft_config_check_env(weft_config_t *self);

#ifdef __cplusplus
}
#endif

#endif

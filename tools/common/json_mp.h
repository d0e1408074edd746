/*  json_mp.h - conversion between JSON (jansson) and msgpack for the command line tools.

    `weft pub TOPIC '{"a":1}'` turns its JSON argument into a msgpack payload with
    json_mp_from_text; `weft sub` and friends print received msgpack payloads as JSON lines with
    json_mp_to_json. Received bytes are untrusted: json_mp_to_json runs mp_guard_check before
    msgpack-c sees them.

    msgpack has types JSON lacks. They are shown as small tagged objects:

        bin                      {"$base64": "<standard base64>"}
        str that is not UTF-8    {"$base64": "<standard base64>"}
        ext                      {"$ext": <type>, "$base64": "<standard base64>"}
        uint > INT64_MAX         {"$uint64": "<decimal>"}
        float NaN / +-infinity   "NaN", "Infinity", "-Infinity" (strings)

    Only the $uint64 tag is read back by json_mp_from_json (jansson cannot hold integers above
    INT64_MAX, so it is the only way to write them); every other tag stays an ordinary object
    when packed.
*/
#ifndef WEFT_TOOLS_JSON_MP_H_INCLUDED
#define WEFT_TOOLS_JSON_MP_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <msgpack.h>

#ifdef __cplusplus
extern "C" {
#endif

/*  Deepest container nesting json_mp_from_json packs ("[[1]]" is depth 2). It equals what
    msgpack-c's C unpacker can decode (JSON_MP_UNPACK_DEPTH), so whatever `weft pub` sends,
    `weft sub` can print. */
#define JSON_MP_MAX_DEPTH 32

/*  Deepest container nesting json_mp_to_json can decode (a fixed limit of msgpack-c). */
#define JSON_MP_UNPACK_DEPTH 32

/*  Packs one JSON value as one msgpack object, appended to out (an initialised sbuffer owned by
    the caller; nothing else of out is touched). Mapping: object -> map with str keys, in the
    object's key order; array -> array; string -> str (embedded NULs kept); integer -> the
    smallest msgpack int (non-negative values as unsigned, negative as signed); real -> float64;
    true/false -> bool; null -> nil. An object whose only member is "$uint64" with a canonical
    decimal string value above INT64_MAX (as json_mp_to_json produces) is packed as that
    unsigned integer.
    Returns 0, or WEFT_EINVAL (json or out NULL, nesting deeper than JSON_MP_MAX_DEPTH) or
    WEFT_ENOMEM (the buffer could not grow). On error out->size is restored to its value on
    entry, so out holds no partial object. json is not modified. */
int json_mp_from_json(const json_t *json, msgpack_sbuffer *out);

/*  Parses len bytes of JSON text (any JSON value, not only objects or arrays; text need not be
    NUL-terminated; "\u0000" is allowed in string values, jansson refuses it in object keys)
    and packs it as json_mp_from_json does, appending to out.
    Returns 0, or:
      WEFT_EINVAL  text or out NULL, the text is not valid JSON, or it nests too deep. When err
                   is not NULL and errcap > 0, a NUL-terminated message (truncated to errcap)
                   is written there; for a parse error it reads "line L column C: reason".
      WEFT_ENOMEM  an allocation failed (err gets "out of memory").
    On success err, if given, is set to "". On error out->size is unchanged. */
int json_mp_from_text(const char *text, size_t len, msgpack_sbuffer *out, char *err,
                      size_t errcap);

/*  Decodes exactly one msgpack object, which must span all size bytes, into a new JSON value.
    The bytes are untrusted: mp_guard_check (depth JSON_MP_UNPACK_DEPTH) runs before
    msgpack_unpack_next. Mapping: map -> object (str keys as they are; other keys become their
    JSON text: 1 -> "1", -2 -> "-2", true -> "true", nil -> "null", [1,2] -> "[1,2]"; a str key
    that is not UTF-8 becomes the text of its {"$base64": ...} tag; when keys repeat the last
    one wins); array -> array; str -> string, or {"$base64": ...} when not valid UTF-8; bin, ext,
    large uint and non-finite floats as tagged in the comment at the top of this file; other
    ints, float32/float64, bool, nil as the natural JSON value.
    Returns the value (the caller owns it: json_decref), or NULL with *err set to:
      WEFT_EMALFORMED  empty input, not one complete msgpack object, trailing bytes, a declared
                       length or count larger than the bytes present, nesting deeper than
                       JSON_MP_UNPACK_DEPTH;
      WEFT_EINVAL      data is NULL while size > 0;
      WEFT_ENOMEM      an allocation failed.
    On success *err is set to 0. err may be NULL. */
json_t *json_mp_to_json(const void *data, size_t size, int *err);

/*  Encodes size bytes as standard base64 (RFC 4648 alphabet "A-Za-z0-9+/", '=' padding, no line
    breaks). Returns a NUL-terminated malloc'd string the caller frees (size 0 gives ""), or NULL
    when data is NULL with size > 0, or when memory runs out. */
char *json_mp_base64(const void *data, size_t size);

/*  Decodes NUL-terminated standard base64 text. ASCII whitespace (space, tab, CR, LF) anywhere is
    skipped, so wrapped output of base64(1) is accepted; '=' padding is optional, but when
    present it must be the correct amount and only at the end. Unused low bits of the last
    character are ignored.
    Returns 0 and sets *out to a malloc'd buffer the caller frees (never NULL on success, even
    for zero bytes) and *out_size to its length; or WEFT_EINVAL (an argument is NULL, a character
    outside the alphabet, misplaced or wrong padding, a length that cannot be base64) or
    WEFT_ENOMEM. On error *out is NULL and *out_size 0 (when those pointers are not NULL). */
int json_mp_unbase64(const char *text, uint8_t **out, size_t *out_size);

#ifdef __cplusplus
}
#endif

#endif

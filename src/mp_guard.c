/*  mp_guard.c - see mp_guard.h. A non-allocating walk over msgpack bytes.

    The walk keeps a stack of "elements still to read" per open container. For each object it
    reads the type byte, then the header (lengths are big-endian, 1/2/4 bytes), then either
    skips a byte string (str, bin, ext) or opens a container. A container of n elements needs at
    least n more bytes (every msgpack object is at least one byte), which is how absurd counts
    are rejected before anything trusts them.
*/
#include "mp_guard.h"

#include "weft/error.h"

static uint64_t s_be(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

int mp_guard_check(const uint8_t *data, size_t size, unsigned max_depth, const char **why)
{
    const char *dummy;
    if (!why)
        why = &dummy;
    *why = NULL;
    if (!data || size == 0) {
        *why = "empty input";
        return WEFT_EMALFORMED;
    }
    if (max_depth == 0 || max_depth > 64)
        max_depth = MP_GUARD_DEPTH_DEFAULT;

    uint64_t stack[64];  /* elements left to read in each open container */
    unsigned depth = 0;
    size_t pos = 0;
    uint64_t top_left = 1; /* exactly one top-level object */

    while (1) {
        /* Find the container (or top level) that needs the next element. */
        uint64_t *left = depth ? &stack[depth - 1] : &top_left;
        if (*left == 0) {
            if (depth == 0)
                break;
            depth--;
            continue;
        }
        if (pos >= size) {
            *why = "truncated: object expected";
            return WEFT_EMALFORMED;
        }
        (*left)--;
        uint8_t t = data[pos++];
        size_t rest = size - pos;
        uint64_t len = 0;     /* bytes to skip */
        uint64_t count = 0;   /* elements to open */
        int container = 0;
        unsigned hdr = 0;

        if (t <= 0x7f || t >= 0xe0 || t == 0xc0 || t == 0xc2 || t == 0xc3) {
            continue;                                  /* fixint, nil, bool */
        } else if (t >= 0xa0 && t <= 0xbf) {
            len = t & 0x1f;                            /* fixstr */
        } else if (t >= 0x90 && t <= 0x9f) {
            count = t & 0x0f;                          /* fixarray */
            container = 1;
        } else if (t >= 0x80 && t <= 0x8f) {
            count = (uint64_t)(t & 0x0f) * 2;          /* fixmap */
            container = 1;
        } else {
            switch (t) {
            case 0xc1:
                *why = "reserved type byte 0xc1";
                return WEFT_EMALFORMED;
            case 0xcc: case 0xd0: len = 1; break;      /* uint8, int8 */
            case 0xcd: case 0xd1: len = 2; break;
            case 0xce: case 0xd2: case 0xca: len = 4; break;
            case 0xcf: case 0xd3: case 0xcb: len = 8; break;
            case 0xd4: len = 2; break;                 /* fixext 1 + type */
            case 0xd5: len = 3; break;
            case 0xd6: len = 5; break;
            case 0xd7: len = 9; break;
            case 0xd8: len = 17; break;
            case 0xc4: case 0xd9: hdr = 1; break;      /* bin8, str8 */
            case 0xc5: case 0xda: hdr = 2; break;
            case 0xc6: case 0xdb: hdr = 4; break;
            case 0xc7: hdr = 1; break;                 /* ext8: len then type */
            case 0xc8: hdr = 2; break;
            case 0xc9: hdr = 4; break;
            case 0xdc: hdr = 2; container = 1; break;  /* array16 */
            case 0xdd: hdr = 4; container = 1; break;
            case 0xde: hdr = 2; container = 2; break;  /* map16 */
            case 0xdf: hdr = 4; container = 2; break;
            default:
                *why = "unknown type byte";
                return WEFT_EMALFORMED;
            }
            if (hdr) {
                if (rest < hdr) {
                    *why = "truncated: length header";
                    return WEFT_EMALFORMED;
                }
                uint64_t n = s_be(data + pos, hdr);
                pos += hdr;
                rest -= hdr;
                if (container == 1)
                    count = n;
                else if (container == 2)
                    count = n * 2;
                else if (t >= 0xc7 && t <= 0xc9)
                    len = n + 1;                       /* ext: type byte + data */
                else
                    len = n;
            }
        }
        if (container) {
            if (count > rest) {
                *why = "container declares more elements than bytes left";
                return WEFT_EMALFORMED;
            }
            if (count == 0)
                continue;
            if (depth >= max_depth) {
                *why = "nesting too deep";
                return WEFT_EMALFORMED;
            }
            stack[depth++] = count;
            continue;
        }
        if (len > rest) {
            *why = "declared length larger than bytes left";
            return WEFT_EMALFORMED;
        }
        pos += (size_t)len;
    }
    if (pos != size) {
        *why = "trailing bytes after the object";
        return WEFT_EMALFORMED;
    }
    return 0;
}

/*  mp_guard.h - structural pre-check of msgpack bytes before msgpack-c sees them.

    msgpack-c allocates memory for every element a container header declares, so a five-byte
    input can declare four billion array elements and make it try to allocate tens of
    gigabytes. mp_guard_check walks the bytes without allocating and rejects any input where a
    declared length or element count exceeds the bytes that are actually left, where nesting is
    deeper than max_depth, or where the bytes are not exactly one complete object. Input that
    passes can be given to msgpack_unpack_next safely: it will allocate at most a small multiple
    of the input size.
*/
#ifndef WEFT_MP_GUARD_H_INCLUDED
#define WEFT_MP_GUARD_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#define MP_GUARD_DEPTH_DEFAULT 16

/*  Returns 0 when data holds exactly one well-bounded msgpack object, or WEFT_EMALFORMED. When
    why is not NULL it is set to a static sentence naming the first problem found. */
int mp_guard_check(const uint8_t *data, size_t size, unsigned max_depth, const char **why);

#endif

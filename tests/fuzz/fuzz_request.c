/* Fuzz target: a client frame's decoding (what api.c does before anything
 * else: unpack, then the canonical-size check). */
#include <stdint.h>
#include <stdlib.h>

#include "mayfly.pb-c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Mayfly__Api__Request *pb = mayfly__api__request__unpack(NULL, size, data);
    if (!pb)
        return 0;
    size_t n = mayfly__api__request__get_packed_size(pb);
    uint8_t *out = malloc(n ? n : 1);
    if (out)
        mayfly__api__request__pack(pb, out);
    free(out);
    mayfly__api__request__free_unpacked(pb, NULL);
    return 0;
}

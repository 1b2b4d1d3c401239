/* Fuzz target: a client frame, through every check a request passes before
 * a handler sees it (api.c and dispatch.c, in their order): unpack, the
 * canonical-size check (a string with a NUL inside), UTF-8 in every string,
 * then the dispatcher's pure checks (known enum values, an operation, its
 * row); and for a row whose policy path is a template, the path it expands
 * to (what authorisation decides on), which must be UTF-8 and end in NUL.
 * Rows with a describe hook read the state: not reached here. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/utf8.h"
#include "mayfly.pb-c.h"
#include "server/api.h"
#include "server/dispatch.h"

static void check_policy_path(const Mayfly__Api__Request *pb, const struct mf_op_def *d)
{
    if (d->describe || !d->capability[0])
        return;
    struct req r;
    memset(&r, 0, sizeof(r));
    r.pb = (Mayfly__Api__Request *)pb;
    unsigned cap = 0;
    char path[MF_DISPATCH_PATH_MAX];
    if (mf_dispatch_describe(&r, d, &cap, path, sizeof(path)) == 0) {
        size_t n = strnlen(path, sizeof(path));
        if (n == sizeof(path) || !mf_utf8_valid(path, n) || cap == 0)
            abort(); /* a finding: not a string, not UTF-8, or no capability */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Mayfly__Api__Request *pb = mayfly__api__request__unpack(NULL, size, data);
    if (!pb)
        return 0;
    const char *field = NULL;
    if (mayfly__api__request__get_packed_size(pb) == size &&
        mf_utf8_message_valid((const ProtobufCMessage *)pb, &field)) {
        const struct mf_op_def *d;
        const char *why;
        if (mf_dispatch_check(pb, &d, &why) == 0)
            check_policy_path(pb, d);
        else if (!why || d)
            abort();
    }
    mayfly__api__request__free_unpacked(pb, NULL);
    return 0;
}

/* Fuzz target: audit file verification (what `mayfly audit verify` reads:
 * lines an attacker may have edited). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "audit/chain.h"

#define LINES_MAX 256

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t key[32] = {1, 2, 3};
    const char *lines[LINES_MAX];
    size_t lens[LINES_MAX], n = 0, start = 0;
    for (size_t i = 0; i <= size && n < LINES_MAX; i++) {
        if (i == size || data[i] == '\n') {
            lines[n] = (const char *)data + start;
            lens[n++] = i - start;
            start = i + 1;
        }
    }
    struct mf_audit_anchor anchor;
    memset(&anchor, 0, sizeof(anchor));
    anchor.seq = 3;
    struct mf_audit_verify_result res;
    mf_audit_verify(key, &anchor, 1, lines, lens, n, &res);
    mf_audit_verify(key, NULL, 0, lines, lens, n, &res);
    return 0;
}

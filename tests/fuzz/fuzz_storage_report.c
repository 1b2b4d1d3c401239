/* Fuzz target: a follower's storage report as the leader decodes it
 * (server/storage_rules.h mf_storage_report_decode, peer tag 19). A report
 * that decodes must survive the round trip: encoding it and decoding that
 * again gives the same report. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "server/storage_rules.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mf_storage_report r;
    if (mf_storage_report_decode(data, size, &r) != 0)
        return 0;
    char *text = NULL;
    MF_ASSERT(mf_storage_report_encode(&r, &text) == 0);
    struct mf_storage_report r2;
    MF_ASSERT(mf_storage_report_decode((const uint8_t *)text, strlen(text), &r2) == 0);
    MF_ASSERT(r.over == r2.over && r.crossed == r2.crossed && r.blocked == r2.blocked && r.since_ms == r2.since_ms &&
              strcmp(r.detail, r2.detail) == 0);
    free(text);
    return 0;
}

/* Fuzz target: JWT verification (header, claims, signature formats) against a
 * fixed mount with one ES256 key. */
#include <stdint.h>
#include <stdlib.h>

#include "auth/jwt.h"

static const char mount_config[] =
    "{\"jwt_validation_pubkeys\": [\"-----BEGIN PUBLIC KEY-----\\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE2jNaRCcj+OWo4pFnxcdKQs4q+4rQ\\n"
    "JCue0+dVLCdSzZd0q+63iLEbezj8/tMGJT9gAM/pEiHYshXJy9QPi4s60g==\\n"
    "-----END PUBLIC KEY-----\\n\"], \"bound_issuer\": \"https://issuer\"}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct mf_jwt_mount *m;
    char err[256];
    if (!m && mf_jwt_mount_parse(mount_config, sizeof(mount_config) - 1, &m, err, sizeof(err)))
        abort(); /* the fixed config must parse */
    struct mf_jwt_token t;
    enum mf_jwt_reason reason;
    if (mf_jwt_verify(m, (const char *)data, size, 1700000000000LL, &t, &reason, err,
                      sizeof(err)) == 0)
        mf_jwt_token_clear(&t);
    return 0;
}

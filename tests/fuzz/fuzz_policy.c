/* Fuzz target: the policy parser, the set, the renderer and a decision. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    struct mf_policy *p = NULL;
    if (mf_policy_parse("fuzz", (const char *)data, size, &p, err, sizeof(err)) != 0)
        return 0;
    char *json = NULL;
    if (mf_policy_render(p, &json) == 0)
        free(json);
    struct mf_policy_set *empty = NULL, *set = NULL;
    if (mf_policy_set_new(&empty) == 0 &&
        mf_policy_set_put(empty, p, &set, err, sizeof(err)) == 0) {
        static const char *paths[] = {"kv/data/app/x", "sys/seal", "", "kv/data/a/b/c/d"};
        const char *names[] = {"fuzz", "default"};
        struct mf_authz_ctx ctx = {.now_ms = 1700000000000ULL};
        mf_authz_addr_parse("10.1.2.3", &ctx.client);
        for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
            struct mf_authz_request q = {.cap = MF_CAP_READ, .path = paths[i]};
            struct mf_authz_decision d;
            mf_policy_decide(set, names, 2, &q, &ctx, &d);
        }
    }
    mf_policy_set_release(set);
    mf_policy_set_release(empty);
    mf_policy_release(p);
    return 0;
}

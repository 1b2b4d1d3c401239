/* Fuzz target: the PostgreSQL engine's role templates (postgres.c: role_put's
 * checks and the renderer issue, renew and revoke use). The first byte picks
 * what the rest is:
 *   0: a role's JSON text, given to role_put;
 *   1: a creation template: if role_put accepts it, rendering it with real
 *      values (a password, its SCRAM verifier, an expiration) must succeed,
 *      as issue asserts;
 *   2: a revocation template (only {{name}}): the same rule;
 *   3: a renew template ({{name}} {{expiration}}): the same rule.
 * role_put never connects. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/assert.h"
#include "common/log.h"
#include "engines/postgres.h"

static struct mf_engine *g_e;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[MF_ENGINE_ERR_LEN];
    if (!g_e) {
        /* open tries one connection: to a socket directory that does not
         * exist, so it fails at once (unavailable, not refused) whatever
         * runs on this machine. */
        mf_log_set_level(MF_LOG_OFF);
        MF_ASSERT(mf_engine_postgres_ops.open("{\"host\":\"/nonexistent/mf_fuzz\","
                                              "\"username\":\"u\",\"password\":\"p\"}",
                                              &g_e, err, sizeof(err)) == 0);
    }
    if (size < 1)
        return 0;
    char *text = malloc(size);
    MF_ASSERT(text != NULL);
    memcpy(text, data + 1, size - 1);
    text[size - 1] = 0;
    int mode = data[0] % 4;
    if (mode == 0) {
        mf_engine_postgres_ops.role_put(g_e, "r", text, err, sizeof(err));
        free(text);
        return 0;
    }
    static const char *keys[] = {NULL, "creation_statements", "revocation_statements",
                                 "renew_statements"};
    json_t *o = json_object();
    json_t *s = json_string(text); /* NULL unless UTF-8 without NUL: JSON has no other */
    if (o && s) {
        json_object_set_new(o, keys[mode], s);
        if (mode != 1)
            json_object_set_new(o, "creation_statements", json_string("CREATE ROLE \"{{name}}\""));
        char *role = json_dumps(o, 0);
        MF_ASSERT(role != NULL);
        if (mf_engine_postgres_ops.role_put(g_e, "r", role, err, sizeof(err)) == 0) {
            /* role_put joins the strings with ';' after each. */
            size_t n = strlen(text);
            char *tmpl = malloc(n + 2);
            MF_ASSERT(tmpl != NULL);
            memcpy(tmpl, text, n);
            memcpy(tmpl + n, ";", 2);
            char *out;
            MF_ASSERT(mf_pg_render(tmpl, "mf_0000000000001", mode == 1 ? "Pw0123456789" : NULL,
                                   mode == 1 ? "SCRAM-SHA-256$4096:c2FsdA==$a2V5:c2Vy" : NULL,
                                   mode != 2 ? "2030-01-01 00:00:00.000+00" : NULL, &out, err,
                                   sizeof(err)) == 0);
            free(out);
            free(tmpl);
        }
        free(role);
    } else {
        json_decref(s);
    }
    json_decref(o);
    free(text);
    return 0;
}

/* PostgreSQL engine throughput against a throwaway PostgreSQL with default
 * durability (fsync on), started by tests/unit/pg_harness.h:
 *   - issue: one credential per call, as the server issues (one transaction
 *     each; PostgreSQL hashes each password with SCRAM, 4096 rounds);
 *   - revoke: calls of MF_ENGINE_REVOKE_BATCH_MAX, as the scheduler will,
 *     for roles made in bulk by SQL the way issue makes them, in three
 *     shapes: no privileges, member of a group role that holds the
 *     privileges, and SELECT granted directly on one shared table.
 *
 * Usage: bench_pg [-n revoked roles per shape (5000)] [-i issued (300)] [-v]
 * Prints figures; never a timed assertion. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "engines/engine.h"
#include "engines/postgres.h"
#include "../tests/unit/pg_harness.h"

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Roles for seqs[0..n), made by SQL in transactions of 1000. */
static int make_roles(struct mf_pg_harness *pg, const uint64_t *seqs, size_t n, const char *grant)
{
    for (size_t off = 0; off < n; off += 1000) {
        size_t c = n - off < 1000 ? n - off : 1000;
        char *sql = malloc(c * 320 + 64);
        if (!sql)
            return -1;
        size_t len = (size_t)sprintf(sql, "BEGIN;");
        for (size_t i = 0; i < c; i++) {
            char name[MF_ENGINE_NAME_MAX];
            mf_engine_name(seqs[off + i], name, sizeof(name));
            len += (size_t)sprintf(sql + len,
                                   "CREATE ROLE \"%s\" LOGIN VALID UNTIL 'infinity';"
                                   "COMMENT ON ROLE \"%s\" IS 'mayfly role: bench';",
                                   name, name);
            if (grant)
                len += (size_t)sprintf(sql + len, grant, name);
        }
        sprintf(sql + len, "COMMIT;");
        int rc = mf_pg_harness_exec(pg, NULL, sql);
        free(sql);
        if (rc)
            return rc;
    }
    return 0;
}

static int revoke_all(const struct mf_engine_ops *ops, struct mf_engine *e, const uint64_t *seqs,
                      size_t n, int *res, double *rate)
{
    char err[MF_ENGINE_ERR_LEN] = "";
    double t0 = mono_s();
    for (size_t off = 0; off < n; off += MF_ENGINE_REVOKE_BATCH_MAX) {
        size_t c = n - off < MF_ENGINE_REVOKE_BATCH_MAX ? n - off : MF_ENGINE_REVOKE_BATCH_MAX;
        if (ops->revoke(e, seqs + off, c, res + off, err, sizeof(err)) != 0) {
            fprintf(stderr, "bench_pg: revoke: %s\n", err);
            return -1;
        }
    }
    *rate = (double)n / (mono_s() - t0);
    return 0;
}

int main(int argc, char **argv)
{
    size_t n = 5000, issued = 300;
    bool verbose = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-v") == 0)
            verbose = true;
        else if (strcmp(argv[i], "-n") == 0 && i + 1 < argc)
            n = strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "-i") == 0 && i + 1 < argc)
            issued = strtoul(argv[++i], NULL, 10);
        else {
            fprintf(stderr, "usage: bench_pg [-n roles] [-i issued] [-v]\n");
            return 2;
        }
    }
    mf_log_set_level(verbose ? MF_LOG_DEBUG : MF_LOG_WARN);
    struct mf_pg_harness pg;
    if (mf_pg_harness_start(&pg, true) != 0) {
        fprintf(stderr, "bench_pg: cannot start PostgreSQL\n");
        return 1;
    }
    int rc = 1;
    /* Named directly: engine.c's weak reference alone does not pull
     * postgres.o out of the static library. */
    const struct mf_engine_ops *ops = &mf_engine_postgres_ops;
    struct mf_engine *e = NULL;
    char cfg[512], err[MF_ENGINE_ERR_LEN] = "";
    size_t cap = n > issued ? n : issued;
    uint64_t *seqs = calloc(cap, sizeof(*seqs));
    int *res = calloc(cap, sizeof(*res));
    mf_pg_harness_config(&pg, NULL, NULL, cfg, sizeof(cfg));
    if (!seqs || !res ||
        mf_pg_harness_exec(&pg, NULL,
                           "CREATE TABLE t(x int); CREATE ROLE readers; "
                           "GRANT SELECT ON t TO readers") != 0 ||
        ops->open(cfg, &e, err, sizeof(err)) != 0 ||
        ops->role_put(e, "bench",
                      "{\"creation_statements\": [\"CREATE ROLE \\\"{{name}}\\\" WITH LOGIN "
                      "PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'\", "
                      "\"GRANT readers TO \\\"{{name}}\\\"\"]}",
                      err, sizeof(err)) != 0) {
        fprintf(stderr, "bench_pg: setup: %s\n", err);
        goto done;
    }
    printf("bench_pg: PostgreSQL %s (fsync on), loopback\n", pg.bindir);
    uint64_t exp = (uint64_t)time(NULL) * 1000 + 3600 * 1000;
    double t0 = mono_s();
    for (size_t i = 0; i < issued; i++) {
        struct mf_engine_cred c;
        seqs[i] = 1 + i;
        if (ops->issue(e, "bench", seqs[i], exp, &c, err, sizeof(err)) != 0) {
            fprintf(stderr, "bench_pg: issue: %s\n", err);
            goto done;
        }
        mf_engine_cred_free(&c);
    }
    double issue_rate = (double)issued / (mono_s() - t0), rate;
    printf("  issue  %5zu, 1 per call (1 transaction each): %7.0f roles/s\n", issued,
           issue_rate);
    if (revoke_all(ops, e, seqs, issued, res, &rate))
        goto done;
    printf("  revoke %5zu issued above (group member):     %8.0f roles/s\n", issued, rate);
    /* A table's ACL lives in its pg_class row, which has no TOAST table:
     * past a thousand or two direct grantees (depending on how well the ACL
     * compresses) GRANT fails with "row is too big". So direct grants are
     * measured on at most 1000 roles; group membership has no such limit. */
    static const struct {
        const char *what, *grant;
        size_t max;
    } shapes[] = {
        {"no privileges", NULL, 0},
        {"member of a group role", "GRANT readers TO \"%s\";", 0},
        {"SELECT on one shared table", "GRANT SELECT ON t TO \"%s\";", 1000},
    };
    uint64_t next = 1000000;
    for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
        size_t c = shapes[s].max && shapes[s].max < n ? shapes[s].max : n;
        for (size_t i = 0; i < c; i++)
            seqs[i] = next++;
        if (make_roles(&pg, seqs, c, shapes[s].grant) != 0 ||
            revoke_all(ops, e, seqs, c, res, &rate) != 0)
            goto done;
        printf("  revoke %5zu, <= %d per call, %-27s %8.0f roles/s\n", c,
               MF_ENGINE_REVOKE_BATCH_MAX, shapes[s].what, rate);
    }
    rc = 0;
done:
    if (e)
        ops->close(e);
    free(seqs);
    free(res);
    mf_pg_harness_destroy(&pg);
    return rc;
}

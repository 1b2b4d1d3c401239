/* PostgreSQL engine throughput: issue rate (one role per call, as the
 * server issues) and batch revoke rate, against a throwaway PostgreSQL with
 * default durability (fsync on), started by tests/unit/pg_harness.h.
 *
 * Usage: bench_pg [roles (default 5000)] [-v]
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

int main(int argc, char **argv)
{
    size_t n = 5000;
    bool verbose = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-v") == 0)
            verbose = true;
        else
            n = strtoul(argv[i], NULL, 10);
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
    uint64_t *seqs = calloc(n, sizeof(*seqs));
    int *res = calloc(n, sizeof(*res));
    mf_pg_harness_config(&pg, NULL, NULL, cfg, sizeof(cfg));
    if (!seqs || !res || ops->open(cfg, &e, err, sizeof(err)) != 0 ||
        ops->role_put(e, "bench",
                      "{\"creation_statements\": \"CREATE ROLE \\\"{{name}}\\\" WITH LOGIN "
                      "PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'\"}",
                      err, sizeof(err)) != 0) {
        fprintf(stderr, "bench_pg: %s\n", err);
        goto done;
    }
    uint64_t exp = (uint64_t)time(NULL) * 1000 + 3600 * 1000;
    double t0 = mono_s();
    for (size_t i = 0; i < n; i++) {
        struct mf_engine_cred c;
        seqs[i] = 1 + i;
        if (ops->issue(e, "bench", seqs[i], exp, &c, err, sizeof(err)) != 0) {
            fprintf(stderr, "bench_pg: issue: %s\n", err);
            goto done;
        }
        mf_engine_cred_free(&c);
    }
    double t1 = mono_s();
    /* As the scheduler will: calls of at most one batch each. */
    for (size_t off = 0; off < n; off += MF_ENGINE_REVOKE_BATCH_MAX) {
        size_t c = n - off < MF_ENGINE_REVOKE_BATCH_MAX ? n - off : MF_ENGINE_REVOKE_BATCH_MAX;
        if (ops->revoke(e, seqs + off, c, res + off, err, sizeof(err)) != 0) {
            fprintf(stderr, "bench_pg: revoke: %s\n", err);
            goto done;
        }
    }
    double t2 = mono_s();
    printf("bench_pg: PostgreSQL (fsync on), %zu roles\n", n);
    printf("  issue  (1 role per call, 1 transaction each): %8.0f roles/s\n", n / (t1 - t0));
    printf("  revoke (%d per call, NOLOGIN+terminate+DROP): %8.0f roles/s\n",
           MF_ENGINE_REVOKE_BATCH_MAX, n / (t2 - t1));
    rc = 0;
done:
    if (e)
        ops->close(e);
    free(seqs);
    free(res);
    mf_pg_harness_destroy(&pg);
    return rc;
}

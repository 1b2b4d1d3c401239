/* bench_pki: how fast the pki engine issues certificates and builds CRLs.
 *
 * Prints certificates issued per second (ECDSA P-256 by default, RSA 2048 for
 * comparison), revocations per second into the revoked set, and the time to
 * build and sign a CRL of N entries. One thread, as the server runs one engine
 * call at a time per mount. A figure, never an assertion.
 *
 *   bench_pki [certificates (default 2000)] [crl entries (default 100000)]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/env.h"
#include "engines/engine.h"
#include "engines/pki.h"

static const struct mf_engine_ops *ops = &mf_engine_pki_ops;

static double issue_rate(struct mf_engine *e, const char *role, int n)
{
    uint64_t expire = mf_now_wall_ms() + 3600000;
    char err[MF_ENGINE_ERR_LEN];
    uint64_t t0 = mf_now_mono_ms();
    for (int i = 0; i < n; i++) {
        struct mf_engine_cred c;
        if (ops->issue(e, role, (uint64_t)i + 1, expire, &c, err, sizeof(err)) != 0) {
            fprintf(stderr, "issue: %s\n", err);
            exit(1);
        }
        mf_engine_cred_free(&c);
    }
    uint64_t dt = mf_now_mono_ms() - t0;
    return dt ? n * 1000.0 / (double)dt : 0;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 2000;
    size_t crl_n = argc > 2 ? (size_t)atol(argv[2]) : 100000;
    if (n <= 0 || crl_n > MF_PKI_REVOKED_MAX) {
        fprintf(stderr, "usage: bench_pki [certificates] [crl entries <= %d]\n",
                MF_PKI_REVOKED_MAX);
        return 2;
    }
    struct mf_engine *e = NULL;
    char err[MF_ENGINE_ERR_LEN];
    if (ops->open("{\"generate\":true,\"common_name\":\"bench pki\"}", &e, err, sizeof(err)) ||
        ops->role_put(e, "ec",
                      "{\"allowed_domains\":[\"example.com\"],\"allow_subdomains\":true,"
                      "\"common_name\":\"api.example.com\",\"alt_names\":[\"www.example.com\"]}",
                      err, sizeof(err)) ||
        ops->role_put(e, "rsa",
                      "{\"allowed_domains\":[\"example.com\"],\"common_name\":\"example.com\","
                      "\"key_type\":\"rsa\",\"key_bits\":2048}",
                      err, sizeof(err))) {
        fprintf(stderr, "setup: %s\n", err);
        return 1;
    }
    printf("issue ECDSA P-256: %d certificates, %.0f/s\n", n, issue_rate(e, "ec", n));
    int rsa_n = n / 20 > 0 ? n / 20 : 1;
    printf("issue RSA 2048:    %d certificates, %.0f/s\n", rsa_n, issue_rate(e, "rsa", rsa_n));

    /* Revocations in batches of MF_ENGINE_REVOKE_BATCH_MAX, as the scheduler sends them. */
    uint64_t *seqs = malloc(MF_ENGINE_REVOKE_BATCH_MAX * sizeof(*seqs));
    int *results = malloc(MF_ENGINE_REVOKE_BATCH_MAX * sizeof(*results));
    if (!seqs || !results)
        return 1;
    uint64_t t0 = mf_now_mono_ms();
    for (size_t done = 0; done < crl_n;) {
        size_t k = crl_n - done < MF_ENGINE_REVOKE_BATCH_MAX ? crl_n - done
                                                              : MF_ENGINE_REVOKE_BATCH_MAX;
        for (size_t i = 0; i < k; i++)
            seqs[i] = done + i + 1;
        if (ops->revoke(e, seqs, k, results, err, sizeof(err)) != 0) {
            fprintf(stderr, "revoke: %s\n", err);
            return 1;
        }
        done += k;
    }
    uint64_t dt = mf_now_mono_ms() - t0;
    printf("revoke: %zu seqs in %llu ms (%.0f/s)\n", crl_n, (unsigned long long)dt,
           dt ? crl_n * 1000.0 / (double)dt : 0);
    t0 = mf_now_mono_ms();
    char *pem = NULL;
    if (mf_pki_crl_pem(e, mf_now_wall_ms(), 0, &pem) != 0) {
        fprintf(stderr, "crl failed\n");
        return 1;
    }
    dt = mf_now_mono_ms() - t0;
    printf("crl: %zu entries built and signed in %llu ms (%zu bytes of PEM)\n",
           mf_pki_revoked_count(e), (unsigned long long)dt, strlen(pem));
    free(pem);
    free(seqs);
    free(results);
    ops->close(e);
    return 0;
}

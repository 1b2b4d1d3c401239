/* Audit record cost: serialise + HMAC (request id and two secret fields) +
 * chain per record, in memory; then file appends in batches of 64 records
 * with one fdatasync per batch (the server's group commit).
 *
 *   audit_bench [-n RECORDS] [-a APPEND_RECORDS] [-d DIR]
 *
 * Prints one line:
 *   audit records=N format_us_p50=.. format_us_p99=.. format_records_per_s=..
 *         append_records=M append_batch64_ms_p50=.. append_batch64_ms_p99=..
 *         append_records_per_s=..
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "audit/chain.h"
#include "audit/file.h"
#include "audit/record.h"

#define BATCH_RECORDS 64

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t pct(uint64_t *v, size_t n, double p)
{
    qsort(v, n, sizeof(*v), cmp_u64);
    size_t i = (size_t)(p * (double)(n - 1));
    return v[i];
}

static const struct mf_audit_claim CLAIMS[] = {
    {"sub", "system:serviceaccount:payments:api"},
    {"namespace", "payments"},
    {"service_account", "api"},
};
static const char TOKEN[] = "mft.0123456789abcdef0123456789abcdef";
static const char VALUE[] = "{\"password\":\"correct horse battery staple\"}";
static const struct mf_audit_secret SECRETS[] = {
    {"token", TOKEN, sizeof(TOKEN) - 1, MF_AUDIT_SECRET_HMAC},
    {"value", VALUE, sizeof(VALUE) - 1, MF_AUDIT_SECRET_HMAC},
};

static struct mf_audit_record record(uint64_t i, char *id, size_t id_len)
{
    snprintf(id, id_len, "n1-%llu", (unsigned long long)i);
    struct mf_audit_record r = {
        .time_ms = 1700000000000ull + i,
        .node_id = "n1",
        .record_id = id,
        .request_id = "6f9619ff-8b86-d011-b42d-00cf4fc964ff",
        .client_addr = "10.1.2.3:51234",
        .identity = {.auth_method = "jwt", .role = "payments-api", .accessor = "acc-0123456789",
                     .claims = CLAIMS, .claims_n = 3},
        .operation = "kv.put",
        .path = "secret/data/payments/db",
        .decision = {.allowed = true, .policy = "payments", .rule = "secret/data/payments/*"},
        .result = "OK",
        .secrets = SECRETS,
        .secrets_n = 2,
    };
    return r;
}

int main(int argc, char **argv)
{
    size_t n = 100000, append_n = 32000;
    const char *dir = ".";
    int opt;
    while ((opt = getopt(argc, argv, "n:a:d:")) != -1) {
        if (opt == 'n')
            n = strtoull(optarg, NULL, 10);
        else if (opt == 'a')
            append_n = strtoull(optarg, NULL, 10);
        else if (opt == 'd')
            dir = optarg;
        else {
            fprintf(stderr, "usage: %s [-n RECORDS] [-a APPEND_RECORDS] [-d DIR]\n", argv[0]);
            return 2;
        }
    }
    if (n == 0 || append_n < BATCH_RECORDS) {
        fprintf(stderr, "audit_bench: -n must be > 0 and -a at least %d\n", BATCH_RECORDS);
        return 2;
    }
    static const uint8_t key[MF_AUDIT_KEY_BYTES] = {42};
    struct mf_audit_keys k;
    if (mf_audit_keys_derive(key, &k) != 0)
        return 1;

    /* 1. Format + HMAC + chain, in memory. */
    uint64_t *ns = calloc(n, sizeof(*ns));
    static char line[MF_AUDIT_LINE_MAX + 1];
    char id[32];
    size_t len = 0;
    struct mf_audit_chain c;
    if (!ns || mf_audit_chain_start(&c, k.chain_key, "0123456789abcdef0123456789abcdef") != 0 ||
        mf_audit_chain_format_start(&c, &k, "n1", 0, NULL, line, sizeof(line), &len) != 0)
        return 1;
    uint64_t t0 = now_ns();
    for (size_t i = 0; i < n; i++) {
        struct mf_audit_record r = record(i, id, sizeof(id));
        uint64_t a = now_ns();
        if (mf_audit_chain_format(&c, &k, &r, line, sizeof(line), &len) != 0)
            return 1;
        ns[i] = now_ns() - a;
    }
    double fmt_s = (double)(now_ns() - t0) / 1e9;
    double fmt_p50 = (double)pct(ns, n, 0.50) / 1e3, fmt_p99 = (double)pct(ns, n, 0.99) / 1e3;
    free(ns);

    /* 2. File appends, one fdatasync per batch of 64. */
    char path[4096];
    snprintf(path, sizeof(path), "%s/audit_bench.%d.log", dir, (int)getpid());
    struct mf_audit_file f;
    char err[256];
    if (mf_audit_file_open(&f, path, &k, NULL, err, sizeof(err)) != 0) {
        fprintf(stderr, "audit_bench: %s\n", err);
        return 1;
    }
    size_t batches = append_n / BATCH_RECORDS;
    uint64_t *bt = calloc(batches, sizeof(*bt));
    if (!bt)
        return 1;
    t0 = now_ns();
    for (size_t b = 0; b < batches; b++) {
        uint64_t a = now_ns();
        for (size_t j = 0; j < BATCH_RECORDS; j++) {
            struct mf_audit_record r = record(b * BATCH_RECORDS + j, id, sizeof(id));
            if (mf_audit_file_stage(&f, &r) != 0)
                return 1;
        }
        if (mf_audit_file_flush(&f, err, sizeof(err)) != 0) {
            fprintf(stderr, "audit_bench: %s\n", err);
            return 1;
        }
        bt[b] = now_ns() - a;
    }
    double app_s = (double)(now_ns() - t0) / 1e9;
    mf_audit_file_close(&f);
    struct mf_audit_verify_result res;
    uint64_t v0 = now_ns();
    int vrc = mf_audit_verify_file(path, k.chain_key, NULL, 0, &res);
    double verify_s = (double)(now_ns() - v0) / 1e9;
    unlink(path);
    if (vrc != 0 || !res.ok) {
        fprintf(stderr, "audit_bench: the written file does not verify: %s\n", res.reason);
        return 1;
    }
    printf("audit records=%zu format_us_p50=%.2f format_us_p99=%.2f format_records_per_s=%.0f "
           "append_records=%zu append_batch64_ms_p50=%.3f append_batch64_ms_p99=%.3f "
           "append_records_per_s=%.0f verify_records_per_s=%.0f\n",
           n, fmt_p50, fmt_p99, (double)n / fmt_s, batches * BATCH_RECORDS,
           (double)pct(bt, batches, 0.50) / 1e6, (double)pct(bt, batches, 0.99) / 1e6,
           (double)(batches * BATCH_RECORDS) / app_s, (double)res.records / verify_s);
    free(bt);
    mf_audit_keys_wipe(&k);
    return 0;
}

/* Snapshots of the state database: round trip to a fresh store, and refusal
 * of truncated, corrupted, foreign or older snapshots with the store left
 * unchanged. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "../store/fsm_testlib.h"
#include "common/err.h"
#include "store/snapshot.h"

#define T0 1700000000000ULL

static void fill(struct tf *t, int n)
{
    assert_int_equal(tf_token(t, T0, 1, "acc", 0, 0), 0);
    for (int i = 1; i <= n; i++) {
        char path[32];
        assert_int_equal(tf_grant_full(t, T0, (uint64_t)i, "db", "ro", 1000 + (uint64_t)i, 0,
                                       LSTATE(ACTIVE), 1),
                         0);
        snprintf(path, sizeof(path), "app/%d", i);
        assert_int_equal(tf_kv_put(t, T0, path, "CIPHERTEXT", 0, 0, i % 3 ? 0 : (uint64_t)i), 0);
    }
    t->rid = "r1";
    assert_int_equal(tf_revoke(t, T0 + 1, 2), 0);
}

static void snap_path(const struct tf *t, char *buf, size_t len)
{
    snprintf(buf, len, "%s/snap.bin", t->dir);
}

/* A snapshot installed on a fresh store gives byte-identical state and the
 * same applied index, and both stores then evolve identically. */
static void test_store_snapshot_round_trip(void **s)
{
    (void)s;
    struct tf a, b;
    tf_open(&a);
    tf_open(&b);
    fill(&a, 200);
    char path[256], err[256] = "";
    snap_path(&a, path, sizeof(path));
    uint64_t idx = 0, idx2 = 0;
    assert_int_equal(mf_snapshot_create(tf_st(&a), path, &idx, err, sizeof(err)), 0);
    assert_int_equal(idx, mf_fsm_applied(a.fsm));
    assert_int_equal(mf_snapshot_verify(path, &idx2, err, sizeof(err)), 0);
    assert_int_equal(idx2, idx);
    assert_int_equal(mf_snapshot_install(b.fsm, path, &idx2, err, sizeof(err)), 0);
    assert_int_equal(idx2, idx);
    assert_int_equal(mf_fsm_applied(b.fsm), idx);
    assert_int_equal(mf_fsm_now(b.fsm), mf_fsm_now(a.fsm));
    uint8_t da[32], db[32];
    tf_digest(&a, 0, da);
    tf_digest(&b, 0, db);
    assert_memory_equal(da, db, 32);
    /* Same next commands, same state (idempotency table included). */
    b.index = a.index;
    for (struct tf *t = &a; t; t = t == &a ? &b : NULL) {
        t->rid = "r1";
        assert_int_equal(tf_revoke(t, T0 + 2, 2), 0);
        assert_true(t->last->duplicate);
        assert_int_equal(tf_grant(t, T0 + 3, 1000, 500, 0), 0);
    }
    tf_digest(&a, 0, da);
    tf_digest(&b, 0, db);
    assert_memory_equal(da, db, 32);
    /* Survives a restart of b. */
    mf_fsm_close(b.fsm);
    assert_int_equal(mf_fsm_open(b.dir, NULL, &b.fsm), 0);
    tf_digest(&b, 0, db);
    assert_memory_equal(da, db, 32);
    tf_close(&a);
    tf_close(&b);
}

static void copy_prefix(const char *from, const char *to, long keep, long flip_at)
{
    FILE *f = fopen(from, "rb"), *g = fopen(to, "wb");
    assert_non_null(f);
    assert_non_null(g);
    int c;
    long i = 0;
    while ((c = fgetc(f)) != EOF && (keep < 0 || i < keep)) {
        if (i == flip_at)
            c ^= 0x01;
        fputc(c, g);
        i++;
    }
    fclose(f);
    fclose(g);
}

static long file_size(const char *p)
{
    struct stat sb;
    assert_int_equal(stat(p, &sb), 0);
    return (long)sb.st_size;
}

/* A truncated snapshot is refused with a clear error; the store keeps its
 * state and applied index and no temporary file is left behind. */
static void test_store_snapshot_truncated_refused(void **s)
{
    (void)s;
    struct tf a, b;
    tf_open(&a);
    tf_open(&b);
    fill(&a, 50);
    fill(&b, 3);
    char path[256], bad[300], err[256] = "", fresh[300];
    snap_path(&a, path, sizeof(path));
    assert_int_equal(mf_snapshot_create(tf_st(&a), path, NULL, err, sizeof(err)), 0);
    snprintf(bad, sizeof(bad), "%s.trunc", path);
    copy_prefix(path, bad, file_size(path) / 2, -1);
    uint8_t d0[32], d1[32];
    tf_digest(&b, 0, d0);
    uint64_t applied = mf_fsm_applied(b.fsm);
    assert_int_equal(mf_snapshot_install(b.fsm, bad, NULL, err, sizeof(err)), MF_ECORRUPT);
    assert_non_null(strstr(err, "truncated"));
    assert_int_equal(mf_snapshot_verify(bad, NULL, err, sizeof(err)), MF_ECORRUPT);
    /* Truncated inside the header. */
    copy_prefix(path, bad, 20, -1);
    assert_int_equal(mf_snapshot_install(b.fsm, bad, NULL, err, sizeof(err)), MF_ECORRUPT);
    assert_non_null(strstr(err, "truncated"));
    tf_digest(&b, 0, d1);
    assert_memory_equal(d0, d1, 32);
    assert_int_equal(mf_fsm_applied(b.fsm), applied);
    snprintf(fresh, sizeof(fresh), "%s/state/data.mdb.new", b.dir);
    assert_int_not_equal(access(fresh, F_OK), 0);
    /* The store still works. */
    assert_int_equal(tf_grant(&b, T0 + 5, 900, 1000, 0), 0);
    tf_close(&a);
    tf_close(&b);
}

/* A flipped bit fails the checksum, a wrong magic is not a snapshot, an
 * older snapshot would move the applied index backwards: all refused. */
static void test_store_snapshot_corrupt_magic_older_refused(void **s)
{
    (void)s;
    struct tf a, b;
    tf_open(&a);
    tf_open(&b);
    fill(&a, 20);
    char path[256], bad[300], err[256] = "";
    snap_path(&a, path, sizeof(path));
    assert_int_equal(mf_snapshot_create(tf_st(&a), path, NULL, err, sizeof(err)), 0);
    snprintf(bad, sizeof(bad), "%s.bad", path);
    uint8_t d0[32], d1[32];
    tf_digest(&b, 0, d0);
    copy_prefix(path, bad, -1, file_size(path) - 100);
    assert_int_equal(mf_snapshot_install(b.fsm, bad, NULL, err, sizeof(err)), MF_ECORRUPT);
    assert_non_null(strstr(err, "checksum"));
    copy_prefix(path, bad, -1, 0);
    assert_int_equal(mf_snapshot_install(b.fsm, bad, NULL, err, sizeof(err)), MF_ECORRUPT);
    assert_non_null(strstr(err, "magic"));
    tf_digest(&b, 0, d1);
    assert_memory_equal(d0, d1, 32);
    /* b moves past a's index: a's snapshot is now older. */
    fill(&b, 40);
    assert_true(mf_fsm_applied(b.fsm) > mf_fsm_applied(a.fsm));
    tf_digest(&b, 0, d0);
    assert_int_equal(mf_snapshot_install(b.fsm, path, NULL, err, sizeof(err)), MF_EINVAL);
    assert_non_null(strstr(err, "older"));
    tf_digest(&b, 0, d1);
    assert_memory_equal(d0, d1, 32);
    tf_close(&a);
    tf_close(&b);
}

/* A well-formed snapshot file (right header, right checksum) whose data is an
 * LMDB database that is not ours is refused, and the store is unchanged. */
static void test_store_snapshot_foreign_database_refused(void **s)
{
    (void)s;
    struct tf b;
    tf_open(&b);
    fill(&b, 3);
    /* A foreign LMDB file with a single unnamed database. */
    char lm[300], path[300], err[256] = "";
    snprintf(lm, sizeof(lm), "%s/foreign.mdb", b.dir);
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_open(env, lm, MDB_NOSUBDIR, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, NULL, 0, &dbi), 0);
    MDB_val k = {5, "hello"}, d = {5, "world"};
    assert_int_equal(mdb_put(txn, dbi, &k, &d, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    /* Wrap it in a valid header. */
    FILE *f = fopen(lm, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *data = malloc((size_t)n);
    assert_int_equal(fread(data, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    uint8_t hb[MF_SNAPSHOT_HEADER_LEN] = {0};
    memcpy(hb, MF_SNAPSHOT_MAGIC, 8);
    hb[11] = MF_SNAPSHOT_VERSION;
    hb[15] = MF_SNAPSHOT_HEADER_LEN;
    mf_be64_put(hb + 16, 1000);
    mf_be64_put(hb + 24, (uint64_t)n);
    unsigned int mdlen;
    assert_int_equal(EVP_Digest(data, (size_t)n, hb + 32, &mdlen, EVP_sha256(), NULL), 1);
    snprintf(path, sizeof(path), "%s/foreign.snap", b.dir);
    f = fopen(path, "wb");
    assert_non_null(f);
    fwrite(hb, 1, sizeof(hb), f);
    fwrite(data, 1, (size_t)n, f);
    fclose(f);
    free(data);
    assert_int_equal(mf_snapshot_verify(path, NULL, err, sizeof(err)), 0); /* the frame is fine */
    uint8_t d0[32], d1[32];
    tf_digest(&b, 0, d0);
    assert_int_equal(mf_snapshot_install(b.fsm, path, NULL, err, sizeof(err)), MF_ECORRUPT);
    assert_non_null(strstr(err, "lacks database"));
    tf_digest(&b, 0, d1);
    assert_memory_equal(d0, d1, 32);
    tf_close(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_store_snapshot_round_trip),
        cmocka_unit_test(test_store_snapshot_truncated_refused),
        cmocka_unit_test(test_store_snapshot_corrupt_magic_older_refused),
        cmocka_unit_test(test_store_snapshot_foreign_database_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Backup files (store/backup.h): a round trip gives back the snapshot; one
 * changed byte anywhere is refused (by the plain checksum, or by the MAC when
 * the checksum is fixed up too); another root key, a truncated or an extended
 * file are refused; the file holds no plaintext of a secret marker. */
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
#include "store/backup.h"
#include "store/snapshot.h"

#define T0 1700000000000ULL

static const uint8_t ROOT[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
static const uint8_t OTHER_ROOT[32] = {9, 9, 9};

struct fixture {
    struct tf t;
    struct mf_barrier *b;
    uint8_t *blob;
    size_t blob_len;
    char snap[256], backup[256], out[256];
    struct mf_backup_info info;
};

static struct mf_barrier *barrier_with(const uint8_t *root, const uint8_t *blob, size_t len)
{
    struct mf_barrier *b;
    assert_int_equal(mf_barrier_new(&b), 0);
    if (blob) {
        assert_int_equal(mf_barrier_unseal(b, root, blob, len), 0);
    } else {
        struct mf_barrier_seal_config cfg = {.type = MF_SEAL_SHAMIR, .shares = 5, .threshold = 3};
        assert_int_equal(mf_barrier_initialize(b, root, &cfg, T0), 0);
    }
    return b;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    tf_open(&f->t);
    assert_int_equal(tf_token(&f->t, T0, 1, "acc", 0, 0), 0);
    for (int i = 1; i <= 50; i++) {
        char path[32];
        snprintf(path, sizeof(path), "app/%d", i);
        assert_int_equal(tf_kv_put(&f->t, T0, path, "CIPHERTEXT", 0, 0, 0), 0);
    }
    f->b = barrier_with(ROOT, NULL, 0);
    assert_int_equal(mf_barrier_keyring_export(f->b, &f->blob, &f->blob_len), 0);
    snprintf(f->snap, sizeof(f->snap), "%s/snap.bin", f->t.dir);
    snprintf(f->backup, sizeof(f->backup), "%s/backup.bin", f->t.dir);
    snprintf(f->out, sizeof(f->out), "%s/out.bin", f->t.dir);
    char err[256] = "";
    uint64_t idx = 0;
    assert_int_equal(mf_snapshot_create(tf_st(&f->t), f->snap, &idx, err, sizeof(err)), 0);
    assert_int_equal(mf_backup_write(f->b, f->snap, f->blob, f->blob_len, idx, 7, T0 + 5,
                                     f->backup, &f->info, err, sizeof(err)),
                     0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    mf_barrier_free(f->b);
    free(f->blob);
    tf_close(&f->t);
    free(f);
    return 0;
}

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    *len = (size_t)ftell(fp);
    fseek(fp, 0, SEEK_SET);
    uint8_t *p = malloc(*len ? *len : 1);
    assert_int_equal(fread(p, 1, *len, fp), *len);
    fclose(fp);
    return p;
}

static void spit(const char *path, const uint8_t *p, size_t len)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(p, 1, len, fp), len);
    fclose(fp);
}

/* A written backup checks, verifies under the root key, and gives back the
 * very snapshot it wraps; its header repeats the index, term and seal. */
static void test_store_backup_round_trip(void **state)
{
    struct fixture *f = *state;
    char err[256] = "";
    struct mf_backup_info info;
    uint8_t *kr = NULL;
    size_t klen = 0;
    assert_int_equal(mf_backup_check(f->backup, &info, &kr, &klen, err, sizeof(err)), 0);
    assert_int_equal(info.index, f->info.index);
    assert_int_equal(info.term, 7);
    assert_int_equal(info.created_ms, T0 + 5);
    assert_int_equal(info.seal.threshold, 3);
    assert_int_equal(info.seal.shares, 5);
    assert_int_equal(info.key_term, 1);
    assert_memory_equal(info.sha256, f->info.sha256, 32);
    assert_int_equal(klen, f->blob_len);
    assert_memory_equal(kr, f->blob, klen);
    struct stat sb;
    assert_int_equal(stat(f->backup, &sb), 0);
    assert_int_equal((uint64_t)sb.st_size, info.total_len);
    assert_int_equal(sb.st_mode & 0777, 0600);
    /* A barrier unsealed from the backup's own keyring verifies the MAC. */
    struct mf_barrier *b2 = barrier_with(ROOT, kr, klen);
    assert_int_equal(mf_backup_verify_mac(b2, f->backup, err, sizeof(err)), 0);
    mf_barrier_free(b2);
    free(kr);
    assert_int_equal(mf_backup_extract(f->backup, f->out, err, sizeof(err)), 0);
    size_t a_len, b_len;
    uint8_t *a = slurp(f->snap, &a_len), *b = slurp(f->out, &b_len);
    assert_int_equal(a_len, b_len);
    assert_memory_equal(a, b, a_len);
    free(a);
    free(b);
}

/* Every single changed byte is refused: by the checksum at once, except in
 * the MAC itself, which only the MAC check (with the key) finds. */
static void test_store_backup_tamper_anywhere(void **state)
{
    struct fixture *f = *state;
    size_t len;
    uint8_t *orig = slurp(f->backup, &len);
    char err[256];
    struct mf_backup_info info;
    size_t step = len / 97 ? len / 97 : 1;
    for (size_t off = 0; off < len; off += off < 160 || off >= len - 80 ? 1 : step) {
        orig[off] ^= 0x20;
        spit(f->out, orig, len);
        orig[off] ^= 0x20;
        int rc_check = mf_backup_check(f->out, &info, NULL, NULL, err, sizeof(err));
        int rc_mac = mf_backup_verify_mac(f->b, f->out, err, sizeof(err));
        if (off >= len - 32) { /* the MAC: the checksum still holds */
            assert_int_equal(rc_check, 0);
            assert_int_equal(rc_mac, MF_ECORRUPT);
            assert_string_equal(err, "backup fails its MAC");
        } else {
            assert_int_equal(rc_check, MF_ECORRUPT);
            assert_int_equal(rc_mac, MF_ECORRUPT);
        }
    }
    free(orig);
}

/* An edit whose plain checksum is recomputed (what someone adding a root
 * token would do) passes the keyless check and fails the MAC. */
static void test_store_backup_fixed_checksum_fails_mac(void **state)
{
    struct fixture *f = *state;
    size_t len;
    uint8_t *p = slurp(f->backup, &len);
    p[f->info.header_len + 200] ^= 1; /* inside the LMDB data */
    /* The snapshot's own checksum, then the backup's, recomputed. */
    const size_t h = f->info.header_len;
    unsigned n;
    EVP_Digest(p + h + MF_SNAPSHOT_HEADER_LEN, f->info.data_len - MF_SNAPSHOT_HEADER_LEN,
               p + h + 32, &n, EVP_sha256(), NULL);
    EVP_Digest(p, len - MF_BACKUP_TRAILER_LEN, p + len - MF_BACKUP_TRAILER_LEN, &n, EVP_sha256(),
               NULL);
    spit(f->out, p, len);
    free(p);
    char err[256];
    struct mf_backup_info info;
    assert_int_equal(mf_backup_check(f->out, &info, NULL, NULL, err, sizeof(err)), 0);
    assert_int_equal(mf_backup_verify_mac(f->b, f->out, err, sizeof(err)), MF_ECORRUPT);
    assert_string_equal(err, "backup fails its MAC");
}

/* Another cluster's root key cannot verify the backup. */
static void test_store_backup_wrong_root_key(void **state)
{
    struct fixture *f = *state;
    struct mf_barrier *other = barrier_with(OTHER_ROOT, NULL, 0);
    char err[256];
    assert_int_equal(mf_backup_verify_mac(other, f->backup, err, sizeof(err)), MF_ECORRUPT);
    assert_string_equal(err, "backup fails its MAC");
    mf_barrier_free(other);
    /* ... nor can a sealed barrier. */
    struct mf_barrier *sealed;
    assert_int_equal(mf_barrier_new(&sealed), 0);
    assert_int_equal(mf_backup_verify_mac(sealed, f->backup, err, sizeof(err)), MF_ESEALED);
    mf_barrier_free(sealed);
}

/* A truncated (at every kind of boundary) or extended file is refused by
 * check, MAC and extract alike. */
static void test_store_backup_truncated(void **state)
{
    struct fixture *f = *state;
    size_t len;
    uint8_t *p = slurp(f->backup, &len);
    size_t cuts[] = {0, 7, 50, MF_BACKUP_FIXED_LEN, f->info.header_len + 10, len - 33, len - 1};
    char err[256];
    struct mf_backup_info info;
    for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
        spit(f->out, p, cuts[i]);
        assert_int_equal(mf_backup_check(f->out, &info, NULL, NULL, err, sizeof(err)),
                         MF_ECORRUPT);
        assert_int_equal(mf_backup_verify_mac(f->b, f->out, err, sizeof(err)), MF_ECORRUPT);
        assert_int_not_equal(mf_backup_extract(f->out, f->snap, err, sizeof(err)), 0);
    }
    uint8_t *q = malloc(len + 1);
    memcpy(q, p, len);
    q[len] = 0;
    spit(f->out, q, len + 1);
    assert_int_equal(mf_backup_check(f->out, &info, NULL, NULL, err, sizeof(err)), MF_ECORRUPT);
    free(q);
    free(p);
}

/* The wrapped data is the state database as stored: the marker a value was
 * encrypted to never appears in clear, since values are ciphertext already;
 * the file writes refuse an unreadable keyring. */
static void test_store_backup_bad_inputs(void **state)
{
    struct fixture *f = *state;
    char err[256];
    uint8_t junk[40] = {0};
    assert_int_equal(mf_backup_write(f->b, f->snap, junk, sizeof(junk), 1, 1, T0, f->out, NULL,
                                     err, sizeof(err)),
                     MF_EINVAL);
    assert_int_not_equal(access(f->out, F_OK), 0);
    struct mf_barrier *sealed;
    assert_int_equal(mf_barrier_new(&sealed), 0);
    assert_int_equal(mf_backup_write(sealed, f->snap, f->blob, f->blob_len, 1, 1, T0, f->out,
                                     NULL, err, sizeof(err)),
                     MF_ESEALED);
    assert_int_not_equal(access(f->out, F_OK), 0);
    mf_barrier_free(sealed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_store_backup_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_backup_tamper_anywhere, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_backup_fixed_checksum_fails_mac, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_store_backup_wrong_root_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_backup_truncated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_backup_bad_inputs, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

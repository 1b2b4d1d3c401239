/* Tests of src/store/seal.c: Shamir init and unseal, share checks, progress,
 * sealing, and the auto-unseal key file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <stdbool.h>
#include <fcntl.h>
#include <libgfshare.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "common/env.h"
#include "common/err.h"
#include "common/log.h"
#include "store/barrier.h"
#include "store/seal.h"
#include "tmpdir.h"

static char tmpdir[64]; /* a longer $TMPDIR makes setup fail */

static int make_tmpdir(void **state)
{
    (void)state;
    return mf_tmpdir_make("test-seal", tmpdir, sizeof(tmpdir));
}

static int remove_tmpdir(void **state)
{
    (void)state;
    return mf_tmpdir_remove(tmpdir);
}

/* One initialised node: its barrier, seal driver, shares and keyring blob, and
 * a ciphertext written before any seal. */
struct node {
    struct mf_barrier *b;
    struct mf_seal *s;
    char **shares;
    unsigned n;
    uint8_t *blob;
    size_t blob_len;
    uint8_t *ct;
    size_t ct_len;
};

static void node_init(struct node *nd, unsigned n, unsigned t)
{
    char err[MF_SEAL_ERR_LEN] = "";
    memset(nd, 0, sizeof(*nd));
    assert_int_equal(mf_barrier_new(&nd->b), 0);
    assert_int_equal(mf_seal_new(nd->b, &nd->s), 0);
    assert_int_equal(mf_seal_init_shamir(nd->s, n, t, 1000, &nd->shares, &nd->blob, &nd->blob_len,
                                         err, sizeof(err)),
                     0);
    nd->n = n;
    assert_false(mf_barrier_sealed(nd->b));
    assert_int_equal(mf_barrier_encrypt(nd->b, "kv/x", 1, "secret", 6, &nd->ct, &nd->ct_len), 0);
}

static void node_free(struct node *nd)
{
    mf_seal_shares_free(nd->shares, nd->n);
    free(nd->blob);
    free(nd->ct);
    mf_seal_free(nd->s);
    mf_barrier_free(nd->b);
}

/* The node can read what it wrote before sealing. */
static void expect_readable(struct node *nd)
{
    uint8_t *pt;
    size_t len;
    assert_int_equal(mf_barrier_decrypt(nd->b, "kv/x", 1, nd->ct, nd->ct_len, &pt, &len), 0);
    assert_int_equal(len, 6);
    assert_memory_equal(pt, "secret", 6);
    mf_barrier_wipe_free(pt, len);
}

static int give(struct node *nd, const char *share, struct mf_seal_status *st, char *err)
{
    return mf_seal_unseal(nd->s, share, nd->blob, nd->blob_len, st, err, MF_SEAL_ERR_LEN);
}

/* Shares have the documented text form and indexes 1..N, and libgfshare's
 * random source is ours, not NULL and not random(). */
static void test_store_seal_share_format(void **state)
{
    (void)state;
    struct node nd;
    node_init(&nd, 5, 3);
    for (unsigned i = 0; i < 5; i++) {
        const char *sh = nd.shares[i];
        char want[8];
        snprintf(want, sizeof(want), "mf1-%u-", i + 1);
        assert_int_equal(strncmp(sh, want, strlen(want)), 0);
        assert_int_equal(strlen(sh), strlen(want) + 64 + 1 + 8);
        for (size_t j = strlen(want); sh[j]; j++)
            assert_true(isxdigit((unsigned char)sh[j]) || (j == strlen(want) + 64 && sh[j] == '-'));
    }
    assert_non_null(gfshare_fill_rand);
    assert_true(gfshare_fill_rand != gfshare_bad_idea_but_fill_rand_using_random);
    struct mf_barrier_seal_config cfg;
    assert_int_equal(mf_barrier_blob_seal_config(nd.blob, nd.blob_len, &cfg), 0);
    assert_int_equal(cfg.type, MF_SEAL_SHAMIR);
    assert_int_equal(cfg.shares, 5);
    assert_int_equal(cfg.threshold, 3);
    node_free(&nd);
}

/* With 5 shares and threshold 3, every one of the 10 sets of 3 shares unseals
 * the node, which then reads what it wrote before. */
static void test_store_seal_any_three_of_five_unseal(void **state)
{
    (void)state;
    struct node nd;
    node_init(&nd, 5, 3);
    char err[MF_SEAL_ERR_LEN];
    int combos = 0;
    for (unsigned a = 0; a < 5; a++)
        for (unsigned b = a + 1; b < 5; b++)
            for (unsigned c = b + 1; c < 5; c++) {
                mf_seal_seal(nd.s);
                assert_true(mf_barrier_sealed(nd.b));
                struct mf_seal_status st;
                assert_int_equal(give(&nd, nd.shares[c], &st, err), 0);
                assert_int_equal(st.progress, 1);
                assert_int_equal(give(&nd, nd.shares[a], &st, err), 0);
                assert_int_equal(st.progress, 2);
                assert_true(st.sealed);
                assert_int_equal(give(&nd, nd.shares[b], &st, err), 0);
                assert_false(st.sealed);
                assert_int_equal(st.progress, 0);
                assert_int_equal(st.threshold, 3);
                expect_readable(&nd);
                combos++;
            }
    assert_int_equal(combos, 10);
    node_free(&nd);
}

/* Two shares of a 3-of-5 seal leave the node sealed and refusing to decrypt. */
static void test_store_seal_two_of_five_stay_sealed(void **state)
{
    (void)state;
    struct node nd;
    node_init(&nd, 5, 3);
    mf_seal_seal(nd.s);
    char err[MF_SEAL_ERR_LEN];
    struct mf_seal_status st;
    assert_int_equal(give(&nd, nd.shares[0], &st, err), 0);
    assert_int_equal(give(&nd, nd.shares[4], &st, err), 0);
    assert_true(st.sealed);
    assert_int_equal(st.progress, 2);
    uint8_t *pt = NULL;
    size_t len;
    assert_int_equal(mf_barrier_decrypt(nd.b, "kv/x", 1, nd.ct, nd.ct_len, &pt, &len), MF_ESEALED);
    assert_null(pt);
    mf_seal_reset(nd.s);
    mf_seal_status(nd.s, nd.blob, nd.blob_len, &st);
    assert_int_equal(st.progress, 0);
    node_free(&nd);
}

/* A share with a mistyped digit is refused at once with a message naming the
 * checksum, and does not count; nor does a malformed or out-of-range one. */
static void test_store_seal_corrupted_share_refused(void **state)
{
    (void)state;
    struct node nd;
    node_init(&nd, 5, 3);
    mf_seal_seal(nd.s);
    char err[MF_SEAL_ERR_LEN] = "";
    struct mf_seal_status st;
    assert_int_equal(give(&nd, nd.shares[0], &st, err), 0);

    char bad[MF_SEAL_SHARE_TEXT_MAX];
    strcpy(bad, nd.shares[1]);
    bad[10] = bad[10] == '0' ? '1' : '0';
    assert_int_equal(give(&nd, bad, &st, err), MF_EINVAL);
    assert_non_null(strstr(err, "checksum"));
    assert_int_equal(st.progress, 1);
    assert_null(strstr(err, bad + 6)); /* the message never echoes the share */

    assert_int_equal(give(&nd, "mf1-2-zz", &st, err), MF_EINVAL);
    assert_non_null(strstr(err, "malformed"));
    assert_int_equal(give(&nd, "hello", &st, err), MF_EINVAL);
    strcpy(bad, nd.shares[1]);
    bad[4] = '9'; /* index 9 of 5 */
    assert_int_equal(give(&nd, bad, &st, err), MF_EINVAL);
    assert_non_null(strstr(err, "does not exist"));
    assert_int_equal(give(&nd, NULL, &st, err), MF_EINVAL);
    assert_int_equal(st.progress, 1);
    assert_true(st.sealed);

    /* The real shares still work, in upper case with spaces around. */
    char upper[MF_SEAL_SHARE_TEXT_MAX + 4];
    snprintf(upper, sizeof(upper), "  %s\n", nd.shares[2]);
    for (char *p = upper; *p; p++)
        *p = (char)toupper((unsigned char)*p);
    assert_int_equal(give(&nd, nd.shares[1], &st, err), 0);
    assert_int_equal(give(&nd, upper, &st, err), 0);
    assert_false(st.sealed);
    node_free(&nd);
}

/* Builds the text of a share with a valid checksum from raw bytes, as the
 * format in seal.h defines it, to forge a wrong but well-formed share. */
static void forge_share(const uint8_t *seal_id, unsigned idx, const uint8_t *y, char *out)
{
    uint8_t in[15 + 16 + 1 + 32], md[32];
    unsigned md_len;
    memcpy(in, "mayfly/share/v1", 15);
    memcpy(in + 15, seal_id, 16);
    in[31] = (uint8_t)idx;
    memcpy(in + 32, y, 32);
    assert_int_equal(EVP_Digest(in, sizeof(in), md, &md_len, EVP_sha256(), NULL), 1);
    int n = sprintf(out, "mf1-%u-", idx);
    for (int i = 0; i < 32; i++)
        n += sprintf(out + n, "%02x", y[i]);
    out[n++] = '-';
    for (int i = 0; i < 4; i++)
        n += sprintf(out + n, "%02x", md[i]);
}

/* Parses the 32 share bytes out of a share's text. */
static void share_bytes(const char *text, uint8_t *y)
{
    const char *p = strchr(text + 4, '-') + 1;
    for (int i = 0; i < 32; i++) {
        unsigned v;
        assert_int_equal(sscanf(p + 2 * i, "%2x", &v), 1);
        y[i] = (uint8_t)v;
    }
}

/* A share that is well formed but wrong is only caught when the threshold is
 * reached: the combination fails the keyring check with a clear error,
 * progress is reset and the node stays sealed; the right shares then unseal. */
static void test_store_seal_wrong_combination_detected(void **state)
{
    (void)state;
    struct node nd;
    node_init(&nd, 5, 3);
    struct mf_barrier_seal_config cfg;
    assert_int_equal(mf_barrier_blob_seal_config(nd.blob, nd.blob_len, &cfg), 0);
    uint8_t y[32];
    share_bytes(nd.shares[2], y);
    y[7] ^= 0x40;
    char forged[MF_SEAL_SHARE_TEXT_MAX];
    forge_share(cfg.seal_id, 3, y, forged);

    mf_seal_seal(nd.s);
    char err[MF_SEAL_ERR_LEN] = "";
    struct mf_seal_status st;
    assert_int_equal(give(&nd, nd.shares[0], &st, err), 0);
    assert_int_equal(give(&nd, nd.shares[1], &st, err), 0);
    assert_int_equal(give(&nd, forged, &st, err), MF_EINVAL);
    assert_non_null(strstr(err, "do not reconstruct the root key"));
    assert_true(st.sealed);
    assert_int_equal(st.progress, 0);
    assert_true(mf_barrier_sealed(nd.b));

    assert_int_equal(give(&nd, nd.shares[0], &st, err), 0);
    assert_int_equal(give(&nd, nd.shares[1], &st, err), 0);
    assert_int_equal(give(&nd, nd.shares[2], &st, err), 0);
    assert_false(st.sealed);
    expect_readable(&nd);
    node_free(&nd);
}

/* Giving the same share twice counts it once; the same index with other
 * digits is refused without losing progress. */
static void test_store_seal_duplicate_share_not_counted(void **state)
{
    (void)state;
    struct node nd;
    node_init(&nd, 5, 3);
    mf_seal_seal(nd.s);
    char err[MF_SEAL_ERR_LEN];
    struct mf_seal_status st;
    assert_int_equal(give(&nd, nd.shares[3], &st, err), 0);
    assert_int_equal(give(&nd, nd.shares[3], &st, err), 0);
    assert_int_equal(give(&nd, nd.shares[3], &st, err), 0);
    assert_int_equal(st.progress, 1);
    assert_int_equal(give(&nd, nd.shares[1], &st, err), 0);
    assert_int_equal(give(&nd, nd.shares[1], &st, err), 0);
    assert_int_equal(st.progress, 2);
    assert_true(st.sealed);

    struct mf_barrier_seal_config cfg;
    assert_int_equal(mf_barrier_blob_seal_config(nd.blob, nd.blob_len, &cfg), 0);
    uint8_t y[32];
    share_bytes(nd.shares[1], y);
    y[0] ^= 1;
    char other[MF_SEAL_SHARE_TEXT_MAX];
    forge_share(cfg.seal_id, 2, y, other);
    assert_int_equal(give(&nd, other, &st, err), MF_EINVAL);
    assert_non_null(strstr(err, "already given"));
    assert_int_equal(st.progress, 2);

    assert_int_equal(give(&nd, nd.shares[0], &st, err), 0);
    assert_false(st.sealed);
    node_free(&nd);
}

/* A share of another cluster fails its checksum (bound to the seal id). */
static void test_store_seal_share_of_other_cluster_refused(void **state)
{
    (void)state;
    struct node a, b;
    node_init(&a, 3, 2);
    node_init(&b, 3, 2);
    mf_seal_seal(a.s);
    char err[MF_SEAL_ERR_LEN] = "";
    struct mf_seal_status st;
    assert_int_equal(give(&a, b.shares[0], &st, err), MF_EINVAL);
    assert_non_null(strstr(err, "another cluster"));
    assert_int_equal(st.progress, 0);
    node_free(&a);
    node_free(&b);
}

/* After seal, the barrier refuses encrypt and decrypt with MF_ESEALED and the
 * status says sealed; unsealing again restores access. */
static void test_store_seal_seal_wipes(void **state)
{
    (void)state;
    struct node nd;
    node_init(&nd, 3, 2);
    char err[MF_SEAL_ERR_LEN];
    struct mf_seal_status st;
    assert_int_equal(give(&nd, nd.shares[0], &st, err), 0); /* already unsealed: a no-op */
    assert_false(st.sealed);
    mf_seal_seal(nd.s);
    mf_seal_status(nd.s, nd.blob, nd.blob_len, &st);
    assert_true(st.initialized);
    assert_true(st.sealed);
    uint8_t *out = NULL;
    size_t len;
    assert_int_equal(mf_barrier_encrypt(nd.b, "kv/y", 2, "v", 1, &out, &len), MF_ESEALED);
    assert_int_equal(mf_barrier_decrypt(nd.b, "kv/x", 1, nd.ct, nd.ct_len, &out, &len),
                     MF_ESEALED);
    assert_null(out);
    assert_int_equal(give(&nd, nd.shares[2], &st, err), 0);
    assert_int_equal(give(&nd, nd.shares[0], &st, err), 0);
    assert_false(st.sealed);
    expect_readable(&nd);
    node_free(&nd);
}

/* Init refuses bad share counts and thresholds, and a node that is unsealed;
 * one share of threshold one works; 255 shares work, indexes up to 255. */
static void test_store_seal_init_parameters(void **state)
{
    (void)state;
    struct mf_barrier *b;
    struct mf_seal *s;
    assert_int_equal(mf_barrier_new(&b), 0);
    assert_int_equal(mf_seal_new(b, &s), 0);
    char **shares = NULL;
    uint8_t *blob = NULL;
    size_t len;
    char err[MF_SEAL_ERR_LEN];
    unsigned bad[][2] = {{0, 0}, {3, 4}, {5, 1}, {3, 0}, {256, 3}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(mf_seal_init_shamir(s, bad[i][0], bad[i][1], 0, &shares, &blob, &len,
                                             err, sizeof(err)),
                         MF_EINVAL);
        assert_null(shares);
        assert_true(mf_barrier_sealed(b));
    }
    assert_int_equal(mf_seal_init_shamir(s, 1, 1, 0, &shares, &blob, &len, err, sizeof(err)), 0);
    char **again;
    uint8_t *blob2;
    size_t len2;
    assert_int_equal(mf_seal_init_shamir(s, 1, 1, 0, &again, &blob2, &len2, err, sizeof(err)),
                     MF_EEXISTS);
    assert_null(again);
    assert_null(blob2);
    mf_seal_seal(s);
    struct mf_seal_status st;
    assert_int_equal(mf_seal_unseal(s, shares[0], blob, len, &st, err, sizeof(err)), 0);
    assert_false(st.sealed);
    mf_seal_shares_free(shares, 1);
    free(blob);
    mf_seal_free(s);
    mf_barrier_free(b);

    struct node nd;
    node_init(&nd, 255, 2);
    mf_seal_seal(nd.s);
    assert_int_equal(strncmp(nd.shares[254], "mf1-255-", 8), 0);
    assert_int_equal(give(&nd, nd.shares[254], &st, err), 0);
    assert_int_equal(give(&nd, nd.shares[99], &st, err), 0);
    assert_false(st.sealed);
    expect_readable(&nd);
    node_free(&nd);
}

/* Without a keyring blob the node is not initialised: unseal says so. */
static void test_store_seal_not_initialized(void **state)
{
    (void)state;
    struct mf_barrier *b;
    struct mf_seal *s;
    assert_int_equal(mf_barrier_new(&b), 0);
    assert_int_equal(mf_seal_new(b, &s), 0);
    char err[MF_SEAL_ERR_LEN];
    struct mf_seal_status st;
    assert_int_equal(mf_seal_unseal(s, "mf1-1-00", NULL, 0, &st, err, sizeof(err)), MF_ENOTINIT);
    assert_false(st.initialized);
    assert_true(st.sealed);
    assert_int_equal(mf_seal_unseal_keyfile(s, "/nonexistent", NULL, 0, err, sizeof(err)),
                     MF_ENOTINIT);
    mf_seal_free(s);
    mf_barrier_free(b);
}

static const char *path_in_tmp(const char *name)
{
    static char path[128];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    return path;
}

static void write_file(const char *path, const void *data, size_t len, mode_t mode)
{
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

/* A key file readable by group or others, or not a regular file, is refused
 * with MF_EPERM and a message; 0600 and 0400 files of raw or hex keys are read;
 * a file of the wrong size is refused. */
static void test_store_seal_keyfile_permissions(void **state)
{
    (void)state;
    uint8_t key[32], raw[32];
    char err[MF_SEAL_ERR_LEN] = "";
    for (int i = 0; i < 32; i++)
        raw[i] = (uint8_t)(0xf0 ^ i);
    const char *p = path_in_tmp("key.raw");
    mode_t bad_modes[] = {0644, 0640, 0604, 0660, 0601, 0620};
    for (size_t i = 0; i < sizeof(bad_modes) / sizeof(bad_modes[0]); i++) {
        write_file(p, raw, 32, bad_modes[i]);
        assert_int_equal(mf_seal_keyfile_read(p, key, err, sizeof(err)), MF_EPERM);
        assert_non_null(strstr(err, "chmod 600"));
    }
    write_file(p, raw, 32, 0600);
    assert_int_equal(mf_seal_keyfile_read(p, key, err, sizeof(err)), 0);
    assert_memory_equal(key, raw, 32);
    write_file(p, raw, 32, 0400);
    assert_int_equal(mf_seal_keyfile_read(p, key, err, sizeof(err)), 0);

    char hex[66];
    for (int i = 0; i < 32; i++)
        sprintf(hex + 2 * i, "%02X", raw[i]);
    hex[64] = '\n';
    const char *h = path_in_tmp("key.hex");
    write_file(h, hex, 65, 0600);
    memset(key, 0, sizeof(key));
    assert_int_equal(mf_seal_keyfile_read(h, key, err, sizeof(err)), 0);
    assert_memory_equal(key, raw, 32);

    write_file(h, hex, 40, 0600);
    assert_int_equal(mf_seal_keyfile_read(h, key, err, sizeof(err)), MF_EINVAL);
    write_file(h, "0123", 4, 0600);
    assert_int_equal(mf_seal_keyfile_read(h, key, err, sizeof(err)), MF_EINVAL);
    assert_int_equal(mf_seal_keyfile_read(tmpdir, key, err, sizeof(err)), MF_EPERM);
    assert_true(mf_seal_keyfile_read(path_in_tmp("missing"), key, err, sizeof(err)) < 0);
}

/* Init with a key file stores a blob from which a restarted node unseals
 * itself with the same file; another key, a world-readable file, Shamir
 * shares, and a key file on a Shamir seal are all refused. */
static void test_store_seal_keyfile_auto_unseal(void **state)
{
    (void)state;
    char err[MF_SEAL_ERR_LEN] = "";
    const char *kp = path_in_tmp("auto.key");
    char key_path[128];
    strcpy(key_path, kp);
    unlink(key_path);
    assert_int_equal(mf_seal_keyfile_create(key_path, err, sizeof(err)), 0);
    struct stat stt;
    assert_int_equal(stat(key_path, &stt), 0);
    assert_int_equal(stt.st_mode & 0777, 0600);
    assert_int_equal(mf_seal_keyfile_create(key_path, err, sizeof(err)), MF_EEXISTS);

    struct mf_barrier *b;
    struct mf_seal *s;
    assert_int_equal(mf_barrier_new(&b), 0);
    assert_int_equal(mf_seal_new(b, &s), 0);
    uint8_t *blob, *ct;
    size_t blob_len, ct_len;
    assert_int_equal(mf_seal_init_keyfile(s, key_path, 5, &blob, &blob_len, err, sizeof(err)), 0);
    assert_int_equal(mf_barrier_encrypt(b, "kv/x", 1, "secret", 6, &ct, &ct_len), 0);
    mf_seal_free(s);
    mf_barrier_free(b); /* the node stops */

    assert_int_equal(mf_barrier_new(&b), 0); /* and starts again */
    assert_int_equal(mf_seal_new(b, &s), 0);
    struct mf_seal_status st;
    mf_seal_status(s, blob, blob_len, &st);
    assert_true(st.initialized);
    assert_true(st.sealed);
    assert_int_equal(st.type, MF_SEAL_KEYFILE);

    const char *other = path_in_tmp("other.key");
    char other_path[128];
    strcpy(other_path, other);
    assert_int_equal(mf_seal_keyfile_create(other_path, err, sizeof(err)), 0);
    assert_int_equal(mf_seal_unseal_keyfile(s, other_path, blob, blob_len, err, sizeof(err)),
                     MF_EINVAL);
    assert_non_null(strstr(err, "does not open"));
    assert_int_equal(chmod(key_path, 0644), 0);
    assert_int_equal(mf_seal_unseal_keyfile(s, key_path, blob, blob_len, err, sizeof(err)),
                     MF_EPERM);
    assert_int_equal(chmod(key_path, 0600), 0);
    assert_int_equal(mf_seal_unseal(s, "mf1-1-00", blob, blob_len, &st, err, sizeof(err)),
                     MF_EINVAL);
    assert_non_null(strstr(err, "key file"));
    assert_true(mf_barrier_sealed(b));

    assert_int_equal(mf_seal_unseal_keyfile(s, key_path, blob, blob_len, err, sizeof(err)), 0);
    assert_false(mf_barrier_sealed(b));
    uint8_t *pt;
    size_t len;
    assert_int_equal(mf_barrier_decrypt(b, "kv/x", 1, ct, ct_len, &pt, &len), 0);
    assert_memory_equal(pt, "secret", 6);
    mf_barrier_wipe_free(pt, len);
    assert_int_equal(mf_seal_unseal_keyfile(s, key_path, blob, blob_len, err, sizeof(err)),
                     MF_EEXISTS);

    /* A Shamir seal refuses a key file. */
    struct node nd;
    node_init(&nd, 3, 2);
    mf_seal_seal(nd.s);
    assert_int_equal(mf_seal_unseal_keyfile(nd.s, key_path, nd.blob, nd.blob_len, err,
                                            sizeof(err)),
                     MF_EINVAL);
    assert_non_null(strstr(err, "Shamir"));
    node_free(&nd);
    free(blob);
    free(ct);
    mf_seal_free(s);
    mf_barrier_free(b);
}

/* Progress made against one cluster's blob does not count for another blob. */
static void test_store_seal_progress_follows_blob(void **state)
{
    (void)state;
    struct node a, b;
    node_init(&a, 3, 2);
    node_init(&b, 3, 2);
    mf_seal_seal(a.s);
    char err[MF_SEAL_ERR_LEN];
    struct mf_seal_status st;
    assert_int_equal(give(&a, a.shares[0], &st, err), 0);
    assert_int_equal(st.progress, 1);
    /* The node's stored blob is replaced (say, by a snapshot of another
     * cluster): the old share no longer counts. */
    assert_int_equal(mf_seal_unseal(a.s, b.shares[1], b.blob, b.blob_len, &st, err, sizeof(err)),
                     0);
    assert_int_equal(st.progress, 1);
    assert_true(st.sealed);
    node_free(&a);
    node_free(&b);
}

/* A predictable random source (xorshift), so the test knows the keys the
 * barrier draws without the barrier ever handing them out. */
static uint64_t door_state;
static uint64_t door_next(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}
static int door_rand(void *ctx, void *buf, size_t len)
{
    (void)ctx;
    for (size_t i = 0; i < len; i++)
        ((uint8_t *)buf)[i] = (uint8_t)door_next(&door_state);
    return 0;
}
static uint64_t door_ms(void *ctx)
{
    (void)ctx;
    return 0;
}

/* Bytes [from, from + len) of the door's stream from `seed`. */
static void door_bytes(uint64_t seed, size_t from, uint8_t *out, size_t len)
{
    uint64_t x = seed;
    for (size_t i = 0; i < from; i++)
        (void)door_next(&x);
    for (size_t i = 0; i < len; i++)
        out[i] = (uint8_t)door_next(&x);
}

/* Whether any readable and writable mapping of this process holds `needle`,
 * not counting the needle itself. */
static bool memory_holds(const uint8_t *needle, size_t len)
{
    FILE *f = fopen("/proc/self/maps", "r");
    assert_non_null(f);
    char line[512];
    bool found = false;
    while (!found && fgets(line, sizeof(line), f)) {
        unsigned long lo, hi;
        char perms[8];
        if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) != 3 || perms[0] != 'r' ||
            perms[1] != 'w' || strstr(line, "[vvar"))
            continue;
        const uint8_t *p = (const uint8_t *)lo, *end = (const uint8_t *)hi;
        while (p + len <= end) {
            const uint8_t *hit = memmem(p, (size_t)(end - p), needle, len);
            if (hit == NULL)
                break;
            if (hit != needle) {
                found = true;
                break;
            }
            p = hit + 1;
        }
    }
    fclose(f);
    return found;
}

/* After seal, neither the root key nor the keyring's data key is anywhere in
 * the process's writable memory (locked pages, heap, OpenSSL contexts,
 * libgfshare buffers), though both were while unsealed. */
static void test_store_seal_seal_wipes_memory(void **state)
{
    (void)state;
#if defined(__SANITIZE_ADDRESS__)
    skip(); /* scanning ASan's shadow mappings would take hours */
#endif
    static const struct mf_env_ops ops = {door_ms, door_ms, door_rand, NULL};
    const uint64_t seed = 0x243f6a8885a308d3ull;
    door_state = seed;
    mf_env_set(&ops);
    /* Shamir init draws: root key (32), then seal id (16), then data key (32). */
    struct node nd;
    node_init(&nd, 5, 3);
    mf_env_set(NULL);
    uint8_t *root = malloc(32), *data_key = malloc(32);
    door_bytes(seed, 0, root, 32);
    door_bytes(seed, 48, data_key, 32);
    assert_true(memory_holds(root, 32));
    assert_true(memory_holds(data_key, 32));

    /* Use every path that touches keys: encrypt, decrypt, rotate, export,
     * seal and unseal with shares, then seal. */
    char err[MF_SEAL_ERR_LEN];
    struct mf_seal_status st;
    expect_readable(&nd);
    uint8_t *ct;
    size_t ct_len;
    assert_int_equal(mf_barrier_encrypt(nd.b, "kv/y", 2, "more", 4, &ct, &ct_len), 0);
    free(ct);
    mf_seal_seal(nd.s);
    assert_int_equal(give(&nd, nd.shares[1], &st, err), 0);
    assert_int_equal(give(&nd, nd.shares[3], &st, err), 0);
    assert_int_equal(give(&nd, nd.shares[4], &st, err), 0);
    assert_false(st.sealed);
    expect_readable(&nd);
    assert_true(memory_holds(root, 32));
    assert_true(memory_holds(data_key, 32));

    mf_seal_seal(nd.s);
    assert_false(memory_holds(root, 32));
    assert_false(memory_holds(data_key, 32));
    OPENSSL_cleanse(root, 32);
    OPENSSL_cleanse(data_key, 32);
    free(root);
    free(data_key);
    node_free(&nd);
}

int main(void)
{
    mf_log_set_level(MF_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_store_seal_share_format),
        cmocka_unit_test(test_store_seal_any_three_of_five_unseal),
        cmocka_unit_test(test_store_seal_two_of_five_stay_sealed),
        cmocka_unit_test(test_store_seal_corrupted_share_refused),
        cmocka_unit_test(test_store_seal_wrong_combination_detected),
        cmocka_unit_test(test_store_seal_duplicate_share_not_counted),
        cmocka_unit_test(test_store_seal_share_of_other_cluster_refused),
        cmocka_unit_test(test_store_seal_seal_wipes),
        cmocka_unit_test(test_store_seal_init_parameters),
        cmocka_unit_test(test_store_seal_not_initialized),
        cmocka_unit_test(test_store_seal_keyfile_permissions),
        cmocka_unit_test(test_store_seal_keyfile_auto_unseal),
        cmocka_unit_test(test_store_seal_progress_follows_blob),
        cmocka_unit_test(test_store_seal_seal_wipes_memory),
    };
    return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}

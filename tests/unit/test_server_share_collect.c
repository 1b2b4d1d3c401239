/* Share collection (server/share_collect.h): the attempt behind
 * generate-root and rekey, with times, terms and nonce bytes given. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "server/share_collect.h"
#include "store/seal.h"

static const uint8_t RAW[MF_SHARE_COLLECT_NONCE_RAW] = {0x00, 0x01, 0xab, 0xff};

struct cluster {
    struct mf_barrier *b;
    struct mf_seal *s;
    char **shares;
    uint8_t *blob;
    size_t blob_len;
};

/* A Shamir seal of 5 shares, threshold 3. */
static void cluster_init(struct cluster *c)
{
    char err[MF_SEAL_ERR_LEN];
    assert_int_equal(mf_barrier_new(&c->b), 0);
    assert_int_equal(mf_seal_new(c->b, &c->s), 0);
    assert_int_equal(mf_seal_init_shamir(c->s, 5, 3, 1, &c->shares, &c->blob, &c->blob_len, err,
                                         sizeof(err)),
                     0);
}

static void cluster_free(struct cluster *c)
{
    mf_seal_shares_free(c->shares, 5);
    free(c->blob);
    mf_seal_free(c->s);
    mf_barrier_free(c->b);
}

/* The nonce is the hex of the given bytes; only it is accepted, compared
 * whole (a prefix or a longer string is not). */
static void test_server_share_collect_nonce(void **state)
{
    (void)state;
    struct cluster c;
    cluster_init(&c);
    struct mf_share_collect *a;
    assert_int_equal(mf_share_collect_start(c.blob, c.blob_len, RAW, 4, 1000, &a), 0);
    const char *n = mf_share_collect_nonce(a);
    assert_int_equal(strlen(n), 32);
    assert_memory_equal(n, "0001abff00000000", 16);
    assert_true(mf_share_collect_nonce_ok(a, n));
    assert_false(mf_share_collect_nonce_ok(a, "0001abff"));
    char longer[40];
    strcpy(longer, n);
    strcat(longer, "0");
    assert_false(mf_share_collect_nonce_ok(a, longer));
    char err[MF_SEAL_ERR_LEN] = "";
    assert_int_equal(mf_share_collect_add(a, "0", c.shares[0], c.blob, c.blob_len, err,
                                          sizeof(err)),
                     MF_EINVAL);
    assert_non_null(strstr(err, "nonce"));
    assert_int_equal(mf_share_collect_progress(a), 0);
    assert_int_equal(mf_share_collect_threshold(a), 3);
    assert_int_equal(mf_share_collect_expire_at_ms(a), 1000);
    mf_share_collect_end(&a);
    assert_null(a);
    mf_share_collect_end(&a); /* NULL: a no-op */
    assert_int_equal(mf_share_collect_start(c.blob, 3, RAW, 4, 1000, &a), MF_ECORRUPT);
    assert_null(a);
    cluster_free(&c);
}

/* The attempt lives until its expiry (exclusive), in its term, while leading;
 * a stale attempt is ended and its slot cleared. */
static void test_server_share_collect_live(void **state)
{
    (void)state;
    struct cluster c;
    cluster_init(&c);
    struct mf_share_collect *a;
    assert_int_equal(mf_share_collect_start(c.blob, c.blob_len, RAW, 4, 1000, &a), 0);
    assert_ptr_equal(mf_share_collect_live(&a, 4, true, 999), a);
    assert_null(mf_share_collect_live(&a, 4, true, 1000));
    assert_null(a);
    assert_int_equal(mf_share_collect_start(c.blob, c.blob_len, RAW, 4, 1000, &a), 0);
    assert_null(mf_share_collect_live(&a, 5, true, 0)); /* another term */
    assert_int_equal(mf_share_collect_start(c.blob, c.blob_len, RAW, 4, 1000, &a), 0);
    assert_null(mf_share_collect_live(&a, 4, false, 0)); /* no longer leading */
    cluster_free(&c);
}

/* Progress counts distinct shares (a duplicate once); a mistyped share is
 * refused and progress kept; the threshold opens the keyring and exposes
 * the barrier holding it; ending wipes it. */
static void test_server_share_collect_progress(void **state)
{
    (void)state;
    struct cluster c;
    cluster_init(&c);
    struct mf_share_collect *a;
    assert_int_equal(mf_share_collect_start(c.blob, c.blob_len, RAW, 4, 1000, &a), 0);
    const char *n = mf_share_collect_nonce(a);
    char err[MF_SEAL_ERR_LEN] = "";
    assert_int_equal(mf_share_collect_add(a, n, c.shares[0], c.blob, c.blob_len, err,
                                          sizeof(err)), 0);
    assert_int_equal(mf_share_collect_add(a, n, c.shares[0], c.blob, c.blob_len, err,
                                          sizeof(err)), 0);
    assert_int_equal(mf_share_collect_progress(a), 1);
    char bad[MF_SEAL_SHARE_TEXT_MAX];
    strcpy(bad, c.shares[1]);
    bad[10] = bad[10] == '0' ? '1' : '0';
    err[0] = 0;
    assert_int_equal(mf_share_collect_add(a, n, bad, c.blob, c.blob_len, err, sizeof(err)),
                     MF_EINVAL);
    assert_true(err[0] != 0);
    assert_int_equal(mf_share_collect_progress(a), 1);
    assert_int_equal(mf_share_collect_add(a, n, c.shares[4], c.blob, c.blob_len, err,
                                          sizeof(err)), 0);
    assert_int_equal(mf_share_collect_progress(a), 2);
    assert_false(mf_share_collect_done(a));
    assert_null(mf_share_collect_barrier(a));
    assert_int_equal(mf_share_collect_add(a, n, c.shares[2], c.blob, c.blob_len, err,
                                          sizeof(err)), 0);
    assert_true(mf_share_collect_done(a));
    assert_int_equal(mf_share_collect_progress(a), 3);
    struct mf_barrier *opened = mf_share_collect_barrier(a);
    assert_non_null(opened);
    uint32_t term = 0;
    assert_int_equal(mf_barrier_active_term(opened, &term), 0);
    assert_int_equal(term, 1);
    mf_share_collect_end(&a);
    assert_null(a);
    cluster_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_server_share_collect_nonce),
        cmocka_unit_test(test_server_share_collect_live),
        cmocka_unit_test(test_server_share_collect_progress),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Tests of src/store/barrier.c: AES-256-GCM ciphertexts, the keyring, rotation,
 * key-use counting and the sealed state. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "common/env.h"
#include "common/err.h"
#include "common/log.h"
#include "store/barrier.h"

static const uint8_t ROOT[MF_BARRIER_KEY_BYTES] = {
    0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5,
    0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5, 0xa5};
static const uint8_t OTHER_ROOT[MF_BARRIER_KEY_BYTES] = {1, 2, 3};

static const struct mf_barrier_seal_config SHAMIR_5_3 = {.type = MF_SEAL_SHAMIR, .shares = 5,
                                                         .threshold = 3};

/* A fresh barrier initialised under ROOT (or `root`). */
static struct mf_barrier *new_barrier(const uint8_t *root)
{
    struct mf_barrier *b;
    assert_int_equal(mf_barrier_new(&b), 0);
    assert_true(mf_barrier_sealed(b));
    assert_int_equal(mf_barrier_initialize(b, root ? root : ROOT, &SHAMIR_5_3, 1000), 0);
    assert_false(mf_barrier_sealed(b));
    return b;
}

static void encrypt(struct mf_barrier *b, const char *path, uint64_t wid, const char *text,
                    uint8_t **ct, size_t *ct_len)
{
    assert_int_equal(mf_barrier_encrypt(b, path, wid, text, strlen(text), ct, ct_len), 0);
    assert_int_equal(*ct_len, strlen(text) + MF_BARRIER_OVERHEAD);
}

/* Decrypts and checks the result equals `text`. */
static void expect_plain(struct mf_barrier *b, const char *path, uint64_t wid, const uint8_t *ct,
                         size_t ct_len, const char *text)
{
    uint8_t *pt = NULL;
    size_t pt_len = 0;
    assert_int_equal(mf_barrier_decrypt(b, path, wid, ct, ct_len, &pt, &pt_len), 0);
    assert_int_equal(pt_len, strlen(text));
    assert_memory_equal(pt, text, pt_len);
    assert_int_equal(pt[pt_len], 0);
    mf_barrier_wipe_free(pt, pt_len);
}

static void expect_fail(struct mf_barrier *b, const char *path, uint64_t wid, const uint8_t *ct,
                        size_t ct_len, int code)
{
    uint8_t *pt = (uint8_t *)"sentinel";
    size_t pt_len = 0;
    assert_int_equal(mf_barrier_decrypt(b, path, wid, ct, ct_len, &pt, &pt_len), code);
    assert_null(pt);
}

/* Plaintexts of several sizes, including empty, come back intact, with the
 * documented header (version, active term) and overhead. */
static void test_store_barrier_round_trip(void **state)
{
    (void)state;
    struct mf_barrier *b = new_barrier(NULL);
    size_t sizes[] = {0, 1, 15, 16, 17, 1000, 65536};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        size_t n = sizes[i];
        uint8_t *pt = malloc(n + 1);
        for (size_t j = 0; j < n; j++)
            pt[j] = (uint8_t)(j * 7 + i);
        uint8_t *ct;
        size_t ct_len;
        assert_int_equal(mf_barrier_encrypt(b, "kv/a", 9, pt, n, &ct, &ct_len), 0);
        assert_int_equal(ct_len, mf_barrier_ciphertext_len(n));
        assert_int_equal(ct[0], MF_BARRIER_VERSION);
        uint32_t term;
        assert_int_equal(mf_barrier_ciphertext_term(ct, ct_len, &term), 0);
        assert_int_equal(term, 1);
        uint8_t *out;
        size_t out_len;
        assert_int_equal(mf_barrier_decrypt(b, "kv/a", 9, ct, ct_len, &out, &out_len), 0);
        assert_int_equal(out_len, n);
        if (n > 0)
            assert_memory_equal(out, pt, n);
        mf_barrier_wipe_free(out, out_len);

        /* The caller-buffer variants agree. */
        uint8_t *ct2 = malloc(ct_len), *out2 = malloc(n + 1);
        size_t ct2_len, out2_len;
        assert_int_equal(mf_barrier_encrypt_into(b, "kv/a", 9, pt, n, ct2, ct_len, &ct2_len), 0);
        assert_int_equal(mf_barrier_decrypt_into(b, "kv/a", 9, ct2, ct2_len, out2, n, &out2_len),
                         0);
        assert_int_equal(out2_len, n);
        if (n > 0)
            assert_memory_equal(out2, pt, n);
        free(ct);
        free(ct2);
        free(out2);
        free(pt);
    }
    mf_barrier_free(b);
}

static uint8_t counter_next;
static int counter_rand(void *ctx, void *buf, size_t len)
{
    (void)ctx;
    for (size_t i = 0; i < len; i++)
        ((uint8_t *)buf)[i] = counter_next++;
    return 0;
}
static uint64_t fixed_ms(void *ctx)
{
    (void)ctx;
    return 0;
}

static void from_hex(const char *hex, uint8_t *out, size_t *len)
{
    size_t n = strlen(hex) / 2;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
    *len = n;
}

/* With a predictable random source, the ciphertext and the keyring blob equal
 * vectors computed independently (Python's cryptography AESGCM) from the
 * formats documented in barrier.h, so the AAD layout is what the header says. */
static void test_store_barrier_known_answer(void **state)
{
    (void)state;
    static const struct mf_env_ops ops = {fixed_ms, fixed_ms, counter_rand, NULL};
    counter_next = 0;
    mf_env_set(&ops);
    struct mf_barrier *b;
    assert_int_equal(mf_barrier_new(&b), 0);
    assert_int_equal(mf_barrier_initialize(b, ROOT, &SHAMIR_5_3, 1700000000000ull), 0);
    uint8_t *ct, *blob;
    size_t ct_len, blob_len;
    encrypt(b, "kv/app/db", 42, "hunter2 marker", &ct, &ct_len);
    assert_int_equal(mf_barrier_keyring_export(b, &blob, &blob_len), 0);
    mf_env_set(NULL);

    uint8_t want[256];
    size_t want_len;
    from_hex("0100000001303132333435363738393a3bfe654bfd954fa47679479a3440480c1edbd35b1ebf77a3"
             "00a553ffee8e88",
             want, &want_len);
    assert_int_equal(ct_len, want_len);
    assert_memory_equal(ct, want, want_len);
    from_hex("01010503000102030405060708090a0b0c0d0e0f000000013c3d3e3f4041424344454647b7fd5eeb"
             "75c655451833d51ba267a9ebb9257bde8baa52676f16a0cfa68c084dd63b5007b140cc43252d3200"
             "3318cf8f2c3abc85331d5c578ef256cfa7ed36e1",
             want, &want_len);
    assert_int_equal(blob_len, want_len);
    assert_memory_equal(blob, want, want_len);
    free(ct);
    free(blob);
    mf_barrier_free(b);
}

/* Flipping any single bit of the header, nonce, ciphertext or tag makes
 * decryption fail with MF_ECORRUPT and return no data. */
static void test_store_barrier_every_flipped_bit_detected(void **state)
{
    (void)state;
    struct mf_barrier *b = new_barrier(NULL);
    uint8_t *ct;
    size_t ct_len;
    encrypt(b, "kv/secret", 77, "the value of a secret", &ct, &ct_len);
    for (size_t i = 0; i < ct_len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            ct[i] ^= (uint8_t)(1u << bit);
            expect_fail(b, "kv/secret", 77, ct, ct_len, MF_ECORRUPT);
            ct[i] ^= (uint8_t)(1u << bit);
        }
    }
    expect_plain(b, "kv/secret", 77, ct, ct_len, "the value of a secret");
    free(ct);
    mf_barrier_free(b);
}

/* A ciphertext cut short at any length, or with a byte appended, is refused. */
static void test_store_barrier_truncated_detected(void **state)
{
    (void)state;
    struct mf_barrier *b = new_barrier(NULL);
    uint8_t *ct;
    size_t ct_len;
    encrypt(b, "p", 1, "0123456789", &ct, &ct_len);
    for (size_t n = 0; n < ct_len; n++)
        expect_fail(b, "p", 1, ct, n, MF_ECORRUPT);
    uint8_t *longer = malloc(ct_len + 1);
    memcpy(longer, ct, ct_len);
    longer[ct_len] = 0;
    expect_fail(b, "p", 1, longer, ct_len + 1, MF_ECORRUPT);
    free(longer);
    free(ct);
    mf_barrier_free(b);
}

/* A ciphertext moved to another path (even a prefix or an extension of its
 * own) or to another write id does not authenticate. */
static void test_store_barrier_wrong_aad_detected(void **state)
{
    (void)state;
    struct mf_barrier *b = new_barrier(NULL);
    uint8_t *ct;
    size_t ct_len;
    encrypt(b, "kv/team/db", 1000, "s3cret", &ct, &ct_len);
    expect_fail(b, "kv/team/dc", 1000, ct, ct_len, MF_ECORRUPT);
    expect_fail(b, "kv/team/d", 1000, ct, ct_len, MF_ECORRUPT);
    expect_fail(b, "kv/team/db2", 1000, ct, ct_len, MF_ECORRUPT);
    expect_fail(b, "", 1000, ct, ct_len, MF_ECORRUPT);
    expect_fail(b, "kv/team/db", 1001, ct, ct_len, MF_ECORRUPT);
    expect_fail(b, "kv/team/db", 0, ct, ct_len, MF_ECORRUPT);
    expect_fail(b, "kv/team/db", 1000ull | (1ull << 63), ct, ct_len, MF_ECORRUPT);
    expect_plain(b, "kv/team/db", 1000, ct, ct_len, "s3cret");
    free(ct);
    mf_barrier_free(b);
}

/* A ciphertext of one keyring does not decrypt under another keyring, even
 * one made from the same root key with the same term number. */
static void test_store_barrier_wrong_keyring_detected(void **state)
{
    (void)state;
    struct mf_barrier *a = new_barrier(NULL);
    struct mf_barrier *other = new_barrier(OTHER_ROOT);
    struct mf_barrier *same_root = new_barrier(NULL);
    uint8_t *ct;
    size_t ct_len;
    encrypt(a, "kv/x", 5, "value", &ct, &ct_len);
    expect_fail(other, "kv/x", 5, ct, ct_len, MF_ECORRUPT);
    expect_fail(same_root, "kv/x", 5, ct, ct_len, MF_ECORRUPT);
    expect_plain(a, "kv/x", 5, ct, ct_len, "value");
    free(ct);
    mf_barrier_free(a);
    mf_barrier_free(other);
    mf_barrier_free(same_root);
}

/* A ciphertext naming a key term the keyring does not hold is refused, and a
 * failed decryption into the caller's buffer leaves that buffer zeroed. */
static void test_store_barrier_unknown_term_and_wipe(void **state)
{
    (void)state;
    struct mf_barrier *b = new_barrier(NULL);
    uint8_t *ct;
    size_t ct_len;
    encrypt(b, "kv/x", 5, "value!", &ct, &ct_len);
    ct[4] = 7; /* term 7 */
    expect_fail(b, "kv/x", 5, ct, ct_len, MF_ECORRUPT);
    ct[4] = 1;
    ct[0] = 2; /* unknown version */
    expect_fail(b, "kv/x", 5, ct, ct_len, MF_ECORRUPT);
    ct[0] = MF_BARRIER_VERSION;

    ct[ct_len - 1] ^= 1; /* bad tag: GCM has decrypted into out before it checks */
    uint8_t out[6];
    memset(out, 0x55, sizeof(out));
    size_t out_len = 99;
    assert_int_equal(mf_barrier_decrypt_into(b, "kv/x", 5, ct, ct_len, out, sizeof(out), &out_len),
                     MF_ECORRUPT);
    for (size_t i = 0; i < sizeof(out); i++)
        assert_int_equal(out[i], 0);
    assert_int_equal(out_len, 99);
    free(ct);
    mf_barrier_free(b);
}

/* After a rotation new writes use the new term, while ciphertexts of every
 * older term still decrypt. */
static void test_store_barrier_rotation_keeps_old_terms(void **state)
{
    (void)state;
    struct mf_barrier *b = new_barrier(NULL);
    uint8_t *ct[3];
    size_t len[3];
    char text[3][16];
    for (uint32_t t = 1; t <= 3; t++) {
        uint32_t active;
        assert_int_equal(mf_barrier_active_term(b, &active), 0);
        assert_int_equal(active, t);
        snprintf(text[t - 1], sizeof(text[0]), "value-%u", t);
        encrypt(b, "kv/r", t, text[t - 1], &ct[t - 1], &len[t - 1]);
        uint32_t got;
        assert_int_equal(mf_barrier_ciphertext_term(ct[t - 1], len[t - 1], &got), 0);
        assert_int_equal(got, t);
        if (t < 3) {
            uint32_t new_term;
            assert_int_equal(mf_barrier_rotate(b, 2000 + t, &new_term), 0);
            assert_int_equal(new_term, t + 1);
        }
    }
    for (uint32_t t = 1; t <= 3; t++) {
        expect_plain(b, "kv/r", t, ct[t - 1], len[t - 1], text[t - 1]);
        free(ct[t - 1]);
    }
    struct mf_barrier_key_info info[4];
    size_t n;
    assert_int_equal(mf_barrier_keyring_info(b, info, 4, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(info[0].term, 1);
    assert_int_equal(info[0].created_ms, 1000);
    assert_int_equal(info[2].term, 3);
    assert_int_equal(info[2].created_ms, 2002);
    mf_barrier_free(b);
}

/* rotate_export leaves the barrier unchanged; loading its blob activates the
 * new term on the leader and on a follower unsealed from the older blob. */
static void test_store_barrier_rotate_export_activates_on_load(void **state)
{
    (void)state;
    struct mf_barrier *leader = new_barrier(NULL);
    uint8_t *blob1, *blob2;
    size_t blob1_len, blob2_len;
    assert_int_equal(mf_barrier_keyring_export(leader, &blob1, &blob1_len), 0);
    struct mf_barrier *follower;
    assert_int_equal(mf_barrier_new(&follower), 0);
    assert_int_equal(mf_barrier_unseal(follower, ROOT, blob1, blob1_len), 0);

    uint32_t new_term, active;
    assert_int_equal(mf_barrier_rotate_export(leader, 5000, &blob2, &blob2_len, &new_term), 0);
    assert_int_equal(new_term, 2);
    assert_int_equal(mf_barrier_active_term(leader, &active), 0);
    assert_int_equal(active, 1);

    assert_int_equal(mf_barrier_keyring_load(leader, blob2, blob2_len), 0);
    assert_int_equal(mf_barrier_keyring_load(follower, blob2, blob2_len), 0);
    assert_int_equal(mf_barrier_active_term(follower, &active), 0);
    assert_int_equal(active, 2);
    uint8_t *ct;
    size_t ct_len;
    encrypt(leader, "lease/pg/1", 3, "password", &ct, &ct_len);
    expect_plain(follower, "lease/pg/1", 3, ct, ct_len, "password");

    /* Replaying the older keyring (log replay) is accepted. */
    assert_int_equal(mf_barrier_keyring_load(follower, blob1, blob1_len), 0);
    assert_int_equal(mf_barrier_active_term(follower, &active), 0);
    assert_int_equal(active, 1);
    free(ct);
    free(blob1);
    free(blob2);
    mf_barrier_free(leader);
    mf_barrier_free(follower);
}

/* The exported keyring unseals another barrier under the same root key (which
 * then reads the first one's ciphertexts), and is refused under a wrong root
 * key or with any bit flipped, leaving that barrier sealed. */
static void test_store_barrier_keyring_export_load_round_trip(void **state)
{
    (void)state;
    struct mf_barrier *a = new_barrier(NULL);
    assert_int_equal(mf_barrier_rotate(a, 3000, NULL), 0);
    uint8_t *ct, *blob;
    size_t ct_len, blob_len;
    encrypt(a, "kv/k", 8, "round trip", &ct, &ct_len);
    assert_int_equal(mf_barrier_keyring_export(a, &blob, &blob_len), 0);

    struct mf_barrier *b;
    assert_int_equal(mf_barrier_new(&b), 0);
    expect_fail(b, "kv/k", 8, ct, ct_len, MF_ESEALED);
    assert_int_equal(mf_barrier_unseal(b, OTHER_ROOT, blob, blob_len), MF_ECORRUPT);
    assert_true(mf_barrier_sealed(b));
    for (size_t i = 0; i < blob_len; i++) {
        blob[i] ^= 0x10;
        int rc = mf_barrier_unseal(b, ROOT, blob, blob_len);
        assert_true(rc == MF_ECORRUPT || (i == 0 && rc == MF_EINVAL));
        assert_true(mf_barrier_sealed(b));
        blob[i] ^= 0x10;
    }
    assert_int_equal(mf_barrier_unseal(b, ROOT, blob, blob_len - 1), MF_ECORRUPT);
    assert_int_equal(mf_barrier_unseal(b, ROOT, blob, blob_len), 0);
    assert_int_equal(mf_barrier_unseal(b, ROOT, blob, blob_len), MF_EEXISTS);
    expect_plain(b, "kv/k", 8, ct, ct_len, "round trip");
    struct mf_barrier_seal_config ca, cb;
    assert_int_equal(mf_barrier_seal_config(a, &ca), 0);
    assert_int_equal(mf_barrier_seal_config(b, &cb), 0);
    assert_memory_equal(&ca, &cb, sizeof(ca));
    assert_int_equal(cb.shares, 5);
    assert_int_equal(cb.threshold, 3);
    free(ct);
    free(blob);
    mf_barrier_free(a);
    mf_barrier_free(b);
}

/* A keyring of another seal, or one that gives an existing term another key
 * (two leaders rotating independently), is refused and changes nothing. */
static void test_store_barrier_keyring_load_refuses_conflicts(void **state)
{
    (void)state;
    struct mf_barrier *a = new_barrier(NULL);
    struct mf_barrier *stranger = new_barrier(NULL); /* same root, another seal id */
    uint8_t *blob0, *sblob, *blob_a, *blob_b;
    size_t blob0_len, sblob_len, blob_a_len, blob_b_len;
    assert_int_equal(mf_barrier_keyring_export(stranger, &sblob, &sblob_len), 0);
    assert_int_equal(mf_barrier_keyring_load(a, sblob, sblob_len), MF_ECORRUPT);

    assert_int_equal(mf_barrier_keyring_export(a, &blob0, &blob0_len), 0);
    struct mf_barrier *b;
    assert_int_equal(mf_barrier_new(&b), 0);
    assert_int_equal(mf_barrier_unseal(b, ROOT, blob0, blob0_len), 0);
    assert_int_equal(mf_barrier_rotate_export(a, 1, &blob_a, &blob_a_len, NULL), 0);
    assert_int_equal(mf_barrier_rotate_export(b, 1, &blob_b, &blob_b_len, NULL), 0);
    assert_int_equal(mf_barrier_keyring_load(a, blob_a, blob_a_len), 0);
    assert_int_equal(mf_barrier_keyring_load(a, blob_b, blob_b_len), MF_ECORRUPT);
    uint8_t *ct;
    size_t ct_len;
    encrypt(a, "x", 1, "still term 2 of a", &ct, &ct_len);
    expect_plain(a, "x", 1, ct, ct_len, "still term 2 of a");
    expect_fail(b, "x", 1, ct, ct_len, MF_ECORRUPT); /* b does not know a's term 2 */
    free(ct);
    free(blob0);
    free(sblob);
    free(blob_a);
    free(blob_b);
    mf_barrier_free(a);
    mf_barrier_free(b);
    mf_barrier_free(stranger);
}

/* The same plaintext encrypted many times gets a different nonce each time. */
static void test_store_barrier_nonces_differ(void **state)
{
    (void)state;
    struct mf_barrier *b = new_barrier(NULL);
    enum { N = 2000 };
    static uint8_t nonces[N][MF_BARRIER_NONCE_BYTES];
    for (int i = 0; i < N; i++) {
        uint8_t *ct;
        size_t ct_len;
        encrypt(b, "kv/same", 1, "same", &ct, &ct_len);
        memcpy(nonces[i], ct + MF_BARRIER_HEADER_BYTES, MF_BARRIER_NONCE_BYTES);
        free(ct);
    }
    for (int i = 0; i < N; i++)
        for (int j = i + 1; j < N; j++)
            assert_true(memcmp(nonces[i], nonces[j], MF_BARRIER_NONCE_BYTES) != 0);
    mf_barrier_free(b);
}

/* A barrier that is new or has been sealed refuses every keyed operation with
 * MF_ESEALED, and unsealing it again restores access. */
static void test_store_barrier_sealed_refuses_everything(void **state)
{
    (void)state;
    struct mf_barrier *b;
    assert_int_equal(mf_barrier_new(&b), 0);
    uint8_t *out = NULL, *blob = NULL;
    size_t len = 0;
    uint32_t term;
    assert_int_equal(mf_barrier_encrypt(b, "p", 1, "x", 1, &out, &len), MF_ESEALED);
    assert_null(out);
    assert_int_equal(mf_barrier_keyring_export(b, &blob, &len), MF_ESEALED);
    assert_int_equal(mf_barrier_active_term(b, &term), MF_ESEALED);
    assert_int_equal(mf_barrier_rotate(b, 1, NULL), MF_ESEALED);
    mf_barrier_free(b);

    b = new_barrier(NULL);
    uint8_t *ct;
    size_t ct_len;
    encrypt(b, "kv/s", 2, "sealed soon", &ct, &ct_len);
    assert_int_equal(mf_barrier_keyring_export(b, &blob, &len), 0);
    mf_barrier_seal(b);
    assert_true(mf_barrier_sealed(b));
    expect_fail(b, "kv/s", 2, ct, ct_len, MF_ESEALED);
    assert_int_equal(mf_barrier_encrypt(b, "kv/s", 3, "x", 1, &out, &len), MF_ESEALED);
    assert_int_equal(mf_barrier_keyring_load(b, blob, len), MF_ESEALED);
    struct mf_barrier_use use;
    size_t n;
    assert_int_equal(mf_barrier_uses_take(b, &use, 1, &n), MF_ESEALED);
    assert_int_equal(mf_barrier_uses(b, 1), 0);
    assert_int_equal(mf_barrier_unseal(b, ROOT, blob, len), 0);
    expect_plain(b, "kv/s", 2, ct, ct_len, "sealed soon");
    free(ct);
    free(blob);
    mf_barrier_free(b);
}

/* Encryptions are counted per term; uses_take hands each count over once;
 * counts survive loading a keyring that keeps the term. */
static void test_store_barrier_use_counts(void **state)
{
    (void)state;
    struct mf_barrier *b = new_barrier(NULL);
    for (int i = 0; i < 5; i++) {
        uint8_t *ct;
        size_t ct_len;
        encrypt(b, "p", (uint64_t)i, "v", &ct, &ct_len);
        free(ct);
    }
    assert_int_equal(mf_barrier_uses(b, 1), 5);
    struct mf_barrier_use uses[4];
    size_t n;
    assert_int_equal(mf_barrier_uses_take(b, uses, 4, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(uses[0].term, 1);
    assert_int_equal(uses[0].count, 5);
    assert_int_equal(mf_barrier_uses_take(b, uses, 4, &n), 0);
    assert_int_equal(n, 0);

    uint8_t *ct;
    size_t ct_len;
    encrypt(b, "p", 1, "v", &ct, &ct_len); /* one pending on term 1 */
    free(ct);
    assert_int_equal(mf_barrier_rotate(b, 10, NULL), 0);
    for (int i = 0; i < 3; i++) {
        encrypt(b, "p", (uint64_t)i, "v", &ct, &ct_len);
        free(ct);
    }
    assert_int_equal(mf_barrier_uses(b, 1), 6);
    assert_int_equal(mf_barrier_uses(b, 2), 3);
    assert_int_equal(mf_barrier_uses(b, 9), 0);
    assert_int_equal(mf_barrier_uses_take(b, uses, 1, &n), 0); /* room for one */
    assert_int_equal(n, 1);
    assert_int_equal(uses[0].term, 1);
    assert_int_equal(uses[0].count, 1);
    assert_int_equal(mf_barrier_uses_take(b, uses, 4, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(uses[0].term, 2);
    assert_int_equal(uses[0].count, 3);
    struct mf_barrier_key_info info[2];
    assert_int_equal(mf_barrier_keyring_info(b, info, 2, &n), 0);
    assert_int_equal(info[0].uses, 6);
    assert_int_equal(info[1].uses, 3);

    /* The one-pair form for a command: pending uses straddling a rotation
     * are reported under the newest term. */
    uint32_t term;
    uint64_t count;
    assert_int_equal(mf_barrier_uses_take_command(b, &term, &count), 0);
    assert_int_equal(term, 0);
    assert_int_equal(count, 0);
    encrypt(b, "p", 1, "v", &ct, &ct_len);
    free(ct);
    assert_int_equal(mf_barrier_rotate(b, 11, NULL), 0);
    encrypt(b, "p", 2, "v", &ct, &ct_len);
    free(ct);
    encrypt(b, "p", 3, "v", &ct, &ct_len);
    free(ct);
    assert_int_equal(mf_barrier_uses_take_command(b, &term, &count), 0);
    assert_int_equal(term, 3);
    assert_int_equal(count, 3);
    assert_int_equal(mf_barrier_uses_take_command(b, &term, &count), 0);
    assert_int_equal(count, 0);
    mf_barrier_seal(b);
    assert_int_equal(mf_barrier_uses_take_command(b, &term, &count), MF_ESEALED);
    mf_barrier_free(b);
}

/* The rotation rule: rotate from 2^31 uses on, which is below the 2^32 GCM
 * random-nonce limit with room for uncounted uses. */
static void test_store_barrier_should_rotate_threshold(void **state)
{
    (void)state;
    assert_true(MF_BARRIER_ROTATE_USES < (UINT64_C(1) << 32));
    assert_true(MF_BARRIER_ROTATE_USES <= (UINT64_C(1) << 32) / 2);
    assert_false(mf_barrier_should_rotate(0));
    assert_false(mf_barrier_should_rotate(1000000));
    assert_false(mf_barrier_should_rotate((UINT64_C(1) << 31) - 1));
    assert_true(mf_barrier_should_rotate(UINT64_C(1) << 31));
    assert_true(mf_barrier_should_rotate(3860000000u));
    assert_true(mf_barrier_should_rotate(UINT64_MAX));
}

/* Bad arguments are refused before any key is touched. */
static void test_store_barrier_bad_arguments(void **state)
{
    (void)state;
    struct mf_barrier *b = new_barrier(NULL);
    uint8_t *out = NULL;
    size_t len;
    assert_int_equal(mf_barrier_encrypt(b, NULL, 1, "x", 1, &out, &len), MF_EINVAL);
    char *longpath = malloc(MF_BARRIER_PATH_MAX + 2);
    memset(longpath, 'a', MF_BARRIER_PATH_MAX + 1);
    longpath[MF_BARRIER_PATH_MAX + 1] = 0;
    assert_int_equal(mf_barrier_encrypt(b, longpath, 1, "x", 1, &out, &len), MF_EINVAL);
    longpath[MF_BARRIER_PATH_MAX] = 0; /* exactly the limit is fine */
    assert_int_equal(mf_barrier_encrypt(b, longpath, 1, "x", 1, &out, &len), 0);
    expect_plain(b, longpath, 1, out, len, "x");
    free(out);
    free(longpath);
    assert_int_equal(mf_barrier_encrypt(b, "p", 1, "x", MF_BARRIER_PLAINTEXT_MAX + 1, &out, &len),
                     MF_ETOOLARGE);
    uint8_t small[MF_BARRIER_OVERHEAD];
    assert_int_equal(mf_barrier_encrypt_into(b, "p", 1, "x", 1, small, sizeof(small), &len),
                     MF_EINVAL);
    struct mf_barrier_seal_config bad = {.type = MF_SEAL_SHAMIR, .shares = 2, .threshold = 3};
    struct mf_barrier *c;
    assert_int_equal(mf_barrier_new(&c), 0);
    assert_int_equal(mf_barrier_initialize(c, ROOT, &bad, 0), MF_EINVAL);
    bad.type = 9;
    assert_int_equal(mf_barrier_initialize(c, ROOT, &bad, 0), MF_EINVAL);
    assert_true(mf_barrier_sealed(c));
    assert_int_equal(mf_barrier_initialize(b, ROOT, &SHAMIR_5_3, 0), MF_EEXISTS);
    mf_barrier_free(c);
    mf_barrier_free(b);
}

/* The blob's cleartext header gives the seal configuration without a key, and
 * an unknown version or a short blob is reported. */
static void test_store_barrier_blob_seal_config(void **state)
{
    (void)state;
    struct mf_barrier *b;
    assert_int_equal(mf_barrier_new(&b), 0);
    struct mf_barrier_seal_config kf = {.type = MF_SEAL_KEYFILE};
    assert_int_equal(mf_barrier_initialize(b, ROOT, &kf, 0), 0);
    uint8_t *blob;
    size_t len;
    assert_int_equal(mf_barrier_keyring_export(b, &blob, &len), 0);
    struct mf_barrier_seal_config cfg;
    assert_int_equal(mf_barrier_blob_seal_config(blob, len, &cfg), 0);
    assert_int_equal(cfg.type, MF_SEAL_KEYFILE);
    assert_int_equal(cfg.shares, 0);
    assert_int_equal(mf_barrier_blob_seal_config(blob, 10, &cfg), MF_ECORRUPT);
    assert_int_equal(mf_barrier_blob_seal_config(NULL, 0, &cfg), MF_ECORRUPT);
    blob[0] = 3;
    assert_int_equal(mf_barrier_blob_seal_config(blob, len, &cfg), MF_EINVAL);
    blob[0] = 2; /* a rekeyed blob: never of a key-file seal */
    assert_int_equal(mf_barrier_blob_seal_config(blob, len, &cfg), MF_ECORRUPT);
    blob[0] = 1;
    blob[1] = 7; /* unknown seal type */
    assert_int_equal(mf_barrier_blob_seal_config(blob, len, &cfg), MF_ECORRUPT);
    free(blob);
    mf_barrier_free(b);
}

/* The state machine's rule for a "keyring put": the first blob is taken; a
 * later one only with the same seal and a higher active term, so a second
 * init or a stale or concurrent rotation can never replace a key in use. */
static void test_store_barrier_blob_may_replace(void **state)
{
    (void)state;
    struct mf_barrier *a = new_barrier(NULL);
    struct mf_barrier *other = new_barrier(NULL);
    uint8_t *b1, *b2, *b2bis, *b3, *ob;
    size_t b1_len, b2_len, b2bis_len, b3_len, ob_len;
    uint32_t term;
    assert_int_equal(mf_barrier_keyring_export(a, &b1, &b1_len), 0);
    assert_int_equal(mf_barrier_keyring_export(other, &ob, &ob_len), 0);
    assert_int_equal(mf_barrier_rotate_export(a, 1, &b2, &b2_len, NULL), 0);
    assert_int_equal(mf_barrier_rotate_export(a, 2, &b2bis, &b2bis_len, NULL), 0);
    assert_int_equal(mf_barrier_keyring_load(a, b2, b2_len), 0);
    assert_int_equal(mf_barrier_rotate_export(a, 3, &b3, &b3_len, NULL), 0);
    assert_int_equal(mf_barrier_blob_active_term(b1, b1_len, &term), 0);
    assert_int_equal(term, 1);
    assert_int_equal(mf_barrier_blob_active_term(b3, b3_len, &term), 0);
    assert_int_equal(term, 3);

    assert_int_equal(mf_barrier_blob_may_replace(NULL, 0, b1, b1_len), 0);
    assert_int_equal(mf_barrier_blob_may_replace(b1, b1_len, b2, b2_len), 0);
    assert_int_equal(mf_barrier_blob_may_replace(b2, b2_len, b3, b3_len), 0);
    assert_int_equal(mf_barrier_blob_may_replace(b1, b1_len, b3, b3_len), 0);
    assert_int_equal(mf_barrier_blob_may_replace(b2, b2_len, b2bis, b2bis_len), MF_ECAS);
    assert_int_equal(mf_barrier_blob_may_replace(b2, b2_len, b1, b1_len), MF_ECAS);
    assert_int_equal(mf_barrier_blob_may_replace(b1, b1_len, b1, b1_len), MF_ECAS);
    assert_int_equal(mf_barrier_blob_may_replace(b1, b1_len, ob, ob_len), MF_EEXISTS);
    assert_int_equal(mf_barrier_blob_may_replace(NULL, 0, b1, 10), MF_ECORRUPT);
    b3[0] = 9;
    assert_int_equal(mf_barrier_blob_may_replace(b2, b2_len, b3, b3_len), MF_EINVAL);
    free(b1);
    free(b2);
    free(b2bis);
    free(b3);
    free(ob);
    mf_barrier_free(a);
    mf_barrier_free(other);
}

struct worker {
    struct mf_barrier *b;
    int id;
    int failures;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    char path[32], text[32];
    for (int i = 0; i < 500; i++) {
        snprintf(path, sizeof(path), "kv/%d", w->id);
        snprintf(text, sizeof(text), "v%d-%d", w->id, i);
        uint8_t *ct, *pt;
        size_t ct_len, pt_len;
        if (mf_barrier_encrypt(w->b, path, (uint64_t)i, text, strlen(text), &ct, &ct_len) != 0) {
            w->failures++;
            continue;
        }
        if (mf_barrier_decrypt(w->b, path, (uint64_t)i, ct, ct_len, &pt, &pt_len) != 0 ||
            pt_len != strlen(text) || memcmp(pt, text, pt_len) != 0)
            w->failures++;
        else
            mf_barrier_wipe_free(pt, pt_len);
        free(ct);
    }
    return NULL;
}

/* Encryptions and decryptions on several threads stay correct while another
 * thread rotates the keyring, and every use is counted. */
static void test_store_barrier_concurrent_rotation(void **state)
{
    (void)state;
    struct mf_barrier *b = new_barrier(NULL);
    enum { T = 4 };
    pthread_t th[T];
    struct worker w[T];
    for (int i = 0; i < T; i++) {
        w[i] = (struct worker){b, i, 0};
        assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
    }
    for (int r = 0; r < 20; r++)
        assert_int_equal(mf_barrier_rotate(b, (uint64_t)r, NULL), 0);
    uint64_t total = 0;
    for (int i = 0; i < T; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(w[i].failures, 0);
    }
    for (uint32_t t = 1; t <= 21; t++)
        total += mf_barrier_uses(b, t);
    assert_int_equal(total, T * 500);
    mf_barrier_free(b);
}

/* Locked memory (VmLck in /proc/self/status), in kB; -1 if unknown. */
static long locked_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL)
        return -1;
    char line[256];
    long kb = -1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmLck: %ld kB", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

/* The root key and the keyring sit in mlock'ed pages (where RLIMIT_MEMLOCK
 * allows), released when the barrier is freed. */
static void test_store_barrier_keys_in_locked_memory(void **state)
{
    (void)state;
#if defined(__SANITIZE_ADDRESS__)
    skip(); /* AddressSanitizer intercepts mlock and makes it a no-op */
#endif
    struct rlimit rl;
    long before = locked_kb();
    if (before < 0 || getrlimit(RLIMIT_MEMLOCK, &rl) != 0 || rl.rlim_cur < 64 * 1024) {
        skip();
        return;
    }
    struct mf_barrier *b = new_barrier(NULL);
    long page_kb = sysconf(_SC_PAGESIZE) / 1024;
    assert_true(locked_kb() >= before + 2 * page_kb); /* root key page + keyring page */
    mf_barrier_free(b);
    assert_int_equal(locked_kb(), before);
}

static uint64_t xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Random bytes of random lengths given as a ciphertext, a keyring blob or an
 * unseal blob are refused with an error, never accepted, never a crash; and
 * so are real ones with random bytes overwritten. */
static void test_store_barrier_garbage_refused(void **state)
{
    (void)state;
    struct mf_barrier *b = new_barrier(NULL);
    struct mf_barrier *sealed;
    assert_int_equal(mf_barrier_new(&sealed), 0);
    uint8_t *ct, *blob;
    size_t ct_len, blob_len;
    encrypt(b, "p", 1, "some secret value", &ct, &ct_len);
    assert_int_equal(mf_barrier_keyring_export(b, &blob, &blob_len), 0);
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    uint8_t buf[512];
    for (int i = 0; i < 20000; i++) {
        size_t len = xorshift(&seed) % sizeof(buf);
        int mode = i % 3;
        if (mode == 0) {
            for (size_t j = 0; j < len; j++)
                buf[j] = (uint8_t)xorshift(&seed);
            if (len > 0 && (xorshift(&seed) & 1))
                buf[0] = 1; /* a valid version byte gets further */
            if (len > 4 && (xorshift(&seed) & 1))
                memcpy(buf + 1, "\0\0\0\1", 4); /* and a known term further still */
        } else {
            const uint8_t *src = mode == 1 ? ct : blob;
            len = mode == 1 ? ct_len : blob_len;
            memcpy(buf, src, len);
            int flips = 1 + (int)(xorshift(&seed) % 4);
            for (int k = 0; k < flips; k++)
                buf[xorshift(&seed) % len] ^= (uint8_t)(1 + xorshift(&seed) % 255);
            if (memcmp(buf, src, len) == 0)
                continue;
        }
        uint8_t *pt = NULL;
        size_t pt_len;
        int rc = mf_barrier_decrypt(b, "p", 1, buf, len, &pt, &pt_len);
        assert_true(rc == MF_ECORRUPT);
        assert_null(pt);
        rc = mf_barrier_keyring_load(b, buf, len);
        assert_true(rc == MF_ECORRUPT || rc == MF_EINVAL);
        rc = mf_barrier_unseal(sealed, ROOT, buf, len);
        assert_true(rc == MF_ECORRUPT || rc == MF_EINVAL);
        assert_true(mf_barrier_sealed(sealed));
        struct mf_barrier_seal_config cfg;
        (void)mf_barrier_blob_seal_config(buf, len, &cfg);
    }
    expect_plain(b, "p", 1, ct, ct_len, "some secret value");
    free(ct);
    free(blob);
    mf_barrier_free(b);
    mf_barrier_free(sealed);
}

int main(void)
{
    mf_log_set_level(MF_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_store_barrier_round_trip),
        cmocka_unit_test(test_store_barrier_known_answer),
        cmocka_unit_test(test_store_barrier_every_flipped_bit_detected),
        cmocka_unit_test(test_store_barrier_truncated_detected),
        cmocka_unit_test(test_store_barrier_wrong_aad_detected),
        cmocka_unit_test(test_store_barrier_wrong_keyring_detected),
        cmocka_unit_test(test_store_barrier_unknown_term_and_wipe),
        cmocka_unit_test(test_store_barrier_rotation_keeps_old_terms),
        cmocka_unit_test(test_store_barrier_rotate_export_activates_on_load),
        cmocka_unit_test(test_store_barrier_keyring_export_load_round_trip),
        cmocka_unit_test(test_store_barrier_keyring_load_refuses_conflicts),
        cmocka_unit_test(test_store_barrier_nonces_differ),
        cmocka_unit_test(test_store_barrier_sealed_refuses_everything),
        cmocka_unit_test(test_store_barrier_use_counts),
        cmocka_unit_test(test_store_barrier_should_rotate_threshold),
        cmocka_unit_test(test_store_barrier_bad_arguments),
        cmocka_unit_test(test_store_barrier_blob_seal_config),
        cmocka_unit_test(test_store_barrier_blob_may_replace),
        cmocka_unit_test(test_store_barrier_concurrent_rotation),
        cmocka_unit_test(test_store_barrier_keys_in_locked_memory),
        cmocka_unit_test(test_store_barrier_garbage_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* The barrier's rekey: the replace rule for rekeyed blobs (generation in the
 * authenticated header) and the new root key wrapped under the old one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "store/barrier.h"

static const uint8_t ROOT[MF_BARRIER_KEY_BYTES] = {0xa5, 0xa5, 0xa5, 0xa5};
static const uint8_t NEW_ROOT[MF_BARRIER_KEY_BYTES] = {0x5a, 0x5a, 0x5a, 0x5a};
static const uint8_t NEWER_ROOT[MF_BARRIER_KEY_BYTES] = {0x77};

static const struct mf_barrier_seal_config SHAMIR_3_3 = {.type = MF_SEAL_SHAMIR, .shares = 3,
                                                         .threshold = 3};

struct blob {
    uint8_t *p;
    size_t len;
};

static struct mf_barrier *new_barrier(const struct mf_barrier_seal_config *cfg)
{
    struct mf_barrier *b;
    assert_int_equal(mf_barrier_new(&b), 0);
    assert_int_equal(mf_barrier_initialize(b, ROOT, cfg, 1000), 0);
    return b;
}

/* A barrier unsealed from `blob` with `root` (a follower). */
static struct mf_barrier *unsealed(const uint8_t *root, struct blob blob)
{
    struct mf_barrier *b;
    assert_int_equal(mf_barrier_new(&b), 0);
    assert_int_equal(mf_barrier_unseal(b, root, blob.p, blob.len), 0);
    return b;
}

static int may(struct blob cur, struct blob next)
{
    return mf_barrier_blob_may_replace(cur.p, cur.len, next.p, next.len);
}

static uint32_t generation(struct blob b)
{
    uint32_t g = 99;
    assert_int_equal(mf_barrier_blob_generation(b.p, b.len, &g), 0);
    return g;
}

/* A rekeyed blob replaces the keyring of the same term and generation - 1
 * only; a rotation made with the old root key after it, a rekey made from an
 * older keyring, a skipped generation, a replay and another seal are refused;
 * rotations go on in the new generation. */
static void test_store_barrier_rekey_replace_rule(void **state)
{
    (void)state;
    struct mf_barrier *b = new_barrier(&SHAMIR_3_3);
    struct mf_barrier *other = new_barrier(&SHAMIR_3_3);
    struct blob b1, b2, r1, r2, ob, orr, b3;
    uint8_t *w;
    size_t wl;
    assert_int_equal(mf_barrier_keyring_export(b, &b1.p, &b1.len), 0);
    assert_int_equal(mf_barrier_rotate_export(b, 2, &b2.p, &b2.len, NULL), 0);
    assert_int_equal(mf_barrier_rekey_export(b, NEW_ROOT, 5, 3, &r1.p, &r1.len, &w, &wl), 0);
    free(w);
    assert_int_equal(mf_barrier_keyring_export(other, &ob.p, &ob.len), 0);
    assert_int_equal(mf_barrier_rekey_export(other, NEW_ROOT, 5, 3, &orr.p, &orr.len, &w, &wl),
                     0);
    free(w);

    assert_int_equal(generation(b1), 0);
    assert_int_equal(generation(r1), 1);
    assert_int_equal(r1.p[0], MF_BARRIER_BLOB_VERSION_REKEYED);
    assert_int_equal(b1.p[0], MF_BARRIER_BLOB_VERSION);
    struct mf_barrier_seal_config c1, cr;
    assert_int_equal(mf_barrier_blob_seal_config(b1.p, b1.len, &c1), 0);
    assert_int_equal(mf_barrier_blob_seal_config(r1.p, r1.len, &cr), 0);
    assert_int_equal(cr.shares, 5);
    assert_int_equal(cr.threshold, 3);
    assert_memory_equal(cr.seal_id, c1.seal_id, MF_BARRIER_SEAL_ID_BYTES);

    assert_int_equal(may(b1, r1), 0);                 /* the rekey */
    assert_int_equal(may(b2, r1), MF_ECAS);           /* made before a rotation landed */
    assert_int_equal(may(r1, b2), MF_ECAS);           /* a rotation under the old root key */
    assert_int_equal(may(r1, b1), MF_ECAS);           /* back to generation 0 */
    assert_int_equal(may(r1, r1), MF_ECAS);           /* a replay */
    assert_int_equal(may(b1, orr), MF_EEXISTS);       /* another seal's rekey */
    assert_int_equal(may(ob, r1), MF_EEXISTS);

    /* Loaded, the rekey is the base of later rotations and rekeys. */
    assert_int_equal(mf_barrier_rekey_load(b, r1.p, r1.len, NULL, 0), MF_ECORRUPT);
    assert_int_equal(mf_barrier_rekey_export(b, NEW_ROOT, 5, 3, &r2.p, &r2.len, &w, &wl), 0);
    assert_int_equal(mf_barrier_rekey_load(b, r2.p, r2.len, w, wl), 0);
    free(w);
    assert_int_equal(mf_barrier_rotate_export(b, 3, &b3.p, &b3.len, NULL), 0);
    assert_int_equal(generation(b3), 1);
    assert_int_equal(may(r2, b3), 0);                 /* a rotation in generation 1 */
    assert_int_equal(may(b3, r2), MF_ECAS);
    struct blob r3;
    assert_int_equal(mf_barrier_keyring_load(b, b3.p, b3.len), 0);
    assert_int_equal(mf_barrier_rekey_export(b, NEWER_ROOT, 2, 2, &r3.p, &r3.len, &w, &wl), 0);
    free(w);
    assert_int_equal(generation(r3), 2);
    assert_int_equal(may(b3, r3), 0);
    assert_int_equal(may(r2, r3), MF_ECAS);           /* another term */
    assert_int_equal(may(b1, r3), MF_ECAS);           /* a skipped generation */

    /* A key-file seal has no rekey. */
    struct mf_barrier_seal_config kf = {.type = MF_SEAL_KEYFILE};
    struct mf_barrier *k = new_barrier(&kf);
    struct blob kr;
    assert_int_equal(mf_barrier_rekey_export(k, NEW_ROOT, 5, 3, &kr.p, &kr.len, &w, &wl),
                     MF_EINVAL);
    assert_null(kr.p);
    assert_null(w);
    assert_int_equal(mf_barrier_rekey_export(b, NEW_ROOT, 2, 3, &kr.p, &kr.len, &w, &wl),
                     MF_EINVAL); /* T > N */
    mf_barrier_free(k);

    free(b1.p), free(b2.p), free(r1.p), free(r2.p), free(r3.p), free(ob.p), free(orr.p);
    free(b3.p);
    mf_barrier_free(b);
    mf_barrier_free(other);
}

/* A follower unsealed with the old root key unwraps the new one and switches:
 * old ciphertexts still decrypt, the old root key no longer opens the
 * rekeyed blob and the new one does; a tampered wrapped key, one wrapped for
 * another blob, a sealed barrier and a barrier with other keys are refused
 * and change nothing. */
static void test_store_barrier_rekey_wrap_unwrap(void **state)
{
    (void)state;
    struct mf_barrier *b = new_barrier(&SHAMIR_3_3);
    struct blob b1, r1, r1bis;
    uint8_t *w, *wbis, *ct;
    size_t wl, wbl, ct_len;
    assert_int_equal(mf_barrier_encrypt(b, "kv/x", 7, "secret", 6, &ct, &ct_len), 0);
    assert_int_equal(mf_barrier_keyring_export(b, &b1.p, &b1.len), 0);
    assert_int_equal(mf_barrier_rekey_export(b, NEW_ROOT, 5, 3, &r1.p, &r1.len, &w, &wl), 0);
    assert_int_equal(wl, MF_BARRIER_WRAPPED_BYTES);
    assert_null(memmem(w, wl, NEW_ROOT, 4)); /* the new root key is not in clear */
    assert_int_equal(mf_barrier_rekey_export(b, NEW_ROOT, 5, 3, &r1bis.p, &r1bis.len, &wbis,
                                             &wbl), 0);
    struct mf_barrier *f = unsealed(ROOT, b1);

    w[20] ^= 1;
    assert_int_equal(mf_barrier_rekey_load(f, r1.p, r1.len, w, wl), MF_ECORRUPT);
    w[20] ^= 1;
    assert_int_equal(mf_barrier_rekey_load(f, r1.p, r1.len, wbis, wbl), MF_ECORRUPT);
    assert_int_equal(mf_barrier_rekey_load(f, r1.p, r1.len, w, wl - 1), MF_ECORRUPT);

    /* A barrier with another keyring (it rotated on its own) refuses it. */
    struct mf_barrier *g = unsealed(ROOT, b1);
    assert_int_equal(mf_barrier_rotate(g, 5, NULL), 0);
    assert_int_equal(mf_barrier_rekey_load(g, r1.p, r1.len, w, wl), MF_ECORRUPT);
    mf_barrier_seal(g);
    assert_int_equal(mf_barrier_rekey_load(g, r1.p, r1.len, w, wl), MF_ESEALED);
    mf_barrier_free(g);

    assert_int_equal(mf_barrier_rekey_load(f, r1.p, r1.len, w, wl), 0);
    struct mf_barrier_seal_config cfg;
    assert_int_equal(mf_barrier_seal_config(f, &cfg), 0);
    assert_int_equal(cfg.shares, 5);
    uint8_t *pt;
    size_t pt_len;
    assert_int_equal(mf_barrier_decrypt(f, "kv/x", 7, ct, ct_len, &pt, &pt_len), 0);
    assert_memory_equal(pt, "secret", 6);
    mf_barrier_wipe_free(pt, pt_len);
    /* A second load of the same rekey: the generation is no longer next. */
    assert_int_equal(mf_barrier_rekey_load(f, r1.p, r1.len, w, wl), MF_ECORRUPT);
    /* The switched barrier exports under the new root key. */
    struct blob e;
    assert_int_equal(mf_barrier_keyring_export(f, &e.p, &e.len), 0);
    struct mf_barrier *d;
    assert_int_equal(mf_barrier_new(&d), 0);
    assert_int_equal(mf_barrier_unseal(d, ROOT, r1.p, r1.len), MF_ECORRUPT);
    assert_int_equal(mf_barrier_unseal(d, ROOT, e.p, e.len), MF_ECORRUPT);
    assert_int_equal(mf_barrier_unseal(d, NEW_ROOT, e.p, e.len), 0);
    mf_barrier_seal(d);
    assert_int_equal(mf_barrier_unseal(d, NEW_ROOT, r1.p, r1.len), 0);
    assert_int_equal(mf_barrier_decrypt(d, "kv/x", 7, ct, ct_len, &pt, &pt_len), 0);
    mf_barrier_wipe_free(pt, pt_len);

    free(b1.p), free(r1.p), free(r1bis.p), free(e.p), free(w), free(wbis), free(ct);
    mf_barrier_free(d);
    mf_barrier_free(f);
    mf_barrier_free(b);
}

/* The leader's rotation rule: by use count (the configured figure, never
 * above 2^31) or by age when set; a clock behind the key's creation is no
 * age. */
static void test_store_barrier_rekey_rotation_due(void **state)
{
    (void)state;
    const uint64_t H = 3600 * 1000;
    assert_false(mf_barrier_rotation_due(4, 5, 0, 0, 0));
    assert_true(mf_barrier_rotation_due(5, 5, 0, 0, 0));
    assert_false(mf_barrier_rotation_due(MF_BARRIER_ROTATE_USES - 1, UINT64_MAX, 0, 0, 0));
    assert_true(mf_barrier_rotation_due(MF_BARRIER_ROTATE_USES, UINT64_MAX, 0, 0, 0));
    assert_true(mf_barrier_rotation_due(MF_BARRIER_ROTATE_USES, 0, 0, 0, 0));
    assert_false(mf_barrier_rotation_due(0, 5, 1000, 1000 + 720 * H - 1, 720 * H));
    assert_true(mf_barrier_rotation_due(0, 5, 1000, 1000 + 720 * H, 720 * H));
    assert_false(mf_barrier_rotation_due(0, 5, 1000, 1000 + 9999 * H, 0)); /* age off */
    assert_false(mf_barrier_rotation_due(0, 5, 1000 + 9999 * H, 1000, 1)); /* clock behind */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_store_barrier_rekey_replace_rule),
        cmocka_unit_test(test_store_barrier_rekey_wrap_unwrap),
        cmocka_unit_test(test_store_barrier_rekey_rotation_due),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Restore through Raft (store/restore.h): pieces then a commit make the
 * backup's state the store's, at the commit's index, the same on every
 * replica; a missing piece or a wrong checksum is refused with the state
 * unchanged; an initialised store refuses both commands. */
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
#include "store/barrier.h"
#include "store/restore.h"
#include "store/snapshot.h"

#define T0 1700000000000ULL
#define PIECE (64 * 1024)

static const uint8_t ROOT[32] = {7, 7, 7, 1};

struct fx {
    struct tf src;
    uint8_t *snap;
    size_t snap_len;
    uint8_t sha[32];
    uint64_t src_index;
};

static void keyring(struct tf *t, uint64_t now)
{
    struct mf_barrier *b;
    struct mf_barrier_seal_config cfg = {.type = MF_SEAL_SHAMIR, .shares = 3, .threshold = 2};
    assert_int_equal(mf_barrier_new(&b), 0);
    assert_int_equal(mf_barrier_initialize(b, ROOT, &cfg, now), 0);
    uint8_t *blob;
    size_t len;
    assert_int_equal(mf_barrier_keyring_export(b, &blob, &len), 0);
    Mayfly__Cmd__KeyringPut m = MAYFLY__CMD__KEYRING_PUT__INIT;
    m.keyring.data = blob;
    m.keyring.len = len;
    Mayfly__Cmd__Command c = MAYFLY__CMD__COMMAND__INIT;
    c.op_case = MAYFLY__CMD__COMMAND__OP_KEYRING_PUT;
    c.keyring_put = &m;
    assert_int_equal(tf_cmd(t, &c, now), 0);
    free(blob);
    mf_barrier_free(b);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    tf_open(&f->src);
    keyring(&f->src, T0);
    assert_int_equal(tf_token(&f->src, T0, 1, "acc", 0, 0), 0);
    for (int i = 1; i <= 300; i++) {
        char path[32];
        snprintf(path, sizeof(path), "app/%d", i);
        assert_int_equal(tf_grant(&f->src, T0, 1000 + (uint64_t)i, 60000, 0), 0);
        assert_int_equal(tf_kv_put(&f->src, T0 + 5, path, "CIPHERTEXT-CIPHERTEXT", 0, 0, 0), 0);
    }
    f->src_index = mf_fsm_applied(f->src.fsm);
    char path[256], err[256] = "";
    snprintf(path, sizeof(path), "%s/snap.bin", f->src.dir);
    assert_int_equal(mf_snapshot_create(tf_st(&f->src), path, NULL, err, sizeof(err)), 0);
    FILE *fp = fopen(path, "rb");
    fseek(fp, 0, SEEK_END);
    f->snap_len = (size_t)ftell(fp);
    fseek(fp, 0, SEEK_SET);
    f->snap = malloc(f->snap_len);
    assert_int_equal(fread(f->snap, 1, f->snap_len, fp), f->snap_len);
    fclose(fp);
    unsigned n;
    EVP_Digest(f->snap, f->snap_len, f->sha, &n, EVP_sha256(), NULL);
    assert_true(f->snap_len > 2 * PIECE); /* several pieces */
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    tf_close(&f->src);
    free(f->snap);
    free(f);
    return 0;
}

static int chunk(struct tf *t, uint64_t now, const uint8_t *p, uint64_t off, size_t len)
{
    Mayfly__Cmd__RestoreChunk m = MAYFLY__CMD__RESTORE_CHUNK__INIT;
    m.offset = off;
    m.data.data = (uint8_t *)p + off;
    m.data.len = len;
    Mayfly__Cmd__Command c = MAYFLY__CMD__COMMAND__INIT;
    c.op_case = MAYFLY__CMD__COMMAND__OP_RESTORE_CHUNK;
    c.restore_chunk = &m;
    return tf_cmd(t, &c, now);
}

static int commit(struct tf *t, uint64_t now, const struct fx *f, const uint8_t *sha)
{
    Mayfly__Cmd__RestoreCommit m = MAYFLY__CMD__RESTORE_COMMIT__INIT;
    m.length = f->snap_len;
    m.sha256.data = (uint8_t *)sha;
    m.sha256.len = 32;
    m.source_index = f->src_index;
    Mayfly__Cmd__Command c = MAYFLY__CMD__COMMAND__INIT;
    c.op_case = MAYFLY__CMD__COMMAND__OP_RESTORE_COMMIT;
    c.restore_commit = &m;
    return tf_cmd(t, &c, now);
}

/* Every piece but `skip` (SIZE_MAX: none). */
static void pieces(struct tf *t, uint64_t now, const struct fx *f, size_t skip)
{
    size_t i = 0;
    for (uint64_t off = 0; off < f->snap_len; off += PIECE, i++) {
        size_t len = f->snap_len - off < PIECE ? f->snap_len - off : PIECE;
        if (i != skip)
            assert_int_equal(chunk(t, now, f->snap, off, len), 0);
    }
}

static size_t entries(struct tf *t, int db)
{
    MDB_txn *txn;
    MDB_stat ms;
    assert_int_equal(mdb_txn_begin(tf_st(t)->env, NULL, MDB_RDONLY, &txn), 0);
    assert_int_equal(mdb_stat(txn, tf_st(t)->dbi[db], &ms), 0);
    mdb_txn_abort(txn);
    return ms.ms_entries;
}

static uint64_t meta(struct tf *t, const char *name)
{
    MDB_txn *txn;
    uint64_t v = 0;
    assert_int_equal(mdb_txn_begin(tf_st(t)->env, NULL, MDB_RDONLY, &txn), 0);
    assert_int_equal(mf_state_meta_get_u64(txn, tf_st(t), name, &v), 0);
    mdb_txn_abort(txn);
    return v;
}

/* Two fresh replicas given the same pieces and commit end byte-identical,
 * holding every record of the source, at their own applied index, with the
 * later time and id_base = the backup's index; then both refuse another
 * restore (they are initialised now). */
static void test_store_restore_replaces_state(void **state)
{
    struct fx *f = *state;
    struct tf r[2];
    uint8_t d[2][32];
    for (int k = 0; k < 2; k++) {
        tf_open(&r[k]);
        pieces(&r[k], T0 + 1000, f, SIZE_MAX);
        assert_int_equal(commit(&r[k], T0 + 1000, f, f->sha), 0);
        assert_true(r[k].last->policies_changed);
        assert_int_equal(mf_fsm_applied(r[k].fsm), r[k].index);
        assert_true(r[k].index < f->src_index);
        assert_int_equal(mf_fsm_now(r[k].fsm), T0 + 1000);
        assert_int_equal(meta(&r[k], "now"), T0 + 1000);
        assert_int_equal(meta(&r[k], "id_base"), f->src_index);
        assert_int_equal(meta(&r[k], "live"), meta(&f->src, "live"));
        for (int db = 1; db < MF_DB_COUNT; db++)
            assert_int_equal(entries(&r[k], db), entries(&f->src, db));
        tf_digest(&r[k], 0, d[k]);
        /* Initialised now: another restore is refused. */
        assert_int_equal(chunk(&r[k], T0 + 1001, f->snap, 0, 10), MF_EEXISTS);
        assert_int_equal(commit(&r[k], T0 + 1001, f, f->sha), MF_EEXISTS);
    }
    assert_memory_equal(d[0], d[1], 32);
    /* And the restored store goes on like the source: a grant and a kv put. */
    assert_int_equal(tf_grant(&r[0], T0 + 2000, 5000000, 60000, 0), 0);
    assert_int_equal(tf_kv_put(&r[0], T0 + 2000, "app/1", "NEW", 0, 0, 0), 0);
    tf_close(&r[0]);
    tf_close(&r[1]);
}

/* A missing piece, a wrong checksum: refused, the state as before. */
static void test_store_restore_refuses_bad_pieces(void **state)
{
    struct fx *f = *state;
    struct tf t;
    tf_open(&t);
    pieces(&t, T0, f, 1);
    uint8_t before[32], after[32];
    tf_digest(&t, 1, before);
    assert_int_equal(commit(&t, T0, f, f->sha), MF_EINVAL);
    assert_non_null(strstr(t.last->error, "restore refused"));
    tf_digest(&t, 1, after);
    assert_memory_equal(before, after, 32);
    /* The piece given: a wrong checksum still refuses. */
    assert_int_equal(chunk(&t, T0, f->snap, PIECE, PIECE), 0);
    uint8_t bad[32];
    memcpy(bad, f->sha, 32);
    bad[0] ^= 1;
    tf_digest(&t, 1, before);
    assert_int_equal(commit(&t, T0, f, bad), MF_EINVAL);
    tf_digest(&t, 1, after);
    assert_memory_equal(before, after, 32);
    /* And the right one restores. */
    assert_int_equal(commit(&t, T0, f, f->sha), 0);
    assert_int_equal(entries(&t, MF_DB_KV_META), entries(&f->src, MF_DB_KV_META));
    /* Oversized and empty pieces are refused. */
    tf_close(&t);
    tf_open(&t);
    assert_int_equal(chunk(&t, T0, f->snap, 0, 0), MF_EINVAL);
    uint8_t *big = calloc(1, MF_RESTORE_CHUNK_MAX + 1);
    assert_int_equal(chunk(&t, T0, big, 0, MF_RESTORE_CHUNK_MAX + 1), MF_EINVAL);
    free(big);
    tf_close(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_store_restore_replaces_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_restore_refuses_bad_pieces, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

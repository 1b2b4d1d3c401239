/* Versioned KV in the state machine: check-and-set, versions and trimming,
 * soft delete / undelete / destroy, metadata, long (hashed) paths, listing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../store/fsm_testlib.h"
#include "common/err.h"

#define T0 1700000000000ULL

static Mayfly__Cmd__KvVersion *get(struct tf *t, const char *path, uint64_t version, int *rc,
                                   uint64_t *ver)
{
    MDB_txn *txn;
    Mayfly__Cmd__KvVersion *v = NULL;
    assert_int_equal(mf_state_read_begin(tf_st(t), &txn), 0);
    *rc = mf_kv_get(txn, tf_st(t), path, version, &v, ver);
    mf_state_read_end(txn);
    return v;
}

static Mayfly__Cmd__KvMeta *meta(struct tf *t, const char *path)
{
    MDB_txn *txn;
    Mayfly__Cmd__KvMeta *m = NULL;
    assert_int_equal(mf_state_read_begin(tf_st(t), &txn), 0);
    assert_int_equal(mf_kv_meta_get(txn, tf_st(t), path, &m), 0);
    mf_state_read_end(txn);
    return m;
}

/* Puts make versions 1, 2, ...; get returns the latest or a named version
 * with its ciphertext and write id. */
static void test_store_kv_put_get_versions(void **s)
{
    (void)s;
    struct tf t;
    tf_open(&t);
    assert_int_equal(tf_kv_put(&t, T0, "a/b", "ONE", 0, 0, 0), 0);
    assert_int_equal(t.last->version, 1);
    assert_int_equal(tf_kv_put(&t, T0 + 1, "a/b", "TWO", 0, 0, 0), 0);
    assert_int_equal(t.last->version, 2);
    int rc;
    uint64_t ver;
    Mayfly__Cmd__KvVersion *v = get(&t, "a/b", 0, &rc, &ver);
    assert_int_equal(rc, 0);
    assert_int_equal(ver, 2);
    assert_memory_equal(v->value.data, "TWO", 3);
    assert_int_equal(v->created_ms, T0 + 1);
    assert_int_equal(v->write_id, 2);
    mf_kv_version_free(v);
    v = get(&t, "a/b", 1, &rc, &ver);
    assert_int_equal(rc, 0);
    assert_memory_equal(v->value.data, "ONE", 3);
    mf_kv_version_free(v);
    v = get(&t, "a/b", 3, &rc, NULL);
    assert_int_equal(rc, MF_ENOTFOUND);
    v = get(&t, "nope", 0, &rc, NULL);
    assert_int_equal(rc, MF_ENOTFOUND);
    assert_int_equal(tf_kv_put(&t, T0, "", "X", 0, 0, 0), MF_EINVAL);
    tf_close(&t);
}

/* Check-and-set: cas 0 only creates, cas N only replaces version N, and
 * cas_required refuses a put without cas. */
static void test_store_kv_check_and_set(void **s)
{
    (void)s;
    struct tf t;
    tf_open(&t);
    assert_int_equal(tf_kv_put(&t, T0, "p", "A", 1, 0, 0), 0);
    assert_int_equal(tf_kv_put(&t, T0, "p", "B", 1, 0, 0), MF_ECAS);
    assert_non_null(strstr(t.last->error, "expected version 0, current is 1"));
    assert_int_equal(tf_kv_put(&t, T0, "p", "B", 1, 1, 0), 0);
    assert_int_equal(tf_kv_put(&t, T0, "p", "C", 1, 1, 0), MF_ECAS);
    assert_int_equal(tf_kv_meta(&t, T0, "p", 0, 1, 1), 0);
    assert_int_equal(tf_kv_put(&t, T0, "p", "C", 0, 0, 0), MF_ECAS);
    assert_non_null(strstr(t.last->error, "required"));
    assert_int_equal(tf_kv_put(&t, T0, "p", "C", 1, 2, 0), 0);
    assert_int_equal(t.last->version, 3);
    tf_close(&t);
}

/* Only max_versions versions are kept (default 10); lowering it trims. */
static void test_store_kv_max_versions_trim(void **s)
{
    (void)s;
    struct tf t;
    tf_open(&t);
    for (int i = 0; i < 12; i++)
        assert_int_equal(tf_kv_put(&t, T0, "k", "V", 0, 0, 0), 0);
    Mayfly__Cmd__KvMeta *m = meta(&t, "k");
    assert_int_equal(m->current_version, 12);
    assert_int_equal(m->oldest_version, 3);
    assert_int_equal(m->max_versions, 10);
    mf_kv_meta_free(m);
    int rc;
    get(&t, "k", 2, &rc, NULL);
    assert_int_equal(rc, MF_ENOTFOUND);
    assert_int_equal(tf_kv_meta(&t, T0, "k", 2, 0, 0), 0);
    m = meta(&t, "k");
    assert_int_equal(m->oldest_version, 11);
    mf_kv_meta_free(m);
    get(&t, "k", 10, &rc, NULL);
    assert_int_equal(rc, MF_ENOTFOUND);
    assert_int_equal(tf_kv_meta(&t, T0, "k", 5000, 0, 0), MF_EINVAL);
    tf_close(&t);
}

/* Soft delete marks a version deleted (undelete clears it); destroy drops
 * its value for good, and undelete cannot bring it back. */
static void test_store_kv_delete_undelete_destroy(void **s)
{
    (void)s;
    struct tf t;
    tf_open(&t);
    assert_int_equal(tf_kv_put(&t, T0, "d", "ONE", 0, 0, 0), 0);
    assert_int_equal(tf_kv_put(&t, T0, "d", "TWO", 0, 0, 0), 0);
    assert_int_equal(tf_kv_op(&t, T0 + 5, "d", KVOP(DELETE), NULL, 0), 0);
    assert_int_equal(t.last->count, 1);
    int rc;
    Mayfly__Cmd__KvVersion *v = get(&t, "d", 0, &rc, NULL);
    assert_int_equal(v->deleted_ms, T0 + 5);
    mf_kv_version_free(v);
    assert_int_equal(tf_kv_op(&t, T0 + 6, "d", KVOP(UNDELETE), NULL, 0), 0);
    v = get(&t, "d", 0, &rc, NULL);
    assert_int_equal(v->deleted_ms, 0);
    mf_kv_version_free(v);
    uint64_t vs[] = {1, 7};
    assert_int_equal(tf_kv_op(&t, T0 + 7, "d", KVOP(DESTROY), vs, 2), 0);
    assert_int_equal(t.last->count, 1);
    v = get(&t, "d", 1, &rc, NULL);
    assert_true(v->destroyed);
    assert_int_equal(v->value.len, 0);
    mf_kv_version_free(v);
    assert_int_equal(tf_kv_op(&t, T0 + 8, "d", KVOP(UNDELETE), vs, 1), 0);
    assert_int_equal(t.last->count, 0);
    assert_int_equal(tf_kv_op(&t, T0, "zz", KVOP(DELETE), NULL, 0), MF_ENOTFOUND);
    assert_int_equal(tf_kv_op(&t, T0, "d", 9, NULL, 0), MF_EINVAL);
    tf_close(&t);
}

/* Paths longer than an LMDB key are stored under their hash with the full
 * path kept, and behave like any other. */
static void test_store_kv_long_path(void **s)
{
    (void)s;
    struct tf t;
    tf_open(&t);
    char p1[2000], p2[2000];
    memset(p1, 'x', sizeof(p1) - 1);
    p1[sizeof(p1) - 1] = 0;
    memcpy(p1, "long/", 5);
    memcpy(p2, p1, sizeof(p1));
    p2[1990] = 'y'; /* differs only far past 511 bytes */
    assert_int_equal(tf_kv_put(&t, T0, p1, "ONE", 0, 0, 0), 0);
    assert_int_equal(tf_kv_put(&t, T0, p2, "TWO", 0, 0, 0), 0);
    assert_int_equal(tf_kv_put(&t, T0, p1, "THREE", 1, 1, 0), 0);
    int rc;
    uint64_t ver;
    Mayfly__Cmd__KvVersion *v = get(&t, p1, 0, &rc, &ver);
    assert_int_equal(rc, 0);
    assert_int_equal(ver, 2);
    assert_memory_equal(v->value.data, "THREE", 5);
    mf_kv_version_free(v);
    Mayfly__Cmd__KvMeta *m = meta(&t, p2);
    assert_string_equal(m->path, p2);
    mf_kv_meta_free(m);
    MDB_txn *txn;
    char **paths;
    size_t n;
    int more;
    assert_int_equal(mf_state_read_begin(tf_st(&t), &txn), 0);
    assert_int_equal(mf_kv_list(txn, tf_st(&t), "long/", NULL, 10, &paths, &n, &more), 0);
    assert_int_equal(n, 2);
    mf_kv_list_free(paths, n);
    mf_state_read_end(txn);
    char too_long[MF_KV_PATH_MAX + 2];
    memset(too_long, 'z', sizeof(too_long) - 1);
    too_long[sizeof(too_long) - 1] = 0;
    assert_int_equal(tf_kv_put(&t, T0, too_long, "X", 0, 0, 0), MF_EINVAL);
    tf_close(&t);
}

/* Listing by prefix pages through every path exactly once, short paths in
 * order, then long ones. */
static void test_store_kv_list_pages(void **s)
{
    (void)s;
    struct tf t;
    tf_open(&t);
    char path[600];
    for (int i = 0; i < 25; i++) {
        snprintf(path, sizeof(path), "svc/%02d", i);
        assert_int_equal(tf_kv_put(&t, T0, path, "V", 0, 0, 0), 0);
    }
    memset(path, 'q', sizeof(path) - 1);
    path[sizeof(path) - 1] = 0;
    memcpy(path, "svc/zz", 6);
    assert_int_equal(tf_kv_put(&t, T0, path, "V", 0, 0, 0), 0);
    assert_int_equal(tf_kv_put(&t, T0, "other/1", "V", 0, 0, 0), 0);
    assert_int_equal(tf_kv_put(&t, T0, "sv", "V", 0, 0, 0), 0);
    MDB_txn *txn;
    assert_int_equal(mf_state_read_begin(tf_st(&t), &txn), 0);
    char after[700] = "";
    size_t total = 0;
    int more = 1, pages = 0;
    while (more) {
        char **paths;
        size_t n;
        assert_int_equal(mf_kv_list(txn, tf_st(&t), "svc/", total ? after : NULL, 7, &paths, &n,
                                    &more),
                         0);
        for (size_t i = 0; i < n; i++) {
            assert_true(strncmp(paths[i], "svc/", 4) == 0);
            if (total + i < 25) {
                snprintf(path, sizeof(path), "svc/%02zu", total + i);
                assert_string_equal(paths[i], path);
            } else {
                assert_int_equal(strlen(paths[i]), 599);
            }
        }
        if (n)
            snprintf(after, sizeof(after), "%s", paths[n - 1]);
        total += n;
        pages++;
        mf_kv_list_free(paths, n);
    }
    mf_state_read_end(txn);
    assert_int_equal(total, 26);
    assert_int_equal(pages, 4);
    tf_close(&t);
}

/* Delete-all removes the metadata and every version (and the lease
 * binding: revoking the lease later touches nothing); the path can be
 * written again from version 1. */
static void test_store_kv_delete_all(void **s)
{
    (void)s;
    struct tf t;
    tf_open(&t);
    assert_int_equal(tf_grant(&t, T0, 1, 10000, 0), 0);
    assert_int_equal(tf_kv_put(&t, T0, "gone", "A", 0, 0, 1), 0);
    assert_int_equal(tf_kv_put(&t, T0, "gone", "B", 0, 0, 1), 0);
    assert_int_equal(tf_kv_delete_all(&t, T0, "gone"), 0);
    assert_int_equal(t.last->count, 1);
    int rc;
    get(&t, "gone", 1, &rc, NULL);
    assert_int_equal(rc, MF_ENOTFOUND);
    MDB_txn *txn;
    Mayfly__Cmd__KvMeta *m;
    assert_int_equal(mf_state_read_begin(tf_st(&t), &txn), 0);
    assert_int_equal(mf_kv_meta_get(txn, tf_st(&t), "gone", &m), MF_ENOTFOUND);
    mf_state_read_end(txn);
    assert_int_equal(tf_kv_delete_all(&t, T0, "gone"), 0);
    assert_int_equal(t.last->count, 0);
    assert_int_equal(tf_kv_put(&t, T0, "gone", "C", 1, 0, 0), 0);
    assert_int_equal(t.last->version, 1);
    assert_int_equal(tf_force(&t, T0, 1), 0);
    Mayfly__Cmd__KvVersion *v = get(&t, "gone", 0, &rc, NULL);
    assert_int_equal(rc, 0); /* no longer bound: not destroyed with the lease */
    mf_kv_version_free(v);
    tf_close(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_store_kv_put_get_versions),
        cmocka_unit_test(test_store_kv_check_and_set),
        cmocka_unit_test(test_store_kv_max_versions_trim),
        cmocka_unit_test(test_store_kv_delete_undelete_destroy),
        cmocka_unit_test(test_store_kv_long_path),
        cmocka_unit_test(test_store_kv_list_pages),
        cmocka_unit_test(test_store_kv_delete_all),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* mf_lmdb_usage: used pages grow with data, come back to the free list when
 * the data is deleted, and the map size is the one set. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/usage.h"

static char dir[] = "/tmp/mf-usage-XXXXXX";

static void put_many(MDB_env *env, MDB_dbi dbi, int n, int del)
{
    MDB_txn *txn;
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    char key[16], val[1024];
    memset(val, 'v', sizeof(val));
    for (int i = 0; i < n; i++) {
        snprintf(key, sizeof(key), "k%08d", i);
        MDB_val k = {strlen(key), key}, v = {sizeof(val), val};
        assert_int_equal(del ? mdb_del(txn, dbi, &k, NULL) : mdb_put(txn, dbi, &k, &v, 0), 0);
    }
    assert_int_equal(mdb_txn_commit(txn), 0);
}

static void usage_follows_data(void **state)
{
    (void)state;
    assert_non_null(mkdtemp(dir));
    MDB_env *env;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_mapsize(env, 64u << 20), 0);
    assert_int_equal(mdb_env_open(env, dir, 0, 0600), 0);
    MDB_txn *txn;
    MDB_dbi dbi;
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, NULL, 0, &dbi), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);

    struct mf_lmdb_usage empty, full, after;
    assert_int_equal(mf_lmdb_usage(env, &empty), 0);
    assert_int_equal(empty.map_bytes, 64u << 20);
    put_many(env, dbi, 2000, 0);
    assert_int_equal(mf_lmdb_usage(env, &full), 0);
    /* 2000 values of 1 KiB: at least 2 MB of pages in use. */
    assert_true(full.used_bytes >= empty.used_bytes + 2000u * 1024u);
    assert_true(full.file_bytes >= full.used_bytes);
    put_many(env, dbi, 2000, 1);
    /* A second empty commit lets LMDB put the first one's pages on the list. */
    put_many(env, dbi, 0, 0);
    assert_int_equal(mf_lmdb_usage(env, &after), 0);
    assert_true(after.used_bytes < full.used_bytes / 2);
    assert_true(after.free_bytes > 0);
    assert_int_equal(after.file_bytes, after.used_bytes + after.free_bytes);
    mdb_env_close(env);
    char cmd[64];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(usage_follows_data)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}

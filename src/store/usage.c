/* Used pages of an LMDB environment: see usage.h. */
#include "store/usage.h"

#include <string.h>

#include "common/err.h"

/* The free list is database 0 (LMDB's FREE_DBI): each value is an array of
 * page numbers whose first element is their count. */
static int free_pages(MDB_txn *txn, uint64_t *out)
{
    MDB_cursor *cur;
    if (mdb_cursor_open(txn, 0, &cur) != 0)
        return MF_ESTORAGE;
    MDB_val k, v;
    uint64_t pages = 0;
    int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    while (rc == 0) {
        if (v.mv_size >= sizeof(size_t)) {
            size_t n;
            memcpy(&n, v.mv_data, sizeof(n)); /* LMDB's pgno_t is a size_t */
            pages += n;
        }
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    if (rc != MDB_NOTFOUND)
        return MF_ESTORAGE;
    *out = pages;
    return 0;
}

int mf_lmdb_usage(MDB_env *env, struct mf_lmdb_usage *out)
{
    MDB_envinfo info;
    MDB_stat st;
    if (mdb_env_info(env, &info) != 0 || mdb_env_stat(env, &st) != 0)
        return MF_ESTORAGE;
    MDB_txn *txn;
    if (mdb_txn_begin(env, NULL, MDB_RDONLY, &txn) != 0)
        return MF_ESTORAGE;
    uint64_t freed = 0;
    int rc = free_pages(txn, &freed);
    mdb_txn_abort(txn);
    if (rc)
        return rc;
    uint64_t page = st.ms_psize, allocated = (uint64_t)info.me_last_pgno + 1;
    if (freed > allocated)
        freed = allocated;
    out->file_bytes = allocated * page;
    out->free_bytes = freed * page;
    out->used_bytes = (allocated - freed) * page;
    out->map_bytes = info.me_mapsize;
    return 0;
}

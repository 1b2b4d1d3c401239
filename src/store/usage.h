/* How full an LMDB environment is, in the unit the storage quota counts.
 *
 * LMDB files never shrink, and freed pages go to a free list that later
 * writes reuse, so the file size says little: the quota counts used pages,
 * the pages below the highest one ever allocated minus those on the free
 * list (what `mdb_stat -ef` prints). Free-list pages still pinned by an old
 * reader count as free: they come back once it ends.
 *
 * Threads: any thread; it begins and ends its own read transaction, so the
 * environment must allow one more reader (the caller's business).
 * Errors: MF_ESTORAGE (LMDB refused the read transaction or the free list).
 */
#ifndef MF_STORE_USAGE_H
#define MF_STORE_USAGE_H

#include <lmdb.h>
#include <stdint.h>

struct mf_lmdb_usage {
    uint64_t used_bytes; /* pages in use (allocated and not on the free list) x page size */
    uint64_t free_bytes; /* pages on the free list x page size (reusable without growing) */
    uint64_t file_bytes; /* pages ever allocated (the file's high-water mark) x page size */
    uint64_t map_bytes;  /* the map size: no write can go beyond it */
};

int mf_lmdb_usage(MDB_env *env, struct mf_lmdb_usage *out);

#endif

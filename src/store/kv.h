/* Versioned static secrets in the state database (layouts in state.h).
 *
 * Each path has metadata (KvMeta: current and oldest kept version, max
 * versions (default 10), cas_required, the lease it is bound to) and numbered
 * versions (KvVersion: created/deleted time, destroyed flag, the value as the
 * barrier's ciphertext, never plaintext). Writes happen only through
 * replicated commands (put with check-and-set, soft delete, undelete,
 * destroy, metadata put, delete-all; see apply.h). A KV entry bound to a lease
 * is destroyed (all versions, no undelete) in the command that marks the lease
 * revoked.
 *
 * LMDB keys are at most 511 bytes: a path of up to MF_KV_KEY_DIRECT_MAX bytes
 * is its own key; a longer one is keyed by 0x00 | SHA-256(path) and its full
 * path is kept in KvMeta.path.
 *
 * Read functions take a transaction the caller began and ends. Records handed
 * out are the caller's to free with the matching _free.
 */
#ifndef MF_STORE_KV_H
#define MF_STORE_KV_H

#include <stddef.h>
#include <stdint.h>

#include "store/state.h"

#define MF_KV_PATH_MAX 4096          /* bytes in a path */
#define MF_KV_KEY_DIRECT_MAX 440     /* longer paths are hashed */
#define MF_KV_VALUE_MAX (1024 * 1024) /* ciphertext bytes in one version */
#define MF_KV_VERSIONS_DEFAULT 10
#define MF_KV_VERSIONS_MAX 1000
#define MF_KV_VERSION_OPS_MAX 1000   /* versions named in one delete/undelete/destroy */

/* Metadata of `path`. MF_ENOTFOUND if the path has none. */
int mf_kv_meta_get(MDB_txn *txn, struct mf_state *st, const char *path,
                   Mayfly__Cmd__KvMeta **out);
void mf_kv_meta_free(Mayfly__Cmd__KvMeta *m);

/* Version `version` of `path` (0: the current one). *out is the caller's (free
 * with mf_kv_version_free); *version_out (may be NULL) says which version.
 * A deleted or destroyed version is returned with its flags set: the caller
 * decides what to show. MF_ENOTFOUND if the path or version does not exist
 * (or was trimmed). */
int mf_kv_get(MDB_txn *txn, struct mf_state *st, const char *path, uint64_t version,
              Mayfly__Cmd__KvVersion **out, uint64_t *version_out);
void mf_kv_version_free(Mayfly__Cmd__KvVersion *v);

/* Paths starting with `prefix` ("" or NULL: all), at most `limit`, after the
 * path `after` (NULL: from the start). Paths up to MF_KV_KEY_DIRECT_MAX bytes
 * come first in byte order, then longer (hashed) paths in hash order.
 * *paths is an array of *n strings; free with mf_kv_list_free. *more says a
 * next page exists (continue with after = the last path). */
int mf_kv_list(MDB_txn *txn, struct mf_state *st, const char *prefix, const char *after,
               size_t limit, char ***paths, size_t *n, int *more);
void mf_kv_list_free(char **paths, size_t n);

#endif

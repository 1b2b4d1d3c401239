/* The apply side of a restore (restore.h): pieces kept in META, then one
 * commit that swaps every database's records for the backup's inside the
 * batch's write transaction. */
#include "store/restore.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "common/assert.h"
#include "common/fdio.h"
#include "store/features.h"
#include "store/snapshot.h"

#define PREFIX_LEN (sizeof(MF_RESTORE_KEY_PREFIX) - 1)
#define ALARM_PREFIX "alarm/"

static int initialised(struct mf_apply *a)
{
    MDB_val k = {7, "keyring"}, d;
    int rc = mdb_get(a->txn, a->st->dbi[MF_DB_META], &k, &d);
    if (rc == 0)
        return mf_apply_fail(a, MF_EEXISTS, "the cluster is already initialised: a backup is "
                                            "restored only into a new, uninitialised cluster");
    return rc == MDB_NOTFOUND ? 0 : mf_state_err(rc, "keyring get");
}

int mf_restore_apply_chunk(struct mf_apply *a, const Mayfly__Cmd__RestoreChunk *m,
                           Mayfly__Cmd__Result *r)
{
    (void)r;
    if (m->data.len == 0 || m->data.len > MF_RESTORE_CHUNK_MAX)
        return mf_apply_fail(a, MF_EINVAL, "a restore piece holds 1 byte to %u bytes",
                             MF_RESTORE_CHUNK_MAX);
    int rc = initialised(a);
    if (rc)
        return rc;
    uint8_t kb[PREFIX_LEN + 8];
    memcpy(kb, MF_RESTORE_KEY_PREFIX, PREFIX_LEN);
    mf_be64_put(kb + PREFIX_LEN, m->offset);
    MDB_val k = {sizeof(kb), kb}, d = {m->data.len, m->data.data};
    return mf_state_err(mdb_put(a->txn, a->st->dbi[MF_DB_META], &k, &d, 0), "restore piece");
}

static int is_piece(const MDB_val *k)
{
    return k->mv_size == PREFIX_LEN + 8 && memcmp(k->mv_data, MF_RESTORE_KEY_PREFIX, PREFIX_LEN) == 0;
}

/* META records about the live cluster rather than its data: its members'
 * storage alarms and its feature version (features.h) stay as they are. */
static int is_alarm(const MDB_val *k)
{
    static const char version[] = MF_FEATURE_META_KEY;
    if (k->mv_size == sizeof(version) - 1 && memcmp(k->mv_data, version, k->mv_size) == 0)
        return 1;
    return k->mv_size >= sizeof(ALARM_PREFIX) - 1 &&
           memcmp(k->mv_data, ALARM_PREFIX, sizeof(ALARM_PREFIX) - 1) == 0;
}

/* ENOSPC is this node's storage pressure (node.h); anything else an I/O error. */
static int write_all(int fd, const void *buf, size_t n)
{
    int rc = mf_write_all(fd, buf, n);
    return rc == 0 ? 0 : rc == -ENOSPC ? MF_ENOSPACE : -EIO;
}

/* The pieces in order into `file` (the snapshot's LMDB data, its header
 * checked and left out); 1 when they do not make the promised snapshot. */
static int gather(struct mf_apply *a, const Mayfly__Cmd__RestoreCommit *m, const char *file,
                  int *bad)
{
    MDB_cursor *cur;
    int rc = mf_state_err(mdb_cursor_open(a->txn, a->st->dbi[MF_DB_META], &cur), "cursor");
    if (rc)
        return rc;
    int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (fd < 0 || !md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        rc = fd < 0 ? (errno == ENOSPC ? MF_ENOSPACE : -EIO) : -ENOMEM;
        goto out;
    }
    uint8_t head[MF_SNAPSHOT_HEADER_LEN];
    uint64_t at = 0;
    MDB_val k = {PREFIX_LEN, MF_RESTORE_KEY_PREFIX}, d;
    int mrc = mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE);
    for (; mrc == 0 && is_piece(&k); mrc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
        uint64_t off = mf_be64_get((const uint8_t *)k.mv_data + PREFIX_LEN);
        if (off != at || at + d.mv_size > m->length) {
            *bad = 1; /* a gap, an overlap or too long */
            goto out;
        }
        EVP_DigestUpdate(md, d.mv_data, d.mv_size);
        const uint8_t *p = d.mv_data;
        size_t n = d.mv_size;
        while (n && at < MF_SNAPSHOT_HEADER_LEN) { /* the header is kept aside */
            head[at++] = *p++;
            n--;
        }
        if (n && (rc = write_all(fd, p, n)) != 0)
            goto out;
        at += n;
    }
    if (mrc && mrc != MDB_NOTFOUND) {
        rc = mf_state_err(mrc, "restore pieces");
        goto out;
    }
    uint8_t sha[32];
    unsigned sn = 0;
    EVP_DigestFinal_ex(md, sha, &sn);
    if (at != m->length || at < MF_SNAPSHOT_HEADER_LEN || m->sha256.len != 32 ||
        CRYPTO_memcmp(sha, m->sha256.data, 32) != 0 ||
        memcmp(head, MF_SNAPSHOT_MAGIC, 8) != 0) {
        *bad = 1;
        goto out;
    }
    if (fsync(fd) != 0)
        rc = -EIO;
out:
    EVP_MD_CTX_free(md);
    if (fd >= 0)
        close(fd);
    mdb_cursor_close(cur);
    return rc;
}

/* Drop every record of the live databases (META: all but the alarms). */
static int clear_live(struct mf_apply *a)
{
    for (int i = 0; i < MF_DB_COUNT; i++) {
        if (i == MF_DB_META)
            continue;
        int rc = mf_state_err(mdb_drop(a->txn, a->st->dbi[i], 0), "restore clear");
        if (rc)
            return rc;
    }
    MDB_cursor *cur;
    int rc = mf_state_err(mdb_cursor_open(a->txn, a->st->dbi[MF_DB_META], &cur), "cursor");
    if (rc)
        return rc;
    MDB_val k, d;
    int mrc = mdb_cursor_get(cur, &k, &d, MDB_FIRST);
    for (; mrc == 0; mrc = mdb_cursor_get(cur, &k, &d, MDB_NEXT))
        if (!is_alarm(&k) && (mrc = mdb_cursor_del(cur, 0)) != 0)
            break;
    mdb_cursor_close(cur);
    return mrc == MDB_NOTFOUND ? 0 : mf_state_err(mrc, "restore clear meta");
}

/* Copy every record of the snapshot's databases (opened as dbis in `src`). */
static int copy_from(struct mf_apply *a, MDB_txn *src, const MDB_dbi *dbis, uint64_t *src_now)
{
    for (int i = 0; i < MF_DB_COUNT; i++) {
        MDB_cursor *cur;
        int rc = mf_state_err(mdb_cursor_open(src, dbis[i], &cur), "restore cursor");
        if (rc)
            return rc;
        MDB_val k, d;
        int mrc = mdb_cursor_get(cur, &k, &d, MDB_FIRST);
        for (; mrc == 0 && !rc; mrc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
            if (i == MF_DB_META && (is_alarm(&k) || is_piece(&k)))
                continue;
            if (i == MF_DB_META && k.mv_size == 3 && memcmp(k.mv_data, "now", 3) == 0 &&
                d.mv_size == 8)
                *src_now = mf_be64_get(d.mv_data);
            rc = mf_state_err(mdb_put(a->txn, a->st->dbi[i], &k, &d, 0), "restore put");
        }
        mdb_cursor_close(cur);
        if (!rc && mrc != MDB_NOTFOUND)
            rc = mf_state_err(mrc, "restore read");
        if (rc)
            return rc;
    }
    return 0;
}

static int install(struct mf_apply *a, const Mayfly__Cmd__RestoreCommit *m, const char *file,
                   int *bad)
{
    MDB_env *env;
    int rc = mf_state_err(mdb_env_create(&env), "restore env");
    if (rc)
        return rc;
    mdb_env_set_maxdbs(env, MF_DB_COUNT + 2);
    mdb_env_set_mapsize(env, (size_t)(m->length + (64u << 20)));
    MDB_txn *src = NULL;
    MDB_dbi dbis[MF_DB_COUNT];
    if (mdb_env_open(env, file, MDB_NOSUBDIR | MDB_RDONLY | MDB_NOLOCK, 0600) != 0 ||
        mdb_txn_begin(env, NULL, MDB_RDONLY, &src) != 0)
        *bad = 1;
    /* Every database of ours must be there before a live record goes. */
    for (int i = 0; !*bad && i < MF_DB_COUNT; i++)
        if (mdb_dbi_open(src, mf_state_db_name(i), 0, &dbis[i]) != 0)
            *bad = 1;
    uint64_t src_now = 0;
    if (!*bad)
        rc = clear_live(a);
    if (!rc && !*bad)
        rc = copy_from(a, src, dbis, &src_now);
    if (!rc && !*bad) {
        /* Time never goes backwards; the ids the leader derives from new
         * indexes start above every id in the backup. */
        if (src_now > a->now_ms)
            a->now_ms = src_now;
        rc = mf_state_meta_put_u64(a->txn, a->st, "now", a->now_ms);
        if (!rc)
            rc = mf_state_meta_put_u64(a->txn, a->st, "id_base", m->source_index);
        /* The batch's cached counters are the backup's from here on. */
        a->live_loaded = a->live_dirty = 0;
        a->states_loaded = a->states_dirty = 0;
    }
    if (src)
        mdb_txn_abort(src);
    mdb_env_close(env);
    return rc;
}

int mf_restore_apply_commit(struct mf_apply *a, const Mayfly__Cmd__RestoreCommit *m,
                            Mayfly__Cmd__Result *r)
{
    int rc = initialised(a);
    if (rc)
        return rc;
    size_t n = strlen(a->st->dir) + 32;
    char *file = malloc(n);
    if (!file)
        return -ENOMEM;
    snprintf(file, n, "%s/restore-in.mdb", a->st->dir);
    int bad = 0;
    rc = gather(a, m, file, &bad);
    /* Everything that may refuse is checked before a live record changes:
     * a refusal leaves the databases exactly as they were. */
    if (!rc && !bad)
        rc = install(a, m, file, &bad);
    unlink(file);
    free(file);
    if (rc)
        return rc;
    if (bad)
        return mf_apply_fail(a, MF_EINVAL, "restore refused: the pieces do not make the "
                                           "snapshot the commit names");
    r->policies_changed = 1; /* every node recompiles the restored policies */
    return 0;
}

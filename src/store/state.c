/* The state database's environment: opening it with the flags the design
 * requires, the named databases, applied index and a few meta records, and
 * the record digest the determinism tests compare. No clock and no randomness
 * here: this file is part of the apply path. */
#include "store/state.h"

#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "common/assert.h"
#include "common/err.h"
#include "common/log.h"
#include "store/usage.h"

static const struct {
    const char *name;
    unsigned flags;
} db_defs[MF_DB_COUNT] = {
    [MF_DB_META] = {"meta", 0},
    [MF_DB_LEASES] = {"leases", 0},
    [MF_DB_EXPIRY] = {"expiry", 0},
    [MF_DB_PREFIX] = {"prefix", MDB_DUPSORT | MDB_DUPFIXED},
    [MF_DB_REVOKING] = {"revoking", 0},
    [MF_DB_REVOKED] = {"revoked", 0},
    [MF_DB_OWNER] = {"owner", MDB_DUPSORT | MDB_DUPFIXED},
    [MF_DB_LEASE_KV] = {"lease_kv", MDB_DUPSORT},
    [MF_DB_QUOTA] = {"quota", 0},
    [MF_DB_KV_META] = {"kv_meta", 0},
    [MF_DB_KV_VER] = {"kv_ver", 0},
    [MF_DB_TOKENS] = {"tokens", 0},
    [MF_DB_TOKEN_ACC] = {"token_acc", 0},
    [MF_DB_TOKEN_CHILD] = {"token_child", MDB_DUPSORT | MDB_DUPFIXED},
    [MF_DB_POLICIES] = {"policies", 0},
    [MF_DB_IDEM] = {"idem", 0},
    [MF_DB_IDEM_EXP] = {"idem_exp", 0},
    [MF_DB_KEYUSE] = {"keyuse", 0},
    [MF_DB_TOKEN_EXP] = {"token_exp", 0},
    [MF_DB_IDEM_CALLER] = {"idem_caller", 0},
};

const char *mf_state_db_name(enum mf_state_db db)
{
    MF_ASSERT(db < MF_DB_COUNT);
    return db_defs[db].name;
}

int mf_state_err(int rc, const char *what)
{
    if (rc == 0)
        return 0;
    if (rc == MDB_NOTFOUND)
        return MF_ENOTFOUND;
    if (rc == MDB_MAP_FULL) {
        MF_ERROR("store", "%s: state database is full (map size reached): %s", what,
                 mdb_strerror(rc));
        return MF_EMAPFULL;
    }
    if (rc == ENOMEM)
        return -ENOMEM;
    if (rc == ENOSPC) {
        MF_ERROR("store", "%s: no space left on device: %s", what, mdb_strerror(rc));
        return MF_ENOSPACE;
    }
    if (rc == EIO) {
        /* A short write on a full filesystem, or a failing disk: the node
         * tells them apart with statvfs (common/fsstat.h). */
        MF_ERROR("store", "%s: %s", what, mdb_strerror(rc));
        return -EIO;
    }
    MF_ERROR("store", "%s: %s", what, mdb_strerror(rc));
    return MF_ESTORAGE;
}

/* LMDB forbids opening one environment twice in a process (its locks are
 * per process): remember which state directories are open here. */
#define OPEN_MAX 64
static pthread_mutex_t open_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    dev_t dev;
    ino_t ino;
    int used;
} open_dirs[OPEN_MAX];

/* 0 and registered, MF_EEXISTS if already open here, -errno. */
static int register_dir(const char *path, dev_t *dev, ino_t *ino)
{
    struct stat sb;
    if (stat(path, &sb))
        return -errno;
    int rc = -EMFILE;
    pthread_mutex_lock(&open_lock);
    for (int i = 0; i < OPEN_MAX; i++)
        if (open_dirs[i].used && open_dirs[i].dev == sb.st_dev && open_dirs[i].ino == sb.st_ino) {
            pthread_mutex_unlock(&open_lock);
            return MF_EEXISTS;
        }
    for (int i = 0; i < OPEN_MAX; i++)
        if (!open_dirs[i].used) {
            open_dirs[i].used = 1;
            open_dirs[i].dev = sb.st_dev;
            open_dirs[i].ino = sb.st_ino;
            rc = 0;
            break;
        }
    pthread_mutex_unlock(&open_lock);
    *dev = sb.st_dev;
    *ino = sb.st_ino;
    return rc;
}

static void unregister_dir(dev_t dev, ino_t ino)
{
    pthread_mutex_lock(&open_lock);
    for (int i = 0; i < OPEN_MAX; i++)
        if (open_dirs[i].used && open_dirs[i].dev == dev && open_dirs[i].ino == ino)
            open_dirs[i].used = 0;
    pthread_mutex_unlock(&open_lock);
}

static int env_open(struct mf_state *st)
{
    int rc = mdb_env_create(&st->env);
    if (rc)
        return mf_state_err(rc, "mdb_env_create");
    mdb_env_set_mapsize(st->env, st->map_size);
    mdb_env_set_maxdbs(st->env, MF_DB_COUNT + 2);
    mdb_env_set_maxreaders(st->env, st->readers_max);
    rc = mdb_env_open(st->env, st->dir, MDB_NOMETASYNC | MDB_NOTLS, 0600);
    if (rc) {
        int e = rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH ? MF_ECORRUPT
                                                                 : mf_state_err(rc, st->dir);
        MF_ERROR("store", "cannot open state database %s: %s", st->dir, mdb_strerror(rc));
        mdb_env_close(st->env);
        st->env = NULL;
        return e;
    }
    MDB_txn *txn;
    rc = mdb_txn_begin(st->env, NULL, 0, &txn);
    if (rc)
        goto fail_env;
    for (int i = 0; i < MF_DB_COUNT; i++) {
        rc = mdb_dbi_open(txn, db_defs[i].name, db_defs[i].flags | MDB_CREATE, &st->dbi[i]);
        if (rc) {
            mdb_txn_abort(txn);
            goto fail_env;
        }
    }
    rc = mdb_txn_commit(txn);
    if (rc)
        goto fail_env;
    return 0;

fail_env: {
    int e = rc == MDB_INCOMPATIBLE ? MF_ECORRUPT : mf_state_err(rc, "open databases");
    mdb_env_close(st->env);
    st->env = NULL;
    return e;
}
}

static int fsync_path(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) ? -errno : 0;
    close(fd);
    return rc;
}

static void remove_env_dir(const char *d)
{
    char f[4200];
    if (snprintf(f, sizeof(f), "%s/data.mdb", d) < (int)sizeof(f))
        unlink(f);
    if (snprintf(f, sizeof(f), "%s/lock.mdb", d) < (int)sizeof(f))
        unlink(f);
    rmdir(d);
}

/* LMDB writes a new file's first meta pages without a sync, so a state DB
 * created in place and cut by a power failure can be found torn ("not an
 * LMDB file"). Create it in DIR/state.tmp, sync it, then rename it into
 * place and sync DIR: a crash leaves either no state DB or a whole one. */
static int create_if_missing(struct mf_state *st, const char *dir)
{
    char data[4200], tmp[4096];
    if (snprintf(data, sizeof(data), "%s/data.mdb", st->dir) >= (int)sizeof(data) ||
        snprintf(tmp, sizeof(tmp), "%s/state.tmp", dir) >= (int)sizeof(tmp))
        return MF_EINVAL;
    if (access(data, F_OK) == 0)
        return 0;
    remove_env_dir(st->dir); /* an empty or torn leftover */
    remove_env_dir(tmp);
    if (mkdir(tmp, 0700)) {
        int e = -errno;
        MF_ERROR("store", "cannot create %s: %s", tmp, strerror(errno));
        return e;
    }
    char *final = st->dir;
    st->dir = tmp;
    int rc = env_open(st);
    if (rc == 0) {
        rc = mf_state_err(mdb_env_sync(st->env, 1), "sync new state DB");
        mdb_env_close(st->env);
        st->env = NULL;
    }
    st->dir = final;
    if (rc == 0)
        rc = fsync_path(tmp);
    if (rc == 0 && rename(tmp, st->dir)) {
        rc = -errno;
        MF_ERROR("store", "cannot rename %s to %s: %s", tmp, st->dir, strerror(errno));
    }
    if (rc == 0)
        rc = fsync_path(dir);
    if (rc)
        remove_env_dir(tmp);
    return rc;
}

int mf_state_open(const char *dir, const struct mf_state_opts *opts, struct mf_state **out)
{
    if (!dir || !*dir || !out)
        return MF_EINVAL;
    struct mf_state *st = calloc(1, sizeof(*st));
    if (!st)
        return -ENOMEM;
    size_t n = strlen(dir) + sizeof("/state");
    st->dir = malloc(n);
    if (!st->dir) {
        free(st);
        return -ENOMEM;
    }
    snprintf(st->dir, n, "%s/state", dir);
    st->map_size = opts && opts->map_size_bytes ? opts->map_size_bytes : MF_STATE_MAP_SIZE_DEFAULT;
    st->readers_max = opts && opts->readers_max ? opts->readers_max : MF_STATE_READERS_DEFAULT;
    if (mkdir(dir, 0700) && errno != EEXIST) {
        int e = -errno;
        MF_ERROR("store", "cannot create %s: %s", dir, strerror(errno));
        free(st->dir);
        free(st);
        return e;
    }
    int rc = create_if_missing(st, dir);
    if (rc) {
        free(st->dir);
        free(st);
        return rc;
    }
    rc = register_dir(st->dir, &st->dev, &st->ino);
    if (rc) {
        if (rc == MF_EEXISTS)
            MF_ERROR("store", "%s is already open in this process", st->dir);
        free(st->dir);
        free(st);
        return rc;
    }
    /* A snapshot install that crashed before its rename left this behind. */
    char stale[4096];
    snprintf(stale, sizeof(stale), "%s/data.mdb.new", st->dir);
    unlink(stale);
    rc = env_open(st);
    if (rc) {
        unregister_dir(st->dev, st->ino);
        free(st->dir);
        free(st);
        return rc;
    }
    *out = st;
    return 0;
}

void mf_state_close(struct mf_state *st)
{
    if (!st)
        return;
    if (st->env)
        mdb_env_close(st->env);
    unregister_dir(st->dev, st->ino);
    free(st->dir);
    free(st);
}

int mf_state_reopen(struct mf_state *st)
{
    MF_ASSERT(st);
    if (st->env)
        mdb_env_close(st->env);
    st->env = NULL;
    return env_open(st);
}

int mf_state_set_map_size(struct mf_state *st, size_t map_size_bytes)
{
    MF_ASSERT(st && st->env);
    if (map_size_bytes < st->map_size)
        return MF_EINVAL;
    int rc = mdb_env_set_mapsize(st->env, map_size_bytes);
    if (rc)
        return mf_state_err(rc, "set map size");
    st->map_size = map_size_bytes;
    return 0;
}

int mf_state_read_begin(struct mf_state *st, MDB_txn **txn)
{
    MF_ASSERT(st && st->env && txn);
    return mf_state_err(mdb_txn_begin(st->env, NULL, MDB_RDONLY, txn), "read txn");
}

void mf_state_read_end(MDB_txn *txn)
{
    if (txn)
        mdb_txn_abort(txn);
}

int mf_state_meta_get_u64(MDB_txn *txn, struct mf_state *st, const char *name, uint64_t *v)
{
    MDB_val k = {strlen(name), (void *)name}, d;
    int rc = mdb_get(txn, st->dbi[MF_DB_META], &k, &d);
    if (rc == MDB_NOTFOUND) {
        *v = 0;
        return 0;
    }
    if (rc)
        return mf_state_err(rc, "meta get");
    if (d.mv_size != 8)
        return MF_ECORRUPT;
    *v = mf_be64_get(d.mv_data);
    return 0;
}

int mf_state_meta_put_u64(MDB_txn *txn, struct mf_state *st, const char *name, uint64_t v)
{
    uint8_t b[8];
    mf_be64_put(b, v);
    MDB_val k = {strlen(name), (void *)name}, d = {8, b};
    return mf_state_err(mdb_put(txn, st->dbi[MF_DB_META], &k, &d, 0), "meta put");
}

int mf_state_applied(struct mf_state *st, uint64_t *index)
{
    MDB_txn *txn;
    int rc = mf_state_read_begin(st, &txn);
    if (rc)
        return rc;
    rc = mf_state_meta_get_u64(txn, st, "applied", index);
    mf_state_read_end(txn);
    return rc;
}

void mf_state_lease_count_key(int s, char buf[16])
{
    snprintf(buf, 16, "leases/%d", s);
}

int mf_state_lease_counts(MDB_txn *txn, struct mf_state *st, uint64_t counts[MF_LEASE_STATES])
{
    counts[0] = 0;
    for (int s = 1; s < MF_LEASE_STATES; s++) {
        char key[16];
        mf_state_lease_count_key(s, key);
        int rc = mf_state_meta_get_u64(txn, st, key, &counts[s]);
        if (rc)
            return rc;
    }
    return 0;
}

int mf_state_live_leases(MDB_txn *txn, struct mf_state *st, uint64_t *count)
{
    return mf_state_meta_get_u64(txn, st, "live", count);
}

int mf_state_key_uses(MDB_txn *txn, struct mf_state *st, uint32_t term, uint64_t *count)
{
    uint8_t kb[4] = {(uint8_t)(term >> 24), (uint8_t)(term >> 16), (uint8_t)(term >> 8),
                     (uint8_t)term};
    MDB_val k = {4, kb}, d;
    int rc = mdb_get(txn, st->dbi[MF_DB_KEYUSE], &k, &d);
    if (rc == MDB_NOTFOUND) {
        *count = 0;
        return 0;
    }
    if (rc)
        return mf_state_err(rc, "keyuse get");
    if (d.mv_size != 8)
        return MF_ECORRUPT;
    *count = mf_be64_get(d.mv_data);
    return 0;
}

int mf_state_keyring(MDB_txn *txn, struct mf_state *st, const uint8_t **data, size_t *len)
{
    MDB_val k = {7, "keyring"}, d;
    int rc = mdb_get(txn, st->dbi[MF_DB_META], &k, &d);
    if (rc)
        return mf_state_err(rc, "keyring get");
    *data = d.mv_data;
    *len = d.mv_size;
    return 0;
}

int mf_state_put_msg(MDB_txn *txn, MDB_dbi dbi, const MDB_val *key, const ProtobufCMessage *msg,
                     unsigned flags)
{
    size_t n = protobuf_c_message_get_packed_size(msg);
    MDB_val k = *key, d = {n, NULL};
    int rc = mdb_put(txn, dbi, &k, &d, flags | MDB_RESERVE);
    if (rc == MDB_KEYEXIST && (flags & MDB_APPEND)) {
        d.mv_size = n;
        d.mv_data = NULL;
        rc = mdb_put(txn, dbi, &k, &d, (flags & ~MDB_APPEND) | MDB_RESERVE);
    }
    if (rc)
        return mf_state_err(rc, "put record");
    size_t w = protobuf_c_message_pack(msg, d.mv_data);
    MF_ASSERT(w == n);
    return 0;
}

static void hash_len(EVP_MD_CTX *c, size_t n)
{
    uint8_t b[8];
    mf_be64_put(b, n);
    EVP_DigestUpdate(c, b, 8);
}

int mf_state_digest(struct mf_state *st, int skip_applied, uint8_t out[32])
{
    MDB_txn *txn;
    int rc = mf_state_read_begin(st, &txn);
    if (rc)
        return rc;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    if (!c || EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(c);
        mf_state_read_end(txn);
        return MF_ECRYPTO;
    }
    for (int i = 0; i < MF_DB_COUNT && rc == 0; i++) {
        const char *name = db_defs[i].name;
        hash_len(c, strlen(name));
        EVP_DigestUpdate(c, name, strlen(name));
        MDB_cursor *cur;
        rc = mf_state_err(mdb_cursor_open(txn, st->dbi[i], &cur), "digest cursor");
        if (rc)
            break;
        MDB_val k, d;
        int r = mdb_cursor_get(cur, &k, &d, MDB_FIRST);
        while (r == 0) {
            int bookkeeping = i == MF_DB_META &&
                              ((k.mv_size == 7 && memcmp(k.mv_data, "applied", 7) == 0) ||
                               (k.mv_size == 3 && memcmp(k.mv_data, "now", 3) == 0));
            if (!(skip_applied && bookkeeping)) {
                hash_len(c, k.mv_size);
                EVP_DigestUpdate(c, k.mv_data, k.mv_size);
                hash_len(c, d.mv_size);
                EVP_DigestUpdate(c, d.mv_data, d.mv_size);
            }
            r = mdb_cursor_get(cur, &k, &d, MDB_NEXT);
        }
        mdb_cursor_close(cur);
        if (r != MDB_NOTFOUND)
            rc = mf_state_err(r, "digest");
    }
    mf_state_read_end(txn);
    unsigned int olen = 0;
    EVP_DigestFinal_ex(c, out, &olen);
    EVP_MD_CTX_free(c);
    return rc;
}

int mf_state_usage(struct mf_state *st, struct mf_lmdb_usage *out)
{
    return mf_lmdb_usage(st->env, out);
}

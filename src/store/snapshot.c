/* Snapshot files of the state database: create (compacted LMDB copy plus a
 * header with the applied index, length and SHA-256), verify, and install
 * (write aside, verify, swap by rename, reopen). See snapshot.h. */
#include "store/snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "common/assert.h"
#include "common/err.h"
#include "common/fdio.h"
#include "common/log.h"

#define COPY_CHUNK (1024 * 1024)

struct header {
    uint64_t index;
    uint64_t data_len;
    uint8_t sha[32];
};

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}
static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void header_encode(uint8_t b[MF_SNAPSHOT_HEADER_LEN], const struct header *h)
{
    memset(b, 0, MF_SNAPSHOT_HEADER_LEN);
    memcpy(b, MF_SNAPSHOT_MAGIC, 8);
    put_u32(b + 8, MF_SNAPSHOT_VERSION);
    put_u32(b + 12, MF_SNAPSHOT_HEADER_LEN);
    mf_be64_put(b + 16, h->index);
    mf_be64_put(b + 24, h->data_len);
    memcpy(b + 32, h->sha, 32);
}

static int errset(char *err, size_t errlen, int code, const char *fmt, const char *a,
                  const char *b)
{
    if (err && errlen)
        snprintf(err, errlen, fmt, a, b);
    MF_ERROR("store", fmt, a, b);
    return code;
}

/* Read exactly n bytes; returns the number read (< n at end of file) or -errno. */
static ssize_t read_full(int fd, void *buf, size_t n)
{
    uint8_t *p = buf;
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, p + got, n - got);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

static int fsync_dir_of(const char *path)
{
    char *d = strdup(path);
    if (!d)
        return -ENOMEM;
    char *slash = strrchr(d, '/');
    if (slash)
        *slash = 0;
    int fd = open(slash ? (*d ? d : "/") : ".", O_RDONLY | O_DIRECTORY);
    free(d);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) ? -errno : 0;
    close(fd);
    return rc;
}

/* Open an LMDB data file read-only, check our databases are there, and read
 * its applied index. */
static int check_env_file(const char *file, uint64_t *applied, char *err, size_t errlen)
{
    MDB_env *env;
    int rc = mdb_env_create(&env);
    if (rc)
        return mf_state_err(rc, "snapshot env");
    mdb_env_set_maxdbs(env, MF_DB_COUNT + 2);
    rc = mdb_env_open(env, file, MDB_NOSUBDIR | MDB_RDONLY | MDB_NOLOCK, 0600);
    if (rc) {
        mdb_env_close(env);
        return errset(err, errlen, MF_ECORRUPT, "snapshot data is not an LMDB database: %s%s",
                      mdb_strerror(rc), "");
    }
    MDB_txn *txn;
    rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
    if (rc) {
        mdb_env_close(env);
        return mf_state_err(rc, "snapshot txn");
    }
    int out = 0;
    MDB_dbi meta = 0;
    for (int i = 0; i < MF_DB_COUNT; i++) {
        MDB_dbi dbi;
        rc = mdb_dbi_open(txn, mf_state_db_name(i), 0, &dbi);
        if (rc) {
            out = errset(err, errlen, MF_ECORRUPT, "snapshot lacks database '%s': %s",
                         mf_state_db_name(i), mdb_strerror(rc));
            break;
        }
        if (i == MF_DB_META)
            meta = dbi;
    }
    if (out == 0) {
        MDB_val k = {7, "applied"}, d;
        rc = mdb_get(txn, meta, &k, &d);
        if (rc == MDB_NOTFOUND)
            *applied = 0;
        else if (rc || d.mv_size != 8)
            out = errset(err, errlen, MF_ECORRUPT, "snapshot applied index unreadable%s%s", "",
                         "");
        else
            *applied = mf_be64_get(d.mv_data);
    }
    mdb_txn_abort(txn);
    mdb_env_close(env);
    return out;
}

int mf_snapshot_create(struct mf_state *st, const char *path, uint64_t *index, char *err,
                       size_t errlen)
{
    MF_ASSERT(st && st->env && path);
    size_t n = strlen(path) + 16;
    char *copy = malloc(n), *tmp = malloc(n);
    uint8_t *buf = malloc(COPY_CHUNK);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int rc = 0, cfd = -1, ofd = -1;
    if (!copy || !tmp || !buf || !md) {
        rc = -ENOMEM;
        goto out;
    }
    snprintf(copy, n, "%s.copy.mdb", path);
    snprintf(tmp, n, "%s.tmp", path);

    /* 1. Compacted copy from one read transaction. */
    cfd = open(copy, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (cfd < 0) {
        rc = errset(err, errlen, -errno, "cannot create %s: %s", copy, strerror(errno));
        goto out;
    }
    int x = mdb_env_copyfd2(st->env, cfd, MDB_CP_COMPACT);
    if (x) {
        rc = errset(err, errlen, mf_state_err(x, "snapshot copy"), "snapshot copy failed: %s%s",
                    mdb_strerror(x), "");
        goto out;
    }
    /* 2. What index does the copy hold? (the copy's own transaction decided) */
    struct header h = {0};
    rc = check_env_file(copy, &h.index, err, errlen);
    if (rc)
        goto out;
    struct stat sb;
    if (fstat(cfd, &sb)) {
        rc = -errno;
        goto out;
    }
    h.data_len = (uint64_t)sb.st_size;
    /* 3. Header + data into path.tmp, hashing as we go. */
    ofd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (ofd < 0) {
        rc = errset(err, errlen, -errno, "cannot create %s: %s", tmp, strerror(errno));
        goto out;
    }
    uint8_t hb[MF_SNAPSHOT_HEADER_LEN];
    header_encode(hb, &h);
    if ((rc = mf_write_all(ofd, hb, sizeof(hb))))
        goto out;
    if (lseek(cfd, 0, SEEK_SET) < 0 || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        rc = -EIO;
        goto out;
    }
    uint64_t left = h.data_len;
    while (left) {
        ssize_t r = read_full(cfd, buf, left < COPY_CHUNK ? left : COPY_CHUNK);
        if (r <= 0) {
            rc = r < 0 ? (int)r : -EIO;
            goto out;
        }
        EVP_DigestUpdate(md, buf, (size_t)r);
        if ((rc = mf_write_all(ofd, buf, (size_t)r)))
            goto out;
        left -= (uint64_t)r;
    }
    unsigned int mdlen;
    EVP_DigestFinal_ex(md, h.sha, &mdlen);
    header_encode(hb, &h);
    if (pwrite(ofd, hb, sizeof(hb), 0) != (ssize_t)sizeof(hb) || fsync(ofd)) {
        rc = errset(err, errlen, -errno, "cannot write %s: %s", tmp, strerror(errno));
        goto out;
    }
    close(ofd);
    ofd = -1;
    if (rename(tmp, path)) {
        rc = errset(err, errlen, -errno, "cannot rename to %s: %s", path, strerror(errno));
        goto out;
    }
    rc = fsync_dir_of(path);
    if (rc == 0 && index)
        *index = h.index;
out:
    if (cfd >= 0)
        close(cfd);
    if (ofd >= 0)
        close(ofd);
    if (copy)
        unlink(copy);
    if (rc && tmp)
        unlink(tmp);
    EVP_MD_CTX_free(md);
    free(buf);
    free(copy);
    free(tmp);
    return rc;
}

/* Read and check the header; leaves fd after it. */
static int read_header(int fd, const char *path, struct header *h, char *err, size_t errlen)
{
    uint8_t hb[MF_SNAPSHOT_HEADER_LEN];
    ssize_t r = read_full(fd, hb, sizeof(hb));
    if (r < 0)
        return r;
    if (r < (ssize_t)sizeof(hb))
        return errset(err, errlen, MF_ECORRUPT, "snapshot %s is truncated: no complete header%s",
                      path, "");
    if (memcmp(hb, MF_SNAPSHOT_MAGIC, 8) != 0)
        return errset(err, errlen, MF_ECORRUPT, "%s is not a mayfly snapshot (bad magic)%s", path,
                      "");
    if (get_u32(hb + 8) != MF_SNAPSHOT_VERSION || get_u32(hb + 12) != MF_SNAPSHOT_HEADER_LEN)
        return errset(err, errlen, MF_ECORRUPT, "snapshot %s has an unknown version%s", path, "");
    h->index = mf_be64_get(hb + 16);
    h->data_len = mf_be64_get(hb + 24);
    memcpy(h->sha, hb + 32, 32);
    struct stat sb;
    if (fstat(fd, &sb))
        return -errno;
    uint64_t have = (uint64_t)sb.st_size - MF_SNAPSHOT_HEADER_LEN;
    if (have != h->data_len) {
        char a[64], b[160];
        snprintf(a, sizeof(a), "%s", path);
        snprintf(b, sizeof(b), "%llu of %llu data bytes", (unsigned long long)have,
                 (unsigned long long)h->data_len);
        return errset(err, errlen, MF_ECORRUPT,
                      have < h->data_len ? "snapshot %s is truncated: %s"
                                         : "snapshot %s has trailing bytes: %s",
                      a, b);
    }
    return 0;
}

/* Stream the data after the header into out_fd (if >= 0), checking the
 * SHA-256. */
static int copy_check(int fd, int out_fd, const struct header *h, const char *path, char *err,
                      size_t errlen)
{
    uint8_t *buf = malloc(COPY_CHUNK);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int rc = 0;
    if (!buf || !md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        rc = -ENOMEM;
        goto out;
    }
    uint64_t left = h->data_len;
    while (left) {
        ssize_t r = read_full(fd, buf, left < COPY_CHUNK ? left : COPY_CHUNK);
        if (r < 0) {
            rc = (int)r;
            goto out;
        }
        if (r == 0) {
            rc = errset(err, errlen, MF_ECORRUPT, "snapshot %s is truncated%s", path, "");
            goto out;
        }
        EVP_DigestUpdate(md, buf, (size_t)r);
        if (out_fd >= 0 && (rc = mf_write_all(out_fd, buf, (size_t)r)))
            goto out;
        left -= (uint64_t)r;
    }
    uint8_t sha[32];
    unsigned int mdlen;
    EVP_DigestFinal_ex(md, sha, &mdlen);
    if (CRYPTO_memcmp(sha, h->sha, 32) != 0)
        rc = errset(err, errlen, MF_ECORRUPT, "snapshot %s fails its checksum (corrupted)%s", path,
                    "");
out:
    EVP_MD_CTX_free(md);
    free(buf);
    return rc;
}

int mf_snapshot_verify(const char *path, uint64_t *index, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errset(err, errlen, -errno, "cannot open snapshot %s: %s", path, strerror(errno));
    struct header h;
    int rc = read_header(fd, path, &h, err, errlen);
    if (rc == 0)
        rc = copy_check(fd, -1, &h, path, err, errlen);
    close(fd);
    if (rc == 0 && index)
        *index = h.index;
    return rc;
}

int mf_snapshot_install(struct mf_fsm *fsm, const char *path, uint64_t *index, char *err,
                        size_t errlen)
{
    struct mf_state *st = mf_fsm_state(fsm);
    size_t n = strlen(st->dir) + 32;
    char *data = malloc(n), *fresh = malloc(n);
    int rc = 0, fd = -1, nfd = -1, swapped = 0;
    if (!data || !fresh) {
        rc = -ENOMEM;
        goto out;
    }
    snprintf(data, n, "%s/data.mdb", st->dir);
    snprintf(fresh, n, "%s/data.mdb.new", st->dir);

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = errset(err, errlen, -errno, "cannot open snapshot %s: %s", path, strerror(errno));
        goto out;
    }
    struct header h;
    if ((rc = read_header(fd, path, &h, err, errlen)))
        goto out;
    if (h.index < mf_fsm_applied(fsm)) {
        char a[32], b[32];
        snprintf(a, sizeof(a), "%llu", (unsigned long long)h.index);
        snprintf(b, sizeof(b), "%llu", (unsigned long long)mf_fsm_applied(fsm));
        rc = errset(err, errlen, MF_EINVAL,
                    "snapshot at index %s is older than the applied index %s", a, b);
        goto out;
    }
    nfd = open(fresh, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (nfd < 0) {
        rc = errset(err, errlen, -errno, "cannot create %s: %s", fresh, strerror(errno));
        goto out;
    }
    if ((rc = copy_check(fd, nfd, &h, path, err, errlen)))
        goto out;
    if (fsync(nfd)) {
        rc = -errno;
        goto out;
    }
    close(nfd);
    nfd = -1;
    uint64_t applied;
    if ((rc = check_env_file(fresh, &applied, err, errlen)))
        goto out;
    if (applied != h.index) {
        rc = errset(err, errlen, MF_ECORRUPT, "snapshot %s: header index and data disagree%s",
                    path, "");
        goto out;
    }
    /* Swap: the live environment is closed while its file is replaced. */
    mdb_env_close(st->env);
    st->env = NULL;
    if (rename(fresh, data)) {
        rc = errset(err, errlen, -errno, "cannot swap in the snapshot: %s%s", strerror(errno), "");
        int r2 = mf_state_reopen(st); /* the old file is intact */
        MF_ASSERT(r2 == 0);
        goto out;
    }
    swapped = 1;
    if ((rc = fsync_dir_of(data)))
        MF_WARN("store", "fsync of %s failed after snapshot swap: %s", st->dir, mf_strerror(rc));
    rc = mf_state_reopen(st);
    if (rc == 0)
        rc = mf_fsm_reload(fsm);
    if (rc == 0 && index)
        *index = mf_fsm_applied(fsm);
out:
    if (fd >= 0)
        close(fd);
    if (nfd >= 0)
        close(nfd);
    if (!swapped && fresh)
        unlink(fresh);
    free(data);
    free(fresh);
    return rc;
}

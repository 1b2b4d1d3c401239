/* Backup files (backup.h): a header with the cluster's index, term and
 * keyring blob, a snapshot file, a plain SHA-256 and an HMAC keyed from the
 * root key. Every byte before the trailer goes through one SHA-256 and, when
 * a key is at hand, one HMAC, read in fixed chunks (no whole file in memory). */
#include "store/backup.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "common/assert.h"
#include "common/err.h"
#include "common/fdio.h"
#include "store/snapshot.h"
#include "store/state.h"

#define CHUNK (256 * 1024)
#define MAC_KEY_BYTES 32

static int fail(char *err, size_t errlen, int code, const char *msg)
{
    if (err && errlen)
        snprintf(err, errlen, "%s", msg);
    return code;
}

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

/* Exactly n bytes, else MF_ECORRUPT at end of file. */
static int read_exact(int fd, void *buf, size_t n)
{
    uint8_t *p = buf;
    while (n) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0)
            return MF_ECORRUPT;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

/* The digests over a file's bytes: SHA-256 always, HMAC when keyed. */
struct digests {
    EVP_MD_CTX *sha;
    EVP_MAC *mac_alg;
    EVP_MAC_CTX *mac;
};

static int digests_init(struct digests *d, const uint8_t *mac_key)
{
    *d = (struct digests){0};
    d->sha = EVP_MD_CTX_new();
    if (!d->sha || EVP_DigestInit_ex(d->sha, EVP_sha256(), NULL) != 1)
        return MF_ECRYPTO;
    if (!mac_key)
        return 0;
    d->mac_alg = EVP_MAC_fetch(NULL, "HMAC", NULL);
    d->mac = d->mac_alg ? EVP_MAC_CTX_new(d->mac_alg) : NULL;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    if (!d->mac || EVP_MAC_init(d->mac, mac_key, MAC_KEY_BYTES, params) != 1)
        return MF_ECRYPTO;
    return 0;
}

static int digests_update(struct digests *d, const void *p, size_t n, bool sha)
{
    if (sha && EVP_DigestUpdate(d->sha, p, n) != 1)
        return MF_ECRYPTO;
    if (d->mac && EVP_MAC_update(d->mac, p, n) != 1)
        return MF_ECRYPTO;
    return 0;
}

static void digests_free(struct digests *d)
{
    EVP_MD_CTX_free(d->sha);
    EVP_MAC_CTX_free(d->mac); /* wipes the keyed state */
    EVP_MAC_free(d->mac_alg);
}

static int sha_final(struct digests *d, uint8_t out[32])
{
    unsigned n = 0;
    return EVP_DigestFinal_ex(d->sha, out, &n) == 1 && n == 32 ? 0 : MF_ECRYPTO;
}

static int mac_final(struct digests *d, uint8_t out[32])
{
    size_t n = 0;
    return EVP_MAC_final(d->mac, out, &n, 32) == 1 && n == 32 ? 0 : MF_ECRYPTO;
}

static int mac_key(struct mf_barrier *b, uint8_t key[MAC_KEY_BYTES])
{
    return mf_barrier_root_derive(b, MF_BACKUP_MAC_INFO, key, MAC_KEY_BYTES);
}

static void header_encode(uint8_t h[MF_BACKUP_FIXED_LEN], const struct mf_backup_info *in,
                          size_t keyring_len)
{
    memset(h, 0, MF_BACKUP_FIXED_LEN);
    memcpy(h, MF_BACKUP_MAGIC, 8);
    put_u32(h + 8, MF_BACKUP_VERSION);
    put_u32(h + 12, (uint32_t)(MF_BACKUP_FIXED_LEN + keyring_len));
    mf_be64_put(h + 16, in->index);
    mf_be64_put(h + 24, in->term);
    mf_be64_put(h + 32, in->created_ms);
    mf_be64_put(h + 40, in->data_len);
    h[48] = in->seal.type;
    h[49] = in->seal.shares;
    h[50] = in->seal.threshold;
    memcpy(h + 52, in->seal.seal_id, MF_BARRIER_SEAL_ID_BYTES);
    put_u32(h + 68, in->key_term);
    put_u32(h + 72, (uint32_t)keyring_len);
}

static int header_decode(const uint8_t h[MF_BACKUP_FIXED_LEN], struct mf_backup_info *out,
                         size_t *keyring_len)
{
    static const uint8_t zero[20];
    if (memcmp(h, MF_BACKUP_MAGIC, 8) != 0 || get_u32(h + 8) != MF_BACKUP_VERSION || h[51] ||
        memcmp(h + 76, zero, sizeof(zero)) != 0)
        return MF_ECORRUPT;
    *out = (struct mf_backup_info){0};
    out->index = mf_be64_get(h + 16);
    out->term = mf_be64_get(h + 24);
    out->created_ms = mf_be64_get(h + 32);
    out->data_len = mf_be64_get(h + 40);
    out->seal.type = h[48];
    out->seal.shares = h[49];
    out->seal.threshold = h[50];
    memcpy(out->seal.seal_id, h + 52, MF_BARRIER_SEAL_ID_BYTES);
    out->key_term = get_u32(h + 68);
    *keyring_len = get_u32(h + 72);
    out->header_len = get_u32(h + 12);
    if (*keyring_len == 0 || *keyring_len > MF_BACKUP_KEYRING_MAX ||
        out->header_len != MF_BACKUP_FIXED_LEN + *keyring_len ||
        out->data_len > UINT64_MAX / 2)
        return MF_ECORRUPT;
    out->total_len = out->header_len + out->data_len + MF_BACKUP_TRAILER_LEN;
    return 0;
}

/* The header's copy of the keyring blob's cleartext fields equals the blob's. */
static int header_matches_blob(const struct mf_backup_info *in, const uint8_t *blob, size_t len)
{
    struct mf_barrier_seal_config c;
    uint32_t term;
    if (mf_barrier_blob_seal_config(blob, len, &c) || mf_barrier_blob_active_term(blob, len, &term))
        return MF_ECORRUPT;
    if (c.type != in->seal.type || c.shares != in->seal.shares ||
        c.threshold != in->seal.threshold ||
        memcmp(c.seal_id, in->seal.seal_id, MF_BARRIER_SEAL_ID_BYTES) != 0 || term != in->key_term)
        return MF_ECORRUPT;
    return 0;
}

/* Copy `n` bytes from `in` to `out` (out < 0: read only), through d. */
static int pump(int in, int out, uint64_t n, struct digests *d, uint8_t *buf)
{
    while (n) {
        size_t k = n < CHUNK ? (size_t)n : CHUNK;
        int rc = read_exact(in, buf, k);
        if (!rc && d)
            rc = digests_update(d, buf, k, true);
        if (!rc && out >= 0)
            rc = mf_write_all(out, buf, k);
        if (rc)
            return rc;
        n -= k;
    }
    return 0;
}

static int fsync_dir_of(const char *path)
{
    char *d = strdup(path);
    if (!d)
        return -ENOMEM;
    char *slash = strrchr(d, '/');
    if (slash)
        *slash = 0;
    int fd = open(slash ? (*d ? d : "/") : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(d);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) ? -errno : 0;
    close(fd);
    return rc;
}

int mf_backup_write(struct mf_barrier *b, const char *snapshot, const uint8_t *keyring,
                    size_t keyring_len, uint64_t index, uint64_t term, uint64_t created_ms,
                    const char *path, struct mf_backup_info *info, char *err, size_t errlen)
{
    MF_ASSERT(b != NULL && snapshot != NULL && path != NULL);
    struct mf_backup_info in = {.index = index, .term = term, .created_ms = created_ms};
    if (!keyring || keyring_len == 0 || keyring_len > MF_BACKUP_KEYRING_MAX ||
        mf_barrier_blob_seal_config(keyring, keyring_len, &in.seal) ||
        mf_barrier_blob_active_term(keyring, keyring_len, &in.key_term))
        return fail(err, errlen, MF_EINVAL, "the keyring blob is unreadable");
    char why[256] = "";
    uint64_t snap_index = 0;
    int rc = mf_snapshot_verify(snapshot, &snap_index, why, sizeof(why));
    if (rc)
        return fail(err, errlen, rc, why[0] ? why : "the snapshot is unreadable");
    struct stat sb;
    int src = open(snapshot, O_RDONLY | O_CLOEXEC);
    if (src < 0 || fstat(src, &sb) != 0) {
        rc = -errno;
        if (src >= 0)
            close(src);
        return fail(err, errlen, rc, "cannot open the snapshot");
    }
    in.data_len = (uint64_t)sb.st_size;
    in.header_len = MF_BACKUP_FIXED_LEN + keyring_len;
    in.total_len = in.header_len + in.data_len + MF_BACKUP_TRAILER_LEN;
    char *tmp = malloc(strlen(path) + 5);
    uint8_t *buf = malloc(CHUNK);
    uint8_t key[MAC_KEY_BYTES], hdr[MF_BACKUP_FIXED_LEN], sha[32], mac[32];
    struct digests d = {0};
    int fd = -1;
    rc = tmp && buf ? mac_key(b, key) : -ENOMEM;
    if (!rc)
        rc = digests_init(&d, key);
    OPENSSL_cleanse(key, sizeof(key));
    if (!rc) {
        sprintf(tmp, "%s.tmp", path);
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        rc = fd < 0 ? -errno : 0;
    }
    header_encode(hdr, &in, keyring_len);
    if (!rc)
        rc = digests_update(&d, hdr, sizeof(hdr), true);
    if (!rc)
        rc = mf_write_all(fd, hdr, sizeof(hdr));
    if (!rc)
        rc = digests_update(&d, keyring, keyring_len, true);
    if (!rc)
        rc = mf_write_all(fd, keyring, keyring_len);
    if (!rc)
        rc = pump(src, fd, in.data_len, &d, buf);
    if (!rc)
        rc = sha_final(&d, sha);
    if (!rc)
        rc = digests_update(&d, sha, sizeof(sha), false);
    if (!rc)
        rc = mac_final(&d, mac);
    if (!rc)
        rc = mf_write_all(fd, sha, sizeof(sha));
    if (!rc)
        rc = mf_write_all(fd, mac, sizeof(mac));
    if (!rc && fsync(fd) != 0)
        rc = -errno;
    if (fd >= 0 && close(fd) != 0 && !rc)
        rc = -errno;
    if (!rc && rename(tmp, path) != 0)
        rc = -errno;
    if (!rc)
        rc = fsync_dir_of(path);
    if (rc && tmp)
        unlink(tmp);
    close(src);
    digests_free(&d);
    free(buf);
    free(tmp);
    if (rc)
        return fail(err, errlen, rc == MF_ECORRUPT ? MF_ECORRUPT : rc,
                    rc == MF_ESEALED ? "the node is sealed" : "cannot write the backup");
    memcpy(in.sha256, sha, 32);
    if (info)
        *info = in;
    return 0;
}

/* Open and read the fixed header and keyring; the file's size must be what
 * the header says. */
static int open_checked_header(const char *path, int *fd_out, struct mf_backup_info *info,
                               uint8_t **keyring, size_t *keyring_len, struct digests *d,
                               char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return fail(err, errlen, -errno, "cannot open the backup");
    uint8_t hdr[MF_BACKUP_FIXED_LEN];
    struct stat sb;
    size_t klen = 0;
    int rc = fstat(fd, &sb) ? -errno : read_exact(fd, hdr, sizeof(hdr));
    if (!rc)
        rc = header_decode(hdr, info, &klen);
    if (!rc && (uint64_t)sb.st_size != info->total_len)
        rc = MF_ECORRUPT; /* truncated or extended */
    uint8_t *kr = !rc ? malloc(klen) : NULL;
    if (!rc && !kr)
        rc = -ENOMEM;
    if (!rc)
        rc = read_exact(fd, kr, klen);
    if (!rc)
        rc = header_matches_blob(info, kr, klen);
    if (!rc)
        rc = digests_update(d, hdr, sizeof(hdr), true);
    if (!rc)
        rc = digests_update(d, kr, klen, true);
    if (rc) {
        free(kr);
        close(fd);
        return fail(err, errlen, rc,
                    rc == MF_ECORRUPT ? "not a backup, or a damaged or truncated one"
                                      : "cannot read the backup");
    }
    *fd_out = fd;
    *keyring = kr;
    *keyring_len = klen;
    return 0;
}

/* Read the data and the trailer through d; *sha and *mac get the trailer's. */
static int read_rest(int fd, const struct mf_backup_info *info, struct digests *d, uint8_t *sha,
                     uint8_t *mac)
{
    uint8_t *buf = malloc(CHUNK);
    int rc = buf ? pump(fd, -1, info->data_len, d, buf) : -ENOMEM;
    free(buf);
    if (!rc)
        rc = read_exact(fd, sha, 32);
    if (!rc)
        rc = digests_update(d, sha, 32, false); /* the MAC covers the checksum */
    if (!rc)
        rc = read_exact(fd, mac, 32);
    return rc;
}

int mf_backup_check(const char *path, struct mf_backup_info *info, uint8_t **keyring,
                    size_t *keyring_len, char *err, size_t errlen)
{
    MF_ASSERT(path != NULL && info != NULL);
    struct digests d;
    int rc = digests_init(&d, NULL), fd = -1;
    uint8_t *kr = NULL, sha[32], want[32], mac[32];
    size_t klen = 0;
    if (rc) {
        digests_free(&d);
        return fail(err, errlen, rc, "OpenSSL failed");
    }
    rc = open_checked_header(path, &fd, info, &kr, &klen, &d, err, errlen);
    if (rc) {
        digests_free(&d);
        return rc;
    }
    rc = read_rest(fd, info, &d, want, mac);
    if (!rc)
        rc = sha_final(&d, sha);
    if (!rc && CRYPTO_memcmp(sha, want, 32) != 0)
        rc = MF_ECORRUPT;
    close(fd);
    digests_free(&d);
    if (rc) {
        free(kr);
        return fail(err, errlen, rc,
                    rc == MF_ECORRUPT ? "the backup is damaged: its SHA-256 does not match"
                                      : "cannot read the backup");
    }
    memcpy(info->sha256, sha, 32);
    if (keyring) {
        *keyring = kr;
        *keyring_len = klen;
    } else {
        free(kr);
    }
    return 0;
}

int mf_backup_verify_mac(struct mf_barrier *b, const char *path, char *err, size_t errlen)
{
    MF_ASSERT(b != NULL && path != NULL);
    uint8_t key[MAC_KEY_BYTES], sha[32], mac[32], want[32];
    struct digests d = {0};
    int rc = mac_key(b, key);
    if (!rc)
        rc = digests_init(&d, key);
    OPENSSL_cleanse(key, sizeof(key));
    if (rc) {
        digests_free(&d);
        return fail(err, errlen, rc, rc == MF_ESEALED ? "the node is sealed" : "OpenSSL failed");
    }
    struct mf_backup_info info;
    uint8_t *kr = NULL;
    size_t klen = 0;
    int fd = -1;
    rc = open_checked_header(path, &fd, &info, &kr, &klen, &d, err, errlen);
    free(kr);
    if (rc) {
        digests_free(&d);
        return rc;
    }
    rc = read_rest(fd, &info, &d, want, mac);
    if (!rc)
        rc = mac_final(&d, sha);
    if (!rc && CRYPTO_memcmp(sha, mac, 32) != 0)
        rc = MF_ECORRUPT;
    close(fd);
    digests_free(&d);
    OPENSSL_cleanse(sha, sizeof(sha));
    if (rc)
        return fail(err, errlen, rc,
                    rc == MF_ECORRUPT ? "backup fails its MAC" : "cannot read the backup");
    return 0;
}

int mf_backup_extract(const char *path, const char *snapshot, char *err, size_t errlen)
{
    MF_ASSERT(path != NULL && snapshot != NULL);
    struct digests d;
    int rc = digests_init(&d, NULL), in = -1, out = -1;
    struct mf_backup_info info;
    uint8_t *kr = NULL, *buf = NULL;
    size_t klen = 0;
    if (!rc)
        rc = open_checked_header(path, &in, &info, &kr, &klen, &d, err, errlen);
    free(kr);
    digests_free(&d);
    if (rc)
        return rc;
    out = open(snapshot, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    buf = malloc(CHUNK);
    rc = out < 0 ? -errno : buf ? pump(in, out, info.data_len, NULL, buf) : -ENOMEM;
    if (!rc && fsync(out) != 0)
        rc = -errno;
    if (out >= 0 && close(out) != 0 && !rc)
        rc = -errno;
    close(in);
    free(buf);
    if (rc) {
        unlink(snapshot);
        return fail(err, errlen, rc, "cannot extract the snapshot from the backup");
    }
    return 0;
}

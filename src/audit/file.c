/* The file audit device (file.h): appends chained lines in groups, one
 * fdatasync per batch, truncates a failed batch away so the file never holds
 * a line the server did not stand behind, and resumes a file from its tail. */
#include "audit/file.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "common/assert.h"
#include "common/env.h"
#include "common/err.h"
#include "common/fdio.h"

/* The last two lines, a newline before them, and one byte to see a torn tail. */
#define TAIL_READ_MAX (2u * (MF_AUDIT_LINE_MAX + 1u) + 1u)
#define BUF_INITIAL_BYTES (64u << 10)
/* Room for one more record and a start record past the batch limit. */
#define BUF_MAX_BYTES (MF_AUDIT_BATCH_BYTES_MAX + 2u * (MF_AUDIT_LINE_MAX + 1u))

static int set_err(char *err, size_t err_len, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int set_err(char *err, size_t err_len, int rc, const char *fmt, ...)
{
    if (err && err_len > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, err_len, fmt, ap);
        va_end(ap);
    }
    return rc;
}

static void to_hex(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0xf];
    }
    out[2 * n] = '\0';
}

/* Generations of a file's batch (file.h): unique in the process. */
static uint64_t next_gen(void)
{
    static uint64_t gen;
    return __atomic_add_fetch(&gen, 1, __ATOMIC_RELAXED);
}

/* --- opening and resuming --- */

/* Make a new file's directory entry durable, so a crash cannot lose the file
 * while keeping lines the server acknowledged. */
static int sync_parent(const char *path, char *err, size_t err_len)
{
    char *copy = strdup(path);
    if (!copy)
        return -ENOMEM;
    const char *dir = dirname(copy);
    int rc = 0;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) != 0)
        rc = set_err(err, err_len, -errno, "audit file %s: sync directory %s: %s", path, dir,
                     strerror(errno));
    if (dfd >= 0)
        close(dfd);
    free(copy);
    return rc;
}

static int open_fd(const char *path, bool *created, char *err, size_t err_len)
{
    *created = false;
    for (int attempt = 0; attempt < 2; attempt++) {
        int fd = open(path, O_RDWR | O_APPEND | O_CLOEXEC);
        if (fd >= 0 || errno != ENOENT)
            return fd >= 0 ? fd
                           : set_err(err, err_len, -errno, "audit file %s: open: %s", path,
                                     strerror(errno));
        fd = open(path, O_RDWR | O_APPEND | O_CLOEXEC | O_CREAT | O_EXCL, 0600);
        if (fd >= 0) {
            *created = true;
            int rc = sync_parent(path, err, err_len);
            if (rc != 0) {
                close(fd);
                return rc;
            }
            return fd;
        }
        if (errno != EEXIST) /* EEXIST: created meanwhile; open it as it is */
            return set_err(err, err_len, -errno, "audit file %s: create: %s", path,
                           strerror(errno));
    }
    return set_err(err, err_len, -EAGAIN, "audit file %s: created and removed while opening",
                   path);
}

/* A new file: fresh id and seed, start record due, linked to `prev`. */
static int new_pos(const struct mf_audit_keys *k, const struct mf_audit_anchor *prev,
                   struct mf_audit_file_pos *pos)
{
    uint8_t rnd[MF_AUDIT_FILE_ID_RAND_BYTES];
    char id[MF_AUDIT_FILE_ID_LEN + 1];
    int rc = mf_rand_bytes(rnd, sizeof(rnd));
    if (rc != 0)
        return MF_ECRYPTO;
    to_hex(rnd, sizeof(rnd), id);
    memset(pos, 0, sizeof(*pos));
    if ((rc = mf_audit_chain_start(&pos->chain, k->chain_key, id)) != 0)
        return rc;
    pos->need_start = true;
    if (prev && prev->seq > 0) {
        pos->has_prev = true;
        pos->prev = *prev;
    }
    return 0;
}

static int pread_all(int fd, char *buf, size_t n, off_t off)
{
    size_t done = 0;
    while (done < n) {
        ssize_t r = pread(fd, buf + done, n - done, off + (off_t)done);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0)
            return -EIO; /* the file shrank under us */
        done += (size_t)r;
    }
    return 0;
}

/* Start of the line that ends at tail[end] (exclusive; end > 0), or -1 when
 * it begins before the tail we read. */
static ssize_t line_start(const char *tail, size_t end, bool tail_is_whole_file)
{
    for (size_t i = end; i > 0; i--)
        if (tail[i - 1] == '\n')
            return (ssize_t)i;
    return tail_is_whole_file ? 0 : -1;
}

/* Cut an incomplete last line off (file.h). Updates *size and *end. */
static int cut_torn(int fd, const char *path, const char *tail, uint64_t *size, size_t *end,
                    bool whole, uint64_t *torn, char *err, size_t err_len)
{
    ssize_t s = line_start(tail, *end, whole);
    if (s < 0)
        return set_err(err, err_len, MF_ECORRUPT, "audit file %s: last line is longer than %u "
                       "bytes", path, MF_AUDIT_LINE_MAX);
    uint64_t new_size = *size - (*end - (size_t)s);
    if (ftruncate(fd, (off_t)new_size) != 0 || fdatasync(fd) != 0)
        return set_err(err, err_len, -errno, "audit file %s: cut incomplete last line: %s", path,
                       strerror(errno));
    *torn = *size - new_size;
    *size = new_size;
    *end = (size_t)s;
    return 0;
}

/* Resume from the last two lines of a file of `size` bytes (size > 0). */
static int resume_tail(int fd, const char *path, const struct mf_audit_keys *k, uint64_t *size,
                       struct mf_audit_file_pos *pos, uint64_t *torn, char *err, size_t err_len)
{
    size_t n = *size < TAIL_READ_MAX ? (size_t)*size : TAIL_READ_MAX;
    bool whole = n == *size;
    char *tail = malloc(n);
    if (!tail)
        return -ENOMEM;
    int rc = pread_all(fd, tail, n, (off_t)(*size - n));
    size_t end = n;
    if (rc != 0) {
        rc = set_err(err, err_len, rc, "audit file %s: read tail: %s", path, strerror(-rc));
        goto out;
    }
    if (tail[end - 1] != '\n' &&
        (rc = cut_torn(fd, path, tail, size, &end, whole, torn, err, err_len)) != 0)
        goto out;
    memset(pos, 0, sizeof(*pos));
    if (end == 0) { /* the whole file was one torn line */
        rc = new_pos(k, NULL, pos);
        goto out;
    }
    ssize_t ls = line_start(tail, end - 1, whole);
    ssize_t ps = ls > 0 ? line_start(tail, (size_t)ls - 1, whole) : 0;
    if (ls < 0 || ps < 0) {
        rc = set_err(err, err_len, MF_ECORRUPT, "audit file %s: a line near the end is longer "
                     "than %u bytes", path, MF_AUDIT_LINE_MAX);
        goto out;
    }
    char why[MF_AUDIT_REASON_MAX];
    const char *prev = ls > 0 ? tail + ps : NULL;
    size_t prev_len = ls > 0 ? (size_t)(ls - 1 - ps) : 0;
    rc = mf_audit_chain_resume(&pos->chain, k->chain_key, prev, prev_len, tail + ls,
                               end - 1 - (size_t)ls, why, sizeof(why));
    if (rc == MF_ECORRUPT)
        set_err(err, err_len, rc, "audit file %s: cannot continue its chain: %s; move the file "
                "aside (and verify it) to start a new one", path, why);
out:
    free(tail);
    return rc;
}

/* Open `path` into *fd and *pos (file.h "Files"); prev links a new file. */
static int open_pos(const char *path, const struct mf_audit_keys *k,
                    const struct mf_audit_anchor *prev, int *fd_out, bool *is_chr,
                    struct mf_audit_file_pos *pos, uint64_t *size,
                    struct mf_audit_file_info *info, char *err, size_t err_len)
{
    memset(info, 0, sizeof(*info));
    int fd = open_fd(path, &info->created, err, err_len);
    if (fd < 0)
        return fd;
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) != 0) {
        rc = set_err(err, err_len, -errno, "audit file %s: stat: %s", path, strerror(errno));
        goto fail_fd;
    }
    if (!S_ISREG(st.st_mode) && !S_ISCHR(st.st_mode)) {
        rc = set_err(err, err_len, MF_EINVAL, "audit file %s: not a regular file", path);
        goto fail_fd;
    }
    *is_chr = S_ISCHR(st.st_mode);
    *size = *is_chr ? 0 : (uint64_t)st.st_size;
    if (*size == 0) {
        rc = new_pos(k, prev, pos);
    } else {
        rc = resume_tail(fd, path, k, size, pos, &info->torn_bytes, err, err_len);
        info->resumed = rc == 0 && !pos->need_start;
    }
    if (rc != 0)
        goto fail_fd;
    *fd_out = fd;
    return 0;
fail_fd:
    if (rc == MF_ECRYPTO || rc == -ENOMEM)
        set_err(err, err_len, rc, "audit file %s: %s", path, mf_strerror(rc));
    close(fd);
    return rc;
}

int mf_audit_file_open(struct mf_audit_file *f, const char *path,
                       const struct mf_audit_keys *keys, struct mf_audit_file_info *info,
                       char *err, size_t err_len)
{
    MF_ASSERT(f && path && keys);
    struct mf_audit_file_info dummy;
    memset(f, 0, sizeof(*f));
    f->fd = -1;
    f->gen = next_gen();
    f->path = strdup(path);
    f->buf = malloc(BUF_INITIAL_BYTES);
    if (!f->path || !f->buf) {
        mf_audit_file_close(f);
        return set_err(err, err_len, -ENOMEM, "audit file %s: out of memory", path);
    }
    f->buf_cap = BUF_INITIAL_BYTES;
    f->keys = *keys;
    int rc = open_pos(path, keys, NULL, &f->fd, &f->is_chr, &f->durable, &f->size_bytes,
                      info ? info : &dummy, err, err_len);
    if (rc != 0) {
        mf_audit_file_close(f);
        return rc;
    }
    f->staged = f->durable;
    f->written = f->durable;
    return 0;
}

void mf_audit_file_close(struct mf_audit_file *f)
{
    if (!f)
        return;
    if (f->fd >= 0)
        close(f->fd);
    free(f->path);
    free(f->buf);
    OPENSSL_cleanse(&f->keys, sizeof(f->keys));
    memset(f, 0, sizeof(*f));
    f->fd = -1;
}

/* Replace the descriptor with a fresh open of the path; prev links a new file. */
static int reopen_path(struct mf_audit_file *f, struct mf_audit_file_info *info, char *err,
                       size_t err_len)
{
    struct mf_audit_file_pos pos;
    uint64_t size = 0;
    int fd = -1;
    bool is_chr = false;
    const struct mf_audit_anchor *prev = f->durable.chain.at.seq > 0 ? &f->durable.chain.at
                                                                      : NULL;
    if (f->durable.need_start && f->durable.has_prev)
        prev = &f->durable.prev; /* nothing written since the last link: keep it */
    int rc = open_pos(f->path, &f->keys, prev, &fd, &is_chr, &pos, &size, info, err, err_len);
    if (rc != 0)
        return rc;
    close(f->fd);
    f->fd = fd;
    f->is_chr = is_chr;
    f->size_bytes = size;
    f->durable = pos;
    f->staged = pos;
    f->written = pos;
    f->buf_len = 0;
    f->staged_n = 0;
    f->written_len = 0;
    f->written_n = 0;
    f->gen = next_gen();
    f->broken = false;
    return 0;
}

/* --- staging and flushing --- */

static void drop_batch(struct mf_audit_file *f)
{
    f->gen = next_gen();
    f->staged = f->durable;
    f->written = f->durable;
    f->buf_len = 0;
    f->staged_n = 0;
    f->written_len = 0;
    f->written_n = 0;
}

static int ensure_room(struct mf_audit_file *f, size_t want)
{
    if (f->buf_cap - f->buf_len >= want)
        return 0;
    size_t cap = f->buf_cap;
    while (cap - f->buf_len < want)
        cap *= 2;
    if (cap > BUF_MAX_BYTES)
        cap = BUF_MAX_BYTES;
    if (cap - f->buf_len < want)
        return MF_ETOOLARGE;
    char *nb = realloc(f->buf, cap);
    if (!nb)
        return -ENOMEM;
    f->buf = nb;
    f->buf_cap = cap;
    return 0;
}

/* Format one line at the end of the batch (start record if `start`). */
static int stage_line(struct mf_audit_file *f, struct mf_audit_file_pos *pos,
                      const struct mf_audit_record *r, bool start)
{
    int rc = ensure_room(f, MF_AUDIT_LINE_MAX + 1);
    if (rc != 0)
        return rc;
    size_t n = 0, room = f->buf_cap - f->buf_len - 1; /* keep a byte for '\n' */
    if (start)
        rc = mf_audit_chain_format_start(&pos->chain, &f->keys, r->node_id, r->time_ms,
                                         pos->has_prev ? &pos->prev : NULL,
                                         f->buf + f->buf_len, room, &n);
    else
        rc = mf_audit_chain_format(&pos->chain, &f->keys, r, f->buf + f->buf_len, room, &n);
    if (rc != 0)
        return rc;
    f->buf[f->buf_len + n] = '\n';
    f->buf_len += n + 1;
    return 0;
}

int mf_audit_file_stage(struct mf_audit_file *f, const struct mf_audit_record *r)
{
    MF_ASSERT(f && r && f->fd >= 0);
    if (f->broken) {
        MF_ASSERT(f->staged_n == 0);
        struct mf_audit_file_info info;
        int rc = reopen_path(f, &info, NULL, 0);
        if (rc != 0)
            return rc;
    }
    if (f->buf_len >= MF_AUDIT_BATCH_BYTES_MAX)
        return MF_ETOOLARGE;
    /* Work on a copy of the position so a failure leaves the batch as it was. */
    struct mf_audit_file_pos pos = f->staged;
    size_t len0 = f->buf_len;
    int rc = 0;
    if (pos.need_start) {
        rc = stage_line(f, &pos, r, true);
        pos.need_start = false;
    }
    if (rc == 0)
        rc = stage_line(f, &pos, r, false);
    if (rc != 0) {
        f->buf_len = len0;
        return rc;
    }
    f->staged = pos;
    f->staged_n++;
    return 0;
}

size_t mf_audit_file_staged(const struct mf_audit_file *f)
{
    return f->staged_n;
}

/* After a failed write or sync: take the partial batch off the file. If that
 * fails too, or the sync failed (the page cache may hold anything), re-read
 * the tail before the next record. */
static void roll_back(struct mf_audit_file *f, bool sync_failed)
{
    bool truncated = !f->is_chr && ftruncate(f->fd, (off_t)f->size_bytes) == 0;
    if (!truncated || sync_failed)
        f->broken = true;
    drop_batch(f);
}

int mf_audit_file_write(struct mf_audit_file *f, char *err, size_t err_len)
{
    MF_ASSERT(f && f->fd >= 0);
    if (f->buf_len == f->written_len)
        return 0;
    size_t n = f->staged_n - f->written_n, bytes = f->buf_len - f->written_len;
    int rc = mf_write_all(f->fd, f->buf + f->written_len, bytes);
    if (rc == 0) {
        f->written_len = f->buf_len;
        f->written_n = f->staged_n;
        f->written = f->staged;
        return 0;
    }
    /* Cut off what this call may have written; the lines before it stay. */
    if (f->is_chr || ftruncate(f->fd, (off_t)(f->size_bytes + f->written_len)) == 0) {
        f->buf_len = f->written_len;
        f->staged_n = f->written_n;
        f->staged = f->written;
    } else {
        if (f->written_n)
            f->lost = rc;
        roll_back(f, false);
    }
    return set_err(err, err_len, rc, "audit file %s: write of %zu records (%zu bytes): %s; "
                   "none recorded", f->path, n, bytes, strerror(-rc));
}

int mf_audit_file_flush(struct mf_audit_file *f, char *err, size_t err_len)
{
    MF_ASSERT(f && f->fd >= 0);
    if (f->lost) {
        int lost = f->lost;
        f->lost = 0;
        return set_err(err, err_len, lost, "audit file %s: records written earlier were lost "
                       "(%s); none recorded", f->path, strerror(-lost));
    }
    if (f->buf_len == 0)
        return 0;
    size_t n = f->staged_n, bytes = f->buf_len;
    int rc = mf_write_all(f->fd, f->buf + f->written_len, bytes - f->written_len);
    if (rc != 0) {
        roll_back(f, false);
        return set_err(err, err_len, rc, "audit file %s: write of %zu records (%zu bytes): %s; "
                       "none recorded", f->path, n, bytes, strerror(-rc));
    }
    if (!f->is_chr && fdatasync(f->fd) != 0) {
        rc = -errno;
        roll_back(f, true);
        return set_err(err, err_len, rc, "audit file %s: fdatasync of %zu records: %s; none "
                       "recorded", f->path, n, strerror(-rc));
    }
    if (!f->is_chr)
        f->size_bytes += bytes;
    f->durable = f->staged;
    f->written = f->staged;
    f->buf_len = 0;
    f->staged_n = 0;
    f->written_len = 0;
    f->written_n = 0;
    f->gen = next_gen();
    return 0;
}

int mf_audit_file_sync_begin(struct mf_audit_file *f, struct mf_audit_sync *s, char *err,
                             size_t err_len)
{
    MF_ASSERT(f && s && f->fd >= 0);
    *s = (struct mf_audit_sync){.fd = -1, .gen = f->gen};
    if (f->lost) {
        int lost = f->lost;
        f->lost = 0;
        return set_err(err, err_len, lost, "audit file %s: records written earlier were lost "
                       "(%s); none recorded", f->path, strerror(-lost));
    }
    int rc = mf_audit_file_write(f, err, err_len);
    if (rc != 0) {
        roll_back(f, false); /* what was written before goes too: its sync never ran */
        return rc;
    }
    if (f->buf_len == 0)
        return 0;
    if (!f->is_chr && (s->fd = dup(f->fd)) < 0) {
        rc = -errno;
        roll_back(f, false);
        return set_err(err, err_len, rc, "audit file %s: dup: %s; none recorded", f->path,
                       strerror(-rc));
    }
    s->bytes = f->trimmed_bytes + f->buf_len; /* where the covered lines end */
    s->n = f->trimmed_n + f->staged_n;
    s->pos = f->staged;
    return 0;
}

void mf_audit_sync_run(struct mf_audit_sync *s)
{
    if (s->fd < 0)
        return;
    s->rc = fdatasync(s->fd) == 0 ? 0 : -errno;
    close(s->fd);
    s->fd = -1;
}

int mf_audit_file_sync_end(struct mf_audit_file *f, struct mf_audit_sync *s, char *err,
                           size_t err_len)
{
    MF_ASSERT(f && s);
    if (s->rc != 0)
        set_err(err, err_len, s->rc, "audit file %s: fdatasync: %s; the batch is not recorded",
                f->path, strerror(-s->rc));
    if (s->gen != f->gen || s->bytes == 0)
        return s->rc;
    size_t bytes = (size_t)(s->bytes - f->trimmed_bytes), n = (size_t)(s->n - f->trimmed_n);
    if (s->rc != 0) {
        if (f->staged_n > n)
            f->lost = s->rc;
        roll_back(f, true);
        return s->rc;
    }
    if (!f->is_chr)
        f->size_bytes += bytes;
    f->durable = s->pos;
    memmove(f->buf, f->buf + bytes, f->buf_len - bytes);
    f->buf_len -= bytes;
    f->written_len -= bytes;
    f->staged_n -= n;
    f->written_n -= n;
    f->trimmed_bytes += bytes;
    f->trimmed_n += n;
    return 0;
}

int mf_audit_file_append(struct mf_audit_file *f, const struct mf_audit_record *recs, size_t n,
                         char *err, size_t err_len)
{
    MF_ASSERT(f && (recs || n == 0));
    for (size_t i = 0; i < n; i++) {
        int rc = mf_audit_file_stage(f, &recs[i]);
        if (rc != 0) {
            drop_batch(f);
            return set_err(err, err_len, rc, "audit file %s: record %zu of %zu: %s; none "
                           "recorded", f->path, i + 1, n, mf_strerror(rc));
        }
    }
    return mf_audit_file_flush(f, err, err_len);
}

int mf_audit_file_reopen(struct mf_audit_file *f, struct mf_audit_file_info *info, char *err,
                         size_t err_len)
{
    MF_ASSERT(f && f->fd >= 0);
    struct mf_audit_file_info dummy;
    int rc = mf_audit_file_flush(f, err, err_len);
    if (rc != 0)
        return rc;
    return reopen_path(f, info ? info : &dummy, err, err_len);
}

void mf_audit_file_anchor(const struct mf_audit_file *f, struct mf_audit_anchor *out)
{
    MF_ASSERT(f && out);
    *out = f->durable.chain.at;
    if (f->durable.need_start)
        out->seq = 0; /* nothing of this file is on disk yet */
}

/* --- verifying a file --- */

int mf_audit_verify_file(const char *path, const uint8_t chain_key[32],
                         const struct mf_audit_anchor *anchors, size_t n,
                         struct mf_audit_verify_result *out)
{
    MF_ASSERT(path && chain_key && out);
    FILE *fp = fopen(path, "re");
    if (!fp)
        return -errno;
    struct mf_audit_verifier v;
    int rc = mf_audit_verifier_init(&v, chain_key, anchors, n);
    if (rc != 0) {
        fclose(fp);
        return rc;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    errno = 0;
    while ((len = getline(&line, &cap, fp)) > 0) {
        if (line[len - 1] != '\n') {
            mf_audit_verifier_torn(&v);
            break;
        }
        if (!mf_audit_verifier_line(&v, line, (size_t)len - 1))
            break;
    }
    if (ferror(fp))
        rc = errno ? -errno : -EIO;
    free(line);
    fclose(fp);
    mf_audit_verifier_finish(&v, out);
    return rc;
}

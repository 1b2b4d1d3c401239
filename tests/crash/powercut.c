/* powercut: an LD_PRELOAD shim that makes a process's files look as if the
 * machine lost power at a chosen moment.
 *
 * SIGKILL leaves the page cache intact, so it cannot reveal a missing fsync.
 * This shim models the cache: for every tracked file it keeps a "durable
 * image" (what the disk holds) next to the real file (what the page cache
 * holds), in 512-byte sectors:
 *   - write/pwrite/writev/pwritev mark the sectors they touch dirty;
 *   - a write through a descriptor opened with O_DSYNC or O_SYNC makes the
 *     sectors it wrote durable when it returns (only those: that is what
 *     Linux does for O_DSYNC, and how LMDB writes its meta page);
 *   - fsync/fdatasync (and sync/syncfs) make every dirty sector durable;
 *   - before a write overwrites dirty sectors, each may first be written back
 *     at random (MF_PC_FLUSH_PCT), so older intermediate contents can survive
 *     too, as with the kernel's background writeback.
 * At operation number MF_PC_CUT_AT (counting writes and syncs on tracked
 * files), just before or just after that operation (at random), the shim keeps each still-dirty
 * sector with probability MF_PC_KEEP_PCT (a torn, reordered write-back), writes
 * the resulting durable image over each real file, syncs it, and kills the
 * process with SIGKILL. The parent then inspects the files.
 *
 * Tracked files: opened with a path containing MF_PC_MATCH, except LMDB lock
 * files (lock.mdb: shared memory rebuilt at open, not data). Everything else
 * passes straight through. The initial content of a tracked file, when first
 * opened, counts as durable.
 *
 * Not modelled, and why that is fine here: writes through writable shared
 * mappings (the shim aborts if a tracked file is mapped writable: LMDB without
 * MDB_WRITEMAP only maps read-only), directory entries (create, rename,
 * unlink are treated as durable at once, as a journaling file system nearly
 * does once the directory is fsynced), dup'ed descriptors, ftruncate/fallocate
 * on tracked files (treated as durable metadata changes).
 *
 * Environment: MF_PC_MATCH (required to track anything), MF_PC_CUT_AT
 * (operation number, 0 = never), MF_PC_SEED, MF_PC_KEEP_PCT (default 50),
 * MF_PC_FLUSH_PCT (default 25), MF_PC_VERBOSE. Real calls go through
 * syscall(2) so the shim needs no dlsym and works from the first open.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#define SECTOR 512u
#define FILES_MAX 64
#define FDS_MAX 4096

struct pfile {
    dev_t dev;
    ino_t ino;
    int fd;              /* the shim's own O_RDWR descriptor */
    uint8_t *disk;       /* durable image */
    size_t disk_len;
    size_t disk_cap;
    uint8_t *dirty;      /* one byte per sector */
    size_t dirty_cap;
    char path[256];
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct pfile files[FILES_MAX];
static int nfiles;
static int fd_file[FDS_MAX];   /* app fd -> file index + 1, 0 = untracked */
static char fd_dsync[FDS_MAX]; /* app fd was opened O_DSYNC/O_SYNC */
static char match[512];
static uint64_t cut_at, ops, rng;
static unsigned keep_pct = 50, flush_pct = 25;
static int verbose;
static uint64_t n_writes, n_vectored, n_dsync_writes, n_syncs; /* for MF_PC_VERBOSE */

static uint64_t rnd(void)
{
    uint64_t z = (rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static int chance(unsigned pct)
{
    return rnd() % 100 < pct;
}

__attribute__((constructor)) static void pc_init(void)
{
    const char *s;
    if ((s = getenv("MF_PC_MATCH")) != NULL)
        snprintf(match, sizeof(match), "%s", s);
    if ((s = getenv("MF_PC_CUT_AT")) != NULL)
        cut_at = strtoull(s, NULL, 10);
    if ((s = getenv("MF_PC_SEED")) != NULL)
        rng = strtoull(s, NULL, 10);
    if ((s = getenv("MF_PC_KEEP_PCT")) != NULL)
        keep_pct = (unsigned)atoi(s);
    if ((s = getenv("MF_PC_FLUSH_PCT")) != NULL)
        flush_pct = (unsigned)atoi(s);
    verbose = getenv("MF_PC_VERBOSE") != NULL;
}

static void die(const char *msg)
{
    fprintf(stderr, "powercut: %s\n", msg);
    abort();
}

static void grow(uint8_t **buf, size_t *cap, size_t want)
{
    if (want <= *cap)
        return;
    size_t n = *cap ? *cap : 65536;
    while (n < want)
        n *= 2;
    uint8_t *p = realloc(*buf, n);
    if (!p)
        die("out of memory");
    memset(p + *cap, 0, n - *cap);
    *buf = p;
    *cap = n;
}

static off_t cache_len(struct pfile *f)
{
    struct stat st;
    if (fstat(f->fd, &st) != 0)
        die("fstat failed");
    return st.st_size;
}

/* Write back one sector: copy what the cache (the real file) holds now. */
static void flush_sector(struct pfile *f, size_t s, off_t clen)
{
    off_t off = (off_t)s * SECTOR;
    f->dirty[s] = 0;
    if (off >= clen)
        return;
    size_t n = (size_t)(clen - off) < SECTOR ? (size_t)(clen - off) : SECTOR;
    grow(&f->disk, &f->disk_cap, (size_t)off + SECTOR);
    if (syscall(SYS_pread64, f->fd, f->disk + off, n, off) != (long)n)
        die("pread failed");
    if ((size_t)off + n > f->disk_len)
        f->disk_len = (size_t)off + n;
}

static void flush_range(struct pfile *f, off_t off, size_t len, unsigned pct)
{
    if (len == 0)
        return;
    off_t clen = cache_len(f);
    size_t s0 = (size_t)off / SECTOR, s1 = ((size_t)off + len - 1) / SECTOR;
    for (size_t s = s0; s <= s1 && s < f->dirty_cap; s++)
        if (f->dirty[s] && (pct >= 100 || chance(pct)))
            flush_sector(f, s, clen);
}

static void flush_all(struct pfile *f, unsigned pct)
{
    off_t clen = cache_len(f);
    for (size_t s = 0; s < f->dirty_cap; s++)
        if (f->dirty[s] && (pct >= 100 || chance(pct)))
            flush_sector(f, s, clen);
}

static void mark_dirty(struct pfile *f, off_t off, size_t len)
{
    if (len == 0)
        return;
    size_t s0 = (size_t)off / SECTOR, s1 = ((size_t)off + len - 1) / SECTOR;
    grow(&f->dirty, &f->dirty_cap, s1 + 1);
    memset(f->dirty + s0, 1, s1 - s0 + 1);
}

/* The power cut: keep a random subset of the dirty sectors, put the durable
 * image in place of every tracked file, and die. */
__attribute__((noreturn)) static void cut(void)
{
    for (int i = 0; i < nfiles; i++) {
        struct pfile *f = &files[i];
        size_t dirty = 0;
        for (size_t s = 0; s < f->dirty_cap; s++)
            dirty += f->dirty[s];
        flush_all(f, keep_pct);
        if (syscall(SYS_ftruncate, f->fd, (off_t)f->disk_len) != 0 ||
            syscall(SYS_pwrite64, f->fd, f->disk, f->disk_len, (off_t)0) != (long)f->disk_len ||
            syscall(SYS_fsync, f->fd) != 0)
            die("cannot write the durable image");
        if (verbose)
            fprintf(stderr, "powercut: cut at op %llu: %s: %zu dirty sectors, %zu bytes left\n",
                    (unsigned long long)ops, f->path, dirty, f->disk_len);
    }
    if (verbose)
        fprintf(stderr, "powercut: saw %llu writes (%llu vectored, %llu through O_DSYNC), "
                "%llu fsync/fdatasync\n", (unsigned long long)n_writes,
                (unsigned long long)n_vectored, (unsigned long long)n_dsync_writes,
                (unsigned long long)n_syncs);
    syscall(SYS_kill, getpid(), SIGKILL);
    for (;;)
        pause();
}

/* Counts one operation on a tracked file. At cut_at the power goes either
 * before the operation (now) or just after it completes (returns 1: the
 * caller cuts once the operation is done and modelled), so a cut can also
 * fall after the last write of a commit and before the caller learns of it. */
static int tick(void)
{
    if (++ops != cut_at)
        return 0;
    if (chance(50))
        cut();
    return 1;
}

static struct pfile *tracked(int fd)
{
    if (fd < 0 || fd >= FDS_MAX || fd_file[fd] == 0)
        return NULL;
    return &files[fd_file[fd] - 1];
}

static int wants(const char *path)
{
    if (match[0] == '\0' || strstr(path, match) == NULL)
        return 0;
    size_t n = strlen(path);
    return !(n >= 8 && strcmp(path + n - 8, "lock.mdb") == 0);
}

static void track(int fd, const char *path, int flags)
{
    struct stat st;
    if (fd < 0 || fd >= FDS_MAX || !wants(path) || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        return;
    pthread_mutex_lock(&lock);
    int idx = -1;
    for (int i = 0; i < nfiles; i++)
        if (files[i].dev == st.st_dev && files[i].ino == st.st_ino)
            idx = i;
    if (idx < 0) {
        if (nfiles == FILES_MAX)
            die("too many tracked files");
        struct pfile *f = &files[nfiles];
        memset(f, 0, sizeof(*f));
        f->dev = st.st_dev;
        f->ino = st.st_ino;
        snprintf(f->path, sizeof(f->path), "%s", path);
        f->fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_RDWR | O_CLOEXEC, 0);
        if (f->fd < 0)
            die("cannot open a tracked file read-write");
        /* What is there already counts as durable. */
        f->disk_len = (size_t)st.st_size;
        grow(&f->disk, &f->disk_cap, f->disk_len + 1);
        if (f->disk_len &&
            syscall(SYS_pread64, f->fd, f->disk, f->disk_len, (off_t)0) != (long)f->disk_len)
            die("cannot read a tracked file");
        idx = nfiles++;
    }
    fd_file[fd] = idx + 1;
    fd_dsync[fd] = (flags & O_DSYNC) != 0;
    pthread_mutex_unlock(&lock);
}

/* --- opening and closing --- */

static int do_open(int dirfd, const char *path, int flags, mode_t mode)
{
    int fd = (int)syscall(SYS_openat, dirfd, path, flags, mode);
    if (fd >= 0)
        track(fd, path, flags);
    return fd;
}

#define OPEN_MODE(flags, mode)                         \
    do {                                               \
        if ((flags) & (O_CREAT | __O_TMPFILE)) {       \
            va_list ap;                                \
            va_start(ap, flags);                       \
            mode = (mode_t)va_arg(ap, int);            \
            va_end(ap);                                \
        }                                              \
    } while (0)

int open(const char *path, int flags, ...)
{
    mode_t mode = 0;
    OPEN_MODE(flags, mode);
    return do_open(AT_FDCWD, path, flags, mode);
}

int open64(const char *path, int flags, ...)
{
    mode_t mode = 0;
    OPEN_MODE(flags, mode);
    return do_open(AT_FDCWD, path, flags, mode);
}

int openat(int dirfd, const char *path, int flags, ...)
{
    mode_t mode = 0;
    OPEN_MODE(flags, mode);
    return do_open(dirfd, path, flags, mode);
}

int openat64(int dirfd, const char *path, int flags, ...)
{
    mode_t mode = 0;
    OPEN_MODE(flags, mode);
    return do_open(dirfd, path, flags, mode);
}

int close(int fd)
{
    if (fd >= 0 && fd < FDS_MAX && fd_file[fd]) {
        pthread_mutex_lock(&lock);
        fd_file[fd] = 0;
        fd_dsync[fd] = 0;
        pthread_mutex_unlock(&lock);
    }
    return (int)syscall(SYS_close, fd);
}

/* --- writes --- */

/* One write of len bytes at off (-1: the descriptor's position). */
static ssize_t do_write(int fd, off_t off, const struct iovec *iov, int iovcnt, int positional)
{
    struct pfile *f = tracked(fd);
    ssize_t rc;
    if (!f) {
        if (positional)
            return syscall(SYS_pwritev, fd, iov, iovcnt, (long)off, (long)0);
        return syscall(SYS_writev, fd, iov, iovcnt);
    }
    pthread_mutex_lock(&lock);
    int cut_after = tick();
    n_writes++;
    n_vectored += iovcnt > 1;
    n_dsync_writes += fd_dsync[fd] != 0;
    if (!positional)
        off = (off_t)syscall(SYS_lseek, fd, (off_t)0, SEEK_CUR);
    size_t len = 0;
    for (int i = 0; i < iovcnt; i++)
        len += iov[i].iov_len;
    /* Background write-back may have written older contents first. */
    flush_range(f, off, len, flush_pct);
    if (positional)
        rc = syscall(SYS_pwritev, fd, iov, iovcnt, (long)off, (long)0);
    else
        rc = syscall(SYS_writev, fd, iov, iovcnt);
    if (rc > 0) {
        mark_dirty(f, off, (size_t)rc);
        if (fd_dsync[fd])
            flush_range(f, off, (size_t)rc, 100);
    }
    if (cut_after)
        cut();
    pthread_mutex_unlock(&lock);
    return rc;
}

ssize_t write(int fd, const void *buf, size_t n)
{
    struct iovec iov = {(void *)buf, n};
    return do_write(fd, -1, &iov, 1, 0);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
    struct iovec iov = {(void *)buf, n};
    return do_write(fd, off, &iov, 1, 1);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off)
{
    struct iovec iov = {(void *)buf, n};
    return do_write(fd, off, &iov, 1, 1);
}

ssize_t writev(int fd, const struct iovec *iov, int iovcnt)
{
    return do_write(fd, -1, iov, iovcnt, 0);
}

ssize_t pwritev(int fd, const struct iovec *iov, int iovcnt, off_t off)
{
    return do_write(fd, off, iov, iovcnt, 1);
}

ssize_t pwritev64(int fd, const struct iovec *iov, int iovcnt, off_t off)
{
    return do_write(fd, off, iov, iovcnt, 1);
}

/* --- syncs --- */

static int do_sync(int fd, long nr)
{
    struct pfile *f = tracked(fd);
    if (!f)
        return (int)syscall(nr, fd);
    pthread_mutex_lock(&lock);
    int cut_after = tick();
    n_syncs++;
    int rc = (int)syscall(nr, fd);
    if (rc == 0)
        flush_all(f, 100);
    if (cut_after)
        cut();
    pthread_mutex_unlock(&lock);
    return rc;
}

int fsync(int fd)
{
    return do_sync(fd, SYS_fsync);
}

int fdatasync(int fd)
{
    return do_sync(fd, SYS_fdatasync);
}

void sync(void)
{
    pthread_mutex_lock(&lock);
    syscall(SYS_sync);
    for (int i = 0; i < nfiles; i++)
        flush_all(&files[i], 100);
    pthread_mutex_unlock(&lock);
}

int syncfs(int fd)
{
    pthread_mutex_lock(&lock);
    int rc = (int)syscall(SYS_syncfs, fd);
    if (rc == 0)
        for (int i = 0; i < nfiles; i++)
            flush_all(&files[i], 100);
    pthread_mutex_unlock(&lock);
    return rc;
}

int ftruncate(int fd, off_t len)
{
    struct pfile *f = tracked(fd);
    int rc = (int)syscall(SYS_ftruncate, fd, len);
    if (f && rc == 0) {
        pthread_mutex_lock(&lock);
        if ((size_t)len < f->disk_len)
            f->disk_len = (size_t)len;
        pthread_mutex_unlock(&lock);
    }
    return rc;
}

/* A writable shared map would write behind the shim's back: refuse to model
 * it rather than give a false pass. */
void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    if (tracked(fd) && (prot & PROT_WRITE) && (flags & MAP_SHARED))
        die("a tracked file is mapped writable and shared: not modelled");
    return (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
}

void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    return mmap(addr, len, prot, flags, fd, off);
}

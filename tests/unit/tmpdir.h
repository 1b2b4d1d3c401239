/* Temporary directories for test programs: made with mkdtemp(3) under
 * $TMPDIR (else /tmp), removed recursively with nftw(3), no shell involved.
 *
 * Header-only, so every test binary stays one file; included by the unit
 * tests, the store and crash programs and the benchmarks (their CMake adds
 * tests/unit to the include path).
 *
 * Ownership: the caller owns the path buffer. Errors: -1 with errno set. */
#ifndef MF_TESTS_TMPDIR_H
#define MF_TESTS_TMPDIR_H

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#define MF_TMPDIR_FDS_MAX 32 /* nftw's open directories at once */

/* Makes <base>/mf-<name>-XXXXXX into buf (len bytes). base NULL means
 * $TMPDIR, else /tmp. @return 0; -1 (errno: ENAMETOOLONG, or mkdtemp's). */
static inline int mf_tmpdir_make_in(const char *base, const char *name, char *buf, size_t len)
{
    if (!base || !*base)
        base = getenv("TMPDIR");
    if (!base || !*base)
        base = "/tmp";
    int n = snprintf(buf, len, "%s/mf-%s-XXXXXX", base, name);
    if (n < 0 || (size_t)n >= len) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return mkdtemp(buf) ? 0 : -1;
}

/* mf_tmpdir_make_in under $TMPDIR (else /tmp). */
static inline int mf_tmpdir_make(const char *name, char *buf, size_t len)
{
    return mf_tmpdir_make_in(NULL, name, buf, len);
}

static inline int mf_tmpdir__remove_one(const char *path, const struct stat *st, int type,
                                        struct FTW *ftw)
{
    (void)st, (void)type, (void)ftw;
    return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

/* Removes path and everything below it, children first, never following
 * symbolic links (FTW_PHYS). A path that does not exist is not an error
 * (like rm -rf). @return 0; -1 (errno of the first file that would not go). */
static inline int mf_tmpdir_remove(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : -1;
    return nftw(path, mf_tmpdir__remove_one, MF_TMPDIR_FDS_MAX, FTW_DEPTH | FTW_PHYS);
}

#endif

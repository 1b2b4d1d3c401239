/* Free space and the true cause of a failed storage write (fsstat.h). */
#include "common/fsstat.h"

#include <errno.h>
#include <stdio.h>
#include <sys/statvfs.h>

#include "common/err.h"

int mf_fsstat_get(const char *path, struct mf_fsstat *out)
{
    struct statvfs sv;
    if (statvfs(path, &sv) != 0)
        return -errno;
    uint64_t frag = sv.f_frsize ? sv.f_frsize : sv.f_bsize;
    out->avail_bytes = (uint64_t)sv.f_bavail * frag;
    out->total_bytes = (uint64_t)sv.f_blocks * frag;
    return 0;
}

bool mf_fsstat_is_space(int code)
{
    return code == MF_EMAPFULL || code == MF_ENOSPACE;
}

int mf_fsstat_classify(int rc, const struct mf_fsstat *fs, const char *dir,
                       uint64_t map_size_bytes, char *cause, size_t cause_len)
{
    if (cause_len)
        cause[0] = '\0';
    if (rc == 0)
        return 0;
    if (rc == MF_EMAPFULL) {
        snprintf(cause, cause_len, "LMDB map full: map_size %llu MiB (%s)",
                 (unsigned long long)(map_size_bytes >> 20), dir);
        return MF_EMAPFULL;
    }
    /* A short write on a full filesystem comes back as EIO (LMDB's
     * mdb_page_flush): only free space tells it from a failing disk. */
    bool nearly_full = fs && fs->avail_bytes < MF_FSSTAT_NEARLY_FULL_BYTES;
    if (rc == MF_ENOSPACE || rc == -ENOSPC || rc == -EDQUOT ||
        ((rc == -EIO || rc == MF_ESTORAGE) && nearly_full)) {
        if (fs)
            snprintf(cause, cause_len, "no space left on device: %s (%llu KiB free)", dir,
                     (unsigned long long)(fs->avail_bytes >> 10));
        else
            snprintf(cause, cause_len, "no space left on device: %s", dir);
        return MF_ENOSPACE;
    }
    snprintf(cause, cause_len, "storage error: %s: %s", dir, mf_strerror(rc));
    return MF_ESTORAGE;
}

uint64_t mf_fsstat_floor_bytes(uint64_t floor_mb, uint64_t total_bytes)
{
    if (floor_mb)
        return floor_mb << 20;
    uint64_t f = total_bytes / 20;
    if (f < (4ULL << 20))
        f = 4ULL << 20;
    if (f > (2ULL << 30))
        f = 2ULL << 30;
    return f;
}

uint64_t mf_fsstat_reserve_bytes(uint64_t reserve_mb, uint64_t live_leases, uint64_t min_bytes,
                                 uint64_t per_lease_bytes, uint64_t total_bytes)
{
    uint64_t r;
    if (reserve_mb) {
        r = reserve_mb << 20;
    } else {
        r = live_leases > UINT64_MAX / (per_lease_bytes ? per_lease_bytes : 1)
                ? UINT64_MAX
                : live_leases * per_lease_bytes;
        if (r < min_bytes)
            r = min_bytes;
    }
    /* The reserve must never be what fills a small volume. */
    if (total_bytes && r > total_bytes / 10)
        r = total_bytes / 10;
    return r;
}

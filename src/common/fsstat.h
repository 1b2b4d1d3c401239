/* Free space on a filesystem, and what a failed storage write really means.
 *
 * LMDB reports a full map as MDB_MAP_FULL, a full filesystem as ENOSPC when
 * a file must grow, but a short write(2) on a full filesystem as EIO: the
 * same code a failing disk gives. Telling them apart decides between two
 * very different answers: space problems block the node until room comes
 * back (it resumes by itself, node.h "Storage pressure"), a failing disk
 * stops it for good (fail-stop: after a failed fsync the file is unknown).
 * So an EIO (or an untranslated storage error) on a filesystem with less
 * than MF_FSSTAT_NEARLY_FULL_BYTES free is taken as "full", anything else
 * as a disk error.
 *
 * mf_fsstat_get is the I/O part (statvfs); mf_fsstat_classify is pure (the
 * statvfs answer is an argument), so its rules are unit-tested.
 */
#ifndef MF_COMMON_FSSTAT_H
#define MF_COMMON_FSSTAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Below this much free space an EIO is a full filesystem, not a bad disk:
 * LMDB writes a commit's pages in runs of up to a few hundred KiB, so a
 * short write leaves at most about that much behind. */
#define MF_FSSTAT_NEARLY_FULL_BYTES (1024ULL * 1024)

struct mf_fsstat {
    uint64_t avail_bytes; /* free for unprivileged users (f_bavail) */
    uint64_t total_bytes; /* size of the filesystem */
};

/* statvfs(path). @return 0; -errno. */
int mf_fsstat_get(const char *path, struct mf_fsstat *out);

/* Classify a failed storage write on the environment in `dir` (LMDB map of
 * map_size_bytes), given the filesystem's state right after it (`fs`, NULL
 * when statvfs failed). rc is what the store returned (MF_EMAPFULL,
 * MF_ENOSPACE, MF_ESTORAGE, -errno, ...). Pure. Writes the cause a user
 * reads into cause (always NUL-terminated):
 *   MF_EMAPFULL   "LMDB map full: map_size N MiB (DIR)"
 *   MF_ENOSPACE   "no space left on device: DIR (N KiB free)": rc was
 *                 MF_ENOSPACE or -ENOSPC, or -EIO / MF_ESTORAGE while fs
 *                 shows less than MF_FSSTAT_NEARLY_FULL_BYTES free
 *   MF_ESTORAGE   "storage error: DIR: <text>": a failing disk, or any
 *                 other failure (the node stops)
 * 0 stays 0 (cause ""). */
int mf_fsstat_classify(int rc, const struct mf_fsstat *fs, const char *dir,
                       uint64_t map_size_bytes, char *cause, size_t cause_len);

/* The free-space floor in bytes: floor_mb MiB, or when 0 1/20 of the
 * filesystem, clamped to 4 MiB..2 GiB (config.h storage_free_floor_mb). Pure. */
uint64_t mf_fsstat_floor_bytes(uint64_t floor_mb, uint64_t total_bytes);

/* The reserve's size in bytes: reserve_mb MiB, or when 0 max(min_bytes,
 * per_lease_bytes x live_leases); either capped at 1/10 of the filesystem.
 * Pure. */
uint64_t mf_fsstat_reserve_bytes(uint64_t reserve_mb, uint64_t live_leases, uint64_t min_bytes,
                                 uint64_t per_lease_bytes, uint64_t total_bytes);

/* Whether a code is one of the two space codes (the node blocks, not stops). */
bool mf_fsstat_is_space(int code);

#endif

/* bench_log: Raft log append throughput with fsync (src/store/log.c).
 *
 * For batch sizes 1, 16 and 256, appends batches of entries (each save() is
 * one synced LMDB commit: the data pages, one fdatasync, then the meta page
 * through an O_DSYNC descriptor) for a fixed time and prints entries/s and
 * commits/s (one commit = one fdatasync + one O_DSYNC meta write), next to
 * the disk's floor for that I/O pattern measured with plain system calls;
 * then reads the log back with zero-copy entries() calls.
 *
 *   bench_log [--dir DIR] [--seconds S] [--bytes N]
 *
 * DIR defaults to a new directory under $TMPDIR or /tmp (removed afterwards), S to 2 per
 * batch size, N (payload bytes per entry) to 128. Figures only, no assertions.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "store/log.h"
#include "tmpdir.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The disk's own floor for one LMDB commit: write a page, fdatasync, then a
 * small write through an O_DSYNC descriptor (LMDB's meta page). Returns
 * commits/s, or a negative value on error. */
static double raw_commit_rate(const char *dir, double seconds)
{
    char path[300];
    static char page[4096];
    snprintf(path, sizeof(path), "%s/raw-sync-probe", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    int mfd = open(path, O_WRONLY | O_DSYNC);
    if (fd < 0 || mfd < 0)
        return -1;
    uint64_t n = 0;
    double t0 = now_s(), t;
    do {
        page[0] = (char)n;
        if (pwrite(fd, page, sizeof(page), (off_t)(8192 + (n % 64) * 4096)) < 0 ||
            fdatasync(fd) != 0 || pwrite(mfd, page, 128, 0) < 0)
            return -1;
        n++;
        t = now_s() - t0;
    } while (t < seconds);
    close(fd);
    close(mfd);
    unlink(path);
    return (double)n / t;
}

int main(int argc, char **argv)
{
    char dir[256] = "";
    double seconds = 2.0;
    uint32_t bytes = 128;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
            snprintf(dir, sizeof(dir), "%s", argv[++i]);
        else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            seconds = atof(argv[++i]);
        else if (strcmp(argv[i], "--bytes") == 0 && i + 1 < argc)
            bytes = (uint32_t)atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_log [--dir DIR] [--seconds S] [--bytes N]\n");
            return 2;
        }
    }
    int own_dir = dir[0] == '\0';
    if (own_dir) {
        if (mf_tmpdir_make("bench-log", dir, sizeof(dir)) != 0) {
            perror("mkdtemp");
            return 1;
        }
    }
    struct mf_raftlog *log;
    int rc = mf_raftlog_open(dir, NULL, &log);
    if (rc != 0) {
        fprintf(stderr, "open %s: %s\n", dir, mf_strerror(rc));
        return 1;
    }
    static struct mf_raft_entry ents[256];
    uint8_t *payload = calloc(1, bytes ? bytes : 1);
    memset(payload, 0xab, bytes);
    uint64_t next = 1;
    printf("bench_log: %u-byte entries, %.1f s per batch size, dir %s\n", bytes, seconds, dir);
    double raw = raw_commit_rate(dir, seconds / 2);
    printf("disk floor (pwrite 4 KiB + fdatasync + O_DSYNC pwrite): %.0f commits/s, "
           "%.0f us each\n", raw, raw > 0 ? 1e6 / raw : 0.0);
    printf("%8s %14s %14s %12s\n", "batch", "entries/s", "commits/s", "us/commit");
    const size_t sizes[] = {1, 16, 256};
    for (size_t s = 0; s < 3; s++) {
        size_t batch = sizes[s];
        uint64_t commits = 0, entries = 0;
        double t0 = now_s(), t;
        do {
            struct mf_raft_hard_state hs = {.term = 1, .vote = 1, .commit = next - 1};
            for (size_t i = 0; i < batch; i++)
                ents[i] = (struct mf_raft_entry){
                    .index = next + i, .term = 1, .len = bytes, .data = payload};
            if ((rc = mf_raftlog_save(log, &hs, ents, batch)) != 0) {
                fprintf(stderr, "save: %s\n", mf_strerror(rc));
                return 1;
            }
            next += batch;
            entries += batch;
            commits++;
            t = now_s() - t0;
        } while (t < seconds);
        printf("%8zu %14.0f %14.0f %12.1f\n", batch, (double)entries / t, (double)commits / t,
               t * 1e6 / (double)commits);
        fflush(stdout);
    }
    /* Zero-copy reads of everything written. */
    struct mf_raft_entry out[256];
    uint64_t first, last, read = 0, sum = 0;
    mf_raftlog_first_index(log, &first);
    mf_raftlog_last_index(log, &last);
    double t0 = now_s();
    for (uint64_t lo = first; lo <= last;) {
        size_t n;
        if ((rc = mf_raftlog_entries(log, lo, last + 1, UINT64_MAX, out, 256, &n)) != 0) {
            fprintf(stderr, "entries: %s\n", mf_strerror(rc));
            return 1;
        }
        for (size_t i = 0; i < n; i++)
            sum += out[i].data[0];
        lo += n;
        read += n;
    }
    double t = now_s() - t0;
    printf("read back %llu entries with entries(): %.0f entries/s (checksum %llu)\n",
           (unsigned long long)read, (double)read / t, (unsigned long long)sum);
    mf_raftlog_close(log);
    free(payload);
    if (own_dir) {
        if (mf_tmpdir_remove(dir) != 0)
            return 1;
    }
    return 0;
}

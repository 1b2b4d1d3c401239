/* The file audit device: chained JSON lines appended to a local file, made
 * durable in groups (the I/O shell around record.h and chain.h).
 *
 * Driver loop (the server's): for each request, mf_audit_file_stage() its
 * record; before any response of the batch leaves, mf_audit_file_flush()
 * writes every staged line with one write() and one fdatasync(). When flush
 * fails, nothing of the batch is on disk (the file is truncated back to the
 * last durable line) and the staged records are dropped: the server refuses
 * those requests (fail closed) and stages fresh records for later ones.
 * Periodically the leader reads mf_audit_file_anchor() and commits it.
 *
 * Files. A file is opened O_RDWR | O_APPEND | O_CLOEXEC, created 0600 (and its
 * directory fsynced) when missing. An empty (or newly created) file gets a new
 * random file id and starts with a start record (chain.h), written with the
 * first batch. A file that already holds lines is resumed: its last two lines
 * are read, the last one must verify against the one before it (or against the
 * seed), and seq and chain continue from it. An incomplete last line (no
 * newline: a crash during a write that was never acknowledged) is cut off
 * first and reported in info->torn_bytes. A last line that does not verify is
 * MF_ECORRUPT: the device refuses to append to a file it cannot extend
 * truthfully; the operator moves the file aside (and `mayfly audit verify`s
 * it) and the next open starts a new file.
 *
 * Rotation (SIGHUP, logrotate's `create` mode): mf_audit_file_reopen() flushes
 * what is staged, then opens the path again. If logrotate moved the file away,
 * the path is new or empty: a NEW file id and seed start there, seq restarts
 * at 1, and the start record links to where the previous file ended
 * ("start": {"prev_file", "prev_seq", "prev_chain"}), so each file verifies on
 * its own and a predecessor cut short after rotation is caught by verifying it
 * with that link as an anchor (mf_audit_verify_result.prev). If the path still
 * holds the same file, its chain simply continues. logrotate's `copytruncate`
 * is not supported (the chain would continue in a file whose first line is
 * gone, and verification would fail at line 1).
 *
 * A character device (/dev/null, /dev/full) is accepted as a file that is
 * always empty and never synced, which is what the ENOSPC tests use.
 *
 * Errors: operating-system failures are returned as the negated errno (err.h),
 * e.g. -ENOSPC or -EDQUOT for a full disk, -EIO, -EACCES; MF_ECORRUPT for a
 * file that cannot be resumed; the message in err names the path and what was
 * lost. After a failed fdatasync (or a failed truncation back) the page cache
 * cannot be trusted: the device re-reads and re-verifies the file's tail
 * before it stages the next record.
 *
 * Threads: a device is used by one thread at a time (flush blocks on the disk:
 * call it off the event loop). Memory: the caller owns struct mf_audit_file;
 * open allocates its buffer, close frees it and wipes the keys copy.
 */
#ifndef MF_AUDIT_FILE_H
#define MF_AUDIT_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "audit/chain.h"
#include "audit/record.h"

/* Staged bytes after which stage refuses (MF_ETOOLARGE) until a flush. */
#define MF_AUDIT_BATCH_BYTES_MAX (1u << 20) /* 1 MiB */

struct mf_audit_file_info {
    bool created;         /* the path did not exist */
    bool resumed;         /* an existing file's chain continues (else a new file) */
    uint64_t torn_bytes;  /* bytes of an incomplete last line cut off */
};

/* Where lines go next: the chain and whether the start record is still due. */
struct mf_audit_file_pos {
    struct mf_audit_chain chain;
    bool need_start;
    bool has_prev;                  /* the start record links to ... */
    struct mf_audit_anchor prev;    /* ... where the previous file ended */
};

struct mf_audit_file {
    int fd;
    bool is_chr;                    /* a character device: no sync, no truncate */
    char *path;
    struct mf_audit_keys keys;      /* a copy; wiped at close */
    struct mf_audit_file_pos durable; /* after the last synced line */
    struct mf_audit_file_pos staged;  /* after the last staged line */
    uint64_t size_bytes;            /* file size after the last synced line */
    char *buf;                      /* staged lines, newline-terminated */
    size_t buf_len, buf_cap;
    size_t staged_n;                /* staged records (the start record not counted) */
    size_t written_len;             /* bytes of buf written (write(2)) and not yet synced */
    size_t written_n;               /* ... records among them */
    struct mf_audit_file_pos written; /* after the last written line */
    int lost;                       /* lines written earlier were lost: the next flush fails */
    uint64_t gen;                   /* changes whenever buf's lines are dropped or flushed */
    uint64_t trimmed_bytes, trimmed_n; /* synced off buf's front by _sync_end */
    bool broken;                    /* re-read the tail before the next stage */
};

/* Open (create) `path` and resume or start its chain (see above). `keys` is
 * copied. Errors: -errno of open/fstat/pread/ftruncate/fsync, MF_ECORRUPT
 * (tail does not verify: message in err), MF_EINVAL (not a regular file or
 * character device), MF_ECRYPTO (CSPRNG), -ENOMEM. On error nothing needs
 * closing. info may be NULL. */
int mf_audit_file_open(struct mf_audit_file *f, const char *path,
                       const struct mf_audit_keys *keys, struct mf_audit_file_info *info,
                       char *err, size_t err_len);

/* Format and chain `r` into the batch (and the start record first when due,
 * with r's node and time). Errors: MF_ETOOLARGE (batch full: flush first, or
 * the record exceeds MF_AUDIT_LINE_MAX), MF_EINVAL (record.h), MF_ECRYPTO,
 * -ENOMEM, or an error of reading the tail back after a failure (as open).
 * On error nothing was staged by this call. */
int mf_audit_file_stage(struct mf_audit_file *f, const struct mf_audit_record *r);

/* Records staged (written or not) and not yet flushed. */
size_t mf_audit_file_staged(const struct mf_audit_file *f);
/* Write the staged lines not yet written with one write() (repeated on a
 * short write), without syncing: they are in the file (a full disk has
 * refused them or not), durable only after the next mf_audit_file_flush.
 * What the server does for a write's request record before the write runs.
 * 0 with nothing to write. On error (-ENOSPC, ...) only the lines of this
 * call are dropped and cut off the file; lines written before stay for the
 * flush. (If cutting them off fails, the whole batch is dropped and the next
 * flush fails too, so nobody is told a lost line is durable.) */
int mf_audit_file_write(struct mf_audit_file *f, char *err, size_t err_len);

/* Write every staged line not yet written with one write() (repeated on a
 * short write) and make the batch durable with one fdatasync(). 0 with
 * nothing staged. On error
 * (-ENOSPC, -EDQUOT, -EIO, ...) the batch is dropped, the file is truncated
 * back to its last durable line, and err says so. */
int mf_audit_file_flush(struct mf_audit_file *f, char *err, size_t err_len);

/* A group sync off the caller's thread, in three steps. _sync_begin (the
 * file's thread) writes what is staged and notes the lines the sync covers;
 * mf_audit_sync_run (any thread) runs fdatasync on a duplicate descriptor;
 * _sync_end (the file's thread) makes those lines durable, or on failure
 * drops every line not durable yet and cuts them off the file (lines staged
 * after begin too: the next flush or sync then fails, so nobody is told a
 * lost line is durable), then re-reads the tail before the next stage.
 * Between begin and end the file may stage and write (later lines are not
 * covered); a flush, reopen or close meanwhile makes end report only the
 * sync's result. Several syncs may be in flight; they end in the order they
 * began. */
struct mf_audit_sync {
    int fd;                         /* -1: nothing to sync */
    uint64_t gen;
    uint64_t bytes, n;              /* where the covered lines end (0: none) */
    struct mf_audit_file_pos pos;
    int rc;
};
/* Errors as mf_audit_file_write (the batch is then dropped), -errno of dup. */
int mf_audit_file_sync_begin(struct mf_audit_file *f, struct mf_audit_sync *s, char *err,
                             size_t err_len);
void mf_audit_sync_run(struct mf_audit_sync *s);
/* 0: the covered lines are durable; else the sync's -errno (err says so). */
int mf_audit_file_sync_end(struct mf_audit_file *f, struct mf_audit_sync *s, char *err,
                           size_t err_len);

/* mf_audit_file_stage for each of n records, then mf_audit_file_flush. On a
 * stage error nothing is written and the whole batch is dropped (records
 * staged before this call too), as on a flush error. */
int mf_audit_file_append(struct mf_audit_file *f, const struct mf_audit_record *recs, size_t n,
                         char *err, size_t err_len);

/* SIGHUP: flush, then reopen the path (see "Rotation"). On error the device
 * keeps writing to the file it had. info may be NULL. */
int mf_audit_file_reopen(struct mf_audit_file *f, struct mf_audit_file_info *info, char *err,
                         size_t err_len);

/* The anchor of the last durable line (seq 0 before the first flush). */
void mf_audit_file_anchor(const struct mf_audit_file *f, struct mf_audit_anchor *out);

/* Close the file without flushing (staged records are dropped), free the
 * buffer, wipe the keys. Never fails; a closed handle may be opened again. */
void mf_audit_file_close(struct mf_audit_file *f);

/* `mayfly audit verify FILE`: read the file line by line (any size) and
 * verify it (chain.h mf_audit_verify); an incomplete last line is reported as
 * bad. Returns 0 with *out filled (out->ok), or -errno if the file cannot be
 * read, or -ENOMEM. */
int mf_audit_verify_file(const char *path, const uint8_t chain_key[32],
                         const struct mf_audit_anchor *anchors, size_t n,
                         struct mf_audit_verify_result *out);

#endif

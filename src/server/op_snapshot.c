/* Backup and restore (op_snapshot.h): streaming a backup out of the leader,
 * taking one into an uninitialised cluster, and replicating it through Raft
 * once its MAC verified at unseal. */
#include "server/op_snapshot.h"

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "common/env.h"
#include "common/err.h"
#include "common/fdio.h"
#include "common/log.h"
#include "server/metrics.h"
#include "server/mounts.h"
#include "server/proposer.h"
#include "server/scheduler.h"
#include "server/srv.h"
#include "store/backup.h"
#include "store/restore.h"
#include "store/snapshot.h"

#define LOG_MOD "snapshot"
#define PATH_LEN 4096

/* ---- save ---- */

struct save {
    bool used, ready;
    char handle[33];
    char path[PATH_LEN];
    int fd;
    uint64_t total, index, term, idle_at_ms;
    uint8_t sha[32];
};

static struct save saves[MF_OP_SNAPSHOT_SAVES_MAX];

struct save_job {
    uv_work_t work;
    struct mf_server *s;
    struct req *r;
    struct save *sv;
    uint8_t *blob;
    size_t blob_len;
    char snap[PATH_LEN];
    int rc;
    char err[256];
    struct mf_backup_info info;
};

static int dir_path(struct mf_server *s, const char *sub, const char *name, char *out)
{
    int n = snprintf(out, PATH_LEN, "%s/%s%s%s", s->cfg->data_dir, sub, name ? "/" : "",
                     name ? name : "");
    return n > 0 && n < PATH_LEN ? 0 : MF_EINVAL;
}

static int make_dir(struct mf_server *s, const char *sub)
{
    char d[PATH_LEN];
    int rc = dir_path(s, sub, NULL, d);
    if (!rc && mkdir(d, 0700) != 0 && errno != EEXIST)
        rc = -errno;
    return rc;
}

static void save_drop(struct save *sv)
{
    if (sv->ready && sv->fd >= 0)
        close(sv->fd);
    if (sv->path[0])
        unlink(sv->path);
    *sv = (struct save){.fd = -1};
}

/* Handles idle past MF_OP_SNAPSHOT_IDLE_MS go with their files. */
static void expire_idle(void)
{
    uint64_t now = mf_now_mono_ms();
    for (size_t i = 0; i < MF_OP_SNAPSHOT_SAVES_MAX; i++)
        if (saves[i].used && saves[i].ready && now >= saves[i].idle_at_ms) {
            MF_INFO(LOG_MOD, "backup %s idle for %d ms: dropped", saves[i].handle,
                    MF_OP_SNAPSHOT_IDLE_MS);
            save_drop(&saves[i]);
        }
}

static void reply_chunk(struct req *r, struct save *sv, uint64_t offset)
{
    if (offset > sv->total)
        return mf_api_reply_error(r, MF_EINVAL, "offset %" PRIu64 " is beyond the backup's %" PRIu64
                                                " bytes", offset, sv->total);
    uint64_t left = sv->total - offset;
    size_t n = left < MF_OP_SNAPSHOT_CHUNK_MAX ? (size_t)left : MF_OP_SNAPSHOT_CHUNK_MAX;
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf)
        return mf_api_reply_error(r, -ENOMEM, "out of memory");
    size_t got = 0;
    while (got < n) {
        ssize_t k = pread(sv->fd, buf + got, n - got, (off_t)(offset + got));
        if (k <= 0 && !(k < 0 && errno == EINTR)) {
            free(buf);
            return mf_api_reply_error(r, MF_EINTERNAL, "cannot read the backup file");
        }
        got += k > 0 ? (size_t)k : 0;
    }
    Mayfly__Api__SnapshotSaveResponse out = MAYFLY__API__SNAPSHOT_SAVE_RESPONSE__INIT;
    out.handle = sv->handle;
    out.offset = offset;
    out.data.data = buf;
    out.data.len = n;
    out.total_bytes = sv->total;
    out.index = sv->index;
    out.term = sv->term;
    uint8_t sha[32];
    bool done = offset + n == sv->total;
    if (done) {
        memcpy(sha, sv->sha, 32);
        out.sha256.data = sha;
        out.sha256.len = 32;
    }
    Resp resp = MAYFLY__API__RESPONSE__INIT;
    resp.result_case = MAYFLY__API__RESPONSE__RESULT_SNAPSHOT_SAVE;
    resp.snapshot_save = &out;
    if (done) {
        MF_INFO(LOG_MOD, "backup %s sent: %" PRIu64 " bytes at index %" PRIu64, sv->handle,
                sv->total, sv->index);
        save_drop(sv);
    } else {
        sv->idle_at_ms = mf_now_mono_ms() + MF_OP_SNAPSHOT_IDLE_MS;
    }
    mf_api_reply(r, &resp);
    free(buf);
}

/* Thread pool: a snapshot under the state lock (as sm_snapshot_create), then
 * the backup around it. */
static void save_work(uv_work_t *w)
{
    struct save_job *j = w->data;
    struct mf_server *s = j->s;
    uint64_t index = 0;
    pthread_rwlock_rdlock(&s->state_lock);
    j->rc = mf_snapshot_create(mf_fsm_state(s->fsm), j->snap, &index, j->err, sizeof(j->err));
    pthread_rwlock_unlock(&s->state_lock);
    if (!j->rc)
        j->rc = mf_backup_write(s->barrier, j->snap, j->blob, j->blob_len, index, j->sv->term,
                                mf_now_wall_ms(), j->sv->path, &j->info, j->err, sizeof(j->err));
    unlink(j->snap);
}

static void save_done(uv_work_t *w, int status)
{
    struct save_job *j = w->data;
    struct mf_server *s = j->s;
    struct save *sv = j->sv;
    if (!j->rc && status)
        j->rc = MF_EINTERNAL;
    if (!j->rc && !s->node)
        j->rc = MF_EUNAVAIL;
    if (!j->rc) {
        sv->fd = open(sv->path, O_RDONLY | O_CLOEXEC);
        j->rc = sv->fd < 0 ? -errno : 0;
    }
    if (j->rc) {
        MF_ERROR(LOG_MOD, "backup failed: %s", j->err[0] ? j->err : mf_strerror(j->rc));
        sv->fd = -1;
        save_drop(sv);
        mf_api_reply_error(j->r, j->rc == MF_ESEALED ? MF_ESEALED : MF_EINTERNAL,
                           "cannot write the backup: %s", j->err[0] ? j->err : mf_strerror(j->rc));
    } else {
        sv->ready = true;
        sv->total = j->info.total_len;
        sv->index = j->info.index;
        memcpy(sv->sha, j->info.sha256, 32);
        MF_INFO(LOG_MOD, "backup %s written: %" PRIu64 " bytes at index %" PRIu64, sv->handle,
                sv->total, sv->index);
        reply_chunk(j->r, sv, 0);
    }
    free(j->blob);
    free(j);
    if (s->node)
        s->handles_open--;
    else
        mf_srv_handle_released(s);
}

static void save_after_barrier(void *arg, int rc)
{
    struct save_job *j = arg;
    struct mf_server *s = j->s;
    if (rc || !s->node || !mf_node_is_leader(s->node)) {
        save_drop(j->sv);
        mf_api_reply_error(j->r, MF_EUNAVAIL, "no linearizable read barrier: %s; retry",
                           rc ? mf_strerror(rc) : "this node no longer leads");
        free(j->blob);
        free(j);
        return;
    }
    struct mf_raft_status st;
    mf_node_status(s->node, &st);
    j->sv->term = st.term;
    j->work.data = j;
    s->handles_open++; /* until save_done */
    rc = uv_queue_work(s->loop, &j->work, save_work, save_done);
    if (rc) {
        s->handles_open--;
        save_drop(j->sv);
        mf_api_reply_error(j->r, MF_EINTERNAL, "cannot queue the backup: %s", uv_strerror(rc));
        free(j->blob);
        free(j);
    }
}

/* With no save in progress, anything in DATA_DIR/backups/ is a leftover of
 * a save cut short (a crash, a restart): removed. */
static void sweep_leftovers(struct mf_server *s)
{
    for (size_t i = 0; i < MF_OP_SNAPSHOT_SAVES_MAX; i++)
        if (saves[i].used)
            return;
    char d[PATH_LEN], p[PATH_LEN];
    if (dir_path(s, "backups", NULL, d))
        return;
    DIR *dir = opendir(d);
    for (struct dirent *e; dir && (e = readdir(dir)) != NULL;)
        if (e->d_name[0] != '.' && dir_path(s, "backups", e->d_name, p) == 0)
            unlink(p);
    if (dir)
        closedir(dir);
}

static void save_start(struct req *r)
{
    struct mf_server *s = r->srv;
    struct save *sv = NULL;
    sweep_leftovers(s);
    for (size_t i = 0; i < MF_OP_SNAPSHOT_SAVES_MAX && !sv; i++)
        if (!saves[i].used)
            sv = &saves[i];
    if (!sv)
        return mf_api_reply_error(r, MF_EQUOTA, "%d backups are being saved already: retry later",
                                  MF_OP_SNAPSHOT_SAVES_MAX);
    struct save_job *j = calloc(1, sizeof(*j));
    if (!j)
        return mf_api_reply_error(r, -ENOMEM, "out of memory");
    int rc = mf_srv_keyring_blob(s, &j->blob, &j->blob_len);
    if (rc || !j->blob_len) {
        free(j->blob);
        free(j);
        return mf_api_reply_error(r, MF_ENOTINIT, "the cluster is not initialised");
    }
    uint8_t rnd[16];
    *sv = (struct save){.used = true, .fd = -1};
    if (mf_rand_bytes(rnd, sizeof(rnd)) == 0)
        for (size_t i = 0; i < sizeof(rnd); i++)
            snprintf(sv->handle + 2 * i, 3, "%02x", rnd[i]);
    char name[64];
    snprintf(name, sizeof(name), "%s.mfbak", sv->handle);
    rc = sv->handle[0] ? make_dir(s, "backups") : MF_ECRYPTO;
    if (!rc)
        rc = dir_path(s, "backups", name, sv->path);
    snprintf(name, sizeof(name), "%s.snap", sv->handle);
    if (!rc)
        rc = dir_path(s, "backups", name, j->snap);
    if (rc) {
        save_drop(sv);
        free(j->blob);
        free(j);
        return mf_api_reply_error(r, MF_EINTERNAL, "cannot prepare the backup: %s",
                                  mf_strerror(rc));
    }
    j->s = s;
    j->r = r;
    j->sv = sv;
    rc = mf_node_read_index(s->node, save_after_barrier, j);
    if (rc) {
        save_drop(sv);
        free(j->blob);
        free(j);
        return mf_api_reply_error(r, MF_EUNAVAIL, "no linearizable read barrier: %s; retry",
                                  mf_strerror(rc));
    }
}

void mf_op_snapshot_save(struct req *r)
{
    const Mayfly__Api__SnapshotSaveRequest *q = r->pb->snapshot_save;
    expire_idle();
    if (!q->handle[0])
        return save_start(r);
    for (size_t i = 0; i < MF_OP_SNAPSHOT_SAVES_MAX; i++)
        if (saves[i].used && saves[i].ready && strcmp(saves[i].handle, q->handle) == 0)
            return reply_chunk(r, &saves[i], q->offset);
    mf_api_reply_error(r, MF_ENOTFOUND, "no backup in progress with this handle (a handle "
                                        "expires after %d s idle)", MF_OP_SNAPSHOT_IDLE_MS / 1000);
}

/* ---- restore: upload, stage ---- */

struct upload {
    bool active, staged, busy;
    int fd;
    uint64_t received, total;
    uint8_t *keyring;
    size_t keyring_len;
    struct mf_backup_info info;
};

static struct upload up = {.fd = -1};

static void upload_drop(struct mf_server *s)
{
    if (up.fd >= 0)
        close(up.fd);
    free(up.keyring);
    up = (struct upload){.fd = -1};
    char p[PATH_LEN];
    if (dir_path(s, "restore", "upload.mfbak", p) == 0)
        unlink(p);
    if (dir_path(s, "restore", "staged.mfbak", p) == 0)
        unlink(p);
    if (dir_path(s, "restore", "restore.snap", p) == 0)
        unlink(p);
}

static void upload_begin(struct req *r, const Mayfly__Api__SnapshotRestoreRequest *q)
{
    struct mf_server *s = r->srv;
    upload_drop(s);
    char p[PATH_LEN];
    int rc = make_dir(s, "restore");
    if (!rc)
        rc = dir_path(s, "restore", "upload.mfbak", p);
    if (!rc) {
        up.fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        rc = up.fd < 0 ? -errno : 0;
    }
    if (rc)
        return mf_api_reply_error(r, MF_EINTERNAL, "cannot stage the backup: %s",
                                  mf_strerror(rc));
    up.active = true;
    up.total = q->total;
}

/* The last chunk is in: check the file without any key and stage it. */
static void upload_finish(struct req *r)
{
    struct mf_server *s = r->srv;
    char p[PATH_LEN], staged[PATH_LEN], err[256] = "";
    int rc = fsync(up.fd) ? -errno : 0;
    close(up.fd);
    up.fd = -1;
    if (!rc)
        rc = dir_path(s, "restore", "upload.mfbak", p);
    if (!rc)
        rc = dir_path(s, "restore", "staged.mfbak", staged);
    if (!rc)
        rc = mf_backup_check(p, &up.info, &up.keyring, &up.keyring_len, err, sizeof(err));
    if (!rc && up.info.seal.type != MF_SEAL_SHAMIR)
        rc = MF_EINVAL, snprintf(err, sizeof(err), "its cluster was sealed with a key file");
    if (!rc && rename(p, staged) != 0)
        rc = -errno;
    if (rc) {
        MF_WARN(LOG_MOD, "backup refused: %s", err[0] ? err : mf_strerror(rc));
        upload_drop(s);
        return mf_api_reply_error(r, MF_EINVAL, "backup refused: %s",
                                  err[0] ? err : mf_strerror(rc));
    }
    up.active = false;
    up.staged = true;
    MF_INFO(LOG_MOD, "restore staged (backup of index %" PRIu64 ", %u of %u shares): unseal with "
                     "the backup's shares", up.info.index, up.info.seal.threshold,
            up.info.seal.shares);
    Mayfly__Api__SnapshotRestoreResponse out = MAYFLY__API__SNAPSHOT_RESTORE_RESPONSE__INIT;
    out.index = up.info.index;
    out.term = up.info.term;
    out.received = up.received;
    Resp resp = MAYFLY__API__RESPONSE__INIT;
    resp.result_case = MAYFLY__API__RESPONSE__RESULT_SNAPSHOT_RESTORE;
    resp.snapshot_restore = &out;
    mf_api_reply(r, &resp);
}

void mf_op_snapshot_restore(struct req *r)
{
    struct mf_server *s = r->srv;
    const Mayfly__Api__SnapshotRestoreRequest *q = r->pb->snapshot_restore;
    if (mf_srv_initialized(s))
        return mf_api_reply_error(r, MF_EINVAL, "the cluster is already initialised: a backup is "
                                                "restored only into a new, uninitialised cluster");
    if (up.busy)
        return mf_api_reply_error(r, MF_EUNAVAIL, "a restore is being replicated: wait for it");
    if (q->data.len > MF_OP_SNAPSHOT_CHUNK_MAX)
        return mf_api_reply_error(r, MF_ETOOLARGE, "a chunk holds at most %u bytes",
                                  MF_OP_SNAPSHOT_CHUNK_MAX);
    if (q->total == 0 || q->total > MF_OP_SNAPSHOT_RESTORE_MAX)
        return mf_api_reply_error(r, MF_EINVAL, "total must be 1 byte to %" PRIu64 " bytes",
                                  MF_OP_SNAPSHOT_RESTORE_MAX);
    if (q->offset == 0) {
        upload_begin(r, q);
        if (!up.active)
            return; /* answered */
    } else if (!up.active || q->offset != up.received || q->total != up.total) {
        return mf_api_reply_error(r, MF_EINVAL, "expected offset %" PRIu64 " of a %" PRIu64
                                                "-byte upload (offset 0 starts over)",
                                  up.active ? up.received : 0, up.active ? up.total : 0);
    }
    if (up.received + q->data.len > up.total) {
        upload_drop(s);
        return mf_api_reply_error(r, MF_EINVAL, "more bytes than the total announced");
    }
    int rc = mf_write_all(up.fd, q->data.data, q->data.len);
    if (rc) {
        upload_drop(s);
        return mf_api_reply_error(r, MF_EINTERNAL, "cannot stage the backup: %s",
                                  mf_strerror(rc));
    }
    up.received += q->data.len;
    if (q->last) {
        if (up.received != up.total) {
            upload_drop(s);
            return mf_api_reply_error(r, MF_EINVAL, "the last chunk came before the total");
        }
        return upload_finish(r);
    }
    Mayfly__Api__SnapshotRestoreResponse out = MAYFLY__API__SNAPSHOT_RESTORE_RESPONSE__INIT;
    out.received = up.received;
    Resp resp = MAYFLY__API__RESPONSE__INIT;
    resp.result_case = MAYFLY__API__RESPONSE__RESULT_SNAPSHOT_RESTORE;
    resp.snapshot_restore = &out;
    mf_api_reply(r, &resp);
}

bool mf_op_snapshot_staged(void)
{
    return up.staged;
}

/* ---- restore: unseal, verify, replicate ---- */

struct push {
    struct mf_server *s;
    struct req *r;
    int fd;
    uint64_t off, len, source_index;
    uint8_t sha[32];
    unsigned threshold;
    bool committing;
};

static void push_next(struct push *p);

static void push_fail(struct push *p, int rc, const char *why)
{
    struct mf_server *s = p->s;
    MF_ERROR(LOG_MOD, "restore failed: %s", why);
    mf_seal_seal(s->seal); /* the keyring it unsealed with is not the cluster's */
    close(p->fd);
    upload_drop(s);
    mf_api_reply_error(p->r, rc, "restore failed: %s", why);
    free(p);
}

static void pushed(void *arg, int rc, const Result *res)
{
    struct push *p = arg;
    if (!rc && res && res->code)
        return push_fail(p, MF_EINVAL, res->error && res->error[0] ? res->error : "refused");
    if (rc)
        return push_fail(p, rc, mf_strerror(rc));
    if (!p->committing)
        return push_next(p);
    struct mf_server *s = p->s;
    MF_INFO(LOG_MOD, "restore applied: the backup of index %" PRIu64 " is the cluster's state",
            p->source_index);
    close(p->fd);
    upload_drop(s);
    mf_metrics_publish(s);
    Mayfly__Api__UnsealResponse out = MAYFLY__API__UNSEAL_RESPONSE__INIT;
    out.sealed = mf_barrier_sealed(s->barrier);
    out.threshold = p->threshold;
    Resp resp = MAYFLY__API__RESPONSE__INIT;
    resp.result_case = MAYFLY__API__RESPONSE__RESULT_UNSEAL;
    resp.unseal = &out;
    mf_api_reply(p->r, &resp);
    free(p);
}

static void push_next(struct push *p)
{
    struct mf_server *s = p->s;
    Cmd cmd;
    mayfly__cmd__command__init(&cmd);
    Mayfly__Cmd__RestoreChunk chunk = MAYFLY__CMD__RESTORE_CHUNK__INIT;
    Mayfly__Cmd__RestoreCommit commit = MAYFLY__CMD__RESTORE_COMMIT__INIT;
    uint8_t *buf = NULL;
    if (p->off < p->len) {
        size_t n = p->len - p->off < MF_RESTORE_CHUNK_MAX ? (size_t)(p->len - p->off)
                                                         : MF_RESTORE_CHUNK_MAX;
        buf = malloc(n);
        if (!buf || pread(p->fd, buf, n, (off_t)p->off) != (ssize_t)n) {
            free(buf);
            return push_fail(p, MF_EINTERNAL, "cannot read the extracted snapshot");
        }
        chunk.offset = p->off;
        chunk.data.data = buf;
        chunk.data.len = n;
        cmd.op_case = MAYFLY__CMD__COMMAND__OP_RESTORE_CHUNK;
        cmd.restore_chunk = &chunk;
        p->off += n;
    } else {
        commit.length = p->len;
        commit.sha256.data = p->sha;
        commit.sha256.len = 32;
        commit.source_index = p->source_index;
        cmd.op_case = MAYFLY__CMD__COMMAND__OP_RESTORE_COMMIT;
        cmd.restore_commit = &commit;
        p->committing = true;
    }
    int rc = mf_propose(s->prop, &cmd, pushed, p);
    free(buf);
    if (rc)
        push_fail(p, rc, mf_strerror(rc));
}

/* SHA-256 and length of the extracted snapshot, which the commit names. */
static int file_digest(int fd, uint8_t sha[32], uint64_t *len)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    uint8_t *buf = malloc(1 << 16);
    int rc = md && buf && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 ? 0 : -ENOMEM;
    *len = 0;
    for (ssize_t k; !rc && (k = pread(fd, buf, 1 << 16, (off_t)*len)) != 0; *len += (uint64_t)k)
        if (k < 0 || EVP_DigestUpdate(md, buf, (size_t)k) != 1)
            rc = MF_EINTERNAL;
    unsigned n = 0;
    if (!rc && EVP_DigestFinal_ex(md, sha, &n) != 1)
        rc = MF_EINTERNAL;
    EVP_MD_CTX_free(md);
    free(buf);
    return rc;
}

/* The root key rebuilt from the backup's shares opened its keyring: now the
 * backup's MAC, then the snapshot out of it, then Raft. */
static void restore_unsealed(struct req *r, unsigned threshold)
{
    struct mf_server *s = r->srv;
    char staged[PATH_LEN], snap[PATH_LEN], err[256] = "";
    int rc = dir_path(s, "restore", "staged.mfbak", staged);
    if (!rc)
        rc = dir_path(s, "restore", "restore.snap", snap);
    if (!rc)
        rc = mf_backup_verify_mac(s->barrier, staged, err, sizeof(err));
    if (rc) {
        mf_seal_seal(s->seal);
        upload_drop(s);
        MF_WARN(LOG_MOD, "restore refused: %s", err[0] ? err : mf_strerror(rc));
        return mf_api_reply_error(r, MF_EINVAL, "%s: the staged restore is dropped",
                                  err[0] ? err : mf_strerror(rc));
    }
    if (!s->node || !mf_node_is_leader(s->node)) {
        mf_seal_seal(s->seal);
        upload_drop(s);
        return mf_api_reply_error(r, MF_EUNAVAIL, "this node no longer leads: restore the "
                                                  "backup again (to the leader)");
    }
    rc = mf_backup_extract(staged, snap, err, sizeof(err));
    struct push *p = rc ? NULL : calloc(1, sizeof(*p));
    if (p) {
        *p = (struct push){.s = s, .r = r, .source_index = up.info.index,
                           .threshold = threshold};
        p->fd = open(snap, O_RDONLY | O_CLOEXEC);
        rc = p->fd < 0 ? -errno : file_digest(p->fd, p->sha, &p->len);
        if (rc && p->fd >= 0)
            close(p->fd);
    } else if (!rc) {
        rc = -ENOMEM;
    }
    if (rc) {
        free(p);
        mf_seal_seal(s->seal);
        upload_drop(s);
        return mf_api_reply_error(r, MF_EINTERNAL, "cannot extract the backup: %s",
                                  err[0] ? err : mf_strerror(rc));
    }
    up.busy = true;
    MF_INFO(LOG_MOD, "backup MAC verified: replicating %" PRIu64 " bytes", p->len);
    push_next(p);
}

bool mf_op_snapshot_unseal(struct req *r)
{
    struct mf_server *s = r->srv;
    if (!up.staged || mf_srv_initialized(s))
        return false;
    if (up.busy) {
        mf_api_reply_error(r, MF_EUNAVAIL, "the restore is being replicated: retry shortly");
        return true;
    }
    struct mf_seal_status st;
    char err[MF_SEAL_ERR_LEN] = "";
    int rc = mf_seal_unseal(s->seal, r->pb->unseal->share, up.keyring, up.keyring_len, &st, err,
                            sizeof(err));
    if (rc) {
        mf_api_reply_error(r, rc, "unseal (restore staged): %s", err[0] ? err : mf_strerror(rc));
        return true;
    }
    if (!st.sealed) {
        restore_unsealed(r, st.threshold);
        return true;
    }
    Mayfly__Api__UnsealResponse out = MAYFLY__API__UNSEAL_RESPONSE__INIT;
    out.sealed = true;
    out.progress = st.progress;
    out.threshold = st.threshold;
    Resp resp = MAYFLY__API__RESPONSE__INIT;
    resp.result_case = MAYFLY__API__RESPONSE__RESULT_UNSEAL;
    resp.unseal = &out;
    mf_api_reply(r, &resp);
    return true;
}

void mf_op_snapshot_applied(struct mf_server *s, const struct mf_raft_entry *e, const Result *res)
{
    /* Only a policy change or a restore sets policies_changed, and a
     * RestoreCommit is small: most entries stop at the first test. */
    if (!res || res->code || !res->policies_changed || !e->data || e->len > 256)
        return;
    Cmd *c = mayfly__cmd__command__unpack(NULL, e->len, e->data);
    bool restored = c && c->op_case == MAYFLY__CMD__COMMAND__OP_RESTORE_COMMIT;
    if (c)
        mayfly__cmd__command__free_unpacked(c, NULL);
    if (!restored)
        return;
    MF_INFO(LOG_MOD, "the state was restored from a backup at index %" PRIu64, e->index);
    mf_op_snapshot_load_id_base(s);
    /* Engines, the scheduler and the figures start over from the restored
     * state; the leader revokes at once what fell due meanwhile. */
    mf_mounts_drop_all(s);
    if (s->node && mf_node_is_leader(s->node))
        mf_mounts_open_all(s);
    mf_sched_role_changed(s);
    mf_metrics_publish(s);
}

void mf_op_snapshot_load_id_base(struct mf_server *s)
{
    MDB_txn *txn;
    uint64_t base = 0;
    if (!s->prop || mf_srv_read_begin(s, &txn))
        return;
    if (mf_state_meta_get_u64(txn, mf_fsm_state(s->fsm), "id_base", &base))
        base = 0;
    mf_srv_read_end(s, txn);
    if (base)
        mf_proposer_id_base_set(s->prop, base);
}

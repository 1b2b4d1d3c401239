/* Anchors of every node's audit files, committed through Raft (see
 * audit_anchor.h): what lets `audit verify` catch a truncated tail. */
#include "server/audit_anchor.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/assert.h"
#include "common/env.h"
#include "common/err.h"
#include "common/log.h"
#include "server/proposer.h"
#include "server/records.h"
#include "store/barrier.h"
#include "store/kv.h"

#define LOG_MOD "audit"


#define ANCHOR_PATH_MAX (sizeof(MF_AUDITLOG_ANCHORS_PREFIX) + 24 + MF_AUDITLOG_NAME_MAX)
#define ANCHOR_MSG_MAX 1024

static bool name_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > MF_AUDITLOG_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(name[i] >= 'a' && name[i] <= 'z') && !(name[i] >= 'A' && name[i] <= 'Z') &&
            !(name[i] >= '0' && name[i] <= '9') && name[i] != '-' && name[i] != '_')
            return false;
    return true;
}

/* NUL-terminated even when cut: device names are at most
 * MF_AUDITLOG_NAME_MAX (name_ok), which ANCHOR_PATH_MAX holds. */
static void anchor_path(uint64_t node, const char *dev, char *out, size_t len)
{
    int w = snprintf(out, len, "%s%" PRIu64 "/%s", MF_AUDITLOG_ANCHORS_PREFIX, node, dev);
    MF_ASSERT(w > 0 && (size_t)w < len);
}

/* The committed anchor at `path` in this node's state (seq 0: none). */
static void committed_anchor(struct mf_server *s, const char *path, struct mf_audit_anchor *out)
{
    json_t *obj = NULL;
    if (mf_records_read(s, path, &obj) || mf_audit_anchor_from_json(obj, out))
        memset(out, 0, sizeof(*out));
    json_decref(obj);
}

static void on_anchor_done(void *arg, int rc, const Mayfly__Cmd__Result *res)
{
    (void)arg;
    (void)res;
    if (rc)
        MF_WARN(LOG_MOD, "anchor proposal failed: %s (sent again later)", mf_strerror(rc));
}

/* Leader: proposes node's anchor of device `dev` if the device is configured
 * and the anchor is ahead of the committed one. */
static void commit_anchor(struct mf_server *s, uint64_t node, const char *dev,
                          const struct mf_audit_anchor *an)
{
    char path[ANCHOR_PATH_MAX];
    snprintf(path, sizeof(path), "%s%s", MF_AUDITLOG_DEVICES_PREFIX, dev);
    json_t *obj = NULL;
    int rc = mf_records_read(s, path, &obj);
    json_decref(obj);
    if (rc)
        return; /* not (or no longer) a device: nothing to anchor */
    anchor_path(node, dev, path, sizeof(path));
    struct mf_audit_anchor cur;
    committed_anchor(s, path, &cur);
    if (cur.seq && !mf_audit_anchor_ahead(an, &cur))
        return;
    if (!(obj = mf_audit_anchor_to_json(an)))
        return;
    rc = mf_records_put(s, path, obj, on_anchor_done, NULL);
    json_decref(obj);
    if (rc)
        MF_WARN(LOG_MOD, "anchor of node %" PRIu64 " device %s not proposed: %s", node, dev,
                mf_strerror(rc));
}

static void send_anchor(struct mf_server *s, const char *dev, const struct mf_audit_anchor *an)
{
    json_t *msg = json_pack("{s:s, s:o*}", "device", dev, "anchor", mf_audit_anchor_to_json(an));
    char *text = msg ? json_dumps(msg, JSON_COMPACT) : NULL;
    json_decref(msg);
    if (!text)
        return;
    int rc = mf_node_send(s->node, s->leader, MF_AUDITLOG_PEER_TAG, text, strlen(text));
    if (rc)
        MF_DEBUG(LOG_MOD, "anchor of device %s not sent: %s", dev, mf_strerror(rc));
    free(text);
}

void mf_audit_anchor_round(struct mf_server *s)
{
    if (!s->prop || !s->node || mf_barrier_sealed(s->barrier))
        return;
    bool leading = mf_proposer_leading(s->prop);
    if (!leading && (!s->leader || s->leader == s->cfg->node_id))
        return;
    struct mf_auditlog_position pos[MF_AUDITLOG_DEVICES_MAX];
    size_t n = mf_auditlog_positions(s, pos, MF_AUDITLOG_DEVICES_MAX);
    for (size_t i = 0; i < n; i++) {
        struct mf_audit_anchor cur;
        char path[ANCHOR_PATH_MAX];
        anchor_path(s->cfg->node_id, pos[i].device, path, sizeof(path));
        committed_anchor(s, path, &cur);
        if (cur.seq && !mf_audit_anchor_ahead(&pos[i].at, &cur))
            continue;
        if (leading)
            commit_anchor(s, s->cfg->node_id, pos[i].device, &pos[i].at);
        else
            send_anchor(s, pos[i].device, &pos[i].at);
    }
}

void mf_audit_anchor_peer_message(struct mf_server *s, uint64_t from, const uint8_t *data,
                              size_t len)
{
    if (len > ANCHOR_MSG_MAX || !s->prop || !mf_proposer_leading(s->prop) ||
        mf_barrier_sealed(s->barrier))
        return; /* the sender sends again to whoever leads */
    json_error_t je;
    json_t *m = json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES, &je);
    const char *dev = json_string_value(json_object_get(m, "device"));
    struct mf_audit_anchor an;
    if (m && name_ok(dev) && mf_audit_anchor_from_json(json_object_get(m, "anchor"), &an) == 0)
        commit_anchor(s, from, dev, &an); /* the link says which node: never the message */
    else
        MF_WARN(LOG_MOD, "node %" PRIu64 " sent a malformed audit anchor", from);
    json_decref(m);
}

/* Adds the anchors of `path`'s kept versions that belong to file_id (all
 * files: the current version only). */
static int path_anchors(struct mf_server *s, MDB_txn *txn, const char *path, const char *file_id,
                        struct mf_audit_anchor_at *out, size_t *n)
{
    const char *rest = path + strlen(MF_AUDITLOG_ANCHORS_PREFIX);
    char *end = NULL;
    uint64_t node = strtoull(rest, &end, 10);
    if (!end || *end != '/' || !name_ok(end + 1))
        return 0;
    uint64_t version = 0;
    for (uint64_t want = 0; *n < MF_AUDITLOG_ANCHORS_MAX; want = version - 1) {
        Mayfly__Cmd__KvVersion *v = NULL;
        int rc = mf_kv_get(txn, mf_fsm_state(s->fsm), path, want, &v, &version);
        if (rc == MF_ENOTFOUND)
            return 0; /* trimmed: no older version */
        if (rc)
            return rc;
        uint8_t *plain = NULL;
        size_t len = 0;
        json_t *obj = NULL;
        if (!v->deleted_ms && !v->destroyed &&
            mf_barrier_decrypt(s->barrier, path, v->write_id, v->value.data, v->value.len,
                               &plain, &len) == 0) {
            json_error_t je;
            obj = json_loadb((const char *)plain, len, 0, &je);
            mf_barrier_wipe_free(plain, len);
        }
        mf_kv_version_free(v);
        struct mf_audit_anchor_at *an = &out[*n];
        if (obj && mf_audit_anchor_from_json(obj, &an->at) == 0 &&
            (!file_id || !file_id[0] || strcmp(an->at.file_id, file_id) == 0)) {
            an->node = node;
            snprintf(an->device, sizeof(an->device), "%s", end + 1);
            (*n)++;
        }
        json_decref(obj);
        if (!file_id || !file_id[0] || version <= 1)
            return 0;
    }
    return 0;
}

int mf_audit_anchor_list(struct mf_server *s, const char *file_id,
                         struct mf_audit_anchor_at **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (mf_barrier_sealed(s->barrier))
        return MF_ESEALED;
    struct mf_audit_anchor_at *v = calloc(MF_AUDITLOG_ANCHORS_MAX, sizeof(*v));
    if (!v)
        return -ENOMEM;
    MDB_txn *txn;
    char **paths = NULL;
    size_t np = 0;
    int more = 0;
    int rc = mf_srv_read_begin(s, &txn);
    if (rc) {
        free(v);
        return rc;
    }
    rc = mf_kv_list(txn, mf_fsm_state(s->fsm), MF_AUDITLOG_ANCHORS_PREFIX, NULL,
                    MF_AUDITLOG_ANCHORS_MAX, &paths, &np, &more);
    for (size_t i = 0; !rc && i < np; i++)
        rc = path_anchors(s, txn, paths[i], file_id, v, n);
    mf_srv_read_end(s, txn);
    mf_kv_list_free(paths, np);
    if (rc) {
        free(v);
        *n = 0;
        return rc;
    }
    *out = v;
    return 0;
}


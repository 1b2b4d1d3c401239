/* The state machine's apply loop: decode each committed command, count the
 * barrier key's uses, prune and consult the idempotency table, dispatch to
 * the module that owns the command (leases.c, kv.c, tokens.c, policies.c),
 * keep the result for duplicates, and commit the batch with the applied index
 * in the same write transaction.
 *
 * Deterministic by construction: nothing here or in the handlers reads a
 * clock or a random source (a build check runs nm over these objects); state
 * depends only on the entries applied, never on how they were batched.
 */
#include "store/fsm.h"
#include "store/barrier.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/err.h"
#include "common/log.h"
#include "store/alarms.h"
#include "store/members.h"
#include "store/apply.h"
#include "store/features.h"
#include "store/idempotency.h"
#include "store/restore.h"

struct mf_fsm {
    struct mf_state *st;
    uint64_t applied;
    uint64_t durable; /* applied index known to be on disk */
    uint64_t now_ms; /* greatest command time applied */
    char stop_why[256]; /* why this build cannot go on (features.h), or "" */
};

int mf_apply_fail(struct mf_apply *a, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->err, sizeof(a->err), fmt, ap);
    va_end(ap);
    return code;
}

int mf_apply_live_add(struct mf_apply *a, int64_t delta)
{
    if (!a->live_loaded) {
        int rc = mf_state_meta_get_u64(a->txn, a->st, "live", &a->live);
        if (rc)
            return rc;
        a->live_loaded = 1;
    }
    if (delta) {
        MF_ASSERT(delta > 0 || a->live >= (uint64_t)-delta);
        a->live += (uint64_t)delta;
        a->live_dirty = 1;
    }
    return 0;
}

int mf_apply_lease_moved(struct mf_apply *a, int from, int to)
{
    MF_ASSERT(from >= 0 && from < MF_LEASE_STATES && to >= 0 && to < MF_LEASE_STATES);
    if (!a->states_loaded) {
        int rc = mf_state_lease_counts(a->txn, a->st, a->by_state);
        if (rc)
            return rc;
        a->states_loaded = 1;
    }
    if (from) {
        MF_ASSERT(a->by_state[from] > 0);
        a->by_state[from]--;
    }
    if (to)
        a->by_state[to]++;
    a->states_dirty = 1;
    return 0;
}

static int flush_lease_counts(struct mf_apply *a)
{
    for (int s = 1; s < MF_LEASE_STATES; s++) {
        char key[16];
        mf_state_lease_count_key(s, key);
        int rc = mf_state_meta_put_u64(a->txn, a->st, key, a->by_state[s]);
        if (rc)
            return rc;
    }
    return 0;
}

int mf_fsm_reload(struct mf_fsm *fsm)
{
    MDB_txn *txn;
    int rc = mf_state_read_begin(fsm->st, &txn);
    if (rc)
        return rc;
    rc = mf_state_meta_get_u64(txn, fsm->st, "applied", &fsm->applied);
    if (rc == 0)
        rc = mf_state_meta_get_u64(txn, fsm->st, "now", &fsm->now_ms);
    uint32_t version = 1;
    if (rc == 0)
        rc = mf_feature_cluster_version(txn, fsm->st, &version);
    mf_state_read_end(txn);
    /* A state that applied a newer cluster version holds (or will be sent)
     * commands this build does not know: stop before serving it. */
    if (rc == 0 && version > mf_feature_level()) {
        snprintf(fsm->stop_why, sizeof(fsm->stop_why),
                 "the state is at cluster feature version %u, unknown to this build (feature "
                 "level %u): upgrade this node before it rejoins",
                 (unsigned)version, (unsigned)mf_feature_level());
        MF_ERROR("store", "%s", fsm->stop_why);
        return MF_ECORRUPT;
    }
    /* What a previous process left may still be in the page cache only. */
    if (rc == 0)
        rc = mf_fsm_sync(fsm);
    return rc;
}

int mf_fsm_sync(struct mf_fsm *fsm)
{
    int rc = mf_state_err(mdb_env_sync(fsm->st->env, 1), "state sync");
    if (rc == 0)
        fsm->durable = fsm->applied;
    return rc;
}

uint64_t mf_fsm_durable_applied(const struct mf_fsm *fsm) { return fsm->durable; }

int mf_fsm_open(const char *dir, const struct mf_state_opts *opts, struct mf_fsm **out)
{
    struct mf_fsm *fsm = calloc(1, sizeof(*fsm));
    if (!fsm)
        return -ENOMEM;
    int rc = mf_state_open(dir, opts, &fsm->st);
    if (rc == 0)
        rc = mf_fsm_reload(fsm);
    if (rc) {
        mf_state_close(fsm->st);
        free(fsm);
        return rc;
    }
    *out = fsm;
    return 0;
}

int mf_fsm_reopen(struct mf_fsm *fsm, size_t map_size_bytes)
{
    /* The map only grows: LMDB refuses a map smaller than its file. */
    if (map_size_bytes > fsm->st->map_size)
        fsm->st->map_size = map_size_bytes;
    int rc = mf_state_reopen(fsm->st);
    if (rc == 0)
        rc = mf_fsm_reload(fsm);
    return rc;
}

void mf_fsm_close(struct mf_fsm *fsm)
{
    if (!fsm)
        return;
    mf_state_close(fsm->st);
    free(fsm);
}

struct mf_state *mf_fsm_state(struct mf_fsm *fsm) { return fsm->st; }
uint64_t mf_fsm_applied(const struct mf_fsm *fsm) { return fsm->applied; }
uint64_t mf_fsm_now(const struct mf_fsm *fsm) { return fsm->now_ms; }
const char *mf_fsm_stop_reason(const struct mf_fsm *fsm)
{
    return fsm->stop_why[0] ? fsm->stop_why : NULL;
}

void mf_fsm_result_free(Mayfly__Cmd__Result *r)
{
    if (r)
        mayfly__cmd__result__free_unpacked(r, NULL);
}

/* A heap copy of r that mayfly__cmd__result__free_unpacked can free. */
static Mayfly__Cmd__Result *result_dup(const Mayfly__Cmd__Result *r)
{
    Mayfly__Cmd__Result *c = malloc(sizeof(*c));
    if (!c)
        return NULL;
    *c = *r;
    c->error = (char *)protobuf_c_empty_string;
    c->cursor = (char *)protobuf_c_empty_string;
    c->secret.data = NULL;
    c->secret.len = 0;
    if (r->error && *r->error && !(c->error = strdup(r->error))) {
        c->error = (char *)protobuf_c_empty_string;
        goto fail;
    }
    if (r->cursor && *r->cursor && !(c->cursor = strdup(r->cursor))) {
        c->cursor = (char *)protobuf_c_empty_string;
        goto fail;
    }
    if (r->secret.len) {
        c->secret.data = malloc(r->secret.len);
        if (!c->secret.data)
            goto fail;
        memcpy(c->secret.data, r->secret.data, r->secret.len);
        c->secret.len = r->secret.len;
    }
    return c;
fail:
    mayfly__cmd__result__free_unpacked(c, NULL);
    return NULL;
}

static int count_key_use(struct mf_apply *a, uint32_t term, uint64_t n)
{
    uint8_t kb[4] = {(uint8_t)(term >> 24), (uint8_t)(term >> 16), (uint8_t)(term >> 8),
                     (uint8_t)term};
    uint64_t have;
    int rc = mf_state_key_uses(a->txn, a->st, term, &have);
    if (rc)
        return rc;
    uint8_t vb[8];
    mf_be64_put(vb, have + n < have ? UINT64_MAX : have + n);
    MDB_val k = {4, kb}, d = {8, vb};
    return mf_state_err(mdb_put(a->txn, a->st->dbi[MF_DB_KEYUSE], &k, &d, 0), "keyuse put");
}

/* KeyringPut (init) and KeyringChange (a rotation, or with a wrapped root
 * key a rekey) store a blob by one rule. */
static int keyring_store(struct mf_apply *a, const ProtobufCBinaryData *blob, bool rekey)
{
    if (blob->len == 0 || blob->len > 1024 * 1024)
        return mf_apply_fail(a, MF_EINVAL, "keyring must be 1 byte to 1 MiB");
    MDB_val k = {7, "keyring"}, d = {blob->len, blob->data}, cur;
    /* A second init (another seal), a stale rotation (term not above the
     * stored one) or a stale rekey must not replace the keyring that
     * encrypts live data. The rule is pure: it reads the blobs' cleartext
     * headers only. A rekey must change the generation, a put must not. */
    uint32_t gen_next = 0, gen_cur = 0;
    int rc = mdb_get(a->txn, a->st->dbi[MF_DB_META], &k, &cur);
    if (rc == 0) {
        int why = mf_barrier_blob_may_replace(cur.mv_data, cur.mv_size, blob->data, blob->len);
        if (!why && (mf_barrier_blob_generation(cur.mv_data, cur.mv_size, &gen_cur) ||
                     mf_barrier_blob_generation(blob->data, blob->len, &gen_next) ||
                     (gen_next != gen_cur) != rekey))
            why = MF_ECAS;
        if (why)
            return mf_apply_fail(a, why, "keyring refused: %s",
                                 why == MF_EEXISTS ? "the cluster is already initialised"
                                 : rekey           ? "not a rekey of the stored keyring"
                                                   : "not a newer keyring of this seal");
    } else if (rc != MDB_NOTFOUND) {
        return mf_state_err(rc, "keyring get");
    } else if (rekey) {
        return mf_apply_fail(a, MF_ENOTINIT, "keyring refused: nothing to rekey");
    }
    return mf_state_err(mdb_put(a->txn, a->st->dbi[MF_DB_META], &k, &d, 0), "keyring put");
}

static int keyring_put(struct mf_apply *a, const Mayfly__Cmd__KeyringPut *m)
{
    return keyring_store(a, &m->keyring, false);
}

static int dispatch(struct mf_apply *a, const Mayfly__Cmd__Command *c, Mayfly__Cmd__Result *r)
{
    switch (c->op_case) {
    case MAYFLY__CMD__COMMAND__OP_LEASE_GRANT: return mf_lease_apply_grant(a, c->lease_grant, r);
    case MAYFLY__CMD__COMMAND__OP_LEASE_ACTIVATE:
        return mf_lease_apply_activate(a, c->lease_activate, r);
    case MAYFLY__CMD__COMMAND__OP_LEASE_RENEW: return mf_lease_apply_renew(a, c->lease_renew, r);
    case MAYFLY__CMD__COMMAND__OP_LEASE_REVOKE: return mf_lease_apply_revoke(a, c->lease_revoke, r);
    case MAYFLY__CMD__COMMAND__OP_LEASE_REVOKE_PREFIX:
        return mf_lease_apply_revoke_prefix(a, c->lease_revoke_prefix, r);
    case MAYFLY__CMD__COMMAND__OP_LEASE_EXPIRE: return mf_lease_apply_expire(a, c->lease_expire, r);
    case MAYFLY__CMD__COMMAND__OP_LEASE_REVOKED:
        return mf_lease_apply_revoked(a, c->lease_revoked, r);
    case MAYFLY__CMD__COMMAND__OP_LEASE_IRREVOCABLE:
        return mf_lease_apply_irrevocable(a, c->lease_irrevocable, r);
    case MAYFLY__CMD__COMMAND__OP_LEASE_FORCE_REVOKE:
        return mf_lease_apply_force_revoke(a, c->lease_force_revoke, r);
    case MAYFLY__CMD__COMMAND__OP_LEASE_TIDY: return mf_lease_apply_tidy(a, c->lease_tidy, r);
    case MAYFLY__CMD__COMMAND__OP_KV_PUT: return mf_kv_apply_put(a, c->kv_put, r);
    case MAYFLY__CMD__COMMAND__OP_KV_VERSIONS: return mf_kv_apply_versions(a, c->kv_versions, r);
    case MAYFLY__CMD__COMMAND__OP_KV_METADATA_PUT:
        return mf_kv_apply_metadata_put(a, c->kv_metadata_put, r);
    case MAYFLY__CMD__COMMAND__OP_KV_DELETE_ALL:
        return mf_kv_apply_delete_all(a, c->kv_delete_all, r);
    case MAYFLY__CMD__COMMAND__OP_TOKEN_CREATE:
        return mf_token_apply_create(a, c->token_create, r);
    case MAYFLY__CMD__COMMAND__OP_TOKEN_REVOKE:
        return mf_token_apply_revoke(a, c->token_revoke, r);
    case MAYFLY__CMD__COMMAND__OP_TOKEN_RENEW:
        return mf_token_apply_renew(a, c->token_renew, r);
    case MAYFLY__CMD__COMMAND__OP_TOKEN_EXPIRE:
        return mf_token_apply_expire(a, c->token_expire, r);
    case MAYFLY__CMD__COMMAND__OP_POLICY_PUT: return mf_policy_apply_put(a, c->policy_put, r);
    case MAYFLY__CMD__COMMAND__OP_POLICY_DELETE:
        return mf_policy_apply_delete(a, c->policy_delete, r);
    case MAYFLY__CMD__COMMAND__OP_KEYRING_PUT: return keyring_put(a, c->keyring_put);
    case MAYFLY__CMD__COMMAND__OP_QUOTA_SET: return mf_lease_apply_quota_set(a, c->quota_set, r);
    case MAYFLY__CMD__COMMAND__OP_ALARM_SET: return mf_alarm_apply_set(a, c->alarm_set, r);
    case MAYFLY__CMD__COMMAND__OP_CLUSTER_VERSION:
        return mf_feature_apply_version(a, c->cluster_version, r);
    case MAYFLY__CMD__COMMAND__OP_RESTORE_CHUNK:
        return mf_restore_apply_chunk(a, c->restore_chunk, r);
    case MAYFLY__CMD__COMMAND__OP_RESTORE_COMMIT:
        return mf_restore_apply_commit(a, c->restore_commit, r);
    case MAYFLY__CMD__COMMAND__OP_KEYRING_CHANGE:
        return keyring_store(a, &c->keyring_change->keyring,
                             c->keyring_change->wrapped_root.len > 0);
    default:
        return mf_apply_fail(a, MF_EINVAL, "unknown command type (field %d)", (int)c->op_case);
    }
}

/* Apply one command. Rule errors land in *res; the return value is 0 or a
 * fatal storage error. *out receives the result to hand out (NULL if the
 * caller wants none). */
static int apply_one(struct mf_apply *a, struct mf_fsm *fsm, uint64_t index, const uint8_t *data,
                     size_t len, Mayfly__Cmd__Result **out)
{
    Mayfly__Cmd__Result r = MAYFLY__CMD__RESULT__INIT;
    Mayfly__Cmd__Result *dup = NULL;
    Mayfly__Cmd__Command *c = NULL;
    int rc = 0, code, keep = 0;
    a->err[0] = 0;

    if (len > MF_FSM_COMMAND_MAX) {
        code = mf_apply_fail(a, MF_ETOOLARGE, "command larger than %d bytes", MF_FSM_COMMAND_MAX);
        goto finish;
    }
    c = mayfly__cmd__command__unpack(NULL, len, data);
    if (!c) {
        code = mf_apply_fail(a, MF_EINVAL, "corrupted command: cannot decode %zu bytes", len);
        goto finish;
    }
    /* A command of a newer version, applied as an error or skipped, would
     * make this replica diverge from the upgraded ones: stop instead. */
    int op;
    if (!mf_feature_cmd_known(c, &op)) {
        mf_feature_unknown_text(fsm->stop_why, sizeof(fsm->stop_why), index, op);
        MF_ERROR("store", "%s", fsm->stop_why);
        rc = MF_ECORRUPT;
        goto out;
    }
    if (c->now_ms == 0 || c->request_id.len > MF_IDEM_RID_MAX) {
        code = mf_apply_fail(a, MF_EINVAL, "command without a time or with a request id over %d bytes",
                             MF_IDEM_RID_MAX);
        goto finish;
    }
    if ((c->idem_caller.len && c->idem_caller.len != MF_IDEM_CALLER_LEN) ||
        c->request_fingerprint.len > MF_IDEM_RID_MAX) {
        code = mf_apply_fail(a, MF_EINVAL, "command with a malformed caller or fingerprint");
        goto finish;
    }
    /* State time never goes backwards, whoever the leader. */
    a->now_ms = c->now_ms > fsm->now_ms ? c->now_ms : fsm->now_ms;
    fsm->now_ms = a->now_ms;
    keep = c->request_id.len > 0;

    /* Nonces were spent when the proposer encrypted, duplicate or not. */
    if (c->key_encryptions) {
        rc = count_key_use(a, c->key_term, c->key_encryptions);
        if (rc)
            goto out;
    }
    rc = mf_idem_apply_prune(a);
    if (rc)
        goto out;
    if (c->request_id.len) {
        rc = mf_idem_apply_lookup(a, c->request_id.data, c->request_id.len,
                                  c->request_fingerprint, &dup);
        if (rc == MF_EINVAL) {
            /* Refused, and the first request's entry stays as it was. */
            keep = 0;
            rc = 0;
            code = mf_apply_fail(a, MF_EINVAL, "request id reused with a different request");
            goto finish;
        }
        if (rc == 0) {
            dup->duplicate = 1;
            if (out)
                *out = dup;
            else
                mf_fsm_result_free(dup);
            goto out;
        }
        if (rc != MF_ENOTFOUND)
            goto out;
        rc = 0;
    }
    /* While a storage alarm is set, commands that grow the data are refused
     * (alarms.h); a duplicate above still gets its first result, and the
     * refusal is not kept for the request id. */
    code = mf_alarm_apply_check(a, c);
    if (code == MF_EQUOTA)
        keep = 0; /* not applied: the same request may apply once the alarm clears */
    else if (code == 0)
        code = dispatch(a, c, &r);
    if (a->now_ms > fsm->now_ms)
        fsm->now_ms = a->now_ms; /* a restore brought a later time */
    if (mf_apply_fatal(code)) {
        rc = code;
        goto out;
    }

finish:
    r.code = code;
    if (code) {
        if (!a->err[0])
            snprintf(a->err, sizeof(a->err), "%s", mf_strerror(code));
        r.error = a->err;
    }
    if (keep) {
        r.secret = c->result_secret;
        rc = mf_idem_apply_store(a, c->request_id.data, c->request_id.len, c->idem_caller,
                                 c->request_fingerprint, &r);
        if (rc)
            goto out;
    }
    if (out) {
        *out = result_dup(&r);
        if (!*out)
            rc = -ENOMEM;
    }
out:
    if (r.cursor && r.cursor != protobuf_c_empty_string)
        free(r.cursor); /* a handler's strdup */
    if (c)
        mayfly__cmd__command__free_unpacked(c, NULL);
    return rc;
}

int mf_fsm_apply_batch(struct mf_fsm *fsm, const struct mf_fsm_entry *entries, size_t n,
                       Mayfly__Cmd__Result **results)
{
    MF_ASSERT(fsm && (entries || n == 0));
    if (results)
        memset(results, 0, n * sizeof(*results));
    size_t i = 0;
    while (i < n && entries[i].index <= fsm->applied)
        i++; /* already applied (replay after a restart) */
    if (i == n)
        return 0;

    struct mf_apply a = {.st = fsm->st};
    uint64_t applied0 = fsm->applied, now0 = fsm->now_ms, idx = fsm->applied;
    int rc = mf_state_err(mdb_txn_begin(fsm->st->env, NULL, 0, &a.txn), "write txn");
    if (rc)
        return rc;
    for (; i < n; i++) {
        MF_ASSERT(entries[i].index == idx + 1);
        idx = entries[i].index;
        if (!entries[i].data)
            continue;
        if (entries[i].conf) {
            rc = mf_members_apply_conf(a.txn, fsm->st, entries[i].data, entries[i].len);
            if (rc)
                goto fail;
            continue;
        }
        rc = apply_one(&a, fsm, idx, entries[i].data, entries[i].len,
                       results ? &results[i] : NULL);
        if (rc)
            goto fail;
    }
    rc = mf_state_meta_put_u64(a.txn, fsm->st, "applied", idx);
    if (rc == 0 && fsm->now_ms != now0)
        rc = mf_state_meta_put_u64(a.txn, fsm->st, "now", fsm->now_ms);
    if (rc == 0 && a.live_dirty)
        rc = mf_state_meta_put_u64(a.txn, fsm->st, "live", a.live);
    if (rc == 0 && a.states_dirty)
        rc = flush_lease_counts(&a);
    if (rc)
        goto fail;
    rc = mf_state_err(mdb_txn_commit(a.txn), "commit");
    a.txn = NULL;
    if (rc)
        goto fail;
    /* This commit's flush made the previous commit's meta page durable. */
    fsm->durable = applied0 > fsm->durable ? applied0 : fsm->durable;
    fsm->applied = idx;
    return 0;

fail:
    if (a.txn)
        mdb_txn_abort(a.txn);
    fsm->applied = applied0;
    fsm->now_ms = now0;
    if (results)
        for (size_t j = 0; j < n; j++) {
            mf_fsm_result_free(results[j]);
            results[j] = NULL;
        }
    MF_ERROR("store", "apply of entries %llu..%llu failed: %s", (unsigned long long)applied0 + 1,
             (unsigned long long)entries[n - 1].index, mf_strerror(rc));
    return rc;
}

int mf_fsm_apply(struct mf_fsm *fsm, uint64_t index, const uint8_t *data, size_t len,
                 Mayfly__Cmd__Result **result)
{
    struct mf_fsm_entry e = {index, data, len, false};
    return mf_fsm_apply_batch(fsm, &e, 1, result);
}

/* Secrets engines: enable, role put, rotate-root, CRL, list, and the
 * two-phase credential issue (DESIGN.md "Data flow": the lease is committed
 * `issuing` before the engine creates anything, then activated with the
 * encrypted credential; a failed issue is revoked by name). */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "common/env.h"
#include "common/err.h"
#include "common/log.h"
#include "engines/pki.h"
#include "server/handler.h"
#include "server/mounts.h"
#include "server/op_engines.h"
#include "server/op_quota.h"
#include "server/proposer.h"
#include "server/records.h"
#include "store/kv.h"
#include "store/lease_rules.h"
#include "store/leases.h"

#define LOG_MOD "engines"

static bool valid_mount_name(const char *m)
{
    size_t len = strlen(m);
    if (len == 0 || len > MF_LEASE_MOUNT_MAX || m[0] == '/' || m[len - 1] == '/' ||
        strcmp(m, "lease") == 0 || strncmp(m, "sys", 3) == 0)
        return false;
    for (const char *p = m; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-' ||
              *p == '/'))
            return false;
    return true;
}

static bool valid_role_name(const char *r)
{
    size_t len = strlen(r);
    if (len == 0 || len > 64)
        return false;
    for (const char *p = r; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'))
            return false;
    return true;
}

/* Proposes a KV put of a reserved record (a JSON object, encrypted like any
 * value) for r; `finish` answers r. */
static void propose_record(struct req *r, const char *path, json_t *obj,
                           mf_handler_finish_cb finish)
{
    char *text = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
    if (!text)
        return mf_api_reply_error(r, MF_EINTERNAL, "out of memory");
    Mayfly__Cmd__KvPut m = MAYFLY__CMD__KV_PUT__INIT;
    m.path = (char *)path;
    mf_handler_propose_put(r, &m, text, finish);
}

static void finish_record(struct req *r, const Result *res_ptr, Resp *resp)
{
    (void)res_ptr;
    char path[MF_KV_PATH_MAX];
    if (r->pb->op_case == MAYFLY__API__REQUEST__OP_ENGINE_ENABLE)
        snprintf(path, sizeof(path), MF_MOUNTS_ENGINES_PREFIX "%s", r->pb->engine_enable->mount);
    else if (r->pb->op_case == MAYFLY__API__REQUEST__OP_ENGINE_ROTATE_ROOT)
        snprintf(path, sizeof(path), MF_MOUNTS_ENGINES_PREFIX "%s", r->pb->engine_rotate_root->mount);
    else
        snprintf(path, sizeof(path), MF_MOUNTS_ENGINES_PREFIX "%s/roles/%s", r->pb->engine_role_put->mount,
                 r->pb->engine_role_put->role);
    mf_mounts_record_changed(r->srv, path); /* an open mount follows the new record */
    mf_api_reply(r, resp);
}

static void on_probe(struct mf_server *s, struct mf_mjob *j, void *arg)
{
    struct req *r = arg;
    const Mayfly__Api__EngineEnableRequest *q = r->pb->engine_enable;
    if (mf_mjob_rc(j))
        return mf_api_reply_error(r, mf_mjob_rc(j) == MF_ENOTLEADER ? MF_EUNAVAIL : MF_EINVAL,
                                  "engine %s at '%s': %s", q->type, q->mount, mf_mjob_err(j));
    char *config = NULL;
    if (strcmp(q->type, "pki") == 0) {
        /* Store the CA it made (or loaded), so every leader signs with it. */
        if (mf_pki_export(mf_mjob_engine(j), &config))
            return mf_api_reply_error(r, MF_EINTERNAL, "cannot export the pki CA");
    }
    json_t *rec = json_pack("{s:s, s:s}", "type", q->type, "config", config ? config : q->config_json);
    if (config)
        mf_pki_secret_free(config);
    char path[MF_KV_PATH_MAX];
    snprintf(path, sizeof(path), MF_MOUNTS_ENGINES_PREFIX "%s", q->mount);
    (void)s;
    propose_record(r, path, rec, finish_record);
    json_decref(rec);
}

void mf_op_engine_enable(struct req *r)
{
    const Mayfly__Api__EngineEnableRequest *q = r->pb->engine_enable;
    if (!valid_mount_name(q->mount))
        return mf_api_reply_error(r, MF_EINVAL, "a mount is [a-z0-9_-/], not 'lease' or 'sys...'");
    if (!mf_engine_find(q->type))
        return mf_api_reply_error(r, MF_EINVAL, "unknown engine type '%s' (postgres, pki)",
                                  q->type);
    int rc = mf_mounts_probe(r->srv, q->type, q->config_json[0] ? q->config_json : "{}",
                             on_probe, r);
    if (rc)
        mf_api_reply_error(r, rc, "%s", mf_strerror(rc));
}

static void on_role_checked(struct mf_server *s, struct mf_mjob *j, void *arg)
{
    struct req *r = arg;
    const Mayfly__Api__EngineRolePutRequest *q = r->pb->engine_role_put;
    (void)s;
    if (mf_mjob_rc(j))
        return mf_api_reply_error(r, mf_mjob_rc(j) == MF_ENOTLEADER ? MF_EUNAVAIL : MF_EINVAL,
                                  "role '%s' at '%s': %s", q->role, q->mount, mf_mjob_err(j));
    json_t *rec = json_pack("{s:s}", "role", q->role_json);
    char path[MF_KV_PATH_MAX];
    snprintf(path, sizeof(path), MF_MOUNTS_ENGINES_PREFIX "%s/roles/%s", q->mount, q->role);
    propose_record(r, path, rec, finish_record);
    json_decref(rec);
}

/* The mount `name` (opened if need be), of engine `type` unless NULL; NULL
 * after answering r when there is none, or of another type (`wrong_type`). */
static struct mf_mount *mount_for(struct req *r, const char *name, const char *type,
                               const char *wrong_type)
{
    struct mf_mount *m;
    int rc = mf_mounts_get(r->srv, name, &m);
    if (rc) {
        mf_api_reply_error(r, rc, "no secrets engine is mounted at '%s'", name);
        return NULL;
    }
    if (type && strcmp(mf_mount_type(m), type) != 0) {
        mf_api_reply_error(r, MF_EINVAL, "%s", wrong_type);
        return NULL;
    }
    return m;
}

void mf_op_engine_role_put(struct req *r)
{
    const Mayfly__Api__EngineRolePutRequest *q = r->pb->engine_role_put;
    if (!valid_role_name(q->role))
        return mf_api_reply_error(r, MF_EINVAL, "a role name is 1..64 of [a-z0-9_-]");
    struct mf_mount *m = mount_for(r, q->mount, NULL, NULL);
    if (!m)
        return;
    int rc = mf_mounts_role_put(m, q->role, q->role_json, on_role_checked, r);
    if (rc)
        mf_api_reply_error(r, rc, "%s", mf_strerror(rc));
}

static void on_rotated(struct mf_server *s, struct mf_mjob *j, void *arg)
{
    struct req *r = arg;
    const char *mount = r->pb->engine_rotate_root->mount;
    (void)s;
    if (mf_mjob_rc(j))
        return mf_api_reply_error(r, mf_mjob_rc(j) == MF_EINVAL ? MF_EINVAL : MF_EUNAVAIL,
                                  "rotate-root at '%s': %s", mount, mf_mjob_err(j));
    /* The database already takes only the new password: store it now. */
    json_t *rec = json_pack("{s:s, s:s}", "type", "postgres", "config", mf_mjob_text(j));
    char path[MF_KV_PATH_MAX];
    snprintf(path, sizeof(path), MF_MOUNTS_ENGINES_PREFIX "%s", mount);
    propose_record(r, path, rec, finish_record);
    json_decref(rec);
}

void mf_op_engine_rotate_root(struct req *r)
{
    struct mf_mount *m = mount_for(r, r->pb->engine_rotate_root->mount, "postgres",
                                "rotate-root applies to postgres engines");
    if (!m)
        return;
    int rc = mf_mounts_rotate_root(m, on_rotated, r);
    if (rc)
        mf_api_reply_error(r, rc, "%s", mf_strerror(rc));
}

static void on_crl(struct mf_server *s, struct mf_mjob *j, void *arg)
{
    struct req *r = arg;
    (void)s;
    if (mf_mjob_rc(j))
        return mf_api_reply_error(r, mf_mjob_rc(j) == MF_EINVAL ? MF_EINVAL : MF_EUNAVAIL, "%s",
                                  mf_mjob_err(j));
    Mayfly__Api__EngineCrlResponse out = MAYFLY__API__ENGINE_CRL_RESPONSE__INIT;
    out.crl_pem = (char *)mf_mjob_text(j);
    Resp resp = MAYFLY__API__RESPONSE__INIT;
    resp.result_case = MAYFLY__API__RESPONSE__RESULT_ENGINE_CRL;
    resp.engine_crl = &out;
    mf_api_reply(r, &resp);
}

/* The CRL is signed by the leader's pki engine (its revoked set is rebuilt
 * from the replicated leases when it opens), so any node forwards it there. */
void mf_op_engine_crl(struct req *r)
{
    struct mf_mount *m = mount_for(r, r->pb->engine_crl->mount, "pki",
                                "a CRL comes from a pki engine");
    if (!m)
        return;
    int rc = mf_mounts_crl(m, mf_now_wall_ms(), on_crl, r);
    if (rc)
        mf_api_reply_error(r, rc, "%s", mf_strerror(rc));
}

void mf_op_engine_list(struct req *r)
{
    struct mf_server *s = r->srv;
    MDB_txn *txn;
    int rc = mf_srv_read_begin(s, &txn);
    if (rc)
        return mf_api_reply_error(r, rc, "storage: %s", mf_strerror(rc));
    char **paths = NULL;
    size_t n = 0;
    int more = 0;
    rc = mf_kv_list(txn, mf_fsm_state(s->fsm), MF_MOUNTS_ENGINES_PREFIX, NULL, MF_SRV_LIST_LIMIT_MAX,
                    &paths, &n, &more);
    mf_srv_read_end(s, txn);
    if (rc)
        return mf_api_reply_error(r, rc, "%s", mf_strerror(rc));
    Mayfly__Api__EngineInfo *infos = calloc(n ? n : 1, sizeof(*infos));
    Mayfly__Api__EngineInfo **ptrs = calloc(n ? n : 1, sizeof(*ptrs));
    char **types = calloc(n ? n : 1, sizeof(char *));
    char ***roles = calloc(n ? n : 1, sizeof(char **));
    size_t k = 0;
    for (size_t i = 0; i < n && infos && ptrs && types && roles; i++) {
        const char *rest = paths[i] + strlen(MF_MOUNTS_ENGINES_PREFIX);
        if (strstr(rest, "/roles/"))
            continue;
        mayfly__api__engine_info__init(&infos[k]);
        infos[k].mount = (char *)rest;
        json_t *rec = NULL;
        types[k] = (mf_records_read(s, paths[i], &rec) == 0 &&
                    json_string_value(json_object_get(rec, "type")))
                       ? strdup(json_string_value(json_object_get(rec, "type")))
                       : strdup("?");
        json_decref(rec);
        infos[k].type = types[k];
        roles[k] = calloc(n, sizeof(char *));
        size_t plen = strlen(paths[i]);
        for (size_t x = 0; x < n && roles[k]; x++)
            if (strncmp(paths[x], paths[i], plen) == 0 && strncmp(paths[x] + plen, "/roles/", 7) == 0)
                roles[k][infos[k].n_roles++] = paths[x] + plen + 7;
        infos[k].roles = roles[k];
        ptrs[k] = &infos[k];
        k++;
    }
    Mayfly__Api__EngineListResponse out = MAYFLY__API__ENGINE_LIST_RESPONSE__INIT;
    Mayfly__Api__ReadInfo ri;
    out.n_engines = k;
    out.engines = ptrs;
    out.read = mf_handler_read_info(r, &ri);
    Resp resp = MAYFLY__API__RESPONSE__INIT;
    resp.result_case = MAYFLY__API__RESPONSE__RESULT_ENGINE_LIST;
    resp.engine_list = &out;
    mf_api_reply(r, &resp);
    for (size_t i = 0; i < k; i++) {
        free(types[i]);
        free(roles[i]);
    }
    free(types);
    free(roles);
    free(infos);
    free(ptrs);
    mf_kv_list_free(paths, n);
}

static void format_creds_lease_id(const struct req *r, char *id, size_t len)
{
    mf_lease_id_format(id, len, r->pb->creds_issue->mount, r->pb->creds_issue->role, r->seq);
}

static void finish_creds_activate(struct req *r, const Result *res_ptr, Resp *resp)
{
    (void)res_ptr;
    char id[MF_LEASE_ID_MAX];
    format_creds_lease_id(r, id, sizeof(id));
    json_error_t je;
    json_t *fields = json_loads(r->secret_plain, 0, &je);
    size_t n = json_object_size(fields), i = 0;
    Mayfly__Api__CredsIssueResponse__DataEntry *e = calloc(n ? n : 1, sizeof(*e));
    Mayfly__Api__CredsIssueResponse__DataEntry **ep = calloc(n ? n : 1, sizeof(*ep));
    const char *key;
    json_t *val;
    json_object_foreach(fields, key, val) {
        if (!e || !ep)
            break;
        mayfly__api__creds_issue_response__data_entry__init(&e[i]);
        e[i].key = (char *)key;
        e[i].value = (char *)json_string_value(val);
        ep[i] = &e[i];
        i++;
    }
    Mayfly__Api__CredsIssueResponse out = MAYFLY__API__CREDS_ISSUE_RESPONSE__INIT;
    out.lease_id = id;
    out.expire_at_ms = r->expire_at_ms;
    out.n_data = i;
    out.data = ep;
    resp->result_case = MAYFLY__API__RESPONSE__RESULT_CREDS_ISSUE;
    resp->creds_issue = &out;
    mf_api_reply(r, resp);
    free(e);
    free(ep);
    json_decref(fields);
}

/* After a failed issue: the lease goes to revoking now, so the scheduler
 * revokes by name whatever the engine may have half-created. */
static void on_cleanup_done(void *arg, int rc, const Result *res)
{
    (void)arg, (void)res;
    if (rc)
        MF_ERROR(LOG_MOD, "cannot revoke the lease of a failed issue (it expires later): %s",
                 mf_strerror(rc));
}

static void cleanup_failed_issue(struct mf_server *s, uint64_t seq)
{
    Mayfly__Cmd__LeaseRevoke m = MAYFLY__CMD__LEASE_REVOKE__INIT;
    m.seq = seq;
    Cmd cmd = MAYFLY__CMD__COMMAND__INIT;
    cmd.op_case = MAYFLY__CMD__COMMAND__OP_LEASE_REVOKE;
    cmd.lease_revoke = &m;
    int rc = mf_propose(s->prop, &cmd, on_cleanup_done, NULL);
    if (rc)
        on_cleanup_done(NULL, rc, NULL);
}

static void on_issued(struct mf_server *s, struct mf_mjob *j, void *arg)
{
    struct req *r = arg;
    if (mf_mjob_rc(j)) {
        cleanup_failed_issue(s, r->seq);
        return mf_api_reply_error(r, mf_mjob_rc(j) == MF_EINVAL ? MF_EINVAL : MF_EUNAVAIL,
                                  "the engine could not issue: %s", mf_mjob_err(j));
    }
    const struct mf_engine_cred *cred = mf_mjob_cred(j);
    json_t *fields = json_object();
    for (size_t i = 0; i < cred->fields_len; i++)
        json_object_set_new(fields, cred->fields[i].key, json_string(cred->fields[i].value));
    r->secret_plain = json_dumps(fields, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(fields);
    if (!r->secret_plain) {
        cleanup_failed_issue(s, r->seq);
        return mf_api_reply_error(r, MF_EINTERNAL, "out of memory");
    }
    char id[MF_LEASE_ID_MAX];
    format_creds_lease_id(r, id, sizeof(id));
    uint8_t *ct = NULL;
    size_t ct_len = 0;
    int rc = mf_barrier_encrypt(s->barrier, id, r->seq, r->secret_plain,
                                strlen(r->secret_plain), &ct, &ct_len);
    if (rc) {
        cleanup_failed_issue(s, r->seq);
        return mf_api_reply_error(r, rc, "cannot encrypt the credential");
    }
    Mayfly__Cmd__LeaseActivate m = MAYFLY__CMD__LEASE_ACTIVATE__INIT;
    m.seq = r->seq;
    m.credential.data = ct;
    m.credential.len = ct_len;
    Cmd cmd = MAYFLY__CMD__COMMAND__INIT;
    cmd.op_case = MAYFLY__CMD__COMMAND__OP_LEASE_ACTIVATE;
    cmd.lease_activate = &m;
    r->rid_suffix = 1; /* the second command of this request */
    mf_handler_propose(r, &cmd, finish_creds_activate);
    free(ct);
}

/* A retried creds issue (same request id: its answer was lost): the first
 * attempt's lease answers. If it is active, its credential (stored encrypted
 * with the lease) is the answer; if it is still issuing, the outcome is not
 * known yet. Never a second engine call for one lease. */
static void answer_retried_creds(struct req *r)
{
    struct mf_server *s = r->srv;
    MDB_txn *txn;
    Mayfly__Cmd__LeaseRecord *rec = NULL;
    int rc = mf_srv_read_begin(s, &txn);
    if (!rc) {
        rc = mf_lease_get(txn, mf_fsm_state(s->fsm), r->seq, &rec);
        mf_srv_read_end(s, txn);
    }
    if (rc || rec->state != MAYFLY__CMD__LEASE_STATE__LEASE_ACTIVE || !rec->credential.len) {
        mf_lease_free(rec);
        return mf_api_reply_error(r, MF_EUNKNOWN, "an earlier attempt of this request has not "
                                                  "finished issuing; its lease will expire");
    }
    char id[MF_LEASE_ID_MAX];
    format_creds_lease_id(r, id, sizeof(id));
    uint8_t *plain = NULL;
    size_t len = 0;
    rc = mf_barrier_decrypt(s->barrier, id, r->seq, rec->credential.data, rec->credential.len,
                            &plain, &len);
    r->expire_at_ms = rec->expire_at_ms;
    mf_lease_free(rec);
    if (rc)
        return mf_api_reply_error(r, rc, "cannot open the stored credential");
    r->secret_plain = malloc(len + 1);
    if (!r->secret_plain) {
        mf_barrier_wipe_free(plain, len);
        return mf_api_reply_error(r, MF_EINTERNAL, "out of memory");
    }
    if (len)
        memcpy(r->secret_plain, plain, len);
    r->secret_plain[len] = '\0';
    mf_barrier_wipe_free(plain, len);
    Resp resp = MAYFLY__API__RESPONSE__INIT;
    finish_creds_activate(r, NULL, &resp);
}

static void finish_creds_grant(struct req *r, const Result *res_ptr, Resp *resp)
{
    const Result *res = res_ptr;
    (void)resp;
    r->seq = res->seq;
    r->expire_at_ms = res->expire_at_ms;
    if (res->duplicate)
        return answer_retried_creds(r);
    struct mf_mount *m;
    int rc = mf_mounts_get(r->srv, r->pb->creds_issue->mount, &m);
    if (!rc)
        rc = mf_mounts_issue(m, r->pb->creds_issue->role, r->seq, r->expire_at_ms, on_issued, r);
    if (rc) {
        cleanup_failed_issue(r->srv, r->seq);
        mf_api_reply_error(r, MF_EUNAVAIL, "engine unavailable: %s", mf_strerror(rc));
    }
}

void mf_op_creds_issue(struct req *r)
{
    struct mf_server *s = r->srv;
    const Mayfly__Api__CredsIssueRequest *q = r->pb->creds_issue;
    struct mf_mount *m;
    int rc = mf_mounts_get(s, q->mount, &m);
    if (rc)
        return mf_api_reply_error(r, MF_ENOTFOUND, "no secrets engine is mounted at '%s'",
                                  q->mount);
    uint64_t def = 0, max = 0;
    if (!mf_mounts_role_ttl(m, q->role, &def, &max))
        return mf_api_reply_error(r, MF_ENOTFOUND, "no role '%s' at '%s'", q->role, q->mount);
    if (!mf_quota_rate_take(r, q->mount, q->role))
        return;
    struct mf_lease_ttl_inputs in = {
        .requested_ttl_ms = q->ttl_ms,
        .role_default_ttl_ms = def,
        .role_max_ttl_ms = max,
        .policy_max_ttl_ms = r->policy_max_ttl_ms,
        .cluster_default_ttl_ms = s->cfg->default_lease_ttl_ms,
        .cluster_max_ttl_ms = s->cfg->max_lease_ttl_ms,
    };
    uint64_t ttl, cap;
    mf_lease_ttl_clamp(&in, &ttl, &cap);
    Mayfly__Cmd__LeaseGrant lg = MAYFLY__CMD__LEASE_GRANT__INIT;
    lg.seq = mf_propose_next_index(s->prop);
    lg.mount = (char *)q->mount;
    lg.name = (char *)q->role;
    lg.ttl_ms = ttl;
    lg.max_ttl_ms = cap;
    lg.state = MAYFLY__CMD__LEASE_STATE__LEASE_ISSUING;
    lg.engine = (char *)q->mount;
    lg.owner_token_hash.data = r->token_hash;
    lg.owner_token_hash.len = 32;
    Cmd cmd = MAYFLY__CMD__COMMAND__INIT;
    cmd.op_case = MAYFLY__CMD__COMMAND__OP_LEASE_GRANT;
    cmd.lease_grant = &lg;
    mf_handler_propose(r, &cmd, finish_creds_grant);
}

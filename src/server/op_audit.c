/* Audit device operations (op_audit.h). */
#include "server/op_audit.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "audit/chain.h"
#include "audit/record.h"
#include "common/env.h"
#include "common/err.h"
#include "server/audit_anchor.h"
#include "server/auditlog.h"
#include "server/records.h"
#include "store/kv.h"

#define DEVICE_PATH_MAX 1024

static bool name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > MF_AUDITLOG_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(name[i] >= 'a' && name[i] <= 'z') && !(name[i] >= 'A' && name[i] <= 'Z') &&
            !(name[i] >= '0' && name[i] <= '9') && name[i] != '-' && name[i] != '_')
            return false;
    return true;
}

static void device_path(const char *name, char *out, size_t len)
{
    snprintf(out, len, "%s%s", MF_AUDITLOG_DEVICES_PREFIX, name);
}

/* Proposes the device record (the second command when the key came first). */
static void put_device(struct req *r)
{
    const Mayfly__Api__AuditEnableRequest *q = r->pb->audit_enable;
    char path[MF_AUDITLOG_NAME_MAX + 64];
    device_path(q->name, path, sizeof(path));
    json_t *obj = json_pack("{s:s, s:s}", "type", q->type, "path", q->path);
    char *text = obj ? json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(obj);
    if (!text)
        return mf_api_reply_error(r, MF_EINTERNAL, "out of memory");
    Mayfly__Cmd__KvPut m = MAYFLY__CMD__KV_PUT__INIT;
    m.path = path;
    mf_handler_propose_put(r, &m, text, NULL);
}

static void finish_key(struct req *r, const Result *res, Resp *resp)
{
    (void)res;
    (void)resp;
    r->rid_suffix = 1; /* the second command of this request */
    put_device(r);
}

/* The cluster's audit key, made once: CAS 0, so two leaders' first enables
 * cannot both write one (the loser is answered CAS_MISMATCH and retries). */
static void put_key(struct req *r)
{
    uint8_t key[MF_AUDIT_KEY_BYTES];
    char hex[2 * MF_AUDIT_KEY_BYTES + 1];
    if (mf_rand_bytes(key, sizeof(key)))
        return mf_api_reply_error(r, MF_EINTERNAL, "random source failed");
    for (size_t i = 0; i < sizeof(key); i++)
        snprintf(hex + 2 * i, 3, "%02x", key[i]);
    OPENSSL_cleanse(key, sizeof(key));
    json_t *obj = json_pack("{s:s}", "key", hex);
    OPENSSL_cleanse(hex, sizeof(hex));
    char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
    if (!text)
        return mf_api_reply_error(r, MF_EINTERNAL, "out of memory");
    Mayfly__Cmd__KvPut m = MAYFLY__CMD__KV_PUT__INIT;
    m.path = MF_AUDITLOG_KEY_PATH;
    m.has_cas = true;
    m.cas = 0;
    mf_handler_propose_put(r, &m, text, finish_key);
}

void mf_op_audit_enable(struct req *r)
{
    const Mayfly__Api__AuditEnableRequest *q = r->pb->audit_enable;
    if (!name_valid(q->name))
        return mf_api_reply_error(r, MF_EINVAL,
                                  "an audit device name is 1-%d letters, digits, - or _",
                                  MF_AUDITLOG_NAME_MAX);
    if (strcmp(q->type, "file") != 0)
        return mf_api_reply_error(r, MF_EINVAL, "audit device type must be 'file'");
    if (q->path[0] != '/' || strlen(q->path) > DEVICE_PATH_MAX)
        return mf_api_reply_error(r, MF_EINVAL,
                                  "an audit file path is absolute and at most %d bytes",
                                  DEVICE_PATH_MAX);
    json_t *key = NULL;
    int rc = mf_records_read(r->srv, MF_AUDITLOG_KEY_PATH, &key);
    json_decref(key);
    if (rc == MF_ENOTFOUND)
        return put_key(r);
    if (rc)
        return mf_api_reply_error(r, rc, "cannot read the audit key: %s", mf_strerror(rc));
    put_device(r);
}

void mf_op_audit_disable(struct req *r)
{
    const char *name = r->pb->audit_disable->name;
    if (!name_valid(name))
        return mf_api_reply_error(r, MF_EINVAL, "no audit device named '%s'", "(invalid)");
    char path[MF_AUDITLOG_NAME_MAX + 64];
    device_path(name, path, sizeof(path));
    json_t *obj = NULL;
    int rc = mf_records_read(r->srv, path, &obj);
    json_decref(obj);
    if (rc == MF_ENOTFOUND)
        return mf_api_reply_error(r, MF_ENOTFOUND, "no audit device named '%s'", name);
    if (rc)
        return mf_api_reply_error(r, rc, "cannot read the device: %s", mf_strerror(rc));
    Mayfly__Cmd__KvDeleteAll m = MAYFLY__CMD__KV_DELETE_ALL__INIT;
    m.path = path;
    Cmd cmd = MAYFLY__CMD__COMMAND__INIT;
    cmd.op_case = MAYFLY__CMD__COMMAND__OP_KV_DELETE_ALL;
    cmd.kv_delete_all = &m;
    mf_handler_propose(r, &cmd, NULL);
}

void mf_op_audit_list(struct req *r)
{
    struct mf_server *s = r->srv;
    MDB_txn *txn;
    char **paths = NULL;
    size_t n = 0;
    int more = 0;
    int rc = mf_srv_read_begin(s, &txn);
    if (rc)
        return mf_api_reply_error(r, MF_EINTERNAL, "storage: %s", mf_strerror(rc));
    rc = mf_kv_list(txn, mf_fsm_state(s->fsm), MF_AUDITLOG_DEVICES_PREFIX, NULL,
                    MF_AUDITLOG_DEVICES_MAX, &paths, &n, &more);
    mf_srv_read_end(s, txn);
    if (rc)
        return mf_api_reply_error(r, MF_EINTERNAL, "storage: %s", mf_strerror(rc));
    Mayfly__Api__AuditDevice *devs = calloc(n ? n : 1, sizeof(*devs));
    Mayfly__Api__AuditDevice **ptrs = calloc(n ? n : 1, sizeof(*ptrs));
    json_t **objs = calloc(n ? n : 1, sizeof(*objs));
    size_t k = 0;
    for (size_t i = 0; devs && ptrs && objs && i < n; i++) {
        if (mf_records_read(s, paths[i], &objs[k]))
            continue;
        mayfly__api__audit_device__init(&devs[k]);
        devs[k].name = paths[i] + strlen(MF_AUDITLOG_DEVICES_PREFIX);
        devs[k].type = (char *)json_string_value(json_object_get(objs[k], "type"));
        devs[k].path = (char *)json_string_value(json_object_get(objs[k], "path"));
        if (!devs[k].type)
            devs[k].type = "";
        if (!devs[k].path)
            devs[k].path = "";
        ptrs[k] = &devs[k];
        k++;
    }
    if (!devs || !ptrs || !objs) {
        mf_api_reply_error(r, MF_EINTERNAL, "out of memory");
    } else {
        Mayfly__Api__AuditListResponse out = MAYFLY__API__AUDIT_LIST_RESPONSE__INIT;
        Mayfly__Api__ReadInfo ri;
        out.n_devices = k;
        out.devices = ptrs;
        out.read = mf_handler_read_info(r, &ri);
        Resp resp = MAYFLY__API__RESPONSE__INIT;
        resp.result_case = MAYFLY__API__RESPONSE__RESULT_AUDIT_LIST;
        resp.audit_list = &out;
        mf_api_reply(r, &resp);
    }
    for (size_t i = 0; objs && i < k; i++)
        json_decref(objs[i]);
    free(objs);
    free(ptrs);
    free(devs);
    mf_kv_list_free(paths, n);
}

static int key_error(struct req *r, int rc)
{
    if (rc == MF_ENOTFOUND)
        mf_api_reply_error(r, MF_ENOTFOUND, "no audit key yet: enable an audit device first");
    else if (rc == MF_ERATELIMIT)
        mf_api_reply_error(r, rc, "audit hash: at most %d a second on a node; retry",
                           MF_AUDITLOG_HASH_RATE);
    else
        mf_api_reply_error(r, rc == MF_ESEALED ? rc : MF_EINTERNAL, "audit key: %s",
                           mf_strerror(rc));
    return rc;
}

void mf_op_audit_hash(struct req *r)
{
    const char *v = r->pb->audit_hash->value;
    char out[MF_AUDIT_HASH_STR_BYTES];
    int rc = mf_auditlog_hash(r->srv, v, strlen(v), out);
    if (rc) {
        key_error(r, rc);
        return;
    }
    Mayfly__Api__AuditHashResponse h = MAYFLY__API__AUDIT_HASH_RESPONSE__INIT;
    h.hash = out;
    Resp resp = MAYFLY__API__RESPONSE__INIT;
    resp.result_case = MAYFLY__API__RESPONSE__RESULT_AUDIT_HASH;
    resp.audit_hash = &h;
    mf_api_reply(r, &resp);
}

void mf_op_audit_verify_key(struct req *r)
{
    char hex[2 * MF_AUDIT_KEY_BYTES + 1];
    char key_id[MF_AUDIT_KEY_ID_LEN + 1];
    int rc = mf_auditlog_chain_key_hex(r->srv, hex, key_id);
    if (rc) {
        key_error(r, rc);
        return;
    }
    /* The anchors committed for the file (auditlog.h "Anchors"): against
     * them the verifier catches a truncated tail. */
    const char *file_id = r->pb->audit_verify_key->file_id;
    struct mf_audit_anchor_at *an = NULL;
    size_t n = 0;
    if (file_id && file_id[0] && mf_audit_file_id_valid(file_id) &&
        (rc = mf_audit_anchor_list(r->srv, file_id, &an, &n))) {
        OPENSSL_cleanse(hex, sizeof(hex));
        return mf_api_reply_error(r, rc == MF_ESEALED ? rc : MF_EINTERNAL,
                                  "cannot read the audit anchors: %s", mf_strerror(rc));
    }
    Mayfly__Api__AuditVerifyKeyAnchor *pa = calloc(n ? n : 1, sizeof(*pa));
    Mayfly__Api__AuditVerifyKeyAnchor **pp = calloc(n ? n : 1, sizeof(*pp));
    char(*chains)[2 * MF_AUDIT_MAC_BYTES + 1] = calloc(n ? n : 1, sizeof(*chains));
    if (!pa || !pp || !chains) {
        mf_api_reply_error(r, MF_EINTERNAL, "out of memory");
    } else {
        for (size_t i = 0; i < n; i++) {
            mayfly__api__audit_verify_key_anchor__init(&pa[i]);
            for (size_t j = 0; j < MF_AUDIT_MAC_BYTES; j++)
                snprintf(chains[i] + 2 * j, 3, "%02x", an[i].at.chain[j]);
            pa[i].file_id = an[i].at.file_id;
            pa[i].seq = an[i].at.seq;
            pa[i].chain_hex = chains[i];
            pa[i].node = an[i].node;
            pa[i].device = an[i].device;
            pp[i] = &pa[i];
        }
        Mayfly__Api__AuditVerifyKeyResponse k = MAYFLY__API__AUDIT_VERIFY_KEY_RESPONSE__INIT;
        k.chain_key_hex = hex;
        k.key_id = key_id;
        k.n_anchors = n;
        k.anchors = pp;
        Resp resp = MAYFLY__API__RESPONSE__INIT;
        resp.result_case = MAYFLY__API__RESPONSE__RESULT_AUDIT_VERIFY_KEY;
        resp.audit_verify_key = &k;
        mf_api_reply(r, &resp);
    }
    OPENSSL_cleanse(hex, sizeof(hex));
    free(chains);
    free(pp);
    free(pa);
    free(an);
}

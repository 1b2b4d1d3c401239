/* Reserved records and sealed KV writes (records.h). */
#include "server/records.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "common/err.h"
#include "store/kv.h"

int mf_records_read(struct mf_server *s, const char *path, json_t **out)
{
    MDB_txn *txn;
    int rc = mf_srv_read_begin(s, &txn);
    if (rc)
        return rc;
    Mayfly__Cmd__KvVersion *v = NULL;
    uint64_t version = 0;
    rc = mf_kv_get(txn, mf_fsm_state(s->fsm), path, 0, &v, &version);
    mf_srv_read_end(s, txn);
    if (!rc && (v->deleted_ms || v->destroyed))
        rc = MF_ENOTFOUND;
    if (rc) {
        mf_kv_version_free(v);
        return rc;
    }
    uint8_t *plain = NULL;
    size_t len = 0;
    rc = mf_barrier_decrypt(s->barrier, path, v->write_id, v->value.data, v->value.len, &plain,
                            &len);
    mf_kv_version_free(v);
    if (rc)
        return rc;
    json_error_t je;
    *out = json_loadb((const char *)plain, len, 0, &je);
    mf_barrier_wipe_free(plain, len);
    return *out ? 0 : MF_ECORRUPT;
}

int mf_records_seal_put(struct mf_server *s, Mayfly__Cmd__KvPut *m, const char *plain,
                        uint8_t **ct)
{
    m->write_id = mf_propose_next_index(s->prop);
    size_t ct_len = 0;
    *ct = NULL;
    int rc = mf_barrier_encrypt(s->barrier, m->path, m->write_id, plain, strlen(plain), ct,
                                &ct_len);
    if (rc)
        return rc;
    m->value.data = *ct;
    m->value.len = ct_len;
    return 0;
}

int mf_records_put(struct mf_server *s, const char *path, json_t *obj, mf_propose_cb cb,
                   void *arg)
{
    char *text = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
    if (!text)
        return -ENOMEM;
    Mayfly__Cmd__KvPut m = MAYFLY__CMD__KV_PUT__INIT;
    m.path = (char *)path;
    uint8_t *ct = NULL;
    int rc = mf_records_seal_put(s, &m, text, &ct);
    OPENSSL_cleanse(text, strlen(text));
    free(text);
    if (!rc) {
        Mayfly__Cmd__Command cmd = MAYFLY__CMD__COMMAND__INIT;
        cmd.op_case = MAYFLY__CMD__COMMAND__OP_KV_PUT;
        cmd.kv_put = &m;
        rc = mf_propose(s->prop, &cmd, cb, arg);
    }
    free(ct);
    return rc;
}

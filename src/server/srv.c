/* The server's base (srv.h): state reads, the keyring, auto-unseal. */
#include "server/srv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/log.h"

#define LOG_MOD "server"

int mf_srv_read_begin(struct mf_server *s, MDB_txn **txn)
{
    pthread_rwlock_rdlock(&s->state_lock);
    int rc = mf_state_read_begin(mf_fsm_state(s->fsm), txn);
    if (rc)
        pthread_rwlock_unlock(&s->state_lock);
    return rc;
}

void mf_srv_read_end(struct mf_server *s, MDB_txn *txn)
{
    mf_state_read_end(txn);
    pthread_rwlock_unlock(&s->state_lock);
}

int mf_srv_keyring_blob(struct mf_server *s, uint8_t **blob, size_t *len)
{
    struct mf_state *st = mf_fsm_state(s->fsm);
    MDB_txn *txn;
    int rc = mf_srv_read_begin(s, &txn);
    if (rc)
        return rc;
    const uint8_t *data = NULL;
    size_t dlen = 0;
    rc = mf_state_keyring(txn, st, &data, &dlen);
    if (!rc) {
        *blob = malloc(dlen ? dlen : 1);
        if (*blob) {
            if (dlen)
                memcpy(*blob, data, dlen);
            *len = dlen;
        } else {
            rc = -ENOMEM;
        }
    }
    mf_srv_read_end(s, txn);
    return rc;
}

bool mf_srv_initialized(struct mf_server *s)
{
    uint8_t *blob = NULL;
    size_t len = 0;
    int rc = mf_srv_keyring_blob(s, &blob, &len);
    free(blob);
    return rc == 0 && len > 0;
}

void mf_srv_try_auto_unseal(struct mf_server *s)
{
    if (!s->cfg->auto_unseal_key_file || !mf_barrier_sealed(s->barrier))
        return;
    uint8_t *blob = NULL;
    size_t len = 0;
    if (mf_srv_keyring_blob(s, &blob, &len) || len == 0) {
        free(blob);
        return; /* not initialised yet */
    }
    char err[MF_SEAL_ERR_LEN] = "";
    int rc = mf_seal_unseal_keyfile(s->seal, s->cfg->auto_unseal_key_file, blob, len, err,
                                    sizeof(err));
    free(blob);
    if (rc)
        MF_ERROR(LOG_MOD, "auto-unseal from %s failed: %s", s->cfg->auto_unseal_key_file,
                 err[0] ? err : mf_strerror(rc));
    else
        MF_INFO(LOG_MOD, "unsealed from the key file");
}

bool mf_srv_reserved_path(const char *path)
{
    return strncmp(path, MF_SRV_RESERVED_PREFIX, strlen(MF_SRV_RESERVED_PREFIX)) == 0;
}

void mf_srv_handle_released(struct mf_server *s)
{
    if (--s->handles_open == 0)
        free(s);
}

void mf_srv_handle_closed(uv_handle_t *h)
{
    mf_srv_handle_released(h->data);
}

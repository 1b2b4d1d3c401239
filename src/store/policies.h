/* Policies in the state database: named opaque blobs (the policy language is
 * the auth issue's business), put and deleted by replicated commands
 * (PolicyPut, PolicyDelete; see apply.h). */
#ifndef MF_STORE_POLICIES_H
#define MF_STORE_POLICIES_H

#include <stddef.h>
#include <stdint.h>

#include "store/state.h"

#define MF_POLICY_NAME_MAX 128         /* bytes */
#define MF_POLICY_BODY_MAX (256 * 1024) /* bytes */

/* The body of policy `name`: *body points into the map, valid until the
 * transaction ends. MF_ENOTFOUND if none. */
int mf_policy_get(MDB_txn *txn, struct mf_state *st, const char *name, const uint8_t **body,
                  size_t *len);

/* Calls cb for every stored policy in name order (body valid during the
 * call only). A nonzero return from cb stops the walk and is returned.
 * @return 0; cb's value; MF_ESTORAGE. */
typedef int (*mf_policy_each_cb)(void *arg, const char *name, const uint8_t *body, size_t len);
int mf_policy_each(MDB_txn *txn, struct mf_state *st, mf_policy_each_cb cb, void *arg);

#endif

/* Lease operations and reads.
 *
 * Threads: loop thread. */
#ifndef MF_SERVER_OP_LEASES_H
#define MF_SERVER_OP_LEASES_H

#include "server/handler.h"

/* Capability and policy path (dispatch.h `describe`). */
int mf_op_lease_grant_authz(struct req *r, unsigned *cap, char *path, size_t len);
int mf_op_lease_authz(struct req *r, unsigned *cap, char *path, size_t len);

void mf_op_lease_grant(struct req *r);
void mf_op_lease_renew(struct req *r);
void mf_op_lease_revoke(struct req *r);
void mf_op_lease_lookup(struct req *r);
void mf_op_lease_list(struct req *r);

#endif

/* Lease operations and reads.
 *
 * Threads: loop thread. */
#ifndef MF_SERVER_OP_LEASES_H
#define MF_SERVER_OP_LEASES_H

#include "server/handler.h"

void mf_op_lease_grant(struct req *r);
void mf_op_lease_renew(struct req *r);
void mf_op_lease_revoke(struct req *r);
void mf_op_lease_lookup(struct req *r);
void mf_op_lease_list(struct req *r);

#endif

/* Secrets engine operations and the two-phase credential issue.
 *
 * Threads: loop thread. */
#ifndef MF_SERVER_OP_ENGINES_H
#define MF_SERVER_OP_ENGINES_H

#include "server/handler.h"

void mf_op_engine_enable(struct req *r);
void mf_op_engine_role_put(struct req *r);
void mf_op_engine_rotate_root(struct req *r);
void mf_op_engine_crl(struct req *r);
void mf_op_engine_list(struct req *r);
void mf_op_creds_issue(struct req *r);

#endif

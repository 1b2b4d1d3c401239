/* The cluster's life: init, unseal, seal, status, and dev mode's init.
 *
 * Threads: loop thread. */
#ifndef MF_SERVER_OP_SYS_H
#define MF_SERVER_OP_SYS_H

#include "server/handler.h"

void mf_op_init(struct req *r);
void mf_op_unseal(struct req *r);
void mf_op_seal(struct req *r);
void mf_op_status(struct req *r);
/* Dev mode, on becoming leader: initialise with the key file and create the
 * root token, handed to s->ready_cb. */
void mf_op_dev_init(struct mf_server *s);

#endif

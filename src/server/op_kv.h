/* KV operations and reads (guarantee 4 on lease-bound values).
 *
 * Threads: loop thread. */
#ifndef MF_SERVER_OP_KV_H
#define MF_SERVER_OP_KV_H

#include "server/handler.h"

/* Capability and policy path (dispatch.h `describe`). */
int mf_op_kv_put_authz(struct req *r, unsigned *cap, char *path, size_t len);
int mf_op_kv_versions_authz(struct req *r, unsigned *cap, char *path, size_t len);

void mf_op_kv_put(struct req *r);
void mf_op_kv_versions(struct req *r);
void mf_op_kv_metadata_put(struct req *r);
void mf_op_kv_get(struct req *r);
void mf_op_kv_list(struct req *r);
void mf_op_kv_metadata_get(struct req *r);

#endif

/* Audit device operations (../shared/CLI.md "mayfly audit"): enable,
 * disable, list, hash, and the chain key for `audit verify`.
 *
 * enable and disable write the reserved records auditlog.h describes (enable
 * makes the cluster's audit key first when none exists); every node opens or
 * closes its own file when the record applies. hash answers the HMAC a record
 * holds for a value; verify-key answers the derived chain key (never the
 * audit key), which lets a verifier check a file without being able to HMAC
 * any secret.
 *
 * Threads: loop thread. */
#ifndef MF_SERVER_OP_AUDIT_H
#define MF_SERVER_OP_AUDIT_H

#include "server/handler.h"

void mf_op_audit_enable(struct req *r);     /* leader */
void mf_op_audit_disable(struct req *r);    /* leader */
void mf_op_audit_list(struct req *r);       /* read */
void mf_op_audit_hash(struct req *r);       /* read */
void mf_op_audit_verify_key(struct req *r); /* read */

#endif

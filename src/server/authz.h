/* Authorization on this node: the compiled policies of the replicated state,
 * and the decision for one request (../shared/CLI.md "How a policy
 * decides"; the pure decision is src/auth/policy.h).
 *
 * The policy set is immutable and rebuilt from the state database when a
 * PolicyPut or PolicyDelete applies (and after a snapshot install), on the
 * loop thread, where every decision runs: a decision takes no lock and reads
 * no disk.
 *
 * A request's identity is its token (r->token, set by authentication): its
 * policies (plus `default`, unless the token was made without it) and its
 * metadata (claims for conditions). Its context is the client's address as
 * seen by the node it reached and this node's clock.
 *
 * Threads: loop thread. */
#ifndef MF_SERVER_AUTHZ_H
#define MF_SERVER_AUTHZ_H

#include <stdbool.h>
#include <stddef.h>

#include "auth/policy.h"
#include "server/api.h"

/* Builds the set from the state database. @return 0; -ENOMEM; storage errors
 * (a stored policy that no longer parses is logged and left out: deny). */
int mf_authz_init(struct mf_server *s);
void mf_authz_free(struct mf_server *s);
/* The state's policies changed (a policy command applied, a snapshot was
 * installed): rebuild. */
void mf_authz_reload(struct mf_server *s);
/* The current set (borrowed: valid until the next reload; take a reference
 * to keep it). */
const struct mf_policy_set *mf_authz_set(struct mf_server *s);

/* Decides whether r's token may use `cap` (one MF_CAP_ bit) on `path`.
 * @return 0 and *out; -ENOMEM. out->policy and out->pattern are valid until
 * the next reload. */
int mf_authz_decide(struct req *r, unsigned cap, const char *path,
                    struct mf_authz_decision *out);
/* Shorthand: is it allowed? */
bool mf_authz_allows(struct req *r, unsigned cap, const char *path);

/* Decides with named policies and an explicit context instead of a token's
 * (policy check). The same rules, the same set. */
int mf_authz_decide_with(struct mf_server *s, const char *const *policies, size_t n,
                         const struct mf_authz_request *req, const struct mf_authz_ctx *ctx,
                         struct mf_authz_decision *out);

#endif

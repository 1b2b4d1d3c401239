/* The dispatcher: one table of every client operation, and the route each
 * request takes (../shared/DESIGN.md "Authorization").
 *
 * A row says where the operation runs (on this node, on the leader, or as a
 * read on any node after a ReadIndex barrier), whether it needs a token,
 * whether it runs while the node is sealed, and the capability and policy
 * path it needs (../shared/CLI.md "Policy paths"; the authorization issue
 * enforces them). Reads may be linearizable (the barrier) or stale (none).
 *
 * Threads: loop thread. */
#ifndef MF_SERVER_DISPATCH_H
#define MF_SERVER_DISPATCH_H

#include <stdbool.h>
#include <stddef.h>

#include "server/api.h"

#define MF_DISPATCH_PATH_MAX 4200 /* a policy path: a KV path (4,096) and its prefix */

enum mf_where {
    MF_WHERE_HERE,   /* on the node the client reached (status, unseal, seal) */
    MF_WHERE_LEADER, /* writes and engine calls: a follower forwards them */
    MF_WHERE_READ,   /* reads: any node, after a read barrier unless stale */
};

struct mf_op_def {
    Mayfly__Api__Request__OpCase op_case;
    const char *name;         /* for logs and audit: "kv.put" */
    void (*run)(struct req *r);
    enum mf_where where;
    bool token;               /* needs a valid token */
    bool sealed_ok;           /* served while this node is sealed */
    /* What a policy must grant (CLI.md "Policy paths"): the capability, and
     * the path with {field} standing for a string field of the operation's
     * message. "" for both: no policy applies (no token, shares instead). */
    const char *capability;
    const char *policy_path;
    /* For operations whose capability or path depends on the request or the
     * state (create or update, the caller's own lease or token): writes the
     * capability (one MF_CAP_ bit) and the path; or returns an error, which
     * the dispatcher answers. NULL: the capability and path above, expanded. */
    int (*describe)(struct req *r, unsigned *cap, char *path, size_t len);
};

/* The capability and policy path r needs under row d (the row's describe,
 * or its template expanded with r's fields). @return 0; MF_EINVAL (a
 * template names no string field); MF_ETOOLARGE (path too long). */
int mf_dispatch_describe(struct req *r, const struct mf_op_def *d, unsigned *cap, char *path,
                         size_t len);

/* What to do with a request for `d` here and now. */
enum mf_route {
    MF_ROUTE_RUN,        /* run it on this node */
    MF_ROUTE_BARRIER,    /* wait for a read index, then run it */
    MF_ROUTE_FORWARD,    /* send it to the leader */
    MF_ROUTE_NOT_LEADER, /* refuse: forwarded to a node that no longer leads */
};

/* Pure: the route for `d` on a node that leads or not, for a request that
 * came from a peer (forwarded) or a client, read stale or not. */
enum mf_route mf_dispatch_route(const struct mf_op_def *d, bool leading, bool from_peer,
                                bool stale);

/* The row of op_case, or NULL. */
const struct mf_op_def *mf_dispatch_find(Mayfly__Api__Request__OpCase op_case);
/* The whole table (for tests and docs). */
const struct mf_op_def *mf_dispatch_table(size_t *n);

/* Pure: the checks every request passes before anything else (enum values
 * this server knows, an operation named, a row for it); *d gets the row.
 * @return 0; MF_EINVAL with *why (a static string). */
int mf_dispatch_check(const Mayfly__Api__Request *q, const struct mf_op_def **d,
                      const char **why);

/* Every request from api.c enters here and is answered exactly once. */
void mf_dispatch(struct req *r);

#endif

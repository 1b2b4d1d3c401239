/* The client API's transport: TLS connections, request framing, answers,
 * and forwarding of requests from a follower to the leader over the peer
 * link.
 *
 * A connection may pipeline requests; answers carry the request's id and
 * may come back in any order. At most 1,024 requests run per connection:
 * past that the connection stops reading (backpressure). A frame that is not
 * a valid Request gets an INVALID_ARGUMENT answer (id 0) and the connection
 * is closed. Every request, from a client or forwarded by a peer, goes to the
 * on_request callback given to mf_api_listen (the dispatcher), which answers
 * it exactly once with mf_api_reply or mf_api_reply_error, or forwards it.
 *
 * Ownership: a struct req belongs to the server until it is answered; the
 * answer frees it (with its decoded Request and op_state).
 * Threads: loop thread. */
#ifndef MF_SERVER_API_H
#define MF_SERVER_API_H

#include <stdbool.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "command.pb-c.h"
#include "mayfly.pb-c.h"
#include "server/srv.h"

struct client_conn;

/* One request being served, from a client connection or forwarded by a peer. */
struct req {
    struct mf_server *srv;
    Mayfly__Api__Request *pb;
    struct client_conn *cc;   /* client origin */
    uint64_t peer;            /* peer origin (forwarded): node id, fwd id */
    uint64_t fwd_id;
    uint8_t token_hash[32];   /* of the caller's token, once authenticated */
    bool has_token;
    Mayfly__Cmd__TokenRecord *token; /* the caller's token, once authenticated */
    char client_addr[64];     /* "ip:port" as the node the client reached saw it */
    X509 *fwd_cert;           /* forwarded cert login: the client's certificate */
    STACK_OF(X509) *fwd_chain; /* and its intermediates (may be NULL) */
    uint8_t cred_hash[32];    /* token-less ops: the credential presented, hashed */
    bool has_cred_hash;       /* (idempotency caller; handler.h) */
    bool create_only;         /* kv put allowed by `create` alone: CAS 0 at apply */
    uint64_t policy_max_ttl_ms; /* the deciding rule's max_ttl (0: none) */
    /* What an operation's answer needs beyond the fsm's Result. */
    uint64_t seq;
    uint64_t write_id;
    uint8_t rid_suffix;       /* appended to the request id of a chained command */
    uint64_t expire_at_ms;    /* creds issue: the lease's expiry */
    uint64_t count_acc;       /* revoke-prefix: leases moved by earlier commands */
    char *secret_plain;       /* wiped and freed with the request */
    void *op_state;           /* an operation's own state (init: the shares) */
    void (*op_state_free)(void *op_state);
    const char *audit_op;     /* audit: the operation's name, once decided */
    char *audit_path;         /* audit: its policy path (malloc'd; freed with r) */
    uint64_t audit_rid;       /* audit: the record number, 0 before the first */
    uint64_t audit_rid_node;  /* the node that numbered it (the entry node); 0: this one */
    uint8_t *answer;          /* audit: the packed answer waiting for its record */
    size_t answer_len;
    bool audit_withhold;      /* audit: its answer is withheld unless its
                               * records' batch is durable */
    struct req *next_fwd;     /* forwarded-out list (follower side) */
    uint64_t fwd_deadline_ms;
    uint64_t start_us;        /* reqstats.h: when it arrived (mf_now_mono_us_figures) */
};

typedef void (*mf_api_request_cb)(struct req *r);

/* Starts the client listener (s->cfg->listen). @return 0; listen errors. */
int mf_api_listen(struct mf_server *s, mf_api_request_cb on_request);
/* The token check (mf_tokens_authenticate) run on the head of a request
 * over the pre-authentication frame cap, before the rest is buffered (api.c
 * sits below op_tokens, so the server hands it down). Until it is set such
 * requests are refused UNAUTHENTICATED. */
void mf_api_set_authenticator(struct mf_server *s, int (*authenticate)(struct req *r));
/* Stops listening; requests forwarded and not answered fail UNAVAILABLE. */
void mf_api_close(struct mf_server *s);
/* The bound client address ("ip:port"). */
const char *mf_api_client_addr(const struct mf_server *s);

/* The certificate the client presented on r's connection and its
 * intermediates (*chain may be NULL), both borrowed while r is being served;
 * NULL for a client that presented none. For a forwarded cert login, the
 * certificate the client presented to the entry node, carried in the
 * peer-only envelope (NULL for any other forwarded request). The TLS layer
 * accepted it without verifying it: the cert auth method does. */
X509 *mf_api_client_cert(const struct req *r, STACK_OF(X509) **chain);

/* Records the credential a token-less request presents (kind: "jwt",
 * "cert", "share"; cred: the JWT, the certificate's DER, the share) as
 * r->cred_hash = SHA-256("mayfly-cred-1" kind NUL cred), so its idempotency
 * entry belongs to whoever holds that credential (handler.h), not to a
 * client address. @return 0; -ENOMEM. */
int mf_api_set_credential(struct req *r, const char *kind, const void *cred, size_t len);

/* Answers r and frees it. */
void mf_api_reply(struct req *r, Mayfly__Api__Response *resp);
void mf_api_reply_error(struct req *r, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Follower: send r to the leader; the answer is relayed when it comes.
 * The request travels in a ForwardEnvelope (proto/forward.proto) that only a
 * peer can set: the client's address, this node's id and, for a cert login,
 * the client's certificate and intermediates (DER).
 * @return 0; MF_EUNAVAIL (no leader known); -ENOMEM; the node's send errors. */
int mf_api_forward(struct mf_server *s, struct req *r);
/* A peer message with an application tag (forwarded request or answer). */
void mf_api_peer_message(struct mf_server *s, uint64_t from, uint8_t tag, const uint8_t *data,
                         size_t len);
/* Housekeeping: forwarded requests past their deadline fail UNKNOWN_OUTCOME. */
void mf_api_expire_forwards(struct mf_server *s);
/* All forwarded requests fail with `code` (a fatal error, stop). */
void mf_api_fail_forwards(struct mf_server *s, int code);

#endif

/* Auth methods (op_auth.h): auth enable, auth role put, auth list, login. */
#include "server/op_auth.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "auth/certauth.h"
#include "auth/ident.h"
#include "auth/jwt.h"
#include "common/env.h"
#include "common/err.h"
#include "common/log.h"
#include "server/op_tokens.h"
#include "server/records.h"
#include "store/kv.h"

#define LOG_MOD "auth"
#define NAME_BYTES_MAX 64
#define ERR_LEN 512
#define TOKEN_TTL_DEFAULT_MS (UINT64_C(768) * 3600 * 1000) /* then capped */
#define ROLE_INFIX "/role/"

/* ---- names and records ---- */

/* A mount or role name: 1..64 of [a-z0-9_-] (no '/': a mount's records and
 * its roles' must never collide). */
static bool valid_name(const char *n)
{
    size_t len = strlen(n);
    if (len == 0 || len > NAME_BYTES_MAX)
        return false;
    for (const char *p = n; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'))
            return false;
    return true;
}

static bool known_type(const char *t)
{
    return strcmp(t, "jwt") == 0 || strcmp(t, "cert") == 0;
}

static void mount_path(char *out, size_t len, const char *mount)
{
    snprintf(out, len, MF_OP_AUTH_PREFIX "%s", mount);
}

static void role_path(char *out, size_t len, const char *mount, const char *role)
{
    snprintf(out, len, MF_OP_AUTH_PREFIX "%s" ROLE_INFIX "%s", mount, role);
}

/* The peer CA's PEM text (the node's tls_ca_file), malloc'd, or NULL with
 * err set. A cert mount must never trust it for clients. */
static char *peer_ca_pem(struct mf_server *s, char *err, size_t err_len)
{
    const char *path = s->cfg->tls_ca_file;
    FILE *f = path ? fopen(path, "rb") : NULL;
    if (!f) {
        snprintf(err, err_len, "cannot read the peer CA (tls_ca_file)");
        return NULL;
    }
    char *buf = malloc(MF_CERTAUTH_PEM_BYTES_MAX + 1);
    size_t n = buf ? fread(buf, 1, MF_CERTAUTH_PEM_BYTES_MAX + 1, f) : 0;
    fclose(f);
    if (!buf || n > MF_CERTAUTH_PEM_BYTES_MAX) {
        free(buf);
        snprintf(err, err_len, "the peer CA (tls_ca_file) is too large or unreadable");
        return NULL;
    }
    buf[n] = '\0';
    return buf;
}

/* Compiles a mount config of `type` to check it (and throws it away). */
static int check_mount_config(struct mf_server *s, const char *type, const char *config,
                              char *err, size_t err_len)
{
    size_t len = strlen(config);
    if (strcmp(type, "jwt") == 0) {
        struct mf_jwt_mount *m = NULL;
        int rc = mf_jwt_mount_parse(config, len, &m, err, err_len);
        mf_jwt_mount_free(m);
        return rc;
    }
    char *peer = peer_ca_pem(s, err, err_len);
    if (!peer)
        return MF_EINTERNAL;
    struct mf_certauth_mount *m = NULL;
    int rc = mf_certauth_mount_parse(config, len, peer, &m, err, err_len);
    mf_certauth_mount_free(m);
    free(peer);
    return rc;
}

/* The parser's errors as the client's codes. */
static int public_code(int rc)
{
    return rc == MF_EINVAL || rc == MF_ETOOLARGE || rc == MF_EPERM ? rc : MF_EINTERNAL;
}

/* ---- auth enable / role put ---- */

void mf_op_auth_enable(struct req *r)
{
    const Mayfly__Api__AuthEnableRequest *q = r->pb->auth_enable;
    if (!known_type(q->type))
        return mf_api_reply_error(r, MF_EINVAL, "unknown auth method type '%.64s' (jwt, cert)",
                                  q->type);
    if (!valid_name(q->mount))
        return mf_api_reply_error(r, MF_EINVAL, "an auth mount is 1..%d of [a-z0-9_-]",
                                  NAME_BYTES_MAX);
    const char *config = q->config_json[0] ? q->config_json : "{}";
    if (strlen(config) > MF_OP_AUTH_CONFIG_BYTES_MAX)
        return mf_api_reply_error(r, MF_ETOOLARGE, "the config is over %d bytes",
                                  MF_OP_AUTH_CONFIG_BYTES_MAX);
    char err[ERR_LEN] = "";
    int rc = check_mount_config(r->srv, q->type, config, err, sizeof(err));
    if (rc)
        return mf_api_reply_error(r, public_code(rc), "auth %s at '%s': %s", q->type, q->mount,
                                  err[0] ? err : mf_strerror(rc));
    json_t *rec = json_pack("{s:s, s:s}", "type", q->type, "config", config);
    char *text = rec ? json_dumps(rec, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(rec);
    if (!text)
        return mf_api_reply_error(r, MF_EINTERNAL, "out of memory");
    char path[MF_KV_PATH_MAX];
    mount_path(path, sizeof(path), q->mount);
    Mayfly__Cmd__KvPut m = MAYFLY__CMD__KV_PUT__INIT;
    m.path = path;
    mf_handler_propose_put(r, &m, text, NULL);
}

/* The mount record's type ("jwt"/"cert", malloc'd) and config (JSON text,
 * malloc'd; may be NULL). @return 0; MF_ENOTFOUND; MF_ECORRUPT; read errors. */
static int read_mount(struct mf_server *s, const char *mount, char **type, char **config)
{
    char path[MF_KV_PATH_MAX];
    mount_path(path, sizeof(path), mount);
    json_t *rec = NULL;
    int rc = mf_records_read(s, path, &rec);
    if (rc)
        return rc;
    const char *t = json_string_value(json_object_get(rec, "type"));
    const char *c = json_string_value(json_object_get(rec, "config"));
    *type = t ? strdup(t) : NULL;
    *config = c ? strdup(c) : NULL;
    json_decref(rec);
    if (!t || !c || !*type || !*config) {
        free(*type);
        if (*config)
            OPENSSL_cleanse(*config, strlen(*config));
        free(*config);
        *type = *config = NULL;
        return t && c ? -ENOMEM : MF_ECORRUPT;
    }
    return 0;
}

static void free_config(char *config)
{
    if (config)
        OPENSSL_cleanse(config, strlen(config));
    free(config);
}

/* Compiles a role of `type` to check it. */
static int check_role(const char *type, const char *json, char *err, size_t err_len)
{
    size_t len = strlen(json);
    if (strcmp(type, "jwt") == 0) {
        struct mf_jwt_role *ro = NULL;
        int rc = mf_jwt_role_parse(json, len, &ro, err, err_len);
        mf_jwt_role_free(ro);
        return rc;
    }
    struct mf_certauth_role *ro = NULL;
    int rc = mf_certauth_role_parse(json, len, &ro, err, err_len);
    mf_certauth_role_free(ro);
    return rc;
}

void mf_op_auth_role_put(struct req *r)
{
    const Mayfly__Api__AuthRolePutRequest *q = r->pb->auth_role_put;
    if (!valid_name(q->mount) || !valid_name(q->role))
        return mf_api_reply_error(r, MF_EINVAL, "a mount or role name is 1..%d of [a-z0-9_-]",
                                  NAME_BYTES_MAX);
    if (strlen(q->role_json) > MF_OP_AUTH_CONFIG_BYTES_MAX)
        return mf_api_reply_error(r, MF_ETOOLARGE, "the role is over %d bytes",
                                  MF_OP_AUTH_CONFIG_BYTES_MAX);
    char *type = NULL, *config = NULL;
    int rc = read_mount(r->srv, q->mount, &type, &config);
    free_config(config);
    if (rc == MF_ENOTFOUND)
        return mf_api_reply_error(r, MF_ENOTFOUND, "no auth method is mounted at '%s'",
                                  q->mount);
    if (rc)
        return mf_api_reply_error(r, MF_EINTERNAL, "auth mount '%s': %s", q->mount,
                                  mf_strerror(rc));
    char err[ERR_LEN] = "";
    rc = check_role(type, q->role_json, err, sizeof(err));
    free(type);
    if (rc)
        return mf_api_reply_error(r, public_code(rc), "role '%s' at '%s': %s", q->role, q->mount,
                                  err[0] ? err : mf_strerror(rc));
    /* Stored as the canonical text of the object the parser accepted. */
    json_error_t je;
    json_t *obj = json_loads(q->role_json, JSON_REJECT_DUPLICATES, &je);
    char *text = obj ? json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(obj);
    if (!text)
        return mf_api_reply_error(r, MF_EINTERNAL, "out of memory");
    char path[MF_KV_PATH_MAX];
    role_path(path, sizeof(path), q->mount, q->role);
    Mayfly__Cmd__KvPut m = MAYFLY__CMD__KV_PUT__INIT;
    m.path = path;
    mf_handler_propose_put(r, &m, text, NULL);
}

/* ---- auth list ---- */

struct list_out {
    Mayfly__Api__AuthMountInfo *infos;
    Mayfly__Api__AuthMountInfo **ptrs;
    char **types;
    char ***roles;
    size_t n;
};

static void list_out_free(struct list_out *o)
{
    for (size_t i = 0; i < o->n; i++) {
        free(o->types[i]);
        free(o->roles[i]);
    }
    free(o->infos);
    free(o->ptrs);
    free(o->types);
    free(o->roles);
}

void mf_op_auth_list(struct req *r)
{
    struct mf_server *s = r->srv;
    MDB_txn *txn;
    int rc = mf_srv_read_begin(s, &txn);
    if (rc)
        return mf_api_reply_error(r, rc, "storage: %s", mf_strerror(rc));
    char **paths = NULL;
    size_t n = 0;
    int more = 0;
    rc = mf_kv_list(txn, mf_fsm_state(s->fsm), MF_OP_AUTH_PREFIX, NULL, MF_SRV_LIST_LIMIT_MAX,
                    &paths, &n, &more);
    mf_srv_read_end(s, txn);
    if (rc)
        return mf_api_reply_error(r, rc, "%s", mf_strerror(rc));
    size_t cap = n ? n : 1;
    struct list_out o = {calloc(cap, sizeof(*o.infos)), calloc(cap, sizeof(*o.ptrs)),
                         calloc(cap, sizeof(char *)), calloc(cap, sizeof(char **)), 0};
    bool oom = !o.infos || !o.ptrs || !o.types || !o.roles;
    for (size_t i = 0; i < n && !oom; i++) {
        const char *rest = paths[i] + strlen(MF_OP_AUTH_PREFIX);
        if (strchr(rest, '/'))
            continue; /* a role */
        char *type = NULL, *config = NULL;
        if (read_mount(s, rest, &type, &config))
            continue; /* deleted, or not readable: not a mount to show */
        free_config(config);
        size_t k = o.n++;
        mayfly__api__auth_mount_info__init(&o.infos[k]);
        o.infos[k].mount = (char *)rest;
        o.types[k] = type;
        o.infos[k].type = type;
        o.roles[k] = calloc(n, sizeof(char *));
        oom = !o.roles[k];
        size_t plen = strlen(paths[i]);
        for (size_t x = 0; x < n && !oom; x++)
            if (strncmp(paths[x], paths[i], plen) == 0 &&
                strncmp(paths[x] + plen, ROLE_INFIX, strlen(ROLE_INFIX)) == 0)
                o.roles[k][o.infos[k].n_roles++] = paths[x] + plen + strlen(ROLE_INFIX);
        o.infos[k].roles = o.roles[k];
        o.ptrs[k] = &o.infos[k];
    }
    if (oom) {
        mf_api_reply_error(r, MF_EINTERNAL, "out of memory");
    } else {
        Mayfly__Api__AuthListResponse out = MAYFLY__API__AUTH_LIST_RESPONSE__INIT;
        Mayfly__Api__ReadInfo ri;
        out.n_auth = o.n;
        out.auth = o.ptrs;
        out.read = mf_handler_read_info(r, &ri);
        Resp resp = MAYFLY__API__RESPONSE__INIT;
        resp.result_case = MAYFLY__API__RESPONSE__RESULT_AUTH_LIST;
        resp.auth_list = &out;
        mf_api_reply(r, &resp);
    }
    list_out_free(&o);
    mf_kv_list_free(paths, n);
}

/* ---- login ---- */

/* What the answer needs once the token is applied (r->op_state). */
struct login {
    char **policies;
    size_t n_policies;
    struct mf_ident id;
};

static void login_free(void *p)
{
    struct login *l = p;
    if (!l)
        return;
    mf_ident_strv_free(l->policies, l->n_policies);
    mf_ident_clear(&l->id);
    free(l);
}

static void finish_login(struct req *r, const Result *res, Resp *resp)
{
    struct login *l = r->op_state;
    char *token = NULL, *accessor = NULL;
    int rc = mf_tokens_secret_open(r->srv, res, mf_tokens_write_id(r), &token, &accessor);
    if (rc) {
        free(token);
        free(accessor);
        return mf_api_reply_error(r, MF_EINTERNAL, "cannot open the new token: %s",
                                  mf_strerror(rc));
    }
    Mayfly__Api__LoginResponse__MetadataEntry entries[MF_IDENT_META_MAX];
    Mayfly__Api__LoginResponse__MetadataEntry *eptrs[MF_IDENT_META_MAX];
    for (size_t i = 0; i < l->id.meta_len; i++) {
        mayfly__api__login_response__metadata_entry__init(&entries[i]);
        entries[i].key = l->id.meta[i].key;
        entries[i].value = l->id.meta[i].value;
        eptrs[i] = &entries[i];
    }
    Mayfly__Api__LoginResponse out = MAYFLY__API__LOGIN_RESPONSE__INIT;
    out.token = token;
    out.accessor = accessor;
    out.n_policies = l->n_policies;
    out.policies = l->policies;
    out.ttl_ms = res->ttl_ms;
    out.expire_at_ms = res->expire_at_ms;
    out.n_metadata = l->id.meta_len;
    out.metadata = eptrs;
    resp->result_case = MAYFLY__API__RESPONSE__RESULT_LOGIN;
    resp->login = &out;
    mf_api_reply(r, resp);
    OPENSSL_cleanse(token, strlen(token));
    free(token);
    free(accessor);
}

/* The TTL and renewal cap of a login token: the role's, capped by the
 * cluster's maximum; `limit_ms` (cert: until the leaf's notAfter; 0: none)
 * caps the TTL too. */
static void login_ttls(const struct mf_server *s, const struct mf_ident_token *t,
                       uint64_t limit_ms, uint64_t *ttl_ms, uint64_t *max_ttl_ms)
{
    uint64_t max = s->cfg->max_token_ttl_ms;
    if (t->max_ttl_ms > 0 && (uint64_t)t->max_ttl_ms < max)
        max = (uint64_t)t->max_ttl_ms;
    uint64_t ttl = t->ttl_ms > 0 ? (uint64_t)t->ttl_ms : TOKEN_TTL_DEFAULT_MS;
    if (ttl > max)
        ttl = max;
    if (limit_ms && ttl > limit_ms)
        ttl = limit_ms;
    *ttl_ms = ttl;
    *max_ttl_ms = max;
}

/* Sets metadata `key` the server owns (a claim mapping to the same name is
 * overwritten, so no claim picks it). 0 or MF_ETOOLARGE. */
static int own_meta(struct mf_ident *id, const char *key, const char *value)
{
    for (size_t i = 0; i < id->meta_len; i++)
        if (strcmp(id->meta[i].key, key) == 0) {
            char *v = strdup(value);
            if (!v)
                return -ENOMEM;
            free(id->meta[i].value);
            id->meta[i].value = v;
            return 0;
        }
    return mf_ident_meta_add(id, key, value);
}

/* Creates the token for a verified identity (l: taken over by r). The
 * token's metadata names its auth mount and role: request-rate limits key
 * on them (ratelimit.h), so every token of one role shares a bucket. */
static void issue(struct req *r, struct login *l, const struct mf_ident_token *t,
                  uint64_t limit_ms, const char *mount, const char *role)
{
    struct mf_server *s = r->srv;
    if (own_meta(&l->id, "auth_mount", mount) || own_meta(&l->id, "auth_role", role)) {
        login_free(l);
        return mf_api_reply_error(r, MF_EINTERNAL, "too much metadata for one token");
    }
    l->policies = calloc(t->policies_len ? t->policies_len : 1, sizeof(char *));
    for (size_t i = 0; l->policies && i < t->policies_len; i++) {
        if (!(l->policies[i] = strdup(t->policies[i])))
            break;
        l->n_policies++;
    }
    r->op_state = l;
    r->op_state_free = login_free;
    if (!l->policies || l->n_policies != t->policies_len)
        return mf_api_reply_error(r, MF_EINTERNAL, "out of memory");
    char *keys[MF_IDENT_META_MAX], *values[MF_IDENT_META_MAX];
    for (size_t i = 0; i < l->id.meta_len; i++) {
        keys[i] = l->id.meta[i].key;
        values[i] = l->id.meta[i].value;
    }
    struct mf_token_spec spec = {.policies = l->policies, .n_policies = l->n_policies};
    login_ttls(s, t, limit_ms, &spec.ttl_ms, &spec.max_ttl_ms);
    r->write_id = mf_propose_next_index(s->prop);
    struct mf_token_new tn;
    int rc = mf_tokens_new(s, &spec, mf_tokens_write_id(r), &tn);
    if (rc)
        return mf_api_reply_error(r, rc == MF_ECRYPTO ? MF_EINTERNAL : rc,
                                  "cannot make the token: %s", mf_strerror(rc));
    tn.create.n_meta_keys = tn.create.n_meta_values = l->id.meta_len;
    tn.create.meta_keys = keys;
    tn.create.meta_values = values;
    mf_handler_propose(r, &tn.cmd, finish_login);
    mf_tokens_new_wipe(&tn);
}

/* Refuses a login: the reason's name, never the credential. */
static void refuse(struct req *r, int rc, const char *mount, const char *role, const char *err)
{
    int code = rc == MF_EINVAL ? MF_EINVAL : rc == MF_EPERM || rc == MF_ETOOLARGE ? MF_EPERM
                                                                                   : MF_EINTERNAL;
    MF_INFO(LOG_MOD, "login refused at '%s' role '%s': %s", mount, role, err);
    mf_api_reply_error(r, code, "login refused: %s", err[0] ? err : mf_strerror(rc));
}

static void login_jwt(struct req *r, const char *mount, const char *config, const char *role_json)
{
    const Mayfly__Api__LoginRequest *q = r->pb->login;
    char err[ERR_LEN] = "";
    struct mf_jwt_mount *m = NULL;
    struct mf_jwt_role *ro = NULL;
    struct mf_jwt_token t = {0};
    enum mf_jwt_reason why = MF_JWT_R_OK;
    struct login *l = calloc(1, sizeof(*l));
    if (!l)
        return mf_api_reply_error(r, MF_EINTERNAL, "out of memory");
    int rc = mf_jwt_mount_parse(config, strlen(config), &m, err, sizeof(err));
    if (!rc)
        rc = mf_jwt_role_parse(role_json, strlen(role_json), &ro, err, sizeof(err));
    if (rc) { /* stored after the same parse: a newer rule refuses it */
        MF_ERROR(LOG_MOD, "auth mount '%s' role '%s' does not compile: %s", mount, q->role, err);
        rc = MF_EINTERNAL;
        snprintf(err, sizeof(err), "the mount or role no longer compiles");
    }
    if (!rc)
        rc = mf_jwt_verify(m, q->jwt, strlen(q->jwt), (int64_t)mf_now_wall_ms(), &t, &why, err,
                           sizeof(err));
    if (!rc)
        rc = mf_jwt_role_match(ro, &t, &l->id, &why, err, sizeof(err));
    if (!rc && mf_api_set_credential(r, "jwt", q->jwt, strlen(q->jwt)))
        rc = MF_EINTERNAL; /* a retry is keyed by the JWT, not the address */
    mf_jwt_token_clear(&t);
    if (rc) {
        refuse(r, rc, mount, q->role, err);
        login_free(l);
    } else {
        issue(r, l, mf_jwt_role_token(ro), 0, mount, q->role);
    }
    mf_jwt_role_free(ro);
    mf_jwt_mount_free(m);
}

/* A retried cert login is keyed by the certificate's DER, not the address. */
static int set_cert_credential(struct req *r, X509 *leaf)
{
    unsigned char *der = NULL;
    int n = i2d_X509(leaf, &der);
    int rc = n > 0 ? mf_api_set_credential(r, "cert", der, (size_t)n) : -ENOMEM;
    OPENSSL_free(der);
    return rc ? MF_EINTERNAL : 0;
}

static void login_cert(struct req *r, const char *mount, const char *config,
                       const char *role_json)
{
    const Mayfly__Api__LoginRequest *q = r->pb->login;
    STACK_OF(X509) *chain = NULL;
    X509 *leaf = mf_api_client_cert(r, &chain); /* forwarded: from the envelope */
    if (!leaf)
        return mf_api_reply_error(r, MF_EPERM, "login refused: no client certificate was "
                                               "presented (-client-cert, -client-key)");
    char err[ERR_LEN] = "";
    char *peer = peer_ca_pem(r->srv, err, sizeof(err));
    struct mf_certauth_mount *m = NULL;
    struct mf_certauth_role *ro = NULL;
    struct mf_certauth_cert c = {0};
    enum mf_certauth_reason why = MF_CERTAUTH_R_OK;
    struct login *l = calloc(1, sizeof(*l));
    int rc = peer && l ? 0 : MF_EINTERNAL;
    if (!rc)
        rc = mf_certauth_mount_parse(config, strlen(config), peer, &m, err, sizeof(err));
    if (!rc)
        rc = mf_certauth_role_parse(role_json, strlen(role_json), &ro, err, sizeof(err));
    free(peer);
    if (rc) {
        MF_ERROR(LOG_MOD, "auth mount '%s' role '%s' does not compile: %s", mount, q->role, err);
        rc = MF_EINTERNAL;
        snprintf(err, sizeof(err), "the mount or role no longer compiles");
    }
    int64_t now = (int64_t)mf_now_wall_ms();
    if (!rc)
        rc = mf_certauth_verify(m, leaf, chain, now, &c, &why, err, sizeof(err));
    if (!rc)
        rc = mf_certauth_role_match(ro, &c, &l->id, &why, err, sizeof(err));
    if (!rc)
        rc = set_cert_credential(r, leaf);
    /* A token never outlives the certificate it was issued for. */
    uint64_t limit = !rc && c.not_after_ms > now ? (uint64_t)(c.not_after_ms - now) : 1;
    mf_certauth_cert_clear(&c);
    if (rc) {
        refuse(r, rc, mount, q->role, err);
        login_free(l);
    } else {
        issue(r, l, mf_certauth_role_token(ro), limit, mount, q->role);
    }
    mf_certauth_role_free(ro);
    mf_certauth_mount_free(m);
}

void mf_op_login(struct req *r)
{
    const Mayfly__Api__LoginRequest *q = r->pb->login;
    if (!known_type(q->method))
        return mf_api_reply_error(r, MF_EINVAL, "unknown login method '%.64s' (jwt, cert)",
                                  q->method);
    const char *mount = q->mount[0] ? q->mount : q->method;
    if (!valid_name(mount) || !valid_name(q->role))
        return mf_api_reply_error(r, MF_EINVAL, "a mount or role name is 1..%d of [a-z0-9_-]",
                                  NAME_BYTES_MAX);
    char *type = NULL, *config = NULL;
    int rc = read_mount(r->srv, mount, &type, &config);
    json_t *role = NULL;
    char path[MF_KV_PATH_MAX];
    role_path(path, sizeof(path), mount, q->role);
    if (!rc)
        rc = strcmp(type, q->method) == 0 ? mf_records_read(r->srv, path, &role) : MF_ENOTFOUND;
    char *role_json = role ? json_dumps(role, JSON_COMPACT) : NULL;
    json_decref(role);
    if (rc == MF_ENOTFOUND)
        mf_api_reply_error(r, MF_EPERM, "login refused: no %s role '%s' at mount '%s'",
                           q->method, q->role, mount);
    else if (rc || !role_json)
        mf_api_reply_error(r, MF_EINTERNAL, "auth mount '%s': %s", mount,
                           mf_strerror(rc ? rc : -ENOMEM));
    else if (strcmp(type, "jwt") == 0)
        login_jwt(r, mount, config, role_json);
    else
        login_cert(r, mount, config, role_json);
    free(type);
    free_config(config);
    free(role_json);
}

/* mayfly CLI commands: request builders and JSON renderers, one pair per
 * command of ../shared/CLI.md. The JSON shapes here are the contract scripts
 * depend on: change them only together with CLI.md. */
#include "cli/commands.h"
#include "cli/snapshot.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "audit/file.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "common/config.h"
#include "common/err.h"

/* ---- small helpers ---- */

static int parse_u64(const char *flag, const char *s, uint64_t *out, char *err, size_t err_len)
{
    char *end = NULL;
    errno = 0;
    if (!s || !*s || *s == '-')
        return mf_err_set(err, err_len, MF_EINVAL, "-%s: '%s' is not a number", flag, s ? s : "");
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return mf_err_set(err, err_len, MF_EINVAL, "-%s: '%s' is not a number", flag, s);
    *out = v;
    return 0;
}

static int flag_u64(const struct mf_cli_args *a, const char *flag, uint64_t *out, char *err,
                    size_t err_len)
{
    const char *v = mf_cli_flag(a, flag);
    if (!v)
        return 0;
    return parse_u64(flag, v, out, err, err_len);
}

static int flag_duration(const struct mf_cli_args *a, const char *flag, uint64_t *out_ms,
                         char *err, size_t err_len)
{
    const char *v = mf_cli_flag(a, flag);
    if (!v)
        return 0;
    if (mf_duration_parse_ms(v, out_ms))
        return mf_err_set(err, err_len, MF_EINVAL,
                          "-%s: '%s' is not a duration (write 500ms, 2s, 90m, 1h30m or seconds)",
                          flag, v);
    return 0;
}

static json_t *str_or_null(const char *s)
{
    return (s && *s) ? json_string(s) : json_null();
}

static json_t *read_info_json(const Mayfly__Api__ReadInfo *r)
{
    if (!r)
        return json_null();
    return json_pack("{s:I, s:s, s:I, s:I}", "node", (json_int_t)r->node, "consistency",
                     r->consistency == MAYFLY__API__CONSISTENCY__STALE ? "stale" : "linearizable",
                     "applied_index", (json_int_t)r->applied_index, "lag_entries",
                     (json_int_t)r->lag_entries);
}

const char *mf_cli_lease_state_name(Mayfly__Api__LeaseState s)
{
    switch (s) {
    case MAYFLY__API__LEASE_STATE__ISSUING: return "issuing";
    case MAYFLY__API__LEASE_STATE__ACTIVE: return "active";
    case MAYFLY__API__LEASE_STATE__REVOKING: return "revoking";
    case MAYFLY__API__LEASE_STATE__REVOKED: return "revoked";
    case MAYFLY__API__LEASE_STATE__IRREVOCABLE: return "irrevocable";
    default: return "unknown";
    }
}

Mayfly__Api__LeaseState mf_cli_lease_state_parse(const char *s)
{
    for (int st = MAYFLY__API__LEASE_STATE__ISSUING; st <= MAYFLY__API__LEASE_STATE__IRREVOCABLE;
         st++)
        if (strcmp(s, mf_cli_lease_state_name((Mayfly__Api__LeaseState)st)) == 0)
            return (Mayfly__Api__LeaseState)st;
    return MAYFLY__API__LEASE_STATE__LEASE_STATE_UNSPECIFIED;
}

bool mf_cli_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        unsigned char c = p[i];
        size_t n;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            n = 1, cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            n = 2, cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            n = 3, cp = c & 0x07;
        } else {
            return false;
        }
        if (i + n >= len)
            return false; /* truncated sequence */
        for (size_t k = 1; k <= n; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i + k] & 0x3f);
        }
        /* Overlong forms, surrogates and values past U+10FFFF are invalid. */
        if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
            (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
            return false;
        i += n + 1;
    }
    return true;
}

/* Reads a whole stream into arena memory (NUL-terminated). */
static int slurp(struct mf_cli_arena *ar, FILE *f, const char *what, char **out, size_t *out_len,
                 char *err, size_t err_len)
{
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    if (!buf)
        return -ENOMEM;
    for (;;) {
        size_t n = fread(buf + len, 1, cap - len - 1, f);
        len += n;
        if (n == 0)
            break;
        if (len + 1 == cap) {
            if (cap >= (64u << 20)) {
                free(buf);
                return mf_err_set(err, err_len, MF_ETOOLARGE, "%s: larger than 64 MiB", what);
            }
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                return -ENOMEM;
            }
            buf = nb, cap *= 2;
        }
    }
    if (ferror(f)) {
        free(buf);
        return mf_err_set(err, err_len, MF_EINVAL, "%s: read error", what);
    }
    *out = mf_cli_arena_alloc(ar, len + 1);
    memcpy(*out, buf, len);
    free(buf);
    *out_len = len;
    return 0;
}

/* KEY=VALUE, KEY=@FILE or KEY=- into a map entry. */
static int parse_pair(struct mf_cli_arena *ar, FILE *in, const char *arg, char **key, char **value,
                      char *err, size_t err_len)
{
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg)
        return mf_err_set(err, err_len, MF_EINVAL, "'%s' is not KEY=VALUE", arg);
    size_t klen = (size_t)(eq - arg);
    *key = mf_cli_arena_alloc(ar, klen + 1);
    memcpy(*key, arg, klen);
    const char *v = eq + 1;
    size_t vlen;
    int rc = 0;
    if (strcmp(v, "-") == 0) {
        rc = slurp(ar, in, "stdin", value, &vlen, err, err_len);
    } else if (v[0] == '@') {
        FILE *f = fopen(v + 1, "rb");
        if (!f)
            return mf_err_set(err, err_len, MF_EINVAL, "%s: cannot open: %s", v + 1,
                              strerror(errno));
        rc = slurp(ar, f, v + 1, value, &vlen, err, err_len);
        fclose(f);
    } else {
        *value = mf_cli_arena_strdup(ar, v);
        vlen = strlen(v);
    }
    if (rc)
        return rc;
    if (!mf_cli_utf8_valid(*value, vlen) || strlen(*value) != vlen)
        return mf_err_set(err, err_len, MF_EINVAL,
                          "value of '%s' is not UTF-8 text (encode binary data as base64)", *key);
    return 0;
}

static int parse_versions(struct mf_cli_arena *ar, const char *list, uint64_t **out, size_t *n,
                          char *err, size_t err_len)
{
    size_t count = 1;
    for (const char *p = list; *p; p++)
        count += *p == ',';
    *out = mf_cli_arena_alloc(ar, count * sizeof(uint64_t));
    *n = 0;
    char *copy = mf_cli_arena_strdup(ar, list), *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        int rc = parse_u64("versions", tok, &(*out)[*n], err, err_len);
        if (rc)
            return rc;
        if ((*out)[*n] == 0)
            return mf_err_set(err, err_len, MF_EINVAL, "-versions: versions start at 1");
        (*n)++;
    }
    if (*n == 0)
        return mf_err_set(err, err_len, MF_EINVAL, "-versions: empty list");
    return 0;
}

/* Allocates a zeroed message from the arena and runs its protobuf-c init. */
#define MSG(ar, type, init) \
    ({ type *m_ = mf_cli_arena_alloc(ar, sizeof(type)); init(m_); m_; })

/* ---- builders ---- */

static int build_status(const struct mf_cli_args *a, struct mf_cli_arena *ar, FILE *in,
                        Mayfly__Api__Request *req, char *err, size_t err_len)
{
    (void)a, (void)in, (void)err, (void)err_len;
    req->op_case = MAYFLY__API__REQUEST__OP_STATUS;
    req->status = MSG(ar, Mayfly__Api__StatusRequest, mayfly__api__status_request__init);
    return 0;
}

static int build_init(const struct mf_cli_args *a, struct mf_cli_arena *ar, FILE *in,
                      Mayfly__Api__Request *req, char *err, size_t err_len)
{
    (void)in;
    uint64_t shares = 5, threshold = 3;
    int rc = flag_u64(a, "shares", &shares, err, err_len);
    if (!rc)
        rc = flag_u64(a, "threshold", &threshold, err, err_len);
    if (rc)
        return rc;
    if (shares < 1 || shares > 255 || threshold < 1 || threshold > shares)
        return mf_err_set(err, err_len, MF_EINVAL,
                          "need 1 <= -threshold (%" PRIu64 ") <= -shares (%" PRIu64 ") <= 255",
                          threshold, shares);
    req->op_case = MAYFLY__API__REQUEST__OP_INIT;
    req->init = MSG(ar, Mayfly__Api__InitRequest, mayfly__api__init_request__init);
    req->init->shares = (uint32_t)shares;
    req->init->threshold = (uint32_t)threshold;
    return 0;
}

static int build_unseal(const struct mf_cli_args *a, struct mf_cli_arena *ar, FILE *in,
                        Mayfly__Api__Request *req, char *err, size_t err_len)
{
    (void)in, (void)err, (void)err_len;
    req->op_case = MAYFLY__API__REQUEST__OP_UNSEAL;
    req->unseal = MSG(ar, Mayfly__Api__UnsealRequest, mayfly__api__unseal_request__init);
    req->unseal->share = mf_cli_arena_strdup(ar, a->pos[0]);
    return 0;
}

static int build_seal(const struct mf_cli_args *a, struct mf_cli_arena *ar, FILE *in,
                      Mayfly__Api__Request *req, char *err, size_t err_len)
{
    (void)a, (void)in, (void)err, (void)err_len;
    req->op_case = MAYFLY__API__REQUEST__OP_SEAL;
    req->seal = MSG(ar, Mayfly__Api__SealRequest, mayfly__api__seal_request__init);
    return 0;
}

/* operator generate-root: exactly one of -init, -nonce N SHARE, -cancel
 * (-decode is local: generate_root_decode). */
static int build_generate_root(const struct mf_cli_args *a, struct mf_cli_arena *ar, FILE *in,
                               Mayfly__Api__Request *req, char *err, size_t err_len)
{
    (void)in;
    bool init = mf_cli_flag_set(a, "init"), cancel = mf_cli_flag_set(a, "cancel");
    const char *nonce = mf_cli_flag(a, "nonce");
    if (init + cancel + (nonce != NULL) != 1 || (nonce != NULL) != (a->pos_len == 1))
        return mf_err_set(err, err_len, MF_EINVAL,
                          "give one of -init, -nonce N SHARE, -cancel, -decode ENCODED -otp OTP");
    req->op_case = MAYFLY__API__REQUEST__OP_GENERATE_ROOT;
    req->generate_root =
        MSG(ar, Mayfly__Api__GenerateRootRequest, mayfly__api__generate_root_request__init);
    req->generate_root->mode = init     ? MAYFLY__API__GENERATE_ROOT_MODE__GENERATE_ROOT_INIT
                               : cancel ? MAYFLY__API__GENERATE_ROOT_MODE__GENERATE_ROOT_CANCEL
                                        : MAYFLY__API__GENERATE_ROOT_MODE__GENERATE_ROOT_UPDATE;
    if (nonce) {
        req->generate_root->nonce = mf_cli_arena_strdup(ar, nonce);
        req->generate_root->share = mf_cli_arena_strdup(ar, a->pos[0]);
    }
    return 0;
}

/* Standard base64 (OpenSSL), padding honoured. @return malloc'd bytes or NULL. */
static uint8_t *b64_decode(const char *in, size_t *len)
{
    size_t n = strlen(in);
    if (n == 0 || n % 4)
        return NULL;
    uint8_t *out = malloc(n / 4 * 3 + 1);
    if (!out)
        return NULL;
    int m = EVP_DecodeBlock(out, (const unsigned char *)in, (int)n);
    if (m < 0) {
        free(out);
        return NULL;
    }
    m -= (in[n - 1] == '=') + (in[n - 2] == '=');
    *len = (size_t)m;
    return out;
}

/* -decode ENCODED -otp OTP: the root token is ENCODED XOR OTP, here, with no
 * server call (the OTP never leaves this machine again). */
static int generate_root_decode(const struct mf_cli_args *a, FILE *out, FILE *errout)
{
    const char *enc = mf_cli_flag(a, "decode"), *otp_text = mf_cli_flag(a, "otp");
    if (!enc)
        return -1;
    size_t n = 0, m = 0;
    uint8_t *x = b64_decode(enc, &n), *otp = otp_text ? b64_decode(otp_text, &m) : NULL;
    int code = MF_CLI_EXIT_LOCAL;
    if (!x || !otp || n != m || n == 0) {
        mf_cli_print_error(a->g.format, "INVALID_ARGUMENT",
                           "-decode ENCODED -otp OTP: both base64, of the same length", out,
                           errout);
        goto done;
    }
    char *token = malloc(n + 1);
    if (!token)
        goto done;
    for (size_t i = 0; i < n; i++)
        token[i] = (char)(x[i] ^ otp[i]);
    token[n] = '\0';
    if (strncmp(token, "mf.", 3) != 0 || strlen(token) != n) {
        mf_cli_print_error(a->g.format, "INVALID_ARGUMENT",
                           "this OTP does not decode this token (another attempt's?)", out,
                           errout);
    } else {
        json_t *doc = json_pack("{s:s}", "root_token", token);
        char *text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        if (a->g.format == MF_CLI_FORMAT_JSON)
            fprintf(out, "%s\n", text);
        else
            fprintf(out, "root_token  %s\n", token);
        free(text);
        json_decref(doc);
        code = MF_CLI_EXIT_OK;
    }
    OPENSSL_cleanse(token, n);
    free(token);
done:
    if (x)
        OPENSSL_cleanse(x, n);
    if (otp)
        OPENSSL_cleanse(otp, m);
    free(x);
    free(otp);
    return code;
}

static int build_kv_put(const struct mf_cli_args *a, struct mf_cli_arena *ar, FILE *in,
                        Mayfly__Api__Request *req, char *err, size_t err_len)
{
    Mayfly__Api__KvPutRequest *p =
        MSG(ar, Mayfly__Api__KvPutRequest, mayfly__api__kv_put_request__init);
    p->path = mf_cli_arena_strdup(ar, a->pos[0]);
    if (mf_cli_flag_set(a, "cas")) {
        int rc = flag_u64(a, "cas", &p->cas, err, err_len);
        if (rc)
            return rc;
        p->has_cas = 1;
    }
    if (mf_cli_flag(a, "lease"))
        p->lease_id = mf_cli_arena_strdup(ar, mf_cli_flag(a, "lease"));
    p->n_data = a->pos_len - 1;
    p->data = mf_cli_arena_alloc(ar, p->n_data * sizeof(*p->data));
    for (size_t i = 0; i < p->n_data; i++) {
        p->data[i] = MSG(ar, Mayfly__Api__KvPutRequest__DataEntry,
                         mayfly__api__kv_put_request__data_entry__init);
        int rc = parse_pair(ar, in, a->pos[i + 1], &p->data[i]->key, &p->data[i]->value, err,
                            err_len);
        if (rc)
            return rc;
        for (size_t j = 0; j < i; j++)
            if (strcmp(p->data[j]->key, p->data[i]->key) == 0)
                return mf_err_set(err, err_len, MF_EINVAL, "key '%s' given twice",
                                  p->data[i]->key);
    }
    req->op_case = MAYFLY__API__REQUEST__OP_KV_PUT;
    req->kv_put = p;
    return 0;
}

static int build_kv_get(const struct mf_cli_args *a, struct mf_cli_arena *ar, FILE *in,
                        Mayfly__Api__Request *req, char *err, size_t err_len)
{
    (void)in;
    Mayfly__Api__KvGetRequest *g =
        MSG(ar, Mayfly__Api__KvGetRequest, mayfly__api__kv_get_request__init);
    g->path = mf_cli_arena_strdup(ar, a->pos[0]);
    int rc = flag_u64(a, "version", &g->version, err, err_len);
    if (rc)
        return rc;
    req->op_case = MAYFLY__API__REQUEST__OP_KV_GET;
    req->kv_get = g;
    return 0;
}

static int build_kv_versions(const struct mf_cli_args *a, struct mf_cli_arena *ar,
                             Mayfly__Api__KvVersionOp op, Mayfly__Api__Request *req, char *err,
                             size_t err_len)
{
    Mayfly__Api__KvVersionsRequest *v =
        MSG(ar, Mayfly__Api__KvVersionsRequest, mayfly__api__kv_versions_request__init);
    v->op = op;
    v->path = mf_cli_arena_strdup(ar, a->pos[0]);
    const char *list = mf_cli_flag(a, "versions");
    if (list) {
        int rc = parse_versions(ar, list, &v->versions, &v->n_versions, err, err_len);
        if (rc)
            return rc;
    }
    if (op == MAYFLY__API__KV_VERSION_OP__KV_UNDELETE && v->n_versions == 0)
        return mf_err_set(err, err_len, MF_EINVAL, "kv undelete needs -versions");
    req->op_case = MAYFLY__API__REQUEST__OP_KV_VERSIONS;
    req->kv_versions = v;
    return 0;
}

static int build_kv_delete(const struct mf_cli_args *a, struct mf_cli_arena *ar, FILE *in,
                           Mayfly__Api__Request *req, char *err, size_t err_len)
{
    (void)in;
    return build_kv_versions(a, ar, MAYFLY__API__KV_VERSION_OP__KV_DELETE, req, err, err_len);
}

static int build_kv_undelete(const struct mf_cli_args *a, struct mf_cli_arena *ar, FILE *in,
                             Mayfly__Api__Request *req, char *err, size_t err_len)
{
    (void)in;
    return build_kv_versions(a, ar, MAYFLY__API__KV_VERSION_OP__KV_UNDELETE, req, err, err_len);
}

static int build_kv_destroy(const struct mf_cli_args *a, struct mf_cli_arena *ar, FILE *in,
                            Mayfly__Api__Request *req, char *err, size_t err_len)
{
    (void)in;
    return build_kv_versions(a, ar, MAYFLY__API__KV_VERSION_OP__KV_DESTROY, req, err, err_len);
}

static int build_kv_list(const struct mf_cli_args *a, struct mf_cli_arena *ar, FILE *in,
                         Mayfly__Api__Request *req, char *err, size_t err_len)
{
    (void)in, (void)err, (void)err_len;
    Mayfly__Api__KvListRequest *l =
        MSG(ar, Mayfly__Api__KvListRequest, mayfly__api__kv_list_request__init);
    l->prefix = mf_cli_arena_strdup(ar, a->pos_len ? a->pos[0] : "");
    req->op_case = MAYFLY__API__REQUEST__OP_KV_LIST;
    req->kv_list = l;
    return 0;
}

static int build_kv_meta_get(const struct mf_cli_args *a, struct mf_cli_arena *ar, FILE *in,
                             Mayfly__Api__Request *req, char *err, size_t err_len)
{
    (void)in, (void)err, (void)err_len;
    Mayfly__Api__KvMetadataGetRequest *m =
        MSG(ar, Mayfly__Api__KvMetadataGetRequest, mayfly__api__kv_metadata_get_request__init);
    m->path = mf_cli_arena_strdup(ar, a->pos[0]);
    req->op_case = MAYFLY__API__REQUEST__OP_KV_METADATA_GET;
    req->kv_metadata_get = m;
    return 0;
}

static int build_kv_meta_put(const struct mf_cli_args *a, struct mf_cli_arena *ar, FILE *in,
                             Mayfly__Api__Request *req, char *err, size_t err_len)
{
    (void)in;
    Mayfly__Api__KvMetadataPutRequest *m =
        MSG(ar, Mayfly__Api__KvMetadataPutRequest, mayfly__api__kv_metadata_put_request__init);
    m->path = mf_cli_arena_strdup(ar, a->pos[0]);
    uint64_t maxv = 0;
    int rc = flag_u64(a, "max-versions", &maxv, err, err_len);
    if (rc)
        return rc;
    if (mf_cli_flag_set(a, "max-versions") && (maxv == 0 || maxv > 1000))
        return mf_err_set(err, err_len, MF_EINVAL, "-max-versions must be 1..1000");
    m->max_versions = (uint32_t)maxv;
    if (mf_cli_flag_set(a, "cas-required"))
        m->has_cas_required = m->cas_required = 1;
    req->op_case = MAYFLY__API__REQUEST__OP_KV_METADATA_PUT;
    req->kv_metadata_put = m;
    return 0;
}

static int build_lease_grant(const struct mf_cli_args *a, struct mf_cli_arena *ar, FILE *in,
                             Mayfly__Api__Request *req, char *err, size_t err_len)
{
    (void)in;
    Mayfly__Api__LeaseGrantRequest *g =
        MSG(ar, Mayfly__Api__LeaseGrantRequest, mayfly__api__lease_grant_request__init);
    if (!mf_cli_flag(a, "ttl"))
        return mf_err_set(err, err_len, MF_EINVAL, "lease grant needs -ttl");
    int rc = flag_duration(a, "ttl", &g->ttl_ms, err, err_len);
    if (!rc)
        rc = flag_duration(a, "max-ttl", &g->max_ttl_ms, err, err_len);
    if (rc)
        return rc;
    if (g->ttl_ms == 0)
        return mf_err_set(err, err_len, MF_EINVAL, "-ttl must be positive");
    if (g->max_ttl_ms && g->max_ttl_ms < g->ttl_ms)
        return mf_err_set(err, err_len, MF_EINVAL, "-max-ttl is shorter than -ttl");
    if (mf_cli_flag(a, "name"))
        g->name = mf_cli_arena_strdup(ar, mf_cli_flag(a, "name"));
    req->op_case = MAYFLY__API__REQUEST__OP_LEASE_GRANT;
    req->lease_grant = g;
    return 0;
}

static int build_lease_renew(const struct mf_cli_args *a, struct mf_cli_arena *ar, FILE *in,
                             Mayfly__Api__Request *req, char *err, size_t err_len)
{
    (void)in;
    Mayfly__Api__LeaseRenewRequest *r =
        MSG(ar, Mayfly__Api__LeaseRenewRequest, mayfly__api__lease_renew_request__init);
    r->lease_id = mf_cli_arena_strdup(ar, a->pos[0]);
    int rc = flag_duration(a, "increment", &r->increment_ms, err, err_len);
    if (rc)
        return rc;
    req->op_case = MAYFLY__API__REQUEST__OP_LEASE_RENEW;
    req->lease_renew = r;
    return 0;
}

static int build_lease_revoke(const struct mf_cli_args *a, struct mf_cli_arena *ar, FILE *in,
                              Mayfly__Api__Request *req, char *err, size_t err_len)
{
    (void)in, (void)err, (void)err_len;
    Mayfly__Api__LeaseRevokeRequest *r =
        MSG(ar, Mayfly__Api__LeaseRevokeRequest, mayfly__api__lease_revoke_request__init);
    r->lease_id = mf_cli_arena_strdup(ar, a->pos[0]);
    r->prefix = mf_cli_flag_set(a, "prefix");
    r->force = mf_cli_flag_set(a, "force");
    req->op_case = MAYFLY__API__REQUEST__OP_LEASE_REVOKE;
    req->lease_revoke = r;
    return 0;
}

static int build_lease_lookup(const struct mf_cli_args *a, struct mf_cli_arena *ar, FILE *in,
                              Mayfly__Api__Request *req, char *err, size_t err_len)
{
    (void)in, (void)err, (void)err_len;
    Mayfly__Api__LeaseLookupRequest *l =
        MSG(ar, Mayfly__Api__LeaseLookupRequest, mayfly__api__lease_lookup_request__init);
    l->lease_id = mf_cli_arena_strdup(ar, a->pos[0]);
    req->op_case = MAYFLY__API__REQUEST__OP_LEASE_LOOKUP;
    req->lease_lookup = l;
    return 0;
}

static int build_lease_list(const struct mf_cli_args *a, struct mf_cli_arena *ar, FILE *in,
                            Mayfly__Api__Request *req, char *err, size_t err_len)
{
    (void)in;
    Mayfly__Api__LeaseListRequest *l =
        MSG(ar, Mayfly__Api__LeaseListRequest, mayfly__api__lease_list_request__init);
    l->prefix = mf_cli_arena_strdup(ar, a->pos_len ? a->pos[0] : "");
    const char *st = mf_cli_flag(a, "state");
    if (st) {
        l->state = mf_cli_lease_state_parse(st);
        if (l->state == MAYFLY__API__LEASE_STATE__LEASE_STATE_UNSPECIFIED)
            return mf_err_set(err, err_len, MF_EINVAL,
                              "-state must be issuing, active, revoking, revoked or irrevocable");
    }
    uint64_t limit = 0;
    int rc = flag_u64(a, "limit", &limit, err, err_len);
    if (rc)
        return rc;
    if (limit > 10000)
        return mf_err_set(err, err_len, MF_EINVAL, "-limit is at most 10000");
    l->limit = (uint32_t)limit;
    if (mf_cli_flag(a, "after"))
        l->after = mf_cli_arena_strdup(ar, mf_cli_flag(a, "after"));
    req->op_case = MAYFLY__API__REQUEST__OP_LEASE_LIST;
    req->lease_list = l;
    return 0;
}

static int build_creds_issue(const struct mf_cli_args *a, struct mf_cli_arena *ar, FILE *in,
                             Mayfly__Api__Request *req, char *err, size_t err_len)
{
    (void)in;
    const char *slash = strrchr(a->pos[0], '/');
    if (!slash || slash == a->pos[0] || !slash[1])
        return mf_err_set(err, err_len, MF_EINVAL, "'%s' is not MOUNT/ROLE", a->pos[0]);
    Mayfly__Api__CredsIssueRequest *c =
        MSG(ar, Mayfly__Api__CredsIssueRequest, mayfly__api__creds_issue_request__init);
    size_t mlen = (size_t)(slash - a->pos[0]);
    c->mount = mf_cli_arena_alloc(ar, mlen + 1);
    memcpy(c->mount, a->pos[0], mlen);
    c->role = mf_cli_arena_strdup(ar, slash + 1);
    int rc = flag_duration(a, "ttl", &c->ttl_ms, err, err_len);
    if (rc)
        return rc;
    req->op_case = MAYFLY__API__REQUEST__OP_CREDS_ISSUE;
    req->creds_issue = c;
    return 0;
}

static int build_token_create(const struct mf_cli_args *a, struct mf_cli_arena *ar, FILE *in,
                              Mayfly__Api__Request *req, char *err, size_t err_len)
{
    (void)in;
    Mayfly__Api__TokenCreateRequest *t =
        MSG(ar, Mayfly__Api__TokenCreateRequest, mayfly__api__token_create_request__init);
    size_t n = 0;
    for (size_t i = 0; i < a->flags_len; i++)
        n += strcmp(a->flags[i].name, "policy") == 0;
    t->policies = mf_cli_arena_alloc(ar, (n ? n : 1) * sizeof(char *));
    for (size_t i = 0; i < a->flags_len; i++)
        if (strcmp(a->flags[i].name, "policy") == 0)
            t->policies[t->n_policies++] = mf_cli_arena_strdup(ar, a->flags[i].value);
    int rc = flag_duration(a, "ttl", &t->ttl_ms, err, err_len);
    if (rc)
        return rc;
    t->orphan = mf_cli_flag_set(a, "orphan");
    t->no_default_policy = mf_cli_flag_set(a, "no-default-policy");
    req->op_case = MAYFLY__API__REQUEST__OP_TOKEN_CREATE;
    req->token_create = t;
    return 0;
}

static int build_token_lookup(const struct mf_cli_args *a, struct mf_cli_arena *ar, FILE *in,
                              Mayfly__Api__Request *req, char *err, size_t err_len)
{
    (void)in;
    Mayfly__Api__TokenLookupRequest *t =
        MSG(ar, Mayfly__Api__TokenLookupRequest, mayfly__api__token_lookup_request__init);
    t->by_accessor = mf_cli_flag_set(a, "accessor");
    if (t->by_accessor && a->pos_len == 0)
        return mf_err_set(err, err_len, MF_EINVAL, "token lookup -accessor needs an accessor");
    t->token = mf_cli_arena_strdup(ar, a->pos_len ? a->pos[0] : "");
    req->op_case = MAYFLY__API__REQUEST__OP_TOKEN_LOOKUP;
    req->token_lookup = t;
    return 0;
}

static int build_token_revoke(const struct mf_cli_args *a, struct mf_cli_arena *ar, FILE *in,
                              Mayfly__Api__Request *req, char *err, size_t err_len)
{
    (void)in, (void)err, (void)err_len;
    Mayfly__Api__TokenRevokeRequest *t =
        MSG(ar, Mayfly__Api__TokenRevokeRequest, mayfly__api__token_revoke_request__init);
    t->by_accessor = mf_cli_flag_set(a, "accessor");
    t->token = mf_cli_arena_strdup(ar, a->pos[0]);
    req->op_case = MAYFLY__API__REQUEST__OP_TOKEN_REVOKE;
    req->token_revoke = t;
    return 0;
}

/* A JSON document given as text, @FILE or - (stdin); checked locally so a
 * typo fails here with the parser's message. */
static int json_arg(struct mf_cli_arena *ar, FILE *in, const char *what, const char *arg,
                    char **out, char *err, size_t err_len)
{
    size_t len;
    int rc = 0;
    if (strcmp(arg, "-") == 0) {
        rc = slurp(ar, in, "stdin", out, &len, err, err_len);
    } else if (arg[0] == '@') {
        FILE *f = fopen(arg + 1, "rb");
        if (!f)
            return mf_err_set(err, err_len, MF_EINVAL, "%s: cannot open: %s", arg + 1,
                              strerror(errno));
        rc = slurp(ar, f, arg + 1, out, &len, err, err_len);
        fclose(f);
    } else {
        *out = mf_cli_arena_strdup(ar, arg);
    }
    if (rc)
        return rc;
    json_error_t je;
    json_t *doc = json_loads(*out, 0, &je);
    if (!json_is_object(doc)) {
        json_decref(doc);
        return mf_err_set(err, err_len, MF_EINVAL, "%s: not a JSON object (line %d: %s)", what,
                          je.line, doc ? "not an object" : je.text);
    }
    json_decref(doc);
    return 0;
}

static int build_engine_enable(const struct mf_cli_args *a, struct mf_cli_arena *ar, FILE *in,
                               Mayfly__Api__Request *req, char *err, size_t err_len)
{
    Mayfly__Api__EngineEnableRequest *e =
        MSG(ar, Mayfly__Api__EngineEnableRequest, mayfly__api__engine_enable_request__init);
    if (!mf_cli_flag(a, "type"))
        return mf_err_set(err, err_len, MF_EINVAL, "engine enable needs -type postgres|pki");
    e->type = mf_cli_arena_strdup(ar, mf_cli_flag(a, "type"));
    e->mount = mf_cli_arena_strdup(ar, a->pos[0]);
    if (mf_cli_flag(a, "config")) {
        int rc = json_arg(ar, in, "-config", mf_cli_flag(a, "config"), &e->config_json, err,
                          err_len);
        if (rc)
            return rc;
    }
    req->op_case = MAYFLY__API__REQUEST__OP_ENGINE_ENABLE;
    req->engine_enable = e;
    return 0;
}

static int build_engine_role_put(const struct mf_cli_args *a, struct mf_cli_arena *ar, FILE *in,
                                 Mayfly__Api__Request *req, char *err, size_t err_len)
{
    Mayfly__Api__EngineRolePutRequest *e =
        MSG(ar, Mayfly__Api__EngineRolePutRequest, mayfly__api__engine_role_put_request__init);
    e->mount = mf_cli_arena_strdup(ar, a->pos[0]);
    e->role = mf_cli_arena_strdup(ar, a->pos[1]);
    int rc = json_arg(ar, in, "role", a->pos[2], &e->role_json, err, err_len);
    if (rc)
        return rc;
    req->op_case = MAYFLY__API__REQUEST__OP_ENGINE_ROLE_PUT;
    req->engine_role_put = e;
    return 0;
}

static int build_engine_mount_op(const struct mf_cli_args *a, struct mf_cli_arena *ar, FILE *in,
                                 Mayfly__Api__Request *req, char *err, size_t err_len)
{
    (void)in, (void)err, (void)err_len;
    if (strcmp(a->cmd->words[1], "rotate-root") == 0) {
        Mayfly__Api__EngineRotateRootRequest *e = MSG(ar, Mayfly__Api__EngineRotateRootRequest,
                                                      mayfly__api__engine_rotate_root_request__init);
        e->mount = mf_cli_arena_strdup(ar, a->pos[0]);
        req->op_case = MAYFLY__API__REQUEST__OP_ENGINE_ROTATE_ROOT;
        req->engine_rotate_root = e;
    } else {
        Mayfly__Api__EngineCrlRequest *e =
            MSG(ar, Mayfly__Api__EngineCrlRequest, mayfly__api__engine_crl_request__init);
        e->mount = mf_cli_arena_strdup(ar, a->pos[0]);
        req->op_case = MAYFLY__API__REQUEST__OP_ENGINE_CRL;
        req->engine_crl = e;
    }
    return 0;
}

static int build_engine_list(const struct mf_cli_args *a, struct mf_cli_arena *ar, FILE *in,
                             Mayfly__Api__Request *req, char *err, size_t err_len)
{
    (void)a, (void)in, (void)err, (void)err_len;
    req->op_case = MAYFLY__API__REQUEST__OP_ENGINE_LIST;
    req->engine_list = MSG(ar, Mayfly__Api__EngineListRequest, mayfly__api__engine_list_request__init);
    return 0;
}

static int build_token_renew(const struct mf_cli_args *a, struct mf_cli_arena *ar, FILE *in,
                             Mayfly__Api__Request *req, char *err, size_t err_len)
{
    (void)in;
    Mayfly__Api__TokenRenewRequest *t =
        MSG(ar, Mayfly__Api__TokenRenewRequest, mayfly__api__token_renew_request__init);
    t->token = mf_cli_arena_strdup(ar, a->pos_len ? a->pos[0] : "");
    int rc = flag_duration(a, "increment", &t->increment_ms, err, err_len);
    if (rc)
        return rc;
    req->op_case = MAYFLY__API__REQUEST__OP_TOKEN_RENEW;
    req->token_renew = t;
    return 0;
}

/* ---- auth methods ---- */

static int build_auth_enable(const struct mf_cli_args *a, struct mf_cli_arena *ar, FILE *in,
                             Mayfly__Api__Request *req, char *err, size_t err_len)
{
    Mayfly__Api__AuthEnableRequest *e =
        MSG(ar, Mayfly__Api__AuthEnableRequest, mayfly__api__auth_enable_request__init);
    if (!mf_cli_flag(a, "type"))
        return mf_err_set(err, err_len, MF_EINVAL, "auth enable needs -type jwt|cert");
    e->type = mf_cli_arena_strdup(ar, mf_cli_flag(a, "type"));
    e->mount = mf_cli_arena_strdup(ar, a->pos[0]);
    if (mf_cli_flag(a, "config")) {
        int rc = json_arg(ar, in, "-config", mf_cli_flag(a, "config"), &e->config_json, err,
                          err_len);
        if (rc)
            return rc;
    }
    req->op_case = MAYFLY__API__REQUEST__OP_AUTH_ENABLE;
    req->auth_enable = e;
    return 0;
}

static int build_auth_role_put(const struct mf_cli_args *a, struct mf_cli_arena *ar, FILE *in,
                               Mayfly__Api__Request *req, char *err, size_t err_len)
{
    Mayfly__Api__AuthRolePutRequest *e =
        MSG(ar, Mayfly__Api__AuthRolePutRequest, mayfly__api__auth_role_put_request__init);
    e->mount = mf_cli_arena_strdup(ar, a->pos[0]);
    e->role = mf_cli_arena_strdup(ar, a->pos[1]);
    int rc = json_arg(ar, in, "role", a->pos[2], &e->role_json, err, err_len);
    if (rc)
        return rc;
    req->op_case = MAYFLY__API__REQUEST__OP_AUTH_ROLE_PUT;
    req->auth_role_put = e;
    return 0;
}

static int build_auth_list(const struct mf_cli_args *a, struct mf_cli_arena *ar, FILE *in,
                           Mayfly__Api__Request *req, char *err, size_t err_len)
{
    (void)a, (void)in, (void)err, (void)err_len;
    req->op_case = MAYFLY__API__REQUEST__OP_AUTH_LIST;
    req->auth_list = MSG(ar, Mayfly__Api__AuthListRequest, mayfly__api__auth_list_request__init);
    return 0;
}

/* login -method jwt|cert [-mount M] -role R [-jwt @FILE|-]. The JWT is read
 * from a file or stdin only: on the command line it would show in ps. */
static int build_login(const struct mf_cli_args *a, struct mf_cli_arena *ar, FILE *in,
                       Mayfly__Api__Request *req, char *err, size_t err_len)
{
    Mayfly__Api__LoginRequest *l =
        MSG(ar, Mayfly__Api__LoginRequest, mayfly__api__login_request__init);
    const char *method = mf_cli_flag(a, "method");
    const char *role = mf_cli_flag(a, "role");
    if (!method || (strcmp(method, "jwt") != 0 && strcmp(method, "cert") != 0))
        return mf_err_set(err, err_len, MF_EINVAL, "login needs -method jwt|cert");
    if (!role)
        return mf_err_set(err, err_len, MF_EINVAL, "login needs -role R");
    l->method = mf_cli_arena_strdup(ar, method);
    l->role = mf_cli_arena_strdup(ar, role);
    if (mf_cli_flag(a, "mount"))
        l->mount = mf_cli_arena_strdup(ar, mf_cli_flag(a, "mount"));
    const char *jwt = mf_cli_flag(a, "jwt");
    if (strcmp(method, "jwt") == 0) {
        if (!jwt || (strcmp(jwt, "-") != 0 && jwt[0] != '@'))
            return mf_err_set(err, err_len, MF_EINVAL, "login -method jwt needs -jwt @FILE or -jwt -");
        size_t len = 0;
        int rc;
        if (strcmp(jwt, "-") == 0) {
            rc = slurp(ar, in, "stdin", &l->jwt, &len, err, err_len);
        } else {
            FILE *f = fopen(jwt + 1, "rb");
            if (!f)
                return mf_err_set(err, err_len, MF_EINVAL, "%s: cannot open: %s", jwt + 1,
                                  strerror(errno));
            rc = slurp(ar, f, jwt + 1, &l->jwt, &len, err, err_len);
            fclose(f);
        }
        if (rc)
            return rc;
        while (len && (l->jwt[len - 1] == '\n' || l->jwt[len - 1] == '\r' ||
                       l->jwt[len - 1] == ' ' || l->jwt[len - 1] == '\t'))
            l->jwt[--len] = '\0';
    } else if (jwt) {
        return mf_err_set(err, err_len, MF_EINVAL, "-jwt is for -method jwt");
    }
    req->op_case = MAYFLY__API__REQUEST__OP_LOGIN;
    req->login = l;
    return 0;
}

/* ---- policies ---- */

/* The values of every -NAME flag, in order, from the arena. */
static char **flag_all(const struct mf_cli_args *a, struct mf_cli_arena *ar, const char *name,
                       size_t *n)
{
    *n = 0;
    for (size_t i = 0; i < a->flags_len; i++)
        *n += strcmp(a->flags[i].name, name) == 0;
    char **v = mf_cli_arena_alloc(ar, (*n ? *n : 1) * sizeof(char *));
    size_t k = 0;
    for (size_t i = 0; i < a->flags_len; i++)
        if (strcmp(a->flags[i].name, name) == 0)
            v[k++] = mf_cli_arena_strdup(ar, a->flags[i].value);
    return v;
}

static int build_policy_write(const struct mf_cli_args *a, struct mf_cli_arena *ar, FILE *in,
                              Mayfly__Api__Request *req, char *err, size_t err_len)
{
    Mayfly__Api__PolicyWriteRequest *w =
        MSG(ar, Mayfly__Api__PolicyWriteRequest, mayfly__api__policy_write_request__init);
    w->name = mf_cli_arena_strdup(ar, a->pos[0]);
    const char *file = a->pos[1];
    size_t len = 0;
    int rc;
    if (strcmp(file, "-") == 0) {
        rc = slurp(ar, in, "stdin", &w->body, &len, err, err_len);
    } else {
        FILE *f = fopen(file, "rb");
        if (!f)
            return mf_err_set(err, err_len, MF_EINVAL, "%s: cannot open: %s", file,
                              strerror(errno));
        rc = slurp(ar, f, file, &w->body, &len, err, err_len);
        fclose(f);
    }
    if (rc)
        return rc;
    /* The document itself is judged by the server's parser (strict: it names
     * the pattern at fault), so a script sees one kind of refusal. */
    if (!mf_cli_utf8_valid(w->body, len) || strlen(w->body) != len)
        return mf_err_set(err, err_len, MF_EINVAL, "%s: not UTF-8 text",
                          strcmp(file, "-") == 0 ? "stdin" : file);
    req->op_case = MAYFLY__API__REQUEST__OP_POLICY_WRITE;
    req->policy_write = w;
    return 0;
}

static int build_policy_read(const struct mf_cli_args *a, struct mf_cli_arena *ar, FILE *in,
                             Mayfly__Api__Request *req, char *err, size_t err_len)
{
    (void)in, (void)err, (void)err_len;
    Mayfly__Api__PolicyReadRequest *p =
        MSG(ar, Mayfly__Api__PolicyReadRequest, mayfly__api__policy_read_request__init);
    p->name = mf_cli_arena_strdup(ar, a->pos[0]);
    req->op_case = MAYFLY__API__REQUEST__OP_POLICY_READ;
    req->policy_read = p;
    return 0;
}

static int build_policy_list(const struct mf_cli_args *a, struct mf_cli_arena *ar, FILE *in,
                             Mayfly__Api__Request *req, char *err, size_t err_len)
{
    (void)a, (void)in, (void)err, (void)err_len;
    req->op_case = MAYFLY__API__REQUEST__OP_POLICY_LIST;
    req->policy_list =
        MSG(ar, Mayfly__Api__PolicyListRequest, mayfly__api__policy_list_request__init);
    return 0;
}

static int build_policy_delete(const struct mf_cli_args *a, struct mf_cli_arena *ar, FILE *in,
                               Mayfly__Api__Request *req, char *err, size_t err_len)
{
    (void)in, (void)err, (void)err_len;
    Mayfly__Api__PolicyDeleteRequest *p =
        MSG(ar, Mayfly__Api__PolicyDeleteRequest, mayfly__api__policy_delete_request__init);
    p->name = mf_cli_arena_strdup(ar, a->pos[0]);
    req->op_case = MAYFLY__API__REQUEST__OP_POLICY_DELETE;
    req->policy_delete = p;
    return 0;
}

/* quota set [-mount M] [-role R] [-prefix P] [-max-leases N] [-rate R] NAME */
static int build_quota_set(const struct mf_cli_args *a, struct mf_cli_arena *ar, FILE *in,
                           Mayfly__Api__Request *req, char *err, size_t err_len)
{
    (void)in;
    Mayfly__Api__QuotaSetRequest *q =
        MSG(ar, Mayfly__Api__QuotaSetRequest, mayfly__api__quota_set_request__init);
    q->name = mf_cli_arena_strdup(ar, a->pos[0]);
    const char *mount = mf_cli_flag(a, "mount"), *role = mf_cli_flag(a, "role");
    const char *prefix = mf_cli_flag(a, "prefix");
    if (mount)
        q->mount = mf_cli_arena_strdup(ar, mount);
    if (role)
        q->role = mf_cli_arena_strdup(ar, role);
    if (prefix)
        q->prefix = mf_cli_arena_strdup(ar, prefix);
    uint64_t rate = 0;
    int rc = flag_u64(a, "max-leases", &q->max_leases, err, err_len);
    if (!rc)
        rc = flag_u64(a, "rate", &rate, err, err_len);
    if (rc)
        return rc;
    if (rate > UINT32_MAX)
        return mf_err_set(err, err_len, MF_EINVAL, "-rate is too large");
    q->rate = (uint32_t)rate;
    req->op_case = MAYFLY__API__REQUEST__OP_QUOTA_SET;
    req->quota_set = q;
    return 0;
}

static int build_quota_list(const struct mf_cli_args *a, struct mf_cli_arena *ar, FILE *in,
                            Mayfly__Api__Request *req, char *err, size_t err_len)
{
    (void)a, (void)in, (void)err, (void)err_len;
    req->op_case = MAYFLY__API__REQUEST__OP_QUOTA_LIST;
    req->quota_list =
        MSG(ar, Mayfly__Api__QuotaListRequest, mayfly__api__quota_list_request__init);
    return 0;
}

static int build_alarm_list(const struct mf_cli_args *a, struct mf_cli_arena *ar, FILE *in,
                            Mayfly__Api__Request *req, char *err, size_t err_len)
{
    (void)a, (void)in, (void)err, (void)err_len;
    req->op_case = MAYFLY__API__REQUEST__OP_ALARM_LIST;
    req->alarm_list =
        MSG(ar, Mayfly__Api__AlarmListRequest, mayfly__api__alarm_list_request__init);
    return 0;
}

static int build_transfer_leader(const struct mf_cli_args *a, struct mf_cli_arena *ar, FILE *in,
                                 Mayfly__Api__Request *req, char *err, size_t err_len)
{
    (void)in;
    Mayfly__Api__TransferLeaderRequest *m = MSG(ar, Mayfly__Api__TransferLeaderRequest,
                                                mayfly__api__transfer_leader_request__init);
    int rc = flag_u64(a, "to", &m->to, err, err_len);
    if (rc)
        return rc;
    if (mf_cli_flag_set(a, "to") && m->to == 0)
        return mf_err_set(err, err_len, MF_EINVAL, "-to: node ids start at 1");
    req->op_case = MAYFLY__API__REQUEST__OP_TRANSFER_LEADER;
    req->transfer_leader = m;
    return 0;
}

static int build_step_down(const struct mf_cli_args *a, struct mf_cli_arena *ar, FILE *in,
                           Mayfly__Api__Request *req, char *err, size_t err_len)
{
    (void)a, (void)in, (void)err, (void)err_len;
    req->op_case = MAYFLY__API__REQUEST__OP_STEP_DOWN;
    req->step_down = MSG(ar, Mayfly__Api__StepDownRequest, mayfly__api__step_down_request__init);
    return 0;
}

static int build_members_list(const struct mf_cli_args *a, struct mf_cli_arena *ar, FILE *in,
                              Mayfly__Api__Request *req, char *err, size_t err_len)
{
    (void)a, (void)in, (void)err, (void)err_len;
    req->op_case = MAYFLY__API__REQUEST__OP_MEMBERS_LIST;
    req->members_list =
        MSG(ar, Mayfly__Api__MembersListRequest, mayfly__api__members_list_request__init);
    return 0;
}

/* ---- operator members add / promote / remove ---- */

static int build_members_add(const struct mf_cli_args *a, struct mf_cli_arena *ar, FILE *in,
                             Mayfly__Api__Request *req, char *err, size_t err_len)
{
    (void)in;
    Mayfly__Api__MembersAddRequest *m =
        MSG(ar, Mayfly__Api__MembersAddRequest, mayfly__api__members_add_request__init);
    int rc = flag_u64(a, "id", &m->id, err, err_len);
    if (rc)
        return rc;
    if (m->id == 0)
        return mf_err_set(err, err_len, MF_EINVAL, "-id N is required (node ids start at 1)");
    const char *addr = mf_cli_flag(a, "addr"), *api = mf_cli_flag(a, "api-addr");
    if (!addr || !*addr)
        return mf_err_set(err, err_len, MF_EINVAL, "-addr PEER_ADDR (host:port) is required");
    if (!api || !*api)
        return mf_err_set(err, err_len, MF_EINVAL, "-api-addr ADDR (host:port) is required");
    const char *zone = mf_cli_flag(a, "zone");
    m->addr = mf_cli_arena_strdup(ar, addr);
    m->api_addr = mf_cli_arena_strdup(ar, api);
    m->zone = mf_cli_arena_strdup(ar, zone ? zone : "");
    m->force = mf_cli_flag_set(a, "force");
    req->op_case = MAYFLY__API__REQUEST__OP_MEMBERS_ADD;
    req->members_add = m;
    return 0;
}

static int member_id_arg(const struct mf_cli_args *a, uint64_t *id, char *err, size_t err_len)
{
    int rc = parse_u64("N", a->pos[0], id, err, err_len);
    if (!rc && *id == 0)
        rc = mf_err_set(err, err_len, MF_EINVAL, "node ids start at 1");
    return rc;
}

static int build_members_promote(const struct mf_cli_args *a, struct mf_cli_arena *ar, FILE *in,
                                 Mayfly__Api__Request *req, char *err, size_t err_len)
{
    (void)in;
    Mayfly__Api__MembersPromoteRequest *m =
        MSG(ar, Mayfly__Api__MembersPromoteRequest, mayfly__api__members_promote_request__init);
    int rc = member_id_arg(a, &m->id, err, err_len);
    if (rc)
        return rc;
    m->force = mf_cli_flag_set(a, "force");
    req->op_case = MAYFLY__API__REQUEST__OP_MEMBERS_PROMOTE;
    req->members_promote = m;
    return 0;
}

static int build_members_remove(const struct mf_cli_args *a, struct mf_cli_arena *ar, FILE *in,
                                Mayfly__Api__Request *req, char *err, size_t err_len)
{
    (void)in;
    Mayfly__Api__MembersRemoveRequest *m =
        MSG(ar, Mayfly__Api__MembersRemoveRequest, mayfly__api__members_remove_request__init);
    int rc = member_id_arg(a, &m->id, err, err_len);
    if (rc)
        return rc;
    m->force = mf_cli_flag_set(a, "force");
    req->op_case = MAYFLY__API__REQUEST__OP_MEMBERS_REMOVE;
    req->members_remove = m;
    return 0;
}

static int build_alarm_disarm(const struct mf_cli_args *a, struct mf_cli_arena *ar, FILE *in,
                              Mayfly__Api__Request *req, char *err, size_t err_len)
{
    (void)a, (void)in, (void)err, (void)err_len;
    req->op_case = MAYFLY__API__REQUEST__OP_ALARM_DISARM;
    req->alarm_disarm =
        MSG(ar, Mayfly__Api__AlarmDisarmRequest, mayfly__api__alarm_disarm_request__init);
    return 0;
}

static int build_quota_delete(const struct mf_cli_args *a, struct mf_cli_arena *ar, FILE *in,
                              Mayfly__Api__Request *req, char *err, size_t err_len)
{
    (void)in, (void)err, (void)err_len;
    Mayfly__Api__QuotaDeleteRequest *q =
        MSG(ar, Mayfly__Api__QuotaDeleteRequest, mayfly__api__quota_delete_request__init);
    q->name = mf_cli_arena_strdup(ar, a->pos[0]);
    req->op_case = MAYFLY__API__REQUEST__OP_QUOTA_DELETE;
    req->quota_delete = q;
    return 0;
}

/* policy check [-token T | -policy P ...] [-remote-addr IP] [-claims JSON] OP PATH.
 * Without -token and -policy it checks the caller's own token. */
static int build_policy_check(const struct mf_cli_args *a, struct mf_cli_arena *ar, FILE *in,
                              Mayfly__Api__Request *req, char *err, size_t err_len)
{
    static const char *const caps[] = {"read", "create", "update", "delete", "list", "sudo"};
    Mayfly__Api__PolicyCheckRequest *c =
        MSG(ar, Mayfly__Api__PolicyCheckRequest, mayfly__api__policy_check_request__init);
    bool known = false;
    for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++)
        known |= strcmp(a->pos[0], caps[i]) == 0;
    if (!known)
        return mf_err_set(err, err_len, MF_EINVAL,
                          "'%s' is not an operation: read, create, update, delete, list or sudo",
                          a->pos[0]);
    c->capability = mf_cli_arena_strdup(ar, a->pos[0]);
    c->path = mf_cli_arena_strdup(ar, a->pos[1]);
    c->policies = flag_all(a, ar, "policy", &c->n_policies);
    if (c->n_policies && a->g.token_arg)
        return mf_err_set(err, err_len, MF_EINVAL,
                          "policy check takes -token T or -policy P, not both (the caller's "
                          "token then comes from MAYFLY_TOKEN)");
    const char *token = c->n_policies ? "" : a->g.token_arg ? a->g.token_arg : a->g.token;
    if (!token)
        return mf_err_set(err, err_len, MF_EINVAL,
                          "policy check needs -token T or -policy P (or MAYFLY_TOKEN)");
    c->token = mf_cli_arena_strdup(ar, token);
    if (mf_cli_flag(a, "remote-addr"))
        c->remote_addr = mf_cli_arena_strdup(ar, mf_cli_flag(a, "remote-addr"));
    if (mf_cli_flag(a, "claims")) {
        int rc = json_arg(ar, in, "-claims", mf_cli_flag(a, "claims"), &c->claims_json, err,
                          err_len);
        if (rc)
            return rc;
    }
    req->op_case = MAYFLY__API__REQUEST__OP_POLICY_CHECK;
    req->policy_check = c;
    return 0;
}

/* ---- audit ---- */

static int build_audit_enable(const struct mf_cli_args *a, struct mf_cli_arena *ar, FILE *in,
                              Mayfly__Api__Request *req, char *err, size_t err_len)
{
    (void)in;
    const char *type = mf_cli_flag(a, "type");
    const char *path = mf_cli_flag(a, "path");
    if (!type || !path)
        return mf_err_set(err, err_len, MF_EINVAL, "audit enable needs -type file -path P");
    Mayfly__Api__AuditEnableRequest *e =
        MSG(ar, Mayfly__Api__AuditEnableRequest, mayfly__api__audit_enable_request__init);
    e->name = mf_cli_arena_strdup(ar, a->pos[0]);
    e->type = mf_cli_arena_strdup(ar, type);
    e->path = mf_cli_arena_strdup(ar, path);
    req->op_case = MAYFLY__API__REQUEST__OP_AUDIT_ENABLE;
    req->audit_enable = e;
    return 0;
}

static int build_audit_disable(const struct mf_cli_args *a, struct mf_cli_arena *ar, FILE *in,
                               Mayfly__Api__Request *req, char *err, size_t err_len)
{
    (void)in, (void)err, (void)err_len;
    Mayfly__Api__AuditDisableRequest *d =
        MSG(ar, Mayfly__Api__AuditDisableRequest, mayfly__api__audit_disable_request__init);
    d->name = mf_cli_arena_strdup(ar, a->pos[0]);
    req->op_case = MAYFLY__API__REQUEST__OP_AUDIT_DISABLE;
    req->audit_disable = d;
    return 0;
}

static int build_audit_list(const struct mf_cli_args *a, struct mf_cli_arena *ar, FILE *in,
                            Mayfly__Api__Request *req, char *err, size_t err_len)
{
    (void)a, (void)in, (void)err, (void)err_len;
    req->op_case = MAYFLY__API__REQUEST__OP_AUDIT_LIST;
    req->audit_list = MSG(ar, Mayfly__Api__AuditListRequest, mayfly__api__audit_list_request__init);
    return 0;
}

static int build_audit_hash(const struct mf_cli_args *a, struct mf_cli_arena *ar, FILE *in,
                            Mayfly__Api__Request *req, char *err, size_t err_len)
{
    (void)in, (void)err, (void)err_len;
    Mayfly__Api__AuditHashRequest *h =
        MSG(ar, Mayfly__Api__AuditHashRequest, mayfly__api__audit_hash_request__init);
    h->value = mf_cli_arena_strdup(ar, a->pos[0]);
    req->op_case = MAYFLY__API__REQUEST__OP_AUDIT_HASH;
    req->audit_hash = h;
    return 0;
}

/* The "file" member of the first line of audit file `path` (the id whose
 * anchors the server answers), into id; "" when it cannot be read: the file
 * is then verified without anchors, and fails at line 1 anyway. */
static void audit_file_id(const char *path, char id[MF_AUDIT_FILE_ID_LEN + 1])
{
    id[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len = getline(&line, &cap, f);
    fclose(f);
    json_error_t je;
    json_t *obj = len > 0 ? json_loadb(line, (size_t)len, JSON_REJECT_DUPLICATES, &je) : NULL;
    const char *v = json_string_value(json_object_get(obj, "file"));
    if (mf_audit_file_id_valid(v))
        memcpy(id, v, MF_AUDIT_FILE_ID_LEN + 1);
    json_decref(obj);
    free(line);
}

/* audit verify FILE: asks the chain key and the file's anchors, then
 * verifies locally (the renderer). */
static int build_audit_verify(const struct mf_cli_args *a, struct mf_cli_arena *ar, FILE *in,
                              Mayfly__Api__Request *req, char *err, size_t err_len)
{
    (void)in;
    if (access(a->pos[0], R_OK) != 0)
        return mf_err_set(err, err_len, MF_EINVAL, "%s: cannot read: %s", a->pos[0],
                          strerror(errno));
    char id[MF_AUDIT_FILE_ID_LEN + 1];
    audit_file_id(a->pos[0], id);
    req->op_case = MAYFLY__API__REQUEST__OP_AUDIT_VERIFY_KEY;
    req->audit_verify_key =
        MSG(ar, Mayfly__Api__AuditVerifyKeyRequest, mayfly__api__audit_verify_key_request__init);
    req->audit_verify_key->file_id = mf_cli_arena_strdup(ar, id);
    return 0;
}

const char *mf_cli_caller_token(const struct mf_cli_args *a)
{
    bool check = a->cmd && a->cmd->build == build_policy_check;
    if (check && a->g.token_arg && a->g.token_env)
        return a->g.token_env;
    return a->g.token;
}

/* ---- renderers ---- */

/* Alarms as CLI.md shows them: [{"node_id", "kind", "since_ms", "detail"}]. */
static json_t *alarms_json(Mayfly__Api__AlarmInfo **list, size_t n, bool since)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        const Mayfly__Api__AlarmInfo *x = list[i];
        json_t *o = json_pack("{s:I, s:s}", "node_id", (json_int_t)x->node_id, "kind", x->kind);
        if (o && since)
            json_object_set_new(o, "since_ms", json_integer((json_int_t)x->since_ms));
        if (o)
            json_object_set_new(o, "detail", json_string(x->detail));
        json_array_append_new(arr, o);
    }
    return arr;
}

static json_t *json_alarm_list(const struct mf_cli_args *a, const Mayfly__Api__Response *r)
{
    (void)a;
    return json_pack("{s:o, s:o}", "alarms",
                     alarms_json(r->alarm_list->alarms, r->alarm_list->n_alarms, true), "read",
                     read_info_json(r->alarm_list->read));
}

static json_t *json_alarm_disarm(const struct mf_cli_args *a, const Mayfly__Api__Response *r)
{
    (void)a;
    return json_pack("{s:I, s:o}", "cleared", (json_int_t)r->alarm_disarm->cleared, "kept",
                     alarms_json(r->alarm_disarm->kept, r->alarm_disarm->n_kept, false));
}

/* `status` as a person reads it: the generic table, then one line per
 * alarm ("alarms: storage on node 2 since 2026-...Z: DETAIL"). */
static void table_status(json_t *doc, FILE *out)
{
    json_t *alarms = json_incref(json_object_get(doc, "alarms"));
    json_object_del(doc, "alarms");
    mf_cli_render_doc(doc, out);
    size_t i;
    json_t *x;
    json_array_foreach(alarms, i, x) {
        time_t t = (time_t)(json_integer_value(json_object_get(x, "since_ms")) / 1000);
        struct tm tm;
        char when[32] = "?";
        if (gmtime_r(&t, &tm))
            strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
        fprintf(out, "%salarms: %s on node %lld since %s: %s\n", i ? "" : "\n",
                json_string_value(json_object_get(x, "kind")),
                (long long)json_integer_value(json_object_get(x, "node_id")), when,
                json_string_value(json_object_get(x, "detail")));
    }
    json_decref(alarms);
}

/* A member's role, reachability and feature level; its lag and match index
 * only from the leader (the one that knows them). */
static void status_member_extra(const Mayfly__Api__StatusResponse *s, const Mayfly__Api__Member *m,
                                json_t *mj)
{
    if (!mj || !m->role || !*m->role)
        return; /* an older server */
    json_object_set_new(mj, "role", json_string(m->role));
    json_object_set_new(mj, "reachable", json_boolean(m->reachable));
    if (s->role && strcmp(s->role, "leader") == 0) {
        json_object_set_new(mj, "match_index", json_integer((json_int_t)m->match_index));
        json_object_set_new(mj, "lag_entries", json_integer((json_int_t)m->lag_entries));
    }
    if (m->feature_level)
        json_object_set_new(mj, "feature_level", json_integer(m->feature_level));
}

static json_t *json_status(const struct mf_cli_args *a, const Mayfly__Api__Response *r)
{
    (void)a;
    const Mayfly__Api__StatusResponse *s = r->status;
    json_t *members = json_array();
    for (size_t i = 0; i < s->n_members; i++) {
        const Mayfly__Api__Member *m = s->members[i];
        json_t *mj = json_pack("{s:I, s:s, s:b, s:o}", "id", (json_int_t)m->id, "addr", m->addr,
                               "voter", m->voter, "zone", str_or_null(m->zone));
        status_member_extra(s, m, mj);
        json_array_append_new(members, mj);
    }
    json_t *out = json_pack("{s:I, s:s, s:I, s:o, s:I, s:I, s:I, s:b, s:b, s:o, s:o}", "node_id",
                     (json_int_t)s->node_id, "role", s->role, "leader_id",
                     (json_int_t)s->leader_id, "leader_addr", str_or_null(s->leader_addr), "term",
                     (json_int_t)s->term, "commit_index", (json_int_t)s->commit_index,
                     "applied_index", (json_int_t)s->applied_index, "sealed", s->sealed,
                     "initialized", s->initialized, "members", members, "read",
                     read_info_json(s->read));
    const Mayfly__Api__ClockStatus *c = s->clock;
    if (out && c)
        json_object_set_new(out, "clock",
                            json_pack("{s:b, s:b, s:I, s:i, s:i, s:I, s:I}", "agrees", c->agrees,
                                      "measured", c->measured, "offset_ms",
                                      (json_int_t)c->offset_ms, "agreeing", (int)c->agreeing,
                                      "voters", (int)c->voters, "max_skew_ms",
                                      (json_int_t)c->max_skew_ms, "refusals",
                                      (json_int_t)c->refusals));
    if (out && s->read) { /* a full status (a token with read on sys/status) */
        json_object_set_new(out, "alarms", alarms_json(s->alarms, s->n_alarms, true));
        json_object_set_new(out, "storage_blocked", str_or_null(s->storage_blocked));
    }
    if (out && s->cluster_version) {
        json_object_set_new(out, "cluster_version", json_integer(s->cluster_version));
        json_object_set_new(out, "feature_level", json_integer(s->feature_level));
    }
    return out;
}

static json_t *json_init(const struct mf_cli_args *a, const Mayfly__Api__Response *r)
{
    (void)a;
    json_t *shares = json_array();
    for (size_t i = 0; i < r->init->n_shares; i++)
        json_array_append_new(shares, json_string(r->init->shares[i]));
    return json_pack("{s:o, s:i, s:s}", "shares", shares, "threshold", (int)r->init->threshold,
                     "root_token", r->init->root_token);
}

static json_t *json_generate_root(const struct mf_cli_args *a, const Mayfly__Api__Response *r)
{
    const Mayfly__Api__GenerateRootResponse *g = r->generate_root;
    if (mf_cli_flag_set(a, "cancel"))
        return json_object();
    if (mf_cli_flag_set(a, "init"))
        return json_pack("{s:s, s:s, s:i, s:I}", "nonce", g->nonce, "otp", g->otp, "threshold",
                         (int)g->threshold, "expire_at_ms", (json_int_t)g->expire_at_ms);
    json_t *doc = json_pack("{s:i, s:i}", "progress", (int)g->progress, "threshold",
                            (int)g->threshold);
    if (g->encoded_root_token[0])
        json_object_set_new(doc, "encoded_root_token", json_string(g->encoded_root_token));
    return doc;
}

static json_t *json_unseal(const struct mf_cli_args *a, const Mayfly__Api__Response *r)
{
    (void)a;
    return json_pack("{s:b, s:i, s:i}", "sealed", r->unseal->sealed, "progress",
                     (int)r->unseal->progress, "threshold", (int)r->unseal->threshold);
}

static json_t *json_empty(const struct mf_cli_args *a, const Mayfly__Api__Response *r)
{
    (void)a, (void)r;
    return json_object();
}

static json_t *json_transfer_leader(const struct mf_cli_args *a,
                                    const Mayfly__Api__Response *r)
{
    (void)a;
    return json_pack("{s:I}", "leader_id", (json_int_t)r->transfer_leader->leader_id);
}

/* last_contact_ms: null when the leader never heard from the member. */
static json_t *json_members_list(const struct mf_cli_args *a, const Mayfly__Api__Response *r)
{
    (void)a;
    const Mayfly__Api__MembersListResponse *l = r->members_list;
    json_t *members = json_array();
    for (size_t i = 0; i < l->n_members; i++) {
        const Mayfly__Api__MemberView *m = l->members[i];
        json_t *contact = m->last_contact_ms < 0 ? json_null()
                                                 : json_integer((json_int_t)m->last_contact_ms);
        json_array_append_new(
            members, json_pack("{s:I, s:o, s:o, s:o, s:b, s:b, s:o, s:I, s:I}", "id",
                               (json_int_t)m->id, "addr", str_or_null(m->addr), "api_addr",
                               str_or_null(m->api_addr), "zone", str_or_null(m->zone), "voter",
                               m->voter, "reachable", m->reachable, "last_contact_ms", contact,
                               "match_index", (json_int_t)m->match_index, "lag_entries",
                               (json_int_t)m->lag_entries));
    }
    return json_pack("{s:o, s:I}", "members", members, "leader_id", (json_int_t)l->leader_id);
}

/* `operator members list` as a person reads it: one aligned row per member,
 * the leader's role says "leader". */
static void table_members_list(json_t *doc, FILE *out)
{
    json_int_t leader = json_integer_value(json_object_get(doc, "leader_id"));
    fprintf(out, "%-4s %-21s %-21s %-8s %-7s %-9s %-12s %-10s %s\n", "ID", "ADDR", "API_ADDR",
            "ZONE", "ROLE", "REACHABLE", "LAST_CONTACT", "MATCH", "LAG");
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(doc, "members"), i, m) {
        json_int_t id = json_integer_value(json_object_get(m, "id"));
        json_t *contact = json_object_get(m, "last_contact_ms");
        char ago[32] = "never";
        if (json_is_integer(contact))
            snprintf(ago, sizeof(ago), "%lld ms", (long long)json_integer_value(contact));
        const char *role = id == leader ? "leader"
                           : json_is_true(json_object_get(m, "voter")) ? "voter"
                                                                       : "learner";
        const char *addr = json_string_value(json_object_get(m, "addr"));
        const char *api = json_string_value(json_object_get(m, "api_addr"));
        const char *zone = json_string_value(json_object_get(m, "zone"));
        fprintf(out, "%-4lld %-21s %-21s %-8s %-7s %-9s %-12s %-10lld %lld\n", (long long)id,
                addr ? addr : "-", api ? api : "-", zone ? zone : "-", role,
                json_is_true(json_object_get(m, "reachable")) ? "yes" : "no", ago,
                (long long)json_integer_value(json_object_get(m, "match_index")),
                (long long)json_integer_value(json_object_get(m, "lag_entries")));
    }
}

static json_t *json_kv_put(const struct mf_cli_args *a, const Mayfly__Api__Response *r)
{
    (void)a;
    return json_pack("{s:s, s:I}", "path", r->kv_put->path, "version",
                     (json_int_t)r->kv_put->version);
}

static json_t *json_kv_get(const struct mf_cli_args *a, const Mayfly__Api__Response *r)
{
    const Mayfly__Api__KvGetResponse *g = r->kv_get;
    const char *field = mf_cli_flag(a, "field");
    json_t *data = json_object();
    for (size_t i = 0; i < g->n_data; i++)
        if (!field || strcmp(field, g->data[i]->key) == 0)
            json_object_set_new(data, g->data[i]->key, json_string(g->data[i]->value));
    return json_pack("{s:s, s:I, s:I, s:o, s:o, s:o}", "path", g->path, "version",
                     (json_int_t)g->version, "created_ms", (json_int_t)g->created_ms, "lease_id",
                     str_or_null(g->lease_id), "data", data, "read", read_info_json(g->read));
}

static json_t *json_kv_list(const struct mf_cli_args *a, const Mayfly__Api__Response *r)
{
    (void)a;
    json_t *keys = json_array();
    for (size_t i = 0; i < r->kv_list->n_keys; i++)
        json_array_append_new(keys, json_string(r->kv_list->keys[i]));
    return json_pack("{s:o, s:o, s:o}", "keys", keys, "next", str_or_null(r->kv_list->next),
                     "read", read_info_json(r->kv_list->read));
}

static json_t *json_kv_meta(const struct mf_cli_args *a, const Mayfly__Api__Response *r)
{
    (void)a;
    const Mayfly__Api__KvMetadataGetResponse *m = r->kv_metadata_get;
    json_t *versions = json_object();
    for (size_t i = 0; i < m->n_versions; i++) {
        char key[24];
        const Mayfly__Api__KvVersionMeta *v = m->versions[i]->value;
        snprintf(key, sizeof(key), "%" PRIu64, m->versions[i]->key);
        json_object_set_new(versions, key,
                            json_pack("{s:I, s:o, s:b}", "created_ms",
                                      (json_int_t)(v ? v->created_ms : 0), "deleted_ms",
                                      v && v->deleted_ms ? json_integer((json_int_t)v->deleted_ms)
                                                         : json_null(),
                                      "destroyed", v ? v->destroyed : 0));
    }
    return json_pack("{s:s, s:I, s:I, s:i, s:b, s:o, s:o}", "path", m->path, "current_version",
                     (json_int_t)m->current_version, "oldest_version",
                     (json_int_t)m->oldest_version, "max_versions", (int)m->max_versions,
                     "cas_required", m->cas_required, "versions", versions, "read",
                     read_info_json(m->read));
}

static json_t *json_lease_grant(const struct mf_cli_args *a, const Mayfly__Api__Response *r)
{
    (void)a;
    const Mayfly__Api__LeaseGrantResponse *g = r->lease_grant;
    return json_pack("{s:s, s:I, s:I, s:I, s:I}", "lease_id", g->lease_id, "ttl_ms",
                     (json_int_t)g->ttl_ms, "max_ttl_ms", (json_int_t)g->max_ttl_ms, "issued_ms",
                     (json_int_t)g->issued_ms, "expire_at_ms", (json_int_t)g->expire_at_ms);
}

static json_t *json_lease_renew(const struct mf_cli_args *a, const Mayfly__Api__Response *r)
{
    (void)a;
    const Mayfly__Api__LeaseRenewResponse *g = r->lease_renew;
    return json_pack("{s:s, s:I, s:I}", "lease_id", g->lease_id, "ttl_ms", (json_int_t)g->ttl_ms,
                     "expire_at_ms", (json_int_t)g->expire_at_ms);
}

static json_t *json_lease_revoke(const struct mf_cli_args *a, const Mayfly__Api__Response *r)
{
    (void)a;
    return json_pack("{s:I}", "revoked", (json_int_t)r->lease_revoke->revoked);
}

static json_t *lease_info_json(const Mayfly__Api__LeaseInfo *l)
{
    return json_pack("{s:s, s:s, s:I, s:I, s:I, s:b, s:o, s:o}", "lease_id", l->lease_id, "state",
                     mf_cli_lease_state_name(l->state), "issued_ms", (json_int_t)l->issued_ms,
                     "expire_at_ms", (json_int_t)l->expire_at_ms, "max_expire_at_ms",
                     (json_int_t)l->max_expire_at_ms, "renewable", l->renewable, "engine",
                     str_or_null(l->engine), "last_error", str_or_null(l->last_error));
}

static json_t *json_lease_lookup(const struct mf_cli_args *a, const Mayfly__Api__Response *r)
{
    (void)a;
    if (!r->lease_lookup->lease)
        return NULL;
    json_t *o = lease_info_json(r->lease_lookup->lease);
    json_object_set_new(o, "read", read_info_json(r->lease_lookup->read));
    return o;
}

static json_t *json_lease_list(const struct mf_cli_args *a, const Mayfly__Api__Response *r)
{
    (void)a;
    json_t *leases = json_array();
    for (size_t i = 0; i < r->lease_list->n_leases; i++)
        json_array_append_new(leases, lease_info_json(r->lease_list->leases[i]));
    return json_pack("{s:o, s:o, s:o}", "leases", leases, "next",
                     str_or_null(r->lease_list->next), "read",
                     read_info_json(r->lease_list->read));
}

static json_t *json_creds_issue(const struct mf_cli_args *a, const Mayfly__Api__Response *r)
{
    (void)a;
    const Mayfly__Api__CredsIssueResponse *c = r->creds_issue;
    json_t *data = json_object();
    for (size_t i = 0; i < c->n_data; i++)
        json_object_set_new(data, c->data[i]->key, json_string(c->data[i]->value));
    return json_pack("{s:s, s:I, s:o}", "lease_id", c->lease_id, "expire_at_ms",
                     (json_int_t)c->expire_at_ms, "data", data);
}

static json_t *json_token_create(const struct mf_cli_args *a, const Mayfly__Api__Response *r)
{
    (void)a;
    const Mayfly__Api__TokenCreateResponse *t = r->token_create;
    return json_pack("{s:s, s:s, s:I, s:I, s:o}", "token", t->token, "accessor", t->accessor,
                     "ttl_ms", (json_int_t)t->ttl_ms, "expire_at_ms", (json_int_t)t->expire_at_ms,
                     "lease_id", str_or_null(t->lease_id));
}

static json_t *json_token_lookup(const struct mf_cli_args *a, const Mayfly__Api__Response *r)
{
    (void)a;
    const Mayfly__Api__TokenLookupResponse *t = r->token_lookup;
    return json_pack("{s:s, s:I, s:I, s:o, s:b, s:o}", "accessor", t->accessor, "ttl_ms",
                     (json_int_t)t->ttl_ms, "expire_at_ms", (json_int_t)t->expire_at_ms,
                     "parent_accessor", str_or_null(t->parent_accessor), "orphan", t->orphan,
                     "read", read_info_json(t->read));
}

static json_t *json_engine_list(const struct mf_cli_args *a, const Mayfly__Api__Response *r)
{
    (void)a;
    json_t *engines = json_array();
    for (size_t i = 0; i < r->engine_list->n_engines; i++) {
        const Mayfly__Api__EngineInfo *e = r->engine_list->engines[i];
        json_t *roles = json_array();
        for (size_t k = 0; k < e->n_roles; k++)
            json_array_append_new(roles, json_string(e->roles[k]));
        json_array_append_new(engines, json_pack("{s:s, s:s, s:o}", "mount", e->mount, "type",
                                                 e->type, "roles", roles));
    }
    return json_pack("{s:o, s:o}", "engines", engines, "read",
                     read_info_json(r->engine_list->read));
}

static json_t *json_engine_crl(const struct mf_cli_args *a, const Mayfly__Api__Response *r)
{
    (void)a;
    return json_pack("{s:s}", "crl_pem", r->engine_crl->crl_pem);
}

static json_t *json_token_renew(const struct mf_cli_args *a, const Mayfly__Api__Response *r)
{
    (void)a;
    return json_pack("{s:I, s:I}", "ttl_ms", (json_int_t)r->token_renew->ttl_ms, "expire_at_ms",
                     (json_int_t)r->token_renew->expire_at_ms);
}

static json_t *json_auth_list(const struct mf_cli_args *a, const Mayfly__Api__Response *r)
{
    (void)a;
    json_t *auth = json_array();
    for (size_t i = 0; i < r->auth_list->n_auth; i++) {
        const Mayfly__Api__AuthMountInfo *e = r->auth_list->auth[i];
        json_t *roles = json_array();
        for (size_t k = 0; k < e->n_roles; k++)
            json_array_append_new(roles, json_string(e->roles[k]));
        json_array_append_new(auth, json_pack("{s:s, s:s, s:o}", "mount", e->mount, "type",
                                              e->type, "roles", roles));
    }
    return json_pack("{s:o, s:o}", "auth", auth, "read", read_info_json(r->auth_list->read));
}

static json_t *json_login(const struct mf_cli_args *a, const Mayfly__Api__Response *r)
{
    (void)a;
    const Mayfly__Api__LoginResponse *l = r->login;
    json_t *policies = json_array();
    for (size_t i = 0; i < l->n_policies; i++)
        json_array_append_new(policies, json_string(l->policies[i]));
    json_t *meta = json_object();
    for (size_t i = 0; i < l->n_metadata; i++)
        json_object_set_new(meta, l->metadata[i]->key, json_string(l->metadata[i]->value));
    return json_pack("{s:s, s:s, s:o, s:I, s:I, s:o}", "token", l->token, "accessor",
                     l->accessor, "policies", policies, "ttl_ms", (json_int_t)l->ttl_ms,
                     "expire_at_ms", (json_int_t)l->expire_at_ms, "metadata", meta);
}

static json_t *json_policy_read(const struct mf_cli_args *a, const Mayfly__Api__Response *r)
{
    (void)a;
    json_error_t je;
    json_t *policy = json_loads(r->policy_read->policy_json, 0, &je);
    if (!json_is_object(policy)) {
        json_decref(policy);
        return NULL;
    }
    return json_pack("{s:s, s:o, s:o}", "name", r->policy_read->name, "policy", policy, "read",
                     read_info_json(r->policy_read->read));
}

/* `policy read` as a person reads it: the document, indented. */
static void table_policy_read(json_t *doc, FILE *out)
{
    char *text = json_dumps(json_object_get(doc, "policy"), JSON_INDENT(2) | JSON_SORT_KEYS);
    if (text)
        fprintf(out, "%s\n", text);
    free(text);
}

static json_t *json_policy_list(const struct mf_cli_args *a, const Mayfly__Api__Response *r)
{
    (void)a;
    json_t *names = json_array();
    for (size_t i = 0; i < r->policy_list->n_names; i++)
        json_array_append_new(names, json_string(r->policy_list->names[i]));
    return json_pack("{s:o, s:o}", "policies", names, "read",
                     read_info_json(r->policy_list->read));
}

static json_t *json_quota_list(const struct mf_cli_args *a, const Mayfly__Api__Response *r)
{
    (void)a;
    json_t *quotas = json_array();
    for (size_t i = 0; i < r->quota_list->n_quotas; i++) {
        const Mayfly__Api__QuotaInfo *q = r->quota_list->quotas[i];
        json_array_append_new(quotas, json_pack("{s:s, s:s, s:I, s:I}", "name", q->name,
                                                "prefix", q->prefix, "max_leases",
                                                (json_int_t)q->max_leases, "live_leases",
                                                (json_int_t)q->live_leases));
    }
    return json_pack("{s:o, s:o}", "quotas", quotas, "read",
                     read_info_json(r->quota_list->read));
}

static json_t *json_policy_check(const struct mf_cli_args *a, const Mayfly__Api__Response *r)
{
    (void)a;
    const Mayfly__Api__PolicyCheckResponse *c = r->policy_check;
    json_t *caps = json_array();
    for (size_t i = 0; i < c->n_capabilities; i++)
        json_array_append_new(caps, json_string(c->capabilities[i]));
    return json_pack("{s:b, s:o, s:o, s:o, s:s}", "allowed", c->allowed, "policy",
                     str_or_null(c->policy), "rule", str_or_null(c->rule), "capabilities", caps,
                     "reason", c->reason);
}

static json_t *json_audit_list(const struct mf_cli_args *a, const Mayfly__Api__Response *r)
{
    (void)a;
    json_t *devs = json_array();
    for (size_t i = 0; i < r->audit_list->n_devices; i++) {
        const Mayfly__Api__AuditDevice *d = r->audit_list->devices[i];
        json_array_append_new(devs, json_pack("{s:s, s:s, s:s}", "name", d->name, "type",
                                              d->type, "path", d->path));
    }
    return json_pack("{s:o, s:o}", "devices", devs, "read", read_info_json(r->audit_list->read));
}

static json_t *json_audit_hash(const struct mf_cli_args *a, const Mayfly__Api__Response *r)
{
    (void)a;
    return json_pack("{s:s}", "hash", r->audit_hash->hash);
}

/* The local half of `audit verify`: the file against the chain key. */
static json_t *json_audit_verify(const struct mf_cli_args *a, const Mayfly__Api__Response *r)
{
    const char *hex = r->audit_verify_key->chain_key_hex;
    uint8_t key[32];
    if (strlen(hex) != 64)
        return NULL;
    for (size_t i = 0; i < 32; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1)
            return NULL;
        key[i] = (uint8_t)v;
    }
    /* The anchors the cluster committed for this file (malformed ones are
     * skipped: the verifier needs none to check the chain itself). */
    const Mayfly__Api__AuditVerifyKeyResponse *k = r->audit_verify_key;
    struct mf_audit_anchor *an = calloc(k->n_anchors ? k->n_anchors : 1, sizeof(*an));
    size_t n = 0;
    uint64_t anchored = 0;
    for (size_t i = 0; an && i < k->n_anchors; i++) {
        const Mayfly__Api__AuditVerifyKeyAnchor *x = k->anchors[i];
        json_t *o = json_pack("{s:s, s:s, s:I}", "chain", x->chain_hex ? x->chain_hex : "",
                              "file", x->file_id ? x->file_id : "", "seq", (json_int_t)x->seq);
        if (o && mf_audit_anchor_from_json(o, &an[n]) == 0) {
            anchored = an[n].seq > anchored ? an[n].seq : anchored;
            n++;
        }
        json_decref(o);
    }
    struct mf_audit_verify_result res;
    int rc = an ? mf_audit_verify_file(a->pos[0], key, an, n, &res) : -ENOMEM;
    OPENSSL_cleanse(key, sizeof(key));
    free(an);
    if (rc)
        return json_pack("{s:b, s:I, s:s}", "ok", 0, "line", (json_int_t)0, "reason",
                         mf_strerror(rc));
    if (res.ok)
        return json_pack("{s:b, s:I, s:I, s:I}", "ok", 1, "records", (json_int_t)res.records,
                         "anchors_checked", (json_int_t)res.anchors_checked, "anchored_seq",
                         (json_int_t)anchored);
    return json_pack("{s:b, s:I, s:s, s:I}", "ok", 0, "line", (json_int_t)res.line, "reason",
                     res.reason, "anchors_checked", (json_int_t)res.anchors_checked);
}

/* ---- keys: rotate, key-status, rekey ---- */

static int build_rotate(const struct mf_cli_args *a, struct mf_cli_arena *ar, FILE *in,
                        Mayfly__Api__Request *req, char *err, size_t err_len)
{
    (void)a, (void)in, (void)err, (void)err_len;
    req->op_case = MAYFLY__API__REQUEST__OP_ROTATE;
    req->rotate = MSG(ar, Mayfly__Api__RotateRequest, mayfly__api__rotate_request__init);
    return 0;
}

static int build_key_status(const struct mf_cli_args *a, struct mf_cli_arena *ar, FILE *in,
                            Mayfly__Api__Request *req, char *err, size_t err_len)
{
    (void)a, (void)in, (void)err, (void)err_len;
    req->op_case = MAYFLY__API__REQUEST__OP_KEY_STATUS;
    req->key_status =
        MSG(ar, Mayfly__Api__KeyStatusRequest, mayfly__api__key_status_request__init);
    return 0;
}

/* operator rekey: exactly one of -init -shares N -threshold T, -nonce N
 * SHARE, -cancel. */
static int build_rekey(const struct mf_cli_args *a, struct mf_cli_arena *ar, FILE *in,
                       Mayfly__Api__Request *req, char *err, size_t err_len)
{
    (void)in;
    bool init = mf_cli_flag_set(a, "init"), cancel = mf_cli_flag_set(a, "cancel");
    const char *nonce = mf_cli_flag(a, "nonce");
    if (init + cancel + (nonce != NULL) != 1 || (nonce != NULL) != (a->pos_len == 1))
        return mf_err_set(err, err_len, MF_EINVAL,
                          "give one of -init -shares N -threshold T, -nonce N SHARE, -cancel");
    uint64_t shares = 0, threshold = 0;
    if (init) {
        int rc = flag_u64(a, "shares", &shares, err, err_len);
        if (!rc)
            rc = flag_u64(a, "threshold", &threshold, err, err_len);
        if (rc)
            return rc;
        if (shares < 1 || shares > 255 || threshold < 1 || threshold > shares)
            return mf_err_set(err, err_len, MF_EINVAL,
                              "-init needs 1 <= -threshold (%" PRIu64 ") <= -shares (%" PRIu64
                              ") <= 255",
                              threshold, shares);
    }
    req->op_case = MAYFLY__API__REQUEST__OP_REKEY;
    req->rekey = MSG(ar, Mayfly__Api__RekeyRequest, mayfly__api__rekey_request__init);
    req->rekey->mode = init     ? MAYFLY__API__REKEY_MODE__REKEY_INIT
                       : cancel ? MAYFLY__API__REKEY_MODE__REKEY_CANCEL
                                : MAYFLY__API__REKEY_MODE__REKEY_UPDATE;
    req->rekey->shares = (uint32_t)shares;
    req->rekey->threshold = (uint32_t)threshold;
    if (nonce) {
        req->rekey->nonce = mf_cli_arena_strdup(ar, nonce);
        req->rekey->share = mf_cli_arena_strdup(ar, a->pos[0]);
    }
    return 0;
}

static json_t *json_rotate(const struct mf_cli_args *a, const Mayfly__Api__Response *r)
{
    (void)a;
    return json_pack("{s:I}", "term", (json_int_t)r->rotate->term);
}

static json_t *json_key_status(const struct mf_cli_args *a, const Mayfly__Api__Response *r)
{
    (void)a;
    const Mayfly__Api__KeyStatusResponse *k = r->key_status;
    return json_pack("{s:I, s:I, s:I}", "term", (json_int_t)k->term, "install_ms",
                     (json_int_t)k->install_ms, "encryptions", (json_int_t)k->encryptions);
}

static json_t *json_rekey(const struct mf_cli_args *a, const Mayfly__Api__Response *r)
{
    const Mayfly__Api__RekeyResponse *k = r->rekey;
    if (mf_cli_flag_set(a, "cancel"))
        return json_object();
    if (mf_cli_flag_set(a, "init"))
        return json_pack("{s:s, s:I, s:i}", "nonce", k->nonce, "expire_at_ms",
                         (json_int_t)k->expire_at_ms, "threshold", (int)k->threshold);
    json_t *doc = json_pack("{s:i, s:i}", "progress", (int)k->progress, "threshold",
                            (int)k->threshold);
    if (k->n_shares) {
        json_t *shares = json_array();
        for (size_t i = 0; i < k->n_shares; i++)
            json_array_append_new(shares, json_string(k->shares[i]));
        json_object_set_new(doc, "shares", shares);
        json_object_set_new(doc, "new_threshold", json_integer(k->new_threshold));
    }
    return doc;
}

/* ---- the table ---- */

#define R(x) MAYFLY__API__RESPONSE__RESULT_##x

/* ---- operator snapshot save / restore: local commands of many requests
 * (snapshot.c); these build the first request and render an answer only so
 * the table stays one row per command. ---- */

static int build_snapshot_save(const struct mf_cli_args *a, struct mf_cli_arena *ar, FILE *in,
                               Mayfly__Api__Request *req, char *err, size_t err_len)
{
    (void)a, (void)in, (void)err, (void)err_len;
    req->op_case = MAYFLY__API__REQUEST__OP_SNAPSHOT_SAVE;
    req->snapshot_save =
        MSG(ar, Mayfly__Api__SnapshotSaveRequest, mayfly__api__snapshot_save_request__init);
    return 0;
}

static int build_snapshot_restore(const struct mf_cli_args *a, struct mf_cli_arena *ar, FILE *in,
                                  Mayfly__Api__Request *req, char *err, size_t err_len)
{
    (void)a, (void)in, (void)err, (void)err_len;
    req->op_case = MAYFLY__API__REQUEST__OP_SNAPSHOT_RESTORE;
    req->snapshot_restore =
        MSG(ar, Mayfly__Api__SnapshotRestoreRequest, mayfly__api__snapshot_restore_request__init);
    return 0;
}

static json_t *json_snapshot_save(const struct mf_cli_args *a, const Mayfly__Api__Response *r)
{
    (void)a;
    return json_pack("{s:I, s:I, s:I}", "index", (json_int_t)r->snapshot_save->index, "term",
                     (json_int_t)r->snapshot_save->term, "bytes",
                     (json_int_t)r->snapshot_save->total_bytes);
}

static json_t *json_snapshot_restore(const struct mf_cli_args *a, const Mayfly__Api__Response *r)
{
    (void)a;
    return json_pack("{s:I, s:I}", "index", (json_int_t)r->snapshot_restore->index, "term",
                     (json_int_t)r->snapshot_restore->term);
}

static const struct mf_cli_command commands[] = {
    {{"status"}, "", 0, 0, false, "mayfly status", build_status, R(STATUS), json_status},
    {{"operator", "init"}, "shares threshold", 0, 0, true,
     "mayfly operator init [-shares N] [-threshold T]", build_init, R(INIT), json_init},
    {{"operator", "unseal"}, "", 1, 1, false, "mayfly operator unseal SHARE", build_unseal,
     R(UNSEAL), json_unseal},
    {{"operator", "seal"}, "", 0, 0, false, "mayfly operator seal", build_seal, R(EMPTY),
     json_empty},
    {{"operator", "generate-root"}, "init nonce cancel decode otp", 0, 1, false,
     "mayfly operator generate-root -init | -nonce N SHARE | -cancel | -decode ENCODED -otp OTP",
     build_generate_root, R(GENERATE_ROOT), json_generate_root},
    {{"kv", "put"}, "cas lease", 2, -1, true,
     "mayfly kv put [-cas N] [-lease ID] PATH KEY=VALUE [KEY=@FILE] [KEY=-] ...", build_kv_put,
     R(KV_PUT), json_kv_put},
    {{"kv", "get"}, "version field", 1, 1, false, "mayfly kv get [-version N] [-field KEY] PATH",
     build_kv_get, R(KV_GET), json_kv_get},
    {{"kv", "delete"}, "versions", 1, 1, true, "mayfly kv delete [-versions 1,2] PATH",
     build_kv_delete, R(EMPTY), json_empty},
    {{"kv", "undelete"}, "versions", 1, 1, true, "mayfly kv undelete -versions 1,2 PATH",
     build_kv_undelete, R(EMPTY), json_empty},
    {{"kv", "destroy"}, "versions", 1, 1, true, "mayfly kv destroy [-versions 1,2] PATH",
     build_kv_destroy, R(EMPTY), json_empty},
    {{"kv", "list"}, "", 0, 1, false, "mayfly kv list PREFIX", build_kv_list, R(KV_LIST),
     json_kv_list},
    {{"kv", "metadata", "get"}, "", 1, 1, false, "mayfly kv metadata get PATH",
     build_kv_meta_get, R(KV_METADATA_GET), json_kv_meta},
    {{"kv", "metadata", "put"}, "max-versions cas-required", 1, 1, true,
     "mayfly kv metadata put [-max-versions N] [-cas-required] PATH", build_kv_meta_put,
     R(EMPTY), json_empty},
    {{"lease", "grant"}, "ttl max-ttl name", 0, 0, true,
     "mayfly lease grant -ttl D [-max-ttl D] [-name NAME]", build_lease_grant, R(LEASE_GRANT),
     json_lease_grant},
    {{"lease", "renew"}, "increment", 1, 1, true, "mayfly lease renew [-increment D] LEASE_ID",
     build_lease_renew, R(LEASE_RENEW), json_lease_renew},
    {{"lease", "revoke"}, "prefix force", 1, 1, true,
     "mayfly lease revoke [-prefix] [-force] LEASE_ID|PREFIX", build_lease_revoke,
     R(LEASE_REVOKE), json_lease_revoke},
    {{"lease", "lookup"}, "", 1, 1, false, "mayfly lease lookup LEASE_ID", build_lease_lookup,
     R(LEASE_LOOKUP), json_lease_lookup},
    {{"lease", "list"}, "state limit after", 0, 1, false,
     "mayfly lease list [-state S] [-limit N] [-after CURSOR] [PREFIX]", build_lease_list,
     R(LEASE_LIST), json_lease_list},
    {{"creds", "issue"}, "ttl", 1, 1, true, "mayfly creds issue [-ttl D] MOUNT/ROLE",
     build_creds_issue, R(CREDS_ISSUE), json_creds_issue},
    {{"token", "create"}, "policy ttl orphan no-default-policy", 0, 0, true,
     "mayfly token create [-policy P ...] [-ttl D] [-orphan] [-no-default-policy]",
     build_token_create, R(TOKEN_CREATE), json_token_create},
    {{"token", "lookup"}, "accessor", 0, 1, false, "mayfly token lookup [-accessor] [TOKEN]",
     build_token_lookup, R(TOKEN_LOOKUP), json_token_lookup},
    {{"token", "revoke"}, "accessor", 1, 1, true, "mayfly token revoke [-accessor] TOKEN",
     build_token_revoke, R(EMPTY), json_empty},
    {{"token", "renew"}, "increment", 0, 1, true, "mayfly token renew [-increment D] [TOKEN]",
     build_token_renew, R(TOKEN_RENEW), json_token_renew},
    {{"auth", "enable"}, "type config", 1, 1, true,
     "mayfly auth enable -type jwt|cert [-config JSON|@FILE|-] MOUNT", build_auth_enable,
     R(EMPTY), json_empty},
    {{"auth", "role", "put"}, "", 3, 3, true, "mayfly auth role put MOUNT ROLE JSON|@FILE|-",
     build_auth_role_put, R(EMPTY), json_empty},
    {{"auth", "list"}, "", 0, 0, false, "mayfly auth list", build_auth_list, R(AUTH_LIST),
     json_auth_list},
    {{"login"}, "method mount role jwt", 0, 0, true,
     "mayfly login -method jwt|cert [-mount M] -role R [-jwt @FILE|-]", build_login, R(LOGIN),
     json_login},
    {{"policy", "write"}, "", 2, 2, true, "mayfly policy write NAME FILE|-", build_policy_write,
     R(EMPTY), json_empty},
    {{"policy", "read"}, "", 1, 1, false, "mayfly policy read NAME", build_policy_read,
     R(POLICY_READ), json_policy_read},
    {{"policy", "list"}, "", 0, 0, false, "mayfly policy list", build_policy_list,
     R(POLICY_LIST), json_policy_list},
    {{"policy", "delete"}, "", 1, 1, true, "mayfly policy delete NAME", build_policy_delete,
     R(EMPTY), json_empty},
    {{"policy", "check"}, "policy remote-addr claims", 2, 2, false,
     "mayfly policy check [-token T | -policy P ...] [-remote-addr IP] [-claims JSON] OP PATH",
     build_policy_check, R(POLICY_CHECK), json_policy_check},
    {{"audit", "enable"}, "type path", 1, 1, true, "mayfly audit enable -type file -path P NAME",
     build_audit_enable, R(EMPTY), json_empty},
    {{"audit", "disable"}, "", 1, 1, true, "mayfly audit disable NAME", build_audit_disable,
     R(EMPTY), json_empty},
    {{"audit", "list"}, "", 0, 0, false, "mayfly audit list", build_audit_list, R(AUDIT_LIST),
     json_audit_list},
    {{"audit", "hash"}, "", 1, 1, false, "mayfly audit hash VALUE", build_audit_hash,
     R(AUDIT_HASH), json_audit_hash},
    {{"audit", "verify"}, "", 1, 1, false, "mayfly audit verify FILE", build_audit_verify,
     R(AUDIT_VERIFY_KEY), json_audit_verify},
    {{"quota", "set"}, "mount role prefix max-leases rate", 1, 1, true,
     "mayfly quota set [-mount M] [-role R] [-prefix P] [-max-leases N] [-rate R] NAME",
     build_quota_set, R(EMPTY), json_empty},
    {{"quota", "list"}, "", 0, 0, false, "mayfly quota list", build_quota_list, R(QUOTA_LIST),
     json_quota_list},
    {{"operator", "alarm", "list"}, "", 0, 0, false, "mayfly operator alarm list",
     build_alarm_list, R(ALARM_LIST), json_alarm_list},
    {{"operator", "alarm", "disarm"}, "", 0, 0, true, "mayfly operator alarm disarm",
     build_alarm_disarm, R(ALARM_DISARM), json_alarm_disarm},
    {{"operator", "transfer-leader"}, "to", 0, 0, false, "mayfly operator transfer-leader [-to N]",
     build_transfer_leader, R(TRANSFER_LEADER), json_transfer_leader},
    {{"operator", "step-down"}, "", 0, 0, false, "mayfly operator step-down", build_step_down,
     R(EMPTY), json_empty},
    {{"operator", "members", "list"}, "", 0, 0, false, "mayfly operator members list",
     build_members_list, R(MEMBERS_LIST), json_members_list},
    {{"operator", "snapshot", "save"}, "", 1, 1, false, "mayfly operator snapshot save FILE",
     build_snapshot_save, R(SNAPSHOT_SAVE), json_snapshot_save},
    {{"operator", "snapshot", "restore"}, "", 1, 1, false, "mayfly operator snapshot restore FILE",
     build_snapshot_restore, R(SNAPSHOT_RESTORE), json_snapshot_restore},
    {{"operator", "members", "add"}, "id addr api-addr zone force", 0, 0, true,
     "mayfly operator members add -id N -addr PEER_ADDR -api-addr ADDR [-zone Z] [-force]",
     build_members_add, R(MEMBERS_ADD), json_empty},
    {{"operator", "members", "promote"}, "force", 1, 1, true,
     "mayfly operator members promote N [-force]", build_members_promote, R(MEMBERS_PROMOTE),
     json_empty},
    {{"operator", "members", "remove"}, "force", 1, 1, true,
     "mayfly operator members remove N [-force]", build_members_remove, R(MEMBERS_REMOVE),
     json_empty},
    {{"quota", "delete"}, "", 1, 1, true, "mayfly quota delete NAME", build_quota_delete,
     R(EMPTY), json_empty},
    {{"engine", "enable"}, "type config", 1, 1, true,
     "mayfly engine enable -type postgres|pki [-config JSON|@FILE|-] MOUNT", build_engine_enable,
     R(EMPTY), json_empty},
    {{"engine", "role", "put"}, "", 3, 3, true, "mayfly engine role put MOUNT ROLE JSON|@FILE|-",
     build_engine_role_put, R(EMPTY), json_empty},
    {{"engine", "list"}, "", 0, 0, false, "mayfly engine list", build_engine_list,
     R(ENGINE_LIST), json_engine_list},
    {{"engine", "rotate-root"}, "", 1, 1, true, "mayfly engine rotate-root MOUNT",
     build_engine_mount_op, R(EMPTY), json_empty},
    {{"engine", "crl"}, "", 1, 1, false, "mayfly engine crl MOUNT", build_engine_mount_op,
     R(ENGINE_CRL), json_engine_crl},
    {{"operator", "rotate"}, "", 0, 0, true, "mayfly operator rotate", build_rotate, R(ROTATE),
     json_rotate},
    {{"operator", "key-status"}, "", 0, 0, false, "mayfly operator key-status",
     build_key_status, R(KEY_STATUS), json_key_status},
    {{"operator", "rekey"}, "init shares threshold nonce cancel", 0, 1, false,
     "mayfly operator rekey -init -shares N -threshold T | -nonce N SHARE | -cancel",
     build_rekey, R(REKEY), json_rekey},
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

mf_cli_table_fn mf_cli_command_table(const struct mf_cli_command *c)
{
    return c->build == build_policy_read    ? table_policy_read
           : c->build == build_status       ? table_status
           : c->build == build_members_list ? table_members_list
                                            : NULL;
}

mf_cli_local_fn mf_cli_command_local(const struct mf_cli_command *c)
{
    return c->build == build_generate_root      ? generate_root_decode
           : c->build == build_snapshot_save    ? mf_cli_snapshot_save
           : c->build == build_snapshot_restore ? mf_cli_snapshot_restore
                                                : NULL;
}

const struct mf_cli_command *mf_cli_command_at(size_t i)
{
    return i < N_COMMANDS ? &commands[i] : NULL;
}

const struct mf_cli_command *mf_cli_command_find(const char **words, size_t n, size_t *used)
{
    const struct mf_cli_command *best = NULL;
    size_t best_len = 0;
    for (size_t i = 0; i < N_COMMANDS; i++) {
        size_t k = 0;
        while (k < 3 && commands[i].words[k] && k < n && strcmp(commands[i].words[k], words[k]) == 0)
            k++;
        if ((k == 3 || !commands[i].words[k]) && k > best_len)
            best = &commands[i], best_len = k;
    }
    *used = best_len;
    return best;
}

static bool command_allows(const struct mf_cli_command *c, const char *flag)
{
    size_t len = strlen(flag);
    for (const char *p = c->flags; (p = strstr(p, flag)) != NULL; p += len) {
        bool start = p == c->flags || p[-1] == ' ';
        bool end = p[len] == '\0' || p[len] == ' ';
        if (start && end)
            return true;
    }
    return false;
}

int mf_cli_command_check(const struct mf_cli_args *a, char *err, size_t err_len)
{
    const struct mf_cli_command *c = a->cmd;
    for (size_t i = 0; i < a->flags_len; i++)
        if (!command_allows(c, a->flags[i].name))
            return mf_err_set(err, err_len, MF_EINVAL, "flag -%s does not apply here (usage: %s)",
                              a->flags[i].name, c->usage);
    if ((int)a->pos_len < c->pos_min || (c->pos_max >= 0 && (int)a->pos_len > c->pos_max))
        return mf_err_set(err, err_len, MF_EINVAL, "wrong number of arguments (usage: %s)",
                          c->usage);
    return 0;
}

int mf_cli_build(const struct mf_cli_args *a, struct mf_cli_arena *arena, FILE *in,
                 Mayfly__Api__Request *req, bool *is_write, char *err, size_t err_len)
{
    mayfly__api__request__init(req);
    req->consistency =
        a->g.stale ? MAYFLY__API__CONSISTENCY__STALE : MAYFLY__API__CONSISTENCY__LINEARIZABLE;
    *is_write = a->cmd->write;
    return a->cmd->build(a, arena, in, req, err, err_len);
}

json_t *mf_cli_render_json(const struct mf_cli_args *a, const Mayfly__Api__Response *resp)
{
    if (resp->result_case != a->cmd->result)
        return NULL;
    return a->cmd->json(a, resp);
}

void mf_cli_usage(FILE *out)
{
    fprintf(out, "usage: mayfly [global flags] COMMAND [flags] [args]\n\ncommands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(out, "  %s\n", commands[i].usage);
    fprintf(out, "\nglobal flags (or environment):\n"
                 "  -addr A[,B,...]   MAYFLY_ADDR\n"
                 "  -token T          MAYFLY_TOKEN\n"
                 "  -ca-cert FILE     MAYFLY_CACERT\n"
                 "  -client-cert FILE -client-key FILE   MAYFLY_CLIENT_CERT / _KEY\n"
                 "  -format table|json   MAYFLY_FORMAT\n"
                 "  -consistency linearizable|stale   MAYFLY_CONSISTENCY\n"
                 "  -timeout D        per request, default 10s\n"
                 "\nexit codes: 0 ok, 1 local error, 2 refused by the server, 3 outcome unknown\n");
}

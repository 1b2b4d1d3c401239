/* The pieces both auth methods share: identity metadata, a role's token
 * settings, strict JSON helpers and the separator-aware glob (ident.h). */
#include "auth/ident.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/err.h"

void mf_ident_clear(struct mf_ident *id)
{
    if (!id)
        return;
    free(id->name);
    for (size_t i = 0; i < id->meta_len; i++) {
        free(id->meta[i].key);
        free(id->meta[i].value);
    }
    memset(id, 0, sizeof(*id));
}

const char *mf_ident_meta_get(const struct mf_ident *id, const char *key)
{
    for (size_t i = 0; i < id->meta_len; i++)
        if (strcmp(id->meta[i].key, key) == 0)
            return id->meta[i].value;
    return NULL;
}

int mf_ident_meta_add(struct mf_ident *id, const char *key, const char *value)
{
    MF_ASSERT(id && key && value);
    if (strlen(value) > MF_IDENT_VALUE_BYTES_MAX)
        return MF_ETOOLARGE;
    char *v = strdup(value);
    if (!v)
        return -ENOMEM;
    for (size_t i = 0; i < id->meta_len; i++) {
        if (strcmp(id->meta[i].key, key) == 0) {
            free(id->meta[i].value);
            id->meta[i].value = v;
            return 0;
        }
    }
    if (id->meta_len == MF_IDENT_META_MAX) {
        free(v);
        return MF_ETOOLARGE;
    }
    char *k = strdup(key);
    if (!k) {
        free(v);
        return -ENOMEM;
    }
    id->meta[id->meta_len].key = k;
    id->meta[id->meta_len].value = v;
    id->meta_len++;
    return 0;
}

/* --- glob ------------------------------------------------------------------ */

static bool is_sep(char c, const char *seps)
{
    return c != '\0' && strchr(seps, c) != NULL;
}

static size_t seg_len(const char *s, size_t n, const char *seps)
{
    size_t i = 0;
    while (i < n && !is_sep(s[i], seps))
        i++;
    return i;
}

/* One segment (no separators on either side): `*` matches any run. The
 * classic single-backtrack walk: on a mismatch, let the last star swallow one
 * more character. Linear in practice, O(gl * sl) at worst. */
static bool seg_match(const char *g, size_t gl, const char *s, size_t sl)
{
    size_t gi = 0, si = 0, star = SIZE_MAX, mark = 0;
    while (si < sl) {
        if (gi < gl && g[gi] == '*') {
            star = gi++;
            mark = si;
        } else if (gi < gl && g[gi] == s[si]) {
            gi++;
            si++;
        } else if (star != SIZE_MAX) {
            gi = star + 1;
            si = ++mark;
        } else {
            return false;
        }
    }
    while (gi < gl && g[gi] == '*')
        gi++;
    return gi == gl;
}

bool mf_ident_glob_match(const char *glob, const char *value, const char *seps)
{
    MF_ASSERT(glob && value && seps);
    size_t gl = strlen(glob), vl = strlen(value);
    /* A final star at the start or after a separator: "anything beneath". */
    bool rest = gl > 0 && glob[gl - 1] == '*' && (gl == 1 || is_sep(glob[gl - 2], seps));
    if (rest)
        gl--; /* the prefix left is empty or ends with a separator */
    size_t gi = 0, vi = 0;
    for (;;) {
        if (rest && gi == gl)
            return true;
        size_t gs = seg_len(glob + gi, gl - gi, seps);
        size_t vs = seg_len(value + vi, vl - vi, seps);
        if (!seg_match(glob + gi, gs, value + vi, vs))
            return false;
        gi += gs;
        vi += vs;
        if (gi == gl)
            return vi == vl; /* (with rest, gl ends with a separator: not here) */
        /* glob[gi] is a separator: the value must have the same one here. */
        if (vi == vl || value[vi] != glob[gi])
            return false;
        gi++;
        vi++;
    }
}

/* --- JSON helpers ----------------------------------------------------------- */

int mf_ident_json_only(json_t *obj, const char *const *allowed, const char *what, char *err,
                       size_t err_len)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) {
        bool ok = false;
        for (size_t i = 0; allowed[i]; i++)
            ok = ok || strcmp(key, allowed[i]) == 0;
        if (!ok)
            return mf_err_set(err, err_len, MF_EINVAL, "%s: unknown field \"%.64s\"", what, key);
    }
    return 0;
}

static bool has_control(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return true;
    return false;
}

void mf_ident_strv_free(char **v, size_t len)
{
    if (!v)
        return;
    for (size_t i = 0; i < len; i++)
        free(v[i]);
    free(v);
}

int mf_ident_json_strv(json_t *obj, const char *field, size_t max, size_t bytes_max, char ***out,
                       size_t *len, char *err, size_t err_len)
{
    *out = NULL;
    *len = 0;
    json_t *arr = json_object_get(obj, field);
    if (!arr || json_is_null(arr))
        return 0;
    if (!json_is_array(arr))
        return mf_err_set(err, err_len, MF_EINVAL, "%s must be a list of strings", field);
    size_t n = json_array_size(arr);
    if (n > max)
        return mf_err_set(err, err_len, MF_EINVAL, "%s has more than %zu entries", field, max);
    if (n == 0)
        return 0;
    char **v = calloc(n, sizeof(*v));
    if (!v)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const char *s = json_string_value(json_array_get(arr, i));
        if (!s || !*s || strlen(s) > bytes_max || has_control(s)) {
            mf_ident_strv_free(v, i);
            return mf_err_set(err, err_len, MF_EINVAL,
                              "%s[%zu] must be a non-empty string of at most %zu bytes", field, i,
                              bytes_max);
        }
        if (!(v[i] = strdup(s))) {
            mf_ident_strv_free(v, i);
            return -ENOMEM;
        }
    }
    *out = v;
    *len = n;
    return 0;
}

static int ttl_field(json_t *role, const char *field, int64_t *out, char *err, size_t err_len)
{
    json_t *v = json_object_get(role, field);
    *out = 0;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return mf_err_set(err, err_len, MF_EINVAL, "%s must be an integer >= 0", field);
    *out = json_integer_value(v);
    return 0;
}

void mf_ident_token_clear(struct mf_ident_token *t)
{
    if (!t)
        return;
    mf_ident_strv_free(t->policies, t->policies_len);
    memset(t, 0, sizeof(*t));
}

int mf_ident_token_parse(json_t *role, struct mf_ident_token *out, char *err, size_t err_len)
{
    memset(out, 0, sizeof(*out));
    int rc = ttl_field(role, "token_ttl_ms", &out->ttl_ms, err, err_len);
    if (rc == 0)
        rc = ttl_field(role, "token_max_ttl_ms", &out->max_ttl_ms, err, err_len);
    if (rc == 0 && out->ttl_ms && out->max_ttl_ms && out->max_ttl_ms < out->ttl_ms)
        rc = mf_err_set(err, err_len, MF_EINVAL, "token_max_ttl_ms is below token_ttl_ms");
    if (rc == 0)
        rc = mf_ident_json_strv(role, "token_policies", MF_IDENT_POLICIES_MAX,
                                MF_IDENT_NAME_BYTES_MAX, &out->policies, &out->policies_len, err,
                                err_len);
    if (rc != 0)
        mf_ident_token_clear(out);
    return rc;
}

json_t *mf_ident_json_object(const char *text, size_t len, const char *what, char *err,
                             size_t err_len)
{
    json_error_t je;
    json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!j) {
        /* je.text quotes the input near the error: never echo it (a token's
         * claims, a key). Say what kind of error and where. */
        mf_err_set(err, err_len, MF_EINVAL, "%s is not valid JSON (%s at byte %d)", what,
                   json_error_code(&je) == json_error_duplicate_key ? "duplicate key"
                                                                    : "syntax error",
                   je.position);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        mf_err_set(err, err_len, MF_EINVAL, "%s must be a JSON object", what);
        return NULL;
    }
    return j;
}

/* Policies: the strict parser that turns a policy document into its compiled
 * form, the renderer that turns it back, and the copy-on-write policy sets.
 *
 * Untrusted JSON is parsed once here (jansson, duplicate keys refused) into
 * struct mf_policy; everything after works on the struct. Anything we do not
 * understand is refused rather than ignored, because an ignored field in a
 * policy (Vault's allowed_parameters, say) is a restriction its author thinks
 * holds and that does not. Decisions live in policy_decide.c.
 */
#include "auth/policy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "auth/policy_internal.h"
#include "common/assert.h"
#include "common/config.h"
#include "common/err.h"

/* --- capabilities --- */

static const struct {
    const char *name;
    unsigned bit;
} cap_names[] = {
    {"create", MF_CAP_CREATE}, {"read", MF_CAP_READ}, {"update", MF_CAP_UPDATE},
    {"delete", MF_CAP_DELETE}, {"list", MF_CAP_LIST}, {"sudo", MF_CAP_SUDO},
    {"deny", MF_CAP_DENY},
};
#define CAP_NAMES_N (sizeof(cap_names) / sizeof(cap_names[0]))

const char *mf_cap_name(unsigned cap)
{
    for (size_t i = 0; i < CAP_NAMES_N; i++)
        if (cap_names[i].bit == cap)
            return cap_names[i].name;
    return NULL;
}

int mf_cap_parse(const char *name, unsigned *out)
{
    for (size_t i = 0; i < CAP_NAMES_N; i++)
        if (strcmp(cap_names[i].name, name) == 0) {
            *out = cap_names[i].bit;
            return 0;
        }
    return MF_EINVAL;
}

/* Day names indexed like the decision's day number (0 = Sunday, as 1970-01-01
 * + 4 days); rendered Monday first. */
static const char *const day_names[7] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

/* --- priority (shared with policy_decide.c) --- */

int mf_policy_rule_priority_cmp(const struct mf_policy_rule *a, const struct mf_policy_rule *b)
{
    if (a->first_glob != b->first_glob)
        return a->first_glob > b->first_glob ? 1 : -1; /* earlier glob loses */
    if (a->ends_star != b->ends_star)
        return a->ends_star ? -1 : 1; /* ending in `*` loses */
    if (a->plus_n != b->plus_n)
        return a->plus_n > b->plus_n ? -1 : 1; /* more `+` loses */
    if (a->len != b->len)
        return a->len > b->len ? 1 : -1; /* shorter loses */
    return strcmp(a->pattern, b->pattern); /* sorts lower loses */
}

int mf_policy_rule_sort_cmp(const void *a, const void *b)
{
    return mf_policy_rule_priority_cmp(b, a);
}

/* --- freeing --- */

static void cond_free(struct mf_policy_cond *c)
{
    if (!c)
        return;
    free(c->cidrs);
    for (size_t i = 0; i < c->claims_n; i++) {
        free(c->claims[i].key);
        free(c->claims[i].glob);
    }
    free(c->claims);
    free(c);
}

static void policy_free(struct mf_policy *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->rules_n; i++) {
        free(p->rules[i].pattern);
        cond_free(p->rules[i].cond);
    }
    free(p->rules);
    free(p->name);
    free(p);
}

struct mf_policy *mf_policy_ref(const struct mf_policy *p)
{
    struct mf_policy *m = (struct mf_policy *)p; /* the count is the one mutable field */
    size_t before = atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
    MF_ASSERT(before > 0);
    return m;
}

void mf_policy_release(struct mf_policy *p)
{
    if (!p)
        return;
    size_t before = atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel);
    MF_ASSERT(before > 0);
    if (before == 1)
        policy_free(p);
}

const char *mf_policy_name(const struct mf_policy *p)
{
    return p->name;
}

size_t mf_policy_rule_count(const struct mf_policy *p)
{
    return p->rules_n;
}

/* --- parsing --- */

static int check_name(const char *name, char *err, size_t err_len)
{
    size_t len = name ? strlen(name) : 0;
    if (len == 0)
        return mf_err_set(err, err_len, MF_EINVAL, "policy name is empty");
    if (len > MF_POLICY_NAME_MAX_BYTES)
        return mf_err_set(err, err_len, MF_ETOOLARGE, "policy name is longer than %d bytes",
                          MF_POLICY_NAME_MAX_BYTES);
    /* Lower case only: Vault lower-cases names; we refuse instead of renaming,
     * so "Admin" and "admin" can never be two policies. */
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
              c == '.'))
            return mf_err_set(err, err_len, MF_EINVAL,
                              "policy name \"%.*s\" may hold only a-z, 0-9, '-', '_' and '.'",
                              64, name);
    }
    return 0;
}

static int parse_pattern(const char *key, struct mf_policy_rule *r, char *err, size_t err_len)
{
    size_t len = strlen(key);
    if (len == 0)
        return mf_err_set(err, err_len, MF_EINVAL, "a path pattern is empty");
    if (len > MF_POLICY_PATTERN_MAX_BYTES)
        return mf_err_set(err, err_len, MF_ETOOLARGE,
                          "path \"%.64s...\" is longer than %d bytes", key,
                          MF_POLICY_PATTERN_MAX_BYTES);
    if (key[0] == '/')
        return mf_err_set(err, err_len, MF_EINVAL,
                          "path \"%s\": patterns start without '/' (\"kv/data/...\")", key);
    r->first_glob = SIZE_MAX;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)key[i];
        if (c < 0x20 || c == 0x7f)
            return mf_err_set(err, err_len, MF_EINVAL, "path \"%s\": control character", key);
        if (c == '*') {
            if (i != len - 1)
                return mf_err_set(err, err_len, MF_EINVAL,
                                  "path \"%s\": '*' may stand only at the end", key);
            r->ends_star = true;
        } else if (c == '+') {
            bool starts = i == 0 || key[i - 1] == '/';
            bool ends = i + 1 == len || key[i + 1] == '/';
            if (!starts || !ends)
                return mf_err_set(err, err_len, MF_EINVAL,
                                  "path \"%s\": '+' must be a whole segment (\"a/+/b\")", key);
            r->plus_n++;
        } else {
            continue;
        }
        if (r->first_glob == SIZE_MAX)
            r->first_glob = i;
    }
    r->pattern = strdup(key);
    if (!r->pattern)
        return -ENOMEM;
    r->len = len;
    r->prefix_len = r->first_glob == SIZE_MAX ? len : r->first_glob;
    return 0;
}

/* "HH:MM" into minutes of the day; "24:00" only when allow_24. */
static int parse_hhmm(const char *s, bool allow_24, uint16_t *out)
{
    if (strlen(s) != 5 || s[2] != ':')
        return MF_EINVAL;
    for (int i = 0; i < 5; i++)
        if (i != 2 && (s[i] < '0' || s[i] > '9'))
            return MF_EINVAL;
    unsigned h = (unsigned)(s[0] - '0') * 10 + (unsigned)(s[1] - '0');
    unsigned m = (unsigned)(s[3] - '0') * 10 + (unsigned)(s[4] - '0');
    if (m > 59 || h > 24 || (h == 24 && (m != 0 || !allow_24)))
        return MF_EINVAL;
    *out = (uint16_t)(h * 60 + m);
    return 0;
}

/* "10.0.0.0/8", "fd00::/8", or a bare address (a full-length prefix). */
static int parse_cidr(const char *text, struct mf_policy_cidr *out)
{
    char addr[64];
    const char *slash = strchr(text, '/');
    size_t alen = slash ? (size_t)(slash - text) : strlen(text);
    if (alen == 0 || alen >= sizeof(addr))
        return MF_EINVAL;
    memcpy(addr, text, alen);
    addr[alen] = '\0';
    memset(out, 0, sizeof(*out));
    unsigned max_bits;
    if (inet_pton(AF_INET, addr, out->addr) == 1) {
        out->family = MF_AUTHZ_ADDR_V4;
        max_bits = 32;
    } else if (inet_pton(AF_INET6, addr, out->addr) == 1) {
        out->family = MF_AUTHZ_ADDR_V6;
        max_bits = 128;
    } else {
        return MF_EINVAL;
    }
    unsigned bits = max_bits;
    if (slash) {
        const char *p = slash + 1;
        if (*p == '\0' || strlen(p) > 3)
            return MF_EINVAL;
        bits = 0;
        for (; *p; p++) {
            if (*p < '0' || *p > '9')
                return MF_EINVAL;
            bits = bits * 10 + (unsigned)(*p - '0');
        }
        if (bits > max_bits)
            return MF_EINVAL;
    }
    out->bits = (uint8_t)bits;
    /* Host bits set usually means the author meant another prefix. */
    for (unsigned b = bits; b < max_bits; b++)
        if (out->addr[b / 8] & (0x80u >> (b % 8)))
            return MF_EEXISTS; /* told apart by the caller for its message */
    /* An IPv4-mapped IPv6 prefix is the IPv4 prefix (addresses are unmapped). */
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (out->family == MF_AUTHZ_ADDR_V6 && bits >= 96 && memcmp(out->addr, mapped, 12) == 0) {
        memmove(out->addr, out->addr + 12, 4);
        memset(out->addr + 4, 0, 12);
        out->family = MF_AUTHZ_ADDR_V4;
        out->bits = (uint8_t)(bits - 96);
    }
    return 0;
}

static int parse_cidrs(const char *pat, json_t *v, struct mf_policy_cond *c, char *err,
                       size_t err_len)
{
    if (!json_is_array(v) || json_array_size(v) == 0)
        return mf_err_set(err, err_len, MF_EINVAL,
                          "path \"%s\": cidrs must be a non-empty array of strings", pat);
    size_t n = json_array_size(v);
    if (n > MF_POLICY_CIDRS_MAX)
        return mf_err_set(err, err_len, MF_ETOOLARGE, "path \"%s\": more than %d cidrs", pat,
                          MF_POLICY_CIDRS_MAX);
    c->cidrs = calloc(n, sizeof(*c->cidrs));
    if (!c->cidrs)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const char *s = json_string_value(json_array_get(v, i));
        if (!s)
            return mf_err_set(err, err_len, MF_EINVAL, "path \"%s\": cidrs must be strings",
                              pat);
        int rc = parse_cidr(s, &c->cidrs[i]);
        if (rc == MF_EEXISTS)
            return mf_err_set(err, err_len, MF_EINVAL,
                              "path \"%s\": CIDR \"%.64s\" has host bits set", pat, s);
        if (rc < 0)
            return mf_err_set(err, err_len, MF_EINVAL,
                              "path \"%s\": \"%.64s\" is not an IPv4 or IPv6 CIDR", pat, s);
        c->cidrs_n++;
    }
    return 0;
}

static int parse_time(const char *pat, json_t *v, struct mf_policy_cond *c, char *err,
                      size_t err_len)
{
    if (!json_is_object(v) || json_object_size(v) == 0)
        return mf_err_set(err, err_len, MF_EINVAL,
                          "path \"%s\": time must be an object with after, before or days",
                          pat);
    c->has_time = true;
    c->after_min = 0;
    c->before_min = MF_MINUTES_PER_DAY;
    c->days = 0x7f;
    const char *key;
    json_t *val;
    json_object_foreach(v, key, val) {
        if (strcmp(key, "after") == 0 || strcmp(key, "before") == 0) {
            bool before = key[0] == 'b';
            const char *s = json_string_value(val);
            if (!s || parse_hhmm(s, before, before ? &c->before_min : &c->after_min) < 0)
                return mf_err_set(err, err_len, MF_EINVAL,
                                  "path \"%s\": time.%s must be \"HH:MM\" (UTC, 00:00-%s)", pat,
                                  key, before ? "24:00" : "23:59");
            if (before)
                c->has_before = true;
            else
                c->has_after = true;
        } else if (strcmp(key, "days") == 0) {
            if (!json_is_array(val) || json_array_size(val) == 0)
                return mf_err_set(err, err_len, MF_EINVAL,
                                  "path \"%s\": time.days must be a non-empty array", pat);
            c->has_days = true;
            c->days = 0;
            for (size_t i = 0; i < json_array_size(val); i++) {
                const char *s = json_string_value(json_array_get(val, i));
                int d = -1;
                for (int k = 0; s && k < 7; k++)
                    if (strcmp(s, day_names[k]) == 0)
                        d = k;
                if (d < 0)
                    return mf_err_set(err, err_len, MF_EINVAL,
                                      "path \"%s\": time.days holds \"mon\" ... \"sun\"", pat);
                c->days |= (uint8_t)(1u << d);
            }
        } else {
            return mf_err_set(err, err_len, MF_EINVAL,
                              "path \"%s\": unknown time field \"%.64s\"", pat, key);
        }
    }
    /* Equal bounds could mean "never" or "always"; make the author say which. */
    if (c->after_min == c->before_min)
        return mf_err_set(err, err_len, MF_EINVAL,
                          "path \"%s\": time.after equals time.before (an empty or full day?)",
                          pat);
    return 0;
}

static int parse_claims(const char *pat, json_t *v, struct mf_policy_cond *c, char *err,
                        size_t err_len)
{
    if (!json_is_object(v) || json_object_size(v) == 0)
        return mf_err_set(err, err_len, MF_EINVAL,
                          "path \"%s\": claims must be a non-empty object of strings", pat);
    size_t n = json_object_size(v);
    if (n > MF_POLICY_CLAIMS_MAX)
        return mf_err_set(err, err_len, MF_ETOOLARGE, "path \"%s\": more than %d claims", pat,
                          MF_POLICY_CLAIMS_MAX);
    c->claims = calloc(n, sizeof(*c->claims));
    if (!c->claims)
        return -ENOMEM;
    const char *key;
    json_t *val;
    json_object_foreach(v, key, val) {
        const char *glob = json_string_value(val);
        if (!glob || key[0] == '\0')
            return mf_err_set(err, err_len, MF_EINVAL,
                              "path \"%s\": claims maps a claim name to a string glob", pat);
        if (strlen(key) > MF_POLICY_CLAIM_MAX_BYTES || strlen(glob) > MF_POLICY_CLAIM_MAX_BYTES)
            return mf_err_set(err, err_len, MF_ETOOLARGE,
                              "path \"%s\": a claim name or glob is longer than %d bytes", pat,
                              MF_POLICY_CLAIM_MAX_BYTES);
        struct mf_policy_claim *cl = &c->claims[c->claims_n];
        cl->key = strdup(key);
        cl->glob = strdup(glob);
        c->claims_n++; /* counted before the check so cond_free frees both */
        if (!cl->key || !cl->glob)
            return -ENOMEM;
    }
    return 0;
}

static int parse_conditions(const char *pat, json_t *v, struct mf_policy_rule *r, char *err,
                            size_t err_len)
{
    if (!json_is_object(v))
        return mf_err_set(err, err_len, MF_EINVAL, "path \"%s\": conditions must be an object",
                          pat);
    if (json_object_size(v) == 0)
        return 0; /* no conditions */
    r->cond = calloc(1, sizeof(*r->cond));
    if (!r->cond)
        return -ENOMEM;
    const char *key;
    json_t *val;
    json_object_foreach(v, key, val) {
        int rc;
        if (strcmp(key, "cidrs") == 0)
            rc = parse_cidrs(pat, val, r->cond, err, err_len);
        else if (strcmp(key, "time") == 0)
            rc = parse_time(pat, val, r->cond, err, err_len);
        else if (strcmp(key, "claims") == 0)
            rc = parse_claims(pat, val, r->cond, err, err_len);
        else
            rc = mf_err_set(err, err_len, MF_EINVAL,
                            "path \"%s\": unknown condition \"%.64s\" (cidrs, time, claims)",
                            pat, key);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int parse_rule(const char *pat, json_t *v, struct mf_policy_rule *r, char *err,
                      size_t err_len)
{
    if (!json_is_object(v))
        return mf_err_set(err, err_len, MF_EINVAL, "path \"%s\" must map to an object", pat);
    json_t *caps = NULL, *conds = NULL, *ttl_ms = NULL, *ttl = NULL;
    const char *key;
    json_t *val;
    json_object_foreach(v, key, val) {
        if (strcmp(key, "capabilities") == 0)
            caps = val;
        else if (strcmp(key, "conditions") == 0)
            conds = val;
        else if (strcmp(key, "max_ttl_ms") == 0)
            ttl_ms = val;
        else if (strcmp(key, "max_ttl") == 0)
            ttl = val;
        else
            return mf_err_set(err, err_len, MF_EINVAL,
                              "path \"%s\": unsupported field \"%.64s\" (capabilities, "
                              "conditions, max_ttl_ms, max_ttl)",
                              pat, key);
    }
    if (!json_is_array(caps) || json_array_size(caps) == 0)
        return mf_err_set(err, err_len, MF_EINVAL,
                          "path \"%s\": capabilities must be a non-empty array", pat);
    for (size_t i = 0; i < json_array_size(caps); i++) {
        const char *s = json_string_value(json_array_get(caps, i));
        unsigned bit;
        if (!s || mf_cap_parse(s, &bit) < 0)
            return mf_err_set(err, err_len, MF_EINVAL,
                              "path \"%s\": unknown capability \"%.32s\" (create, read, update, "
                              "delete, list, sudo, deny)",
                              pat, s ? s : "(not a string)");
        r->caps |= bit;
    }
    if (ttl_ms && ttl)
        return mf_err_set(err, err_len, MF_EINVAL,
                          "path \"%s\": give max_ttl_ms or max_ttl, not both", pat);
    if (ttl_ms) {
        if (!json_is_integer(ttl_ms) || json_integer_value(ttl_ms) < 0)
            return mf_err_set(err, err_len, MF_EINVAL,
                              "path \"%s\": max_ttl_ms must be an integer >= 0", pat);
        r->max_ttl_ms = (uint64_t)json_integer_value(ttl_ms);
    }
    if (ttl) {
        const char *s = json_string_value(ttl);
        if (!s || mf_duration_parse_ms(s, &r->max_ttl_ms) < 0 || r->max_ttl_ms > INT64_MAX)
            return mf_err_set(err, err_len, MF_EINVAL,
                              "path \"%s\": max_ttl must be a duration string (\"90s\", \"1h\")",
                              pat);
    }
    if (conds) {
        /* A conditional deny would turn a failed condition into an allow by
         * another rule's capabilities; deny is unconditional. */
        if (r->caps & MF_CAP_DENY)
            return mf_err_set(err, err_len, MF_EINVAL,
                              "path \"%s\": a rule holding deny takes no conditions", pat);
        int rc = parse_conditions(pat, conds, r, err, err_len);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int parse_doc(json_t *doc, struct mf_policy *p, char *err, size_t err_len)
{
    if (!json_is_object(doc))
        return mf_err_set(err, err_len, MF_EINVAL, "a policy is a JSON object {\"path\": {...}}");
    json_t *paths = NULL;
    const char *key;
    json_t *val;
    json_object_foreach(doc, key, val) {
        if (strcmp(key, "path") != 0)
            return mf_err_set(err, err_len, MF_EINVAL,
                              "unsupported policy field \"%.64s\" (only \"path\")", key);
        paths = val;
    }
    if (!json_is_object(paths))
        return mf_err_set(err, err_len, MF_EINVAL,
                          "a policy needs \"path\": {PATTERN: {\"capabilities\": [...]}}");
    size_t n = json_object_size(paths);
    if (n > MF_POLICY_RULES_MAX)
        return mf_err_set(err, err_len, MF_ETOOLARGE, "a policy holds at most %d paths",
                          MF_POLICY_RULES_MAX);
    p->rules = calloc(n ? n : 1, sizeof(*p->rules));
    if (!p->rules)
        return -ENOMEM;
    json_object_foreach(paths, key, val) {
        struct mf_policy_rule *r = &p->rules[p->rules_n++]; /* counted for policy_free */
        int rc = parse_pattern(key, r, err, err_len);
        if (rc == 0)
            rc = parse_rule(key, val, r, err, err_len);
        if (rc < 0)
            return rc;
    }
    qsort(p->rules, p->rules_n, sizeof(*p->rules), mf_policy_rule_sort_cmp);
    /* Keys are unique (duplicates refused), so the order is strict. */
    for (size_t i = 1; i < p->rules_n; i++)
        MF_ASSERT(mf_policy_rule_priority_cmp(&p->rules[i - 1], &p->rules[i]) > 0);
    return 0;
}

int mf_policy_parse(const char *name, const char *json, size_t json_len,
                    struct mf_policy **out, char *err, size_t err_len)
{
    MF_ASSERT(out);
    *out = NULL;
    if (err && err_len)
        err[0] = '\0';
    int rc = check_name(name, err, err_len);
    if (rc < 0)
        return rc;
    if (json_len > MF_POLICY_DOC_MAX_BYTES)
        return mf_err_set(err, err_len, MF_ETOOLARGE, "policy %s is over %d bytes", name,
                          MF_POLICY_DOC_MAX_BYTES);
    json_error_t jerr;
    json_t *doc = json_loadb(json, json_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!doc)
        return mf_err_set(err, err_len, MF_EINVAL, "policy %s: %s (line %d, column %d)", name,
                          jerr.text, jerr.line, jerr.column);
    struct mf_policy *p = calloc(1, sizeof(*p));
    if (!p) {
        rc = -ENOMEM;
        goto fail_doc;
    }
    atomic_init(&p->refs, 1);
    p->name = strdup(name);
    if (!p->name) {
        rc = -ENOMEM;
        goto fail_policy;
    }
    rc = parse_doc(doc, p, err, err_len);
    if (rc < 0)
        goto fail_policy;
    json_decref(doc);
    *out = p;
    return 0;

fail_policy:
    policy_free(p);
fail_doc:
    json_decref(doc);
    if (rc == -ENOMEM)
        mf_err_set(err, err_len, rc, "policy %s: out of memory", name);
    return rc;
}

/* --- rendering --- */

/* jansson's *_new setters refuse a NULL value (a failed allocation) with -1;
 * every call goes through these so one failure anywhere fails the render
 * instead of silently dropping a condition from what `policy read` shows. */
static void set_key(json_t *o, const char *k, json_t *v, bool *ok)
{
    if (!o) {
        json_decref(v);
        *ok = false;
    } else if (json_object_set_new(o, k, v) != 0) {
        *ok = false;
    }
}

static void append(json_t *a, json_t *v, bool *ok)
{
    if (!a) {
        json_decref(v);
        *ok = false;
    } else if (json_array_append_new(a, v) != 0) {
        *ok = false;
    }
}

static json_t *render_cond(const struct mf_policy_cond *c, bool *ok)
{
    json_t *o = json_object();
    if (c->cidrs_n) {
        json_t *a = json_array();
        for (size_t i = 0; i < c->cidrs_n; i++) {
            const struct mf_policy_cidr *x = &c->cidrs[i];
            char text[INET6_ADDRSTRLEN + 8];
            int af = x->family == MF_AUTHZ_ADDR_V4 ? AF_INET : AF_INET6;
            MF_ASSERT(inet_ntop(af, x->addr, text, INET6_ADDRSTRLEN));
            snprintf(text + strlen(text), 8, "/%u", x->bits);
            append(a, json_string(text), ok);
        }
        set_key(o, "cidrs", a, ok);
    }
    if (c->has_time) {
        json_t *t = json_object();
        char hhmm[8];
        if (c->has_after) {
            snprintf(hhmm, sizeof(hhmm), "%02u:%02u", c->after_min / 60u, c->after_min % 60u);
            set_key(t, "after", json_string(hhmm), ok);
        }
        if (c->has_before) {
            snprintf(hhmm, sizeof(hhmm), "%02u:%02u", c->before_min / 60u, c->before_min % 60u);
            set_key(t, "before", json_string(hhmm), ok);
        }
        if (c->has_days) {
            json_t *d = json_array();
            for (int k = 1; k <= 7; k++) /* Monday first */
                if (c->days & (1u << (k % 7)))
                    append(d, json_string(day_names[k % 7]), ok);
            set_key(t, "days", d, ok);
        }
        set_key(o, "time", t, ok);
    }
    if (c->claims_n) {
        json_t *m = json_object();
        for (size_t i = 0; i < c->claims_n; i++)
            set_key(m, c->claims[i].key, json_string(c->claims[i].glob), ok);
        set_key(o, "claims", m, ok);
    }
    return o;
}

int mf_policy_render(const struct mf_policy *p, char **json_out)
{
    *json_out = NULL;
    bool ok = true;
    json_t *doc = json_object();
    json_t *paths = json_object();
    set_key(doc, "path", paths, &ok);
    for (size_t i = 0; i < p->rules_n; i++) {
        const struct mf_policy_rule *r = &p->rules[i];
        json_t *rule = json_object();
        json_t *caps = json_array();
        for (size_t k = 0; k < CAP_NAMES_N; k++)
            if (r->caps & cap_names[k].bit)
                append(caps, json_string(cap_names[k].name), &ok);
        set_key(rule, "capabilities", caps, &ok);
        if (r->cond)
            set_key(rule, "conditions", render_cond(r->cond, &ok), &ok);
        if (r->max_ttl_ms)
            set_key(rule, "max_ttl_ms", json_integer((json_int_t)r->max_ttl_ms), &ok);
        set_key(paths, r->pattern, rule, &ok);
    }
    char *s = ok ? json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(doc);
    if (!s)
        return -ENOMEM;
    *json_out = s;
    return 0;
}

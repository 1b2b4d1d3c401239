/* Policy sets: every policy of the cluster by name, immutable once built and
 * reference counted, so a decision on any thread reads one without a lock.
 * A write never edits a set: mf_policy_set_put and mf_policy_set_delete copy
 * the array of policy pointers (sharing the compiled policies by reference)
 * into a new set. Writes are rare and at most MF_POLICY_SET_MAX long, so the
 * O(n) copy buys lock-free reads cheaply.
 *
 * Besides the name-sorted array (for `policy list`) a set holds an
 * open-addressing hash index of the names: a decision resolves every policy of
 * the token by name, and with 1,000 policies a binary search of strcmp on
 * scattered names was half the decision's time.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "auth/policy.h"
#include "auth/policy_internal.h"
#include "common/assert.h"
#include "common/err.h"

/* FNV-1a, 64 bits: names are short and chosen by operators, not attackers
 * racing for collisions (a collision costs one more probe, never a wrong
 * answer: every probe compares the name). */
static uint64_t name_hash(const char *name)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        h ^= *p;
        h *= 0x100000001b3ull;
    }
    return h;
}

static void set_free(struct mf_policy_set *s)
{
    for (size_t i = 0; i < s->n; i++)
        mf_policy_release(s->pols[i]);
    free(s->pols);
    free(s->index);
    free(s);
}

/* Build the hash index once the array is filled: load factor at most 1/2. */
static int set_index(struct mf_policy_set *s)
{
    size_t cap = 4;
    while (cap < 2 * s->n)
        cap *= 2;
    s->index = calloc(cap, sizeof(*s->index));
    if (!s->index)
        return -ENOMEM;
    s->index_mask = cap - 1;
    for (size_t i = 0; i < s->n; i++) {
        uint64_t h = name_hash(s->pols[i]->name);
        size_t at = (size_t)h & s->index_mask;
        while (s->index[at].policy)
            at = (at + 1) & s->index_mask;
        s->index[at].hash = h;
        s->index[at].policy = s->pols[i];
    }
    return 0;
}

/* The built-in root policy: every capability but deny on every path. The
 * decision short-circuits on the name; the rule is what it reports. */
static const char root_json[] =
    "{\"path\": {\"*\": {\"capabilities\": "
    "[\"create\", \"read\", \"update\", \"delete\", \"list\", \"sudo\"]}}}";

/* A set of n empty slots; on success the caller fills pols[] then calls
 * set_index. */
static int set_alloc(size_t n, struct mf_policy_set **out)
{
    struct mf_policy_set *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->pols = calloc(n ? n : 1, sizeof(*s->pols));
    if (!s->pols) {
        free(s);
        return -ENOMEM;
    }
    atomic_init(&s->refs, 1);
    s->n = n;
    *out = s;
    return 0;
}

int mf_policy_set_new(struct mf_policy_set **out)
{
    char err[256];
    struct mf_policy *root = NULL, *def = NULL;
    int rc = mf_policy_parse("root", root_json, strlen(root_json), &root, err, sizeof(err));
    if (rc == 0)
        rc = mf_policy_parse("default", MF_POLICY_DEFAULT_JSON, strlen(MF_POLICY_DEFAULT_JSON),
                             &def, err, sizeof(err));
    /* The built-ins are constants: anything but memory is a programmer error. */
    MF_ASSERT(rc == 0 || rc == -ENOMEM);
    if (rc == 0)
        rc = set_alloc(2, out);
    if (rc < 0) {
        mf_policy_release(root);
        mf_policy_release(def);
        return rc;
    }
    (*out)->pols[0] = def; /* "default" < "root" */
    (*out)->pols[1] = root;
    rc = set_index(*out);
    if (rc < 0) {
        set_free(*out);
        *out = NULL;
    }
    return rc;
}

struct mf_policy_set *mf_policy_set_ref(const struct mf_policy_set *set)
{
    struct mf_policy_set *m = (struct mf_policy_set *)set;
    size_t before = atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
    MF_ASSERT(before > 0);
    return m;
}

void mf_policy_set_release(struct mf_policy_set *set)
{
    if (!set)
        return;
    size_t before = atomic_fetch_sub_explicit(&set->refs, 1, memory_order_acq_rel);
    MF_ASSERT(before > 0);
    if (before == 1)
        set_free(set);
}

/* Index of the first policy whose name is >= name. */
static size_t lower_bound(const struct mf_policy_set *set, const char *name)
{
    size_t lo = 0, hi = set->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(set->pols[mid]->name, name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

const struct mf_policy *mf_policy_set_find(const struct mf_policy_set *set, const char *name)
{
    uint64_t h = name_hash(name);
    for (size_t at = (size_t)h & set->index_mask;; at = (at + 1) & set->index_mask) {
        const struct mf_policy_slot *slot = &set->index[at];
        if (!slot->policy)
            return NULL; /* the load factor guarantees an empty slot */
        if (slot->hash == h && strcmp(slot->policy->name, name) == 0)
            return slot->policy;
    }
}

size_t mf_policy_set_count(const struct mf_policy_set *set)
{
    return set->n;
}

const char *mf_policy_set_name_at(const struct mf_policy_set *set, size_t i)
{
    MF_ASSERT(i < set->n);
    return set->pols[i]->name;
}

int mf_policy_set_put(const struct mf_policy_set *old, struct mf_policy *p,
                      struct mf_policy_set **out, char *err, size_t err_len)
{
    MF_ASSERT(old && p && out);
    *out = NULL;
    if (strcmp(p->name, "root") == 0)
        return mf_err_set(err, err_len, MF_EINVAL, "policy root is built in and cannot be written");
    size_t at = lower_bound(old, p->name);
    bool replace = at < old->n && strcmp(old->pols[at]->name, p->name) == 0;
    size_t n = replace ? old->n : old->n + 1;
    if (n > MF_POLICY_SET_MAX)
        return mf_err_set(err, err_len, MF_ETOOLARGE, "the cluster holds at most %d policies",
                          MF_POLICY_SET_MAX);
    struct mf_policy_set *s;
    int rc = set_alloc(n, &s);
    if (rc < 0)
        return mf_err_set(err, err_len, rc, "out of memory");
    size_t j = 0;
    for (size_t i = 0; i < old->n; i++) {
        if (i == at)
            s->pols[j++] = mf_policy_ref(p);
        if (!(replace && i == at))
            s->pols[j++] = mf_policy_ref(old->pols[i]);
    }
    if (at == old->n)
        s->pols[j++] = mf_policy_ref(p);
    MF_ASSERT(j == n);
    rc = set_index(s);
    if (rc < 0) {
        set_free(s);
        return mf_err_set(err, err_len, rc, "out of memory");
    }
    *out = s;
    return 0;
}

int mf_policy_set_put_json(const struct mf_policy_set *old, const char *name,
                           const char *json, size_t json_len,
                           struct mf_policy_set **out, char *err, size_t err_len)
{
    struct mf_policy *p;
    int rc = mf_policy_parse(name, json, json_len, &p, err, err_len);
    if (rc < 0)
        return rc;
    rc = mf_policy_set_put(old, p, out, err, err_len);
    mf_policy_release(p);
    return rc;
}

int mf_policy_set_delete(const struct mf_policy_set *old, const char *name,
                         struct mf_policy_set **out, char *err, size_t err_len)
{
    MF_ASSERT(old && name && out);
    *out = NULL;
    if (strcmp(name, "root") == 0 || strcmp(name, "default") == 0)
        return mf_err_set(err, err_len, MF_EINVAL, "policy %s is built in and cannot be deleted",
                          name);
    size_t at = lower_bound(old, name);
    if (at == old->n || strcmp(old->pols[at]->name, name) != 0)
        return mf_err_set(err, err_len, MF_ENOTFOUND, "no policy named %.128s", name);
    struct mf_policy_set *s;
    int rc = set_alloc(old->n - 1, &s);
    if (rc < 0)
        return mf_err_set(err, err_len, rc, "out of memory");
    size_t j = 0;
    for (size_t i = 0; i < old->n; i++)
        if (i != at)
            s->pols[j++] = mf_policy_ref(old->pols[i]);
    rc = set_index(s);
    if (rc < 0) {
        set_free(s);
        return mf_err_set(err, err_len, rc, "out of memory");
    }
    *out = s;
    return 0;
}

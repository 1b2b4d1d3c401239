/* The compiled form of a policy, shared by policy.c (parse, render, sets) and
 * policy_decide.c (matching and decisions). Not part of the module's contract:
 * only src/auth/policy*.c include it. */
#ifndef MF_AUTH_POLICY_INTERNAL_H
#define MF_AUTH_POLICY_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/policy.h"

#define MF_MINUTES_PER_DAY 1440u

/* One prefix of a cidrs condition, host bits zero. */
struct mf_policy_cidr {
    uint8_t family; /* MF_AUTHZ_ADDR_V4 or MF_AUTHZ_ADDR_V6 */
    uint8_t bits;   /* prefix length */
    uint8_t addr[16];
};

struct mf_policy_claim {
    char *key;
    char *glob;
};

/* The conditions of one rule; a rule without any has a NULL pointer. */
struct mf_policy_cond {
    struct mf_policy_cidr *cidrs; /* cidrs_n > 0 iff the rule has a cidrs condition */
    size_t cidrs_n;
    bool has_time;
    bool has_after, has_before; /* as written, for rendering */
    uint16_t after_min;  /* minute of the UTC day, inclusive, 0..1439 */
    uint16_t before_min; /* exclusive, 1..1440; != after_min */
    uint8_t days;        /* bit d = day d, 0 = Sunday; 0x7f when not given */
    bool has_days;
    struct mf_policy_claim *claims; /* claims_n > 0 iff the rule has claims */
    size_t claims_n;
};

/* One pattern of a policy with what the priority rules need precomputed. */
struct mf_policy_rule {
    char *pattern;
    size_t len;
    size_t prefix_len; /* literal bytes before the first glob (len if none) */
    size_t first_glob; /* index of the first `+` or `*`; SIZE_MAX if none */
    unsigned plus_n;   /* `+` segments */
    bool ends_star;
    unsigned caps;       /* enum mf_cap bits */
    uint64_t max_ttl_ms; /* 0 = none */
    struct mf_policy_cond *cond;
};

/* Rules are sorted by priority, highest first, so the first rule that matches
 * a path is the policy's deciding one and a pattern is found by bsearch. */
struct mf_policy {
    atomic_size_t refs;
    char *name;
    struct mf_policy_rule *rules;
    size_t rules_n;
};

struct mf_policy_slot {
    uint64_t hash;
    const struct mf_policy *policy; /* NULL: empty slot */
};

/* Policies sorted by name (strcmp), each holding one reference, and a hash
 * index of the same pointers (linear probing, at most half full). */
struct mf_policy_set {
    atomic_size_t refs;
    struct mf_policy **pols;
    size_t n;
    struct mf_policy_slot *index;
    size_t index_mask; /* slots - 1, a power of two minus one */
};

/* >0 if a has the higher priority, <0 if b has; 0 only for the same pattern
 * (the last rule is strcmp, a total order). */
int mf_policy_rule_priority_cmp(const struct mf_policy_rule *a, const struct mf_policy_rule *b);

/* qsort/bsearch order: highest priority first. */
int mf_policy_rule_sort_cmp(const void *a, const void *b);

#endif

/* Tests of src/store/lease_rules.c: ttl capping for bare leases and engine
 * credentials (checked against the server's two former formulas), grant,
 * activation and renewal expiry arithmetic, and the serve-or-refuse rule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "command.pb-c.h"
#include "common/err.h"
#include "store/lease_rules.h"

#define LS(x) MAYFLY__CMD__LEASE_STATE__##x
#define HOUR_MS UINT64_C(3600000)
#define DEF_MS HOUR_MS          /* config default_lease_ttl_ms */
#define MAX_MS (768 * HOUR_MS)  /* config max_lease_ttl_ms */
#define T0 UINT64_C(1700000000000)

/* The server's bare-lease rule before lease_rules.c (ops.c op_lease_grant),
 * kept here as the oracle the new rule must match. */
static void old_bare(uint64_t req_ttl, uint64_t req_max, uint64_t cdef, uint64_t cmax,
                     uint64_t *ttl_out, uint64_t *max_out)
{
    uint64_t ttl = req_ttl ? req_ttl : cdef;
    uint64_t max_ttl = req_max ? req_max : cmax;
    if (max_ttl > cmax)
        max_ttl = cmax;
    if (ttl > max_ttl)
        ttl = max_ttl;
    *ttl_out = ttl;
    *max_out = max_ttl;
}

/* The server's credential rule before lease_rules.c (ops.c op_creds_issue). */
static void old_creds(uint64_t req_ttl, uint64_t rdef, uint64_t rmax, uint64_t cdef,
                      uint64_t cmax, uint64_t *ttl_out, uint64_t *max_out)
{
    uint64_t ttl = req_ttl ? req_ttl : rdef ? rdef : cdef;
    uint64_t cap = rmax && rmax < cmax ? rmax : cmax;
    if (ttl > cap)
        ttl = cap;
    *ttl_out = ttl;
    *max_out = cap;
}

/* The state machine's renewal before lease_rules.c (leases.c), valid where
 * the store's invariant now < expire_at <= max_expire_at holds. */
static uint64_t old_renew(uint64_t now, uint64_t increment, uint64_t ttl, uint64_t expire_at,
                          uint64_t max_expire_at)
{
    uint64_t inc = increment ? increment : ttl;
    uint64_t exp = inc > max_expire_at - now ? max_expire_at : now + inc;
    return exp < expire_at ? expire_at : exp;
}

/* Values that sit on every edge of the rules: zero, one, around the
 * defaults and caps, and the top of the range. */
static const uint64_t grid[] = {0,          1,          1000,       DEF_MS - 1, DEF_MS,
                                DEF_MS + 1, MAX_MS - 1, MAX_MS,     MAX_MS + 1, UINT64_MAX - 1,
                                UINT64_MAX};
#define GRID_N (sizeof(grid) / sizeof(grid[0]))

static void clamp(uint64_t req_ttl, uint64_t req_max, uint64_t rdef, uint64_t rmax,
                  uint64_t pmax, uint64_t *ttl, uint64_t *max)
{
    struct mf_lease_ttl_inputs in = {
        .requested_ttl_ms = req_ttl,
        .requested_max_ttl_ms = req_max,
        .role_default_ttl_ms = rdef,
        .role_max_ttl_ms = rmax,
        .policy_max_ttl_ms = pmax,
        .cluster_default_ttl_ms = DEF_MS,
        .cluster_max_ttl_ms = MAX_MS,
    };
    mf_lease_ttl_clamp(&in, ttl, max);
}

/* A bare lease with nothing requested gets the cluster default ttl and may
 * be renewed up to the cluster max. */
static void test_store_lease_rules_bare_defaults(void **state)
{
    (void)state;
    uint64_t ttl, max;
    clamp(0, 0, 0, 0, 0, &ttl, &max);
    assert_int_equal(ttl, DEF_MS);
    assert_int_equal(max, MAX_MS);
}

/* A bare lease's requested ttl and max above the cluster max are lowered to
 * it, and a ttl above the requested max is lowered to that. */
static void test_store_lease_rules_bare_requests_capped(void **state)
{
    (void)state;
    uint64_t ttl, max;
    clamp(UINT64_MAX, UINT64_MAX, 0, 0, 0, &ttl, &max);
    assert_int_equal(ttl, MAX_MS);
    assert_int_equal(max, MAX_MS);
    clamp(10 * HOUR_MS, 2 * HOUR_MS, 0, 0, 0, &ttl, &max);
    assert_int_equal(ttl, 2 * HOUR_MS);
    assert_int_equal(max, 2 * HOUR_MS);
    clamp(1000, 0, 0, 0, 0, &ttl, &max);
    assert_int_equal(ttl, 1000);
    assert_int_equal(max, MAX_MS);
}

/* Across a grid of requested ttls and maxes and two cluster configs
 * (including zeros and UINT64_MAX), the rule gives exactly what the server's
 * bare-lease formula gave. */
static void test_store_lease_rules_bare_matches_old_rule(void **state)
{
    (void)state;
    const uint64_t clusters[][2] = {{DEF_MS, MAX_MS}, {MAX_MS, MAX_MS}, {0, 0},
                                    {UINT64_MAX, UINT64_MAX}, {DEF_MS, 0}};
    for (size_t c = 0; c < sizeof(clusters) / sizeof(clusters[0]); c++)
        for (size_t i = 0; i < GRID_N; i++)
            for (size_t j = 0; j < GRID_N; j++) {
                struct mf_lease_ttl_inputs in = {.requested_ttl_ms = grid[i],
                                                 .requested_max_ttl_ms = grid[j],
                                                 .cluster_default_ttl_ms = clusters[c][0],
                                                 .cluster_max_ttl_ms = clusters[c][1]};
                uint64_t ttl, max, ottl, omax;
                mf_lease_ttl_clamp(&in, &ttl, &max);
                old_bare(grid[i], grid[j], clusters[c][0], clusters[c][1], &ottl, &omax);
                assert_int_equal(ttl, ottl);
                assert_int_equal(max, omax);
            }
}

/* A credential with no requested ttl takes the role's default; with neither,
 * the cluster default. */
static void test_store_lease_rules_creds_role_default(void **state)
{
    (void)state;
    uint64_t ttl, max;
    clamp(0, 0, 5 * HOUR_MS, 0, 0, &ttl, &max);
    assert_int_equal(ttl, 5 * HOUR_MS);
    assert_int_equal(max, MAX_MS);
    clamp(7000, 0, 5 * HOUR_MS, 0, 0, &ttl, &max);
    assert_int_equal(ttl, 7000);
}

/* A role max below the cluster max caps ttl and max ttl; one above it (or 0)
 * changes nothing. */
static void test_store_lease_rules_creds_role_max(void **state)
{
    (void)state;
    uint64_t ttl, max;
    clamp(0, 0, 5 * HOUR_MS, 2 * HOUR_MS, 0, &ttl, &max);
    assert_int_equal(ttl, 2 * HOUR_MS);
    assert_int_equal(max, 2 * HOUR_MS);
    clamp(0, 0, 0, MAX_MS + 1, 0, &ttl, &max);
    assert_int_equal(ttl, DEF_MS);
    assert_int_equal(max, MAX_MS);
    clamp(UINT64_MAX, 0, 0, UINT64_MAX, 0, &ttl, &max);
    assert_int_equal(ttl, MAX_MS);
    assert_int_equal(max, MAX_MS);
}

/* Across a grid of requested ttls, role defaults, role maxes and cluster
 * configs (zeros and UINT64_MAX included), the rule gives exactly what the
 * server's credential formula gave. */
static void test_store_lease_rules_creds_matches_old_rule(void **state)
{
    (void)state;
    const uint64_t clusters[][2] = {{DEF_MS, MAX_MS}, {0, 0}, {UINT64_MAX, UINT64_MAX},
                                    {DEF_MS, 0}};
    for (size_t c = 0; c < sizeof(clusters) / sizeof(clusters[0]); c++)
        for (size_t i = 0; i < GRID_N; i++)
            for (size_t j = 0; j < GRID_N; j++)
                for (size_t k = 0; k < GRID_N; k++) {
                    struct mf_lease_ttl_inputs in = {.requested_ttl_ms = grid[i],
                                                     .role_default_ttl_ms = grid[j],
                                                     .role_max_ttl_ms = grid[k],
                                                     .cluster_default_ttl_ms = clusters[c][0],
                                                     .cluster_max_ttl_ms = clusters[c][1]};
                    uint64_t ttl, max, ottl, omax;
                    mf_lease_ttl_clamp(&in, &ttl, &max);
                    old_creds(grid[i], grid[j], grid[k], clusters[c][0], clusters[c][1], &ottl,
                              &omax);
                    assert_int_equal(ttl, ottl);
                    assert_int_equal(max, omax);
                }
}

/* A policy max lowers the cap below role and cluster maxes; 0 means none,
 * and a policy max above the others cannot raise them. */
static void test_store_lease_rules_policy_max(void **state)
{
    (void)state;
    uint64_t ttl, max;
    clamp(0, 0, 5 * HOUR_MS, 4 * HOUR_MS, HOUR_MS / 2, &ttl, &max);
    assert_int_equal(ttl, HOUR_MS / 2);
    assert_int_equal(max, HOUR_MS / 2);
    clamp(0, 0, 5 * HOUR_MS, 4 * HOUR_MS, UINT64_MAX, &ttl, &max);
    assert_int_equal(ttl, 4 * HOUR_MS);
    assert_int_equal(max, 4 * HOUR_MS);
    clamp(0, 3 * HOUR_MS, 0, 0, 2 * HOUR_MS, &ttl, &max); /* smallest of request and policy */
    assert_int_equal(ttl, HOUR_MS);
    assert_int_equal(max, 2 * HOUR_MS);
}

/* Whatever the inputs, ttl <= max ttl <= cluster max. */
static void test_store_lease_rules_clamp_invariant(void **state)
{
    (void)state;
    for (size_t i = 0; i < GRID_N; i++)
        for (size_t j = 0; j < GRID_N; j++)
            for (size_t k = 0; k < GRID_N; k++)
                for (size_t p = 0; p < GRID_N; p += 2) {
                    uint64_t ttl, max;
                    clamp(grid[i], grid[j], grid[k], grid[(k + i) % GRID_N], grid[p], &ttl,
                          &max);
                    assert_true(ttl <= max);
                    assert_true(max <= MAX_MS);
                }
}

/* A grant expires at now + ttl and may be renewed to now + max ttl; a max
 * ttl of 0 pins the max to the first ttl. */
static void test_store_lease_rules_grant_expiry(void **state)
{
    (void)state;
    uint64_t exp = 0, mexp = 0;
    assert_int_equal(mf_lease_grant_expiry(T0, 1000, 5000, &exp, &mexp), 0);
    assert_int_equal(exp, T0 + 1000);
    assert_int_equal(mexp, T0 + 5000);
    assert_int_equal(mf_lease_grant_expiry(T0, 1000, 0, &exp, &mexp), 0);
    assert_int_equal(exp, T0 + 1000);
    assert_int_equal(mexp, T0 + 1000);
    assert_int_equal(mf_lease_grant_expiry(T0, 1000, 1000, &exp, &mexp), 0);
    assert_int_equal(mexp, T0 + 1000);
}

/* A grant with ttl 0, max below ttl, or values past the limits is refused
 * with outputs untouched; exactly at the limits the sums do not overflow. */
static void test_store_lease_rules_grant_expiry_limits(void **state)
{
    (void)state;
    uint64_t exp = 1, mexp = 2;
    assert_int_equal(mf_lease_grant_expiry(T0, 0, 0, &exp, &mexp), MF_EINVAL);
    assert_int_equal(mf_lease_grant_expiry(T0, 0, 5000, &exp, &mexp), MF_EINVAL);
    assert_int_equal(mf_lease_grant_expiry(T0, 5000, 4999, &exp, &mexp), MF_EINVAL);
    assert_int_equal(mf_lease_grant_expiry(T0, MF_LEASE_TTL_LIMIT_MS + 1, 0, &exp, &mexp),
                     MF_EINVAL);
    assert_int_equal(mf_lease_grant_expiry(T0, 1, MF_LEASE_TTL_LIMIT_MS + 1, &exp, &mexp),
                     MF_EINVAL);
    assert_int_equal(mf_lease_grant_expiry(MF_LEASE_NOW_LIMIT_MS + 1, 1, 1, &exp, &mexp),
                     MF_EINVAL);
    assert_int_equal(mf_lease_grant_expiry(T0, UINT64_MAX, UINT64_MAX, &exp, &mexp), MF_EINVAL);
    assert_int_equal(exp, 1);
    assert_int_equal(mexp, 2);
    assert_int_equal(mf_lease_grant_expiry(MF_LEASE_NOW_LIMIT_MS, MF_LEASE_TTL_LIMIT_MS,
                                           MF_LEASE_TTL_LIMIT_MS, &exp, &mexp),
                     0);
    assert_int_equal(exp, MF_LEASE_NOW_LIMIT_MS + MF_LEASE_TTL_LIMIT_MS);
    assert_true(exp > MF_LEASE_NOW_LIMIT_MS); /* no wrap */
    assert_int_equal(mexp, exp);
}

/* now + ttl is capped at max_expire_at, at the boundary and when the sum
 * would overflow; a max at or before now is returned as is. */
static void test_store_lease_rules_expire_at_capped(void **state)
{
    (void)state;
    assert_int_equal(mf_lease_expire_at(T0, 1000, T0 + 5000), T0 + 1000);
    assert_int_equal(mf_lease_expire_at(T0, 5000, T0 + 5000), T0 + 5000);
    assert_int_equal(mf_lease_expire_at(T0, 5001, T0 + 5000), T0 + 5000);
    assert_int_equal(mf_lease_expire_at(T0, 0, T0 + 5000), T0);
    assert_int_equal(mf_lease_expire_at(T0, UINT64_MAX, T0 + 5000), T0 + 5000);
    assert_int_equal(mf_lease_expire_at(UINT64_MAX - 1, UINT64_MAX, UINT64_MAX), UINT64_MAX);
    assert_int_equal(mf_lease_expire_at(T0, UINT64_MAX - T0, UINT64_MAX), UINT64_MAX);
    assert_int_equal(mf_lease_expire_at(T0, 1, T0), T0);
    assert_int_equal(mf_lease_expire_at(T0, 1, T0 - 10), T0 - 10);
}

/* A renewal extends by the increment, or by the lease's ttl when the
 * increment is 0, capped at max_expire_at. */
static void test_store_lease_rules_renew_extends(void **state)
{
    (void)state;
    /* Lease: ttl 1000, expires T0+1000, max T0+10000; renewed at T0+500. */
    assert_int_equal(mf_lease_renew_expire_at(T0 + 500, 2000, 1000, T0 + 1000, T0 + 10000),
                     T0 + 2500);
    assert_int_equal(mf_lease_renew_expire_at(T0 + 500, 0, 1000, T0 + 1000, T0 + 10000),
                     T0 + 1500);
    assert_int_equal(mf_lease_renew_expire_at(T0 + 500, 20000, 1000, T0 + 1000, T0 + 10000),
                     T0 + 10000);
    assert_int_equal(mf_lease_renew_expire_at(T0 + 500, UINT64_MAX, 1000, T0 + 1000,
                                              T0 + 10000),
                     T0 + 10000);
    assert_int_equal(mf_lease_renew_expire_at(UINT64_MAX - 10, UINT64_MAX, 1, UINT64_MAX - 5,
                                              UINT64_MAX),
                     UINT64_MAX);
}

/* A renewal never shortens a lease: a small increment keeps expire_at. */
static void test_store_lease_rules_renew_never_shortens(void **state)
{
    (void)state;
    assert_int_equal(mf_lease_renew_expire_at(T0 + 500, 100, 1000, T0 + 9000, T0 + 10000),
                     T0 + 9000);
    assert_int_equal(mf_lease_renew_expire_at(T0 + 500, 0, 0, T0 + 9000, T0 + 10000), T0 + 9000);
    assert_int_equal(mf_lease_renew_expire_at(T0 + 500, 8500, 1000, T0 + 9000, T0 + 10000),
                     T0 + 9000);
}

/* Where the store's invariant now < expire_at <= max_expire_at holds, the
 * renewal gives exactly what leases.c computed before. */
static void test_store_lease_rules_renew_matches_old_rule(void **state)
{
    (void)state;
    const uint64_t nows[] = {0, 1, T0, UINT64_MAX / 2, UINT64_MAX - 2};
    const uint64_t deltas[] = {1, 2, 1000, UINT64_C(1) << 40, UINT64_MAX};
    for (size_t n = 0; n < sizeof(nows) / sizeof(nows[0]); n++)
        for (size_t e = 0; e < sizeof(deltas) / sizeof(deltas[0]); e++)
            for (size_t m = 0; m < sizeof(deltas) / sizeof(deltas[0]); m++)
                for (size_t i = 0; i < GRID_N; i++)
                    for (size_t t = 0; t < GRID_N; t += 3) {
                        uint64_t now = nows[n];
                        uint64_t room = UINT64_MAX - now;
                        uint64_t exp = now + (deltas[e] < room ? deltas[e] : room);
                        uint64_t mroom = UINT64_MAX - exp;
                        uint64_t mexp = exp + (deltas[m] < mroom ? deltas[m] : mroom);
                        if (!(now < exp && exp <= mexp))
                            continue;
                        assert_int_equal(
                            mf_lease_renew_expire_at(now, grid[i], grid[t], exp, mexp),
                            old_renew(now, grid[i], grid[t], exp, mexp));
                    }
}

/* Only issuing and active leases are served; revoking, revoked,
 * irrevocable, none and unknown states are refused however far the expiry. */
static void test_store_lease_rules_servable_states(void **state)
{
    (void)state;
    assert_true(mf_lease_servable(LS(LEASE_ACTIVE), T0 + 60000, T0, 500));
    assert_true(mf_lease_servable(LS(LEASE_ISSUING), T0 + 60000, T0, 500));
    assert_false(mf_lease_servable(LS(LEASE_REVOKING), T0 + 60000, T0, 500));
    assert_false(mf_lease_servable(LS(LEASE_REVOKED), T0 + 60000, T0, 500));
    assert_false(mf_lease_servable(LS(LEASE_IRREVOCABLE), T0 + 60000, T0, 500));
    assert_false(mf_lease_servable(LS(LEASE_STATE_NONE), T0 + 60000, T0, 500));
    assert_false(mf_lease_servable(99, T0 + 60000, T0, 500));
    assert_false(mf_lease_servable(-1, T0 + 60000, T0, 500));
}

/* A lease is refused once now + skew reaches expire_at: served one
 * millisecond before, refused at equality and after; with skew 0 it is
 * refused at now == expire_at. */
static void test_store_lease_rules_servable_skew_boundary(void **state)
{
    (void)state;
    const int act = LS(LEASE_ACTIVE);
    assert_true(mf_lease_servable(act, T0 + 1000, T0 + 499, 500));
    assert_false(mf_lease_servable(act, T0 + 1000, T0 + 500, 500));
    assert_false(mf_lease_servable(act, T0 + 1000, T0 + 501, 500));
    assert_false(mf_lease_servable(act, T0 + 1000, T0 + 2000, 500));
    assert_true(mf_lease_servable(act, T0 + 1000, T0 + 999, 0));
    assert_false(mf_lease_servable(act, T0 + 1000, T0 + 1000, 0));
    assert_false(mf_lease_servable(act, 0, 0, 0));
    assert_false(mf_lease_servable(act, T0, 0, T0));
    assert_true(mf_lease_servable(act, T0, 0, T0 - 1));
}

/* now + skew past UINT64_MAX saturates and refuses, instead of wrapping into
 * the past and serving. */
static void test_store_lease_rules_servable_overflow(void **state)
{
    (void)state;
    const int act = LS(LEASE_ACTIVE);
    assert_false(mf_lease_servable(act, UINT64_MAX, UINT64_MAX - 10, 20));
    assert_false(mf_lease_servable(act, UINT64_MAX, UINT64_MAX - 10, UINT64_MAX));
    assert_false(mf_lease_servable(act, T0, T0 - 1, UINT64_MAX));
    assert_false(mf_lease_servable(act, UINT64_MAX, UINT64_MAX, 0));
    assert_true(mf_lease_servable(act, UINT64_MAX, UINT64_MAX - 10, 9));
    assert_false(mf_lease_servable(act, UINT64_MAX, UINT64_MAX - 10, 10));
    assert_true(mf_lease_servable(act, UINT64_MAX, 0, UINT64_MAX - 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_store_lease_rules_bare_defaults),
        cmocka_unit_test(test_store_lease_rules_bare_requests_capped),
        cmocka_unit_test(test_store_lease_rules_bare_matches_old_rule),
        cmocka_unit_test(test_store_lease_rules_creds_role_default),
        cmocka_unit_test(test_store_lease_rules_creds_role_max),
        cmocka_unit_test(test_store_lease_rules_creds_matches_old_rule),
        cmocka_unit_test(test_store_lease_rules_policy_max),
        cmocka_unit_test(test_store_lease_rules_clamp_invariant),
        cmocka_unit_test(test_store_lease_rules_grant_expiry),
        cmocka_unit_test(test_store_lease_rules_grant_expiry_limits),
        cmocka_unit_test(test_store_lease_rules_expire_at_capped),
        cmocka_unit_test(test_store_lease_rules_renew_extends),
        cmocka_unit_test(test_store_lease_rules_renew_never_shortens),
        cmocka_unit_test(test_store_lease_rules_renew_matches_old_rule),
        cmocka_unit_test(test_store_lease_rules_servable_states),
        cmocka_unit_test(test_store_lease_rules_servable_skew_boundary),
        cmocka_unit_test(test_store_lease_rules_servable_overflow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

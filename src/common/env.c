/* Real clocks and randomness, replaceable for tests. */
#include "common/env.h"

#include <openssl/rand.h>
#include <time.h>

#include "common/assert.h"
#include "common/err.h"

static uint64_t real_wall_ms(void *ctx)
{
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t real_mono_ms(void *ctx)
{
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int real_rand_bytes(void *ctx, void *buf, size_t len)
{
    (void)ctx;
    if (len > 0x7fffffff)
        return MF_EINVAL;
    return RAND_bytes(buf, (int)len) == 1 ? 0 : MF_ECRYPTO;
}

static const struct mf_env_ops real_env = {real_wall_ms, real_mono_ms, real_rand_bytes, NULL};
static const struct mf_env_ops *env = &real_env;

void mf_env_set(const struct mf_env_ops *ops)
{
    env = ops ? ops : &real_env;
}

uint64_t mf_now_wall_ms(void) { return env->wall_ms(env->ctx); }
uint64_t mf_now_mono_ms(void) { return env->mono_ms(env->ctx); }
uint64_t mf_now_mono_us_figures(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}
int mf_rand_bytes(void *buf, size_t len) { return env->rand_bytes(env->ctx, buf, len); }

uint64_t mf_rand_u64(void)
{
    uint64_t v;
    MF_ASSERT(mf_rand_bytes(&v, sizeof(v)) == 0);
    return v;
}

/* The one door for nondeterminism: wall clock, monotonic clock, randomness.
 *
 * Code that runs outside the pure cores reads time and randomness only through
 * these functions, so tests can replace them (mf_env_set) and the simulator and
 * the determinism tests can prove the apply path never touches them.
 * The Raft core and the state machine's apply path must not call these at all:
 * the proposer puts `now` and generated ids into commands.
 */
#ifndef MF_COMMON_ENV_H
#define MF_COMMON_ENV_H

#include <stddef.h>
#include <stdint.h>

struct mf_env_ops {
    uint64_t (*wall_ms)(void *ctx);      /* Unix time, milliseconds */
    uint64_t (*mono_ms)(void *ctx);      /* monotonic, milliseconds */
    /* Fill buf with cryptographically strong random bytes; 0 or -MF_ECRYPTO. */
    int (*rand_bytes)(void *ctx, void *buf, size_t len);
    void *ctx;
};

/* Replace the process-wide implementation (NULL restores the real one).
 * Not thread-safe: call before starting threads. */
void mf_env_set(const struct mf_env_ops *ops);

uint64_t mf_now_wall_ms(void);
uint64_t mf_now_mono_ms(void);
/* The real monotonic clock in microseconds, for latency figures only
 * (/metrics histograms): not replaceable, so never for a decision. */
uint64_t mf_now_mono_us_figures(void);
/* Random bytes from the CSPRNG (OpenSSL RAND_bytes by default). Returns 0, or
 * MF_ECRYPTO if the generator failed (callers must not continue silently). */
int mf_rand_bytes(void *buf, size_t len);
/* Uniform random 64-bit value from mf_rand_bytes; aborts if the CSPRNG fails. */
uint64_t mf_rand_u64(void);

#endif

/* Not part of mayfly: an object that calls a clock and a random source, so
 * the nm build check can prove it catches them (test store_apply_nm_canary,
 * expected to fail). */
#include <time.h>

#include "common/env.h"

unsigned long long mf_nm_canary(void)
{
    return (unsigned long long)time(NULL) + mf_rand_u64();
}

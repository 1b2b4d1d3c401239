/* A deliberate violation for check_core_nm.sh's self-test: a clock read. */
#include <time.h>

long mf_nm_canary_core(void)
{
    return (long)time(NULL);
}

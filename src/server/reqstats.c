/* Requests by operation and code (reqstats.h). */
#include "server/reqstats.h"

#include "common/err.h"

const double mf_reqstats_bounds_s[MF_REQSTATS_BUCKETS] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5};

/* 0 for OK, 1 + (MF_ENOTFOUND - code) for the public codes; internal
 * codes go through their public name. */
static int code_index(int code)
{
    if (code == 0)
        return 0;
    if (code > MF_ENOTFOUND || code < MF_EINTERNAL)
        code = mf_err_from_name(mf_err_name(code));
    if (code > MF_ENOTFOUND || code < MF_EINTERNAL)
        code = MF_EINTERNAL;
    return 1 + (MF_ENOTFOUND - code);
}

const char *mf_reqstats_code_name(int idx)
{
    return idx == 0 ? "OK" : mf_err_name(MF_ENOTFOUND - (idx - 1));
}

void mf_reqstats_done(struct mf_reqstats *st, int op, int code, uint64_t elapsed_us)
{
    if (!st || op <= 0 || op >= MF_REQSTATS_OPS)
        return;
    st->count[op][code_index(code)]++;
    st->total[op]++;
    st->sum_us[op] += elapsed_us;
    for (int i = 0; i < MF_REQSTATS_BUCKETS; i++)
        if ((double)elapsed_us <= mf_reqstats_bounds_s[i] * 1e6) {
            st->bucket[op][i]++;
            break;
        }
}

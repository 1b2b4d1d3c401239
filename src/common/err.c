/* Error codes: text for users and the stable names of the CLI contract. */
#include "common/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

struct err_desc {
    int code;
    const char *name; /* CLI contract name */
    const char *text;
};

static const struct err_desc err_table[] = {
    {MF_ENOTFOUND, "NOT_FOUND", "not found"},
    {MF_EPERM, "PERMISSION_DENIED", "permission denied"},
    {MF_EUNAUTH, "UNAUTHENTICATED", "missing or invalid token"},
    {MF_ECAS, "CAS_MISMATCH", "check-and-set version mismatch"},
    {MF_ESEALED, "SEALED", "node is sealed"},
    {MF_ENOTINIT, "NOT_INITIALIZED", "cluster is not initialized"},
    {MF_EQUOTA, "QUOTA_EXCEEDED", "lease quota exceeded"},
    {MF_ELEASEEXPIRED, "LEASE_EXPIRED", "lease expired or about to expire"},
    {MF_ELEASENOTACTIVE, "LEASE_NOT_ACTIVE", "lease is not active"},
    {MF_EINVAL, "INVALID_ARGUMENT", "invalid argument"},
    {MF_ETOOLARGE, "TOO_LARGE", "too large"},
    {MF_ERATELIMIT, "RATE_LIMITED", "rate limited"},
    {MF_EUNAVAIL, "UNAVAILABLE", "unavailable (no leader), retry"},
    {MF_EUNKNOWN, "UNKNOWN_OUTCOME", "outcome unknown: the write may or may not have been applied"},
    {MF_EINTERNAL, "INTERNAL", "internal error"},
    {MF_ECORRUPT, "INTERNAL", "data is corrupt or failed authentication"},
    /* Space on this node: another node with room may answer (fsstat.h). */
    {MF_EMAPFULL, "UNAVAILABLE", "LMDB map full"},
    {MF_ENOTLEADER, "UNAVAILABLE", "not the leader"},
    {MF_ETIMEOUT, "UNAVAILABLE", "timed out"},
    {MF_ECLOSED, "UNAVAILABLE", "closed"},
    {MF_ECONFIG, "INVALID_ARGUMENT", "invalid configuration"},
    {MF_EEXISTS, "INVALID_ARGUMENT", "already exists"},
    {MF_ECRYPTO, "INTERNAL", "cryptographic failure"},
    {MF_ESTORAGE, "INTERNAL", "storage error"},
    {MF_ECOMPACTED, "INTERNAL", "log entry compacted"},
    {MF_EUNAVAILABLE_ENTRY, "INTERNAL", "log entry unavailable"},
    {MF_ENOSPACE, "UNAVAILABLE", "no space left on device"},
};

static const struct err_desc *find_desc(int code)
{
    for (size_t i = 0; i < sizeof(err_table) / sizeof(err_table[0]); i++)
        if (err_table[i].code == code)
            return &err_table[i];
    return NULL;
}

const char *mf_strerror(int code)
{
    if (code == 0)
        return "success";
    const struct err_desc *d = find_desc(code);
    if (d)
        return d->text;
    if (code < 0 && code > -4000)
        return strerror(-code);
    return "unknown error";
}

const char *mf_err_name(int code)
{
    if (code == 0)
        return "OK";
    const struct err_desc *d = find_desc(code);
    return d ? d->name : "INTERNAL";
}

int mf_err_from_name(const char *name)
{
    /* Public codes are the first block of the table, each named once. */
    for (size_t i = 0; i < sizeof(err_table) / sizeof(err_table[0]); i++)
        if (err_table[i].code >= MF_EINTERNAL && strcmp(err_table[i].name, name) == 0)
            return err_table[i].code;
    return MF_EINTERNAL;
}

int mf_err_set(char *buf, size_t len, int code, const char *fmt, ...)
{
    if (buf && len > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf, len, fmt, ap);
        va_end(ap);
    }
    return code;
}

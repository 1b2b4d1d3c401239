/* Error codes shared by every module.
 *
 * Functions return 0 on success and a negative code on failure (libuv's rule).
 * A code is either a negated errno value (-ENOMEM, -EIO, ...) for operating
 * system failures, or one of the MF_E* codes below for mayfly's own outcomes.
 * The MF_E* codes mirror the error codes of the CLI contract
 * (../shared/CLI.md) so the server, the client and the CLI speak one language.
 */
#ifndef MF_COMMON_ERR_H
#define MF_COMMON_ERR_H

#include <stddef.h>

enum mf_err {
    MF_OK = 0,
    /* Codes from the CLI contract (wire-visible). */
    MF_ENOTFOUND = -4000,
    MF_EPERM = -4001,          /* PERMISSION_DENIED */
    MF_EUNAUTH = -4002,        /* UNAUTHENTICATED */
    MF_ECAS = -4003,           /* CAS_MISMATCH */
    MF_ESEALED = -4004,        /* SEALED */
    MF_ENOTINIT = -4005,       /* NOT_INITIALIZED */
    MF_EQUOTA = -4006,         /* QUOTA_EXCEEDED */
    MF_ELEASEEXPIRED = -4007,  /* LEASE_EXPIRED */
    MF_ELEASENOTACTIVE = -4008,/* LEASE_NOT_ACTIVE */
    MF_EINVAL = -4009,         /* INVALID_ARGUMENT */
    MF_ETOOLARGE = -4010,      /* TOO_LARGE */
    MF_ERATELIMIT = -4011,     /* RATE_LIMITED */
    MF_EUNAVAIL = -4012,       /* UNAVAILABLE: no leader, retry */
    MF_EUNKNOWN = -4013,       /* UNKNOWN_OUTCOME */
    MF_EINTERNAL = -4014,      /* INTERNAL */
    /* Internal codes (mapped to one of the above before they reach a user). */
    MF_ECORRUPT = -4100,       /* data failed a check (bad tag, bad checksum) */
    MF_EMAPFULL = -4101,       /* LMDB map full (its map_size reached) */
    MF_ENOTLEADER = -4102,     /* this node is not the leader */
    MF_ETIMEOUT = -4103,
    MF_ECLOSED = -4104,        /* handle or connection closed */
    MF_ECONFIG = -4105,        /* configuration invalid */
    MF_EEXISTS = -4106,        /* already exists */
    MF_ECRYPTO = -4107,        /* cryptographic failure */
    MF_ESTORAGE = -4108,       /* storage engine error */
    MF_ECOMPACTED = -4109,     /* raft: log entry compacted away */
    MF_EUNAVAILABLE_ENTRY = -4110, /* raft: entry not yet available */
    MF_ENOSPACE = -4111,       /* no space left on the data directory's filesystem */
};

/* Human-readable text for any code (MF_E* or -errno). Never NULL, static. */
const char *mf_strerror(int code);

/* The CLI contract's name for a code ("NOT_FOUND", ...). Internal codes map to
 * their public counterpart (e.g. MF_ENOTLEADER -> "UNAVAILABLE"), -errno to
 * "INTERNAL". Never NULL, static. */
const char *mf_err_name(int code);

/* Inverse of mf_err_name for the public codes; MF_EINTERNAL if unknown. */
int mf_err_from_name(const char *name);

/* Writes "what: mf_strerror(code)" style messages into buf (always
 * NUL-terminated, truncated to len). Returns code, so callers can write
 * `return mf_err_set(buf, len, MF_EINVAL, "bad ttl %s", s);`. */
int mf_err_set(char *buf, size_t len, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif

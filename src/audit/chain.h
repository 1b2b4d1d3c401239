/* The keyed chain over an audit file, anchors, and verification.
 *
 * Pure: no clock, no I/O, no randomness (file ids come in from the caller).
 *
 * A line is a record's canonical bytes B (record.h: sorted compact JSON,
 * including "file" and "seq") with the chain member put first:
 *
 *     line  = {"chain":"<64 hex>",  followed by B without its leading '{'
 *     chain = HMAC-SHA256(chain key, previous chain || B)
 *
 * "chain" sorts before every other member, so a line is itself sorted compact
 * JSON. The verifier takes B back from the exact bytes of the line (the first
 * MF_AUDIT_CHAIN_PREFIX_LEN bytes replaced by '{'), never by re-serialising
 * what it parsed, so any edited byte changes the HMAC. The first line of a
 * file starts from a seed that names the file,
 *
 *     seed = HMAC-SHA256(chain key, "mayfly/audit/v1/file:" || file id)
 *
 * so a line moved from another file never verifies, and seq counts 1, 2, 3...
 * in each file. The first line of every file is a start record:
 *
 *     {"chain":..,"file":ID,"key_id":..,"node":..,"seq":1,
 *      "start":{"prev_chain":HEX,"prev_file":ID,"prev_seq":N},"time_ms":..}
 *
 * where "start" is {} for a node's first file, and otherwise names where the
 * node's previous file ended (after logrotate): a predecessor truncated after
 * the rotation fails verification against that link (pass it as an anchor).
 *
 * Anchors: {file id, seq, chain} tuples that the leader commits through Raft
 * periodically (mf_audit_file_anchor gives a device's current one). Without the
 * chain key nobody can write a line that verifies; with it (it is derived from
 * the cluster's audit key) one could rewrite a file consistently, but not
 * past an anchor held in the Raft log. A removed tail is only detectable
 * against an anchor (or the next file's start record).
 *
 * Threads: the functions share no state; a chain or verifier is used by one
 * thread at a time.
 */
#ifndef MF_AUDIT_CHAIN_H
#define MF_AUDIT_CHAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "audit/record.h"

#define MF_AUDIT_FILE_ID_LEN 32u           /* lowercase hex digits (128 random bits) */
#define MF_AUDIT_FILE_ID_RAND_BYTES 16u
#define MF_AUDIT_CHAIN_PREFIX_LEN 76u      /* {"chain":"<64 hex>", */
#define MF_AUDIT_REASON_MAX 160u

/* Where a file's chain stands after its last line: also an anchor's content. */
struct mf_audit_anchor {
    char file_id[MF_AUDIT_FILE_ID_LEN + 1];
    uint64_t seq;                          /* 0: no line yet */
    uint8_t chain[MF_AUDIT_MAC_BYTES];     /* the seed while seq == 0 */
};

/* The chain state of a file being written: an anchor of its last line. */
struct mf_audit_chain {
    struct mf_audit_anchor at;
};

/* An anchor as the JSON object the cluster commits,
 * {"chain": 64 hex, "file": ID, "seq": N}. _to_json: a new object, or NULL
 * (-ENOMEM). _from_json: 0, or MF_EINVAL (a member missing or malformed, or
 * seq 0); other members are ignored. */
struct json_t;
struct json_t *mf_audit_anchor_to_json(const struct mf_audit_anchor *a);
int mf_audit_anchor_from_json(const struct json_t *obj, struct mf_audit_anchor *out);

/* Is `a` news against the committed `b`: another file, or a later seq? */
bool mf_audit_anchor_ahead(const struct mf_audit_anchor *a, const struct mf_audit_anchor *b);

/* True if s is a file id: exactly MF_AUDIT_FILE_ID_LEN lowercase hex digits. */
bool mf_audit_file_id_valid(const char *s);

/* Start a new file's chain: seq 0, value = seed(file_id). Errors: MF_EINVAL
 * (bad file id), MF_ECRYPTO. */
int mf_audit_chain_start(struct mf_audit_chain *c, const uint8_t *chain_key,
                         const char *file_id);

/* Format the start record (seq 1) into buf (cap bytes; no newline, no NUL)
 * and advance the chain. Requires c->at.seq == 0. `prev` (may be NULL) is
 * where the node's previous file ended; node_id may be NULL.
 * Errors: MF_ETOOLARGE (cap), MF_ECRYPTO, -ENOMEM; c is unchanged on error. */
int mf_audit_chain_format_start(struct mf_audit_chain *c, const struct mf_audit_keys *k,
                                const char *node_id, uint64_t time_ms,
                                const struct mf_audit_anchor *prev, char *buf, size_t cap,
                                size_t *len);

/* Format `r` as the next line (seq = c->at.seq + 1; requires c->at.seq >= 1,
 * i.e. the start record is written) into buf, and advance the chain.
 * Errors: those of mf_audit_record_format; c is unchanged on error. */
int mf_audit_chain_format(struct mf_audit_chain *c, const struct mf_audit_keys *k,
                          const struct mf_audit_record *r, char *buf, size_t cap,
                          size_t *len);

/* Resume a chain from the last two lines of an existing file (I/O is the
 * caller's): `prev` is the line before `last`, or NULL when `last` is the
 * file's first line. Checks that `last` links to `prev` (or to its seed) and
 * sets c to after `last`. Errors: MF_ECORRUPT with a reason in why (why_len
 * bytes, may be 0) when a line does not parse or `last` does not verify;
 * MF_ECRYPTO; -ENOMEM. */
int mf_audit_chain_resume(struct mf_audit_chain *c, const uint8_t *chain_key,
                          const char *prev, size_t prev_len, const char *last,
                          size_t last_len, char *why, size_t why_len);

/* --- verification --- */

struct mf_audit_verify_result {
    bool ok;
    uint64_t records;      /* lines verified before the first bad one (all when ok) */
    uint64_t line;         /* first bad line, 1-based; 0 when ok */
    char reason[MF_AUDIT_REASON_MAX];  /* "" when ok */
    struct mf_audit_anchor last;       /* after the last good line (file id "" if none) */
    bool has_prev;                     /* the start record names a previous file */
    struct mf_audit_anchor prev;       /* ... which ended here */
    size_t anchors_checked;            /* anchors of this file that were compared */
};

/* A streaming verifier, for files too large to hold in memory. Owns a copy of
 * the chain key (wiped by _finish) and a sorted copy of the anchors. */
struct mf_audit_verifier {
    uint8_t chain_key[MF_AUDIT_KEY_BYTES];
    struct mf_audit_anchor *anchors;  /* sorted by seq; owned */
    size_t anchors_n;
    size_t anchor_next;               /* first anchor with seq > last.seq */
    struct mf_audit_verify_result res;
    bool failed;
};

/* Errors: -ENOMEM (nothing to release then). Anchors with seq 0 are ignored;
 * anchors of other files are ignored, so one list can serve every file. */
int mf_audit_verifier_init(struct mf_audit_verifier *v, const uint8_t *chain_key,
                           const struct mf_audit_anchor *anchors, size_t n);

/* Feed the next line (without its newline). Returns false once a line is bad
 * (that one or an earlier one); later lines are then ignored. */
bool mf_audit_verifier_line(struct mf_audit_verifier *v, const char *line, size_t len);

/* Mark the line just fed (the file's last) as cut short: it had no newline. */
void mf_audit_verifier_torn(struct mf_audit_verifier *v);

/* Check anchors beyond the last line (a truncated tail), fill *out, wipe the
 * key and release the anchors. The verifier must be re-initialised to reuse. */
void mf_audit_verifier_finish(struct mf_audit_verifier *v, struct mf_audit_verify_result *out);

/* Verify `count` lines (lines[i] of lens[i] bytes, no newline) as one file.
 * Detects, at the first line concerned: an edited byte, an inserted or
 * appended line written without the chain key, a removed line, swapped
 * lines, a line that is not JSON, a line from another file, a line whose
 * chain differs from an anchor; and a truncated tail (the file ends before an
 * anchor's seq: reported at the line after the last). Returns 0 with *out
 * filled (out->ok says whether the file verified) or -ENOMEM. */
int mf_audit_verify(const uint8_t *chain_key, const struct mf_audit_anchor *anchors, size_t n,
                    const char *const *lines, const size_t *lens, size_t count,
                    struct mf_audit_verify_result *out);

#endif

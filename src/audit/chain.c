/* The keyed chain over an audit file and its verification (chain.h). Lines
 * are checked from their exact bytes; jansson parses them only to read "file",
 * "seq" and "start", with duplicate keys refused so a second "seq" or "chain"
 * member cannot say something other than what the HMAC covered. */
#include "audit/chain.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "common/assert.h"
#include "common/err.h"

#define SEED_LABEL "mayfly/audit/v1/file:"
#define PREFIX_HEAD "{\"chain\":\""           /* 10 bytes, then 64 hex digits */
#define PREFIX_HEAD_LEN 10u
#define JSON_INT_MAX ((uint64_t)INT64_MAX)

static void to_hex(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0xf];
    }
}

static int hex_digit(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    return -1; /* upper case is not canonical */
}

/* Decode exactly 2*n lowercase hex digits. */
static bool from_hex(const char *s, size_t n, uint8_t *out)
{
    for (size_t i = 0; i < n; i++) {
        int hi = hex_digit(s[2 * i]), lo = hex_digit(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

bool mf_audit_file_id_valid(const char *s)
{
    if (!s || strlen(s) != MF_AUDIT_FILE_ID_LEN)
        return false;
    for (size_t i = 0; i < MF_AUDIT_FILE_ID_LEN; i++)
        if (hex_digit(s[i]) < 0)
            return false;
    return true;
}

json_t *mf_audit_anchor_to_json(const struct mf_audit_anchor *a)
{
    char hex[2 * MF_AUDIT_MAC_BYTES + 1];
    to_hex(a->chain, MF_AUDIT_MAC_BYTES, hex);
    hex[sizeof(hex) - 1] = '\0';
    return json_pack("{s:s, s:s, s:I}", "chain", hex, "file", a->file_id, "seq",
                     (json_int_t)a->seq);
}

int mf_audit_anchor_from_json(const json_t *obj, struct mf_audit_anchor *out)
{
    const char *file = json_string_value(json_object_get(obj, "file"));
    const char *hex = json_string_value(json_object_get(obj, "chain"));
    const json_t *seq = json_object_get(obj, "seq");
    struct mf_audit_anchor a;
    if (!mf_audit_file_id_valid(file) || !hex || strlen(hex) != 2 * MF_AUDIT_MAC_BYTES ||
        !from_hex(hex, MF_AUDIT_MAC_BYTES, a.chain) || !json_is_integer(seq) ||
        json_integer_value(seq) <= 0)
        return MF_EINVAL;
    memcpy(a.file_id, file, MF_AUDIT_FILE_ID_LEN + 1);
    a.seq = (uint64_t)json_integer_value(seq);
    *out = a;
    return 0;
}

bool mf_audit_anchor_ahead(const struct mf_audit_anchor *a, const struct mf_audit_anchor *b)
{
    return strcmp(a->file_id, b->file_id) != 0 || a->seq > b->seq;
}

int mf_audit_chain_start(struct mf_audit_chain *c, const uint8_t *chain_key,
                         const char *file_id)
{
    MF_ASSERT(c && chain_key);
    if (!mf_audit_file_id_valid(file_id))
        return MF_EINVAL;
    memset(c, 0, sizeof(*c));
    memcpy(c->at.file_id, file_id, MF_AUDIT_FILE_ID_LEN + 1);
    return mf_audit_mac(chain_key, SEED_LABEL, strlen(SEED_LABEL), file_id, MF_AUDIT_FILE_ID_LEN, NULL,
                0, c->at.chain);
}

/* B (lenB bytes) sits at buf + PREFIX_LEN - 1: compute the chain over it, then
 * write the prefix over B's '{' (chain.h), and advance c. */
static int link_line(struct mf_audit_chain *c, const uint8_t *chain_key, char *buf, size_t lenB,
                     size_t *len)
{
    char *b = buf + MF_AUDIT_CHAIN_PREFIX_LEN - 1;
    MF_ASSERT(lenB >= 2 && b[0] == '{' && b[1] == '"');
    if (MF_AUDIT_CHAIN_PREFIX_LEN - 1 + lenB > MF_AUDIT_LINE_MAX)
        return MF_ETOOLARGE;
    uint8_t mac[MF_AUDIT_MAC_BYTES];
    int rc = mf_audit_mac(chain_key, c->at.chain, MF_AUDIT_MAC_BYTES, b, lenB, NULL, 0, mac);
    if (rc != 0)
        return rc;
    memcpy(buf, PREFIX_HEAD, PREFIX_HEAD_LEN);
    to_hex(mac, MF_AUDIT_MAC_BYTES, buf + PREFIX_HEAD_LEN);
    buf[PREFIX_HEAD_LEN + 2 * MF_AUDIT_MAC_BYTES] = '"';
    buf[PREFIX_HEAD_LEN + 2 * MF_AUDIT_MAC_BYTES + 1] = ','; /* replaces B's '{' */
    c->at.seq++;
    memcpy(c->at.chain, mac, MF_AUDIT_MAC_BYTES);
    *len = MF_AUDIT_CHAIN_PREFIX_LEN - 1 + lenB;
    return 0;
}

static int set_new(json_t *obj, const char *key, json_t *v)
{
    if (!v || json_object_set_new(obj, key, v) != 0)
        return -ENOMEM;
    return 0;
}

static int build_start(const struct mf_audit_chain *c, const struct mf_audit_keys *k,
                       const char *node_id, uint64_t time_ms,
                       const struct mf_audit_anchor *prev, json_t *o)
{
    char hex[2 * MF_AUDIT_MAC_BYTES + 1];
    json_t *start = json_object();
    int rc = set_new(o, "start", start);
    if (rc == 0 && prev) {
        to_hex(prev->chain, MF_AUDIT_MAC_BYTES, hex);
        hex[2 * MF_AUDIT_MAC_BYTES] = '\0';
        rc = set_new(start, "prev_chain", json_string(hex));
        if (rc == 0)
            rc = set_new(start, "prev_file", json_string(prev->file_id));
        if (rc == 0)
            rc = set_new(start, "prev_seq", json_integer((json_int_t)prev->seq));
    }
    if (rc == 0)
        rc = set_new(o, "file", json_string(c->at.file_id));
    if (rc == 0)
        rc = set_new(o, "key_id", json_string(k->key_id));
    if (rc == 0 && node_id)
        rc = set_new(o, "node", json_string(node_id));
    if (rc == 0)
        rc = set_new(o, "seq", json_integer(1));
    if (rc == 0)
        rc = set_new(o, "time_ms", json_integer((json_int_t)time_ms));
    return rc;
}

int mf_audit_chain_format_start(struct mf_audit_chain *c, const struct mf_audit_keys *k,
                                const char *node_id, uint64_t time_ms,
                                const struct mf_audit_anchor *prev, char *buf, size_t cap,
                                size_t *len)
{
    MF_ASSERT(c && k && buf && len && c->at.seq == 0);
    if (time_ms > JSON_INT_MAX || (prev && (prev->seq > JSON_INT_MAX ||
                                            !mf_audit_file_id_valid(prev->file_id))))
        return MF_EINVAL;
    if (cap < MF_AUDIT_CHAIN_PREFIX_LEN + 1)
        return MF_ETOOLARGE;
    json_t *o = json_object();
    if (!o)
        return -ENOMEM;
    int rc = build_start(c, k, node_id, time_ms, prev, o);
    if (rc == 0) {
        size_t room = cap - (MF_AUDIT_CHAIN_PREFIX_LEN - 1);
        size_t n = json_dumpb(o, buf + MF_AUDIT_CHAIN_PREFIX_LEN - 1, room,
                              JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
        if (n == 0)
            rc = node_id ? MF_EINVAL : -ENOMEM; /* a node id that is not UTF-8 */
        else if (n > room)
            rc = MF_ETOOLARGE;
        else
            rc = link_line(c, k->chain_key, buf, n, len);
    }
    json_decref(o);
    return rc;
}

int mf_audit_chain_format(struct mf_audit_chain *c, const struct mf_audit_keys *k,
                          const struct mf_audit_record *r, char *buf, size_t cap, size_t *len)
{
    MF_ASSERT(c && k && r && buf && len && c->at.seq >= 1);
    if (cap < MF_AUDIT_CHAIN_PREFIX_LEN + 1)
        return MF_ETOOLARGE;
    size_t n = 0;
    int rc = mf_audit_record_format(k, r, c->at.file_id, c->at.seq + 1,
                                    buf + MF_AUDIT_CHAIN_PREFIX_LEN - 1,
                                    cap - (MF_AUDIT_CHAIN_PREFIX_LEN - 1), &n);
    if (rc != 0)
        return rc;
    return link_line(c, k->chain_key, buf, n, len);
}

/* --- reading lines --- */

struct parsed {
    char file_id[MF_AUDIT_FILE_ID_LEN + 1];
    uint64_t seq;
    uint8_t chain[MF_AUDIT_MAC_BYTES];
    bool is_start;
    bool has_prev;
    struct mf_audit_anchor prev;
};

static bool why_set(char *why, size_t why_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool why_set(char *why, size_t why_len, const char *fmt, ...)
{
    if (why_len > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, why_len, fmt, ap);
        va_end(ap);
    }
    return false;
}

static bool get_seq(json_t *v, uint64_t *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return false;
    *out = (uint64_t)json_integer_value(v);
    return true;
}

static bool parse_start(json_t *start, struct parsed *p, char *why, size_t why_len)
{
    if (!json_is_object(start))
        return why_set(why, why_len, "\"start\" is not an object");
    if (json_object_size(start) == 0)
        return true;
    json_t *chain = json_object_get(start, "prev_chain");
    json_t *file = json_object_get(start, "prev_file");
    json_t *seq = json_object_get(start, "prev_seq");
    if (json_object_size(start) != 3 || !json_is_string(chain) ||
        json_string_length(chain) != 2 * MF_AUDIT_MAC_BYTES ||
        !from_hex(json_string_value(chain), MF_AUDIT_MAC_BYTES, p->prev.chain) ||
        !json_is_string(file) || !mf_audit_file_id_valid(json_string_value(file)) ||
        !get_seq(seq, &p->prev.seq))
        return why_set(why, why_len, "malformed \"start\" link to the previous file");
    memcpy(p->prev.file_id, json_string_value(file), MF_AUDIT_FILE_ID_LEN + 1);
    p->has_prev = true;
    return true;
}

/* Parse one line into p; on failure say why. The chain value is read from the
 * fixed prefix; the JSON parse proves the rest is one object. */
static bool parse_line(const char *line, size_t len, struct parsed *p, char *why, size_t why_len)
{
    memset(p, 0, sizeof(*p));
    if (len > MF_AUDIT_LINE_MAX)
        return why_set(why, why_len, "line of %zu bytes is longer than %u", len,
                       MF_AUDIT_LINE_MAX);
    json_error_t jerr;
    json_t *o = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!o)
        return why_set(why, why_len, "not JSON (%s at column %d)", jerr.text, jerr.column);
    bool ok = false;
    json_t *file = json_object_get(o, "file");
    json_t *start = json_object_get(o, "start");
    if (!json_is_object(o))
        why_set(why, why_len, "not a JSON object");
    else if (len < MF_AUDIT_CHAIN_PREFIX_LEN + 1 || memcmp(line, PREFIX_HEAD, PREFIX_HEAD_LEN) ||
             line[MF_AUDIT_CHAIN_PREFIX_LEN - 2] != '"' ||
             line[MF_AUDIT_CHAIN_PREFIX_LEN - 1] != ',' ||
             !from_hex(line + PREFIX_HEAD_LEN, MF_AUDIT_MAC_BYTES, p->chain))
        why_set(why, why_len, "no \"chain\" member of 64 hex digits first in the line");
    else if (!json_is_string(file) || !mf_audit_file_id_valid(json_string_value(file)))
        why_set(why, why_len, "missing or malformed \"file\"");
    else if (!get_seq(json_object_get(o, "seq"), &p->seq) || p->seq == 0)
        why_set(why, why_len, "missing or malformed \"seq\"");
    else if (start && !parse_start(start, p, why, why_len))
        ;
    else {
        memcpy(p->file_id, json_string_value(file), MF_AUDIT_FILE_ID_LEN + 1);
        p->is_start = start != NULL;
        ok = true;
    }
    json_decref(o);
    return ok;
}

/* Does the line's chain equal HMAC(chain key, prev || B)? Constant time. */
static int check_link(const uint8_t *chain_key, const uint8_t *prev, const char *line,
                      size_t len, const struct parsed *p, bool *match)
{
    uint8_t mac[MF_AUDIT_MAC_BYTES];
    int rc = mf_audit_mac(chain_key, prev, MF_AUDIT_MAC_BYTES, "{", 1, line + MF_AUDIT_CHAIN_PREFIX_LEN,
                  len - MF_AUDIT_CHAIN_PREFIX_LEN, mac);
    if (rc != 0)
        return rc;
    *match = CRYPTO_memcmp(mac, p->chain, MF_AUDIT_MAC_BYTES) == 0;
    return 0;
}

int mf_audit_chain_resume(struct mf_audit_chain *c, const uint8_t *chain_key,
                          const char *prev, size_t prev_len, const char *last,
                          size_t last_len, char *why, size_t why_len)
{
    MF_ASSERT(c && chain_key && last);
    char reason[MF_AUDIT_REASON_MAX];
    struct parsed pl, pp;
    struct mf_audit_chain from;
    bool match = false;
    int rc;
    if (!parse_line(last, last_len, &pl, reason, sizeof(reason)))
        goto corrupt_last;
    if (prev) {
        if (!parse_line(prev, prev_len, &pp, reason, sizeof(reason))) {
            why_set(why, why_len, "line before the last: %s", reason);
            return MF_ECORRUPT;
        }
        if (strcmp(pp.file_id, pl.file_id) != 0 || pl.is_start || pl.seq != pp.seq + 1) {
            snprintf(reason, sizeof(reason), "does not follow the line before it");
            goto corrupt_last;
        }
        memcpy(from.at.file_id, pp.file_id, sizeof(from.at.file_id));
        from.at.seq = pp.seq;
        memcpy(from.at.chain, pp.chain, MF_AUDIT_MAC_BYTES);
    } else {
        if (!pl.is_start || pl.seq != 1) {
            snprintf(reason, sizeof(reason), "the file's first line is not a start record");
            goto corrupt_last;
        }
        if ((rc = mf_audit_chain_start(&from, chain_key, pl.file_id)) != 0)
            return rc;
    }
    if ((rc = check_link(chain_key, from.at.chain, last, last_len, &pl, &match)) != 0)
        return rc;
    if (!match) {
        snprintf(reason, sizeof(reason), "chain does not verify (edited, or another key)");
        goto corrupt_last;
    }
    memcpy(c->at.file_id, pl.file_id, sizeof(c->at.file_id));
    c->at.seq = pl.seq;
    memcpy(c->at.chain, pl.chain, MF_AUDIT_MAC_BYTES);
    return 0;
corrupt_last:
    why_set(why, why_len, "last line: %s", reason);
    return MF_ECORRUPT;
}

/* --- the verifier --- */

static int anchor_cmp(const void *a, const void *b)
{
    const struct mf_audit_anchor *x = a, *y = b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

int mf_audit_verifier_init(struct mf_audit_verifier *v, const uint8_t *chain_key,
                           const struct mf_audit_anchor *anchors, size_t n)
{
    MF_ASSERT(v && chain_key && (anchors || n == 0));
    memset(v, 0, sizeof(*v));
    if (n > 0) {
        v->anchors = calloc(n, sizeof(*v->anchors));
        if (!v->anchors)
            return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
        if (anchors[i].seq > 0)
            v->anchors[v->anchors_n++] = anchors[i];
    if (v->anchors_n > 1)
        qsort(v->anchors, v->anchors_n, sizeof(*v->anchors), anchor_cmp);
    memcpy(v->chain_key, chain_key, MF_AUDIT_KEY_BYTES);
    return 0;
}

static bool fail(struct mf_audit_verifier *v, uint64_t line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool fail(struct mf_audit_verifier *v, uint64_t line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->res.reason, sizeof(v->res.reason), fmt, ap);
    va_end(ap);
    v->res.line = line;
    v->failed = true;
    return false;
}

/* Compare the anchors of this file at the line's seq. */
static bool check_anchors(struct mf_audit_verifier *v, uint64_t ln, const struct parsed *p)
{
    while (v->anchor_next < v->anchors_n && v->anchors[v->anchor_next].seq <= p->seq) {
        const struct mf_audit_anchor *a = &v->anchors[v->anchor_next++];
        if (a->seq != p->seq || strcmp(a->file_id, p->file_id) != 0)
            continue;
        v->res.anchors_checked++;
        if (CRYPTO_memcmp(a->chain, p->chain, MF_AUDIT_MAC_BYTES) != 0)
            return fail(v, ln, "chain differs from the anchor at seq %" PRIu64
                        " (the file was rewritten)", a->seq);
    }
    return true;
}

bool mf_audit_verifier_line(struct mf_audit_verifier *v, const char *line, size_t len)
{
    MF_ASSERT(v && (line || len == 0));
    if (v->failed)
        return false;
    uint64_t ln = v->res.records + 1;
    struct parsed p;
    struct mf_audit_anchor *last = &v->res.last;
    char why[MF_AUDIT_REASON_MAX];
    if (!parse_line(line ? line : "", len, &p, why, sizeof(why)))
        return fail(v, ln, "%s", why);
    if (ln == 1) {
        if (!p.is_start)
            return fail(v, ln, "the first line is not a start record (seq %" PRIu64 ")",
                        p.seq);
        struct mf_audit_chain seed;
        if (mf_audit_chain_start(&seed, v->chain_key, p.file_id) != 0)
            return fail(v, ln, "cryptographic failure");
        *last = seed.at;
        v->res.has_prev = p.has_prev;
        v->res.prev = p.prev;
    } else if (strcmp(p.file_id, last->file_id) != 0) {
        return fail(v, ln, "record from another file (%s)", p.file_id);
    } else if (p.is_start) {
        return fail(v, ln, "a start record inside the file");
    }
    if (p.seq != last->seq + 1)
        return fail(v, ln, "seq %" PRIu64 " where %" PRIu64
                    " was expected (a line removed, moved or repeated)", p.seq, last->seq + 1);
    bool match = false;
    if (check_link(v->chain_key, last->chain, line, len, &p, &match) != 0)
        return fail(v, ln, "cryptographic failure");
    if (!match)
        return fail(v, ln, "chain does not verify (an edited line, or one written without "
                    "the key)");
    if (!check_anchors(v, ln, &p))
        return false;
    last->seq = p.seq;
    memcpy(last->chain, p.chain, MF_AUDIT_MAC_BYTES);
    v->res.records++;
    return true;
}

void mf_audit_verifier_torn(struct mf_audit_verifier *v)
{
    if (!v->failed)
        fail(v, v->res.records + 1, "incomplete last line (no newline): cut short, or still "
             "being written");
}

void mf_audit_verifier_finish(struct mf_audit_verifier *v, struct mf_audit_verify_result *out)
{
    MF_ASSERT(v && out);
    for (size_t i = v->anchor_next; !v->failed && i < v->anchors_n; i++) {
        const struct mf_audit_anchor *a = &v->anchors[i];
        if (a->seq > v->res.last.seq && strcmp(a->file_id, v->res.last.file_id) == 0)
            fail(v, v->res.records + 1, "file ends at seq %" PRIu64 " before anchor seq %" PRIu64
                 " (truncated tail)", v->res.last.seq, a->seq);
    }
    v->res.ok = !v->failed;
    if (v->res.ok)
        v->res.reason[0] = '\0';
    *out = v->res;
    free(v->anchors);
    OPENSSL_cleanse(v, sizeof(*v));
}

int mf_audit_verify(const uint8_t *chain_key, const struct mf_audit_anchor *anchors, size_t n,
                    const char *const *lines, const size_t *lens, size_t count,
                    struct mf_audit_verify_result *out)
{
    MF_ASSERT(out && (lines || count == 0));
    struct mf_audit_verifier v;
    int rc = mf_audit_verifier_init(&v, chain_key, anchors, n);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < count && mf_audit_verifier_line(&v, lines[i], lens[i]); i++)
        ;
    mf_audit_verifier_finish(&v, out);
    return 0;
}

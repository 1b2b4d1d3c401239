/* System audit records (audit_system.h): the queue, the events of an
 * applied entry, and their records. */
#include "server/audit_system.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "command.pb-c.h"
#include "common/assert.h"
#include "server/srv.h"
#include "store/fsm.h"

#define FIELD_NOW_MS 2u /* Command.now_ms */

void mf_audit_sysq_push(struct mf_audit_sysq *q, const struct mf_audit_sys_event *ev)
{
    if (!q->v && !(q->v = malloc(MF_AUDIT_SYSQ_MAX * sizeof(*q->v)))) {
        q->lost++;
        return;
    }
    if (q->n == MF_AUDIT_SYSQ_MAX) {
        q->lost++;
        return;
    }
    q->v[(q->head + q->n++) % MF_AUDIT_SYSQ_MAX] = *ev;
}

const struct mf_audit_sys_event *mf_audit_sysq_at(const struct mf_audit_sysq *q, size_t i)
{
    MF_ASSERT(i < q->n);
    return &q->v[(q->head + i) % MF_AUDIT_SYSQ_MAX];
}

void mf_audit_sysq_pop(struct mf_audit_sysq *q, size_t n)
{
    MF_ASSERT(n <= q->n);
    q->head = (q->head + n) % MF_AUDIT_SYSQ_MAX;
    q->n -= n;
}

void mf_audit_sysq_free(struct mf_audit_sysq *q)
{
    free(q->v);
    memset(q, 0, sizeof(*q));
}

/* ---- scanning a packed Command ---- */

static bool varint(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
    uint64_t v = 0;
    for (unsigned shift = 0; *p < end && shift < 64; shift += 7) {
        uint8_t b = *(*p)++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return true;
        }
    }
    return false;
}

/* Finds the op member (field `*field`, its bytes) and now_ms among the
 * top-level fields. False if the bytes are not a message. */
static bool scan(const uint8_t *p, const uint8_t *end, uint32_t *field, const uint8_t **body,
                 size_t *body_len, uint64_t *now_ms)
{
    *field = 0;
    while (p < end) {
        uint64_t tag, v;
        if (!varint(&p, end, &tag))
            return false;
        uint32_t num = (uint32_t)(tag >> 3);
        switch (tag & 7) {
        case 0:
            if (!varint(&p, end, &v))
                return false;
            if (num == FIELD_NOW_MS)
                *now_ms = v;
            break;
        case 1:
            if (end - p < 8)
                return false;
            p += 8;
            break;
        case 2:
            if (!varint(&p, end, &v) || v > (uint64_t)(end - p))
                return false;
            if (num == MAYFLY__CMD__COMMAND__OP_LEASE_REVOKED ||
                num == MAYFLY__CMD__COMMAND__OP_TOKEN_EXPIRE) {
                *field = num;
                *body = p;
                *body_len = (size_t)v;
            }
            p += v;
            break;
        case 5:
            if (end - p < 4)
                return false;
            p += 4;
            break;
        default:
            return false;
        }
    }
    return true;
}

static void lease_events(MDB_txn *txn, struct mf_state *st, const uint8_t *b, size_t n,
                         uint64_t now_ms, struct mf_audit_sysq *q)
{
    Mayfly__Cmd__LeaseRevoked *m = mayfly__cmd__lease_revoked__unpack(NULL, n, b);
    for (size_t i = 0; m && i < m->n_seqs; i++) {
        Mayfly__Cmd__LeaseRecord *rec = NULL;
        if (mf_lease_get(txn, st, m->seqs[i], &rec))
            continue; /* tidied already */
        struct mf_audit_sys_event ev = {.operation = "lease.revoked"};
        ev.time_ms = rec->revoked_ms ? rec->revoked_ms : now_ms;
        if (rec->state == MAYFLY__CMD__LEASE_STATE__LEASE_REVOKED &&
            mf_lease_id_format(ev.lease_id, sizeof(ev.lease_id), rec->mount, rec->name,
                               m->seqs[i]) > 0)
            mf_audit_sysq_push(q, &ev);
        mf_lease_free(rec);
    }
    if (m)
        mayfly__cmd__lease_revoked__free_unpacked(m, NULL);
}

static void token_events(const uint8_t *b, size_t n, uint64_t now_ms, struct mf_audit_sysq *q)
{
    Mayfly__Cmd__TokenExpire *m = mayfly__cmd__token_expire__unpack(NULL, n, b);
    for (size_t i = 0; m && i < m->n_hashes; i++) {
        if (m->hashes[i].len != MF_TOKEN_HASH_LEN)
            continue;
        struct mf_audit_sys_event ev = {.operation = "token.expire", .time_ms = now_ms,
                                        .has_token = true};
        memcpy(ev.token_hash, m->hashes[i].data, MF_TOKEN_HASH_LEN);
        mf_audit_sysq_push(q, &ev);
    }
    if (m)
        mayfly__cmd__token_expire__free_unpacked(m, NULL);
}

void mf_audit_sys_events(struct mf_server *s, const uint8_t *data, size_t len,
                         struct mf_audit_sysq *q)
{
    uint32_t field = 0;
    const uint8_t *body = NULL;
    size_t body_len = 0;
    uint64_t now_ms = 0;
    if (!data || !scan(data, data + len, &field, &body, &body_len, &now_ms) || !field)
        return;
    MDB_txn *txn;
    if (field == MAYFLY__CMD__COMMAND__OP_TOKEN_EXPIRE) {
        token_events(body, body_len, now_ms, q);
    } else if (mf_srv_read_begin(s, &txn) == 0) {
        lease_events(txn, mf_fsm_state(s->fsm), body, body_len, now_ms, q);
        mf_srv_read_end(s, txn);
    }
}

/* The record of ev, or with lost > 0 the loss summary. Strings point into
 * ev and the buffers. */
static void sys_record(const struct mf_audit_sys_event *ev, uint64_t lost, const char *node,
                       const char *rid, struct mf_audit_secret *sec, struct mf_audit_claim *claim,
                       char *lost_buf, size_t lost_len, struct mf_audit_record *out)
{
    memset(out, 0, sizeof(*out));
    out->time_ms = ev->time_ms;
    out->node_id = node;
    out->record_id = rid;
    out->identity.auth_method = "system";
    out->identity.role = "scheduler";
    out->decision.allowed = true;
    out->result = "OK";
    if (lost) {
        snprintf(lost_buf, lost_len, "%" PRIu64, lost);
        *claim = (struct mf_audit_claim){"records_lost", lost_buf};
        out->operation = "audit.system_lost";
        out->identity.claims = claim;
        out->identity.claims_n = 1;
        return;
    }
    out->operation = ev->operation;
    out->lease_id = ev->lease_id[0] ? ev->lease_id : NULL;
    if (ev->has_token) {
        *sec = (struct mf_audit_secret){"token_sha256", ev->token_hash, MF_TOKEN_HASH_LEN,
                                        MF_AUDIT_SECRET_HMAC};
        out->secrets = sec;
        out->secrets_n = 1;
    }
}

bool mf_audit_sys_pump(struct mf_audit_sysq *q, uint64_t node_id, uint64_t *next_rid,
                       uint64_t now_ms, int (*stage)(void *arg, const struct mf_audit_record *),
                       void *arg)
{
    if (q->inflight || q->lost_staged || (!q->n && !q->lost))
        return false;
    uint64_t lost = q->lost;
    size_t k = 0;
    for (; k < q->n + (lost != 0) && k < 256; k++) {
        struct mf_audit_sys_event summary = {.time_ms = now_ms};
        const struct mf_audit_sys_event *ev = k < q->n ? mf_audit_sysq_at(q, k) : &summary;
        char node[24], rid[48], lost_buf[24];
        struct mf_audit_secret sec;
        struct mf_audit_claim claim;
        struct mf_audit_record rec;
        snprintf(node, sizeof(node), "%" PRIu64, node_id);
        snprintf(rid, sizeof(rid), "%" PRIu64 "-%" PRIu64, node_id, ++*next_rid);
        sys_record(ev, k < q->n ? 0 : lost, node, rid, &sec, &claim, lost_buf, sizeof(lost_buf),
                   &rec);
        if (stage(arg, &rec) != 0)
            break; /* the rest waits for the next pump */
    }
    q->inflight = k < q->n ? k : q->n;
    q->lost_staged = k > q->n ? lost : 0;
    return k > 0;
}

bool mf_audit_sys_done(struct mf_audit_sysq *q, bool durable)
{
    if (durable) {
        mf_audit_sysq_pop(q, q->inflight);
        q->lost -= q->lost_staged;
    }
    q->inflight = 0;
    q->lost_staged = 0;
    return durable && (q->n || q->lost);
}

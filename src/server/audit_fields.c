/* The fields of the audit records of a request and of its answer
 * (audit_fields.h), read from the protobuf messages by field name. */
#include "server/audit_fields.h"

#include "common/env.h"
#include "server/api.h"
#include "server/srv.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The message of a oneof member (`op` of a Request, `result` of a Response). */
static const ProtobufCMessage *oneof_message(const ProtobufCMessage *m, unsigned which)
{
    const ProtobufCFieldDescriptor *f =
        which ? protobuf_c_message_descriptor_get_field(m->descriptor, which) : NULL;
    if (!f || f->type != PROTOBUF_C_TYPE_MESSAGE)
        return NULL;
    return *(const ProtobufCMessage *const *)((const char *)m + f->offset);
}

/* A singular string field of m by name, or NULL when absent or empty. */
static const char *string_field(const ProtobufCMessage *m, const char *name)
{
    const ProtobufCFieldDescriptor *f =
        m ? protobuf_c_message_descriptor_get_field_by_name(m->descriptor, name) : NULL;
    if (!f || f->type != PROTOBUF_C_TYPE_STRING || f->label == PROTOBUF_C_LABEL_REPEATED)
        return NULL;
    const char *v = *(const char *const *)((const char *)m + f->offset);
    return v && v[0] ? v : NULL;
}

static void secret_add(struct mf_audit_fields *s, const char *name, const void *value, size_t len,
                       enum mf_audit_secret_kind kind)
{
    if (s->n < sizeof(s->v) / sizeof(s->v[0]) && (value || kind == MF_AUDIT_SECRET_REDACT))
        s->v[s->n++] = (struct mf_audit_secret){name, value, len, kind};
}

/* The secrets of a request: the caller's token, a token it names, a KV put's
 * values (all of them, as one HMAC of the message), unseal shares. Nothing
 * else of the body is recorded. `packed` receives a buffer to free. */
void mf_audit_fields_request(const Mayfly__Api__Request *q, struct mf_audit_fields *s,
                             uint8_t **packed, const char **lease_id)
{
    *packed = NULL;
    *lease_id = NULL;
    if (!q)
        return;
    *lease_id = string_field(oneof_message(&q->base, q->op_case), "lease_id");
    if (q->token && q->token[0])
        secret_add(s, "token", q->token, strlen(q->token), MF_AUDIT_SECRET_HMAC);
    const ProtobufCMessage *op = oneof_message(&q->base, q->op_case);
    const char *t = string_field(op, "token");
    if (t)
        secret_add(s, "target_token", t, strlen(t), MF_AUDIT_SECRET_HMAC);
    if (q->op_case == MAYFLY__API__REQUEST__OP_KV_PUT) {
        size_t len = mayfly__api__kv_put_request__get_packed_size(q->kv_put);
        *packed = malloc(len ? len : 1);
        if (*packed) {
            mayfly__api__kv_put_request__pack(q->kv_put, *packed);
            secret_add(s, "kv_put", *packed, len, MF_AUDIT_SECRET_HMAC);
        }
    }
    if (q->op_case == MAYFLY__API__REQUEST__OP_AUDIT_HASH && q->audit_hash->value)
        secret_add(s, "value", q->audit_hash->value, strlen(q->audit_hash->value),
                   MF_AUDIT_SECRET_HMAC);
    if (q->op_case == MAYFLY__API__REQUEST__OP_UNSEAL)
        secret_add(s, "share", NULL, 0, MF_AUDIT_SECRET_REDACT);
}

void mf_audit_fields_response(const Mayfly__Api__Response *resp, struct mf_audit_fields *s,
                              const char **lease_id)
{
    *lease_id = NULL;
    if (!resp)
        return;
    const ProtobufCMessage *m = oneof_message(&resp->base, resp->result_case);
    *lease_id = string_field(m, "lease_id");
    const char *t = string_field(m, "token");
    if (t)
        secret_add(s, "token", t, strlen(t), MF_AUDIT_SECRET_HMAC);
    if ((t = string_field(m, "root_token")))
        secret_add(s, "root_token", t, strlen(t), MF_AUDIT_SECRET_HMAC);
    if (resp->result_case == MAYFLY__API__RESPONSE__RESULT_INIT)
        secret_add(s, "shares", NULL, 0, MF_AUDIT_SECRET_REDACT);
}


static void to_hex(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0xf];
    }
    out[2 * n] = '\0';
}

void mf_audit_fields_base(struct req *r, uint64_t *next_rid, struct mf_audit_base *b,
                          struct mf_audit_record *rec)
{
    struct mf_server *s = r->srv;
    if (!r->audit_rid)
        r->audit_rid = ++*next_rid;
    snprintf(b->node, sizeof(b->node), "%" PRIu64, s->cfg->node_id);
    snprintf(b->rid, sizeof(b->rid), "%" PRIu64 "-%" PRIu64,
             r->audit_rid_node ? r->audit_rid_node : s->cfg->node_id, r->audit_rid);
    rec->time_ms = mf_now_wall_ms();
    rec->node_id = b->node;
    rec->record_id = b->rid;
    rec->client_addr = r->client_addr[0] ? r->client_addr : NULL;
    rec->operation = r->audit_op ? r->audit_op : "unknown";
    rec->path = r->audit_path;
    if (r->pb && r->pb->request_key.len && r->pb->request_key.len <= 64) {
        to_hex(r->pb->request_key.data, r->pb->request_key.len, b->request_id);
        rec->request_id = b->request_id;
    }
    if (r->token) {
        rec->identity.auth_method = "token";
        rec->identity.accessor = r->token->accessor;
        size_t n = 0;
        b->policies[0] = '\0';
        for (size_t i = 0; i < r->token->n_policies; i++) {
            int w = snprintf(b->policies + n, sizeof(b->policies) - n, "%s%s", i ? "," : "",
                             r->token->policies[i]);
            if (w < 0 || (size_t)w >= sizeof(b->policies) - n)
                break;
            n += (size_t)w;
        }
        b->claim = (struct mf_audit_claim){"policies", b->policies};
        rec->identity.claims = &b->claim;
        rec->identity.claims_n = 1;
    }
}


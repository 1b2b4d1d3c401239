/* Reading a request's head (id, token) without decoding it, and answering a
 * refused frame: the client listener's admission helpers (gate.h). */
#include "server/gate.h"

#include <stdio.h>
#include <string.h>

static int read_varint(const uint8_t *p, size_t n, size_t *off, uint64_t *v)
{
    *v = 0;
    for (unsigned shift = 0; shift < 64 && *off < n; shift += 7) {
        uint8_t b = p[(*off)++];
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return 0;
    }
    return -1;
}

void mf_gate_head_fields(const uint8_t *p, size_t n, uint64_t *id, const uint8_t **tok,
                         size_t *tok_len)
{
    size_t off = 0;
    uint64_t key, v;
    *id = 0;
    *tok = NULL;
    *tok_len = 0;
    while (off < n && read_varint(p, n, &off, &key) == 0) {
        uint64_t field = key >> 3, wire = key & 7;
        if (field > 2 || read_varint(p, n, &off, &v) < 0)
            return;
        if (wire == 0 && field == 1) {
            *id = v;
        } else if (wire == 2 && field == 2) {
            if (v > n - off)
                return; /* cut off: no token we could check */
            *tok = p + off;
            *tok_len = (size_t)v;
            return;
        } else {
            return; /* not what our encoders write: the full decoder judges */
        }
    }
}

void mf_gate_answer(struct mf_conn *c, uint64_t id, Mayfly__Api__ErrorCode code,
                    const char *msg)
{
    char text[400];
    snprintf(text, sizeof(text), "%s", msg);
    Mayfly__Api__Error e = MAYFLY__API__ERROR__INIT;
    e.code = code;
    e.message = text;
    Mayfly__Api__Response resp = MAYFLY__API__RESPONSE__INIT;
    resp.id = id;
    resp.error = &e;
    uint8_t buf[512];
    size_t len = mayfly__api__response__get_packed_size(&resp);
    if (len > sizeof(buf))
        return;
    mayfly__api__response__pack(&resp, buf);
    (void)mf_conn_send(c, buf, len);
}

void mf_gate_listener_opts(const struct mf_config *cfg, struct mf_listener_opts *lo)
{
    lo->limits.handshake_timeout_ms = cfg->client_handshake_timeout_ms;
    lo->limits.first_frame_timeout_ms = cfg->client_first_request_timeout_ms;
    lo->limits.idle_timeout_ms = cfg->client_idle_timeout_ms;
    lo->limits.frame_preauth_max_bytes = cfg->client_preauth_frame_max_bytes;
    lo->conns_max = cfg->client_conns_max;
    lo->conns_per_addr_max = cfg->client_conns_per_addr;
    lo->handshakes_per_s = cfg->client_handshakes_per_s;
    lo->explain_refusals = 1;
    lo->frame_budget_bytes = (size_t)cfg->client_frame_budget_bytes;
}

uint32_t mf_gate_charge(struct mf_gate_rate *r, uint32_t rate_per_s, uint64_t now_ms, size_t len)
{
    double rate = rate_per_s;
    if (now_ms > r->at_ms)
        r->tokens += (double)(now_ms - r->at_ms) * rate / 1000.0;
    if (r->tokens > rate)
        r->tokens = rate;
    r->at_ms = now_ms > r->at_ms ? now_ms : r->at_ms;
    r->tokens -= (double)(len < 1024 ? 1024 : len);
    if (r->tokens >= 0 || rate <= 0)
        return 0;
    double ms = -r->tokens * 1000.0 / rate + 1;
    return ms > 60000 ? 60000 : (uint32_t)ms;
}

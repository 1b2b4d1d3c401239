/* What the client listener needs to judge a frame before it is a request:
 * the id and token read from the head of a packed mayfly.api.Request (so a
 * request over the pre-authentication cap is checked before the rest of it
 * is buffered or decoded), and an error answer written straight on a
 * connection (for frames refused by a connection limit, which never become
 * requests and so are not audited).
 *
 * Pure except mf_gate_answer (which sends). Threads: loop thread. */
#ifndef MF_SERVER_GATE_H
#define MF_SERVER_GATE_H

#include <stddef.h>
#include <stdint.h>

#include "common/config.h"
#include "mayfly.pb-c.h"
#include "net/conn.h"

/* Reads field 1 (id, varint) and field 2 (token, bytes) from the first n
 * bytes of a packed Request. protobuf-c writes fields in number order, so
 * both precede the operation. *id is 0 and *tok NULL when absent, cut off or
 * encoded in a way we do not write (the full decoder judges those). *tok
 * points into p. Never reads past p + n. */
void mf_gate_head_fields(const uint8_t *p, size_t n, uint64_t *id, const uint8_t **tok,
                         size_t *tok_len);

/* Queues a Response {id, error {code, msg}} on c (msg is cut to fit 400
 * bytes). Send errors are ignored: the caller closes c anyway. */
void mf_gate_answer(struct mf_conn *c, uint64_t id, Mayfly__Api__ErrorCode code,
                    const char *msg);

/* Frames on connections that have not authenticated share one byte rate
 * (client_preauth_bytes_per_s, burst one second; a frame counts as at least
 * 1 KiB), so strangers' requests cost a bounded share of the loop. */
struct mf_gate_rate {
    double tokens;            /* bytes that may still come; negative: debt */
    uint64_t at_ms;           /* when tokens was last brought up to date */
};
/* Charges a frame of len bytes at now_ms (a monotonic clock); returns how
 * long its connection must stop reading to pay the debt (0: none; at most
 * 60 s, the rest of the debt stays for the next frames). Pure. */
uint32_t mf_gate_charge(struct mf_gate_rate *r, uint32_t rate_per_s, uint64_t now_ms,
                        size_t len);

/* The client listener's limits from the config (README "Limits"): fills the
 * limits, conns_max, conns_per_addr_max (explained to the client),
 * handshakes_per_s and frame_budget_bytes of *lo. */
void mf_gate_listener_opts(const struct mf_config *cfg, struct mf_listener_opts *lo);

#endif

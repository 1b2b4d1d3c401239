/* Writes the seed corpora of the targets whose inputs are binary (peer
 * messages, committed commands, keyring blobs and shares, snapshot files),
 * made with the real encoders. Usage: gen_corpus DIR (e.g. tests/fuzz/corpus);
 * run by hand after a format change; the files are committed. */
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "command.pb-c.h"
#include "mayfly.pb-c.h"
#include "node/peer_codec.h"
#include "store/snapshot.h"

#include "keyring_fixture.h"

static const char *g_dir;

static void put(const char *target, const char *name, const void *data, size_t len)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", g_dir, target);
    mkdir(path, 0755);
    snprintf(path, sizeof(path), "%s/%s/%s", g_dir, target, name);
    FILE *f = fopen(path, "wb");
    MF_ASSERT(f && fwrite(data, 1, len, f) == len && fclose(f) == 0);
}

static void peer(const char *name, const struct mf_raft_msg *m)
{
    uint8_t *b;
    size_t n;
    MF_ASSERT(mf_peer_msg_encode(m, &b, &n) == 0);
    put("fuzz_peer", name, b, n);
    free(b);
}

static void peer_seeds(void)
{
    static const uint8_t data[] = "command bytes";
    struct mf_raft_entry ents[2] = {{.term = 3, .index = 10, .type = 0, .data = data, .len = 13},
                                    {.term = 3, .index = 11, .type = 0, .data = NULL, .len = 0}};
    struct mf_raft_msg m = {.type = MF_RAFT_MSG_APP, .from = 1, .to = 2, .term = 3,
                            .log_term = 3, .index = 9, .commit = 9, .entries = ents,
                            .entries_len = 2};
    peer("app", &m);
    m = (struct mf_raft_msg){.type = MF_RAFT_MSG_APP_RESP, .from = 2, .to = 1, .term = 3,
                             .index = 8, .reject = true, .reject_hint = 7};
    peer("app_resp_reject", &m);
    m = (struct mf_raft_msg){.type = MF_RAFT_MSG_VOTE, .from = 2, .to = 1, .term = 4,
                             .log_term = 3, .index = 11, .ctx = MF_RAFT_CAMPAIGN_TRANSFER};
    peer("vote_transfer", &m);
    m = (struct mf_raft_msg){.type = MF_RAFT_MSG_HEARTBEAT, .from = 1, .to = 3, .term = 3,
                             .commit = 11, .ctx = 42};
    peer("heartbeat", &m);
    static const uint8_t chunk[] = "MFSNAP01 first bytes of a snapshot file";
    m = (struct mf_raft_msg){.type = MF_RAFT_MSG_SNAP, .from = 1, .to = 3, .term = 3,
                             .snapshot = {.index = 100, .term = 3,
                                          .conf = {.voters = {1, 2, 3}, .voters_len = 3,
                                                   .learners = {4}, .learners_len = 1}},
                             .snapshot_offset = 65536, .snapshot_chunk = chunk,
                             .snapshot_chunk_len = sizeof(chunk) - 1, .snapshot_done = true};
    peer("snap_chunk", &m);
    m = (struct mf_raft_msg){.type = MF_RAFT_MSG_SNAP_RESP, .from = 3, .to = 1, .term = 3,
                             .index = 100, .snapshot_offset = 131072};
    peer("snap_resp", &m);
    m = (struct mf_raft_msg){.type = MF_RAFT_MSG_READ_INDEX_RESP, .from = 1, .to = 2, .term = 3,
                             .index = 11, .ctx = 7};
    peer("read_index_resp", &m);
}

/* Messages joined with fuzz_raft_step.c's separator. */
static void raft_seq(const char *name, const struct mf_raft_msg *m, size_t n)
{
    uint8_t buf[8192];
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t *b;
        size_t bl;
        MF_ASSERT(mf_peer_msg_encode(&m[i], &b, &bl) == 0);
        MF_ASSERT(len + bl + 4 <= sizeof(buf));
        if (i)
            memcpy(buf + len, "|RM|", 4), len += 4;
        memcpy(buf + len, b, bl);
        len += bl;
        free(b);
    }
    put("fuzz_raft_step", name, buf, len);
}

static void raft_step_seeds(void)
{
    static const uint8_t d[] = "entry data";
    static uint8_t chunk[64];
    memset(chunk, 0x5a, sizeof(chunk));
    struct mf_raft_entry ents[3] = {{.term = 2, .index = 1, .data = d, .len = 10},
                                    {.term = 2, .index = 2, .data = d, .len = 10},
                                    {.term = 2, .index = 3}};
    /* node 2 as a follower of leader 1: heartbeat, appends, a snapshot, reads */
    struct mf_raft_msg f[] = {
        {.type = MF_RAFT_MSG_HEARTBEAT, .from = 1, .to = 2, .term = 2, .commit = 0, .ctx = 1},
        {.type = MF_RAFT_MSG_APP, .from = 1, .to = 2, .term = 2, .entries = ents,
         .entries_len = 3, .commit = 2},
        {.type = MF_RAFT_MSG_APP, .from = 1, .to = 2, .term = 2, .index = 3, .log_term = 2,
         .commit = 3},
        {.type = MF_RAFT_MSG_READ_INDEX_RESP, .from = 1, .to = 2, .term = 2, .index = 3,
         .ctx = 9},
        {.type = MF_RAFT_MSG_SNAP, .from = 1, .to = 2, .term = 2,
         .snapshot = {.index = 10, .term = 2, .conf = {.voters = {1, 2, 3}, .voters_len = 3}},
         .snapshot_chunk = chunk, .snapshot_chunk_len = 64},
        {.type = MF_RAFT_MSG_SNAP, .from = 1, .to = 2, .term = 2,
         .snapshot = {.index = 10, .term = 2, .conf = {.voters = {1, 2, 3}, .voters_len = 3}},
         .snapshot_offset = 64, .snapshot_chunk = chunk, .snapshot_chunk_len = 64,
         .snapshot_done = true},
        {.type = MF_RAFT_MSG_VOTE, .from = 3, .to = 2, .term = 3, .index = 10, .log_term = 2},
        {.type = MF_RAFT_MSG_TIMEOUT_NOW, .from = 1, .to = 2, .term = 3},
    };
    raft_seq("follower", f, sizeof(f) / sizeof(f[0]));
    /* four stale messages, ticks (node 2 pre-campaigns for term 1), then the
     * votes that make it leader, then its followers' answers */
    struct mf_raft_msg l[] = {
        {.type = MF_RAFT_MSG_APP_RESP, .from = 1, .to = 2},
        {.type = MF_RAFT_MSG_APP_RESP, .from = 1, .to = 2},
        {.type = MF_RAFT_MSG_APP_RESP, .from = 3, .to = 2},
        {.type = MF_RAFT_MSG_APP_RESP, .from = 3, .to = 2},
        {.type = MF_RAFT_MSG_PRE_VOTE_RESP, .from = 1, .to = 2, .term = 1},
        {.type = MF_RAFT_MSG_VOTE_RESP, .from = 1, .to = 2, .term = 1},
        {.type = MF_RAFT_MSG_APP_RESP, .from = 1, .to = 2, .term = 1, .index = 1},
        {.type = MF_RAFT_MSG_APP_RESP, .from = 3, .to = 2, .term = 1, .reject = true,
         .reject_hint = 0},
        {.type = MF_RAFT_MSG_HEARTBEAT_RESP, .from = 1, .to = 2, .term = 1, .ctx = 1},
        {.type = MF_RAFT_MSG_READ_INDEX, .from = 3, .to = 2, .term = 1, .ctx = 5},
        {.type = MF_RAFT_MSG_SNAP_RESP, .from = 3, .to = 2, .term = 1, .index = 1,
         .snapshot_offset = 64},
        {.type = MF_RAFT_MSG_APP_RESP, .from = 3, .to = 2, .term = 1, .index = 1},
    };
    raft_seq("leader", l, sizeof(l) / sizeof(l[0]));
}

/* Commands, packed and joined with fuzz_fsm.c's separator. */
struct seq {
    uint8_t buf[8192];
    size_t len;
};

static void add(struct seq *s, Mayfly__Cmd__Command *c)
{
    size_t n = mayfly__cmd__command__get_packed_size(c);
    if (s->len)
        memcpy(s->buf + s->len, "|MF|", 4), s->len += 4;
    MF_ASSERT(s->len + n <= sizeof(s->buf));
    mayfly__cmd__command__pack(c, s->buf + s->len);
    s->len += n;
}

static void fsm_seeds(void)
{
    static uint8_t hash[32] = {1, 2, 3}, caller[32] = {9}, ct[40] = {1, 0, 0, 0, 1};
    struct seq s = {.len = 0};
    Mayfly__Cmd__Command c = MAYFLY__CMD__COMMAND__INIT;
    Mayfly__Cmd__LeaseGrant g = MAYFLY__CMD__LEASE_GRANT__INIT;
    Mayfly__Cmd__LeaseRenew rn = MAYFLY__CMD__LEASE_RENEW__INIT;
    Mayfly__Cmd__LeaseRevoke rv = MAYFLY__CMD__LEASE_REVOKE__INIT;
    Mayfly__Cmd__KvPut kv = MAYFLY__CMD__KV_PUT__INIT;
    Mayfly__Cmd__TokenCreate tc = MAYFLY__CMD__TOKEN_CREATE__INIT;
    Mayfly__Cmd__PolicyPut pp = MAYFLY__CMD__POLICY_PUT__INIT;
    Mayfly__Cmd__KeyringPut kp = MAYFLY__CMD__KEYRING_PUT__INIT;

    /* token, lease owned by it, kv bound to the lease, renew, revoke */
    c.now_ms = 1000;
    c.op_case = MAYFLY__CMD__COMMAND__OP_TOKEN_CREATE;
    tc.hash = (ProtobufCBinaryData){32, hash};
    tc.accessor = "acc1";
    char *pols[] = {"default", "app"};
    tc.policies = pols;
    tc.n_policies = 2;
    tc.ttl_ms = 60000;
    c.token_create = &tc;
    add(&s, &c);
    c.now_ms = 1001;
    c.op_case = MAYFLY__CMD__COMMAND__OP_LEASE_GRANT;
    g.seq = 1;
    g.mount = "lease";
    g.name = "default";
    g.ttl_ms = 5000;
    g.state = MAYFLY__CMD__LEASE_STATE__LEASE_ACTIVE;
    g.owner_token_hash = (ProtobufCBinaryData){32, hash};
    g.owner_accessor = "acc1";
    c.lease_grant = &g;
    add(&s, &c);
    c.now_ms = 1002;
    c.op_case = MAYFLY__CMD__COMMAND__OP_KV_PUT;
    kv.path = "app/db";
    kv.lease_seq = 1;
    kv.value = (ProtobufCBinaryData){sizeof(ct), ct};
    kv.write_id = 5;
    c.kv_put = &kv;
    c.key_term = 1;
    c.key_encryptions = 1;
    add(&s, &c);
    c.key_term = 0;
    c.key_encryptions = 0;
    c.now_ms = 2000;
    c.op_case = MAYFLY__CMD__COMMAND__OP_LEASE_RENEW;
    rn.seq = 1;
    rn.increment_ms = 3000;
    c.lease_renew = &rn;
    add(&s, &c);
    c.now_ms = 2500;
    c.op_case = MAYFLY__CMD__COMMAND__OP_LEASE_REVOKE;
    rv.seq = 1;
    c.lease_revoke = &rv;
    add(&s, &c);
    put("fuzz_fsm", "token_lease_kv", s.buf, s.len);

    /* the same request id twice (duplicate), then with another body */
    s.len = 0;
    c = (Mayfly__Cmd__Command)MAYFLY__CMD__COMMAND__INIT;
    c.now_ms = 5000;
    c.request_id = (ProtobufCBinaryData){4, (uint8_t *)"rid1"};
    c.idem_caller = (ProtobufCBinaryData){32, caller};
    c.request_fingerprint = (ProtobufCBinaryData){3, (uint8_t *)"fp1"};
    c.op_case = MAYFLY__CMD__COMMAND__OP_POLICY_PUT;
    pp.name = "app";
    static char body[] = "{\"path\":{\"app/*\":{\"capabilities\":[\"read\"]}}}";
    pp.body = (ProtobufCBinaryData){strlen(body), (uint8_t *)body};
    c.policy_put = &pp;
    add(&s, &c);
    add(&s, &c);
    c.request_fingerprint = (ProtobufCBinaryData){3, (uint8_t *)"fp2"};
    add(&s, &c);
    put("fuzz_fsm", "idempotency", s.buf, s.len);

    /* a keyring put (the fixture's real blob), a second one refused; junk */
    s.len = 0;
    c = (Mayfly__Cmd__Command)MAYFLY__CMD__COMMAND__INIT;
    c.now_ms = 100;
    c.op_case = MAYFLY__CMD__COMMAND__OP_KEYRING_PUT;
    kp.keyring = (ProtobufCBinaryData){g_blob_k_len, g_blob_k};
    c.keyring_put = &kp;
    add(&s, &c);
    add(&s, &c);
    memcpy(s.buf + s.len, "|MF|\x0a\x05junk|MF|", 14);
    s.len += 14;
    put("fuzz_fsm", "keyring_junk", s.buf, s.len);
}

static void keyring_seeds(void)
{
    uint8_t b[4096];
    b[0] = 0;
    memcpy(b + 1, g_blob_k, g_blob_k_len);
    put("fuzz_keyring", "blob_keyfile", b, 1 + g_blob_k_len);
    b[0] = 0;
    memcpy(b + 1, g_blob_shamir, g_blob_shamir_len);
    put("fuzz_keyring", "blob_shamir", b, 1 + g_blob_shamir_len);
    int n = snprintf((char *)b, sizeof(b), "%c$1\n$3\n", 1);
    put("fuzz_keyring", "shares_unseal", b, (size_t)n);
    n = snprintf((char *)b, sizeof(b), "%c %s \n$2\n%s\n", 1, g_shares[1], g_shares[0]);
    put("fuzz_keyring", "shares_foreign", b, (size_t)n);
    /* mode 2: header and a plaintext of two keys (terms 1 and 5) */
    b[0] = 2;
    memcpy(b + 1, g_blob_k, MF_BARRIER_BLOB_HEADER_BYTES);
    uint8_t *p = b + 1 + MF_BARRIER_BLOB_HEADER_BYTES;
    b[1 + 20] = 0, b[1 + 21] = 0, b[1 + 22] = 0, b[1 + 23] = 5; /* active term 5 */
    memset(p, 0, 4 + 2 * 44);
    p[3] = 2;
    p[4 + 3] = 1;
    p[4 + 44 + 3] = 5;
    memset(p + 4 + 12, 0xab, 32);
    memset(p + 4 + 44 + 12, 0xcd, 32);
    put("fuzz_keyring", "plaintext_two_keys", b, 1 + MF_BARRIER_BLOB_HEADER_BYTES + 4 + 88);
    /* mode 3: K as a key file's text */
    n = snprintf((char *)b, sizeof(b), "%c ", 3);
    for (size_t i = 0; i < MF_BARRIER_KEY_BYTES; i++)
        n += snprintf((char *)b + n, sizeof(b) - (size_t)n, "%02x", K[i]);
    b[n++] = '\n';
    put("fuzz_keyring", "key_text", b, (size_t)n);
}

static void snapshot_seeds(void)
{
    uint8_t f[64 + 100];
    memset(f, 0, sizeof(f));
    memcpy(f, MF_SNAPSHOT_MAGIC, 8);
    f[11] = MF_SNAPSHOT_VERSION;
    f[15] = MF_SNAPSHOT_HEADER_LEN;
    mf_be64_put(f + 16, 1234);
    mf_be64_put(f + 24, 100);
    for (int i = 0; i < 100; i++)
        f[64 + i] = (uint8_t)i;
    SHA256(f + 64, 100, f + 32);
    put("fuzz_snapshot", "valid", f, sizeof(f));
    put("fuzz_snapshot", "truncated", f, 64 + 50);
    f[40] ^= 1;
    put("fuzz_snapshot", "bad_checksum", f, sizeof(f));
    put("fuzz_snapshot", "header_only", f, 64);
}

/* Client requests that reach the dispatcher's checks and a template row's
 * policy path (fuzz_request). */
static void request(const char *name, Mayfly__Api__Request *q)
{
    q->token = "mf.0000";
    uint8_t buf[1024];
    size_t n = mayfly__api__request__get_packed_size(q);
    MF_ASSERT(n <= sizeof(buf));
    mayfly__api__request__pack(q, buf);
    put("fuzz_request", name, buf, n);
}

static void request_seeds(void)
{
    Mayfly__Api__Request q = MAYFLY__API__REQUEST__INIT;
    Mayfly__Api__KvGetRequest get = MAYFLY__API__KV_GET_REQUEST__INIT;
    get.path = "app/db";
    q.op_case = MAYFLY__API__REQUEST__OP_KV_GET;
    q.kv_get = &get;
    request("kv_get", &q);
    Mayfly__Api__Request l = MAYFLY__API__REQUEST__INIT;
    Mayfly__Api__KvListRequest list = MAYFLY__API__KV_LIST_REQUEST__INIT;
    list.prefix = "app/";
    l.op_case = MAYFLY__API__REQUEST__OP_KV_LIST;
    l.kv_list = &list;
    request("kv_list", &l);
    Mayfly__Api__Request p = MAYFLY__API__REQUEST__INIT;
    Mayfly__Api__PolicyReadRequest pr = MAYFLY__API__POLICY_READ_REQUEST__INIT;
    pr.name = "ops";
    p.op_case = MAYFLY__API__REQUEST__OP_POLICY_READ;
    p.policy_read = &pr;
    request("policy_read", &p);
    Mayfly__Api__Request g = MAYFLY__API__REQUEST__INIT;
    Mayfly__Api__LeaseGrantRequest lg = MAYFLY__API__LEASE_GRANT_REQUEST__INIT;
    lg.ttl_ms = 60000;
    lg.name = "web";
    g.op_case = MAYFLY__API__REQUEST__OP_LEASE_GRANT;
    g.lease_grant = &lg;
    request("lease_grant", &g);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: gen_corpus DIR\n");
        return 2;
    }
    g_dir = argv[1];
    fixture_setup();
    peer_seeds();
    raft_step_seeds();
    fsm_seeds();
    keyring_seeds();
    snapshot_seeds();
    request_seeds();
    return 0;
}

/* No plaintext on disk: secrets written the way a leader writes them (barrier
 * encryption at proposal, Command in the Raft log, applied by the fsm) never
 * appear in any file of the node's data directory, in clear, hex, base64 or
 * UTF-16, and neither does the root key. Controls prove the scan would see a
 * leak: the same writes with the values left in clear are found. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "command.pb-c.h"
#include "common/err.h"
#include "common/log.h"
#include "store/barrier.h"
#include "store/fsm.h"
#include "store/kv.h"
#include "store/leases.h"
#include "store/log.h"
#include "store/seal.h"
#include "store/snapshot.h"
#include "tmpdir.h"

/* The marker every secret carries. Built at run time so that the test binary
 * itself (which may sit next to a data dir) is not what a scan would find. */
static char MARKER[64];

static char tmpdir[64]; /* a longer $TMPDIR makes setup fail */

static int make_tmpdir(void **state)
{
    (void)state;
    snprintf(MARKER, sizeof(MARKER), "MFMARK-%s-%u", "plaintext-9d27c4", 4242u);
    return mf_tmpdir_make("test-plaintext", tmpdir, sizeof(tmpdir));
}

static int remove_tmpdir(void **state)
{
    (void)state;
    return mf_tmpdir_remove(tmpdir);
}

/* ------------------------------------------------------------- needles */

#define NEEDLES_MAX 16
struct needles {
    size_t n;
    char name[NEEDLES_MAX][32];
    uint8_t data[NEEDLES_MAX][256];
    size_t len[NEEDLES_MAX];
};

static void add(struct needles *nd, const char *name, const void *p, size_t len)
{
    assert_true(nd->n < NEEDLES_MAX && len <= sizeof(nd->data[0]) && len >= 8);
    snprintf(nd->name[nd->n], sizeof(nd->name[0]), "%s", name);
    memcpy(nd->data[nd->n], p, len);
    nd->len[nd->n++] = len;
}

static void add_hex(struct needles *nd, const char *name, const uint8_t *p, size_t len,
                    const char *digits)
{
    char hex[256];
    assert_true(2 * len < sizeof(hex));
    for (size_t i = 0; i < len; i++) {
        hex[2 * i] = digits[p[i] >> 4];
        hex[2 * i + 1] = digits[p[i] & 15];
    }
    add(nd, name, hex, 2 * len);
}

/* The secret in the forms a careless encoder might store it: raw, hex in both
 * cases, base64 at the three byte alignments (only the characters that depend
 * on the secret's bytes alone), UTF-16LE. */
static void needles_for(struct needles *nd, const char *label, const uint8_t *p, size_t len)
{
    char name[32];
    snprintf(name, sizeof(name), "%s raw", label);
    add(nd, name, p, len);
    snprintf(name, sizeof(name), "%s hex", label);
    add_hex(nd, name, p, len, "0123456789abcdef");
    snprintf(name, sizeof(name), "%s HEX", label);
    add_hex(nd, name, p, len, "0123456789ABCDEF");
    for (size_t a = 0; a < 3; a++) {
        uint8_t in[128] = {0};
        char out[200];
        assert_true(a + len <= sizeof(in));
        memcpy(in + a, p, len);
        int n = EVP_EncodeBlock((unsigned char *)out, in, (int)(a + len));
        assert_true(n > 0);
        size_t from = a ? 4 : 0, to = 4 * ((a + len) / 3);
        snprintf(name, sizeof(name), "%s base64/%zu", label, a);
        add(nd, name, out + from, to - from);
    }
    uint8_t u16[256];
    for (size_t i = 0; i < len && 2 * i + 1 < sizeof(u16); i++) {
        u16[2 * i] = p[i];
        u16[2 * i + 1] = 0;
    }
    snprintf(name, sizeof(name), "%s utf16", label);
    add(nd, name, u16, 2 * len);
}

/* ---------------------------------------------------------------- scan */

static const struct needles *scan_needles;
static int scan_hits;
static size_t scan_files;
static size_t scan_bytes;

/* Reports every needle found in one file (read whole, in 1 MiB chunks that
 * overlap by the longest needle so nothing straddling a boundary is missed). */
static int scan_one(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)ftw;
    if (type != FTW_F || !S_ISREG(sb->st_mode))
        return 0;
    scan_files++;
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    enum { CHUNK = 1 << 20, OVERLAP = 512 };
    static uint8_t buf[CHUNK + OVERLAP];
    size_t keep = 0;
    for (;;) {
        ssize_t r = read(fd, buf + keep, CHUNK);
        assert_true(r >= 0);
        if (r == 0)
            break;
        scan_bytes += (size_t)r;
        size_t have = keep + (size_t)r;
        for (size_t i = 0; i < scan_needles->n; i++)
            if (memmem(buf, have, scan_needles->data[i], scan_needles->len[i]) != NULL) {
                print_message("found %s in %s\n", scan_needles->name[i], path);
                scan_hits++;
            }
        keep = have < OVERLAP ? have : OVERLAP;
        memmove(buf, buf + have - keep, keep);
    }
    close(fd);
    return 0;
}

/* Number of (needle, chunk) hits under dir. */
static int scan_dir(const char *dir, const struct needles *nd)
{
    scan_needles = nd;
    scan_hits = 0;
    scan_files = 0;
    scan_bytes = 0;
    assert_int_equal(nftw(dir, scan_one, 16, FTW_PHYS), 0);
    return scan_hits;
}

/* ------------------------------------------------------------- writing */

/* One node: a barrier initialised from a key file outside its data dir, its
 * Raft log and its state machine. */
struct node {
    char dir[128];
    struct mf_barrier *b;
    struct mf_seal *s;
    struct mf_raftlog *log;
    struct mf_fsm *fsm;
    uint8_t *blob;
    size_t blob_len;
    uint64_t index;
    bool encrypt; /* false: the control that stores secrets in clear */
};

static void node_open(struct node *nd, const char *name, bool encrypt, uint8_t *root_out)
{
    char err[MF_SEAL_ERR_LEN] = "";
    memset(nd, 0, sizeof(*nd));
    nd->encrypt = encrypt;
    snprintf(nd->dir, sizeof(nd->dir), "%s/%s", tmpdir, name);
    assert_int_equal(mkdir(nd->dir, 0700), 0);
    char key_path[160];
    snprintf(key_path, sizeof(key_path), "%s/%s.key", tmpdir, name); /* not in the data dir */
    assert_int_equal(mf_seal_keyfile_create(key_path, err, sizeof(err)), 0);
    assert_int_equal(mf_seal_keyfile_read(key_path, root_out, err, sizeof(err)), 0);
    assert_int_equal(mf_barrier_new(&nd->b), 0);
    assert_int_equal(mf_seal_new(nd->b, &nd->s), 0);
    assert_int_equal(mf_seal_init_keyfile(nd->s, key_path, 1000, &nd->blob, &nd->blob_len, err,
                                          sizeof(err)),
                     0);
    assert_int_equal(mf_raftlog_open(nd->dir, NULL, &nd->log), 0);
    assert_int_equal(mf_fsm_open(nd->dir, NULL, &nd->fsm), 0);
}

/* A snapshot of the state, in the data dir, as the node makes one to compact
 * its log or to send to a follower. */
static void take_snapshot(struct node *nd)
{
    char path[192], err[256] = "";
    snprintf(path, sizeof(path), "%s/snapshot.mfsnap", nd->dir);
    uint64_t index = 0;
    int rc = mf_snapshot_create(mf_fsm_state(nd->fsm), path, &index, err, sizeof(err));
    if (rc != 0)
        print_message("snapshot: %s\n", err);
    assert_int_equal(rc, 0);
    assert_int_equal(index, nd->index);
}

static void node_close(struct node *nd)
{
    mf_fsm_close(nd->fsm);
    mf_raftlog_close(nd->log);
    free(nd->blob);
    mf_seal_free(nd->s);
    mf_barrier_free(nd->b);
}

/* The value a leader would put in a secret field: barrier ciphertext, or (in
 * the control) the plaintext itself. *out is malloc'd. */
static void seal_value(struct node *nd, const char *aad_path, uint64_t write_id, const char *text,
                       ProtobufCBinaryData *out)
{
    if (nd->encrypt) {
        assert_int_equal(mf_barrier_encrypt(nd->b, aad_path, write_id, text, strlen(text),
                                            &out->data, &out->len),
                         0);
    } else {
        out->len = strlen(text);
        out->data = malloc(out->len);
        memcpy(out->data, text, out->len);
    }
}

/* Propose-and-commit, as the node does it: stamp time and key use, append the
 * packed command to the Raft log (one synced save), apply it, expect success. */
static void commit(struct node *nd, Mayfly__Cmd__Command *c)
{
    c->now_ms = 1700000000000ull + nd->index;
    struct mf_barrier_use use[2];
    size_t n_use = 0;
    assert_int_equal(mf_barrier_uses_take(nd->b, use, 2, &n_use), 0);
    assert_true(n_use <= 1);
    if (n_use == 1) {
        c->key_term = use[0].term;
        c->key_encryptions = use[0].count;
    }
    size_t len = mayfly__cmd__command__get_packed_size(c);
    uint8_t *buf = malloc(len);
    assert_int_equal(mayfly__cmd__command__pack(c, buf), len);
    nd->index++;
    struct mf_raft_entry e = {.term = 1, .index = nd->index, .type = MF_RAFT_ENTRY_NORMAL,
                              .len = (uint32_t)len, .data = buf};
    struct mf_raft_hard_state hs = {.term = 1, .vote = 1, .commit = nd->index};
    assert_int_equal(mf_raftlog_save(nd->log, &hs, &e, 1), 0);
    Mayfly__Cmd__Result *r = NULL;
    assert_int_equal(mf_fsm_apply(nd->fsm, nd->index, buf, len, &r), 0);
    assert_non_null(r);
    if (r->code != 0)
        print_message("command %" PRIu64 " refused: %s\n", nd->index, r->error);
    assert_int_equal(r->code, 0);
    mf_fsm_result_free(r);
    OPENSSL_cleanse(buf, len);
    free(buf);
}

static void free_value(ProtobufCBinaryData *v)
{
    OPENSSL_cleanse(v->data, v->len);
    free(v->data);
    v->data = NULL;
}

/* Writes every kind of secret the store keeps: a KV value (twice, one with an
 * idempotency entry holding a result secret), a token (hash stored, token kept
 * as the create's result secret), an engine credential holding a password and a
 * private key, and an engine error text. Returns the lease seq of the
 * credential. */
static void write_secrets(struct node *nd, char *lease_id, size_t lease_id_len)
{
    char text[512];

    Mayfly__Cmd__Command c = MAYFLY__CMD__COMMAND__INIT;
    Mayfly__Cmd__KeyringPut kp = MAYFLY__CMD__KEYRING_PUT__INIT;
    kp.keyring.data = nd->blob;
    kp.keyring.len = nd->blob_len;
    c.op_case = MAYFLY__CMD__COMMAND__OP_KEYRING_PUT;
    c.keyring_put = &kp;
    commit(nd, &c);

    /* KV put: the value is a JSON map, as the server stores it. */
    Mayfly__Cmd__KvPut put = MAYFLY__CMD__KV_PUT__INIT;
    put.path = "secret/app/db";
    put.write_id = 101;
    snprintf(text, sizeof(text), "{\"password\":\"%s\",\"user\":\"app\"}", MARKER);
    seal_value(nd, put.path, put.write_id, text, &put.value);
    c = (Mayfly__Cmd__Command)MAYFLY__CMD__COMMAND__INIT;
    c.op_case = MAYFLY__CMD__COMMAND__OP_KV_PUT;
    c.kv_put = &put;
    commit(nd, &c);
    free_value(&put.value);

    /* Token create: only the hash is stored; the token itself travels back to
     * the client as the result secret kept with the idempotency entry. */
    char token[128];
    snprintf(token, sizeof(token), "mf.%s-token", MARKER);
    Mayfly__Cmd__TokenCreate tc = MAYFLY__CMD__TOKEN_CREATE__INIT;
    uint8_t hash[32];
    unsigned hl;
    assert_int_equal(EVP_Digest(token, strlen(token), hash, &hl, EVP_sha256(), NULL), 1);
    tc.hash.data = hash;
    tc.hash.len = 32;
    tc.accessor = "acc-1";
    tc.ttl_ms = 3600000;
    tc.orphan = 1;
    c = (Mayfly__Cmd__Command)MAYFLY__CMD__COMMAND__INIT;
    uint8_t rid[16] = "request-0000001";
    c.request_id.data = rid;
    c.request_id.len = sizeof(rid);
    seal_value(nd, "token/acc-1", 102, token, &c.result_secret);
    c.op_case = MAYFLY__CMD__COMMAND__OP_TOKEN_CREATE;
    c.token_create = &tc;
    commit(nd, &c);
    free_value(&c.result_secret);

    /* Dynamic credential: issuing, then active with the engine's output. */
    Mayfly__Cmd__LeaseGrant g = MAYFLY__CMD__LEASE_GRANT__INIT;
    g.seq = 1;
    g.mount = "pg";
    g.name = "readonly";
    g.ttl_ms = 3600000;
    g.state = MAYFLY__CMD__LEASE_STATE__LEASE_ISSUING;
    g.engine = "postgres";
    g.owner_token_hash.data = hash;
    g.owner_token_hash.len = 32;
    g.owner_accessor = "acc-1";
    c = (Mayfly__Cmd__Command)MAYFLY__CMD__COMMAND__INIT;
    c.op_case = MAYFLY__CMD__COMMAND__OP_LEASE_GRANT;
    c.lease_grant = &g;
    commit(nd, &c);

    assert_true(mf_lease_id_format(lease_id, lease_id_len, "pg", "readonly", 1) > 0);
    Mayfly__Cmd__LeaseActivate act = MAYFLY__CMD__LEASE_ACTIVATE__INIT;
    act.seq = 1;
    snprintf(text, sizeof(text),
             "{\"username\":\"mf_0000000000001\",\"password\":\"%s-pw\","
             "\"private_key\":\"-----BEGIN PRIVATE KEY-----\\n%s-key\\n-----END PRIVATE "
             "KEY-----\"}",
             MARKER, MARKER);
    seal_value(nd, lease_id, 103, text, &act.credential);
    c = (Mayfly__Cmd__Command)MAYFLY__CMD__COMMAND__INIT;
    c.op_case = MAYFLY__CMD__COMMAND__OP_LEASE_ACTIVATE;
    c.lease_activate = &act;
    commit(nd, &c);
    free_value(&act.credential);

    /* A second lease whose revocation keeps failing with an error naming the
     * secret. */
    g.seq = 2;
    g.state = MAYFLY__CMD__LEASE_STATE__LEASE_ACTIVE;
    c = (Mayfly__Cmd__Command)MAYFLY__CMD__COMMAND__INIT;
    c.op_case = MAYFLY__CMD__COMMAND__OP_LEASE_GRANT;
    c.lease_grant = &g;
    commit(nd, &c);
    Mayfly__Cmd__LeaseRevoke rv = MAYFLY__CMD__LEASE_REVOKE__INIT;
    rv.seq = 2;
    c = (Mayfly__Cmd__Command)MAYFLY__CMD__COMMAND__INIT;
    c.op_case = MAYFLY__CMD__COMMAND__OP_LEASE_REVOKE;
    c.lease_revoke = &rv;
    commit(nd, &c);
    char lease2[MF_LEASE_ID_MAX];
    assert_true(mf_lease_id_format(lease2, sizeof(lease2), "pg", "readonly", 2) > 0);
    Mayfly__Cmd__LeaseIrrevocable irr = MAYFLY__CMD__LEASE_IRREVOCABLE__INIT;
    irr.seq = 2;
    snprintf(text, sizeof(text), "ERROR: password authentication failed for \"%s-err\"", MARKER);
    seal_value(nd, lease2, 104, text, &irr.last_error);
    c = (Mayfly__Cmd__Command)MAYFLY__CMD__COMMAND__INIT;
    c.op_case = MAYFLY__CMD__COMMAND__OP_LEASE_IRREVOCABLE;
    c.lease_irrevocable = &irr;
    commit(nd, &c);
    free_value(&irr.last_error);

    /* A KV put bound to the credential's lease, with a request id: the
     * idempotency entry keeps its result secret too. */
    put.path = "secret/bound";
    put.write_id = 105;
    put.lease_seq = 1;
    snprintf(text, sizeof(text), "{\"api_key\":\"%s-bound\"}", MARKER);
    seal_value(nd, put.path, put.write_id, text, &put.value);
    c = (Mayfly__Cmd__Command)MAYFLY__CMD__COMMAND__INIT;
    uint8_t rid2[16] = "request-0000002";
    c.request_id.data = rid2;
    c.request_id.len = sizeof(rid2);
    seal_value(nd, "kv-result/secret/bound", 105, text, &c.result_secret);
    c.op_case = MAYFLY__CMD__COMMAND__OP_KV_PUT;
    c.kv_put = &put;
    commit(nd, &c);
    free_value(&put.value);
    free_value(&c.result_secret);
    OPENSSL_cleanse(text, sizeof(text));
    OPENSSL_cleanse(token, sizeof(token));
}

/* Reads the secrets back through the state DB and the barrier: the marker is
 * really in what was stored, so the scan below is looking for data that is
 * there. */
static void read_back(struct node *nd, const char *lease_id)
{
    struct mf_state *st = mf_fsm_state(nd->fsm);
    MDB_txn *txn;
    assert_int_equal(mf_state_read_begin(st, &txn), 0);
    Mayfly__Cmd__KvVersion *ver = NULL;
    assert_int_equal(mf_kv_get(txn, st, "secret/app/db", 0, &ver, NULL), 0);
    uint8_t *pt;
    size_t len;
    assert_int_equal(mf_barrier_decrypt(nd->b, "secret/app/db", ver->write_id, ver->value.data,
                                        ver->value.len, &pt, &len),
                     0);
    assert_non_null(strstr((char *)pt, MARKER));
    mf_barrier_wipe_free(pt, len);
    mf_kv_version_free(ver);

    Mayfly__Cmd__LeaseRecord *rec = NULL;
    assert_int_equal(mf_lease_get(txn, st, 1, &rec), 0);
    assert_int_equal(mf_barrier_decrypt(nd->b, lease_id, 103, rec->credential.data,
                                        rec->credential.len, &pt, &len),
                     0);
    assert_non_null(strstr((char *)pt, "BEGIN PRIVATE KEY"));
    mf_barrier_wipe_free(pt, len);
    mf_lease_free(rec);

    const uint8_t *blob;
    assert_int_equal(mf_state_keyring(txn, st, &blob, &len), 0);
    assert_int_equal(len, nd->blob_len);
    uint64_t uses = 0;
    assert_int_equal(mf_state_key_uses(txn, st, 1, &uses), 0);
    assert_int_equal(uses, 6); /* the six values encrypted above, counted by the fsm */
    mf_state_read_end(txn);
}

/* The scanner finds each encoding of the marker in a file made of them. */
static void test_store_plaintext_scanner_finds_encodings(void **state)
{
    (void)state;
    struct needles nd = {0};
    needles_for(&nd, "marker", (const uint8_t *)MARKER, strlen(MARKER));
    char dir[128], path[160];
    snprintf(dir, sizeof(dir), "%s/control-scan", tmpdir);
    assert_int_equal(mkdir(dir, 0700), 0);
    for (size_t i = 0; i < nd.n; i++) {
        /* Each form inside noise, to check it is found anywhere in a file. */
        snprintf(path, sizeof(path), "%s/f%zu", dir, i);
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        for (int j = 0; j < 1000 + (int)i * 7; j++)
            fputc(j * 31 + 7, f);
        fwrite(nd.data[i], 1, nd.len[i], f);
        fclose(f);
    }
    assert_int_equal(scan_dir(dir, &nd), (int)nd.n);
}

/* Secrets written through the barrier into the Raft log, the state DB and a
 * snapshot leave no trace of the marker (or of the root key) in any file of the data
 * directory after close. */
static void test_store_plaintext_none_in_data_dir(void **state)
{
    (void)state;
    struct node nd;
    uint8_t root[MF_BARRIER_KEY_BYTES];
    node_open(&nd, "node", true, root);
    char lease_id[MF_LEASE_ID_MAX];
    write_secrets(&nd, lease_id, sizeof(lease_id));
    read_back(&nd, lease_id);
    take_snapshot(&nd);
    node_close(&nd);

    struct needles needles = {0};
    needles_for(&needles, "marker", (const uint8_t *)MARKER, strlen(MARKER));
    add(&needles, "root key raw", root, sizeof(root));
    add_hex(&needles, "root key hex", root, sizeof(root), "0123456789abcdef");
    OPENSSL_cleanse(root, sizeof(root));
    assert_int_equal(scan_dir(nd.dir, &needles), 0);
    print_message("scanned %zu files, %zu bytes: no marker\n", scan_files, scan_bytes);
    assert_true(scan_files >= 3); /* the log, the state DB and the snapshot at least */
    assert_true(scan_bytes > 0);
}

/* Control: the same writes with the secret fields left in clear are found by
 * the scan, in the Raft log, the state DB and the snapshot, so the test above would see a
 * value that skipped the barrier. */
static void test_store_plaintext_control_leak_is_found(void **state)
{
    (void)state;
    struct node nd;
    uint8_t root[MF_BARRIER_KEY_BYTES];
    node_open(&nd, "leaky", false, root);
    OPENSSL_cleanse(root, sizeof(root));
    char lease_id[MF_LEASE_ID_MAX];
    write_secrets(&nd, lease_id, sizeof(lease_id));
    take_snapshot(&nd);
    node_close(&nd);

    struct needles needles = {0};
    needles_for(&needles, "marker", (const uint8_t *)MARKER, strlen(MARKER));
    char sub[192];
    snprintf(sub, sizeof(sub), "%s/snapshot.mfsnap", nd.dir);
    scan_needles = &needles;
    scan_hits = 0;
    struct stat sb;
    assert_int_equal(stat(sub, &sb), 0);
    scan_one(sub, &sb, FTW_F, NULL);
    assert_true(scan_hits > 0);
    snprintf(sub, sizeof(sub), "%s/log", nd.dir);
    assert_true(scan_dir(sub, &needles) > 0);
    snprintf(sub, sizeof(sub), "%s/state", nd.dir);
    assert_true(scan_dir(sub, &needles) > 0);
}

int main(void)
{
    mf_log_set_level(MF_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_store_plaintext_scanner_finds_encodings),
        cmocka_unit_test(test_store_plaintext_none_in_data_dir),
        cmocka_unit_test(test_store_plaintext_control_leak_is_found),
    };
    return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}

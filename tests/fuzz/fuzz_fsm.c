/* Fuzz target: committed entries as the state machine decodes and applies
 * them (mf_fsm_apply_batch). The input is up to CMDS_MAX commands separated
 * by SEP. A malformed or hostile committed entry must fail the same way on
 * every replica: the entries go to two state databases from the same (empty)
 * start, to A in one batch and to B one entry per batch (the fsm promises
 * the same state whatever the batch boundaries), and every Result and the
 * digest of both states must be equal.
 *
 * Speed: the two LMDB environments are opened once per process (in /dev/shm
 * where it exists) and emptied between inputs (mdb_drop of every named
 * database, through the handles state.h exposes to the store). */
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/assert.h"
#include "common/log.h"
#include "store/fsm.h"
#include "store/state.h"

#define CMDS_MAX 16
#define SEP "|MF|"

static char g_root[64];
static struct mf_fsm *g_a, *g_b;

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

static void cleanup(void)
{
    mf_fsm_close(g_a);
    mf_fsm_close(g_b);
    nftw(g_root, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

static struct mf_fsm *open_fsm(const char *name)
{
    char dir[128];
    snprintf(dir, sizeof(dir), "%s/%s", g_root, name);
    struct mf_state_opts o = {.map_size_bytes = (size_t)256 << 20};
    struct mf_fsm *f;
    MF_ASSERT(mf_fsm_open(dir, &o, &f) == 0);
    return f;
}

static void setup(void)
{
    mf_log_set_level(MF_LOG_OFF);
    snprintf(g_root, sizeof(g_root), "%s/mf_fuzz_fsm.XXXXXX",
             access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    MF_ASSERT(mkdtemp(g_root) != NULL);
    g_a = open_fsm("a");
    g_b = open_fsm("b");
    atexit(cleanup);
}

/* Back to an empty store: every database emptied, the fsm's cache re-read. */
static void reset(struct mf_fsm *f)
{
    struct mf_state *st = mf_fsm_state(f);
    MDB_txn *txn;
    MF_ASSERT(mdb_txn_begin(st->env, NULL, 0, &txn) == 0);
    for (int i = 0; i < MF_DB_COUNT; i++)
        MF_ASSERT(mdb_drop(txn, st->dbi[i], 0) == 0);
    MF_ASSERT(mdb_txn_commit(txn) == 0);
    MF_ASSERT(mf_fsm_reload(f) == 0 && mf_fsm_applied(f) == 0);
}

static void same_result(const Mayfly__Cmd__Result *x, const Mayfly__Cmd__Result *y)
{
    MF_ASSERT((x == NULL) == (y == NULL));
    if (!x)
        return;
    size_t nx = mayfly__cmd__result__get_packed_size(x);
    size_t ny = mayfly__cmd__result__get_packed_size(y);
    MF_ASSERT(nx == ny);
    uint8_t *bx = malloc(nx + 1), *by = malloc(ny + 1);
    MF_ASSERT(bx && by);
    mayfly__cmd__result__pack(x, bx);
    mayfly__cmd__result__pack(y, by);
    MF_ASSERT(memcmp(bx, by, nx) == 0);
    free(bx);
    free(by);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g_a)
        setup();
    reset(g_a);
    reset(g_b);

    struct mf_fsm_entry e[CMDS_MAX];
    size_t n = 0, start = 0, sl = strlen(SEP);
    for (size_t i = 0; n < CMDS_MAX; i++) {
        if (i + sl > size || memcmp(data + i, SEP, sl) == 0) {
            size_t end = i + sl > size ? size : i;
            e[n] = (struct mf_fsm_entry){n + 1, data + start, end - start, false};
            n++;
            if (end == size)
                break;
            start = i + sl;
            i += sl - 1;
        }
    }

    Mayfly__Cmd__Result *ra[CMDS_MAX], *rb[CMDS_MAX];
    int rc_a = mf_fsm_apply_batch(g_a, e, n, ra);
    int rc_b = 0;
    for (size_t i = 0; i < n; i++) {
        rb[i] = NULL;
        if (rc_b == 0)
            rc_b = mf_fsm_apply(g_b, e[i].index, e[i].data, e[i].len, &rb[i]);
    }
    /* Storage failures (a full map) may fall at different points of a batch
     * and of single entries; rule errors may not differ. */
    if (rc_a == 0 && rc_b == 0) {
        for (size_t i = 0; i < n; i++)
            same_result(ra[i], rb[i]);
        uint8_t da[32], db[32];
        MF_ASSERT(mf_state_digest(mf_fsm_state(g_a), 0, da) == 0);
        MF_ASSERT(mf_state_digest(mf_fsm_state(g_b), 0, db) == 0);
        MF_ASSERT(memcmp(da, db, 32) == 0);
        MF_ASSERT(mf_fsm_now(g_a) == mf_fsm_now(g_b));
    }
    for (size_t i = 0; i < n; i++) {
        if (rc_a == 0)
            mf_fsm_result_free(ra[i]);
        mf_fsm_result_free(rb[i]);
    }
    return 0;
}

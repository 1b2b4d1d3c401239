/* Internal to the Raft core (the .c files of src/raft): the state every file of the
 * core shares and the functions they call across files. Not a contract for
 * anyone else: core.h is the public one. See README.md for the file map and
 * which file calls which (downward only). */
#ifndef MF_RAFT_CORE_INT_H
#define MF_RAFT_CORE_INT_H

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/err.h"
#include "raft/core.h"

/* The planted bugs of the simulator's bug-hunting copy (tests/sim), named in
 * one place; the production library compiles every hook to false. */
enum mf_raft_bug {
    MF_RAFT_BUG_COMMIT_OLD_TERM,     /* (a) */
    MF_RAFT_BUG_TRUNCATE_STALE,      /* (b) */
    MF_RAFT_BUG_VOTE_BEFORE_PERSIST, /* (c) */
};

static inline bool bug(const struct mf_raft *r, enum mf_raft_bug b)
{
    (void)r;
#ifdef MF_RAFT_BUG_HOOKS
    switch (b) {
    case MF_RAFT_BUG_COMMIT_OLD_TERM:
        return mf_raft_bugs.commit_old_term;
    case MF_RAFT_BUG_TRUNCATE_STALE:
        return mf_raft_bugs.truncate_stale;
    case MF_RAFT_BUG_VOTE_BEFORE_PERSIST:
        return mf_raft_bugs.vote_before_persist;
    }
#endif
    (void)b;
    return false;
}

/* A broken invariant about the replicated log. Production aborts; the
 * bug-hunting copy built for the simulator latches MF_ECORRUPT instead, so the
 * simulator reports the seed like any other violation. */
#ifdef MF_RAFT_BUG_HOOKS
#define LOG_INVARIANT(r, c) ((c) ? (void)0 : latch((r), MF_ECORRUPT))
#else
#define LOG_INVARIANT(r, c) MF_ASSERT(c)
#endif

#define ARENA_BLOCK_MIN (64u * 1024u)
#define FETCH_ENTRIES_MAX 1024 /* entries per AppendEntries or apply batch */

enum pr_state { PR_PROBE = 0, PR_REPLICATE = 1, PR_SNAPSHOT = 2 };
enum append_mode { APPEND_IF_ENTRIES, APPEND_EMPTY_OK };

struct uentry {
    uint64_t term;
    uint64_t index;
    uint32_t type;
    uint32_t len;
    uint8_t *data; /* owned, NULL if len == 0 */
};

struct progress {
    uint64_t id;
    bool learner;
    uint64_t match;
    uint64_t next;
    enum pr_state state;
    bool probe_sent;
    bool recent_active;
    uint64_t infl[MF_RAFT_INFLIGHT_MAX];
    uint32_t infl_start;
    uint32_t infl_count;
    /* snapshot transfer */
    struct mf_raft_snapshot_meta snap;
    uint64_t snap_offset;
    bool snap_wait;
    uint32_t snap_stall_ticks;
};

struct conf_hist {
    uint64_t index;
    struct mf_raft_conf_state conf;
};

struct arena_block {
    struct arena_block *next;
    size_t cap;
    size_t used;
    uint8_t data[];
};

struct arena {
    struct arena_block *head;
};

struct read_req {
    uint64_t ctx;
    uint64_t from;
};

#define VEC(T)      \
    struct {        \
        T *v;       \
        size_t len; \
        size_t cap; \
    }

struct mf_raft {
    struct mf_raft_config cfg;
    const struct mf_raft_storage *st;
    uint64_t id;
    int fatal;

    /* persistent state (in memory) */
    uint64_t term;
    uint64_t vote;
    uint64_t commit;
    uint64_t applied;

    /* volatile */
    enum mf_raft_role role;
    uint64_t lead;
    uint64_t lead_seen_term;    /* the term and leader last seen: one leader per term */
    uint64_t lead_seen;
    uint32_t election_elapsed;
    uint32_t heartbeat_elapsed;
    uint32_t rand_timeout;
    uint64_t rng;
    bool campaign_blocked;      /* mf_raft_set_campaign_allowed(false): never start a campaign */

    /* unstable log */
    struct uentry *u;
    size_t u_len;
    size_t u_cap;
    uint64_t u_offset;
    uint64_t u_bytes;
    bool u_snap_pending;
    struct mf_raft_snapshot_meta u_snap;

    /* configuration */
    struct mf_raft_conf_state base_conf;
    uint64_t base_index;
    VEC(struct conf_hist) hist;
    struct mf_raft_conf_state conf; /* latest appended */

    /* elections */
    uint64_t votes_id[MF_RAFT_NODES_MAX];
    bool votes_granted[MF_RAFT_NODES_MAX];
    size_t votes_len;

    /* leader */
    struct progress *prs; /* MF_RAFT_NODES_MAX slots */
    size_t prs_len;
    uint64_t pending_conf_index;
    uint64_t transferee;
    bool bcast_pending;

    /* ReadIndex */
    VEC(struct read_req) read_next;
    VEC(struct read_req) read_cur;
    bool read_round;
    uint64_t read_seq;
    uint64_t read_index;
    uint64_t read_acks[MF_RAFT_NODES_MAX];
    size_t read_acks_len;

    /* follower: snapshot being received */
    bool srecv_active;
    struct mf_raft_snapshot_meta srecv_meta;
    uint64_t srecv_offset;

    /* output waiting for the next ready */
    VEC(struct mf_raft_msg) msgs;
    VEC(struct mf_raft_snapshot_chunk) chunks;
    VEC(struct mf_raft_read_state) reads;
    struct arena arenas[2];
    int arena_cur; /* the one filling */

    /* what the driver has made durable */
    struct mf_raft_hard_state hs_persisted;
    struct mf_raft_soft_state soft_prev;
    bool rd_inflight;
};

static inline void latch(struct mf_raft *r, int rc)
{
    if (rc < 0 && r->fatal == 0)
        r->fatal = rc;
}

static inline int vec_grow(void **v, size_t *cap, size_t len, size_t elem)
{
    if (len < *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 16;
    void *nv = realloc(*v, ncap * elem);
    if (!nv)
        return -ENOMEM;
    *v = nv;
    *cap = ncap;
    return 0;
}
#define VEC_PUSH(r, vec, val)                                                             \
    do {                                                                                  \
        if (vec_grow((void **)&(vec).v, &(vec).cap, (vec).len, sizeof(*(vec).v)) != 0) { \
            latch(r, -ENOMEM);                                                            \
            break;                                                                        \
        }                                                                                 \
        (vec).v[(vec).len++] = (val);                                                     \
    } while (0)

/* etcd's campaign types: a pre-vote round (does not raise the term), a real
 * election, or one started by TimeoutNow (no pre-vote; voters skip their
 * leader-lease check). */
enum campaign_type { CAMPAIGN_PRE_ELECTION, CAMPAIGN_ELECTION, CAMPAIGN_TRANSFER };

enum poll_result { POLL_PENDING, POLL_WON, POLL_LOST };

/* outbox.c */
void *mf_raft_arena_alloc(struct mf_raft *r, size_t n);
void mf_raft_arena_reset(struct arena *a);
void mf_raft_arena_free(struct arena *a);
struct mf_raft_msg *mf_raft_msg_new(struct mf_raft *r, uint32_t type, uint64_t to);

/* confstate.c */
bool mf_raft_conf_is_voter(const struct mf_raft_conf_state *c, uint64_t id);
bool mf_raft_conf_is_learner(const struct mf_raft_conf_state *c, uint64_t id);
size_t mf_raft_conf_quorum(const struct mf_raft_conf_state *c);
void mf_raft_conf_apply(struct mf_raft_conf_state *c, enum mf_raft_conf_change_type t, uint64_t node);
void mf_raft_conf_encode(uint8_t out[MF_RAFT_CONF_ENTRY_LEN], enum mf_raft_conf_change_type t,
                         uint64_t node);
void mf_raft_conf_reset_to(struct mf_raft *r);
void mf_raft_conf_note_entry(struct mf_raft *r, uint64_t index, const uint8_t *data, uint32_t len);
void mf_raft_conf_at(struct mf_raft *r, uint64_t index, struct mf_raft_conf_state *out);
void mf_raft_conf_fold_to(struct mf_raft *r, uint64_t index, struct mf_raft_conf_state *out);
int mf_raft_conf_load_history(struct mf_raft *r, uint64_t lo, uint64_t hi);

/* log.c */
uint64_t mf_raft_log_last_index(struct mf_raft *r);
uint64_t mf_raft_log_first_index(struct mf_raft *r);
int mf_raft_log_term(struct mf_raft *r, uint64_t i, uint64_t *t);
uint64_t mf_raft_log_term_or_zero(struct mf_raft *r, uint64_t i);
uint64_t mf_raft_log_last_term(struct mf_raft *r);
bool mf_raft_log_match_term(struct mf_raft *r, uint64_t i, uint64_t t);
uint64_t mf_raft_log_persisted_index(struct mf_raft *r);
void mf_raft_log_stable_to(struct mf_raft *r, uint64_t i, uint64_t t);
int mf_raft_log_copy_unstable(struct mf_raft *r, struct mf_raft_entry **out);
int mf_raft_log_fetch(struct mf_raft *r, uint64_t lo, uint64_t hi, uint64_t max_bytes,
                      struct mf_raft_entry **out, size_t *n);
void mf_raft_log_free_unstable(struct mf_raft *r, size_t from);
void mf_raft_log_truncate_from(struct mf_raft *r, uint64_t k);
int mf_raft_log_append(struct mf_raft *r, uint64_t term, uint64_t index, uint32_t type,
                       const uint8_t *data, uint32_t len);
void mf_raft_log_commit_to(struct mf_raft *r, uint64_t c);
void mf_raft_log_restore(struct mf_raft *r, const struct mf_raft_snapshot_meta *meta);
uint64_t mf_raft_log_find_conflict_by_term(struct mf_raft *r, uint64_t index, uint64_t term);
bool mf_raft_log_committed_in_term(struct mf_raft *r);
uint64_t mf_raft_log_apply_limit(struct mf_raft *r);

/* progress.c */
struct progress *mf_raft_pr_find(struct mf_raft *r, uint64_t id);
void mf_raft_pr_become_probe(struct progress *pr);
void mf_raft_pr_become_replicate(struct progress *pr);
void mf_raft_pr_infl_free_le(struct progress *pr, uint64_t index);
void mf_raft_pr_send_snap_chunk(struct mf_raft *r, struct progress *pr);
bool mf_raft_pr_send_append(struct mf_raft *r, struct progress *pr, enum append_mode mode);
void mf_raft_pr_bcast_append(struct mf_raft *r, enum append_mode mode);
void mf_raft_pr_bcast_heartbeat(struct mf_raft *r);
void mf_raft_pr_sync(struct mf_raft *r);
void mf_raft_pr_reset_all(struct mf_raft *r);
bool mf_raft_pr_maybe_commit(struct mf_raft *r);

/* readonly.c */
void mf_raft_ro_reset(struct mf_raft *r);
void mf_raft_ro_maybe_start_round(struct mf_raft *r);
void mf_raft_ro_ack(struct mf_raft *r, uint64_t from, uint64_t seq);
void mf_raft_ro_leader_read(struct mf_raft *r, uint64_t from, uint64_t ctx);

/* core.c */
void mf_raft_become_follower(struct mf_raft *r, uint64_t term, uint64_t lead);
void mf_raft_become_leader(struct mf_raft *r);
void mf_raft_campaign_start(struct mf_raft *r, enum campaign_type ct);
enum poll_result mf_raft_poll(struct mf_raft *r, uint64_t id, bool granted);
void mf_raft_after_commit(struct mf_raft *r);
void mf_raft_note_lead(struct mf_raft *r, uint64_t lead);

#endif

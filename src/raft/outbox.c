/* Output waiting for the next ready batch: the two grow-only arenas that hold
 * everything a batch hands out, and the message queue. */
#include "raft/core_int.h"

void *mf_raft_arena_alloc(struct mf_raft *r, size_t n)
{
    struct arena *a = &r->arenas[r->arena_cur];
    n = (n + 15) & ~(size_t)15;
    if (n == 0)
        n = 16;
    struct arena_block *b = a->head;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > ARENA_BLOCK_MIN ? n : ARENA_BLOCK_MIN;
        struct arena_block *nb = malloc(sizeof(*nb) + cap);
        if (!nb) {
            latch(r, -ENOMEM);
            return NULL;
        }
        nb->cap = cap;
        nb->used = 0;
        nb->next = b;
        a->head = nb;
        b = nb;
    }
    void *p = b->data + b->used;
    b->used += n;
    return p;
}

/* Keeps the newest (largest) block so a steady state allocates nothing. */
void mf_raft_arena_reset(struct arena *a)
{
    struct arena_block *b = a->head;
    if (!b)
        return;
    struct arena_block *rest = b->next;
    b->next = NULL;
    b->used = 0;
    while (rest) {
        struct arena_block *n = rest->next;
        free(rest);
        rest = n;
    }
}

void mf_raft_arena_free(struct arena *a)
{
    mf_raft_arena_reset(a);
    free(a->head);
    a->head = NULL;
}

struct mf_raft_msg *mf_raft_msg_new(struct mf_raft *r, uint32_t type, uint64_t to)
{
    if (vec_grow((void **)&r->msgs.v, &r->msgs.cap, r->msgs.len, sizeof(*r->msgs.v)) != 0) {
        latch(r, -ENOMEM);
        return NULL;
    }
    struct mf_raft_msg *m = &r->msgs.v[r->msgs.len++];
    memset(m, 0, sizeof(*m));
    m->type = type;
    m->from = r->id;
    m->to = to;
    m->term = r->term;
    return m;
}

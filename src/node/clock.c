/* Clock agreement between nodes: NTP-style offsets to each peer, and the
 * rules that say whether this node's clock agrees with a quorum of voters.
 * Pure: every time is an argument. See clock.h. */
#include "node/clock.h"

#include <stdlib.h>
#include <string.h>

#include "common/err.h"

void mf_clock_init(struct mf_clock *c, uint64_t self_id, uint64_t max_skew_ms)
{
    memset(c, 0, sizeof(*c));
    c->self_id = self_id;
    c->max_skew_ms = max_skew_ms;
    c->next_seq = 1;
}

static struct mf_clock_peer *find(const struct mf_clock *c, uint64_t id)
{
    for (size_t i = 0; i < MF_CLOCK_PEERS_MAX; i++)
        if (c->peers[i].id == id && id != 0)
            return (struct mf_clock_peer *)&c->peers[i];
    return NULL;
}

static struct mf_clock_peer *find_or_add(struct mf_clock *c, uint64_t id)
{
    struct mf_clock_peer *p = find(c, id);
    if (p)
        return p;
    for (size_t i = 0; i < MF_CLOCK_PEERS_MAX; i++) {
        if (c->peers[i].id == 0) {
            memset(&c->peers[i], 0, sizeof(c->peers[i]));
            c->peers[i].id = id;
            return &c->peers[i];
        }
    }
    return NULL;
}

uint64_t mf_clock_probe(struct mf_clock *c, uint64_t peer, uint64_t m0_ms)
{
    struct mf_clock_peer *p = peer && peer != c->self_id ? find_or_add(c, peer) : NULL;
    if (!p)
        return 0;
    uint64_t seq = c->next_seq++;
    p->inflight[p->inflight_next] = (struct mf_clock_probe){.seq = seq, .m0_ms = m0_ms};
    p->inflight_next = (p->inflight_next + 1) % MF_CLOCK_INFLIGHT;
    return seq;
}

int mf_clock_answer(struct mf_clock *c, uint64_t peer, uint64_t seq, uint64_t t1_ms,
                    uint64_t m2_ms, uint64_t w2_ms, bool says_agrees)
{
    struct mf_clock_peer *p = find(c, peer);
    if (!p || seq == 0)
        return MF_EINVAL;
    struct mf_clock_probe *pr = NULL;
    for (size_t i = 0; i < MF_CLOCK_INFLIGHT; i++)
        if (p->inflight[i].seq == seq)
            pr = &p->inflight[i];
    if (!pr || m2_ms < pr->m0_ms || t1_ms > MF_CLOCK_WALL_MAX_MS || w2_ms > MF_CLOCK_WALL_MAX_MS)
        return MF_EINVAL;
    uint64_t rtt = m2_ms - pr->m0_ms;
    pr->seq = 0; /* one answer per probe: a replay is unknown */
    if (rtt > MF_CLOCK_RTT_MAX_MS)
        return MF_ETIMEOUT;
    /* Both wall times are <= 2^62 and rtt <= MF_CLOCK_RTT_MAX_MS: no overflow,
     * and |offset| < 2^62 + rtt, so differences of offsets fit too. */
    int64_t mid = (int64_t)w2_ms - (int64_t)(rtt / 2);
    p->offset_ms = (int64_t)t1_ms - mid;
    p->rtt_ms = rtt;
    p->at_mono_ms = m2_ms;
    p->measured = true;
    p->says_agrees = says_agrees;
    return 0;
}

const struct mf_clock_peer *mf_clock_peer(const struct mf_clock *c, uint64_t peer)
{
    const struct mf_clock_peer *p = find(c, peer);
    return p && p->measured ? p : NULL;
}

bool mf_clock_fresh(const struct mf_clock *c, uint64_t peer, uint64_t now_mono_ms)
{
    const struct mf_clock_peer *p = mf_clock_peer(c, peer);
    /* A measurement from the "future" (now before m2) is a caller's mix-up of
     * instants, not a fresh sample: it does not count. */
    return p && now_mono_ms >= p->at_mono_ms && now_mono_ms - p->at_mono_ms <= MF_CLOCK_FRESH_MS;
}

static uint64_t abs64(int64_t v)
{
    return v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
}

bool mf_clock_agrees(const struct mf_clock *c, uint64_t peer, uint64_t now_mono_ms)
{
    if (!mf_clock_fresh(c, peer, now_mono_ms))
        return false;
    const struct mf_clock_peer *p = mf_clock_peer(c, peer);
    /* The worst case inside the measurement's uncertainty must be in bound. */
    return abs64(p->offset_ms) + p->rtt_ms / 2 <= c->max_skew_ms;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Median of v[0..n) (sorted in place); the mean of the middle two when n is
 * even; 0 when n is 0. */
static int64_t median(int64_t *v, size_t n)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof(*v), cmp_i64);
    if (n % 2)
        return v[n / 2];
    return v[n / 2 - 1] + (v[n / 2] - v[n / 2 - 1]) / 2;
}

void mf_clock_view(const struct mf_clock *c, const uint64_t *voters, size_t voters_len,
                   uint64_t now_mono_ms, struct mf_clock_view *out)
{
    int64_t offs[MF_CLOCK_PEERS_MAX + 1];
    size_t offs_len = 0;
    memset(out, 0, sizeof(*out));
    out->voters = (uint32_t)voters_len;
    for (size_t i = 0; i < voters_len; i++) {
        if (voters[i] == c->self_id) {
            /* Our clock agrees with itself: we count, offset 0. */
            out->agreeing++;
            out->fresh++;
            if (offs_len < MF_CLOCK_PEERS_MAX + 1)
                offs[offs_len++] = 0;
            continue;
        }
        if (!mf_clock_fresh(c, voters[i], now_mono_ms))
            continue;
        out->fresh++;
        if (mf_clock_agrees(c, voters[i], now_mono_ms))
            out->agreeing++;
        if (offs_len < MF_CLOCK_PEERS_MAX + 1)
            offs[offs_len++] = -mf_clock_peer(c, voters[i])->offset_ms;
    }
    uint32_t quorum = (uint32_t)(voters_len / 2 + 1);
    out->agrees = voters_len > 0 && out->agreeing >= quorum;
    out->measured = voters_len > 0 && out->fresh >= quorum;
    out->offset_ms = median(offs, offs_len);
}

uint64_t mf_clock_transfer_target(const struct mf_clock *c, const uint64_t *voters,
                                  size_t voters_len, uint64_t now_mono_ms)
{
    int64_t offs[MF_CLOCK_PEERS_MAX];
    size_t n = 0;
    for (size_t i = 0; i < voters_len && n < MF_CLOCK_PEERS_MAX; i++)
        if (voters[i] != c->self_id && mf_clock_fresh(c, voters[i], now_mono_ms))
            offs[n++] = mf_clock_peer(c, voters[i])->offset_ms;
    if (n == 0)
        return 0;
    int64_t mid = median(offs, n);
    uint64_t best = 0, best_d = UINT64_MAX;
    for (size_t i = 0; i < voters_len; i++) {
        if (voters[i] == c->self_id || !mf_clock_fresh(c, voters[i], now_mono_ms) ||
            !mf_clock_peer(c, voters[i])->says_agrees)
            continue;
        uint64_t d = abs64(mf_clock_peer(c, voters[i])->offset_ms - mid);
        if (d < best_d) {
            best_d = d;
            best = voters[i];
        }
    }
    return best;
}

/* The member registry (members.h): records in META, changed by the
 * configuration entries as they are applied. */
#include "store/members.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/log.h"
#include "raft/core.h"

#define KEY_PREFIX "member/"
#define PL (sizeof(KEY_PREFIX) - 1)

static void member_key(uint8_t out[PL + 8], uint64_t id)
{
    memcpy(out, KEY_PREFIX, PL);
    mf_be64_put(out + PL, id);
}

static bool str_ok(const char *s, size_t min, size_t max)
{
    size_t n = s ? strlen(s) : 0;
    return n >= min && n <= max;
}

bool mf_members_info_ok(const Mayfly__Cmd__MemberInfo *info)
{
    return info && info->id && str_ok(info->addr, 1, MF_MEMBER_ADDR_MAX) &&
           str_ok(info->api_addr, 0, MF_MEMBER_ADDR_MAX) &&
           str_ok(info->zone, 0, MF_MEMBER_ZONE_MAX);
}

int mf_members_tail_encode(const Mayfly__Cmd__MemberInfo *member,
                           Mayfly__Cmd__MemberInfo *const *known, size_t n_known, size_t max,
                           uint8_t **out, size_t *len)
{
    Mayfly__Cmd__MemberChange ch = MAYFLY__CMD__MEMBER_CHANGE__INIT;
    ch.member = (Mayfly__Cmd__MemberInfo *)member;
    ch.known = (Mayfly__Cmd__MemberInfo **)known;
    ch.n_known = n_known;
    size_t n = mayfly__cmd__member_change__get_packed_size(&ch);
    if (n > max)
        return MF_ETOOLARGE;
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf)
        return -ENOMEM;
    mayfly__cmd__member_change__pack(&ch, buf);
    *out = buf;
    *len = n;
    return 0;
}

static int get(MDB_txn *txn, struct mf_state *st, uint64_t id, Mayfly__Cmd__MemberInfo **out)
{
    uint8_t kb[PL + 8];
    member_key(kb, id);
    MDB_val k = {sizeof(kb), kb}, d;
    *out = NULL;
    int rc = mdb_get(txn, st->dbi[MF_DB_META], &k, &d);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc)
        return mf_state_err(rc, "member get");
    *out = mayfly__cmd__member_info__unpack(NULL, d.mv_size, d.mv_data);
    return *out ? 0 : MF_ECORRUPT;
}

static int put(MDB_txn *txn, struct mf_state *st, const Mayfly__Cmd__MemberInfo *info)
{
    uint8_t kb[PL + 8];
    member_key(kb, info->id);
    MDB_val k = {sizeof(kb), kb};
    return mf_state_put_msg(txn, st->dbi[MF_DB_META], &k, &info->base, 0);
}

static int del(MDB_txn *txn, struct mf_state *st, uint64_t id)
{
    uint8_t kb[PL + 8];
    member_key(kb, id);
    MDB_val k = {sizeof(kb), kb};
    int rc = mdb_del(txn, st->dbi[MF_DB_META], &k, NULL);
    return rc == MDB_NOTFOUND ? 0 : mf_state_err(rc, "member del");
}

/* ADD_*: the record of `id` with the tail's addresses when it names it,
 * else the stored ones; voter as the entry says. */
static int record_add(MDB_txn *txn, struct mf_state *st, uint64_t id, bool voter,
                      const Mayfly__Cmd__MemberInfo *info)
{
    Mayfly__Cmd__MemberInfo *old = NULL;
    int rc = get(txn, st, id, &old);
    if (rc == MF_ECORRUPT)
        old = NULL; /* replaced below when the tail has one; else dropped */
    else if (rc)
        return rc;
    Mayfly__Cmd__MemberInfo rec = MAYFLY__CMD__MEMBER_INFO__INIT;
    const Mayfly__Cmd__MemberInfo *src = info && info->id == id && mf_members_info_ok(info)
                                             ? info
                                             : old;
    if (src) {
        rec.addr = src->addr;
        rec.api_addr = src->api_addr;
        rec.zone = src->zone;
        rec.promote = !voter && src->promote;
        rec.force = !voter && src->force;
    }
    rec.id = id;
    rec.voter = voter;
    rc = src ? put(txn, st, &rec) : 0;
    if (old)
        mayfly__cmd__member_info__free_unpacked(old, NULL);
    return rc;
}

int mf_members_apply_conf(MDB_txn *txn, struct mf_state *st, const uint8_t *data, size_t len)
{
    enum mf_raft_conf_change_type type;
    uint64_t id;
    const uint8_t *tail = NULL;
    uint32_t tail_len = 0;
    if (len > UINT32_MAX ||
        mf_raft_conf_decode_tail(data, (uint32_t)len, &type, &id, &tail, &tail_len) != 0)
        return MF_ECORRUPT;
    Mayfly__Cmd__MemberChange *ch = NULL;
    if (tail_len) {
        ch = mayfly__cmd__member_change__unpack(NULL, tail_len, tail);
        if (!ch)
            MF_WARN("store", "configuration entry for node %llu: its member tail does not "
                             "decode; the registry keeps what it had",
                    (unsigned long long)id);
    }
    int rc = 0;
    if (type == MF_RAFT_CONF_REMOVE)
        rc = del(txn, st, id);
    else
        rc = record_add(txn, st, id, type == MF_RAFT_CONF_ADD_VOTER, ch ? ch->member : NULL);
    for (size_t i = 0; ch && !rc && i < ch->n_known; i++) {
        const Mayfly__Cmd__MemberInfo *k = ch->known[i];
        if (!mf_members_info_ok(k) || k->id == id)
            continue;
        Mayfly__Cmd__MemberInfo *old = NULL;
        rc = get(txn, st, k->id, &old);
        if (rc == 0 && !old)
            rc = put(txn, st, k);
        if (old)
            mayfly__cmd__member_info__free_unpacked(old, NULL);
        if (rc == MF_ECORRUPT)
            rc = 0; /* a record that does not decode stays as it is */
    }
    if (ch)
        mayfly__cmd__member_change__free_unpacked(ch, NULL);
    return rc;
}

void mf_members_list_free(Mayfly__Cmd__MemberInfo **list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        mayfly__cmd__member_info__free_unpacked(list[i], NULL);
    free(list);
}

int mf_members_list(MDB_txn *txn, struct mf_state *st, Mayfly__Cmd__MemberInfo ***out,
                    size_t *n)
{
    *out = NULL;
    *n = 0;
    MDB_cursor *cur;
    int rc = mf_state_err(mdb_cursor_open(txn, st->dbi[MF_DB_META], &cur), "member cursor");
    if (rc)
        return rc;
    Mayfly__Cmd__MemberInfo **list = NULL;
    size_t len = 0;
    MDB_val k = {PL, (void *)KEY_PREFIX}, d;
    rc = mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE);
    while (rc == 0 && len < MF_MEMBERS_MAX && k.mv_size == PL + 8 &&
           memcmp(k.mv_data, KEY_PREFIX, PL) == 0) {
        Mayfly__Cmd__MemberInfo **grown = realloc(list, (len + 1) * sizeof(*list));
        if (!grown) {
            rc = -ENOMEM;
            break;
        }
        list = grown;
        list[len] = mayfly__cmd__member_info__unpack(NULL, d.mv_size, d.mv_data);
        if (!list[len]) {
            rc = MF_ECORRUPT;
            break;
        }
        len++;
        rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    if (rc == MDB_NOTFOUND)
        rc = 0;
    else if (rc > 0)
        rc = mf_state_err(rc, "member list");
    if (rc) {
        mf_members_list_free(list, len);
        return rc;
    }
    *out = list;
    *n = len;
    return 0;
}

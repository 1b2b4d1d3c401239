/* Tests of src/audit/chain.c and src/audit/file.c: a file written through the
 * device verifies; each kind of tampering is reported at the right line; the
 * device resumes, rotates, and fails cleanly on a full disk. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit/chain.h"
#include "audit/file.h"
#include "audit/record.h"
#include "common/err.h"

#define RECORDS 12 /* lines in a test file: the start record + RECORDS */

static const uint8_t AUDIT_KEY[MF_AUDIT_KEY_BYTES] = {0x11, 0x22, 0x33, 0x44, 5, 6, 7, 8};
static const uint8_t ATTACKER_KEY[MF_AUDIT_KEY_BYTES] = {0x66};

struct fixture {
    char dir[64];
    char path[128];
    char mnt[128];  /* a tmpfs mounted by the test, unmounted at teardown */
    struct mf_audit_keys keys;
};

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    if (!fx)
        return -1;
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/mf-audit-XXXXXX");
    if (!mkdtemp(fx->dir))
        return -1;
    snprintf(fx->path, sizeof(fx->path), "%s/audit.log", fx->dir);
    if (mf_audit_keys_derive(AUDIT_KEY, &fx->keys) != 0)
        return -1;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    char cmd[160];
    if (fx->mnt[0])
        umount2(fx->mnt, MNT_DETACH);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->dir);
    int rc = system(cmd);
    mf_audit_keys_wipe(&fx->keys);
    free(fx);
    return rc == 0 ? 0 : -1;
}

static struct mf_audit_record rec(uint64_t i)
{
    static char ids[RECORDS * 4][32];
    snprintf(ids[i % (RECORDS * 4)], sizeof(ids[0]), "n1-%llu", (unsigned long long)i);
    struct mf_audit_record r = {
        .time_ms = 1700000000000ull + i,
        .node_id = "n1",
        .record_id = ids[i % (RECORDS * 4)],
        .request_id = "req",
        .client_addr = "127.0.0.1:4000",
        .identity = {.auth_method = "token", .accessor = "acc"},
        .operation = i % 2 ? "kv.get" : "kv.put",
        .path = "secret/data/app",
        .decision = {.allowed = i % 3 != 0, .policy = "app", .rule = "secret/data/*"},
        .result = i % 3 ? "OK" : "PERMISSION_DENIED",
    };
    return r;
}

/* Appends records [from, to) in batches of 5, each flushed. */
static void append_records(struct mf_audit_file *f, uint64_t from, uint64_t to)
{
    char err[256];
    for (uint64_t i = from; i < to; i++) {
        struct mf_audit_record r = rec(i);
        assert_int_equal(mf_audit_file_stage(f, &r), 0);
        if ((i - from) % 5 == 4 || i + 1 == to) {
            assert_int_equal(mf_audit_file_flush(f, err, sizeof(err)), 0);
            assert_int_equal(mf_audit_file_staged(f), 0);
        }
    }
}

/* Writes a new file of RECORDS records at path; returns its anchor. */
static struct mf_audit_anchor write_file(struct fixture *fx, const char *path)
{
    struct mf_audit_file f;
    struct mf_audit_file_info info;
    char err[256];
    assert_int_equal(mf_audit_file_open(&f, path, &fx->keys, &info, err, sizeof(err)), 0);
    assert_true(info.created);
    assert_false(info.resumed);
    append_records(&f, 0, RECORDS);
    struct mf_audit_anchor a;
    mf_audit_file_anchor(&f, &a);
    assert_int_equal(a.seq, RECORDS + 1);
    mf_audit_file_close(&f);
    return a;
}

struct lines {
    char *v[4 * RECORDS];
    size_t len[4 * RECORDS];
    size_t n;
};

static void read_lines(const char *path, struct lines *ls)
{
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    memset(ls, 0, sizeof(*ls));
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, fp)) > 0) {
        assert_true(ls->n < 4 * RECORDS);
        assert_int_equal(line[len - 1], '\n');
        ls->v[ls->n] = strndup(line, (size_t)len - 1);
        ls->len[ls->n++] = (size_t)len - 1;
    }
    free(line);
    fclose(fp);
}

static void free_lines(struct lines *ls)
{
    for (size_t i = 0; i < ls->n; i++)
        free(ls->v[i]);
    ls->n = 0;
}

static void write_lines(const char *path, const struct lines *ls)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    for (size_t i = 0; i < ls->n; i++) {
        fwrite(ls->v[i], 1, ls->len[i], fp);
        fputc('\n', fp);
    }
    assert_int_equal(fclose(fp), 0);
}

static struct mf_audit_verify_result verify(const struct fixture *fx, const struct lines *ls,
                                            const struct mf_audit_anchor *a, size_t na)
{
    struct mf_audit_verify_result res;
    assert_int_equal(mf_audit_verify(fx->keys.chain_key, a, na, (const char *const *)ls->v,
                                     ls->len, ls->n, &res),
                     0);
    return res;
}

static void expect_bad(const struct mf_audit_verify_result *res, uint64_t line, const char *why)
{
    if (res->ok || res->line != line || !strstr(res->reason, why))
        fail_msg("expected line %llu (%s), got ok=%d line %llu: %s", (unsigned long long)line,
                 why, res->ok, (unsigned long long)res->line, res->reason);
}

/* Remove line i (0-based) from ls (the caller owns the removed string). */
static char *take_line(struct lines *ls, size_t i)
{
    char *s = ls->v[i];
    memmove(&ls->v[i], &ls->v[i + 1], (ls->n - i - 1) * sizeof(ls->v[0]));
    memmove(&ls->len[i], &ls->len[i + 1], (ls->n - i - 1) * sizeof(ls->len[0]));
    ls->n--;
    return s;
}

static void insert_line(struct lines *ls, size_t i, const char *s, size_t len)
{
    assert_true(ls->n < 4 * RECORDS);
    memmove(&ls->v[i + 1], &ls->v[i], (ls->n - i) * sizeof(ls->v[0]));
    memmove(&ls->len[i + 1], &ls->len[i], (ls->n - i) * sizeof(ls->len[0]));
    ls->v[i] = strndup(s, len);
    ls->len[i] = len;
    ls->n++;
}

/* A file written through the device verifies, with its anchor, and the
 * result's last position equals the device's anchor. */
static void test_audit_chain_good_file_verifies(void **state)
{
    struct fixture *fx = *state;
    struct mf_audit_anchor a = write_file(fx, fx->path);
    struct mf_audit_verify_result res;
    assert_int_equal(mf_audit_verify_file(fx->path, fx->keys.chain_key, &a, 1, &res), 0);
    assert_true(res.ok);
    assert_int_equal(res.records, RECORDS + 1);
    assert_int_equal(res.line, 0);
    assert_int_equal(res.anchors_checked, 1);
    assert_false(res.has_prev);
    assert_string_equal(res.last.file_id, a.file_id);
    assert_int_equal(res.last.seq, a.seq);
    assert_memory_equal(res.last.chain, a.chain, MF_AUDIT_MAC_BYTES);
    struct stat st;
    assert_int_equal(stat(fx->path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    /* The verifier holding another key refuses line 1. */
    struct mf_audit_keys other;
    assert_int_equal(mf_audit_keys_derive(ATTACKER_KEY, &other), 0);
    assert_int_equal(mf_audit_verify_file(fx->path, other.chain_key, NULL, 0, &res), 0);
    expect_bad(&res, 1, "chain does not verify");
    mf_audit_keys_wipe(&other);
}

/* Every single-byte edit of the first, a middle and the last line is caught
 * at that line, whatever the byte. */
static void test_audit_chain_edited_byte_detected(void **state)
{
    struct fixture *fx = *state;
    write_file(fx, fx->path);
    struct lines ls;
    read_lines(fx->path, &ls);
    assert_int_equal(ls.n, RECORDS + 1);
    size_t which[] = {0, ls.n / 2, ls.n - 1};
    for (size_t w = 0; w < 3; w++) {
        size_t i = which[w];
        for (size_t off = 0; off < ls.len[i]; off++) {
            ls.v[i][off] ^= 0x01;
            struct mf_audit_verify_result res = verify(fx, &ls, NULL, 0);
            if (res.ok || res.line != i + 1)
                fail_msg("edit of line %zu byte %zu: ok=%d line %llu (%s)", i + 1, off, res.ok,
                         (unsigned long long)res.line, res.reason);
            ls.v[i][off] ^= 0x01;
        }
    }
    /* The same through a file: an edited middle byte of the middle line. */
    ls.v[ls.n / 2][ls.len[ls.n / 2] / 2] ^= 0x04;
    write_lines(fx->path, &ls);
    struct mf_audit_verify_result res;
    assert_int_equal(mf_audit_verify_file(fx->path, fx->keys.chain_key, NULL, 0, &res), 0);
    assert_false(res.ok);
    assert_int_equal(res.line, ls.n / 2 + 1);
    assert_int_equal(res.records, ls.n / 2);
    free_lines(&ls);
}

/* A removed line is reported where it was; a removed last line only against
 * an anchor (the file then ends before the anchor's seq). */
static void test_audit_chain_removed_line_detected(void **state)
{
    struct fixture *fx = *state;
    struct mf_audit_anchor a = write_file(fx, fx->path);
    struct lines ls;
    read_lines(fx->path, &ls);
    for (size_t i = 0; i + 1 < ls.n; i++) {
        char *gone = take_line(&ls, i);
        struct mf_audit_verify_result res = verify(fx, &ls, NULL, 0);
        expect_bad(&res, i + 1, i == 0 ? "not a start record" : "where");
        insert_line(&ls, i, gone, strlen(gone));
        free(gone);
    }
    char *gone = take_line(&ls, ls.n - 1);
    struct mf_audit_verify_result res = verify(fx, &ls, NULL, 0);
    assert_true(res.ok); /* without an anchor a cut tail is invisible */
    res = verify(fx, &ls, &a, 1);
    expect_bad(&res, RECORDS + 1, "truncated");
    free(gone);
    free_lines(&ls);
}

/* Two swapped lines are reported at the first of them. */
static void test_audit_chain_swapped_lines_detected(void **state)
{
    struct fixture *fx = *state;
    write_file(fx, fx->path);
    struct lines ls;
    read_lines(fx->path, &ls);
    for (size_t i = 0; i + 1 < ls.n; i++) {
        char *t = ls.v[i];
        size_t tl = ls.len[i];
        ls.v[i] = ls.v[i + 1], ls.len[i] = ls.len[i + 1];
        ls.v[i + 1] = t, ls.len[i + 1] = tl;
        struct mf_audit_verify_result res = verify(fx, &ls, NULL, 0);
        expect_bad(&res, i + 1, i == 0 ? "not a start record" : "where");
        ls.v[i + 1] = ls.v[i], ls.len[i + 1] = ls.len[i];
        ls.v[i] = t, ls.len[i] = tl;
    }
    assert_true(verify(fx, &ls, NULL, 0).ok);
    free_lines(&ls);
}

/* A tail cut at a line boundary is reported after the last line against the
 * anchor; one cut inside a line is reported at that line; an anchor whose
 * chain differs is reported at its seq; another file's anchors are ignored. */
static void test_audit_chain_truncated_tail_detected(void **state)
{
    struct fixture *fx = *state;
    struct mf_audit_anchor a = write_file(fx, fx->path);
    struct lines ls;
    read_lines(fx->path, &ls);
    size_t full = ls.n;
    while (ls.n > 8)
        free(take_line(&ls, ls.n - 1));
    struct mf_audit_verify_result res = verify(fx, &ls, &a, 1);
    expect_bad(&res, 9, "before anchor seq");
    assert_int_equal(res.records, 8);

    /* An anchor in the middle: its chain must match that line. */
    struct mf_audit_anchor mid = a;
    mid.seq = 5;
    res = verify(fx, &ls, &mid, 1);
    expect_bad(&res, 5, "differs from the anchor");
    struct mf_audit_anchor other = a;
    other.file_id[0] = other.file_id[0] == 'a' ? 'b' : 'a';
    res = verify(fx, &ls, &other, 1);
    assert_true(res.ok);
    assert_int_equal(res.anchors_checked, 0);
    free_lines(&ls);

    /* Cut inside the last line: the file no longer ends with a newline. */
    struct stat st;
    assert_int_equal(stat(fx->path, &st), 0);
    assert_int_equal(truncate(fx->path, st.st_size - 10), 0);
    assert_int_equal(mf_audit_verify_file(fx->path, fx->keys.chain_key, &a, 1, &res), 0);
    expect_bad(&res, full, "incomplete last line");
}

/* A line appended by someone without the key, or a line that is not JSON, or
 * a line of another file, is reported at that line. */
static void test_audit_chain_foreign_lines_detected(void **state)
{
    struct fixture *fx = *state;
    struct mf_audit_anchor a = write_file(fx, fx->path);
    struct lines ls;
    read_lines(fx->path, &ls);

    /* A forger continues the chain with the right seq under a guessed key. */
    struct mf_audit_keys forged;
    assert_int_equal(mf_audit_keys_derive(ATTACKER_KEY, &forged), 0);
    memcpy(forged.key_id, fx->keys.key_id, sizeof(forged.key_id));
    struct mf_audit_chain c = {.at = a};
    static char buf[MF_AUDIT_LINE_MAX + 1];
    size_t n = 0;
    struct mf_audit_record r = rec(99);
    assert_int_equal(mf_audit_chain_format(&c, &forged, &r, buf, sizeof(buf), &n), 0);
    insert_line(&ls, ls.n, buf, n);
    struct mf_audit_verify_result res = verify(fx, &ls, &a, 1);
    expect_bad(&res, RECORDS + 2, "chain does not verify");
    free(take_line(&ls, ls.n - 1));
    mf_audit_keys_wipe(&forged);

    insert_line(&ls, 3, "hello, auditor", 14);
    res = verify(fx, &ls, NULL, 0);
    expect_bad(&res, 4, "not JSON");
    free(take_line(&ls, 3));
    insert_line(&ls, 3, "", 0);
    res = verify(fx, &ls, NULL, 0);
    expect_bad(&res, 4, "not JSON");
    free(take_line(&ls, 3));
    insert_line(&ls, 3, "[1,2]", 5);
    res = verify(fx, &ls, NULL, 0);
    expect_bad(&res, 4, "not a JSON object");
    free(take_line(&ls, 3));

    /* A line (with the same seq) from another file written with the same key. */
    char other_path[160];
    snprintf(other_path, sizeof(other_path), "%s/other.log", fx->dir);
    write_file(fx, other_path);
    struct lines ol;
    read_lines(other_path, &ol);
    char *mine = take_line(&ls, 3);
    insert_line(&ls, 3, ol.v[3], ol.len[3]);
    res = verify(fx, &ls, NULL, 0);
    expect_bad(&res, 4, "another file");
    free(take_line(&ls, 3));
    insert_line(&ls, 3, mine, strlen(mine));
    free(mine);
    assert_true(verify(fx, &ls, &a, 1).ok);
    /* A whole other file spliced in front is caught at its second start record. */
    res = verify(fx, &ol, NULL, 0);
    assert_true(res.ok);
    for (size_t i = 0; i < ls.n; i++)
        insert_line(&ol, ol.n, ls.v[i], ls.len[i]);
    res = verify(fx, &ol, NULL, 0);
    expect_bad(&res, RECORDS + 2, "another file");
    free_lines(&ol);
    free_lines(&ls);
}

/* Closing and opening the file again resumes its chain; an incomplete last
 * line is cut off first; the whole file then verifies. */
static void test_audit_chain_resume_after_restart(void **state)
{
    struct fixture *fx = *state;
    struct mf_audit_anchor a = write_file(fx, fx->path);
    int fd = open(fx->path, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    const char torn[] = "{\"chain\":\"0123";
    assert_int_equal(write(fd, torn, sizeof(torn) - 1), (ssize_t)sizeof(torn) - 1);
    close(fd);

    struct mf_audit_file f;
    struct mf_audit_file_info info;
    char err[256];
    assert_int_equal(mf_audit_file_open(&f, fx->path, &fx->keys, &info, err, sizeof(err)), 0);
    assert_true(info.resumed);
    assert_false(info.created);
    assert_int_equal(info.torn_bytes, sizeof(torn) - 1);
    struct mf_audit_anchor b;
    mf_audit_file_anchor(&f, &b);
    assert_int_equal(b.seq, a.seq);
    assert_memory_equal(b.chain, a.chain, MF_AUDIT_MAC_BYTES);
    append_records(&f, RECORDS, RECORDS + 3);
    mf_audit_file_anchor(&f, &b);
    assert_int_equal(b.seq, a.seq + 3);
    mf_audit_file_close(&f);

    struct mf_audit_anchor both[2] = {a, b};
    struct mf_audit_verify_result res;
    assert_int_equal(mf_audit_verify_file(fx->path, fx->keys.chain_key, both, 2, &res), 0);
    assert_true(res.ok);
    assert_int_equal(res.records, RECORDS + 4);
    assert_int_equal(res.anchors_checked, 2);
}

/* A file whose last line does not verify is not appended to (MF_ECORRUPT). */
static void test_audit_chain_resume_refuses_bad_tail(void **state)
{
    struct fixture *fx = *state;
    write_file(fx, fx->path);
    struct lines ls;
    read_lines(fx->path, &ls);
    char *p = strstr(ls.v[ls.n - 1], "kv.");
    assert_non_null(p);
    p[3] = p[3] == 'g' ? 'p' : 'g'; /* kv.get <-> kv.put */
    write_lines(fx->path, &ls);
    struct mf_audit_file f;
    char err[256] = "";
    assert_int_equal(mf_audit_file_open(&f, fx->path, &fx->keys, NULL, err, sizeof(err)),
                     MF_ECORRUPT);
    assert_non_null(strstr(err, "move the file aside"));
    /* A file with only a start record whose chain was edited is refused too. */
    ls.n = 1;
    ls.v[0][20] = ls.v[0][20] == '0' ? '1' : '0';
    write_lines(fx->path, &ls);
    ls.n = RECORDS + 1;
    assert_int_equal(mf_audit_file_open(&f, fx->path, &fx->keys, NULL, err, sizeof(err)),
                     MF_ECORRUPT);
    free_lines(&ls);
}

/* logrotate: the file is renamed and the device reopened; a new file with a
 * new id starts, linked to where the old one ended; both verify, and the old
 * one cut short after rotation fails against the link. A reopen without a
 * rotation continues the same file. */
static void test_audit_chain_reopen_rotates(void **state)
{
    struct fixture *fx = *state;
    struct mf_audit_file f;
    struct mf_audit_file_info info;
    char err[256];
    assert_int_equal(mf_audit_file_open(&f, fx->path, &fx->keys, &info, err, sizeof(err)), 0);
    append_records(&f, 0, 6);
    assert_int_equal(mf_audit_file_reopen(&f, &info, err, sizeof(err)), 0);
    assert_true(info.resumed); /* not rotated: same file */
    append_records(&f, 6, 8);
    struct r_anchor { struct mf_audit_anchor a; } old;
    mf_audit_file_anchor(&f, &old.a);
    assert_int_equal(old.a.seq, 9);

    char rotated[160];
    snprintf(rotated, sizeof(rotated), "%s.1", fx->path);
    assert_int_equal(rename(fx->path, rotated), 0);
    struct mf_audit_record r = rec(8);
    assert_int_equal(mf_audit_file_stage(&f, &r), 0); /* staged before SIGHUP: old file */
    assert_int_equal(mf_audit_file_reopen(&f, &info, err, sizeof(err)), 0);
    assert_true(info.created);
    assert_false(info.resumed);
    old.a.seq++; /* the staged record went to the old file */
    struct mf_audit_anchor fresh;
    mf_audit_file_anchor(&f, &fresh);
    assert_int_equal(fresh.seq, 0);
    append_records(&f, 9, 12);
    mf_audit_file_anchor(&f, &fresh);
    assert_int_equal(fresh.seq, 4);
    assert_string_not_equal(fresh.file_id, old.a.file_id);
    mf_audit_file_close(&f);

    struct mf_audit_verify_result res_new, res_old;
    assert_int_equal(mf_audit_verify_file(fx->path, fx->keys.chain_key, &fresh, 1, &res_new), 0);
    assert_true(res_new.ok);
    assert_true(res_new.has_prev);
    assert_string_equal(res_new.prev.file_id, old.a.file_id);
    assert_int_equal(res_new.prev.seq, 10);
    assert_int_equal(mf_audit_verify_file(rotated, fx->keys.chain_key, &res_new.prev, 1,
                                          &res_old),
                     0);
    assert_true(res_old.ok);
    assert_int_equal(res_old.records, 10);
    assert_int_equal(res_old.anchors_checked, 1);

    struct lines ls;
    read_lines(rotated, &ls);
    free(take_line(&ls, ls.n - 1));
    write_lines(rotated, &ls);
    assert_int_equal(mf_audit_verify_file(rotated, fx->keys.chain_key, &res_new.prev, 1,
                                          &res_old),
                     0);
    expect_bad(&res_old, 10, "truncated");
    free_lines(&ls);
}

/* Staging stops at the batch limit until a flush. */
static void test_audit_chain_batch_limit(void **state)
{
    struct fixture *fx = *state;
    struct mf_audit_file f;
    char err[256];
    assert_int_equal(mf_audit_file_open(&f, fx->path, &fx->keys, NULL, err, sizeof(err)), 0);
    size_t staged = 0;
    int rc;
    struct mf_audit_record r = rec(1);
    while ((rc = mf_audit_file_stage(&f, &r)) == 0)
        staged++;
    assert_int_equal(rc, MF_ETOOLARGE);
    assert_int_equal(mf_audit_file_staged(&f), staged);
    assert_true(staged > 1000);
    assert_int_equal(mf_audit_file_flush(&f, err, sizeof(err)), 0);
    assert_int_equal(mf_audit_file_stage(&f, &r), 0);
    assert_int_equal(mf_audit_file_flush(&f, err, sizeof(err)), 0);
    mf_audit_file_close(&f);
    struct mf_audit_verify_result res;
    assert_int_equal(mf_audit_verify_file(fx->path, fx->keys.chain_key, NULL, 0, &res), 0);
    assert_true(res.ok);
    assert_int_equal(res.records, staged + 2);
}

/* /dev/full: every flush fails with -ENOSPC and a message naming the file;
 * the batch is dropped and no anchor advances. */
static void test_audit_chain_dev_full_enospc(void **state)
{
    struct fixture *fx = *state;
    struct mf_audit_file f;
    char err[256];
    if (access("/dev/full", W_OK) != 0)
        skip();
    assert_int_equal(mf_audit_file_open(&f, "/dev/full", &fx->keys, NULL, err, sizeof(err)), 0);
    for (int round = 0; round < 2; round++) {
        struct mf_audit_record r = rec(1);
        assert_int_equal(mf_audit_file_stage(&f, &r), 0);
        assert_int_equal(mf_audit_file_flush(&f, err, sizeof(err)), -ENOSPC);
        assert_non_null(strstr(err, "/dev/full"));
        assert_non_null(strstr(err, "none recorded"));
        assert_int_equal(mf_audit_file_staged(&f), 0);
        struct mf_audit_anchor a;
        mf_audit_file_anchor(&f, &a);
        assert_int_equal(a.seq, 0);
    }
    struct mf_audit_record two[2] = {rec(1), rec(2)};
    assert_int_equal(mf_audit_file_append(&f, two, 2, err, sizeof(err)), -ENOSPC);
    mf_audit_file_close(&f);
}

/* A write's request record is written before it runs, its sync later: the
 * written line is in the file before any sync; a sync begun, then records
 * staged and written, then the sync ended makes exactly the lines it
 * covered durable (the later ones stay for the next); a flush meanwhile
 * leaves the ended sync nothing to do; the whole file verifies. */
static void test_audit_chain_write_then_sync_off_thread(void **state)
{
    struct fixture *fx = *state;
    struct mf_audit_file f;
    char err[256];
    assert_int_equal(mf_audit_file_open(&f, fx->path, &fx->keys, NULL, err, sizeof(err)), 0);
    struct mf_audit_record r1 = rec(1), r2 = rec(2), r3 = rec(3), r4 = rec(4);
    assert_int_equal(mf_audit_file_stage(&f, &r1), 0);
    assert_int_equal(mf_audit_file_write(&f, err, sizeof(err)), 0);
    struct stat st;
    assert_int_equal(stat(fx->path, &st), 0);
    assert_true(st.st_size > 0); /* start record and r1 are in the file, not durable */
    struct mf_audit_anchor a;
    mf_audit_file_anchor(&f, &a);
    assert_int_equal(a.seq, 0);

    struct mf_audit_sync sy;
    assert_int_equal(mf_audit_file_stage(&f, &r2), 0);
    assert_int_equal(mf_audit_file_sync_begin(&f, &sy, err, sizeof(err)), 0);
    assert_int_equal(mf_audit_file_stage(&f, &r3), 0); /* after begin: not covered */
    assert_int_equal(mf_audit_file_write(&f, err, sizeof(err)), 0);
    mf_audit_sync_run(&sy);
    assert_int_equal(mf_audit_file_sync_end(&f, &sy, err, sizeof(err)), 0);
    mf_audit_file_anchor(&f, &a);
    assert_int_equal(a.seq, 3); /* start, r1, r2 */
    assert_int_equal(mf_audit_file_staged(&f), 1);

    assert_int_equal(mf_audit_file_sync_begin(&f, &sy, err, sizeof(err)), 0);
    assert_int_equal(mf_audit_file_stage(&f, &r4), 0);
    assert_int_equal(mf_audit_file_flush(&f, err, sizeof(err)), 0); /* covers r3 and r4 */
    mf_audit_sync_run(&sy);
    assert_int_equal(mf_audit_file_sync_end(&f, &sy, err, sizeof(err)), 0);
    mf_audit_file_anchor(&f, &a);
    assert_int_equal(a.seq, 5);
    assert_int_equal(mf_audit_file_staged(&f), 0);

    /* Two syncs in flight end in order: each makes its own lines durable. */
    struct mf_audit_sync s1, s2;
    struct mf_audit_record r5 = rec(5), r6 = rec(6);
    assert_int_equal(mf_audit_file_stage(&f, &r5), 0);
    assert_int_equal(mf_audit_file_sync_begin(&f, &s1, err, sizeof(err)), 0);
    assert_int_equal(mf_audit_file_stage(&f, &r6), 0);
    assert_int_equal(mf_audit_file_sync_begin(&f, &s2, err, sizeof(err)), 0);
    mf_audit_sync_run(&s2);
    mf_audit_sync_run(&s1);
    assert_int_equal(mf_audit_file_sync_end(&f, &s1, err, sizeof(err)), 0);
    mf_audit_file_anchor(&f, &a);
    assert_int_equal(a.seq, 6);
    assert_int_equal(mf_audit_file_staged(&f), 1);
    assert_int_equal(mf_audit_file_sync_end(&f, &s2, err, sizeof(err)), 0);
    mf_audit_file_anchor(&f, &a);
    assert_int_equal(a.seq, 7);
    assert_int_equal(mf_audit_file_staged(&f), 0);
    mf_audit_file_close(&f);
    struct mf_audit_verify_result res;
    assert_int_equal(mf_audit_verify_file(fx->path, fx->keys.chain_key, &a, 1, &res), 0);
    assert_true(res.ok);
    assert_int_equal(res.records, 7);
}

/* /dev/full: a write fails with -ENOSPC and drops only its own lines; a
 * sync begun on a failing write drops the batch. */
static void test_audit_chain_write_refused_when_full(void **state)
{
    struct fixture *fx = *state;
    struct mf_audit_file f;
    char err[256];
    if (access("/dev/full", W_OK) != 0)
        skip();
    assert_int_equal(mf_audit_file_open(&f, "/dev/full", &fx->keys, NULL, err, sizeof(err)), 0);
    struct mf_audit_record r = rec(1);
    assert_int_equal(mf_audit_file_stage(&f, &r), 0);
    assert_int_equal(mf_audit_file_write(&f, err, sizeof(err)), -ENOSPC);
    assert_non_null(strstr(err, "none recorded"));
    assert_int_equal(mf_audit_file_staged(&f), 0);
    struct mf_audit_sync sy;
    assert_int_equal(mf_audit_file_stage(&f, &r), 0);
    assert_int_equal(mf_audit_file_sync_begin(&f, &sy, err, sizeof(err)), -ENOSPC);
    assert_int_equal(mf_audit_file_staged(&f), 0);
    mf_audit_file_close(&f);
}

/* A 64 KiB tmpfs fills up: the failed batch leaves no partial line, the file
 * still verifies, and once space is freed the device writes again. Needs
 * root's mount(2); skipped where mounting is not allowed. */
static void test_audit_chain_full_tmpfs(void **state)
{
    struct fixture *fx = *state;
    char path[200], filler[200];
    snprintf(fx->mnt, sizeof(fx->mnt), "%s/mnt", fx->dir);
    assert_int_equal(mkdir(fx->mnt, 0700), 0);
    if (mount("tmpfs", fx->mnt, "tmpfs", 0, "size=64k") != 0) {
        print_message("cannot mount a tmpfs here (%s): skipped\n", strerror(errno));
        fx->mnt[0] = '\0';
        skip();
    }
    snprintf(path, sizeof(path), "%s/audit.log", fx->mnt);
    snprintf(filler, sizeof(filler), "%s/filler", fx->mnt);
    /* 16 KiB held by another file, to be freed later. */
    static char block[16 << 10];
    int fd = open(filler, O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, block, sizeof(block)), (ssize_t)sizeof(block));
    close(fd);

    struct mf_audit_file f;
    char err[256];
    assert_int_equal(mf_audit_file_open(&f, path, &fx->keys, NULL, err, sizeof(err)), 0);
    int rc = 0;
    uint64_t i = 0, ok_records = 0;
    while (rc == 0 && i < 100000) {
        struct mf_audit_record r[7];
        for (int j = 0; j < 7; j++)
            r[j] = rec(i + (uint64_t)j);
        rc = mf_audit_file_append(&f, r, 7, err, sizeof(err));
        if (rc == 0)
            ok_records += 7;
        i += 7;
    }
    assert_int_equal(rc, -ENOSPC);
    assert_non_null(strstr(err, "No space left"));
    assert_true(ok_records > 0);
    struct mf_audit_anchor a;
    mf_audit_file_anchor(&f, &a);
    assert_int_equal(a.seq, ok_records + 1);
    struct mf_audit_verify_result res;
    assert_int_equal(mf_audit_verify_file(path, fx->keys.chain_key, &a, 1, &res), 0);
    assert_true(res.ok); /* no partial batch was left behind */
    assert_int_equal(res.records, ok_records + 1);

    /* Space comes back: the next batch is written and the chain goes on. */
    assert_int_equal(unlink(filler), 0);
    struct mf_audit_record more[7];
    for (int j = 0; j < 7; j++)
        more[j] = rec(i + (uint64_t)j);
    assert_int_equal(mf_audit_file_append(&f, more, 7, err, sizeof(err)), 0);
    struct mf_audit_anchor b;
    mf_audit_file_anchor(&f, &b);
    assert_int_equal(b.seq, a.seq + 7);
    mf_audit_file_close(&f);
    struct mf_audit_anchor both[2] = {a, b};
    assert_int_equal(mf_audit_verify_file(path, fx->keys.chain_key, both, 2, &res), 0);
    assert_true(res.ok);
    assert_int_equal(res.anchors_checked, 2);
}

/* Markers written as a secret value, a token, a password, a JWT and a request
 * id reach no byte of the file, and a share is only "redacted". */
static void test_audit_chain_file_holds_no_markers(void **state)
{
    struct fixture *fx = *state;
    static const char *markers[] = {"VALUE-MARKER-1", "TOKEN-MARKER-2", "PASSWORD-MARKER-3",
                                    "eyJhbGciOiJFUzI1NiJ9.JWT-MARKER-4.c2ln", "REQUEST-MARKER-5",
                                    "SHARE-MARKER-6"};
    const struct mf_audit_secret secrets[] = {
        {"value", markers[0], strlen(markers[0]), MF_AUDIT_SECRET_HMAC},
        {"token", markers[1], strlen(markers[1]), MF_AUDIT_SECRET_HMAC},
        {"password", markers[2], strlen(markers[2]), MF_AUDIT_SECRET_HMAC},
        {"jwt", markers[3], strlen(markers[3]), MF_AUDIT_SECRET_HMAC},
        {"share", markers[5], strlen(markers[5]), MF_AUDIT_SECRET_REDACT},
    };
    struct mf_audit_record r = rec(1);
    r.request_id = markers[4];
    r.secrets = secrets;
    r.secrets_n = 5;
    struct mf_audit_file f;
    char err[256];
    assert_int_equal(mf_audit_file_open(&f, fx->path, &fx->keys, NULL, err, sizeof(err)), 0);
    assert_int_equal(mf_audit_file_append(&f, &r, 1, err, sizeof(err)), 0);
    mf_audit_file_close(&f);
    static char data[1 << 16];
    FILE *fp = fopen(fx->path, "r");
    assert_non_null(fp);
    size_t n = fread(data, 1, sizeof(data), fp);
    fclose(fp);
    assert_true(n > 0);
    for (size_t i = 0; i < sizeof(markers) / sizeof(markers[0]); i++)
        assert_null(memmem(data, n, markers[i], strlen(markers[i])));
    assert_null(memmem(data, n, "MARKER", 6));
    assert_non_null(memmem(data, n, "\"share\":\"redacted\"", 18));
    char h[MF_AUDIT_HASH_STR_BYTES];
    assert_int_equal(mf_audit_hash(&fx->keys, markers[1], strlen(markers[1]), h), 0);
    assert_non_null(memmem(data, n, h, strlen(h)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_audit_chain_good_file_verifies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_chain_edited_byte_detected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_chain_removed_line_detected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_chain_swapped_lines_detected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_chain_truncated_tail_detected, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_audit_chain_foreign_lines_detected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_chain_resume_after_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_chain_resume_refuses_bad_tail, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_audit_chain_reopen_rotates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_chain_batch_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_chain_dev_full_enospc, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_chain_full_tmpfs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_chain_write_then_sync_off_thread, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_audit_chain_write_refused_when_full, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_audit_chain_file_holds_no_markers, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

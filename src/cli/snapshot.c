/* The CLI's backup commands (snapshot.h): many requests, one file. */
#include "cli/snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "client/mayfly.h"
#include "common/err.h"
#include "common/fdio.h"

#define BAR_WIDTH 40

static int local_error(const struct mf_cli_args *a, FILE *out, FILE *errout, const char *msg)
{
    mf_cli_print_error(a->g.format, "INVALID_ARGUMENT", msg, out, errout);
    return MF_CLI_EXIT_LOCAL;
}

static int open_client(const struct mf_cli_args *a, struct mf_client **c, FILE *out,
                       FILE *errout)
{
    if (!a->g.addr || !a->g.ca_cert)
        return local_error(a, out, errout,
                           "set -addr and -ca-cert (or MAYFLY_ADDR and MAYFLY_CACERT)");
    struct mf_client_opts opts = {
        .addrs = a->g.addr,
        .ca_file = a->g.ca_cert,
        .cert_file = a->g.client_cert,
        .key_file = a->g.client_key,
        .token = mf_cli_caller_token(a),
        .timeout_ms = a->g.timeout_ms,
    };
    char err[MF_CLI_ERR_LEN] = "";
    if (mf_client_open(&opts, c, err, sizeof(err)))
        return local_error(a, out, errout, err);
    return MF_CLI_EXIT_OK;
}

/* One call; on failure prints the error and returns the exit code (else 0
 * and *resp, which the caller frees). */
static int call(const struct mf_cli_args *a, struct mf_client *c, Mayfly__Api__Request *req,
                Mayfly__Api__Response__ResultCase want, Mayfly__Api__Response **resp, FILE *out,
                FILE *errout)
{
    char err[MF_CLI_ERR_LEN] = "";
    *resp = NULL;
    int rc = mf_client_call(c, req, false, resp, err, sizeof(err));
    if (rc) {
        mf_cli_print_error(a->g.format, mf_err_name(rc), err, out, errout);
        return rc == MF_EUNKNOWN ? MF_CLI_EXIT_UNKNOWN : MF_CLI_EXIT_LOCAL;
    }
    Mayfly__Api__Response *r = *resp;
    if (r->error && r->error->code != MAYFLY__API__ERROR_CODE__OK) {
        const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(
            &mayfly__api__error_code__descriptor, (int)r->error->code);
        mf_cli_print_error(a->g.format, ev ? ev->name : "INTERNAL", r->error->message, out,
                           errout);
        int code = mf_cli_exit_for_server_error((int)r->error->code);
        mayfly__api__response__free_unpacked(r, NULL);
        *resp = NULL;
        return code;
    }
    if (r->result_case != want) {
        mayfly__api__response__free_unpacked(r, NULL);
        *resp = NULL;
        mf_cli_print_error(a->g.format, "INTERNAL", "the server's answer does not fit the command",
                           out, errout);
        return MF_CLI_EXIT_REFUSED;
    }
    return MF_CLI_EXIT_OK;
}

/* Only on a terminal: a script reading stderr gets no control characters. */
static void progress(bool tty, uint64_t done, uint64_t total)
{
    if (!tty || !total)
        return;
    int fill = (int)(done * BAR_WIDTH / total);
    fprintf(stderr, "\r[%.*s%*s] %3d%% %llu/%llu bytes", fill,
            "########################################", BAR_WIDTH - fill, "",
            (int)(done * 100 / total), (unsigned long long)done, (unsigned long long)total);
    if (done == total)
        fputc('\n', stderr);
    fflush(stderr);
}

static void print_doc(const struct mf_cli_args *a, json_t *doc, FILE *out)
{
    if (a->g.format == MF_CLI_FORMAT_JSON) {
        char *text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        fprintf(out, "%s\n", text);
        free(text);
    } else {
        mf_cli_render_doc(doc, out);
    }
}

struct save_state {
    char *tmp;
    int fd;
    EVP_MD_CTX *md;
    uint64_t got, total, index, term;
    uint8_t sha[32];
    bool have_sha;
};

/* One chunk into the file and the running checksum. */
static int save_take(struct save_state *st, const Mayfly__Api__SnapshotSaveResponse *r)
{
    if (r->offset != st->got || (st->total && r->total_bytes != st->total) ||
        r->offset + r->data.len > r->total_bytes)
        return MF_ECORRUPT;
    st->total = r->total_bytes;
    st->index = r->index;
    st->term = r->term;
    /* The plain SHA-256 covers everything before the trailer (SHA, MAC). */
    uint64_t end = st->total > 64 ? st->total - 64 : 0;
    size_t hashed = r->offset >= end ? 0
                    : end - r->offset < r->data.len ? (size_t)(end - r->offset)
                                                    : r->data.len;
    if (mf_write_all(st->fd, r->data.data, r->data.len) ||
        EVP_DigestUpdate(st->md, r->data.data, hashed) != 1)
        return -EIO;
    st->got += r->data.len;
    if (r->sha256.len == 32) {
        memcpy(st->sha, r->sha256.data, 32);
        st->have_sha = true;
    }
    return 0;
}

static int save_loop(const struct mf_cli_args *a, struct mf_client *c, struct save_state *st,
                     FILE *out, FILE *errout)
{
    bool tty = isatty(STDERR_FILENO);
    char handle[64] = "";
    for (;;) {
        Mayfly__Api__Request req = MAYFLY__API__REQUEST__INIT;
        Mayfly__Api__SnapshotSaveRequest q = MAYFLY__API__SNAPSHOT_SAVE_REQUEST__INIT;
        q.handle = handle;
        q.offset = st->got;
        req.op_case = MAYFLY__API__REQUEST__OP_SNAPSHOT_SAVE;
        req.snapshot_save = &q;
        Mayfly__Api__Response *resp;
        int code = call(a, c, &req, MAYFLY__API__RESPONSE__RESULT_SNAPSHOT_SAVE, &resp, out,
                        errout);
        if (code)
            return code;
        const Mayfly__Api__SnapshotSaveResponse *r = resp->snapshot_save;
        int rc = strlen(r->handle) < sizeof(handle) ? save_take(st, r) : MF_ECORRUPT;
        snprintf(handle, sizeof(handle), "%s", r->handle);
        bool stalled = r->data.len == 0 && st->got < st->total;
        mayfly__api__response__free_unpacked(resp, NULL);
        if (rc || stalled)
            return local_error(a, out, errout, rc == -EIO ? "cannot write the backup file"
                                                          : "the server's chunks do not line up");
        progress(tty, st->got, st->total);
        if (st->got == st->total)
            return MF_CLI_EXIT_OK;
    }
}

int mf_cli_snapshot_save(const struct mf_cli_args *a, FILE *out, FILE *errout)
{
    const char *file = a->pos[0];
    struct save_state st = {.fd = -1};
    struct mf_client *c = NULL;
    int code = open_client(a, &c, out, errout);
    if (code)
        return code;
    st.tmp = malloc(strlen(file) + 5);
    st.md = EVP_MD_CTX_new();
    if (!st.tmp || !st.md || EVP_DigestInit_ex(st.md, EVP_sha256(), NULL) != 1) {
        code = local_error(a, out, errout, "out of memory");
        goto done;
    }
    sprintf(st.tmp, "%s.tmp", file);
    st.fd = open(st.tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (st.fd < 0) {
        code = local_error(a, out, errout, "cannot create FILE.tmp");
        goto done;
    }
    code = save_loop(a, c, &st, out, errout);
    uint8_t sha[32];
    unsigned n = 0;
    if (!code && (EVP_DigestFinal_ex(st.md, sha, &n) != 1 || !st.have_sha ||
                  CRYPTO_memcmp(sha, st.sha, 32) != 0))
        code = local_error(a, out, errout, "the backup's SHA-256 does not match what was received");
    if (!code && (fsync(st.fd) != 0 || close(st.fd) != 0))
        code = local_error(a, out, errout, "cannot write the backup file");
    else if (!code)
        st.fd = -1;
    if (!code && rename(st.tmp, file) != 0)
        code = local_error(a, out, errout, "cannot rename FILE.tmp to FILE");
    if (!code) {
        char hex[65];
        for (int i = 0; i < 32; i++)
            snprintf(hex + 2 * i, 3, "%02x", sha[i]);
        json_t *doc = json_pack("{s:I, s:I, s:I, s:s}", "index", (json_int_t)st.index, "term",
                                (json_int_t)st.term, "bytes", (json_int_t)st.total, "sha256", hex);
        print_doc(a, doc, out);
        json_decref(doc);
    }
done:
    if (st.fd >= 0)
        close(st.fd);
    if (code && st.tmp)
        unlink(st.tmp);
    free(st.tmp);
    EVP_MD_CTX_free(st.md);
    mf_client_close(c);
    return code;
}

int mf_cli_snapshot_restore(const struct mf_cli_args *a, FILE *out, FILE *errout)
{
    const char *file = a->pos[0];
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0 || sb.st_size <= 0) {
        if (fd >= 0)
            close(fd);
        return local_error(a, out, errout, "cannot read FILE (or it is empty)");
    }
    struct mf_client *c = NULL;
    int code = open_client(a, &c, out, errout);
    uint8_t *buf = code ? NULL : malloc(MF_CLI_SNAPSHOT_RESTORE_CHUNK);
    if (!code && !buf)
        code = local_error(a, out, errout, "out of memory");
    bool tty = isatty(STDERR_FILENO);
    uint64_t total = (uint64_t)sb.st_size, sent = 0;
    while (!code) {
        ssize_t k = read(fd, buf, MF_CLI_SNAPSHOT_RESTORE_CHUNK);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 || (k == 0 && sent < total)) {
            code = local_error(a, out, errout, "cannot read FILE");
            break;
        }
        Mayfly__Api__Request req = MAYFLY__API__REQUEST__INIT;
        Mayfly__Api__SnapshotRestoreRequest q = MAYFLY__API__SNAPSHOT_RESTORE_REQUEST__INIT;
        q.offset = sent;
        q.data.data = buf;
        q.data.len = (size_t)k;
        q.total = total;
        q.last = sent + (uint64_t)k >= total;
        req.op_case = MAYFLY__API__REQUEST__OP_SNAPSHOT_RESTORE;
        req.snapshot_restore = &q;
        Mayfly__Api__Response *resp;
        code = call(a, c, &req, MAYFLY__API__RESPONSE__RESULT_SNAPSHOT_RESTORE, &resp, out,
                    errout);
        if (code)
            break;
        sent += (uint64_t)k;
        progress(tty, sent, total);
        if (q.last) {
            json_t *doc = json_pack("{s:I, s:I}", "index",
                                    (json_int_t)resp->snapshot_restore->index, "term",
                                    (json_int_t)resp->snapshot_restore->term);
            print_doc(a, doc, out);
            json_decref(doc);
            fprintf(errout, "restore staged: unseal with the backup's shares\n");
            mayfly__api__response__free_unpacked(resp, NULL);
            break;
        }
        mayfly__api__response__free_unpacked(resp, NULL);
    }
    free(buf);
    close(fd);
    mf_client_close(c);
    return code;
}

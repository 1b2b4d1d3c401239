/* The mayfly program's flow: parse, build, call, render, exit code; plus the
 * request arena, the human table output and error printing. */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "client/mayfly.h"
#include "common/err.h"

struct mf_cli_arena_block {
    struct mf_cli_arena_block *next;
    max_align_t data[];
};

void *mf_cli_arena_alloc(struct mf_cli_arena *a, size_t len)
{
    struct mf_cli_arena_block *b = calloc(1, sizeof(*b) + (len ? len : 1));
    if (!b) {
        fputs("mayfly: out of memory\n", stderr);
        abort();
    }
    b->next = a->head;
    a->head = b;
    return b->data;
}

char *mf_cli_arena_strdup(struct mf_cli_arena *a, const char *s)
{
    size_t len = strlen(s);
    char *d = mf_cli_arena_alloc(a, len + 1);
    memcpy(d, s, len);
    return d;
}

void mf_cli_arena_free(struct mf_cli_arena *a)
{
    while (a->head) {
        struct mf_cli_arena_block *next = a->head->next;
        free(a->head);
        a->head = next;
    }
}

void mf_cli_print_error(enum mf_cli_format fmt, const char *code, const char *message, FILE *out,
                        FILE *errout)
{
    if (fmt == MF_CLI_FORMAT_JSON) {
        json_t *doc = json_pack("{s:{s:s, s:s}}", "error", "code", code, "message", message);
        char *text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        fprintf(out, "%s\n", text);
        free(text);
        json_decref(doc);
    }
    fprintf(errout, "Error: %s: %s\n", code, message);
}

/* ---- human tables, derived from the JSON shape ---- */

static void scalar_text(json_t *v, char *buf, size_t len)
{
    if (json_is_string(v))
        snprintf(buf, len, "%s", json_string_value(v));
    else if (json_is_integer(v))
        snprintf(buf, len, "%lld", (long long)json_integer_value(v));
    else if (json_is_true(v))
        snprintf(buf, len, "true");
    else if (json_is_false(v))
        snprintf(buf, len, "false");
    else if (json_is_null(v))
        snprintf(buf, len, "n/a");
    else {
        char *t = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER);
        snprintf(buf, len, "%s", t ? t : "");
        free(t);
    }
}

static void print_key_values(json_t *obj, FILE *out)
{
    size_t width = 3;
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) if (strlen(key) > width) width = strlen(key);
    fprintf(out, "%-*s    %s\n%-*s    %s\n", (int)width, "Key", "Value", (int)width, "---",
            "-----");
    json_object_foreach(obj, key, v) {
        if (json_is_object(v) || json_is_array(v))
            continue;
        char text[1024];
        scalar_text(v, text, sizeof(text));
        fprintf(out, "%-*s    %s\n", (int)width, key, text);
    }
}

/* An array of flat objects as columns (lease list). */
static void print_rows(json_t *arr, FILE *out)
{
    json_t *first = json_array_get(arr, 0);
    if (!first)
        return;
    const char *key;
    json_t *v;
    json_object_foreach(first, key, v) if (!json_is_object(v)) fprintf(out, "%s\t", key);
    fputc('\n', out);
    size_t i;
    json_t *row;
    json_array_foreach(arr, i, row) {
        json_object_foreach(row, key, v) {
            if (json_is_object(v))
                continue;
            char text[512];
            scalar_text(v, text, sizeof(text));
            fprintf(out, "%s\t", text);
        }
        fputc('\n', out);
    }
}

void mf_cli_render_table(const struct mf_cli_args *a, const Mayfly__Api__Response *resp,
                         FILE *out)
{
    json_t *doc = mf_cli_render_json(a, resp);
    if (!doc)
        return;
    mf_cli_table_fn table = mf_cli_command_table(a->cmd);
    if (table) {
        table(doc, out);
        json_decref(doc);
        return;
    }
    const char *field = mf_cli_flag(a, "field");
    json_t *data = json_object_get(doc, "data");
    if (field && json_is_object(data)) { /* -field prints the bare value, like vault */
        json_t *v = json_object_get(data, field);
        if (json_is_string(v))
            fprintf(out, "%s\n", json_string_value(v));
        json_decref(doc);
        return;
    }
    mf_cli_render_doc(doc, out);
    json_decref(doc);
}

void mf_cli_render_doc(json_t *doc, FILE *out)
{
    json_object_del(doc, "read");
    if (json_object_size(doc) > 0)
        print_key_values(doc, out);
    const char *key;
    json_t *v;
    json_object_foreach(doc, key, v) {
        if (json_is_object(v) && json_object_size(v) > 0) {
            fprintf(out, "\n==== %s ====\n", key);
            print_key_values(v, out);
        } else if (json_is_array(v) && json_array_size(v) > 0) {
            fprintf(out, "\n==== %s ====\n", key);
            if (json_is_object(json_array_get(v, 0))) {
                print_rows(v, out);
            } else {
                size_t i;
                json_t *item;
                json_array_foreach(v, i, item) {
                    char text[1024];
                    scalar_text(item, text, sizeof(text));
                    fprintf(out, "%s\n", text);
                }
            }
        }
    }
}

/* ---- the program ---- */

static int exit_for_client_error(int rc)
{
    switch (rc) {
    case MF_EUNKNOWN: return MF_CLI_EXIT_UNKNOWN;
    case MF_ETIMEOUT: return MF_CLI_EXIT_REFUSED;
    default: return MF_CLI_EXIT_LOCAL;
    }
}

int mf_cli_exit_for_server_error(int wire_code)
{
    /* The server itself may not know (a proposal not applied in time, or
     * lost in a storage block): exit 3, like a lost connection. */
    return wire_code == MAYFLY__API__ERROR_CODE__UNKNOWN_OUTCOME ? MF_CLI_EXIT_UNKNOWN
                                                                 : MF_CLI_EXIT_REFUSED;
}

static int render(const struct mf_cli_args *a, const Mayfly__Api__Response *resp, FILE *out,
                  FILE *errout)
{
    if (resp->error && resp->error->code != MAYFLY__API__ERROR_CODE__OK) {
        const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(
            &mayfly__api__error_code__descriptor, (int)resp->error->code);
        mf_cli_print_error(a->g.format, ev ? ev->name : "INTERNAL", resp->error->message, out,
                           errout);
        return mf_cli_exit_for_server_error((int)resp->error->code);
    }
    json_t *doc = mf_cli_render_json(a, resp);
    if (!doc) {
        mf_cli_print_error(a->g.format, "INTERNAL", "the server's answer does not fit the command",
                           out, errout);
        return MF_CLI_EXIT_REFUSED;
    }
    if (a->g.format == MF_CLI_FORMAT_JSON) {
        char *text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        fprintf(out, "%s\n", text);
        free(text);
    } else {
        mf_cli_render_table(a, resp, out);
    }
    /* audit verify: a file that does not verify exits 2, as a refusal. */
    bool failed = resp->result_case == MAYFLY__API__RESPONSE__RESULT_AUDIT_VERIFY_KEY &&
                  json_is_false(json_object_get(doc, "ok"));
    json_decref(doc);
    return failed ? MF_CLI_EXIT_REFUSED : MF_CLI_EXIT_OK;
}

int mf_cli_main(int argc, char **argv, FILE *in, FILE *out, FILE *errout)
{
    struct mf_cli_args args;
    char err[MF_CLI_ERR_LEN] = "";
    int rc = mf_cli_parse(argc, argv, &args, err, sizeof(err));
    if (rc) {
        mf_cli_print_error(args.g.format, "INVALID_ARGUMENT", err, out, errout);
        return MF_CLI_EXIT_LOCAL;
    }
    if (args.help) {
        if (args.cmd)
            fprintf(out, "usage: %s\n", args.cmd->usage);
        else
            mf_cli_usage(out);
        return MF_CLI_EXIT_OK;
    }
    if (args.cmd && mf_cli_command_local(args.cmd)) {
        int local = mf_cli_command_local(args.cmd)(&args, out, errout);
        if (local >= 0)
            return local;
    }
    if (!args.g.addr || !args.g.ca_cert) {
        mf_cli_print_error(args.g.format, "INVALID_ARGUMENT",
                           "set -addr and -ca-cert (or MAYFLY_ADDR and MAYFLY_CACERT)", out,
                           errout);
        return MF_CLI_EXIT_LOCAL;
    }

    struct mf_cli_arena arena = {0};
    Mayfly__Api__Request req;
    bool is_write = false;
    int code = MF_CLI_EXIT_LOCAL;
    rc = mf_cli_build(&args, &arena, in, &req, &is_write, err, sizeof(err));
    if (rc) {
        mf_cli_print_error(args.g.format, "INVALID_ARGUMENT", err, out, errout);
        goto out_arena;
    }
    struct mf_client_opts opts = {
        .addrs = args.g.addr,
        .ca_file = args.g.ca_cert,
        .cert_file = args.g.client_cert,
        .key_file = args.g.client_key,
        .token = mf_cli_caller_token(&args),
        .timeout_ms = args.g.timeout_ms,
    };
    struct mf_client *client = NULL;
    rc = mf_client_open(&opts, &client, err, sizeof(err));
    if (rc) {
        mf_cli_print_error(args.g.format, "INVALID_ARGUMENT", err, out, errout);
        goto out_arena;
    }
    Mayfly__Api__Response *resp = NULL;
    rc = mf_client_call(client, &req, is_write, &resp, err, sizeof(err));
    if (rc) {
        mf_cli_print_error(args.g.format, mf_err_name(rc), err, out, errout);
        code = exit_for_client_error(rc);
    } else {
        code = render(&args, resp, out, errout);
        mayfly__api__response__free_unpacked(resp, NULL);
    }
    mf_client_close(client);
out_arena:
    mf_cli_arena_free(&arena);
    return code;
}

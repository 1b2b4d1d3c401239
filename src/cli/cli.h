/* The mayfly command-line tool, as a library so its parsing, request building
 * and output rendering are unit-tested. The contract it implements is
 * ../shared/CLI.md: grammar, environment variables, JSON shapes, exit codes.
 *
 * Flow: mf_cli_parse (argv + environment -> struct mf_cli_args) ->
 * mf_cli_build (args -> a protobuf Request) -> libmayfly -> mf_cli_render
 * (Response -> JSON document or table) -> exit code.
 *
 * Ownership: struct mf_cli_args points into argv and the environment (no
 * copies). A built Request and everything under it is allocated from the
 * caller's struct mf_cli_arena and released by mf_cli_arena_free.
 */
#ifndef MF_CLI_CLI_H
#define MF_CLI_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "mayfly.pb-c.h"

#define MF_CLI_WORDS_MAX 32
#define MF_CLI_FLAGS_MAX 32
#define MF_CLI_ERR_LEN 512

/* Exit codes of the contract. */
enum mf_cli_exit {
    MF_CLI_EXIT_OK = 0,
    MF_CLI_EXIT_LOCAL = 1,    /* bad flags, unreadable file, cannot connect */
    MF_CLI_EXIT_REFUSED = 2,  /* the server refused or failed the request */
    MF_CLI_EXIT_UNKNOWN = 3,  /* a write's outcome is unknown */
};

enum mf_cli_format { MF_CLI_FORMAT_TABLE, MF_CLI_FORMAT_JSON };

struct mf_cli_globals {
    const char *addr;
    const char *token;        /* the caller's: -token, else MAYFLY_TOKEN */
    const char *token_arg;    /* -token as given on the command line (NULL: none) */
    const char *token_env;    /* MAYFLY_TOKEN (NULL: unset) */
    const char *ca_cert;
    const char *client_cert;
    const char *client_key;
    enum mf_cli_format format;
    bool stale;               /* -consistency stale */
    uint64_t timeout_ms;      /* default 10 s */
};

struct mf_cli_flag {
    const char *name;         /* without dashes */
    const char *value;        /* NULL for a boolean flag */
};

struct mf_cli_command;

struct mf_cli_args {
    struct mf_cli_globals g;
    const struct mf_cli_command *cmd;   /* resolved command */
    const char *pos[MF_CLI_WORDS_MAX];  /* positional arguments after the command words */
    size_t pos_len;
    struct mf_cli_flag flags[MF_CLI_FLAGS_MAX];
    size_t flags_len;
    bool help;
};

/* A bump allocator for building requests: everything is freed at once. */
struct mf_cli_arena {
    struct mf_cli_arena_block *head;
};
void *mf_cli_arena_alloc(struct mf_cli_arena *a, size_t len); /* zeroed; aborts on OOM */
char *mf_cli_arena_strdup(struct mf_cli_arena *a, const char *s);
void mf_cli_arena_free(struct mf_cli_arena *a);

/* Parse argv (flags anywhere, as -flag or --flag, "-flag value" or
 * "-flag=value") and the MAYFLY_* environment. Returns 0, or MF_EINVAL with a
 * message naming the bad flag or command (exit code 1). */
int mf_cli_parse(int argc, char **argv, struct mf_cli_args *out, char *err, size_t err_len);

/* The value of command flag `name` (last one wins), or NULL. */
const char *mf_cli_flag(const struct mf_cli_args *a, const char *name);
bool mf_cli_flag_set(const struct mf_cli_args *a, const char *name);

/* Build the Request for the parsed command. *is_write tells the client to
 * attach an idempotency key. Reads files for KEY=@FILE and stdin for KEY=-
 * (from `in`). Returns 0 or MF_EINVAL with a message. */
int mf_cli_build(const struct mf_cli_args *a, struct mf_cli_arena *arena, FILE *in,
                 Mayfly__Api__Request *req, bool *is_write, char *err, size_t err_len);

/* The token the request is sent with. Usually g.token; `policy check -token T`
 * names the token to check, and the caller is then MAYFLY_TOKEN (or T itself
 * when MAYFLY_TOKEN is unset). */
const char *mf_cli_caller_token(const struct mf_cli_args *a);

/* Render a successful Response as the command's JSON shape (new reference).
 * Returns NULL if the response does not carry the result this command
 * expects. */
json_t *mf_cli_render_json(const struct mf_cli_args *a, const Mayfly__Api__Response *resp);

/* Render a successful Response as a human table on out. */
void mf_cli_render_table(const struct mf_cli_args *a, const Mayfly__Api__Response *resp,
                         FILE *out);

/* The generic table of a command's JSON shape (scalars as key/value
 * rows, each object or array in its own section); `read` is dropped. */
void mf_cli_render_doc(json_t *doc, FILE *out);

/* Print an error in the requested format: JSON {"error": {...}} on out, or
 * "Error: ..." on errout. */
void mf_cli_print_error(enum mf_cli_format fmt, const char *code, const char *message, FILE *out,
                        FILE *errout);

/* Usage text for all commands. */
void mf_cli_usage(FILE *out);

/* The exit code for an error the server answered (wire ErrorCode):
 * MF_CLI_EXIT_UNKNOWN for UNKNOWN_OUTCOME, else MF_CLI_EXIT_REFUSED. */
int mf_cli_exit_for_server_error(int wire_code);

/* The whole program: parse, connect, call, render. Returns the exit code. */
int mf_cli_main(int argc, char **argv, FILE *in, FILE *out, FILE *errout);

/* Printable name of a lease state ("active", ...) and the reverse (0 if
 * unknown). */
const char *mf_cli_lease_state_name(Mayfly__Api__LeaseState s);
Mayfly__Api__LeaseState mf_cli_lease_state_parse(const char *s);

/* Whether the bytes are valid UTF-8 (values must be). */
bool mf_cli_utf8_valid(const char *s, size_t len);

#endif

/* The command table of the mayfly CLI: for each command, its words, the flags
 * it accepts, how it builds its Request and how it renders its Response.
 * Private to src/cli. */
#ifndef MF_CLI_COMMANDS_H
#define MF_CLI_COMMANDS_H

#include "cli/cli.h"

struct mf_cli_command {
    const char *words[3];   /* "kv", "metadata", "get" */
    const char *flags;      /* space-separated command flags it accepts */
    int pos_min, pos_max;   /* positional arguments; pos_max -1 = any number */
    bool write;             /* carries an idempotency key */
    const char *usage;
    int (*build)(const struct mf_cli_args *a, struct mf_cli_arena *ar, FILE *in,
                 Mayfly__Api__Request *req, char *err, size_t err_len);
    Mayfly__Api__Response__ResultCase result; /* what a success carries */
    json_t *(*json)(const struct mf_cli_args *a, const Mayfly__Api__Response *r);
};

/* The human output of a command whose answer the generic key/value table
 * does not fit (it gets the JSON shape); NULL: the generic table. */
typedef void (*mf_cli_table_fn)(json_t *doc, FILE *out);
mf_cli_table_fn mf_cli_command_table(const struct mf_cli_command *c);

/* A command that may answer without a server (generate-root -decode): it
 * returns an exit code, or -1 to call the server. NULL: always the server. */
typedef int (*mf_cli_local_fn)(const struct mf_cli_args *a, FILE *out, FILE *errout);
mf_cli_local_fn mf_cli_command_local(const struct mf_cli_command *c);

/* Longest match of the command words at the start of words; *used gets how
 * many words it took. NULL if none matches. */
const struct mf_cli_command *mf_cli_command_find(const char **words, size_t n, size_t *used);

/* Checks the parsed flags and positional count against the command. */
int mf_cli_command_check(const struct mf_cli_args *a, char *err, size_t err_len);

/* Iterate the table (for usage). NULL past the end. */
const struct mf_cli_command *mf_cli_command_at(size_t i);

#endif

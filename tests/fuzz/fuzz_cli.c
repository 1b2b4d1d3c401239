/* Fuzz target: the mayfly CLI's argument parser and request builder
 * (mf_cli_parse, then mf_cli_build: every command's flag and value checks).
 * The input is argv after "mayfly", words separated by NUL bytes. The
 * MAYFLY_* environment is cleared; stdin (KEY=-, -config -) reads a small
 * fixed text. KEY=@FILE, -config @FILE, `policy write NAME FILE` read
 * files: the target runs in an empty temporary directory holding one file
 * "f", and words are confined to it (confine()), so never /dev/zero or a
 * FIFO. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/assert.h"

#define WORDS_MAX 40

static char g_dir[] = "/tmp/mf_fuzz_cli.XXXXXX";
static int g_dir_fd = -1, g_cwd_fd = -1;

static void cleanup(void)
{
    unlinkat(g_dir_fd, "f", 0);
    rmdir(g_dir);
}

static void setup(void)
{
    static const char *vars[] = {"MAYFLY_ADDR", "MAYFLY_TOKEN", "MAYFLY_CACERT",
                                 "MAYFLY_CLIENT_CERT", "MAYFLY_CLIENT_KEY", "MAYFLY_FORMAT",
                                 "MAYFLY_CONSISTENCY"};
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
        unsetenv(vars[i]);
    MF_ASSERT(mkdtemp(g_dir) != NULL);
    g_dir_fd = open(g_dir, O_RDONLY | O_DIRECTORY);
    g_cwd_fd = open(".", O_RDONLY | O_DIRECTORY);
    MF_ASSERT(g_dir_fd >= 0 && g_cwd_fd >= 0);
    char path[64];
    snprintf(path, sizeof(path), "%s/f", g_dir);
    FILE *f = fopen(path, "w");
    MF_ASSERT(f != NULL);
    fputs("{\"path\":{\"a/*\":{\"capabilities\":[\"read\"]}}}\n", f);
    fclose(f);
    atexit(cleanup);
}

/* Keep file names inside the directory: no absolute path (a '/' first, or
 * after '@' or '='), no "..". */
static void confine(char *w)
{
    for (size_t i = 0; w[i]; i++) {
        if (w[i] == '/' && (i == 0 || w[i - 1] == '@' || w[i - 1] == '='))
            w[i] = '_';
        if (w[i] == '.' && w[i + 1] == '.')
            w[i] = '_';
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        setup();
        ready = 1;
    }
    char *buf = malloc(size + 1);
    MF_ASSERT(buf != NULL);
    memcpy(buf, data, size);
    buf[size] = 0;
    char *argv[WORDS_MAX + 2];
    int argc = 0;
    argv[argc++] = "mayfly";
    for (size_t i = 0; i <= size && argc <= WORDS_MAX;) {
        char *w = buf + i;
        size_t n = strlen(w);
        confine(w);
        argv[argc++] = w;
        i += n + 1;
    }
    argv[argc] = NULL;

    /* In the directory for the call only: the caller's relative paths (the
     * corpus) stay valid. */
    MF_ASSERT(fchdir(g_dir_fd) == 0);
    struct mf_cli_args a;
    char err[MF_CLI_ERR_LEN];
    if (mf_cli_parse(argc, argv, &a, err, sizeof(err)) == 0 && a.cmd && !a.help) {
        static char input[] = "stdin-value\n";
        FILE *in = fmemopen(input, sizeof(input) - 1, "r");
        MF_ASSERT(in != NULL);
        struct mf_cli_arena arena = {0};
        Mayfly__Api__Request req = MAYFLY__API__REQUEST__INIT;
        bool is_write;
        if (mf_cli_build(&a, &arena, in, &req, &is_write, err, sizeof(err)) == 0) {
            /* What the client would send must pack. */
            size_t n = mayfly__api__request__get_packed_size(&req);
            uint8_t *out = malloc(n + 1);
            MF_ASSERT(out != NULL);
            mayfly__api__request__pack(&req, out);
            free(out);
        }
        mf_cli_arena_free(&arena);
        fclose(in);
    }
    MF_ASSERT(fchdir(g_cwd_fd) == 0);
    free(buf);
    return 0;
}

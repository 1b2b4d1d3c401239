/* Command-line parsing for mayfly: global flags, environment, command words.
 *
 * Flags may come before or after the command words, as -flag or --flag, with
 * the value as the next argument or after '='. Every flag is known in advance
 * (so "-prefix secret/" never swallows a positional by accident), and a
 * command refuses flags that are not its own. */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "common/config.h"
#include "common/err.h"

struct flag_def {
    const char *name;
    bool takes_value;
    bool global;
};

static const struct flag_def flag_defs[] = {
    {"addr", true, true},          {"token", true, true},
    {"ca-cert", true, true},       {"client-cert", true, true},
    {"client-key", true, true},    {"format", true, true},
    {"consistency", true, true},   {"timeout", true, true},
    {"help", false, true},         {"h", false, true},
    {"shares", true, false},       {"threshold", true, false},
    {"cas", true, false},          {"lease", true, false},
    {"version", true, false},      {"field", true, false},
    {"versions", true, false},     {"max-versions", true, false},
    {"cas-required", false, false}, {"ttl", true, false},
    {"max-ttl", true, false},       {"name", true, false},
    {"increment", true, false},     {"prefix", false, false},
    {"force", false, false},        {"state", true, false},
    {"limit", true, false},         {"after", true, false},
    {"policy", true, false},        {"orphan", false, false},
    {"accessor", false, false},     {"type", true, false},
    {"config", true, false},       {"no-default-policy", false, false},
    {"remote-addr", true, false},  {"claims", true, false},
    {"method", true, false},       {"mount", true, false},
    {"role", true, false},         {"jwt", true, false},
    {"init", false, false},        {"nonce", true, false},
    {"decode", true, false},       {"otp", true, false},
    {"cancel", false, false},
    {"path", true, false},
    {"cancel", false, false},      {"max-leases", true, false},
    {"rate", true, false},
    {"to", true, false},
    {"id", true, false},           {"api-addr", true, false},
    {"zone", true, false},
};

/* `operator members add -addr PEER_ADDR`: there -addr after the command
 * words is the new member's peer address, a command flag; the servers to
 * ask come from an -addr before them or MAYFLY_ADDR. Returns the index of
 * the word "add" of that command, or argc when it is another command. */
static int members_add_at(int argc, char **argv)
{
    static const char *const want[] = {"operator", "members", "add"};
    size_t seen = 0;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (arg[0] != '-' || arg[1] == '\0') {
            if (strcmp(arg, want[seen]) != 0)
                return argc;
            if (++seen == 3)
                return i;
            continue;
        }
        const char *name = arg + 1 + (arg[1] == '-');
        const char *eq = strchr(name, '=');
        size_t name_len = eq ? (size_t)(eq - name) : strlen(name);
        for (size_t k = 0; k < sizeof(flag_defs) / sizeof(flag_defs[0]); k++)
            if (strlen(flag_defs[k].name) == name_len &&
                strncmp(flag_defs[k].name, name, name_len) == 0 && flag_defs[k].takes_value &&
                !eq)
                i++;
    }
    return argc;
}

/* `-prefix` is a switch for `lease revoke` and takes a value for `quota`
 * (-prefix P, the quota's scope). The command is the first word that is not
 * a flag or a flag's value; -prefix counts as a switch while it is looked
 * for, so `quota set -prefix P NAME` works and so does -prefix=P anywhere. */
static bool quota_command(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (arg[0] != '-' || arg[1] == '\0')
            return strcmp(arg, "quota") == 0;
        const char *name = arg + 1 + (arg[1] == '-');
        const char *eq = strchr(name, '=');
        size_t name_len = eq ? (size_t)(eq - name) : strlen(name);
        for (size_t k = 0; k < sizeof(flag_defs) / sizeof(flag_defs[0]); k++)
            if (strlen(flag_defs[k].name) == name_len &&
                strncmp(flag_defs[k].name, name, name_len) == 0 && flag_defs[k].takes_value &&
                !eq)
                i++;
    }
    return false;
}

static const struct flag_def *find_flag(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof(flag_defs) / sizeof(flag_defs[0]); i++)
        if (strlen(flag_defs[i].name) == len && strncmp(flag_defs[i].name, name, len) == 0)
            return &flag_defs[i];
    return NULL;
}

static int set_global(struct mf_cli_globals *g, const char *name, const char *v, char *err,
                      size_t err_len)
{
    if (strcmp(name, "addr") == 0) {
        g->addr = v;
    } else if (strcmp(name, "token") == 0) {
        g->token = v;
    } else if (strcmp(name, "ca-cert") == 0) {
        g->ca_cert = v;
    } else if (strcmp(name, "client-cert") == 0) {
        g->client_cert = v;
    } else if (strcmp(name, "client-key") == 0) {
        g->client_key = v;
    } else if (strcmp(name, "format") == 0) {
        if (strcmp(v, "json") == 0)
            g->format = MF_CLI_FORMAT_JSON;
        else if (strcmp(v, "table") == 0)
            g->format = MF_CLI_FORMAT_TABLE;
        else
            return mf_err_set(err, err_len, MF_EINVAL, "-format must be table or json, not '%s'",
                              v);
    } else if (strcmp(name, "consistency") == 0) {
        if (strcmp(v, "stale") == 0)
            g->stale = true;
        else if (strcmp(v, "linearizable") == 0)
            g->stale = false;
        else
            return mf_err_set(err, err_len, MF_EINVAL,
                              "-consistency must be linearizable or stale, not '%s'", v);
    } else if (strcmp(name, "timeout") == 0) {
        if (mf_duration_parse_ms(v, &g->timeout_ms) || g->timeout_ms == 0)
            return mf_err_set(err, err_len, MF_EINVAL, "-timeout: '%s' is not a duration", v);
    }
    return 0;
}

/* Defaults from the environment; flags parsed later override them. */
static int load_env(struct mf_cli_globals *g, char *err, size_t err_len)
{
    static const struct {
        const char *env, *flag;
    } map[] = {
        {"MAYFLY_ADDR", "addr"},           {"MAYFLY_TOKEN", "token"},
        {"MAYFLY_CACERT", "ca-cert"},      {"MAYFLY_CLIENT_CERT", "client-cert"},
        {"MAYFLY_CLIENT_KEY", "client-key"}, {"MAYFLY_FORMAT", "format"},
        {"MAYFLY_CONSISTENCY", "consistency"},
    };
    memset(g, 0, sizeof(*g));
    g->timeout_ms = 10000;
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        const char *v = getenv(map[i].env);
        if (v && *v && strcmp(map[i].flag, "token") == 0)
            g->token_env = v;
        if (v && *v) {
            int rc = set_global(g, map[i].flag, v, err, err_len);
            if (rc)
                return mf_err_set(err, err_len, rc, "%s: %s", map[i].env, err);
        }
    }
    return 0;
}

const char *mf_cli_flag(const struct mf_cli_args *a, const char *name)
{
    const char *v = NULL;
    for (size_t i = 0; i < a->flags_len; i++)
        if (strcmp(a->flags[i].name, name) == 0)
            v = a->flags[i].value;
    return v;
}

bool mf_cli_flag_set(const struct mf_cli_args *a, const char *name)
{
    for (size_t i = 0; i < a->flags_len; i++)
        if (strcmp(a->flags[i].name, name) == 0)
            return true;
    return false;
}

/* Splits argv into flags and words; words go to `words`. */
static int split_argv(int argc, char **argv, struct mf_cli_args *out, const char **words,
                      size_t *words_len, char *err, size_t err_len)
{
    bool quota = quota_command(argc, argv);
    int add_at = members_add_at(argc, argv);
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (arg[0] != '-' || arg[1] == '\0') { /* "-" alone is a value (stdin) */
            if (*words_len == MF_CLI_WORDS_MAX)
                return mf_err_set(err, err_len, MF_EINVAL, "too many arguments");
            words[(*words_len)++] = arg;
            continue;
        }
        const char *name = arg + 1 + (arg[1] == '-');
        const char *eq = strchr(name, '=');
        size_t name_len = eq ? (size_t)(eq - name) : strlen(name);
        const struct flag_def *fd = find_flag(name, name_len);
        if (!fd)
            return mf_err_set(err, err_len, MF_EINVAL, "unknown flag '%s'", arg);
        const char *value = NULL;
        bool takes_value = fd->takes_value || (quota && strcmp(fd->name, "prefix") == 0);
        if (takes_value) {
            if (eq)
                value = eq + 1;
            else if (i + 1 < argc)
                value = argv[++i];
            else
                return mf_err_set(err, err_len, MF_EINVAL, "flag -%s needs a value", fd->name);
        } else if (eq) {
            return mf_err_set(err, err_len, MF_EINVAL, "flag -%s takes no value", fd->name);
        }
        bool peer_addr = i > add_at && strcmp(fd->name, "addr") == 0;
        if (fd->global && !peer_addr) {
            if (strcmp(fd->name, "help") == 0 || strcmp(fd->name, "h") == 0) {
                out->help = true;
                continue;
            }
            int rc = set_global(&out->g, fd->name, value, err, err_len);
            if (rc)
                return rc;
            if (strcmp(fd->name, "token") == 0)
                out->g.token_arg = value;
            continue;
        }
        if (out->flags_len == MF_CLI_FLAGS_MAX)
            return mf_err_set(err, err_len, MF_EINVAL, "too many flags");
        out->flags[out->flags_len].name = fd->name;
        out->flags[out->flags_len].value = value;
        out->flags_len++;
    }
    return 0;
}

int mf_cli_parse(int argc, char **argv, struct mf_cli_args *out, char *err, size_t err_len)
{
    memset(out, 0, sizeof(*out));
    int rc = load_env(&out->g, err, err_len);
    if (rc)
        return rc;
    const char *words[MF_CLI_WORDS_MAX];
    size_t words_len = 0;
    rc = split_argv(argc, argv, out, words, &words_len, err, err_len);
    if (rc)
        return rc;
    if (words_len == 0) {
        if (out->help)
            return 0;
        return mf_err_set(err, err_len, MF_EINVAL, "no command given (try: mayfly -help)");
    }
    size_t used = 0;
    out->cmd = mf_cli_command_find(words, words_len, &used);
    if (!out->cmd)
        return mf_err_set(err, err_len, MF_EINVAL, "unknown command '%s%s%s' (try: mayfly -help)",
                          words[0], words_len > 1 ? " " : "", words_len > 1 ? words[1] : "");
    for (size_t i = used; i < words_len; i++)
        out->pos[out->pos_len++] = words[i];
    if (out->help)
        return 0;
    return mf_cli_command_check(out, err, err_len);
}

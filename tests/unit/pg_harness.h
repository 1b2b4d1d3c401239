/* A throwaway PostgreSQL server for tests and benches (header only).
 *
 * mf_pg_harness_start() makes a temporary directory, runs initdb with
 * scram-sha-256 authentication (never `trust`: it would ignore passwords and
 * VALID UNTIL) and starts the server with pg_ctl -w on a free loopback port,
 * its socket in the temporary directory. PostgreSQL refuses to run as root:
 * when we are root, the directory is chowned to the `postgres` user and every
 * server command runs through `runuser -u postgres --`; otherwise they run as
 * we are.
 *
 * Teardown even on failure: mf_pg_harness_destroy() stops the server and
 * removes the directory. A watchdog child, forked at start, holds the read
 * end of a pipe whose write end only this process has: if the process dies
 * any way at all (a crash, ASan, SIGKILL), the pipe closes and the watchdog
 * stops the server (immediate mode) and removes the directory.
 *
 * The server binaries are found in $MF_PG_BINDIR, else the newest
 * /usr/lib/postgresql/(version)/bin.
 *
 * Ownership: struct mf_pg_harness is caller memory; everything it holds is
 * released by mf_pg_harness_destroy (safe to call twice or after a failed
 * start).
 */
#ifndef MF_TESTS_PG_HARNESS_H
#define MF_TESTS_PG_HARNESS_H

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <openssl/rand.h>

#include "tmpdir.h"

#define MF_PG_HARNESS_ADMIN "mfadmin" /* bootstrap superuser */

struct mf_pg_harness {
    char bindir[256];
    char dir[256];      /* temporary directory (socket, logs, data/) */
    char datadir[300];
    int port;
    char admin_password[33];
    bool as_postgres;   /* we are root: run server commands as `postgres` */
    uid_t uid;
    gid_t gid;
    bool durable;       /* fsync on (benches); tests turn it off for speed */
    bool running;
    pid_t watchdog;
    int watchdog_fd;    /* write end; closing it (or dying) fires the watchdog */
};

static inline int mf_pg_harness__bindir(struct mf_pg_harness *h)
{
    const char *env = getenv("MF_PG_BINDIR");
    if (env && *env) {
        snprintf(h->bindir, sizeof(h->bindir), "%s", env);
        return 0;
    }
    glob_t g;
    if (glob("/usr/lib/postgresql/*/bin/pg_ctl", 0, NULL, &g) != 0)
        return -1;
    /* Newest major version: compare numerically. */
    const char *best = NULL;
    long best_v = -1;
    for (size_t i = 0; i < g.gl_pathc; i++) {
        long v = strtol(g.gl_pathv[i] + strlen("/usr/lib/postgresql/"), NULL, 10);
        if (v > best_v)
            best_v = v, best = g.gl_pathv[i];
    }
    if (best)
        snprintf(h->bindir, sizeof(h->bindir), "%.*s", (int)(strlen(best) - strlen("/pg_ctl")),
                 best);
    globfree(&g);
    return best ? 0 : -1;
}

/* Run a server program (argv[0] is a name in bindir) as the server's user,
 * its output appended to dir/commands.log. Returns its exit status or -1. */
static inline int mf_pg_harness__run(struct mf_pg_harness *h, const char *const *argv)
{
    char prog[320], logpath[300];
    snprintf(prog, sizeof(prog), "%s/%s", h->bindir, argv[0]);
    snprintf(logpath, sizeof(logpath), "%s/commands.log", h->dir);
    const char *full[32];
    int n = 0;
    if (h->as_postgres) {
        full[n++] = "runuser";
        full[n++] = "-u";
        full[n++] = "postgres";
        full[n++] = "--";
    }
    full[n++] = prog;
    for (int i = 1; argv[i] && n < 31; i++)
        full[n++] = argv[i];
    full[n] = NULL;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        int null = open("/dev/null", O_RDONLY);
        if (null >= 0)
            dup2(null, 0);
        execvp(full[0], (char *const *)full);
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static inline int mf_pg_harness__free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int port = -1;
    if (bind(s, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(s, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(s);
    return port;
}

static inline int mf_pg_harness__write_conf(struct mf_pg_harness *h)
{
    char path[340];
    snprintf(path, sizeof(path), "%s/postgresql.conf", h->datadir);
    FILE *f = fopen(path, "a"); /* appended: ownership stays with postgres */
    if (!f)
        return -1;
    fprintf(f,
            "\n# mf_pg_harness\nport = %d\nlisten_addresses = '127.0.0.1'\n"
            "unix_socket_directories = '%s'\nmax_connections = 100\n",
            h->port, h->dir);
    if (!h->durable)
        fprintf(f, "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n");
    return fclose(f) == 0 ? 0 : -1;
}

static inline int mf_pg_harness__pg_ctl_start(struct mf_pg_harness *h)
{
    char logpath[300];
    snprintf(logpath, sizeof(logpath), "%s/server.log", h->dir);
    const char *argv[] = {"pg_ctl", "-D", h->datadir, "-l", logpath, "-w", "-t", "60",
                          "start",  NULL};
    int rc = mf_pg_harness__run(h, argv);
    h->running = rc == 0;
    return rc == 0 ? 0 : -1;
}

/* Start (again) a server that mf_pg_harness_stop stopped. 0 or -1. */
static inline int mf_pg_harness_restart(struct mf_pg_harness *h)
{
    return h->running ? 0 : mf_pg_harness__pg_ctl_start(h);
}

/* Stop the server (fast mode: sessions are terminated), keep its data. */
static inline int mf_pg_harness_stop(struct mf_pg_harness *h)
{
    if (!h->running)
        return 0;
    const char *argv[] = {"pg_ctl", "-D", h->datadir, "-m", "fast", "-w", "stop", NULL};
    int rc = mf_pg_harness__run(h, argv);
    if (rc == 0)
        h->running = false;
    return rc == 0 ? 0 : -1;
}

static inline void mf_pg_harness_destroy(struct mf_pg_harness *h)
{
    if (h->running) {
        const char *argv[] = {"pg_ctl", "-D", h->datadir, "-m", "immediate", "-w", "stop", NULL};
        mf_pg_harness__run(h, argv);
        h->running = false;
    }
    if (h->watchdog > 0) {
        /* One byte says "all is well, do nothing"; then we clean up. */
        if (write(h->watchdog_fd, "x", 1) != 1) {
            /* The watchdog then cleans up itself on EOF. */
        }
        close(h->watchdog_fd);
        while (waitpid(h->watchdog, NULL, 0) < 0 && errno == EINTR)
            ;
        h->watchdog = 0;
    }
    if (h->dir[0]) {
        (void)mf_tmpdir_remove(h->dir);
        h->dir[0] = 0;
    }
}

/* The watchdog: waits for a byte (normal teardown follows) or EOF (the test
 * process died: stop the server and remove the directory). */
static inline void mf_pg_harness__watchdog(struct mf_pg_harness *h, int rfd)
{
    char c;
    ssize_t n;
    while ((n = read(rfd, &c, 1)) < 0 && errno == EINTR)
        ;
    if (n == 1)
        _exit(0);
    const char *argv[] = {"pg_ctl", "-D", h->datadir, "-m", "immediate", "-w", "stop", NULL};
    mf_pg_harness__run(h, argv);
    (void)mf_tmpdir_remove(h->dir);
    _exit(0);
}

/* initdb + start. durable=false turns fsync off (tests). 0 or -1 (details in
 * dir/commands.log and dir/server.log, printed to stderr). */
static inline int mf_pg_harness_start(struct mf_pg_harness *h, bool durable)
{
    memset(h, 0, sizeof(*h));
    h->durable = durable;
    h->watchdog_fd = -1;
    if (mf_pg_harness__bindir(h) != 0) {
        fprintf(stderr, "pg_harness: no PostgreSQL server binaries (set MF_PG_BINDIR)\n");
        return -1;
    }
    unsigned char r[16];
    if (RAND_bytes(r, sizeof(r)) != 1)
        return -1;
    for (size_t i = 0; i < sizeof(r); i++)
        snprintf(h->admin_password + 2 * i, 3, "%02x", r[i]);
    if (mf_tmpdir_make("pg", h->dir, sizeof(h->dir)) < 0) {
        h->dir[0] = 0;
        return -1;
    }
    snprintf(h->datadir, sizeof(h->datadir), "%s/data", h->dir);
    h->uid = getuid();
    h->gid = getgid();
    if (geteuid() == 0) {
        struct passwd *pw = getpwnam("postgres");
        if (!pw) {
            fprintf(stderr, "pg_harness: running as root and there is no `postgres` user\n");
            goto fail;
        }
        h->as_postgres = true;
        h->uid = pw->pw_uid;
        h->gid = pw->pw_gid;
        if (chown(h->dir, h->uid, h->gid) != 0)
            goto fail;
    }
    /* The watchdog first, so even a failed initdb is cleaned up. */
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        goto fail;
    h->watchdog = fork();
    if (h->watchdog < 0) {
        close(p[0]);
        close(p[1]);
        h->watchdog = 0;
        goto fail;
    }
    if (h->watchdog == 0) {
        close(p[1]);
        mf_pg_harness__watchdog(h, p[0]);
    }
    close(p[0]);
    h->watchdog_fd = p[1];

    char pwfile[300];
    snprintf(pwfile, sizeof(pwfile), "%s/pwfile", h->dir);
    int fd = open(pwfile, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0)
        goto fail;
    bool ok = write(fd, h->admin_password, strlen(h->admin_password)) ==
                  (ssize_t)strlen(h->admin_password) &&
              write(fd, "\n", 1) == 1;
    ok = fchown(fd, h->uid, h->gid) == 0 && ok;
    close(fd);
    if (!ok)
        goto fail;
    char pwopt[320];
    snprintf(pwopt, sizeof(pwopt), "--pwfile=%s", pwfile);
    const char *initdb[] = {"initdb", "-D", h->datadir, "-U", MF_PG_HARNESS_ADMIN,
                            "--auth=scram-sha-256", pwopt, "-N", "-E", "UTF8", "--locale=C",
                            NULL};
    int rc = mf_pg_harness__run(h, initdb);
    unlink(pwfile);
    if (rc != 0) {
        fprintf(stderr, "pg_harness: initdb failed (%d), see %s/commands.log\n", rc, h->dir);
        goto fail;
    }
    for (int attempt = 0; attempt < 5; attempt++) {
        h->port = mf_pg_harness__free_port();
        if (h->port <= 0 || mf_pg_harness__write_conf(h) != 0)
            goto fail;
        if (mf_pg_harness__pg_ctl_start(h) == 0)
            return 0;
        /* Port taken meanwhile? The last port line wins: try another. */
    }
    fprintf(stderr, "pg_harness: pg_ctl start failed, see %s/server.log\n", h->dir);
fail:
    mf_pg_harness_destroy(h);
    return -1;
}

/* A new connection (check PQstatus; PQfinish it). dbname NULL = "postgres". */
static inline PGconn *mf_pg_harness_connect(const struct mf_pg_harness *h, const char *user,
                                            const char *password, const char *dbname)
{
    char port[16];
    snprintf(port, sizeof(port), "%d", h->port);
    const char *k[] = {"host", "port", "user", "password", "dbname", "connect_timeout", NULL};
    const char *v[] = {"127.0.0.1", port, user, password, dbname ? dbname : "postgres", "5",
                       NULL};
    return PQconnectdbParams(k, v, 0);
}

/* Run sql as the admin on dbname (NULL = "postgres"). 0 or -1 (printed). */
static inline int mf_pg_harness_exec(const struct mf_pg_harness *h, const char *dbname,
                                     const char *sql)
{
    PGconn *c = mf_pg_harness_connect(h, MF_PG_HARNESS_ADMIN, h->admin_password, dbname);
    int rc = -1;
    if (PQstatus(c) == CONNECTION_OK) {
        PGresult *r = PQexec(c, sql);
        ExecStatusType st = PQresultStatus(r);
        rc = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? 0 : -1;
        if (rc)
            fprintf(stderr, "pg_harness: %.120s%s: %s", sql, strlen(sql) > 120 ? "..." : "",
                    PQresultErrorMessage(r));
        PQclear(r);
    } else {
        fprintf(stderr, "pg_harness: connect: %s", PQerrorMessage(c));
    }
    PQfinish(c);
    return rc;
}

/* The engine config for the admin (or another user), into buf. */
static inline void mf_pg_harness_config(const struct mf_pg_harness *h, const char *user,
                                        const char *password, char *buf, size_t len)
{
    snprintf(buf, len,
             "{\"host\": \"127.0.0.1\", \"port\": %d, \"dbname\": \"postgres\", "
             "\"username\": \"%s\", \"password\": \"%s\", \"connect_timeout_s\": 5}",
             h->port, user ? user : MF_PG_HARNESS_ADMIN, password ? password : h->admin_password);
}

#endif

"""A throwaway PostgreSQL server for integration tests (Python twin of
tests/unit/pg_harness.h): initdb with scram-sha-256 (never trust: it would
ignore passwords and VALID UNTIL), pg_ctl on a free loopback port, run as the
postgres user when we are root (PostgreSQL refuses root)."""
import glob
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile

from tests.harness.cluster import free_port


def bindir():
    env = os.environ.get("MF_PG_BINDIR")
    if env:
        return env
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
                   key=lambda p: int(p.split("/")[4]))
    return os.path.dirname(found[-1]) if found else None


class Postgres:
    ADMIN = "mfadmin"

    def __init__(self):
        self.bin = bindir()
        self.dir = tempfile.mkdtemp(prefix="mf-it-pg-")
        self.data = os.path.join(self.dir, "data")
        self.port = free_port()
        self.password = secrets.token_hex(16)
        self.as_postgres = os.geteuid() == 0
        if self.as_postgres:
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        pwfile = os.path.join(self.dir, "pw")
        with open(pwfile, "w") as f:
            f.write(self.password + "\n")
        if self.as_postgres:
            os.chown(pwfile, pwd.getpwnam("postgres").pw_uid, -1)
        self.run("initdb", "-D", self.data, "-U", self.ADMIN, "--auth=scram-sha-256",
                 "--pwfile=" + pwfile, "-E", "UTF8")
        os.unlink(pwfile)
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write("\nport = %d\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '%s'\n"
                    "max_connections = 200\nfsync = off\nsynchronous_commit = off\n"
                    % (self.port, self.dir))
        self.start()

    def run(self, tool, *args):
        cmd = [os.path.join(self.bin, tool)] + list(args)
        if self.as_postgres:
            cmd = ["runuser", "-u", "postgres", "--"] + cmd
        p = subprocess.run(cmd, capture_output=True, text=True, cwd="/")
        if p.returncode != 0:
            raise RuntimeError("%s failed: %s" % (tool, p.stdout + p.stderr))

    def start(self):
        self.run("pg_ctl", "-D", self.data, "-l", os.path.join(self.dir, "server.log"), "-w",
                 "-t", "60", "start")

    def stop(self):
        self.run("pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop")

    def destroy(self):
        try:
            self.run("pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")
        except RuntimeError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)

    def config(self):
        return {"host": "127.0.0.1", "port": self.port, "dbname": "postgres",
                "username": self.ADMIN, "password": self.password}

    def psql(self, user, password, sql, timeout=10):
        """(exit code, output) of psql as user over TCP with a password."""
        env = dict(os.environ, PGPASSWORD=password, PGCONNECT_TIMEOUT="5")
        p = subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", user,
                            "-d", "postgres", "-tAc", sql], env=env, capture_output=True,
                           text=True, timeout=timeout)
        return p.returncode, (p.stdout + p.stderr).strip()

    def admin(self, sql):
        rc, out = self.psql(self.ADMIN, self.password, sql)
        if rc != 0:
            raise RuntimeError(out)
        return out

    def session(self, user, password, seconds=60):
        """A long-lived session of user (a background psql)."""
        env = dict(os.environ, PGPASSWORD=password)
        return subprocess.Popen(["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", user,
                                 "-d", "postgres", "-tAc", "select pg_sleep(%d)" % seconds],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)


ROLE = {
    "creation_statements": [
        "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'"],
    "default_ttl_ms": 3000,
    "max_ttl_ms": 60000,
}

"""PostgreSQL revocations per second through the cluster (issue 6's target:
at least 5,000/s sustained), on a real 3-node cluster and a real PostgreSQL.

  python3 -m bench.pg_revoke [--creds 20000] [--clients 64] [--expire [--expire-in S]]

Issues --creds credentials of one postgres role (a real CREATE ROLE each)
with mayfly-bench and checks that PostgreSQL has that many mayfly roles.
Then, by default, revokes them all at once with `mayfly lease revoke -prefix`
(one Raft command moves them to revoking); with --expire they were all
issued to expire at the same instant (--expire-in seconds after the start),
so the scheduler's expiry path (LeaseExpire, 1,000 per command) starts the
storm. Either way it times the drain: the leader's
scheduler sends them to the engine in batches (one call of up to 1,000 in
flight per mount: NOLOGIN, terminate sessions, DROP ROLE) and commits each
batch revoked. The clock stops when the replicated state has no lease left
in revoking and all are revoked (the leader's mayfly_leases gauges); then
PostgreSQL must have no mayfly role left. Prints the rate, and the leases handed to
the engine (more than --creds means repeated engine calls)."""
import argparse
import json
import os
import subprocess
import sys
import time

from tests.harness.cluster import BUILD, Cluster, wait_for
from tests.harness.pg import ROLE, Postgres

BENCH = os.path.join(BUILD, "bench", "mayfly-bench")
COUNT_ROLES = r"select count(*) from pg_roles where rolname like 'mf\_%'"


def gauge(node, name):
    v = node.metric(name)
    return int(v) if v is not None else None


def lateness(node):
    """p50/p99 (upper bucket bounds) and max of the leader's lateness histogram."""
    _, body = node.http_get("/metrics")
    buckets, total, mx = [], 0, None
    for line in body.splitlines():
        if line.startswith('mayfly_revocation_lateness_ms_bucket{le="'):
            le = line.split('"')[1]
            if le == "+Inf":
                total = float(line.split()[1])
            else:
                buckets.append((int(le), float(line.split()[1])))
        elif line.startswith("mayfly_revocation_lateness_max_ms "):
            mx = line.split()[1]

    def q(frac):
        for le, cum in buckets:
            if total and cum >= frac * total:
                return "<=%d ms" % le
        return ">%d ms" % buckets[-1][0]
    return "p50 %s, p99 %s, max %s ms (%d samples)" % (q(0.5), q(0.99), mx, total)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--creds", type=int, default=20000)
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--expire", action="store_true",
                    help="let them all expire at one instant instead of revoke -prefix")
    ap.add_argument("--expire-in", type=float, default=0,
                    help="seconds from the start to that instant (default: creds/150 + 20)")
    a = ap.parse_args()
    pg = Postgres()
    c = None
    try:
        c = Cluster(3).start()
        c.init()
        c.wait_unsealed()
        rc, out = c.cli("engine", "enable", "-type", "postgres", "-config",
                        json.dumps(pg.config()), "db")
        if rc:
            raise SystemExit("engine enable: %s" % out)
        role = dict(ROLE, default_ttl_ms=3600000, max_ttl_ms=7200000)
        rc, out = c.cli("engine", "role", "put", "db", "app", json.dumps(role))
        if rc:
            raise SystemExit("role put: %s" % out)
        env = c.client_env()
        t0 = time.time()
        expire_at = int((t0 + (a.expire_in or a.creds / 150 + 20)) * 1000)
        lifetime = ["-expire-at", str(expire_at)] if a.expire else ["-ttl", "1h"]
        p = subprocess.run([BENCH, "-workload", "creds", "-path", "db/app", "-total",
                            str(a.creds), "-clients", str(a.clients), "-conns", "8"] + lifetime,
                           env=env, capture_output=True, text=True)
        print("issue:  %s (%.1f s)" % (p.stdout.strip(), time.time() - t0))
        if p.returncode:
            raise SystemExit("mayfly-bench failed: " + p.stderr)
        roles = int(pg.admin(COUNT_ROLES))
        print("PostgreSQL roles with mayfly's prefix: %d" % roles)
        if roles != a.creds:
            raise SystemExit("expected %d roles" % a.creds)
        leader = c.leader()
        calls0 = gauge(leader, "mayfly_engine_revoke_leases_total") or 0
        if a.expire:
            if time.time() * 1000 > expire_at - 1000:
                raise SystemExit("issuing ran past the expiry instant: raise --expire-in")
            time.sleep(expire_at / 1000 - time.time())  # the instant they all fall due
            start = expire_at / 1000
        else:
            start = time.time()
            rc, out = c.cli("lease", "revoke", "-prefix", "db/app/", timeout="60s")
            if rc or out.get("revoked") != a.creds:
                raise SystemExit("revoke -prefix: %s" % out)
        # Polling the leader's gauge: revocation has no event a client can await.
        # (The gauges are published every 100 ms: the drain is timed to that.)
        wait_for(lambda: gauge(leader, 'mayfly_leases{state="revoked"}') == a.creds and
                 gauge(leader, 'mayfly_leases{state="revoking"}') == 0, 600, "revoking drained")
        drained = time.time() - start
        left = int(pg.admin(COUNT_ROLES))
        calls = (gauge(leader, "mayfly_engine_revoke_leases_total") or 0) - calls0
        print("revoked %d PostgreSQL roles in %.2f s through the cluster (%s): "
              "%.0f revocations/s" % (a.creds, drained, "all expired at one instant" if a.expire
                                      else "revoke -prefix", a.creds / drained))
        if a.expire:
            print("lateness (leader-measured, expire_at to the applied revocation): %s" %
                  lateness(leader))
        print("roles left in PostgreSQL: %d; leases handed to the engine: %d (%d repeats); "
              "revoked leases in the state: %s" %
              (left, calls, calls - a.creds, gauge(leader, 'mayfly_leases{state="revoked"}')))
        return 1 if left else 0
    finally:
        if c:
            c.cleanup()
        pg.destroy()


if __name__ == "__main__":
    sys.exit(main())

"""Revocation lateness, steady state and across a leader kill (DESIGN.md
guarantee 3), on a real 3-node cluster on loopback.

  python3 -m bench.lateness [--background N] [--due 1000] [--kill]

Grants N bare background leases that are not due (1 h TTL: they sit in the
expiry index, to show that failover time does not grow with the number of
leases), then --due leases that expire a few seconds later; with --kill the
leader is killed (SIGKILL) just before they are due. Prints lateness
p50/p99/max as the client sees it (polling lease state, so +~50 ms) and as
the new leader's scheduler measured it (its /metrics histogram), and the time
from the kill until the first revocation by the new leader."""
import argparse
import os
import signal
import subprocess
import sys
import time

from tests.harness.cluster import BUILD, Cluster

BENCH = os.path.join(BUILD, "bench", "mayfly-bench")


def now_ms():
    return int(time.time() * 1000)


def grant(c, env, total, ttl, name, clients=64, conns=8, workload="grant"):
    p = subprocess.run([BENCH, "-workload", workload, "-total", str(total), "-ttl", ttl,
                        "-name", name, "-clients", str(clients), "-conns", str(conns)], env=env,
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit("mayfly-bench failed: " + p.stdout + p.stderr)
    return p.stdout.strip()


def pct(sorted_vals, q):
    return sorted_vals[min(len(sorted_vals) - 1, int(len(sorted_vals) * q))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--background", type=int, default=1000)
    ap.add_argument("--due", type=int, default=1000)
    ap.add_argument("--kill", action="store_true")
    a = ap.parse_args()
    c = Cluster(3).start()
    try:
        c.init()
        c.wait_unsealed()
        env = c.client_env()
        t0 = time.time()
        print("background:", grant(c, env, a.background, "1h", "background", clients=256, conns=16,
                                       workload="lease"),
              "(%.1f s)" % (time.time() - t0))
        start = now_ms()
        print("due:       ", grant(c, env, a.due, "6s", "due"))
        leader = c.leader()
        killed_at = None
        if a.kill:
            # Kill just before the first ones are due.
            first_due = start + 6000
            time.sleep(max(0, (first_due - 300 - now_ms()) / 1000))
            killed_at = now_ms()
            leader.kill(signal.SIGKILL)
        live = [n for n in c.nodes if n.alive()]
        new = c.leader(among=live)
        elected_at = now_ms()
        # Client view: poll until every due lease is revoked.
        revoked_at = {}
        expire = {}
        deadline = now_ms() + 120000
        while now_ms() < deadline:
            rc, out = c.cli("lease", "list", "-limit", "10000", "-consistency", "stale",
                            "lease/due/", addr=new.api_addr, timeout="10s")
            t = now_ms()
            for l in out.get("leases", []):
                expire[l["lease_id"]] = l["expire_at_ms"]
                if l["state"] == "revoked" and l["lease_id"] not in revoked_at:
                    revoked_at[l["lease_id"]] = t
            if expire and len(revoked_at) == len(expire):
                break
            time.sleep(0.05)
        late = sorted(revoked_at[k] - expire[k] for k in revoked_at)
        left = len(expire) - len(revoked_at)
        print("leases due: %d, revoked: %d, left behind: %d" % (len(expire), len(revoked_at), left))
        if late:
            print("client-observed lateness ms: p50=%d p99=%d max=%d" %
                  (pct(late, 0.5), pct(late, 0.99), late[-1]))
        _, body = new.http_get("/metrics")
        buckets = []
        for line in body.splitlines():
            if line.startswith("mayfly_revocation_lateness_ms_bucket{le=\"") and "+Inf" not in line:
                le = int(line.split('"')[1])
                buckets.append((le, float(line.split()[1])))
        total = buckets[-1][1] if buckets else 0

        def hq(q):  # upper bound of the bucket holding quantile q
            for le, cum in buckets:
                if total and cum >= q * total:
                    return "<=%d" % le
            return ">%d" % buckets[-1][0] if buckets else "n/a"
        print("leader-measured lateness ms (histogram): p50 %s, p99 %s" % (hq(0.5), hq(0.99)))
        m = {k: new.metric(k) for k in ("mayfly_revocation_lateness_ms_count",
                                         "mayfly_revocation_lateness_ms_sum",
                                         "mayfly_revocation_lateness_max_ms",
                                         "mayfly_leases_revoked_total")}
        print("leader-measured (node %d): revoked=%s mean=%.1f ms max=%s ms" %
              (new.id, m["mayfly_leases_revoked_total"],
               (m["mayfly_revocation_lateness_ms_sum"] or 0) /
               max(1, m["mayfly_revocation_lateness_ms_count"] or 1),
               m["mayfly_revocation_lateness_max_ms"]))
        if killed_at:
            first = min(revoked_at.values()) if revoked_at else None
            print("kill -> new leader known: %d ms; kill -> first revocation seen: %s ms" %
                  (elected_at - killed_at, first - killed_at if first else "n/a"))
        return 1 if left else 0
    finally:
        c.cleanup()


if __name__ == "__main__":
    sys.exit(main())

"""A revocation storm does not stall the cluster (issue 6): N leases with
bound KV entries fall due at one instant on a 3-node cluster while clients
keep writing; prints how long the storm took to drain and the write latency
before and during it.

  python3 -m bench.storm [--leases 100000] [--puts 20000]

The leases are granted with mayfly-bench -expire-at (a TTL computed per
grant, so all expire together). A put workload runs once before the storm
(baseline) and once starting as the leases fall due; the drain is timed from
the instant until the leader's mayfly_leases{state="revoked"} gauge reaches
N (gauges are published every 100 ms)."""
import argparse
import os
import re
import subprocess
import sys
import threading
import time

from tests.harness.cluster import BUILD, Cluster, wait_for

BENCH = os.path.join(BUILD, "bench", "mayfly-bench")


def bench(env, *args):
    p = subprocess.run([BENCH] + list(args), env=env, capture_output=True, text=True)
    if p.returncode:
        raise SystemExit("mayfly-bench failed: " + p.stdout + p.stderr)
    return p.stdout.strip()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--leases", type=int, default=100000)
    ap.add_argument("--puts", type=int, default=20000)
    a = ap.parse_args()
    c = Cluster(3).start()
    try:
        c.init()
        c.wait_unsealed()
        env = c.client_env()
        put = ["-workload", "put", "-total", str(a.puts), "-clients", "16", "-conns", "4"]
        print("baseline:     ", bench(env, *put))
        # Grants run near 2,000/s with their bound KV put: leave room.
        due = time.time() + a.leases / 1000 + 15
        t0 = time.time()
        print("grant:        ", bench(env, "-workload", "grant", "-total", str(a.leases),
                                      "-expire-at", str(int(due * 1000)), "-name", "storm",
                                      "-clients", "256", "-conns", "16"),
              "(%.1f s)" % (time.time() - t0))
        if time.time() > due - 1:
            raise SystemExit("granting ran past the instant: fewer --leases")
        leader = c.leader()
        time.sleep(due - time.time())  # the instant they all fall due
        during = {}
        t = threading.Thread(target=lambda: during.update(out=bench(env, *put)))
        t.start()
        wait_for(lambda: (leader.metric('mayfly_leases{state="revoked"}') or 0) >= a.leases,
                 600, "storm drained")
        drained = time.time() - due
        t.join()
        print("during storm: ", during["out"])
        print("%d leases (each with a bound KV entry) fell due at once: all revoked %.2f s "
              "later (%.0f/s); leader-measured max lateness %s ms" %
              (a.leases, drained, a.leases / drained,
               leader.metric("mayfly_revocation_lateness_max_ms")))
        m = re.search(r"p99_ms=([\d.]+)", during["out"])
        return 0 if m else 1
    finally:
        c.cleanup()


if __name__ == "__main__":
    sys.exit(main())

"""Smoke run of mayfly-bench (the load generator of CLI.md) against a real
3-node cluster: every workload completes without errors and prints the line
scripts compare. Figures come from full runs (README), never from this test."""
import os
import re
import subprocess
import sys
import unittest

from tests.harness.cluster import BUILD, Cluster
from tests.harness.pg import bindir

BENCH = os.path.join(BUILD, "bench", "mayfly-bench")
LINE = re.compile(r"^mayfly (\S+) clients=(\d+) total=(\d+) errors=(\d+) ops/s=(\d+) "
                  r"p50_ms=([\d.]+) p99_ms=([\d.]+)")


@unittest.skipUnless(os.path.exists(BENCH), "mayfly-bench not built")
class BenchSmoke(unittest.TestCase):
    def test_every_workload_runs_clean(self):
        """put, get-l, get-s, grant and a small revoke storm: errors=0, well-formed line."""
        c = Cluster(3).start()
        self.addCleanup(c.cleanup)
        c.init()
        c.wait_unsealed()
        env = c.client_env()
        for workload, extra in (("put", []), ("get-l", []), ("get-s", []), ("grant", []),
                                ("revoke-storm", ["-ttl", "1s"]), ("lease", [])):
            p = subprocess.run([BENCH, "-workload", workload, "-total", "300", "-clients", "16",
                                "-conns", "4"] + extra, env=env, capture_output=True, text=True,
                               timeout=120)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            m = LINE.match(p.stdout)
            self.assertIsNotNone(m, p.stdout)
            self.assertEqual((m.group(1), m.group(3), m.group(4)), (workload, "300", "0"))
            self.assertGreater(int(m.group(5)), 0)
            if workload == "revoke-storm":
                self.assertIn("remaining=0", p.stdout)


REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def run_script(name, *args):
    """Runs bench/<name>.py the documented way: python3 -m bench.<name> from the root."""
    p = subprocess.run([sys.executable, "-m", "bench." + name] + list(args), cwd=REPO,
                       capture_output=True, text=True, timeout=600)
    return p.returncode, p.stdout + p.stderr


@unittest.skipUnless(os.path.exists(BENCH), "mayfly-bench not built")
class BenchScriptsSmoke(unittest.TestCase):
    """The bench scripts (README's long runs) at a small size: they still run
    and find nothing left behind. Their figures come from full runs only."""

    def test_lateness_across_a_leader_kill(self):
        rc, out = run_script("lateness", "--background", "500", "--due", "200", "--kill")
        self.assertEqual(rc, 0, out)
        self.assertIn("leases due: 200, revoked: 200, left behind: 0", out)
        self.assertRegex(out, r"kill -> first revocation seen: \d+ ms")

    def test_storm(self):
        rc, out = run_script("storm", "--leases", "2000", "--puts", "500")
        self.assertEqual(rc, 0, out)
        self.assertRegex(out, r"2000 leases .* all revoked [\d.]+ s later")

    @unittest.skipUnless(bindir(), "needs Debian's postgresql package")
    def test_pg_revoke_both_ways(self):
        for extra in ([], ["--expire", "--expire-in", "15"]):
            rc, out = run_script("pg_revoke", "--creds", "150", "--clients", "8", *extra)
            self.assertEqual(rc, 0, out)
            self.assertIn("roles left in PostgreSQL: 0", out)


if __name__ == "__main__":
    unittest.main()

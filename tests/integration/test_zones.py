"""deploy/zones.sh end to end: 5 nodes in 3 zones (2/2/1) in network
namespaces, 1 ms inside a zone and 20 +- 5 ms across (one way). Writes through
the CLI, prints their latency, cuts the leader's whole zone off, checks the
cluster keeps taking writes, heals it, checks the cut nodes catch up, and
tears everything down. Root only (ip netns, veth, iptables/tc): skipped with
the reason otherwise.

    MF_BINARY_DIR=build python3 -m unittest -v tests.integration.test_zones
"""
import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest

from tests.harness.cluster import BUILD, MAYFLY, MAYFLYD, wait_for

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ZONES_SH = os.path.join(ROOT, "deploy", "zones.sh")
ZONE_OF = {1: "a", 2: "b", 3: "c", 4: "a", 5: "b"}
CROSS_MS, JITTER_MS = 20, 5


def node_addr(i):
    return "10.93.%d.2:8270" % i


def skip_reason():
    if os.geteuid() != 0:
        return "needs root (network namespaces, veth pairs, iptables or tc)"
    for tool in ("ip", "tc"):
        if not shutil.which(tool):
            return "needs `%s` (iproute2)" % tool
    if not shutil.which("iptables"):
        return "needs iptables (the NFQUEUE latency fallback where the kernel has no netem)"
    if not (os.access(MAYFLYD, os.X_OK) and os.access(MAYFLY, os.X_OK)):
        return "build mayflyd and mayfly first (%s)" % BUILD
    p = subprocess.run(["ip", "netns", "add", "mfz-probe-%d" % os.getpid()], capture_output=True)
    if p.returncode:
        return "cannot make a network namespace: %s" % p.stderr.decode().strip()
    subprocess.run(["ip", "netns", "del", "mfz-probe-%d" % os.getpid()], capture_output=True)
    return None


@unittest.skipIf(skip_reason(), skip_reason())
class ZonesTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="mayfly-zones-")
        self.prefix = "mfz%d" % (os.getpid() % 100000)
        self.env = dict(os.environ, MAYFLY_BIN=os.path.abspath(BUILD),
                        MF_ZONES_PREFIX=self.prefix, MF_ZONES_CROSS_MS=str(CROSS_MS),
                        MF_ZONES_JITTER_MS=str(JITTER_MS), MF_ZONES_INTRA_MS="1")
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)
        self.addCleanup(self.zones, "stop", self.dir)  # runs even after a failed start
        self.token = None

    def zones(self, *args, timeout=120):
        p = subprocess.run([ZONES_SH] + list(args), env=self.env, capture_output=True,
                           text=True, timeout=timeout)
        return p

    def cli(self, *args, addrs=None, token=True, timeout="5s"):
        env = dict(os.environ, MAYFLY_CACERT=os.path.join(self.dir, "certs", "ca.pem"),
                   MAYFLY_FORMAT="json",
                   MAYFLY_ADDR=",".join(node_addr(i) for i in (addrs or range(1, 6))))
        env.pop("MAYFLY_TOKEN", None)
        if token and self.token:
            env["MAYFLY_TOKEN"] = self.token
        p = subprocess.run(["ip", "netns", "exec", self.prefix + "-cli", MAYFLY,
                            "-timeout", timeout] + list(args),
                           env=env, capture_output=True, text=True, timeout=60)
        try:
            out = json.loads(p.stdout) if p.stdout.strip() else {}
        except ValueError:
            out = {"raw": p.stdout, "stderr": p.stderr}
        return p.returncode, out

    def leader_of(self, addrs):
        def find():
            rc, st = self.cli("status", addrs=addrs, timeout="2s")
            lid = st.get("leader_id") if rc == 0 else None
            return lid if lid in addrs else None
        return wait_for(find, 30, "a leader among nodes %s" % addrs)

    def timed_puts(self, addrs, n, key):
        lat = []
        for k in range(n):
            t = time.monotonic()
            rc, out = self.cli("kv", "put", "secret/%s-%d" % (key, k), "v=%d" % k, addrs=addrs)
            lat.append((time.monotonic() - t) * 1000)
            self.assertEqual(rc, 0, out)
        lat.sort()
        return lat[len(lat) // 2], lat[min(len(lat) - 1, int(len(lat) * 0.99))]

    def test_zones_latency_and_zone_loss(self):
        t0 = time.monotonic()
        p = self.zones("start", self.dir)
        self.assertEqual(p.returncode, 0, "zones.sh start failed:\n%s\n%s" % (p.stdout, p.stderr))
        with open(os.path.join(self.dir, "init.json")) as f:
            self.token = json.load(f)["root_token"]
        self.assertEqual(os.stat(os.path.join(self.dir, "init.json")).st_mode & 0o777, 0o600)
        with open(os.path.join(self.dir, "delay-mode")) as f:
            mode = f.read().strip()
        print("\nzones: started in %.1f s, latency by %s" % (time.monotonic() - t0, mode))

        # Deny by default: no token, no write.
        rc, out = self.cli("kv", "put", "secret/nobody", "v=1", token=False)
        self.assertEqual(rc, 2, out)
        self.assertEqual(out["error"]["code"], "UNAUTHENTICATED", out)

        # Every node is unsealed and knows its zone.
        for i in range(1, 6):
            rc, st = self.cli("status", addrs=[i])
            self.assertEqual(rc, 0, st)
            self.assertIs(st["sealed"], False, st)
            zones = {m["id"]: m.get("zone") for m in st["members"]}
            self.assertEqual(zones, ZONE_OF, st)

        # Write latency on the leader (client next to it: one cross-zone round
        # trip for the quorum, since no zone holds 3 of the 5 voters).
        leader = self.leader_of(list(range(1, 6)))
        p50, p99 = self.timed_puts([leader], 30, "lat")
        print("zones: CLI write latency through the leader (node %d, zone %s), %d ms +- %d "
              "between zones: p50 %.1f ms, p99 %.1f ms (process start and TLS included)"
              % (leader, ZONE_OF[leader], CROSS_MS, JITTER_MS, p50, p99))
        self.assertGreaterEqual(p50, 2 * (CROSS_MS - JITTER_MS),
                                "a commit needs a cross-zone round trip: was latency applied?")

        # Cut the leader's whole zone; the other two zones keep a majority.
        cut = ZONE_OF[leader]
        survivors = [i for i in range(1, 6) if ZONE_OF[i] != cut]
        p = self.zones("cut", cut, self.dir)
        self.assertEqual(p.returncode, 0, p.stderr)
        t_cut = time.monotonic()

        def first_write():
            rc, _ = self.cli("kv", "put", "secret/after-cut", "v=1", addrs=survivors,
                             timeout="3s")
            return rc == 0
        wait_for(first_write, 60, "a write acknowledged with zone %s cut" % cut)
        print("zones: zone %s (nodes %s) cut; first write acknowledged %.1f s later"
              % (cut, [i for i in ZONE_OF if ZONE_OF[i] == cut], time.monotonic() - t_cut))
        new_leader = self.leader_of(survivors)
        self.assertNotEqual(ZONE_OF[new_leader], cut)
        p50, p99 = self.timed_puts(survivors, 10, "cut")
        print("zones: writes with zone %s cut: p50 %.1f ms, p99 %.1f ms" % (cut, p50, p99))
        rc, out = self.cli("kv", "get", "secret/cut-9", addrs=survivors)
        self.assertEqual(rc, 0, out)
        self.assertEqual(out["data"], {"v": "9"})

        # Heal: the cut nodes come back and catch up.
        p = self.zones("heal", cut, self.dir)
        self.assertEqual(p.returncode, 0, p.stderr)
        for i in (i for i in range(1, 6) if ZONE_OF[i] == cut):
            def caught_up(i=i):
                rc, out = self.cli("kv", "get", "-consistency", "stale", "secret/cut-9",
                                   addrs=[i], timeout="2s")
                return rc == 0 and out.get("data") == {"v": "9"}
            wait_for(caught_up, 60, "node %d caught up after the heal" % i)

        # Tear down: no namespace of ours is left.
        p = self.zones("stop", self.dir)
        self.assertEqual(p.returncode, 0, p.stderr)
        left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        self.assertNotIn(self.prefix + "-", left)
        print("zones: whole test %.1f s" % (time.monotonic() - t0))


if __name__ == "__main__":
    unittest.main()

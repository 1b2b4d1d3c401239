"""Guarantee 4 (no expired read) on a follower cut off from the leader.

The follower is partitioned for real with iptables: every TCP segment to or
from its peer port is dropped, so it hears nobody (an asymmetric partition:
its own dials still go out, and pre-vote keeps them harmless). It then serves
a secret bound to a 2 s lease in stale reads until expire_at - skew - 100 ms
and refuses it with LEASE_EXPIRED from expire_at - skew on. With its clock
300 ms behind (libfaketime), it still refuses from the true expire_at on."""
import os
import shutil
import subprocess
import time
import unittest

from tests.harness.cluster import Cluster, wait_for

SKEW_MS = 500
FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"


def iptables_usable():
    return shutil.which("iptables") and subprocess.run(
        ["iptables", "-L", "-n"], capture_output=True).returncode == 0


class Partition:
    """Drops all TCP to and from one port on loopback, undone on exit."""

    def __init__(self, port):
        self.rules = [["OUTPUT", "-p", "tcp", "--dport", str(port), "-j", "DROP"],
                      ["OUTPUT", "-p", "tcp", "--sport", str(port), "-j", "DROP"]]

    def __enter__(self):
        for r in self.rules:
            subprocess.run(["iptables", "-I"] + r, check=True)
        return self

    def __exit__(self, *exc):
        for r in self.rules:
            subprocess.run(["iptables", "-D"] + r, check=False)


def now_ms():
    return int(time.time() * 1000)


@unittest.skipUnless(iptables_usable(), "needs root and iptables to partition loopback ports")
class ExpiredReads(unittest.TestCase):
    def run_partitioned(self, follower_wrapper=(), follower_env=None):
        c = Cluster(3, extra_config={"max_clock_skew_ms": SKEW_MS})
        self.addCleanup(c.cleanup)
        for n in c.nodes:
            n.write_config()
        follower = c.nodes[2]
        for n in c.nodes[:2]:
            n.start()
        c.leader(among=c.nodes[:2])  # elected before the third node exists
        if follower_env:
            os.environ.update(follower_env)
        try:
            follower.start(wrapper=follower_wrapper)
        finally:
            for k in (follower_env or {}):
                os.environ.pop(k, None)
        c.init()
        c.wait_unsealed()
        leader = c.leader()
        self.assertIsNot(leader, follower)  # pre-vote: a newcomer does not disrupt
        rc, lease = c.cli("lease", "grant", "-ttl", "2s", addr=leader.api_addr)
        self.assertEqual(rc, 0, lease)
        rc, out = c.cli("kv", "put", "-lease", lease["lease_id"], "db/cred", "password=hunter2",
                        addr=leader.api_addr)
        self.assertEqual(rc, 0, out)
        wait_for(lambda: follower.cli("kv", "get", "-consistency", "stale", "db/cred")[0] == 0,
                 5, "the follower applied the write")
        expire_at = lease["expire_at_ms"]
        results = []  # (start_ms, end_ms, rc, code)
        with Partition(follower.peer_port):
            while now_ms() < expire_at + 700:
                start = now_ms()
                rc, out = follower.cli("kv", "get", "-consistency", "stale", "db/cred",
                                       timeout="1s")
                end = now_ms()
                code = out.get("error", {}).get("code") if rc else None
                results.append((start, end, rc, code))
            st = follower.status()
            self.assertNotEqual(st["role"], "leader")
        return expire_at, results

    def test_partitioned_follower_refuses_from_expire_at_minus_skew(self):
        """Served until expire_at - skew - 100 ms, LEASE_EXPIRED from expire_at - skew on."""
        expire_at, results = self.run_partitioned()
        served_late = [r for r in results if r[1] < expire_at - SKEW_MS - 100]
        refused_window = [r for r in results if r[0] >= expire_at - SKEW_MS]
        self.assertTrue(served_late, "no read finished before expire_at - skew - 100 ms")
        self.assertTrue(refused_window, "no read started after expire_at - skew")
        for start, end, rc, code in served_late:
            self.assertEqual(rc, 0, "refused at %d ms before expiry" % (expire_at - end))
        for start, end, rc, code in refused_window:
            self.assertEqual((rc, code), (2, "LEASE_EXPIRED"),
                             "served %d ms before expiry" % (expire_at - start))

    @unittest.skipUnless(os.path.exists(FAKETIME_LIB), "needs libfaketime")
    def test_follower_with_slow_clock_still_refuses_from_true_expire_at(self):
        """A follower whose clock is 300 ms behind refuses from the true expire_at on."""
        env = {"LD_PRELOAD": FAKETIME_LIB, "FAKETIME": "-0.3",
               "FAKETIME_DONT_FAKE_MONOTONIC": "1", "FAKETIME_NO_CACHE": "1"}
        expire_at, results = self.run_partitioned(follower_env=env)
        after = [r for r in results if r[0] >= expire_at]
        self.assertTrue(after)
        for start, end, rc, code in after:
            self.assertEqual((rc, code), (2, "LEASE_EXPIRED"),
                             "served %d ms after the true expiry" % (start - expire_at))
        # Its clock really is behind: it served past expire_at - skew.
        served = [r for r in results if r[2] == 0]
        self.assertTrue(served)
        self.assertGreater(max(r[0] for r in served), expire_at - SKEW_MS - 100)


if __name__ == "__main__":
    unittest.main()

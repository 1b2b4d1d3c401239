"""Issue 15 (storage pressure), the proofs the other storage tests leave out.
Each data directory sits on its own 64 MiB tmpfs (needs root).

- FollowerFull: a follower's filesystem completely full while the leader is
  healthy: the follower goes storage-blocked with the true cause, the leader
  raises the alarm for it, growing writes are refused with QUOTA_EXCEEDED
  while revocations and deletes go on, stale reads on the follower answer;
  ballast gone, it resumes and catches up, the alarm clears, writes work.
  FollowerFullQuotaOff: the same with the quota off, where only the block
  (reported by a node that no longer knows its leader) raises the alarm.
- Reserve (quota off): a node whose filesystem fills at commit time releases
  DATA_DIR/reserve and retries (its log says so), the file is then empty,
  and it is allocated again once there is room.
- DisarmAndSurface: `operator alarm disarm` keeps an alarm whose cause holds
  (naming it in "kept") and clears one whose cause is gone although the
  hysteresis (free space under 1.25 x the floor) still holds it; a cleared
  alarm is not raised again from the hysteresis alone; `status` (table and
  JSON) and /metrics show the alarm, then not.

Run from the repository root: python3 -m unittest tests.integration.test_storage_more
"""
import os
import subprocess
import time
import unittest

from tests.harness.cluster import MAYFLY, Cluster, wait_for
from tests.harness.tmpfs import MIB, unavailable

NO_TMPFS = unavailable()
ENOSPC_MSG = "no space left on device"


def log_text(node):
    with open(node.log_path, errors="replace") as f:
        return f.read()


def err(out):
    e = out.get("error", {})
    return "%s: %s" % (e.get("code"), e.get("message"))


def alarm_ids(c, node=None):
    rc, out = (node or c).cli("operator", "alarm", "list", timeout="3s")
    return sorted(a["node_id"] for a in out.get("alarms", [])) if rc == 0 else None


class Base(unittest.TestCase):
    config = {}

    def setUp(self):
        self.c = Cluster(self.size, tmpfs_mb=64, extra_config=self.config).start()
        self.addCleanup(self.c.cleanup)
        self.c.init()
        self.c.wait_unsealed()

    def ok(self, *args, node=None, timeout="5s"):
        rc, out = (node or self.c).cli(*args, timeout=timeout)
        self.assertEqual(rc, 0, (args[:3], out))
        return out


@unittest.skipIf(NO_TMPFS, NO_TMPFS)
class FollowerFull(Base):
    size = 3

    def test_full_follower_blocks_alarms_and_catches_up(self):
        c = self.c
        pids = {n.id: n.proc.pid for n in c.nodes}
        for i in range(30):
            self.ok("kv", "put", "keep/%d" % i, "v=%d" % i)
        lease = self.ok("lease", "grant", "-ttl", "10m")["lease_id"]
        leader = c.leader()
        f = next(n for n in c.nodes if n is not leader)

        # Fill f to 0 until a write reaching it blocks it: its reserve is
        # given back once (the retry), the next fill eats that too. Deletes
        # go on under the alarm and are appended on f.
        t0 = time.monotonic()
        churn = iter(range(30))
        seen = []

        def blocked():
            f.tmpfs.fill()
            i = next(churn, None)
            if i is not None:
                rc, out = c.cli("kv", "delete", "keep/%d" % i, timeout="3s")
                self.assertEqual(rc, 0, out)
            rc, out = f.cli("kv", "get", "keep/29", timeout="1s")  # linearizable, on f
            if rc != 0 and ENOSPC_MSG in err(out):
                seen.append(err(out))
                return True
            return False
        wait_for(blocked, 30, "follower %d storage-blocked with '%s'" % (f.id, ENOSPC_MSG))
        print("\nfollower %d blocked after %.1f s: %s" % (f.id, time.monotonic() - t0, seen[0]))
        self.assertTrue(seen[0].startswith("UNAVAILABLE"), seen[0])
        text = log_text(f)
        self.assertIn("storage-blocked", text)
        self.assertIn(ENOSPC_MSG, text)
        self.assertIn("releasing the reserve", text)

        # The leader raised the alarm for f (and only f).
        # (asked of the leader: the blocked follower answers from the state it
        # applied before it blocked, which may not hold its alarm yet)
        wait_for(lambda: alarm_ids(c, leader) == [f.id], 15,
                 "the alarm for node %d alone" % f.id)
        # (/health follows the applied alarm at the next metrics publish)
        wait_for(lambda: leader.http_get("/health")[0] == 503, 5, "/health 503 on the leader")
        code, body = leader.http_get("/health")
        self.assertIn("storage alarm on node %d" % f.id, body)
        if self.config.get("storage_quota_enabled") == 0:
            # Only the block can have raised it: f's report reached the
            # leader although a blocked node forgets who leads.
            self.assertIn("storage blocked: " + ENOSPC_MSG, body)
            st = self.ok("status", node=leader)
            self.assertIn("storage blocked: " + ENOSPC_MSG, st["alarms"][0]["detail"], st)
        # f itself may not have applied the alarm (it cannot commit): its
        # /health names its own block instead, and the gauge says so.
        wait_for(lambda: "storage blocked: " in f.http_get("/health")[1], 5,
                 "/health on the blocked follower names the block")
        code, body = f.http_get("/health")
        self.assertEqual(code, 503, body)
        self.assertIn(ENOSPC_MSG, body)
        self.assertIn("mayfly_storage_blocked 1", f.http_get("/metrics")[1])
        # ... and so does its status (the leader's names no block of its own).
        st = self.ok("-consistency", "stale", "status", node=f, timeout="3s")
        self.assertIn(ENOSPC_MSG, st["storage_blocked"] or "", st)
        self.assertIsNone(self.ok("status", node=leader)["storage_blocked"])

        # Growing writes refused, revocations and deletes go on.
        for n in c.nodes:
            if n is f:
                continue
            rc, out = n.cli("kv", "put", "grow/%d" % n.id, "v=x", timeout="3s")
            self.assertEqual((rc, out.get("error", {}).get("code")), (2, "QUOTA_EXCEEDED"), out)
        self.ok("lease", "revoke", lease)
        wait_for(lambda: self.ok("lease", "lookup", lease)["state"] == "revoked", 10,
                 "the lease revoked while node %d is blocked" % f.id)
        self.ok("kv", "delete", "keep/29")  # the write f must catch up on

        # Stale reads on the blocked follower still answer.
        out = self.ok("kv", "get", "-consistency", "stale", "keep/28", node=f, timeout="3s")
        self.assertEqual(out["data"], {"v": "28"})
        self.assertTrue(f.alive(), f.log_tail())

        # Ballast gone: f resumes, catches up, the alarm clears, writes work.
        t1 = time.monotonic()
        f.tmpfs.unfill()
        wait_for(lambda: f.cli("kv", "get", "-consistency", "stale", "keep/29", timeout="2s")[1]
                 .get("error", {}).get("code") == "NOT_FOUND", 20,
                 "node %d to catch up on the delete made while it was blocked" % f.id)
        wait_for(lambda: f.cli("-consistency", "stale", "lease", "lookup",
                                    lease)[1].get("state") == "revoked", 10,
                 "node %d to see the revocation" % f.id)
        wait_for(lambda: f.cli("kv", "get", "keep/28", timeout="2s")[0] == 0, 10,
                 "linearizable reads on node %d again" % f.id)
        wait_for(lambda: alarm_ids(c, leader) == [], 20, "the alarm for node %d to clear" % f.id)
        wait_for(lambda: c.cli("kv", "put", "after/0", "v=x", timeout="3s")[0] == 0, 10,
                 "writes to resume")
        print("ballast removed: caught up, alarm cleared, writes resumed after %.1f s"
              % (time.monotonic() - t1))
        self.assertIn("resumed after", log_text(f))
        self.assertIsNone(self.ok("-consistency", "stale", "status", node=f)["storage_blocked"])
        out = self.ok("kv", "get", "-consistency", "stale", "after/0", node=f, timeout="3s")
        self.assertEqual(out["data"], {"v": "x"})
        self.assertEqual({n.id: n.proc.pid for n in c.nodes if n.alive()}, pids,
                         "a node restarted or died")


@unittest.skipIf(NO_TMPFS, NO_TMPFS)
class FollowerFullQuotaOff(FollowerFull):
    """The same with the quota off: the free-space floor raises nothing, only
    the follower's block does (its report to the leader it last knew)."""
    config = {"storage_quota_enabled": 0}


@unittest.skipIf(NO_TMPFS, NO_TMPFS)
class Reserve(Base):
    size = 1
    config = {"storage_quota_enabled": 0}

    def test_reserve_released_then_allocated_again(self):
        n = self.c.nodes[0]
        reserve = os.path.join(n.data_dir, "reserve")
        size0 = os.stat(reserve).st_size
        self.assertGreaterEqual(size0, 4 * MIB, "the reserve at start")
        self.ok("kv", "put", "keep/0", "v=1")

        # Fill to 0; 16 KiB puts until one fails at commit time.
        t0 = time.monotonic()
        big = "x" * 16384
        i = [0]

        def released():
            n.tmpfs.fill()
            i[0] += 1
            n.cli("kv", "put", "fill/%d" % i[0], "v=-", timeout="2s", stdin=big)
            return "releasing the reserve" in log_text(n)
        wait_for(released, 30, "the node to release its reserve")
        print("\nreserve released after %d puts, %.1f s" % (i[0], time.monotonic() - t0))
        wait_for(lambda: "resumed after releasing the reserve" in log_text(n), 10,
                 "the retry after releasing the reserve")
        text = log_text(n)
        self.assertRegex(text, r"releasing the reserve \S+/reserve \(\d+ KiB\) to retry once")
        self.assertIn(ENOSPC_MSG, text)
        self.assertEqual(os.stat(reserve).st_size, 0, "the reserve after the retry")
        self.assertTrue(n.alive(), n.log_tail())

        # Space back: the reserve is allocated again; writes work.
        t1 = time.monotonic()
        n.tmpfs.unfill()
        wait_for(lambda: os.stat(reserve).st_size > 0, 15, "the reserve allocated again")
        print("ballast removed: reserve allocated again after %.1f s (%d bytes)"
              % (time.monotonic() - t1, os.stat(reserve).st_size))
        self.assertGreaterEqual(os.stat(reserve).st_size, 4 * MIB)
        wait_for(lambda: "allocated again" in log_text(n), 5, "the log line")
        wait_for(lambda: n.cli("kv", "put", "after/0", "v=1", timeout="3s")[0] == 0, 15,
                 "writes to work")
        self.assertEqual(self.ok("kv", "get", "keep/0")["data"], {"v": "1"})


@unittest.skipIf(NO_TMPFS, NO_TMPFS)
class DisarmAndSurface(Base):
    """Floor 8 MiB: the alarm raises under 8 MiB free and, once raised,
    holds until 10 MiB (1.25 x) by itself."""
    size = 3
    config = {"storage_free_floor_mb": 8}

    def status_table(self, node):
        env = dict(os.environ, MAYFLY_ADDR=node.api_addr, MAYFLY_TOKEN=self.c.token,
                   MAYFLY_CACERT=os.path.join(self.c.certs, "ca.pem"))
        env.pop("MAYFLY_FORMAT", None)
        p = subprocess.run([MAYFLY, "-format", "table", "status"], env=env,
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.stdout

    def set_free(self, node, free_bytes):
        """Shrinks node's ballast so its filesystem has free_bytes free."""
        name = node.tmpfs.ballast[-1]
        give = free_bytes - node.tmpfs.free_bytes()
        self.assertGreater(give, 0)
        os.truncate(name, os.stat(name).st_size - give)

    def test_disarm_in_the_hysteresis_band_and_the_surfaces(self):
        c = self.c
        self.ok("kv", "put", "keep/0", "v=1")
        for n in c.nodes:
            self.assertEqual(n.metric("mayfly_storage_alarm"), 0, "node %d" % n.id)
        self.assertNotIn("alarms:", self.status_table(c.nodes[0]))
        leader = c.leader()
        f = next(n for n in c.nodes if n is not leader)
        both = sorted([leader.id, f.id])
        for n in (leader, f):
            n.tmpfs.fill(leave_bytes=4 * MIB)  # under the 8 MiB floor
        wait_for(lambda: alarm_ids(c, leader) == both, 15, "alarms for nodes %s" % both)

        # The surfaces while the alarms are set.
        for n in c.nodes:
            wait_for(lambda: n.metric("mayfly_storage_alarm") == 1, 5,
                     "mayfly_storage_alarm 1 on node %d" % n.id)
        st = self.ok("status")
        self.assertEqual(sorted(a["node_id"] for a in st["alarms"]), both, st)
        self.assertTrue(all("storage_free_floor_mb" in a["detail"] for a in st["alarms"]), st)
        table = self.status_table(f)
        for i in both:
            self.assertRegex(table, r"alarms: storage on node %d since \d{4}-\d\d-\d\dT[0-9:]+Z: "
                             r"free space .*storage_free_floor_mb" % i)
        print("\nstatus (table) with the alarms:\n" + table)

        # The cause holds: disarm keeps both and says why.
        out = self.ok("operator", "alarm", "disarm")
        self.assertEqual(out["cleared"], 0, out)
        self.assertEqual(sorted(k["node_id"] for k in out["kept"]), both, out)
        self.assertTrue(all("storage_free_floor_mb" in k["detail"] for k in out["kept"]), out)
        rc, out = c.cli("kv", "put", "grow/0", "v=1", timeout="3s")
        self.assertEqual(out.get("error", {}).get("code"), "QUOTA_EXCEEDED", out)

        # Free space back above the floor, under 1.25 x: the hysteresis holds
        # the alarms (they do not clear by themselves), the cause is gone.
        for n in (leader, f):
            self.set_free(n, 9 * MIB)
        t0 = time.monotonic()
        answers = []

        def disarmed():
            out = self.ok("operator", "alarm", "disarm")
            answers.append(out)
            return out["cleared"] >= 1 and alarm_ids(c, leader) == []
        try:
            wait_for(disarmed, 10, "disarm to clear the alarms held by the hysteresis alone")
        finally:
            print("disarm answers: %s" % answers[-3:])
        print("cleared after %.1f s" % (time.monotonic() - t0))
        self.assertTrue(all(8 * MIB < n.tmpfs.free_bytes() < 10 * MIB for n in (leader, f)),
                        "free space left the hysteresis band: the test proves nothing")

        # Cleared for good: writes work for several measurement periods and
        # the hysteresis alone does not raise the alarms again.
        for n in c.nodes:
            wait_for(lambda: n.metric("mayfly_storage_alarm") == 0, 5,
                     "mayfly_storage_alarm 0 on node %d" % n.id)
        end = time.monotonic() + 3.5
        k = 0
        while time.monotonic() < end:
            rc, out = c.cli("kv", "put", "after/%d" % k, "v=1", timeout="3s")
            self.assertEqual(rc, 0, out)
            self.assertEqual(alarm_ids(c, leader), [])
            k += 1
        self.assertEqual(self.ok("status")["alarms"], [])
        self.assertNotIn("alarms:", self.status_table(c.nodes[0]))
        code, body = leader.http_get("/health")
        self.assertEqual((code, body.strip()), (200, "ok"))


if __name__ == "__main__":
    unittest.main()

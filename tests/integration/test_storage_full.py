"""Issue 15, "Prove it" (quota off: storage_quota_enabled 0), a real full
disk and a full LMDB map at commit time.

- A full filesystem (each data directory on its own 64 MiB tmpfs, filled with
  ballast files): first on the leader, which hands leadership off while the
  cluster keeps writing; then on every node: reads go on, writes are refused
  with the true cause ("no space left on device"); once the ballast is gone,
  writes resume without a restart.
- A full LMDB map (log_map_size_mb 16, no tmpfs): the cause ("LMDB map full")
  in a node's log and in the error; once the config file's map size is raised
  the nodes resume without a restart.
Every acknowledged write is read back at the end of each."""
import time
import unittest

from tests.harness.cluster import Cluster, wait_for
from tests.harness.tmpfs import unavailable

NO_TMPFS = unavailable()
ENOSPC_MSG = "no space left on device"
MAPFULL_MSG = "LMDB map full"


def value(path, size):
    head = path + ":"
    return head + "x" * (size - len(head))


class Writes:
    """Puts through the CLI that keep the list of acknowledged ones."""

    def __init__(self, case, cluster):
        self.case, self.c = case, cluster
        self.acked, self.unknown, self.i = {}, [], 0

    def put(self, prefix, size=64, node=None, timeout="5s"):
        path = "%s/%d" % (prefix, self.i)
        self.i += 1
        v = value(path, size)
        rc, out = (node or self.c).cli("kv", "put", path, "v=-", stdin=v, timeout=timeout)
        if rc == 0:
            self.acked[path] = v
        elif rc == 3 or out.get("error", {}).get("code") == "UNKNOWN_OUTCOME":
            # (the CLI exits 2, not 3, when the server itself answers
            # UNKNOWN_OUTCOME: src/cli/run.c render(); either is unknown)
            self.unknown.append(path)
        return rc, out

    def get(self, node, path, consistency):
        rc, out = node.cli("kv", "get", "-consistency", consistency, path, timeout="3s")
        return out.get("data", {}).get("v") if rc == 0 else (rc, out)

    def check_all(self, what):
        """Every acknowledged write, linearizable through the cluster and
        stale on every node (once it has caught up)."""
        for p, v in self.acked.items():
            self.case.assertEqual(self.get(self.c, p, "linearizable"), v, (what, p))
        for n in self.c.nodes:
            for p, v in self.acked.items():
                wait_for(lambda: self.get(n, p, "stale") == v, 15,
                         "%s: %s stale on node %d" % (what, p, n.id))
        print("%s: %d acknowledged writes read back on every node (%d unknown outcomes)"
              % (what, len(self.acked), len(self.unknown)))


def log_has(node, text):
    with open(node.log_path, errors="replace") as f:
        return text in f.read()


def path_unknown(out):
    return out.get("error", {}).get("code") == "UNKNOWN_OUTCOME"


def error(out):
    e = out.get("error", {})
    return "%s: %s" % (e.get("code"), e.get("message"))


@unittest.skipIf(NO_TMPFS, NO_TMPFS)
class FullFilesystem(unittest.TestCase):
    def setUp(self):
        self.c = Cluster(3, tmpfs_mb=64, extra_config={"storage_quota_enabled": 0}).start()
        self.addCleanup(self.c.cleanup)
        self.c.init()
        self.c.wait_unsealed()

    def test_full_leader_then_every_node(self):
        c = self.c
        w = Writes(self, c)
        pids = {n.id: n.proc.pid for n in c.nodes}
        for _ in range(10):
            self.assertEqual(w.put("keep")[0], 0)

        # The leader's filesystem full: it hands leadership off.
        old = c.leader()
        others = [n for n in c.nodes if n is not old]
        t0 = time.monotonic()
        old.tmpfs.fill()
        moved = []

        def leadership_moved():
            old.tmpfs.fill()  # eat whatever the node gave back (its reserve)
            w.put("a", 16 * 1024, timeout="2s")
            ids = {(n.status() or {}).get("leader_id") for n in others}
            if len(ids) == 1 and None not in ids and old.id not in ids:
                moved.append(ids.pop())
                return True
            return False
        wait_for(leadership_moved, 30, "leadership to move off the full leader %d" % old.id)
        moved_s = time.monotonic() - t0
        acked_before = len(w.acked)

        def writes_go_on():
            old.tmpfs.fill()
            return w.put("b", 1024, timeout="3s")[0] == 0
        wait_for(writes_go_on, 20, "the cluster to accept writes without node %d" % old.id)
        for _ in range(5):
            old.tmpfs.fill()
            rc, out = w.put("b", 1024)
            self.assertEqual(rc, 0, out)
        print("\nleader %d full: leadership moved to %d after %.1f s; writes acknowledged "
              "%.1f s after the fill (%d during the move)"
              % (old.id, moved[0], moved_s, time.monotonic() - t0, acked_before - 10))
        self.assertEqual(self.stale(old, "keep/0", w), w.acked["keep/0"],
                         "a stale read on the full node")
        wait_for(lambda: log_has(old, ENOSPC_MSG), 5,
                 "'%s' in node %d's log" % (ENOSPC_MSG, old.id))

        # Every filesystem full: writes refused with the true cause.
        t1 = time.monotonic()
        causes = {}

        def all_refuse():
            for n in c.nodes:
                n.tmpfs.fill()
            for n in c.nodes:
                if n.id in causes:
                    continue
                rc, out = w.put("c", 16 * 1024, node=n, timeout="3s")
                if rc == 2 and ENOSPC_MSG in error(out):
                    causes[n.id] = error(out)
            return len(causes) == len(c.nodes)
        try:
            wait_for(all_refuse, 40, "writes through every node refused with '%s'" % ENOSPC_MSG)
        finally:
            print("every node full: refusals after %.1f s: %s" % (time.monotonic() - t1, causes))
        # Either the node's own block (UNAVAILABLE), or, once the leader heard
        # of a blocked node and its alarm applied, the alarm that names it.
        for code_msg in causes.values():
            self.assertTrue(code_msg.startswith("UNAVAILABLE: " + ENOSPC_MSG) or
                            (code_msg.startswith("QUOTA_EXCEEDED: storage alarm on node ") and
                             "storage blocked: " + ENOSPC_MSG in code_msg), code_msg)
        for n in c.nodes:
            self.assertTrue(n.alive(), "node %d died: %s" % (n.id, n.log_tail()))
            self.assertEqual(self.stale(n, "keep/9", w), w.acked["keep/9"],
                             "a stale read on full node %d" % n.id)
            rc, out = n.cli("kv", "get", "keep/0", timeout="3s")  # linearizable
            print("linearizable read on full node %d: %s" % (
                n.id, "ok" if rc == 0 else error(out)))
            if rc != 0:
                self.assertIn(ENOSPC_MSG, error(out), "a refused read names the cause")

        # Space back: writes resume with no restart.
        t2 = time.monotonic()
        for n in c.nodes:
            n.tmpfs.unfill()
        last = []

        def resumed():
            rc, out = w.put("d", timeout="3s")
            last[:] = [error(out) if rc else "ok"]
            return rc == 0
        try:
            wait_for(resumed, 30, "writes to resume once the ballast is gone")
        except AssertionError:
            # What held them, for the report: the last refusal, the alarms,
            # each node's storage lines.
            print("last refusal: %s" % last)
            for n in c.nodes:
                print("node %d alarms: %s" % (n.id, n.cli("operator", "alarm", "list",
                                                          timeout="3s")[1]))
                print("\n".join(l for l in n.log_tail(400).splitlines()
                                if "storage" in l or "alarm" in l or "leader" in l)[-3000:])
            raise
        print("ballast removed: writes resumed after %.1f s" % (time.monotonic() - t2))
        for _ in range(5):
            self.assertEqual(w.put("d")[0], 0)
        self.assertEqual({n.id: n.proc.pid for n in c.nodes if n.alive()}, pids,
                         "a node restarted or died")
        w.check_all("full filesystem")

    def stale(self, node, path, w):
        return w.get(node, path, "stale")


class FullLmdbMap(unittest.TestCase):
    """No tmpfs: a 16 MiB log map (the smallest config allows) fills with
    512 KiB puts in about 30 of them."""

    def setUp(self):
        self.c = Cluster(3, extra_config={"storage_quota_enabled": 0,
                                          "log_map_size_mb": 16}).start()
        self.addCleanup(self.c.cleanup)
        self.c.init()
        self.c.wait_unsealed()

    def test_map_full_then_grown_in_the_config(self):
        c = self.c
        w = Writes(self, c)
        pids = {n.id: n.proc.pid for n in c.nodes}
        for _ in range(10):
            self.assertEqual(w.put("keep")[0], 0)
        t0 = time.monotonic()
        refusals = []
        for _ in range(100):  # 50 MiB through a 16 MiB map
            if time.monotonic() - t0 > 60:
                break
            rc, out = w.put("big", 512 * 1024, timeout="5s")
            if rc == 2 and path_unknown(out) is False:
                refusals.append(error(out))
                if MAPFULL_MSG in error(out):
                    break
        print("\nmap full after %d acknowledged puts, %.1f s; refusals: %s"
              % (len(w.acked) - 10, time.monotonic() - t0, refusals))
        self.assertTrue(refusals and MAPFULL_MSG in refusals[-1],
                        "no put refused with '%s': %s" % (MAPFULL_MSG, refusals))
        self.assertTrue(refusals[-1].startswith("UNAVAILABLE"), refusals[-1])
        self.assertRegex(refusals[-1], r"LMDB map full: map_size 16 MiB")
        self.assertTrue(any(log_has(n, MAPFULL_MSG) for n in c.nodes),
                        "no node's log names the map")
        for n in c.nodes:
            self.assertTrue(n.alive(), "node %d died: %s" % (n.id, n.log_tail()))
            self.assertEqual(w.get(n, "keep/0", "stale"), w.acked["keep/0"],
                             "a stale read on node %d" % n.id)

        # Grow the map in every config file: the nodes resume by themselves.
        t1 = time.monotonic()
        for n in c.nodes:
            n.write_config({"log_map_size_mb": 64})
        wait_for(lambda: w.put("after", timeout="3s")[0] == 0, 30,
                 "writes to resume once log_map_size_mb is 64 in the config files")
        print("log_map_size_mb raised: writes resumed after %.1f s" % (time.monotonic() - t1))
        for _ in range(3):
            self.assertEqual(w.put("after", 512 * 1024)[0], 0)
        self.assertEqual({n.id: n.proc.pid for n in c.nodes if n.alive()}, pids,
                         "a node restarted or died")
        w.check_all("full map")


if __name__ == "__main__":
    unittest.main()

"""Runtime membership on real processes (issue 13, "Membership"; CLI.md
"Operations"): `mayflyd --join` nodes added with `operator members add`,
promoted once caught up, removed with `members remove` (a dead node, the
leader itself); the zone guard refuses what lowers the zones a cluster can
lose unless -force; the member registry (addresses, zones) replicated, so a
new leader and a restarted follower know members their config files never
listed; sudo on sys/raft/members, deny by default."""
import json
import os
import tempfile
import threading
import time
import unittest
from concurrent.futures import ThreadPoolExecutor

from tests.harness.cluster import Cluster, wait_for

TICK_MS = 10
ELECTION_TICKS = 100  # 1 s: a CLI spawn on a loaded machine (sanitizers) takes 100s of ms
ELECTION_MS = TICK_MS * ELECTION_TICKS
CONFIG = {"snapshot_entries": 100, "tick_ms": TICK_MS, "election_ticks": ELECTION_TICKS}


def members(node, token=True):
    rc, out = node.cli("operator", "members", "list", token=token, timeout="5s")
    return {m["id"]: m for m in out["members"]} if rc == 0 else None


def add(c, via, n, force=False):
    """members add N through `via`, retried while another change is pending
    (UNAVAILABLE)."""
    args = ["operator", "members", "add", "-id", str(n.id), "-addr", n.peer_addr, "-api-addr",
            n.api_addr] + (["-zone", n.zone] if n.zone else []) + (["-force"] if force else [])

    def once():
        rc, out = via.cli(*args, timeout="15s")
        if rc == 0:
            return True
        code = out.get("error", {}).get("code")
        assert code == "UNAVAILABLE", out
        return False
    wait_for(once, 90, "node %d added" % n.id)


def fill(node, prefix, count):
    """count writes through node, four at a time: past two snapshots the
    leader's log is compacted, and a new member can start from a snapshot."""
    def put(i):
        rc, out = node.cli("kv", "put", "%s/%d" % (prefix, i), "v=%d" % i, timeout="10s")
        assert rc == 0, out
    with ThreadPoolExecutor(4) as ex:
        list(ex.map(put, range(count)))


def voters(node):
    ms = members(node) or {}
    return sorted(i for i, m in ms.items() if m["voter"])


class Writer(threading.Thread):
    """Writes g/<i // 100>/<i> every 10 ms through `addrs` (the CLI retries
    with the same idempotency key) and records what was acknowledged and
    when."""

    def __init__(self, c, addrs):
        super().__init__(daemon=True)
        self.c, self.addrs = c, addrs
        self.acked, self.times = [], []
        self.stop = threading.Event()

    def run(self):
        i = 0
        while not self.stop.is_set():
            rc, _ = self.c.cli("kv", "put", "g/%d/%d" % (i // 100, i), "v=%d" % i,
                               addr=",".join(self.addrs()), timeout="5s")
            if rc == 0:
                self.acked.append(i)
                self.times.append(time.monotonic())
            i += 1
            time.sleep(0.01)

    def longest_gap(self, since=0):
        t = [x for x in self.times if x >= since]
        return max((b - a for a, b in zip(t, t[1:])), default=0)


def keys_on(node, buckets):
    got = set()
    for b in buckets:
        rc, out = node.cli("kv", "list", "g/%d/" % b)
        assert rc == 0, out
        got.update(out["keys"])
    return got


class GrowShrink(unittest.TestCase):
    def setUp(self):
        self.c = Cluster(1, extra_config=CONFIG, spare=4)
        self.c.nodes[0].zone = "a"
        self.c.start()
        self.addCleanup(self.c.cleanup)
        self.c.init()
        self.c.wait_unsealed()

    def test_grow_to_five_in_three_zones_and_shrink_to_three_while_writing(self):
        """1 -> 5 voters (zones a,a,b,b,c) -> 3 (a,b,c) under a writer: every
        acknowledged write reads back on every remaining node, and no gap
        between acknowledged writes exceeds two election timeouts."""
        c = self.c
        n1 = c.nodes[0]
        live = {n1.id: n1}
        w = Writer(c, lambda: [n.api_addr for n in live.values()])
        w.start()
        self.addCleanup(w.stop.set)
        fill(n1, "pre", 200)
        changes_from = time.monotonic()  # gaps count from here: the membership changes
        for nid, zone in ((2, "a"), (3, "b"), (4, "b"), (5, "c")):
            n = c.join_node(nid, zone=zone)
            self.assertEqual((n.status() or {}).get("role"), "joining")
            add(c, n1, n)
            live[nid] = n
            wait_for(lambda: nid in voters(n1), 30, "node %d promoted" % nid)
        ms = members(n1)
        self.assertEqual(sorted(ms), [1, 2, 3, 4, 5], ms)
        self.assertEqual({i: m["zone"] for i, m in ms.items()},
                         {1: "a", 2: "a", 3: "b", 4: "b", 5: "c"}, ms)
        self.assertTrue(all(m["voter"] for m in ms.values()), ms)
        lead = c.leader(timeout=15)
        gone = [n for n in (live[2], live[4]) if n.id != lead.id][:1]
        first = gone[0] if gone else live[2]
        # 5 voters a2 b2 c1 survive one zone's loss; 4 of them cannot.
        rc, out = lead.cli("operator", "members", "remove", str(first.id))
        self.assertEqual(rc, 2, out)
        self.assertEqual(out["error"]["code"], "INVALID_ARGUMENT", out)
        self.assertIn("lowers the zones this cluster can lose from 1 to 0", out["error"]["message"])
        self.assertIn("use -force", out["error"]["message"])
        rc, out = lead.cli("operator", "members", "remove", "-force", str(first.id))
        self.assertEqual(rc, 0, out)
        del live[first.id]
        first.kill()
        # Then the other node of the zone left with two: back to a,b,c (1 zone).
        zone_two = [n for n in live.values() if n.id != lead.id and
                    sum(1 for m in live.values() if m.zone == n.zone) == 2]
        second = zone_two[0]
        rc, out = lead.cli("operator", "members", "remove", str(second.id))
        self.assertEqual(rc, 0, out)
        del live[second.id]
        second.kill()
        wait_for(lambda: len(voters(lead)) == 3, 10, "3 voters")
        self.assertEqual(sorted(live[i].zone for i in voters(lead)), ["a", "b", "c"])
        wait_for(lambda: len(w.acked) >= 20 and w.times[-1] > time.monotonic() - 1, 10,
                 "writes on the shrunk cluster")
        w.stop.set()
        w.join(30)
        gap = w.longest_gap(since=changes_from)
        print("\n%d writes acknowledged; longest gap between them %.0f ms (bound %d ms)"
              % (len(w.acked), gap * 1000, 2 * ELECTION_MS))
        self.assertLess(gap, 2 * ELECTION_MS / 1000.0)
        want = {"g/%d/%d" % (i // 100, i) for i in w.acked}
        buckets = sorted({i // 100 for i in w.acked})
        for n in live.values():
            wait_for(lambda: want <= keys_on(n, buckets), 15,
                     "every acknowledged write on node %d" % n.id)


class YoungCluster(unittest.TestCase):
    """A cluster whose log was never compacted (the default snapshot_entries,
    a handful of writes) still takes a member at the first `members add`:
    the leader snapshots and compacts its log first, so the new member
    starts from a snapshot."""

    def test_add_to_a_log_never_compacted(self):
        c = Cluster(1, extra_config={"tick_ms": TICK_MS, "election_ticks": ELECTION_TICKS},
                    spare=1)
        self.addCleanup(c.cleanup)
        c.start()
        c.init()
        c.wait_unsealed()
        n1 = c.nodes[0]
        for i in range(5):
            rc, out = n1.cli("kv", "put", "young/%d" % i, "v=%d" % i)
            self.assertEqual(rc, 0, out)
        n2 = c.join_node(2)
        rc, out = n1.cli("operator", "members", "add", "-id", "2", "-addr", n2.peer_addr,
                         "-api-addr", n2.api_addr, timeout="15s")
        self.assertEqual(rc, 0, out)
        self.assertIn("compaction to", n1.log_tail(200))
        wait_for(lambda: 2 in voters(n1), 30, "node 2 promoted")
        wait_for(lambda: n2.cli("-consistency", "stale", "kv", "get", "young/4")[0] == 0, 20,
                 "node 2 to hold the writes made before it joined")
        rc, out = n2.cli("-consistency", "stale", "kv", "get", "young/0")
        self.assertEqual(out.get("data"), {"v": "0"}, out)


class ReplaceAndLeave(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.c = Cluster(3, extra_config=CONFIG, spare=1)
        for n, z in zip(cls.c.nodes, "abc"):
            n.zone = z
        cls.c.start()
        try:
            cls.c.init()
            cls.c.wait_unsealed()
        except BaseException:
            cls.c.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.c.cleanup()

    def test_a_replace_a_dead_node(self):
        """Kill a follower, remove it (the guard refuses, -force passes), add
        a replacement with an empty disk: it starts from the leader's
        snapshot, becomes a voter and reads the data back."""
        c = self.c
        lead = c.leader(timeout=15)
        fill(lead, "r", 210)
        dead = next(n for n in c.nodes if n.id != lead.id and n.zone == "c") \
            if lead.zone != "c" else next(n for n in c.nodes if n.id != lead.id)
        dead.kill()
        rc, out = lead.cli("operator", "members", "remove", str(dead.id))
        self.assertEqual(rc, 2, out)
        self.assertEqual(out["error"]["code"], "INVALID_ARGUMENT", out)
        self.assertRegex(out["error"]["message"],
                         r"removing node %d lowers the zones this cluster can lose from 1 to 0 "
                         r"\(voters per zone: a=1 b=1 c=1 -> .*\); use -force" % dead.id)
        rc, out = lead.cli("operator", "members", "remove", "-force", str(dead.id))
        self.assertEqual(rc, 0, out)
        self.assertNotIn(dead.id, members(lead))
        new = c.join_node(4, zone=dead.zone)
        add(c, lead, new)
        wait_for(lambda: 4 in voters(lead), 30, "node 4 promoted")
        with open(new.log_path) as f:
            self.assertIn("installed a snapshot at index", f.read())
        rc, out = new.cli("kv", "get", "r/7")
        self.assertEqual(rc, 0, out)
        self.assertEqual(out["data"], {"v": "7"})
        # The cluster is a,b,c again: losing one zone is tolerated.
        self.assertEqual(sorted(m["zone"] for m in members(lead).values()), ["a", "b", "c"])

    def test_b_remove_the_leader_and_restart_a_follower(self):
        """The leader removes itself (-force: 3 zones -> 2): it hands leadership
        off, the new leader removes it and tells it so (status "removed"); the
        new leader's members list shows the registry (addresses, zones), the
        joined node included; a restarted follower knows it too; the removed
        node says so."""
        c = self.c
        lead = c.leader(timeout=15)
        rest = [n for n in c.nodes if n.alive() and n.id != lead.id]
        self.assertEqual(len(rest), 2)
        rc, out = lead.cli("operator", "members", "remove", str(lead.id))
        self.assertEqual(rc, 2, out)
        rc, out = lead.cli("operator", "members", "remove", "-force", str(lead.id), timeout="15s")
        self.assertEqual(rc, 0, out)
        new = c.leader(among=rest, timeout=20)
        self.assertNotEqual(new.id, lead.id)
        ms = members(new)
        self.assertEqual(sorted(ms), sorted(n.id for n in rest), ms)
        for n in rest:
            self.assertEqual(ms[n.id]["addr"], n.peer_addr, ms)
            self.assertEqual(ms[n.id]["api_addr"], n.api_addr, ms)
            self.assertEqual(ms[n.id]["zone"], n.zone, ms)
        try:
            wait_for(lambda: (lead.status() or {}).get("role") == "removed", 10, "removed role")
        except AssertionError:
            raise AssertionError("status of node %d: %s" % (lead.id, lead.cli("status")))
        with open(lead.log_path) as f:
            log = f.read()
        # It handed leadership off first (no election gap), and learned of
        # its removal from the new leader (it never gets that entry).
        self.assertIn("handing leadership to node %d first" % new.id, log)
        self.assertIn("was removed from the configuration", log)
        lead.kill()
        follower = next(n for n in rest if n.id != new.id)
        follower.kill()
        follower.start()
        def knows():
            st = follower.status() or {}
            got = {m["id"]: (m["addr"], m["zone"]) for m in st.get("members", [])}
            return got == {n.id: (n.peer_addr, n.zone) for n in rest}
        wait_for(knows, 20, "the restarted follower's registry")
        ms = members(follower)
        self.assertEqual({i: m["zone"] for i, m in ms.items()}, {n.id: n.zone for n in rest})

    def refused(self, node, cmd, token, code):
        """The answer's error code, asked again while the node is UNAVAILABLE
        (a restarted node measures its clock first: until then it cannot
        judge a token's expiry)."""
        last = []

        def once():
            rc, out = node.cli(*cmd, token=token)
            self.assertEqual(rc, 2, out)
            last[:] = [out]
            return None if out["error"]["code"] == "UNAVAILABLE" else out
        try:
            out = wait_for(once, 20, "an answer other than UNAVAILABLE")
        except AssertionError:
            raise AssertionError("node %d, %s: %s" % (node.id, cmd, last))
        self.assertEqual(out["error"]["code"], code, out)
        return out

    def test_c_deny_by_default(self):
        """No token: UNAUTHENTICATED; a token with read only on
        sys/raft/members: PERMISSION_DENIED for add, promote and remove."""
        c = self.c
        n = c.leader(among=[m for m in c.nodes if m.alive()], timeout=20)
        cmds = [["operator", "members", "add", "-id", "9", "-addr", "127.0.0.1:1",
                 "-api-addr", "127.0.0.1:2"],
                ["operator", "members", "promote", "9"],
                ["operator", "members", "remove", "9"]]
        for cmd in cmds:
            self.refused(n, cmd, False, "UNAUTHENTICATED")
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump({"path": {"sys/raft/members": {"capabilities": ["read"]},
                                "sys/raft/*": {"capabilities": ["read", "update"]}}}, f)
        self.addCleanup(os.unlink, f.name)
        rc, out = n.cli("policy", "write", "members-read", f.name)
        self.assertEqual(rc, 0, out)
        rc, out = n.cli("token", "create", "-policy", "members-read", "-ttl", "1h")
        self.assertEqual(rc, 0, out)
        tok = out["token"]
        for m in (x for x in c.nodes if x.alive()):
            for cmd in cmds:
                out = self.refused(m, cmd, tok, "PERMISSION_DENIED")
                self.assertIn("sys/raft/members", out["error"]["message"])
        self.assertIsNotNone(members(n, token=tok))  # list stays a read


if __name__ == "__main__":
    unittest.main()

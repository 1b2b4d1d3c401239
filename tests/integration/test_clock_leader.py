"""A leader whose wall clock jumps hands leadership off and cannot win an
election while its clock is off (issue 16, part A: clocks measured between
nodes, the campaign gate). Every node runs under libfaketime with its own
timestamp file, so the test can jump a running node's wall clock by
rewriting the file (the monotonic clock stays real)."""
import os
import time
import unittest

from tests.harness.cluster import Cluster, wait_for

FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
JUMP_S = 10
OFF_WATCH_S = 3.0  # how long we watch the cluster while the clock is off


def set_offset(path, spec):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(spec + "\n")
    os.rename(tmp, path)  # never a half-written file for the node to read


def faketime_wrapper(path):
    # A sanitizer build wants its runtime first; libfaketime is preloaded
    # before it, which ASan tolerates when told to.
    asan = ":".join(filter(None, [os.environ.get("ASAN_OPTIONS"), "verify_asan_link_order=0"]))
    return ["env", "LD_PRELOAD=" + FAKETIME_LIB, "FAKETIME_TIMESTAMP_FILE=" + path,
            "FAKETIME_NO_CACHE=1", "FAKETIME_DONT_FAKE_MONOTONIC=1", "ASAN_OPTIONS=" + asan]


def leader_id(node):
    """The leader this node knows of (its own id when it leads), or 0."""
    try:
        return int(node.metric("mayfly_raft_leader_id") or 0)
    except OSError:
        return 0


@unittest.skipUnless(os.path.exists(FAKETIME_LIB), "needs libfaketime")
class ClockLeader(unittest.TestCase):
    def test_leader_with_a_jumped_clock_hands_off_and_cannot_win(self):
        c = Cluster(3)
        self.addCleanup(c.cleanup)
        files = {}
        for n in c.nodes:
            n.write_config()
            files[n.id] = os.path.join(c.dir, "faketime-%d" % n.id)
            set_offset(files[n.id], "+0s")
        t_start = time.monotonic()
        for n in c.nodes:
            n.start(wrapper=faketime_wrapper(files[n.id]))
        bad = c.leader()
        print("\nfirst leader: node %d, %.2f s after the first start"
              % (bad.id, time.monotonic() - t_start))
        c.init()
        c.wait_unsealed()
        rc, out = c.cli("kv", "put", "app/before", "v=1")
        self.assertEqual(rc, 0, out)
        bad = c.leader()
        good = [n for n in c.nodes if n is not bad]

        # The leader's wall clock jumps 10 s forward: its next probe answers
        # show every peer 10 s behind, and it hands leadership off.
        t0 = time.monotonic()
        set_offset(files[bad.id], "+%ds" % JUMP_S)
        new = wait_for(lambda: next((n for n in good if leader_id(n) == n.id
                                     and leader_id(bad) == n.id), None),
                       10, "leadership to move off node %d" % bad.id)
        moved_s = time.monotonic() - t0
        print("jump to new leader (node %d): %.2f s" % (new.id, moved_s))
        self.assertLess(moved_s, 5.0)
        wait_for(lambda: "handing leadership to node" in bad.log_tail(200), 5,
                 "the hand-off logged by node %d" % bad.id)

        # An election must now happen without the new leader: the node with
        # the bad clock must not win it. (Once the dead node's measurements
        # go stale, the survivor with a good clock has no agreeing quorum
        # either: no leader is the intended outcome.)
        new.kill()
        survivor = next(n for n in good if n is not new)
        deadline = time.monotonic() + OFF_WATCH_S
        while time.monotonic() < deadline:
            self.assertNotEqual(leader_id(bad), bad.id,
                                "node %d won an election with its clock %d s off"
                                % (bad.id, JUMP_S))
            time.sleep(0.05)

        # Clock put back: a leader exists again and writes work.
        t1 = time.monotonic()
        set_offset(files[bad.id], "+0s")
        lead = c.leader(among=[bad, survivor], timeout=15)
        print("clock restored to a leader (node %d): %.2f s" % (lead.id, time.monotonic() - t1))
        rc, out = c.cli("kv", "put", "app/after", "v=2", addr=c.addrs([bad, survivor]),
                        timeout="10s")
        self.assertEqual(rc, 0, out)
        rc, out = c.cli("kv", "get", "app/before", addr=c.addrs([bad, survivor]))
        self.assertEqual(rc, 0, out)


if __name__ == "__main__":
    unittest.main()

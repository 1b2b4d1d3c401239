"""Rolling upgrades (issue 13 item 5, store/features.h): a cluster with one
node of an older build (feature level 1, built here with
-DMAYFLY_FEATURE_LEVEL=1) keeps cluster version 1 and refuses level-2
commands; once that node runs the new build the leader raises the version to
2; an old build then refuses to run on a state or a log that holds level-2
commands, with a message that says what to do."""
import os
import shutil
import signal
import subprocess
import time
import unittest

from tests.harness import cluster as H
from tests.harness.cluster import Cluster, wait_for

SRC = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OLD_BUILD = os.path.abspath(H.BUILD).rstrip("/") + "-fl1"
OLD_MAYFLYD = os.path.join(OLD_BUILD, "mayflyd")

# CLI commands whose command op is level 2 (features.c's table: 46 keys, 47
# membership, 48/49 restore). They land with other work: the refusal check
# runs with the first one this CLI knows.
# Client commands of feature level 2 (store/features.c): rotate and rekey
# propose KeyringChange (op 46), members add a conf entry with a tail (op 47).
LEVEL2_COMMANDS = [("operator", "rotate")]


def build_old():
    """The "older version": mayflyd built at feature level 1 (ccache makes
    this a relink plus one file after the main build)."""
    env = dict(os.environ, CCACHE_BASEDIR=os.path.dirname(SRC))
    if not os.path.exists(os.path.join(OLD_BUILD, "CMakeCache.txt")):
        subprocess.run(["cmake", "-S", SRC, "-B", OLD_BUILD, "-DCMAKE_BUILD_TYPE=RelWithDebInfo",
                        "-DMAYFLY_FEATURE_LEVEL=1", "-DCMAKE_C_COMPILER_LAUNCHER=ccache"],
                       check=True, env=env, capture_output=True)
    p = subprocess.run(["cmake", "--build", OLD_BUILD, "-j2", "--target", "mayflyd"], env=env,
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise AssertionError("building the level-1 mayflyd failed:\n" + p.stdout[-3000:] +
                             p.stderr[-3000:])


def old_wrapper():
    # Node.start runs wrapper + [MAYFLYD, "--config", FILE]: run the old one.
    return ("sh", "-c", 'exec "%s" "$2" "$3"' % OLD_MAYFLYD, "sh")


class Upgrade(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        build_old()

    def setUp(self):
        self.c = Cluster(3)
        self.addCleanup(self.c.cleanup)
        for n in self.c.nodes:
            n.write_config()
        self.old = self.c.nodes[2]
        for n in self.c.nodes:
            n.start(wrapper=old_wrapper() if n is self.old else ())
        self.c.init()
        self.c.wait_unsealed()

    def leader_view(self):
        leader = self.c.leader()
        st = leader.status()
        return st, {m["id"]: m for m in (st or {}).get("members", [])}

    def test_mixed_versions_then_upgrade(self):
        c, old = self.c, self.old
        # Every member's level reaches the leader; the old one holds the version.
        def levels_known():
            st, members = self.leader_view()
            if st and all(m.get("feature_level") for m in members.values()):
                return st, members
            return None
        st, members = wait_for(levels_known, 30, "the leader to know every member's level")
        self.assertEqual(members[old.id]["feature_level"], 1, members)
        self.assertEqual({members[i]["feature_level"] for i in (1, 2)}, {2}, members)
        # A while later (several report ticks) the version is still 1 everywhere.
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            for n in c.nodes:
                s = n.status()
                if s:
                    self.assertEqual(s["cluster_version"], 1, (n.id, s))
            time.sleep(0.3)
        self.assertEqual(old.status()["feature_level"], 1)
        # Without a token, status says nothing about versions or members.
        rc, bare = c.nodes[0].cli("status", token=False)
        self.assertEqual(rc, 0, bare)
        self.assertNotIn("cluster_version", bare)
        self.assertEqual(bare.get("members"), [], bare)

        # A level-2 command is refused while node 3 runs level 1.
        for cmd in LEVEL2_COMMANDS:
            rc, out = c.cli(*cmd)
            msg = (out.get("error") or {}).get("message", "")
            self.assertEqual(out["error"]["code"], "UNAVAILABLE", out)
            self.assertIn("cluster feature version 1: this command needs 2; members not yet "
                          "upgraded: %d (level 1)" % old.id, msg)
        self.assertTrue(old.alive(), old.log_tail())
        rc, out = c.cli("kv", "put", "up/a", "v=1")  # level-1 writes go on
        self.assertEqual(rc, 0, out)

        # Node 3 restarts with the new build on its data: the version rises.
        old.kill(signal.SIGTERM)
        old.start()
        for n in c.nodes:
            wait_for(lambda: (n.status() or {}).get("cluster_version") == 2, 30,
                     "node %d at cluster version 2" % n.id)
        rc, out = old.cli("kv", "get", "up/a")
        self.assertEqual(rc, 0, out)
        for cmd in LEVEL2_COMMANDS:  # the refused commands now work
            rc, out = c.cli(*cmd)
            self.assertEqual(rc, 0, out)

        # An old build refuses a state at version 2 (it restarts on the same data).
        old.kill(signal.SIGTERM)
        with self.assertRaises(AssertionError):
            old.start(wrapper=old_wrapper())
        self.assertNotEqual(old.proc.wait(30), 0)
        self.assertIn("the state is at cluster feature version 2, unknown to this build "
                      "(feature level 1): upgrade this node before it rejoins", old.log_tail(60))

        # An old build whose state lost its last commits (here: all of them)
        # replays its own log, meets the ClusterVersion entry and stops there,
        # saying which entry.
        shutil.rmtree(os.path.join(old.data_dir, "state"))
        try:
            old.start(wrapper=old_wrapper())
        except AssertionError:
            pass  # it may stop before it prints ready
        code = wait_for(lambda: old.proc.poll(), 60, "the level-1 node to stop")
        self.assertNotEqual(code, 0)
        tail = old.log_tail(80)
        self.assertRegex(tail, r"entry \d+ holds command type 45, unknown to this build \(feature "
                               r"level 1\): upgrade this node before it rejoins")
        self.assertIn("mayflyd: stopped", tail)
        # The other two go on.
        rc, out = c.cli("kv", "put", "up/c", "v=3", addr=c.addrs(c.nodes[:2]))
        self.assertEqual(rc, 0, out)


if __name__ == "__main__":
    unittest.main()

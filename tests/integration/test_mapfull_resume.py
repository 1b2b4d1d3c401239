"""Storage pressure on one node (issue 15, the node's half): the Raft log's
LMDB map fills up at commit time. The node must name the true cause (in its
log and in the errors), keep serving stale reads, refuse writes and
linearizable reads as UNAVAILABLE (another node may have room), resume by
itself once the operator enlarges log_map_size_mb in the config file (no
restart), and lose no acknowledged write. Needs no root: the map is small
(16 MiB), not the disk."""
import json
import os
import tempfile
import unittest

from tests.harness.cluster import Cluster, ClusterCase, wait_for

VALUE_BYTES = 150 * 1024


class MapFull(ClusterCase):
    size = 1
    # The quota would refuse the writes before the map fills (the alarm's
    # own tests prove that): here the map must fill at commit time.
    extra_config = {"log_map_size_mb": 16, "state_map_size_mb": 512,
                    "storage_quota_enabled": 0}
    small = "log_map_size_mb"  # the map that fills

    def value(self, i):
        return ("%06d" % i) * (VALUE_BYTES // 6)

    # The CLI retries UNAVAILABLE until its timeout (another node may
    # answer): short timeouts where a refusal is expected.
    def put(self, i, tmp, timeout="15s"):
        path = os.path.join(tmp, "v")
        with open(path, "w") as f:
            f.write(self.value(i))
        return self.n.cli("kv", "put", "fill/%d" % i, "v=@" + path, timeout=timeout)

    def get(self, i, stale=False, timeout="10s"):
        args = ["-consistency", "stale"] if stale else []
        return self.n.cli(*(args + ["kv", "get", "fill/%d" % i]), timeout=timeout)

    def test_map_full_blocks_then_resumes_after_the_map_grows(self):
        acked, unknown = [], []
        with tempfile.TemporaryDirectory() as tmp:
            # 16 MiB of map holds well under 16 MiB / 150 KiB ~ 110 such entries.
            for i in range(200):
                rc, out = self.put(i, tmp)
                if rc != 0:
                    self.assertIn(out["error"]["code"], ("UNKNOWN_OUTCOME", "UNAVAILABLE"), out)
                    unknown.append(i)
                    break
                acked.append(i)
            self.assertTrue(unknown, "the 16 MiB log map never filled")
            self.assertGreater(len(acked), 20)

            # The true cause, in the log and in the errors.
            wait_for(lambda: "LMDB map full: map_size 16 MiB" in self.n.log_tail(400), 10,
                     "the cause in the log")
            self.assertIn("storage-blocked", self.n.log_tail(400))
            self.assertNotIn("this node stops serving", self.n.log_tail(400))
            rc, out = self.put(1000, tmp, timeout="2s")
            self.assertEqual(rc, 2, out)
            self.assertEqual(out["error"]["code"], "UNAVAILABLE", out)
            self.assertIn("LMDB map full: map_size 16 MiB", out["error"]["message"])
            rc, out = self.get(acked[0], timeout="2s")
            self.assertEqual(out.get("error", {}).get("code"), "UNAVAILABLE", out)
            self.assertIn("LMDB map full", out["error"]["message"])

            # Stale reads of the applied state go on.
            for i in (acked[0], acked[-1]):
                rc, out = self.get(i, stale=True)
                self.assertEqual(rc, 0, out)
                self.assertEqual(out["data"]["v"], self.value(i))
            self.assertTrue(self.n.alive())

            # The operator grows the map in the config file: no restart.
            with open(self.n.config_path) as f:
                cfg = json.load(f)
            cfg[self.small] = 64
            with open(self.n.config_path, "w") as f:
                json.dump(cfg, f)
            wait_for(lambda: self.put(2000, tmp, timeout="3s")[0] == 0, 30, "writes resume")
            self.assertIn("resumed", self.n.log_tail(400))
            self.assertTrue(self.n.alive())

        # Nothing acknowledged was lost; the unknown one is whole or absent.
        for i in acked:
            rc, out = self.get(i)
            self.assertEqual(rc, 0, "fill/%d: %s" % (i, out))
            self.assertEqual(out["data"]["v"], self.value(i), "fill/%d" % i)
        for i in unknown:
            rc, out = self.get(i)
            if rc == 0:
                self.assertEqual(out["data"]["v"], self.value(i))
            else:
                self.assertEqual(out["error"]["code"], "NOT_FOUND", out)
        rc, out = self.get(2000)
        self.assertEqual(rc, 0, out)


class StateMapFull(MapFull):
    """The same with the state database's map filling first (at apply): the
    state is reopened with the larger map and the entries after its applied
    index are applied again."""
    extra_config = {"log_map_size_mb": 512, "state_map_size_mb": 16,
                    "storage_quota_enabled": 0}
    small = "state_map_size_mb"


class LeaderMapFull(unittest.TestCase):
    """Three nodes; only node 1's log map is small, and node 1 leads. When its
    map fills, it hands leadership to a follower (TimeoutNow) and the cluster
    keeps writing; node 1 keeps serving stale reads, and once its map is
    enlarged in its config file it resumes and catches up, no restart."""

    @classmethod
    def setUpClass(cls):
        cls.c = Cluster(3, extra_config={"storage_quota_enabled": 0})
        try:
            for n in cls.c.nodes:
                n.write_config({"log_map_size_mb": 16} if n.id == 1 else None)
            for n in cls.c.nodes:
                n.start()
            cls.c.init()
            cls.c.wait_unsealed()
        except BaseException:
            cls.c.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.c.cleanup()

    def put(self, key, i, tmp, timeout="15s"):
        path = os.path.join(tmp, "v")
        with open(path, "w") as f:
            f.write(("%06d" % i) * (VALUE_BYTES // 6))
        return self.c.cli("kv", "put", key, "v=@" + path, timeout=timeout)

    def test_a_leader_that_cannot_persist_hands_off(self):
        c, n1 = self.c, self.c.nodes[0]
        if c.leader().id != 1:
            rc, out = c.cli("operator", "transfer-leader", "-to", "1", timeout="10s")
            self.assertEqual(rc, 0, out)
            wait_for(lambda: c.leader().id == 1, 15, "node 1 leads")
        acked = []
        with tempfile.TemporaryDirectory() as tmp:
            for i in range(200):
                if "handing leadership" in n1.log_tail(400):
                    break
                rc, out = self.put("lf/%d" % i, i, tmp)
                if rc == 0:
                    acked.append(i)
            self.assertIn("LMDB map full: map_size 16 MiB", n1.log_tail(400))
            self.assertIn("handing leadership to node", n1.log_tail(400))
            # The others lead and write on, without node 1.
            new = c.leader(among=c.nodes[1:])
            self.assertNotEqual(new.id, 1)
            for i in range(1000, 1005):
                rc, out = self.put("lf/%d" % i, i, tmp)
                self.assertEqual(rc, 0, out)
                acked.append(i)
            # Node 1: stale reads of its applied state; linearizable ones refused with the cause.
            rc, out = n1.cli("-consistency", "stale", "kv", "get", "lf/%d" % acked[0])
            self.assertEqual(rc, 0, out)
            rc, out = n1.cli("kv", "get", "lf/%d" % acked[0], timeout="2s")
            self.assertEqual(out.get("error", {}).get("code"), "UNAVAILABLE", out)
            self.assertIn("LMDB map full", out["error"]["message"])
            # Grow node 1's map: it resumes and catches up with no restart.
            with open(n1.config_path) as f:
                cfg = json.load(f)
            cfg["log_map_size_mb"] = 128
            with open(n1.config_path, "w") as f:
                json.dump(cfg, f)
            wait_for(lambda: n1.cli("kv", "get", "lf/1004", timeout="2s")[0] == 0, 30,
                     "node 1 resumed and caught up")
            self.assertIn("resumed", n1.log_tail(400))
        for i in acked:
            rc, out = n1.cli("kv", "get", "lf/%d" % i)
            self.assertEqual(rc, 0, "lf/%d: %s" % (i, out))
            self.assertEqual(out["data"]["v"], ("%06d" % i) * (VALUE_BYTES // 6))


if __name__ == "__main__":
    unittest.main()

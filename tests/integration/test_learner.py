"""A node configured as a learner is a learner in its own eyes too (issue 12:
it used to add itself to its voters, so status called it a voter/follower
while the leader listed it as a learner, and misconfigured learners could
count each other into a quorum)."""
import unittest

from tests.harness.cluster import Cluster, wait_for


class Learner(unittest.TestCase):
    def setUp(self):
        self.c = Cluster(4)
        self.addCleanup(self.c.cleanup)
        peers = [{"id": n.id, "addr": n.peer_addr, "api_addr": n.api_addr,
                  "learner": n.id == 4} for n in self.c.nodes]
        for n in self.c.nodes:
            n.write_config(extra={"peers": peers})
        for n in self.c.nodes:
            n.start()
        self.c.init()
        self.c.wait_unsealed()

    def test_learner_knows_it_does_not_vote(self):
        """Node 4 says learner; the leader lists it as a non-voter; it never
        leads; writes still commit with the three voters and reach it."""
        c = self.c
        learner = c.nodes[3]
        st = wait_for(lambda: (learner.status() or {}).get("role") == "learner" and
                      learner.status(), 10, "node 4 to call itself a learner")
        self.assertEqual(st["role"], "learner", st)
        leader = c.leader(among=c.nodes[:3])
        self.assertNotEqual(leader.id, 4)
        members = {m["id"]: m for m in leader.status()["members"]}
        self.assertFalse(members[4]["voter"], members)
        self.assertTrue(all(members[i]["voter"] for i in (1, 2, 3)), members)
        rc, out = c.cli("kv", "put", "l/x", "v=1")
        self.assertEqual(rc, 0, out)
        rc, out = learner.cli("kv", "get", "l/x")
        self.assertEqual(rc, 0, out)
        self.assertEqual(out["data"], {"v": "1"})


if __name__ == "__main__":
    unittest.main()

"""Leadership on a real 3-node cluster (issue 13, "Leadership"; CLI.md
"Operations"): operator transfer-leader [-to N] and operator step-down move
leadership and answer once it moved, every node agrees on the new leader and
writes go on; refusals are clear; both need sudo on sys/raft/...; and the
CLI moves past a sealed node in -addr (issue 13's finding)."""
import json
import os
import signal
import tempfile
import time
import unittest

from tests.harness.cluster import ClusterCase, wait_for


class Leadership(ClusterCase):
    size = 3

    def root(self, *args, node=None, addr=None):
        rc, out = (node.cli(*args) if node else self.c.cli(*args, addr=addr))
        self.assertEqual(rc, 0, out)
        return out

    def agreed_leader(self):
        """The leader every node's status names (the harness waits for one)."""
        return self.c.leader(timeout=10)

    def assert_writes(self, tag):
        """A write and a linearizable read through every node after the move."""
        for n in self.c.nodes:
            self.root("kv", "put", "lead/%s/%d" % (tag, n.id), "v=%d" % n.id, node=n)
        for n in self.c.nodes:
            got = self.root("kv", "get", "lead/%s/%d" % (tag, n.id), node=n)
            self.assertEqual(got["data"], {"v": str(n.id)}, got)

    def followers(self, leader):
        return [n for n in self.c.nodes if n.id != leader.id]

    def test_a_transfer_to_a_named_node(self):
        """transfer-leader -to F on the leader answers F; every node then says
        F leads, and writes work."""
        old = self.agreed_leader()
        target = self.followers(old)[0]
        out = self.root("operator", "transfer-leader", "-to", str(target.id), node=old)
        self.assertEqual(out, {"leader_id": target.id})
        self.assertEqual(self.agreed_leader().id, target.id)
        self.assert_writes("named")

    def test_b_transfer_without_to_through_a_follower(self):
        """Without -to, sent to a follower (which forwards it): leadership goes
        to another voter, and the answer names it."""
        old = self.agreed_leader()
        via = self.followers(old)[1]
        out = self.root("operator", "transfer-leader", node=via)
        self.assertNotEqual(out["leader_id"], old.id, out)
        self.assertIn(out["leader_id"], [n.id for n in self.followers(old)])
        self.assertEqual(self.agreed_leader().id, out["leader_id"])
        self.assert_writes("any")

    def test_c_step_down(self):
        """step-down answers {} once the leader no longer leads; another node
        leads, agreed by all, and writes work."""
        old = self.agreed_leader()
        self.assertEqual(self.root("operator", "step-down", node=old), {})
        st = old.status()
        self.assertNotEqual(st["leader_id"], old.id, st)
        self.assertNotEqual(self.agreed_leader().id, old.id)
        self.assert_writes("down")

    def test_d_refusals(self):
        """-to an unknown id: NOT_FOUND naming it; -to the leader: answered at
        once, nothing moves; -to 0: refused by the CLI."""
        lead = self.agreed_leader()
        rc, out = lead.cli("operator", "transfer-leader", "-to", "9")
        self.assertEqual(rc, 2, out)
        self.assertEqual(out["error"]["code"], "NOT_FOUND", out)
        self.assertIn("node 9 is not a member", out["error"]["message"])
        t0 = time.monotonic()
        out = self.root("operator", "transfer-leader", "-to", str(lead.id),
                        node=self.followers(lead)[0])
        self.assertEqual(out, {"leader_id": lead.id})
        self.assertLess(time.monotonic() - t0, 2.0)
        self.assertEqual(self.agreed_leader().id, lead.id)
        rc, out = lead.cli("operator", "transfer-leader", "-to", "0")
        self.assertEqual(rc, 1, out)

    def test_e_sudo_needed(self):
        """A token with read and update on sys/raft/* but not sudo is refused
        both operations on every node, and leadership stays; refusals and a
        root step-down are audited like any request."""
        self.root("audit", "enable", "-type", "file", "-path",
                  os.path.join(self.c.dir, "audit-{node}.log"), "main")
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump({"path": {"sys/raft/*": {"capabilities": ["read", "update"]}}}, f)
        self.addCleanup(os.unlink, f.name)
        self.root("policy", "write", "raft-no-sudo", f.name)
        tok = self.root("token", "create", "-policy", "raft-no-sudo", "-ttl", "1h")["token"]
        lead = self.agreed_leader()
        for n in self.c.nodes:
            for args in (["operator", "transfer-leader"], ["operator", "step-down"]):
                rc, out = n.cli(*args, token=tok)
                self.assertEqual(rc, 2, out)
                self.assertEqual(out["error"]["code"], "PERMISSION_DENIED", out)
                self.assertIn("sys/raft/", out["error"]["message"])
        self.assertEqual(self.agreed_leader().id, lead.id)
        for n in self.c.nodes:
            wait_for(lambda: ("operator.transfer-leader", False, "PERMISSION_DENIED")
                     in self.c.audit_ops(n), 5, "the refusal in node %d's audit file" % n.id)
        self.assertEqual(self.root("operator", "step-down", node=self.followers(lead)[0]), {})
        wait_for(lambda: ("operator.step-down", True, "OK") in self.c.audit_ops(lead), 5,
                 "the step-down in the old leader's audit file")
        self.assertNotEqual(self.agreed_leader().id, lead.id)

    def test_f_deadline(self):
        """A target that cannot answer (SIGSTOP) never takes over: the leader
        answers UNAVAILABLE once its wait is over, naming the time waited (the
        client then retries until its own timeout, and a retry may be refused
        at once since the stopped node's clock measurement went stale: both
        are UNAVAILABLE; the leader's log shows the deadline)."""
        lead = self.agreed_leader()
        stuck = self.followers(lead)[0]
        stuck.kill(signal.SIGSTOP)
        self.addCleanup(stuck.kill, signal.SIGCONT)
        t0 = time.monotonic()
        rc, out = lead.cli("operator", "transfer-leader", "-to", str(stuck.id), timeout="4s")
        self.assertEqual(rc, 2, out)
        self.assertEqual(out["error"]["code"], "UNAVAILABLE", out)
        self.assertGreaterEqual(time.monotonic() - t0, 3.0)
        self.assertIn("leadership did not move to node %d within 3000 ms" % stuck.id,
                      lead.log_tail(50))
        stuck.kill(signal.SIGCONT)
        self.agreed_leader()

    def test_z_sealed_node_first_in_addr(self):
        """A follower restarted without its unseal key stays sealed; kv get
        through -addr sealed,leader answers from the leader, and through the
        sealed node alone SEALED comes at once (not after the timeout)."""
        self.root("kv", "put", "lead/sealed", "v=1")
        lead = self.agreed_leader()
        sealed = self.followers(lead)[0]
        sealed.kill()
        sealed.write_config()
        with open(sealed.config_path) as f:
            cfg = json.load(f)
        cfg.pop("auto_unseal_key_file", None)
        with open(sealed.config_path, "w") as f:
            json.dump(cfg, f)
        sealed.start()
        wait_for(lambda: (sealed.status() or {}).get("sealed") is True, 10,
                 "node %d up and sealed" % sealed.id)
        addr = "%s,%s" % (sealed.api_addr, lead.api_addr)
        got = self.root("kv", "get", "lead/sealed", addr=addr)
        self.assertEqual(got["data"], {"v": "1"}, got)
        self.root("kv", "put", "lead/sealed2", "v=2", addr=addr)
        t0 = time.monotonic()
        rc, out = self.c.cli("kv", "get", "lead/sealed", addr=sealed.api_addr, timeout="8s")
        self.assertEqual(rc, 2, out)
        self.assertEqual(out["error"]["code"], "SEALED", out)
        self.assertLess(time.monotonic() - t0, 4.0)


if __name__ == "__main__":
    unittest.main()

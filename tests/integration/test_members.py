"""`mayfly operator members list` on a real 3-node cluster (issue 13,
"Membership", the list; CLI.md "Operations"): the leader's view of every
member, answered through the leader and through a follower (forwarded); a
stopped follower turns unreachable with its last contact growing while the
others stay reachable; read on sys/raft/members is needed, and the request is
audited as operator.members-list."""
import json
import os
import signal
import tempfile
import time
import unittest

from tests.harness.cluster import ClusterCase, wait_for

ELECTION_MS = 150  # the default config: 15 ticks of 10 ms


class Members(ClusterCase):
    size = 3

    def members(self, node, token=True):
        rc, out = node.cli("operator", "members", "list", token=token)
        self.assertEqual(rc, 0, out)
        return out

    def by_id(self, out):
        return {m["id"]: m for m in out["members"]}

    def test_a_list_through_leader_and_follower(self):
        """Both answer the leader's view: 3 voters with their configured
        addresses, leader_id right, all reachable, the leader's own contact 0
        and match its last index; lag settles to 0 once a write is acked."""
        lead = self.c.leader(timeout=10)
        rc, out = lead.cli("kv", "put", "members/a", "v=1")
        self.assertEqual(rc, 0, out)
        follower = next(n for n in self.c.nodes if n.id != lead.id)
        for via in (lead, follower):
            out = self.members(via)
            self.assertEqual(set(out), {"members", "leader_id"}, out)
            self.assertEqual(out["leader_id"], lead.id, out)
            ms = self.by_id(out)
            self.assertEqual(sorted(ms), [n.id for n in self.c.nodes], out)
            self.assertEqual([m["id"] for m in out["members"]], sorted(ms), out)
            for n in self.c.nodes:
                m = ms[n.id]
                self.assertEqual(set(m), {"id", "addr", "api_addr", "zone", "voter", "reachable",
                                          "last_contact_ms", "match_index", "lag_entries"}, m)
                self.assertEqual(m["addr"], n.peer_addr, m)
                self.assertEqual(m["api_addr"], n.api_addr, m)
                self.assertTrue(m["voter"], m)
                self.assertTrue(m["reachable"], m)
                self.assertLessEqual(m["last_contact_ms"], 2 * ELECTION_MS, m)
                self.assertLess(m["lag_entries"], 10, m)
            self.assertEqual(ms[lead.id]["last_contact_ms"], 0)
            self.assertEqual(ms[lead.id]["lag_entries"], 0)
            self.assertGreater(ms[lead.id]["match_index"], 0)
        # Idle: every follower acknowledges the leader's whole log.
        wait_for(lambda: all(m["lag_entries"] == 0 and m["match_index"] > 0
                             for m in self.members(follower)["members"]), 5,
                 "every member caught up")
        rc, out = self.c.cli("operator", "members", "list", "-format", "table",
                             addr=follower.api_addr)
        self.assertEqual(rc, 0, out)
        rows = out["raw"].strip().splitlines()
        self.assertEqual(len(rows), 4, rows)
        self.assertTrue(rows[0].split()[0] == "ID" and "REACHABLE" in rows[0], rows)
        lead_row = next(r.split() for r in rows[1:] if r.split()[0] == str(lead.id))
        self.assertIn("leader", lead_row)

    def test_b_read_needed(self):
        """A token with sudo on sys/raft/* other than members is refused on
        every node (PERMISSION_DENIED naming the path); one with read on
        sys/raft/members is served; both are audited as operator.members-list."""
        rc, out = self.n.cli("audit", "enable", "-type", "file", "-path",
                             os.path.join(self.c.dir, "audit-{node}.log"), "main")
        self.assertEqual(rc, 0, out)
        pols = {"raft-other": {"sys/raft/step-down": {"capabilities": ["sudo", "update"]}},
                "raft-members": {"sys/raft/members": {"capabilities": ["read"]}}}
        toks = {}
        for name, paths in pols.items():
            with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
                json.dump({"path": paths}, f)
            self.addCleanup(os.unlink, f.name)
            self.ok("policy", "write", name, f.name)
            toks[name] = self.ok("token", "create", "-policy", name, "-ttl", "1h")["token"]
        for n in self.c.nodes:
            rc, out = n.cli("operator", "members", "list", token=toks["raft-other"])
            self.assertEqual(rc, 2, out)
            self.assertEqual(out["error"]["code"], "PERMISSION_DENIED", out)
            self.assertIn("sys/raft/members", out["error"]["message"])
            self.assertEqual(len(self.members(n, token=toks["raft-members"])["members"]), 3)
        lead = self.c.leader(timeout=10)
        wait_for(lambda: ("operator.members-list", True, "OK") in self.c.audit_ops(lead), 5,
                 "an allowed members list in the leader's audit file")
        for n in self.c.nodes:
            wait_for(lambda: ("operator.members-list", False, "PERMISSION_DENIED")
                     in self.c.audit_ops(n), 5, "the refusal in node %d's audit file" % n.id)

    def test_c_stopped_follower(self):
        """SIGSTOP a follower: within a few election timeouts the leader says
        it is unreachable, its last contact grows past 2 election timeouts,
        the others stay reachable; after SIGCONT it is reachable again."""
        lead = self.c.leader(timeout=10)
        stuck, other = [n for n in self.c.nodes if n.id != lead.id]
        stuck.kill(signal.SIGSTOP)
        self.addCleanup(stuck.kill, signal.SIGCONT)
        t0 = time.monotonic()
        first = wait_for(lambda: (lambda m: m if not m[stuck.id]["reachable"] else None)(
            self.by_id(self.members(other))), 10, "node %d unreachable" % stuck.id)
        self.assertLess(time.monotonic() - t0, 5.0)
        self.assertGreater(first[stuck.id]["last_contact_ms"], 2 * ELECTION_MS, first)
        self.assertTrue(first[other.id]["reachable"], first)
        self.assertTrue(first[lead.id]["reachable"], first)
        c1 = first[stuck.id]["last_contact_ms"]
        later = wait_for(lambda: (lambda m: m if m[stuck.id]["last_contact_ms"] > c1 + 50
                                  else None)(self.by_id(self.members(lead))), 5,
                         "node %d's last contact growing" % stuck.id)
        self.assertFalse(later[stuck.id]["reachable"], later)
        self.assertTrue(later[other.id]["reachable"], later)
        self.assertLessEqual(later[other.id]["last_contact_ms"], 2 * ELECTION_MS, later)
        self.assertEqual(self.members(other)["leader_id"], lead.id)
        rc, out = lead.cli("kv", "put", "members/c", "v=1")
        self.assertEqual(rc, 0, out)
        stuck.kill(signal.SIGCONT)
        wait_for(lambda: all(m["reachable"] for m in self.members(lead)["members"]), 10,
                 "node %d reachable again" % stuck.id)


if __name__ == "__main__":
    unittest.main()

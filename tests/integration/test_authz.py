"""Authorization on a real 3-node cluster, tried as an attacker would (issue
11's list): a token without rights gets PERMISSION_DENIED for every step,
through any node (writes are decided on the node they entered and again on
the leader; reads after the read index applied), and a policy grants exactly
what it says."""
import json
import os
import tempfile
import unittest

from tests.harness.cluster import ClusterCase


def denied(test, rc_out, what):
    rc, out = rc_out
    test.assertEqual(rc, 2, "%s: %s" % (what, out))
    test.assertEqual(out.get("error", {}).get("code"), "PERMISSION_DENIED", "%s: %s" % (what, out))


class Attacker(ClusterCase):
    size = 3

    def root(self, *args, node=None):
        rc, out = (node or self.c).cli(*args)
        self.assertEqual(rc, 0, out)
        return out

    def child(self, *policies):
        args = ["token", "create", "-ttl", "1h"]
        for p in policies:
            args += ["-policy", p]
        return self.root(*args)["token"]

    def test_a_token_without_rights_gets_nothing(self):
        """A child made with -policy readonly-nothing is refused every step of
        the attack the issue lists, on every node."""
        c = self.c
        self.root("kv", "put", "app/db", "password=hunter2")
        lease = self.root("lease", "grant", "-ttl", "10m")["lease_id"]
        me = self.child("readonly-nothing")
        root_acc = self.root("token", "lookup")["accessor"]
        for node in c.nodes:
            denied(self, node.cli("kv", "get", "app/db", token=me), "read a secret")
            denied(self, node.cli("kv", "put", "app/db", "password=x", token=me), "overwrite")
            denied(self, node.cli("kv", "list", "app/", token=me), "list")
            denied(self, node.cli("kv", "destroy", "app/db", token=me), "destroy")
            denied(self, node.cli("engine", "enable", "-type", "pki", "x", token=me), "enable")
            denied(self, node.cli("lease", "list", token=me), "list leases")
            denied(self, node.cli("lease", "revoke", lease, token=me), "revoke root's lease")
            denied(self, node.cli("lease", "revoke", "-prefix", "lease/", token=me), "prefix")
            denied(self, node.cli("lease", "lookup", lease, token=me), "lookup root's lease")
            denied(self, node.cli("token", "revoke", "-accessor", root_acc, token=me),
                   "revoke the root token by accessor")
            denied(self, node.cli("token", "lookup", "-accessor", root_acc, token=me),
                   "look up the root token")
            denied(self, node.cli("operator", "seal", token=me), "seal")
            denied(self, node.cli("lease", "grant", "-ttl", "1m", token=me), "grant")
        # The administrative surfaces added with authorization, too.
        pol = os.path.join(tempfile.mkdtemp(), "p.json")
        with open(pol, "w") as f:
            json.dump({"path": {"*": {"capabilities": ["sudo", "read", "update"]}}}, f)
        denied(self, c.cli("policy", "write", "mine", pol, token=me), "policy write")
        denied(self, c.cli("policy", "read", "default", token=me), "policy read")
        denied(self, c.cli("policy", "list", token=me), "policy list")
        denied(self, c.cli("audit", "enable", "-type", "file", "-path", "/tmp/x", "a",
                           token=me), "audit enable")
        denied(self, c.cli("audit", "list", token=me), "audit list")
        denied(self, c.cli("audit", "hash", "x", token=me), "audit hash")
        denied(self, c.cli("quota", "set", "-max-leases", "1", "q", token=me), "quota set")
        denied(self, c.cli("auth", "enable", "-type", "jwt", "j", token=me), "auth enable")
        denied(self, c.cli("auth", "list", token=me), "auth list")
        denied(self, c.cli("token", "create", "-policy", "root", "-ttl", "8760h", "-orphan",
                           token=me), "orphan root token")
        denied(self, c.cli("token", "create", "-policy", "root", token=me), "child with root")
        # Nothing of it happened.
        self.assertEqual(self.root("kv", "get", "app/db")["data"], {"password": "hunter2"})
        self.assertEqual(self.root("lease", "lookup", lease)["state"], "active")
        self.assertEqual(self.root("token", "lookup")["accessor"], root_acc)
        self.assertFalse(c.leader().status()["sealed"])

    def test_default_policy_covers_own_token_and_leases(self):
        """Every token may look itself up and renew, look up and revoke its own
        leases (the default policy); never another token's lease."""
        writer = self.write_policy("lease-writer", {"path": {
            "sys/leases/grant/*": {"capabilities": ["update"]}}})
        tok = self.child(writer)
        rc, out = self.c.cli("token", "lookup", token=tok)
        self.assertEqual(rc, 0, out)
        rc, out = self.c.cli("lease", "grant", "-ttl", "5m", token=tok)
        self.assertEqual(rc, 0, out)
        mine = out["lease_id"]
        self.assertEqual(self.c.cli("lease", "lookup", mine, token=tok)[0], 0)
        self.assertEqual(self.c.cli("lease", "renew", mine, token=tok)[0], 0)
        others = self.root("lease", "grant", "-ttl", "5m")["lease_id"]
        denied(self, self.c.cli("lease", "renew", others, token=tok), "renew another's lease")
        self.assertEqual(self.c.cli("lease", "revoke", mine, token=tok)[0], 0)

    def write_policy(self, name, doc):
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(doc, f)
        self.addCleanup(os.unlink, f.name)
        self.root("policy", "write", name, f.name)
        return name

    def test_a_policy_grants_what_it_says(self):
        """read on kv/data/team-a/* reads there and nowhere else; create alone
        writes a new path but cannot overwrite an existing one; deny wins."""
        p = self.write_policy("team-a", {"path": {
            "kv/data/team-a/*": {"capabilities": ["read", "create"]},
            "kv/data/team-a/secret/*": {"capabilities": ["deny"]}}})
        tok = self.child(p)
        self.root("kv", "put", "team-a/x", "v=1")
        self.root("kv", "put", "team-b/x", "v=1")
        self.root("kv", "put", "team-a/secret/y", "v=1")
        for node in self.c.nodes:
            rc, out = node.cli("kv", "get", "team-a/x", token=tok)
            self.assertEqual(rc, 0, out)
            denied(self, node.cli("kv", "get", "team-b/x", token=tok), "other team")
            denied(self, node.cli("kv", "get", "team-a/secret/y", token=tok), "deny wins")
        rc, out = self.c.cli("kv", "put", "team-a/new", "v=1", token=tok)
        self.assertEqual(rc, 0, out)
        rc, out = self.c.cli("kv", "put", "team-a/x", "v=2", token=tok)
        self.assertEqual(rc, 2, out)  # create only: the path exists
        self.assertEqual(out["error"]["code"], "CAS_MISMATCH", out)
        self.assertEqual(self.root("kv", "get", "team-a/x")["data"], {"v": "1"})

    def test_policy_max_ttl_caps_issue_and_renew(self):
        """A rule's max_ttl caps the lease it grants, and the cap recorded on
        the lease holds on renew (under the default policy)."""
        p = self.write_policy("short-leases", {"path": {
            "sys/leases/grant/*": {"capabilities": ["update"], "max_ttl": "30s"}}})
        tok = self.child(p)
        rc, out = self.c.cli("lease", "grant", "-ttl", "1h", token=tok)
        self.assertEqual(rc, 0, out)
        self.assertLessEqual(out["ttl_ms"], 30000)
        self.assertLessEqual(out["max_ttl_ms"], 30000)
        rc, ren = self.c.cli("lease", "renew", "-increment", "1h", out["lease_id"], token=tok)
        self.assertEqual(rc, 0, ren)
        self.assertLessEqual(ren["expire_at_ms"], out["issued_ms"] + 30000)

    def test_binding_a_path_needs_the_lease_and_destroy(self):
        """kv put -lease binds a path to a lease only for the lease's owner
        holding update on kv/destroy/PATH (the lease's end destroys every
        version)."""
        p = self.write_policy("binder", {"path": {
            "kv/data/bind/*": {"capabilities": ["create", "update", "read"]},
            "sys/leases/grant/*": {"capabilities": ["update"]}}})
        tok = self.child(p)
        self.root("kv", "put", "bind/a", "v=1")
        others = self.root("lease", "grant", "-ttl", "5m")["lease_id"]
        rc, mine = self.c.cli("lease", "grant", "-ttl", "5m", token=tok)
        self.assertEqual(rc, 0, mine)
        denied(self, self.c.cli("kv", "put", "-lease", others, "bind/a", "v=2", token=tok),
               "bind another token's lease")
        denied(self, self.c.cli("kv", "put", "-lease", mine["lease_id"], "bind/a", "v=2",
                                token=tok), "bind without destroy rights")
        self.assertEqual(self.root("kv", "get", "bind/a")["data"], {"v": "1"})
        self.write_policy("binder", {"path": {
            "kv/data/bind/*": {"capabilities": ["create", "update", "read"]},
            "kv/destroy/bind/*": {"capabilities": ["update"]},
            "sys/leases/grant/*": {"capabilities": ["update"]}}})
        rc, out = self.c.cli("kv", "put", "-lease", mine["lease_id"], "bind/a", "v=2", token=tok)
        self.assertEqual(rc, 0, out)

    def test_status_without_rights_says_little(self):
        """Without a token (or without read on sys/status) status answers
        whether the node is initialised, sealed and who leads; nothing else."""
        for tok in (False, self.child("nothing")):
            rc, out = self.c.nodes[1].cli("status", token=tok)
            self.assertEqual(rc, 0, out)
            self.assertTrue(out["initialized"])
            self.assertFalse(out["sealed"])
            self.assertTrue(out["leader_id"])
            self.assertFalse(out.get("members"), out)
            self.assertFalse(out.get("term"), out)
        rc, out = self.c.nodes[1].cli("status")
        self.assertEqual(len(out["members"]), 3, out)
        self.assertTrue(out["term"])

    def test_revoked_token_is_refused_by_every_node_at_once(self):
        """A token revoked through the leader is refused by the very next read
        on each follower: the read is authorised after its read index applied."""
        p = self.write_policy("reader", {"path": {"kv/data/*": {"capabilities": ["read"]}}})
        tok = self.child(p)
        self.root("kv", "put", "r/x", "v=1")
        for node in self.c.nodes:
            self.assertEqual(node.cli("kv", "get", "r/x", token=tok)[0], 0)
        self.root("token", "revoke", tok, node=self.c.leader())
        for node in self.c.nodes:
            rc, out = node.cli("kv", "get", "r/x", token=tok)
            self.assertEqual(rc, 2, out)
            self.assertIn(out["error"]["code"], ("UNAUTHENTICATED", "PERMISSION_DENIED"), out)


if __name__ == "__main__":
    unittest.main()

"""The policy API end to end on a 1-node cluster with the root token:
policy write, read, list, delete and check through the real CLI
(../shared/CLI.md "Authorization", "How a policy decides")."""
import json
import os
import unittest

from tests.harness.cluster import ClusterCase

# CLI.md "Worked examples", token policies A and B.
POLICY_A = {"path": {"kv/data/app/*": {"capabilities": ["read", "list"]},
                     "kv/data/app/admin/*": {"capabilities": ["deny"]}}}
POLICY_B = {"path": {"kv/data/app/+/config": {"capabilities": ["read", "update"],
                                              "conditions": {"cidrs": ["10.1.0.0/16"]}}}}


class Policies(ClusterCase):
    def write(self, name, doc):
        self.assertEqual(self.ok("policy", "write", name, "-", stdin=json.dumps(doc)), {})

    def names(self):
        return self.ok("policy", "list")["policies"]

    def check(self, *args):
        return self.ok("policy", "check", *args)

    def test_policy_write_read_list_delete(self):
        """A written policy reads back with the same rules (max_ttl as max_ttl_ms), is listed
        with root and default, and is gone once deleted."""
        doc = {"path": {"kv/data/team/*": {"capabilities": ["read", "list"],
                                           "max_ttl": "1h"},
                        "kv/data/team/+/config": {"capabilities": ["update"],
                                                  "conditions": {"cidrs": ["10.0.0.0/8"]}}}}
        path = os.path.join(self.c.dir, "team.json")  # FILE as well as stdin
        with open(path, "w") as f:
            json.dump(doc, f)
        self.assertEqual(self.ok("policy", "write", "team", path), {})
        out = self.ok("policy", "read", "team")
        self.assertEqual(out["name"], "team")
        want = json.loads(json.dumps(doc))
        del want["path"]["kv/data/team/*"]["max_ttl"]
        want["path"]["kv/data/team/*"]["max_ttl_ms"] = 3600000
        self.assertEqual(out["policy"], want)
        names = self.names()
        self.assertEqual(names, sorted(names))
        for name in ("root", "default", "team"):
            self.assertIn(name, names)

        self.assertEqual(self.ok("policy", "delete", "team"), {})
        self.assertNotIn("team", self.names())
        self.refused("NOT_FOUND", "policy", "read", "team")
        self.refused("NOT_FOUND", "policy", "delete", "team")

    def test_policy_write_refuses_malformed(self):
        """Duplicate keys, unknown capabilities, bad JSON and conditions on deny are refused
        with INVALID_ARGUMENT and the parser's message; nothing is stored."""
        dup = '{"path": {"kv/x": {"capabilities": ["read"]}, "kv/x": {"capabilities": ["list"]}}}'
        msg = self.refused("INVALID_ARGUMENT", "policy", "write", "bad", "-", stdin=dup)
        self.assertIn("duplicate", msg)
        msg = self.refused("INVALID_ARGUMENT", "policy", "write", "bad", "-",
                           stdin='{"path": {"kv/x": {"capabilities": ["fly"]}}}')
        self.assertIn("fly", msg)
        self.refused("INVALID_ARGUMENT", "policy", "write", "bad", "-", stdin='{"path": ')
        self.refused("INVALID_ARGUMENT", "policy", "write", "bad", "-",
                     stdin=json.dumps({"path": {"kv/*": {"capabilities": ["deny"], "conditions":
                                                         {"cidrs": ["10.0.0.0/8"]}}}}))
        self.refused("INVALID_ARGUMENT", "policy", "write", "Bad Name", "-",
                     stdin=json.dumps(POLICY_A))
        self.assertNotIn("bad", self.names())
        self.refused("NOT_FOUND", "policy", "read", "bad")

    def test_policy_builtins_are_protected(self):
        """root can be neither written nor deleted; default can be read and replaced but not
        deleted."""
        self.refused("INVALID_ARGUMENT", "policy", "write", "root", "-",
                     stdin=json.dumps(POLICY_A))
        self.refused("INVALID_ARGUMENT", "policy", "delete", "root")
        self.refused("INVALID_ARGUMENT", "policy", "delete", "default")
        default = self.ok("policy", "read", "default")["policy"]
        self.assertIn("auth/token/lookup-self", default["path"])
        self.write("default", default)  # replacing it is allowed
        self.assertEqual(self.ok("policy", "read", "default")["policy"], default)
        self.assertIn("root", self.names())
        self.assertIn("default", self.names())

    def test_policy_check_worked_examples(self):
        """CLI.md's worked examples: B's pattern decides app/web/config (allowed from inside its
        CIDR, denied from outside), A's deny decides app/admin/config."""
        self.write("ex-a", POLICY_A)
        self.write("ex-b", POLICY_B)
        both = ["-policy", "ex-a", "-policy", "ex-b"]
        out = self.check(*both, "-remote-addr", "10.1.2.3", "read", "kv/data/app/web/config")
        self.assertEqual(out["allowed"], True, out)
        self.assertEqual(out["policy"], "ex-b")
        self.assertEqual(out["rule"], "kv/data/app/+/config")
        self.assertEqual(sorted(out["capabilities"]), ["read", "update"])

        out = self.check(*both, "-remote-addr", "192.168.1.5", "read", "kv/data/app/web/config")
        self.assertEqual(out["allowed"], False, out)
        self.assertEqual(out["rule"], "kv/data/app/+/config")  # A's broader read does not apply

        for addr in ("10.1.2.3", "192.168.1.5"):
            out = self.check(*both, "-remote-addr", addr, "read", "kv/data/app/admin/config")
            self.assertEqual(out["allowed"], False, out)
            self.assertEqual(out["policy"], "ex-a")
            self.assertEqual(out["rule"], "kv/data/app/admin/*")
            self.assertEqual(out["capabilities"], ["deny"])

        # No address at all: a cidrs condition fails.
        out = self.check(*both, "read", "kv/data/app/web/config")
        self.assertEqual(out["allowed"], False, out)
        # Nothing matches: denied, no policy or rule.
        out = self.check(*both, "read", "other/path")
        self.assertEqual((out["allowed"], out["policy"], out["rule"]), (False, None, None), out)
        # default is always added: a token may look itself up.
        out = self.check("-policy", "ex-a", "read", "auth/token/lookup-self")
        self.assertEqual((out["allowed"], out["policy"]), (True, "default"), out)

    def test_policy_check_token_and_claims(self):
        """-token checks that token's policies (plus default); claims conditions are judged
        against -claims; the caller's own root token allows everything."""
        self.write("tok-b", POLICY_B)
        self.write("claims", {"path": {"kv/data/pay/*": {
            "capabilities": ["read"], "conditions": {"claims": {"namespace": "payments"}}}}})
        token = self.ok("token", "create", "-policy", "tok-b", "-ttl", "1h")["token"]
        out = self.check("-token", token, "-remote-addr", "10.1.9.9", "update",
                         "kv/data/app/web/config")
        self.assertEqual((out["allowed"], out["policy"]), (True, "tok-b"), out)
        out = self.check("-token", token, "-remote-addr", "10.1.9.9", "delete",
                         "kv/data/app/web/config")
        self.assertEqual(out["allowed"], False, out)
        self.refused("NOT_FOUND", "policy", "check", "-token", "mf." + "0" * 64, "read", "x")

        out = self.check("-policy", "claims", "-claims", '{"namespace": "payments"}', "read",
                         "kv/data/pay/db")
        self.assertEqual(out["allowed"], True, out)
        out = self.check("-policy", "claims", "-claims", '{"namespace": "web"}', "read",
                         "kv/data/pay/db")
        self.assertEqual(out["allowed"], False, out)
        self.refused("INVALID_ARGUMENT", "policy", "check", "-policy", "claims", "-claims",
                     '{"a": "1", "a": "2"}', "read", "kv/data/pay/db")
        self.refused("INVALID_ARGUMENT", "policy", "check", "-policy", "claims", "-remote-addr",
                     "not-an-ip", "read", "kv/data/pay/db")

        out = self.check("sudo", "sys/seal")  # the caller's own token: root
        self.assertEqual((out["allowed"], out["policy"]), (True, "root"), out)


if __name__ == "__main__":
    unittest.main()

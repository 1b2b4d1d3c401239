"""Keys across the cluster (issue 13, must-have 4): operator rotate makes a
new key term on every node (followers too, and after a restart), old values
stay readable; key-status counts the active term's encryptions; the leader
rotates by itself at a configured use count; operator rekey makes new shares
from a threshold of the old ones, after which the old shares open nothing,
and a node that was down during the rekey takes no share until it has caught
up (with its leader unreachable: UNAVAILABLE), then only the new ones."""
import unittest

from tests.harness.cluster import Cluster, wait_for


def ok(test, rc_out, what=""):
    rc, out = rc_out
    test.assertEqual(rc, 0, "%s: %s" % (what, out))
    return out


def refused(test, rc_out, code, text=None):
    rc, out = rc_out
    test.assertEqual(rc, 2, out)
    test.assertEqual(out["error"]["code"], code, out)
    if text:
        test.assertIn(text, out["error"]["message"])
    return out["error"]["message"]


class Keys(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.c = Cluster(3, key_file=False).start()
        try:
            leader = cls.c.leader()
            rc, out = leader.cli("operator", "init", "-shares", "3", "-threshold", "3",
                                 token=False, timeout="10s")
            assert rc == 0, out
            cls.c.token, cls.shares = out["root_token"], out["shares"]
            for n in cls.c.nodes:
                cls.unseal(n, cls.shares)
        except BaseException:
            cls.c.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.c.cleanup()

    @classmethod
    def unseal(cls, n, shares):
        wait_for(lambda: (n.status() or {}).get("initialized"), 20, "node %d initialised" % n.id)
        out = None
        for s in shares:
            rc, out = n.cli("operator", "unseal", s, token=False, timeout="10s")
            assert rc == 0, out
        assert out["sealed"] is False, out
        return out

    def read_everywhere(self, values, nodes=None):
        for n in nodes or self.c.nodes:
            for path, v in values.items():
                for cons in ("stale", "linearizable"):
                    def got():
                        rc, out = n.cli("kv", "get", "-consistency", cons, path)
                        return rc == 0 and out.get("data") == {"v": v}
                    wait_for(got, 20, "%s on node %d (%s)" % (path, n.id, cons))

    def test_1_rotate_on_every_node_and_after_a_restart(self):
        """Values written before and after a rotation read through every node,
        stale and linearizable; key-status's term goes up on every node and
        its encryptions count; a restarted follower reads both."""
        leader = self.c.leader()
        before = {"keys/old%d" % i: "o%d" % i for i in range(3)}
        for p, v in before.items():
            ok(self, self.c.cli("kv", "put", p, "v=" + v), p)
        st0 = ok(self, leader.cli("operator", "key-status"))
        self.assertEqual(set(st0), {"term", "install_ms", "encryptions"})
        self.assertGreaterEqual(st0["encryptions"], 3, st0)
        out = ok(self, self.c.cli("operator", "rotate"))
        self.assertEqual(out["term"], st0["term"] + 1, out)
        for n in self.c.nodes:
            wait_for(lambda: (n.cli("operator", "key-status")[1] or {}).get("term")
                     == st0["term"] + 1, 20, "node %d on the new term" % n.id)
        after = {"keys/new%d" % i: "n%d" % i for i in range(3)}
        for p, v in after.items():
            ok(self, self.c.cli("kv", "put", p, "v=" + v), p)
        st1 = ok(self, leader.cli("operator", "key-status"))
        self.assertEqual(st1["term"], st0["term"] + 1)
        self.assertGreaterEqual(st1["encryptions"], 3, st1)
        self.assertGreaterEqual(st1["install_ms"], st0["install_ms"])
        self.read_everywhere(dict(before, **after))
        follower = next(n for n in self.c.nodes if n is not self.c.leader())
        follower.kill()
        follower.start()
        self.unseal(follower, self.shares)
        self.read_everywhere(dict(before, **after), [follower])
        self.assertEqual(ok(self, follower.cli("operator", "key-status"))["term"], st1["term"])

    def test_2_deny_by_default(self):
        """rotate and key-status: no token UNAUTHENTICATED; a token with only the
        default policy PERMISSION_DENIED naming the path."""
        refused(self, self.c.cli("operator", "rotate", token=False), "UNAUTHENTICATED")
        refused(self, self.c.cli("operator", "key-status", token=False), "UNAUTHENTICATED")
        tok = ok(self, self.c.cli("token", "create", "-policy", "default", "-ttl", "1h"))["token"]
        refused(self, self.c.cli("operator", "rotate", token=tok), "PERMISSION_DENIED",
                "sys/rotate")
        refused(self, self.c.cli("operator", "key-status", token=tok), "PERMISSION_DENIED",
                "sys/key-status")

    def test_3_rekey_nonce_and_cancel(self):
        """A wrong nonce is refused, a second -init while one runs is refused,
        cancel ends the attempt (its nonce then finds none), bad N/T refused."""
        leader = self.c.leader()
        rk = lambda *a: leader.cli("operator", "rekey", *a, token=False)  # noqa: E731
        refused(self, rk("-init", "-shares", "3", "-threshold", "1"), "INVALID_ARGUMENT",
                "threshold")
        a = ok(self, rk("-init", "-shares", "5", "-threshold", "3"))
        self.assertEqual(set(a), {"nonce", "expire_at_ms", "threshold"})
        self.assertEqual(a["threshold"], 3)
        refused(self, rk("-init", "-shares", "5", "-threshold", "3"), "INVALID_ARGUMENT",
                "already in progress")
        msg = refused(self, rk("-nonce", "0" * 32, self.shares[0]), "INVALID_ARGUMENT", "nonce")
        self.assertNotIn(self.shares[0], msg)
        out = ok(self, rk("-nonce", a["nonce"], self.shares[0]))
        self.assertEqual((out["progress"], out["threshold"]), (1, 3))
        self.assertEqual(ok(self, rk("-cancel")), {})
        refused(self, rk("-nonce", a["nonce"], self.shares[1]), "INVALID_ARGUMENT",
                "no rekey attempt")

    def test_4_rekey_old_shares_refused_and_a_stale_node(self):
        """Rekey 3-of-3 to 5-of-3 with node 3 down; sealed node 2 refuses the
        old shares and takes the new; node 3, restarted alone, takes no share
        (UNAVAILABLE: not caught up); once the cluster is back it refuses the
        old shares and unseals with the new; the data reads everywhere."""
        ok(self, self.c.cli("kv", "put", "keys/pre-rekey", "v=1"))
        leader = self.c.leader()
        stale = next(n for n in self.c.nodes if n is not leader)
        other = next(n for n in self.c.nodes if n is not leader and n is not stale)
        stale.kill()
        rk = lambda *a: leader.cli("operator", "rekey", *a, token=False)  # noqa: E731
        a = ok(self, rk("-init", "-shares", "5", "-threshold", "3"))
        for i, s in enumerate(self.shares[:2]):
            out = ok(self, rk("-nonce", a["nonce"], s))
            self.assertEqual((out["progress"], out["threshold"]), (i + 1, 3), out)
            self.assertNotIn("shares", out)
        done = ok(self, rk("-nonce", a["nonce"], self.shares[2]), "last share")
        new = done["shares"]
        self.assertEqual((len(new), done["new_threshold"]), (5, 3), done)
        self.assertFalse(set(new) & set(self.shares))
        ok(self, self.c.cli("kv", "put", "keys/post-rekey", "v=2", addr=leader.api_addr))
        # A live follower followed the switch: it seals and needs the new shares.
        wait_for(lambda: other.cli("kv", "get", "keys/post-rekey")[0] == 0, 20, "replicated")
        ok(self, other.cli("operator", "seal"))
        for s in self.shares[:2]:
            ok(self, other.cli("operator", "unseal", s, token=False))
        refused(self, other.cli("operator", "unseal", self.shares[2], token=False),
                "INVALID_ARGUMENT", "do not reconstruct")
        self.unseal(other, new[2:5])
        # Node 3 alone: no leader, so no share is taken.
        for n in (leader, other):
            n.kill()
        stale.start()
        refused(self, stale.cli("operator", "unseal", new[0], token=False), "UNAVAILABLE",
                "cannot unseal yet: this node has not caught up")
        for n in (leader, other):
            n.start()
        self.c.leader()
        for s in self.shares[:2]:
            ok(self, stale.cli("operator", "unseal", s, token=False, timeout="10s"))
        refused(self, stale.cli("operator", "unseal", self.shares[2], token=False,
                                timeout="10s"), "INVALID_ARGUMENT", "do not reconstruct")
        for n in self.c.nodes:
            self.unseal(n, new[:3])
        self.read_everywhere({"keys/pre-rekey": "1", "keys/post-rekey": "2"})
        # Rotation still works after the rekey, on every node.
        term = ok(self, self.c.cli("operator", "rotate"))["term"]
        for n in self.c.nodes:
            wait_for(lambda: (n.cli("operator", "key-status")[1] or {}).get("term") == term,
                     20, "node %d on term %d" % (n.id, term))
        self.shares = new


class AutoRotate(unittest.TestCase):
    def test_rotates_at_the_configured_use_count(self):
        """key_rotation_uses 5: after a few writes the leader rotates by itself;
        old values stay readable."""
        c = Cluster(1, extra_config={"key_rotation_uses": 5}).start()
        self.addCleanup(c.cleanup)
        c.init()
        c.wait_unsealed()
        t0 = ok(self, c.cli("operator", "key-status"))["term"]
        for i in range(8):
            ok(self, c.cli("kv", "put", "auto/%d" % i, "v=%d" % i))
        wait_for(lambda: (c.cli("operator", "key-status")[1] or {}).get("term", 0) > t0, 20,
                 "an automatic rotation")
        for i in range(8):
            out = ok(self, c.cli("kv", "get", "auto/%d" % i))
            self.assertEqual(out["data"], {"v": str(i)})


if __name__ == "__main__":
    unittest.main()

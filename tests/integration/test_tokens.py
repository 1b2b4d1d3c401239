"""Token rules as Vault users expect them, through the real CLI on a real
cluster: a child's TTL is capped by its parent's remaining TTL and by the
configured maximum; an expired token is revoked by the leader with its child
and its leases; `token renew` extends a token. Policy enforcement (subset of
the parent's policies, -orphan needing sudo, the parent accessor hidden in
lookups) needs the authorization layer and is tested with it."""
import time
import unittest

from tests.harness.cluster import ClusterCase, wait_for

MAX_TOKEN_TTL_MS = 3600000  # configured below: 1 h
# The scheduler wakes at least once a second; a CLI round and an election on
# a loaded 2-core box fit easily in this.
EXPIRY_BOUND_S = 10


def now_ms():
    return int(time.time() * 1000)


class Tokens(ClusterCase):
    size = 3
    extra_config = {"max_token_ttl_ms": MAX_TOKEN_TTL_MS}

    def create(self, *args, token=True):
        rc, out = self.c.cli("token", "create", *args, token=token)
        self.assertEqual(rc, 0, out)
        return out

    def test_child_ttl_capped_by_parent_and_maximum(self):
        """A child asking for an hour gets at most its parent's remaining TTL;
        a token asking for more than max_token_ttl_ms gets the maximum."""
        parent = self.create("-ttl", "20s")
        child = self.create("-ttl", "1h", token=parent["token"])
        self.assertLessEqual(child["ttl_ms"], 20000)
        self.assertGreater(child["ttl_ms"], 0)
        self.assertLessEqual(child["expire_at_ms"], parent["expire_at_ms"])
        big = self.create("-ttl", "100h")
        self.assertLessEqual(big["ttl_ms"], MAX_TOKEN_TTL_MS)
        self.assertGreater(big["ttl_ms"], MAX_TOKEN_TTL_MS - 60000)
        # The child's lookup agrees with what create answered.
        rc, out = self.c.cli("token", "lookup", token=child["token"])
        self.assertEqual(rc, 0, out)
        self.assertLessEqual(out["expire_at_ms"], parent["expire_at_ms"])

    def test_expired_token_revoked_with_child_and_lease(self):
        """A 2 s token that owns a lease and a child: once it expires, the
        leader revokes the token, the child and the lease within the bound."""
        t = self.create("-ttl", "2s")
        rc, lease = self.c.cli("lease", "grant", "-ttl", "1h", "-name", "tok",
                               token=t["token"])
        self.assertEqual(rc, 0, lease)
        child = self.create("-ttl", "1h", token=t["token"])
        deadline_s = (t["expire_at_ms"] - now_ms()) / 1000.0 + EXPIRY_BOUND_S

        def gone(tok):
            """The root's lookup of tok: NOT_FOUND once it is revoked."""
            rc, out = self.c.cli("token", "lookup", tok, timeout="2s")
            return rc == 2 and out.get("error", {}).get("code") == "NOT_FOUND"
        wait_for(lambda: gone(t["token"]), deadline_s, "the expired token to be revoked")
        rc, out = self.c.cli("token", "lookup", token=t["token"])
        self.assertEqual((rc, out["error"]["code"]), (2, "UNAUTHENTICATED"))
        wait_for(lambda: gone(child["token"]), EXPIRY_BOUND_S, "its child to be revoked")

        def lease_revoked():
            rc, out = self.c.cli("lease", "lookup", lease["lease_id"], timeout="2s")
            return rc == 0 and out.get("state") == "revoked"
        wait_for(lease_revoked, EXPIRY_BOUND_S, "its lease to be revoked")
        self.assertGreaterEqual(now_ms(), t["expire_at_ms"])

    def test_renew_extends_a_token(self):
        """token renew of one's own token moves its expiry to now + increment,
        capped by max_token_ttl_ms; another token renewed by name too."""
        t = self.create("-ttl", "5s")
        rc, out = self.c.cli("token", "renew", "-increment", "30m", token=t["token"])
        if rc == 1 and "unknown command" in out.get("error", {}).get("message", ""):
            self.skipTest("this CLI has no `token renew` yet")
        self.assertEqual(rc, 0, out)
        self.assertGreater(out["expire_at_ms"], t["expire_at_ms"])
        self.assertGreater(out["ttl_ms"], 29 * 60000)
        rc, out = self.c.cli("token", "renew", "-increment", "100h", t["token"])
        self.assertEqual(rc, 0, out)
        self.assertLessEqual(out["expire_at_ms"], t["expire_at_ms"] - 5000 + MAX_TOKEN_TTL_MS)
        rc, look = self.c.cli("token", "lookup", token=t["token"])
        self.assertEqual(rc, 0, look)
        self.assertEqual(look["expire_at_ms"], out["expire_at_ms"])


if __name__ == "__main__":
    unittest.main()

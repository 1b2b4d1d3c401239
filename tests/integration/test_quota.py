"""Lease quotas, quota grant rates and per-token request rates through the real CLI
(../shared/CLI.md `quota set|list|delete`, error codes QUOTA_EXCEEDED and
RATE_LIMITED; src/server/op_quota.h, src/server/ratelimit.h)."""
import unittest

from tests.harness.cluster import ClusterCase, wait_for


class Quotas(ClusterCase):
    def grant(self):
        return self.n.cli("lease", "grant", "-ttl", "1h", "-name", "capped")

    def quotas(self):
        return {q["name"]: q for q in self.ok("quota", "list")["quotas"]}

    def test_quota_caps_grants_until_revoke_and_delete(self):
        """3 leases on lease/capped/: the 4th is QUOTA_EXCEEDED, one revoke makes room, the
        quota is listed with its live count, and once deleted the 4th grant succeeds."""
        self.assertEqual(self.ok("quota", "set", "-prefix", "lease/capped/", "-max-leases", "3",
                                 "capped"), {})
        ids = []
        for _ in range(3):
            rc, out = self.grant()
            self.assertEqual(rc, 0, out)
            ids.append(out["lease_id"])
        self.assertTrue(all(i.startswith("lease/capped/") for i in ids), ids)
        rc, out = self.grant()
        self.assertEqual((rc, out["error"]["code"]), (2, "QUOTA_EXCEEDED"), out)
        self.assertIn("lease/capped/", out["error"]["message"])
        q = self.quotas()["capped"]
        self.assertEqual((q["prefix"], q["max_leases"], q["live_leases"]),
                         ("lease/capped/", 3, 3))
        self.ok("lease", "revoke", ids[0])
        # A revoked lease stops counting once the store marks it revoked.
        out = wait_for(lambda: (lambda r: r[1] if r[0] == 0 else None)(self.grant()), 10,
                       "room under the quota after a revoke")
        ids[0] = out["lease_id"]
        rc, out = self.grant()
        self.assertEqual((rc, out["error"]["code"]), (2, "QUOTA_EXCEEDED"), out)
        # Another name on the same prefix, or a new scope for this one, is refused.
        self.refused("INVALID_ARGUMENT", "quota", "set", "-prefix", "lease/capped/",
                     "-max-leases", "5", "other")
        self.refused("INVALID_ARGUMENT", "quota", "set", "-mount", "lease", "-max-leases", "5",
                     "capped")
        self.assertEqual(self.ok("quota", "delete", "capped"), {})
        self.assertNotIn("capped", self.quotas())
        rc, out = self.grant()
        self.assertEqual(rc, 0, out)
        self.refused("NOT_FOUND", "quota", "delete", "capped")

    def test_quota_by_mount_and_role(self):
        """-mount M -role R limits the lease ids M/R/...; -mount alone M/..."""
        self.ok("quota", "set", "-mount", "lease", "-role", "byrole", "-max-leases", "1", "r1")
        self.assertEqual(self.quotas()["r1"]["prefix"], "lease/byrole/")
        rc, out = self.n.cli("lease", "grant", "-ttl", "1h", "-name", "byrole")
        self.assertEqual(rc, 0, out)
        rc, out = self.n.cli("lease", "grant", "-ttl", "1h", "-name", "byrole")
        self.assertEqual(out.get("error", {}).get("code"), "QUOTA_EXCEEDED", out)
        self.ok("quota", "delete", "r1")
        self.ok("quota", "set", "-mount", "lease", "-max-leases", "100000", "m1")
        self.assertEqual(self.quotas()["m1"]["prefix"], "lease/")
        self.ok("quota", "delete", "m1")
        self.refused("INVALID_ARGUMENT", "quota", "set", "-role", "x", "-max-leases", "1", "bad")
        self.refused("INVALID_ARGUMENT", "quota", "set", "-prefix", "p/", "nomax")

    def test_rate_limits_grants_under_its_prefix_only(self):
        """-rate 2 on lease/rated/: after a burst of 2 grants there the next are RATE_LIMITED
        with a retry-after hint, while grants under another prefix still pass; after the hint
        it grants again, and once the quota is deleted a burst passes."""
        self.assertEqual(self.ok("quota", "set", "-prefix", "lease/rated/", "-rate", "2",
                                 "rated"), {})
        self.assertIn("rated", self.quotas())

        def rated():
            return self.n.cli("lease", "grant", "-ttl", "1h", "-name", "rated")

        for _ in range(2):  # the bucket starts full: a burst of 2
            rc, out = rated()
            self.assertEqual(rc, 0, out)
            self.assertTrue(out["lease_id"].startswith("lease/rated/"), out)
        limited = None
        for _ in range(20):  # 2 a second: far fewer than 20 pass
            rc, out = rated()
            if rc != 0:
                limited = out
                break
        self.assertIsNotNone(limited, "20 grants at once were never rate-limited")
        self.assertEqual(limited["error"]["code"], "RATE_LIMITED", limited)
        self.assertRegex(limited["error"]["message"], r"retry after \d+ ms")
        self.assertIn("lease/rated/", limited["error"]["message"])
        for _ in range(5):  # another prefix has no bucket to empty
            rc, out = self.n.cli("lease", "grant", "-ttl", "1h", "-name", "unrated")
            self.assertEqual(rc, 0, out)
        wait_for(lambda: rated()[0] == 0, 10, "a rated grant after the retry-after hint")
        self.assertEqual(self.ok("quota", "delete", "rated"), {})
        for _ in range(6):  # no rate any more: the deleted quota's bucket is gone
            rc, out = rated()
            self.assertEqual(rc, 0, out)

    def test_quota_needs_sudo(self):
        """A token without rights cannot set, delete or list quotas."""
        self.ok("quota", "set", "-prefix", "lease/guarded/", "-max-leases", "2", "guarded")
        weak = self.ok("token", "create", "-policy", "default", "-ttl", "1h")["token"]
        self.refused("PERMISSION_DENIED", "quota", "set", "-prefix", "lease/x/",
                     "-max-leases", "1", "mine", token=weak)
        self.refused("PERMISSION_DENIED", "quota", "delete", "guarded", token=weak)
        self.refused("PERMISSION_DENIED", "quota", "list", token=weak)
        self.assertIn("guarded", self.quotas())
        self.assertNotIn("mine", self.quotas())
        self.ok("quota", "delete", "guarded")


class RateLimits(ClusterCase):
    extra_config = {"rate_limit_per_token": 2, "rate_limit_burst": 3}

    def test_burst_from_one_token_is_limited_others_are_not(self):
        """Past its burst a token gets RATE_LIMITED with a retry-after hint; another token
        still gets its own answers, and the first one does again after the hint."""
        rc, out = self.n.cli("token", "create", "-ttl", "1h")
        self.assertEqual(rc, 0, out)
        other = out["token"]
        limited = None
        for _ in range(20):  # 2/s with a burst of 3: far fewer than 20 pass
            rc, out = self.n.cli("kv", "list")
            if rc != 0:
                limited = out
                break
        self.assertIsNotNone(limited, "20 requests at once were never limited")
        self.assertEqual(limited["error"]["code"], "RATE_LIMITED", limited)
        self.assertRegex(limited["error"]["message"], r"retry after \d+ ms")
        rc, out = self.n.cli("token", "lookup", token=other)
        self.assertEqual(rc, 0, out)
        wait_for(lambda: self.n.cli("kv", "list")[0] == 0, 10,
                 "the limited token to be served again")


if __name__ == "__main__":
    unittest.main()

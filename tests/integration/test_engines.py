"""Secrets engines through the server: mounts and roles replicated (encrypted,
in the reserved KV), credentials issued under an `issuing` lease, revoked by
the scheduler through the engine at expiry, and a CA that survives a leader
kill. PostgreSQL runs in test_engine_postgres.py."""
import json
import os
import signal
import subprocess
import tempfile
import time
import unittest

from tests.harness.cluster import Cluster, wait_for

ROLE = {"common_name": "web.example.com", "alt_names": ["api.example.com"],
        "allowed_domains": ["example.com"], "allow_subdomains": True,
        "default_ttl_ms": 3000, "max_ttl_ms": 60000, "server_flag": True}


def openssl_verify(ca_pem, cert_pem):
    with tempfile.TemporaryDirectory() as d:
        ca, cert = os.path.join(d, "ca.pem"), os.path.join(d, "cert.pem")
        open(ca, "w").write(ca_pem)
        open(cert, "w").write(cert_pem)
        p = subprocess.run(["openssl", "verify", "-CAfile", ca, cert], capture_output=True,
                           text=True)
        return p.returncode == 0, p.stdout + p.stderr


def openssl_field(cert_pem, flag):
    p = subprocess.run(["openssl", "x509", "-noout", flag], input=cert_pem, capture_output=True,
                       text=True)
    return p.stdout.strip()


class PkiEngine(unittest.TestCase):
    def setUp(self):
        self.c = Cluster(3).start()
        self.addCleanup(self.c.cleanup)
        self.c.init()
        self.c.wait_unsealed()
        rc, out = self.c.cli("engine", "enable", "-type", "pki", "-config",
                             json.dumps({"generate": True, "common_name": "mayfly test pki"}),
                             "pki")
        self.assertEqual(rc, 0, out)
        rc, out = self.c.cli("engine", "role", "put", "pki", "web", json.dumps(ROLE))
        self.assertEqual(rc, 0, out)

    def issue(self, addr=None, ttl=None):
        extra = ["-ttl", ttl] if ttl else []
        rc, out = self.c.cli("creds", "issue", *extra, "pki/web", addr=addr, timeout="20s")
        self.assertEqual(rc, 0, out)
        return out

    def test_certificate_issued_verified_and_revoked_at_expiry(self):
        """A certificate for the role's names, valid until the lease ends, signed
        by the engine's CA; the lease is revoked through the engine at expiry."""
        rc, out = self.c.cli("engine", "list")
        self.assertEqual(out["engines"], [{"mount": "pki", "type": "pki", "roles": ["web"]}])
        cred = self.issue()
        data = cred["data"]
        ok, why = openssl_verify(data["issuing_ca"], data["certificate"])
        self.assertTrue(ok, why)
        self.assertIn("web.example.com", openssl_field(data["certificate"], "-subject"))
        not_after = openssl_field(data["certificate"], "-enddate")
        stamp = time.strptime(not_after.split("=", 1)[1], "%b %d %H:%M:%S %Y %Z")
        import calendar
        self.assertLessEqual(calendar.timegm(stamp) * 1000, cred["expire_at_ms"])
        self.assertGreater(calendar.timegm(stamp) * 1000, cred["expire_at_ms"] - 1000)
        rc, out = self.c.cli("lease", "lookup", cred["lease_id"])
        self.assertEqual((out["state"], out["engine"]), ("active", "pki"))
        wait_for(lambda: self.c.cli("lease", "lookup", cred["lease_id"])[1].get("state") ==
                 "revoked", 10, "revoked through the engine")
        leader = self.c.leader()
        wait_for(lambda: (leader.metric("mayfly_leases_revoked_total") or 0) >= 1, 5, "metrics")

    def crl_serials(self, addr=None):
        rc, out = self.c.cli("engine", "crl", "pki", addr=addr, timeout="20s")
        self.assertEqual(rc, 0, out)
        p = subprocess.run(["openssl", "crl", "-noout", "-text"], input=out["crl_pem"],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.stdout.upper().replace(":", "")

    def test_ca_survives_leader_kill(self):
        """After the leader dies, the new leader issues with the same CA, and its
        CRL still lists a certificate revoked (early) under the old leader."""
        revoked = self.issue(ttl="50s")  # still valid when the CRLs are read
        rc, out = self.c.cli("lease", "revoke", revoked["lease_id"])
        self.assertEqual(rc, 0, out)
        wait_for(lambda: self.c.cli("lease", "lookup", revoked["lease_id"])[1].get("state") ==
                 "revoked", 10, "revoked through the engine")
        serial = revoked["data"]["serial_number"].upper().replace(":", "")
        self.assertIn(serial, self.crl_serials())
        first = self.issue()["data"]["issuing_ca"]
        old = self.c.leader()
        old.kill(signal.SIGKILL)
        survivors = [n for n in self.c.nodes if n is not old]
        self.c.leader(among=survivors)
        second = self.issue(addr=self.c.addrs(survivors))["data"]
        self.assertEqual(second["issuing_ca"], first)
        ok, why = openssl_verify(first, second["certificate"])
        self.assertTrue(ok, why)
        self.assertIn(serial, self.crl_serials(addr=self.c.addrs(survivors)))
        self.assertNotIn(second["serial_number"].upper().replace(":", ""),
                         self.crl_serials(addr=self.c.addrs(survivors)))

    def http_crl_serials(self, node):
        """Serials of the CRL node serves over plain HTTP (DER and PEM agree
        and its signature verifies with the engine's CA), or None."""
        status, der = node.http_get("/v1/pki/crl", raw=True)
        if status != 200:
            return None
        status, pem = node.http_get("/v1/pki/crl/pem")
        self.assertEqual(status, 200)
        with tempfile.TemporaryDirectory() as d:
            ca = os.path.join(d, "ca.pem")
            with open(ca, "w") as f:
                f.write(self.ca_pem)
            p = subprocess.run(["openssl", "crl", "-inform", "DER", "-CAfile", ca, "-noout",
                                "-text"], input=der, capture_output=True)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn(b"verify OK", p.stdout + p.stderr)
            q = subprocess.run(["openssl", "crl", "-noout", "-text"], input=pem.encode(),
                               capture_output=True)
            self.assertEqual(q.stdout, p.stdout.replace(b"verify OK\n", b""))
        return p.stdout.decode().upper().replace(":", "")

    def test_crl_over_http_from_every_node(self):
        """Every node serves the CRL without a token at /v1/<mount>/crl (DER)
        and /crl/pem, as the cluster committed it: published when the mount
        opens, again after each revocation, and by a new leader."""
        first = self.issue(ttl="50s")
        self.ca_pem = first["data"]["issuing_ca"]
        # Published at open: every node serves a CRL before any revocation.
        for n in self.c.nodes:
            wait_for(lambda: self.http_crl_serials(n) is not None, 15, "a CRL on node %d" % n.id)
        serial = first["data"]["serial_number"].upper().replace(":", "")
        self.assertNotIn(serial, self.http_crl_serials(self.c.nodes[0]))
        rc, out = self.c.cli("lease", "revoke", first["lease_id"])
        self.assertEqual(rc, 0, out)
        for n in self.c.nodes:
            wait_for(lambda: serial in (self.http_crl_serials(n) or ""), 15,
                     "node %d serves the revocation" % n.id)
        status, body = self.c.nodes[0].http_get("/v1/nope/crl")
        self.assertEqual(status, 404)
        # A new leader publishes too: revoke another one after a leader kill.
        old = self.c.leader()
        old.kill(signal.SIGKILL)
        survivors = [n for n in self.c.nodes if n is not old]
        self.c.leader(among=survivors)
        second = self.issue(addr=self.c.addrs(survivors), ttl="50s")
        rc, out = self.c.cli("lease", "revoke", second["lease_id"], addr=self.c.addrs(survivors))
        self.assertEqual(rc, 0, out)
        serial2 = second["data"]["serial_number"].upper().replace(":", "")
        for n in survivors:
            wait_for(lambda: serial2 in (self.http_crl_serials(n) or ""), 15,
                     "node %d serves the new leader's CRL" % n.id)
            self.assertIn(serial, self.http_crl_serials(n))

    def test_crl_republished_before_it_expires(self):
        """With no revocation at all, the leader publishes a fresh CRL once half
        of the last one's validity (crl_ttl_ms) has passed."""
        rc, out = self.c.cli("engine", "enable", "-type", "pki", "-config",
                             json.dumps({"generate": True, "common_name": "short crl",
                                         "crl_ttl_ms": 4000}), "short")
        self.assertEqual(rc, 0, out)
        follower = next(n for n in self.c.nodes if n is not self.c.leader())
        seen = set()

        def last_update():
            status, pem = follower.http_get("/v1/short/crl/pem")
            if status == 200:
                p = subprocess.run(["openssl", "crl", "-noout", "-lastupdate", "-nextupdate"],
                                   input=pem, capture_output=True, text=True)
                self.assertEqual(p.returncode, 0, p.stderr)
                seen.add(p.stdout)
            return len(seen) >= 2
        wait_for(last_update, 20, "a second CRL, published before the first expired")

    def test_retried_issue_returns_the_first_credential(self):
        """A creds issue retried with the same request id (its answer was lost)
        answers the credential of the first attempt: one lease, one engine call."""
        from tests.integration.test_cluster import raw_call
        tok = self.c.token.encode()
        key = os.urandom(16)
        creds = b"\x0a\x03pki\x12\x03web"
        body = (b"\x08\x01\x12" + bytes([len(tok)]) + tok + b"\x1a\x10" + key +
                b"\xca\x01" + bytes([len(creds)]) + creds)
        leader = self.c.leader()
        first = raw_call(leader, self.c.certs, body)
        second = raw_call(leader, self.c.certs, body)
        self.assertIn(b"BEGIN CERTIFICATE", first)
        self.assertEqual(first, second)
        rc, out = self.c.cli("lease", "list", "pki/web/")
        self.assertEqual(len(out["leases"]), 1, out)

    def test_reserved_paths_are_refused(self):
        """Engine records live under sys/, which clients cannot read or write."""
        rc, out = self.c.cli("kv", "get", "sys/engines/pki")
        self.assertEqual((rc, out["error"]["code"]), (2, "PERMISSION_DENIED"))
        rc, out = self.c.cli("kv", "put", "sys/engines/pki", "config=x")
        self.assertEqual(out["error"]["code"], "PERMISSION_DENIED")
        rc, out = self.c.cli("kv", "list", "")
        self.assertEqual(rc, 0, out)
        self.assertFalse([k for k in out["keys"] if k.startswith("sys/")])

    def test_bad_engine_input(self):
        """Unknown types, bad mounts, roles outside allowed domains: clear errors."""
        rc, out = self.c.cli("engine", "enable", "-type", "nosuch", "x")
        self.assertEqual(out["error"]["code"], "INVALID_ARGUMENT")
        rc, out = self.c.cli("engine", "enable", "-type", "pki", "-config", "{}", "lease")
        self.assertEqual(out["error"]["code"], "INVALID_ARGUMENT")
        bad = dict(ROLE, common_name="evil.org")
        rc, out = self.c.cli("engine", "role", "put", "pki", "bad", json.dumps(bad))
        self.assertEqual(out["error"]["code"], "INVALID_ARGUMENT", out)
        rc, out = self.c.cli("creds", "issue", "pki/nosuchrole")
        self.assertEqual(out["error"]["code"], "NOT_FOUND")
        rc, out = self.c.cli("creds", "issue", "nomount/web")
        self.assertEqual(out["error"]["code"], "NOT_FOUND")


class HttpsListener(unittest.TestCase):
    def test_metrics_and_crl_over_https(self):
        """With metrics_tls_cert_file/key_file the HTTP listener speaks only
        HTTPS (verified with the cluster CA): /health, /metrics and the CRL."""
        c = Cluster(1, metrics_tls=True).start()
        self.addCleanup(c.cleanup)
        c.init()
        node = c.nodes[0]
        wait_for(lambda: node.http_get("/health") == (200, "ok\n"), 15, "healthy over HTTPS")
        self.assertIsNotNone(node.metric("mayfly_raft_term"))
        rc, out = c.cli("engine", "enable", "-type", "pki", "-config",
                        json.dumps({"generate": True, "common_name": "https test"}), "pki")
        self.assertEqual(rc, 0, out)
        wait_for(lambda: node.http_get("/v1/pki/crl/pem")[0] == 200, 15, "CRL over HTTPS")
        with self.assertRaises(Exception):  # plain HTTP gets no answer
            node.http_get("/health", scheme="http")


if __name__ == "__main__":
    unittest.main()

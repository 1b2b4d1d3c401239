"""Auth methods end to end on a real node (../shared/CLI.md "Authorization"):
auth enable / auth role put / auth list, and `mayfly login` with JWTs and
client certificates made here with the openssl command-line tool."""
import base64
import json
import os
import subprocess
import time
import unittest

from tests.harness.cluster import MAYFLY, Cluster

ISSUER = "https://issuer.test"


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def openssl(*args, stdin=None):
    return subprocess.run(["openssl"] + list(args), input=stdin, capture_output=True,
                          check=True).stdout


class Keys:
    """RSA keys in a directory, and RS256 JWTs signed with them by openssl."""

    def __init__(self, d):
        self.d = d

    def key(self, name):
        path = os.path.join(self.d, name + ".pem")
        if not os.path.exists(path):
            openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                    "-out", path)
        return path

    def jwk(self, name):
        mod = openssl("rsa", "-in", self.key(name), "-noout", "-modulus").decode()
        n = bytes.fromhex(mod.strip().split("=", 1)[1])
        return {"kty": "RSA", "kid": name, "alg": "RS256", "use": "sig", "n": b64url(n),
                "e": b64url((65537).to_bytes(3, "big"))}

    def jwt(self, signer, claims, header=None):
        h = {"alg": "RS256", "typ": "JWT", "kid": signer}
        h.update(header or {})
        signing_input = "%s.%s" % (b64url(json.dumps(h).encode()),
                                   b64url(json.dumps(claims).encode()))
        if h["alg"] == "none":
            return signing_input + "."
        sig = openssl("dgst", "-sha256", "-sign", self.key(signer), stdin=signing_input.encode())
        return signing_input + "." + b64url(sig)


def claims(**over):
    now = int(time.time())
    c = {"iss": ISSUER, "sub": "system:serviceaccount:payments:api", "aud": "mayfly",
         "namespace": "payments", "iat": now, "nbf": now, "exp": now + 600}
    c.update(over)
    return {k: v for k, v in c.items() if v is not None}


APP_READ = {"path": {"kv/data/app/*": {"capabilities": ["read"]}}}
NS_READ = {"path": {"kv/data/ns/*": {"capabilities": ["read"],
                                     "conditions": {"claims": {"namespace": "payments"}}}}}
JWT_ROLE = {"bound_audiences": ["mayfly"], "bound_claims": {"namespace": "payments"},
            "claim_mappings": {"namespace": "namespace"},
            "token_policies": ["app-read", "ns-read"], "token_ttl_ms": 600000,
            "token_max_ttl_ms": 3600000}


def make_ca(d, name):
    """A CA key and self-signed certificate in d: (key path, certificate path)."""
    key, crt = (os.path.join(d, name + s) for s in (".key", ".crt"))
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", crt,
            "-days", "2", "-subj", "/CN=" + name,
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    return key, crt


def make_leaf(d, ca, name, san):
    """A client certificate with URI SAN `san` issued by ca: (certificate, key)."""
    ca_key, ca_crt = ca
    key, csr, crt, ext = (os.path.join(d, name + s) for s in (".key", ".csr", ".crt", ".ext"))
    with open(ext, "w") as f:
        f.write("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                "extendedKeyUsage=clientAuth\nsubjectAltName=URI:%s\n"
                "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n" % san)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
            "-subj", "/CN=" + name)
    openssl("x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key,
            "-CAcreateserial", "-out", crt, "-days", "1", "-extfile", ext)
    return crt, key


def login_cert(node, certs, crt, key, role="svc"):
    """`mayfly login -method cert` to `node` presenting crt: (rc, json)."""
    env = dict(os.environ, MAYFLY_ADDR=node.api_addr, MAYFLY_FORMAT="json",
               MAYFLY_CACERT=os.path.join(certs, "ca.pem"),
               MAYFLY_CLIENT_CERT=crt, MAYFLY_CLIENT_KEY=key)
    env.pop("MAYFLY_TOKEN", None)
    p = subprocess.run([MAYFLY, "-timeout", "5s", "login", "-method", "cert", "-role", role],
                       env=env, capture_output=True, text=True, timeout=60)
    return p.returncode, json.loads(p.stdout) if p.stdout.strip() else {}


class Login(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.c = Cluster(1).start()
        try:
            cls.c.init()
            cls.c.wait_unsealed()
        except BaseException:
            cls.c.cleanup()
            raise
        cls.n = cls.c.nodes[0]
        cls.keys = Keys(cls.c.dir)

    @classmethod
    def tearDownClass(cls):
        cls.c.cleanup()

    def ok(self, *args, stdin=None, token=True):
        rc, out = self.n.cli(*args, stdin=stdin, token=token)
        self.assertEqual(rc, 0, out)
        return out

    def refused(self, code, *args, stdin=None, token=True):
        rc, out = self.n.cli(*args, stdin=stdin, token=token)
        self.assertEqual(rc, 2, out)
        self.assertEqual(out["error"]["code"], code, out)
        return out["error"]["message"]

    def enable_jwt(self, *signers, mount="jwt"):
        config = {"jwks": {"keys": [self.keys.jwk(s) for s in signers]},
                  "bound_issuer": ISSUER}
        self.assertEqual(self.ok("auth", "enable", "-type", "jwt", "-config", "-", mount,
                                 stdin=json.dumps(config)), {})

    def setup_jwt(self, mount="jwt"):
        for name, doc in (("app-read", APP_READ), ("ns-read", NS_READ)):
            self.ok("policy", "write", name, "-", stdin=json.dumps(doc))
        self.enable_jwt("k1", mount=mount)
        self.assertEqual(self.ok("auth", "role", "put", mount, "app", json.dumps(JWT_ROLE)), {})

    def login_jwt(self, jwt, role="app", mount="jwt"):
        rc, out = self.n.cli("login", "-method", "jwt", "-mount", mount, "-role", role,
                             "-jwt", "-", stdin=jwt, token=False)
        return rc, out

    def assert_refused(self, jwt, code, reason, mount="jwt"):
        rc, out = self.login_jwt(jwt, mount=mount)
        self.assertEqual(rc, 2, out)
        self.assertEqual(out["error"]["code"], code, out)
        self.assertIn(reason, out["error"]["message"])
        for part in jwt.split("."):
            if len(part) > 8:  # the token is never echoed, not even a part of it
                self.assertNotIn(part, out["error"]["message"])

    def test_jwt_login_gets_the_roles_policies(self):
        """A valid JWT logs in with the role's policies and mapped claims; the token reads
        what its policies allow (a claims condition included) and nothing else."""
        self.setup_jwt()
        for path in ("app/x", "other/y", "ns/z"):
            self.ok("kv", "put", path, "v=1")
        out = self.ok("auth", "list")
        self.assertIn({"mount": "jwt", "type": "jwt", "roles": ["app"]}, out["auth"])

        rc, out = self.login_jwt(self.keys.jwt("k1", claims()))
        self.assertEqual(rc, 0, out)
        self.assertEqual(sorted(out["policies"]), ["app-read", "ns-read"])
        # The mapped claims, and the mount and role the server names itself.
        self.assertEqual(out["metadata"], {"namespace": "payments", "auth_mount": "jwt",
                                           "auth_role": "app"})
        self.assertTrue(out["token"].startswith("mf."))
        self.assertGreater(out["ttl_ms"], 0)
        self.assertLessEqual(out["ttl_ms"], 600000)
        tok = out["token"]
        self.assertEqual(self.ok("kv", "get", "app/x", token=tok)["data"], {"v": "1"})
        self.assertEqual(self.ok("kv", "get", "ns/z", token=tok)["data"], {"v": "1"})
        self.refused("PERMISSION_DENIED", "kv", "get", "other/y", token=tok)
        self.refused("PERMISSION_DENIED", "kv", "put", "app/x", "v=2", token=tok)
        self.refused("PERMISSION_DENIED", "auth", "enable", "-type", "jwt", "mine", token=tok)
        self.refused("PERMISSION_DENIED", "auth", "list", token=tok)
        lookup = self.ok("token", "lookup", token=tok)
        self.assertTrue(lookup["orphan"])

    def test_jwt_refusals_name_their_reason(self):
        """Expired, wrong audience, wrong issuer, bad signature, alg none, unknown kid and an
        unmatched bound claim are each refused with their reason; garbage does not parse."""
        self.setup_jwt()
        now = int(time.time())
        k = self.keys
        self.assert_refused(k.jwt("k1", claims(exp=now - 3600, iat=now - 7200, nbf=now - 7200)),
                            "PERMISSION_DENIED", "expired")
        self.assert_refused(k.jwt("k1", claims(aud="other-service")), "PERMISSION_DENIED",
                            "audience")
        self.assert_refused(k.jwt("k1", claims(iss="https://evil.test")), "PERMISSION_DENIED",
                            "issuer")
        forged = k.jwt("k2", claims(), header={"kid": "k1"})  # signed by another key
        self.assert_refused(forged, "PERMISSION_DENIED", "signature")
        self.assert_refused(k.jwt("k1", claims(), header={"alg": "none"}), "PERMISSION_DENIED",
                            "algorithm")
        self.assert_refused(k.jwt("k1", claims(), header={"kid": "k9"}), "PERMISSION_DENIED",
                            "unknown key")
        self.assert_refused(k.jwt("k1", claims(namespace="billing")), "PERMISSION_DENIED",
                            "claim")
        self.assert_refused("not-a-jwt", "INVALID_ARGUMENT", "malformed")
        rc, out = self.n.cli("login", "-method", "jwt", "-role", "nope", "-jwt", "-",
                             stdin=k.jwt("k1", claims()), token=False)
        self.assertEqual(out["error"]["code"], "PERMISSION_DENIED", out)

    def test_jwks_rotation_without_restart(self):
        """auth enable again with a new JWKS replaces the keys at once: the new key logs in,
        the old one is an unknown key."""
        self.setup_jwt(mount="rot")
        rc, out = self.login_jwt(self.keys.jwt("k1", claims()), mount="rot")
        self.assertEqual(rc, 0, out)
        self.enable_jwt("k2", mount="rot")
        rc, out = self.login_jwt(self.keys.jwt("k2", claims()), mount="rot")
        self.assertEqual(rc, 0, out)
        self.assert_refused(self.keys.jwt("k1", claims()), "PERMISSION_DENIED", "unknown key",
                            mount="rot")

    def test_auth_admin_is_validated(self):
        """A config or role the method would not compile is refused before anything is
        stored; a role needs its mount; the peer CA can never be a cert mount's CA."""
        self.refused("INVALID_ARGUMENT", "auth", "enable", "-type", "jwt", "-config",
                     '{"jwks": {"keys": []}, "surprise": 1}', "badjwt")
        self.refused("INVALID_ARGUMENT", "auth", "enable", "-type", "ldap", "x")
        self.refused("NOT_FOUND", "auth", "role", "put", "nomount", "r", json.dumps(JWT_ROLE))
        self.enable_jwt("k1", mount="strict")
        self.refused("INVALID_ARGUMENT", "auth", "role", "put", "strict", "r",
                     '{"token_policies": ["x"]}')  # no bound_audiences
        with open(os.path.join(self.c.certs, "ca.pem")) as f:
            peer_ca = f.read()
        self.refused("INVALID_ARGUMENT", "auth", "enable", "-type", "cert", "-config", "-",
                     "peer", stdin=json.dumps({"ca_pem": peer_ca}))
        mounts = [m["mount"] for m in self.ok("auth", "list")["auth"]]
        self.assertNotIn("badjwt", mounts)
        self.assertNotIn("peer", mounts)

    # ---- cert ----

    def make_ca(self, name):
        return make_ca(self.c.dir, name)

    def make_leaf(self, ca, name, san):
        return make_leaf(self.c.dir, ca, name, san)

    def login_cert(self, crt, key, role="svc"):
        return login_cert(self.n, self.c.certs, crt, key, role)

    def test_cert_login_spiffe(self):
        """A SPIFFE certificate from the mount's CA logs in with its role's policies and its
        SAN as metadata; one from another CA, or with a SAN the role does not allow, is
        refused; no certificate at all is refused."""
        self.ok("policy", "write", "app-read", "-", stdin=json.dumps(APP_READ))
        ca = self.make_ca("workload-ca")
        with open(ca[1]) as f:
            self.ok("auth", "enable", "-type", "cert", "-config", "-", "cert",
                    stdin=json.dumps({"ca_pem": f.read()}))
        self.ok("auth", "role", "put", "cert", "svc", json.dumps(
            {"allowed_uri_sans": ["spiffe://prod/ns/payments/*"],
             "token_policies": ["app-read"], "token_ttl_ms": 600000}))
        good = self.make_leaf(ca, "api", "spiffe://prod/ns/payments/sa/api")
        rc, out = self.login_cert(*good)
        self.assertEqual(rc, 0, out)
        self.assertEqual(out["policies"], ["app-read"])
        self.assertEqual(out["metadata"]["uri_san"], "spiffe://prod/ns/payments/sa/api")
        self.ok("kv", "put", "app/c", "v=1")
        self.assertEqual(self.ok("kv", "get", "app/c", token=out["token"])["data"], {"v": "1"})

        other = self.make_leaf(self.make_ca("other-ca"), "evil",
                               "spiffe://prod/ns/payments/sa/api")
        rc, out = self.login_cert(*other)
        self.assertEqual(rc, 2, out)
        self.assertEqual(out["error"]["code"], "PERMISSION_DENIED", out)
        self.assertIn("untrusted", out["error"]["message"])

        wrong = self.make_leaf(ca, "billing", "spiffe://prod/ns/billing/sa/api")
        rc, out = self.login_cert(*wrong)
        self.assertEqual(out["error"]["code"], "PERMISSION_DENIED", out)
        self.assertIn("no match", out["error"]["message"])

        rc, out = self.n.cli("login", "-method", "cert", "-role", "svc", token=False)
        self.assertEqual(out["error"]["code"], "PERMISSION_DENIED", out)


class CertThroughFollower(unittest.TestCase):
    def test_cert_login_through_a_follower(self):
        """A cert login entering a follower reaches the leader with the client's
        certificate in the peer-only envelope: a SPIFFE certificate from the mount's CA
        logs in with its role, one from another CA is refused as untrusted, and one
        whose SAN the role does not allow is refused as no match."""
        c = Cluster(3).start()
        self.addCleanup(c.cleanup)
        c.init()
        c.wait_unsealed()
        leader = c.leader()
        follower = next(n for n in c.nodes if n.id != leader.id)
        ca = make_ca(c.dir, "workload-ca")
        with open(ca[1]) as f:
            rc, out = leader.cli("auth", "enable", "-type", "cert", "-config", "-", "cert",
                                 stdin=json.dumps({"ca_pem": f.read()}))
        self.assertEqual(rc, 0, out)
        rc, out = leader.cli("policy", "write", "app-read", "-", stdin=json.dumps(APP_READ))
        self.assertEqual(rc, 0, out)
        rc, out = leader.cli("auth", "role", "put", "cert", "svc", json.dumps(
            {"allowed_uri_sans": ["spiffe://prod/ns/payments/*"],
             "token_policies": ["app-read"], "token_ttl_ms": 600000}))
        self.assertEqual(rc, 0, out)

        good = make_leaf(c.dir, ca, "api", "spiffe://prod/ns/payments/sa/api")
        rc, out = login_cert(follower, c.certs, *good)
        self.assertEqual(rc, 0, out)
        self.assertEqual(out["policies"], ["app-read"])
        self.assertEqual(out["metadata"]["uri_san"], "spiffe://prod/ns/payments/sa/api")
        rc, looked = leader.cli("token", "lookup", token=out["token"])
        self.assertEqual(rc, 0, looked)

        other = make_leaf(c.dir, make_ca(c.dir, "other-ca"), "evil",
                          "spiffe://prod/ns/payments/sa/api")
        rc, out = login_cert(follower, c.certs, *other)
        self.assertEqual(rc, 2, out)
        self.assertEqual(out["error"]["code"], "PERMISSION_DENIED", out)
        self.assertIn("untrusted", out["error"]["message"])

        wrong = make_leaf(c.dir, ca, "billing", "spiffe://prod/ns/billing/sa/api")
        rc, out = login_cert(follower, c.certs, *wrong)
        self.assertEqual(rc, 2, out)
        self.assertEqual(out["error"]["code"], "PERMISSION_DENIED", out)
        self.assertIn("no match", out["error"]["message"])

        rc, out = follower.cli("login", "-method", "cert", "-role", "svc", token=False)
        self.assertEqual(out["error"]["code"], "PERMISSION_DENIED", out)


if __name__ == "__main__":
    unittest.main()

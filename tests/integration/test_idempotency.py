"""Idempotency keys belong to their caller (issue 11, must-have 4), end to
end on a real node with hand-made Request frames: the same request id from
two tokens gives two results, a replayed `token create` never hands another
caller's token out, the same id with another body is refused, and a retried
init answers its shares only to the client address that sent it, and a login's
request id belongs to the credential presented (the JWT, the certificate)."""
import json
import os
import re
import socket
import ssl
import struct
import unittest

from tests.harness.cluster import Cluster, ClusterCase
from tests.harness.wire import ld as field, varint
from tests.integration.test_login import (APP_READ, JWT_ROLE, Keys, claims, make_ca,
                                          make_leaf)

TOKEN_RE = re.compile(rb"mf\.[0-9a-f]{64}")


def request(key, op_field, op_body=b"", token=None):
    """Request{id=1, token, request_key=key, <op_field>=op_body}."""
    body = b"\x08\x01"
    if token:
        body += field(2, token.encode())
    return body + field(3, key) + field(op_field, op_body)


INIT = 14
TOKEN_CREATE = 26
LOGIN = 48


def login_body(method, role, jwt=None):
    """LoginRequest{method=1, role=3, jwt=4}."""
    body = field(1, method.encode()) + field(3, role.encode())
    return body + (field(4, jwt.encode()) if jwt else b"")


def raw_call(node, certs, body, source="127.0.0.1", client_cert=None):
    """One hand-made Request frame over TLS from `source` (presenting
    client_cert, a (certificate, key) pair, when given); the Response bytes."""
    ctx = ssl.create_default_context(cafile=os.path.join(certs, "ca.pem"))
    if client_cert:
        ctx.load_cert_chain(*client_cert)
    with socket.create_connection(("127.0.0.1", node.api_port), timeout=15,
                                  source_address=(source, 0)) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            s.sendall(struct.pack(">I", len(body)) + body)
            (n,) = struct.unpack(">I", s.recv(4))
            answer = b""
            while len(answer) < n:
                answer += s.recv(n - len(answer))
            return answer


def token_of(answer):
    m = TOKEN_RE.search(answer)
    return m.group(0).decode() if m else None


class InitReplay(unittest.TestCase):
    def test_init_replay_only_to_the_same_address(self):
        """A retried init with the same request id answers the same root token to
        the same address; the same id from another address, or another body from
        the same address, is refused and shows no token."""
        c = Cluster(1).start()
        self.addCleanup(c.cleanup)
        n = c.leader()
        key = os.urandom(16)
        first = raw_call(n, c.certs, request(key, INIT))
        root = token_of(first)
        self.assertIsNotNone(root, first)
        again = raw_call(n, c.certs, request(key, INIT))
        self.assertEqual(token_of(again), root, again)
        other = raw_call(n, c.certs, request(key, INIT), source="127.0.0.2")
        self.assertIsNone(token_of(other), other)
        self.assertIn(b"already initialised", other)
        # InitRequest{shares=2 (field 1), threshold=2}: another body, same id.
        changed = raw_call(n, c.certs, request(key, INIT, b"\x08\x02\x10\x02"))
        self.assertIsNone(token_of(changed), changed)
        self.assertIn(b"request id reused with a different request", changed)
        with open(n.log_path, "rb") as f:
            log = f.read()
        self.assertNotIn(key.hex().encode(), log)
        self.assertNotIn(key, log)


class PerCaller(ClusterCase):
    def new_token(self):
        rc, out = self.n.cli("token", "create")
        self.assertEqual(rc, 0, out)
        return out["token"]

    def test_same_id_from_two_tokens_gives_two_tokens(self):
        """Tokens A and B send `token create` with one request id: each gets its
        own new token, and A's retry gets A's first answer again."""
        a, b = self.new_token(), self.new_token()
        key = os.urandom(16)
        ta = token_of(raw_call(self.n, self.c.certs, request(key, TOKEN_CREATE, token=a)))
        tb = token_of(raw_call(self.n, self.c.certs, request(key, TOKEN_CREATE, token=b)))
        self.assertIsNotNone(ta)
        self.assertIsNotNone(tb)
        self.assertNotEqual(ta, tb)
        ta2 = token_of(raw_call(self.n, self.c.certs, request(key, TOKEN_CREATE, token=a)))
        self.assertEqual(ta, ta2)

    def test_replay_by_another_token_never_returns_the_first_token(self):
        """A replay of the root's `token create` (its request id captured) by
        another token creates that token's own child, never the root's."""
        key = os.urandom(16)
        first = token_of(raw_call(self.n, self.c.certs,
                                  request(key, TOKEN_CREATE, token=self.c.token)))
        self.assertIsNotNone(first)
        thief = self.new_token()
        replay = raw_call(self.n, self.c.certs, request(key, TOKEN_CREATE, token=thief))
        self.assertNotIn(first.encode(), replay)
        rc, out = self.n.cli("token", "lookup", token_of(replay) or "none")
        self.assertEqual(rc, 0, out)

    def test_same_id_with_another_body_is_refused(self):
        """The same caller reusing a request id for another request is refused
        INVALID_ARGUMENT, and the first request's answer stays."""
        a = self.new_token()
        key = os.urandom(16)
        first = token_of(raw_call(self.n, self.c.certs, request(key, TOKEN_CREATE, token=a)))
        self.assertIsNotNone(first)
        other = raw_call(self.n, self.c.certs,
                         request(key, TOKEN_CREATE, field(1, b"default"), token=a))
        self.assertIsNone(token_of(other), other)
        self.assertIn(b"request id reused with a different request", other)
        again = token_of(raw_call(self.n, self.c.certs, request(key, TOKEN_CREATE, token=a)))
        self.assertEqual(first, again)


class LoginPerCredential(ClusterCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.keys = Keys(cls.c.dir)

    def test_jwt_login_replay_belongs_to_the_jwt(self):
        """A retried JWT login (same request id, same JWT) gets the same token; another
        JWT with that request id from the same address gets a token of its own."""
        self.ok("policy", "write", "app-read", "-", stdin=json.dumps(APP_READ))
        config = {"jwks": {"keys": [self.keys.jwk("k1")]}, "bound_issuer": "https://issuer.test"}
        self.ok("auth", "enable", "-type", "jwt", "-config", "-", "jwt", stdin=json.dumps(config))
        self.ok("auth", "role", "put", "jwt", "app", json.dumps(JWT_ROLE))
        key = os.urandom(16)
        a = self.keys.jwt("k1", claims())
        b = self.keys.jwt("k1", claims(sub="system:serviceaccount:payments:other"))
        first = token_of(raw_call(self.n, self.c.certs, request(key, LOGIN,
                                                                login_body("jwt", "app", a))))
        self.assertIsNotNone(first)
        again = token_of(raw_call(self.n, self.c.certs, request(key, LOGIN,
                                                                login_body("jwt", "app", a))))
        self.assertEqual(first, again)
        other = raw_call(self.n, self.c.certs, request(key, LOGIN, login_body("jwt", "app", b)))
        self.assertNotIn(first.encode(), other)
        self.assertIsNotNone(token_of(other), other)

    def test_cert_login_replay_belongs_to_the_certificate(self):
        """A retried cert login (same request id, same certificate) gets the same token;
        another certificate matching the same role, with that request id from the same
        address and the same request body, never gets the first one's token."""
        ca = make_ca(self.c.dir, "idem-ca")
        with open(ca[1]) as f:
            self.ok("auth", "enable", "-type", "cert", "-config", "-", "cert",
                    stdin=json.dumps({"ca_pem": f.read()}))
        self.ok("auth", "role", "put", "cert", "svc", json.dumps(
            {"allowed_uri_sans": ["spiffe://prod/ns/payments/*"],
             "token_policies": ["default"], "token_ttl_ms": 600000}))
        one = make_leaf(self.c.dir, ca, "one", "spiffe://prod/ns/payments/sa/one")
        two = make_leaf(self.c.dir, ca, "two", "spiffe://prod/ns/payments/sa/two")
        key = os.urandom(16)
        body = request(key, LOGIN, login_body("cert", "svc"))
        first = token_of(raw_call(self.n, self.c.certs, body, client_cert=one))
        self.assertIsNotNone(first)
        self.assertEqual(token_of(raw_call(self.n, self.c.certs, body, client_cert=one)), first)
        other = raw_call(self.n, self.c.certs, body, client_cert=two)
        self.assertNotIn(first.encode(), other)
        self.assertIsNotNone(token_of(other), other)
        none = raw_call(self.n, self.c.certs, body)
        self.assertNotIn(first.encode(), none)
        self.assertIsNone(token_of(none), none)


if __name__ == "__main__":
    unittest.main()

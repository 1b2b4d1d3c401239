"""Idempotency keys belong to their caller (issue 11, must-have 4), end to
end on a real node with hand-made Request frames: the same request id from
two tokens gives two results, a replayed `token create` never hands another
caller's token out, the same id with another body is refused, and a retried
init answers its shares only to the client address that sent it."""
import os
import re
import socket
import ssl
import struct
import unittest

from tests.harness.cluster import Cluster

TOKEN_RE = re.compile(rb"mf\.[0-9a-f]{64}")


def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def field(num, payload):
    """A length-delimited field (string, bytes, message)."""
    return varint(num << 3 | 2) + varint(len(payload)) + payload


def request(key, op_field, op_body=b"", token=None):
    """Request{id=1, token, request_key=key, <op_field>=op_body}."""
    body = b"\x08\x01"
    if token:
        body += field(2, token.encode())
    return body + field(3, key) + field(op_field, op_body)


INIT = 14
TOKEN_CREATE = 26


def raw_call(node, certs, body, source="127.0.0.1"):
    """One hand-made Request frame over TLS from `source`; the Response bytes."""
    ctx = ssl.create_default_context(cafile=os.path.join(certs, "ca.pem"))
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


class PerCaller(unittest.TestCase):
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

    @classmethod
    def tearDownClass(cls):
        cls.c.cleanup()

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


if __name__ == "__main__":
    unittest.main()

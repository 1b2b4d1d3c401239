"""A 3-node cluster on loopback: replication, forwarding, reads from every
node, leader failure and recovery, sealing, and bad input."""
import os
import re
import signal
import socket
import ssl
import struct
import subprocess
import threading
import unittest

from tests.harness.cluster import MAYFLY, MAYFLYD, Cluster, free_port, wait_for


class ProcessHardening(unittest.TestCase):
    def test_no_core_dumps(self):
        """mayflyd holds keys and tokens in memory: its core file limits, soft
        and hard, are 0 (whatever it inherited: here the hard limit is
        unlimited), so no core file can hold them. (It also marks itself
        undumpable, which shows only to a non-root observer.)"""
        c = Cluster(1).start()
        self.addCleanup(c.cleanup)
        pid = c.nodes[0].proc.pid
        with open("/proc/%d/limits" % pid) as f:
            core = [line for line in f if line.startswith("Max core file size")][0].split()
        self.assertEqual(core[4:6], ["0", "0"], core)


class NulInPath(unittest.TestCase):
    def test_a_path_with_nul_is_refused_not_cut(self):
        """kv get of "app/db\\0junk" must not read app/db: INVALID_ARGUMENT."""
        c = Cluster(1).start()
        self.addCleanup(c.cleanup)
        c.init()
        c.wait_unsealed()
        rc, out = c.cli("kv", "put", "app/db", "password=secret")
        self.assertEqual(rc, 0, out)
        tok = c.token.encode()
        path = b"app/db\x00junk"
        get = b"\x0a" + bytes([len(path)]) + path            # KvGetRequest{path}
        body = (b"\x08\x01" + b"\x12" + bytes([len(tok)]) + tok +
                b"\x6a" + bytes([len(get)]) + get)          # Request{id, token, kv_get=13}
        answer = raw_call(c.nodes[0], c.certs, body)
        self.assertNotIn(b"secret", answer)
        self.assertIn(b"NUL", answer)
        clean = b"app/db"
        get = b"\x0a" + bytes([len(clean)]) + clean
        body = (b"\x08\x01" + b"\x12" + bytes([len(tok)]) + tok +
                b"\x6a" + bytes([len(get)]) + get)
        self.assertIn(b"secret", raw_call(c.nodes[0], c.certs, body))


class TooLarge(unittest.TestCase):
    def test_a_value_over_the_limit_is_too_large_not_unavailable(self):
        """A 1.5 MiB value is refused with TOO_LARGE (clients do not retry
        it), not UNAVAILABLE, and nothing is written."""
        c = Cluster(1).start()
        self.addCleanup(c.cleanup)
        c.init()
        c.wait_unsealed()
        big = os.path.join(c.dir, "big.txt")
        with open(big, "w") as f:
            f.write("x" * (1536 * 1024))
        rc, out = c.cli("kv", "put", "big/x", "v=@" + big, timeout="10s")
        self.assertEqual(rc, 2, out)
        self.assertEqual(out["error"]["code"], "TOO_LARGE", out)
        rc, out = c.cli("kv", "get", "big/x")
        self.assertEqual(out.get("error", {}).get("code"), "NOT_FOUND", out)


class ThreeNodes(unittest.TestCase):
    def setUp(self):
        self.c = Cluster(3).start()
        self.addCleanup(self.c.cleanup)
        self.c.init()
        self.c.wait_unsealed()

    def put(self, node, path, **data):
        args = ["kv", "put", path] + ["%s=%s" % kv for kv in data.items()]
        rc, out = node.cli(*args)
        self.assertEqual(rc, 0, out)
        return out

    def get(self, node, path, stale=False):
        args = ["kv", "get", path] + (["-consistency", "stale"] if stale else [])
        return node.cli(*args)

    def test_cluster_replicates_and_survives_leader_kill(self):
        """Writes through every node reach every node; after kill -9 of the leader
        a new one is elected and every acknowledged write is still readable."""
        c = self.c
        for i in range(30):
            self.put(c.nodes[i % 3], "app/k%d" % i, v=str(i))  # followers forward
        for n in c.nodes:  # linearizable reads from every node
            for i in range(30):
                rc, out = self.get(n, "app/k%d" % i)
                self.assertEqual(rc, 0, out)
                self.assertEqual(out["data"], {"v": str(i)})
                self.assertEqual(out["read"]["consistency"], "linearizable")
                self.assertEqual(out["read"]["node"], n.id)

        old = c.leader()
        old.kill(signal.SIGKILL)
        survivors = [n for n in c.nodes if n is not old]
        new = c.leader(among=survivors)
        self.assertNotEqual(new.id, old.id)
        for n in survivors:
            for i in range(30):
                rc, out = self.get(n, "app/k%d" % i)
                self.assertEqual(rc, 0, out)
                self.assertEqual(out["data"], {"v": str(i)})
        for i in range(30, 40):
            self.put(survivors[i % 2], "app/k%d" % i, v=str(i))

        # The old leader comes back and catches up (a linearizable read on it
        # waits until it has applied everything committed before the read).
        old.start()
        for i in range(40):
            rc, out = self.get(old, "app/k%d" % i)
            self.assertEqual(rc, 0, out)
            self.assertEqual(out["data"], {"v": str(i)})
        st = old.status()
        self.assertEqual(st["leader_id"], new.id)

    def test_status_and_members(self):
        """status names the leader and its client address, and lists the voters."""
        leader = self.c.leader()
        rc, out = self.c.nodes[0].cli("status")
        self.assertEqual(rc, 0, out)
        self.assertEqual(out["leader_id"], leader.id)
        self.assertEqual(out["leader_addr"], leader.api_addr)
        self.assertEqual(sorted(m["id"] for m in out["members"]), [1, 2, 3])
        self.assertFalse(out["sealed"])

    def test_stale_read_reports_lag(self):
        """A stale read answers locally and says how far behind the node is."""
        self.put(self.c.nodes[0], "s/a", x="1")
        follower = next(n for n in self.c.nodes if n is not self.c.leader())
        wait_for(lambda: self.get(follower, "s/a", stale=True)[0] == 0, 10, "replicated")
        rc, out = self.get(follower, "s/a", stale=True)
        self.assertEqual(out["read"]["consistency"], "stale")
        self.assertGreaterEqual(out["read"]["lag_entries"], 0)

    def test_retried_write_applies_once(self):
        """A lease grant answered once per call: two calls make two leases,
        while a lookup of each shows it active (idempotency keys are per call)."""
        rc1, a = self.c.cli("lease", "grant", "-ttl", "60s")
        rc2, b = self.c.cli("lease", "grant", "-ttl", "60s")
        self.assertEqual((rc1, rc2), (0, 0))
        self.assertNotEqual(a["lease_id"], b["lease_id"])
        for lid in (a["lease_id"], b["lease_id"]):
            rc, out = self.c.cli("lease", "lookup", lid)
            self.assertEqual(rc, 0, out)
            self.assertEqual(out["state"], "active")

    def test_auth_errors_and_exit_codes(self):
        """No token: UNAUTHENTICATED and exit 2; a bad flag: exit 1; unknown path: NOT_FOUND."""
        rc, out = self.c.cli("kv", "get", "x", token=False)
        self.assertEqual(rc, 2)
        self.assertEqual(out["error"]["code"], "UNAUTHENTICATED")
        rc, out = self.c.cli("kv", "get", "x", token="mf.bogus")
        self.assertEqual(out["error"]["code"], "UNAUTHENTICATED")
        rc, out = self.c.cli("kv", "get", "nothing/here")
        self.assertEqual((rc, out["error"]["code"]), (2, "NOT_FOUND"))
        rc, out = self.c.cli("kv", "get", "-bogus", "x")
        self.assertEqual(rc, 1)

    def test_malformed_frames_do_not_hurt_the_node(self):
        """Garbage in a frame gets INVALID_ARGUMENT and a closed connection; an
        oversized length closes the connection; the node keeps serving."""
        node = self.c.nodes[1]
        ctx = ssl.create_default_context(cafile=os.path.join(self.c.certs, "ca.pem"))
        with socket.create_connection(("127.0.0.1", node.api_port), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
                s.sendall(struct.pack(">I", 5) + b"\xff\xff\xff\xff\xff")
                hdr = s.recv(4)
                self.assertEqual(len(hdr), 4)
                body = b""
                (n,) = struct.unpack(">I", hdr)
                while len(body) < n:
                    body += s.recv(n - len(body))
                self.assertIn(b"malformed request", body)
        with socket.create_connection(("127.0.0.1", node.api_port), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
                s.sendall(struct.pack(">I", 1 << 30))
                self.assertEqual(s.recv(16), b"")  # closed, nothing allocated
        with socket.create_connection(("127.0.0.1", node.api_port), timeout=5) as raw:
            raw.sendall(b"GET / HTTP/1.0\r\n\r\n")  # not even TLS
            raw.settimeout(5)
            try:
                self.assertEqual(raw.recv(16)[:0], b"")
            except ConnectionResetError:
                pass
        # A well-formed Request with an enum value no server knows: a clear error.
        # Field 4 (consistency) = 7, field 10 (status) = empty message.
        with socket.create_connection(("127.0.0.1", node.api_port), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
                body = bytes([0x08, 0x01, 0x20, 0x07, 0x52, 0x00])
                s.sendall(struct.pack(">I", len(body)) + body)
                (n,) = struct.unpack(">I", s.recv(4))
                answer = b""
                while len(answer) < n:
                    answer += s.recv(n - len(answer))
                self.assertIn(b"does not know", answer)
        rc, out = node.cli("status")
        self.assertEqual(rc, 0, out)


def raw_call(node, certs, body):
    """One hand-made Request frame over TLS; returns the Response bytes."""
    ctx = ssl.create_default_context(cafile=os.path.join(certs, "ca.pem"))
    with socket.create_connection(("127.0.0.1", node.api_port), timeout=15) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            s.sendall(struct.pack(">I", len(body)) + body)
            (n,) = struct.unpack(">I", s.recv(4))
            answer = b""
            while len(answer) < n:
                answer += s.recv(n - len(answer))
            return answer


class RetriedInit(unittest.TestCase):
    def test_init_retried_with_same_request_id_gives_the_same_root_token(self):
        """An init whose answer was lost, retried with the same request id,
        answers the same root token; a different request is refused."""
        c = Cluster(3).start()
        self.addCleanup(c.cleanup)
        leader = c.leader()
        key = os.urandom(16)
        # Request{id=1, request_key=key, init={}}
        body = b"\x08\x01\x1a\x10" + key + b"\x72\x00"
        first = raw_call(leader, c.certs, body)
        second = raw_call(leader, c.certs, body)
        tok1 = re.search(rb"mf\.[0-9a-f]{64}", first)
        tok2 = re.search(rb"mf\.[0-9a-f]{64}", second)
        self.assertIsNotNone(tok1, first)
        self.assertIsNotNone(tok2, second)
        self.assertEqual(tok1.group(0), tok2.group(0))
        other = raw_call(leader, c.certs, b"\x08\x01\x1a\x10" + os.urandom(16) + b"\x72\x00")
        self.assertIn(b"already initialised", other)
        c.token = tok1.group(0).decode()
        rc, out = c.cli("token", "lookup")
        self.assertEqual(rc, 0, out)


class Snapshots(unittest.TestCase):
    def test_lagging_node_catches_up_by_snapshot(self):
        """A node down while the log was compacted past its position comes back
        and catches up from a snapshot sent by the leader, then from the log."""
        c = Cluster(3, extra_config={"snapshot_entries": 100}).start()
        self.addCleanup(c.cleanup)
        c.init()
        c.wait_unsealed()
        leader = c.leader()
        lagging = next(n for n in c.nodes if n is not leader)
        lagging.kill(signal.SIGKILL)
        live = [n for n in c.nodes if n is not lagging]
        for i in range(350):
            rc, out = c.cli("kv", "put", "snap/k%d" % i, "v=%d" % i, addr=c.addrs(live))
            self.assertEqual(rc, 0, out)
        wait_for(lambda: "log compacted" in leader.log_tail(200), 10, "leader compaction")
        lagging.start()
        for i in (0, 123, 349):
            rc, out = lagging.cli("kv", "get", "snap/k%d" % i)
            self.assertEqual(rc, 0, out)
            self.assertEqual(out["data"], {"v": str(i)})
        self.assertIn("installed a snapshot", lagging.log_tail(200))
        # And it keeps following the log after the snapshot.
        rc, out = c.cli("kv", "put", "snap/after", "v=1", addr=c.addrs(live))
        self.assertEqual(rc, 0, out)
        rc, out = lagging.cli("kv", "get", "snap/after")
        self.assertEqual((rc, out.get("data")), (0, {"v": "1"}), out)


class Shamir(unittest.TestCase):
    def test_init_unseal_seal(self):
        """Without a key file nodes start sealed; init gives shares; a threshold
        of shares unseals each node; seal locks a node again."""
        c = Cluster(3, key_file=False).start()
        self.addCleanup(c.cleanup)
        leader = c.leader()
        rc, out = c.nodes[0].cli("kv", "get", "x", token="mf.x")
        self.assertEqual(out["error"]["code"], "NOT_INITIALIZED")
        rc, out = leader.cli("operator", "init", "-shares", "3", "-threshold", "2", token=False)
        self.assertEqual(rc, 0, out)
        self.assertEqual(len(out["shares"]), 3)
        c.token = out["root_token"]
        shares = out["shares"]
        for n in c.nodes:
            if n is leader:
                continue
            wait_for(lambda: (n.status() or {}).get("initialized"), 10, "keyring replicated")
            rc, out = n.cli("kv", "get", "x")
            self.assertEqual(out["error"]["code"], "SEALED")
            rc, out = n.cli("operator", "unseal", shares[0], token=False)
            self.assertEqual((rc, out["sealed"], out["progress"]), (0, True, 1), out)
            rc, out = n.cli("operator", "unseal", shares[0], token=False)  # same share again
            self.assertEqual(out.get("progress"), 1, out)
            rc, out = n.cli("operator", "unseal", shares[2], token=False)
            self.assertEqual((rc, out["sealed"]), (0, False), out)
        rc, out = c.nodes[1].cli("kv", "put", "p", "k=v")
        self.assertEqual(rc, 0, out)
        rc, out = c.nodes[2].cli("operator", "seal")
        self.assertEqual(rc, 0, out)
        rc, out = c.nodes[2].cli("kv", "get", "p")
        self.assertEqual(out["error"]["code"], "SEALED")
        status, body = c.nodes[2].http_get("/health")
        self.assertEqual((status, body), (503, "sealed\n"))
        self.assertEqual(c.nodes[2].http_get("/nope")[0], 404)


class DevServer(unittest.TestCase):
    def test_dev_server_prints_exports_and_cleans_up(self):
        """mayflyd --dev prints the three export lines, serves the CLI with them,
        and removes its directory on SIGTERM."""
        port = free_port()
        p = subprocess.Popen([MAYFLYD, "--dev", "--dev-listen", "127.0.0.1:%d" % port],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        env = {}
        ready = threading.Event()
        lines = []

        def read():
            for line in p.stdout:
                lines.append(line)
                m = re.match(r"export (MAYFLY_\w+)='(.*)'", line.strip())
                if m:
                    env[m.group(1)] = m.group(2)
                if line.strip() == "mayflyd: ready":
                    ready.set()
        threading.Thread(target=read, daemon=True).start()
        try:
            self.assertTrue(ready.wait(30), "".join(lines))
            self.assertEqual(set(env), {"MAYFLY_ADDR", "MAYFLY_CACERT", "MAYFLY_TOKEN"})
            self.assertTrue(env["MAYFLY_TOKEN"].startswith("mf."))
            full = dict(os.environ, **env)
            r = subprocess.run([MAYFLY, "kv", "put", "dev/x", "a=1"], env=full,
                               capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            r = subprocess.run([MAYFLY, "-format", "json", "kv", "get", "-field", "a", "dev/x"],
                               env=full, capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn('"a": "1"', r.stdout)
        finally:
            p.send_signal(signal.SIGTERM)
            p.wait(30)
        self.assertFalse(os.path.exists(os.path.dirname(env["MAYFLY_CACERT"])))


if __name__ == "__main__":
    unittest.main()

"""Audit devices end to end (issue 11, must-have 7): a file device enabled
once and written by every node of a 3-node cluster, allowed and denied
requests recorded, secrets never in clear, `audit verify` on an intact and a
tampered file, and fail closed on a full file system (a 64 KiB tmpfs)."""
import json
import os
import signal
import subprocess
import time
import unittest
from concurrent.futures import ThreadPoolExecutor

from tests.harness.cluster import Cluster, ClusterCase, wait_for

MARKER = "MARKER123"


def text_of(path):
    with open(path) as f:
        return f.read()


def lines_of(path):
    try:
        with open(path) as f:
            return [json.loads(l) for l in f if l.strip()]
    except FileNotFoundError:
        return []


class AuditDevices(ClusterCase):
    size = 3

    def root(self, *args, node=None):
        rc, out = (node or self.c).cli(*args)
        self.assertEqual(rc, 0, out)
        return out

    def path(self, node):
        return os.path.join(self.c.dir, "audit-%d.log" % node.id)

    def test_every_node_records_and_verifies(self):
        c = self.c
        tmpl = os.path.join(c.dir, "audit-{node}.log")
        self.assertEqual(self.root("audit", "enable", "-type", "file", "-path", tmpl, "main"), {})
        self.assertEqual(self.root("audit", "list")["devices"],
                         [{"name": "main", "type": "file", "path": tmpl}])
        for n in c.nodes:  # every node opens its own file when the record applies
            wait_for(lambda: os.path.exists(self.path(n)), 10, "node %d's audit file" % n.id)
        leader = c.leader()
        follower = next(n for n in c.nodes if n is not leader)
        self.root("kv", "put", "app/x", "password=" + MARKER, node=follower)  # forwarded
        self.assertEqual(self.root("kv", "get", "app/x", node=follower)["data"],
                         {"password": MARKER})
        child = self.root("token", "create", "-policy", "nothing", "-ttl", "1h")["token"]
        rc, out = follower.cli("kv", "get", "app/x", token=child)
        self.assertEqual(rc, 2, out)
        self.assertEqual(out["error"]["code"], "PERMISSION_DENIED")

        def ops(node):
            return [(l.get("operation"), l.get("decision", {}).get("allowed"), l.get("result"))
                    for l in lines_of(self.path(node))]
        # The forwarded write is recorded on the entry node and on the leader.
        for n in (leader, follower):
            wait_for(lambda: ("kv.put", True, "OK") in ops(n), 5, "kv.put in %d" % n.id)
        self.assertIn(("kv.get", False, "PERMISSION_DENIED"), ops(follower))
        self.assertIn(("kv.get", True, "OK"), ops(follower))
        denied = [l for l in lines_of(self.path(follower))
                  if l.get("operation") == "kv.get" and not l["decision"]["allowed"]]
        self.assertTrue(denied[0]["identity"]["accessor"])
        self.assertEqual(denied[0]["path"], "kv/data/app/x")
        self.assertTrue(denied[0]["request_id"].startswith("hmac-sha256:")
                        if "request_id" in denied[0] else True)
        # Secrets never in clear; the root token is findable by its HMAC.
        h = self.root("audit", "hash", c.token)["hash"]
        self.assertTrue(h.startswith("hmac-sha256:"), h)
        for n in c.nodes:
            text = text_of(self.path(n))
            for secret in (MARKER, c.token, child):
                self.assertNotIn(secret, text, "node %d" % n.id)
        self.assertIn(h, text_of(self.path(leader)))

        # audit verify: intact, an edited byte, a removed line.
        p = self.path(leader)
        ok = self.root("audit", "verify", p)
        self.assertTrue(ok["ok"], ok)
        self.assertGreaterEqual(ok["records"], 5)
        with open(p, "rb") as f:
            lines = f.read().split(b"\n")[:-1]
        edited = list(lines)
        i = edited[2].index(b'"operation":"') + len(b'"operation":"')
        edited[2] = edited[2][:i] + bytes([edited[2][i] ^ 1]) + edited[2][i + 1:]
        bad = os.path.join(c.dir, "edited.log")
        with open(bad, "wb") as f:
            f.write(b"\n".join(edited) + b"\n")
        rc, out = c.cli("audit", "verify", bad)
        self.assertEqual(rc, 2, out)
        self.assertEqual((out["ok"], out["line"]), (False, 3), out)
        removed = lines[:3] + lines[4:]
        with open(bad, "wb") as f:
            f.write(b"\n".join(removed) + b"\n")
        rc, out = c.cli("audit", "verify", bad)
        self.assertEqual(rc, 2, out)
        self.assertEqual((out["ok"], out["line"]), (False, 4), out)

        # Denied for a token without sudo, and recorded as such.
        rc, out = follower.cli("audit", "list", token=child)
        self.assertEqual((rc, out["error"]["code"]), (2, "PERMISSION_DENIED"), out)
        rc, out = c.cli("audit", "verify", p, token=child)
        self.assertEqual(rc, 2, out)
        self.assertEqual(self.root("audit", "disable", "main"), {})
        self.assertEqual(self.root("audit", "list")["devices"], [])

    def test_anchors_catch_a_truncated_tail(self):
        """Every node's file is anchored through Raft (a follower's too): a
        copy cut short by 3 lines after an anchor fails at the first missing
        line, the intact copy verifies against the anchor."""
        c = self.c
        tmpl = os.path.join(c.dir, "anc-{node}.log")
        self.root("audit", "enable", "-type", "file", "-path", tmpl, "anc")
        leader = c.leader()
        follower = next(n for n in c.nodes if n is not leader)
        other = next(n for n in c.nodes if n is not leader and n is not follower)
        p = os.path.join(c.dir, "anc-%d.log" % follower.id)
        wait_for(lambda: os.path.exists(p), 10, "the follower's audit file")
        for i in range(4):
            self.root("kv", "put", "anc/%d" % i, "v=1", node=follower)
        copy = os.path.join(c.dir, "anc-copy.log")
        # `audit verify` is served on `other` (a read), so the follower's
        # file stops growing; wait until its last line is anchored.
        def anchored():
            with open(p, "rb") as f:
                data = f.read()
            with open(copy, "wb") as f:
                f.write(data)
            out = self.root("audit", "verify", copy, node=other)
            return out["ok"] and out["anchored_seq"] == data.count(b"\n") and out
        wait_for(anchored, 15, "the follower's last line anchored")
        with open(copy, "rb") as f:
            lines = f.read().split(b"\n")[:-1]
        out = self.root("audit", "verify", copy, node=other)
        self.assertTrue(out["ok"], out)
        self.assertGreaterEqual(out["anchors_checked"], 1, out)
        with open(copy, "wb") as f:
            f.write(b"\n".join(lines[:-3]) + b"\n")
        rc, out = other.cli("audit", "verify", copy)
        self.assertEqual(rc, 2, out)
        self.assertEqual((out["ok"], out["line"]), (False, len(lines) - 2), out)
        self.root("audit", "disable", "anc")

    def test_hash_is_rate_limited_and_audited(self):
        c = self.c
        tmpl = os.path.join(c.dir, "hash-{node}.log")
        self.root("audit", "enable", "-type", "file", "-path", tmpl, "hash")
        n = c.leader()
        p = os.path.join(c.dir, "hash-%d.log" % n.id)
        wait_for(lambda: os.path.exists(p), 10, "the audit file")
        def one(i):
            rc, out = n.cli("audit", "hash", "v%d" % i)
            return out.get("error", {}).get("code") if rc else "OK"
        with ThreadPoolExecutor(8) as pool:  # a burst: a bucket of 10 at 10 a second
            codes = list(pool.map(one, range(40)))
        self.assertIn("RATE_LIMITED", codes)
        self.assertGreaterEqual(codes.count("OK"), 10, codes)
        self.assertEqual(set(codes), {"OK", "RATE_LIMITED"}, codes)
        recs = [l for l in lines_of(p) if l.get("operation") == "audit.hash"]
        self.assertIn("RATE_LIMITED", [l.get("result") for l in recs])
        self.assertNotIn("v0", text_of(p))
        self.root("audit", "disable", "hash")

    def test_sighup_reopens_files(self):
        """logrotate's `create` mode: after a rename and SIGHUP a new file
        starts whose first record links to where the old one ended; both
        verify."""
        c = self.c
        tmpl = os.path.join(c.dir, "rot-{node}.log")
        self.root("audit", "enable", "-type", "file", "-path", tmpl, "rot")
        n = c.leader()
        cur = os.path.join(c.dir, "rot-%d.log" % n.id)
        wait_for(lambda: os.path.exists(cur), 10, "the audit file")
        self.root("kv", "put", "rot/a", "v=1", node=n)
        old = cur + ".1"
        os.rename(cur, old)
        n.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: os.path.exists(cur), 10, "the reopened file")
        self.root("kv", "put", "rot/b", "v=1", node=n)
        wait_for(lambda: any(l.get("operation") == "kv.put" for l in lines_of(cur)), 5,
                 "a record in the new file")
        self.root("audit", "disable", "rot")
        first = lines_of(cur)[0]
        self.assertEqual(first["seq"], 1)
        self.assertEqual(first["start"]["prev_file"], lines_of(old)[0]["file"])
        for p in (old, cur):
            out = self.root("audit", "verify", p)
            self.assertTrue(out["ok"], (p, out))
        self.assertTrue(n.alive())


class FailClosed(unittest.TestCase):
    """A device on a full file system refuses client requests; nothing applies."""

    def setUp(self):
        self.c = Cluster(1).start()
        self.mnt = None
        try:
            self.c.init()
            self.c.wait_unsealed()
            mnt = os.path.join(self.c.dir, "small")
            os.mkdir(mnt)
            r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", mnt],
                               capture_output=True)
            if r.returncode:
                self.skipTest("cannot mount a tmpfs: %s" % r.stderr.decode().strip())
            self.mnt = mnt
        except BaseException:
            self.tearDown()
            raise

    def tearDown(self):
        if self.mnt:
            subprocess.run(["umount", "-l", self.mnt])
        self.c.cleanup()

    def test_full_disk_refuses_and_applies_nothing(self):
        c = self.c
        n = c.nodes[0]
        log = os.path.join(self.mnt, "audit.log")
        self.assertEqual(c.cli("audit", "enable", "-type", "file", "-path", log, "small")[0], 0)
        wait_for(lambda: os.path.exists(log), 10, "the audit file")
        rc, out = c.cli("kv", "put", "before", "v=1")
        self.assertEqual(rc, 0, out)
        filler = os.path.join(self.mnt, "filler")
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)  # fill what is left
        try:
            while os.write(fd, b"\0" * 512):
                pass
        except OSError:
            pass
        finally:
            os.close(fd)
        # The audit file's last page may still take a few lines: write until
        # the device runs out, which must come within a page's worth.
        for i in range(64):
            rc, out = c.cli("kv", "put", "after%d" % i, "v=1")
            if rc:
                break
        self.assertEqual(rc, 2, out)
        self.assertEqual(out["error"]["code"], "UNAVAILABLE", out)
        self.assertIn("audit device small cannot write", out["error"]["message"])
        rc, out = c.cli("kv", "get", "before")
        self.assertEqual((rc, out["error"]["code"]), (2, "UNAVAILABLE"), out)
        os.unlink(filler)  # the device writes again
        rc, out = c.cli("kv", "get", "after%d" % i)
        self.assertEqual((rc, out.get("error", {}).get("code")), (2, "NOT_FOUND"), out)
        self.assertEqual(c.cli("kv", "get", "before")[0], 0)
        ok = c.cli("audit", "verify", log)[1]
        self.assertTrue(ok["ok"], ok)
        self.assertEqual(c.cli("audit", "disable", "small")[0], 0)
        self.assertTrue(n.alive())

    def fill(self):
        filler = os.path.join(self.mnt, "filler")
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while os.write(fd, b"\0" * 512):
                pass
        except OSError:
            pass
        finally:
            os.close(fd)
        return filler

    def test_revocations_are_recorded_once_the_device_writes_again(self):
        """A lease falls due while the audit disk is full: it is revoked on
        time (never waiting for audit), and its system record reaches the
        file once space is freed; the file still verifies."""
        c = self.c
        n = c.nodes[0]
        log = os.path.join(self.mnt, "audit.log")
        self.assertEqual(c.cli("audit", "enable", "-type", "file", "-path", log, "small")[0], 0)
        wait_for(lambda: os.path.exists(log), 10, "the audit file")
        rc, lease = c.cli("lease", "grant", "-ttl", "6s")
        self.assertEqual(rc, 0, lease)
        revoked_before = n.metric("mayfly_leases_revoked_total")
        filler = self.fill()
        for i in range(64):
            rc, out = c.cli("kv", "put", "after%d" % i, "v=1", timeout="1s")
            if rc:
                break
        self.assertEqual((rc, out["error"]["code"]), (2, "UNAVAILABLE"), out)
        self.assertLess(time.time() * 1000, lease["expire_at_ms"],
                        "the disk filled only after the lease fell due: no proof")
        wait_for(lambda: n.metric("mayfly_leases_revoked_total") > revoked_before,
                 (lease["expire_at_ms"] / 1000 - time.time()) + 10, "the due lease revoked")
        rc, out = c.cli("kv", "put", "still-full", "v=1", timeout="1s")
        self.assertEqual((rc, out["error"]["code"]), (2, "UNAVAILABLE"), out)

        os.unlink(filler)  # the device writes again

        def revoked_record():
            return [l for l in lines_of(log) if l.get("operation") == "lease.revoked" and
                    l.get("lease_id") == lease["lease_id"]]
        wait_for(revoked_record, 10, "the revocation's record in the audit file")
        rec = revoked_record()[0]
        self.assertEqual(rec["identity"], {"auth_method": "system", "role": "scheduler"})
        self.assertNotIn("client_addr", rec)
        self.assertEqual(rec["result"], "OK")
        ok = c.cli("audit", "verify", log)[1]
        self.assertTrue(ok["ok"], ok)
        self.assertEqual(c.cli("audit", "disable", "small")[0], 0)
        self.assertTrue(n.alive())


if __name__ == "__main__":
    unittest.main()

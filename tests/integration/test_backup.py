"""Backup and disaster recovery on real processes (issue 13 item 3; CLI.md
"operator snapshot save / restore"; src/store/README.md "Backups").

A 3-node cluster sealed with Shamir shares holds KV secrets (several
versions), a lease-bound value, a token, a policy and a lease due during the
"outage"; `operator snapshot save` writes a backup that holds none of the
secrets in clear; every node is stopped and wiped; a NEW uninitialised
3-node cluster refuses a backup with one byte changed (in the data: at
upload; in the MAC: at unseal, "backup fails its MAC") and stays
uninitialised; the real backup is restored while one follower is down
(errors and init then say "restore staged"), every node (the late one once
it caught up by InstallSnapshot of the restored state) is unsealed with the OLD shares, everything is read back through every node with the old root
token, the due lease is revoked within a measured bound, and a second
restore into the now initialised cluster is refused. Deny by default: save
without a token is UNAUTHENTICATED, with a token lacking sudo on
sys/raft/snapshot PERMISSION_DENIED."""
import json
import shutil
import os
import stat
import tempfile
import time
import unittest

from tests.harness.cluster import Cluster, wait_for

ROLE = {"common_name": "web.example.com", "allowed_domains": ["example.com"],
        "allow_subdomains": True, "default_ttl_ms": 60000, "max_ttl_ms": 3600000,
        "server_flag": True}
MARKERS = ["s3cr3t-v1-MARKER", "s3cr3t-v2-MARKER", "s3cr3t-v3-MARKER", "bound-MARKER"]
DUE_TTL_S = 8


def unseal_all(cluster, nodes, shares, threshold):
    for n in nodes:
        for share in shares[:threshold]:
            rc, out = n.cli("operator", "unseal", share, token=False, timeout="30s")
            assert rc == 0, (n.id, out)
            if out.get("sealed") is False:
                break


class Backup(unittest.TestCase):
    def setUp(self):
        self.old = Cluster(3, key_file=False).start()
        self.new = None
        self.addCleanup(lambda: self.old.cleanup())

    def populate(self):
        c = self.old
        init = c.init()
        self.shares, self.threshold = init["shares"], init["threshold"]
        unseal_all(c, c.nodes, self.shares, self.threshold)
        c.wait_unsealed(30)
        for v in MARKERS[:3]:
            rc, out = c.cli("kv", "put", "app/db", "password=" + v, timeout="10s")
            self.assertEqual(rc, 0, out)
        rc, lease = c.cli("lease", "grant", "-ttl", "1h", "-name", "bound", timeout="10s")
        self.assertEqual(rc, 0, lease)
        self.bound_lease = lease["lease_id"]
        rc, out = c.cli("kv", "put", "-lease", self.bound_lease, "app/bound",
                        "v=" + MARKERS[3], timeout="10s")
        self.assertEqual(rc, 0, out)
        # Big values: the backup takes more than one 1 MiB chunk to save and
        # several 512 KiB pieces to replicate.
        self.big = {}
        for name in ("big1", "big2"):
            self.big[name] = os.urandom(350 * 1024).hex()
            f = os.path.join(c.dir, name + ".txt")
            with open(f, "w") as fh:
                fh.write(self.big[name])
            rc, out = c.cli("kv", "put", "app/" + name, "v=@" + f, timeout="20s")
            self.assertEqual(rc, 0, out)
        pol = json.dumps({"path": {"kv/data/app/*": {"capabilities": ["read"]}}})
        rc, out = c.cli("policy", "write", "readers", "-", stdin=pol, timeout="10s")
        self.assertEqual(rc, 0, out)
        rc, tok = c.cli("token", "create", "-policy", "readers", "-ttl", "24h", timeout="10s")
        self.assertEqual(rc, 0, tok)
        self.reader_token = tok["token"]
        # Audit devices come back with a restore: their files live where the
        # new nodes can write them too (as on real hosts that keep /var/log).
        self.audit_dir = tempfile.mkdtemp(prefix="mayfly-backup-audit-")
        self.addCleanup(lambda: shutil.rmtree(self.audit_dir, ignore_errors=True))
        rc, out = c.cli("audit", "enable", "-type", "file", "-path",
                        os.path.join(self.audit_dir, "audit-{node}.log"), "main", timeout="10s")
        self.assertEqual(rc, 0, out)
        rc, out = c.cli("engine", "enable", "-type", "pki", "-config",
                        json.dumps({"generate": True, "common_name": "backup test pki"}), "pki",
                        timeout="20s")
        self.assertEqual(rc, 0, out)
        rc, out = c.cli("engine", "role", "put", "pki", "web", json.dumps(ROLE), timeout="10s")
        self.assertEqual(rc, 0, out)
        rc, due = c.cli("lease", "grant", "-ttl", "%ds" % DUE_TTL_S, "-name", "due",
                        timeout="10s")
        self.assertEqual(rc, 0, due)
        self.due = due
        # A certificate whose lease falls due during the outage: revoked
        # through the restored engine.
        rc, cert = c.cli("creds", "issue", "-ttl", "%ds" % DUE_TTL_S, "pki/web", timeout="20s")
        self.assertEqual(rc, 0, cert)
        self.due_cert = cert

    def audit_ops(self):
        ops = []
        for name in os.listdir(self.audit_dir):
            with open(os.path.join(self.audit_dir, name)) as f:
                for line in f:
                    if line.strip():
                        r = json.loads(line)
                        ops.append((r.get("operation"), r.get("decision", {}).get("allowed"),
                                    r.get("result")))
        return ops

    def test_save_wipe_restore(self):
        self.populate()
        c = self.old
        path = os.path.join(c.dir, "..", os.path.basename(c.dir) + ".mfbak")
        path = os.path.abspath(path)
        self.addCleanup(lambda: [os.path.exists(p) and os.unlink(p)
                                 for p in (path, path + ".data", path + ".mac")])

        # Deny by default.
        rc, out = c.cli("operator", "snapshot", "save", path, token=False)
        self.assertEqual((rc, out["error"]["code"]), (2, "UNAUTHENTICATED"), out)
        rc, out = c.cli("operator", "snapshot", "save", path, token=self.reader_token)
        self.assertEqual((rc, out["error"]["code"]), (2, "PERMISSION_DENIED"), out)
        self.assertIn("sys/raft/snapshot", out["error"]["message"])
        self.assertFalse(os.path.exists(path))

        # Save through a follower (forwarded to the leader).
        lead = c.leader()
        follower = next(n for n in c.nodes if n.id != lead.id)
        rc, saved = follower.cli("operator", "snapshot", "save", path, timeout="30s")
        saved_at_ms = time.time() * 1000
        self.assertEqual(rc, 0, saved)
        self.assertEqual(set(saved), {"index", "term", "bytes", "sha256"}, saved)
        self.assertLess(saved_at_ms, min(self.due["expire_at_ms"], self.due_cert["expire_at_ms"]),
                        "the save must end before the due leases expire")
        # Audited, allowed and refused alike.
        audited = self.audit_ops()
        self.assertIn(("operator.snapshot-save", True, "OK"), audited)
        self.assertIn(("operator.snapshot-save", False, "PERMISSION_DENIED"), audited)
        self.assertEqual(os.path.getsize(path), saved["bytes"])
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        self.assertFalse(os.path.exists(path + ".tmp"))
        self.assertGreater(saved["bytes"], 1 << 20, "more than one chunk")
        self.assertGreater(saved["index"], 0)
        self.assertGreater(saved["term"], 0)
        with open(path, "rb") as f:
            blob = f.read()
        import hashlib
        self.assertEqual(hashlib.sha256(blob[:-64]).hexdigest(), saved["sha256"])
        self.assertTrue(blob.startswith(b"MFBACK01"))
        for m in MARKERS + [self.reader_token]:
            self.assertNotIn(m.encode(), blob, "a secret in clear in the backup")
        # Nothing left on the leader's disk.
        wait_for(lambda: not os.listdir(os.path.join(lead.data_dir, "backups")), 10,
                 "the leader's backups/ directory emptied")
        # Tampered copies: one byte of the LMDB data; one byte of the MAC.
        with open(path + ".data", "wb") as f:
            b = bytearray(blob)
            b[len(b) // 2] ^= 0x01
            f.write(b)
        with open(path + ".mac", "wb") as f:
            b = bytearray(blob)
            b[-1] ^= 0x01
            f.write(b)

        # The outage: every node stopped and wiped.
        c.stop()
        for node in c.nodes:
            shutil.rmtree(node.data_dir)
            self.assertFalse(os.path.exists(node.data_dir))
        # Snapshots every 100 entries: the node down during the restore
        # catches up by InstallSnapshot of the restored state.
        self.new = n = Cluster(3, key_file=False, extra_config={"snapshot_entries": 100}).start()
        self.addCleanup(lambda: n.cleanup())
        self.new.token = c.token  # the old root token, for reads later
        lead = n.leader()
        st = lead.cli("status", token=False)[1]
        self.assertFalse(st["initialized"], st)

        # One byte changed in the data: refused at upload, nothing opened.
        rc, out = lead.cli("operator", "snapshot", "restore", path + ".data", token=False,
                           timeout="30s")
        self.assertEqual((rc, out["error"]["code"]), (2, "INVALID_ARGUMENT"), out)
        self.assertIn("SHA-256", out["error"]["message"])
        self.assertFalse(lead.cli("status", token=False)[1]["initialized"])
        self.assertEqual(os.listdir(os.path.join(lead.data_dir, "restore")), [])
        # One byte changed in the MAC: staged, then refused at unseal.
        rc, out = lead.cli("operator", "snapshot", "restore", path + ".mac", token=False,
                           timeout="30s")
        self.assertEqual(rc, 0, out)
        self.assertEqual((out["index"], out["term"]), (saved["index"], saved["term"]))
        last = None
        for share in self.shares[:self.threshold]:
            last = lead.cli("operator", "unseal", share, token=False, timeout="30s")
        rc, out = last
        self.assertEqual((rc, out["error"]["code"]), (2, "INVALID_ARGUMENT"), out)
        self.assertIn("backup fails its MAC", out["error"]["message"])
        st = lead.cli("status", token=False)[1]
        self.assertFalse(st["initialized"], st)
        self.assertTrue(st["sealed"], st)
        self.assertEqual(os.listdir(os.path.join(lead.data_dir, "restore")), [])
        for node in n.nodes:
            self.assertFalse(node.cli("status", token=False)[1]["initialized"])

        # The real backup, after the due lease fell due.
        due_ms = max(self.due["expire_at_ms"], self.due_cert["expire_at_ms"])
        wait_for(lambda: time.time() * 1000 > due_ms + 200, DUE_TTL_S + 5,
                 "the due leases' expiry passed")
        # One follower is down during the restore: it catches up afterwards.
        late = next(x for x in n.nodes if x.id != lead.id)
        late.kill()
        rc, out = lead.cli("operator", "snapshot", "restore", path, token=False, timeout="30s")
        self.assertEqual(rc, 0, out)
        self.assertEqual(set(out), {"index", "term"}, out)
        self.assertEqual(out["index"], saved["index"])
        # Staged: errors say what to do, and init is refused meanwhile.
        rc, out = lead.cli("kv", "get", "app/db", token=False)
        self.assertEqual((rc, out["error"]["code"]), (2, "NOT_INITIALIZED"), out)
        self.assertIn("restore staged: unseal with the backup's shares", out["error"]["message"])
        rc, out = lead.cli("operator", "init", token=False)
        self.assertEqual((rc, out["error"]["code"]), (2, "INVALID_ARGUMENT"), out)
        self.assertIn("restore staged", out["error"]["message"])
        unseal_all(n, [lead], self.shares, self.threshold)
        restored_at = time.monotonic()
        up = [x for x in n.nodes if x.id not in (lead.id, late.id)]
        wait_for(lambda: all(x.cli("status", token=False)[1].get("initialized") for x in up),
                 30, "the live follower applied the restore")
        unseal_all(n, up, self.shares, self.threshold)
        live = n.addrs([lead] + up)
        # The due lease is revoked by the new leader's scheduler.
        def revoked(lease_id):
            rc, out = n.cli("lease", "lookup", lease_id, addr=live, timeout="10s")
            return rc == 0 and out.get("state") == "revoked"
        wait_for(lambda: revoked(self.due["lease_id"]), 30, "the due lease revoked")
        bound_s = time.monotonic() - restored_at
        wait_for(lambda: revoked(self.due_cert["lease_id"]), 30,
                 "the due certificate revoked through the restored pki engine")
        cert_s = time.monotonic() - restored_at
        print("\ndue lease revoked %.2f s, due certificate %.2f s after the restore's unseal"
              % (bound_s, cert_s))
        self.assertLess(bound_s, 20)  # generous: a loaded 2-core machine

        # Past the snapshot threshold, so the log holding the restore is
        # compacted: the late node gets the restored state by InstallSnapshot.
        for i in range(210):  # two snapshots: the log is compacted to the first
            rc, out = n.cli("kv", "put", "fill/k%d" % i, "v=%d" % i, addr=live, timeout="10s")
            self.assertEqual(rc, 0, out)
        wait_for(lambda: "log compacted" in open(lead.log_path).read(), 20, "leader compaction")
        late.start()
        wait_for(lambda: late.cli("status", token=False)[1].get("initialized"), 30,
                 "the follower that was down caught up with the restore")
        self.assertIn("installed a snapshot", open(late.log_path).read())
        unseal_all(n, [late], self.shares, self.threshold)
        n.wait_unsealed(30)

        # Everything back, through every node, with the old root token.
        for node in n.nodes:
            for v, want in ((1, MARKERS[0]), (2, MARKERS[1]), (3, MARKERS[2])):
                rc, out = node.cli("kv", "get", "-version", str(v), "app/db", timeout="10s")
                self.assertEqual(rc, 0, (node.id, out))
                self.assertEqual(out["data"]["password"], want)
            for name, want in self.big.items():
                rc, out = node.cli("kv", "get", "app/" + name, timeout="10s")
                self.assertEqual((rc, out.get("data", {}).get("v")), (0, want), node.id)
            rc, out = node.cli("kv", "get", "app/bound", timeout="10s")
            self.assertEqual((rc, out.get("lease_id")), (0, self.bound_lease), out)
            self.assertEqual(out["data"]["v"], MARKERS[3])
            rc, out = node.cli("policy", "read", "readers", timeout="10s")
            self.assertEqual(rc, 0, out)
            rc, out = node.cli("token", "lookup", token=self.reader_token, timeout="10s")
            self.assertEqual(rc, 0, out)
            rc, out = node.cli("kv", "get", "app/db", token=self.reader_token, timeout="10s")
            self.assertEqual((rc, out.get("data", {}).get("password")), (0, MARKERS[2]), out)
            rc, out = node.cli("lease", "lookup", self.bound_lease, timeout="10s")
            self.assertEqual((rc, out.get("state")), (0, "active"), out)
        # The engine is the restored one: same mount, role, CA.
        rc, out = n.cli("engine", "list", timeout="10s")
        self.assertEqual(out.get("engines"), [{"mount": "pki", "type": "pki", "roles": ["web"]}],
                         out)
        rc, cert = n.cli("creds", "issue", "pki/web", timeout="20s")
        self.assertEqual(rc, 0, cert)
        self.assertEqual(cert["data"]["issuing_ca"], self.due_cert["data"]["issuing_ca"])
        # New writes after the restore: new lease ids never collide.
        rc, out = n.cli("lease", "grant", "-ttl", "1h", "-name", "after", timeout="10s")
        self.assertEqual(rc, 0, out)
        self.assertNotEqual(out["lease_id"], self.bound_lease)
        rc, out = n.cli("kv", "put", "app/db", "password=after", timeout="10s")
        self.assertEqual((rc, out.get("version")), (0, 4), out)

        # A restore into an initialised cluster is refused.
        rc, out = n.cli("operator", "snapshot", "restore", path, token=False, timeout="30s")
        self.assertEqual((rc, out["error"]["code"]), (2, "INVALID_ARGUMENT"), out)
        self.assertIn("already initialised", out["error"]["message"])


if __name__ == "__main__":
    unittest.main()

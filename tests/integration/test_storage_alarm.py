"""The storage quota and its replicated alarm (README "Storage pressure",
issue 15), without root mounts: a 3-node cluster with a 1 MiB state quota is
filled with KV puts until growing writes are refused with QUOTA_EXCEEDED
and a message naming the limit; reads (linearizable and stale), a lease
revoke and deletes go on; `operator alarm list`, `status`, /metrics and
/health show the alarm; after the data is destroyed the alarm clears (by
itself or with `operator alarm disarm`) and writes resume; nothing
acknowledged is lost.

Run from the repository root: python3 -m unittest tests.integration.test_storage_alarm
"""
import json
import os
import tempfile
import unittest

from tests.harness.cluster import ClusterCase, wait_for

VALUE = "v" * 60000  # a put of about 60 KB (ciphertext in LMDB overflow pages)


class StorageAlarm(ClusterCase):
    size = 3
    extra_config = {"state_quota_mb": 1, "state_map_size_mb": 16, "storage_free_floor_mb": 1}

    def alarms(self, node):
        rc, out = node.cli("operator", "alarm", "list")
        self.assertEqual(rc, 0, out)
        return out["alarms"]

    def test_alarm_commands_need_their_rights(self):
        """Deny by default (CLI.md "Policy paths"): without a token nothing;
        a token without read on sys/alarms cannot list; read lists but
        disarm needs sudo."""
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump({"path": {"sys/alarms": {"capabilities": ["read"]}}}, f)
        self.addCleanup(os.unlink, f.name)
        self.ok("policy", "write", "alarm-reader", f.name)
        reader = self.ok("token", "create", "-policy", "alarm-reader", "-ttl", "1h")["token"]
        nobody = self.ok("token", "create", "-policy", "default", "-ttl", "1h")["token"]
        for n in self.c.nodes:
            rc, out = n.cli("operator", "alarm", "list", token=False)
            self.assertEqual((rc, out["error"]["code"]), (2, "UNAUTHENTICATED"), out)
            for args, tok in ((("list",), nobody), (("disarm",), nobody), (("disarm",), reader)):
                rc, out = n.cli("operator", "alarm", *args, token=tok)
                self.assertEqual((rc, out["error"]["code"]), (2, "PERMISSION_DENIED"), out)
                self.assertIn("sys/alarms", out["error"]["message"])
            rc, out = n.cli("operator", "alarm", "list", token=reader)
            self.assertEqual(rc, 0, out)
            self.assertIn("alarms", out)

    def test_alarm_refuses_growth_keeps_reads_and_clears(self):
        lease = self.ok("lease", "grant", "-ttl", "10m")["lease_id"]
        acked = []
        refused = None
        for i in range(400):
            path = "fill/k%03d" % i
            rc, out = self.n.cli("kv", "put", path, "v=" + VALUE)
            if rc == 0:
                acked.append(path)
                continue
            self.assertEqual(out["error"]["code"], "QUOTA_EXCEEDED", out)
            refused = out["error"]["message"]
            break
        self.assertIsNotNone(refused, "1 MiB state quota never refused a put")
        self.assertIn("storage", refused)
        self.assertIn("state_quota_mb", refused)
        self.assertIn("on node", refused)
        self.assertGreater(len(acked), 3)

        # Every node reports its own alarm (all replicas hold the same data).
        wait_for(lambda: len(self.alarms(self.n)) == 3, 15, "an alarm for each of the 3 nodes")
        for node in self.c.nodes:
            al = self.alarms(node)
            self.assertEqual(sorted(a["node_id"] for a in al), [1, 2, 3])
            self.assertTrue(all(a["kind"] == "storage" and a["since_ms"] > 0 and
                                "state_quota_mb" in a["detail"] for a in al), al)
        st = self.ok("status")
        self.assertEqual(len(st["alarms"]), 3, st)
        code, body = self.n.http_get("/health")
        self.assertEqual(code, 503)
        self.assertIn("storage alarm on node", body)
        self.assertEqual(self.n.metric("mayfly_storage_alarm"), 1.0)

        # Disarm keeps what is still over its limit, and says why.
        rc, out = self.c.cli("operator", "alarm", "disarm")
        self.assertEqual(rc, 0, out)
        self.assertEqual(out["cleared"], 0, out)
        self.assertEqual(sorted(k["node_id"] for k in out["kept"]), [1, 2, 3], out)
        self.assertTrue(all("state_quota_mb" in k["detail"] for k in out["kept"]), out)

        # Growing writes are refused on every node, a lease grant too.
        for node in self.c.nodes:
            rc, out = node.cli("kv", "put", "fill/more", "v=x")
            self.assertEqual(rc, 2, out)
            self.assertEqual(out["error"]["code"], "QUOTA_EXCEEDED", out)
        rc, out = self.n.cli("lease", "grant", "-ttl", "1m")
        self.assertEqual(out["error"]["code"], "QUOTA_EXCEEDED", out)

        # Reads go on, linearizable and stale, on every node.
        for node in self.c.nodes:
            rc, out = node.cli("kv", "get", acked[0])
            self.assertEqual(rc, 0, out)
            self.assertEqual(out["data"]["v"], VALUE)
            rc, out = node.cli("-consistency", "stale", "kv", "get", acked[-1])
            self.assertEqual(rc, 0, out)
        # A revocation and deletes go on.
        self.ok("lease", "revoke", lease)
        wait_for(lambda: self.ok("lease", "lookup", lease)["state"] == "revoked", 10,
                 "the revoked lease to be marked revoked (the scheduler's LeaseRevoked)")
        self.ok("kv", "delete", acked[0])

        # Free the space: destroy every value but the last five.
        kept = acked[-5:]
        for path in acked[:-5]:
            self.ok("kv", "destroy", path)
        # The alarm clears by itself once every node is under 90% of the
        # quota; disarm clears what has lost its cause already.
        def cleared():
            rc, out = self.n.cli("operator", "alarm", "disarm")
            self.assertEqual(rc, 0, out)
            return not self.alarms(self.n)
        wait_for(cleared, 20, "the storage alarms to clear")
        wait_for(lambda: self.n.cli("kv", "put", "fill/after", "v=x")[0] == 0, 10,
                 "writes to resume")
        code, body = self.n.http_get("/health")
        self.assertEqual((code, body.strip()), (200, "ok"))
        self.assertEqual(self.n.metric("mayfly_storage_alarm"), 0.0)
        # Nothing acknowledged is lost.
        for path in kept:
            rc, out = self.n.cli("kv", "get", path)
            self.assertEqual(rc, 0, out)
            self.assertEqual(out["data"]["v"], VALUE)


if __name__ == "__main__":
    unittest.main()

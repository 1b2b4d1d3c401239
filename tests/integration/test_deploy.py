"""deploy/: certs.sh certificates accepted by a real 3-node cluster and a
wrong node id refused; `mayflyd --gen-certs --hosts`; the example configs
load; the systemd unit verifies; the Kubernetes manifests parse and carry the
fields that matter (they are not run here).

    MF_BINARY_DIR=build python3 -m unittest -v tests.integration.test_deploy
"""
import glob
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import unittest

from tests.harness.cluster import MAYFLYD, Cluster, wait_for

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEPLOY = os.path.join(ROOT, "deploy")
CERTS_SH = os.path.join(DEPLOY, "certs.sh")


def certs_sh(*args):
    return subprocess.run([CERTS_SH] + list(args), capture_output=True, text=True, timeout=60)


def sans(pem):
    p = subprocess.run(["openssl", "x509", "-in", pem, "-noout", "-ext", "subjectAltName"],
                       capture_output=True, text=True, check=True)
    return [s.strip() for s in p.stdout.split("\n", 1)[1].split(",")] if "\n" in p.stdout else []


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def load_yaml_docs(path):
    """Every document in path, parsed by PyYAML (this interpreter's, or
    Debian's python3-yaml through /usr/bin/python3)."""
    try:
        import yaml
        with open(path) as f:
            return [d for d in yaml.safe_load_all(f) if d is not None]
    except ImportError:
        pass
    for py in ("/usr/bin/python3",):
        if os.access(py, os.X_OK):
            p = subprocess.run([py, "-c", "import json, sys, yaml; json.dump([d for d in "
                                "yaml.safe_load_all(open(sys.argv[1])) if d is not None], "
                                "sys.stdout)", path], capture_output=True, text=True)
            if p.returncode == 0:
                return json.loads(p.stdout)
    raise unittest.SkipTest("no PyYAML (scripts/setup.sh installs python3-yaml)")


class CertsScript(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="mayfly-certs-")
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)
        self.certs = os.path.join(self.dir, "tls")

    def test_ca_is_kept_unless_forced_and_keys_are_private(self):
        p = certs_sh("-d", self.certs, "ca")
        self.assertEqual(p.returncode, 0, p.stderr)
        ca = os.path.join(self.certs, "ca.pem")
        first = sha(ca)
        p = certs_sh("-d", self.certs, "ca")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("kept", p.stdout)
        self.assertEqual(sha(ca), first, "a second run replaced the CA")
        p = certs_sh("-d", self.certs, "-force", "ca")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertNotEqual(sha(ca), first, "-force did not make a new CA")
        self.assertEqual(certs_sh("-d", self.certs, "node", "2", "db2.example", "10.0.2.10",
                                  "fd00::2").returncode, 0)
        node = os.path.join(self.certs, "node-2.pem")
        before = sha(node)
        self.assertIn("kept", certs_sh("-d", self.certs, "node", "2", "other").stdout)
        self.assertEqual(sha(node), before)
        self.assertEqual(certs_sh("-d", self.certs, "client", "ops").returncode, 0)
        self.assertEqual(os.stat(self.certs).st_mode & 0o777, 0o700)
        for key in glob.glob(os.path.join(self.certs, "*key.pem")):
            self.assertEqual(os.stat(key).st_mode & 0o777, 0o600, key)
        self.assertEqual(sorted(sans(node)), sorted(
            ["DNS:db2.example", "IP Address:10.0.2.10", "IP Address:FD00:0:0:0:0:0:0:2",
             "URI:mayfly://node/2"]))
        client = os.path.join(self.certs, "client-ops.pem")
        self.assertEqual(sans(client), [])
        for pem, purpose in ((node, "sslserver"), (node, "sslclient"), (client, "sslclient")):
            p = subprocess.run(["openssl", "verify", "-CAfile", ca, "-purpose", purpose, pem],
                               capture_output=True, text=True)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        p = subprocess.run(["openssl", "verify", "-CAfile", ca, "-purpose", "sslserver", client],
                           capture_output=True, text=True)
        self.assertNotEqual(p.returncode, 0, "a client certificate must not serve")

    def test_bad_input_is_refused(self):
        self.assertEqual(certs_sh("-d", self.certs, "node", "1", "x").returncode, 1)  # no CA
        self.assertEqual(certs_sh("-d", self.certs, "ca").returncode, 0)
        for args in (["node", "0", "a"], ["node", "x", "a"], ["node", "1"],
                     ["node", "1", "a b"], ["node", "1", "a,b"], ["client", "a/b"], ["nope"]):
            p = certs_sh("-d", self.certs, *args)
            self.assertEqual(p.returncode, 2, (args, p.stdout, p.stderr))

    def test_gen_certs_hosts(self):
        out = os.path.join(self.dir, "gen")
        p = subprocess.run([MAYFLYD, "--gen-certs", out, "--nodes", "3", "--hosts",
                            "1=db1.example,10.0.1.10;3=10.0.3.10"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(sorted(sans(os.path.join(out, "node-1.pem"))), sorted(
            ["DNS:localhost", "DNS:db1.example", "IP Address:127.0.0.1",
             "IP Address:10.0.1.10", "URI:mayfly://node/1"]))
        self.assertNotIn("IP Address:10.0.1.10", sans(os.path.join(out, "node-2.pem")))
        for bad in ("4=a", "1=a;1=b", "1=a b", "1"):
            p = subprocess.run([MAYFLYD, "--gen-certs", out, "--nodes", "3", "--hosts", bad],
                               capture_output=True, text=True)
            self.assertEqual(p.returncode, 1, bad)
            self.assertIn("--hosts", p.stderr)


class CertsInACluster(unittest.TestCase):
    """A real 3-node cluster on certs.sh's certificates; then node 3 with a
    certificate that names node 7 is refused by its peers."""

    def test_certs_sh_cluster_and_wrong_node_id(self):
        c = Cluster(3)
        self.addCleanup(c.cleanup)
        p = certs_sh("-d", c.certs, "-force", "ca")
        self.assertEqual(p.returncode, 0, p.stderr)
        for i in (1, 2, 3):
            p = certs_sh("-d", c.certs, "-force", "node", str(i), "127.0.0.1", "localhost")
            self.assertEqual(p.returncode, 0, p.stderr)
        c.start()
        c.init()
        c.wait_unsealed()
        rc, out = c.nodes[0].cli("kv", "put", "secret/certs", "v=1")
        self.assertEqual(rc, 0, out)
        for n in c.nodes:
            wait_for(lambda n=n: n.cli("kv", "get", "-consistency", "stale", "secret/certs")[0]
                     == 0, 15, "node %d has the write" % n.id)
        # Deny by default on this cluster too: no token, no write.
        rc, out = c.nodes[0].cli("kv", "put", "secret/x", "v=1", token=False)
        self.assertEqual((rc, out.get("error", {}).get("code")), (2, "UNAUTHENTICATED"), out)

        # Node 3 restarts with a certificate of the same CA that says node 7.
        n3 = c.nodes[2]
        n3.kill()
        other = os.path.join(c.dir, "other")
        os.makedirs(other, mode=0o700)
        for f in ("ca.pem", "ca-key.pem"):
            shutil.copy2(os.path.join(c.certs, f), other)
        p = certs_sh("-d", other, "node", "7", "127.0.0.1", "localhost")
        self.assertEqual(p.returncode, 0, p.stderr)
        shutil.copy2(os.path.join(other, "node-7.pem"), os.path.join(c.certs, "node-3.pem"))
        shutil.copy2(os.path.join(other, "node-7-key.pem"),
                     os.path.join(c.certs, "node-3-key.pem"))
        n3.start()

        def refused():
            logs = "".join(n.log_tail(400) for n in c.nodes[:2])
            return ("expected node 3, certificate says 7" in logs or
                    "Hello says node 3, its certificate says 7" in logs)
        wait_for(refused, 30, "nodes 1 and 2 refusing node 3's certificate (node 7)")
        # Nodes 1 and 2 go on (an election first if node 3 led: retried).
        wait_for(lambda: c.nodes[0].cli("kv", "put", "secret/after", "v=2", timeout="5s")[0] == 0,
                 30, "a write through node 1 with node 3 refused")
        with self.assertRaises(AssertionError):
            wait_for(lambda: n3.cli("kv", "get", "-consistency", "stale", "secret/after")[0] == 0,
                     3, "node 3 getting a write it must not get")


class Files(unittest.TestCase):
    def test_example_configs_load(self):
        for size in (3, 5):
            files = sorted(glob.glob(os.path.join(DEPLOY, "config", "three-zones",
                                                  "%d-nodes" % size, "node-*.json")))
            self.assertEqual(len(files), size)
            zones = {}
            for path in files:
                with open(path) as f:
                    cfg = json.load(f)
                zones[cfg["node_id"]] = cfg["zone"]
                self.assertEqual(sorted([p["id"] for p in cfg["peers"]] + [cfg["node_id"]]),
                                 list(range(1, size + 1)), path)
                # The loader accepts every key: start stops only at the missing
                # certificate files (these configs name /etc/mayfly/tls).
                with tempfile.TemporaryDirectory() as d:
                    data = os.path.join(d, "data")
                    p = subprocess.run([MAYFLYD, "--config", path, "--data-dir", data],
                                       capture_output=True, text=True, timeout=30)
                self.assertNotEqual(p.returncode, 0)
                self.assertIn("cannot load certificate", p.stderr, path)
                self.assertNotIn("unknown key", p.stderr, path)
            counts = sorted(list(zones.values()).count(z) for z in set(zones.values()))
            self.assertEqual(counts, [1, 1, 1] if size == 3 else [1, 2, 2], zones)

    def test_systemd_unit(self):
        unit = os.path.join(DEPLOY, "systemd", "mayflyd.service")
        with open(unit) as f:
            text = f.read()
        for line in ("User=mayfly", "NoNewPrivileges=true", "ProtectSystem=strict",
                     "ReadWritePaths=/var/lib/mayfly", "PrivateTmp=true", "ProtectHome=true",
                     "LimitCORE=0", "LimitMEMLOCK=", "CapabilityBoundingSet=\n",
                     "RestrictAddressFamilies=", "SystemCallFilter=@system-service"):
            self.assertIn(line, text)
        if not shutil.which("systemd-analyze"):
            self.skipTest("systemd-analyze is not installed")
        with tempfile.TemporaryDirectory() as d:
            copy = os.path.join(d, "mayflyd.service")
            with open(copy, "w") as f:
                f.write(text.replace("/usr/local/bin/mayflyd", os.path.abspath(MAYFLYD)))
            p = subprocess.run(["systemd-analyze", "verify", copy], capture_output=True,
                               text=True, timeout=60)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            self.assertEqual(p.stderr.strip(), "", p.stderr)

    def test_k8s_manifests(self):
        path = os.path.join(DEPLOY, "k8s", "mayfly.yaml")
        with open(path) as f:
            self.assertIn("NOT RUN HERE", f.read(2000))
        docs = load_yaml_docs(path)
        kinds = {d["kind"]: d for d in docs}
        self.assertEqual(sorted(d["kind"] for d in docs),
                         ["ConfigMap", "PodDisruptionBudget", "Service", "Service",
                          "StatefulSet"])
        sts = kinds["StatefulSet"]
        self.assertEqual(sts["spec"]["replicas"], 5)
        pod = sts["spec"]["template"]["spec"]
        spread = [c for c in pod["topologySpreadConstraints"]
                  if c["topologyKey"] == "topology.kubernetes.io/zone"]
        self.assertEqual(len(spread), 1)
        self.assertEqual((spread[0]["maxSkew"], spread[0]["whenUnsatisfiable"]),
                         (1, "DoNotSchedule"))
        self.assertEqual(kinds["PodDisruptionBudget"]["spec"]["maxUnavailable"], 1)
        headless = [d for d in docs if d["kind"] == "Service" and
                    d["spec"].get("clusterIP") == "None"]
        self.assertEqual(len(headless), 1)
        self.assertEqual(headless[0]["metadata"]["name"], sts["spec"]["serviceName"])
        self.assertTrue(pod["securityContext"]["runAsNonRoot"])
        secret_vols = [v["name"] for v in pod["volumes"] if "secret" in v]
        self.assertEqual(secret_vols, ["tls-secret"])
        mounted = [m["name"] for c in pod["initContainers"] + pod["containers"]
                   for m in c.get("volumeMounts", [])]
        self.assertIn("tls-secret", mounted)
        main = pod["containers"][0]
        self.assertTrue(main["securityContext"]["readOnlyRootFilesystem"])
        self.assertFalse(main["securityContext"]["allowPrivilegeEscalation"])
        self.assertEqual(main["readinessProbe"]["httpGet"]["path"], "/health")
        # The ConfigMap's node configs: ids 1..5, zones 2/2/1, peers by pod name.
        cfgs = [json.loads(v) for v in kinds["ConfigMap"]["data"].values()]
        self.assertEqual(sorted(c["node_id"] for c in cfgs), [1, 2, 3, 4, 5])
        zones = [c["zone"] for c in cfgs]
        self.assertEqual(sorted(zones.count(z) for z in set(zones)), [1, 2, 2])
        for c in cfgs:
            for p in c["peers"]:
                self.assertTrue(p["addr"].startswith("mayfly-%d.mayfly-peers." % (p["id"] - 1)), p)


if __name__ == "__main__":
    unittest.main()

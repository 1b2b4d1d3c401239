"""Real mayfly clusters on loopback for integration tests.

Starts real mayflyd processes from generated configs (certificates from
`mayflyd --gen-certs`), waits for events (the "mayflyd: ready" line, a status
answer), never for a fixed time, and drives everything through the real
`mayfly` CLI with -format json, so the CLI contract is exercised too.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

BUILD = os.environ.get("MF_BINARY_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
MAYFLYD = os.path.join(BUILD, "mayflyd")
MAYFLY = os.path.join(BUILD, "mayfly")


_handed_out = set()


def _ephemeral_range():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split())
            return lo, hi
    except (OSError, ValueError):
        return 32768, 60999


def free_port():
    """A loopback port that is free now and stays so: chosen BELOW the
    kernel's ephemeral range. A port 0 bind would pick one inside it, where
    any outgoing connection (a peer, psql, libpq) may take it before the
    server binds it (seen: 'address already in use' at start)."""
    lo_eph, _ = _ephemeral_range()
    lo, hi = 20000, min(lo_eph, 32768) - 1
    import random
    for _ in range(1000):
        port = random.randint(lo, hi)
        if port in _handed_out:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError("no free loopback port in %d-%d" % (lo, hi))


def wait_for(predicate, timeout, what):
    """Polls predicate (an event we cannot be called back for) until true."""
    deadline = time.monotonic() + timeout
    delay = 0.01
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(delay)
        delay = min(delay * 2, 0.2)


class Node:
    def __init__(self, cluster, node_id):
        self.cluster = cluster
        self.id = node_id
        self.api_port = free_port()
        self.peer_port = free_port()
        self.metrics_port = free_port()
        self.data_dir = os.path.join(cluster.dir, "node-%d" % node_id)
        self.tmpfs = None  # a Tmpfs under data_dir with Cluster(tmpfs_mb=...)
        self.config_path = os.path.join(cluster.dir, "node-%d.json" % node_id)
        self.proc = None
        self.log_path = os.path.join(cluster.dir, "node-%d.log" % node_id)
        self.ready = threading.Event()
        self.zone = None       # "zone" in its config and in its peers' entries
        self.args = []         # more mayflyd flags (e.g. --join)
        self.seeds = None      # the peers its config lists (None: the cluster's nodes)

    @property
    def api_addr(self):
        return "127.0.0.1:%d" % self.api_port

    def api_addr_on(self, host):
        """The client listener's address reached through host (a node listening
        on `Cluster(listen_host=...)` other than 127.0.0.1)."""
        return ("[%s]:%d" if ":" in host else "%s:%d") % (host, self.api_port)

    @property
    def peer_addr(self):
        return "127.0.0.1:%d" % self.peer_port

    def write_config(self, extra=None):
        os.makedirs(self.data_dir, mode=0o700, exist_ok=True)
        os.chmod(self.data_dir, 0o700)  # mayflyd refuses a data_dir others can enter
        cfg = {
            "node_id": self.id,
            "data_dir": self.data_dir,
            "listen": (self.api_addr_on(self.cluster.listen_host)
                       if self.cluster.listen_host else self.api_addr),
            "peer_listen": self.peer_addr,
            "metrics_listen": "127.0.0.1:%d" % self.metrics_port,
            "tls_ca_file": os.path.join(self.cluster.certs, "ca.pem"),
            "tls_cert_file": os.path.join(self.cluster.certs, "node-%d.pem" % self.id),
            "tls_key_file": os.path.join(self.cluster.certs, "node-%d-key.pem" % self.id),
            "log_level": "info",
            "peers": [dict({"id": n.id, "addr": n.peer_addr, "api_addr": n.api_addr},
                           **({"zone": n.zone} if n.zone else {}))
                      for n in (self.cluster.nodes if self.seeds is None else self.seeds)
                      if n.id != self.id],
        }
        if self.zone:
            cfg["zone"] = self.zone
        if self.cluster.key_file:
            cfg["auto_unseal_key_file"] = self.cluster.key_file
        if self.cluster.metrics_tls:
            cfg["metrics_tls_cert_file"] = cfg["tls_cert_file"]
            cfg["metrics_tls_key_file"] = cfg["tls_key_file"]
        cfg.update(self.cluster.extra_config)
        cfg.update(extra or {})
        with open(self.config_path, "w") as f:
            json.dump(cfg, f, indent=2)

    def start(self, wrapper=()):
        self.ready.clear()
        with open(self.log_path, "a") as log:
            argv = self.cluster.wrap + list(wrapper) + [MAYFLYD, "--config", self.config_path] \
                + self.args
            self.proc = subprocess.Popen(argv,
                                         stdout=subprocess.PIPE, stderr=log, text=True,
                                         env=dict(os.environ))
        # Set once ready or once its stdout closed (it exited); this start's
        # own event, so an earlier process's reader cannot set it.
        settled = threading.Event()
        threading.Thread(target=self._read_stdout, args=(self.proc, settled),
                         daemon=True).start()
        settled.wait(30)
        if not self.ready.is_set():
            if self.proc.poll() is None and settled.is_set():
                self.proc.wait(10)
            raise AssertionError("node %d did not print 'mayflyd: ready' (exit status %s); "
                                 "log:\n%s" % (self.id, self.proc.poll(), self.log_tail()))

    def _read_stdout(self, proc, settled):
        with proc.stdout:
            for line in proc.stdout:
                if line.strip() == "mayflyd: ready":
                    self.ready.set()
                    settled.set()
        settled.set()

    def kill(self, sig=signal.SIGKILL):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            if sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT):
                self.proc.wait(30)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, n=30):
        try:
            with open(self.log_path) as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def cli(self, *args, token=True, stdin=None, timeout="5s"):
        return self.cluster.cli(*args, addr=self.api_addr, token=token, stdin=stdin,
                                timeout=timeout)

    def http_get(self, path, raw=False, scheme=None):
        """(status, body) of GET path on the metrics listener (bytes if raw);
        HTTPS verified with the cluster's CA when it has metrics_tls."""
        import ssl
        import urllib.error
        import urllib.request
        scheme = scheme or ("https" if self.cluster.metrics_tls else "http")
        ctx = ssl.create_default_context(cafile=os.path.join(self.cluster.certs, "ca.pem")) \
            if scheme == "https" else None
        try:
            with urllib.request.urlopen("%s://127.0.0.1:%d%s" % (scheme, self.metrics_port, path),
                                        timeout=5, context=ctx) as r:
                body = r.read()
                return r.status, body if raw else body.decode()
        except urllib.error.HTTPError as e:
            body = e.read()
            return e.code, body if raw else body.decode()

    def metric(self, name):
        """The value of an unlabelled metric line, or None."""
        _, body = self.http_get("/metrics")
        for line in body.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        return None

    def status(self):
        # With the cluster's root token once there is one: without a token,
        # status shows only initialised, sealed and the leader.
        rc, out = self.cli("status", timeout="2s")
        return out if rc == 0 else None


class Cluster:
    def __init__(self, size=3, key_file=True, extra_config=None, metrics_tls=False,
                 netns=None, listen_host=None, ip_sans=(), tmpfs_mb=None, spare=0):
        """netns: a network namespace every mayflyd and every cli() runs in
        (tests/harness/netns.py); listen_host: the client listener's host
        (e.g. "::" inside such a namespace) where peers and cli() still reach
        it as 127.0.0.1; ip_sans: more IP SANs in each node certificate, so a
        client can verify a node reached at another address. tmpfs_mb: each
        node's data_dir on its own tmpfs of that many MiB (node.tmpfs, a
        tests/harness/tmpfs.Tmpfs: fill, unfill, resize; needs root). With netns,
        http_get() and client_env() (Python and mayfly-bench in the root
        namespace) do not reach the nodes; cli() and status() do. spare:
        certificates for that many more nodes (ids size+1..), for join_node()."""
        self.dir = tempfile.mkdtemp(prefix="mayfly-it-")
        self.certs = os.path.join(self.dir, "certs")
        subprocess.run([MAYFLYD, "--gen-certs", self.certs, "--nodes", str(size + spare)],
                       check=True,
                       stdout=subprocess.DEVNULL)
        self.netns = netns
        self.wrap = ["ip", "netns", "exec", netns] if netns else []
        self.listen_host = listen_host
        if ip_sans:
            for i in range(1, size + 1):
                self._reissue_node_cert(i, ip_sans)
        self.key_file = None
        if key_file:
            self.key_file = os.path.join(self.dir, "unseal.key")
            with open(self.key_file, "w") as f:
                f.write(os.urandom(32).hex() + "\n")
            os.chmod(self.key_file, 0o600)
        self.extra_config = extra_config or {}
        self.metrics_tls = metrics_tls  # HTTPS on the metrics listener, node certificates
        self.nodes = []
        self.nodes = [Node(self, i + 1) for i in range(size)]
        self.token = None
        if tmpfs_mb:
            self._mount_tmpfs(tmpfs_mb)

    def _mount_tmpfs(self, size_mb):
        from tests.harness.tmpfs import Tmpfs
        try:
            for n in self.nodes:
                n.tmpfs = Tmpfs(os.path.join(self.dir, "fs-%d" % n.id), size_mb)
                n.data_dir = os.path.join(n.tmpfs.path, "data")
        except BaseException:
            self.cleanup()
            raise

    def _reissue_node_cert(self, node_id, ip_sans):
        """node-N.pem as devpki makes it (mayfly://node/N, IP 127.0.0.1, DNS
        localhost, serverAuth and clientAuth, P-256) plus ip_sans, signed by
        the generated CA with openssl."""
        crt = os.path.join(self.certs, "node-%d.pem" % node_id)
        key = os.path.join(self.certs, "node-%d-key.pem" % node_id)
        ext, csr = crt + ".ext", crt + ".csr"
        sans = ["DNS:localhost", "IP:127.0.0.1"] + ["IP:" + ip for ip in ip_sans] + \
               ["URI:mayfly://node/%d" % node_id]
        with open(ext, "w") as f:
            f.write("basicConstraints=critical,CA:FALSE\n"
                    "keyUsage=critical,digitalSignature\n"
                    "extendedKeyUsage=serverAuth,clientAuth\n"
                    "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid:always\n"
                    "subjectAltName=%s\n" % ",".join(sans))
        run = lambda *a: subprocess.run(["openssl"] + list(a), check=True, capture_output=True)
        run("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", key, "-subj", "/CN=node-%d" % node_id, "-out", csr)
        os.chmod(key, 0o600)
        run("x509", "-req", "-in", csr, "-CA", os.path.join(self.certs, "ca.pem"),
            "-CAkey", os.path.join(self.certs, "ca-key.pem"), "-set_serial",
            str(int.from_bytes(os.urandom(8), "big")), "-days", "30", "-sha256",
            "-extfile", ext, "-out", crt)

    def start(self):
        for n in self.nodes:
            n.write_config()
        try:
            for n in self.nodes:
                n.start()
        except BaseException:
            self.cleanup()  # the caller gets no cluster to clean up
            raise
        return self

    def join_node(self, node_id, zone=None, seeds=None):
        """Starts node `node_id` (a spare certificate) with `mayflyd --join`:
        an empty data_dir, its config listing `seeds` (default: the live
        nodes) as peers; it waits to be added (operator members add)."""
        n = Node(self, node_id)
        n.zone = zone
        n.args = ["--join"]
        n.seeds = seeds if seeds is not None else [m for m in self.nodes if m.alive()]
        shutil.rmtree(n.data_dir, ignore_errors=True)
        self.nodes.append(n)
        n.write_config()
        n.start()
        return n

    def stop(self):
        for n in self.nodes:
            n.kill(signal.SIGKILL)

    def cleanup(self):
        self.stop()
        for n in self.nodes:
            if n.tmpfs:
                n.tmpfs.unmount()
        if os.environ.get("MF_KEEP_TEST_DIRS"):
            print("kept", self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    def audit_ops(self, node):
        """(operation, allowed, result) of each record in node's audit file
        DIR/audit-N.log (a file device enabled with the path
        DIR/audit-{node}.log); [] until the file exists."""
        try:
            with open(os.path.join(self.dir, "audit-%d.log" % node.id)) as f:
                recs = [json.loads(l) for l in f if l.strip()]
        except FileNotFoundError:
            return []
        return [(r.get("operation"), r.get("decision", {}).get("allowed"), r.get("result"))
                for r in recs]

    def addrs(self, nodes=None):
        return ",".join(n.api_addr for n in (nodes or self.nodes))

    def cli(self, *args, addr=None, token=True, stdin=None, timeout="5s", netns=None):
        """netns: run this one in that namespace rather than the cluster's."""
        env = dict(os.environ)
        env.update({"MAYFLY_ADDR": addr or self.addrs(), "MAYFLY_CACERT":
                    os.path.join(self.certs, "ca.pem"), "MAYFLY_FORMAT": "json"})
        env.pop("MAYFLY_TOKEN", None)
        if token and self.token:
            env["MAYFLY_TOKEN"] = token if isinstance(token, str) else self.token
        wrap = ["ip", "netns", "exec", netns] if netns else self.wrap
        p = subprocess.run(wrap + [MAYFLY, "-timeout", timeout] + list(args), env=env,
                           input=stdin, capture_output=True, text=True, timeout=60)
        try:
            out = json.loads(p.stdout) if p.stdout.strip() else {}
        except ValueError:
            out = {"raw": p.stdout}
        return p.returncode, out

    def leader(self, among=None, timeout=15):
        """The node every live member agrees leads (waits for one)."""
        nodes = [n for n in (among or self.nodes) if n.alive()]

        def find():
            ids = set()
            for n in nodes:
                st = n.status()
                if not st or not st.get("leader_id"):
                    return None
                ids.add(st["leader_id"])
            if len(ids) == 1:
                lid = ids.pop()
                return next((n for n in nodes if n.id == lid), None)
            return None
        return wait_for(find, timeout, "one leader agreed by %s" % [n.id for n in nodes])

    def wait_unsealed(self, timeout=15):
        """Key-file clusters unseal themselves once the keyring is replicated."""
        for n in self.nodes:
            wait_for(lambda: (n.status() or {}).get("sealed") is False, timeout,
                     "node %d unsealed" % n.id)

    def client_env(self):
        """The environment mayfly and mayfly-bench need to reach this cluster."""
        return dict(os.environ, MAYFLY_ADDR=self.addrs(), MAYFLY_TOKEN=self.token,
                    MAYFLY_CACERT=os.path.join(self.certs, "ca.pem"))

    def init(self):
        """operator init through any node; keeps the root token."""
        leader = self.leader()
        rc, out = leader.cli("operator", "init", token=False, timeout="10s")
        assert rc == 0, out
        self.token = out["root_token"]
        return out


class ClusterCase(unittest.TestCase):
    """A cluster started, initialised and unsealed once for a test class
    (`size` nodes, `extra_config` in every node's config), cleaned up after;
    `n` is its first node, `ok` and `refused` run the CLI on it."""
    size = 1
    extra_config = None

    @classmethod
    def setUpClass(cls):
        cls.c = Cluster(cls.size, extra_config=cls.extra_config).start()
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

    def ok(self, *args, stdin=None, token=True):
        rc, out = self.n.cli(*args, stdin=stdin, token=token)
        self.assertEqual(rc, 0, out)
        return out

    def refused(self, code, *args, stdin=None, token=True):
        rc, out = self.n.cli(*args, stdin=stdin, token=token)
        self.assertEqual(rc, 2, out)
        self.assertEqual(out["error"]["code"], code, out)
        return out["error"]["message"]

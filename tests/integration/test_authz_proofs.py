"""The end-to-end proofs issue 11 asks for that the other suites leave out:
a time-window condition judged by a node whose clock libfaketime sets; a CIDR
condition on a write entering a follower (the leader judges the client's
address, forwarded on the peer link, not the peer link's); fail closed on a
full audit file system while leases still fall due and are revoked; the cert
method's refusals (expired, revoked on the mount's CRL, a node SAN, the peer
CA); generate-root with Shamir shares on a cluster unsealed by hand."""
import datetime
import json
import os
import subprocess
import tempfile
import time
import unittest

from tests.harness.cluster import MAYFLY, Cluster, wait_for

FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
SPIFFE = "spiffe://prod/ns/payments/sa/api"


def denied(test, rc_out, what):
    rc, out = rc_out
    test.assertEqual(rc, 2, "%s: %s" % (what, out))
    test.assertEqual(out.get("error", {}).get("code"), "PERMISSION_DENIED", "%s: %s" % (what, out))
    return out["error"]["message"]


def ok(test, rc_out, what=""):
    rc, out = rc_out
    test.assertEqual(rc, 0, "%s: %s" % (what, out))
    return out


def write_policy(c, name, doc):
    ok_rc, out = c.cli("policy", "write", name, "-", stdin=json.dumps(doc))
    assert ok_rc == 0, out


def started(test, cluster):
    """Starts, inits and unseals a key-file cluster the test cleans up."""
    test.addCleanup(cluster.cleanup)
    cluster.start()
    cluster.init()
    cluster.wait_unsealed()
    return cluster


def lines_of(path):
    try:
        with open(path) as f:
            return [json.loads(l) for l in f if l.strip()]
    except FileNotFoundError:
        return []


# ---- 1. time window under libfaketime ----

def faketime_wrapper(offset_s):
    return ["env", "LD_PRELOAD=" + FAKETIME_LIB, "FAKETIME=%+d" % offset_s,
            "FAKETIME_DONT_FAKE_MONOTONIC=1", "FAKETIME_NO_CACHE=1"]


def offset_to_next(hour, minute=0):
    """Seconds from now to the next hh:mm UTC at least 2 minutes away."""
    now = datetime.datetime.now(datetime.timezone.utc)
    t = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if t < now + datetime.timedelta(minutes=2):
        t += datetime.timedelta(days=1)
    return int((t - now).total_seconds())


@unittest.skipUnless(os.path.exists(FAKETIME_LIB), "needs libfaketime")
class TimeWindow(unittest.TestCase):
    def test_window_judged_by_the_nodes_clock(self):
        """A rule with time after 02:00 before 04:00 (UTC) allows a write and a
        read on a node whose clock says 03:00 and denies both once the same
        node restarts with its clock at 05:00 (the real time plays no part)."""
        c = Cluster(1)
        self.addCleanup(c.cleanup)
        n = c.nodes[0]
        n.write_config()
        inside = offset_to_next(3)
        n.start(wrapper=faketime_wrapper(inside))
        c.init()
        c.wait_unsealed()
        write_policy(c, "night", {"path": {"kv/data/tw/*": {
            "capabilities": ["create", "update", "read"],
            "conditions": {"time": {"after": "02:00", "before": "04:00"}}}}})
        # The token outlives the clock's 2-hour jump forward.
        tok = ok(self, c.cli("token", "create", "-policy", "night", "-ttl", "48h"))["token"]
        ok(self, c.cli("kv", "put", "tw/a", "v=1", token=tok), "write inside the window")
        self.assertEqual(ok(self, c.cli("kv", "get", "tw/a", token=tok))["data"], {"v": "1"})

        n.kill()
        n.start(wrapper=faketime_wrapper(inside + 2 * 3600))
        c.wait_unsealed()
        c.leader()
        denied(self, c.cli("kv", "put", "tw/b", "v=1", token=tok), "write outside the window")
        denied(self, c.cli("kv", "put", "tw/a", "v=2", token=tok), "overwrite outside")
        denied(self, c.cli("kv", "get", "tw/a", token=tok), "read outside the window")
        self.assertEqual(ok(self, c.cli("kv", "get", "tw/a"))["data"], {"v": "1"})
        rc, out = c.cli("kv", "get", "tw/b")
        self.assertEqual((rc, out.get("error", {}).get("code")), (2, "NOT_FOUND"), out)


# ---- 2. CIDR through a forwarded request ----

class ForwardedCidr(unittest.TestCase):
    def test_cidr_on_a_write_entering_a_follower(self):
        """127.0.0.0/8 allows a write and a read through a follower, 10.0.0.0/8
        denies both; the leader's audit record of the forwarded write names the
        client's own address (the one the follower saw), not the peer link's."""
        c = started(self, Cluster(3))
        tmpl = os.path.join(c.dir, "audit-{node}.log")
        ok(self, c.cli("audit", "enable", "-type", "file", "-path", tmpl, "a"))
        rule = {"capabilities": ["create", "update", "read"]}
        write_policy(c, "lo", {"path": {"kv/data/cidr/*": dict(
            rule, conditions={"cidrs": ["127.0.0.0/8"]})}})
        write_policy(c, "ten", {"path": {"kv/data/cidr/*": dict(
            rule, conditions={"cidrs": ["10.0.0.0/8"]})}})
        lo = ok(self, c.cli("token", "create", "-policy", "lo", "-ttl", "1h"))["token"]
        ten = ok(self, c.cli("token", "create", "-policy", "ten", "-ttl", "1h"))["token"]
        leader = c.leader()
        follower = next(n for n in c.nodes if n is not leader)
        for n in c.nodes:
            wait_for(lambda: os.path.exists(tmpl.format(node=n.id)), 10, "audit file %d" % n.id)

        ok(self, follower.cli("kv", "put", "cidr/x", "v=1", token=lo), "forwarded write")
        self.assertEqual(ok(self, follower.cli("kv", "get", "cidr/x", token=lo))["data"],
                         {"v": "1"})
        denied(self, follower.cli("kv", "put", "cidr/y", "v=1", token=ten), "write from 127/8")
        denied(self, follower.cli("kv", "put", "cidr/x", "v=2", token=ten), "overwrite")
        denied(self, follower.cli("kv", "get", "cidr/x", token=ten), "read from 127/8")
        self.assertEqual(ok(self, c.cli("kv", "get", "cidr/x"))["data"], {"v": "1"})
        rc, out = c.cli("kv", "get", "cidr/y")
        self.assertEqual((rc, out.get("error", {}).get("code")), (2, "NOT_FOUND"), out)

        def put_records(node):
            return [l for l in lines_of(tmpl.format(node=node.id))
                    if l.get("operation") == "kv.put" and l.get("path") == "kv/data/cidr/x"
                    and l.get("decision", {}).get("allowed")]
        entry = wait_for(lambda: put_records(follower), 5, "the follower's record")[0]
        at_leader = wait_for(lambda: put_records(leader), 5, "the leader's record")[0]
        self.assertTrue(entry["client_addr"].startswith("127.0.0.1:"), entry)
        self.assertEqual(at_leader["client_addr"], entry["client_addr"], (entry, at_leader))
        # One record id on both nodes: the entry node numbered it.
        self.assertEqual(at_leader["record_id"], entry["record_id"], (entry, at_leader))
        self.assertTrue(entry["record_id"].startswith("%d-" % follower.id), entry)


# ---- 3. a full audit file system while leases fall due ----

class FullAuditDisk(unittest.TestCase):
    def setUp(self):
        self.c = started(self, Cluster(1))
        mnt = os.path.join(self.c.dir, "small")
        os.mkdir(mnt)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", mnt],
                           capture_output=True)
        if r.returncode:
            self.skipTest("cannot mount a tmpfs: %s" % r.stderr.decode().strip())
        # Cleanups run last-in first-out: unmounted before the cluster's dir goes.
        self.addCleanup(subprocess.run, ["umount", "-l", mnt])
        self.mnt = mnt

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

    def test_due_leases_are_revoked_while_requests_are_refused(self):
        c, n = self.c, self.c.nodes[0]
        log = os.path.join(self.mnt, "audit.log")
        ok(self, c.cli("audit", "enable", "-type", "file", "-path", log, "small"))
        wait_for(lambda: os.path.exists(log), 10, "the audit file")
        leases = [ok(self, c.cli("lease", "grant", "-ttl", "8s")) for _ in range(3)]
        ok(self, c.cli("kv", "put", "-lease", leases[0]["lease_id"], "bound/db", "password=x"))
        revoked_before = n.metric("mayfly_leases_revoked_total")
        filler = self.fill()
        # The audit file's last page may take a few more lines. The client
        # retries UNAVAILABLE until its timeout: a short one for refusals.
        for i in range(64):
            rc, out = c.cli("kv", "put", "after%d" % i, "v=1", timeout="1s")
            if rc:
                break
        self.assertEqual((rc, out["error"]["code"]), (2, "UNAVAILABLE"), out)
        self.assertIn("audit device small cannot write", out["error"]["message"])
        rc, out = c.cli("lease", "lookup", leases[1]["lease_id"], timeout="1s")
        self.assertEqual((rc, out["error"]["code"]), (2, "UNAVAILABLE"), out)
        due = max(l["expire_at_ms"] for l in leases)
        self.assertLess(time.time() * 1000, min(l["expire_at_ms"] for l in leases),
                        "the disk filled only after the leases fell due: no proof")

        # /metrics needs no audit: the revocations happen on time, disk full.
        wait_for(lambda: n.metric("mayfly_leases_revoked_total") >= revoked_before + 3,
                 (due / 1000 - time.time()) + 10, "the due leases revoked")
        revoked_at = time.time() * 1000
        rc, out = c.cli("kv", "put", "still-full", "v=1", timeout="1s")
        self.assertEqual((rc, out["error"]["code"]), (2, "UNAVAILABLE"), out)

        os.unlink(filler)  # the device writes again
        for l in leases:
            out = ok(self, c.cli("lease", "lookup", l["lease_id"]))
            self.assertEqual(out["state"], "revoked", out)
        self.assertLess(revoked_at, due + 10000)
        for path in ("after%d" % i, "still-full", "bound/db"):
            rc, out = c.cli("kv", "get", path)
            self.assertEqual((rc, out.get("error", {}).get("code")), (2, "NOT_FOUND"),
                             (path, out))
        self.assertTrue(ok(self, c.cli("audit", "verify", log))["ok"])
        ok(self, c.cli("audit", "disable", "small"))


# ---- 4. cert login refusals ----

CA_CNF = """[ca]
default_ca = d
[d]
dir = {dir}
database = {dir}/index.txt
new_certs_dir = {dir}
certificate = {crt}
private_key = {key}
serial = {dir}/serial
crlnumber = {dir}/crlnumber
default_md = sha256
default_days = 1
default_crl_days = 1
policy = p
unique_subject = no
[p]
commonName = supplied
"""

LEAF_EXT = ("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
            "extendedKeyUsage=clientAuth\nsubjectAltName=URI:%s\n"
            "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n")


def openssl(*args):
    return subprocess.run(["openssl"] + list(args), capture_output=True, check=True).stdout


class Ca:
    """A CA run with `openssl ca`, so it can back-date leaves and issue CRLs."""

    def __init__(self, root, name, key=None, crt=None):
        self.dir = os.path.join(root, name)
        os.makedirs(self.dir)
        self.key = key or os.path.join(self.dir, "ca.key")
        self.crt = crt or os.path.join(self.dir, "ca.crt")
        if not key:
            openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", self.key,
                    "-out", self.crt, "-days", "2", "-subj", "/CN=" + name,
                    "-addext", "basicConstraints=critical,CA:TRUE",
                    "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                    "-addext", "subjectKeyIdentifier=hash")
        open(os.path.join(self.dir, "index.txt"), "w").close()
        for f in ("serial", "crlnumber"):
            with open(os.path.join(self.dir, f), "w") as fh:
                fh.write("01\n")
        self.cnf = os.path.join(self.dir, "ca.cnf")
        with open(self.cnf, "w") as f:
            f.write(CA_CNF.format(dir=self.dir, crt=self.crt, key=self.key))

    def leaf(self, name, san, start=None, end=None):
        key, csr, crt, ext = (os.path.join(self.dir, name + s)
                              for s in (".key", ".csr", ".crt", ".ext"))
        with open(ext, "w") as f:
            f.write(LEAF_EXT % san)
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
                "-subj", "/CN=" + name)
        dates = []
        if start:
            dates = ["-startdate", start, "-enddate", end]
        openssl("ca", "-batch", "-config", self.cnf, "-in", csr, "-out", crt, "-notext",
                "-extfile", ext, *dates)
        return crt, key

    def revoke(self, crt):
        openssl("ca", "-config", self.cnf, "-revoke", crt)

    def crl(self):
        out = os.path.join(self.dir, "crl.pem")
        openssl("ca", "-config", self.cnf, "-gencrl", "-out", out)
        with open(out) as f:
            return f.read()

    def pem(self):
        with open(self.crt) as f:
            return f.read()


class CertRefusals(unittest.TestCase):
    def login(self, crt, key, role="svc"):
        env = dict(os.environ, MAYFLY_ADDR=self.c.leader().api_addr, MAYFLY_FORMAT="json",
                   MAYFLY_CACERT=os.path.join(self.c.certs, "ca.pem"),
                   MAYFLY_CLIENT_CERT=crt, MAYFLY_CLIENT_KEY=key)
        env.pop("MAYFLY_TOKEN", None)
        p = subprocess.run([MAYFLY, "-timeout", "5s", "login", "-method", "cert", "-role", role],
                           env=env, capture_output=True, text=True, timeout=60)
        return p.returncode, json.loads(p.stdout) if p.stdout.strip() else {"stderr": p.stderr}

    def test_refused_with_their_reason(self):
        """With a good leaf logging in (the mount's CA, its CRL, a matching
        SPIFFE SAN), an expired leaf, a revoked one, one with a mayfly://node/
        SAN and one from the peer CA are each PERMISSION_DENIED with the reason."""
        self.c = c = started(self, Cluster(1))
        d = tempfile.mkdtemp(dir=c.dir)
        ca = Ca(d, "workload-ca")
        good = ca.leaf("good", SPIFFE)
        expired = ca.leaf("expired", SPIFFE, "20200101000000Z", "20200102000000Z")
        revoked = ca.leaf("revoked", SPIFFE)
        node = ca.leaf("node", "mayfly://node/1")
        ca.revoke(revoked[0])
        ok(self, c.cli("auth", "enable", "-type", "cert", "-config", "-", "cert",
                       stdin=json.dumps({"ca_pem": ca.pem(), "crl_pem": ca.crl()})))
        ok(self, c.cli("auth", "role", "put", "cert", "svc", json.dumps(
            {"allowed_uri_sans": ["spiffe://prod/ns/payments/*", "mayfly://node/*"],
             "token_policies": ["default"], "token_ttl_ms": 600000})))
        out = ok(self, self.login(*good), "the good leaf")
        self.assertEqual(out["metadata"]["uri_san"], SPIFFE)

        peer_ca = Ca(d, "peer", key=os.path.join(c.certs, "ca-key.pem"),
                     crt=os.path.join(c.certs, "ca.pem"))
        from_peer = peer_ca.leaf("impostor", SPIFFE)
        for what, leaf, reason in (("expired", expired, "expired"),
                                   ("revoked", revoked, "revoked"),
                                   ("node SAN", node, "node certificate"),
                                   ("peer CA", from_peer, "untrusted")):
            msg = denied(self, self.login(*leaf), what)
            self.assertIn(reason, msg, what)


# ---- 5. generate-root with Shamir shares ----

class ShamirGenerateRoot(unittest.TestCase):
    def gr(self, leader, *args):
        return leader.cli("operator", "generate-root", *args, token=False)

    def test_recovers_with_threshold_shares(self):
        """5 shares, threshold 3, every node unsealed by hand; with the root
        token revoked, a wrong share among three is refused and three good
        ones yield a working root token."""
        c = Cluster(3, key_file=False)
        self.addCleanup(c.cleanup)
        c.start()
        leader = c.leader()
        init = ok(self, leader.cli("operator", "init", "-shares", "5", "-threshold", "3",
                                   token=False, timeout="10s"))
        self.assertEqual((len(init["shares"]), init["threshold"]), (5, 3))
        shares = init["shares"]
        c.token = init["root_token"]
        for n in c.nodes:
            for s in shares[:3]:
                out = ok(self, n.cli("operator", "unseal", s, token=False), "unseal %d" % n.id)
            self.assertFalse(out["sealed"], out)
        c.wait_unsealed()
        ok(self, c.cli("kv", "put", "gr/before", "v=1"))
        ok(self, c.cli("token", "revoke", c.token))
        self.assertEqual(c.cli("token", "lookup")[0], 2)

        leader = c.leader()
        attempt = ok(self, self.gr(leader, "-init"))
        self.assertEqual(attempt["threshold"], 3)
        nonce = attempt["nonce"]

        def give(share, progress):
            out = ok(self, self.gr(leader, "-nonce", nonce, share))
            self.assertEqual(out["progress"], progress, out)
            return out
        give(shares[0], 1)
        # A share with one digit changed (or from another cluster: the
        # checksum is keyed by the seal) is refused and counts for nothing.
        i = shares[2].rindex("-") - 1
        wrong = shares[2][:i] + ("0" if shares[2][i] != "0" else "1") + shares[2][i + 1:]
        rc, out = self.gr(leader, "-nonce", nonce, wrong)
        self.assertEqual(rc, 2, out)
        self.assertEqual(out["error"]["code"], "INVALID_ARGUMENT", out)
        self.assertIn("fails its checksum", out["error"]["message"])
        for s in shares + [wrong]:
            self.assertNotIn(s, json.dumps(out))
        give(shares[0], 1)  # a duplicate does not count twice
        give(shares[3], 2)
        done = give(shares[4], 3)
        root = ok(self, c.cli("operator", "generate-root", "-decode",
                              done["encoded_root_token"], "-otp", attempt["otp"],
                              token=False))["root_token"]
        self.assertNotEqual(root, init["root_token"])
        for n in c.nodes:
            self.assertEqual(ok(self, n.cli("kv", "get", "gr/before", token=root))["data"],
                             {"v": "1"})
        ok(self, c.cli("kv", "put", "gr/after", "v=1", token=root))


if __name__ == "__main__":
    unittest.main()

"""Observability (issue 13 item 6): /metrics of a cluster after some traffic
passes a strict parser of the Prometheus text format (and `promtool check
metrics` when promtool is installed: scripts/setup.sh puts it in
/opt/promtool); the new figures are there (per-peer lag, elections, leader
changes, requests by operation and code with latency histograms, map sizes,
TLS handshake failures); `mayflyd --metrics-listen` overrides the config;
`log_format = json` writes one JSON object a line; status shows each
member's lag, match index, reachability and the learner's role."""
import json
import math
import os
import re
import shutil
import socket
import subprocess
import unittest

from tests.harness.cluster import Cluster, free_port, wait_for

PROMTOOL = shutil.which("promtool") or next(
    (p for p in ("/opt/promtool/usr/bin/promtool",) if os.access(p, os.X_OK)), None)
# Names kept from before promtool's lint was run on them (renaming would
# break their users); promtool's only complaint about them is the unit.
LEGACY_MS = {"mayfly_clock_offset_ms", "mayfly_revocation_lateness_ms",
             "mayfly_revocation_lateness_max_ms"}

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\\\|\\"|\\n)*"'
SAMPLE = re.compile(r"^(%s)(\{(?:%s(?:,%s)*)?,?\})? (\S+)(?: (-?\d+))?$" % (NAME, LABEL, LABEL))
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


def parse_value(v):
    if v in ("+Inf", "Inf"):
        return math.inf
    if v == "-Inf":
        return -math.inf
    if v == "NaN":
        return math.nan
    return float(v)  # raises on anything else


def strict_parse(text):
    """Families {name: {"type", "help", "samples": [(name, labels, value)]}};
    raises AssertionError on any violation of the text format."""
    fams, order, series = {}, [], set()
    current = None
    assert text.endswith("\n"), "the exposition must end with a newline"
    for n, line in enumerate(text.split("\n")[:-1], 1):
        where = "line %d: %r" % (n, line)
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                name = parts[2]
                assert re.fullmatch(NAME, name), where
                f = fams.setdefault(name, {"type": None, "help": None, "samples": []})
                assert not f["samples"], "%s: %s after its samples" % (where, parts[1])
                key = parts[1].lower()
                assert f[key] is None, "%s: a second %s" % (where, parts[1])
                f[key] = parts[3] if len(parts) > 3 else ""
                if key == "type":
                    assert f["type"] in TYPES, where
                if name not in order:
                    order.append(name)
                current = name
            continue
        assert line.strip(), "%s: empty line" % where
        m = SAMPLE.match(line)
        assert m, "%s: not a sample" % where
        name, labels_s, value = m.group(1), m.group(2) or "", m.group(3)
        labels = dict(LABEL_RE.findall(labels_s))
        parse_value(value)
        fam = name
        for suffix in ("_bucket", "_sum", "_count"):
            base = name[:-len(suffix)]
            if name.endswith(suffix) and fams.get(base, {}).get("type") in ("histogram", "summary"):
                fam = base
        assert fam in fams and fams[fam]["type"], "%s: no TYPE before the sample" % where
        assert fam == current, "%s: family %s is not contiguous" % (where, fam)
        key = (name, tuple(sorted(labels.items())))
        assert key not in series, "%s: duplicate series" % where
        series.add(key)
        fams[fam]["samples"].append((name, labels, parse_value(value)))
    for fam, f in fams.items():
        if f["type"] == "histogram":
            check_histogram(fam, f["samples"])
    return fams


def check_histogram(fam, samples):
    groups = {}
    for name, labels, value in samples:
        rest = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
        g = groups.setdefault(rest, {"buckets": [], "sum": None, "count": None})
        if name == fam + "_bucket":
            g["buckets"].append((parse_value(labels["le"]), value))
        elif name == fam + "_sum":
            g["sum"] = value
        elif name == fam + "_count":
            g["count"] = value
        else:
            raise AssertionError("%s: stray sample %s" % (fam, name))
    for rest, g in groups.items():
        les = [le for le, _ in g["buckets"]]
        assert les == sorted(les) and len(set(les)) == len(les), (fam, rest, les)
        assert les and les[-1] == math.inf, "%s%s: no +Inf bucket" % (fam, rest)
        counts = [c for _, c in g["buckets"]]
        assert all(a <= b for a, b in zip(counts, counts[1:])), \
            "%s%s: buckets not cumulative %s" % (fam, rest, counts)
        assert g["count"] is not None and g["sum"] is not None, (fam, rest)
        assert counts[-1] == g["count"], "%s%s: +Inf %s != count %s" % (
            fam, rest, counts[-1], g["count"])


class Metrics(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.c = c = Cluster(4, extra_config={"log_format": "json"})
        try:
            peers = [{"id": n.id, "addr": n.peer_addr, "api_addr": n.api_addr,
                      "learner": n.id == 4} for n in c.nodes]
            for n in c.nodes:
                n.write_config(extra={"peers": peers})
            # Node 3 gets its metrics address from the flag, not its config.
            n3 = c.nodes[2]
            cls.config_metrics_port = n3.metrics_port
            n3.metrics_port = free_port()
            flag = ("sh", "-c", 'exec "$1" "$2" "$3" --metrics-listen 127.0.0.1:%d' %
                    n3.metrics_port, "sh")
            for n in c.nodes:
                n.start(wrapper=flag if n is n3 else ())
            c.init()
            c.wait_unsealed()
            voters = c.addrs(c.nodes[:3])
            for i in range(20):
                rc, out = c.cli("kv", "put", "m/k%d" % i, "v=%d" % i, addr=voters)
                assert rc == 0, out
            rc, out = c.cli("kv", "get", "m/k1", addr=voters)
            assert rc == 0, out
            rc, out = c.cli("kv", "get", "m/missing", addr=voters)
            assert rc != 0, out
        except BaseException:
            c.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.c.cleanup()

    def scrape(self, node):
        status, body = node.http_get("/metrics")
        self.assertEqual(status, 200, body)
        return body

    def test_every_node_parses_strictly(self):
        """Every node's /metrics parses; promtool agrees when installed."""
        for n in self.c.nodes:
            body = self.scrape(n)
            fams = strict_parse(body)
            for name in ("mayfly_raft_elections_started_total", "mayfly_raft_leader_changes_total",
                         "mayfly_requests_total", "mayfly_request_duration_seconds",
                         "mayfly_tls_handshake_failures_total", "mayfly_storage_map_bytes",
                         "mayfly_raft_peer_lag_entries"):
                self.assertIn(name, fams, "node %d" % n.id)
            if PROMTOOL:
                p = subprocess.run([PROMTOOL, "check", "metrics"], input=body, text=True,
                                   capture_output=True, timeout=30)
                problems = [line for line in (p.stdout + p.stderr).splitlines() if line.strip()]
                unexpected = [line for line in problems
                              if not (line.split(" ")[0] in LEGACY_MS and
                                      "abbreviated units" in line)]
                self.assertEqual(unexpected, [], "promtool on node %d" % n.id)

    def test_leader_reports_peers_and_requests(self):
        """The leader lists every other member's lag; requests are counted by
        operation and code across the nodes, with their latency."""
        leader = self.c.leader(among=self.c.nodes[:3])
        fams = strict_parse(self.scrape(leader))
        peers = {s[1]["peer"] for s in fams["mayfly_raft_peer_lag_entries"]["samples"]}
        self.assertEqual(peers, {str(n.id) for n in self.c.nodes if n.id != leader.id})
        self.assertGreaterEqual(
            sum(s[2] for s in fams["mayfly_raft_leader_changes_total"]["samples"]), 1)
        puts = gets_missing = hist = 0
        for n in self.c.nodes:
            f = strict_parse(self.scrape(n))
            for name, labels, value in f["mayfly_requests_total"]["samples"]:
                if labels == {"op": "kv_put", "code": "OK"}:
                    puts += value
                if labels == {"op": "kv_get", "code": "NOT_FOUND"}:
                    gets_missing += value
            for name, labels, value in f["mayfly_request_duration_seconds"]["samples"]:
                if name.endswith("_count") and labels.get("op") == "kv_put":
                    hist += value
        self.assertGreaterEqual(puts, 20)
        self.assertGreaterEqual(gets_missing, 1)
        self.assertGreaterEqual(hist, 20)

    def test_tls_handshake_failure_counted(self):
        """A plaintext client on the TLS listener counts as a failed handshake."""
        n = self.c.nodes[0]

        def client_failures():
            f = strict_parse(self.scrape(n))
            return sum(v for _, labels, v in f["mayfly_tls_handshake_failures_total"]["samples"]
                       if labels["listener"] == "client")
        before = client_failures()
        with socket.create_connection(("127.0.0.1", n.api_port), timeout=5) as s:
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            try:
                while s.recv(4096):
                    pass
            except OSError:
                pass
        wait_for(lambda: client_failures() > before, 10, "the failed handshake counted")

    def test_metrics_listen_flag(self):
        """--metrics-listen wins over the config's metrics_listen."""
        n3 = self.c.nodes[2]
        self.assertIn("mayfly_up", self.scrape(n3))
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", self.config_metrics_port), timeout=2).close()

    def test_json_log_lines(self):
        """Every log line is one JSON object with ts, level, module and msg
        (mayflyd's own few stderr lines excepted)."""
        for n in self.c.nodes:
            lines = 0
            with open(n.log_path) as f:
                for line in f:
                    if line.startswith("mayflyd:"):
                        continue
                    o = json.loads(line)
                    self.assertEqual(set(o), {"ts", "level", "module", "msg"}, line)
                    self.assertIn(o["level"], ("debug", "info", "warn", "error"))
                    self.assertRegex(o["ts"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
                    lines += 1
            self.assertGreater(lines, 3, "node %d" % n.id)

    def test_status_members_lag_and_learner(self):
        """The leader's status gives each member's role, match index, lag and
        reachability; the learner is a learner there and in its own status;
        without a token status shows no members."""
        c = self.c
        leader = c.leader(among=c.nodes[:3])
        rc, out = c.cli("kv", "put", "m/last", "v=1", addr=leader.api_addr)
        self.assertEqual(rc, 0, out)

        def caught_up():
            st = leader.status()
            members = {m["id"]: m for m in (st or {}).get("members", [])}
            if len(members) == 4 and all(m.get("lag_entries") == 0 and m.get("reachable")
                                         for m in members.values()):
                return st, members
            return None
        st, members = wait_for(caught_up, 20, "every member caught up in the leader's status")
        self.assertEqual(members[leader.id]["role"], "leader")
        self.assertEqual(members[4]["role"], "learner")
        self.assertFalse(members[4]["voter"])
        for m in members.values():
            self.assertEqual(m["match_index"], members[leader.id]["match_index"], members)
            self.assertGreater(m["match_index"], 0)
        self.assertEqual(c.nodes[3].status()["role"], "learner")
        rc, bare = leader.cli("status", token=False)
        self.assertEqual(rc, 0, bare)
        self.assertEqual(bare.get("members"), [], bare)


if __name__ == "__main__":
    unittest.main()

"""Faults for mayfly chaos runs: partitions, kills, pauses, clock skew.

Partitions are real and symmetric: every mayflyd runs with its own group id
(setpriv --regid), an iptables rule marks each connection with the gid of the
process that opened it (CONNMARK, owner match on the first packet), and a cut
between nodes A and B drops every packet of A's connections to B's peer port
and of B's connections to A's peer port, in both directions. Client traffic
(the CLI runs as gid 0) is never touched. Everything lives in one chain of our
own (MFJ<pid>), hooked into OUTPUT, removed by teardown() whatever happens.

Only loopback is involved: all nodes listen on 127.0.0.1.
"""
import os
import signal
import subprocess
import threading
import time

FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"


def now_ms():
    return time.time() * 1000.0


def ipt(*args, check=True):
    p = subprocess.run(["iptables", "-w"] + list(args), capture_output=True, text=True)
    if check and p.returncode != 0:
        raise RuntimeError("iptables %s: %s" % (" ".join(args), p.stderr.strip()))
    return p.returncode == 0


class Net:
    """Symmetric partitions between mayflyd processes on loopback."""

    def __init__(self, nodes):
        self.nodes = nodes
        self.chain = "MFJ%d" % os.getpid()
        base = 50000 + (os.getpid() % 1000) * 10
        self.gid = {n.id: base + n.id for n in nodes}
        self.drops = []
        self.installed = False

    def setup(self):
        ipt("-N", self.chain)
        self.installed = True
        ipt("-I", "OUTPUT", "-j", self.chain)
        for n in self.nodes:
            g = str(self.gid[n.id])
            ipt("-A", self.chain, "-m", "connmark", "--mark", "0", "-m", "owner",
                "--gid-owner", g, "-j", "CONNMARK", "--set-mark", g)

    def wrapper(self, node, faketime_offset_ms=None):
        w = ["setpriv", "--regid", str(self.gid[node.id]), "--clear-groups"]
        if faketime_offset_ms is not None:
            w += ["env", "LD_PRELOAD=" + FAKETIME_LIB,
                  "FAKETIME=%+.3f" % (faketime_offset_ms / 1000.0),
                  "FAKETIME_DONT_FAKE_MONOTONIC=1", "FAKETIME_NO_CACHE=1"]
        return w

    def cut(self, group_a, group_b):
        """Drops all peer traffic between every node of group_a and of group_b."""
        for a in group_a:
            for b in group_b:
                for src, dst in ((a, b), (b, a)):
                    rule = ["-p", "tcp", "-m", "connmark", "--mark", str(self.gid[src.id]),
                            "-m", "multiport", "--ports", str(dst.peer_port), "-j", "DROP"]
                    ipt("-A", self.chain, *rule)
                    self.drops.append(rule)

    def heal(self):
        while self.drops:
            ipt("-D", self.chain, *self.drops.pop(), check=False)

    def teardown(self):
        self.heal()
        if self.installed:
            ipt("-D", "OUTPUT", "-j", self.chain, check=False)
            ipt("-F", self.chain, check=False)
            ipt("-X", self.chain, check=False)
            self.installed = False


def find_leader(cluster, timeout=1.0):
    """The node that says it leads with the highest term, among live unpaused nodes."""
    best = None
    for n in cluster.nodes:
        if not n.alive() or getattr(n, "paused", False):
            continue
        # With the root token: status shows the term only to a caller allowed
        # to read sys/status.
        rc, st = n.cli("status", timeout="%dms" % int(timeout * 1000))
        if rc == 0 and st.get("role") == "leader":
            if best is None or st.get("term", 0) > best[1]:
                best = (n, st.get("term", 0))
    return best[0] if best else None


class Nemesis(threading.Thread):
    """Injects faults on a seeded schedule until stop(); heal_all() undoes everything."""

    KINDS = ("partition", "kill", "pause", "skew")

    def __init__(self, cluster, net, kind, rng, skew_ms=500, skew_beyond=False,
                 healthy=(2.0, 4.0), faulty=(3.0, 6.0), log=print):
        super().__init__(daemon=True)
        self.c, self.net, self.kind, self.rng = cluster, net, kind, rng
        self.skew_ms, self.skew_beyond = skew_ms, skew_beyond
        self.healthy, self.faulty = healthy, faulty
        self.stopping = threading.Event()
        self.timeline = []
        self.lock = threading.Lock()
        self.log = log
        self.skewed = {}  # node id -> offset ms
        self.skew_events = 0
        self.error = None
        self.before_kill = None  # callback(node): e.g. scrape its metrics first

    # -- bookkeeping
    def event(self, what, **kw):
        e = dict(t=now_ms(), what=what)
        e.update(kw)
        with self.lock:
            self.timeline.append(e)
        self.log("nemesis: %s %s" % (what, " ".join("%s=%s" % kv for kv in kw.items())))

    def stop(self):
        self.stopping.set()

    def run(self):
        try:
            while not self.stopping.wait(self.rng.uniform(*self.healthy)):
                kinds = self.KINDS if self.kind == "mixed" else self.kind.split(",")
                kind = self.rng.choice(kinds)
                undo = getattr(self, "do_" + kind)()
                self.stopping.wait(self.rng.uniform(*self.faulty))
                if undo:
                    undo()
        except Exception as e:  # reported by the runner
            self.error = repr(e)
            self.event("nemesis-error", error=repr(e))

    def pick(self, prefer_leader_p=0.5):
        live = [n for n in self.c.nodes if n.alive() and not getattr(n, "paused", False)]
        if not live:
            return None, False
        ld = find_leader(self.c)
        if ld is not None and self.rng.random() < prefer_leader_p:
            return ld, True
        n = self.rng.choice(live)
        return n, n is ld

    # -- faults; each returns its undo
    def do_partition(self):
        nodes = list(self.c.nodes)
        mode = self.rng.random()
        if mode < 0.25:
            # Bridge: two sides that cannot talk, one node that talks to both (the
            # classic majority-overlap partition: each side plus the bridge is a majority).
            self.rng.shuffle(nodes)
            bridge, rest = nodes[0], nodes[1:]
            half = len(rest) // 2
            a, b = rest[:half], rest[half:]
            self.net.cut(a, b)
            self.event("partition", mode="bridge", bridge=bridge.id,
                       sides=[sorted(n.id for n in a), sorted(n.id for n in b)])
            return self.heal_partition
        if mode < 0.6:
            ld = find_leader(self.c)
            if ld is not None:
                rest = [n for n in nodes if n is not ld]
                self.net.cut([ld], rest)
                self.event("partition", mode="isolate-leader", isolated=[ld.id],
                           majority=[n.id for n in rest])
                return self.heal_partition
        self.rng.shuffle(nodes)
        k = self.rng.randint(1, len(nodes) // 2)
        a, b = nodes[:k], nodes[k:]
        self.net.cut(a, b)
        self.event("partition", mode="random-halves", minority=sorted(n.id for n in a),
                   majority=sorted(n.id for n in b))
        return self.heal_partition

    def heal_partition(self):
        self.net.heal()
        self.event("heal-partition")

    def do_kill(self):
        n, is_leader = self.pick()
        if n is None:
            return None
        if self.before_kill:
            self.before_kill(n)
        n.kill(signal.SIGKILL)
        self.event("kill", node=n.id, leader=is_leader)
        return lambda: self.restart(n)

    def restart(self, n, offset_ms=None):
        if self.before_kill and n.alive() and not getattr(n, "paused", False):
            self.before_kill(n)
        n.kill(signal.SIGKILL)
        n.start(wrapper=self.net.wrapper(n, offset_ms))
        if offset_ms is None:
            self.skewed.pop(n.id, None)
        else:
            self.skewed[n.id] = offset_ms
        self.event("start", node=n.id, **({"clock_offset_ms": offset_ms} if offset_ms is not None else {}))

    def do_pause(self):
        n, is_leader = self.pick(prefer_leader_p=0.8)
        if n is None:
            return None
        n.paused = True
        n.kill(signal.SIGSTOP)
        self.event("pause", node=n.id, leader=is_leader)
        return lambda: self.resume(n)

    def resume(self, n):
        if n.alive():
            n.kill(signal.SIGCONT)
        n.paused = False
        self.event("resume", node=n.id)

    def do_skew(self):
        n, is_leader = self.pick()
        if n is None:
            return None
        self.skew_events += 1
        if self.skew_beyond and self.skew_events % 2 == 0:
            # Beyond the configured bound: 3x the skew bound, behind then ahead, and so on
            # (behind: the node serves reads after the true expiry; ahead: as leader it
            # revokes early).
            sign = -1 if self.skew_events % 4 == 2 else 1
            off = sign * 3 * self.skew_ms
        else:
            off = int(self.rng.uniform(-0.8, 0.8) * self.skew_ms)
        self.event("skew", node=n.id, leader=is_leader, clock_offset_ms=off,
                   beyond_bound=abs(off) > self.skew_ms)
        self.restart(n, off)
        return lambda: self.restart(n)

    def heal_all(self):
        """Undoes every fault: partitions, pauses, dead nodes, skewed clocks."""
        self.net.heal()
        for n in self.c.nodes:
            if getattr(n, "paused", False):
                self.resume(n)
        for n in self.c.nodes:
            if not n.alive():
                self.restart(n)
            elif n.id in self.skewed:
                self.restart(n)
        self.event("heal-all")

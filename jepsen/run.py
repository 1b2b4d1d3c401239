"""mayfly chaos runner: a real cluster, concurrent clients, a nemesis, checkers.

  python3 -m jepsen.run --nemesis partition|kill|pause|skew|mixed|none \
      --workload register|lease --time 60 --seed N --concurrency K [--nodes 3|5]

Exit status: 0 no anomaly, 1 anomalies found, 2 the run itself failed,
3 the checker was inconclusive (state budget exhausted) but found nothing.
See jepsen/README.md.
"""
import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
# Before the harness import: it reads MF_BINARY_DIR once, at import.
if "MF_BINARY_DIR" not in os.environ:
    for d in ("build-jepsen", "build"):
        if os.path.exists(os.path.join(ROOT, d, "mayflyd")):
            os.environ["MF_BINARY_DIR"] = os.path.join(ROOT, d)
            break

from jepsen import checker  # noqa: E402
from jepsen.nemesis import Net, Nemesis, now_ms  # noqa: E402
from tests.harness.cluster import Cluster, wait_for  # noqa: E402

WRITE_DEFINITE_FAIL = {"CAS_MISMATCH"}
TERMINAL_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def log(msg):
    sys.stderr.write("[%s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


class History:
    def __init__(self):
        self.ops = []
        self.lock = threading.Lock()
        self.next_id = 0

    def add(self, op):
        with self.lock:
            op["id"] = self.next_id
            self.next_id += 1
            self.ops.append(op)
        return op


def call(cluster, args, nodes, timeout="3s"):
    """Runs one CLI command against nodes (a list, tried in that order by the client).
    Returns (rc, out, invoke_ms, complete_ms)."""
    t0 = now_ms()
    try:
        rc, out = cluster.cli(*args, addr=cluster.addrs(nodes), timeout=timeout)
    except subprocess.TimeoutExpired:
        rc, out = 3, {"error": {"code": "CLIENT_TIMEOUT"}}
    return rc, out, t0, now_ms()


def err_code(rc, out):
    if rc == 0:
        return None
    e = out.get("error") if isinstance(out, dict) else None
    return (e or {}).get("code") or ("EXIT_%d" % rc)


def write_type(rc, out):
    """ok / fail (definitely not applied) / info (may or may not have applied)."""
    if rc == 0:
        return "ok"
    if rc == 2 and err_code(rc, out) in WRITE_DEFINITE_FAIL:
        return "fail"
    return "info"  # exit 3, UNAVAILABLE, UNKNOWN_OUTCOME, timeouts, connection errors


# ---------------------------------------------------------------------------
# Workloads
# ---------------------------------------------------------------------------

class RegisterWorkload:
    """Reads, writes and check-and-sets on a few keys (field v)."""

    def __init__(self, cluster, hist, rng, keys=3):
        self.c, self.h, self.keys = cluster, hist, ["jepsen/r%d" % i for i in range(keys)]

    def read(self, p, rng, key, nodes):
        rc, out, t0, t1 = call(self.c, ["kv", "get", key], nodes)
        code = err_code(rc, out)
        op = dict(process=p, f="read", key=key, invoke=t0, complete=t1, node=nodes[0].id)
        if rc == 0:
            op.update(type="ok", version=out.get("version"), result=(out.get("data") or {}).get("v"),
                      served_by=(out.get("read") or {}).get("node"))
        elif code == "NOT_FOUND":
            op.update(type="ok", version=0, result=None)
        else:
            op.update(type="fail", error=code)
        return self.h.add(op)

    def worker(self, p, rng, stop):
        n = 0
        while not stop.is_set():
            key = rng.choice(self.keys)
            nodes = list(self.c.nodes)
            rng.shuffle(nodes)
            r = rng.random()
            if r < 0.45:
                self.read(p, rng, key, nodes)
                continue
            n += 1
            value = "p%d-%d" % (p, n)
            if r < 0.7:
                rc, out, t0, t1 = call(self.c, ["kv", "put", key, "v=" + value], nodes)
                op = dict(process=p, f="write", key=key, value=value, invoke=t0, complete=t1,
                          node=nodes[0].id, type=write_type(rc, out), error=err_code(rc, out))
            else:
                rd = self.read(p, rng, key, nodes)
                if rd["type"] != "ok":
                    continue
                expect = rd["version"] or 0
                rc, out, t0, t1 = call(self.c, ["kv", "put", "-cas", str(expect), key,
                                                "v=" + value], nodes)
                op = dict(process=p, f="cas", key=key, value=value, expect=expect, invoke=t0,
                          complete=t1, node=nodes[0].id, type=write_type(rc, out),
                          error=err_code(rc, out))
            if rc == 0:
                op["version"] = out.get("version")
            self.h.add(op)

    def final(self, stop_deadline):
        nodes = responsive(self.c)
        for key in self.keys:
            while time.time() < stop_deadline:
                op = self.read("final", None, key, nodes)
                if op["type"] == "ok":
                    break
                time.sleep(0.3)

    def check(self, ctx):
        r = checker.check_register(self.h.ops, max_states=ctx.args.max_states)
        return r


class LeaseWorkload:
    """Short leases with a KV secret bound to each; renews; reads from random nodes."""

    def __init__(self, cluster, hist, rng, keys=None):
        self.c, self.h = cluster, hist
        self.leases = {}  # lease_id -> path
        self.expiry = {}  # lease_id -> latest expire_at_ms known to the client
        self.revoked_seen = {}
        self.watch_lock = threading.Lock()
        self.final_state = {}
        self.watch_calls = []

    def worker(self, p, rng, stop):
        n = 0
        while not stop.is_set():
            n += 1
            nodes = list(self.c.nodes)
            rng.shuffle(nodes)
            ttl = rng.choice((1, 1.5, 2, 2.5, 3))
            rc, out, t0, t1 = call(self.c, ["lease", "grant", "-ttl", "%dms" % (ttl * 1000)], nodes)
            op = dict(process=p, f="grant", ttl_ms=ttl * 1000, invoke=t0, complete=t1,
                      type=write_type(rc, out), error=err_code(rc, out))
            if rc == 0:
                op.update(lease_id=out["lease_id"], expire_at_ms=out["expire_at_ms"])
            self.h.add(op)
            if rc != 0:
                time.sleep(0.1)
                continue
            lid, expire = out["lease_id"], out["expire_at_ms"]
            path = "jepsen/lease/p%d/%d" % (p, n)
            value = "s-p%d-%d" % (p, n)
            with self.watch_lock:
                self.leases[lid] = path
                self.expiry[lid] = expire
            rc, out, t0, t1 = call(self.c, ["kv", "put", "-lease", lid, path, "s=" + value], nodes)
            self.h.add(dict(process=p, f="put", lease_id=lid, path=path, value=value, invoke=t0,
                            complete=t1, type=write_type(rc, out), error=err_code(rc, out)))
            renews = 0
            late_at = expire - rng.uniform(0, 250) if rng.random() < 0.3 else None
            # Read until a little after expiry (refusals expected from expire_at - skew).
            while not stop.is_set() and now_ms() < expire + 400:
                node = rng.choice(self.c.nodes)
                cons = rng.choice(("linearizable", "stale"))
                rc, out, t0, t1 = call(self.c, ["kv", "get", "-consistency", cons, path], [node],
                                       timeout="2s")
                op = dict(process=p, f="get", lease_id=lid, path=path, consistency=cons,
                          node=node.id, invoke=t0, complete=t1)
                if rc == 0:
                    got = (out.get("data") or {}).get("s")
                    op.update(type="ok", result=got, returned_lease=out.get("lease_id"),
                              read=out.get("read"))
                else:
                    op.update(type="fail", error=err_code(rc, out))
                self.h.add(op)
                early = renews < 2 and rng.random() < 0.15 and now_ms() < expire - 300
                # A late renew races the scheduler's expiry at expire_at (DESIGN: "Expire
                # vs renew": a renew that committed first wins).
                late = late_at is not None and now_ms() >= late_at
                if early or late:
                    renews += 1
                    if late:
                        late_at = None
                    inc = rng.choice((1, 2, 3))
                    rc, out, t0, t1 = call(self.c, ["lease", "renew", "-increment", "%ds" % inc,
                                                    lid], nodes)
                    op = dict(process=p, f="renew", lease_id=lid, increment_ms=inc * 1000,
                              invoke=t0, complete=t1, type=write_type(rc, out),
                              error=err_code(rc, out), late=late)
                    if rc == 0:
                        op["expire_at_ms"] = out["expire_at_ms"]
                        expire = max(expire, out["expire_at_ms"])
                        with self.watch_lock:
                            self.expiry[lid] = max(self.expiry[lid], expire)
                    elif op["type"] == "fail" or err_code(rc, out) in ("LEASE_NOT_ACTIVE",
                                                                         "LEASE_EXPIRED"):
                        op["type"] = "fail"  # refused: not applied
                    else:
                        # may have extended it: read on until the longest possible expiry
                        expire = max(expire, t1 + inc * 1000)
                    self.h.add(op)
                time.sleep(rng.uniform(0.02, 0.08))

    def watcher(self, stop, nemesis):
        """Records when each lease is first seen revoked by any node (stale list)."""
        i = 0
        while not stop.wait(0.005 if self.due() else 0.1):
            live = [n for n in self.c.nodes if n.alive() and not getattr(n, "paused", False)]
            if not live:
                continue
            node = live[i % len(live)]
            i += 1
            rc, out, t0, t1 = call(self.c, ["lease", "list", "-state", "revoked", "-limit", "10000",
                                            "-consistency", "stale"], [node], timeout="1s")
            self.watch_calls.append(t1 - t0)
            if rc != 0:
                continue
            with self.watch_lock:
                for l in out.get("leases") or []:
                    lid = l.get("lease_id")
                    if lid and lid not in self.revoked_seen:
                        self.revoked_seen[lid] = t1
                        self.h.add(dict(process="watcher", f="lookup", lease_id=lid, node=node.id,
                                        invoke=t0, complete=t1, type="ok", state=l.get("state"),
                                        expire_at_ms=l.get("expire_at_ms")))

    def due(self):
        """Some lease is past the expiry we know and not yet seen revoked: poll fast."""
        t = now_ms()
        with self.watch_lock:
            return any(t >= e - 50 and l not in self.revoked_seen for l, e in self.expiry.items())

    def all_seen(self):
        with self.watch_lock:
            return all(l in self.revoked_seen for l in self.leases)

    def final(self, stop_deadline):
        exp = [o["expire_at_ms"] for o in self.h.ops if o.get("expire_at_ms")]
        wait_until = (max(exp) if exp else 0) / 1000.0 + self.bound_ms / 1000.0 + 1
        while time.time() < min(wait_until, stop_deadline) and not self.all_seen():
            time.sleep(0.2)
        nodes = responsive(self.c)
        for lid, path in sorted(self.leases.items()):
            res = {"lookup": None, "get_error": None}
            if time.time() > stop_deadline:
                self.final_state[lid] = res
                continue
            for _ in range(5):
                rc, out, t0, t1 = call(self.c, ["lease", "lookup", lid], nodes)
                if rc == 0:
                    res["lookup"] = out
                    self.h.add(dict(process="final", f="lookup", lease_id=lid, invoke=t0,
                                    complete=t1, type="ok", state=out.get("state"),
                                    expire_at_ms=out.get("expire_at_ms")))
                    break
                time.sleep(0.3)
            for _ in range(5 if res["lookup"] else 0):
                rc, out, t0, t1 = call(self.c, ["kv", "get", path], nodes)
                code = err_code(rc, out)
                if code not in ("UNAVAILABLE", "EXIT_1", "EXIT_3", "UNKNOWN_OUTCOME"):
                    res["get_error"] = code
                    self.h.add(dict(process="final", f="final-get", lease_id=lid, path=path,
                                    invoke=t0, complete=t1, type="ok" if rc == 0 else "fail",
                                    error=code))
                    break
                time.sleep(0.3)
            self.final_state[lid] = res

    def check(self, ctx):
        clock_faults = any(e["what"] == "skew" for e in ctx.nemesis.timeline) if ctx.nemesis else False
        tol = ctx.args.skew_ms if clock_faults else 0
        timeline = ctx.nemesis.timeline if ctx.nemesis else []
        clock_offset = checker.clock_offsets(timeline)
        r = checker.check_expiry(self.h.ops, self.revoked_seen, self.final_state,
                                 skew_ms=ctx.args.skew_ms, bound_ms=self.bound_ms,
                                 clock_faults=clock_faults, revoke_tolerance_ms=tol,
                                 clock_offset=clock_offset)
        if self.watch_calls:
            w = sorted(self.watch_calls)
            r["stats"]["watcher_call_ms_p50"] = round(w[len(w) // 2], 1)
        return r


# ---------------------------------------------------------------------------
# Runner
# ---------------------------------------------------------------------------

class Ctx:
    pass


class LatenessMetrics:
    """The leaders' own revocation lateness histograms (mayfly_revocation_lateness_ms),
    scraped from each node before it is killed and at the end, summed over node
    incarnations (a restart resets a node's counters)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.latest = {}  # (node id, incarnation) -> (buckets {le: cum}, count, max)
        self.incarnation = {}

    def scrape(self, node, final=False):
        try:
            code, body = node.http_get("/metrics")
        except Exception:
            return
        if code != 200:
            return
        buckets, count, mx = {}, 0, 0
        for line in body.splitlines():
            if line.startswith("mayfly_revocation_lateness_ms_bucket{le=\""):
                le = line.split('"')[1]
                buckets[le] = float(line.split()[-1])
            elif line.startswith("mayfly_revocation_lateness_ms_count "):
                count = float(line.split()[1])
            elif line.startswith("mayfly_revocation_lateness_max_ms "):
                mx = float(line.split()[1])
        with self.lock:
            inc = self.incarnation.get(node.id, 0)
            self.latest[(node.id, inc)] = (buckets, count, mx)
            if not final:
                self.incarnation[node.id] = inc + 1  # about to be killed

    def summary(self):
        total, cum, mx = 0, {}, 0
        for buckets, count, m in self.latest.values():
            total += count
            mx = max(mx, m)
            for le, v in buckets.items():
                cum[le] = cum.get(le, 0) + v
        if not total:
            return None
        order = sorted((float("inf") if le == "+Inf" else float(le), v) for le, v in cum.items())

        def q(p):
            for le, v in order:
                if v >= p * total:
                    return le
            return None
        return dict(n=int(total), p50_le=q(0.5), p99_le=q(0.99), max=mx)


def summarize_ops(ops):
    s = {}
    for o in ops:
        k = "%s:%s" % (o["f"], o["type"])
        s[k] = s.get(k, 0) + 1
    return dict(sorted(s.items()))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nemesis", default="partition",
                    help="partition|kill|pause|skew|mixed|none, or a comma list of "
                         "partition,kill,pause,skew to mix only those")
    ap.add_argument("--workload", default="register", choices=("register", "lease"))
    ap.add_argument("--time", type=float, default=60)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--concurrency", type=int, default=5)
    ap.add_argument("--nodes", type=int, default=3, choices=(3, 5))
    ap.add_argument("--keys", type=int, default=3, help="register workload: number of keys")
    ap.add_argument("--skew-ms", type=int, default=500, help="max_clock_skew_ms of the cluster")
    ap.add_argument("--skew-beyond", action="store_true",
                    help="skew nemesis: every other skew event is 3x the skew bound")
    ap.add_argument("--bound-ms", type=int, default=None,
                    help="revocation lateness bound (default 1500 + skew)")
    ap.add_argument("--healthy", type=float, nargs=2, default=(2.0, 4.0), metavar=("MIN", "MAX"))
    ap.add_argument("--faulty", type=float, nargs=2, default=(3.0, 6.0), metavar=("MIN", "MAX"))
    ap.add_argument("--max-states", type=int, default=2_000_000)
    ap.add_argument("--results", default=None, help="results directory")
    args = ap.parse_args()
    kinds = args.nemesis.split(",")
    if args.nemesis not in ("mixed", "none") and not all(k in Nemesis.KINDS for k in kinds):
        ap.error("bad --nemesis %r" % args.nemesis)
    if args.seed is None:
        args.seed = int(time.time()) % 100000
    bound_ms = args.bound_ms if args.bound_ms is not None else 1500 + args.skew_ms
    results = args.results or os.path.join(HERE, "results", "%s-%s-%s-s%d" % (
        time.strftime("%Y%m%dT%H%M%S"), args.workload, args.nemesis.replace(",", "+"), args.seed))
    os.makedirs(results, exist_ok=True)

    rng = random.Random(args.seed)
    ctx = Ctx()
    ctx.args = args
    ctx.nemesis = None
    hist = History()
    cluster = None
    net = None
    stop = threading.Event()
    code = 2

    def on_signal(signum, frame):
        raise KeyboardInterrupt()
    for s in TERMINAL_SIGNALS:
        signal.signal(s, on_signal)

    try:
        cluster = Cluster(args.nodes, extra_config={"max_clock_skew_ms": args.skew_ms})
        net = Net(cluster.nodes)
        with open(os.path.join(results, "cluster_dir"), "w") as f:
            f.write(cluster.dir + "\n")
        net.setup()
        for n in cluster.nodes:
            n.write_config()
        for n in cluster.nodes:
            n.start(wrapper=net.wrapper(n))
        cluster.init()
        for n in cluster.nodes:
            wait_for(lambda: (n.status() or {}).get("sealed") is False, 20, "unsealed")
        log("cluster of %d up in %s (binaries %s); seed %d" % (
            args.nodes, cluster.dir, os.environ.get("MF_BINARY_DIR"), args.seed))

        W = RegisterWorkload if args.workload == "register" else LeaseWorkload
        wl = W(cluster, hist, rng, keys=args.keys)
        wl.bound_ms = bound_ms
        nem = None
        metrics = LatenessMetrics()
        if args.nemesis != "none":
            nem = Nemesis(cluster, net, args.nemesis, random.Random(rng.random()),
                          skew_ms=args.skew_ms, skew_beyond=args.skew_beyond,
                          healthy=args.healthy, faulty=args.faulty, log=log)
            ctx.nemesis = nem
            nem.before_kill = metrics.scrape
        threads = [threading.Thread(target=wl.worker, args=(p, random.Random(rng.random()), stop),
                                    daemon=True) for p in range(args.concurrency)]
        watch_stop = threading.Event()
        watcher = None
        if isinstance(wl, LeaseWorkload):
            watcher = threading.Thread(target=wl.watcher, args=(watch_stop, nem), daemon=True)
            watcher.start()
        t_start = now_ms()
        for t in threads:
            t.start()
        if nem:
            nem.start()
        time.sleep(args.time)
        stop.set()
        if nem:
            nem.stop()
            nem.join(60)
        for t in threads:
            t.join(30)
        log("workload stopped; healing")
        if nem:
            nem.heal_all()
        else:
            net.heal()
        liveness = []
        try:
            ld = cluster.leader(timeout=30)
            log("healed; leader %d; settling" % ld.id)
        except AssertionError as e:
            # Liveness anomaly: every fault healed, yet the nodes do not agree on a
            # leader within 30 s. Record what each node looks like.
            liveness.append(dict(kind="no-leader-after-heal", error=str(e),
                                 nodes=[node_snapshot(n) for n in cluster.nodes]))
            log("NO LEADER 30 s after healing: %s" % json.dumps(liveness, default=str))
        time.sleep(2)
        wl.final(time.time() + 60)
        watch_stop.set()
        if watcher:
            watcher.join(10)
        t_end = now_ms()

        for n in cluster.nodes:
            if n.alive():
                metrics.scrape(n, final=True)
        log("checking %d ops" % len(hist.ops))
        t0 = time.time()
        res = wl.check(ctx)
        check_s = time.time() - t0
        timeline = nem.timeline if nem else []
        report = dict(args=vars(args), bound_ms=bound_ms, seed=args.seed,
                      binaries=os.environ.get("MF_BINARY_DIR"),
                      duration_s=round((t_end - t_start) / 1000, 1),
                      ops=summarize_ops(hist.ops), total_ops=len(hist.ops),
                      check_seconds=round(check_s, 2), result=res,
                      nemesis_error=nem.error if nem else None,
                      timeline=[dict(e, t_rel_s=round((e["t"] - t_start) / 1000, 2)) for e in timeline])
        if isinstance(wl, LeaseWorkload):
            res["stats"]["server_lateness_ms"] = metrics.summary()
        if liveness:
            res["anomalies"] = liveness + res.get("anomalies", [])
            res["valid"] = False
        if res.get("valid"):
            code = 0
        elif res.get("anomalies"):
            code = 1
        else:
            code = 3
        if nem and nem.error:
            code = max(code, 2) if code != 1 else 1
        write_results(results, hist, report, cluster)
        print_report(report, results)
    except KeyboardInterrupt:
        log("interrupted")
        code = 2
    except Exception:
        traceback.print_exc()
        code = 2
    finally:
        stop.set()
        if cluster:
            for n in cluster.nodes:
                if getattr(n, "paused", False) and n.alive():
                    n.kill(signal.SIGCONT)
            try:
                if code == 2:
                    copy_logs(results, cluster)
                    with open(os.path.join(results, "history.jsonl"), "w") as f:
                        for o in list(hist.ops):
                            f.write(json.dumps(o) + "\n")
            except Exception:
                pass
            cluster.cleanup()
        if net:
            net.teardown()
    log("results in %s; exit %d" % (results, code))
    return code


def responsive(cluster):
    """The nodes that answer status (a hung node would eat every final call's timeout)."""
    nodes = [n for n in cluster.nodes if n.alive() and n.status()]
    return nodes or list(cluster.nodes)


def node_snapshot(n):
    """Status, CPU use over 1 s and log size of a node (for liveness reports)."""
    snap = dict(node=n.id, alive=n.alive())
    if not n.alive():
        return snap
    try:
        def cpu():
            with open("/proc/%d/stat" % n.proc.pid) as f:
                x = f.read().rsplit(")", 1)[1].split()
            return (int(x[11]) + int(x[12])) / os.sysconf("SC_CLK_TCK")
        c0, t0 = cpu(), time.time()
        time.sleep(1)
        snap["cpu_percent"] = round(100 * (cpu() - c0) / (time.time() - t0))
    except OSError:
        pass
    st = n.status()
    snap["status"] = {k: st.get(k) for k in ("role", "leader_id", "term", "commit_index",
                                             "applied_index")} if st else None
    if st is None and shutil.which("gdb"):
        # A node that does not answer: where are its threads? (gdb attaches and detaches)
        try:
            p = subprocess.run(["gdb", "-p", str(n.proc.pid), "-batch", "-nx",
                                "-ex", "thread apply all bt 30"],
                               capture_output=True, text=True, timeout=60)
            frames = [l for l in p.stdout.splitlines() if l.startswith(("#", "Thread"))]
            snap["backtrace"] = frames[:120]
        except (OSError, subprocess.TimeoutExpired):
            pass
    try:
        with open(n.log_path) as f:
            lines = f.readlines()
        snap["log_lines"] = len(lines)
        snap["log_tail"] = [l.rstrip()[:200] for l in lines[-3:]]
    except OSError:
        pass
    return snap


def copy_logs(results, cluster, cap=8 << 20):
    """Copies node logs; a log over cap bytes keeps its first and last cap/2 bytes."""
    for n in cluster.nodes:
        if not os.path.exists(n.log_path):
            continue
        dst = os.path.join(results, os.path.basename(n.log_path))
        size = os.path.getsize(n.log_path)
        if size <= cap:
            shutil.copy(n.log_path, dst)
            continue
        with open(n.log_path, "rb") as f, open(dst, "wb") as out:
            out.write(f.read(cap // 2))
            out.write(b"\n... [%d bytes cut by the jepsen runner] ...\n" % (size - cap))
            f.seek(size - cap // 2)
            out.write(f.read())


def write_results(results, hist, report, cluster):
    with open(os.path.join(results, "history.jsonl"), "w") as f:
        for o in sorted(hist.ops, key=lambda o: o["invoke"]):
            f.write(json.dumps(o) + "\n")
    with open(os.path.join(results, "report.json"), "w") as f:
        json.dump(report, f, indent=1, default=str)
    copy_logs(results, cluster)


def print_report(rep, results):
    a = rep["args"]
    out = []
    out.append("=== mayfly jepsen: workload=%s nemesis=%s nodes=%d seed=%d time=%ss concurrency=%d" % (
        a["workload"], a["nemesis"], a["nodes"], rep["seed"], a["time"], a["concurrency"]))
    out.append("ops: %d total  %s" % (rep["total_ops"], " ".join("%s=%d" % kv for kv in rep["ops"].items())))
    out.append("fault timeline:")
    for e in rep["timeline"]:
        extra = " ".join("%s=%s" % (k, v) for k, v in e.items() if k not in ("t", "t_rel_s", "what"))
        out.append("  %7.2fs %-15s %s" % (e["t_rel_s"], e["what"], extra))
    r = rep["result"]
    if "per_key" in r:
        for k, v in r["per_key"].items():
            out.append("key %s: %d ops checked, %d states, linearizable=%s" % (k, v["ops"], v["states"], v["valid"]))
        if r.get("inconclusive"):
            out.append("INCONCLUSIVE keys (state budget): %s" % r["inconclusive"])
    if "stats" in r:
        out.append("expiry stats: %s" % json.dumps(r["stats"]))
        for w in r.get("warnings", [])[:10]:
            out.append("  warning: %s" % json.dumps(w, default=str))
        if len(r.get("warnings", [])) > 10:
            out.append("  ... %d warnings in report.json" % len(r["warnings"]))
    out.append("checker time: %.2fs" % rep["check_seconds"])
    an = r.get("anomalies") or []
    out.append("ANOMALIES: %d" % len(an))
    for x in an[:10]:
        x = dict(x)
        win = x.pop("window", None)
        out.append("  " + json.dumps(x, default=str))
        if win:
            out.append("    concurrent ops:")
            for o in sorted(win, key=lambda o: o["invoke"])[-25:]:
                out.append("      " + json.dumps(o, default=str))
    beyond = [e for e in rep["timeline"] if e.get("beyond_bound")]
    if beyond:
        out.append("NOTE: %d clock offsets beyond the skew bound were injected (%s): the "
                   "guarantees do not hold then; anomalies are expected." % (
                       len(beyond), ", ".join("node %s %+d ms at %.1fs" % (
                           e["node"], e["clock_offset_ms"], e["t_rel_s"]) for e in beyond)))
    if rep.get("nemesis_error"):
        out.append("NEMESIS ERROR: %s" % rep["nemesis_error"])
    out.append("results: %s" % results)
    text = "\n".join(out)
    print(text)
    with open(os.path.join(results, "report.txt"), "w") as f:
        f.write(text + "\n")


if __name__ == "__main__":
    sys.exit(main())

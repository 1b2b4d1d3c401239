#!/usr/bin/env python3
"""Minimal reproduction: a leader paused (SIGSTOP) while leases fall due, then
continued, livelocks: its scheduler retries the failed expire proposal with a
0 ms timer, forever, and the node never processes the new leader's messages.

  python3 jepsen/repro_paused_leader.py      exit 1 if the bug shows, 0 if not
"""
import os
import signal
import sys
import threading
import time

PAUSE_S = float(os.environ.get('PAUSE_S', '3'))

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
if "MF_BINARY_DIR" not in os.environ:
    for d in ("build-jepsen", "build"):
        if os.path.exists(os.path.join(ROOT, d, "mayflyd")):
            os.environ["MF_BINARY_DIR"] = os.path.join(ROOT, d)
            break
import harness  # noqa: E402


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    c = harness.Cluster(3)
    try:
        c.start()
        c.init()
        for n in c.nodes:
            harness.wait_for(lambda: (n.status() or {}).get("sealed") is False, 20, "unsealed")
        old = c.leader()
        stop = threading.Event()

        def load(addr):
            # Writes and short leases through the old leader: keeps a write batch in
            # flight on it and leases falling due, before and after the pause.
            while not stop.is_set():
                c.cli("lease", "grant", "-ttl", "500ms", addr=addr, timeout="1s")
        threads = [threading.Thread(target=load, args=(old.api_addr,), daemon=True)
                   for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(2)
        old.kill(signal.SIGSTOP)              # leases fall due while it is stopped
        others = [n for n in c.nodes if n is not old]
        new = c.leader(among=others)
        time.sleep(PAUSE_S)
        old.kill(signal.SIGCONT)
        time.sleep(3)
        stop.set()
        t0, c0 = time.time(), cpu_seconds(old.proc.pid)
        time.sleep(2)
        cpu = (cpu_seconds(old.proc.pid) - c0) / (time.time() - t0)
        st = old.status()
        lines = sum(1 for _ in open(old.log_path))
        spins = sum(1 for l in open(old.log_path) if "proposal failed" in l)
        print("old leader %d, new leader %d; 5 s after SIGCONT the old leader uses %.0f%% CPU, "
              "answers status: %s, log %d lines (%d 'proposal failed')"
              % (old.id, new.id, cpu * 100, "yes: %s" % st.get("role") if st else "no",
                 lines, spins))
        bad = cpu > 0.5 or st is None or st.get("role") == "leader"
        print("BUG REPRODUCED" if bad else "not reproduced")
        return 1 if bad else 0
    finally:
        for n in c.nodes:
            if n.alive():
                n.kill(signal.SIGCONT)
        c.cleanup()


if __name__ == "__main__":
    sys.exit(main())

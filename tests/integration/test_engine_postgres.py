"""The PostgreSQL engine through a 3-node cluster and a real PostgreSQL with
password authentication: credentials log in before expiry and not after, the
role is gone, its sessions are terminated; revocations survive a database
outage; past the deadline leases become irrevocable and -force clears them."""
import json
import os
import signal
import subprocess
import threading
import time
import unittest

from tests.harness.cluster import BUILD, Cluster, wait_for
from tests.harness.pg import ROLE, Postgres, bindir


BENCH = os.path.join(BUILD, "bench", "mayfly-bench")


def now_ms():
    return int(time.time() * 1000)


@unittest.skipUnless(bindir(), "needs Debian's postgresql package")
class PostgresEngine(unittest.TestCase):
    def setUp(self):
        self.pg = Postgres()
        self.addCleanup(self.pg.destroy)

    def cluster(self, **extra):
        c = Cluster(3, extra_config=extra).start()
        self.addCleanup(c.cleanup)
        c.init()
        c.wait_unsealed()
        rc, out = c.cli("engine", "enable", "-type", "postgres", "-config",
                        json.dumps(self.pg.config()), "db")
        self.assertEqual(rc, 0, out)
        rc, out = c.cli("engine", "role", "put", "db", "app", json.dumps(ROLE))
        self.assertEqual(rc, 0, out)
        return c

    def issue(self, c, ttl):
        rc, out = c.cli("creds", "issue", "-ttl", ttl, "db/app", timeout="20s")
        self.assertEqual(rc, 0, out)
        return out

    def test_credentials_live_exactly_as_long_as_their_lease(self):
        """200 credentials with 1-3 s TTLs: each logs in at once (a wrong
        password does not); after expiry none logs in, every role is gone from
        pg_roles, and a session opened before expiry was terminated."""
        c = self.cluster()
        creds, failures, lock = [], [], threading.Lock()

        def worker(k):
            for i in range(50):
                cred = self.issue(c, "%ds" % (1 + (k + i) % 3))
                user, pw = cred["data"]["username"], cred["data"]["password"]
                rc, out = self.pg.psql(user, pw, "select current_user")
                with lock:
                    creds.append(cred)
                    if (rc, out) != (0, user) and now_ms() < cred["expire_at_ms"]:
                        failures.append((user, rc, out))
        threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(len(creds), 200)
        self.assertEqual(failures, [], "credentials that could not log in before expiry")
        self.assertTrue(all(cr["data"]["username"].startswith("mf_") for cr in creds))
        cred = self.issue(c, "3s")  # the session below outlives its lease
        creds.append(cred)
        rc, out = self.pg.psql(creds[0]["data"]["username"], "wrong-password", "select 1")
        self.assertNotEqual(rc, 0, "scram must refuse a wrong password")
        last = cred
        session = self.pg.session(last["data"]["username"], last["data"]["password"])
        wait_for(lambda: self.pg.admin("select count(*) from pg_stat_activity where usename = '%s'"
                                       % last["data"]["username"]) == "1", 10, "session open")
        latest = max(cr["expire_at_ms"] for cr in creds)
        wait_for(lambda: self.pg.admin("select count(*) from pg_roles where rolname like 'mf\\_%'")
                 == "0", (latest - now_ms()) / 1000 + 10, "every role dropped")
        for cr in creds[:5]:
            rc, out = self.pg.psql(cr["data"]["username"], cr["data"]["password"], "select 1")
            self.assertNotEqual(rc, 0, "a revoked credential still logs in")
        session.wait(10)
        self.assertNotEqual(session.returncode, 0, "the old session survived revocation")
        for cr in creds[:5]:
            rc, out = c.cli("lease", "lookup", cr["lease_id"])
            self.assertEqual(out["state"], "revoked", out)

    def test_paused_leader_leaves_no_role_behind(self):
        """The leader is paused (SIGSTOP) while it issues credentials; a new
        leader revokes the stuck issuing leases; the old one resumes and may
        create a role late, which it can never hand out, and the reconciler
        removes it: no role is left in PostgreSQL."""
        c = self.cluster(reconcile_interval_ms=1000)
        slow = dict(ROLE, creation_statements=ROLE["creation_statements"] +
                    ["SELECT pg_sleep(1)"])
        rc, out = c.cli("engine", "role", "put", "db", "slow", json.dumps(slow))
        self.assertEqual(rc, 0, out)
        leader = c.leader()
        results = []

        def issuer():
            results.append(c.cli("creds", "issue", "-ttl", "2s", "db/slow",
                                 addr=leader.api_addr, timeout="30s"))
        threads = [threading.Thread(target=issuer) for _ in range(3)]
        for t in threads:
            t.start()
        wait_for(lambda: int(self.pg.admin("select count(*) from pg_stat_activity where "
                                           "query like '%pg_sleep(1)%' and state = 'active'"
                                           " and pid <> pg_backend_pid()")) > 0,
                 20, "an issue in progress in PostgreSQL")
        leader.kill(signal.SIGSTOP)
        try:
            survivors = [n for n in c.nodes if n is not leader]
            c.leader(among=survivors)

            def settled():
                rc, out = c.cli("lease", "list", "-consistency", "stale", "db/slow/",
                                addr=c.addrs(survivors))
                states = {l["state"] for l in out.get("leases", [])}
                return rc == 0 and out.get("leases") and states <= {"revoked"}
            wait_for(settled, 30, "the new leader revoked every stuck lease")
        finally:
            leader.kill(signal.SIGCONT)
        for t in threads:
            t.join(60)
        wait_for(lambda: self.pg.admin("select count(*) from pg_roles where rolname like "
                                       "'mf\\_%'") == "0", 30, "no role left behind")
        # None of the interrupted issues handed out a credential that outlived its lease.
        for rc, out in results:
            if rc == 0:
                rc2, lk = c.cli("lease", "lookup", out["lease_id"], addr=c.addrs(survivors))
                self.assertEqual(lk["state"], "revoked", lk)

    def test_rotate_root(self):
        """rotate-root gives the admin user a password only mayfly knows: the
        old one is refused, and credentials still issue."""
        c = self.cluster()
        rc, out = self.pg.psql(self.pg.ADMIN, self.pg.password, "select 1")
        self.assertEqual(rc, 0, out)
        rc, out = c.cli("engine", "rotate-root", "db", timeout="20s")
        self.assertEqual(rc, 0, out)
        rc, out = self.pg.psql(self.pg.ADMIN, self.pg.password, "select 1")
        self.assertNotEqual(rc, 0, "the old admin password still works")
        cred = self.issue(c, "5s")
        rc, out = self.pg.psql(cred["data"]["username"], cred["data"]["password"], "select 1")
        self.assertEqual(rc, 0, out)
        # The engine config (admin user and its new password) is stored only
        # encrypted: its user name appears in no file of any node.
        for n in c.nodes:
            for root, _, files in os.walk(n.data_dir):
                for f in files:
                    with open(os.path.join(root, f), "rb") as fh:
                        self.assertNotIn(self.pg.ADMIN.encode(), fh.read(), f)

    def test_outage_then_resume(self):
        """PostgreSQL down for 60 s while leases expire: they wait in revoking
        (nothing dropped silently, no attempt limit: the retries go on for the
        whole outage) and are revoked once it is back."""
        c = self.cluster()
        creds = [self.issue(c, "1s") for _ in range(3)]
        self.pg.stop()
        down_at = time.time()
        wait_for(lambda: all(c.cli("lease", "lookup", cr["lease_id"])[1].get("state") ==
                             "revoking" for cr in creds), 15, "expired while the database is down")
        leader = c.leader()
        wait_for(lambda: (leader.metric("mayfly_revocation_retries_total") or 0) >= 3, 15,
                 "retries counted")
        # The outage itself lasts 60 s (the scenario, not a wait for an event).
        time.sleep(max(0, 60 - (time.time() - down_at)))
        for cr in creds:
            self.assertEqual(c.cli("lease", "lookup", cr["lease_id"])[1].get("state"),
                             "revoking")
        # Backoff 100 ms doubling to 30 s, with jitter: at least six rounds of
        # three failures in a minute, so no small attempt limit gave up.
        if leader.metric("mayfly_raft_is_leader") == 1:
            self.assertGreaterEqual(leader.metric("mayfly_revocation_retries_total"), 18)
        self.pg.start()
        wait_for(lambda: all(c.cli("lease", "lookup", cr["lease_id"])[1].get("state") ==
                             "revoked" for cr in creds), 45, "revoked after the outage")
        self.assertEqual(self.pg.admin("select count(*) from pg_roles where rolname like 'mf\\_%'"),
                         "0")

    def test_outage_holds_back_no_other_lease(self):
        """1,100 credentials wait in revoking while PostgreSQL is down (more
        than one scheduler batch, all at lower SEQs): bare leases that expire
        meanwhile are still revoked on time, and once the database is back
        every role is dropped with each lease sent to the engine once."""
        c = self.cluster()
        env = c.client_env()
        p = subprocess.run([BENCH, "-workload", "creds", "-path", "db/app", "-ttl", "50s",
                            "-total", "1100", "-clients", "16", "-conns", "4"], env=env,
                           capture_output=True, text=True, timeout=300)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("errors=0", p.stdout)
        self.pg.stop()
        rc, out = c.cli("lease", "revoke", "-prefix", "db/app/")
        self.assertEqual((rc, out.get("revoked")), (0, 1100), out)
        leader = c.leader()
        term = leader.metric("mayfly_raft_term")
        wait_for(lambda: (leader.metric("mayfly_revocation_retries_total") or 0) >= 1000, 15,
                 "the engine batch failed")
        bare = []
        for _ in range(3):
            rc, out = c.cli("lease", "grant", "-ttl", "1s", "-name", "bare")
            self.assertEqual(rc, 0, out)
            bare.append(out["lease_id"])
        wait_for(lambda: all(c.cli("lease", "lookup", l)[1].get("state") == "revoked"
                             for l in bare), 10, "bare leases revoked during the outage")
        # (the gauge is published each housekeeping round: it may still count
        # a bare lease that was revoking at the last one)
        wait_for(lambda: leader.metric('mayfly_leases{state="revoking"}') == 1100, 5,
                 "1,100 leases in revoking, and only them")
        self.pg.start()
        wait_for(lambda: leader.metric('mayfly_leases{state="revoking"}') == 0, 60,
                 "revoked after the outage")
        self.assertEqual(self.pg.admin("select count(*) from pg_roles where rolname like 'mf\\_%'"),
                         "0")
        # Every lease handed to the engine either failed (a retry, counted)
        # or succeeded once: none was sent again while its LeaseRevoked was
        # being committed. (Both counters come from one scrape.)
        # A new leader may legitimately repeat what the old one had not
        # committed: the count is exact only if the leader stayed.
        _, body = leader.http_get("/metrics")
        m = dict(l.split(" ", 1) for l in body.splitlines() if l and not l.startswith("#"))
        if float(m["mayfly_raft_term"]) == term and m["mayfly_raft_is_leader"] == "1":
            self.assertEqual(int(m["mayfly_engine_revoke_leases_total"]) -
                             int(m["mayfly_revocation_retries_total"]), 1100)

    def test_irrevocable_after_deadline_and_force(self):
        """With a deadline shorter than the outage, leases become irrevocable,
        are listed as such with their error, and -force clears them; the
        reconciler then drops the roles they left."""
        c = self.cluster(revoke_deadline_ms=2000, reconcile_interval_ms=1000)
        short = [self.issue(c, "1s") for _ in range(3)]
        self.pg.stop()
        wait_for(lambda: all(c.cli("lease", "lookup", cr["lease_id"])[1].get("state") ==
                             "irrevocable" for cr in short), 30, "irrevocable after the deadline")
        rc, out = c.cli("lease", "list", "-state", "irrevocable")
        self.assertEqual(len(out["leases"]), 3, out)
        self.assertTrue(out["leases"][0]["last_error"], out)
        leader = c.leader()
        self.assertGreaterEqual(leader.metric("mayfly_revocation_retries_total"), 1)
        for cr in short:
            rc, out = c.cli("lease", "revoke", "-force", cr["lease_id"])
            self.assertEqual(rc, 0, out)
        rc, out = c.cli("lease", "list", "-state", "irrevocable")
        self.assertEqual(out["leases"], [])
        self.pg.start()
        # The reconciler drops what the forced leases left behind.
        wait_for(lambda: self.pg.admin("select count(*) from pg_roles where rolname like "
                                       "'mf\\_%'") == "0", 20, "reconciler cleaned up")


if __name__ == "__main__":
    unittest.main()

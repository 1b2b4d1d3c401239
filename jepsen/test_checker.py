"""Self-tests of the checkers: hand-made histories they must accept or flag.

Run from the repository root: python3 -m jepsen.test_checker
(or python3 -m unittest -v jepsen.test_checker)
"""
import random
import unittest

from jepsen import checker


def op(f, inv, comp, type="ok", key="k", **kw):
    d = dict(f=f, invoke=inv, complete=comp, type=type, key=key, process=0)
    d.update(kw)
    return d


def W(inv, comp, value, version=None, type="ok", **kw):
    return op("write", inv, comp, type, value=value, version=version, **kw)


def R(inv, comp, value, version, type="ok", **kw):
    return op("read", inv, comp, type, result=value, version=version, **kw)


def CAS(inv, comp, expect, value, version=None, type="ok", error=None, **kw):
    return op("cas", inv, comp, type, expect=expect, value=value, version=version,
              error=error, **kw)


class Linearizability(unittest.TestCase):
    def ok(self, h):
        r = checker.check_register(h)
        self.assertTrue(r["valid"], r)

    def bad(self, h):
        r = checker.check_register(h)
        self.assertFalse(r["valid"])
        self.assertTrue(r["anomalies"], r)
        return r

    def test_sequential(self):
        self.ok([R(0, 1, None, 0), W(2, 3, "a", 1), R(4, 5, "a", 1), W(6, 7, "b", 2),
                 R(8, 9, "b", 2), CAS(10, 11, 2, "c", 3), R(12, 13, "c", 3)])

    def test_concurrent_reads_see_either_side_of_a_write(self):
        self.ok([W(0, 1, "a", 1), W(10, 20, "b", 2), R(11, 12, "a", 1), R(13, 14, "b", 2),
                 R(21, 22, "b", 2)])

    def test_stale_read_is_flagged(self):
        # "b" was acknowledged at t=20; a read that starts at t=30 still sees "a".
        r = self.bad([W(0, 1, "a", 1), W(10, 20, "b", 2), R(30, 31, "a", 1)])
        self.assertEqual(r["anomalies"][0]["stuck"]["invoke"], 30)

    def test_read_going_back_in_time_is_flagged(self):
        # Two sequential reads: the second sees an older value than the first.
        self.bad([W(0, 1, "a", 1), W(10, 100, "b", 2), R(20, 21, "b", 2), R(30, 31, "a", 1)])

    def test_lost_update_two_cas_same_version(self):
        self.bad([W(0, 1, "a", 1), CAS(10, 20, 1, "b", 2), CAS(11, 21, 1, "c", 2)])

    def test_wrong_version_in_write_answer(self):
        self.bad([W(0, 1, "a", 1), W(2, 3, "b", 3)])

    def test_indeterminate_write_may_apply_late(self):
        # The write timed out at t=5 but its effect shows up at t=50.
        self.ok([W(0, 1, "a", 1), W(2, 5, "x", type="info"), R(10, 11, "a", 1),
                 R(50, 51, "x", 2), W(60, 61, "c", 3)])

    def test_indeterminate_write_may_never_apply(self):
        self.ok([W(0, 1, "a", 1), W(2, 5, "x", type="info"), R(10, 11, "a", 1),
                 W(60, 61, "c", 2), R(62, 63, "c", 2)])

    def test_indeterminate_write_cannot_apply_before_invoke(self):
        self.bad([W(0, 1, "a", 1), R(2, 3, "x", 2), W(10, 11, "x", type="info")])

    def test_failed_write_never_applies(self):
        # A definite failure (CAS_MISMATCH) must not be visible.
        self.bad([W(0, 1, "a", 1), CAS(2, 3, 0, "z", type="fail", error="CAS_MISMATCH"),
                  R(4, 5, "z", 2)])

    def test_cas_mismatch_must_be_justified(self):
        self.ok([W(0, 1, "a", 1), CAS(2, 3, 0, "z", type="fail", error="CAS_MISMATCH")])
        self.bad([W(0, 1, "a", 1), CAS(2, 3, 1, "z", type="fail", error="CAS_MISMATCH"),
                  R(4, 5, "a", 1)])

    def test_absent_then_present(self):
        self.ok([R(0, 1, None, 0), CAS(2, 3, 0, "a", 1), R(4, 5, "a", 1)])
        self.bad([CAS(2, 3, 0, "a", 1), R(4, 5, None, 0)])

    def test_keys_are_independent(self):
        self.ok([W(0, 1, "a", 1, key="k1"), W(0, 1, "a", 1, key="k2"),
                 R(2, 3, "a", 1, key="k1"), R(2, 3, "a", 1, key="k2")])

    def test_random_linearizable_histories_are_accepted(self):
        """Histories generated from a real sequential execution with overlapping
        windows (each op takes effect inside its window) must pass."""
        rnd = random.Random(7)
        for trial in range(30):
            t, state, h, procs_free = 0.0, (0, None), [], [0.0] * 5
            for i in range(60):
                p = rnd.randrange(5)
                inv = max(procs_free[p], t - rnd.uniform(0, 5))
                t = max(t, inv) + rnd.uniform(0.1, 1)  # linearization point
                comp = t + rnd.uniform(0, 5)
                procs_free[p] = comp
                kind = rnd.choice(["r", "w", "c", "i"])
                if kind == "r":
                    h.append(R(inv, comp, state[1], state[0]))
                elif kind == "w":
                    state = (state[0] + 1, "v%d" % i)
                    h.append(W(inv, comp, state[1], state[0]))
                elif kind == "c":
                    exp = state[0] if rnd.random() < 0.7 else state[0] + 1
                    if exp == state[0]:
                        state = (state[0] + 1, "v%d" % i)
                        h.append(CAS(inv, comp, exp, state[1], state[0]))
                    else:
                        h.append(CAS(inv, comp, exp, "v%d" % i, type="fail",
                                     error="CAS_MISMATCH"))
                else:  # indeterminate, applied half the time
                    if rnd.random() < 0.5:
                        state = (state[0] + 1, "v%d" % i)
                    h.append(W(inv, comp, "v%d" % i, type="info"))
            r = checker.check_register(h)
            self.assertTrue(r["valid"], (trial, r))


class Expiry(unittest.TestCase):
    def hist(self, read_at, renew=None):
        h = [dict(f="grant", invoke=0, complete=5, type="ok", lease_id="L", expire_at_ms=2000,
                  process=0),
             dict(f="put", invoke=6, complete=9, type="ok", lease_id="L", path="p", process=0)]
        if renew:
            h.append(dict(f="renew", invoke=renew[0], complete=renew[0] + 3, type="ok",
                          lease_id="L", expire_at_ms=renew[1], process=0))
        h.append(dict(f="get", invoke=read_at, complete=read_at + 3, type="ok", lease_id="L",
                      path="p", process=0))
        return h

    def final(self, exp=2000, state="revoked"):
        return {"L": {"lookup": {"state": state, "expire_at_ms": exp}, "get_error": "NOT_FOUND"}}

    def test_good(self):
        r = checker.check_expiry(self.hist(1000), {"L": 2050}, self.final())
        self.assertTrue(r["valid"], r)
        self.assertEqual(r["stats"]["lateness_ms"]["max"], 50)

    def test_expired_read_flagged(self):
        r = checker.check_expiry(self.hist(2100), {"L": 2050}, self.final())
        self.assertFalse(r["valid"])
        self.assertEqual(r["anomalies"][0]["kind"], "expired-read")

    def test_read_in_skew_margin_flagged_without_clock_faults(self):
        r = checker.check_expiry(self.hist(1700), {"L": 2050}, self.final())
        self.assertEqual([a["kind"] for a in r["anomalies"]], ["read-within-skew-margin"])
        # The node's clock was 400 ms behind: it saw 1300 + 500 < 2000 and rightly served.
        r = checker.check_expiry(self.hist(1700), {"L": 2050}, self.final(),
                                 clock_offset=lambda node, t0, t1: -400)
        self.assertTrue(r["valid"], r)
        self.assertTrue(r["warnings"])
        # 100 ms behind is not enough to excuse it.
        r = checker.check_expiry(self.hist(1700), {"L": 2050}, self.final(),
                                 clock_offset=lambda node, t0, t1: -100)
        self.assertFalse(r["valid"])

    def test_renew_extends(self):
        r = checker.check_expiry(self.hist(3000, renew=(1000, 4000)), {"L": 4010},
                                 self.final(4000))
        self.assertTrue(r["valid"], r)

    def test_revoked_before_renewed_expiry_flagged(self):
        r = checker.check_expiry(self.hist(1000, renew=(500, 4000)), {"L": 2050},
                                 self.final(4000))
        self.assertIn("revoked-before-expiry", [a["kind"] for a in r["anomalies"]])

    def test_renew_refused_while_active_flagged(self):
        h = self.hist(1000)
        h.append(dict(f="renew", invoke=1500, complete=1510, type="fail", lease_id="L",
                      error="LEASE_NOT_ACTIVE", process=0))
        r = checker.check_expiry(h, {"L": 2050}, self.final())
        self.assertEqual([a["kind"] for a in r["anomalies"]], ["renew-refused-before-expiry"])
        h[-1].update(invoke=1995, complete=2010)  # raced the expiry: fine
        r = checker.check_expiry(h, {"L": 2050}, self.final())
        self.assertTrue(r["valid"], r)

    def test_secret_missing_while_lease_live_flagged(self):
        h = self.hist(1000)
        h.append(dict(f="get", invoke=1100, complete=1110, type="fail", error="NOT_FOUND",
                      consistency="linearizable", lease_id="L", path="p", process=0))
        h[1]["value"] = "x"
        h[2].update(result="x", consistency="linearizable")
        r = checker.check_expiry(h, {"L": 2050}, self.final())
        self.assertEqual([a["kind"] for a in r["anomalies"]], ["secret-missing"])
        h[-1]["consistency"] = "stale"  # a lagging node may not have it yet
        self.assertTrue(checker.check_expiry(h, {"L": 2050}, self.final())["valid"])
        h[2]["result"] = "y"
        r = checker.check_expiry(h, {"L": 2050}, self.final())
        self.assertEqual([a["kind"] for a in r["anomalies"]], ["wrong-secret"])

    def test_late_and_missing_revocation_flagged(self):
        r = checker.check_expiry(self.hist(1000), {"L": 5000}, self.final(), bound_ms=2000)
        self.assertEqual([a["kind"] for a in r["anomalies"]], ["revoked-late"])
        r = checker.check_expiry(self.hist(1000), {}, self.final(state="active"))
        self.assertEqual([a["kind"] for a in r["anomalies"]], ["not-revoked"])

    def test_surviving_secret_flagged(self):
        f = self.final()
        f["L"]["get_error"] = None
        r = checker.check_expiry(self.hist(1000), {"L": 2050}, f)
        self.assertEqual([a["kind"] for a in r["anomalies"]], ["bound-secret-survived"])


if __name__ == "__main__":
    unittest.main()

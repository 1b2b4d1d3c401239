"""Checkers for mayfly chaos histories (Python 3, stdlib only).

A history is a list of operations (dicts). Every operation has:
  process   the client worker that ran it
  f         what it did ("read", "write", "cas", "grant", "put", "renew", "get", "lookup")
  invoke    client wall clock (ms, float) just before the CLI was started
  complete  client wall clock (ms) when the CLI exited
  type      "ok" | "fail" | "info"   (info = indeterminate: may or may not have happened)
and f-specific fields (key, value, expect, version, lease_id, expire_at_ms, ...).

1. check_register(): linearizability of a multi-register with versions. Keys are
   independent (P-compositionality), so each key is checked on its own with a
   Wing & Gong search, Lowe's memoisation of (linearized set, model state) and a
   state budget. Indeterminate writes may take effect at any point after their
   invocation, or never.

2. check_expiry(): the lease workload (guarantees 3 and 4 of DESIGN.md).
"""
import bisect
import statistics

INF = float("inf")


# ---------------------------------------------------------------------------
# Linearizability: multi-register with versions.
#
# Model state of one key: (version, value); (0, None) = absent.
#   read   ok: result (version, value) must equal the state
#   write  ok: the state becomes (v + 1, value); the answer's version must be v + 1
#   cas    ok: requires v == expect; becomes (expect + 1, value); answer version = expect + 1
#   casfail  (CAS_MISMATCH, definite): requires v != expect; no change
#   write/cas info: optional; same effect as above when it happens (no answer to check)
# Failed reads and definitely failed writes are dropped (no effect).
# ---------------------------------------------------------------------------

def _step(state, op):
    ver, val = state
    k = op["kind"]
    if k == "read":
        return state if (ver, val) == op["read"] else None
    if k == "write":
        if op["ver"] is not None and op["ver"] != ver + 1:
            return None
        return (ver + 1, op["value"])
    if k == "cas":
        if ver != op["expect"]:
            return None
        if op["ver"] is not None and op["ver"] != ver + 1:
            return None
        return (ver + 1, op["value"])
    if k == "casfail":
        return state if ver != op["expect"] else None
    raise ValueError(k)


def _prepare_key_ops(ops):
    """History ops of one key -> checker ops (sorted by invoke)."""
    out = []
    for o in ops:
        t, f = o["type"], o["f"]
        c = dict(id=o.get("id"), invoke=o["invoke"], complete=o["complete"], src=o)
        if f == "read":
            if t != "ok":
                continue
            c.update(kind="read", read=(o.get("version") or 0, o.get("result")), optional=False)
        elif f == "write":
            if t == "fail":
                continue
            c.update(kind="write", value=o["value"], optional=(t == "info"),
                     ver=o.get("version") if t == "ok" else None)
        elif f == "cas":
            if t == "fail":
                if o.get("error") != "CAS_MISMATCH":
                    continue
                c.update(kind="casfail", expect=o["expect"], optional=False)
            else:
                c.update(kind="cas", expect=o["expect"], value=o["value"],
                         optional=(t == "info"), ver=o.get("version") if t == "ok" else None)
        else:
            continue
        if c["optional"]:
            c["complete"] = INF
        out.append(c)
    out.sort(key=lambda c: c["invoke"])
    return out


def check_linearizable(ops, init=(0, None), max_states=2_000_000):
    """Checks one key. Returns dict(valid=True|False|None, states, ...).

    valid None means the state budget ran out (inconclusive)."""
    ops = _prepare_key_ops(ops)
    n = len(ops)
    invokes = [o["invoke"] for o in ops]
    required = [i for i in range(n) if not ops[i]["optional"]]
    req_mask = 0
    for i in required:
        req_mask |= 1 << i
    by_complete = sorted(required, key=lambda i: ops[i]["complete"])

    seen = set()
    stack = [(0, init)]
    seen.add((0, init))
    best = (0, 0, init)  # (linearized required count, mask, state) deepest
    states = 0
    while stack:
        mask, state = stack.pop()
        states += 1
        if states > max_states:
            return dict(valid=None, states=states, ops=n)
        if mask & req_mask == req_mask:
            return dict(valid=True, states=states, ops=n)
        # earliest completion among unlinearized required ops
        min_c = INF
        for i in by_complete:
            if not (mask >> i) & 1:
                min_c = ops[i]["complete"]
                break
        done = bin(mask & req_mask).count("1")
        if done > best[0]:
            best = (done, mask, state)
        limit = bisect.bisect_right(invokes, min_c)
        cand = ~mask & ((1 << limit) - 1)
        while cand:
            low = cand & -cand
            i = low.bit_length() - 1
            cand ^= low
            ns = _step(state, ops[i])
            if ns is None:
                continue
            key = (mask | low, ns)
            if key not in seen:
                seen.add(key)
                stack.append(key)
    # Not linearizable: explain from the deepest point reached.
    done, mask, state = best
    pending = [ops[i] for i in range(n) if not (mask >> i) & 1 and not ops[i]["optional"]]
    pending.sort(key=lambda o: o["complete"])
    stuck = pending[0] if pending else None
    window = []
    if stuck:
        window = [ops[i]["src"] for i in range(n)
                  if ops[i]["invoke"] <= stuck["complete"] and ops[i]["complete"] >= stuck["invoke"] - 2000]
    return dict(valid=False, states=states, ops=n, linearized=done, state=state,
                stuck=stuck["src"] if stuck else None, window=window)


def check_register(history, max_states=2_000_000):
    """Per-key linearizability over the register workload history."""
    keys = {}
    for o in history:
        if o["f"] in ("read", "write", "cas"):
            keys.setdefault(o["key"], []).append(o)
    results = {}
    for k in sorted(keys):
        results[k] = check_linearizable(keys[k], max_states=max_states)
    anomalies = []
    for k, r in results.items():
        if r["valid"] is False:
            anomalies.append(dict(kind="non-linearizable", key=k, state_at_stuck=r["state"],
                                  stuck=r["stuck"], window=r["window"]))
    return dict(valid=not anomalies and all(r["valid"] for r in results.values()),
                inconclusive=[k for k, r in results.items() if r["valid"] is None],
                per_key={k: dict(valid=r["valid"], ops=r["ops"], states=r["states"])
                         for k, r in results.items()},
                anomalies=anomalies)


# ---------------------------------------------------------------------------
# Expiry checker (lease workload).
# ---------------------------------------------------------------------------

def _pct(xs, p):
    if not xs:
        return None
    xs = sorted(xs)
    k = min(len(xs) - 1, max(0, int(round(p / 100.0 * len(xs) + 0.5)) - 1))
    return xs[k]


def clock_offsets(timeline):
    """clock_offset(node, t0, t1): the smallest clock offset (ms) the nemesis gave node
    at any time in [t0, t1] (a node restarted under a new clock mid-read may answer
    it), or None if the node was being restarted under a new clock then."""
    def offset_at(node, t):
        off = 0
        for e in timeline:
            if e["t"] > t:
                break
            if e["what"] == "start" and e.get("node") == node:
                off = e.get("clock_offset_ms", 0)
            elif e["what"] == "skew" and e.get("node") == node:
                off = None
        return off

    def clock_offset(node, t0, t1):
        offs = [offset_at(node, t0)] + [offset_at(node, e["t"]) for e in timeline
                                        if t0 < e["t"] <= t1 and e.get("node") == node]
        return None if None in offs else min(offs)
    return clock_offset


def check_expiry(history, revoked_seen, final, skew_ms=500, bound_ms=None,
                 clock_faults=False, revoke_tolerance_ms=0, clock_offset=None):
    """history: lease workload ops; revoked_seen: {lease_id: first client time (ms) a
    node answered it revoked} (the watcher's; an upper bound on the revocation time);
    final: {lease_id: {"lookup": lookup answer or None, "get_error": code or None}}.

    Checks
      1 no-expired-read: no ok read of a lease-bound secret invoked at or after the
        lease's expire_at (the largest expire_at the lease could have had by then:
        grant/renew answers, lookups, and the final expire_at when an indeterminate
        renew could have applied). Reads invoked within the skew margin
        (expire_at - skew <= invoke) must also have been refused, since every node
        refuses when local_now + skew >= expire_at: anomalies unless clocks were
        skewed by the nemesis (then warnings).
      2 revoked-in-time: every granted lease ends revoked, first seen revoked no
        later than expire_at + bound; lateness p50/p99/max.
      3 renew-honoured: no lease seen revoked before the expire_at of an ok grant or
        renew answer (minus revoke_tolerance_ms), and no renew succeeded after the
        lease was seen revoked, and no renew was refused as not active although it
        completed before the lease's expire_at.
      4 bound secrets destroyed: the KV entry bound to each lease is gone at the end.
      5 a linearizable read invoked after the acknowledged put and completed before the
        lease could have ended returns the value put (not NOT_FOUND, not another value).
    """
    if bound_ms is None:
        bound_ms = 1500 + skew_ms
    leases = {}
    for o in history:
        lid = o.get("lease_id")
        if not lid:
            continue
        L = leases.setdefault(lid, dict(ok_expiries=[], renew_infos=[], lookups=[], reads=[],
                                        renews_ok=[], renews_refused=[], path=None))
        if o["f"] == "grant" and o["type"] == "ok":
            L["ok_expiries"].append((o["invoke"], o["expire_at_ms"], o))
        elif o["f"] == "renew":
            if o["type"] == "ok":
                L["ok_expiries"].append((o["invoke"], o["expire_at_ms"], o))
                L["renews_ok"].append(o)
            elif o["type"] == "info":
                L["renew_infos"].append(o)
            elif o.get("error") in ("LEASE_NOT_ACTIVE", "LEASE_EXPIRED"):
                L["renews_refused"].append(o)
        elif o["f"] == "put" and o["type"] in ("ok", "info"):
            L["path"] = o["path"]
            if o["type"] == "ok":
                L["put_ok"] = o
        elif o["f"] == "lookup" and o["type"] == "ok" and o.get("expire_at_ms"):
            L["lookups"].append((o["invoke"], o["expire_at_ms"], o))
        elif o["f"] == "get":
            L["reads"].append(o)

    anomalies, warnings = [], []
    stats = dict(leases=sum(1 for L in leases.values() if L["ok_expiries"]),
                 leases_seen_from_indeterminate_grants=sum(1 for L in leases.values()
                                                           if not L["ok_expiries"]),
                 reads_ok=0, reads_refused=0, reads_late_delivery=0,
                 margin_reads=0)
    lateness = []
    for lid, L in sorted(leases.items()):
        fin = (final.get(lid) or {}).get("lookup") or {}
        final_exp = fin.get("expire_at_ms")
        known = L["ok_expiries"] + L["lookups"]

        def expiry_at(t):
            """Largest expire_at the lease could have had at client time t."""
            e = max([x[1] for x in known if x[0] < t] or [0])
            if final_exp and any(r["invoke"] < t for r in L["renew_infos"]):
                e = max(e, final_exp)
            return e or None

        # (1) no expired read
        put = L.get("put_ok")
        for r in L["reads"]:
            # (5) a linearizable read after the acknowledged put, finished before the lease
            # could have ended, must return the secret that was put.
            if (put and r.get("consistency") == "linearizable" and r["invoke"] > put["complete"]):
                e = expiry_at(r["invoke"])
                live = e is not None and r["complete"] < e - revoke_tolerance_ms
                if live and r["type"] == "fail" and r.get("error") == "NOT_FOUND":
                    anomalies.append(dict(kind="secret-missing", lease_id=lid, expire_at_ms=e,
                                          put=put, op=r))
                if r["type"] == "ok" and r.get("result") != put["value"]:
                    anomalies.append(dict(kind="wrong-secret", lease_id=lid, put=put, op=r))
            if r["type"] != "ok":
                if r["type"] == "fail":
                    stats["reads_refused"] += 1
                continue
            stats["reads_ok"] += 1
            e = expiry_at(r["complete"])
            if e is None:
                continue
            if r["invoke"] >= e:
                anomalies.append(dict(kind="expired-read", lease_id=lid, expire_at_ms=e,
                                      after_ms=round(r["invoke"] - e, 1), op=r))
            elif r["invoke"] >= e - skew_ms:
                # The serving node's clock read at least invoke + its offset (0 unless
                # the nemesis skewed it): it had to refuse if that + skew >= expire_at.
                node = (r.get("read") or {}).get("node") or r.get("node")
                off = clock_offset(node, r["invoke"], r["complete"]) if clock_offset else 0
                stats["margin_reads"] += 1
                d = dict(kind="read-within-skew-margin", lease_id=lid, expire_at_ms=e,
                         before_expiry_ms=round(e - r["invoke"], 1), node_clock_offset_ms=off,
                         op=r)
                if off is not None and r["invoke"] + off + skew_ms >= e:
                    anomalies.append(d)
                else:
                    warnings.append(d)
            if r["complete"] >= e:
                stats["reads_late_delivery"] += 1
        # (3) renew honoured
        seen = revoked_seen.get(lid)
        ok_exp = [x for x in L["ok_expiries"]]
        if seen is not None:
            for inv, e, o in ok_exp:
                if seen < e - revoke_tolerance_ms:
                    anomalies.append(dict(kind="revoked-before-expiry", lease_id=lid,
                                          expire_at_ms=e, seen_revoked_ms=seen,
                                          early_ms=round(e - seen, 1), op=o))
            for o in L["renews_ok"]:
                if o["invoke"] > seen:
                    anomalies.append(dict(kind="renew-after-revoke", lease_id=lid,
                                          seen_revoked_ms=seen, op=o))
        for o in L["renews_refused"]:
            e = expiry_at(o["invoke"])
            if e and o["complete"] < e - revoke_tolerance_ms:
                anomalies.append(dict(kind="renew-refused-before-expiry", lease_id=lid,
                                      expire_at_ms=e, op=o))
        # (2) revoked in time
        if not L["ok_expiries"]:
            continue  # indeterminate grant: nothing promised
        state = fin.get("state")
        if state != "revoked":
            anomalies.append(dict(kind="not-revoked", lease_id=lid, final_state=state,
                                  final=fin or (final.get(lid) or {})))
            continue
        exp = final_exp or max(x[1] for x in known)
        if seen is None:
            warnings.append(dict(kind="revocation-not-observed-by-watcher", lease_id=lid))
        else:
            late = seen - exp
            lateness.append(late)
            if late > bound_ms:
                anomalies.append(dict(kind="revoked-late", lease_id=lid, expire_at_ms=exp,
                                      seen_revoked_ms=seen, late_ms=round(late, 1),
                                      bound_ms=bound_ms))
        # (4) bound secret destroyed
        if L["path"]:
            ge = (final.get(lid) or {}).get("get_error")
            if ge not in ("NOT_FOUND",):
                anomalies.append(dict(kind="bound-secret-survived", lease_id=lid,
                                      path=L["path"], final_get=ge))
    if lateness:
        stats["lateness_ms"] = dict(n=len(lateness), p50=round(_pct(lateness, 50), 1),
                                    p99=round(_pct(lateness, 99), 1),
                                    max=round(max(lateness), 1),
                                    mean=round(statistics.mean(lateness), 1))
    return dict(valid=not anomalies, anomalies=anomalies, warnings=warnings, stats=stats)

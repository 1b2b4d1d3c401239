"""Re-runs the checker on a saved run: python3 -m jepsen.check RESULTS_DIR

Reads history.jsonl and report.json (for the run's options and fault timeline)
and prints the checker's verdict; exit 0 valid, 1 anomalies, 3 inconclusive."""
import json
import os
import sys

from jepsen import checker


def main(d):
    ops = [json.loads(l) for l in open(os.path.join(d, "history.jsonl"))]
    rep = json.load(open(os.path.join(d, "report.json")))
    args = rep["args"]
    if args["workload"] == "register":
        r = checker.check_register(ops, max_states=args.get("max_states", 2_000_000))
    else:
        seen, final = {}, {}
        for o in sorted(ops, key=lambda o: o["complete"]):
            if o["f"] == "lookup" and o["process"] == "watcher":
                seen.setdefault(o["lease_id"], o["complete"])
            elif o["f"] == "lookup" and o["process"] == "final":
                final.setdefault(o["lease_id"], {})["lookup"] = dict(
                    state=o["state"], expire_at_ms=o["expire_at_ms"])
            elif o["f"] == "final-get":
                final.setdefault(o["lease_id"], {})["get_error"] = o["error"]
        timeline = rep["timeline"]
        faults = any(e["what"] == "skew" for e in timeline)
        r = checker.check_expiry(ops, seen, final, skew_ms=args["skew_ms"],
                                 bound_ms=rep["bound_ms"], clock_faults=faults,
                                 revoke_tolerance_ms=args["skew_ms"] if faults else 0,
                                 clock_offset=checker.clock_offsets(timeline))
    print(json.dumps(dict(valid=r["valid"], stats=r.get("stats"), per_key=r.get("per_key"),
                          anomalies=r["anomalies"][:20]), indent=1, default=str))
    return 0 if r["valid"] else (1 if r["anomalies"] else 3)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))

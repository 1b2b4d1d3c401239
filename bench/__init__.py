"""Benchmark scripts on real clusters. Run from the repository root:
python3 -m bench.lateness, python3 -m bench.storm, python3 -m bench.pg_revoke."""

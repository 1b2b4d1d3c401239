"""The Python test harness: real mayfly clusters on loopback (cluster.py) and
a throwaway PostgreSQL server (pg.py), used by tests/integration, jepsen/ and
bench/.

How it is found: every Python entry point runs as a module from the
repository root (`python3 -m jepsen.run`, `python3 -m bench.storm`,
`python3 -m unittest -v tests.integration.test_cluster`), which puts the root
first on sys.path, so `from tests.harness.cluster import Cluster` works with
the interpreter alone (no pip, no PYTHONPATH, no sys.path edits). ctest, the
shell scripts and the README's commands all run that way."""

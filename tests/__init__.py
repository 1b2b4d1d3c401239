"""mayfly's tests. A Python package so that everything Python in the tree
(tests.integration, jepsen, bench) imports the shared harness as
tests.harness: run it as a module from the repository root, e.g.
`python3 -m unittest -v tests.integration.test_cluster`, and the root is on
the import path with no sys.path edits (see tests/harness/__init__.py)."""

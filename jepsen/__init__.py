"""The chaos tester (see jepsen/README.md). Run from the repository root:
python3 -m jepsen.run, python3 -m jepsen.check, python3 -m jepsen.test_checker."""

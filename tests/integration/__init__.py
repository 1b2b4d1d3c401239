"""Integration tests: real mayflyd processes driven through the CLI.
Run from the repository root: python3 -m unittest -v tests.integration.test_cluster"""

"""Benchmarks: scripts that print a table against references and exit non-zero on a missed bar."""

"""Benchmarks of cot (``make bench``): never collected by the test suite.

Each figure is measured against a reference taken in the same run on the same machine;
``python -m bench`` runs them and prints the table. See docs/performance.md.
"""

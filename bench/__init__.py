"""Benchmarks: `make bench` (or `.venv/bin/python -m bench [section ...]`) measures and writes bench/RESULTS.md.

They report figures beside their targets; they never fail on a slow day. Time them on a quiet machine:
a test suite or a second training run on the same cores changes every figure.
"""

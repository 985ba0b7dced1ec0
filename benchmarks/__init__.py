"""Benchmarks: ``make bench`` (``python -m benchmarks``). Each figure comes with a baseline
measured in the same run, and the ratio between them."""

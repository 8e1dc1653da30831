"""Tests and benchmarks; a package so that `python -m tests.bench.run_bench` works."""

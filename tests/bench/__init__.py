"""Benchmarks: bench_*.py modules with run() -> list[dict]; `python -m tests.bench.run_bench` collects them."""

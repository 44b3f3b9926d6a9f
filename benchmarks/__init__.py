"""The benchmark harness: `python -m benchmarks.run` (or `make bench`); see BENCHMARKS.md."""

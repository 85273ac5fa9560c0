"""Benchmarks: this package vs LiveKit Agents 0.12.21 (`make bench`, `python -m bench.run`)."""

"""Benchmarks of the tap against the loopback Gong stand-in (`python -m bench.run`)."""

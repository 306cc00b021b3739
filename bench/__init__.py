"""ColdCopy's benchmarks: scripts, not tests. `python -m bench` runs them all and writes the
results table to bench/README.md; `python -m bench ack|quota|writer|limiter` runs one part."""

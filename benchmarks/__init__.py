"""Performance suite: prints figures and writes benchmarks/results/latest.json; never a test."""

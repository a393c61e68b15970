"""System benchmarks run by `soma bench ...`: real processes on loopback."""

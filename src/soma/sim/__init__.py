"""Deterministic simulation of a soma network: every validator in one process, on a
virtual clock, over a simulated network. One seed reproduces a run bit for bit."""

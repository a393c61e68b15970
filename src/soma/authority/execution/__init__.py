"""Deterministic execution: a transaction, its input objects and the versions consensus
assigned go in; effects and the objects to write come out. Nothing here reads a clock,
a random source or the store: the caller loads the inputs."""

"""The node: configuration of a local network, and (next) the SomaNode lifecycle."""

"""Consensus wire types: blocks and commits (Mysticeti)."""

"""The Mysticeti commit rule: a base committer per (round offset, leader offset), and the
universal committer that combines them (pipelining, several leaders per round)."""

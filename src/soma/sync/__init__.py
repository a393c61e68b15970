"""State sync: follow the chain of certified commit summaries from peers (docs/state-sync.md)."""

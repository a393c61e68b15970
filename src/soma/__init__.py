"""soma: a Byzantine fault tolerant blockchain node (Mysticeti consensus, Sui-style objects)."""

__version__ = "0.1.0"

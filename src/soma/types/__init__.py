"""Canonical data types: BCS codec, digests, crypto, committee, objects, transactions."""

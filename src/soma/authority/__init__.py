"""A validator's state machine for user transactions: validate, order through
consensus, execute deterministically, sign effects (see docs/authority.md)."""

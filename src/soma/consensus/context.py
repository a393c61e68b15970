"""The per-epoch context every consensus component shares: who we are, the committee,
and the parameters."""

from __future__ import annotations

import dataclasses

from soma.consensus.parameters import ConsensusParameters
from soma.types.committee import Committee


@dataclasses.dataclass(frozen=True)
class Context:
    committee: Committee
    #: Our authority index in the committee.
    own_index: int
    parameters: ConsensusParameters = dataclasses.field(default_factory=ConsensusParameters)

    @property
    def epoch(self) -> int:
        return self.committee.epoch

    @property
    def size(self) -> int:
        return self.committee.size

    def stake(self, authority: int) -> int:
        return self.committee.members[authority].stake

    def name_of(self, authority: int) -> str:
        """How logs name an authority: its hostname (`validator-2`), which an operator
        knows, rather than its index (the committee's order, by key)."""
        if 0 <= authority < self.committee.size:
            hostname = self.committee.members[authority].hostname
            if hostname:
                return hostname
        return f"authority {authority}"

"""The decision about one leader slot."""

from __future__ import annotations

import dataclasses
import enum

from soma.types.consensus.block import SignedBlock, Slot


class Decision(enum.Enum):
    COMMIT = "commit"
    SKIP = "skip"
    UNDECIDED = "undecided"


@dataclasses.dataclass(frozen=True)
class LeaderStatus:
    """A leader slot and what the commit rule says of it. `block` is the committed
    leader block; `direct` tells whether the decision came from the slot's own wave
    (direct rule) or from a later committed leader (indirect rule)."""

    slot: Slot
    decision: Decision
    block: SignedBlock | None = None
    direct: bool = False
    #: Position of this slot among the leaders of its round.
    leader_offset: int = 0

    @property
    def round(self) -> int:
        return self.slot.round

    @property
    def decided(self) -> bool:
        return self.decision is not Decision.UNDECIDED

    @classmethod
    def undecided(cls, slot: Slot, leader_offset: int) -> LeaderStatus:
        return cls(slot, Decision.UNDECIDED, leader_offset=leader_offset)

    def describe(self) -> dict[str, object]:
        """The JSON form `soma dag decide` prints."""
        return {
            "round": self.slot.round,
            "authority": self.slot.authority,
            "status": self.decision.value,
            "decided": None if not self.decided else ("direct" if self.direct else "indirect"),
        }

    def __str__(self) -> str:
        how = "" if not self.decided else (" direct" if self.direct else " indirect")
        return f"{self.decision.value}{how} {self.slot}"

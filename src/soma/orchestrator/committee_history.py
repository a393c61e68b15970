"""The committees a client of the validators knows: the current one, and the last few
before it.

Effects are certified by the committee of the epoch they executed in (their signatures
carry it), so a transaction that executed just before an epoch change is certified by
the old committee even once the new one runs; the client keeps a few past committees
for that, and submits to the current one.
"""

from __future__ import annotations

from soma.types.committee import Committee

#: Past committees kept besides the current one.
KEPT_EPOCHS = 4


class CommitteeHistory:
    def __init__(self, committee: Committee) -> None:
        self.current = committee
        self._by_epoch = {committee.epoch: committee}

    def of(self, epoch: int) -> Committee | None:
        return self._by_epoch.get(epoch)

    def add(self, committee: Committee) -> bool:
        """Learn a committee; a later epoch's becomes the current one. Whether it was
        new."""
        if committee.epoch in self._by_epoch:
            return False
        self._by_epoch[committee.epoch] = committee
        if committee.epoch > self.current.epoch:
            self.current = committee
        for epoch in sorted(self._by_epoch)[: -KEPT_EPOCHS - 1]:
            del self._by_epoch[epoch]
        return True

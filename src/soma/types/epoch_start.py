"""Where an epoch begins, as a node records it when it enters the epoch.

The system state changes within an epoch (joins, leaves and stake changes wait in it for
the next epoch change), so the committee and parameters an epoch runs with are those the
epoch change left: recorded once, at the boundary, next to the global index of the last
commit before the epoch (commits are numbered from 1 in each epoch's consensus and
globally in summaries). The last record says which epoch a node is in on restart.
"""

from __future__ import annotations

from soma.types.bcs import BcsStruct, u64
from soma.types.committee import Committee
from soma.types.system_state import SystemState


class EpochStart(BcsStruct):
    system_state: SystemState
    #: The global index of the last commit of the epochs before this one.
    commit_offset: u64

    @property
    def epoch(self) -> int:
        return self.system_state.epoch

    def committee(self) -> Committee:
        return self.system_state.committee()

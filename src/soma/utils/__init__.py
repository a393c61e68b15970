"""Async coordination helpers shared by the node's components.

* `NotifyOnce`: a one-shot signal ("epoch ended") that late waiters also see;
* `NotifyRead`: wait for keys to be written without missing a racing write;
* `quorum_map_then_reduce_with_timeout`: ask every authority, stop at enough stake.
"""

from soma.utils.agg import (
    Continue,
    Failed,
    ReduceOutput,
    StakeTally,
    StakeThresholdReducer,
    Success,
    quorum_map_then_reduce_with_timeout,
    weighted_shuffle,
)
from soma.utils.notify_once import NotifyOnce
from soma.utils.notify_read import FetchFn, NotifyRead, Registration, Registrations

__all__ = [
    "Continue",
    "Failed",
    "FetchFn",
    "NotifyOnce",
    "NotifyRead",
    "ReduceOutput",
    "Registration",
    "Registrations",
    "StakeTally",
    "StakeThresholdReducer",
    "Success",
    "quorum_map_then_reduce_with_timeout",
    "weighted_shuffle",
]

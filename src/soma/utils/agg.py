"""Quorum map-reduce: ask every authority, stop as soon as enough stake has answered.

This is the primitive behind every "ask the committee" step of a client (collect 2f+1
signatures on a transaction, find f+1 validators that know an object, ...). The shape is
always the same:

* **map**: one request per authority, all started at once, because waiting for slow
  or dead validators one at a time would make the slowest honest one the latency floor;
* **reduce**: fold each answer (or the exception its request raised) into a state, in
  the order the answers arrive, together with the answering authority's stake, and
  decide after each one whether the job is done (`Success`), hopeless (`Failed`) or
  needs more answers (`Continue`);
* **stop early**: on `Success` or `Failed` the outstanding requests are cancelled and
  awaited, so no orphan task keeps a connection busy or logs errors later.

A failing authority is just another answer: the reducer sees the exception and decides
whether the remaining stake can still make it. The whole call has one deadline; when it
passes, `QuorumTimeoutError` carries the partial state.

Authorities are the keys present in *both* `stakes` and `clients`. An authority with
stake but no client is skipped (never asked, never reduced): a node commonly lacks a
client for a validator whose address it could not resolve, and that is better reported
by the reducer's accounting (its stake simply never arrives) than by refusing to ask
everyone else. A client whose authority has no stake entry is ignored as well, since an
answer with no known voting power cannot count towards anything.

Requests are *started* in a stake-weighted random order (heaviest first, on average;
deterministic for a seeded `rng`). All of them are in flight at once anyway; the order
matters for a deterministic test schedule and for spreading load when many clients run
the same query.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeAlias, TypeVar

from soma.types.error import QuorumFailedError, QuorumTimeoutError
from soma.types.weighted_shuffle import weighted_shuffle

__all__ = [
    "Continue",
    "Failed",
    "ReduceOutput",
    "StakeTally",
    "StakeThresholdReducer",
    "Success",
    "quorum_map_then_reduce_with_timeout",
    "weighted_shuffle",
]

K = TypeVar("K", bound=Hashable)
C = TypeVar("C")
R = TypeVar("R")
S = TypeVar("S")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Continue(Generic[S]):
    """Not done yet: keep `state` and wait for the next answer."""

    state: S


@dataclass(frozen=True, slots=True)
class Success(Generic[T]):
    """Done: `result` is what the whole call returns."""

    result: T


@dataclass(frozen=True, slots=True)
class Failed(Generic[S]):
    """Hopeless (e.g. too much stake answered badly): give up with `reason`."""

    state: S
    reason: str


# What a reducer returns after each answer. S is the fold state, T the final result.
ReduceOutput: TypeAlias = Continue[S] | Success[T] | Failed[S]


async def quorum_map_then_reduce_with_timeout(
    stakes: Mapping[K, int],
    clients: Mapping[K, C],
    initial_state: S,
    map_each: Callable[[K, C], Awaitable[R]],
    reduce: Callable[[S, K, int, R | BaseException], ReduceOutput[S, T]],
    timeout: float | None,
    rng: random.Random | None = None,
) -> T:
    """Ask every authority concurrently and fold the answers until the reducer decides.

    * `map_each(name, client)` is the request; whatever it raises (including a
      cancellation from inside it) is handed to the reducer as that authority's answer
      instead of aborting the call. `R` must therefore not itself be an exception type.
    * `reduce(state, name, stake, result_or_exception)` is called once per answer, in
      arrival order, and must be quick and synchronous: it is plain bookkeeping, and an
      await inside it would hold up the processing of answers that already arrived. It
      may mutate and return the same state object. Exceptions it raises propagate.
    * `timeout` (seconds, None for no deadline) bounds the whole call.

    Returns the `Success` result. Raises `QuorumFailedError` (with `.state` and
    `.reason`) when the reducer returns `Failed` or every asked authority answered
    without success, and `QuorumTimeoutError` (with `.state`) when the deadline passes.
    Whatever way the call ends, including cancellation of the caller, every request
    still running is cancelled and awaited before this returns or raises.
    """
    order = [name for name in weighted_shuffle(stakes, rng) if name in clients]
    state = initial_state
    if not order:
        raise QuorumFailedError(
            "no authority to ask: none has both a stake and a client",
            state=state,
            reason="no authorities",
        )

    # Completed tasks are queued by a done-callback, which asyncio runs in completion
    # order; that gives the reducer true arrival order, which `asyncio.wait` (returning
    # unordered sets) would not.
    arrivals: asyncio.Queue[asyncio.Task[R]] = asyncio.Queue()
    tasks: dict[asyncio.Task[R], K] = {}
    for name in order:
        task = asyncio.create_task(_call(map_each, name, clients[name]), name=f"quorum:{name!r}")
        task.add_done_callback(arrivals.put_nowait)
        tasks[task] = name

    deadline = asyncio.timeout(timeout)
    answered = 0
    try:
        try:
            async with deadline:
                for _ in range(len(tasks)):
                    task = await arrivals.get()
                    answered += 1
                    name = tasks[task]
                    answer = _outcome(task)
                    match reduce(state, name, stakes[name], answer):
                        case Continue(state=new_state):
                            state = new_state
                        case Success(result=result):
                            return result
                        case Failed(state=new_state, reason=reason):
                            raise QuorumFailedError(
                                f"quorum failed: {reason}", state=new_state, reason=reason
                            )
                        case other:
                            raise TypeError(
                                f"a reducer must return Continue, Success or Failed, not {other!r}"
                            )
        except TimeoutError:
            if not deadline.expired():
                raise  # a TimeoutError from the reducer itself is not our deadline
            raise QuorumTimeoutError(
                f"quorum not reached within {timeout}s "
                f"({answered}/{len(tasks)} authorities answered)",
                state=state,
            ) from None
        reason = f"all {len(tasks)} authorities answered without reaching success"
        raise QuorumFailedError(f"quorum failed: {reason}", state=state, reason=reason)
    finally:
        await _cancel_and_drain(tasks)


async def _call(map_each: Callable[[K, C], Awaitable[R]], name: K, client: C) -> R:
    # Calling `map_each` inside the task means a synchronous raise (e.g. a client that
    # fails before returning its awaitable) is captured like any other failure, and an
    # arbitrary awaitable (not only a coroutine) is accepted.
    return await map_each(name, client)


def _outcome(task: asyncio.Task[R]) -> R | BaseException:
    if task.cancelled():
        # Only a cancellation from inside `map_each` can get here: ours happen after
        # the reduce loop has ended.
        return asyncio.CancelledError(f"request to {task.get_name()} was cancelled")
    exc = task.exception()
    return task.result() if exc is None else exc


async def _cancel_and_drain(tasks: Mapping[asyncio.Task[R], object]) -> None:
    """Cancel every unfinished task and wait until all of them have finished.

    Leaving before they finish would leak them (and their sockets), so a second
    cancellation of the caller during the drain is remembered and re-raised only once
    the drain is complete, as `asyncio.TaskGroup` does. A request that ignores
    cancellation therefore delays the caller; requests must honour cancellation.
    """
    pending = {t for t in tasks if not t.done()}
    for t in pending:
        t.cancel()
    cancelled_again = False
    while pending:
        try:
            _, pending = await asyncio.wait(pending)
        except asyncio.CancelledError:
            cancelled_again = True
    for t in tasks:
        # Mark late failures as retrieved so asyncio does not log "Task exception was
        # never retrieved" for answers we deliberately stopped listening to.
        if not t.cancelled():
            t.exception()
    if cancelled_again:
        raise asyncio.CancelledError


@dataclass(slots=True)
class StakeTally(Generic[K, R]):
    """State of `StakeThresholdReducer`: who answered what, and the stake on each side.

    `accepted` holds answers that satisfied the predicate, `rejected` the others
    (including exceptions), so a caller can report the bad answers after a failure.
    """

    accepted: dict[K, R] = field(default_factory=dict)
    rejected: dict[K, R | BaseException] = field(default_factory=dict)
    accepted_stake: int = 0
    rejected_stake: int = 0


class StakeThresholdReducer(Generic[K, R]):
    """Reducer for the common case "succeed once good answers carry `threshold` stake".

    An answer is good when it is not an exception and `accept(answer)` is true. The
    reducer succeeds (returning the tally) as soon as good stake reaches `threshold`,
    and fails as soon as it no longer can: when the stake that has not answered badly,
    `total_stake - rejected_stake` (= good so far + not yet answered), is below the
    threshold. Pass the committee's total stake; authorities that are skipped for lack
    of a client still count in it, and the map-reduce fails once all others answered.

    Typical use, collecting 2f+1 signatures::

        reducer = StakeThresholdReducer[AuthorityName, Signed](
            committee.quorum_threshold, committee.total_stake, accept=is_valid
        )
        tally = await quorum_map_then_reduce_with_timeout(
            stakes, clients, reducer.initial_state(), ask, reducer, timeout=5.0
        )
    """

    __slots__ = ("_accept", "threshold", "total_stake")

    def __init__(
        self,
        threshold: int,
        total_stake: int,
        accept: Callable[[R], bool] | None = None,
    ) -> None:
        if threshold <= 0:
            raise ValueError(f"threshold must be positive, got {threshold}")
        self.threshold = threshold
        self.total_stake = total_stake
        self._accept = accept

    def initial_state(self) -> StakeTally[K, R]:
        """A fresh, empty tally (the reducer mutates it)."""
        return StakeTally()

    def __call__(
        self, state: StakeTally[K, R], name: K, stake: int, answer: R | BaseException
    ) -> ReduceOutput[StakeTally[K, R], StakeTally[K, R]]:
        if name in state.accepted or name in state.rejected:
            return Continue(state)  # an authority's stake counts once
        if not isinstance(answer, BaseException) and (self._accept is None or self._accept(answer)):
            state.accepted[name] = answer
            state.accepted_stake += stake
            if state.accepted_stake >= self.threshold:
                return Success(state)
        else:
            state.rejected[name] = answer
            state.rejected_stake += stake
            if self.total_stake - state.rejected_stake < self.threshold:
                return Failed(
                    state,
                    f"{state.rejected_stake} of {self.total_stake} stake answered badly; "
                    f"{self.threshold} is no longer reachable",
                )
        return Continue(state)

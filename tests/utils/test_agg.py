"""Quorum map-reduce: early success, failure accounting, timeouts, and no leaked tasks."""

from __future__ import annotations

import asyncio
import gc
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from soma.types.error import QuorumFailedError, QuorumTimeoutError
from soma.utils import (
    Continue,
    Failed,
    ReduceOutput,
    StakeTally,
    StakeThresholdReducer,
    Success,
    quorum_map_then_reduce_with_timeout,
    weighted_shuffle,
)

SLOW = 10.0  # seconds; anything sleeping this long must be cancelled, never awaited


def quorum_threshold(total: int) -> int:
    return 2 * total // 3 + 1


class FakeAuthority:
    """A client handle whose answer, latency and failure mode the test chooses."""

    def __init__(
        self, name: str, answer: str = "ok", delay: float = 0.0, error: Exception | None = None
    ) -> None:
        self.name = name
        self.answer = answer
        self.delay = delay
        self.error = error
        self.started = False
        self.finished = False
        self.cancelled = False

    async def ask(self) -> str:
        self.started = True
        try:
            await asyncio.sleep(self.delay)
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        self.finished = True
        if self.error is not None:
            raise self.error
        return self.answer


def ask(name: str, client: FakeAuthority) -> Awaitable[str]:
    return client.ask()


def committee(*authorities: FakeAuthority) -> tuple[dict[str, int], dict[str, FakeAuthority]]:
    return {a.name: 1 for a in authorities}, {a.name: a for a in authorities}


def assert_no_other_tasks() -> None:
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def run_threshold(
    stakes: dict[str, int],
    clients: dict[str, FakeAuthority],
    threshold: int | None = None,
    timeout: float = 0.5,
    accept: Callable[[str], bool] | None = None,
) -> StakeTally[str, str]:
    total = sum(stakes.values())
    reducer = StakeThresholdReducer[str, str](
        quorum_threshold(total) if threshold is None else threshold, total, accept
    )
    return await quorum_map_then_reduce_with_timeout(
        stakes, clients, reducer.initial_state(), ask, reducer, timeout, random.Random(0)
    )


# --- success and cancellation of stragglers -------------------------------------------


async def test_success_at_quorum_cancels_slow_stragglers() -> None:
    a, b, c = FakeAuthority("a"), FakeAuthority("b"), FakeAuthority("c")
    slow = FakeAuthority("d", delay=SLOW)
    stakes, clients = committee(a, b, c, slow)
    assert quorum_threshold(4) == 3

    start = time.monotonic()
    tally = await run_threshold(stakes, clients)
    assert time.monotonic() - start < 0.5

    assert set(tally.accepted) == {"a", "b", "c"}
    assert tally.accepted_stake == 3
    assert slow.started and slow.cancelled and not slow.finished
    assert_no_other_tasks()


async def test_two_of_four_is_not_a_quorum() -> None:
    # Stakes 1,1,1,1: quorum is 3, so two fast answers plus two silent ones time out.
    stakes, clients = committee(
        FakeAuthority("a"),
        FakeAuthority("b"),
        FakeAuthority("c", delay=SLOW),
        FakeAuthority("d", delay=SLOW),
    )
    with pytest.raises(QuorumTimeoutError) as info:
        await run_threshold(stakes, clients, timeout=0.05)
    tally = info.value.state
    assert isinstance(tally, StakeTally)
    assert tally.accepted_stake == 2
    assert set(tally.accepted) == {"a", "b"}
    assert_no_other_tasks()


async def test_stake_weighted_success() -> None:
    # Total 8, quorum floor(16/3)+1 = 6: the heavy authority plus one light one suffice.
    heavy, light = FakeAuthority("heavy"), FakeAuthority("light", delay=0.005)
    others = [FakeAuthority(n, delay=SLOW) for n in ("x", "y")]
    stakes = {"heavy": 5, "light": 1, "x": 1, "y": 1}
    clients = {a.name: a for a in [heavy, light, *others]}
    tally = await run_threshold(stakes, clients)
    assert tally.accepted_stake == 6
    assert set(tally.accepted) == {"heavy", "light"}
    assert all(o.cancelled for o in others)
    assert_no_other_tasks()


async def test_results_reach_reducer_in_arrival_order_with_stake() -> None:
    delays = {"a": 0.03, "b": 0.0, "c": 0.01, "d": 0.02}
    stakes = {"a": 4, "b": 3, "c": 2, "d": 1}
    clients = {n: FakeAuthority(n, answer=n.upper(), delay=d) for n, d in delays.items()}
    seen: list[tuple[str, int, str | BaseException]] = []

    def record(
        state: int, name: str, stake: int, answer: str | BaseException
    ) -> ReduceOutput[int, list[tuple[str, int, str | BaseException]]]:
        seen.append((name, stake, answer))
        return Continue(state + 1) if state + 1 < len(stakes) else Success(list(seen))

    result = await quorum_map_then_reduce_with_timeout(
        stakes, clients, 0, ask, record, 0.5, random.Random(1)
    )
    assert result == [("b", 3, "B"), ("c", 2, "C"), ("d", 1, "D"), ("a", 4, "A")]


async def test_no_deadline() -> None:
    stakes, clients = committee(*(FakeAuthority(n) for n in "abcd"))
    reducer = StakeThresholdReducer[str, str](3, 4)
    tally = await quorum_map_then_reduce_with_timeout(
        stakes, clients, reducer.initial_state(), ask, reducer, None
    )
    assert tally.accepted_stake == 3


# --- failures ------------------------------------------------------------------------


async def test_raising_authority_is_counted_as_a_failure_not_an_abort() -> None:
    boom = RuntimeError("connection refused")
    bad = FakeAuthority("bad", error=boom)
    good = [FakeAuthority(n, delay=0.005) for n in "abc"]
    stakes, clients = committee(bad, *good)
    tally = await run_threshold(stakes, clients)
    assert tally.rejected == {"bad": boom}
    assert tally.rejected_stake == 1
    assert tally.accepted_stake == 3


async def test_synchronous_raise_in_map_each_is_a_failure() -> None:
    stakes, clients = committee(*(FakeAuthority(n) for n in "abcd"))

    def flaky(name: str, client: FakeAuthority) -> Awaitable[str]:
        if name == "a":
            raise ConnectionError("no route")
        return client.ask()

    reducer = StakeThresholdReducer[str, str](4, 4)
    with pytest.raises(QuorumFailedError) as info:
        await quorum_map_then_reduce_with_timeout(
            stakes, clients, reducer.initial_state(), flaky, reducer, 0.5
        )
    tally = info.value.state
    assert isinstance(tally, StakeTally)
    assert isinstance(tally.rejected["a"], ConnectionError)


async def test_fails_fast_when_too_much_stake_fails() -> None:
    # Quorum 3 of 4: after two failures only 2 stake can still answer well.
    failing = [FakeAuthority(n, error=ValueError(n)) for n in "ab"]
    slow = [FakeAuthority(n, delay=SLOW) for n in "cd"]
    stakes, clients = committee(*failing, *slow)
    start = time.monotonic()
    with pytest.raises(QuorumFailedError) as info:
        await run_threshold(stakes, clients)
    assert time.monotonic() - start < 0.5
    err = info.value
    assert err.code == "QUORUM_FAILED"
    assert "no longer reachable" in err.reason
    assert isinstance(err.state, StakeTally)
    assert err.state.rejected_stake == 2
    assert set(err.state.rejected) == {"a", "b"}
    assert all(s.cancelled for s in slow)
    assert_no_other_tasks()


async def test_predicate_rejects_wrong_answers() -> None:
    authorities = [
        FakeAuthority("a", answer="yes"),
        FakeAuthority("b", answer="no"),
        FakeAuthority("c", answer="no"),
        FakeAuthority("d", answer="yes", delay=SLOW),
    ]
    stakes, clients = committee(*authorities)
    with pytest.raises(QuorumFailedError) as info:
        await run_threshold(stakes, clients, accept=lambda answer: answer == "yes")
    assert isinstance(info.value.state, StakeTally)
    assert info.value.state.rejected == {"b": "no", "c": "no"}
    assert authorities[3].cancelled


async def test_every_authority_answered_without_success() -> None:
    stakes, clients = committee(*(FakeAuthority(n) for n in "abc"))

    def never_satisfied(state: int, name: str, stake: int, answer: object) -> Continue[int]:
        return Continue(state + stake)

    with pytest.raises(QuorumFailedError) as info:
        await quorum_map_then_reduce_with_timeout(stakes, clients, 0, ask, never_satisfied, 0.5)
    assert info.value.state == 3
    assert "all 3 authorities answered" in info.value.reason


async def test_reducer_failed_carries_state_and_reason() -> None:
    stakes, clients = committee(FakeAuthority("a"), FakeAuthority("b", delay=SLOW))

    def give_up(state: str, name: str, stake: int, answer: object) -> Failed[str]:
        return Failed(state + name, "saw enough")

    with pytest.raises(QuorumFailedError) as info:
        await quorum_map_then_reduce_with_timeout(stakes, clients, "s:", ask, give_up, 0.5)
    assert info.value.state == "s:a"
    assert info.value.reason == "saw enough"
    assert "saw enough" in str(info.value)
    assert clients["b"].cancelled
    assert_no_other_tasks()


async def test_reducer_exception_propagates_and_cleans_up() -> None:
    stakes, clients = committee(FakeAuthority("a"), FakeAuthority("b", delay=SLOW))

    def buggy(state: None, name: str, stake: int, answer: object) -> Continue[None]:
        raise TimeoutError("a reducer bug, not our deadline")

    with pytest.raises(TimeoutError, match="reducer bug"):
        await quorum_map_then_reduce_with_timeout(stakes, clients, None, ask, buggy, 0.5)
    assert clients["b"].cancelled
    assert_no_other_tasks()


# --- timeouts and cancellation -------------------------------------------------------


async def test_overall_timeout_raises_quickly_with_partial_state() -> None:
    stakes, clients = committee(
        FakeAuthority("fast"), *(FakeAuthority(n, delay=SLOW) for n in "abc")
    )
    start = time.monotonic()
    with pytest.raises(QuorumTimeoutError) as info:
        await run_threshold(stakes, clients, timeout=0.05)
    elapsed = time.monotonic() - start
    assert 0.04 <= elapsed < 0.5
    assert info.value.code == "QUORUM_TIMEOUT"
    assert "1/4 authorities answered" in info.value.message
    assert isinstance(info.value.state, StakeTally)
    assert set(info.value.state.accepted) == {"fast"}
    assert all(clients[n].cancelled for n in "abc")
    assert_no_other_tasks()


async def test_caller_cancellation_cancels_every_request() -> None:
    stakes, clients = committee(*(FakeAuthority(n, delay=SLOW) for n in "abcd"))
    call = asyncio.create_task(run_threshold(stakes, clients, timeout=SLOW))
    await asyncio.sleep(0.01)
    assert all(c.started for c in clients.values())
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert all(c.cancelled for c in clients.values())
    assert_no_other_tasks()


async def test_caller_timeout_around_the_call_cancels_every_request() -> None:
    stakes, clients = committee(*(FakeAuthority(n, delay=SLOW) for n in "abcd"))
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.02):
            await run_threshold(stakes, clients, timeout=SLOW)
    assert all(c.cancelled for c in clients.values())
    assert_no_other_tasks()


async def test_repeated_caller_cancellation_still_waits_for_slow_cleanup() -> None:
    # Requests that need a moment to shut down (e.g. closing a stream) are awaited even
    # if the caller is cancelled again while the drain is under way.
    cleaned: list[str] = []

    async def slow_to_die(name: str, client: None) -> str:
        try:
            await asyncio.sleep(SLOW)
        except asyncio.CancelledError:
            await asyncio.sleep(0.02)
            cleaned.append(name)
            raise
        return name

    reducer = StakeThresholdReducer[str, str](3, 4)
    call = asyncio.create_task(
        quorum_map_then_reduce_with_timeout(
            dict.fromkeys("abcd", 1),
            dict.fromkeys("abcd"),
            reducer.initial_state(),
            slow_to_die,
            reducer,
            SLOW,
        )
    )
    await asyncio.sleep(0.005)
    call.cancel()
    await asyncio.sleep(0.005)
    call.cancel()  # a second cancellation while the requests are still cleaning up
    with pytest.raises(asyncio.CancelledError):
        await call
    assert sorted(cleaned) == ["a", "b", "c", "d"]
    assert_no_other_tasks()


async def test_late_failures_are_not_reported_as_unretrieved() -> None:
    # All four fail in the same tick; the reducer stops at the first answer, so three
    # failed requests are finished but never reduced. asyncio must not log them.
    stakes, clients = committee(*(FakeAuthority(n, error=RuntimeError(n)) for n in "abcd"))
    errors: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _loop, context: errors.append(context))

    def first(state: None, name: str, stake: int, answer: object) -> Success[str]:
        return Success(name)

    try:
        winner = await quorum_map_then_reduce_with_timeout(stakes, clients, None, ask, first, 0.5)
        assert all(c.finished for c in clients.values())
        assert winner in stakes
        gc.collect()
        await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(None)
    assert errors == []


# --- which authorities are asked, and in what order -----------------------------------


async def test_authorities_without_client_or_stake_are_skipped() -> None:
    a, b, c = FakeAuthority("a"), FakeAuthority("b"), FakeAuthority("c")
    stray = FakeAuthority("stray")  # a client with no stake entry
    stakes = {"a": 1, "b": 1, "c": 1, "no-client": 1}
    clients = {"a": a, "b": b, "c": c, "stray": stray}
    reducer = StakeThresholdReducer[str, str](3, 4)
    tally = await quorum_map_then_reduce_with_timeout(
        stakes, clients, reducer.initial_state(), ask, reducer, 0.5
    )
    assert set(tally.accepted) == {"a", "b", "c"}
    assert not stray.started

    # Without the stake of the client-less authority the quorum cannot be reached; the
    # call ends as soon as everyone reachable has answered, not at the deadline.
    reducer = StakeThresholdReducer[str, str](4, 4)
    with pytest.raises(QuorumFailedError, match="all 3 authorities answered"):
        await quorum_map_then_reduce_with_timeout(
            stakes, clients, reducer.initial_state(), ask, reducer, SLOW
        )


async def test_nobody_to_ask() -> None:
    reducer = StakeThresholdReducer[str, str](1, 1)
    with pytest.raises(QuorumFailedError, match="no authority to ask"):
        await quorum_map_then_reduce_with_timeout(
            {"a": 1}, {"b": FakeAuthority("b")}, reducer.initial_state(), ask, reducer, 0.5
        )


async def test_start_order_is_deterministic_for_a_seeded_rng() -> None:
    stakes = {f"v{i}": i + 1 for i in range(10)}

    async def run(seed: int) -> list[str]:
        started: list[str] = []

        async def record(name: str, client: None) -> str:
            started.append(name)
            return name

        def take_all(state: int, name: str, stake: int, answer: object) -> ReduceOutput[int, int]:
            return Success(state) if state + 1 == len(stakes) else Continue(state + 1)

        clients = dict.fromkeys(stakes)
        await quorum_map_then_reduce_with_timeout(
            stakes, clients, 0, record, take_all, 0.5, random.Random(seed)
        )
        return started

    first = await run(7)
    assert first == await run(7)
    assert first == weighted_shuffle(stakes, random.Random(7))
    assert sorted(first) == sorted(stakes)
    others = [await run(seed) for seed in range(8, 12)]
    assert any(order != first for order in others)


# --- pieces --------------------------------------------------------------------------


def test_weighted_shuffle_prefers_heavy_stake() -> None:
    stakes = {"heavy": 98, "a": 1, "b": 1}
    firsts = [weighted_shuffle(stakes, random.Random(seed))[0] for seed in range(300)]
    assert firsts.count("heavy") > 250


def test_weighted_shuffle_zero_stake_last_and_negative_rejected() -> None:
    for seed in range(20):
        order = weighted_shuffle({"z1": 0, "a": 1, "z2": 0, "b": 5}, random.Random(seed))
        assert set(order[2:]) == {"z1", "z2"}
    with pytest.raises(ValueError, match="negative stake"):
        weighted_shuffle({"a": -1})
    assert sorted(weighted_shuffle({"x": 1, "y": 2})) == ["x", "y"]  # unseeded works too


def test_stake_threshold_reducer_counts_each_authority_once() -> None:
    reducer = StakeThresholdReducer[str, int](3, 4)
    state = reducer.initial_state()
    out = reducer(state, "a", 2, 1)
    assert out == Continue(state)
    assert reducer(state, "a", 2, 1) == Continue(state)  # a repeat does not count
    assert state.accepted_stake == 2
    out = reducer(state, "b", 1, 1)
    assert isinstance(out, Success)
    assert out.result.accepted == {"a": 1, "b": 1}
    with pytest.raises(ValueError, match="threshold must be positive"):
        StakeThresholdReducer[str, int](0, 4)


async def test_reducer_returning_something_else_is_a_type_error() -> None:
    """A reducer bug must surface, not be read as 'keep going' until the deadline."""
    stakes, clients = committee(FakeAuthority("a"), FakeAuthority("b", delay=SLOW))

    def broken(state: int, name: str, stake: int, answer: object) -> Any:
        return state + 1  # neither Continue, Success nor Failed

    with pytest.raises(TypeError, match="Continue, Success or Failed"):
        await quorum_map_then_reduce_with_timeout(stakes, clients, 0, ask, broken, 1.0)
    assert clients["b"].cancelled
    assert_no_other_tasks()

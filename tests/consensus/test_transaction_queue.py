"""The bounded transaction queue: back-pressure is a visible error, and blocks take the
oldest transactions that fit."""

from __future__ import annotations

import pytest

from soma.consensus.errors import ConsensusError
from soma.consensus.transaction import (
    TransactionQueue,
    TransactionQueueFullError,
    TransactionTooLargeError,
)


def test_full_queue_refuses_and_keeps_what_it_has() -> None:
    queue = TransactionQueue(max_pending=3)
    queue.submit_many([b"a", b"b", b"c"])
    with pytest.raises(TransactionQueueFullError) as info:
        queue.submit(b"d")
    assert isinstance(info.value, ConsensusError)
    assert "retry" in str(info.value)
    assert info.value.code == "CONSENSUS_QUEUE_FULL"
    assert len(queue) == 3
    assert queue.take(10, 1_000) == [b"a", b"b", b"c"]
    queue.submit(b"d")  # room again
    assert len(queue) == 1


def test_oversized_transaction_is_refused() -> None:
    queue = TransactionQueue(max_transaction_bytes=10)
    queue.submit(b"x" * 10)
    with pytest.raises(TransactionTooLargeError) as info:
        queue.submit(b"x" * 11)
    assert "11 bytes" in str(info.value)
    assert len(queue) == 1


def test_take_is_fifo_and_respects_count_and_bytes() -> None:
    queue = TransactionQueue()
    queue.submit_many([bytes([i]) * 10 for i in range(10)])
    assert queue.take(3, 1_000) == [bytes([i]) * 10 for i in range(3)]
    assert queue.take(100, 25) == [bytes([i]) * 10 for i in range(3, 5)]
    assert queue.take(0, 1_000) == []
    assert len(queue) == 5


def test_take_stops_at_first_that_does_not_fit() -> None:
    # Order is kept: a large transaction at the head is not overtaken by smaller ones.
    queue = TransactionQueue()
    queue.submit_many([b"x" * 50, b"y"])
    assert queue.take(10, 10) == []
    assert queue.take(10, 51) == [b"x" * 50, b"y"]

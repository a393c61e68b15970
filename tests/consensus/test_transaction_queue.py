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
    assert queue.take(10, 1_000).transactions == [b"a", b"b", b"c"]
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
    assert queue.take(3, 1_000).transactions == [bytes([i]) * 10 for i in range(3)]
    assert queue.take(100, 25).transactions == [bytes([i]) * 10 for i in range(3, 5)]
    assert queue.take(0, 1_000).transactions == []
    assert len(queue) == 5


def test_take_stops_at_first_that_does_not_fit() -> None:
    # Order is kept: a large transaction at the head is not overtaken by smaller ones.
    queue = TransactionQueue()
    queue.submit_many([b"x" * 50, b"y"])
    assert queue.take(10, 10).transactions == []
    assert queue.take(10, 51).transactions == [b"x" * 50, b"y"]


def test_submission_goes_into_one_block_whole_with_its_token() -> None:
    queue = TransactionQueue()
    queue.submit_batch([b"a" * 10, b"b" * 10], token="first")
    queue.submit_batch([b"c" * 10, b"d" * 10, b"e" * 10], token="second")
    queue.submit(b"f")
    assert len(queue) == 6
    # The second submission does not fit in what is left: it is not split.
    taken = queue.take(4, 1_000)
    assert taken.transactions == [b"a" * 10, b"b" * 10]
    assert taken.tokens == ["first"]
    taken = queue.take(10, 1_000)
    assert taken.transactions == [b"c" * 10, b"d" * 10, b"e" * 10, b"f"]
    assert taken.tokens == ["second"]
    assert len(queue) == 0


def test_submission_larger_than_a_block_is_refused() -> None:
    queue = TransactionQueue(max_submission_transactions=3, max_submission_bytes=100)
    with pytest.raises(TransactionTooLargeError):
        queue.submit_batch([b"x"] * 4)
    with pytest.raises(TransactionTooLargeError):
        queue.submit_batch([b"x" * 60, b"y" * 60])
    assert len(queue) == 0


def test_full_queue_counts_transactions_not_submissions() -> None:
    queue = TransactionQueue(max_pending=5)
    queue.submit_batch([b"a"] * 3)
    with pytest.raises(TransactionQueueFullError):
        queue.submit_batch([b"b"] * 3)
    queue.submit_batch([b"c"] * 2)
    assert len(queue) == 5

"""WritebackCache: reads see dirty writes, deletions and owner-index changes before they
are flushed; a flush writes every dirty transaction in one batch and reports them; the
clean LRU keeps its bound; `max_dirty` forces a flush; a fresh cache over the flushed
store sees the same state."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from soma.authority.cache import WritebackCache
from soma.authority.store import AuthorityStore, TransactionOutputs
from soma.types.base import ObjectID, SomaAddress
from soma.types.object import AddressOwner, Object
from soma.types.transaction import (
    AddStake,
    MergeCoins,
    SignedTransaction,
    SplitCoin,
    TransferCoin,
)
from tests.authority.helpers import BALANCE, FEE, Chain, execute_in


@pytest.fixture
def chain() -> Chain:
    return Chain(coins_per_account=4)


def run(cache: WritebackCache, tx: SignedTransaction) -> TransactionOutputs:
    """Execute against the cache's view and record the outputs in it (a success)."""
    outputs = execute_in(cache, tx)
    assert outputs.effects.status.is_success(), outputs.effects.status
    return outputs


def live(cache: WritebackCache, object_id: ObjectID) -> Object:
    obj = cache.get_live_object(object_id)
    assert obj is not None
    return obj


class CountingStore:
    """Counts the calls made to some of a store's methods (patched on the instance)."""

    def __init__(self, store: AuthorityStore, *names: str) -> None:
        self.calls: dict[str, list[tuple[Any, ...]]] = {name: [] for name in names}
        for name in names:
            setattr(store, name, self._wrap(name, getattr(store, name)))

    def _wrap(self, name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name].append(args)
            return method(*args, **kwargs)

        return counted

    def count(self, name: str) -> int:
        return len(self.calls[name])


# --- dirty reads -----------------------------------------------------------------------


def test_reads_see_dirty_writes_before_the_flush(chain: Chain) -> None:
    cache = WritebackCache(chain.store)
    coin, gas, _, _ = chain.coins(0)
    tx = chain.sign(0, TransferCoin(coin, 100, chain.addresses[1]), gas)
    outputs = run(cache, tx)
    assert cache.dirty_count == 1
    # The cache sees version 2 ...
    new_coin = live(cache, coin.object_id)
    assert new_coin.version == 2 and new_coin.coin_balance() == BALANCE - 100
    assert live(cache, gas.object_id).coin_balance() == BALANCE - FEE
    created = ObjectID.derive(tx.digest(), 0)
    assert live(cache, created).coin_balance() == 100
    assert cache.get_object_at(coin.object_id, 2) == new_coin
    assert cache.get_object_at(coin.object_id, 1) == chain.obj(coin.object_id)
    assert cache.is_executed(tx.digest())
    assert cache.get_effects(tx.digest()) == outputs.effects
    assert cache.get_transaction(tx.digest()) == tx
    # ... while the store has nothing of it yet.
    assert chain.obj(coin.object_id).version == 1
    assert chain.store.get_live_object(created) is None
    assert chain.store.executed_effects_digest(tx.digest()) is None
    assert chain.store.get_transaction(tx.digest()) is None


def test_transactions_build_on_each_others_dirty_outputs(chain: Chain) -> None:
    cache = WritebackCache(chain.store)
    coin, gas, _, _ = chain.coins(0)
    first = run(cache, chain.sign(0, SplitCoin(coin, (10,)), gas))
    gas2 = live(cache, gas.object_id).reference()
    coin2 = live(cache, coin.object_id).reference()
    second = run(cache, chain.sign(0, TransferCoin(coin2, 5, chain.addresses[2]), gas2))
    assert second.effects.dependencies == (first.digest,)
    assert live(cache, gas.object_id).coin_balance() == BALANCE - 2 * FEE
    assert live(cache, coin.object_id).version == 3
    assert (
        cache.get_object_at(coin.object_id, 2)
        == first.written[[o.id for o in first.written].index(coin.object_id)]
    )


def test_reads_see_dirty_deletions(chain: Chain) -> None:
    cache = WritebackCache(chain.store)
    a, b, gas, _ = chain.coins(0)
    assert live(cache, b.object_id).version == 1  # now in the clean LRU
    run(cache, chain.sign(0, MergeCoins((a, b)), gas))
    assert cache.get_live_object(b.object_id) is None
    assert b.object_id not in {r.object_id for r in cache.live_refs()}
    assert b.object_id not in {r.object_id for r in cache.owned_refs(chain.addresses[0])}
    # The old version is still readable, and the store still has it live.
    assert cache.get_object_at(b.object_id, 1) is not None
    assert chain.store.get_live_object(b.object_id) is not None
    cache.flush()
    assert cache.get_live_object(b.object_id) is None
    assert chain.store.get_live_object(b.object_id) is None


def test_reads_see_dirty_owner_index_changes(chain: Chain) -> None:
    cache = WritebackCache(chain.store)
    sender, recipient = chain.addresses[0], chain.addresses[1]
    coin, gas, _, _ = chain.coins(0)
    sender_before = cache.owned_refs(sender)
    recipient_before = cache.owned_refs(recipient)
    run(cache, chain.sign(0, TransferCoin(coin, None, recipient), gas))
    moved = live(cache, coin.object_id)
    assert moved.owner == AddressOwner(recipient)
    sender_ids = [r.object_id for r in cache.owned_refs(sender)]
    recipient_refs = cache.owned_refs(recipient)
    assert coin.object_id not in sender_ids
    assert len(sender_ids) == len(sender_before) - 1
    assert moved.reference() in recipient_refs
    assert len(recipient_refs) == len(recipient_before) + 1
    assert [r.object_id for r in recipient_refs] == sorted(r.object_id for r in recipient_refs)
    # The gas coin's entry moved to its new version.
    assert live(cache, gas.object_id).reference() in cache.owned_refs(sender)
    # The store's index is untouched until the flush.
    assert [r for _, r in chain.store.owned_refs(sender)] == sender_before
    # Back again, still dirty: the last change wins.
    back = chain.sign(1, TransferCoin(moved.reference(), None, sender), chain.coins(1)[0])
    run(cache, back)
    assert coin.object_id in {r.object_id for r in cache.owned_refs(sender)}
    assert coin.object_id not in {r.object_id for r in cache.owned_refs(recipient)}
    cache.flush()
    assert coin.object_id in {r.object_id for _, r in chain.store.owned_refs(sender)}
    assert coin.object_id not in {r.object_id for _, r in chain.store.owned_refs(recipient)}


# --- flushing --------------------------------------------------------------------------


def test_flush_writes_everything_in_one_batch_and_reports_it(chain: Chain) -> None:
    cache = WritebackCache(chain.store)
    reported: list[list[TransactionOutputs]] = []
    cache.on_flush = reported.append
    counter = CountingStore(chain.store, "write_outputs")
    writes: list[bool] = []
    db_write = chain.store.db.write

    def counted_write(batch: Any, *, sync: bool) -> None:
        writes.append(sync)
        db_write(batch, sync=sync)

    chain.store.db.write = counted_write  # type: ignore[method-assign]
    assert cache.flush() == [] and writes == [] and reported == []
    outputs = []
    for account in range(3):
        coin, gas, _, _ = chain.coins(account)
        outputs.append(run(cache, chain.sign(account, SplitCoin(coin, (1, 2)), gas)))
    validator = chain.validator_addresses[0]
    stake_coin, stake_gas = chain.coins(validator)[:2]
    staked = run(cache, chain.sign(validator, AddStake(stake_coin, BALANCE), stake_gas))
    assert staked.effects.status.is_success() and staked.deleted == (stake_coin.object_id,)
    outputs.append(staked)
    assert writes == []
    flushed = cache.flush()
    assert flushed == outputs
    assert writes == [False]  # one batch, unsynced (the state syncs at durability points)
    assert counter.count("write_outputs") == 1
    assert reported == [outputs]
    assert cache.flushes == 1 and cache.dirty_count == 0
    for item in outputs:
        assert chain.store.get_effects(item.digest) == item.effects
        assert chain.store.get_transaction(item.digest) == item.transaction
        for obj in item.written:
            assert chain.store.get_live_object(obj.id) == obj
        for object_id in item.deleted:
            assert chain.store.get_live_object(object_id) is None
    assert cache.flush() == [] and writes == [False] and len(reported) == 1


def test_max_dirty_triggers_a_flush(chain: Chain) -> None:
    cache = WritebackCache(chain.store, max_dirty=2)
    reported: list[list[TransactionOutputs]] = []
    cache.on_flush = reported.append
    first = run(cache, chain.sign(0, SplitCoin(chain.coins(0)[0], (1,)), chain.coins(0)[1]))
    assert cache.dirty_count == 1 and cache.flushes == 0 and reported == []
    assert chain.store.get_effects(first.digest) is None
    second = run(cache, chain.sign(1, SplitCoin(chain.coins(1)[0], (1,)), chain.coins(1)[1]))
    assert cache.flushes == 1 and cache.dirty_count == 0
    assert reported == [[first, second]]
    assert chain.store.get_effects(second.digest) == second.effects
    run(cache, chain.sign(2, SplitCoin(chain.coins(2)[0], (1,)), chain.coins(2)[1]))
    assert cache.dirty_count == 1 and cache.flushes == 1


def test_the_clean_lru_keeps_its_bound(chain: Chain) -> None:
    bound = 3
    cache = WritebackCache(chain.store, max_clean_objects=bound)
    ids = [r.object_id for r in chain.coins(0)] + [r.object_id for r in chain.coins(1)]
    counter = CountingStore(chain.store, "get_live_object")
    for object_id in ids:
        live(cache, object_id)
        assert len(cache._clean) <= bound
    assert counter.count("get_live_object") == len(ids)
    # The last `bound` reads are cached; the earlier ones were evicted.
    for object_id in ids[-bound:]:
        live(cache, object_id)
    assert counter.count("get_live_object") == len(ids)
    live(cache, ids[0])
    assert counter.count("get_live_object") == len(ids) + 1


def test_the_clean_lru_evicts_the_least_recently_used(chain: Chain) -> None:
    cache = WritebackCache(chain.store, max_clean_objects=3)
    a, b, c, d = (r.object_id for r in chain.coins(0))
    counter = CountingStore(chain.store, "get_live_object")
    for object_id in (a, b, c, a, d):  # a was refreshed; b is the oldest use
        live(cache, object_id)
    assert counter.count("get_live_object") == 4
    live(cache, a)
    assert counter.count("get_live_object") == 4
    live(cache, b)
    assert counter.count("get_live_object") == 5


def test_a_flush_keeps_the_clean_lru_within_its_bound(chain: Chain) -> None:
    cache = WritebackCache(chain.store, max_clean_objects=2)
    coin, gas, _, _ = chain.coins(0)
    outputs = run(cache, chain.sign(0, SplitCoin(coin, (1, 2, 3)), gas))
    assert len(outputs.written) == 5
    cache.flush()
    assert len(cache._clean) <= 2
    # Whatever was evicted is read back from the store, at its new version.
    for obj in outputs.written:
        assert cache.get_live_object(obj.id) == obj


def test_bounds_must_be_positive(chain: Chain) -> None:
    with pytest.raises(ValueError):
        WritebackCache(chain.store, max_dirty=0)
    with pytest.raises(ValueError):
        WritebackCache(chain.store, max_clean_objects=0)


def _view(cache: WritebackCache, addresses: list[SomaAddress]) -> dict[str, object]:
    refs = list(cache.live_refs())
    return {
        "live": refs,
        "objects": [cache.get_live_object(r.object_id) for r in refs],
        "owned": {a: cache.owned_refs(a) for a in addresses},
    }


def test_after_a_flush_a_fresh_cache_sees_the_same_state(chain: Chain) -> None:
    cache = WritebackCache(chain.store, max_clean_objects=4)
    addresses = [*chain.addresses, *chain.validator_addresses]
    digests = []
    for account in range(3):
        coin, gas, other, _ = chain.coins(account)
        to = chain.addresses[(account + 1) % 3]
        digests.append(run(cache, chain.sign(account, TransferCoin(coin, None, to), gas)).digest)
        gas2 = live(cache, gas.object_id).reference()
        digests.append(run(cache, chain.sign(account, MergeCoins((gas2, other)), gas2)).digest)
    dirty_view = _view(cache, addresses)
    cache.flush()
    assert _view(cache, addresses) == dirty_view
    fresh = WritebackCache(chain.store)
    assert _view(fresh, addresses) == dirty_view
    for digest in digests:
        assert fresh.is_executed(digest)
        assert fresh.get_effects(digest) == cache.get_effects(digest)
        assert fresh.get_transaction(digest) == cache.get_transaction(digest)
    # And the store alone agrees too.
    assert list(chain.store.live_refs()) == dirty_view["live"]

"""The owner-side indexes (balance, coins largest first, owned objects): after random
transactions of every coin kind, failures included, across flushes, they and their paged
reads equal a full scan of the live objects, dirty or flushed, and after a RocksDB store
is reopened; a store made before them is backfilled once; a page over dirty changes
repeats, skips and shows nothing it should not; a balance costs one read."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from soma.authority import store as store_module
from soma.authority.cache import WritebackCache
from soma.authority.indexes import BALANCE_CODEC, COIN_KEY_CODEC, MAX_U64, IndexCorruptionError
from soma.authority.paging import first_page, merged
from soma.authority.state import initialize_genesis
from soma.authority.store import INDEXES_KEY, AuthorityStore, TransactionOutputs
from soma.storage import U64_BE, Database, Engine, FixedBytesCodec, tuple_codec
from soma.types.base import ObjectID, SomaAddress
from soma.types.digests import TransactionDigest
from soma.types.effects import ExecutionFailure
from soma.types.error import SomaError, StorageDecodeError, StorageEncodeError
from soma.types.object import Immutable, Object, ObjectRef
from soma.types.transaction import (
    AddStake,
    MergeCoins,
    PayCoins,
    SignedTransaction,
    SplitCoin,
    TransactionKind,
    TransferCoin,
    TransferObjects,
)
from tests.authority.helpers import FEE, Chain, coin_object, execute_in
from tests.authority.index_scan import Expected, page_through, scan

IMMUTABLE_COIN = ObjectID.from_int(0xC0FFEE)


def _immutable_coin(addresses: list[SomaAddress]) -> list[Object]:
    """A coin nobody owns: in no balance, whatever transactions try to do with it."""
    return [Object.new_coin(IMMUTABLE_COIN, 5_000, Immutable(), TransactionDigest.zero())]


def rocksdb_chain(path: Path, **kwargs: Any) -> Chain:
    """A Chain whose store is RocksDB at `path` (genesis executed there)."""
    chain = Chain(**kwargs)
    chain.store.close()
    chain.store = AuthorityStore.open_rocksdb(path)
    initialize_genesis(chain.store, chain.genesis)
    return chain


# --- checks ------------------------------------------------------------------------------


def check_reads(cache: WritebackCache, owners: list[SomaAddress], rng: random.Random) -> None:
    """The cache's balance, coin pages and owned pages equal a full scan, for paging
    with random limits from the start and from a random cursor."""
    expected = scan(cache)
    for owner in owners:
        assert cache.balance(owner) == expected.balance(owner)
        owned = expected.owned.get(owner, [])
        coins = expected.coins.get(owner, [])

        def limits() -> int:
            return rng.choice([1, 2, 3, 7, 1000])

        read_owned = lambda c, n: cache.owned_page(owner, c, n)  # noqa: B023, E731
        read_coins = lambda c, n: cache.coin_page(owner, c, n)  # noqa: B023, E731
        assert page_through(read_owned, limits) == owned
        assert page_through(read_coins, limits) == coins
        assert cache.owned_refs(owner) == owned
        # From a cursor that is no entry: the entries at or after it.
        cursor = ObjectID(rng.randbytes(32))
        after = [r for r in owned if r.object_id >= cursor]
        assert page_through(read_owned, limits, cursor) == after
        coin_cursor = (rng.randrange(0, 1_200_000), ObjectID(rng.randbytes(32)))
        ordered_after = [
            (ref, b) for ref, b in coins if (-b, ref.object_id) >= (-coin_cursor[0], coin_cursor[1])
        ]
        assert page_through(read_coins, limits, coin_cursor) == ordered_after


def check_store(store: AuthorityStore) -> Expected:
    """The store's three index tables equal a full scan of its live objects."""
    expected = scan(store)
    assert list(store.owner_index.items()) == expected.owner_table()
    assert list(store.coin_index.items()) == expected.coin_table()
    assert dict(store.balance_index.items()) == expected.balance_table()
    return expected


# --- random transactions -----------------------------------------------------------------


class Workload:
    """Random coin transactions, a fair share of which fail: balances too small, inputs
    consumed earlier, inputs of someone else, a coin nobody owns, gas spent already."""

    def __init__(self, chain: Chain, cache: WritebackCache, rng: random.Random) -> None:
        self.chain = chain
        self.cache = cache
        self.rng = rng
        self.owners = [*chain.addresses, *chain.validator_addresses]
        #: Refs a transaction consumed: reused later, they are consumed inputs.
        self.stale: list[ObjectRef] = []

    def next(self) -> SignedTransaction | None:
        rng, chain = self.rng, self.chain
        expected = scan(self.cache)
        # Validators send too: only their own accounts can stake.
        sender = rng.choice(self.owners)
        coins = expected.coins.get(sender, [])
        if not coins:
            return None
        others = [o for o in chain.addresses if o != sender]
        recipient = rng.choice([*others, sender])
        gas, gas_balance = rng.choice(coins)
        spare = [(r, b) for r, b in coins if r != gas]
        pick = rng.random()
        kind: TransactionKind
        if pick < 0.15 or not spare:
            coin, balance = rng.choice(coins)  # may be the gas coin itself
            amount = None if rng.random() < 0.3 else rng.randint(0, 2 * balance + 1)
            kind = TransferCoin(coin, amount, recipient)
        elif pick < 0.3:
            chosen = rng.sample(spare, rng.randint(1, len(spare)))
            if rng.random() < 0.3:
                chosen.insert(0, (gas, gas_balance))
            total = sum(b for _, b in chosen)
            if rng.random() < 0.3:
                kind = PayCoins(tuple(r for r, _ in chosen), None, (recipient,))
            else:
                count = rng.randint(1, 3)
                amounts = tuple(rng.randint(0, total // count + 10) for _ in range(count))
                kind = PayCoins(
                    tuple(r for r, _ in chosen),
                    amounts,
                    tuple(rng.choice(self.owners) for _ in amounts),
                )
        elif pick < 0.45:
            chosen = rng.sample(spare, rng.randint(1, len(spare)))
            if rng.random() < 0.5:
                chosen.insert(0, (gas, gas_balance))
            kind = MergeCoins(tuple(r for r, _ in chosen))
        elif pick < 0.6:
            coin, balance = rng.choice(coins)
            count = rng.randint(1, 3)
            kind = SplitCoin(coin, tuple(rng.randint(0, balance // 2) for _ in range(count)))
        elif pick < 0.72:
            owned = [r for r in expected.owned[sender] if r != gas]
            chosen_refs = rng.sample(owned, rng.randint(1, min(3, len(owned)))) if owned else []
            kind = TransferObjects(tuple(chosen_refs) or (gas,), recipient)
        elif pick < 0.78:
            coin, balance = rng.choice(spare)
            amount = balance if rng.random() < 0.3 else rng.randint(1, balance + 1)
            if amount == 0:
                return None
            kind = AddStake(coin, amount)  # a user's fails: not a validator
        elif pick < 0.86 and self.stale:
            kind = TransferCoin(rng.choice(self.stale), None, recipient)  # consumed
        elif pick < 0.92:
            foreign = [e for o in others for e in expected.coins.get(o, [])]
            if not foreign:
                return None
            kind = TransferCoin(rng.choice(foreign)[0], None, recipient)  # not the sender's
        elif pick < 0.96:
            nobody = self.cache.get_live_object(IMMUTABLE_COIN)
            assert nobody is not None
            kind = TransferCoin(nobody.reference(), None, recipient)
        else:
            if not self.stale:
                return None
            gas = rng.choice(self.stale)  # gas consumed: charges nothing
            kind = TransferCoin(rng.choice(coins)[0], 1, recipient)
        budget = FEE // 2 if rng.random() < 0.1 else 10 * FEE  # sometimes below the fee
        tx = chain.sign(sender, kind, gas, budget=budget)
        try:
            inputs = tx.data.input_objects()
        except SomaError:
            return None  # malformed (an object at two versions): never ordered
        for item in inputs:
            ref = getattr(item, "object_ref", None)
            if ref is not None:
                self.stale.append(ref)
        return tx


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_indexes_equal_a_full_scan_after_random_transactions(tmp_path: Path, seed: int) -> None:
    path = tmp_path / "authority"
    chain = rocksdb_chain(
        path, accounts=4, coins_per_account=4, seed=seed, extra_objects=_immutable_coin
    )
    rng = random.Random(seed)
    cache = WritebackCache(chain.store)
    workload = Workload(chain, cache, rng)
    statuses: set[str] = set()
    executed = 0
    while executed < 200:
        tx = workload.next()
        if tx is None:
            continue
        outputs = execute_in(cache, tx)
        status = outputs.effects.status
        statuses.add(type(status.error).__name__ if isinstance(status, ExecutionFailure) else "ok")
        executed += 1
        check_reads(cache, workload.owners, rng)
        if rng.random() < 0.2:
            cache.flush()
            check_store(chain.store)
            check_reads(cache, workload.owners, rng)
    # The workload reached the cases it is meant to: successes and each kind of failure.
    assert {
        "ok",
        "InsufficientCoinBalance",
        "InputObjectConsumed",
        "InvalidOwnership",
        "InsufficientGas",
        "ValidatorNotFound",
    } <= statuses, statuses
    cache.flush()
    expected = check_store(chain.store)
    chain.store.close()
    reopened = AuthorityStore.open_rocksdb(path)
    try:
        assert check_store(reopened) == expected
        check_reads(WritebackCache(reopened), workload.owners, rng)
    finally:
        reopened.close()


# --- backfill ----------------------------------------------------------------------------


def _busy_chain(path: Path) -> Chain:
    """A RocksDB chain with a few flushed transactions behind it."""
    chain = rocksdb_chain(path, accounts=4, coins_per_account=5, extra_objects=_immutable_coin)
    cache = WritebackCache(chain.store)
    workload = Workload(chain, cache, random.Random(11))
    done = 0
    while done < 30:
        tx = workload.next()
        if tx is not None:
            execute_in(cache, tx)
            done += 1
    cache.flush()
    return chain


def _old_store(path: Path) -> Expected:
    """A closed RocksDB store at `path` as a version before the coin and balance
    indexes left it (transactions flushed, both tables empty, no record); returns what
    the indexes must hold."""
    chain = _busy_chain(path)
    store = chain.store
    expected = check_store(store)
    assert expected.coin_table()
    batch = store.db.batch()
    for key in list(store.coin_index.keys()):
        batch.delete(store.coin_index, key)
    for owner in list(store.balance_index.keys()):
        batch.delete(store.balance_index, owner)
    batch.delete(store.metadata, INDEXES_KEY)
    store.db.write(batch, sync=True)
    assert list(store.coin_index.items()) == []
    store.close()
    return expected


def test_a_store_without_the_indexes_is_backfilled_once_on_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "authority"
    expected = _old_store(path)
    store = AuthorityStore.open_rocksdb(path)
    assert check_store(store) == expected
    assert store.metadata.get(INDEXES_KEY) is not None
    store.close()

    # Recorded: the next open never scans again.
    def no_backfill(self: AuthorityStore) -> None:
        raise AssertionError("backfilled twice")

    monkeypatch.setattr(AuthorityStore, "backfill_indexes", no_backfill)
    store = AuthorityStore.open_rocksdb(path)
    assert check_store(store) == expected
    store.close()


def test_a_backfill_cut_short_is_redone_wholly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "authority"
    expected = _old_store(path)
    # Left over by an earlier attempt: an entry no scan would make.
    stray_owner = SomaAddress(b"\x07" * 32)
    stray = coin_object(ObjectID.from_int(0x5EED), 3, stray_owner).reference()
    with Database.open_rocksdb(path, store_module.TABLES) as raw:
        coin_key = (stray_owner, MAX_U64 - 3, stray.object_id)
        raw.table(store_module.COIN_INDEX).put(coin_key, stray, sync=True)
        raw.table(store_module.BALANCE_INDEX).put(stray_owner, (3, 1), sync=True)

    monkeypatch.setattr(store_module, "BACKFILL_CHUNK", 4)
    writes = 0
    real_write = Database.write

    def crash_after_two(self: Any, batch: Any, *, sync: bool) -> None:
        nonlocal writes
        writes += 1
        if writes > 2:
            raise OSError("power cut")
        real_write(self, batch, sync=sync)

    monkeypatch.setattr(Database, "write", crash_after_two)
    with pytest.raises(OSError):
        AuthorityStore.open_rocksdb(path)
    monkeypatch.setattr(Database, "write", real_write)
    # What the cut-short run left (the stray cleared, some entries, no record) ...
    half = Database.open_rocksdb(path, store_module.TABLES)
    try:
        assert half.table(store_module.METADATA).get(INDEXES_KEY) is None
        partial = list(half.table(store_module.COIN_INDEX).items())
        assert partial and len(partial) < len(expected.coin_table())
        assert stray_owner not in {key[0] for key, _ in partial}
    finally:
        half.close()
    # ... is not trusted: the next open builds both indexes again, wholly.
    store = AuthorityStore.open_rocksdb(path)
    assert check_store(store) == expected
    store.close()


def test_a_new_store_records_its_indexes_at_once() -> None:
    store = AuthorityStore.open_memory()
    assert store.metadata.get(INDEXES_KEY) is not None
    assert list(store.coin_index.items()) == []


def test_a_negative_balance_is_refused_not_written() -> None:
    chain = Chain()
    owner = chain.addresses[0]
    outputs = chain.run(chain.sign(0, SplitCoin(chain.coins(0)[0], (1,)), chain.coins(0)[1]))
    assert outputs.effects.status.is_success()
    stored = chain.store.balance(owner)
    broken = TransactionOutputs(
        **{
            **{f: getattr(outputs, f) for f in outputs.__dataclass_fields__},
            "balance_changes": ((owner, -(stored[0] + 1), 0),),
        }
    )
    with pytest.raises(IndexCorruptionError):
        chain.store.write_outputs([broken], sync=False)
    assert chain.store.balance(owner) == stored


def test_index_codecs_encode_as_tuples_do_and_keep_the_order() -> None:
    generic = tuple_codec(FixedBytesCodec(32, SomaAddress), U64_BE, FixedBytesCodec(32, ObjectID))
    rng = random.Random(3)
    owners = [SomaAddress(rng.randbytes(32)) for _ in range(3)]
    keys = [
        (rng.choice(owners), MAX_U64 - rng.choice([0, 1, 5, 2**40, MAX_U64]), ObjectID.from_int(i))
        for i in range(40)
    ]
    for key in keys:
        raw = COIN_KEY_CODEC.encode(key)
        assert raw == generic.encode(key) and len(raw) == 72
        assert COIN_KEY_CODEC.decode(raw) == key
    assert sorted(keys) == sorted(keys, key=COIN_KEY_CODEC.encode)
    for bad in [(owners[0], MAX_U64 + 1, keys[0][2]), (owners[0], -1, keys[0][2]), (owners[0],)]:
        with pytest.raises(StorageEncodeError):
            COIN_KEY_CODEC.encode(bad)  # type: ignore[arg-type]
    for entry in [(0, 0), (2**100 + 7, 3), (2**128 - 1, MAX_U64)]:
        assert BALANCE_CODEC.decode(BALANCE_CODEC.encode(entry)) == entry
    with pytest.raises(StorageEncodeError):
        BALANCE_CODEC.encode((2**128, 1))
    with pytest.raises(StorageDecodeError):
        BALANCE_CODEC.decode(bytes(23))


# --- paging over dirty changes -----------------------------------------------------------


def test_merging_a_stored_scan_with_an_overlay() -> None:
    stored = [(1, "a"), (3, "c"), (5, "e"), (7, "g")]
    overlay: dict[int, str | None] = {0: "z", 3: None, 5: "E", 6: "f", 9: "i", 2: None}
    assert list(merged(iter(stored), overlay)) == [
        (0, "z"),
        (1, "a"),
        (5, "E"),
        (6, "f"),
        (7, "g"),
        (9, "i"),
    ]
    # From a start: the store scans from there, the overlay is cut there.
    assert list(merged(iter(stored[2:]), overlay, 5)) == [(5, "E"), (6, "f"), (7, "g"), (9, "i")]
    assert list(merged(iter(stored), None)) == stored
    assert list(merged(iter([]), {4: None})) == []
    assert first_page(iter(stored), 2) == ([(1, "a"), (3, "c")], 5)
    assert first_page(iter(stored), 4) == (stored, None)
    with pytest.raises(ValueError):
        first_page(iter(stored), 0)


def test_pages_over_dirty_changes_have_no_duplicate_gap_or_deleted_entry() -> None:
    chain = Chain(accounts=3, coins_per_account=12, balances=list(range(1000, 1000 + 12 * 7)))
    owner, other = chain.addresses[0], chain.addresses[1]
    cache = WritebackCache(chain.store)
    rng = random.Random(4)
    owners = [owner, other]
    check_reads(cache, owners, rng)
    coins = [ref for ref, _ in scan(cache).coins[owner]]
    gas = coins[-1]
    # Read a first page, then change what lies at and after its cursor, unflushed.
    page = cache.coin_page(owner, None, 3)
    assert page.next_cursor is not None
    at_cursor = next(r for r, b in scan(cache).coins[owner] if r.object_id == page.next_cursor[1])
    execute_in(cache, chain.sign(0, MergeCoins((gas, at_cursor, coins[5])), gas))  # deleted
    gas = live_ref(cache, gas.object_id)
    execute_in(cache, chain.sign(0, SplitCoin(coins[6], (1, 2, 3)), gas))  # moved down, new ones
    gas = live_ref(cache, gas.object_id)
    execute_in(cache, chain.sign(0, TransferCoin(coins[7], None, other), gas))  # gone to another
    incoming = scan(cache).coins[other][0][0]
    other_gas = scan(cache).coins[other][-1][0]
    execute_in(cache, chain.sign(1, TransferCoin(incoming, None, owner), other_gas))  # arrived
    assert cache.dirty_count == 4
    expected = scan(cache).coins[owner]
    rest = page_through(lambda c, n: cache.coin_page(owner, c, n), lambda: 2, page.next_cursor)
    assert page.items + rest == [
        e for e in expected if e in page.items or (-e[1], e[0].object_id) >= _order(page)
    ]
    assert len({r.object_id for r, _ in rest}) == len(rest)
    assert at_cursor.object_id not in {r.object_id for r, _ in rest}
    check_reads(cache, owners, rng)
    # Flushed half-way through a paging: the pages still join up.
    first = cache.owned_page(owner, None, 4)
    cache.flush()
    assert first.next_cursor is not None
    tail = page_through(lambda c, n: cache.owned_page(owner, c, n), lambda: 3, first.next_cursor)
    assert first.items + tail == scan(cache).owned[owner]
    check_reads(cache, owners, rng)


def _order(page: Any) -> tuple[int, ObjectID]:
    balance, object_id = page.next_cursor
    return (-balance, object_id)


def live_ref(cache: WritebackCache, object_id: ObjectID) -> ObjectRef:
    obj = cache.get_live_object(object_id)
    assert obj is not None
    return obj.reference()


# --- cost --------------------------------------------------------------------------------


class CountingEngine:
    """Counts an engine's reads: point reads, multi-gets, scans and entries scanned."""

    def __init__(self, engine: Engine) -> None:
        self.reads = 0
        self.scanned = 0
        get, multi_get, iterate = engine.get, engine.multi_get, engine.iterate

        def counted_get(*args: Any, **kwargs: Any) -> Any:
            self.reads += 1
            return get(*args, **kwargs)

        def counted_multi_get(*args: Any, **kwargs: Any) -> Any:
            self.reads += 1
            return multi_get(*args, **kwargs)

        def counted_iterate(*args: Any, **kwargs: Any) -> Iterator[Any]:
            self.reads += 1
            for item in iterate(*args, **kwargs):
                self.scanned += 1
                yield item

        engine.get = counted_get  # type: ignore[method-assign]
        engine.multi_get = counted_multi_get  # type: ignore[method-assign]
        engine.iterate = counted_iterate  # type: ignore[method-assign]

    def during(self, read: Callable[[], object]) -> tuple[int, int]:
        self.reads = self.scanned = 0
        read()
        return self.reads, self.scanned


def test_a_balance_of_10000_coins_costs_what_a_balance_of_one_does() -> None:
    many = 10_000

    def coins(addresses: list[SomaAddress]) -> list[Object]:
        return [
            coin_object(ObjectID.from_int(0x100000 + i), 1 + i % 977, addresses[0])
            for i in range(many)
        ]

    chain = Chain(accounts=2, coins_per_account=1, extra_objects=coins)
    rich, poor = chain.addresses
    cache = WritebackCache(chain.store)
    # Something dirty for both: the overlay is part of every read.
    execute_in(cache, chain.sign(1, TransferCoin(chain.coins(1)[0], 5, rich), chain.coins(1)[0]))
    counter = CountingEngine(chain.store.db.engine)
    expected_rich = (sum(1 + i % 977 for i in range(many)) + 1_000_000 + 5, many + 2)
    assert cache.balance(rich) == expected_rich
    rich_cost = counter.during(lambda: cache.balance(rich))
    poor_cost = counter.during(lambda: cache.balance(poor))
    assert rich_cost == poor_cost == (1, 0)
    # A page of the largest coins scans the page and one entry more, never all coins.
    page_cost = counter.during(lambda: cache.coin_page(rich, None, 10))
    assert page_cost[0] == 1 and page_cost[1] <= 11
    page = cache.coin_page(rich, None, 10)
    assert [b for _, b in page.items][:1] == [1_000_000]
    assert counter.during(lambda: cache.owned_page(rich, None, 10))[1] <= 11

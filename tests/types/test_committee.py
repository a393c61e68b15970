"""Committees: BFT thresholds, member order and indices, stake aggregation."""

from __future__ import annotations

import dataclasses
import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from soma.types.base import AuthorityName
from soma.types.bcs import U64, ULEB128, encode
from soma.types.committee import (
    Committee,
    CommitteeMember,
    StakeAggregator,
    quorum_threshold,
    validity_threshold,
)
from soma.types.error import (
    BcsDecodeError,
    CommitteeError,
    InvalidValueError,
    UnknownAuthorityError,
)
from tests.types.conftest import authority_key, build_committee, make_member

TOTALS = st.integers(min_value=1, max_value=10**18)


# --- thresholds ---------------------------------------------------------------------------


@given(TOTALS)
def test_threshold_formulas(total: int) -> None:
    assert quorum_threshold(total) == 2 * total // 3 + 1
    assert validity_threshold(total) == (total + 2) // 3


@given(TOTALS)
def test_quorum_properties(total: int) -> None:
    """f = floor((T-1)/3) is the most stake the protocol tolerates being byzantine."""
    q = quorum_threshold(total)
    v = validity_threshold(total)
    f = (total - 1) // 3
    # A quorum is strictly more than two thirds of the stake ...
    assert 3 * q > 2 * total
    # ... and the smallest such amount.
    assert 3 * (q - 1) <= 2 * total
    # Two quorums overlap by at least a validity set, i.e. by more than f: the overlap
    # always contains an honest member.
    assert 2 * q - total >= v
    assert 2 * q - total > f
    # The honest stake alone can always form a quorum (liveness).
    assert q <= total - f
    assert q <= total


@given(TOTALS)
def test_validity_properties(total: int) -> None:
    v = validity_threshold(total)
    f = (total - 1) // 3
    # Any validity set contains at least one honest member ...
    assert v > f
    # ... and is the smallest amount that does (f + 1 when f is the bound), never more
    # than a third rounded up.
    assert v == -(-total // 3)
    assert v <= quorum_threshold(total)
    assert 1 <= v <= total


@pytest.mark.parametrize(
    ("total", "quorum", "validity"),
    [(1, 1, 1), (2, 2, 1), (3, 3, 1), (4, 3, 2), (7, 5, 3), (10, 7, 4), (100, 67, 34)],
)
def test_threshold_examples(total: int, quorum: int, validity: int) -> None:
    assert quorum_threshold(total) == quorum
    assert validity_threshold(total) == validity


def test_committee_threshold_properties_use_total_stake() -> None:
    c = build_committee([10, 20, 30, 40]).committee
    assert c.total_stake == 100
    assert c.quorum_threshold == 67
    assert c.validity_threshold == 34


# --- construction and order ------------------------------------------------------------------


def _members(n: int, offset: int = 100) -> list[CommitteeMember]:
    return [make_member(authority_key(offset + i), stake=i + 1, label=i) for i in range(n)]


@settings(max_examples=30, deadline=None)
@given(st.permutations(list(range(5))), st.integers(0, 2**64 - 1))
def test_new_sorts_any_input_order(order: list[int], epoch: int) -> None:
    members = _members(5)
    committee = Committee.new(epoch, [members[i] for i in order])
    assert committee.epoch == epoch
    assert committee.names() == sorted(m.name for m in members)
    assert list(committee.members) == sorted(members, key=lambda m: m.name)
    assert committee == Committee.new(epoch, members)
    assert committee.to_bytes() == Committee.new(epoch, members).to_bytes()


def test_indices_names_and_stakes_agree() -> None:
    committee = Committee.new(3, _members(6))
    assert len(committee) == committee.size == 6
    assert list(committee) == list(committee.members)
    for i, m in enumerate(committee.members):
        assert committee.index_of(m.name) == i
        assert committee.member(i) == m
        assert committee.stake_of(i) == m.stake
        assert committee.stake_of(m.name) == m.stake
        assert committee.is_member(m.name)
    assert committee.total_stake == sum(range(1, 7))


def test_indices_are_stable_across_decoding() -> None:
    committee = Committee.new(1, _members(7))
    decoded = Committee.from_bytes(committee.to_bytes())
    assert decoded == committee
    assert [decoded.index_of(n) for n in committee.names()] == list(range(7))


def test_unknown_authority() -> None:
    committee = Committee.new(0, _members(4))
    stranger = authority_key(999).name
    assert not committee.is_member(stranger)
    with pytest.raises(UnknownAuthorityError):
        committee.index_of(stranger)
    with pytest.raises(UnknownAuthorityError):
        committee.stake_of(stranger)


@pytest.mark.parametrize("index", [-1, 4, 5, 2**32])
def test_member_out_of_range(index: int) -> None:
    committee = Committee.new(0, _members(4))
    with pytest.raises(UnknownAuthorityError):
        committee.member(index)
    with pytest.raises(UnknownAuthorityError):
        committee.stake_of(index)


def _sorted_members(n: int) -> list[CommitteeMember]:
    return sorted(_members(n), key=lambda m: m.name)


def test_unsorted_members_are_rejected() -> None:
    members = _sorted_members(3)
    with pytest.raises(CommitteeError):
        Committee(0, (members[1], members[0], members[2]))
    with pytest.raises(CommitteeError):
        Committee(0, tuple(reversed(members)))


def test_duplicate_members_are_rejected() -> None:
    members = _sorted_members(3)
    with pytest.raises(CommitteeError):
        Committee(0, (members[0], members[0], members[1]))
    # Same name with a different stake is still a duplicate.
    twin = dataclasses.replace(members[0], stake=members[0].stake + 5)
    with pytest.raises(CommitteeError):
        Committee(0, (members[0], twin))
    with pytest.raises(CommitteeError):
        Committee.new(0, [members[1], members[0], members[1]])


def test_zero_stake_and_empty_committees_are_rejected() -> None:
    members = _sorted_members(3)
    zero = dataclasses.replace(members[1], stake=0)
    with pytest.raises(CommitteeError):
        Committee(0, (members[0], zero, members[2]))
    with pytest.raises(CommitteeError):
        Committee.new(0, [])


def test_total_stake_overflowing_u64_is_rejected() -> None:
    members = _sorted_members(2)
    big = [dataclasses.replace(m, stake=2**63) for m in members]
    with pytest.raises(CommitteeError):
        Committee(0, tuple(big))
    # Just under the limit is fine.
    ok = [
        dataclasses.replace(members[0], stake=2**63),
        dataclasses.replace(members[1], stake=2**63 - 1),
    ]
    assert Committee(0, tuple(ok)).total_stake == 2**64 - 1


# --- decoding committees that break the invariants ------------------------------------------


def committee_bytes(epoch: int, members: list[CommitteeMember]) -> bytes:
    """The BCS of a committee with exactly these members in this order, built by hand."""
    return (
        encode(epoch, U64) + encode(len(members), ULEB128) + b"".join(m.to_bytes() for m in members)
    )


def test_hand_built_bytes_match_the_codec() -> None:
    members = _sorted_members(3)
    assert committee_bytes(9, members) == Committee(9, tuple(members)).to_bytes()
    assert Committee.from_bytes(committee_bytes(9, members)) == Committee(9, tuple(members))


@pytest.mark.parametrize(
    "shape",
    ["reversed", "swapped", "duplicate", "zero-stake", "empty"],
)
def test_decoding_an_invalid_committee_is_a_decode_error(shape: str) -> None:
    m = _sorted_members(3)
    members = {
        "reversed": list(reversed(m)),
        "swapped": [m[0], m[2], m[1]],
        "duplicate": [m[0], m[1], m[1], m[2]],
        "zero-stake": [m[0], dataclasses.replace(m[1], stake=0), m[2]],
        "empty": [],
    }[shape]
    with pytest.raises(BcsDecodeError) as err:
        Committee.from_bytes(committee_bytes(0, members))
    assert isinstance(err.value, InvalidValueError)
    assert not isinstance(err.value, CommitteeError)


# --- shuffle by stake --------------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.integers(1, 1000), min_size=1, max_size=8),
    st.integers(0, 2**32),
)
def test_shuffle_by_stake_is_a_deterministic_permutation(stakes: list[int], seed: int) -> None:
    committee = build_committee(stakes).committee
    order = committee.shuffle_by_stake(random.Random(seed))
    assert sorted(order) == list(range(len(stakes)))
    assert committee.shuffle_by_stake(random.Random(seed)) == order


def test_shuffle_by_stake_varies_with_seed_and_favours_heavy_members() -> None:
    committee = build_committee([1, 1, 1, 97]).committee
    orders = [committee.shuffle_by_stake(random.Random(s)) for s in range(200)]
    assert len({tuple(o) for o in orders}) > 1
    heavy_first = sum(o[0] == 3 for o in orders)
    # P(first) is proportional to stake: 0.97 expected; deterministic seeds, no flake.
    assert heavy_first > 170


# --- stake aggregation --------------------------------------------------------------------------


def test_aggregator_equal_stakes_reaches_quorum_at_three_of_four() -> None:
    committee = build_committee([1, 1, 1, 1]).committee
    agg: StakeAggregator[str] = StakeAggregator(committee)
    assert agg.threshold == 3
    assert agg.add(0, "a") is False
    assert agg.add(1, "b") is False
    assert not agg.reached
    assert agg.total_stake == 2
    assert agg.add(2, "c") is True
    assert agg.reached
    assert agg.total_stake == 3
    assert agg.add(3, "d") is True
    assert agg.values == {0: "a", 1: "b", 2: "c", 3: "d"}


def test_aggregator_weighted_stakes() -> None:
    kc = build_committee([10, 20, 30, 40])
    committee = kc.committee
    assert [m.stake for m in committee.members] == [10, 20, 30, 40]
    agg: StakeAggregator[int] = StakeAggregator(committee)
    assert agg.threshold == 67
    assert agg.add(committee.members[3].name, 1) is False  # 40
    assert agg.add(1, 2) is False  # 60
    assert agg.add(0, 3) is True  # 70
    assert agg.total_stake == 70


def test_aggregator_matches_the_threshold_for_every_subset() -> None:
    committee = build_committee([10, 20, 30, 40]).committee
    for r in range(5):
        for subset in itertools.combinations(range(4), r):
            agg: StakeAggregator[None] = StakeAggregator(committee)
            for i in subset:
                agg.add(i, None)
            stake = sum(committee.members[i].stake for i in subset)
            assert agg.total_stake == stake
            assert agg.reached == (stake >= 67), subset


@settings(max_examples=50, deadline=None)
@given(st.data())
def test_aggregator_reached_iff_stake_at_least_quorum(data: st.DataObject) -> None:
    stakes = data.draw(st.lists(st.integers(1, 100), min_size=1, max_size=7), label="stakes")
    committee = build_committee(stakes).committee
    order = data.draw(st.permutations(list(range(len(stakes)))), label="order")
    agg: StakeAggregator[int] = StakeAggregator(committee)
    running = 0
    for i in order:
        running += stakes[i]
        assert agg.add(i, i) == (running >= committee.quorum_threshold)
    assert agg.reached


def test_aggregator_duplicate_does_not_add_stake_and_keeps_first_value() -> None:
    committee = build_committee([1, 1, 1, 1]).committee
    name = committee.members[2].name
    agg: StakeAggregator[str] = StakeAggregator(committee)
    assert agg.add(name, "first") is False
    assert agg.add(name, "second") is False
    assert agg.add(2, "third") is False  # same authority by index
    assert agg.total_stake == 1
    assert agg.values == {2: "first"}
    assert agg.contains(2)
    assert agg.contains(name)
    assert not agg.contains(0)
    # Two more distinct authorities still needed.
    assert agg.add(0, "x") is False
    assert agg.add(1, "y") is True


def test_aggregator_values_is_a_copy_and_clear_resets() -> None:
    committee = build_committee([1, 1, 1, 1]).committee
    agg: StakeAggregator[str] = StakeAggregator(committee)
    agg.add(0, "a")
    agg.values[1] = "injected"
    assert agg.values == {0: "a"}
    agg.clear()
    assert agg.total_stake == 0
    assert agg.values == {}
    assert not agg.reached
    assert agg.add(0, "again") is False


def test_aggregator_unknown_authority() -> None:
    committee = build_committee([1, 1, 1, 1]).committee
    agg: StakeAggregator[str] = StakeAggregator(committee)
    with pytest.raises(UnknownAuthorityError):
        agg.add(authority_key(999).name, "x")
    with pytest.raises(UnknownAuthorityError):
        agg.add(4, "x")
    with pytest.raises(UnknownAuthorityError):
        agg.add(-1, "x")
    with pytest.raises(UnknownAuthorityError):
        agg.contains(AuthorityName(bytes(32)))
    assert agg.total_stake == 0
    assert agg.values == {}


def test_validity_aggregator_uses_validity_threshold() -> None:
    committee = build_committee([1, 1, 1, 1]).committee
    agg: StakeAggregator[str] = StakeAggregator.validity(committee)
    assert agg.threshold == committee.validity_threshold == 2
    assert agg.add(0, "a") is False
    assert agg.add(3, "b") is True

    weighted = build_committee([10, 20, 30, 40]).committee
    vagg: StakeAggregator[str] = StakeAggregator.validity(weighted)
    assert vagg.threshold == 34
    assert vagg.add(2, "30") is False
    assert vagg.add(0, "10") is True  # 40 >= 34


def test_aggregator_custom_threshold() -> None:
    committee = build_committee([1, 1, 1, 1]).committee
    agg: StakeAggregator[str] = StakeAggregator(committee, threshold=4)
    for i in range(3):
        assert agg.add(i, "v") is False
    assert agg.add(3, "v") is True


@pytest.mark.parametrize("role", ["protocol_key", "network_key"])
def test_members_sharing_a_key_are_rejected(role: str) -> None:
    """Peers are told apart by their keys: two members with one key would be ambiguous."""
    a = make_member(authority_key(0), 1, label=0)
    b = dataclasses.replace(make_member(authority_key(1), 1, label=1), **{role: getattr(a, role)})
    with pytest.raises(CommitteeError, match=role.replace("_", " ")):
        Committee.new(0, [a, b])


@pytest.mark.parametrize("threshold", [0, -1])
def test_aggregator_threshold_must_be_positive(threshold: int) -> None:
    """With a zero threshold an empty aggregation would count as reached."""
    with pytest.raises(CommitteeError):
        StakeAggregator(build_committee([1, 1, 1, 1]).committee, threshold)

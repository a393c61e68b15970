"""The validator flows (join, leave, stake, unstake) against the fake API, with both
clients: the transaction each builds, its coin selection (one coin if one covers the
stake and the fee, else merges first), refusals before anything is sent, and failures
that execute. Also the retry through an epoch change: a transaction refused with
EPOCH_ENDING or EPOCH_ENDED is sent again, the same bytes, until it executes or the
bound passes."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import httpx
import pytest

from soma.sdk import ApiError, result_error
from soma.sdk.api import EPOCH_BACKOFF_MAX_S, EPOCH_CHANGE_WAIT_S, Api
from soma.sdk.core import Done, Request, Sleep, advance
from soma.sdk.transactions import sign
from soma.sdk.validator import Registration, registration
from soma.types.base import SomaAddress
from soma.types.crypto import AccountKeyPair, AuthorityKeyPair, NetworkKeyPair, ProtocolKeyPair
from soma.types.tls import check_certificate
from soma.types.transaction import (
    AddStake,
    AddValidator,
    MergeCoins,
    RemoveValidator,
    TransferCoin,
    WithdrawStake,
)
from tests.sdk.conftest import Harness, mint, refused
from tests.sdk.fake_network import FakeNetwork

#: The fake network's minimum stake (conftest's network: fee 10).
MIN_STAKE = 1_000


def candidate(account: SomaAddress, hostname: str = "candidate") -> Registration:
    return registration(
        account,
        AuthorityKeyPair.generate(),
        ProtocolKeyPair.generate(),
        NetworkKeyPair.generate(),
        hostname,
        "127.0.0.1:7001",
        "127.0.0.1:7002",
        "127.0.0.1:7003",
    )


# --- the registration ----------------------------------------------------------------------


def test_a_registration_is_signed_by_the_authority_key_and_bound_to_the_network_key() -> None:
    account = AccountKeyPair.generate().public_key.to_address()
    network = NetworkKeyPair.generate()
    found = registration(
        account,
        AuthorityKeyPair.generate(),
        ProtocolKeyPair.generate(),
        network,
        "v",
        "h:1",
        "h:2",
        "h:3",
    )
    found.metadata.verify_proof_of_possession(found.proof_of_possession)
    check_certificate(found.metadata.tls_certificate, network.public_key)
    assert found.metadata.soma_address == account


@pytest.mark.parametrize(
    ("hostname", "address", "field"),
    [
        ("two words", "h:1", "hostname"),
        ("", "h:1", "hostname"),
        ("v", "nohost", "network_address"),
        ("v", "h:0", "network_address"),
        ("v", "h:65536", "network_address"),
    ],
)
def test_a_bad_registration_is_refused(hostname: str, address: str, field: str) -> None:
    with pytest.raises(ApiError) as e:
        registration(
            SomaAddress.zero(),
            AuthorityKeyPair.generate(),
            ProtocolKeyPair.generate(),
            NetworkKeyPair.generate(),
            hostname,
            address,
            "h:2",
            "h:3",
        )
    assert e.value.api_code == "INVALID_ARGUMENT" and field in e.value.message


# --- join ----------------------------------------------------------------------------------


async def test_join_stakes_from_one_coin_that_covers_stake_and_fee(
    api: Harness, net: FakeNetwork, key: AccountKeyPair
) -> None:
    owner = mint(net, key, MIN_STAKE + 10, 5)
    joining = candidate(owner)
    result = await api("join_validator", key, joining, MIN_STAKE)
    assert result["status"] == "success" and "merges" not in result
    kind = net.sent[-1].data.kind
    assert isinstance(kind, AddValidator) and kind.stake == MIN_STAKE
    assert kind.metadata == joining.metadata
    assert net.sent[-1].data.gas_payment == kind.coin  # the staked coin pays the fee
    (pending,) = net.system_state().validators.pending_active
    assert pending.metadata.soma_address == owner and pending.next_epoch_stake == MIN_STAKE
    assert net.balance(owner) == 5


async def test_join_merges_coins_first_when_no_coin_covers(
    api: Harness, net: FakeNetwork, key: AccountKeyPair
) -> None:
    owner = mint(net, key, 600, 400, 100, 1)
    result = await api("join_validator", key, candidate(owner), MIN_STAKE)
    assert result["status"] == "success"
    (merge,) = result["merges"]
    assert merge["status"] == "success"
    kinds = [tx.data.kind for tx in net.sent]
    # 600 + 400 cannot pay the stake and two fees (the merge's and the join's): + 100.
    assert isinstance(kinds[0], MergeCoins) and len(kinds[0].coins) == 3
    assert isinstance(kinds[1], AddValidator)
    assert net.balance(owner) == 1_101 - MIN_STAKE - 2 * 10


async def test_join_refusals_send_nothing(
    api: Harness, net: FakeNetwork, key: AccountKeyPair
) -> None:
    owner = mint(net, key, 600, 400)
    short = await refused(api, "join_validator", key, candidate(owner), MIN_STAKE)
    assert short.api_code == "INSUFFICIENT_BALANCE" and "1000 to stake" in short.message
    someone_else = candidate(AccountKeyPair.generate().public_key.to_address())
    wrong = await refused(api, "join_validator", key, someone_else, MIN_STAKE)
    assert wrong.api_code == "INVALID_ARGUMENT" and "own account" in wrong.message
    zero = await refused(api, "join_validator", key, candidate(owner), 0)
    assert zero.api_code == "INVALID_AMOUNT"


async def test_a_join_below_the_minimum_stake_executes_and_fails(
    api: Harness, net: FakeNetwork, key: AccountKeyPair
) -> None:
    owner = mint(net, key, 10_000)
    result = await api("join_validator", key, candidate(owner), MIN_STAKE - 1)
    assert result["status"] == "failure"
    code, message = result_error(result) or ("", "")
    assert code == "INSUFFICIENT_STAKE" and "minimum" in message
    assert net.balance(owner) == 10_000 - 10  # only the fee


# --- stake, unstake, leave -----------------------------------------------------------------


async def test_add_and_withdraw_stake(api: Harness, net: FakeNetwork, key: AccountKeyPair) -> None:
    owner = mint(net, key, 1_000)
    net.make_validator(owner, 5_000)
    added = await api("add_stake", key, 300)
    assert added["status"] == "success" and isinstance(net.sent[-1].data.kind, AddStake)
    assert net.system_state().validators.find(owner).next_epoch_stake == 5_300  # type: ignore[union-attr]
    taken = await api("withdraw_stake", key, 2_000)
    assert taken["status"] == "success"
    assert net.sent[-1].data.kind == WithdrawStake(2_000)
    assert net.system_state().validators.find(owner).next_epoch_stake == 3_300  # type: ignore[union-attr]
    assert net.balance(owner) == 1_000 - 300 - 2 * 10 + 2_000
    # Below the minimum while staying: executes and fails, with the reason.
    below = await api("withdraw_stake", key, 3_000)
    assert below["status"] == "failure"
    assert (result_error(below) or ("",))[0] == "INSUFFICIENT_STAKE"


async def test_stake_and_unstake_of_no_validator_fail_with_the_reason(
    api: Harness, net: FakeNetwork, key: AccountKeyPair
) -> None:
    mint(net, key, 10_000)
    for name, amount in (("add_stake", 100), ("withdraw_stake", 100)):
        result = await api(name, key, amount)
        assert result["status"] == "failure"
        assert (result_error(result) or ("",))[0] == "VALIDATOR_NOT_FOUND"


async def test_leave(api: Harness, net: FakeNetwork, key: AccountKeyPair) -> None:
    owner = mint(net, key, 100)
    for _ in range(4):  # the minimum that must stay
        net.make_validator(AccountKeyPair.generate().public_key.to_address(), 1_000)
    net.make_validator(owner, 1_000)
    result = await api("leave_validator", key)
    assert result["status"] == "success" and net.sent[-1].data.kind == RemoveValidator()
    assert net.system_state().validators.pending_removals == (owner,)


async def test_leave_without_a_coin_to_pay_is_refused(
    api: Harness, net: FakeNetwork, key: AccountKeyPair
) -> None:
    error = await refused(api, "leave_validator", key)
    assert error.api_code == "NO_COINS" and "fee 10" in error.message


# --- through an epoch change ---------------------------------------------------------------


@pytest.fixture
def quick_retries(api: Harness) -> Iterator[None]:
    api.client.api.epoch_backoff_s = 0.001
    yield


@pytest.mark.parametrize("code", ["EPOCH_ENDING", "EPOCH_ENDED"])
@pytest.mark.usefixtures("quick_retries")
async def test_a_transfer_refused_for_an_epoch_change_is_sent_again(
    api: Harness, net: FakeNetwork, key: AccountKeyPair, other: SomaAddress, code: str
) -> None:
    mint(net, key, 1_000)
    net.epoch_refusals, net.epoch_refusal_code = 3, code
    result = await api("transfer", key, other, 5)
    assert result["status"] == "success" and net.balance(other) == 5
    assert net.posts() == 4 and len(net.sent) == 1


@pytest.mark.usefixtures("quick_retries")
async def test_a_faucet_grant_refused_for_an_epoch_change_is_asked_again(
    api: Harness, net: FakeNetwork, other: SomaAddress
) -> None:
    net.epoch_refusals = 2
    assert (await api("faucet", other))["status"] == "success"
    assert net.posts() == 3 and net.balance(other) == 1_000_000


class FakeClock:
    """A monotonic clock that moves on by `step` seconds at every reading."""

    def __init__(self, step: float) -> None:
        self.now = 1_000.0
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


@pytest.mark.usefixtures("quick_retries")
async def test_the_retry_through_an_epoch_change_is_bounded(
    api: Harness, net: FakeNetwork, key: AccountKeyPair, other: SomaAddress
) -> None:
    mint(net, key, 1_000)
    net.epoch_refusals, net.epoch_refusal_code = 10**6, "EPOCH_ENDED"
    api.client.api.clock = FakeClock(EPOCH_CHANGE_WAIT_S / 4)
    with pytest.raises(ApiError) as e:
        await api("transfer", key, other, 5)
    assert e.value.api_code == "EPOCH_ENDED" and "120 s" in e.value.message
    # Refused at readings 1 (the deadline set), 2, 3, 4 (sleeps) and 5 (past it).
    assert net.posts() == 5 and not net.sent


def _refusal(code: str) -> httpx.Response:
    return httpx.Response(400, json={"code": code, "message": "epoch 0 is closing"})


def test_the_same_bytes_are_sent_again_after_growing_waits() -> None:
    key = AccountKeyPair.generate()
    net = FakeNetwork()
    gas = net.mint(key.public_key.to_address(), 100)
    tx = sign(key, TransferCoin(gas, 1, SomaAddress.zero()), gas, 10)
    api = Api(clock=FakeClock(0.0))
    flow = api.execute(tx)
    step = advance(flow, None)
    sent, waits = [], []
    for _ in range(6):
        assert isinstance(step, Request)
        sent.append(json.dumps(step.body))
        step = advance(flow, _refusal("EPOCH_ENDING"))
        assert isinstance(step, Sleep)
        waits.append(step.seconds)
        step = advance(flow, None)
    assert waits == [0.5, 1.0, 2.0, 4.0, EPOCH_BACKOFF_MAX_S, EPOCH_BACKOFF_MAX_S]
    assert isinstance(step, Request) and len(set(sent)) == 1
    assert base64.b64decode(json.loads(sent[0])["tx_bytes"]) == tx.to_bytes()
    done = advance(flow, httpx.Response(200, json={"digest": "d", "status": "success"}))
    assert isinstance(done, Done) and done.value["status"] == "success"


def test_other_refusals_are_not_retried() -> None:
    key = AccountKeyPair.generate()
    net = FakeNetwork()
    gas = net.mint(key.public_key.to_address(), 100)
    flow = Api().execute(sign(key, TransferCoin(gas, 1, SomaAddress.zero()), gas, 10))
    assert isinstance(advance(flow, None), Request)
    with pytest.raises(ApiError) as e:
        advance(flow, _refusal("INSUFFICIENT_GAS"))
    assert e.value.api_code == "INSUFFICIENT_GAS"

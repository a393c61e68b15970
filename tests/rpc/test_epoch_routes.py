"""The API's views of epochs: `/committee` with each member's voting power (basis
points of the total stake, rounded down), service address and account; `/status`
with the parameters a candidate validator needs; `/supply`; and their OpenAPI
models (the responses are validated against them, so a wrong shape is a 500 here)."""

from __future__ import annotations

import dataclasses
from typing import Any, cast

import httpx
import pytest

from soma.orchestrator.chain_reader import ChainReader, NetworkSupply, NodeStatus
from soma.rpc.app import create_app
from soma.rpc.limits import ApiLimits
from soma.sdk.validator import registration
from soma.types.base import SomaAddress
from soma.types.crypto import AccountKeyPair, AuthorityKeyPair, NetworkKeyPair, ProtocolKeyPair
from soma.types.genesis import DEFAULT_PARAMETERS
from soma.types.system_state import SystemState, Validator, ValidatorSet

SUPPLY = NetworkSupply(
    coins=2**64 + 5, stake=30, pending_fees=7, total=2**64 + 42, genesis=2**64 + 42
)


def _state(stakes: list[int]) -> tuple[SystemState, list[SomaAddress]]:
    accounts = [AccountKeyPair.generate().public_key.to_address() for _ in stakes]
    validators = []
    for i, (stake, account) in enumerate(zip(stakes, accounts, strict=True)):
        metadata = registration(
            account,
            AuthorityKeyPair.generate(),
            ProtocolKeyPair.generate(),
            NetworkKeyPair.generate(),
            f"validator-{i}",
            f"127.0.0.1:{1000 + i}",
            f"127.0.0.1:{2000 + i}",
            f"127.0.0.1:{3000 + i}",
        ).metadata
        validators.append(Validator(metadata, stake, stake))
    state = SystemState(
        epoch=3,
        protocol_version=1,
        validators=ValidatorSet(tuple(validators), (), ()),
        parameters=dataclasses.replace(DEFAULT_PARAMETERS, epoch_duration_ms=60_000),
        epoch_start_timestamp_ms=1_700_000_000_000,
    )
    return state, accounts


class Reader:
    """The two reads these routes make."""

    def __init__(self, state: SystemState) -> None:
        self.state = state

    async def status(self) -> NodeStatus:
        return NodeStatus(
            epoch=self.state.epoch,
            ordered_commit=9,
            latest_commit=9,
            latest_certified_commit=8,
            state_root=bytes(32),
            highest_certified_commit=8,
            fork=None,
            system_state=self.state,
        )

    async def supply(self) -> NetworkSupply:
        return SUPPLY


async def _get(state: SystemState, path: str) -> Any:
    app = create_app(cast(ChainReader, Reader(state)), limits=ApiLimits(rate_per_s=None))
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        response = await client.get(path)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize(
    ("stakes", "powers"),
    [
        ([1, 2, 3, 4], [1000, 2000, 3000, 4000]),
        ([1, 1, 1], [3333, 3333, 3333]),  # rounded down: they sum to 9,999
        ([5], [10_000]),
        ([2**62, 1], [9999, 0]),
    ],
)
async def test_committee_members_have_voting_power_address_and_account(
    stakes: list[int], powers: list[int]
) -> None:
    state, accounts = _state(stakes)
    found = await _get(state, "/committee")
    assert found["epoch"] == 3 and found["total_stake"] == sum(stakes)
    by_hostname = {m["hostname"]: m for m in found["members"]}
    for i, (stake, power, account) in enumerate(zip(stakes, powers, accounts, strict=True)):
        member = by_hostname[f"validator-{i}"]
        assert (member["stake"], member["voting_power"]) == (stake, power)
        assert member["address"] == member["network_address"] == f"127.0.0.1:{1000 + i}"
        assert member["account"] == str(account)
        for kept in ("name", "protocol_key", "network_key", "tls_certificate", "p2p_address"):
            assert kept in member


async def test_status_shows_the_epoch_and_what_a_candidate_needs() -> None:
    state, _ = _state([1, 1, 1, 1])
    found = await _get(state, "/status")
    assert found["epoch"] == 3
    assert found["transaction_fee"] == DEFAULT_PARAMETERS.transaction_fee
    assert found["min_validator_stake"] == DEFAULT_PARAMETERS.min_validator_stake
    assert found["epoch_duration_ms"] == 60_000
    assert found["epoch_start_timestamp_ms"] == 1_700_000_000_000


async def test_supply() -> None:
    state, _ = _state([1])
    found = await _get(state, "/supply")
    assert found == {
        "total": SUPPLY.total,
        "genesis": SUPPLY.genesis,
        "coins": SUPPLY.coins,
        "stake": SUPPLY.stake,
        "pending_fees": SUPPLY.pending_fees,
    }


def test_the_openapi_document_describes_supply_and_voting_power() -> None:
    doc = create_app(reader=object()).openapi()  # type: ignore[arg-type]
    supply = doc["paths"]["/supply"]["get"]
    assert supply["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Supply"
    }
    schemas = doc["components"]["schemas"]
    assert set(schemas["Supply"]["required"]) == {
        "total",
        "genesis",
        "coins",
        "stake",
        "pending_fees",
    }
    member = schemas["CommitteeMember"]["properties"]
    assert (member["voting_power"]["minimum"], member["voting_power"]["maximum"]) == (0, 10_000)
    assert "basis points" in member["voting_power"]["description"]
    assert {"address", "account"} <= set(member)
    status = schemas["Status"]["properties"]
    assert {"epoch", "min_validator_stake", "transaction_fee", "epoch_duration_ms"} <= set(status)

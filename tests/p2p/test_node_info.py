"""Signed node infos: what is signed, what verifies, which addresses are well formed,
and the byte layout docs/formats.md states."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from soma.p2p import wire
from soma.p2p.node_info import (
    INTENT,
    MAX_ADDRESSES,
    InvalidNodeInfoError,
    NodeInfo,
    SignedNodeInfo,
    check_address,
)
from soma.types.intent import IntentScope, intent_message_digest
from tests.types.test_formats_doc import DOC, _schema_line

from .support import T0, info, key


def test_a_signed_info_survives_its_bytes_and_verifies() -> None:
    signed = info(1)
    again = SignedNodeInfo.from_bytes(signed.to_bytes())
    assert again == signed
    again.verify()
    assert again.peer_id == key(1).public_key and again.timestamp_ms == T0


def test_the_signature_covers_the_intent_and_every_field() -> None:
    signed = info(1)
    assert INTENT.scope is IntentScope.DISCOVERY_PEERS
    digest = intent_message_digest(INTENT, signed.info.to_bytes())
    key(1).public_key.verify(digest, signed.signature)
    for change in ({"timestamp_ms": T0 + 1}, {"addresses": ("node-1:9",)}):
        altered = SignedNodeInfo(dataclasses.replace(signed.info, **change), signed.signature)
        with pytest.raises(InvalidNodeInfoError):
            altered.verify()


def test_the_byte_layout() -> None:
    node = NodeInfo(key(1).public_key, ("a:1", "b:2"), 0x0102030405060708)
    assert node.to_bytes() == (
        bytes(key(1).public_key)
        + b"\x02"
        + b"\x03a:1"
        + b"\x03b:2"
        + bytes.fromhex("0807060504030201")
    )
    signed = info(1)
    assert signed.to_bytes() == signed.info.to_bytes() + bytes(signed.signature)


@pytest.mark.parametrize(
    "address", ["127.0.0.1:1", "[::1]:8080", "node-1.example_net:65535", "a" * 249 + ":65535"]
)
def test_well_formed_addresses(address: str) -> None:
    check_address(address)


@pytest.mark.parametrize(
    "address",
    [
        "",
        "host",
        ":80",
        "host:",
        "host:0",
        "host:65536",
        "host:123456",
        "host:-1",
        "ho st:1",
        "host:1\n",
        "[::1]80",
        "host:1:2x",
        "a" * 250 + ":65535",
    ],
)
def test_malformed_addresses(address: str) -> None:
    with pytest.raises(InvalidNodeInfoError):
        check_address(address)


@given(st.text(max_size=300))
def test_any_text_is_an_address_or_an_invalid_node_info(text: str) -> None:
    try:
        check_address(text)
    except InvalidNodeInfoError:
        return
    host, _, port = text.rpartition(":")
    assert host and 0 < int(port) < 65536 and len(text) <= 255
    assert text.isascii() and not any(c.isspace() for c in text)


@pytest.mark.parametrize("count", [0, MAX_ADDRESSES + 1])
def test_the_number_of_addresses_is_bounded(count: int) -> None:
    addresses = [f"h:{i + 1}" for i in range(count)]
    with pytest.raises(InvalidNodeInfoError):
        SignedNodeInfo.sign(key(1), addresses, T0)
    # The same from the wire: a correctly signed info with too many addresses.
    node = NodeInfo(key(1).public_key, tuple(addresses), T0)
    signed = SignedNodeInfo(node, key(1).sign(node.signing_digest()))
    with pytest.raises(InvalidNodeInfoError, match="addresses"):
        SignedNodeInfo.from_bytes(signed.to_bytes()).verify()


def test_the_largest_info_fits_the_request_cap() -> None:
    addresses = [f"{'h' * 249}:{60000 + i}" for i in range(MAX_ADDRESSES)]
    signed = SignedNodeInfo.sign(key(1), addresses, T0)
    signed.verify()
    request = wire.ExchangePeersRequest(signed).to_bytes()
    assert len(request) <= wire.EXCHANGE_PEERS_MAX_REQUEST_BYTES
    reply = wire.ExchangePeersResponse(signed, (signed,) * wire.MAX_PEERS_PER_REPLY)
    assert len(reply.to_bytes()) <= wire.EXCHANGE_PEERS_MAX_RESPONSE_BYTES


@pytest.mark.parametrize(
    "cls",
    [NodeInfo, SignedNodeInfo, wire.ExchangePeersRequest, wire.ExchangePeersResponse],
    ids=lambda c: c.__name__,
)
def test_formats_doc_states_the_p2p_schemas(cls: type) -> None:
    line = _schema_line(cls)
    assert line in DOC.splitlines(), f"docs/formats.md lacks the line: {line}"

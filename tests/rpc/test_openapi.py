"""The OpenAPI document tells the truth: the patterns it gives for identifiers are the
ones the routes' parsers accept, every route documents its errors and the limits', and
FastAPI's 422 (which the API never answers) is gone."""

from __future__ import annotations

import re
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from soma.rpc import api_models as m
from soma.rpc.app import create_app
from soma.types.base import ObjectID, SomaAddress
from soma.types.error import SomaError

HEXISH = st.text(alphabet="0123456789abcdefABCDEFxXg ", max_size=70)


def _accepts(parse: Any, text: str) -> bool:
    try:
        parse(text)
    except SomaError:
        return False
    return True


@given(st.one_of(HEXISH, st.from_regex(m.ADDRESS_PATTERN, fullmatch=True)))
def test_the_address_pattern_is_what_the_parser_accepts(text: str) -> None:
    assert bool(re.fullmatch(m.ADDRESS_PATTERN, text)) == _accepts(SomaAddress.from_hex, text)


@given(st.one_of(HEXISH, st.from_regex(m.OBJECT_ID_PATTERN, fullmatch=True)))
def test_the_object_id_pattern_is_what_the_parser_accepts(text: str) -> None:
    assert bool(re.fullmatch(m.OBJECT_ID_PATTERN, text)) == _accepts(ObjectID.from_hex, text)


def _document() -> dict[str, Any]:
    return create_app(reader=object(), faucet=object()).openapi()  # type: ignore[arg-type]


def test_every_route_documents_its_errors_and_never_a_422() -> None:
    doc = _document()
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            assert "422" not in responses, (method, path)
            for status in ("413", "414", "429", "431"):
                body = responses[status]["content"]["application/json"]["schema"]
                assert body == {"$ref": "#/components/schemas/ErrorBody"}, (method, path)
            assert responses["429"]["headers"]["Retry-After"]["required"] is True
            if "parameters" in operation or "requestBody" in operation:
                assert "400" in responses, (method, path)
    assert "HTTPValidationError" not in doc["components"]["schemas"]


def test_identifiers_carry_their_patterns() -> None:
    doc = _document()
    params = {
        (path, p["name"]): p["schema"]
        for path, item in doc["paths"].items()
        for op in item.values()
        for p in op.get("parameters", [])
    }
    assert params[("/addresses/{address}/balance", "address")]["pattern"] == m.ADDRESS_PATTERN
    assert params[("/objects/{object_id}", "object_id")]["pattern"] == m.OBJECT_ID_PATTERN
    assert params[("/transactions/{digest}", "digest")]["pattern"] == m.DIGEST_PATTERN
    limit = params[("/addresses/{address}/coins", "limit")]
    assert (limit["minimum"], limit["maximum"]) == (1, m.MAX_PAGE)
    bodies = doc["components"]["schemas"]
    assert bodies["ExecuteRequest"]["properties"]["tx_bytes"]["pattern"] == m.BASE64_PATTERN
    assert bodies["FaucetRequest"]["properties"]["address"]["pattern"] == m.ADDRESS_PATTERN


def test_coin_cursors_cover_exactly_the_u64_range() -> None:
    from soma.rpc.app import ApiError, _coin_cursor

    object_id = "0x" + "ab" * 32
    assert _coin_cursor(f"{2**64 - 1:016x}-{object_id}").balance == 2**64 - 1
    assert _coin_cursor(f"{0:016x}-{object_id}").balance == 0
    for bad in (f"{2**64:x}-{object_id}", f"12-{object_id}", "zz", f"{0:016x}-0x12zz"):
        try:
            _coin_cursor(bad)
        except ApiError as e:
            assert e.status == 400 and e.error_code == "INVALID_CURSOR"
        else:
            raise AssertionError(bad)
    assert re.fullmatch(m.COIN_CURSOR_PATTERN, f"{2**64 - 1:016x}-{object_id}")
    assert not re.fullmatch(m.COIN_CURSOR_PATTERN, f"{2**64:x}-{object_id}")

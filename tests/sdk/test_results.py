"""`result_error`: every execution failure becomes a stable code and one plain line."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from soma.rpc.json_form import to_json
from soma.sdk.results import _MESSAGES, result_error, screaming_snake
from soma.types.base import ObjectID
from soma.types.effects import ExecutionFailureStatus, InputObjectConsumed

SAMPLES: dict[str, Any] = {"ObjectID": ObjectID.from_int(0xAB), "u64": 5, "str": "a reason"}
VARIANTS = sorted(ExecutionFailureStatus.__bcs_variants__.values(), key=lambda v: v.__name__)


def failed(error: ExecutionFailureStatus) -> dict[str, Any]:
    """A failed execution result as the API renders it."""
    effects = {"status": "failure", "error": to_json(error)}
    return {"digest": "d", "status": "failure", "fee": 1, "effects": effects}


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.__name__)
def test_every_failure_status_has_a_code_and_one_line(variant: type) -> None:
    fields = {f.name: SAMPLES[str(f.type)] for f in dataclasses.fields(variant)}
    code, message = result_error(failed(variant(**fields))) or ("", "")
    assert variant.__name__ in _MESSAGES
    assert code == screaming_snake(variant.__name__)
    assert code.replace("_", "").isalpha() and code.isupper()
    assert "\n" not in message and "{" not in message
    for value in fields.values():
        assert str(value) in message


def test_input_object_consumed() -> None:
    oid = ObjectID.from_int(1)
    assert result_error(failed(InputObjectConsumed(oid, 5))) == (
        "INPUT_OBJECT_CONSUMED",
        f"input object {oid} version 5 was already consumed by another transaction",
    )


def test_success_is_no_error() -> None:
    assert result_error({"status": "success", "effects": {"status": "success"}}) is None


def test_a_transaction_lookup_result_is_read_too() -> None:
    looked_up = {
        "digest": "d",
        "effects": {"status": "failure", "error": {"type": "InsufficientGas"}},
    }
    assert result_error(looked_up) == (
        "INSUFFICIENT_GAS",
        "the gas coin cannot pay the fee, or the gas budget is below the fee",
    )


def test_an_unknown_failure_still_reads() -> None:
    result = {"status": "failure", "effects": {"error": {"type": "QuotaExceeded", "limit": 3}}}
    assert result_error(result) == ("QUOTA_EXCEEDED", "quota exceeded (limit 3)")
    assert result_error({"status": "failure", "effects": {}}) == (
        "EXECUTION_FAILED",
        "the transaction failed (its effects give no reason)",
    )

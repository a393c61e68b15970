"""What a failed transaction's result means, as a stable code and one plain line.

A transaction that executes and fails is final (its fee is charged), so the SDK returns
its result rather than raising; `result_error` lets a caller (the CLI's exit code, a
script's retry logic) act on why, by code, without knowing the effects' JSON form.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from soma.types.effects import screaming_snake

#: One line for each ExecutionFailureStatus variant (soma.types.effects), filled from
#: the variant's fields as the API renders them.
_MESSAGES: dict[str, str] = {
    "InsufficientGas": "the gas coin cannot pay the fee, or the gas budget is below the fee",
    "InsufficientCoinBalance": "coin {object_id} holds {balance}, {required} needed",
    "ObjectNotFound": "object {object_id} does not exist at the version the transaction names",
    "InvalidOwnership": "object {object_id} is not owned by the sender",
    "InputObjectConsumed": (
        "input object {object_id} version {version} was already consumed by another transaction"
    ),
    "CoinBalanceOverflow": "coin {object_id} would hold more than 2^64 - 1",
    "InvalidObjectType": "object {object_id} is not of the type the transaction needs",
    "InvalidArguments": "invalid arguments: {reason}",
    "ValidatorAlreadyExists": "already a validator: {reason}",
    "ValidatorNotFound": "not a validator: {reason}",
    "InsufficientStake": "insufficient stake: {reason}",
}


def result_error(result: Mapping[str, Any]) -> tuple[str, str] | None:
    """`(code, message)` for a transaction result (of `execute`, `transfer`... or of
    `transaction(digest)`) whose execution failed; None if it succeeded."""
    effects = result.get("effects")
    effects = effects if isinstance(effects, Mapping) else {}
    status = result.get("status", effects.get("status"))
    error = effects.get("error", result.get("error"))
    if isinstance(error, Mapping) and isinstance(error.get("type"), str):
        return describe_failure(error)
    if status == "failure":
        return "EXECUTION_FAILED", "the transaction failed (its effects give no reason)"
    return None


def describe_failure(error: Mapping[str, Any]) -> tuple[str, str]:
    """The code and line of one failure status in its JSON form (`{"type": ...}`)."""
    kind = str(error["type"])
    fields = {k: v for k, v in error.items() if k != "type"}
    template = _MESSAGES.get(kind)
    try:
        message = template.format_map(fields) if template else _generic(kind, fields)
    except (KeyError, IndexError, ValueError):
        message = _generic(kind, fields)
    return screaming_snake(kind), " ".join(message.split())


def _generic(kind: str, fields: Mapping[str, Any]) -> str:
    """A failure this SDK does not know (a newer server): its name in words and fields."""
    words = screaming_snake(kind).replace("_", " ").lower()
    details = ", ".join(f"{k} {v}" for k, v in fields.items())
    return f"{words} ({details})" if details else words

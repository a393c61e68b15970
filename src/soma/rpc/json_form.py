"""The JSON form of soma values, for the HTTP API and the CLI's `--json`.

Structs become objects of their fields; an enum variant adds `"type"` (its name);
addresses and object IDs are 0x-hex, digests Base58 (their usual text forms), other
bytes base64; integers stay integers (JSON numbers are exact in Python, and clients
read them as big integers).
"""

from __future__ import annotations

import base64
import dataclasses
import enum
from typing import Any

from soma.types.base import Bytes32Id
from soma.types.bcs import BcsEnum, BcsStruct
from soma.types.digests import Digest
from soma.types.effects import ExecutionFailure, TransactionEffects
from soma.types.object import Object


def to_json(value: object) -> Any:
    if isinstance(value, enum.Enum):
        return value.name
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, Bytes32Id | Digest):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, tuple | list):
        return [to_json(v) for v in value]
    if isinstance(value, BcsStruct):
        out: dict[str, Any] = {}
        if isinstance(value, BcsEnum):
            out["type"] = type(value).__name__
        for field in dataclasses.fields(value):  # type: ignore[arg-type]
            out[field.name] = to_json(getattr(value, field.name))
        return out
    raise TypeError(f"no JSON form for {type(value).__name__}")


def object_json(obj: Object) -> dict[str, Any]:
    """An object with its digest and decoded contents (a coin's balance as `balance`)."""
    out: dict[str, Any] = to_json(obj)
    out["digest"] = str(obj.digest())
    out["data"] = to_json(obj.data())
    out.pop("contents")
    if obj.is_coin():
        out["balance"] = obj.coin_balance()
    return out


def effects_json(effects: TransactionEffects) -> dict[str, Any]:
    out: dict[str, Any] = to_json(effects)
    out["digest"] = str(effects.digest())
    out["status"] = "success" if effects.status.is_success() else "failure"
    if isinstance(effects.status, ExecutionFailure):
        out["error"] = to_json(effects.status.error)
    out["created"] = [to_json(r) for r in effects.created()]
    out["mutated"] = [to_json(r) for r in effects.mutated()]
    out["deleted"] = [str(i) for i in effects.deleted()]
    gas = effects.gas_object()
    out["gas_object"] = None if gas is None else to_json(gas)
    return out

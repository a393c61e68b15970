"""The API's JSON shapes, read into SDK values.

Every read of a field goes through here, so an answer of the wrong shape (a server of
another version) is an `INVALID_RESPONSE` ApiError naming what was expected, never a
KeyError from deep inside a payment.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeAlias, TypeVar

from soma.sdk.coins import Coin
from soma.sdk.core import invalid_response
from soma.sdk.errors import ApiError
from soma.types.base import ObjectID, SomaAddress
from soma.types.digests import ObjectDigest
from soma.types.error import SomaError
from soma.types.object import ObjectRef

T = TypeVar("T")

#: Page sizes the API takes.
MIN_PAGE_LIMIT = 1
MAX_PAGE_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a listing; `next_cursor` fetches the next (None on the last)."""

    items: tuple[T, ...]
    next_cursor: str | None


#: An address as the SDK takes it: parsed, or its text form.
Address: TypeAlias = SomaAddress | str
_Id = TypeVar("_Id", SomaAddress, ObjectID)


def _parse(kind: type[_Id], value: _Id | str, code: str) -> _Id:
    if isinstance(value, kind):
        return value
    try:
        return kind.from_hex(str(value))
    except SomaError as e:
        raise ApiError(code, e.message) from None


def address(value: Address) -> SomaAddress:
    """An address given as a `SomaAddress` or as text (the full 64 hex digits, 0x
    optional): a short one is refused rather than padded, since padding a typo sends
    coins to an address nobody holds the key of."""
    return _parse(SomaAddress, value, "INVALID_ADDRESS")


def object_id(value: ObjectID | str) -> ObjectID:
    """An object ID given parsed or as text (the short form of system objects too)."""
    return _parse(ObjectID, value, "INVALID_OBJECT_ID")


def page_params(cursor: str | None, limit: int | None) -> dict[str, str | int]:
    """The query of a page request; a limit out of range is refused before sending."""
    params: dict[str, str | int] = {}
    if limit is not None:
        if not MIN_PAGE_LIMIT <= limit <= MAX_PAGE_LIMIT:
            raise ApiError("INVALID_REQUEST", f"limit must be {MIN_PAGE_LIMIT} to {MAX_PAGE_LIMIT}")
        params["limit"] = limit
    if cursor is not None:
        params["cursor"] = cursor
    return params


def as_dict(data: Any, what: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise invalid_response(what, data)
    return data


def ref_from_json(data: Mapping[str, Any]) -> ObjectRef:
    try:
        return ObjectRef(
            ObjectID.from_hex(data["object_id"]),
            int(data["version"]),
            ObjectDigest.from_base58(data["digest"]),
        )
    except (KeyError, TypeError, ValueError, SomaError):
        raise invalid_response("an object reference", data) from None


def coin_from_json(data: Mapping[str, Any]) -> Coin:
    try:
        balance = int(data["balance"])
    except (KeyError, TypeError, ValueError):
        raise invalid_response("a coin", data) from None
    return Coin(ref_from_json(data), balance)


def page_from_json(
    data: Any, key: str, item: Callable[[Mapping[str, Any]], T], cursor: str | None
) -> Page[T]:
    """A page of `key` items; a next cursor equal to the one just used would page
    forever, so it is refused."""
    body = as_dict(data, f"a page of {key}")
    items, next_cursor = body.get(key), body.get("next_cursor")
    if not isinstance(items, list) or not (next_cursor is None or isinstance(next_cursor, str)):
        raise invalid_response(f"a page of {key}", data)
    if next_cursor is not None and next_cursor == cursor:
        raise invalid_response(f"a page of {key} (its cursor does not advance)", data)
    return Page(tuple(item(as_dict(entry, key)) for entry in items), next_cursor)


def int_field(data: Any, key: str, what: str) -> int:
    try:
        return int(as_dict(data, what)[key])
    except (KeyError, TypeError, ValueError):
        raise invalid_response(what, data) from None


def written_ref(result: Mapping[str, Any], object_id: ObjectID) -> ObjectRef:
    """The new reference of `object_id` after an executed transaction wrote it (a merge
    target, which is also the gas coin), read from the result's effects."""
    effects = as_dict(result.get("effects"), "transaction effects")
    candidates = [effects.get("gas_object"), *(effects.get("mutated") or ())]
    for entry in candidates:
        if isinstance(entry, dict):
            ref = ref_from_json(entry)
            if ref.object_id == object_id:
                return ref
    raise invalid_response(f"the effects (no new version of {object_id})", effects)


def succeeded(result: Mapping[str, Any]) -> bool:
    return result.get("status") == "success"

"""The API's error with a status, and the parsers of the identifiers in its paths and
queries: each refuses bad input with a 400 and its own code (`INVALID_ADDRESS`, ...), so
a client learns what was wrong in plain words rather than from a schema validator. The
patterns the OpenAPI document gives for the same identifiers are in `api_models`;
tests/rpc/test_openapi.py holds the two to each other."""

from __future__ import annotations

import re

from soma.rpc.api_models import DIGEST_PATTERN
from soma.types.base import ObjectID, SomaAddress
from soma.types.digests import TransactionDigest
from soma.types.error import SomaError


class ApiError(SomaError):
    """An error answered to an HTTP client, with its status."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = code


def parse_address(text: str) -> SomaAddress:
    try:
        return SomaAddress.from_hex(text)
    except SomaError as e:
        raise ApiError(400, "INVALID_ADDRESS", e.message) from None


def parse_object_id(text: str) -> ObjectID:
    try:
        return ObjectID.from_hex(text)
    except SomaError as e:
        raise ApiError(400, "INVALID_OBJECT_ID", e.message) from None


def parse_digest(text: str) -> TransactionDigest | None:
    """The digest `text` names; None when it is Base58 of the documented length that
    does not decode to 32 bytes (no transaction has such a digest: a 404)."""
    try:
        return TransactionDigest.from_base58(text)
    except SomaError as e:
        if re.fullmatch(DIGEST_PATTERN, text):
            return None
        raise ApiError(400, "INVALID_DIGEST", e.message) from None

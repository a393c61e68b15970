"""Text forms of binary values: Base58 for digests, hex for addresses and object IDs,
base64 for key files. Parsing errors are `FormatError`, so a bad string typed into the CLI
or sent to the API becomes a clear 4xx, not a traceback."""

from __future__ import annotations

import base64
import binascii

from soma.types.error import FormatError

_B58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {c: i for i, c in enumerate(_B58_ALPHABET)}


def b58encode(data: bytes) -> str:
    """Bitcoin-alphabet Base58, leading zero bytes kept as '1' characters."""
    zeros = len(data) - len(data.lstrip(b"\0"))
    num = int.from_bytes(data, "big")
    chars = []
    while num:
        num, rem = divmod(num, 58)
        chars.append(_B58_ALPHABET[rem])
    return "1" * zeros + "".join(reversed(chars))


def b58decode(text: str) -> bytes:
    num = 0
    for c in text:
        try:
            num = num * 58 + _B58_INDEX[c]
        except KeyError:
            raise FormatError(f"invalid Base58 character {c!r} in {text!r}") from None
    zeros = len(text) - len(text.lstrip("1"))
    body = num.to_bytes((num.bit_length() + 7) // 8, "big") if num else b""
    return b"\0" * zeros + body


_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


def hex_decode(text: str) -> bytes:
    """Hex with an optional 0x prefix. Strict: an even number of hex digits and nothing
    else (bytes.fromhex alone would skip spaces)."""
    raw = text[2:] if text.startswith(("0x", "0X")) else text
    if len(raw) % 2 or not _HEX_DIGITS.issuperset(raw):
        raise FormatError(f"invalid hex string {text!r}")
    return bytes.fromhex(raw)


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def b64decode(text: str) -> bytes:
    try:
        return base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise FormatError("invalid base64 text") from None

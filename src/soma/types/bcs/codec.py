"""The codec core: `Codec` objects, `encode`/`decode`, and ULEB128.

A `Codec` is a pair of plain functions specialised to one wire type, so encoding a
value is a chain of direct calls with no per-value dispatch on type.
"""

from __future__ import annotations

import dataclasses
import struct
import typing
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from soma.types.error import (
    BcsDecodeError,
    BcsEncodeError,
    IntegerOutOfRangeError,
    InvalidValueError,
    NonCanonicalUlebError,
    SomaError,
    TrailingBytesError,
    UnexpectedEndError,
)

T = TypeVar("T")

#: BCS caps sequence lengths at 2^31 - 1 (the Rust crate's MAX_SEQUENCE_LENGTH).
MAX_SEQUENCE_LENGTH = (1 << 31) - 1
U32_MAX = (1 << 32) - 1

Encoder = Callable[[Any, bytearray], None]
Decoder = Callable[[bytes, int], tuple[Any, int]]


class Codec(Generic[T]):
    """How one wire type is written and read.

    `enc(value, out)` appends to `out`; `dec(buf, pos)` returns `(value, new_pos)` and
    raises a `BcsDecodeError` subclass on malformed input. `min_size` is the fewest
    bytes any value occupies, used to reject absurd lengths before allocating.
    """

    __slots__ = ("dec", "enc", "inline", "min_size", "name")

    def __init__(
        self,
        name: str,
        enc: Encoder,
        dec: Decoder,
        min_size: int,
        inline: Inline | None = None,
    ) -> None:
        self.name = name
        self.enc = enc
        self.dec = dec
        self.min_size = min_size
        self.inline = inline

    def __repr__(self) -> str:
        return f"Codec({self.name})"


@dataclasses.dataclass(frozen=True, slots=True)
class Inline:
    """How a fixed-size codec can be inlined into generated struct code: a `struct`
    packer for an integer, or raw bytes (optionally of a bytes newtype `wrap`, whose
    constructor may be skipped when it checks nothing but the length). The generated
    code does one bounds check for a run of fixed-size fields."""

    size: int
    packer: struct.Struct | None = None
    wrap: type[bytes] | None = None
    length_only: bool = False


def encode(value: T, codec: Codec[T]) -> bytes:
    """Encode `value` with `codec`; a value that does not fit raises `BcsEncodeError`."""
    out = bytearray()
    try:
        codec.enc(value, out)
    except SomaError:
        raise
    except (struct.error, TypeError, ValueError, OverflowError, AttributeError, KeyError) as e:
        raise BcsEncodeError(f"cannot encode {type(value).__name__} as {codec.name}: {e}") from e
    return bytes(out)


def decode(data: bytes | bytearray | memoryview, codec: Codec[T]) -> T:
    """Decode exactly one value from `data`; anything left over is `TrailingBytesError`."""
    buf = data if type(data) is bytes else bytes(data)
    try:
        value, pos = codec.dec(buf, 0)
    except BcsDecodeError:
        raise
    except SomaError as e:
        # An invariant check in a type's constructor (e.g. an unsorted committee).
        raise InvalidValueError(f"invalid {codec.name}: {e.message}") from e
    except (ValueError, TypeError, OverflowError, IndexError, KeyError, AttributeError) as e:
        # Last line of defence: codecs raise typed errors themselves, so reaching here
        # means a bug, but a peer's bytes must still never escape as a non-SomaError.
        raise InvalidValueError(f"invalid {codec.name}: {e}") from e
    if pos != len(buf):
        raise TrailingBytesError(f"{len(buf) - pos} trailing bytes after {codec.name}", pos)
    return typing.cast(T, value)


# --- ULEB128 -------------------------------------------------------------------------


def enc_uleb(value: int, out: bytearray) -> None:
    if value < 0x80:
        if value < 0:
            raise BcsEncodeError(f"ULEB128 value {value} is negative")
        out.append(value)
        return
    if value > U32_MAX:
        raise BcsEncodeError(f"ULEB128 value {value} exceeds u32")
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def dec_uleb(buf: bytes, pos: int) -> tuple[int, int]:
    """Decode a canonical ULEB128 u32: at most 5 digits, no redundant zero digit."""
    try:
        byte = buf[pos]
    except IndexError:
        raise UnexpectedEndError("expected a ULEB128 integer", pos) from None
    if byte < 0x80:
        return byte, pos + 1
    start = pos
    value = byte & 0x7F
    shift = 7
    pos += 1
    while True:
        if pos >= len(buf):
            raise UnexpectedEndError("ULEB128 integer runs past the end", start)
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            if byte == 0:
                raise NonCanonicalUlebError("ULEB128 integer has a redundant zero digit", start)
            break
        shift += 7
        if shift >= 35:
            raise IntegerOutOfRangeError("ULEB128 integer longer than 5 bytes", start)
    if value > U32_MAX:
        raise IntegerOutOfRangeError(f"ULEB128 value {value} exceeds u32", start)
    return value, pos


def dec_length(buf: bytes, pos: int) -> tuple[int, int]:
    n, new_pos = dec_uleb(buf, pos)
    if n > MAX_SEQUENCE_LENGTH:
        raise IntegerOutOfRangeError(f"sequence length {n} exceeds the BCS maximum", pos)
    return n, new_pos


ULEB128: Codec[int] = Codec("uleb128", enc_uleb, dec_uleb, 1)

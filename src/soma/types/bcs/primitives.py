"""Primitive wire types: integers, bool, unit, byte strings, text, fixed-size bytes,
and the annotation aliases (`u64`, `Bytes32`, ...) that name them in struct schemas."""

from __future__ import annotations

import struct
from typing import Annotated

from soma.types.bcs.codec import ULEB128, Codec, Inline, dec_length, enc_uleb
from soma.types.error import (
    BcsEncodeError,
    InvalidBoolError,
    InvalidUtf8Error,
    UnexpectedEndError,
)

# --- fixed-width integers and bool ----------------------------------------------------


def _fixed_int(name: str, fmt: str) -> Codec[int]:
    packer = struct.Struct(fmt)
    pack = packer.pack
    unpack_from = packer.unpack_from
    size = packer.size

    def enc(value: int, out: bytearray) -> None:
        if type(value) is not int:
            # bool is an int subclass, but a bool where an integer is declared is a bug.
            raise BcsEncodeError(f"{name} expects an int, got {type(value).__name__}")
        try:
            out += pack(value)
        except struct.error:
            raise BcsEncodeError(f"{value} out of range for {name}") from None

    def dec(buf: bytes, pos: int) -> tuple[int, int]:
        end = pos + size
        if end > len(buf):
            raise UnexpectedEndError(f"expected {size} bytes for {name}", pos)
        return unpack_from(buf, pos)[0], end

    return Codec(name, enc, dec, size, Inline(size, packer=packer))


def _wide_int(name: str, size: int, signed: bool) -> Codec[int]:
    bits = size * 8
    lo = -(1 << (bits - 1)) if signed else 0
    hi = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1

    def enc(value: int, out: bytearray) -> None:
        if type(value) is not int:
            raise BcsEncodeError(f"{name} expects an int, got {type(value).__name__}")
        if not lo <= value <= hi:
            raise BcsEncodeError(f"{value} out of range for {name}")
        out += value.to_bytes(size, "little", signed=signed)

    def dec(buf: bytes, pos: int) -> tuple[int, int]:
        end = pos + size
        if end > len(buf):
            raise UnexpectedEndError(f"expected {size} bytes for {name}", pos)
        return int.from_bytes(buf[pos:end], "little", signed=signed), end

    return Codec(name, enc, dec, size)


U8 = _fixed_int("u8", "<B")
U16 = _fixed_int("u16", "<H")
U32 = _fixed_int("u32", "<I")
U64 = _fixed_int("u64", "<Q")
U128 = _wide_int("u128", 16, signed=False)
U256 = _wide_int("u256", 32, signed=False)
I8 = _fixed_int("i8", "<b")
I16 = _fixed_int("i16", "<h")
I32 = _fixed_int("i32", "<i")
I64 = _fixed_int("i64", "<q")
I128 = _wide_int("i128", 16, signed=True)


def _enc_bool(value: bool, out: bytearray) -> None:
    if value is True:
        out.append(1)
    elif value is False:
        out.append(0)
    else:
        raise BcsEncodeError(f"bool expects True or False, got {value!r}")


def _dec_bool(buf: bytes, pos: int) -> tuple[bool, int]:
    try:
        byte = buf[pos]
    except IndexError:
        raise UnexpectedEndError("expected a bool", pos) from None
    if byte == 1:
        return True, pos + 1
    if byte == 0:
        return False, pos + 1
    raise InvalidBoolError(f"bool byte must be 0 or 1, got {byte}", pos)


BOOL: Codec[bool] = Codec("bool", _enc_bool, _dec_bool, 1)


def _enc_unit(value: None, out: bytearray) -> None:
    if value is not None:
        raise BcsEncodeError(f"unit expects None, got {value!r}")


def _dec_unit(buf: bytes, pos: int) -> tuple[None, int]:
    return None, pos


UNIT: Codec[None] = Codec("unit", _enc_unit, _dec_unit, 0)


# --- byte strings and text -------------------------------------------------------------


def _enc_bytes(value: bytes, out: bytearray) -> None:
    # bytes only: a bytearray inside a frozen value could change after it was hashed.
    if not isinstance(value, bytes):
        raise BcsEncodeError(f"bytes expected, got {type(value).__name__}")
    enc_uleb(len(value), out)
    out += value


def _dec_bytes(buf: bytes, pos: int) -> tuple[bytes, int]:
    n, start = dec_length(buf, pos)
    end = start + n
    if end > len(buf):
        raise UnexpectedEndError(f"byte string of length {n} runs past the end", pos)
    return buf[start:end], end


#: `Vec<u8>`: a length-prefixed byte string.
BYTES: Codec[bytes] = Codec("bytes", _enc_bytes, _dec_bytes, 1)


def _enc_str(value: str, out: bytearray) -> None:
    if not isinstance(value, str):
        raise BcsEncodeError(f"str expected, got {type(value).__name__}")
    try:
        raw = value.encode("utf-8")
    except UnicodeEncodeError as e:
        raise BcsEncodeError(f"string is not valid Unicode: {e}") from None
    enc_uleb(len(raw), out)
    out += raw


def _dec_str(buf: bytes, pos: int) -> tuple[str, int]:
    raw, end = _dec_bytes(buf, pos)
    try:
        return raw.decode("utf-8"), end
    except UnicodeDecodeError as e:
        raise InvalidUtf8Error(f"string is not valid UTF-8: {e.reason}", pos) from None


STR: Codec[str] = Codec("str", _enc_str, _dec_str, 1)


def FixedBytes(
    size: int, wrap: type[bytes] | None = None, *, length_only: bool = False
) -> Codec[bytes]:
    """`[u8; size]`: exactly `size` raw bytes, no length prefix.

    `wrap` is the bytes newtype (a digest, an address) a field is declared with: encoding
    requires a value of that class and decoding produces one. `length_only` says the
    newtype's constructor checks nothing but the length, so decoders may skip it.
    """
    name = f"[u8; {size}]" if wrap is None else wrap.__name__
    kind: type[bytes] = bytes if wrap is None else wrap

    def enc(value: bytes, out: bytearray) -> None:
        if not isinstance(value, kind) or len(value) != size:
            raise BcsEncodeError(f"{name} expects {size} bytes of type {kind.__name__}")
        out += value

    def dec(buf: bytes, pos: int) -> tuple[bytes, int]:
        end = pos + size
        if end > len(buf):
            raise UnexpectedEndError(f"expected {size} bytes for {name}", pos)
        if wrap is None:
            return buf[pos:end], end
        if length_only:
            return bytes.__new__(wrap, buf[pos:end]), end
        return wrap(buf[pos:end]), end

    return Codec(name, enc, dec, size, Inline(size, wrap=wrap, length_only=length_only))


# --- annotation aliases ------------------------------------------------------------

u8 = Annotated[int, U8]
u16 = Annotated[int, U16]
u32 = Annotated[int, U32]
u64 = Annotated[int, U64]
u128 = Annotated[int, U128]
u256 = Annotated[int, U256]
i8 = Annotated[int, I8]
i16 = Annotated[int, I16]
i32 = Annotated[int, I32]
i64 = Annotated[int, I64]
i128 = Annotated[int, I128]
uleb128 = Annotated[int, ULEB128]
Bytes32 = Annotated[bytes, FixedBytes(32)]
Bytes64 = Annotated[bytes, FixedBytes(64)]

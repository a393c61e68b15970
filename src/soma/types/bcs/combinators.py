"""Combinators: Option, Vec, Array, Tuple, Map, and fieldless enums (IntEnum)."""

from __future__ import annotations

import enum
import functools
import itertools
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from soma.types.bcs.codec import Codec, dec_length, dec_uleb, enc_uleb
from soma.types.error import (
    BcsEncodeError,
    IntegerOutOfRangeError,
    InvalidOptionTagError,
    NonCanonicalMapError,
    UnexpectedEndError,
    UnknownEnumTagError,
)

T = TypeVar("T")
K = TypeVar("K")
V = TypeVar("V")

#: A vector of zero-sized elements consumes no input per element, so the buffer length
#: cannot bound it; this cap keeps a 5-byte input from allocating billions of objects.
MAX_ZERO_SIZED_SEQUENCE = 1 << 16


# --- combinators -----------------------------------------------------------------------


def Option(inner: Codec[T]) -> Codec[T | None]:
    """`Option<T>`: a 0x00 tag for None, or 0x01 followed by the value."""
    ienc, idec = inner.enc, inner.dec

    def enc(value: T | None, out: bytearray) -> None:
        if value is None:
            out.append(0)
        else:
            out.append(1)
            ienc(value, out)

    def dec(buf: bytes, pos: int) -> tuple[T | None, int]:
        try:
            tag = buf[pos]
        except IndexError:
            raise UnexpectedEndError("expected an option tag", pos) from None
        if tag == 0:
            return None, pos + 1
        if tag == 1:
            return typing.cast(tuple[T, int], idec(buf, pos + 1))
        raise InvalidOptionTagError(f"option tag must be 0 or 1, got {tag}", pos)

    return Codec(f"Option<{inner.name}>", enc, dec, 1)


def _check_count(n: int, elem: Codec[Any], buf: bytes, start: int, pos: int) -> None:
    if elem.min_size:
        if n * elem.min_size > len(buf) - start:
            raise UnexpectedEndError(f"sequence of {n} {elem.name} runs past the end", pos)
    elif n > MAX_ZERO_SIZED_SEQUENCE:
        raise IntegerOutOfRangeError(f"sequence of {n} zero-sized values is too long", pos)


def Vec(elem: Codec[T], container: type = tuple) -> Codec[Any]:
    """`Vec<T>`: a ULEB128 count, then each element. Decodes to a tuple (immutable, so
    structs holding vectors stay hashable) or to `container` if given."""
    eenc, edec = elem.enc, elem.dec
    as_list = container is list

    def enc(value: Any, out: bytearray) -> None:
        enc_uleb(len(value), out)
        for item in value:
            eenc(item, out)

    def dec(buf: bytes, pos: int) -> tuple[Any, int]:
        n, cur = dec_length(buf, pos)
        _check_count(n, elem, buf, cur, pos)
        items: list[Any] = []
        append = items.append
        for _ in range(n):
            item, cur = edec(buf, cur)
            append(item)
        return (items if as_list else tuple(items)), cur

    return Codec(f"Vec<{elem.name}>", enc, dec, 1)


def Array(elem: Codec[T], size: int) -> Codec[tuple[T, ...]]:
    """`[T; size]`: exactly `size` elements with no length prefix."""
    eenc, edec = elem.enc, elem.dec

    def enc(value: tuple[T, ...], out: bytearray) -> None:
        if len(value) != size:
            raise BcsEncodeError(f"[{elem.name}; {size}] got {len(value)} elements")
        for item in value:
            eenc(item, out)

    def dec(buf: bytes, pos: int) -> tuple[tuple[T, ...], int]:
        items = []
        for _ in range(size):
            item, pos = edec(buf, pos)
            items.append(item)
        return tuple(items), pos

    return Codec(f"[{elem.name}; {size}]", enc, dec, elem.min_size * size)


def Tuple(*elems: Codec[Any]) -> Codec[tuple[Any, ...]]:
    """`(A, B, ...)`: each element in order, no prefix."""
    encs = [e.enc for e in elems]
    decs = [e.dec for e in elems]
    arity = len(elems)

    def enc(value: tuple[Any, ...], out: bytearray) -> None:
        if len(value) != arity:
            raise BcsEncodeError(f"tuple of {arity} expected, got {len(value)} elements")
        for e, item in zip(encs, value, strict=True):
            e(item, out)

    def dec(buf: bytes, pos: int) -> tuple[tuple[Any, ...], int]:
        items = []
        for d in decs:
            item, pos = d(buf, pos)
            items.append(item)
        return tuple(items), pos

    name = "(" + ", ".join(e.name for e in elems) + ")"
    return Codec(name, enc, dec, sum(e.min_size for e in elems))


def Map(key: Codec[K], value: Codec[V]) -> Codec[dict[K, V]]:
    """`Map<K, V>`: a count, then (key, value) pairs sorted by the key's encoded bytes.
    Decoding rejects keys out of order or repeated (`NonCanonicalMapError`)."""
    kenc, kdec, venc, vdec = key.enc, key.dec, value.enc, value.dec

    def enc(mapping: Mapping[K, V], out: bytearray) -> None:
        entries: list[tuple[bytes, V]] = []
        for k, v in mapping.items():
            key_out = bytearray()
            kenc(k, key_out)
            entries.append((bytes(key_out), v))
        entries.sort(key=lambda e: e[0])
        if any(a[0] == b[0] for a, b in itertools.pairwise(entries)):
            raise BcsEncodeError("two map keys have the same encoding")
        enc_uleb(len(entries), out)
        for key_bytes, v in entries:
            out += key_bytes
            venc(v, out)

    def dec(buf: bytes, pos: int) -> tuple[dict[K, V], int]:
        n, cur = dec_length(buf, pos)
        _check_count(n, Tuple(key, value), buf, cur, pos)
        result: dict[K, V] = {}
        prev: bytes | None = None
        for _ in range(n):
            kstart = cur
            k, cur = kdec(buf, cur)
            kb = buf[kstart:cur]
            if prev is not None and kb <= prev:
                raise NonCanonicalMapError("map keys are not strictly increasing", kstart)
            prev = kb
            v, cur = vdec(buf, cur)
            result[k] = v
        return result, cur

    return Codec(f"Map<{key.name}, {value.name}>", enc, dec, 1)


@functools.cache
def IntEnumCodec(cls: type[enum.IntEnum]) -> Codec[Any]:
    """A fieldless Rust enum: the variant's value as a ULEB128 tag."""
    members = {int(m): m for m in cls}

    def enc(value: enum.IntEnum, out: bytearray) -> None:
        if not isinstance(value, cls):
            raise BcsEncodeError(f"{cls.__name__} expected, got {value!r}")
        enc_uleb(int(value), out)

    def dec(buf: bytes, pos: int) -> tuple[enum.IntEnum, int]:
        tag, end = dec_uleb(buf, pos)
        try:
            return members[tag], end
        except KeyError:
            raise UnknownEnumTagError(f"unknown {cls.__name__} tag {tag}", pos) from None

    return Codec(cls.__name__, enc, dec, 1)

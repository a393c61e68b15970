"""Key and value codecs: how typed Python values become the raw bytes an engine stores.

The engine orders keys by their raw bytes only, so a *key* codec must be
order-preserving: `a < b` exactly when `encode(a) < encode(b)`. That is what makes range
scans ("every version of object X", "the last checkpoint <= N") correct. Integers are
therefore encoded big-endian at a fixed width, and composite keys are concatenations of
fixed-width parts, so that a shorter part can never make one key a prefix of another and
all keys sharing a leading part are contiguous.

Value codecs only need to round-trip. Codecs raise `StorageEncodeError` for values they
cannot represent and `StorageDecodeError` for stored bytes they cannot read, so a bad key
is a typed error at the call site rather than silently wrong ordering on disk.

Codecs compare equal when they encode identically, so a database can check that a table
is always used with the codecs it was declared with.

These are *storage* codecs (`encode(value) -> bytes` / `decode(bytes) -> value`), not the
wire codecs of `soma.types.bcs` (`enc` / `dec`, little-endian integers). The names say
so on purpose: `U64_BE` rather than `U64`, `RAW_BYTES` rather than `BYTES`, `UTF8` rather
than `STR`, `StorageCodec` rather than `Codec`, so that importing both modules never
shadows one with the other. To store a BCS struct, wrap its class in `StructCodec`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, Protocol, Self, TypeVar, overload

from soma.types.error import SomaError, StorageDecodeError, StorageEncodeError

T = TypeVar("T")
A = TypeVar("A")
B = TypeVar("B")
C = TypeVar("C")
D = TypeVar("D")
BytesT = TypeVar("BytesT", bound=bytes)


class StorageCodec(Protocol[T]):
    """Turns a `T` into bytes and back. Implementations must be deterministic, and
    `decode(encode(x)) == x` must hold for every value they accept."""

    def encode(self, value: T) -> bytes: ...

    def decode(self, data: bytes) -> T: ...


class FixedWidthCodec(StorageCodec[T], Protocol[T]):
    """A codec whose every encoding is exactly `width` bytes long.

    Only fixed-width codecs can be parts of a `TupleCodec`: with fixed widths, comparing
    two concatenations byte by byte compares their parts in order, which is what keeps
    composite keys in logical order.
    """

    @property
    def width(self) -> int: ...


class BcsSerializable(Protocol):
    """Anything with the project's BCS struct interface (`to_bytes` / `from_bytes`)."""

    def to_bytes(self) -> bytes: ...

    @classmethod
    def from_bytes(cls, data: bytes) -> Self: ...


S = TypeVar("S", bound=BcsSerializable)


class UIntCodec:
    """An unsigned integer as exactly `width` big-endian bytes.

    Big-endian at a fixed width is the one integer encoding whose byte order equals its
    numeric order (little-endian or variable-length encodings such as ULEB128 are not).
    """

    __slots__ = ("_max", "width")

    def __init__(self, width: int) -> None:
        if width <= 0:
            raise ValueError(f"integer width must be positive, got {width}")
        self.width = width
        self._max = (1 << (8 * width)) - 1

    def encode(self, value: int) -> bytes:
        try:
            return value.to_bytes(self.width, "big")
        except (OverflowError, AttributeError, TypeError):
            raise StorageEncodeError(
                f"u{8 * self.width} value must be an int in [0, {self._max}], got {value!r}"
            ) from None

    def decode(self, data: bytes) -> int:
        if len(data) != self.width:
            raise StorageDecodeError(
                f"u{8 * self.width} must be {self.width} bytes, got {len(data)}"
            )
        return int.from_bytes(data, "big")

    def __repr__(self) -> str:
        return f"UIntCodec(u{8 * self.width})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, UIntCodec) and other.width == self.width

    def __hash__(self) -> int:
        return hash((UIntCodec, self.width))


# Named `_BE` so they are never mistaken for (or shadowed by) the little-endian BCS
# integer codecs `soma.types.bcs.U8` .. `U64`.
U8_BE = UIntCodec(1)
U16_BE = UIntCodec(2)
U32_BE = UIntCodec(4)
U64_BE = UIntCodec(8)


class FixedBytesCodec(Generic[BytesT]):
    """Bytes of exactly `width` bytes (digests, object IDs, public keys).

    `factory` rebuilds the caller's type on decode, e.g. `FixedBytesCodec(32, ObjectID)`,
    so keys read back from a scan are the same type that was written.
    """

    __slots__ = ("_factory", "width")

    @overload
    def __init__(self: FixedBytesCodec[bytes], width: int) -> None: ...

    @overload
    def __init__(self, width: int, factory: Callable[[bytes], BytesT]) -> None: ...

    def __init__(self, width: int, factory: Callable[[bytes], Any] = bytes) -> None:
        if width <= 0:
            raise ValueError(f"byte width must be positive, got {width}")
        self.width = width
        self._factory = factory

    def encode(self, value: BytesT) -> bytes:
        if not isinstance(value, bytes):
            raise StorageEncodeError(f"expected {self.width} bytes, got {type(value).__name__}")
        if len(value) != self.width:
            raise StorageEncodeError(f"expected {self.width} bytes, got {len(value)}")
        return value if type(value) is bytes else bytes(value)

    def decode(self, data: bytes) -> BytesT:
        if len(data) != self.width:
            raise StorageDecodeError(f"expected {self.width} bytes, got {len(data)}")
        result: BytesT = self._factory(data)
        return result

    def __repr__(self) -> str:
        return f"FixedBytesCodec({self.width})"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, FixedBytesCodec)
            and other.width == self.width
            and other._factory == self._factory
        )

    def __hash__(self) -> int:
        return hash((FixedBytesCodec, self.width, self._factory))


class TupleCodec:
    """A composite key: fixed-width parts concatenated in order.

    With `(object_id, version)` parts, every version of one object is contiguous and
    ascending, so "all versions of X" and "latest version of X <= v" are range scans.
    Build typed instances with `tuple_codec(...)`.
    """

    __slots__ = ("_parts", "width")

    def __init__(self, *parts: FixedWidthCodec[Any]) -> None:
        if not parts:
            raise ValueError("a tuple codec needs at least one part")
        self._parts = parts
        self.width = sum(part.width for part in parts)

    def encode(self, value: tuple[Any, ...]) -> bytes:
        if not isinstance(value, tuple) or len(value) != len(self._parts):
            raise StorageEncodeError(f"expected a tuple of {len(self._parts)} parts, got {value!r}")
        parts = self._parts
        if len(parts) == 2:  # the common (id, version) shape, without the generic loop
            return parts[0].encode(value[0]) + parts[1].encode(value[1])
        return b"".join([part.encode(item) for part, item in zip(parts, value, strict=True)])

    def decode(self, data: bytes) -> tuple[Any, ...]:
        if len(data) != self.width:
            raise StorageDecodeError(f"composite key must be {self.width} bytes, got {len(data)}")
        items: list[Any] = []
        offset = 0
        for part in self._parts:
            items.append(part.decode(data[offset : offset + part.width]))
            offset += part.width
        return tuple(items)

    def __repr__(self) -> str:
        return f"TupleCodec{self._parts!r}"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TupleCodec) and other._parts == self._parts

    def __hash__(self) -> int:
        return hash((TupleCodec, self._parts))


@overload
def tuple_codec(a: FixedWidthCodec[A], /) -> FixedWidthCodec[tuple[A]]: ...


@overload
def tuple_codec(
    a: FixedWidthCodec[A], b: FixedWidthCodec[B], /
) -> FixedWidthCodec[tuple[A, B]]: ...


@overload
def tuple_codec(
    a: FixedWidthCodec[A], b: FixedWidthCodec[B], c: FixedWidthCodec[C], /
) -> FixedWidthCodec[tuple[A, B, C]]: ...


@overload
def tuple_codec(
    a: FixedWidthCodec[A],
    b: FixedWidthCodec[B],
    c: FixedWidthCodec[C],
    d: FixedWidthCodec[D],
    /,
) -> FixedWidthCodec[tuple[A, B, C, D]]: ...


def tuple_codec(*parts: FixedWidthCodec[Any]) -> FixedWidthCodec[Any]:
    """A `TupleCodec` typed by its parts, e.g. `tuple_codec(FixedBytesCodec(32), U64_BE)`
    is a `FixedWidthCodec[tuple[bytes, int]]`."""
    return TupleCodec(*parts)


class BytesCodec:
    """Raw bytes, stored as is (values, or variable-length keys ordered bytewise)."""

    __slots__ = ()

    def encode(self, value: bytes) -> bytes:
        if not isinstance(value, bytes):
            raise StorageEncodeError(f"expected bytes, got {type(value).__name__}")
        return value if type(value) is bytes else bytes(value)

    def decode(self, data: bytes) -> bytes:
        return data

    def __repr__(self) -> str:
        return "BytesCodec()"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BytesCodec)

    def __hash__(self) -> int:
        return hash(BytesCodec)


class StrCodec:
    """UTF-8 text. UTF-8 byte order equals code point order, so it also works as a key
    codec for a single string key (but not as a part of a composite key)."""

    __slots__ = ()

    def encode(self, value: str) -> bytes:
        try:
            return value.encode("utf-8")
        except (AttributeError, UnicodeEncodeError) as exc:
            raise StorageEncodeError(f"cannot encode {value!r} as UTF-8: {exc}") from None

    def decode(self, data: bytes) -> str:
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise StorageDecodeError(f"stored value is not UTF-8: {exc}") from None

    def __repr__(self) -> str:
        return "StrCodec()"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StrCodec)

    def __hash__(self) -> int:
        return hash(StrCodec)


# Not `BYTES` / `STR`: those are the length-prefixed BCS codecs in `soma.types.bcs`.
RAW_BYTES = BytesCodec()
UTF8 = StrCodec()


class StructCodec(Generic[S]):
    """A value codec for a BCS struct class (anything `BcsSerializable`).

    Bytes that the struct's `from_bytes` rejects are reported as `StorageDecodeError`,
    chained from the struct's own error (a `BcsDecodeError` for the project's structs):
    bytes that came out of the database and do not parse mean a corrupt or mismatched
    database, and callers handle that as one storage fault whatever codec found it.
    """

    __slots__ = ("_cls",)

    def __init__(self, cls: type[S]) -> None:
        self._cls = cls

    def encode(self, value: S) -> bytes:
        if not isinstance(value, self._cls):
            raise StorageEncodeError(f"expected {self._cls.__name__}, got {type(value).__name__}")
        return value.to_bytes()

    def decode(self, data: bytes) -> S:
        try:
            return self._cls.from_bytes(data)
        except (SomaError, ValueError) as exc:
            # SomaError covers BcsDecodeError; ValueError (with UnicodeDecodeError) is how
            # hand-written `from_bytes` implementations usually reject malformed input.
            raise StorageDecodeError(
                f"stored bytes are not a valid {self._cls.__name__} "
                f"({len(data)} bytes): {type(exc).__name__}: {exc}"
            ) from exc

    def __repr__(self) -> str:
        return f"StructCodec({self._cls.__name__})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StructCodec) and other._cls is self._cls

    def __hash__(self) -> int:
        return hash((StructCodec, self._cls))

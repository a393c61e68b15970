"""Binary Canonical Serialization (BCS), the byte format of everything soma signs or hashes.

BCS (from Diem, used by Sui) has exactly one encoding per value, so "sign the value" and
"sign its bytes" mean the same thing and two honest validators always hash the same
bytes. No maintained Python implementation exists, so this is our own.

Two layers:

* `Codec` objects for the wire types: `U8`..`U256`, `I8`..`I128`, `BOOL`, `BYTES`, `STR`,
  `ULEB128`, `UNIT`, and the combinators `Option`, `Vec`, `Array`, `FixedBytes`, `Tuple`,
  `Map`. `encode(value, codec)` / `decode(data, codec)` work on them directly.
* Schemas declared once on frozen dataclasses. Subclass `BcsStruct` and annotate fields
  with Python types (`u64`, `Bytes32`, `tuple[X, ...]` for a vector, `X | None` for an
  option, `dict[K, V]` for a map, another struct, an `IntEnum` or a `BcsEnum`); the class
  becomes a frozen dataclass with `to_bytes()` / `from_bytes()`. Rust-style enums with
  data are a `BcsEnum` base class whose variants are subclasses declared with
  `tag=N`.

Decoding never trusts its input: every malformed buffer is rejected with a
`BcsDecodeError` subclass (never an IndexError or struct.error), including trailing
bytes, non-canonical ULEB128, lengths past the end, unknown enum tags, bad bools or
option tags, invalid UTF-8, out-of-range integers and unsorted maps.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import itertools
import struct
import types
import typing
from collections.abc import Callable, Mapping
from typing import Annotated, Any, ClassVar, Generic, Self, TypeVar, dataclass_transform

from soma.types.error import (
    BcsDecodeError,
    BcsEncodeError,
    BcsError,
    IntegerOutOfRangeError,
    InvalidBoolError,
    InvalidOptionTagError,
    InvalidUtf8Error,
    InvalidValueError,
    NonCanonicalMapError,
    NonCanonicalUlebError,
    SomaError,
    TrailingBytesError,
    UnexpectedEndError,
    UnknownEnumTagError,
)

T = TypeVar("T")
K = TypeVar("K")
V = TypeVar("V")

#: BCS caps sequence lengths at 2^31 - 1 (the Rust crate's MAX_SEQUENCE_LENGTH).
MAX_SEQUENCE_LENGTH = (1 << 31) - 1
#: A vector of zero-sized elements consumes no input per element, so the buffer length
#: cannot bound it; this cap keeps a 5-byte input from allocating billions of objects.
MAX_ZERO_SIZED_SEQUENCE = 1 << 16
_U32_MAX = (1 << 32) - 1

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
        inline: _Inline | None = None,
    ) -> None:
        self.name = name
        self.enc = enc
        self.dec = dec
        self.min_size = min_size
        self.inline = inline

    def __repr__(self) -> str:
        return f"Codec({self.name})"


@dataclasses.dataclass(frozen=True, slots=True)
class _Inline:
    """How a fixed-size codec can be inlined into generated struct code: either a
    `struct` packer for an integer, or raw bytes optionally wrapped in a bytes newtype.
    The generated code does one bounds check for a run of fixed-size fields."""

    size: int
    packer: struct.Struct | None = None
    wrap: type | None = None


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
    except (ValueError, TypeError, OverflowError, IndexError, struct.error) as e:
        raise InvalidValueError(f"invalid {codec.name}: {e}") from e
    if pos != len(buf):
        raise TrailingBytesError(f"{len(buf) - pos} trailing bytes after {codec.name}", pos)
    return typing.cast(T, value)


# --- ULEB128 -------------------------------------------------------------------------


def _enc_uleb(value: int, out: bytearray) -> None:
    if value < 0x80:
        if value < 0:
            raise BcsEncodeError(f"ULEB128 value {value} is negative")
        out.append(value)
        return
    if value > _U32_MAX:
        raise BcsEncodeError(f"ULEB128 value {value} exceeds u32")
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def _dec_uleb(buf: bytes, pos: int) -> tuple[int, int]:
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
    if value > _U32_MAX:
        raise IntegerOutOfRangeError(f"ULEB128 value {value} exceeds u32", start)
    return value, pos


def _dec_length(buf: bytes, pos: int) -> tuple[int, int]:
    n, new_pos = _dec_uleb(buf, pos)
    if n > MAX_SEQUENCE_LENGTH:
        raise IntegerOutOfRangeError(f"sequence length {n} exceeds the BCS maximum", pos)
    return n, new_pos


ULEB128: Codec[int] = Codec("uleb128", _enc_uleb, _dec_uleb, 1)


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

    return Codec(name, enc, dec, size, _Inline(size, packer=packer))


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
    if not isinstance(value, bytes | bytearray):
        raise BcsEncodeError(f"bytes expected, got {type(value).__name__}")
    _enc_uleb(len(value), out)
    out += value


def _dec_bytes(buf: bytes, pos: int) -> tuple[bytes, int]:
    n, start = _dec_length(buf, pos)
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
    _enc_uleb(len(raw), out)
    out += raw


def _dec_str(buf: bytes, pos: int) -> tuple[str, int]:
    raw, end = _dec_bytes(buf, pos)
    try:
        return raw.decode("utf-8"), end
    except UnicodeDecodeError as e:
        raise InvalidUtf8Error(f"string is not valid UTF-8: {e.reason}", pos) from None


STR: Codec[str] = Codec("str", _enc_str, _dec_str, 1)


def FixedBytes(size: int, wrap: Callable[[bytes], Any] | None = None) -> Codec[bytes]:
    """`[u8; size]`: exactly `size` raw bytes, no length prefix.

    `wrap` turns the decoded bytes into a newtype (a digest, an address) so that a field
    declared as `ObjectID` decodes as an `ObjectID`.
    """
    name = f"[u8; {size}]" if wrap is None else getattr(wrap, "__name__", f"[u8; {size}]")

    def enc(value: bytes, out: bytearray) -> None:
        if not isinstance(value, bytes | bytearray) or len(value) != size:
            raise BcsEncodeError(f"{name} expects exactly {size} bytes, got {value!r}")
        out += value

    if wrap is None:

        def dec(buf: bytes, pos: int) -> tuple[bytes, int]:
            end = pos + size
            if end > len(buf):
                raise UnexpectedEndError(f"expected {size} bytes for {name}", pos)
            return buf[pos:end], end

    else:
        wrapper = wrap

        def dec(buf: bytes, pos: int) -> tuple[bytes, int]:
            end = pos + size
            if end > len(buf):
                raise UnexpectedEndError(f"expected {size} bytes for {name}", pos)
            return wrapper(buf[pos:end]), end

    inline = _Inline(
        size, wrap=wrap if isinstance(wrap, type) and issubclass(wrap, bytes) else None
    )
    if wrap is not None and inline.wrap is None:
        return Codec(name, enc, dec, size)
    return Codec(name, enc, dec, size, inline)


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
        _enc_uleb(len(value), out)
        for item in value:
            eenc(item, out)

    def dec(buf: bytes, pos: int) -> tuple[Any, int]:
        n, cur = _dec_length(buf, pos)
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
        _enc_uleb(len(entries), out)
        for key_bytes, v in entries:
            out += key_bytes
            venc(v, out)

    def dec(buf: bytes, pos: int) -> tuple[dict[K, V], int]:
        n, cur = _dec_length(buf, pos)
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
        _enc_uleb(int(value), out)

    def dec(buf: bytes, pos: int) -> tuple[enum.IntEnum, int]:
        tag, end = _dec_uleb(buf, pos)
        try:
            return members[tag], end
        except KeyError:
            raise UnknownEnumTagError(f"unknown {cls.__name__} tag {tag}", pos) from None

    return Codec(cls.__name__, enc, dec, 1)


# --- annotation aliases ------------------------------------------------------------------

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


# --- schemas on dataclasses -------------------------------------------------------------


def codec_for(tp: Any, typevars: Mapping[Any, Any] | None = None) -> Codec[Any]:
    """The codec for a field annotation. Plain `int` is refused: a width must be chosen."""
    if isinstance(tp, TypeVar):
        if typevars is None or tp not in typevars:
            raise TypeError(f"unbound type variable {tp} in a BCS schema")
        return codec_for(typevars[tp], typevars)
    origin = typing.get_origin(tp)
    if origin is Annotated:
        for meta in tp.__metadata__:
            if isinstance(meta, Codec):
                return meta
        return codec_for(tp.__origin__, typevars)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) != 1 or len(typing.get_args(tp)) != 2:
            raise TypeError(f"only `X | None` unions are BCS options; use BcsEnum for {tp}")
        return Option(codec_for(args[0], typevars))
    if origin is tuple:
        elems = typing.get_args(tp)
        if len(elems) == 2 and elems[1] is Ellipsis:
            return Vec(codec_for(elems[0], typevars))
        return Tuple(*(codec_for(a, typevars) for a in elems))
    if origin is list:
        return Vec(codec_for(typing.get_args(tp)[0], typevars), container=list)
    if origin is dict:
        k, v = typing.get_args(tp)
        return Map(codec_for(k, typevars), codec_for(v, typevars))
    if origin is not None and isinstance(origin, type) and issubclass(origin, BcsStruct):
        # A parametrised generic struct used as a field, e.g. `Envelope[Data, Sig]`.
        return origin._bcs_codec_for_args(typing.get_args(tp))
    if tp is bool:
        return BOOL
    if tp is str:
        return STR
    if tp is bytes:
        return BYTES
    if tp is type(None):
        return UNIT
    if isinstance(tp, type):
        if issubclass(tp, enum.IntEnum):
            return IntEnumCodec(tp)
        custom = getattr(tp, "bcs_codec", None)
        if custom is not None:
            return typing.cast(Codec[Any], custom())
    if tp is int:
        raise TypeError("a bare `int` has no BCS width; annotate it as u8, u64, ...")
    raise TypeError(f"no BCS codec for {tp!r}")


def typevar_bindings(cls: type) -> dict[Any, Any]:
    """Map each TypeVar a generic base declared to the concrete type a subclass bound it
    to, so `class SignedEffects(Envelope[Effects, Sig])` knows what `data: T` means."""
    bindings: dict[Any, Any] = {}
    for klass in reversed(cls.__mro__):
        for base in getattr(klass, "__orig_bases__", ()):
            origin = typing.get_origin(base)
            if origin is None:
                continue
            params = getattr(origin, "__parameters__", ())
            for param, arg in zip(params, typing.get_args(base), strict=False):
                bindings[param] = bindings.get(arg, arg) if isinstance(arg, TypeVar) else arg
    return bindings


def _field_codecs(
    cls: type, typevars: Mapping[Any, Any] | None = None
) -> list[tuple[str, Codec[Any]]]:
    # Each base's annotations resolve in its own module's namespace.
    hints = typing.get_type_hints(cls, include_extras=True)
    bindings = typevar_bindings(cls)
    if typevars:
        bindings.update(typevars)
    return [(f.name, codec_for(hints[f.name], bindings)) for f in dataclasses.fields(cls)]


def describe_fields(cls: type) -> list[tuple[str, str]]:
    """(field name, wire type) in encoding order: the schema as docs/formats.md shows it."""
    return [(name, codec.name) for name, codec in _field_codecs(cls)]


def _struct_fields_codec(cls: type, typevars: Mapping[Any, Any] | None = None) -> Codec[Any]:
    """The codec of a dataclass's fields in declaration order (no enum tag)."""
    pairs = _field_codecs(cls, typevars)
    names = [name for name, _ in pairs]
    codecs = [codec for _, codec in pairs]
    enc, dec = _generate_struct_code(cls, names, codecs)
    return Codec(cls.__name__, enc, dec, sum(c.min_size for c in codecs))


def _generate_struct_code(
    cls: type, names: list[str], codecs: list[Codec[Any]]
) -> tuple[Encoder, Decoder]:
    """Compile an encoder and a decoder specialised to one struct's fields.

    A generic loop over field codecs costs a Python call per field; generating straight-
    line code lets fixed-size fields (integers, digests, addresses) be packed and unpacked
    inline with one bounds check per run of them, which roughly halves decode time. The
    decoder builds the instance without the frozen-dataclass `__init__` (which goes
    through `object.__setattr__` per field) but still runs `__post_init__` checks.
    """
    env: dict[str, Any] = {
        "_cls": cls,
        "_new": object.__new__,
        "_bytes_new": bytes.__new__,
        "_End": UnexpectedEndError,
        "_EncErr": BcsEncodeError,
    }
    enc_lines = ["def enc(v, out):"]
    dec_lines = ["def dec(buf, pos):", "    n = len(buf)"]
    i = 0
    while i < len(codecs):
        # A run of consecutive inlinable fields shares one bounds check.
        run_end = i
        while run_end < len(codecs) and codecs[run_end].inline is not None:
            run_end += 1
        if run_end > i:
            run_size = sum(typing.cast(_Inline, c.inline).size for c in codecs[i:run_end])
            what = ", ".join(names[i:run_end])
            dec_lines += [
                f"    if pos + {run_size} > n:",
                f"        raise _End('{cls.__name__} needs {run_size} bytes for {what}', pos)",
            ]
            offset = 0
            for j in range(i, run_end):
                inline = typing.cast(_Inline, codecs[j].inline)
                _inline_field(j, names[j], inline, offset, env, enc_lines, dec_lines)
                offset += inline.size
            dec_lines.append(f"    pos += {run_size}")
            i = run_end
            continue
        env[f"_e{i}"] = codecs[i].enc
        env[f"_d{i}"] = codecs[i].dec
        enc_lines.append(f"    _e{i}(v.{names[i]}, out)")
        dec_lines.append(f"    f{i}, pos = _d{i}(buf, pos)")
        i += 1
    if len(enc_lines) == 1:
        enc_lines.append("    pass")
    dec_lines.append("    o = _new(_cls)")
    if names:
        items = ", ".join(f"'{name}': f{k}" for k, name in enumerate(names))
        dec_lines.append(f"    o.__dict__.update({{{items}}})")
    if hasattr(cls, "__post_init__"):
        dec_lines.append("    o.__post_init__()")
    dec_lines.append("    return o, pos")
    exec("\n".join(enc_lines) + "\n\n" + "\n".join(dec_lines), env)
    return env["enc"], env["dec"]


def _inline_field(
    k: int,
    name: str,
    inline: _Inline,
    offset: int,
    env: dict[str, Any],
    enc_lines: list[str],
    dec_lines: list[str],
) -> None:
    at = f"pos + {offset}" if offset else "pos"
    if inline.packer is not None:
        env[f"_pack{k}"] = inline.packer.pack
        env[f"_unpack{k}"] = inline.packer.unpack_from
        enc_lines.append(f"    out += _pack{k}(v.{name})")
        dec_lines.append(f"    f{k} = _unpack{k}(buf, {at})[0]")
        return
    size = inline.size
    enc_lines += [
        f"    x = v.{name}",
        f"    if len(x) != {size}:",
        f"        raise _EncErr('{name} must be {size} bytes, got %d' % len(x))",
        "    out += x",
    ]
    piece = f"buf[{at}:pos + {offset + size}]"
    if inline.wrap is None:
        dec_lines.append(f"    f{k} = {piece}")
    elif getattr(inline.wrap, "_BCS_LENGTH_ONLY", False):
        # The newtype's constructor only checks the length, which the slice guarantees.
        env[f"_w{k}"] = inline.wrap
        dec_lines.append(f"    f{k} = _bytes_new(_w{k}, {piece})")
    else:
        env[f"_w{k}"] = inline.wrap
        dec_lines.append(f"    f{k} = _w{k}({piece})")


#: Built codecs by class (a dict lookup is cheaper than a per-class attribute check).
_CODECS: dict[type, Codec[Any]] = {}


@dataclass_transform(frozen_default=True, eq_default=True)
class BcsStruct:
    """Base of every BCS struct: subclasses become frozen dataclasses whose fields, in
    declaration order, are the wire format. The schema is read from the annotations the
    first time the codec is needed, so forward references to later classes work."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        dataclasses.dataclass(frozen=True, eq=True)(cls)

    @classmethod
    def bcs_codec(cls) -> Codec[Self]:
        codec = _CODECS.get(cls)
        if codec is None:
            codec = _CODECS[cls] = cls._build_codec()
        return typing.cast(Codec[Self], codec)

    @classmethod
    def _build_codec(cls) -> Codec[Any]:
        if getattr(cls, "__parameters__", ()):
            raise TypeError(f"{cls.__name__} is generic; subclass it with concrete types")
        return _struct_fields_codec(cls)

    @classmethod
    def _bcs_codec_for_args(cls, args: tuple[Any, ...]) -> Codec[Any]:
        params = getattr(cls, "__parameters__", ())
        return _struct_fields_codec(cls, dict(zip(params, args, strict=True)))

    def to_bytes(self) -> bytes:
        """The canonical BCS encoding."""
        return encode(self, type(self).bcs_codec())

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> Self:
        """Decode exactly one value; rejects malformed input with a `BcsDecodeError`."""
        value = decode(data, cls.bcs_codec())
        if not isinstance(value, cls):
            raise InvalidValueError(f"expected {cls.__name__}, decoded {type(value).__name__}")
        return value


class BcsEnum(BcsStruct):
    """Base of a Rust-style enum with data.

    Declare the enum as a direct subclass with no fields, then each variant as a subclass
    of it with a `tag` (its BCS variant index) and the variant's fields:

        class Owner(BcsEnum): ...
        class AddressOwner(Owner, tag=0):
            address: SomaAddress

    A variant's `to_bytes()` is the enum encoding (tag first), because in BCS a variant
    is never serialized on its own.
    """

    __bcs_variants__: ClassVar[dict[int, type[BcsEnum]]]
    __bcs_enum__: ClassVar[type[BcsEnum]]
    __bcs_tag__: ClassVar[int]

    def __init_subclass__(cls, tag: int | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if BcsEnum in cls.__bases__:
            if tag is not None:
                raise TypeError(f"{cls.__name__} is an enum root and takes no tag")
            cls.__bcs_variants__ = {}
            cls.__bcs_enum__ = cls
            return
        if tag is None:
            raise TypeError(f"variant {cls.__name__} needs a tag=N class argument")
        root = cls.__bcs_enum__
        if tag in root.__bcs_variants__:
            other = root.__bcs_variants__[tag].__name__
            raise TypeError(f"{root.__name__} tag {tag} used by {other} and {cls.__name__}")
        cls.__bcs_tag__ = tag
        root.__bcs_variants__[tag] = cls
        # A variant declared after the enum was first used invalidates its codec.
        _CODECS.pop(root, None)

    @classmethod
    def bcs_codec(cls) -> Codec[Self]:
        root = cls.__bcs_enum__
        codec = _CODECS.get(root)
        if codec is None:
            codec = _CODECS[root] = _enum_codec(root)
        return typing.cast(Codec[Self], codec)

    @classmethod
    def variants(cls) -> dict[int, type[BcsEnum]]:
        """Tag -> variant class for this enum."""
        return dict(cls.__bcs_enum__.__bcs_variants__)


def _enum_codec(root: type[BcsEnum]) -> Codec[Any]:
    by_type: dict[type, tuple[bytes, Encoder]] = {}
    by_tag: dict[int, Decoder] = {}
    for tag, variant in sorted(root.__bcs_variants__.items()):
        payload = _struct_fields_codec(variant)
        tag_bytes = bytearray()
        _enc_uleb(tag, tag_bytes)
        by_type[variant] = (bytes(tag_bytes), payload.enc)
        by_tag[tag] = payload.dec
    name = root.__name__

    def enc(value: Any, out: bytearray) -> None:
        try:
            tag_bytes, penc = by_type[type(value)]
        except KeyError:
            raise BcsEncodeError(f"{type(value).__name__} is not a variant of {name}") from None
        out += tag_bytes
        penc(value, out)

    def dec(buf: bytes, pos: int) -> tuple[Any, int]:
        try:
            tag = buf[pos]
        except IndexError:
            raise UnexpectedEndError(f"expected a {name} variant tag", pos) from None
        if tag < 0x80:
            cur = pos + 1
        else:
            tag, cur = _dec_uleb(buf, pos)
        pdec = by_tag.get(tag)
        if pdec is None:
            raise UnknownEnumTagError(f"unknown {name} variant tag {tag}", pos)
        return pdec(buf, cur)

    return Codec(name, enc, dec, 1)


__all__ = [
    "BOOL",
    "BYTES",
    "I8",
    "I16",
    "I32",
    "I64",
    "I128",
    "MAX_SEQUENCE_LENGTH",
    "STR",
    "U8",
    "U16",
    "U32",
    "U64",
    "U128",
    "U256",
    "ULEB128",
    "UNIT",
    "Array",
    "BcsEnum",
    "BcsError",
    "BcsStruct",
    "Bytes32",
    "Bytes64",
    "Codec",
    "FixedBytes",
    "IntEnumCodec",
    "Map",
    "Option",
    "Tuple",
    "Vec",
    "codec_for",
    "decode",
    "describe_fields",
    "encode",
    "i8",
    "i16",
    "i32",
    "i64",
    "i128",
    "typevar_bindings",
    "u8",
    "u16",
    "u32",
    "u64",
    "u128",
    "u256",
    "uleb128",
]

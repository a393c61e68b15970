"""Binary Canonical Serialization (BCS), the byte format of everything soma signs or hashes.

BCS (from Diem, used by Sui) has exactly one encoding per value, so "sign the value" and
"sign its bytes" mean the same thing and two honest validators always hash the same
bytes. No maintained Python implementation exists, so this is our own.

Two layers:

* `Codec` objects for the wire types (`codec`, `primitives`, `combinators`): `U8`..`U256`,
  `I8`..`I128`, `BOOL`, `BYTES`, `STR`, `ULEB128`, `UNIT`, and `Option`, `Vec`, `Array`,
  `FixedBytes`, `Tuple`, `Map`. `encode(value, codec)` / `decode(data, codec)` work on
  them directly.
* Schemas declared once on frozen dataclasses (`schema`, with generated code from
  `codegen`). Subclass `BcsStruct` and annotate fields with Python types (`u64`,
  `Bytes32`, `tuple[X, ...]` for a vector, `X | None` for an option, `dict[K, V]` for a
  map, another struct, an `IntEnum`, a `BcsEnum` or a `FixedBytesType`); the class becomes
  a frozen dataclass with `to_bytes()` / `from_bytes()`. Rust-style enums with data are a
  `BcsEnum` root class whose variants are subclasses declared with `tag=N`.

Decoding never trusts its input: every malformed buffer is rejected with a
`BcsDecodeError` subclass (never an IndexError or struct.error), including trailing
bytes, non-canonical ULEB128, lengths past the end, unknown enum tags, bad bools or
option tags, invalid UTF-8, out-of-range integers and unsorted maps. Encoding is as
strict: a value of the wrong Python type is a `BcsEncodeError`, never silently coerced.
"""

from soma.types.bcs.codec import MAX_SEQUENCE_LENGTH, ULEB128, Codec, decode, encode
from soma.types.bcs.combinators import Array, IntEnumCodec, Map, Option, Tuple, Vec
from soma.types.bcs.newtype import FixedBytesType
from soma.types.bcs.primitives import (
    BOOL,
    BYTES,
    I8,
    I16,
    I32,
    I64,
    I128,
    STR,
    U8,
    U16,
    U32,
    U64,
    U128,
    U256,
    UNIT,
    Bytes32,
    Bytes64,
    FixedBytes,
    i8,
    i16,
    i32,
    i64,
    i128,
    u8,
    u16,
    u32,
    u64,
    u128,
    u256,
    uleb128,
)
from soma.types.bcs.schema import (
    BcsEnum,
    BcsStruct,
    CachedBytes,
    codec_for,
    describe_fields,
    typevar_bindings,
)

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
    "BcsStruct",
    "Bytes32",
    "Bytes64",
    "CachedBytes",
    "Codec",
    "FixedBytes",
    "FixedBytesType",
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

"""Schemas declared on frozen dataclasses: `BcsStruct`, `BcsEnum`, and the mapping from
field annotations to codecs."""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Self, TypeVar, dataclass_transform

from soma.types.bcs.codec import Codec, Decoder, Encoder, dec_uleb, decode, enc_uleb, encode
from soma.types.bcs.codegen import CACHED_BYTES_ATTR, generate_struct_code
from soma.types.bcs.combinators import IntEnumCodec, Map, Option, Tuple, Vec
from soma.types.bcs.fast_init import install_fast_init
from soma.types.bcs.primitives import BOOL, BYTES, STR, UNIT
from soma.types.error import (
    BcsEncodeError,
    InvalidValueError,
    UnexpectedEndError,
    UnknownEnumTagError,
)


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


def field_codecs(
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
    return [(name, codec.name) for name, codec in field_codecs(cls)]


def struct_fields_codec(cls: type, typevars: Mapping[Any, Any] | None = None) -> Codec[Any]:
    """The codec of a dataclass's fields in declaration order (no enum tag)."""
    pairs = field_codecs(cls, typevars)
    names = [name for name, _ in pairs]
    codecs = [codec for _, codec in pairs]
    # A variant's payload follows its tag, so only a whole struct can keep its bytes.
    keep = issubclass(cls, CachedBytes) and not issubclass(cls, BcsEnum)
    enc, dec = generate_struct_code(cls, names, codecs, keep_bytes=keep)
    return Codec(cls.__name__, enc, dec, sum(c.min_size for c in codecs))


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
        install_fast_init(cls)

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
        return struct_fields_codec(cls)

    @classmethod
    def _bcs_codec_for_args(cls, args: tuple[Any, ...]) -> Codec[Any]:
        params = getattr(cls, "__parameters__", ())
        return struct_fields_codec(cls, dict(zip(params, args, strict=True)))

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


class CachedBytes(BcsStruct):
    """A struct that keeps its canonical bytes: the slice it was decoded from, or its
    encoding the first time it is asked for. Hashed and signed values (transactions,
    effects, objects, blocks) derive from it, so a value received from a peer is never
    re-encoded to be hashed, verified, stored or forwarded. The cache lives outside the
    dataclass fields, so equality and hashing ignore it."""

    def _keep_bytes(self, data: bytes) -> None:
        """Adopt `data` as this value's bytes, for a caller that built the canonical
        encoding itself on a hot path (it must be exactly what encoding would give)."""
        self.__dict__[CACHED_BYTES_ATTR] = data

    def to_bytes(self) -> bytes:
        kept: bytes | None = self.__dict__.get(CACHED_BYTES_ATTR)
        if kept is None:
            kept = self.__dict__[CACHED_BYTES_ATTR] = encode(self, type(self).bcs_codec())
        return kept


class BcsEnum(BcsStruct):
    """Base of a Rust-style enum with data.

    Declare the enum as a direct subclass of `BcsEnum`, then each variant as a subclass
    of it with a `tag` (its BCS variant index) and the variant's fields:

        class Owner(BcsEnum): ...
        class AddressOwner(Owner, tag=0):
            address: SomaAddress

    Fields declared on the root are inherited by every variant and encoded first in each
    (after the tag). A variant's `to_bytes()` is the enum encoding (tag first), because in
    BCS a variant is never serialized on its own.
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
            codec = _CODECS[root] = enum_codec(root)
        return typing.cast(Codec[Self], codec)

    @classmethod
    def variants(cls) -> dict[int, type[BcsEnum]]:
        """Tag -> variant class for this enum."""
        return dict(cls.__bcs_enum__.__bcs_variants__)


def enum_codec(root: type[BcsEnum]) -> Codec[Any]:
    by_type: dict[type, tuple[bytes, Encoder]] = {}
    by_tag: dict[int, Decoder] = {}
    for tag, variant in sorted(root.__bcs_variants__.items()):
        payload = struct_fields_codec(variant)
        tag_bytes = bytearray()
        enc_uleb(tag, tag_bytes)
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
            tag, cur = dec_uleb(buf, pos)
        pdec = by_tag.get(tag)
        if pdec is None:
            raise UnknownEnumTagError(f"unknown {name} variant tag {tag}", pos)
        return pdec(buf, cur)

    return Codec(name, enc, dec, 1)

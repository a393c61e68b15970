"""Hypothesis strategies derived from the same annotations the BCS codec reads.

Deriving them from the schema (instead of writing one per type by hand) means a type added
to `soma.types` is covered by the round-trip tests as soon as it exists; only types with
invariants beyond their field types (a committee must be sorted) need an override.
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
import inspect
import pkgutil
import types
import typing
from collections.abc import Mapping
from typing import Annotated, Any, TypeVar

from hypothesis import strategies as st

import soma.types
from soma.types import bcs
from soma.types.base import ObjectID
from soma.types.bcs import BcsEnum, BcsStruct, Codec
from soma.types.committee import Committee, CommitteeMember
from soma.types.crypto import UserSignature
from soma.types.digests import ObjectDigest, TransactionDigest
from soma.types.effects import (
    ChangedObject,
    EffectsObjectChange,
    ExecutionStatus,
    IDOperation,
    ObjectInExist,
    ObjectInNotExist,
    ObjectOutNotExist,
    ObjectOutWrite,
    TransactionEffects,
)
from soma.types.object import Object, ObjectType, Owner, contents_type

_INT_RANGES: dict[int, tuple[int, int]] = {
    id(bcs.U8): (0, 2**8 - 1),
    id(bcs.U16): (0, 2**16 - 1),
    id(bcs.U32): (0, 2**32 - 1),
    id(bcs.U64): (0, 2**64 - 1),
    id(bcs.U128): (0, 2**128 - 1),
    id(bcs.U256): (0, 2**256 - 1),
    id(bcs.I8): (-(2**7), 2**7 - 1),
    id(bcs.I16): (-(2**15), 2**15 - 1),
    id(bcs.I32): (-(2**31), 2**31 - 1),
    id(bcs.I64): (-(2**63), 2**63 - 1),
    id(bcs.I128): (-(2**127), 2**127 - 1),
    id(bcs.ULEB128): (0, 2**32 - 1),
}


def _committee() -> st.SearchStrategy[Committee]:
    member = strategy_for(CommitteeMember)
    # Names and both keys must be unique in a committee (Committee.new checks).
    members = st.lists(
        member,
        min_size=1,
        max_size=4,
        unique_by=(lambda m: m.name, lambda m: m.protocol_key, lambda m: m.network_key),
    )
    positive = members.map(
        lambda ms: [dataclasses.replace(m, stake=max(m.stake % 2**60, 1)) for m in ms]
    )
    return st.builds(Committee.new, st.integers(0, 2**64 - 1), positive)


@st.composite
def _object(draw: st.DrawFn) -> Object:
    object_type = draw(st.sampled_from(list(ObjectType)))
    contents = draw(strategy_for(contents_type(object_type))).to_bytes()
    return Object(
        draw(strategy_for(ObjectID)),
        object_type,
        draw(st.integers(0, 2**64 - 1)),
        contents,
        draw(strategy_for(Owner)),
        draw(strategy_for(TransactionDigest)),
    )


@st.composite
def _effects(draw: st.DrawFn) -> TransactionEffects:
    """Canonical effects: sorted unique changes and dependencies, consistent change
    triples, input versions below the Lamport version, a written gas object."""
    lamport = draw(st.integers(1, 2**64 - 1))
    ids = sorted(set(draw(st.lists(strategy_for(ObjectID), max_size=4))))
    changes = []
    for object_id in ids:
        op = draw(st.sampled_from(list(IDOperation)))
        digest, owner = draw(strategy_for(ObjectDigest)), draw(strategy_for(Owner))
        exists = ObjectInExist(draw(st.integers(0, lamport - 1)), digest, owner)
        before = ObjectInNotExist() if op == IDOperation.CREATED else exists
        after = ObjectOutNotExist() if op == IDOperation.DELETED else ObjectOutWrite(digest, owner)
        changes.append(ChangedObject(object_id, EffectsObjectChange(before, after, op)))
    tx_digest = draw(strategy_for(TransactionDigest))
    deps = sorted(set(draw(st.lists(strategy_for(TransactionDigest), max_size=3))) - {tx_digest})
    written = [
        i for i, c in enumerate(changes) if isinstance(c.change.output_state, ObjectOutWrite)
    ]
    gas = draw(st.none() | st.sampled_from(written)) if written else None
    return TransactionEffects(
        draw(strategy_for(ExecutionStatus)),
        draw(st.integers(0, 2**64 - 1)),
        tx_digest,
        tuple(deps),
        tuple(changes),
        gas,
        draw(st.integers(0, 2**64 - 1)),
        lamport,
    )


#: Types whose constructors enforce more than their field types say.
OVERRIDES: dict[type, Any] = {
    Committee: _committee,
    Object: _object,
    TransactionEffects: _effects,
    UserSignature: lambda: st.binary(min_size=96, max_size=96).map(
        lambda b: UserSignature(b"\0" + b)
    ),
}


def _codec_strategy(codec: Codec[Any]) -> st.SearchStrategy[Any]:
    rng = _INT_RANGES.get(id(codec))
    if rng is not None:
        return st.integers(*rng)
    if codec.inline is not None and codec.inline.packer is None:
        size = codec.inline.size
        raw = st.binary(min_size=size, max_size=size)
        return raw if codec.inline.wrap is None else raw.map(codec.inline.wrap)
    raise TypeError(f"no strategy for codec {codec.name}")


def strategy_for(tp: Any, typevars: Mapping[Any, Any] | None = None) -> st.SearchStrategy[Any]:
    if isinstance(tp, TypeVar):
        assert typevars is not None
        return strategy_for(typevars[tp], typevars)
    if tp in OVERRIDES:
        return typing.cast(st.SearchStrategy[Any], OVERRIDES[tp]())
    origin = typing.get_origin(tp)
    if origin is Annotated:
        for meta in tp.__metadata__:
            if isinstance(meta, Codec):
                return _codec_strategy(meta)
        return strategy_for(tp.__origin__, typevars)
    if origin in (typing.Union, types.UnionType):
        (inner,) = [a for a in typing.get_args(tp) if a is not type(None)]
        return st.none() | strategy_for(inner, typevars)
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return st.lists(strategy_for(args[0], typevars), max_size=3).map(tuple)
        return st.tuples(*(strategy_for(a, typevars) for a in args))
    if origin is list:
        return st.lists(strategy_for(typing.get_args(tp)[0], typevars), max_size=3)
    if origin is dict:
        k, v = typing.get_args(tp)
        return st.dictionaries(strategy_for(k, typevars), strategy_for(v, typevars), max_size=3)
    if isinstance(origin, type) and issubclass(origin, BcsStruct):
        params = origin.__parameters__  # type: ignore[attr-defined]
        return _struct_strategy(origin, dict(zip(params, typing.get_args(tp), strict=True)))
    if tp is bool:
        return st.booleans()
    if tp is str:
        return st.text(max_size=12)
    if tp is bytes:
        return st.binary(max_size=40)
    if isinstance(tp, type):
        if issubclass(tp, enum.IntEnum):
            return st.sampled_from(list(tp))
        if issubclass(tp, BcsEnum) and tp is tp.__bcs_enum__:
            variants = [v for _, v in sorted(tp.variants().items())]
            return st.one_of(*(st.deferred(lambda v=v: strategy_for(v)) for v in variants))
        if issubclass(tp, BcsStruct):
            return _struct_strategy(tp, typevars)
        if issubclass(tp, bytes) and hasattr(tp, "bcs_codec"):
            return _codec_strategy(tp.bcs_codec())
    raise TypeError(f"no strategy for {tp!r}")


def _struct_strategy(cls: type, typevars: Mapping[Any, Any] | None) -> st.SearchStrategy[Any]:
    hints = typing.get_type_hints(cls, include_extras=True)
    bindings = dict(bcs.typevar_bindings(cls))
    if typevars:
        bindings.update(typevars)
    fields = [strategy_for(hints[f.name], bindings) for f in dataclasses.fields(cls)]
    return st.builds(cls, *fields)


def public_types() -> list[type]:
    """Every concrete type with a BCS codec defined in a `soma.types` module."""
    found: list[type] = []
    for info in pkgutil.walk_packages(soma.types.__path__, prefix="soma.types."):
        if info.name.startswith("soma.types.bcs"):
            continue  # the codec framework itself: covered by the golden-vector tests
        module = importlib.import_module(info.name)
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if obj.__module__ != module.__name__ or obj in (BcsStruct, BcsEnum):
                continue
            if obj.__name__.startswith("_"):
                continue
            if getattr(obj, "__parameters__", ()):
                continue  # generic: covered through its concrete subclasses
            if hasattr(obj, "bcs_codec") or issubclass(obj, enum.IntEnum):
                found.append(obj)
    return found

"""The fast `__init__` of BCS structs behaves like the dataclass one it replaces."""

from __future__ import annotations

import dataclasses

import pytest

from soma.types.bcs import BcsStruct, u64
from soma.types.bcs.fast_init import install_fast_init
from soma.types.error import InvalidValueError


class Pair(BcsStruct):
    left: u64
    right: u64 = 7


class Checked(BcsStruct):
    value: u64

    def __post_init__(self) -> None:
        if self.value > 10:
            raise InvalidValueError("too big")


def test_positional_keyword_and_default() -> None:
    assert Pair(1) == Pair(left=1, right=7) == Pair(1, 7)
    assert Pair(1, right=2).right == 2
    assert Pair.from_bytes(Pair(3, 4).to_bytes()) == Pair(3, 4)


def test_missing_and_unknown_arguments_fail_like_a_dataclass() -> None:
    with pytest.raises(TypeError):
        Pair()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Pair(1, 2, 3)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Pair(1, other=2)  # type: ignore[call-arg]


def test_post_init_runs_and_instances_stay_frozen() -> None:
    with pytest.raises(InvalidValueError):
        Checked(11)
    value = Checked(3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        value.value = 4  # type: ignore[misc]
    assert dataclasses.replace(value, value=5) == Checked(5)


def test_default_factory() -> None:
    @dataclasses.dataclass(frozen=True)
    class Holder:
        items: list[int] = dataclasses.field(default_factory=list)
        name: str = "x"

    install_fast_init(Holder)
    first, second = Holder(), Holder()
    assert first.items == [] and first.items is not second.items
    assert Holder([1], "y") == Holder(items=[1], name="y")

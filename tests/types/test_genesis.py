"""Genesis parameters: the defaults, and the parameters no epoch change could work with."""

from __future__ import annotations

import dataclasses

import pytest

from soma.types.error import InvalidValueError
from soma.types.genesis import DEFAULT_PARAMETERS, build_genesis_transaction, check_parameters


def test_the_defaults() -> None:
    assert DEFAULT_PARAMETERS.min_validators == 4
    assert DEFAULT_PARAMETERS.max_validators == 150
    # A local network's faucet grant (10,000,000) covers the stake and the fee.
    assert DEFAULT_PARAMETERS.min_validator_stake == 1_000_000
    check_parameters(DEFAULT_PARAMETERS)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"min_validator_stake": 0}, "min_validator_stake must be at least 1"),
        ({"min_validators": 0}, "min_validators \\(0\\) must be 1 to max_validators"),
        ({"min_validators": 5, "max_validators": 4}, "min_validators \\(5\\)"),
    ],
)
def test_parameters_that_could_build_no_committee_are_refused(
    changes: dict[str, int], message: str
) -> None:
    parameters = dataclasses.replace(DEFAULT_PARAMETERS, **changes)  # type: ignore[arg-type]
    with pytest.raises(InvalidValueError, match=message):
        check_parameters(parameters)
    with pytest.raises(InvalidValueError, match=message):
        build_genesis_transaction([], [], parameters)


def test_bounds_themselves_are_accepted() -> None:
    tight = dataclasses.replace(
        DEFAULT_PARAMETERS, min_validator_stake=1, min_validators=1, max_validators=1
    )
    check_parameters(tight)
    assert build_genesis_transaction([], [], tight).kind is not None

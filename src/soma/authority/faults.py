"""Faults a test injects into a node, to show that the others detect them.

Read once, from the `SOMA_TEST_FAULTS` environment variable (comma-separated
`name=value` pairs), so a test can start one node process with a fault and the rest
without. Never set in a real deployment: a node that has one logs it loudly at start.

- `diverge_at=N`: at global commit N this node's state accumulator takes an element no
  object has, so its state root (and its summary) differ from every honest node's: it
  must detect the fork once the certified summary of N arrives, and halt.
"""

from __future__ import annotations

import dataclasses
import logging
import os

from soma.types.error import SomaError

ENV = "SOMA_TEST_FAULTS"
logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class InjectedFaults:
    diverge_at: int | None = None


def parse(text: str) -> InjectedFaults:
    values: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = part.partition("=")
        if name not in {f.name for f in dataclasses.fields(InjectedFaults)}:
            raise SomaError(f"{ENV}: unknown fault {name!r}")
        try:
            values[name] = int(value)
        except ValueError:
            raise SomaError(f"{ENV}: {name} needs an integer, got {value!r}") from None
    return InjectedFaults(**values)


def from_environment() -> InjectedFaults:
    faults = parse(os.environ.get(ENV, ""))
    if faults != InjectedFaults():
        logger.critical("TEST FAULTS INJECTED into this node: %s", faults)
    return faults

"""Validator services on loopback in front of a test network's in-process validators,
so the orchestrator's clients (quorum driver, remote reader) reach them over real gRPC."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from soma.authority.service import ValidatorService
from soma.authority.state import AuthorityState
from soma.types.tls import tls_identity
from tests.authority.network import TestNetwork, Validator


def _state_of(validator: Validator) -> AuthorityState:
    assert validator.state is not None
    return validator.state


@contextlib.asynccontextmanager
async def validator_services(
    net: TestNetwork,
) -> AsyncIterator[tuple[list[ValidatorService], list[str]]]:
    """A ValidatorService on 127.0.0.1 (a free port the system picks) for each validator
    of the started `net`, in committee order; their addresses; all stopped on exit."""
    services: list[ValidatorService] = []
    addresses: list[str] = []
    try:
        for v in net.validators:
            assert v.keys.authority.name == net.committee.members[v.index].name
            service = ValidatorService(lambda v=v: _state_of(v), tls_identity(v.keys.network))
            port = service.bind("127.0.0.1:0")
            services.append(service)
            await service.start()
            addresses.append(f"127.0.0.1:{port}")
        yield services, addresses
    finally:
        for service in services:
            await service.stop(0)

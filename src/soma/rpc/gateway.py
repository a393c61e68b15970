"""What the HTTP API asks of the network: execution through the QuorumDriver, reads from
the validators (the first that answers, in a rotating order, so one slow or stopped
validator does not stall reads)."""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from typing import TypeVar

from soma.authority import service_wire as wire
from soma.authority.service_client import ValidatorCallError, ValidatorClient
from soma.rpc.quorum_driver import QuorumDriver
from soma.types.committee import Committee
from soma.types.error import SomaError

T = TypeVar("T")


class NoValidatorError(SomaError):
    code = "NO_VALIDATOR_REACHABLE"


class Gateway:
    def __init__(self, committee: Committee, transaction_fee: int) -> None:
        self.committee = committee
        #: The fee of the epoch the gateway connected in (for clients building gas budgets).
        self.transaction_fee = transaction_fee
        self.driver = QuorumDriver.for_committee(committee)
        self.clients = [self.driver.clients[n] for n in committee.names()]
        self._next = itertools.cycle(range(len(self.clients)))

    @classmethod
    async def connect(cls, addresses: list[str]) -> Gateway:
        """Learn the committee from the first validator that answers."""
        last: Exception | None = None
        for address in addresses:
            client = ValidatorClient(address)
            try:
                status = await client.get_status()
                state = status.system_state
                return cls(state.committee(), state.parameters.transaction_fee)
            except ValidatorCallError as e:
                last = e
            finally:
                await client.close()
        raise NoValidatorError(f"no validator answered: {last}")

    async def close(self) -> None:
        await self.driver.close()

    async def read(self, call: Callable[[ValidatorClient], Awaitable[T]]) -> T:
        start = next(self._next)
        last: ValidatorCallError | None = None
        for i in range(len(self.clients)):
            client = self.clients[(start + i) % len(self.clients)]
            try:
                return await call(client)
            except ValidatorCallError as e:
                last = e
        raise NoValidatorError(f"no validator answered: {last}")

    async def status(self) -> wire.GetStatusResponse:
        return await self.read(lambda c: c.get_status())

"""A stream of transfers through the quorum driver for end-to-end tests: every account
sends 1 to the next one in a closed loop, asserting each transfer certifies a success."""

from __future__ import annotations

import asyncio

from soma.orchestrator.remote_reader import RemoteReader
from soma.types.crypto import AccountKeyPair
from soma.types.transaction import SignedTransaction, TransactionData, TransferCoin


class TransferLoad:
    def __init__(self, gateway: RemoteReader, keys: list[AccountKeyPair]) -> None:
        self._gateway = gateway
        self._keys = keys
        self._stop = asyncio.Event()
        self._senders: list[asyncio.Future[None]] = []
        #: Transfers certified so far.
        self.certified = 0

    def start(self) -> None:
        self._senders = [asyncio.ensure_future(self._send(i)) for i in range(len(self._keys))]

    async def _send(self, i: int) -> None:
        gateway, key = self._gateway, self._keys[i]
        address = key.public_key.to_address()
        owned = await gateway.read(lambda c: c.get_owned_objects(address))
        coin = owned.objects[0]
        to = self._keys[(i + 1) % len(self._keys)].public_key.to_address()
        fee = gateway.transaction_fee
        while not self._stop.is_set():
            data = TransactionData(TransferCoin(coin, 1, to), address, coin, 10 * fee, None)
            certificate = await gateway.driver.execute(SignedTransaction.sign(data, key), 60)
            assert certificate.data.status.is_success()
            new_coin = certificate.data.gas_object()
            assert new_coin is not None
            coin = new_coin
            self.certified += 1

    async def until(self, count: int, timeout_s: float) -> None:
        """Wait until `count` transfers are certified (a sender's failure is raised)."""
        async with asyncio.timeout(timeout_s):
            while self.certified < count:
                for sender in self._senders:
                    if sender.done():
                        sender.result()
                await asyncio.sleep(0.1)

    async def stop(self) -> None:
        """Let each sender finish its transfer in flight, then end."""
        self._stop.set()
        await asyncio.gather(*self._senders)

    async def cancel(self) -> None:
        self._stop.set()
        for sender in self._senders:
            sender.cancel()
        await asyncio.gather(*self._senders, return_exceptions=True)

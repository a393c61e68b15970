"""The faucet of a local network: hands out coins of a fixed amount from an account
funded at genesis.

One coin pays every grant (split off with TransferCoin), so grants are made one at a
time; the faucet follows its coin's version from each certificate, and re-reads it
through its reader if a grant fails. Any ChainReader serves (the validators' or a
fullnode's): the faucet needs its coins, the epoch's fee and execution.
"""

from __future__ import annotations

import asyncio

from soma.orchestrator.chain_reader import ChainReader
from soma.types.base import SomaAddress
from soma.types.crypto import AccountKeyPair
from soma.types.effects import CertifiedTransactionEffects
from soma.types.error import SomaError
from soma.types.object import ObjectRef
from soma.types.transaction import SignedTransaction, TransactionData, TransferCoin

DEFAULT_GRANT = 10_000_000


class FaucetEmptyError(SomaError):
    code = "FAUCET_EMPTY"


class Faucet:
    def __init__(self, reader: ChainReader, key: AccountKeyPair, grant: int = DEFAULT_GRANT):
        self.reader = reader
        self.key = key
        self.address = key.public_key.to_address()
        self.grant = grant
        self._coin: ObjectRef | None = None
        self._lock = asyncio.Lock()

    async def _largest_coin(self) -> ObjectRef:
        """The faucet's largest coin: the first of its coins in the index's order
        (largest balance first), one read however many coins it holds."""
        page = await self.reader.coins(self.address, None, 1)
        if not page.items:
            raise FaucetEmptyError(f"the faucet {self.address} has no coins")
        return page.items[0].ref

    async def give(self, recipient: SomaAddress) -> CertifiedTransactionEffects:
        async with self._lock:
            coin = self._coin or await self._largest_coin()
            fee = (await self.reader.status()).transaction_fee
            data = TransactionData(
                TransferCoin(coin, self.grant, recipient), self.address, coin, 10 * fee, None
            )
            try:
                tx = SignedTransaction.sign(data, self.key)
                certificate = await self.reader.execute(tx)
            except SomaError:
                self._coin = None
                raise
            self._coin = certificate.data.gas_object()
            if not certificate.data.status.is_success():
                self._coin = None
                raise FaucetEmptyError(f"the faucet's grant failed: {certificate.data.status}")
            return certificate

"""Reads only the validators can answer, asked of them directly by either reader.

A fullnode holds the certified chain and its own execution of it, but not what
consensus did to make it (the DAG, which leader slots were committed or skipped, a
commit's leader and blocks), nor the validators' signatures over a transaction's
effects unless it submitted that transaction itself. Both readers get these the same
way, from the validators the quorum driver already has clients for:

- `recent_dag` and `commit_records`: from the first validator that answers, in a
  rotating order; one that runs no consensus (it follows by state sync) or cannot be
  reached is passed over. The DAG is asked of the validator that answered last, while
  it answers: each validator's view differs a little (rounds received, slots decided),
  and a view that moves from one to the next at each refresh would flicker.
- `effects_signatures`: every member of the committee of the effects' epoch is asked
  for its signed effects at once; the signatures that verify and sign exactly these
  effects are kept, and once they reach a quorum of stake they are combined into an
  effects certificate: the same proof the quorum driver returns on execution.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from collections.abc import Awaitable, Callable
from typing import TypeVar

from soma.authority import service_wire as wire
from soma.authority.service_client import RemoteError, ValidatorCallError, ValidatorClient
from soma.orchestrator.quorum_driver import QuorumDriver
from soma.types.base import AuthorityName
from soma.types.committee import Committee
from soma.types.digests import TransactionDigest
from soma.types.effects import (
    CertifiedTransactionEffects,
    SignedTransactionEffects,
    TransactionEffects,
)
from soma.types.error import SomaError

T = TypeVar("T")
#: How long one validator is given for an explorer read.
READ_TIMEOUT_S = 5.0


class NoValidatorError(SomaError):
    code = "NO_VALIDATOR_REACHABLE"


@dataclasses.dataclass(frozen=True)
class RecentDag:
    """A validator's recent DAG (`service_wire.GetRecentDagResponse`) and which
    validator answered (its hostname): the DAG is one validator's view of it."""

    dag: wire.GetRecentDagResponse
    validator: str


@dataclasses.dataclass(frozen=True)
class EffectsSignatures:
    """Who signed a transaction's effects, among `committee` (of the effects' epoch):
    `signers` in committee order; `certificate` once their stake reaches a quorum."""

    committee: Committee
    signers: list[AuthorityName]
    certificate: CertifiedTransactionEffects | None

    @property
    def signed_stake(self) -> int:
        return sum(self.committee.stake_of(name) for name in self.signers)


class ValidatorReads:
    """The reads above through `driver`'s clients (the reader owns the driver)."""

    def __init__(self, driver: QuorumDriver) -> None:
        self.driver = driver
        self._next = itertools.count()
        #: The validator the last DAG came from.
        self._dag_source: AuthorityName | None = None

    async def first_answer(
        self, call: Callable[[ValidatorClient], Awaitable[T]], first: AuthorityName | None = None
    ) -> tuple[T, AuthorityName]:
        """The answer of the first validator of the current committee that gives one,
        starting from `first` if it is a member, else from a different one each time,
        and its name."""
        names = self.driver.committee.names()
        start = names.index(first) if first in names else next(self._next)
        last: Exception | None = None
        for i in range(len(names)):
            name = names[(start + i) % len(names)]
            client = self.driver.clients.get(name)
            if client is None:
                continue
            try:
                return await call(client), name
            except (ValidatorCallError, RemoteError) as e:
                last = e
        raise NoValidatorError(f"no validator answered: {last}")

    async def recent_dag(self, rounds: int) -> RecentDag:
        dag, name = await self.first_answer(
            lambda c: c.get_recent_dag(rounds, READ_TIMEOUT_S), self._dag_source
        )
        self._dag_source = name
        committee = self.driver.committee
        hostname = committee.members[committee.index_of(name)].hostname
        return RecentDag(dag, hostname)

    async def commit_records(self, start: int, count: int, detail: bool) -> list[wire.CommitRecord]:
        records, _ = await self.first_answer(
            lambda c: c.get_commits(start, count, detail, READ_TIMEOUT_S)
        )
        return records

    async def effects_signatures(
        self, digest: TransactionDigest, effects: TransactionEffects
    ) -> EffectsSignatures:
        committees = self.driver.committees
        committee = committees.of(effects.executed_epoch) or committees.current
        wanted = effects.to_bytes()

        async def ask(name: AuthorityName) -> SignedTransactionEffects | None:
            client = self.driver.clients.get(name)
            if client is None:
                return None
            try:
                async with asyncio.timeout(READ_TIMEOUT_S):
                    answer = await client.get_transaction(digest)
            except (SomaError, TimeoutError):
                return None
            signed = answer.effects
            if signed is None or signed.data.to_bytes() != wanted:
                return None
            if signed.auth_signature.authority != name:
                return None
            try:
                signed.verify(committee)
            except SomaError:
                return None
            return signed

        answers = await asyncio.gather(*(ask(name) for name in committee.names()))
        signed = [s for s in answers if s is not None]
        signers = [s.auth_signature.authority for s in signed]
        stake = sum(committee.stake_of(name) for name in signers)
        certificate = None
        if signed and stake >= committee.quorum_threshold:
            certificate = CertifiedTransactionEffects.from_signed(committee, list(signed))
        return EffectsSignatures(committee, signers, certificate)

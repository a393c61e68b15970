"""QuorumDriver: executes a signed transaction on the network and returns its effects
certificate, the client's proof of finality.

It submits to every validator at once and gathers their signed effects until 2f+1 stake
signed the same effects. A refusal is final only when validators holding f+1 stake
refuse for the same reason (at least one honest validator agrees): a single validator,
lagging or Byzantine, can neither block a transaction nor make it look refused.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Mapping

from soma.authority.effects_certificate import EffectsCertifier
from soma.authority.service_client import RemoteError, ValidatorCallError, ValidatorClient
from soma.types.base import AuthorityName
from soma.types.committee import Committee
from soma.types.effects import CertifiedTransactionEffects
from soma.types.error import SomaError
from soma.types.transaction import SignedTransaction

DEFAULT_TIMEOUT_S = 60.0


class QuorumTimeoutError(SomaError):
    code = "EFFECTS_TIMEOUT"


class QuorumUnreachableError(SomaError):
    """Too much stake refused or failed for a certificate to form."""

    code = "QUORUM_UNREACHABLE"


class QuorumDriver:
    def __init__(self, committee: Committee, clients: Mapping[AuthorityName, ValidatorClient]):
        missing = [n for n in committee.names() if n not in clients]
        if missing:
            raise SomaError(f"no client for validators {missing}")
        self.committee = committee
        self.clients = dict(clients)

    @classmethod
    def for_committee(cls, committee: Committee) -> QuorumDriver:
        """Clients at the network addresses the committee lists."""
        return cls(
            committee,
            {m.name: ValidatorClient(m.network_address) for m in committee.members},
        )

    async def close(self) -> None:
        for client in self.clients.values():
            await client.close()

    async def execute(
        self, tx: SignedTransaction, timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> CertifiedTransactionEffects:
        committee = self.committee
        certifier = EffectsCertifier(committee)
        refusals: dict[str, int] = collections.Counter()
        messages: dict[str, str] = {}
        failed_stake = 0
        done = asyncio.Event()
        outcome: list[CertifiedTransactionEffects] = []

        async def drive(name: AuthorityName) -> None:
            nonlocal failed_stake
            client = self.clients[name]
            stake = committee.stake_of(name)
            try:
                await client.submit(tx, timeout_s=timeout_s)
                while not done.is_set():
                    answer = await client.wait_for_effects(tx.digest(), timeout_s=timeout_s)
                    if answer.effects is None:
                        continue
                    certificate = certifier.add(answer.effects)
                    if certificate is not None and not outcome:
                        outcome.append(certificate)
                        done.set()
                    return
            except RemoteError as e:
                refusals[e.remote_code] += stake
                messages[e.remote_code] = e.message
                failed_stake += stake
            except (ValidatorCallError, SomaError):
                failed_stake += stake
            # Can a certificate still form?
            if committee.total_stake - failed_stake < committee.quorum_threshold:
                done.set()
            if any(r >= committee.validity_threshold for r in refusals.values()):
                done.set()

        tasks = [asyncio.ensure_future(drive(name)) for name in committee.names()]
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout_s):
                    await done.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if outcome:
            return outcome[0]
        if refusals:
            code, refused = max(refusals.items(), key=lambda item: item[1])
            if refused >= committee.validity_threshold:
                raise RemoteError(code, messages[code])
        if committee.total_stake - failed_stake < committee.quorum_threshold:
            detail = ", ".join(f"{c}: {messages[c]}" for c in sorted(refusals))
            raise QuorumUnreachableError(
                f"validators with {failed_stake} of {committee.total_stake} stake refused or "
                f"failed{': ' + detail if detail else ''}"
            )
        raise QuorumTimeoutError(f"no effects certificate for {tx.digest()} in {timeout_s} s")

"""QuorumDriver: executes a signed transaction on the network and returns its effects
certificate, the client's proof of finality.

The transaction is submitted to one validator (a different one per transaction, so the
load spreads), which offers it to consensus; every validator executes it from the
consensus output, and the driver gathers their signed effects until 2f+1 stake signed
the same effects. Submitting to one validator, not to all, keeps each transaction in one
block instead of N and spares N-1 validators the submit-time checks.

- A validator that refuses or cannot be reached is passed over: the next one is asked.
  A refusal is final only when validators holding f+1 stake refuse for the same reason
  (at least one honest validator agrees), so a single validator, lagging or Byzantine,
  can neither block a transaction nor make it look refused.
- A validator that accepts but whose transaction is not certified within
  `RESUBMIT_AFTER_S` (it may be withholding it, or have crashed) is followed by the next
  one; consensus drops the duplicate.
- Calls are batched per validator (`soma.orchestrator.validator_batcher`).
- Epochs: effects are certified by the committee of the epoch they executed in (the
  driver keeps a few past committees). A validator closing its epoch refuses with
  `EPOCH_ENDING` / `EPOCH_ENDED`: such a refusal is never final; the transaction is
  submitted again to the next committee as soon as the driver learns it
  (`reconfigure`), so a user sees a slower transaction at an epoch change, not a
  failed one.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import itertools
from collections.abc import Mapping

from soma.authority.effects_certificate import BatchEffectsCertifier
from soma.authority.service_client import RemoteError, ValidatorCallError, ValidatorClient
from soma.orchestrator.committee_history import CommitteeHistory
from soma.orchestrator.validator_batcher import (
    EffectsWatcher,
    StreamedEffects,
    SubmitBatcher,
    UnknownEpochError,
)
from soma.types.base import AuthorityName
from soma.types.committee import Committee
from soma.types.effects import CertifiedTransactionEffects
from soma.types.error import SomaError
from soma.types.transaction import SignedTransaction

DEFAULT_TIMEOUT_S = 60.0
#: How long an accepted transaction may go uncertified before the next validator gets
#: it too.
RESUBMIT_AFTER_S = 10.0


#: How long after a broken effects stream a validator is watched again (once).
WATCH_RETRY_S = 1.0
#: After every validator was asked, how long a transaction that one accepted but f+1
#: stake refused for one reason may still take to certify before the refusal is told.
REFUSAL_GRACE_S = 10.0
#: Refusals that do not depend on a validator's state: every honest validator refuses
#: the transaction for them, and its consensus handler drops it if it is ordered anyway.
STATELESS_REFUSALS = frozenset(
    {
        "INVALID_SIGNATURE",
        "SIGNER_MISMATCH",
        "INVALID_TRANSACTION",
        "TRANSACTION_TOO_LARGE",
        "TRANSACTION_EXPIRED",
    }
)


#: Refusals of a validator whose epoch is closing or over: submit again in the next.
EPOCH_REFUSALS = frozenset({"EPOCH_ENDING", "EPOCH_ENDED"})
#: How long a transaction every validator turned away for the epoch's end waits for
#: the next committee before it is submitted again to the same one (a driver that is
#: not told of epoch changes finds the validators in the next epoch then).
EPOCH_RETRY_S = 2.0


def _is_stateless(code: str) -> bool:
    return code in STATELESS_REFUSALS or code.startswith("BCS_")


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
        self.committees = CommitteeHistory(committee)
        self.clients: dict[AuthorityName, ValidatorClient] = {}
        self._submitters: dict[AuthorityName, SubmitBatcher] = {}
        self._watchers: dict[AuthorityName, EffectsWatcher] = {}
        self._add_clients(clients)
        self._rotation = itertools.count()
        self._live: set[_Execution] = set()
        #: Set (and replaced) whenever the driver learns a new committee.
        self._new_epoch = asyncio.Event()

    @property
    def committee(self) -> Committee:
        """The current committee: the one transactions are submitted to."""
        return self.committees.current

    @property
    def _names(self) -> list[AuthorityName]:
        return self.committee.names()

    def _add_clients(self, clients: Mapping[AuthorityName, ValidatorClient]) -> None:
        for name, client in clients.items():
            if name in self.clients:
                continue
            self.clients[name] = client
            self._submitters[name] = SubmitBatcher(client)
            self._watchers[name] = EffectsWatcher(client, self.committees, name)

    def reconfigure(
        self, committee: Committee, addresses: Mapping[AuthorityName, str] | None = None
    ) -> None:
        """The next epoch's committee (from certified data): submit to it from now on,
        and at once submit again what is in flight and not yet certified. Validators of
        earlier epochs stay known: late effects of those epochs still certify."""
        if not self.committees.add(committee):
            return
        where = dict(addresses or {})
        self._add_clients(
            {
                m.name: ValidatorClient.for_member(m, where.get(m.name))
                for m in committee.members
                if m.name not in self.clients
            }
        )
        event, self._new_epoch = self._new_epoch, asyncio.Event()
        event.set()
        for execution in list(self._live):
            execution.on_new_committee()

    @classmethod
    def for_committee(
        cls, committee: Committee, addresses: Mapping[AuthorityName, str] | None = None
    ) -> QuorumDriver:
        """Clients at the network addresses the committee lists, or at `addresses` for
        the validators it names (a local network whose ports moved)."""
        where = dict(addresses or {})
        return cls(
            committee,
            {m.name: ValidatorClient.for_member(m, where.get(m.name)) for m in committee.members},
        )

    async def close(self) -> None:
        """Stop: executions still in flight fail at once (QuorumUnreachableError)."""
        for execution in list(self._live):
            execution.abort(QuorumUnreachableError("the quorum driver was closed"))
        for batcher in [*self._submitters.values(), *self._watchers.values()]:
            await batcher.close()
        for client in self.clients.values():
            await client.close()

    async def execute(
        self, tx: SignedTransaction, timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> CertifiedTransactionEffects:
        start = next(self._rotation) % len(self._names)
        order = self._names[start:] + self._names[:start]
        execution = _Execution(self, tx)
        self._live.add(execution)
        try:
            return await execution.run(order, timeout_s)
        finally:
            self._live.discard(execution)


class _Execution:
    """One transaction on its way to a certificate."""

    def __init__(self, driver: QuorumDriver, tx: SignedTransaction) -> None:
        self.driver = driver
        self.committee = driver.committee
        self.tx = tx
        self.digest = tx.digest()
        #: One per epoch in which signed effects came (normally the one).
        self.certifiers: dict[int, BatchEffectsCertifier] = {}
        #: The submission task, restarted at an epoch change.
        self.submitting: asyncio.Task[None] | None = None
        #: Watches waiting for the driver to learn a validator's newer epoch.
        self.waiting_epoch: set[asyncio.Future[None]] = set()
        self.outcome: asyncio.Future[CertifiedTransactionEffects] = (
            asyncio.get_running_loop().create_future()
        )
        self.refusals: collections.Counter[str] = collections.Counter()
        self.messages: dict[str, str] = {}
        #: Validators whose effects cannot come (their stream broke or they answered
        #: with something that does not verify).
        self.lost: set[AuthorityName] = set()
        self.watches: list[asyncio.Future[StreamedEffects | None]] = []
        #: Set once `run` returns: nothing may start watching again after that.
        self.closed = False
        #: Validators whose stream broke once and were watched again.
        self.retried: set[AuthorityName] = set()

    async def run(
        self, order: list[AuthorityName], timeout_s: float
    ) -> CertifiedTransactionEffects:
        for name in self.driver._names:
            self._watch(name)
        self.submitting = asyncio.ensure_future(self._submit(order))
        try:
            async with asyncio.timeout(timeout_s):
                return await asyncio.shield(self.outcome)
        except TimeoutError:
            raise QuorumTimeoutError(
                f"no effects certificate for {self.digest} in {timeout_s} s"
            ) from None
        finally:
            self.closed = True  # late callbacks must not watch again
            for watch in self.watches:
                watch.cancel()
            for waiting in list(self.waiting_epoch):
                waiting.cancel()
            submitting = self.submitting
            submitting.cancel()
            await asyncio.wait([submitting])

    def on_new_committee(self) -> None:
        """The driver learnt the next committee: watch its new members, and submit
        again to it (what the old one did not order is lost at the boundary; what it
        did is found executed and answered at once)."""
        if self.closed or self.outcome.done():
            return
        watched = set(self.committee.names())
        self.committee = self.driver.committee
        for name in self.committee.names():
            if name not in watched:
                self._watch(name)
        self.lost.clear()
        self.retried.clear()
        self.refusals.clear()
        if self.submitting is not None:
            self.submitting.cancel()
        order = self.driver._names
        self.submitting = asyncio.ensure_future(self._submit(order))

    def abort(self, error: SomaError) -> None:
        self._finish(error)

    def _finish(self, error: SomaError) -> None:
        if not self.outcome.done():
            self.outcome.set_exception(error)

    # --- effects ---------------------------------------------------------------------

    def _watch(self, name: AuthorityName) -> None:
        watch = self.driver._watchers[name].watch(self.digest)
        watch.add_done_callback(functools.partial(self._on_effects, name))
        self.watches.append(watch)

    def _on_effects(
        self, name: AuthorityName, watch: asyncio.Future[StreamedEffects | None]
    ) -> None:
        if self.closed or self.outcome.done() or watch.cancelled():
            return
        error = watch.exception()
        if isinstance(error, UnknownEpochError):
            # The validator is in an epoch the driver has not learnt yet: watch it
            # again once the driver has (or after a pause).
            task = asyncio.ensure_future(self._rewatch_in_new_epoch(name))
            self.waiting_epoch.add(task)
            task.add_done_callback(self.waiting_epoch.discard)
            return
        if error is not None:
            # A broken stream (a validator restarting, a dropped connection): watch
            # again once after a pause before counting the validator out.
            if name in self.retried:
                self._lose(name)
            else:
                self.retried.add(name)
                asyncio.get_running_loop().call_later(WATCH_RETRY_S, self._rewatch, name)
            return
        item = watch.result()
        if item is None:  # the stream ended first: keep waiting
            self._watch(name)
            return
        epoch = item.signature.epoch
        certifier = self.certifiers.get(epoch)
        if certifier is None:
            committee = self.driver.committees.of(epoch)
            if committee is None:  # verified by the watcher: cannot happen
                self._lose(name)
                return
            certifier = self.certifiers[epoch] = BatchEffectsCertifier(committee, self.digest)
        try:
            certificate = certifier.add(item.effects, item.signature, item.proof)
        except SomaError:
            self._lose(name)
            return
        if certificate is not None:
            self.outcome.set_result(certificate)

    async def _rewatch_in_new_epoch(self, name: AuthorityName) -> None:
        new_epoch = self.driver._new_epoch
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(EPOCH_RETRY_S):
                await new_epoch.wait()
        self._rewatch(name)

    def _rewatch(self, name: AuthorityName) -> None:
        if not (self.closed or self.outcome.done()):
            self._watch(name)

    def _lose(self, name: AuthorityName) -> None:
        self.lost.add(name)
        committee = self.committee
        lost_stake = sum(committee.stake_of(n) for n in self.lost)
        if committee.total_stake - lost_stake < committee.quorum_threshold:
            self._finish(
                QuorumUnreachableError(
                    f"validators with {lost_stake} of {committee.total_stake} stake failed "
                    f"to return effects{self._refusal_detail()}"
                )
            )

    # --- submission ------------------------------------------------------------------

    async def _submit(self, order: list[AuthorityName]) -> None:
        while True:
            if not await self._submit_once(order):
                return
            # Every validator turned it away for the epoch's end: submit again to the
            # next committee once known (or to this one after a pause).
            new_epoch = self.driver._new_epoch
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(EPOCH_RETRY_S):
                    await new_epoch.wait()
            self.committee = self.driver.committee
            self.refusals.clear()
            order = self.driver._names

    async def _submit_once(self, order: list[AuthorityName]) -> bool:
        """Offer the transaction to `order`; True if nobody took it because their
        epoch is closing (then it is to be submitted again)."""
        committee = self.committee
        accepted = False
        ending = False
        for name in order:
            if self.outcome.done():
                return False
            try:
                outcome = await self.driver._submitters[name].submit(self.tx)
            except ValidatorCallError:
                continue
            if outcome.refusal is not None:
                code = outcome.refusal.code
                if code in EPOCH_REFUSALS:
                    ending = True
                    continue
                self.refusals[code] += committee.stake_of(name)
                self.messages[code] = outcome.refusal.message
                # Final only while nobody accepted it (once one validator has offered it
                # to consensus, it may execute whatever later ones say), unless the
                # reason is one every honest validator's handler drops it for too: then
                # an acceptance was a lie or a mistake, and waiting would only hang.
                if self.refusals[code] >= committee.validity_threshold and (
                    not accepted or _is_stateless(code)
                ):
                    self._finish(RemoteError(code, self.messages[code]))
                    return False
                continue
            accepted = True
            # Ordered through this validator unless it withholds the transaction or
            # stops: after a while, offer it through the next one as well.
            await asyncio.wait([self.outcome], timeout=RESUBMIT_AFTER_S)
        if not accepted:
            if ending:
                return True
            self._finish(
                QuorumUnreachableError(
                    f"no validator accepted {self.digest}{self._refusal_detail()}"
                )
            )
            return False
        # Every validator was asked. If f+1 stake refused for one reason, give what was
        # accepted one more interval to execute, then report the refusal rather than
        # wait out the whole timeout for a transaction a quorum turned away.
        code, refused = max(self.refusals.items(), key=lambda i: i[1], default=("", 0))
        if refused >= committee.validity_threshold:
            await asyncio.wait([self.outcome], timeout=REFUSAL_GRACE_S)
            note = " (a validator accepted it, so it may still execute)"
            self._finish(RemoteError(code, self.messages[code] + note))
        return False

    def _refusal_detail(self) -> str:
        detail = ", ".join(f"{c}: {self.messages[c]}" for c in sorted(self.refusals))
        return f" ({detail})" if detail else ""

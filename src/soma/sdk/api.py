"""Every SDK call as a flow (see `soma.sdk.core`): what it asks the API, in which order,
and what it makes of the answers. Both clients run these same flows.

The contract (the server codes against the same): `GET /status`, `/health`,
`/committee`, `/supply`, `/addresses/{a}/balance`, `/addresses/{a}/objects` and
`/coins` (pages: `limit` 1..1000, an opaque `cursor`, coins largest first),
`/objects/{id}`, `/transactions/{digest}`; `POST /transactions {"tx_bytes"}` and `POST
/faucet {"address"}` answer `{"digest", "status", "fee", "effects", "certificate"}`;
errors are `{"code", "message"}` with a 4xx/5xx status (`EPOCH_ENDING` and
`EPOCH_ENDED` while the validators change epochs: the transaction is sent again).
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias, TypeVar

from soma.sdk import wire
from soma.sdk.coins import (
    Coin,
    CoinPicker,
    largest_first,
    merge_round,
    select_coins,
)
from soma.sdk.coins import gas_budget as budget_for
from soma.sdk.core import DEFAULT_MAX_RETRIES, Flow, Parallel, Request, Sleep, call, path
from soma.sdk.errors import ApiError
from soma.sdk.transactions import check_amounts, payment_kind, sign
from soma.sdk.validator import Registration
from soma.sdk.wire import Address, Page, address, as_dict, int_field, object_id
from soma.types.base import ObjectID, SomaAddress
from soma.types.crypto import AccountKeyPair
from soma.types.object import ObjectRef
from soma.types.transaction import (
    MAX_INPUT_OBJECTS,
    AddStake,
    AddValidator,
    MergeCoins,
    RemoveValidator,
    SignedTransaction,
    SplitCoin,
    TransactionKind,
    WithdrawStake,
)

T = TypeVar("T")
#: A gas payment: a coin with its balance, or a bare reference (its balance is read).
Gas: TypeAlias = ObjectRef | Coin
#: Coins a payment lists per page: most payments are covered by the first page.
PAYMENT_PAGE = 100
#: Refusals of inputs read a moment too early: the node that answered the reads was
#: behind the network, or another client of the same account spent the coins first.
#: The flows that choose their own coins read them again and retry.
STALE_INPUT_CODES = frozenset({"OBJECT_VERSION_UNAVAILABLE", "OBJECT_NOT_FOUND"})
STALE_INPUT_RETRIES = 3
#: The wait before the first retry; the n-th waits n times as long.
STALE_INPUT_BACKOFF_S = 0.2
#: Refusals by validators closing an epoch (`EPOCH_ENDING`: they take no new
#: transactions until the change; `EPOCH_ENDED`: this one is over). The transaction is
#: still valid in the next epoch: `execute` sends it again.
EPOCH_CHANGE_CODES = frozenset({"EPOCH_ENDING", "EPOCH_ENDED"})
#: How long `execute` keeps sending a transaction refused for an epoch change (an epoch
#: change takes seconds; this is a bound for a network that never completes it).
EPOCH_CHANGE_WAIT_S = 120.0
#: The first wait before sending it again; each wait doubles, up to the maximum.
EPOCH_BACKOFF_S = 0.5
EPOCH_BACKOFF_MAX_S = 5.0


@dataclass
class MergeRound:
    """What one round of concurrent merges left: their results, the coins now (merge
    targets at their new version), and the first failed result, if any."""

    results: list[dict[str, Any]] = field(default_factory=list)
    coins: list[Coin] = field(default_factory=list)
    failure: dict[str, Any] | None = None


class Api:
    """The flows, with what the two clients share: the retry policies, the input limit
    and the network's fee (read once per client: it changes only at an epoch change,
    and a budget of up to ten fees leaves room for a rise). `clock` (seconds, monotonic)
    bounds the retries through an epoch change; tests replace it."""

    def __init__(
        self,
        max_retries: int = DEFAULT_MAX_RETRIES,
        max_inputs: int = MAX_INPUT_OBJECTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_retries = max_retries
        self.max_inputs = max_inputs
        self.clock = clock
        #: How long a transaction refused for an epoch change is sent again, and the
        #: first wait between sends (doubling up to `EPOCH_BACKOFF_MAX_S`).
        self.epoch_wait_s = EPOCH_CHANGE_WAIT_S
        self.epoch_backoff_s = EPOCH_BACKOFF_S
        self._fee: int | None = None

    def _get(self, *segments: object, params: dict[str, str | int] | None = None) -> Flow[Any]:
        return call(Request("GET", path(*segments), params or None), self.max_retries)

    def _post(self, segment: str, body: dict[str, Any]) -> Flow[dict[str, Any]]:
        answer = yield from call(Request("POST", path(segment), None, body), self.max_retries)
        return as_dict(answer, f"POST /{segment}")

    def _get_dict(self, *segments: object) -> Flow[dict[str, Any]]:
        return as_dict((yield from self._get(*segments)), path(*segments))

    # --- reads ---------------------------------------------------------------------------

    def health(self) -> Flow[dict[str, Any]]:
        return (yield from self._get_dict("health"))

    def status(self) -> Flow[dict[str, Any]]:
        return (yield from self._get_dict("status"))

    def committee(self) -> Flow[dict[str, Any]]:
        return (yield from self._get_dict("committee"))

    def supply(self) -> Flow[dict[str, Any]]:
        return (yield from self._get_dict("supply"))

    def fee(self) -> Flow[int]:
        if self._fee is None:
            self._fee = int_field((yield from self.status()), "transaction_fee", "/status")
        return self._fee

    def balance_info(self, owner: Address) -> Flow[dict[str, Any]]:
        return (yield from self._get_dict("addresses", address(owner), "balance"))

    def balance(self, owner: Address) -> Flow[int]:
        info = yield from self.balance_info(owner)
        return int_field(info, "balance", "a balance")

    def objects(
        self, owner: Address, cursor: str | None = None, limit: int | None = None
    ) -> Flow[Page[ObjectRef]]:
        return (yield from self._page(owner, "objects", wire.ref_from_json, cursor, limit))

    def coins(
        self, owner: Address, cursor: str | None = None, limit: int | None = None
    ) -> Flow[Page[Coin]]:
        """Largest first."""
        return (yield from self._page(owner, "coins", wire.coin_from_json, cursor, limit))

    def _page(
        self,
        owner: Address,
        listing: str,
        item: Callable[[Mapping[str, Any]], T],
        cursor: str | None,
        limit: int | None,
    ) -> Flow[Page[T]]:
        params = wire.page_params(cursor, limit)
        data = yield from self._get("addresses", address(owner), listing, params=params)
        return wire.page_from_json(data, listing, item, cursor)

    def get_object(self, oid: ObjectID | str) -> Flow[dict[str, Any]]:
        return (yield from self._get_dict("objects", object_id(oid)))

    def transaction(self, digest: str) -> Flow[dict[str, Any]]:
        return (yield from self._get_dict("transactions", digest))

    def _list_coins(
        self,
        owner: SomaAddress,
        limit: int,
        enough: Callable[[tuple[Coin, ...]], bool] = lambda _: False,
    ) -> Flow[list[Coin]]:
        """The owner's coins, largest first, page after page until `enough` of a page
        says to stop (or the last page)."""
        listed: list[Coin] = []
        cursor: str | None = None
        while True:
            page = yield from self.coins(owner, cursor, limit)
            listed.extend(page.items)
            if enough(page.items) or page.next_cursor is None:
                return listed
            cursor = page.next_cursor

    def _gas_coin(self, ref: ObjectRef) -> Flow[Coin]:
        """The gas coin's balance (the budget depends on it), read from the API."""
        obj = yield from self.get_object(ref.object_id)
        if "balance" not in obj:
            raise ApiError("INVALID_GAS", f"object {ref.object_id} is not a coin: it cannot pay")
        return Coin(ref, int_field(obj, "balance", "a coin"))

    # --- writes --------------------------------------------------------------------------

    def execute(self, tx: SignedTransaction) -> Flow[dict[str, Any]]:
        """Execute a signed transaction; its result once certified. Refused because the
        validators are changing epochs, the same signed bytes are sent again (see
        `_through_epoch_change`): the transaction stays valid across the change, so a
        user sees a slower transaction, not a failed one."""
        body = {"tx_bytes": base64.b64encode(tx.to_bytes()).decode("ascii")}
        return (yield from self._through_epoch_change("transactions", body))

    def faucet(self, recipient: Address) -> Flow[dict[str, Any]]:
        """A grant of the faucet; asked again through an epoch change, as `execute`."""
        body = {"address": str(address(recipient))}
        return (yield from self._through_epoch_change("faucet", body))

    def _through_epoch_change(self, segment: str, body: dict[str, Any]) -> Flow[dict[str, Any]]:
        """POST `body`; when it is refused because the validators are changing epochs
        (`EPOCH_CHANGE_CODES`: nothing executed), POST it again after a backoff, until
        it is answered otherwise or `epoch_wait_s` has passed since the first refusal."""
        deadline: float | None = None
        delay = self.epoch_backoff_s
        while True:
            try:
                return (yield from self._post(segment, body))
            except ApiError as e:
                if e.api_code not in EPOCH_CHANGE_CODES:
                    raise
                now = self.clock()
                deadline = now + self.epoch_wait_s if deadline is None else deadline
                if now >= deadline:
                    raise ApiError(
                        e.api_code,
                        f"{e.message} (still refused {self.epoch_wait_s:g} s after the "
                        "epoch change began)",
                        e.status,
                    ) from None
            yield Sleep(min(delay, deadline - now))
            delay = min(2 * delay, EPOCH_BACKOFF_MAX_S)

    def sign_and_execute(
        self, key: AccountKeyPair, kind: TransactionKind, gas: Gas, gas_budget: int | None = None
    ) -> Flow[dict[str, Any]]:
        """Sign `kind` with `gas` paying and execute it. Without a budget, the SDK's
        (ten fees, at most what the gas coin holds), which needs the coin's balance:
        given with a `Coin`, else read from the API."""
        budget = gas_budget
        ref = gas.ref if isinstance(gas, Coin) else gas
        if budget is None:
            fee = yield from self.fee()
            coin = gas if isinstance(gas, Coin) else (yield from self._gas_coin(gas))
            budget = budget_for(fee, coin)
        return (yield from self.execute(sign(key, kind, ref, budget)))

    def _with_fresh_inputs(self, flow: Callable[[], Flow[T]]) -> Flow[T]:
        """Run `flow` (one that reads the coins it spends); when its transaction is
        refused for stale inputs before anything executed, read them again and retry
        (`STALE_INPUT_RETRIES` times, backing off)."""
        attempt = 0
        while True:
            try:
                return (yield from flow())
            except ApiError as e:
                if (
                    e.api_code not in STALE_INPUT_CODES
                    or e.completed
                    or attempt >= STALE_INPUT_RETRIES
                ):
                    raise
            attempt += 1
            yield Sleep(STALE_INPUT_BACKOFF_S * attempt)

    def transfer(self, key: AccountKeyPair, to: Address, amount: int) -> Flow[dict[str, Any]]:
        """Send `amount` to `to` from as few of the sender's coins as cover it and the
        fee (see `_pay`)."""
        amounts = check_amounts([amount])
        return (
            yield from self._with_fresh_inputs(
                lambda: self._pay(key, (address(to),), amounts, True)
            )
        )

    def pay(
        self,
        key: AccountKeyPair,
        recipients: Sequence[Address],
        amounts: Sequence[int],
    ) -> Flow[dict[str, Any]]:
        """Pay `amounts[i]` to `recipients[i]` in one transaction (see `_pay`)."""
        parsed = tuple(address(r) for r in recipients)
        values = check_amounts(amounts, len(parsed))
        return (yield from self._with_fresh_inputs(lambda: self._pay(key, parsed, values, False)))

    def _pay(
        self,
        key: AccountKeyPair,
        recipients: tuple[SomaAddress, ...],
        amounts: tuple[int, ...],
        transfer: bool,
    ) -> Flow[dict[str, Any]]:
        """Take coins largest first (paging no further than needed) until they cover the
        amounts and the fees; pay from the largest alone if it covers, else from all the
        chosen ones merged in the payment. When that takes more coins than a transaction
        may name, they are merged first (each merge costs a fee, counted in); if a merge
        fails, its result is returned and nothing is paid. A result after merges lists
        them under "merges"."""
        sender = key.public_key.to_address()
        fee = yield from self.fee()
        total = sum(amounts)
        picker = CoinPicker(total, fee, self.max_inputs)
        yield from self._list_coins(sender, PAYMENT_PAGE, picker.offer)
        if not picker.covered:
            raise picker.shortfall(sender)
        chosen = picker.chosen
        merges: list[dict[str, Any]] = []
        while len(chosen) > self.max_inputs:
            done = yield from self._merge(
                key, merge_round(chosen, self.max_inputs, fee), chosen, fee
            )
            merges.extend(done.results)
            if done.failure is not None:
                return {**done.failure, "merges": merges}
            chosen = select_coins(done.coins, total, fee, sender, self.max_inputs)
        kind = payment_kind(chosen, amounts, recipients, transfer)
        try:
            result = yield from self.sign_and_execute(key, kind, chosen[0])
        except ApiError as e:
            raise e.after(merges) from None
        return {**result, "merges": merges} if merges else result

    def merge_coins(
        self, key: AccountKeyPair, coins: Sequence[ObjectID | str] | None = None
    ) -> Flow[list[dict[str, Any]]]:
        """Merge all the owner's coins (or the given ones) into one: one MergeCoins when
        they fit in a transaction, else rounds of concurrent merges of up to
        `max_inputs` coins each, then a merge of what they left. Returns every result;
        stops after a round in which a merge failed."""
        wanted = None if coins is None else list(dict.fromkeys(object_id(c) for c in coins))
        return (yield from self._with_fresh_inputs(lambda: self._merge_coins(key, wanted)))

    def _merge_coins(
        self, key: AccountKeyPair, wanted: list[ObjectID] | None
    ) -> Flow[list[dict[str, Any]]]:
        owner = key.public_key.to_address()
        fee = yield from self.fee()
        current = yield from self._list_coins(owner, wire.MAX_PAGE_LIMIT)
        if wanted is not None:
            current = _owned_subset(current, wanted, owner)
        current = largest_first(current)
        if len(current) < 2:
            raise ApiError(
                "NOTHING_TO_MERGE", f"{len(current)} coin(s) of {owner} to merge: at least 2 needed"
            )
        return (yield from self._merge_down(key, current, fee)).results

    def _merge_down(self, key: AccountKeyPair, coins: list[Coin], fee: int) -> Flow[MergeRound]:
        """Merge `coins` (largest first) into one, in as many rounds as the input limit
        takes; stops after a round in which a merge failed (`failure` set). An error
        notes the merges that had executed before it."""
        merged = MergeRound(coins=list(coins))
        while len(merged.coins) > 1:
            groups = merge_round(merged.coins, self.max_inputs, fee) or [merged.coins]
            try:
                done = yield from self._merge(key, groups, merged.coins, fee)
            except ApiError as e:
                raise e.after(merged.results + e.completed) from None
            merged.results.extend(done.results)
            if done.failure is not None:
                merged.failure = done.failure
                break
            merged.coins = done.coins
        return merged

    def _merge(
        self, key: AccountKeyPair, groups: list[list[Coin]], coins: list[Coin], fee: int
    ) -> Flow[MergeRound]:
        """Run the merges of `groups` (disjoint, so concurrently) and work out the coins
        they leave: each group's target at its new version, holding the group's total
        less the fee, and the coins of no group as they were. Every transaction is
        signed, and every gas coin checked, before the first is sent."""
        txs = [
            sign(key, MergeCoins(tuple(c.ref for c in g)), g[0].ref, budget_for(fee, g[0]))
            for g in groups
        ]
        outcomes = yield Parallel(tuple(self.execute(tx) for tx in txs))
        failed = [o for o in outcomes if isinstance(o, ApiError)]
        if failed:
            # The round's other merges may have executed: the error says so.
            raise failed[0].after([o for o in outcomes if not isinstance(o, ApiError)])
        merged = {c.object_id for g in groups for c in g}
        done = MergeRound(coins=[c for c in coins if c.object_id not in merged])
        for group, result in zip(groups, outcomes, strict=True):
            done.results.append(result)
            if not wire.succeeded(result):
                done.failure = done.failure or result
                continue
            charged = int_field(result, "fee", "an execution result")
            target = wire.written_ref(result, group[0].object_id)
            done.coins.append(Coin(target, sum(c.balance for c in group) - charged))
        done.coins = largest_first(done.coins)
        return done

    def split_coin(self, key: AccountKeyPair, amounts: Sequence[int]) -> Flow[dict[str, Any]]:
        """Split new coins of `amounts` off the largest coin, which pays the fee."""
        values = check_amounts(amounts)
        return (yield from self._with_fresh_inputs(lambda: self._split_coin(key, values)))

    def _split_coin(self, key: AccountKeyPair, values: tuple[int, ...]) -> Flow[dict[str, Any]]:
        owner = key.public_key.to_address()
        fee = yield from self.fee()
        page = yield from self.coins(owner, None, 1)
        if not page.items:
            raise ApiError("NO_COINS", f"{owner} owns no coins")
        coin = page.items[0]
        if coin.balance < sum(values) + fee:
            raise ApiError(
                "INSUFFICIENT_BALANCE",
                f"the largest coin of {owner}, {coin.object_id}, holds {coin.balance}; "
                f"{sum(values)} + fee {fee} needed (merge coins first)",
            )
        return (yield from self.sign_and_execute(key, SplitCoin(coin.ref, values), coin))

    # --- validators ----------------------------------------------------------------------

    def join_validator(
        self, key: AccountKeyPair, registration: Registration, stake: int
    ) -> Flow[dict[str, Any]]:
        """Ask to join the committee from the next epoch, staking `stake` from the
        sender's coins (see `_stake_from_coins`). `key` is the validator's account: the
        registration's `soma_address`, which owns the stake."""
        (amount,) = check_amounts([stake])
        sender = key.public_key.to_address()
        metadata = registration.metadata
        if metadata.soma_address != sender:
            raise ApiError(
                "INVALID_ARGUMENT",
                f"the registration is for account {metadata.soma_address}, not the "
                f"signer {sender}: a validator joins from its own account",
            )

        def kind(coin: ObjectRef) -> TransactionKind:
            return AddValidator(metadata, registration.proof_of_possession, coin, amount)

        return (
            yield from self._with_fresh_inputs(lambda: self._stake_from_coins(key, amount, kind))
        )

    def add_stake(self, key: AccountKeyPair, amount: int) -> Flow[dict[str, Any]]:
        """Add `amount` to the stake of the validator whose account `key` is, from the
        next epoch, taken from its coins (see `_stake_from_coins`)."""
        (value,) = check_amounts([amount])
        return (
            yield from self._with_fresh_inputs(
                lambda: self._stake_from_coins(key, value, lambda coin: AddStake(coin, value))
            )
        )

    def withdraw_stake(self, key: AccountKeyPair, amount: int) -> Flow[dict[str, Any]]:
        """Take `amount` out of the stake of the validator whose account `key` is: paid
        at once as a new coin, the largest coin paying the fee."""
        (value,) = check_amounts([amount])
        return (
            yield from self._with_fresh_inputs(lambda: self._gas_only(key, WithdrawStake(value)))
        )

    def leave_validator(self, key: AccountKeyPair) -> Flow[dict[str, Any]]:
        """Leave the committee at the next epoch change (`key`: the validator's
        account); the largest coin pays the fee."""
        return (yield from self._with_fresh_inputs(lambda: self._gas_only(key, RemoveValidator())))

    def _gas_only(self, key: AccountKeyPair, kind: TransactionKind) -> Flow[dict[str, Any]]:
        """Execute `kind`, which spends no coin of its own, paid by the largest coin."""
        owner = key.public_key.to_address()
        page = yield from self.coins(owner, None, 1)
        if not page.items:
            fee = yield from self.fee()
            raise ApiError("NO_COINS", f"{owner} owns no coins to pay the fee {fee}")
        return (yield from self.sign_and_execute(key, kind, page.items[0]))

    def _stake_from_coins(
        self, key: AccountKeyPair, amount: int, kind: Callable[[ObjectRef], TransactionKind]
    ) -> Flow[dict[str, Any]]:
        """Execute `kind(coin)`, which stakes `amount` from `coin`, with `coin` paying
        the fee too: the largest coin if it holds the amount and the fee, else the
        fewest coins (largest first) that hold them and the fees of merging them into
        one first. A result after merges lists them under "merges"; if a merge fails,
        its result is returned and nothing is staked."""
        owner = key.public_key.to_address()
        fee = yield from self.fee()
        largest = (yield from self.coins(owner, None, 1)).items
        if largest and largest[0].balance >= amount + fee:
            return (yield from self.sign_and_execute(key, kind(largest[0].ref), largest[0]))
        # Several coins: the picker's own fee pays the last merge into one coin.
        picker = CoinPicker(amount + fee, fee, self.max_inputs)
        yield from self._list_coins(owner, PAYMENT_PAGE, picker.offer)
        if not picker.covered:
            count = len(picker.chosen)
            raise ApiError(
                "INSUFFICIENT_BALANCE",
                f"{owner} holds {picker.total} in {count} coin{'' if count == 1 else 's'}; "
                f"{amount} to stake + fees {picker.needed() - amount} needed",
            )
        merged = yield from self._merge_down(key, largest_first(picker.chosen), fee)
        if merged.failure is not None:
            return {**merged.failure, "merges": merged.results}
        coin = merged.coins[0]
        try:
            result = yield from self.sign_and_execute(key, kind(coin.ref), coin)
        except ApiError as e:
            raise e.after(merged.results) from None
        return {**result, "merges": merged.results}


def _owned_subset(owned: list[Coin], wanted: list[ObjectID], owner: SomaAddress) -> list[Coin]:
    """The owned coins among `wanted`; any other ID is an error, before anything is
    sent (merging a coin of someone else, or an object that is no coin, cannot work)."""
    by_id = {c.object_id: c for c in owned}
    unknown = [str(i) for i in wanted if i not in by_id]
    if unknown:
        raise ApiError("UNKNOWN_COIN", f"not a coin owned by {owner}: {', '.join(unknown)}")
    return [by_id[i] for i in wanted]

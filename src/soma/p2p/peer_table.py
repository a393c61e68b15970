"""Discovery's state, sans IO: who we know, what we believe about them, whom to ask next.

Everything that happens comes in as a call with the time (`now_ms`) and the messages;
nothing here sleeps, dials or reads a clock, so every rule is tested by feeding it
inputs (`tests/p2p/test_peer_table.py`) and the asyncio driver (`discovery`) only moves
bytes.

Three sources of peers:

- the committee: each validator's network key (its peer id) and P2P address. Every
  node knows them without asking, and they never expire or fall to the cap;
- seed peers from the config: an address, optionally with the peer id expected there;
- signed node infos (`node_info`), learned from ExchangePeers replies and requests.

An info is taken only if it is not ours, not from a dropped peer, stamped at most
`max_future_ms` ahead of our clock, not expired, strictly newer than the one we hold,
and valid (well formed addresses, signature by the peer id); the checks run cheapest
first, so a stale or repeated entry costs no signature check. Beyond `max_known_peers`
the oldest infos of nodes outside the committee are forgotten.

A peer whose calls fail `max_failures` times in a row is dropped for `failure_ban_ms`;
one that answers invalid data (a reply with a bad entry or too many, another peer id
than expected, an undecodable answer) is dropped at once for `invalid_ban_ms`. A
dropped peer is not dialled, not relayed, and its infos are refused, whoever relays
them; a committee member or a seed comes back when its time is up.
"""

from __future__ import annotations

import dataclasses
import enum
import random
from collections.abc import Iterable, Mapping, Sequence

from soma.p2p.errors import P2pRefusedError
from soma.p2p.node_info import InvalidNodeInfoError, SignedNodeInfo
from soma.p2p.parameters import DiscoveryParameters
from soma.types.crypto import Ed25519PublicKey, NetworkKeyPair

#: Failures and drops are counted per peer id, or per address while the id is unknown.
PeerKey = Ed25519PublicKey | str


class Offer(enum.Enum):
    """What became of one offered info."""

    ACCEPTED = "accepted"
    OWN = "our own"
    DROPPED = "from a dropped peer"
    FROM_FUTURE = "stamped in the future"
    EXPIRED = "expired"
    NOT_NEWER = "not newer than the one held"
    INVALID = "invalid"


@dataclasses.dataclass(frozen=True)
class DialTarget:
    """Where to call, and the peer id expected there (None: a seed not heard from)."""

    address: str
    peer_id: Ed25519PublicKey | None = None


@dataclasses.dataclass(frozen=True)
class KnownPeer:
    """One peer as the node reports it."""

    peer_id: Ed25519PublicKey
    addresses: tuple[str, ...]
    #: The timestamp of its signed info; None for a committee member not heard from.
    timestamp_ms: int | None
    committee: bool


@dataclasses.dataclass(frozen=True)
class ReplyOutcome:
    #: Infos of the reply that were new to us.
    accepted: int
    #: Why the reply was refused whole (and its sender dropped); None when it was fine.
    invalid: str | None = None


class PeerTable:
    def __init__(
        self,
        key: NetworkKeyPair,
        addresses: Sequence[str],
        parameters: DiscoveryParameters,
        rng: random.Random,
        committee: Mapping[Ed25519PublicKey, str] | None = None,
        seeds: Iterable[DialTarget] = (),
    ) -> None:
        """`addresses` are ours (where our P2P server is reached); `committee` maps each
        validator's network key to its P2P address."""
        self.parameters = parameters
        self._key = key
        self._addresses = tuple(addresses)
        self._rng = rng
        self._own: SignedNodeInfo | None = None
        self._committee: dict[Ed25519PublicKey, str] = {}
        self._seeds = list(seeds)
        #: Seed address -> the peer id expected or found there.
        self._seed_ids = {s.address: s.peer_id for s in self._seeds if s.peer_id is not None}
        self._infos: dict[Ed25519PublicKey, SignedNodeInfo] = {}
        self._failures: dict[PeerKey, int] = {}
        #: Dropped peers (by id, or by address) -> until when.
        self._dropped: dict[PeerKey, int] = {}
        self.set_committee(committee or {})

    @property
    def own_id(self) -> Ed25519PublicKey:
        return self._key.public_key

    def set_committee(self, committee: Mapping[Ed25519PublicKey, str]) -> None:
        """The validators of the current epoch (replaced whole at an epoch change)."""
        self._committee = {k: a for k, a in sorted(committee.items()) if k != self.own_id}

    # --- our own info ----------------------------------------------------------------

    def own_info(self, now_ms: int) -> SignedNodeInfo:
        """Our signed info, signed again once `resign_interval_ms` old; its timestamp
        always grows, even if our clock steps back, so peers take each new one."""
        own = self._own
        if own is None or now_ms - own.timestamp_ms >= self.parameters.resign_interval_ms:
            stamp = now_ms if own is None else max(now_ms, own.timestamp_ms + 1)
            self._own = own = SignedNodeInfo.sign(self._key, self._addresses, stamp)
        return own

    # --- taking infos ----------------------------------------------------------------

    def offer(self, info: SignedNodeInfo, now_ms: int) -> Offer:
        """Take one info if it passes every check; says what became of it."""
        verdict = self._screen(info, now_ms)
        if verdict is not None:
            return verdict
        try:
            info.verify()
        except InvalidNodeInfoError:
            return Offer.INVALID
        self._store(info)
        self._enforce_cap()
        return Offer.ACCEPTED

    def handle_request(self, info: SignedNodeInfo, now_ms: int) -> list[SignedNodeInfo]:
        """A peer called us with its info: take it, and return the infos to answer
        with (up to `max_peers_per_reply`, at random, not the caller's own). Raises
        `InvalidNodeInfoError` for an invalid info (the request is refused) and
        `P2pRefusedError` for a dropped caller."""
        peer = info.peer_id
        if peer == self.own_id:
            raise InvalidNodeInfoError("the caller's info carries our own peer id")
        if self.is_dropped(peer, now_ms):
            raise P2pRefusedError(f"peer {peer.hex()[:16]} is dropped")
        info.verify()
        if self._screen(info, now_ms) is None:
            self._store(info)
            self._enforce_cap()
        return self.sample(now_ms, exclude=peer)

    def handle_reply(
        self,
        target: DialTarget,
        info: SignedNodeInfo,
        peers: Sequence[SignedNodeInfo],
        now_ms: int,
    ) -> ReplyOutcome:
        """The answer of `target` to our ExchangePeers: its own info and those it
        relays. Taken whole or not at all: one invalid entry means the peer relays
        what it did not check, and it is dropped."""
        refusal = self._reply_problem(target, info, peers)
        candidates = []
        if refusal is None:
            candidates = [i for i in (info, *peers) if self._screen(i, now_ms) is None]
            try:
                for candidate in candidates:
                    if candidate is not info:
                        candidate.verify()
            except InvalidNodeInfoError as e:
                refusal = f"relayed an invalid info: {e.message}", self._key_of(target)
        if refusal is not None:
            problem, key = refusal
            self._drop(key, now_ms + self.parameters.invalid_ban_ms)
            return ReplyOutcome(0, problem)
        accepted = sum(self._store(c) for c in candidates)
        self._enforce_cap()
        self._failures.pop(self._key_of(target), None)
        if target.peer_id is None:
            self._seed_ids.setdefault(target.address, info.peer_id)
        return ReplyOutcome(accepted)

    def _reply_problem(
        self, target: DialTarget, info: SignedNodeInfo, peers: Sequence[SignedNodeInfo]
    ) -> tuple[str, PeerKey] | None:
        """Why a reply is refused whole, and whom that drops: the peer, or the address
        when someone else than the peer expected there answered."""
        limit = self.parameters.max_peers_per_reply
        if len(peers) > limit:
            return f"relayed {len(peers)} infos; at most {limit} are taken", self._key_of(target)
        expected = target.peer_id
        if expected is not None and info.peer_id != expected:
            return (
                f"answered as {info.peer_id.hex()[:16]}, not {expected.hex()[:16]}",
                target.address,
            )
        if info.peer_id == self.own_id:
            return "answered with our own peer id", target.address
        try:
            info.verify()  # always: it is what says who answered
        except InvalidNodeInfoError as e:
            return f"its own info is invalid: {e.message}", self._key_of(target)
        return None

    def _screen(self, info: SignedNodeInfo, now_ms: int) -> Offer | None:
        """The cheap checks, in order; None when only the signature is left to check."""
        peer = info.peer_id
        if peer == self.own_id:
            return Offer.OWN
        if self.is_dropped(peer, now_ms):
            return Offer.DROPPED
        if info.timestamp_ms > now_ms + self.parameters.max_future_ms:
            return Offer.FROM_FUTURE
        if peer not in self._committee and self._expired(info, now_ms):
            return Offer.EXPIRED
        held = self._infos.get(peer)
        if held is not None and info.timestamp_ms <= held.timestamp_ms:
            return Offer.NOT_NEWER
        return None

    def _store(self, info: SignedNodeInfo) -> bool:
        held = self._infos.get(info.peer_id)
        if held is not None and info.timestamp_ms <= held.timestamp_ms:
            return False  # a reply may carry one peer twice
        self._infos[info.peer_id] = info
        return True

    def _expired(self, info: SignedNodeInfo, now_ms: int) -> bool:
        return info.timestamp_ms + self.parameters.expiry_ms <= now_ms

    def _enforce_cap(self) -> None:
        excess = len(self._infos) - self.parameters.max_known_peers
        if excess <= 0:
            return
        oldest = sorted(
            (info.timestamp_ms, peer)
            for peer, info in self._infos.items()
            if peer not in self._committee
        )
        for _, peer in oldest[:excess]:
            del self._infos[peer]

    # --- failures and drops ----------------------------------------------------------

    def record_failure(self, target: DialTarget, now_ms: int) -> bool:
        """A call to `target` failed (unreachable, timed out, refused); whether that
        dropped it."""
        key = self._key_of(target)
        failures = self._failures.get(key, 0) + 1
        if failures >= self.parameters.max_failures:
            self._drop(key, now_ms + self.parameters.failure_ban_ms)
            return True
        self._failures[key] = failures
        return False

    def record_invalid(self, target: DialTarget, now_ms: int) -> None:
        """`target` answered something that is not a reply (undecodable, too large):
        dropped at once."""
        self._drop(self._key_of(target), now_ms + self.parameters.invalid_ban_ms)

    def _key_of(self, target: DialTarget) -> PeerKey:
        return target.peer_id or self._seed_ids.get(target.address) or target.address

    def _drop(self, key: PeerKey, until_ms: int) -> None:
        self._dropped[key] = until_ms
        self._failures.pop(key, None)
        if isinstance(key, Ed25519PublicKey):
            self._infos.pop(key, None)

    def is_dropped(self, key: PeerKey, now_ms: int) -> bool:
        """Whether a peer id, or an address, is dropped at `now_ms`."""
        until = self._dropped.get(key)
        return until is not None and now_ms < until

    def expire(self, now_ms: int) -> None:
        """Forget infos nobody refreshed (not the committee's), drops whose time is up,
        and failure counts of peers no longer known."""
        for peer, info in list(self._infos.items()):
            if peer not in self._committee and self._expired(info, now_ms):
                del self._infos[peer]
        self._dropped = {k: t for k, t in self._dropped.items() if now_ms < t}
        known: set[PeerKey] = {*self._infos, *self._committee, *self._seed_ids.values()}
        known.update(s.address for s in self._seeds)
        self._failures = {k: n for k, n in self._failures.items() if k in known}

    # --- whom to ask, what to tell -----------------------------------------------------

    def targets(self, now_ms: int) -> list[DialTarget]:
        """Up to `peers_per_round` peers to ask this round, at random among those known
        and not dropped; a seed not heard from counts as one."""
        ids = sorted({*self._infos, *self._committee, *self._seed_ids.values()})
        candidates = []
        for peer in ids:
            if peer == self.own_id or self.is_dropped(peer, now_ms):
                continue
            addresses = [a for a in self._addresses_of(peer) if not self.is_dropped(a, now_ms)]
            if addresses:
                # A peer that failed is tried at its next address.
                turn = self._failures.get(peer, 0) % len(addresses)
                candidates.append(DialTarget(addresses[turn], peer))
        for seed in self._seeds:
            if seed.address not in self._seed_ids and not self.is_dropped(seed.address, now_ms):
                candidates.append(seed)
        count = min(self.parameters.peers_per_round, len(candidates))
        return self._rng.sample(candidates, count)

    def _addresses_of(self, peer: Ed25519PublicKey) -> list[str]:
        """Where a peer is reached: what it signed first, then the committee's address
        and seed addresses where it answered."""
        info = self._infos.get(peer)
        found = list(info.addresses) if info is not None else []
        if peer in self._committee:
            found.append(self._committee[peer])
        found.extend(a for a, p in self._seed_ids.items() if p == peer)
        return list(dict.fromkeys(found))

    def sample(self, now_ms: int, exclude: Ed25519PublicKey | None = None) -> list[SignedNodeInfo]:
        """Up to `max_peers_per_reply` infos we hold, at random (not expired, not of
        dropped peers, not `exclude`'s)."""
        pool = [
            info
            for peer, info in self._infos.items()
            if peer != exclude
            and not self.is_dropped(peer, now_ms)
            and (peer in self._committee or not self._expired(info, now_ms))
        ]
        return self._rng.sample(pool, min(self.parameters.max_peers_per_reply, len(pool)))

    def info_of(self, peer: Ed25519PublicKey) -> SignedNodeInfo | None:
        return self._infos.get(peer)

    def peers(self, now_ms: int) -> list[KnownPeer]:
        """Every peer known and not dropped, by peer id."""
        out = []
        for peer in sorted({*self._infos, *self._committee}):
            if self.is_dropped(peer, now_ms):
                continue
            info = self._infos.get(peer)
            out.append(
                KnownPeer(
                    peer,
                    tuple(self._addresses_of(peer)),
                    None if info is None else info.timestamp_ms,
                    peer in self._committee,
                )
            )
        return out

"""A node's P2P service: the server on its own port, the client, and discovery.

Validators and fullnodes run the same thing; a validator's peers include the committee
(every member's network key and P2P address) from the start. Other components add
their methods to `server` (state sync: its requests to peers go through `client`), and
`peers()` is what status reports list.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence

from soma.consensus.network.server import now_ms
from soma.p2p.client import P2pClient
from soma.p2p.discovery import Discovery
from soma.p2p.parameters import DiscoveryParameters
from soma.p2p.peer_table import DialTarget, KnownPeer, PeerTable
from soma.p2p.server import P2pServer
from soma.types.committee import Committee
from soma.types.config import SeedPeer
from soma.types.crypto import Ed25519PublicKey, NetworkKeyPair
from soma.types.tls import tls_identity


def committee_peers(committee: Committee) -> dict[Ed25519PublicKey, str]:
    """Each validator's peer id (its network key) and P2P address."""
    return {m.network_key: m.p2p_address for m in committee.members}


class P2pService:
    def __init__(
        self,
        key: NetworkKeyPair,
        listen_address: str,
        *,
        committee: Committee | Mapping[Ed25519PublicKey, str] | None = None,
        seeds: Sequence[SeedPeer] = (),
        parameters: DiscoveryParameters | None = None,
        server: P2pServer | None = None,
        clock: Callable[[], int] = now_ms,
        rng: random.Random | None = None,
    ) -> None:
        """`listen_address` is `host:port` (port 0: a free one, advertised as bound)."""
        self.key = key
        self.server = server or P2pServer()
        self.client = P2pClient()
        self._listen = listen_address
        self._committee = (
            committee_peers(committee) if isinstance(committee, Committee) else committee
        )
        self._seeds = [DialTarget(s.address, s.peer_id) for s in seeds]
        self._parameters = parameters or DiscoveryParameters()
        self._clock = clock
        self._rng = rng or random.Random()
        self.discovery: Discovery | None = None
        self.port = 0

    @property
    def peer_id(self) -> Ed25519PublicKey:
        return self.key.public_key

    @property
    def address(self) -> str:
        """Where peers reach this node (known once started)."""
        return f"{self._listen.rpartition(':')[0]}:{self.port}"

    async def start(self) -> None:
        self.port = await self.server.start(self._listen, tls_identity(self.key))
        table = PeerTable(
            self.key,
            [self.address],
            self._parameters,
            self._rng,
            committee=self._committee,
            seeds=self._seeds,
        )
        self.discovery = Discovery(table, self.client, self._clock)
        self.discovery.register(self.server)
        self.discovery.start()

    async def stop(self) -> None:
        if self.discovery is not None:
            await self.discovery.stop()
        await self.server.stop()
        await self.client.close()

    def set_committee(self, committee: Committee) -> None:
        """A new epoch's validators (at reconfiguration)."""
        self._committee = committee_peers(committee)
        if self.discovery is not None:
            self.discovery.table.set_committee(self._committee)

    def report_misbehaviour(self, peer_id: Ed25519PublicKey) -> None:
        """Another component (state sync) found `peer_id` sending invalid data: drop it
        from discovery too, so it is neither asked nor passed on for a while."""
        if self.discovery is None:
            return
        for peer in self.discovery.table.peers(self._clock()):
            if peer.peer_id == peer_id:
                for address in peer.addresses:
                    self.discovery.table.record_invalid(DialTarget(address, peer_id), self._clock())

    def peers(self) -> list[KnownPeer]:
        """Every peer known and not dropped, by peer id (empty before `start`)."""
        if self.discovery is None:
            return []
        return self.discovery.table.peers(self._clock())

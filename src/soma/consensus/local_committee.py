"""Committees of local validators with generated keys: for the simulator, tests, the
benchmark and `soma start`, where one machine plays every validator."""

from __future__ import annotations

import dataclasses
import random
import socket
from collections.abc import Sequence

from soma.types.committee import Committee, CommitteeMember
from soma.types.crypto import AuthorityKeyPair, NetworkKeyPair, ProtocolKeyPair
from soma.types.tls import tls_identity


@dataclasses.dataclass(frozen=True)
class ValidatorKeys:
    authority: AuthorityKeyPair
    protocol: ProtocolKeyPair
    network: NetworkKeyPair


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """Ports free right now on `host` (held open together so they are distinct)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def generate_committee(
    size: int,
    seed: int | None = None,
    consensus_addresses: Sequence[str] | None = None,
    stakes: Sequence[int] | None = None,
    epoch: int = 0,
) -> tuple[Committee, list[ValidatorKeys]]:
    """A committee of `size` validators with keys derived from `seed` (random if None);
    the keys are returned in committee index order. Addresses default to placeholders
    (`sim-i:port`), which is all the simulator needs."""
    rng = random.Random(seed) if seed is not None else random.SystemRandom()
    authority = [AuthorityKeyPair(rng.randbytes(32)) for _ in range(size)]
    protocol = [ProtocolKeyPair(rng.randbytes(32)) for _ in range(size)]
    network = [NetworkKeyPair(rng.randbytes(32)) for _ in range(size)]
    members = [
        CommitteeMember(
            name=authority[i].name,
            stake=1 if stakes is None else stakes[i],
            protocol_key=protocol[i].public_key,
            network_key=network[i].public_key,
            tls_certificate=tls_identity(network[i]).certificate_der,
            hostname=f"validator-{i}",
            network_address=f"sim-{i}:1",
            consensus_address=(
                f"sim-{i}:2" if consensus_addresses is None else consensus_addresses[i]
            ),
            p2p_address=f"sim-{i}:3",
        )
        for i in range(size)
    ]
    committee = Committee.new(epoch, members)
    by_name = {
        authority[i].name: ValidatorKeys(authority[i], protocol[i], network[i]) for i in range(size)
    }
    return committee, [by_name[m.name] for m in committee.members]


def build_committee(size: int, seed: int) -> tuple[Committee, list[ProtocolKeyPair]]:
    """A committee of `size` equal-stake validators with keys derived from `seed`;
    protocol keys are returned in committee index order (the simulator's and the DAG
    tools' committees)."""
    committee, keys = generate_committee(size, seed)
    return committee, [k.protocol for k in keys]

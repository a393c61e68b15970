"""Every decoder of bytes that come from outside a node, behind one entry point for the
fuzzers: transactions, blocks, commits, consensus, validator-service, P2P and
state-sync messages, summaries, node and client config files, TLS certificates.

`decode(data)` picks a decoder by the first byte and feeds it the rest. A decoder may
refuse its input only with the project's typed errors (`SomaError`); anything else
escaping is a finding. Seeds (`seed_inputs`) are valid encodings, so mutation explores
the bytes near real messages, not only noise.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from soma.authority import service_wire
from soma.consensus import messages as consensus_messages
from soma.consensus.network import auth as consensus_auth
from soma.consensus.network import wire as consensus_wire
from soma.p2p import node_info
from soma.p2p import wire as p2p_wire
from soma.sync import wire as sync_wire
from soma.types import commit_summary, effects, transaction
from soma.types.config import load_client_config, load_keystore, load_node_config
from soma.types.consensus import block, commit
from soma.types.error import SomaError
from soma.types.tls import network_key_of_certificate

_MODULES: tuple[ModuleType, ...] = (
    transaction,
    effects,
    block,
    commit,
    commit_summary,
    consensus_messages,
    consensus_wire,
    consensus_auth,
    service_wire,
    p2p_wire,
    node_info,
    sync_wire,
)


def _wire_types() -> list[type]:
    """Every class defined in those modules that decodes itself from bytes."""
    found: dict[str, type] = {}
    for module in _MODULES:
        for name, value in vars(module).items():
            if (
                inspect.isclass(value)
                and value.__module__ == module.__name__
                and callable(getattr(value, "from_bytes", None))
                # An IntEnum's from_bytes is int's, not a decoder of ours.
                and not issubclass(value, int)
            ):
                found[f"{module.__name__}.{name}"] = value
    return [found[k] for k in sorted(found)]


WIRE_TYPES = _wire_types()

_CONFIG_DIR = Path(tempfile.mkdtemp(prefix="soma-fuzz-"))


def _config_loader(load: Callable[[Path], object], name: str) -> Callable[[bytes], object]:
    path = _CONFIG_DIR / name

    def decode(data: bytes) -> object:
        path.write_bytes(data)
        os.chmod(path, 0o600)
        return load(path)

    return decode


DECODERS: list[tuple[str, Callable[[bytes], object]]] = [
    *((f"{t.__module__}.{t.__name__}", t.from_bytes) for t in WIRE_TYPES),
    ("node config", _config_loader(load_node_config, "node.yaml")),
    ("client config", _config_loader(load_client_config, "client.yaml")),
    ("keystore", _config_loader(load_keystore, "keystore.yaml")),
    # A peer's TLS certificate, as the P2P client reads it before pinning it.
    ("TLS certificate", network_key_of_certificate),
]


def slug(name: str) -> str:
    """A decoder's name as a directory name (`TLS certificate` -> `tls-certificate`)."""
    return name.lower().replace(" ", "-")


def decoder_named(directory: str) -> Callable[[bytes], object]:
    """The decoder whose `slug` is `directory`: regressions are filed under it, so they
    replay against the decoder they were found in however the list grows."""
    for name, decoder in DECODERS:
        if slug(name) == directory:
            return decoder
    raise KeyError(f"no decoder named {directory!r}")


def name_of(data: bytes) -> str:
    """Which decoder `decode` gives `data` to (where to file a crash input)."""
    return DECODERS[data[0] % len(DECODERS)][0]


def decode(data: bytes) -> None:
    """Decode `data[1:]` with decoder number `data[0]`; typed refusals are fine."""
    if not data:
        return
    _, decoder = DECODERS[data[0] % len(DECODERS)]
    with contextlib.suppress(SomaError):
        decoder(data[1:])


def seed_inputs() -> list[bytes]:
    """Valid (or nearly valid) inputs for every decoder: sample values' encodings."""
    from tests.fuzz.samples import samples

    seeds = []
    for index, (name, _) in enumerate(DECODERS):
        for raw in samples().get(name, [b""]):
            seeds.append(bytes([index]) + raw)
    return seeds

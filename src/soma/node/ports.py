"""Ports of a local network that another program took after genesis.

`soma genesis` picks free ports on 127.0.0.1 and records them twice: in the configs,
where the nodes read them, and in `ports.yaml`, which says they were soma's choice.
Ports of the ephemeral range are also what outgoing connections use, so a port free at
genesis may be taken a day later. Before `soma start` launches anything,
`move_taken_ports` checks each one: a taken port that soma chose moves to a new free
port, recorded in the config and `ports.yaml`, and the other validators learn where a
moved validator now listens (their `peer_addresses`; the fullnode's `seed_peers` for a
moved P2P port, and the other validators from its signed node info, which carries the
address it listens on); a taken port set by hand (it
differs from `ports.yaml`) is never moved: the error names the port, the file and what
to do.
"""

from __future__ import annotations

import dataclasses
import socket
from pathlib import Path
from typing import Any

import yaml

from soma.consensus.local_committee import free_ports
from soma.node.layout import CLIENT_CONFIG, FULLNODE_CONFIG, PORTS_FILE, validator_config_name
from soma.types.config import dump_yaml
from soma.types.error import SomaError


class PortTakenError(SomaError):
    code = "PORT_TAKEN"


@dataclasses.dataclass(frozen=True)
class Service:
    """One listening address of a local network: the config and field that hold it."""

    config: str
    field: str
    label: str


def services(validators: int) -> list[Service]:
    """The addresses `soma start` serves on: each validator's service, consensus, P2P
    and metrics ports, the HTTP API, and the fullnode's P2P and metrics ports."""
    out = []
    for i in range(validators):
        name = validator_config_name(i)
        out.append(Service(name, "network_address", f"validator-{i}'s service"))
        out.append(Service(name, "consensus_address", f"validator-{i}'s consensus"))
        out.append(Service(name, "p2p_address", f"validator-{i}'s P2P"))
        out.append(Service(name, "metrics_address", f"validator-{i}'s metrics"))
    out.append(Service(FULLNODE_CONFIG, "api_address", "the HTTP API"))
    out.append(Service(FULLNODE_CONFIG, "p2p_address", "the fullnode's P2P"))
    out.append(Service(FULLNODE_CONFIG, "metrics_address", "the fullnode's metrics"))
    return out


def record_ports(root: Path, validators: int) -> None:
    """Write `ports.yaml` from the configs: every address there is soma's choice."""
    recorded: dict[str, dict[str, str]] = {}
    for service in services(validators):
        address = _read(root / service.config).get(service.field)
        if isinstance(address, str):
            recorded.setdefault(service.config, {})[service.field] = address
    dump_yaml(root / PORTS_FILE, recorded)


def port_is_free(address: str) -> bool:
    """Whether a server could listen on `host:port` now (as gRPC and uvicorn bind it)."""
    host, _, port = address.rpartition(":")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, int(port)))
        except OSError:
            return False
    return True


def move_taken_ports(root: Path, validators: int) -> list[str]:
    """Move every taken port that soma chose; returns a line per move. Raises
    `PortTakenError` for a taken port set by hand, before anything is changed."""
    if not (root / PORTS_FILE).exists():
        # A network from before ports.yaml: its genesis chose every port.
        record_ports(root, validators)
    recorded: dict[str, dict[str, str]] = _read(root / PORTS_FILE)
    configs = {s.config: _read(root / s.config) for s in services(validators)}
    taken = [
        s
        for s in services(validators)
        if isinstance(configs[s.config].get(s.field), str)
        and not port_is_free(configs[s.config][s.field])
    ]
    for service in taken:
        address = configs[service.config][service.field]
        if recorded.get(service.config, {}).get(service.field) != address:
            raise PortTakenError(
                f"{address} ({service.label}) is in use by another program, and "
                f"{service.field} in {root / service.config} was set by hand: stop the "
                f"program that holds port {address.rpartition(':')[2]}, or set another "
                "free port there"
            )
    if not taken:
        return []
    in_use = {
        int(str(c[s.field]).rpartition(":")[2])
        for s in services(validators)
        for c in [configs[s.config]]
        if isinstance(c.get(s.field), str)
    }
    notices = []
    moved_p2p: dict[str, str] = {}
    for service in taken:
        old = configs[service.config][service.field]
        host = old.rpartition(":")[0]
        port = _new_port(host, in_use)
        new = f"{host}:{port}"
        configs[service.config][service.field] = new
        if service.field == "p2p_address":
            moved_p2p[old] = new
        recorded.setdefault(service.config, {})[service.field] = new
        notices.append(
            f"{old} ({service.label}) was taken by another program: moved to {new} "
            f"(recorded in {service.config})"
        )
    if any(s.field == "consensus_address" for s in taken):
        _point_peers(configs, validators)
    seeds_moved = _point_seeds(configs[FULLNODE_CONFIG], moved_p2p)
    if any(s.field == "network_address" and s.config != FULLNODE_CONFIG for s in taken):
        # The fullnode's quorum driver reaches the validators' services where they are.
        configs[FULLNODE_CONFIG]["validator_addresses"] = {
            f"validator-{i}": configs[validator_config_name(i)]["network_address"]
            for i in range(validators)
        }
        seeds_moved = True
    if any(s.field == "api_address" for s in taken):
        client = _read(root / CLIENT_CONFIG)
        if client:
            client["api_url"] = f"http://{configs[FULLNODE_CONFIG]['api_address']}"
            dump_yaml(root / CLIENT_CONFIG, client)
    rewritten = {s.config for s in taken} | {validator_config_name(i) for i in range(validators)}
    if seeds_moved:
        rewritten.add(FULLNODE_CONFIG)
    for name in rewritten:
        dump_yaml(root / name, configs[name])
    dump_yaml(root / PORTS_FILE, recorded)
    return notices


def _new_port(host: str, in_use: set[int]) -> int:
    """A port free now that no other service of the network is recorded on (they are
    all down while `soma start` checks, so "free now" alone is not enough)."""
    while True:
        port = free_ports(1, host)[0]
        if port not in in_use:
            in_use.add(port)
            return port


def _point_peers(configs: dict[str, dict[str, Any]], validators: int) -> None:
    """Each validator dials the others at their configs' consensus addresses."""
    for j in range(validators):
        configs[validator_config_name(j)]["peer_addresses"] = {
            f"validator-{i}": configs[validator_config_name(i)]["consensus_address"]
            for i in range(validators)
            if i != j
        }


def _point_seeds(fullnode: dict[str, Any], moved: dict[str, str]) -> bool:
    """The fullnode's seed peers follow the validators' moved P2P addresses; whether
    any did."""
    seeds = fullnode.get("seed_peers")
    if not isinstance(seeds, list):
        return False
    changed = False
    for i, seed in enumerate(seeds):
        if isinstance(seed, str) and seed in moved:
            seeds[i] = moved[seed]
        elif isinstance(seed, dict) and seed.get("address") in moved:
            seed["address"] = moved[seed["address"]]
        else:
            continue
        changed = True
    return changed


def _read(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, yaml.YAMLError) as e:
        raise SomaError(f"cannot read {path}: {e}") from None
    return data if isinstance(data, dict) else {}

"""Where each node of a network runs, for a network across machines.

`soma genesis --hosts` takes one public address per node: `validator-<i>` for each
validator and `fullnode`, each `host:port`, either as `name=host:port,...` or as a YAML
file mapping names to `host:port`. A node's services then take that port and the three
after it (a validator: its validator service, consensus, P2P and metrics; the fullnode:
its validator-facing service, HTTP API, P2P and metrics), on that host. The committee carries the
validators' addresses, so every node dials the others there, and each config binds its
own node to them: copy the network directory to every machine and start on each the
node named for it.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Mapping
from pathlib import Path

import yaml

from soma.types.error import SomaError

#: Ports a node takes from its base port on.
PORTS_PER_NODE = 4


class HostsError(SomaError):
    code = "GENESIS_INVALID_ARGUMENT"


@dataclasses.dataclass(frozen=True)
class NodeAddress:
    host: str
    port: int

    def service(self, offset: int) -> str:
        """The address of the node's service number `offset` (0 to 3)."""
        return f"{self.host}:{self.port + offset}"


def parse_hosts(text: str, validators: int) -> dict[str, NodeAddress]:
    """`text` is a path to a YAML file of `name: host:port`, or `name=host:port,...`.
    Every validator-<i> (i < `validators`) and the fullnode must be named, nothing else."""
    path = Path(text)
    raw: Mapping[object, object]
    if path.is_file():
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
            raise HostsError(f"--hosts {text}: unreadable: {e}") from None
        if not isinstance(loaded, dict):
            raise HostsError(f"--hosts {text}: expected a mapping of name: host:port")
        raw = loaded
    else:
        pairs: dict[object, object] = {}
        for item in filter(None, (p.strip() for p in text.split(","))):
            name, sep, value = item.partition("=")
            if not sep:
                raise HostsError(f"--hosts: {item!r} is not name=host:port")
            if name.strip() in pairs:
                raise HostsError(f"--hosts: {name.strip()} is given twice")
            pairs[name.strip()] = value.strip()
        raw = pairs
    expected = [f"validator-{i}" for i in range(validators)] + ["fullnode"]
    unknown = sorted(str(k) for k in raw if k not in expected)
    if unknown:
        raise HostsError(
            f"--hosts: unknown node {unknown[0]!r}; the nodes are {', '.join(expected)}"
        )
    missing = [n for n in expected if n not in raw]
    if missing:
        raise HostsError(f"--hosts: no address for {', '.join(missing)}")
    out = {name: _address(name, raw[name]) for name in expected}
    taken: dict[tuple[str, int], str] = {}
    for name, node in out.items():
        for offset in range(PORTS_PER_NODE):
            key = (node.host, node.port + offset)
            if key in taken:
                raise HostsError(
                    f"--hosts: {name} and {taken[key]} both need {node.service(offset)}"
                    f" (each node takes its port and the {PORTS_PER_NODE - 1} after it)"
                )
            taken[key] = name
    return out


def _address(name: str, value: object) -> NodeAddress:
    if not isinstance(value, str):
        raise HostsError(f"--hosts: {name}: expected host:port, got {value!r}")
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise HostsError(f"--hosts: {name}: expected host:port, got {value!r}")
    number = int(port)
    if not 0 < number <= 65535 - (PORTS_PER_NODE - 1):
        raise HostsError(
            f"--hosts: {name}: port {number} must be 1 to {65535 - PORTS_PER_NODE + 1}"
            f" (the node also takes the {PORTS_PER_NODE - 1} ports after it)"
        )
    if host in ("0.0.0.0", "::", "[::]"):
        raise HostsError(
            f"--hosts: {name}: {host} is not an address other nodes can dial; give the"
            " machine's public address"
        )
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        if not all(part and (part.isalnum() or "-" in part) for part in host.split(".")):
            raise HostsError(f"--hosts: {name}: {host!r} is not a host name or IP") from None
    return NodeAddress(host, number)

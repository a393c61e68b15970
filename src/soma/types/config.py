"""Node and client configuration files (YAML), checked field by field on load.

A wrong config must stop a node before it starts, with the file and the field named:
`validator-0.yaml: keys.protocol: cannot read key file ...`. Paths in a config are
relative to the file's own directory, so a network directory can be moved whole.
"""

from __future__ import annotations

import dataclasses
import enum
import os
import stat
from pathlib import Path
from typing import Any

import yaml

from soma.types.base import SomaAddress
from soma.types.crypto import (
    AccountKeyPair,
    AuthorityKeyPair,
    Ed25519KeyPair,
    Ed25519PublicKey,
    NetworkKeyPair,
    ProtocolKeyPair,
    read_key_file,
)
from soma.types.error import FormatError, SomaError


class ConfigError(SomaError):
    """A config file that is missing, not YAML, or has a bad field (named in `field`)."""

    code = "CONFIG_INVALID"

    def __init__(self, path: Path | str, field: str | None, message: str) -> None:
        where = f"{path}: {field}" if field else f"{path}"
        super().__init__(f"{where}: {message}")
        self.path = str(path)
        self.field = field


class NodeRole(enum.Enum):
    VALIDATOR = "validator"
    FULLNODE = "fullnode"


@dataclasses.dataclass(frozen=True)
class NodeKeys:
    protocol: ProtocolKeyPair
    network: NetworkKeyPair
    authority: AuthorityKeyPair | None


@dataclasses.dataclass(frozen=True)
class SeedPeer:
    """A P2P peer to ask first: its address and, optionally, the peer id (network
    public key) expected there, so that another node answering there is refused."""

    address: str
    peer_id: Ed25519PublicKey | None = None


@dataclasses.dataclass(frozen=True)
class NodeConfig:
    path: Path
    role: NodeRole
    genesis_path: Path
    db_path: Path
    keys: NodeKeys
    #: The validator service (submit, effects, objects), host:port.
    network_address: str
    consensus_address: str | None
    #: The public HTTP API, host:port, or None for no API.
    api_address: str | None
    #: Overrides of ConsensusParameters fields.
    consensus_parameters: dict[str, Any]
    #: Where to reach committee members (by hostname) at another consensus address
    #: than the committee lists: a local network whose ports moved after genesis.
    peer_addresses: dict[str, str] = dataclasses.field(default_factory=dict)
    #: Overrides of the HTTP API's limits (`soma.rpc.limits.ApiLimits` fields), checked
    #: by `ApiLimits.from_config` where the API is served.
    api_limits: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: Where the P2P service listens, host:port (required for validators).
    p2p_address: str | None = None
    #: P2P peers to ask first (a node that is no validator knows no other).
    seed_peers: tuple[SeedPeer, ...] = ()
    #: Where to reach validators' services (by hostname) at another address than the
    #: committee lists (a fullnode's quorum driver, on a network whose ports moved).
    validator_addresses: dict[str, str] = dataclasses.field(default_factory=dict)
    #: A faucet's account (local networks: the fullnode serving the API hands coins).
    faucet_key: AccountKeyPair | None = None
    #: Where Prometheus metrics are served, host:port, or None for none.
    metrics_address: str | None = None


@dataclasses.dataclass(frozen=True)
class ClientConfig:
    path: Path
    api_url: str
    keystore_path: Path
    active_address: SomaAddress | None


def parse_host_port(text: object, path: Path, field: str) -> str:
    """Check `host:port` (port 1-65535) and return it."""
    if not isinstance(text, str) or ":" not in text:
        raise ConfigError(path, field, f"expected host:port, got {text!r}")
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(path, field, f"expected host:port with a port 1-65535, got {text!r}")
    return text


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(path, None, f"cannot read: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(path, None, f"not UTF-8 text (byte {e.start})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(path, None, f"not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(path, None, "expected a mapping of fields")
    return data


class _Fields:
    """Typed reads of one mapping, every error naming its field, unknown keys refused."""

    def __init__(self, path: Path, data: dict[str, Any], prefix: str = "") -> None:
        self.path = path
        self.data = data
        self.prefix = prefix
        self.used: set[str] = set()

    def _name(self, key: str) -> str:
        return f"{self.prefix}{key}"

    def get(self, key: str, kind: type, required: bool = True, default: Any = None) -> Any:
        self.used.add(key)
        if key not in self.data or self.data[key] is None:
            if required:
                raise ConfigError(self.path, self._name(key), "missing")
            return default
        value = self.data[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ConfigError(
                self.path, self._name(key), f"expected {kind.__name__}, got {value!r}"
            )
        return value

    def file(self, key: str) -> Path:
        value: str = self.get(key, str)
        return (self.path.parent / value).resolve()

    def key(self, key: str, cls: type[Ed25519KeyPair], required: bool = True) -> Any:
        if not required and self.data.get(key) is None:
            self.used.add(key)
            return None
        path = self.file(key)
        try:
            found = read_key_file(path, cls)
        except (SomaError, FormatError) as e:
            raise ConfigError(self.path, self._name(key), e.message) from None
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            # A node's secret keys sign blocks, effects and summaries in its name.
            raise ConfigError(
                self.path,
                self._name(key),
                f"key file {path} is open to other users (mode {mode:04o}); run: chmod 600 {path}",
            )
        return found

    def finish(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise ConfigError(self.path, self._name(unknown[0]), "unknown field")


def load_node_config(path: str | Path) -> NodeConfig:
    path = Path(path)
    fields = _Fields(path, _read_yaml(path))
    role_text = fields.get("role", str)
    try:
        role = NodeRole(role_text)
    except ValueError:
        raise ConfigError(
            path, "role", f"expected validator or fullnode, got {role_text!r}"
        ) from None
    key_fields = _Fields(path, fields.get("keys", dict), "keys.")
    validator = role is NodeRole.VALIDATOR
    keys = NodeKeys(
        protocol=key_fields.key("protocol", ProtocolKeyPair),
        network=key_fields.key("network", NetworkKeyPair),
        authority=key_fields.key("authority", AuthorityKeyPair, required=validator),
    )
    key_fields.finish()
    consensus_address = fields.get("consensus_address", str, required=validator)
    api_address = fields.get("api_address", str, required=False)
    # Optional: a validator listens where the committee says by default (and a network
    # directory from before P2P has no such field).
    p2p_address = fields.get("p2p_address", str, required=False)
    metrics_address = fields.get("metrics_address", str, required=False)
    config = NodeConfig(
        path=path,
        role=role,
        genesis_path=fields.file("genesis"),
        db_path=fields.file("db_path"),
        keys=keys,
        network_address=parse_host_port(
            fields.get("network_address", str), path, "network_address"
        ),
        consensus_address=(
            None
            if consensus_address is None
            else parse_host_port(consensus_address, path, "consensus_address")
        ),
        api_address=None
        if api_address is None
        else parse_host_port(api_address, path, "api_address"),
        consensus_parameters=fields.get("consensus", dict, required=False, default={}),
        peer_addresses=_peer_addresses(path, fields.get("peer_addresses", dict, required=False)),
        api_limits=fields.get("api_limits", dict, required=False, default={}),
        p2p_address=None
        if p2p_address is None
        else parse_host_port(p2p_address, path, "p2p_address"),
        seed_peers=_seed_peers(path, fields.get("seed_peers", list, required=False)),
        validator_addresses=_peer_addresses(
            path, fields.get("validator_addresses", dict, required=False), "validator_addresses"
        ),
        faucet_key=fields.key("faucet_key", AccountKeyPair, required=False),
        metrics_address=None
        if metrics_address is None
        else parse_host_port(metrics_address, path, "metrics_address"),
    )
    fields.finish()
    if not config.genesis_path.is_file():
        raise ConfigError(path, "genesis", f"no genesis file at {config.genesis_path}")
    return config


def _peer_addresses(
    path: Path, data: dict[str, Any] | None, field: str = "peer_addresses"
) -> dict[str, str]:
    """A mapping of committee hostnames to host:port, checked entry by entry."""
    out = {}
    for name, address in (data or {}).items():
        if not isinstance(name, str):
            raise ConfigError(path, field, f"expected hostnames, got {name!r}")
        out[name] = parse_host_port(address, path, f"{field}.{name}")
    return out


def _seed_peers(path: Path, data: list[Any] | None) -> tuple[SeedPeer, ...]:
    """Each entry `host:port`, or `{address: host:port, peer_id: <64 hex digits>}`."""
    out = []
    for i, entry in enumerate(data or []):
        field = f"seed_peers[{i}]"
        if not isinstance(entry, dict):
            out.append(SeedPeer(parse_host_port(entry, path, field)))
            continue
        seed = _Fields(path, entry, f"{field}.")
        address = parse_host_port(seed.get("address", str), path, f"{field}.address")
        peer_id_hex = seed.get("peer_id", str, required=False)
        seed.finish()
        try:
            peer_id = None if peer_id_hex is None else Ed25519PublicKey.fromhex(peer_id_hex)
        except (SomaError, ValueError):
            raise ConfigError(
                path, f"{field}.peer_id", f"expected 64 hex digits, got {peer_id_hex!r}"
            ) from None
        out.append(SeedPeer(address, peer_id))
    return tuple(out)


def load_client_config(path: str | Path) -> ClientConfig:
    path = Path(path)
    fields = _Fields(path, _read_yaml(path))
    api_url = fields.get("api_url", str)
    if not api_url.startswith(("http://", "https://")):
        raise ConfigError(path, "api_url", f"expected an http(s) URL, got {api_url!r}")
    active = fields.get("active_address", str, required=False)
    try:
        active_address = None if active is None else SomaAddress.from_hex(active)
    except (SomaError, ValueError):
        raise ConfigError(path, "active_address", f"not an address: {active!r}") from None
    config = ClientConfig(path, api_url, fields.file("keystore"), active_address)
    fields.finish()
    return config


def load_keystore(path: str | Path) -> list[AccountKeyPair]:
    """A keystore: a YAML list of base64 account keys."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(path, None, f"cannot read: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(path, None, f"not UTF-8 text (byte {e.start})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(path, None, f"not valid YAML: {e}") from None
    if data is None:
        return []
    if not isinstance(data, list) or not all(isinstance(k, str) for k in data):
        raise ConfigError(path, None, "expected a list of base64 account keys")
    keys = []
    for i, text in enumerate(data):
        try:
            keys.append(AccountKeyPair.from_base64(text))
        except SomaError as e:
            raise ConfigError(path, f"[{i}]", e.message) from None
    return keys


def dump_yaml(path: Path, data: object, private: bool = False) -> None:
    """Write YAML whole or not at all (a temporary file, synced, renamed over the old
    one: a crash mid-write never leaves a keystore half written); `private` files
    (keystores) are created with mode 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(data, sort_keys=False)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise

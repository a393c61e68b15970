"""The network directory: its lock, checked regenesis, staged genesis, ports that moved,
and how `soma` commands end (one line, JSON with --json, exit codes)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from soma.cli.main import app
from soma.node.dir_lock import NetworkLock, NetworkRunningError, lock_holder
from soma.node.layout import GENESIS_FILE, LOCK_FILE, PORTS_FILE, STAGING_DIR
from soma.node.local_network import GenesisArgumentError, create_local_network, remove_network
from soma.node.ports import PortTakenError, move_taken_ports
from soma.node.start import prepare_network
from soma.types.config import load_client_config, load_node_config
from soma.utils.interrupt import deferred_interrupts

# --- the lock --------------------------------------------------------------------------


def test_lock_refuses_a_second_holder_and_names_the_pid(tmp_path: Path) -> None:
    assert lock_holder(tmp_path) is None
    with NetworkLock(tmp_path):
        assert lock_holder(tmp_path) == os.getpid()
        with pytest.raises(NetworkRunningError) as info:
            NetworkLock(tmp_path).acquire()
        assert info.value.message == f"network in {tmp_path} is running (pid {os.getpid()})"
    assert lock_holder(tmp_path) is None
    NetworkLock(tmp_path).acquire()  # free again (the instance is dropped: closed by GC)


def test_lock_held_by_another_process_dies_with_it(tmp_path: Path) -> None:
    code = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from soma.node.dir_lock import NetworkLock
        lock = NetworkLock(Path({str(tmp_path)!r}))
        lock.acquire()
        print("locked", flush=True)
        time.sleep(60)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"locked\n"
        assert lock_holder(tmp_path) == proc.pid
        with pytest.raises(NetworkRunningError, match=f"pid {proc.pid}"):
            NetworkLock(tmp_path).acquire()
    finally:
        proc.kill()
        proc.wait()
    # SIGKILL leaves no stale lock behind.
    assert lock_holder(tmp_path) is None
    with NetworkLock(tmp_path):
        pass


def test_genesis_and_regenesis_refused_while_locked(tmp_path: Path) -> None:
    root = tmp_path / "net"
    create_local_network(root, validators=1, accounts=1)
    before = {p.name: p.stat().st_mtime_ns for p in root.iterdir()}
    runner = CliRunner()
    with NetworkLock(root):
        result = runner.invoke(app, ["genesis", "--dir", str(root)])
        assert result.exit_code == 1
        assert result.stderr.strip() == f"error: network in {root} is running (pid {os.getpid()})"
        result = runner.invoke(app, ["start", "--dir", str(root), "--force-regenesis"])
        assert result.exit_code == 1
        assert result.stderr.count("\n") == 1 and "is running (pid" in result.stderr
    after = {p.name: p.stat().st_mtime_ns for p in root.iterdir() if p.name != LOCK_FILE}
    assert after == before


# --- checked regenesis and staged genesis ---------------------------------------------------


def test_regenesis_of_a_stopped_network_replaces_it(tmp_path: Path) -> None:
    old = create_local_network(tmp_path, validators=1, accounts=1)
    old_genesis = (tmp_path / GENESIS_FILE).read_bytes()
    (tmp_path / "validator-0" / "db").mkdir()
    with NetworkLock(tmp_path):
        assert prepare_network(tmp_path, None, force_regenesis=True) == 4
    assert (tmp_path / GENESIS_FILE).read_bytes() != old_genesis
    assert not (tmp_path / "validator-0" / "db").exists()
    assert load_client_config(tmp_path / "client.yaml").api_url != old.api_url


def test_regenesis_deletes_nothing_when_the_directory_holds_other_files(tmp_path: Path) -> None:
    create_local_network(tmp_path, validators=1, accounts=1)
    (tmp_path / "notes.txt").write_text("mine")
    entries = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(GenesisArgumentError, match=r"notes\.txt.*nothing was deleted"):
        remove_network(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == entries
    # A symlink named like a network entry is not one either.
    (tmp_path / "notes.txt").unlink()
    (tmp_path / "logs").symlink_to(tmp_path / "validator-0")
    with pytest.raises(GenesisArgumentError, match="logs"):
        remove_network(tmp_path)
    assert (tmp_path / GENESIS_FILE).exists()


def test_genesis_refuses_a_foreign_or_partial_directory(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "photo.jpg").write_bytes(b"x")
    with pytest.raises(GenesisArgumentError, match="not empty and holds no network"):
        create_local_network(tmp_path / "a", validators=1)
    partial = tmp_path / "b"
    partial.mkdir()
    (partial / "validator-0.yaml").write_text("role: validator\n")
    with pytest.raises(GenesisArgumentError, match="part of a network but no genesis"):
        create_local_network(partial, validators=1)


def test_an_interrupted_genesis_leaves_only_its_staging_which_the_next_one_replaces(
    tmp_path: Path,
) -> None:
    (tmp_path / STAGING_DIR / "validator-0").mkdir(parents=True)
    (tmp_path / LOCK_FILE).write_text("")
    net = create_local_network(tmp_path, validators=2, accounts=1)
    assert not (tmp_path / STAGING_DIR).exists()
    assert all(p.exists() for p in net.validator_configs)
    assert yaml.safe_load((tmp_path / PORTS_FILE).read_text())["fullnode.yaml"]["api_address"]


def test_deferred_interrupts_deliver_the_signal_after_the_block() -> None:
    seen: list[str] = []
    previous = signal.signal(signal.SIGUSR1, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt), deferred_interrupts():
            os.kill(os.getpid(), signal.SIGINT)
            seen.append("block finished")
        assert seen == ["block finished"]
    finally:
        signal.signal(signal.SIGUSR1, previous)


# --- ports taken after genesis -----------------------------------------------------------


def _hold(address: str) -> socket.socket:
    host, _, port = address.rpartition(":")
    sock = socket.socket()
    sock.bind((host, int(port)))
    sock.listen()
    return sock


def test_a_taken_port_soma_chose_moves_and_peers_learn_it(tmp_path: Path) -> None:
    create_local_network(tmp_path, validators=3, accounts=1)
    assert move_taken_ports(tmp_path, 3) == []
    consensus = load_node_config(tmp_path / "validator-1.yaml").consensus_address
    api = load_node_config(tmp_path / "fullnode.yaml").api_address
    assert consensus is not None and api is not None
    with _hold(consensus), _hold(api):
        notices = move_taken_ports(tmp_path, 3)
    assert len(notices) == 2 and consensus in notices[0] and api in notices[1]
    moved = load_node_config(tmp_path / "validator-1.yaml").consensus_address
    new_api = load_node_config(tmp_path / "fullnode.yaml").api_address
    assert moved != consensus and new_api != api
    assert load_client_config(tmp_path / "client.yaml").api_url == f"http://{new_api}"
    for j in (0, 2):
        peers = load_node_config(tmp_path / f"validator-{j}.yaml").peer_addresses
        assert peers["validator-1"] == moved and f"validator-{j}" not in peers
    recorded = yaml.safe_load((tmp_path / PORTS_FILE).read_text())
    assert recorded["validator-1.yaml"]["consensus_address"] == moved
    # Every address of the network is distinct after the move.
    addresses = [a for c in recorded.values() for a in c.values()]
    assert len(set(addresses)) == len(addresses)


def test_a_taken_p2p_port_moves_and_the_fullnodes_seed_follows(tmp_path: Path) -> None:
    create_local_network(tmp_path, validators=2, accounts=1)
    p2p = load_node_config(tmp_path / "validator-1.yaml").p2p_address
    assert p2p is not None
    with _hold(p2p):
        notices = move_taken_ports(tmp_path, 2)
    assert len(notices) == 1 and p2p in notices[0] and "P2P" in notices[0]
    moved = load_node_config(tmp_path / "validator-1.yaml").p2p_address
    assert moved not in (None, p2p)
    seeds = [s.address for s in load_node_config(tmp_path / "fullnode.yaml").seed_peers]
    assert moved in seeds and p2p not in seeds
    recorded = yaml.safe_load((tmp_path / PORTS_FILE).read_text())
    assert recorded["validator-1.yaml"]["p2p_address"] == moved
    assert "p2p_address" in recorded["fullnode.yaml"]


def test_a_taken_port_set_by_hand_is_an_error_naming_it(tmp_path: Path) -> None:
    create_local_network(tmp_path, validators=1, accounts=1)
    path = tmp_path / "validator-0.yaml"
    config = yaml.safe_load(path.read_text())
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        config["network_address"] = f"127.0.0.1:{port}"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        with pytest.raises(PortTakenError) as info:
            move_taken_ports(tmp_path, 1)
    message = str(info.value)
    assert f"127.0.0.1:{port}" in message and "set by hand" in message and str(path) in message
    assert "\n" not in message
    assert yaml.safe_load(path.read_text())["network_address"] == f"127.0.0.1:{port}"


# --- how commands end ----------------------------------------------------------------------


def test_usage_errors_are_json_with_json(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["client", "--json", "transfer", "--amount", "x"])
    assert result.exit_code == 2
    error = json.loads(result.stderr)
    assert error["code"] == "USAGE_ERROR" and error["message"]
    result = CliRunner().invoke(app, ["no-such-command", "--json"])
    assert result.exit_code == 2 and json.loads(result.stderr)["code"] == "USAGE_ERROR"


def test_client_without_a_network_says_where_it_looked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOMA_DIR", str(tmp_path / "nothing"))
    result = CliRunner().invoke(app, ["client", "status"])
    assert result.exit_code == 1
    line = result.stderr.strip()
    assert "\n" not in line and str(tmp_path / "nothing") in line
    assert "soma start" in line and "SOMA_DIR" in line
    result = CliRunner().invoke(app, ["client", "--json", "balance"])
    assert json.loads(result.stderr)["code"] == "NO_NETWORK"


def test_client_of_a_stopped_network_says_it_is_not_running(tmp_path: Path) -> None:
    create_local_network(tmp_path, validators=1, accounts=1)
    result = CliRunner().invoke(app, ["client", "--dir", str(tmp_path), "status"])
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"error: the network in {tmp_path} is not running; start it with "
        f"`soma start --dir {tmp_path}`"
    )


def test_a_short_recipient_is_refused_before_anything_is_sent(tmp_path: Path) -> None:
    create_local_network(tmp_path, validators=1, accounts=1)
    result = CliRunner().invoke(
        app, ["client", "--dir", str(tmp_path), "transfer", "--to", "0x1234", "--amount", "5"]
    )
    assert result.exit_code == 2
    assert "4 hex digits" in result.stderr and "exactly 64" in result.stderr


def test_a_network_from_before_ports_yaml_counts_its_ports_as_soma_chosen(
    tmp_path: Path,
) -> None:
    create_local_network(tmp_path, validators=1, accounts=1)
    (tmp_path / PORTS_FILE).unlink()
    api = load_node_config(tmp_path / "fullnode.yaml").api_address
    assert api is not None
    with _hold(api):
        notices = move_taken_ports(tmp_path, 1)
    assert len(notices) == 1 and api in notices[0]
    assert load_node_config(tmp_path / "fullnode.yaml").api_address != api


def test_nodes_run_by_hand_share_the_lock_and_block_a_regenesis(tmp_path: Path) -> None:
    create_local_network(tmp_path, validators=2, accounts=1)
    first, second = NetworkLock(tmp_path, shared=True), NetworkLock(tmp_path, shared=True)
    first.acquire()
    second.acquire()  # several hand-run nodes side by side
    try:
        with pytest.raises(NetworkRunningError):
            NetworkLock(tmp_path).acquire()
        result = CliRunner().invoke(app, ["start", "--dir", str(tmp_path), "--force-regenesis"])
        assert result.exit_code == 1 and "is running" in result.stderr
        assert (tmp_path / GENESIS_FILE).exists()
    finally:
        first.release()
        second.release()


def test_a_store_open_in_another_process_stops_a_regenesis(tmp_path: Path) -> None:
    create_local_network(tmp_path, validators=1, accounts=1)
    store = tmp_path / "validator-0" / "db" / "authority"
    code = textwrap.dedent(
        f"""
        import time
        from soma.authority.store import AuthorityStore
        s = AuthorityStore.open_rocksdb({str(store)!r})
        print("open", flush=True)
        time.sleep(60)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"open\n"
        with pytest.raises(GenesisArgumentError, match="still has the store"):
            remove_network(tmp_path)
        assert (tmp_path / GENESIS_FILE).exists() and store.exists()
    finally:
        proc.kill()
        proc.wait()
    remove_network(tmp_path)
    assert not (tmp_path / GENESIS_FILE).exists()


def test_a_refused_genesis_on_a_new_directory_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "new" / "net"
    result = CliRunner().invoke(app, ["genesis", "--dir", str(target), "--validators", "0"])
    assert result.exit_code == 2
    assert not (tmp_path / "new").exists()


def test_a_moved_validator_service_is_where_the_fullnode_looks_for_it(tmp_path: Path) -> None:
    create_local_network(tmp_path, validators=2, accounts=1)
    service = load_node_config(tmp_path / "validator-1.yaml").network_address
    with _hold(service):
        move_taken_ports(tmp_path, 2)
    moved = load_node_config(tmp_path / "validator-1.yaml").network_address
    fullnode = load_node_config(tmp_path / "fullnode.yaml")
    assert moved != service and fullnode.validator_addresses["validator-1"] == moved


def test_every_node_gets_a_metrics_port_that_moves_when_taken(tmp_path: Path) -> None:
    from soma.node.node_list import list_nodes

    create_local_network(tmp_path, validators=2, accounts=1)
    listed = list_nodes(tmp_path)
    assert [(n.name, n.role) for n in listed] == [
        ("validator-0", "validator"),
        ("validator-1", "validator"),
        ("fullnode", "fullnode"),
    ]
    urls = [n.metrics_url for n in listed]
    assert all(u is not None and u.startswith("http://127.0.0.1:") for u in urls)
    assert len(set(urls)) == 3
    assert [n.api_url for n in listed if n.api_url] == [
        f"http://{load_node_config(tmp_path / 'fullnode.yaml').api_address}"
    ]
    metrics = load_node_config(tmp_path / "validator-1.yaml").metrics_address
    assert metrics is not None
    with _hold(metrics):
        notices = move_taken_ports(tmp_path, 2)
    assert len(notices) == 1 and "validator-1's metrics" in notices[0]
    moved = load_node_config(tmp_path / "validator-1.yaml").metrics_address
    assert moved not in (None, metrics)
    recorded = yaml.safe_load((tmp_path / PORTS_FILE).read_text())
    assert recorded["validator-1.yaml"]["metrics_address"] == moved


def test_a_network_from_before_metrics_gets_metrics_ports_at_start(tmp_path: Path) -> None:
    create_local_network(tmp_path, validators=2, accounts=1)
    names = ["validator-0.yaml", "validator-1.yaml", "fullnode.yaml"]
    recorded = yaml.safe_load((tmp_path / PORTS_FILE).read_text())
    for name in names:
        config = yaml.safe_load((tmp_path / name).read_text())
        del config["metrics_address"]
        (tmp_path / name).write_text(yaml.safe_dump(config))
        del recorded[name]["metrics_address"]
    (tmp_path / PORTS_FILE).write_text(yaml.safe_dump(recorded))
    assert prepare_network(tmp_path, None, False) == 2
    recorded = yaml.safe_load((tmp_path / PORTS_FILE).read_text())
    for name in names:
        address = load_node_config(tmp_path / name).metrics_address
        assert address is not None and address.startswith("127.0.0.1:")
        assert recorded[name]["metrics_address"] == address  # soma's choice: movable


def test_a_bad_metrics_address_names_the_field(tmp_path: Path) -> None:
    from soma.types.config import ConfigError

    create_local_network(tmp_path, validators=1, accounts=1)
    path = tmp_path / "validator-0.yaml"
    config = yaml.safe_load(path.read_text())
    config["metrics_address"] = "nowhere"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError, match="metrics_address: expected host:port"):
        load_node_config(path)

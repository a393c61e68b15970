"""A network across five hosts: four validators and a fullnode, each in a Linux network
namespace of its own, joined by veth links on a bridge, configured by
`soma genesis --hosts`. Transfers go through the fullnode's API (from a sixth host, the
client's); one validator's link is pulled and transfers go on; plugged back, that
validator catches up to the others' state root.

Skipped, with the reason, only where namespaces cannot be made (not root, no iproute2).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from soma.node.layout import GENESIS_FILE
from soma.types.config import load_client_config, load_keystore
from tests.e2e.netns import NamespaceLab, NamespaceUnavailableError

VALIDATORS = [f"validator-{i}" for i in range(4)]
CUT = "validator-3"
PORT = 7000
TIMEOUT_S = 90.0

STATUS_SCRIPT = """
import asyncio, json, sys
from soma.authority.service_client import ValidatorClient
from soma.node.local_network import genesis_committee, read_genesis
async def main():
    members = {m.hostname: m for m in genesis_committee(read_genesis(sys.argv[1])).members}
    out = []
    for name in sys.argv[2:]:
        client = ValidatorClient.for_member(members[name])
        try:
            s = await client.get_status()
            out.append([s.latest_certified_commit, s.state_root.hex()])
        except Exception as e:
            out.append([None, type(e).__name__])
        finally:
            await client.close()
    print(json.dumps(out))
asyncio.run(main())
"""


@pytest.fixture
def lab() -> Iterator[NamespaceLab]:
    try:
        lab = NamespaceLab([*VALIDATORS, "fullnode", "client"])
    except NamespaceUnavailableError as e:
        pytest.skip(f"network namespaces unavailable: {e}")
    try:
        yield lab
    finally:
        lab.close()


def _transfer(lab: NamespaceLab, directory: Path, to: str, amount: int) -> None:
    out = lab.run(
        "client",
        [
            sys.executable,
            "-m",
            "soma",
            "client",
            "--dir",
            str(directory),
            "--json",
            "transfer",
            "--to",
            to,
            "--amount",
            str(amount),
        ],
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert json.loads(out.stdout)["status"] == "success", out.stdout


def _statuses(lab: NamespaceLab, directory: Path) -> list[list[object]]:
    genesis = str(directory / GENESIS_FILE)
    out = lab.run("client", [sys.executable, "-c", STATUS_SCRIPT, genesis, *VALIDATORS])
    assert out.returncode == 0, out.stderr
    result: list[list[object]] = json.loads(out.stdout)
    return result


def test_five_hosts_survive_a_pulled_link(lab: NamespaceLab, tmp_path: Path) -> None:
    directory = tmp_path / "net"
    hosts = ",".join(f"{n}={lab.address(n)}:{PORT}" for n in [*VALIDATORS, "fullnode"])
    genesis = lab.run(
        "client",
        [sys.executable, "-m", "soma", "genesis", "--dir", str(directory), "--hosts", hosts],
    )
    assert genesis.returncode == 0, genesis.stderr
    logs = tmp_path / "logs"
    logs.mkdir()
    nodes = []
    for name in [*VALIDATORS, "fullnode"]:
        log = open(logs / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        nodes.append(
            lab.popen(
                name,
                [
                    sys.executable,
                    "-m",
                    "soma",
                    "node",
                    "--config",
                    str(directory / f"{name}.yaml"),
                    "--log-level",
                    "WARNING",
                ],
                stdout=-1,
                stderr=log,
            )
        )
    for name, proc in zip([*VALIDATORS, "fullnode"], nodes, strict=True):
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith(b"READY"), (logs / f"{name}.log").read_text()[-3000:]
    keys = load_keystore(directory / "keystore.yaml")
    assert load_client_config(directory / "client.yaml").api_url.startswith(
        f"http://{lab.address('fullnode')}:"
    )
    to = keys[1].public_key.to_address().to_hex()

    for amount in (1, 2, 3):
        _transfer(lab, directory, to, amount)
    lab.link(CUT, up=False)
    for amount in (4, 5, 6):
        _transfer(lab, directory, to, amount)
    cut_status = _statuses(lab, directory)[VALIDATORS.index(CUT)]
    assert cut_status[0] is None, cut_status  # really unreachable
    lab.link(CUT, up=True)
    for amount in (7, 8):
        _transfer(lab, directory, to, amount)

    deadline = time.monotonic() + TIMEOUT_S
    statuses: list[list[object]] = []
    while time.monotonic() < deadline:
        statuses = _statuses(lab, directory)
        roots = {str(s[1]) for s in statuses}
        if len(roots) == 1 and all(s[0] is not None for s in statuses):
            break
        time.sleep(0.5)
    else:
        raise AssertionError(f"the validators did not converge: {statuses}")
    for proc in nodes:
        assert proc.poll() is None, "a node died"

"""`soma client` as a user drives it against a live `soma start` network: coins are
picked and merged as needed, merge-coins merges any number of coins, concurrent
commands from one address each do their own transfer (or fail in one line), and the
balances add up."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.local_network import Network

FEE = 1_000
GRANT = 10_000_000


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    net = Network(tmp_path_factory.mktemp("coins") / "net")
    try:
        yield net
    finally:
        net.stop()


def client(network: Network, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "soma", "client", "--dir", str(network.directory), *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def ok(network: Network, *args: str) -> Any:
    out = client(network, "--json", *args)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def fresh(network: Network) -> str:
    address: str = ok(network, "new-address")["address"]
    return address


def balance(network: Network, address: str) -> tuple[int, int]:
    row = ok(network, "balance", address)[0]
    return row["balance"], row["coins"]


def test_a_transfer_takes_as_many_coins_as_it_needs(network: Network) -> None:
    sender, recipient = fresh(network), fresh(network)
    for _ in range(2):
        ok(network, "faucet", sender)
    assert balance(network, sender) == (2 * GRANT, 2)
    sent = ok(network, "transfer", "--from", sender, "--to", recipient, "--amount", "15000000")
    assert sent["status"] == "success"
    assert balance(network, recipient) == (15_000_000, 1)
    assert balance(network, sender) == (2 * GRANT - 15_000_000 - FEE, 1)
    # More than the balance: refused before anything is sent, in one line.
    out = client(network, "transfer", "--from", sender, "--to", recipient, "--amount", str(GRANT))
    assert out.returncode == 1 and out.stderr.count("\n") == 1
    assert "INSUFFICIENT_BALANCE" in out.stderr or "holds" in out.stderr
    assert balance(network, sender) == (2 * GRANT - 15_000_000 - FEE, 1)


def test_many_coins_merge_and_a_large_transfer_merges_first(network: Network) -> None:
    owner, recipient = fresh(network), fresh(network)
    ok(network, "faucet", owner)
    splits = 3
    amounts = [a for _ in range(200) for a in ("--amount", "9000")]
    for _ in range(splits):
        ok(network, "split-coin", "--from", owner, *amounts)
    total = GRANT - splits * FEE
    assert balance(network, owner) == (total, 1 + splits * 200)
    # 90% of the balance: the big coin and ~490 small ones, more than one transaction
    # may name (256), so the client merges first.
    amount = 9_000_000
    sent = ok(network, "transfer", "--from", owner, "--to", recipient, "--amount", str(amount))
    assert sent["status"] == "success" and sent["merges"]
    assert sent["total_fee"] == FEE * (1 + len(sent["merges"]))
    assert balance(network, recipient) == (amount, 1)
    left, coins = balance(network, owner)
    assert left == total - amount - sent["total_fee"] and coins > 1
    merged = ok(network, "merge-coins", "--from", owner)
    assert merged["status"] == "success"
    assert balance(network, owner) == (left - FEE * len(merged["transactions"]), 1)
    again = ok(network, "merge-coins", "--from", owner)  # one coin: nothing to do
    assert again == {"status": "success", "transactions": []}


def test_concurrent_transfers_from_one_address_add_up(network: Network) -> None:
    sender, recipient = fresh(network), fresh(network)
    ok(network, "faucet", sender)
    before = balance(network, sender)[0]
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "soma",
                "client",
                "--dir",
                str(network.directory),
                "transfer",
                "--from",
                sender,
                "--to",
                recipient,
                "--amount",
                "1000",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(6)
    ]
    done = [(p.wait(timeout=300), *p.communicate()) for p in procs]
    succeeded = 0
    for code, out, err in done:
        if code == 0:
            assert out.startswith("success: ") and err == "", (out, err)
            succeeded += 1
        else:
            assert code == 1 and out == "" and err.count("\n") == 1, (code, out, err)
    digests = {out.split()[1] for code, out, _ in done if code == 0}
    assert len(digests) == succeeded  # every success is its own transaction
    assert balance(network, recipient)[0] == 1000 * succeeded
    assert balance(network, sender)[0] == before - (1000 + FEE) * succeeded


def test_a_short_recipient_is_refused_and_nothing_is_sent(network: Network) -> None:
    sender = fresh(network)
    ok(network, "faucet", sender)
    out = client(network, "transfer", "--from", sender, "--to", "0x1234", "--amount", "5")
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "64" in out.stderr
    assert balance(network, sender) == (GRANT, 1)

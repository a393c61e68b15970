"""One seed reproduces a run bit for bit, in another process with another hash seed."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


def _run(args: list[str], hash_seed: str) -> dict[str, object]:
    env = dict(os.environ, PYTHONHASHSEED=hash_seed)
    done = subprocess.run(
        [sys.executable, "-m", "soma", "sim", *args, "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )
    return dict(json.loads(done.stdout))


@pytest.mark.parametrize(
    "args",
    [
        ["--validators", "4", "--rounds", "60", "--seed", "11"],
        ["--validators", "4", "--rounds", "60", "--seed", "12", "--crash", "1"],
        ["--validators", "4", "--rounds", "60", "--seed", "13", "--equivocate", "1"],
        [
            "--validators",
            "4",
            "--rounds",
            "60",
            "--seed",
            "14",
            "--latency-ms",
            "20:200",
            "--partition-at",
            "20:2000",
        ],
    ],
    ids=["plain", "crash", "equivocate", "partition"],
)
def test_same_seed_same_commits_across_processes(args: list[str]) -> None:
    first = _run(args, "1")
    second = _run(args, "2024")
    assert first["agreement"] is True
    assert first["commits"] == second["commits"]
    assert first["last_committed_round"] == second["last_committed_round"]
    assert first["virtual_seconds"] == second["virtual_seconds"]


def test_different_seeds_differ() -> None:
    a = _run(["--validators", "4", "--rounds", "30", "--seed", "1"], "0")
    b = _run(["--validators", "4", "--rounds", "30", "--seed", "2"], "0")
    assert a["commits"] != b["commits"]

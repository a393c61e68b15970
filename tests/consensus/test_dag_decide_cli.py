"""`soma dag decide`: JSON rows per leader slot, options, and clean errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from soma.cli.main import app

FULL = "DAG { Round 0 : { 4 }, " + ", ".join(f"Round {r} : {{ * }}" for r in range(1, 9)) + " }"

# B1 is voted by A2, B2, C2 but certified by A3 alone; its anchor A4 links A3 (indirect
# commit). C2 has two votes, two blames, no certificate; its anchor B5 has no certified
# link to it (indirect skip). See test_committer_rules.py.
INDIRECT = """DAG { Round 0 : { 4 }, Round 1 : { * },
    Round 2 : { A -> [*], B -> [*], C -> [*], D -> [-B1] },
    Round 3 : { A -> [*], B -> [B2, D2], C -> [C2, D2], D -> [D2, A2] },
    Round 4 : { * }, Round 5 : { * }, Round 6 : { * }, Round 7 : { * }, Round 8 : { * } }"""


class Run:
    def __init__(self, *args: str) -> None:
        result = CliRunner().invoke(app, ["dag", "decide", *args])
        self.code = result.exit_code
        self.out = result.stdout
        self.err = result.stderr
        # Anything but a clean exit (typer.Exit / SystemExit) is an uncaught exception.
        self.exception = result.exception if not isinstance(result.exception, SystemExit) else None


def _write(tmp_path: Path, text: str | bytes, name: str = "dag.txt") -> str:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return str(path)


def test_json_rows(tmp_path: Path) -> None:
    run = Run(_write(tmp_path, INDIRECT), "--schedule", "round-robin", "--json")
    assert run.code == 0 and run.exception is None
    rows = json.loads(run.out)
    assert rows == [
        {"round": 1, "authority": 1, "status": "commit", "decided": "indirect"},
        {"round": 2, "authority": 2, "status": "skip", "decided": "indirect"},
        {"round": 3, "authority": 3, "status": "commit", "decided": "direct"},
        {"round": 4, "authority": 0, "status": "commit", "decided": "direct"},
        {"round": 5, "authority": 1, "status": "commit", "decided": "direct"},
        {"round": 6, "authority": 2, "status": "commit", "decided": "direct"},
        {"round": 7, "authority": 3, "status": "undecided", "decided": None},
        {"round": 8, "authority": 0, "status": "undecided", "decided": None},
    ]
    assert run.err == ""


def test_direct_skip_row(tmp_path: Path) -> None:
    # C has no block in round 2: skipped directly.
    text = FULL.replace("Round 2 : { * }", "Round 2 : { A -> [*], B -> [*], D -> [*] }")
    run = Run(_write(tmp_path, text), "--schedule", "round-robin", "--json")
    assert run.code == 0
    assert json.loads(run.out)[1] == {
        "round": 2,
        "authority": 2,
        "status": "skip",
        "decided": "direct",
    }


def test_no_pipeline_gives_the_leader_rounds_of_waves(tmp_path: Path) -> None:
    # Leader rounds 3, 6 (round 0 is genesis, never a leader); 6's decision round is 8.
    run = Run(_write(tmp_path, FULL), "--no-pipeline", "--schedule", "round-robin", "--json")
    assert run.code == 0
    assert json.loads(run.out) == [
        {"round": 3, "authority": 3, "status": "commit", "decided": "direct"},
        {"round": 6, "authority": 2, "status": "commit", "decided": "direct"},
    ]
    run = Run(_write(tmp_path, FULL), "--no-pipeline", "--wave-length", "4", "--json")
    assert run.code == 0
    assert [r["round"] for r in json.loads(run.out)] == [4, 8]


def test_two_leaders_per_round_round_robin(tmp_path: Path) -> None:
    run = Run(
        _write(tmp_path, FULL), "--leaders-per-round", "2", "--schedule", "round-robin", "--json"
    )
    assert run.code == 0
    rows = json.loads(run.out)
    assert [(r["round"], r["authority"]) for r in rows] == [
        (r, (r + k) % 4) for r in range(1, 9) for k in range(2)
    ]
    assert [r["status"] for r in rows] == ["commit"] * 12 + ["undecided"] * 4


def test_wave_length_option(tmp_path: Path) -> None:
    run = Run(_write(tmp_path, FULL), "--wave-length", "4", "--schedule", "round-robin", "--json")
    assert run.code == 0
    assert [r["status"] for r in json.loads(run.out)] == ["commit"] * 5 + ["undecided"] * 3


def test_stake_schedule_is_the_default(tmp_path: Path) -> None:
    default = Run(_write(tmp_path, FULL), "--json")
    stake = Run(_write(tmp_path, FULL), "--schedule", "stake", "--json")
    assert default.code == stake.code == 0
    assert default.out == stake.out
    rows = json.loads(default.out)
    assert [r["round"] for r in rows] == list(range(1, 9))
    assert all(0 <= r["authority"] < 4 for r in rows)
    assert [r["status"] for r in rows] == ["commit"] * 6 + ["undecided"] * 2


def test_genesis_only_dag_has_no_slots(tmp_path: Path) -> None:
    run = Run(_write(tmp_path, "DAG { Round 0 : { 4 } }"), "--json")
    assert run.code == 0
    assert json.loads(run.out) == []


def test_human_output(tmp_path: Path) -> None:
    run = Run(_write(tmp_path, INDIRECT), "--schedule", "round-robin")
    assert run.code == 0
    lines = run.out.splitlines()
    assert len(lines) == 8
    assert lines[0].split() == ["round", "1", "B", "commit", "(indirect)"]
    assert lines[1].split() == ["round", "2", "C", "skip", "(indirect)"]
    assert lines[2].split() == ["round", "3", "D", "commit", "(direct)"]
    assert lines[7].split() == ["round", "8", "A", "undecided"]


def test_human_output_names_authorities_beyond_z_by_index(tmp_path: Path) -> None:
    # 28 authorities, round-robin: round 26's leader is [26], round 27's is [27].
    text = (
        "DAG { Round 0 : { 28 }, " + ", ".join(f"Round {r} : {{ * }}" for r in range(1, 28)) + " }"
    )
    run = Run(_write(tmp_path, text), "--schedule", "round-robin")
    assert run.code == 0
    lines = run.out.splitlines()
    assert lines[24].split()[:3] == ["round", "25", "Z"]
    assert lines[25].split() == ["round", "26", "[26]", "undecided"]
    assert lines[26].split() == ["round", "27", "[27]", "undecided"]


def test_syntax_error_exits_2_with_a_message(tmp_path: Path) -> None:
    run = Run(_write(tmp_path, "DAG { Round 0 : { 4 }, Round 1 : { A => } }"), "--json")
    assert run.code == 2 and run.exception is None
    assert run.err.strip() == "error: [DAG_TEXT] unexpected character at line 1, column 38"
    assert run.out == ""


def test_unknown_slot_exits_2_with_a_message(tmp_path: Path) -> None:
    run = Run(_write(tmp_path, "DAG {\n Round 0 : { 4 },\n Round 1 : { A -> [B3] }\n}"))
    assert run.code == 2 and run.exception is None
    assert run.err.strip() == "error: [DAG_TEXT] no block at slot B3 to link at line 3, column 20"


def test_missing_file_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "nope.txt"
    run = Run(str(path), "--json")
    assert run.code == 2 and run.exception is None
    assert run.err.strip() == f"error: cannot read {path}: No such file or directory"
    assert run.out == ""


def test_directory_exits_2(tmp_path: Path) -> None:
    run = Run(str(tmp_path))
    assert run.code == 2 and run.exception is None
    assert run.err.startswith(f"error: cannot read {tmp_path}:")


def test_non_utf8_file_exits_2(tmp_path: Path) -> None:
    run = Run(_write(tmp_path, b"\xff\xfe DAG { Round 0 : { 4 } }"))
    assert run.exception is None
    assert run.code == 2
    assert run.err.startswith("error:")


@pytest.mark.parametrize(
    "args",
    [
        ["--leaders-per-round", "9"],  # more leaders than authorities (ValueError in src)
        ["--leaders-per-round", "0"],
        ["--wave-length", "2"],
        ["--schedule", "random"],
    ],
)
def test_bad_options_exit_2(tmp_path: Path, args: list[str]) -> None:
    run = Run(_write(tmp_path, FULL), *args)
    assert run.code == 2 and run.exception is None
    assert run.out == ""


def test_too_many_leaders_message(tmp_path: Path) -> None:
    run = Run(_write(tmp_path, FULL), "--leaders-per-round", "5")
    assert run.code == 2
    assert run.err.strip() == "error: leaders_per_round must be 1..4, got 5"


def test_real_process_prints_no_traceback(tmp_path: Path) -> None:
    """The installed entry point, run as a process, on a bad file."""
    bad = _write(tmp_path, "DAG { Round 0 : { 4 }, Round 1 : { E -> [*] } }")
    good = _write(tmp_path, FULL, "full.txt")
    command = [sys.executable, "-c", "from soma.cli.main import app; app()", "dag", "decide"]
    failed = subprocess.run([*command, bad], capture_output=True, text=True, timeout=60)
    assert failed.returncode == 2
    assert "Traceback" not in failed.stderr
    assert failed.stderr.strip() == (
        "error: [DAG_TEXT] authority 4 is outside the committee at line 1, column 36"
    )
    ok = subprocess.run(
        [*command, good, "--json", "--schedule", "round-robin"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ok.returncode == 0
    assert json.loads(ok.stdout)[0] == {
        "round": 1,
        "authority": 1,
        "status": "commit",
        "decided": "direct",
    }

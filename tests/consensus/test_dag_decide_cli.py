"""`soma dag decide`: JSON rows per leader slot, options, and clean errors."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from soma.cli.main import app

FULL = "DAG { Round 0 : { 4 }, " + ", ".join(f"Round {r} : {{ * }}" for r in range(1, 9)) + " }"


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["dag", "decide", *args])
    return result.exit_code, result.stdout, result.stderr


def _write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "dag.txt"
    path.write_text(text)
    return str(path)


def test_json_rows(tmp_path: Path) -> None:
    code, out, _ = _run(_write(tmp_path, FULL), "--schedule", "round-robin", "--json")
    assert code == 0
    rows = json.loads(out)
    assert [r["round"] for r in rows] == list(range(1, 9))
    assert rows[0] == {"round": 1, "authority": 1, "status": "commit", "decided": "direct"}
    assert rows[-1] == {"round": 8, "authority": 0, "status": "undecided", "decided": None}
    assert all(set(r) >= {"round", "authority", "status", "decided"} for r in rows)


def test_no_pipeline(tmp_path: Path) -> None:
    code, out, _ = _run(_write(tmp_path, FULL), "--no-pipeline", "--json")
    assert code == 0
    assert [r["round"] for r in json.loads(out)] == [3, 6]


def test_two_leaders_per_round_round_robin(tmp_path: Path) -> None:
    code, out, _ = _run(
        _write(tmp_path, FULL), "--leaders-per-round", "2", "--schedule", "round-robin", "--json"
    )
    assert code == 0
    rows = json.loads(out)
    assert [(r["round"], r["authority"]) for r in rows] == [
        (r, (r + k) % 4) for r in range(1, 9) for k in range(2)
    ]


def test_stake_schedule_is_the_default(tmp_path: Path) -> None:
    code, out, _ = _run(_write(tmp_path, FULL), "--json")
    assert code == 0
    rows = json.loads(out)
    assert len(rows) == 8
    assert all(0 <= r["authority"] < 4 for r in rows)


def test_human_output(tmp_path: Path) -> None:
    code, out, _ = _run(_write(tmp_path, FULL), "--schedule", "round-robin")
    assert code == 0
    assert "commit (direct)" in out.splitlines()[0]


def test_bad_file_exits_2_with_a_message(tmp_path: Path) -> None:
    code, out, err = _run(_write(tmp_path, "DAG { Round 0 : { 4 }, Round 1 : { A => } }"))
    assert code == 2
    assert "line 1, column" in err
    assert "Traceback" not in out + err


def test_missing_file_exits_2(tmp_path: Path) -> None:
    code, _, err = _run(str(tmp_path / "nope.txt"))
    assert code == 2
    assert "cannot read" in err


def test_bad_option_exits_2(tmp_path: Path) -> None:
    code, _, _ = _run(_write(tmp_path, FULL), "--leaders-per-round", "9")
    assert code == 2

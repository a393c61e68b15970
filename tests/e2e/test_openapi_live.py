"""schemathesis against a live `soma start` API with all its checks: every answer is
documented (status, content type, headers, body schema), valid data is accepted,
invalid data refused, no server error. A bounded example count keeps it fast; the
project's schemathesis.toml (read from the repository root) is in force."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.local_network import Network

ROOT = Path(__file__).resolve().parents[2]


def _schemathesis() -> list[str]:
    found = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail("schemathesis is a test dependency: pip install -e '.[test]'")
    return [found]


def _run_schemathesis(tmp_path: Path, examples: int, timeout_s: float = 300) -> None:
    network = Network(tmp_path / "net")
    try:
        out = subprocess.run(
            [
                *_schemathesis(),
                "run",
                f"{network.api}/openapi.json",
                "--checks",
                "all",
                "--max-examples",
                str(examples),
                "--seed",
                "1",
                "--no-color",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
    finally:
        network.stop()
    report = out.stdout[-4000:] + out.stderr[-2000:]
    assert out.returncode == 0, report
    assert " passed" in out.stdout and "failure" not in out.stdout.split("SUMMARY")[-1], report


def test_schemathesis_finds_nothing_against_the_live_api(tmp_path: Path) -> None:
    # 15 examples an operation keeps the default suite's time (there are 25 operations
    # now, the explorer's included); the slow variant takes 300.
    _run_schemathesis(tmp_path, 15)


@pytest.mark.slow
def test_schemathesis_finds_nothing_with_a_few_hundred_examples(tmp_path: Path) -> None:
    _run_schemathesis(tmp_path, 300, timeout_s=2400)

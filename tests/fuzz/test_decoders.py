"""Every outside-facing decoder refuses bad bytes with a typed error only: findings of
earlier fuzz runs replayed, random and mutated inputs in the default suite, and the
atheris run of 1,000,000 inputs as a slow sweep."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from soma.types.error import SomaError
from tests.fuzz import decoders

ROOT = Path(__file__).resolve().parents[2]
REGRESSIONS = Path(__file__).parent / "regressions"


@pytest.mark.parametrize(
    "path", sorted(REGRESSIONS.glob("*/*")), ids=lambda p: f"{p.parent.name}/{p.name}"
)
def test_earlier_findings_are_refused_with_typed_errors(path: Path) -> None:
    """Each finding is filed under its decoder's name and replayed against it alone."""
    decoder = decoders.decoder_named(path.parent.name)
    with contextlib.suppress(SomaError):
        decoder(path.read_bytes())


def test_every_regression_is_filed_under_a_decoder() -> None:
    found = list(REGRESSIONS.iterdir())
    assert found and all(p.is_dir() for p in found), "file findings as regressions/<decoder>/"
    for directory in found:
        decoders.decoder_named(directory.name)


def test_the_seeds_cover_every_decoder_and_decode_cleanly() -> None:
    seeds = decoders.seed_inputs()
    assert {s[0] for s in seeds} == set(range(len(decoders.DECODERS)))
    for seed in seeds:
        decoders.decode(seed)


@settings(max_examples=2_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, len(decoders.DECODERS) - 1), st.binary(max_size=512))
def test_random_bytes_to_any_decoder(which: int, raw: bytes) -> None:
    decoders.decode(bytes([which]) + raw)


@settings(max_examples=2_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_valid_inputs_with_a_few_bytes_changed(data: st.DataObject) -> None:
    seeds = decoders.seed_inputs()
    seed = bytearray(data.draw(st.sampled_from(seeds)))
    for _ in range(data.draw(st.integers(1, 4))):
        if len(seed) > 1:
            at = data.draw(st.integers(1, len(seed) - 1))
            seed[at] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(1, max(1, len(seed))))
    decoders.decode(bytes(seed[:cut]))


@pytest.mark.slow
def test_a_million_atheris_inputs_raise_only_typed_errors(tmp_path: Path) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.fuzz.run_atheris",
            "-atheris_runs=1000000",
            f"-artifact_prefix={tmp_path}/",
            str(tmp_path / "corpus"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    report = out.stderr[-4000:]
    assert out.returncode == 0, report
    assert "Done 1000000" in out.stderr, report

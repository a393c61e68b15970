"""Fuzz every outside-facing decoder with atheris (coverage-guided):

    python -m tests.fuzz.run_atheris -atheris_runs=1000000 [corpus_dir]

Exits non-zero, with the crashing input written by libFuzzer (`crash-*`), if any decoder
raises anything but the project's typed errors. Copy such an input into
tests/fuzz/regressions/ so the default suite replays it for good.
"""

from __future__ import annotations

import logging
import sys

import atheris

with atheris.instrument_imports(include=["soma"]):
    from tests.fuzz import decoders


def main() -> None:
    logging.getLogger("soma").setLevel(logging.CRITICAL)
    seeds = decoders.seed_inputs()
    corpus = [a for a in sys.argv[1:] if not a.startswith("-")]
    if corpus:
        from pathlib import Path

        directory = Path(corpus[0])
        directory.mkdir(parents=True, exist_ok=True)
        for i, seed in enumerate(seeds):
            (directory / f"seed-{i:04d}").write_bytes(seed)
    atheris.Setup(sys.argv, decoders.decode)
    atheris.Fuzz()


if __name__ == "__main__":
    main()

"""Fuzz every outside-facing decoder with atheris (coverage-guided):

    python -m tests.fuzz.run_atheris -atheris_runs=1000000 [corpus_dir]

Exits non-zero, with the crashing input written by libFuzzer (`crash-*`), if any decoder
raises anything but the project's typed errors. File such an input, without its first
byte (which picks the decoder), under tests/fuzz/regressions/<decoder>/ so the default
suite replays it against that decoder for good:

    python -m tests.fuzz.run_atheris --file crash-<hash> <name>
"""

from __future__ import annotations

import logging
import sys

import atheris

with atheris.instrument_imports(include=["soma"]):
    from tests.fuzz import decoders


def file_regression(crash: str, name: str) -> None:
    """Copy a crash input into the regressions, under the decoder it reached."""
    from pathlib import Path

    data = Path(crash).read_bytes()
    directory = Path(__file__).parent / "regressions" / decoders.slug(decoders.name_of(data))
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_bytes(data[1:])
    print(directory / name)


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--file":
        file_regression(sys.argv[2], sys.argv[3])
        return
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

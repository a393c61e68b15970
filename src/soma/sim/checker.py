"""Agreement: the commit sequences of honest validators must be prefixes of one another,
chained by digest, with no block committed twice."""

from __future__ import annotations

import dataclasses

from soma.types.consensus.block import BlockRef
from soma.types.consensus.commit import Commit
from soma.types.digests import CommitDigest


@dataclasses.dataclass
class AgreementReport:
    agreement: bool
    problems: list[str]


def check_agreement(commits: dict[int, list[Commit]]) -> AgreementReport:
    problems: list[str] = []
    for node, sequence in commits.items():
        problems += _check_sequence(node, sequence)
    longest = max(commits.values(), key=len, default=[])
    for node, sequence in commits.items():
        for position, (mine, theirs) in enumerate(zip(sequence, longest, strict=False)):
            if mine.digest() != theirs.digest():
                problems.append(
                    f"node {node} diverges at commit {position + 1}: "
                    f"{mine.digest()} vs {theirs.digest()}"
                )
                break
    return AgreementReport(not problems, problems)


def _check_sequence(node: int, sequence: list[Commit]) -> list[str]:
    problems = []
    previous = CommitDigest.zero()
    seen: set[BlockRef] = set()
    for position, commit in enumerate(sequence, start=1):
        if commit.index != position:
            problems.append(f"node {node}: commit {position} has index {commit.index}")
        if commit.previous_digest != previous:
            problems.append(f"node {node}: commit {commit.index} does not chain to its predecessor")
        previous = commit.digest()
        for ref in commit.blocks:
            if ref in seen:
                problems.append(f"node {node}: block {ref} committed twice")
            seen.add(ref)
    return problems

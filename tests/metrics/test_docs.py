"""docs/metrics.md lists every soma metric a node registers, by its exposed name."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import REGISTRY

import soma.metrics.api
import soma.metrics.authority
import soma.metrics.consensus
import soma.metrics.sync  # noqa: F401  (registers them)

DOC = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"


def test_every_metric_is_documented_with_its_exposed_name() -> None:
    text = DOC.read_text()
    names = []
    for family in REGISTRY.collect():
        if not family.name.startswith("soma_"):
            continue
        exposed = f"{family.name}_total" if family.type == "counter" else family.name
        names.append(exposed)
        assert f"`{exposed}`" in text, f"{exposed} is not in docs/metrics.md"
        assert family.documentation
    assert len(names) >= 30

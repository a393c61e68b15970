"""docs/metrics.md lists every soma metric a node registers, by its exposed name."""

from __future__ import annotations

from pathlib import Path

from soma.metrics.registration import EVERY, metrics_of

DOC = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"


def test_every_metric_is_documented_with_its_exposed_name() -> None:
    text = DOC.read_text()
    names = []
    families = [f for module in EVERY for m in metrics_of(module) for f in m.describe()]
    for family in families:
        assert family.name.startswith("soma_")
        exposed = f"{family.name}_total" if family.type == "counter" else family.name
        names.append(exposed)
        assert f"`{exposed}`" in text, f"{exposed} is not in docs/metrics.md"
        assert family.documentation
    assert len(names) >= 30

"""The nodes of a local network, as an operator looks for them: each node's name, role,
metrics URL and, where it serves one, API URL.

Read straight from the configs' YAML (no keys are loaded), so `soma client nodes` and
the dashboards stay quick and work on a network that is not running.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import yaml

from soma.node.layout import FULLNODE_CONFIG, count_validators, validator_config_name

#: The path prometheus-client's server answers on (it answers on every path).
METRICS_PATH = "/metrics"


@dataclasses.dataclass(frozen=True)
class ListedNode:
    name: str
    role: str
    config: Path
    metrics_url: str | None
    api_url: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "role": self.role,
            "config": str(self.config),
            "metrics_url": self.metrics_url,
            "api_url": self.api_url,
        }


def list_nodes(root: Path) -> list[ListedNode]:
    """Every node of the network in `root`: its validators in order, then its fullnode."""
    names = [validator_config_name(i) for i in range(count_validators(root))]
    names.append(FULLNODE_CONFIG)
    out = []
    for file_name in names:
        path = root / file_name
        fields = _read(path)
        if fields is None:
            continue
        metrics = fields.get("metrics_address")
        api = fields.get("api_address")
        out.append(
            ListedNode(
                name=file_name.removesuffix(".yaml"),
                role=str(fields.get("role", "unknown")),
                config=path,
                metrics_url=f"http://{metrics}{METRICS_PATH}" if isinstance(metrics, str) else None,
                api_url=f"http://{api}" if isinstance(api, str) else None,
            )
        )
    return out


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}

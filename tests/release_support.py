"""Test support for the release controller: a copy of the project whose prod
stack runs a canary, and a real MLflow sqlite store per test (copied from one
migrated template, since creating a store runs ~3 s of schema migrations)."""

from __future__ import annotations

import shutil
from pathlib import Path

from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[1]
ENDPOINT = "credit-risk-endpoint"


def canary_project(
    target: Path, traffic: dict[str, int], mirror: dict[str, int] | None = None, metrics: dict | None = None
) -> Path:
    """Pulumi.yaml, Pulumi.prod.yaml and the files it names, copied under
    ``target``; the prod endpoint gains a ``green`` deployment (model v4) and
    the given split; ``metrics`` updates ``azml:release.metrics``. Edited with ruamel round-trip so comments stay."""
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "Pulumi.yaml", target / "Pulumi.yaml")
    shutil.copytree(ROOT / "serving", target / "serving", dirs_exist_ok=True)
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)  # the committed stack files' layout
    yaml.width = 4096
    document = yaml.load((ROOT / "Pulumi.prod.yaml").read_text())
    endpoint = document["config"]["azml:onlineEndpoints"][0]
    blue = endpoint["deployments"][0]
    # A copy of blue without the comment ruamel attaches to its last key.
    green = yaml.load("\n".join(line for line in _dump(yaml, blue).splitlines() if not line.lstrip().startswith("#")))
    green["name"] = "green"
    green["model"]["version"] = "4"
    green["code"]["version"] = "4"
    endpoint["deployments"].append(green)
    endpoint["traffic"].clear()
    endpoint["traffic"].update(traffic)
    endpoint["mirrorTraffic"].clear()
    endpoint["mirrorTraffic"].update(mirror or {})
    document["config"]["azml:release"]["metrics"].update(metrics or {})
    with (target / "Pulumi.prod.yaml").open("w") as handle:
        yaml.dump(document, handle)
    return target


def _dump(yaml: YAML, node: object) -> str:
    import io

    buffer = io.StringIO()
    yaml.dump(node, buffer)
    return buffer.getvalue()

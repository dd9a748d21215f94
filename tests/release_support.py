"""Test support for the release controller: a copy of the project whose prod
stack runs a canary, and a real MLflow sqlite store per test (copied from one
migrated template, since creating a store runs ~3 s of schema migrations)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[1]
ENDPOINT = "credit-risk-endpoint"

#: The base image blue builds on in the shipped prod stack: green shares the
#: environment version, and a registered environment version is immutable.
BLUE_BASE_IMAGE = YAML(typ="safe").load((ROOT / "Pulumi.prod.yaml").read_text())["config"]["azml:onlineEndpoints"][0][
    "deployments"
][0]["environment"]["baseImage"]

#: A second deployment of the prod endpoint, as an operator adds it.
GREEN = f"""\
        - name: green
          model: {{name: credit-risk, version: "4", registry: azml-models}}
          environment:
            name: credit-risk-scoring
            version: "1"
            baseImage: {BLUE_BASE_IMAGE}
            condaFile: serving/credit-risk/conda.yaml
          code: {{name: credit-risk-score, version: "4", scoringScript: score.py, registered: true}}
          instanceType: Standard_DS3_v2
          instanceCount: 2
"""
SPLIT_COMMENT = "      # The split the release controller moves"
BLOCK_TRAFFIC = "      traffic:\n        blue: 100\n"


def canary_stack_text(traffic: str = "      traffic:\n        blue: 90\n        green: 10\n", mirror_traffic: str = "{}") -> str:
    """The shipped prod stack, byte for byte, with a green deployment declared
    beside blue and the given traffic block (block style by default, as the file writes it)."""
    text = (ROOT / "Pulumi.prod.yaml").read_text(encoding="utf-8")
    assert SPLIT_COMMENT in text and BLOCK_TRAFFIC in text and "      mirrorTraffic: {}\n" in text
    text = text.replace(SPLIT_COMMENT, GREEN + SPLIT_COMMENT, 1)
    text = text.replace(BLOCK_TRAFFIC, traffic, 1)
    return text.replace("      mirrorTraffic: {}\n", f"      mirrorTraffic: {mirror_traffic}\n", 1)


def make_project(directory: Path, stack_text: str, mlflow_template: Path | None = None) -> Path:
    """A copy of the project's files `load_stack` needs, with ``stack_text`` as
    Pulumi.prod.yaml and, given a template, the MLflow store at the stack's
    default URI (sqlite:///mlruns.db relative to the project)."""
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "Pulumi.yaml", directory / "Pulumi.yaml")
    shutil.copytree(ROOT / "serving", directory / "serving", dirs_exist_ok=True)
    (directory / "Pulumi.prod.yaml").write_text(stack_text, encoding="utf-8")
    if mlflow_template is not None:
        shutil.copy(mlflow_template, directory / "mlruns.db")
    return directory


def canary_project(
    target: Path, traffic: dict[str, int], mirror_traffic: dict[str, int] | None = None, metrics: dict | None = None
) -> Path:
    """Pulumi.yaml, Pulumi.prod.yaml and the files it names, copied under
    ``target``; the prod endpoint gains a ``green`` deployment (model v4) and
    the given split; ``metrics`` updates ``azml:release.metrics``. Edited with ruamel round-trip so comments stay."""
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "Pulumi.yaml", target / "Pulumi.yaml")
    shutil.copytree(ROOT / "serving", target / "serving", dirs_exist_ok=True)
    yaml = round_trip_yaml()
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
    endpoint["mirrorTraffic"].update(mirror_traffic or {})
    document["config"]["azml:release"]["metrics"].update(metrics or {})
    with (target / "Pulumi.prod.yaml").open("w") as handle:
        yaml.dump(document, handle)
    return target


def round_trip_yaml() -> YAML:
    """ruamel round-trip, set to write the committed stack files' layout back as it is."""
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096
    return yaml


@contextmanager
def prod_stack_document(project: Path) -> Iterator[Any]:
    """``project``'s Pulumi.prod.yaml, loaded round-trip for the block to edit and
    written back when it ends (every comment stays)."""
    path = project / "Pulumi.prod.yaml"
    yaml = round_trip_yaml()
    document = yaml.load(path.read_text())
    yield document
    with path.open("w") as handle:
        yaml.dump(document, handle)


def _dump(yaml: YAML, node: object) -> str:
    import io

    buffer = io.StringIO()
    yaml.dump(node, buffer)
    return buffer.getvalue()

"""`azml config set`: one key changed in the stack file, nothing else —
comments, order and style kept, validated like `azml plan` reads a stack
before the file is replaced, secrets and read-only files refused."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from azml.config import load_stack
from azml.config.setting import SettingError, parse_key, set_key

from ..conftest import ROOT

AZML = Path(sys.executable).parent / "azml"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    shutil.copy(ROOT / "Pulumi.prod.yaml", tmp_path / "Pulumi.prod.yaml")
    shutil.copytree(ROOT / "serving", tmp_path / "serving")
    return tmp_path


def _azml(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(AZML), *args], cwd=project, capture_output=True, text=True, timeout=120)


def _changed_lines(before: str, after: str) -> tuple[list[str], list[str]]:
    old, new = before.splitlines(), after.splitlines()
    return [l for l in old if l not in new], [l for l in new if l not in old]


def test_a_threshold_changes_on_its_own_line_and_everything_else_stays(project: Path) -> None:
    path = project / "Pulumi.prod.yaml"
    before = path.read_text()
    result = _azml(project, "config", "set", "prod", "azml:release.gate.maxErrorRate", "0.015")
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert result.stdout == "Pulumi.prod.yaml: azml:release.gate.maxErrorRate: 0.02 -> 0.015\n"
    after = path.read_text()
    removed, added = _changed_lines(before, after)
    assert [l.strip() for l in removed] == ["maxErrorRate: 0.02"] and [l.strip() for l in added] == ["maxErrorRate: 0.015"]
    assert load_stack("prod", project)[1].release.gate.max_error_rate == 0.015
    assert not [p.name for p in project.iterdir() if p.name.endswith(".tmp")]


def test_a_version_stays_text_whatever_it_looks_like(project: Path) -> None:
    key = "azml:onlineEndpoints[0].deployments[0].model.version"
    result = set_key("prod", key, "4", project_dir=project)
    assert result.changed and isinstance(result.new, str) and result.new == "4"
    _, config = load_stack("prod", project)
    assert config.online_endpoints[0].deployments[0].model.version == "4"
    again = set_key("prod", key, "4", project_dir=project)
    assert not again.changed


def test_a_number_the_pulumi_cli_wrote_for_a_version_is_read_as_its_digits(project: Path) -> None:
    """`pulumi config set --path '...model.version' 4` stores the number 4."""
    path = project / "Pulumi.prod.yaml"
    text = path.read_text()
    marker = "version: '3'" if "version: '3'" in text else 'version: "3"'
    assert marker in text
    path.write_text(text.replace(marker, "version: 3", 1))
    _, config = load_stack("prod", project)
    versions = {d.model.version for e in config.online_endpoints for d in e.deployments if d.model.version}
    assert "3" in versions


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("azml:release.gate.maxPsi", "7", "azml:release.gate.maxPsi: Input should be less than or equal to 1"),
        ("azml:release.gate.maxPsii", "0.1", "unknown key"),
        ("azml:onlineEndpoints[9].name", "x", "index out of range"),
        ("aws:region", "x", "only azml: keys"),
        ("azml:release.gate..maxPsi", "0.1", "cannot read"),
        ("azml:release.gate.maxPsi", "", "is empty"),
        ("azml:release.gate", "0.1", "is a mapping"),
    ],
)
def test_bad_keys_and_values_are_refused_and_the_file_is_untouched(project: Path, key: str, value: str, message: str) -> None:
    path = project / "Pulumi.prod.yaml"
    before = path.read_bytes()
    result = _azml(project, "config", "set", "prod", key, value)
    assert result.returncode == 2 and result.stdout == ""
    assert all(line.startswith("error: ") for line in result.stderr.splitlines()) and message in result.stderr, result.stderr
    assert path.read_bytes() == before
    assert sorted(p.name for p in project.iterdir()) == sorted(["Pulumi.yaml", "Pulumi.prod.yaml", "serving", ".Pulumi.prod.yaml.lock"]) or \
        sorted(p.name for p in project.iterdir()) == sorted(["Pulumi.yaml", "Pulumi.prod.yaml", "serving"])


def test_a_secret_is_refused(project: Path) -> None:
    path = project / "Pulumi.prod.yaml"
    path.write_text(path.read_text().replace("config:\n", "config:\n  azml:alertWebhooks:\n    oncall:\n      secure: AAABAJx0c2VjcmV0\n", 1))
    before = path.read_bytes()
    with pytest.raises(SettingError, match="is a secret: use `pulumi config set --secret --path`"):
        set_key("prod", "azml:alertWebhooks.oncall", "https://example.invalid/hook", project_dir=project)
    assert path.read_bytes() == before


def test_a_read_only_stack_file_is_refused(project: Path) -> None:
    path = project / "Pulumi.prod.yaml"
    before = path.read_bytes()
    os.chmod(path, 0o444)
    try:
        result = _azml(project, "config", "set", "prod", "azml:release.gate.maxErrorRate", "0.015")
        assert result.returncode == 1 and "read-only" in result.stderr and result.stderr.startswith("error: ")
        assert path.read_bytes() == before and stat.S_IMODE(path.stat().st_mode) == 0o444
    finally:
        os.chmod(path, 0o644)


def test_keys_follow_pulumis_path_syntax() -> None:
    assert parse_key("azml:release.gate.maxPsi") == ("azml:release", ["gate", "maxPsi"])
    assert parse_key('azml:onlineEndpoints[0].deployments[1]["odd.name"]') == ("azml:onlineEndpoints", [0, "deployments", 1, "odd.name"])

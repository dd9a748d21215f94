"""The repository is a real Pulumi project a user can `pulumi up`, and its
bootstrap is reproducible from pinned versions."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import jsonschema
import pytest
from ruamel.yaml import YAML

from ..conftest import ROOT

yaml = YAML(typ="safe")


def test_pulumi_yaml_is_valid_for_the_pulumi_cli() -> None:
    # The Pulumi CLI's own schema for Pulumi.yaml (pulumi/pulumi, project.json).
    schema = json.loads((ROOT / "tests/data/pulumi-project.schema.json").read_text())
    project = yaml.load((ROOT / "Pulumi.yaml").read_text())
    jsonschema.validate(project, schema)
    assert project["name"] == "azml"
    assert project["runtime"]["name"] == "python"
    # Runtime options the Python language host understands.
    assert project["runtime"]["options"] == {"toolchain": "pip", "virtualenv": ".venv"}


def test_stack_files_only_hold_namespaced_config() -> None:
    for stack in ("dev", "prod"):
        document = yaml.load((ROOT / f"Pulumi.{stack}.yaml").read_text())
        assert set(document) == {"config"}
        assert all(":" in key for key in document["config"]), stack


def test_no_plaintext_secrets_in_stack_config() -> None:
    suspicious = re.compile(r"(key|secret|password|token|connection)", re.IGNORECASE)
    for stack in ("dev", "prod"):
        config = yaml.load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
        for key, value in config.items():
            if suspicious.search(key.split(":", 1)[1]) and key != "azml:keyVault":
                assert isinstance(value, dict) and set(value) == {"secure"}, key


def test_lock_pins_every_package() -> None:
    lines = [
        line.split("#")[0].strip()
        for line in (ROOT / "requirements.lock").read_text().splitlines()
        if line.split("#")[0].strip()
    ]
    assert lines
    for line in lines:
        assert re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[A-Za-z0-9_.+\-]+", line), line
    names = {line.split("==")[0].lower() for line in lines}
    assert {"pulumi", "pulumi-azure-native", "pydantic", "typer", "rich", "ruamel-yaml", "pytest"} <= names


def _make(*args: str) -> subprocess.CompletedProcess[str]:
    """make in the project, as a user runs it: not as a sub-make of `make test`, whose
    MAKEFLAGS and MAKELEVEL it would inherit (and announce the directory)."""
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    return subprocess.run(["make", *args], cwd=ROOT, capture_output=True, text=True, timeout=60, env=env)


@pytest.mark.parametrize("installer", ["uv", "pip"])
def test_make_installs_the_lock_with_the_installer_asked_for(installer: str) -> None:
    """What `make test` would run on a fresh clone (dry run): uv by default, pip on request."""
    result = _make("-n", "-B", ".venv/.installed", f"INSTALLER={installer}")
    assert result.returncode == 0, result.stderr
    assert re.search(r'"uv==[\d.]+"', result.stdout) and "-r requirements.lock" in result.stdout
    assert ('[ "uv" = uv ]' in result.stdout) == (installer == "uv")


def test_an_unknown_installer_stops_make_naming_the_choices() -> None:
    result = _make("-n", "test", "INSTALLER=pipx")
    assert result.returncode == 2 and "INSTALLER: 'pipx' is not one of: uv, pip" in result.stderr
    assert result.stdout == ""


def test_ci_runs_the_readme_test_command() -> None:
    script = (ROOT / ".ci/run").read_text()
    commands = [l.strip() for l in script.splitlines() if l.strip() and not l.strip().startswith("#")]
    assert "make test" in commands
    assert not any("|| true" in c or "set +e" in c for c in commands)


def test_main_program_stays_thin() -> None:
    # Wiring only: every Azure resource but the resource group lives in a component.
    source = (ROOT / "__main__.py").read_text()
    assert "from pulumi_azure_native import authorization, resources\n" in source
    assert source.count("resources.ResourceGroup(") == 1
    assert len(source.splitlines()) < 160


def test_the_license_file_is_the_one_pyproject_declares() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license"]
    text = (ROOT / "LICENSE").read_text()
    assert declared == "Apache-2.0"
    assert "Apache License" in text and "Version 2.0, January 2004" in text and "END OF TERMS AND CONDITIONS" in text


def test_azml_version_prints_the_package_version() -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    result = subprocess.run([str(Path(sys.executable).parent / "azml"), "--version"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout == f"azml {version}\n" and result.stderr == ""

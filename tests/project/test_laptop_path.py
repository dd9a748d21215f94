"""The path from a laptop to a policy-checked `pulumi preview`, as far as it
runs without the Pulumi CLI: the packs' own environment built by
``make policy-env`` and each pack started from it exactly as the CLI's
Python policy host starts it (``python -u -m pulumi.policy <engine> .`` in
the pack's folder, ``virtualenv`` from PulumiPolicy.yaml)."""

from __future__ import annotations

import os
import select
import subprocess
import sys
from pathlib import Path

import grpc
from google.protobuf import empty_pb2
from pulumi.runtime.proto import analyzer_pb2_grpc
from ruamel.yaml import YAML

from ..conftest import ROOT

POLICIES = ROOT / "policies"
if str(POLICIES) not in sys.path:
    sys.path.insert(0, str(POLICIES))

import azml_platform  # noqa: E402
import azml_policies  # noqa: E402


def _lock_pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[name.strip().lower()] = version.strip()
    return pins


def test_the_pack_requirements_are_pinned_to_the_project_lock() -> None:
    """``make policy-env`` installs policies/requirements.txt with
    requirements.lock as constraints: both must name the same versions, or pip
    refuses (and the packs would run on other versions than the tests)."""
    lock = _lock_pins(ROOT / "requirements.lock")
    pack = _lock_pins(POLICIES / "requirements.txt")
    assert pack and all(lock.get(name) == version for name, version in pack.items()), (pack, lock)


def _served_policies(python: Path, pack_dir: Path) -> list[str]:
    process = subprocess.Popen(
        [str(python), "-u", "-m", "pulumi.policy", "127.0.0.1:0", "."],
        cwd=pack_dir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PULUMI_PROJECT": "azml", "PULUMI_STACK": "prod", "PULUMI_DRY_RUN": "true"},
    )
    try:
        ready, _, _ = select.select([process.stdout], [], [], 60)
        port = process.stdout.readline().strip() if ready and process.stdout else ""
        assert port.isdigit(), process.stderr.read() if process.poll() is not None and process.stderr else port
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            grpc.channel_ready_future(channel).result(timeout=30)
            info = analyzer_pb2_grpc.AnalyzerStub(channel).GetAnalyzerInfo(empty_pb2.Empty())
            return [p.name for p in info.policies]
    finally:
        process.kill()
        process.communicate(timeout=10)


def test_make_policy_env_builds_the_environment_both_packs_run_in() -> None:
    built = subprocess.run(["make", "policy-env"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-2000:]
    for pack_dir in (POLICIES, POLICIES / "platform"):
        options = YAML(typ="safe").load((pack_dir / "PulumiPolicy.yaml").read_text())["runtime"]["options"]
        python = Path(os.path.normpath(pack_dir / options["virtualenv"] / "bin" / "python"))
        assert python.is_relative_to(POLICIES / "venv"), python
        expected = azml_policies.ALL_POLICIES if pack_dir == POLICIES else azml_platform.ALL_POLICIES
        assert _served_policies(python, pack_dir) == [p.name for p in expected]


def test_the_readme_leads_to_a_policy_checked_preview() -> None:
    """"Running it for real" builds the packs' environment, then previews and
    deploys with both packs and the stack's pack configs, all of which exist."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Running it for real"):]
    section = section[: section.index("\n## ", 1)]
    words = " ".join(w for w in section.split() if w != "\\")
    packs = (
        "--stack dev --policy-pack policies --policy-pack-config policies/config.dev.json "
        "--policy-pack policies/platform --policy-pack-config policies/platform/config.dev.json"
    )
    assert "make policy-env" in words
    assert words.index("make policy-env") < words.index(f"pulumi preview {packs}") < words.index(f"pulumi up {packs}")
    for stack in ("dev", "prod"):
        assert (ROOT / f"policies/config.{stack}.json").is_file() and (ROOT / f"policies/platform/config.{stack}.json").is_file()


def test_the_readme_and_the_ci_guide_use_one_backend_and_secrets_provider() -> None:
    """One bootstrap sequence: the Azure Blob backend and the Key Vault secrets
    provider the bootstrap creates, logged in the same way in both documents
    (never Pulumi Cloud, never a passphrase for the azml stacks)."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Running it for real"):]
    section = section[: section.index("\n## ", 1)]
    guide = (ROOT / "docs" / "cicd.md").read_text()
    login = 'pulumi login "azblob://pulumi-state?storage_account=$AZURE_STORAGE_ACCOUNT"'
    assert login in section and login in guide
    assert "export AZURE_KEYVAULT_AUTH_VIA_CLI=true" in section and "export AZURE_KEYVAULT_AUTH_VIA_CLI=true" in guide
    for document in (section, guide[guide.index("## 4."):guide.index("## 5.")]):
        inits = [line for line in document.splitlines() if line.startswith("pulumi stack init")]
        assert inits and all('--secrets-provider "azurekeyvault://' in line for line in inits), inits
    assert "app.pulumi.com" not in readme and "pulumi login\n" not in readme

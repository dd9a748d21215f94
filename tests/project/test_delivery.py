"""The delivery pipelines and the state bootstrap.

Linters (actionlint with shellcheck, yamllint) over .github/ and
azure-pipelines.yml; the pipelines parsed as YAML and held to the rules of
docs/cicd.md: the README's commands, one pinned Pulumi CLI (the SDK's
version), exact action versions, least-privilege permissions, OIDC only,
concurrency per stack, prod behind an approval, the release workflow's
evaluate → advance → pull request order; and the bootstrap program planned
under the same mocks as the main program.

What only GitHub, Azure DevOps and Azure can prove (the OIDC exchange, the
azblob backend, the Key Vault secrets provider, environment approvals) is
listed in docs/cicd.md.
"""

from __future__ import annotations

import contextvars
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest
from ruamel.yaml import YAML

from ..conftest import ROOT
from ..release_support import canary_stack_text, make_project

BIN = Path(sys.executable).parent
WORKFLOW_DIR = ROOT / ".github" / "workflows"
ACTION_DIR = ROOT / ".github" / "actions"
AZURE_PIPELINE = ROOT / "azure-pipelines.yml"
STACKS = ("dev", "prod")


def load_yaml(path: Path) -> Any:
    # YAML 1.2 (ruamel): `on:` stays the string "on", as GitHub reads it.
    return YAML(typ="safe").load(path.read_text(encoding="utf-8"))


def workflow_files() -> list[Path]:
    return sorted(WORKFLOW_DIR.glob("*.yml"))


@pytest.fixture(scope="module")
def workflows() -> dict[str, dict[str, Any]]:
    return {path.stem: load_yaml(path) for path in workflow_files()}


@pytest.fixture(scope="module")
def pipeline() -> dict[str, Any]:
    return load_yaml(AZURE_PIPELINE)


def all_steps(workflow: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for job_id, job in workflow["jobs"].items():
        for step in job.get("steps", []):
            yield job_id, step


def uses(step: dict[str, Any]) -> str:
    return str(step.get("uses", ""))


def action_steps() -> Iterator[dict[str, Any]]:
    for path in sorted(ACTION_DIR.glob("*/action.yml")):
        yield from load_yaml(path)["runs"]["steps"]


def matrix_values(job: dict[str, Any], key: str = "stack") -> list[str]:
    matrix = job.get("strategy", {}).get("matrix", {})
    values = matrix.get(key, [])
    return list(values) if isinstance(values, list) else list(STACKS)


def expand(text: str, stack: str) -> str:
    return re.sub(r"\$\{\{\s*matrix\.stack\s*\}\}", stack, text)


def run_lines(job: dict[str, Any], stack: str | None = None) -> list[str]:
    lines = []
    for step in job.get("steps", []):
        for line in str(step.get("run", "")).splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                lines.append(expand(line, stack) if stack else line)
    return lines


def pulumi_action_steps(workflows: dict[str, dict[str, Any]]) -> Iterator[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    for name, workflow in workflows.items():
        for job_id, job in workflow["jobs"].items():
            for step in job.get("steps", []):
                if uses(step).startswith("pulumi/actions@"):
                    yield name, job_id, job, step


# --- linters -----------------------------------------------------------------


def test_actionlint_reports_nothing_on_the_workflows() -> None:
    result = subprocess.run(
        [str(BIN / "actionlint"), "-no-color", "-shellcheck", str(BIN / "shellcheck"), *map(str, workflow_files())],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"actionlint findings:\n{result.stdout}{result.stderr}"


def test_actionlint_runs_shellcheck_on_run_scripts(tmp_path: Path) -> None:
    """The clean result above means something: shellcheck is wired in, so an
    unquoted expansion in a `run:` script is reported."""
    workflow = tmp_path / ".github" / "workflows" / "bad.yml"
    workflow.parent.mkdir(parents=True)
    workflow.write_text(
        "on: push\npermissions: {}\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: echo $HOME/x\n"
    )
    result = subprocess.run(
        [str(BIN / "actionlint"), "-no-color", "-shellcheck", str(BIN / "shellcheck"), str(workflow)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1 and "SC2086" in result.stdout, result.stdout + result.stderr


def test_yamllint_on_the_pipelines() -> None:
    result = subprocess.run(
        [str(BIN / "yamllint"), "-c", str(ROOT / ".yamllint"), "-f", "parsable", "--strict",
         str(AZURE_PIPELINE), str(ROOT / ".github")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"yamllint findings:\n{result.stdout}{result.stderr}"


def test_shellcheck_on_the_azure_pipeline_scripts(tmp_path: Path) -> None:
    """actionlint covers GitHub's `run:` scripts; the Azure pipeline's bash is
    checked here, with its $(macro) syntax replaced by a plain value."""
    scripts = []

    def collect(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("script", "inlineScript", "bash") and isinstance(value, str):
                    scripts.append(value)
                else:
                    collect(value)
        elif isinstance(node, list):
            for item in node:
                collect(item)

    collect(load_yaml(AZURE_PIPELINE))
    assert len(scripts) >= 8
    for index, script in enumerate(scripts):
        path = tmp_path / f"script{index}.sh"
        path.write_text("#!/usr/bin/env bash\n" + re.sub(r"\$\((\w+)\)", r"macro_\1", script))
        result = subprocess.run([str(BIN / "shellcheck"), str(path)], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, f"shellcheck on script {index}:\n{script}\n{result.stdout}"


# --- the README's commands ---------------------------------------------------


def readme_make_commands() -> set[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = set()
    for block in re.findall(r"```sh\n(.*?)```", readme, flags=re.S):
        for line in block.splitlines():
            line = line.split("#", 1)[0].strip()
            if line.startswith("make "):
                commands.add(line)
    commands |= set(re.findall(r"`(make plan STACK=\w+)`", readme))
    return commands


def test_readme_documents_the_commands_the_pipelines_run() -> None:
    documented = readme_make_commands()
    assert {"make test", "make plan", "make plan STACK=prod"} <= documented
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_preview_workflow_runs_the_readme_commands(workflows: dict[str, dict[str, Any]]) -> None:
    jobs = workflows["preview"]["jobs"]
    assert "make test" in run_lines(jobs["test"])
    planned = {stack: run_lines(jobs["plan"], stack) for stack in matrix_values(jobs["plan"])}
    assert set(planned) == set(STACKS)
    for stack, lines in planned.items():
        assert f"make plan STACK={stack}" in lines
    # The real preview waits for the suite and the offline plans.
    assert set(jobs["preview"]["needs"]) == {"test", "plan"}
    assert set(matrix_values(jobs["preview"])) == set(STACKS)


def test_deploy_workflow_plans_each_stack_before_pulumi_up(workflows: dict[str, dict[str, Any]]) -> None:
    for stack in STACKS:
        job = workflows["deploy"]["jobs"][stack]
        steps = job["steps"]
        plan_at = next(i for i, s in enumerate(steps) if s.get("run") == f"make plan STACK={stack}")
        up_at = next(i for i, s in enumerate(steps) if uses(s).startswith("pulumi/actions@"))
        assert plan_at < up_at
        assert steps[up_at]["with"]["command"] == "up" and steps[up_at]["with"]["stack-name"] == stack


def make_targets_called() -> set[str]:
    texts = [p.read_text() for p in workflow_files()] + [AZURE_PIPELINE.read_text()]
    texts += [p.read_text() for p in ACTION_DIR.glob("*/action.yml")]
    targets = set()
    for text in texts:
        targets |= set(re.findall(r"(?:run|script):\s*make\s+([\w./-]+)", text))
    return targets


def test_every_make_target_the_pipelines_call_exists() -> None:
    makefile = (ROOT / "Makefile").read_text()
    defined = set(re.findall(r"^([\w./$()-]+):", makefile, flags=re.M))
    defined = {t.replace("$(VENV)", ".venv").replace("$(STAMP)", ".venv/.installed") for t in defined}
    called = make_targets_called()
    assert {"test", "plan", ".venv/.installed"} <= called
    assert called <= defined | {".venv/.installed"}, called - defined


def test_azure_pipeline_has_the_same_stages_and_commands(pipeline: dict[str, Any]) -> None:
    stages = {s["stage"]: s for s in pipeline["stages"]}
    assert list(stages) == ["Test", "Preview", "Deploy_dev", "Deploy_prod"]
    assert stages["Preview"]["dependsOn"] == "Test"
    assert stages["Deploy_dev"]["dependsOn"] == "Preview"
    assert stages["Deploy_prod"]["dependsOn"] == "Deploy_dev"
    for name in ("Deploy_dev", "Deploy_prod"):
        assert "isMain" in stages[name]["condition"]

    test_scripts = [s.get("script") for s in stages["Test"]["jobs"][0]["steps"]]
    assert "make test" in test_scripts

    preview = stages["Preview"]["jobs"][0]
    matrix = preview["strategy"]["matrix"]
    assert {m["stack"] for m in matrix.values()} == set(STACKS)
    scripts = [str(s.get("script", "")) for s in preview["steps"]]
    assert "make plan STACK=$(stack)" in scripts
    inline = [s["inputs"]["inlineScript"] for s in preview["steps"] if s.get("task") == "AzureCLI@2"]
    assert len(inline) == 1 and "pulumi preview --stack \"$(stack)\" --policy-pack policies" in inline[0]
    assert '--policy-pack-config "policies/platform/config.$(stack).json"' in inline[0]
    assert "--policy-pack policies/platform" in inline[0]

    for stack in STACKS:
        job = stages[f"Deploy_{stack}"]["jobs"][0]
        assert job["environment"] == f"azml-{stack}"
        steps = job["strategy"]["runOnce"]["deploy"]["steps"]
        scripts = [str(s.get("script", "")) for s in steps]
        assert f"make plan STACK={stack}" in scripts
        up = [s["inputs"]["inlineScript"] for s in steps if s.get("task") == "AzureCLI@2"]
        assert len(up) == 1
        assert f"pulumi up --stack {stack} --policy-pack policies" in up[0]
        assert f"--policy-pack-config policies/config.{stack}.json" in up[0]
        assert f"--policy-pack-config policies/platform/config.{stack}.json" in up[0]


def test_azure_pipeline_uses_a_workload_identity_service_connection(pipeline: dict[str, Any]) -> None:
    tasks = []

    def collect(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("task") == "AzureCLI@2":
                tasks.append(node)
            for value in node.values():
                collect(value)
        elif isinstance(node, list):
            for item in node:
                collect(item)

    collect(pipeline)
    assert len(tasks) == 3
    for task in tasks:
        inputs = task["inputs"]
        assert inputs["addSpnToEnvironment"] is True
        script = inputs["inlineScript"]
        assert "ARM_USE_OIDC=true" in script and 'ARM_OIDC_TOKEN="$idToken"' in script
        assert "servicePrincipalKey" not in script
    assert pipeline["lockBehavior"] == "sequential"


def test_azure_pipeline_runs_pull_request_code_only_with_the_read_only_connection(pipeline: dict[str, Any]) -> None:
    """The Preview stage (which runs a PR's code) holds only the preview
    connection; each deploy stage runs on main only, with its own deployer."""
    stages = {s["stage"]: s for s in pipeline["stages"]}

    def connections(node: Any) -> set[str]:
        found: set[str] = set()
        if isinstance(node, dict):
            if node.get("task") == "AzureCLI@2":
                found.add(node["inputs"]["azureSubscription"])
            for value in node.values():
                found |= connections(value)
        elif isinstance(node, list):
            for item in node:
                found |= connections(item)
        return found

    assert connections(stages["Preview"]) == {"$(previewServiceConnection)"}
    assert connections(stages["Deploy_dev"]) == {"$(deployDevServiceConnection)"}
    assert connections(stages["Deploy_prod"]) == {"$(deployProdServiceConnection)"}
    variables = pipeline["variables"]
    assert len({variables[n] for n in ("previewServiceConnection", "deployDevServiceConnection", "deployProdServiceConnection")}) == 3
    for name in ("Deploy_dev", "Deploy_prod"):
        assert stages[name]["condition"] == "and(succeeded(), eq(variables.isMain, 'true'))"
    matrix = stages["Preview"]["jobs"][0]["strategy"]["matrix"]
    assert {m["stack"]: m["subscriptionId"] for m in matrix.values()} == {s: f"$({s}SubscriptionId)" for s in STACKS}
    script = next(s["inputs"]["inlineScript"] for s in stages["Preview"]["jobs"][0]["steps"] if s.get("task") == "AzureCLI@2")
    assert 'export ARM_SUBSCRIPTION_ID="$(subscriptionId)"' in script


def test_azure_pipeline_installs_pulumi_from_a_checksum_verified_release(pipeline: dict[str, Any]) -> None:
    text = AZURE_PIPELINE.read_text() + (ROOT / ".azure-pipelines" / "pulumi-cli.yml").read_text()
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    assert not re.search(r"\|\s*(ba)?sh\b", code), "no `curl | sh`"
    template = load_yaml(ROOT / ".azure-pipelines" / "pulumi-cli.yml")
    (step,) = template["steps"]
    assert "sha256sum --check --strict" in step["script"] and "pulumi-${version}-checksums.txt" in step["script"]
    uses = re.findall(r"template: (\S+)", AZURE_PIPELINE.read_text())
    assert uses == [".azure-pipelines/pulumi-cli.yml"] * 3
    assert "PublishBuildArtifacts" not in text and "PublishPipelineArtifact@1" in text
    assert text.count("make policy-env") == 3
    assert AZURE_PIPELINE.read_text().count("--refresh --yes") == 2


# --- versions ----------------------------------------------------------------


def locked_pulumi_version() -> str:
    match = re.search(r"^pulumi==([\d.]+)", (ROOT / "requirements.lock").read_text(), flags=re.M)
    assert match
    return match.group(1)


def test_one_pulumi_cli_version_everywhere_the_sdks(workflows: dict[str, dict[str, Any]], pipeline: dict[str, Any]) -> None:
    """The CLI and the Python SDK are released together under one version."""
    versions = {(name, job_id): str(step["with"]["pulumi-version"]) for name, job_id, _, step in pulumi_action_steps(workflows)}
    assert len(versions) == 3  # preview (a matrix over both stacks), deploy dev, deploy prod
    versions[("azure-pipelines", "variables")] = str(pipeline["variables"]["pulumiVersion"])
    assert set(versions.values()) == {locked_pulumi_version()}, versions
    assert locked_pulumi_version() in (ROOT / "docs" / "cicd.md").read_text()


EXACT_VERSION = re.compile(r"@(v\d+\.\d+\.\d+|[0-9a-f]{40})$")


def test_actions_are_pinned_to_exact_versions(workflows: dict[str, dict[str, Any]]) -> None:
    refs = [uses(step) for _, wf in workflows.items() for _, step in all_steps(wf)]
    refs += [uses(step) for step in action_steps()]
    external = [r for r in refs if r and not r.startswith("./")]
    assert external
    loose = [r for r in external if not EXACT_VERSION.search(r)]
    assert not loose, f"pin these to an exact tag or a commit SHA: {loose}"


# --- permissions, identities, concurrency, environments ------------------------


def test_permissions_are_least_privilege_per_job(workflows: dict[str, dict[str, Any]]) -> None:
    for name, workflow in workflows.items():
        assert workflow.get("permissions") == {}, f"{name}: top-level permissions must be {{}}"
        for job_id, job in workflow["jobs"].items():
            perms = job.get("permissions")
            assert isinstance(perms, dict) and perms, f"{name}.{job_id}: no explicit permissions"
            assert "write-all" not in json.dumps(perms)
            logs_in = any(uses(s).startswith("azure/login@") for s in job.get("steps", []))
            assert (perms.get("id-token") == "write") == logs_in, f"{name}.{job_id}: id-token only with azure/login"
            if perms.get("contents") == "write":
                assert name == "release", f"{name}.{job_id}: only the release workflow pushes (a PR branch)"
            if perms.get("pull-requests") == "write":
                assert any(
                    uses(s).startswith(("pulumi/actions@", "peter-evans/create-pull-request@")) for s in job["steps"]
                ), f"{name}.{job_id}: pull-requests: write without a PR comment or PR"
            if "security-events" in perms:
                assert any(uses(s).startswith("github/codeql-action/upload-sarif@") for s in job["steps"])


def test_azure_login_is_oidc_from_repository_variables(workflows: dict[str, dict[str, Any]]) -> None:
    logins = [(n, j, s) for n, wf in workflows.items() for j, s in all_steps(wf) if uses(s).startswith("azure/login@")]
    assert len(logins) == 4  # preview, deploy dev, deploy prod, release
    for name, job_id, step in logins:
        assert set(step["with"]) == {"client-id", "tenant-id", "subscription-id"}, f"{name}.{job_id}"
        job = workflows[name]["jobs"][job_id]
        for key, value in step["with"].items():
            if value == "${{ env.ARM_SUBSCRIPTION_ID }}":  # the job's per-stack subscription, from variables
                value = job["env"]["ARM_SUBSCRIPTION_ID"]
            assert re.fullmatch(r"\$\{\{ (vars\.AZURE_[A-Z_]+|matrix\.stack == '\w+' && vars\.AZURE_[A-Z_]+ \|\| vars\.AZURE_[A-Z_]+) \}\}", value), (
                f"{name}.{job_id} {key}: {value}"
            )
    for name, job_id, job, _ in pulumi_action_steps(workflows):
        env = job["env"]
        assert env["ARM_USE_OIDC"] == "true", f"{name}.{job_id}"
        for key in ("ARM_CLIENT_ID", "ARM_TENANT_ID", "ARM_SUBSCRIPTION_ID", "AZURE_STORAGE_ACCOUNT"):
            assert env[key].startswith("${{ vars.") or env[key].startswith("${{ matrix.stack =="), f"{name}.{job_id} {key}"


def _per_stack(expression: str, stack: str) -> str:
    """The variable ``${{ matrix.stack == 'S' && vars.A || vars.B }}`` reads for ``stack``."""
    match = re.fullmatch(r"\$\{\{ matrix\.stack == '(\w+)' && vars\.(\w+) \|\| vars\.(\w+) \}\}", expression)
    assert match, expression
    return match.group(2) if stack == match.group(1) else match.group(3)


@pytest.mark.parametrize("workflow, job_id", [("preview", "preview"), ("release", "evaluate")])
def test_each_stack_is_read_in_its_own_subscription(workflows: dict[str, dict[str, Any]], workflow: str, job_id: str) -> None:
    """A PR preview (and a release evaluation) of prod runs against prod's
    subscription, of dev against dev's: never one repository-wide subscription."""
    job = workflows[workflow]["jobs"][job_id]
    expression = job["env"]["ARM_SUBSCRIPTION_ID"]
    assert {stack: _per_stack(expression, stack) for stack in STACKS} == {
        stack: f"AZURE_SUBSCRIPTION_ID_{stack.upper()}" for stack in STACKS
    }
    documented = (ROOT / "docs" / "cicd.md").read_text()
    assert all(f"AZURE_SUBSCRIPTION_ID_{stack.upper()}" in documented for stack in STACKS)


def test_deploys_refresh_before_up(workflows: dict[str, dict[str, Any]]) -> None:
    """Out-of-band changes show in the deploy's diff instead of being overwritten."""
    ups = [step for _, _, _, step in pulumi_action_steps(workflows) if step["with"]["command"] == "up"]
    assert len(ups) == 2 and all(step["with"].get("refresh") is True for step in ups)


CLIENT_SECRET = re.compile(r"client[-_]?secret|AZURE_CREDENTIALS|servicePrincipalKey|creds:", re.I)


def test_no_pipeline_references_a_client_secret() -> None:
    files = workflow_files() + [AZURE_PIPELINE] + sorted(ACTION_DIR.glob("*/action.yml"))
    for path in files:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            assert not CLIENT_SECRET.search(code), f"{path.name}:{number}: {line.strip()}"
    # The one secret any workflow reads is the optional GitHub App key for release PRs.
    secrets = set()
    for path in workflow_files():
        secrets |= set(re.findall(r"secrets\.(\w+)", path.read_text()))
    assert secrets <= {"RELEASE_APP_PRIVATE_KEY"}, secrets


def test_policy_pack_and_its_config_files(workflows: dict[str, dict[str, Any]]) -> None:
    seen = set()
    for name, job_id, job, step in pulumi_action_steps(workflows):
        stacks = matrix_values(job) if "matrix" in str(step["with"]["stack-name"]) else [step["with"]["stack-name"]]
        # Both packs, one config per pack in the same order (pulumi/actions reads one per line).
        assert step["with"]["policyPacks"].split() == ["policies", "policies/platform"]
        for stack in stacks:
            configs = expand(str(step["with"]["policyPackConfigs"]), stack).split()
            assert configs == [f"policies/config.{stack}.json", f"policies/platform/config.{stack}.json"], f"{name}.{job_id}"
            assert all((ROOT / config).is_file() for config in configs), configs
            seen.add((name, stack))
        assert (ROOT / "policies" / "PulumiPolicy.yaml").is_file()
        assert (ROOT / "policies" / "platform" / "PulumiPolicy.yaml").is_file()
    assert seen == {("preview", "dev"), ("preview", "prod"), ("deploy", "dev"), ("deploy", "prod")}
    preview = [s for n, _, _, s in pulumi_action_steps(workflows) if n == "preview"]
    assert all(s["with"]["command"] == "preview" and s["with"]["comment-on-pr"] is True for s in preview)


def test_deploys_of_one_stack_never_overlap_and_prod_waits_for_approval(workflows: dict[str, dict[str, Any]]) -> None:
    deploy = workflows["deploy"]
    assert deploy["on"]["push"]["branches"] == ["main"]
    for stack in STACKS:
        job = deploy["jobs"][stack]
        assert job["environment"] == stack
        assert job["concurrency"] == {"group": f"pulumi-up-{stack}", "cancel-in-progress": False}
    assert deploy["jobs"]["prod"]["needs"] == "dev"
    # `pulumi up` runs only in jobs behind an environment.
    for name, job_id, job, step in pulumi_action_steps(workflows):
        if step["with"]["command"] != "preview":
            assert "environment" in job, f"{name}.{job_id}"
    preview = workflows["preview"]
    assert preview["concurrency"]["cancel-in-progress"] is True
    assert "environment" not in preview["jobs"]["preview"]  # keeps the pull_request OIDC subject
    release = workflows["release"]["jobs"]["evaluate"]
    assert release["concurrency"] == {"group": "release-${{ matrix.stack }}", "cancel-in-progress": False}


# --- the release workflow ----------------------------------------------------


def test_release_workflow_evaluates_then_advances_then_opens_a_pull_request(workflows: dict[str, dict[str, Any]]) -> None:
    release = workflows["release"]
    assert set(release["on"]) == {"schedule", "workflow_dispatch"}
    job = release["jobs"]["evaluate"]
    steps = job["steps"]
    script = "\n".join(run_lines(job))
    evaluate_at = script.index("azml release evaluate")
    advance_at = script.index("azml release advance")
    assert evaluate_at < advance_at
    assert script.count("azml release advance") == 1
    # advance only for a verdict that moves traffic, read back from the store.
    guard = script.rindex("if [", 0, advance_at)
    assert "PROMOTE" in script[guard:advance_at] and "ROLLBACK" in script[guard:advance_at]
    assert "lastVerdict.decision" in script[evaluate_at:advance_at]
    # Nothing is deployed or pushed from here.
    assert not re.search(r"\s--up\b", script)
    assert not re.search(r"(^|[;&|]\s*)pulumi\s+up\b", script, flags=re.M)
    assert not re.search(r"\bgit\s+(push|commit)\b", script)
    pr_at = next(i for i, s in enumerate(steps) if uses(s).startswith("peter-evans/create-pull-request@"))
    advance_step = next(i for i, s in enumerate(steps) if "azml release advance" in str(s.get("run", "")))
    assert advance_step < pr_at
    pr = steps[pr_at]["with"]
    assert pr["base"] == "main" and pr["branch"] == "release/${{ matrix.stack }}"
    assert pr["add-paths"] == "Pulumi.${{ matrix.stack }}.yaml"
    assert pr["body-path"] == "build/release/pr-body.md"
    assert "persist-credentials" in steps[0]["with"] and steps[0]["with"]["persist-credentials"] is False


def discovery_filter() -> str:
    text = (WORKFLOW_DIR / "release.yml").read_text()
    match = re.search(r"jq -r '(.*?)' build/release/status\.json", text, flags=re.S)
    assert match, "release.yml: the jq filter that lists endpoints with a canary"
    return match.group(1)


def stack_with_canary(directory: Path, traffic: str, mirror_traffic: str) -> Path:
    return make_project(directory, canary_stack_text(traffic, mirror_traffic))


@pytest.mark.parametrize(
    ("traffic", "mirror_traffic", "expected"),
    [
        ("      traffic:\n        blue: 100\n", "{}", []),
        ("      traffic:\n        blue: 90\n        green: 10\n", "{}", ["credit-risk-endpoint blue green"]),
        ("      traffic:\n        blue: 100\n", "{green: 10}", ["credit-risk-endpoint blue green"]),
    ],
    ids=["champion-only", "live-canary", "mirror-canary"],
)
def test_release_workflow_finds_canaries_in_the_stack_config(
    tmp_path: Path, traffic: str, mirror_traffic: str, expected: list[str]
) -> None:
    """The workflow's own jq filter over `azml release status --format json`
    (the same document, built in-process) of a prod copy."""
    jq = shutil.which("jq")
    if jq is None:
        pytest.skip("jq is not installed (GitHub's runners have it)")
    from azml.release.traffic.status import stack_status

    project = stack_with_canary(tmp_path / "project", traffic, mirror_traffic)
    status = stack_status("prod", project_dir=project, tracking_uri=f"sqlite:///{tmp_path / 'mlruns.db'}")
    result = subprocess.run(
        [jq, "-r", discovery_filter()], input=json.dumps(status.to_json()), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == expected


def test_release_workflow_leaves_bandit_endpoints_to_the_bandit(tmp_path: Path) -> None:
    jq = shutil.which("jq")
    if jq is None:
        pytest.skip("jq is not installed (GitHub's runners have it)")
    from azml.release.traffic.status import stack_status

    text = canary_stack_text("      traffic:\n        blue: 90\n        green: 10\n", "{}")
    assert "  azml:release:\n" in text
    text = text.replace("  azml:release:\n", "  azml:release:\n    bandits:\n      credit-risk-endpoint: {}\n", 1)
    project = make_project(tmp_path / "project", text)
    status = stack_status("prod", project_dir=project, tracking_uri=f"sqlite:///{tmp_path / 'mlruns.db'}")
    assert [e["strategy"] for e in status.to_json()["endpoints"]] == ["bandit"]
    result = subprocess.run(
        [jq, "-r", discovery_filter()], input=json.dumps(status.to_json()), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and result.stdout == "", (result.stdout, result.stderr)


def test_the_shipped_stacks_have_no_canary_to_evaluate() -> None:
    jq = shutil.which("jq")
    if jq is None:
        pytest.skip("jq is not installed (GitHub's runners have it)")
    from azml.release.traffic.status import stack_status

    for stack in STACKS:
        status = stack_status(stack, project_dir=ROOT, tracking_uri="sqlite:////nonexistent/never-created.db")
        result = subprocess.run(
            [jq, "-r", discovery_filter()], input=json.dumps(status.to_json()), capture_output=True, text=True
        )
        assert result.returncode == 0 and result.stdout == "", (stack, result.stdout, result.stderr)


def release_step_script(name: str) -> str:
    job = load_yaml(WORKFLOW_DIR / "release.yml")["jobs"]["evaluate"]
    return next(step["run"] for step in job["steps"] if step.get("name") == name)


def test_release_workflow_scripts_promote_a_canary_end_to_end(tmp_path: Path) -> None:
    """The workflow's own discovery, evaluate/advance and change-detection
    scripts, run by bash in a copy of the project whose prod canary has
    passing metrics (metrics source: file, a sqlite MLflow store): the verdict
    is PROMOTE, the split moves one ladder step (10 -> 25) in the stack file,
    and the PR body carries the verdict table."""
    jq = shutil.which("jq")
    if jq is None:
        pytest.skip("jq is not installed (GitHub's runners have it)")
    from tests.release_support import canary_project

    project = canary_project(
        tmp_path / "project", {"blue": 90, "green": 10},
        metrics={"source": "file", "file": "metrics.json", "trackingUri": "sqlite:///mlruns.db"},
    )
    good = {"accuracy": 0.9, "accuracy_n": 5000, "latency_p95_ms": 120, "requests": 5000, "error_rate": 0.003,
            "psi": 0.05, "psi_n": 5000, "parity_difference": 0.03, "parity_n": 5000}
    (project / "metrics.json").write_text(json.dumps({"deployments": {"blue": good, "green": good}}))
    (project / ".venv").symlink_to(BIN.parent)
    subprocess.run(["git", "init", "-q", "."], cwd=project, check=True)
    subprocess.run(["git", "add", "Pulumi.prod.yaml"], cwd=project, check=True)
    output, summary = tmp_path / "github_output", tmp_path / "summary.md"
    env = {
        "PATH": f"{Path(jq).parent}:/usr/bin:/bin", "HOME": str(tmp_path), "STACK": "prod",
        "GITHUB_OUTPUT": str(output), "GITHUB_STEP_SUMMARY": str(summary),
        "GITHUB_SERVER_URL": "https://github.example", "GITHUB_REPOSITORY": "o/r", "GITHUB_RUN_ID": "1",
    }

    def step(name: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", release_step_script(name)],
            cwd=project, env=env, capture_output=True, text=True, timeout=300,
        )
        assert result.returncode == 0, f"{name}:\n{result.stdout}\n{result.stderr}"
        return result

    step("Endpoints with a canary (from the stack config)")
    assert "count=1" in output.read_text()
    assert (project / "build/release/targets.txt").read_text() == "credit-risk-endpoint blue green\n"
    step("Evaluate, then advance what the verdict moves")
    stack = load_yaml(project / "Pulumi.prod.yaml")["config"]["azml:onlineEndpoints"][0]
    assert stack["traffic"] == {"blue": 75, "green": 25}
    body = (project / "build/release/pr-body.md").read_text()
    assert "### `credit-risk-endpoint`: PROMOTE" in body and "| metric | value | threshold | result | n |" in body
    assert body in summary.read_text()
    step("Does the stack file change?")
    assert "changed=true" in output.read_text()


@pytest.mark.parametrize("command", ["evaluate", "advance", "status"])
def test_release_commands_the_workflow_calls_exist(command: str) -> None:
    result = subprocess.run([str(BIN / "azml"), "release", command, "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    workflow = (WORKFLOW_DIR / "release.yml").read_text()
    assert f"azml release {command}" in workflow
    for option in re.findall(rf"azml release {command} [^\n]*", workflow):
        for flag in re.findall(r"(--[a-z-]+)", option):
            assert flag in result.stdout, f"azml release {command} has no {flag}"


# --- docs --------------------------------------------------------------------


def test_every_variable_and_environment_the_pipelines_need_is_documented(workflows: dict[str, dict[str, Any]]) -> None:
    doc = (ROOT / "docs" / "cicd.md").read_text(encoding="utf-8")
    names = set()
    for path in workflow_files():
        names |= set(re.findall(r"(?:vars|secrets)\.(\w+)", path.read_text()))
    for name in sorted(names):
        assert f"`{name}`" in doc, f"docs/cicd.md does not document {name}"
    environments = {job["environment"] for wf in workflows.values() for job in wf["jobs"].values() if "environment" in job}
    assert environments == {"dev", "prod", "release"}
    for environment in environments:
        assert f"`{environment}`" in doc
    for variable in (
        "previewServiceConnection", "deployDevServiceConnection", "deployProdServiceConnection",
        "devSubscriptionId", "prodSubscriptionId", "stateStorageAccount", "stateContainer", "azml-dev", "azml-prod",
    ):
        assert variable in doc
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    if re.search(r"^#+ CI/CD", readme, flags=re.M):
        assert "docs/cicd.md" in readme


# --- the bootstrap stack -----------------------------------------------------

BOOTSTRAP = ROOT / "bootstrap"
SP = "11111111-2222-4333-8444-555555555555"
GROUP = "66666666-7777-4888-9999-000000000000"


def plan_bootstrap(config: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
    """Run bootstrap/__main__.py under the offline plan's mocks and recording
    monitor (as tests plan the main program), with ``config`` as its stack config."""
    from azml.config.stackfile import StackFile
    from azml.plan import engine
    from azml.plan.mocks import AzureMocks
    from azml.plan.monitor import RecordingMonitor

    class BootstrapMocks(AzureMocks):
        def new_resource(self, args):  # type: ignore[no-untyped-def]
            if args.typ == "azure-native:keyvault:Key":  # not a type the main program uses
                inputs = dict(args.inputs)
                vault_id = (
                    f"/subscriptions/{self.client.subscription_id}/resourceGroups/{inputs['resourceGroupName']}"
                    f"/providers/Microsoft.KeyVault/vaults/{inputs['vaultName']}"
                )
                key_id = f"{vault_id}/keys/{inputs['keyName']}"
                return key_id, {**inputs, "id": key_id, "name": inputs["keyName"]}
            return super().new_resource(args)

    stack = StackFile(
        project_dir=BOOTSTRAP,
        project="azml-bootstrap",
        stack="test",
        path=BOOTSTRAP / "Pulumi.test.yaml",
        config={f"azml-bootstrap:{k}": v for k, v in config.items()},
    )
    monitor = RecordingMonitor(BootstrapMocks())
    contextvars.Context().run(engine._run_in_runtime, stack, monitor, BOOTSTRAP / "__main__.py")
    return monitor.records, monitor.stack_outputs


BASE_CONFIG = {
    "location": "westeurope",
    "storageAccountName": "stazmlstate0001",
    "keyVaultName": "kv-azml-state-0001",
    "stateUsers": [{"objectId": SP, "type": "ServicePrincipal"}, {"objectId": GROUP, "type": "Group"}],
}


@pytest.fixture(scope="module")
def bootstrap_plan() -> tuple[dict[str, list[Any]], dict[str, Any]]:
    records, outputs = plan_bootstrap(BASE_CONFIG)
    by_type: dict[str, list[Any]] = {}
    for record in records:
        by_type.setdefault(record.type, []).append(record)
    return by_type, outputs


def one(by_type: dict[str, list[Any]], token: str) -> dict[str, Any]:
    (record,) = by_type[f"azure-native:{token}"]
    return record.inputs


def test_bootstrap_state_account_is_locked_down(bootstrap_plan) -> None:  # type: ignore[no-untyped-def]
    by_type, _ = bootstrap_plan
    account = one(by_type, "storage:StorageAccount")
    assert account["accountName"] == "stazmlstate0001"
    assert account["allowBlobPublicAccess"] is False
    assert account["minimumTlsVersion"] == "TLS1_2"
    assert account["enableHttpsTrafficOnly"] is True
    assert account["allowSharedKeyAccess"] is False  # Entra ID only: no keys, no key-signed SAS
    assert account["allowCrossTenantReplication"] is False
    assert account["encryption"]["requireInfrastructureEncryption"] is True
    blob = one(by_type, "storage:BlobServiceProperties")
    assert blob["isVersioningEnabled"] is True
    assert blob["deleteRetentionPolicy"] == {"enabled": True, "days": 30}
    assert blob["containerDeleteRetentionPolicy"] == {"enabled": True, "days": 30}
    container = one(by_type, "storage:BlobContainer")
    assert container["containerName"] == "pulumi-state" and container["publicAccess"] == "None"


def test_bootstrap_vault_and_key(bootstrap_plan) -> None:  # type: ignore[no-untyped-def]
    by_type, _ = bootstrap_plan
    vault = one(by_type, "keyvault:Vault")["properties"]
    assert vault["enableRbacAuthorization"] is True
    assert vault["enablePurgeProtection"] is True and vault["enableSoftDelete"] is True
    assert vault["softDeleteRetentionInDays"] == 90
    assert vault["tenantId"] == "00000000-0000-4000-8000-0000000000aa"  # from getClientConfig
    (key,) = by_type["azure-native:keyvault:Key"]
    assert key.inputs["properties"]["kty"] == "RSA" and key.inputs["properties"]["keySize"] == 4096
    assert key.options.get("protect") is True


def test_bootstrap_grants_each_state_user_the_container_and_the_key_only(bootstrap_plan) -> None:  # type: ignore[no-untyped-def]
    by_type, _ = bootstrap_plan
    grants = {
        (r.inputs["principalId"], r.inputs["principalType"], r.inputs["roleDefinitionId"].rsplit("/", 1)[1], r.inputs["scope"])
        for r in by_type["azure-native:authorization:RoleAssignment"]
    }
    container_scope = (
        "/subscriptions/00000000-0000-4000-8000-000000000001/resourceGroups/rg-azml-pulumi-state/providers/"
        "Microsoft.Storage/storageAccounts/stazmlstate0001/blobServices/default/containers/pulumi-state"
    )
    key_scope = (
        "/subscriptions/00000000-0000-4000-8000-000000000001/resourceGroups/rg-azml-pulumi-state/providers/"
        "Microsoft.KeyVault/vaults/kv-azml-state-0001/keys/pulumi-secrets"
    )
    expected = set()
    for principal, kind in ((SP, "ServicePrincipal"), (GROUP, "Group")):
        expected.add((principal, kind, "ba92f5b4-2d11-453d-a403-e96b0029c9fe", container_scope))
        expected.add((principal, kind, "12338af0-0e69-4776-bea7-57ae8d297424", key_scope))
    assert grants == expected


def test_bootstrap_locks_and_outputs(bootstrap_plan) -> None:  # type: ignore[no-untyped-def]
    by_type, outputs = bootstrap_plan
    locks = by_type["azure-native:authorization:ManagementLockByScope"]
    assert {lock.inputs["level"] for lock in locks} == {"CanNotDelete"}
    assert {lock.inputs["scope"].rsplit("/", 2)[1] for lock in locks} == {"storageAccounts", "vaults"}
    assert "azure-native:monitor:DiagnosticSetting" not in by_type
    assert outputs["backendUrl"] == "azblob://pulumi-state?storage_account=stazmlstate0001"
    assert outputs["secretsProvider"] == "azurekeyvault://kv-azml-state-0001.vault.azure.net/keys/pulumi-secrets"
    doc = (ROOT / "docs" / "cicd.md").read_text()
    assert "azblob://" in doc and "azurekeyvault://" in doc


def test_bootstrap_with_ip_ranges_denies_other_networks_and_logs_audit() -> None:
    records, _ = plan_bootstrap(
        {**BASE_CONFIG, "allowedIpRanges": ["20.31.0.0/24"], "logAnalyticsWorkspaceId": "/subscriptions/x/law", "locks": False}
    )
    by_type: dict[str, list[Any]] = {}
    for record in records:
        by_type.setdefault(record.type, []).append(record)
    rules = one(by_type, "storage:StorageAccount")["networkRuleSet"]
    assert rules["defaultAction"] == "Deny" and rules["ipRules"] == [{"iPAddressOrRange": "20.31.0.0/24", "action": "Allow"}]
    acls = one(by_type, "keyvault:Vault")["properties"]["networkAcls"]
    assert acls["defaultAction"] == "Deny" and acls["ipRules"] == [{"value": "20.31.0.0/24"}]
    diagnostics = by_type["azure-native:monitor:DiagnosticSetting"]
    assert len(diagnostics) == 2
    assert all(d.inputs["logs"] == [{"categoryGroup": "audit", "enabled": True}] for d in diagnostics)
    assert "azure-native:authorization:ManagementLockByScope" not in by_type


def test_bootstrap_program_reports_config_errors_in_one_message() -> None:
    with pytest.raises(Exception, match="invalid bootstrap config:\n.*storageAccountName"):
        plan_bootstrap({**BASE_CONFIG, "storageAccountName": "Bad_Name"})


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"storageAccountName": "St-State"}, "storageAccountName"),
        ({"keyVaultName": "1kv"}, "keyVaultName"),
        ({"stateUsers": ["not-a-guid"]}, "stateUsers"),
        ({"allowedIpRanges": ["10.0.0.0/8"]}, "public IPv4"),
        ({"softDeleteDays": 0}, "softDeleteDays"),
    ],
)
def test_bootstrap_config_errors(override: dict[str, Any], message: str) -> None:
    sys.path.insert(0, str(BOOTSTRAP))
    try:
        import state_backend
    finally:
        sys.path.remove(str(BOOTSTRAP))
    raw = {**BASE_CONFIG, **override}
    users = tuple(
        state_backend.Principal(u) if isinstance(u, str) else state_backend.Principal(u["objectId"], u["type"])
        for u in raw["stateUsers"]
    )
    with pytest.raises(state_backend.BootstrapConfigError, match=message):
        state_backend.BootstrapConfig(
            location=raw["location"],
            storage_account_name=raw["storageAccountName"],
            key_vault_name=raw["keyVaultName"],
            state_users=users,
            allowed_ip_ranges=tuple(raw.get("allowedIpRanges", ())),
            soft_delete_days=raw.get("softDeleteDays", 30),
        )

"""Secret config stays a Pulumi secret all the way into every resource input.

The program runs as the Pulumi CLI runs it: every config value decrypted,
the keys holding a `secure:` value marked secret, the stack file on disk
saying which leaves are secret. The plan engine's monitor sees each input as
the engine would (secrets wrapped), and refuses any secret value that
arrives unwrapped — in an input, a resource name or a stack output."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from azml.config import read_stack_file
from azml.config.secrets import MIN_EMBEDDED, revealed, secret_values
from azml.plan.engine import SecretLeakError, run_plan
from azml.plan.model import Plan

from ..conftest import ROOT, fixture_project, load_stack, run_cli, write_stack

# Each place stack config flows into a resource: (config path, a decrypted value).
PLACES: dict[str, tuple[tuple[Any, ...], str]] = {
    "tag on every resource": (("azml:tags", "owner"), "owner-s3cr3t-7f2a91"),
    "deployment environment variable": (
        ("azml:onlineEndpoints", 0, "deployments", 0, "environmentVariables", "DB_CRED"), "db-cred-s3cr3t-0b1c",
    ),
    "endpoint description": (("azml:onlineEndpoints", 0, "description"), "description-s3cr3t-77aa"),
    "alert e-mail": (("azml:alerts", "emails", 0), "oncall-s3cr3t-5d@example.com"),
    "budget contact e-mail": (("azml:governance", "budget", "contactEmails", 0), "finops-s3cr3t-9e@example.com"),
    "action group short name": (("azml:alerts", "actionGroupShortName"), "azmlprds3c"),
    "cluster description": (("azml:compute", "clusters", 0, "description"), "cluster-s3cr3t-desc-31"),
    "batch endpoint description": (("azml:batchEndpoints", 0, "description"), "batch-s3cr3t-desc-4f"),
}


def _set(document: Any, path: tuple[Any, ...], value: Any) -> None:
    for part in path[:-1]:
        document = document[part]
    document[path[-1]] = value


def decrypted_stack(tmp_path: Path, places: list[str], stack: str = "prod"):  # type: ignore[no-untyped-def]
    """A copy of ``stack`` whose file holds ``secure:`` leaves at ``places``
    and the StackFile the CLI would hand the program: the same leaves decrypted."""
    document = load_stack(stack)
    for place in places:
        path, _ = PLACES[place]
        _set(document["config"], path, {"secure": "v1:Q2lwaGVydGV4dA=="})
    path = write_stack(tmp_path, stack, document)
    stack_file = read_stack_file(str(path), ROOT)
    config = copy.deepcopy(stack_file.config)
    for place in places:
        key_path, value = PLACES[place]
        _set(config, key_path, value)
    return dataclasses.replace(stack_file, config=config)


@pytest.mark.parametrize("place", sorted(PLACES))
def test_a_secret_reaches_its_inputs_marked_and_never_in_clear(tmp_path: Path, place: str) -> None:
    stack_file = decrypted_stack(tmp_path, [place])
    _, value = PLACES[place]
    plan = run_plan(stack_file)  # a leak would raise SecretLeakError
    text = json.dumps(plan.to_json())
    assert value not in text
    assert "[secret]" in text, "the input that carried it is recorded as a secret"


def test_every_place_at_once_and_the_rest_of_the_plan_unchanged(tmp_path: Path, prod_plan: Plan) -> None:
    plan = run_plan(decrypted_stack(tmp_path, sorted(PLACES)))
    assert [r.urn for r in plan.resources] == [r.urn for r in prod_plan.resources]
    assert not any(value in json.dumps(plan.to_json()) for _, value in PLACES.values())


def test_without_the_protection_the_plan_refuses_naming_key_and_resource(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import components.secrecy

    monkeypatch.setattr(components.secrecy, "keep_secrets_secret", lambda secrets: None)
    with pytest.raises(SecretLeakError) as raised:
        run_plan(decrypted_stack(tmp_path, ["deployment environment variable", "tag on every resource"]))
    problems = raised.value.problems
    assert (
        "secret config azml:onlineEndpoints[0].deployments[0].environmentVariables.DB_CRED reaches input "
        "'properties.environmentVariables.DB_CRED' of azure-native:machinelearningservices:OnlineDeployment "
        "'credit-risk-endpoint-blue' unmarked: Pulumi would store it in plain text in the state and show it in previews"
    ) in problems
    assert any(p.startswith("secret config azml:tags.owner reaches input 'tags.owner' of azure-native:resources:ResourceGroup 'rg'") for p in problems)


def test_plan_exits_1_naming_key_and_resource_when_a_program_leaks(tmp_path: Path) -> None:
    project = fixture_project(tmp_path, "leaky_program")
    document = load_stack("dev")
    document["config"]["fixture:apiKey"] = {"secure": "v1:abcdef"}
    write_stack(project, "test", document)
    out = tmp_path / "out"
    result = run_cli("plan", "test", "--project-dir", str(project), "--out", str(out), "--no-checkov")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: secret config fixture:apiKey reaches input 'tags.apiKey' of azure-native:resources:ResourceGroup "
        "'rg' unmarked: Pulumi would store it in plain text in the state and show it in previews"
    ]
    assert not out.exists(), "nothing written"


def test_a_secret_that_names_resources_is_refused_without_printing_it(tmp_path: Path) -> None:
    """Persona object ids name their role assignments (ra-reader-<id>): a name
    is part of the URN, which Pulumi never encrypts."""
    PLACES["persona principal id"] = (("azml:principals", "readers", 0), "0b5e2c9a-7d41-4c1e-9a3b-2f6d8e0c4a17")
    try:
        with pytest.raises(SecretLeakError) as raised:
            run_plan(decrypted_stack(tmp_path, ["persona principal id"]))
    finally:
        del PLACES["persona principal id"]
    assert raised.value.problems == [
        "secret config azml:principals.readers[0] names the resource azure-native:authorization:RoleAssignment "
        "'ra-reader-[secret]': a resource's name is part of its URN, which Pulumi never encrypts; a value that "
        "names resources cannot be a secret"
    ]


# --------------------------------------------------------------------------- which leaves are secret


def test_only_the_secure_leaves_of_a_key_are_secret_when_the_stack_file_says_which() -> None:
    decrypted = {"azml:onlineEndpoints": [{"name": "credit-risk", "deployments": [{"name": "blue", "environmentVariables": {"DB": "pw-123456789"}}]}]}
    written = {"azml:onlineEndpoints": [{"name": "credit-risk", "deployments": [{"name": "blue", "environmentVariables": {"DB": {"secure": "v1:x"}}}]}]}
    assert secret_values(decrypted, ["azml:onlineEndpoints"], written) == {
        "pw-123456789": "azml:onlineEndpoints[0].deployments[0].environmentVariables.DB"
    }
    # Without the stack file every string leaf of the key counts.
    assert set(secret_values(decrypted, ["azml:onlineEndpoints"], None)) == {"credit-risk", "blue", "pw-123456789"}


def test_short_values_match_only_whole_inputs() -> None:
    secrets = {"abc": "k1", "x" * MIN_EMBEDDED: "k2"}
    assert revealed("abc", secrets) == ["k1"] and revealed("abcd", secrets) == []
    assert revealed("pre-" + "x" * MIN_EMBEDDED + "-post", secrets) == ["k2"]

"""What the review of the checklist pack found, each broken on a copy of the
recorded prod plan: the message must say what is wrong, and only that.

- azml-compute-ssh-disabled: an unset setting is judged by what Azure does
  when it is left out (clusters: NotSpecified, open without a subnet;
  instances: Disabled), never "not set (Azure default: Disabled); must be
  'Disabled'".
- azml-private-dns-zone-groups: the remediation asks for what the policy
  reads (zone groups), not VNet links it never looks at.
- azml-diagnostic-settings: a setting counts as an audit log only with a
  category group Microsoft documents for the type (online endpoints have no
  `audit` group) or the type's audit categories, as its message says.
- azml-endpoint-alerts: the message names the missing signal.
"""

from __future__ import annotations

import copy
from typing import Any

from azml.plan.model import Plan

from .test_policy_pack import COMPUTE, DIAGNOSTICS, METRIC_ALERT, POLICY_INFO, Finding, evaluate, one

SCHEDULED_QUERY = "azure-native:monitor:ScheduledQueryRule"
CLUSTER = "cluster-cpu-train"


def _findings(plan: Plan, policy: str) -> list[Finding]:
    return [f for f in evaluate(plan, "prod") if f.policy == policy]


def _copy(plan: Plan) -> Plan:
    return copy.deepcopy(plan)


# --------------------------------------------------------------------------- SSH


def test_a_cluster_without_the_ssh_setting_is_open_and_says_why(prod_plan: Plan) -> None:
    plan = _copy(prod_plan)
    props = one(plan, COMPUTE, CLUSTER).inputs["properties"]["properties"]
    assert props.pop("remoteLoginPortPublicAccess") == "Disabled"
    (finding,) = _findings(plan, "azml-compute-ssh-disabled")
    assert finding.name == CLUSTER
    assert "remoteLoginPortPublicAccess is not set (Azure then uses NotSpecified" in finding.message
    assert finding.message.endswith("must be 'Disabled'")
    assert "Azure default: Disabled" not in finding.message

    props["remoteLoginPortPublicAccess"] = "Enabled"
    (finding,) = _findings(plan, "azml-compute-ssh-disabled")
    assert "is 'Enabled' (SSH open on every node); must be 'Disabled'" in finding.message


def _instance(plan: Plan, ssh: dict[str, Any] | None) -> Plan:
    """A copy of ``plan`` with a compute instance made from the cluster."""
    changed = _copy(plan)
    template = one(changed, COMPUTE, CLUSTER)
    instance = copy.deepcopy(template)
    instance.name, instance.urn = "ci-analyst", template.urn.rsplit("::", 1)[0] + "::ci-analyst"
    instance.inputs["computeName"] = "ci-analyst"
    instance.inputs["properties"] = {
        "computeType": "ComputeInstance",
        "disableLocalAuth": True,
        "properties": {"vmSize": "Standard_DS3_v2", "enableNodePublicIp": False, **({"sshSettings": ssh} if ssh is not None else {})},
    }
    changed.resources.append(instance)
    return changed


def test_an_instance_is_closed_unless_ssh_is_enabled(prod_plan: Plan) -> None:
    # Azure's default for sshSettings.sshPublicAccess is Disabled: unset passes.
    assert _findings(_instance(prod_plan, None), "azml-compute-ssh-disabled") == []
    assert _findings(_instance(prod_plan, {"sshPublicAccess": "Disabled"}), "azml-compute-ssh-disabled") == []
    (finding,) = _findings(_instance(prod_plan, {"sshPublicAccess": "Enabled"}), "azml-compute-ssh-disabled")
    assert finding.name == "ci-analyst"
    assert "sshSettings.sshPublicAccess is 'Enabled' (SSH open to the instance); must be 'Disabled' or unset" in finding.message


# --------------------------------------------------------------------------- DNS zone groups


def test_the_dns_zone_group_remediation_asks_only_for_what_is_checked() -> None:
    info = POLICY_INFO["azml-private-dns-zone-groups"]
    assert "vnet" not in info.remediation.lower() and "virtual network" not in info.remediation.lower()
    assert not any("virtualNetworkLink" in p for p in info.properties)
    assert "privateDnsZoneConfigs" in info.remediation


# --------------------------------------------------------------------------- diagnostic settings


def _logs(plan: Plan, setting: str, logs: list[dict[str, Any]]) -> Plan:
    changed = _copy(plan)
    one(changed, DIAGNOSTICS, setting).inputs["logs"] = logs
    return changed


def test_a_vault_setting_without_audit_logs_is_named(prod_plan: Plan) -> None:
    plan = _logs(prod_plan, "diag-kv", [{"category": "AzurePolicyEvaluationDetails", "enabled": True}])
    (finding,) = _findings(plan, "azml-diagnostic-settings")
    assert finding.name == "kv"
    assert "send no audit logs; enable categoryGroup 'audit' or 'allLogs' or every one of the categories AuditEvent" in finding.message
    # The vault's audit category named one by one is an audit log; a disabled group is not.
    assert _findings(_logs(prod_plan, "diag-kv", [{"category": "AuditEvent", "enabled": True}]), "azml-diagnostic-settings") == []
    assert [f.name for f in _findings(_logs(prod_plan, "diag-kv", [{"categoryGroup": "audit", "enabled": False}]), "azml-diagnostic-settings")] == ["kv"]


def test_an_online_endpoint_has_no_audit_group(prod_plan: Plan) -> None:
    """Microsoft lists allLogs but no audit group for online endpoints: a
    setting asking for 'audit' does not count, and the message says what does."""
    plan = _logs(prod_plan, "diag-credit-risk-endpoint", [{"categoryGroup": "audit", "enabled": True}])
    (finding,) = _findings(plan, "azml-diagnostic-settings")
    assert finding.name == "credit-risk-endpoint"
    assert "enable categoryGroup 'allLogs' or every one of the categories AmlOnlineEndpointTrafficLog" in finding.message
    traffic = _logs(prod_plan, "diag-credit-risk-endpoint", [{"category": "AmlOnlineEndpointTrafficLog", "enabled": True}])
    assert _findings(traffic, "azml-diagnostic-settings") == []


def test_storage_needs_every_audit_category_when_named_one_by_one(prod_plan: Plan) -> None:
    plan = _logs(prod_plan, "diag-st-blob", [{"category": "StorageRead", "enabled": True}])
    plan = _logs(plan, "diag-st-file", [{"category": "StorageRead", "enabled": True}])
    findings = _findings(plan, "azml-diagnostic-settings")
    assert len(findings) == 1 and "StorageRead, StorageWrite, StorageDelete" in findings[0].message
    every = [{"category": c, "enabled": True} for c in ("StorageRead", "StorageWrite", "StorageDelete")]
    assert _findings(_logs(prod_plan, "diag-st-blob", every), "azml-diagnostic-settings") == []


# --------------------------------------------------------------------------- endpoint alerts


def _without(plan: Plan, *removals: tuple[str, str]) -> Plan:
    changed = _copy(plan)
    gone = {one(changed, token, name).urn for token, name in removals}
    changed.resources = [r for r in changed.resources if r.urn not in gone]
    return changed


LATENCY_ALERTS = ((METRIC_ALERT, "credit-risk-endpoint-latency-p95"), (SCHEDULED_QUERY, "traffic-latency-p95"))
ERROR_ALERTS = (
    (METRIC_ALERT, "credit-risk-endpoint-server-errors"),
    (SCHEDULED_QUERY, "traffic-error-rate"),
    (SCHEDULED_QUERY, "availability-burn-rate"),
)


def test_the_alert_message_names_the_missing_signal(prod_plan: Plan) -> None:
    (finding,) = _findings(_without(prod_plan, *LATENCY_ALERTS), "azml-endpoint-alerts")
    assert "missing signal 'request latency'" in finding.message
    assert "(alerts found cover: error rate)" in finding.message and "RequestLatency_P95" in finding.message

    (finding,) = _findings(_without(prod_plan, *ERROR_ALERTS), "azml-endpoint-alerts")
    assert "missing signal 'error rate'" in finding.message and "statusCodeClass 5xx" in finding.message

    both = _findings(_without(prod_plan, *LATENCY_ALERTS, *ERROR_ALERTS), "azml-endpoint-alerts")
    assert sorted(f.message.split("missing signal ")[1].split(":")[0] for f in both) == ["'error rate'", "'request latency'"]
    assert all("(alerts found cover: neither signal)" in f.message for f in both)

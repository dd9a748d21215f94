"""Stack policies on the governance that watches the subscription: Defender
plans on Standard, and the activity-log export to Log Analytics (the sources
are cited in :mod:`~azml_policies.governance`).

Defender plan names are the ``pricingName`` of ``Microsoft.Security/pricings``
(``Containers``, ``StorageAccounts``, ``KeyVaults``, ``Arm``, ...: the names
``Get-AzSecurityPricing`` lists). Every stack with a registry needs the
Containers plan, and the in-code default (prod's) also requires
StorageAccounts, KeyVaults and Arm (PSRule Azure.Defender.Storage,
Azure.Defender.KeyVault, Azure.Defender.Arm: ``pricingTier`` Standard). Each
plan is billed for the whole subscription, so a stack requires only what
``requiredPlans`` lists: dev's pack config lists none. Whether the Containers plan runs its registry
vulnerability scan is ``azml-registry-vulnerability-assessment``'s concern
(supply_chain.py), and whether Defender for Storage runs its malware and
sensitive data scans is ``azml-governance-defender-storage-scans``'
(defender_storage.py); this policy answers for the plans being on at all.
"""

from __future__ import annotations

import re
from typing import Any

from pulumi_policy import Severity

from . import checks
from .azure import DIAGNOSTIC_SETTING
from .checks import Finding, PolicyInfo, exempt, stack_policy
from .governance import PRICING, RESOURCE_GROUP, anchor, listed
from .rbac import scope_level
from .topology import Resource, Stack
from .values import UNKNOWN, as_bool, get, known, same, show, unwrap

#: Activity-log categories components/dashboards.py exports (ACTIVITY_CATEGORIES).
ACTIVITY_CATEGORIES = ["Administrative", "Policy", "Security"]
_SUBSCRIPTION_SETTING_ID = re.compile(r"^/subscriptions/[^/]+/providers/microsoft\.insights/diagnosticsettings/", re.IGNORECASE)

# --------------------------------------------------------------------------- Defender plans


def _defender(stack: Stack, config: dict[str, Any]) -> Finding:
    pricings = [p for p in stack.of_type(PRICING) if not exempt(config, p.name, p.arm_name)]
    for pricing in pricings:
        name, tier = pricing.get("pricingName"), pricing.get("pricingTier")
        if known(tier) and not same(tier, "Standard"):
            yield pricing.urn, (
                f"{pricing.label}: pricingTier is {show(tier)} for plan {show(name)}; refused: a Free pricing switches "
                "the Defender plan off for the whole subscription. Set pricingTier 'Standard' or remove the resource"
            )
    if any(p.get("pricingName") is UNKNOWN for p in stack.of_type(PRICING)):
        return
    standard = {
        str(p.get("pricingName")).lower()
        for p in pricings
        if isinstance(p.get("pricingName"), str) and not (known(p.get("pricingTier")) and not same(p.get("pricingTier"), "Standard"))
    }
    missing_plans = [plan for plan in config["requiredPlans"] if plan.lower() not in standard]
    if missing_plans:
        yield anchor(stack), (
            f"the stack turns on no Standard Defender plan {listed(missing_plans)}; refused: requiredPlans lists them. "
            "Add a security:Pricing per plan with pricingTier 'Standard' at subscription scope "
            "(azml:governance.defenderPlans: containers, storageAccounts, keyVaults, arm)"
        )


defender_plans = stack_policy(
    PolicyInfo(
        name="azml-governance-defender-plans",
        description=(
            "The Defender plans the stack must turn on (requiredPlans: Containers, StorageAccounts, KeyVaults, "
            "Arm by default) are on Standard; no pricing in the stack sets a plan to Free."
        ),
        checklist=checks.BASELINE_GOVERNANCE,
        severity=Severity.HIGH,
        remediation=(
            "Set each required plan in azml:governance.defenderPlans (components/defender.py: one security:Pricing "
            "per plan, pricingTier Standard, at subscription scope); list a plan in requiredPlans only together with "
            "the stack config that turns it on."
        ),
        resource_types=(PRICING, RESOURCE_GROUP),
        properties=("Pricing.pricingName", "Pricing.pricingTier"),
        config={
            "requiredPlans": {
                "type": "array",
                "items": {"type": "string"},
                "default": ["Containers", "StorageAccounts", "KeyVaults", "Arm"],
                "description": "Defender plan names (pricingName) that must be on Standard.",
            },
        },
        kind="stack",
        tags=("governance",),
    ),
    _defender,
)

# --------------------------------------------------------------------------- activity-log export


def _at_subscription(setting: Resource) -> bool | None:
    """Whether ``setting`` is on the subscription (None: cannot tell yet).
    Stack policies see outputs, without ``resourceUri``: the ``id`` tells
    then, else the categories (Administrative exists only in the activity log)."""
    uri = setting.get("resourceUri")
    if isinstance(uri, str):
        return scope_level(uri) == "subscription"
    setting_id = setting.get("id")
    if isinstance(setting_id, str):
        return bool(_SUBSCRIPTION_SETTING_ID.match(setting_id))
    logs = unwrap(setting.get("logs"))
    if logs is UNKNOWN or (isinstance(logs, list) and any(get(e, "category") is UNKNOWN for e in logs)):
        return None
    categories = {str(get(e, "category")).lower() for e in logs} if isinstance(logs, list) else set()
    if "administrative" in categories:
        return True
    return None if uri is UNKNOWN else False


def _missing_categories(setting: Resource, required: list[str]) -> list[str] | None:
    logs = unwrap(setting.get("logs"))
    if logs is UNKNOWN:
        return None
    enabled = set()
    for entry in logs if isinstance(logs, list) else []:
        category, on = get(entry, "category"), as_bool(get(entry, "enabled"))
        if category is UNKNOWN or on is UNKNOWN:
            return None
        if isinstance(category, str) and on is True:
            enabled.add(category.lower())
    return [c for c in required if c.lower() not in enabled]


def _sends_to_log_analytics(setting: Resource) -> bool:
    workspace = setting.get("workspaceId")
    return workspace is UNKNOWN or (isinstance(workspace, str) and bool(workspace.strip())) or bool(
        setting.property_dependencies.get("workspaceId")
    )


def _activity_log(stack: Stack, config: dict[str, Any]) -> Finding:
    if not config["required"]:
        return
    settings = [s for s in stack.of_type(DIAGNOSTIC_SETTING) if not exempt(config, s.name, s.arm_name)]
    found = [(s, _at_subscription(s)) for s in settings]
    if any(at is None for _, at in found):
        return
    exports = [s for s, at in found if at]
    if not exports:
        yield anchor(stack), (
            "the stack exports no activity log (no monitor:DiagnosticSetting on the subscription); refused: control-"
            "plane changes (who moved traffic, deleted a lock, changed a role) would leave no trail in Log Analytics. "
            "Keep azml:dashboards.activityLog: true, or set this policy's required: false where a central export exists"
        )
        return
    if not any(_sends_to_log_analytics(s) for s in exports):
        for setting in exports:
            yield setting.urn, f"{setting.label}: workspaceId is not set; refused: the activity log must reach Log Analytics"
        return
    gaps = [(s, _missing_categories(s, list(config["requiredCategories"]))) for s in exports]
    if all(missing for _, missing in gaps):
        for setting, missing in gaps:
            yield setting.urn, (
                f"{setting.label}: logs do not enable {listed(missing or [])}; refused: the activity-log export must "
                f"send {listed(config['requiredCategories'])} (components/dashboards.py ACTIVITY_CATEGORIES)"
            )


activity_log_export = stack_policy(
    PolicyInfo(
        name="azml-governance-activity-log-export",
        description=(
            "A subscription diagnostic setting sends the activity log (Administrative, Policy, Security) to Log Analytics."
        ),
        checklist=checks.AUDIT_LOGGING,
        severity=Severity.MEDIUM,
        remediation=(
            "Keep azml:dashboards.activityLog: true (components/dashboards.py: a DiagnosticSetting with resourceUri "
            "the subscription, workspaceId the stack's Log Analytics workspace, logs Administrative, Policy and "
            "Security enabled). Where the subscription's activity log is already exported centrally, set required: "
            "false in the stack's policy config and say where."
        ),
        resource_types=(DIAGNOSTIC_SETTING, RESOURCE_GROUP),
        properties=("DiagnosticSetting.resourceUri", "DiagnosticSetting.id", "DiagnosticSetting.workspaceId", "DiagnosticSetting.logs[].category", "DiagnosticSetting.logs[].enabled"),
        config={
            "required": {"type": "boolean", "default": True, "description": "Whether the stack must export the activity log."},
            "requiredCategories": {
                "type": "array",
                "items": {"type": "string"},
                "default": list(ACTIVITY_CATEGORIES),
                "description": "Activity-log categories the export must enable.",
            },
        },
        kind="stack",
        tags=("governance", "logging"),
    ),
    _activity_log,
)

POLICIES = [defender_plans, activity_log_export]

"""Defender for Storage runs with the scans PSRule for Azure expects: the
subscription plan (``security:Pricing`` StorageAccounts) on the
``DefenderForStorageV2`` sub-plan with on-upload malware scanning and
sensitive data threat detection on (PSRule Azure.Defender.Storage.MalwareScan,
Azure.Defender.Storage.DataScan), and no per-account setting
(``security:DefenderForStorage``, ``Microsoft.Security/defenderForStorageSettings``)
that turns Defender or either scan off for one account (Azure.Storage.DefenderCloud,
Azure.Storage.Defender.MalwareScan, Azure.Storage.Defender.DataScan).

What each relies on (Microsoft):

- "Malware scanning is only available in the ``DefenderForStorageV2`` sub plan"
  and sensitive data threat detection likewise (PSRule docs/en/rules/
  Azure.Defender.Storage.MalwareScan.md and .DataScan.md); the extensions are
  ``OnUploadMalwareScanning`` and ``SensitiveDataDiscovery`` with ``isEnabled``
  'True' (https://learn.microsoft.com/azure/defender-for-cloud/defender-for-storage-infrastructure-as-code-enablement).
- A per-account setting with ``overrideSubscriptionLevelSettings`` true "will
  be honored and a dedicated plan will be configured for the storage account";
  with no plan at subscription level it is honored too (PSRule
  Azure.Storage.DefenderCloud.md, NOTES). So a setting that turns a feature
  off can take that account out of the subscription plan's protection: the
  settings the stack declares must keep all three on.

Whether the plan exists at all is ``azml-governance-defender-plans``'
concern (``requiredPlans``); this policy judges the plan and settings the
stack declares. Unknown values (preview) count as compliant.
"""

from __future__ import annotations

from typing import Any, Iterator

from pulumi_policy import Severity

from . import checks
from .checks import PolicyInfo, resource_policy
from .topology import Resource
from .values import MISSING, UNKNOWN, as_bool, get, same, show, unwrap

PRICING = "azure-native:security:Pricing"
STORAGE_SETTING = "azure-native:security:DefenderForStorage"
#: The sub-plan that carries malware scanning and sensitive data threat detection.
STORAGE_SUB_PLAN = "DefenderForStorageV2"
STORAGE_SCANS = ["OnUploadMalwareScanning", "SensitiveDataDiscovery"]
#: defenderForStorageSettings property paths of each scan, and of Defender itself.
_SETTING_SWITCHES = {
    "isEnabled": "properties.isEnabled",
    "OnUploadMalwareScanning": "properties.malwareScanning.onUpload.isEnabled",
    "SensitiveDataDiscovery": "properties.sensitiveDataDiscovery.isEnabled",
}


def _extension_states(pricing: Resource) -> dict[str, Any] | None:
    """isEnabled of each named extension (lower-case names); None: unknown."""
    extensions = unwrap(pricing.get("extensions"))
    if extensions is UNKNOWN:
        return None
    states: dict[str, Any] = {}
    for entry in extensions if isinstance(extensions, list) else []:
        name = get(entry, "name")
        if name is UNKNOWN:
            return None
        if isinstance(name, str):
            states[name.lower()] = as_bool(get(entry, "isEnabled"))
    return states


def _pricing(pricing: Resource, config: dict[str, Any]) -> Iterator[str]:
    if not same(pricing.get("pricingName"), "StorageAccounts") or not same(pricing.get("pricingTier"), "Standard"):
        return  # other plans, or a Free pricing (refused by azml-governance-defender-plans)
    sub_plan = pricing.get("subPlan")
    if sub_plan is not UNKNOWN and not same(sub_plan, config["requiredSubPlan"]):
        yield (
            f"{pricing.label} (plan StorageAccounts): subPlan is {show(sub_plan)}; refused: malware scanning and sensitive data threat "
            f"detection exist only on '{config['requiredSubPlan']}'. Set subPlan '{config['requiredSubPlan']}' "
            "(azml:governance.defenderPlans.storageAccounts)"
        )
    states = _extension_states(pricing)
    if states is None:
        return
    for scan in config["requiredScans"]:
        state = states.get(scan.lower(), MISSING)
        if state is UNKNOWN or state is True:
            continue
        what = "is not named (left out, the PUT switches it off)" if state is MISSING else f"has isEnabled {show(state)}"
        yield (
            f"{pricing.label} (plan StorageAccounts): extension {scan} {what}; refused: Defender for Storage must run it on every account "
            f"of the subscription. Name {scan} with isEnabled 'True' (azml:governance.defenderPlans.storageAccounts)"
        )


def _setting(setting: Resource, config: dict[str, Any]) -> Iterator[str]:
    for switch in ("isEnabled", *config["requiredScans"]):
        path = _SETTING_SWITCHES.get(switch)
        if path is None:
            continue
        state = as_bool(setting.get(path))
        if state is False:
            yield (
                f"{setting.label}: {path} is false; refused: a per-account Defender for Storage setting that turns "
                f"{'Defender' if switch == 'isEnabled' else switch} off takes the account out of the subscription "
                "plan's protection (with overrideSubscriptionLevelSettings, or wherever no subscription plan exists). "
                "Keep isEnabled, malwareScanning.onUpload.isEnabled and sensitiveDataDiscovery.isEnabled true, or "
                "remove the setting and let the subscription plan apply"
            )


def _storage_scans(resource: Resource, config: dict[str, Any]) -> Iterator[str]:
    # (exemptResources is applied by resource_policy before the check runs.)
    if resource.type == PRICING:
        yield from _pricing(resource, config)
    else:
        yield from _setting(resource, config)


storage_scans = resource_policy(
    PolicyInfo(
        name="azml-governance-defender-storage-scans",
        description=(
            "Defender for Storage runs on DefenderForStorageV2 with on-upload malware scanning and sensitive data "
            "threat detection on, and no per-account setting turns Defender or either scan off."
        ),
        checklist=checks.BASELINE_GOVERNANCE,
        severity=Severity.HIGH,
        remediation=(
            "Set azml:governance.defenderPlans.storageAccounts (components/defender.py: security:Pricing "
            "'StorageAccounts', subPlan 'DefenderForStorageV2', extensions OnUploadMalwareScanning and "
            "SensitiveDataDiscovery with isEnabled 'True'; malwareScanningCapGBPerMonth bounds the per-GB cost). "
            "Do not declare security:DefenderForStorage settings that switch a scan off; an account that must not "
            "be scanned is accepted in exemptResources with the reason."
        ),
        resource_types=(PRICING, STORAGE_SETTING),
        properties=(
            "Pricing.pricingName", "Pricing.pricingTier", "Pricing.subPlan", "Pricing.extensions[].name",
            "Pricing.extensions[].isEnabled", *(f"DefenderForStorage.{path}" for path in _SETTING_SWITCHES.values()),
        ),
        config={
            "requiredSubPlan": {
                "type": "string",
                "default": STORAGE_SUB_PLAN,
                "description": "The sub-plan a Standard StorageAccounts pricing must select.",
            },
            "requiredScans": {
                "type": "array",
                "items": {"type": "string", "enum": list(STORAGE_SCANS)},
                "default": list(STORAGE_SCANS),
                "description": "Defender for Storage extensions that must be on (plan and per-account settings).",
            },
        },
        tags=("governance", "storage"),
    ),
    _storage_scans,
)

POLICIES = [storage_scans]

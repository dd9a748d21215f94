"""Defender for Cloud pricings: a Standard plan names every extension it
offers with the state intended, so that the PUT switches none off by
leaving it out.

The REST spec says of ``extensions`` only "Optional. List of extensions
offered under a plan" (https://learn.microsoft.com/rest/api/defenderforcloud/pricings/update);
Microsoft's infrastructure-as-code guide for Defender for Storage shows that
leaving one out is how a feature is turned off: "If you want to turn off the
on-upload malware scanning or sensitive data threat detection features, you
can remove the corresponding extension block"
(https://learn.microsoft.com/azure/defender-for-cloud/defender-for-storage-infrastructure-as-code-enablement).

Extensions per plan (the ``name`` values of the Extension object in the
Microsoft.Security pricings REST spec): Containers offers
ContainerRegistriesVulnerabilityAssessments, AgentlessDiscoveryForKubernetes
and ContainerSensor; StorageAccounts (sub-plan DefenderForStorageV2) offers
OnUploadMalwareScanning and SensitiveDataDiscovery. KeyVaults and Arm offer
none, so there is nothing to name for them.
"""

from __future__ import annotations

from typing import Any, Iterator

from pulumi_policy import Severity

from azml_policies.topology import Resource
from azml_policies.values import UNKNOWN, get, same, unwrap

from .rules import Rule, resource_rule

PRICING = "azure-native:security:Pricing"
DEFENDER_CONTAINERS_EXTENSIONS = ["ContainerRegistriesVulnerabilityAssessments", "AgentlessDiscoveryForKubernetes", "ContainerSensor"]
DEFENDER_STORAGE_EXTENSIONS = ["OnUploadMalwareScanning", "SensitiveDataDiscovery"]
#: Every extension of each plan, by pricingName (the rule's default config).
PLAN_EXTENSIONS = {"Containers": DEFENDER_CONTAINERS_EXTENSIONS, "StorageAccounts": DEFENDER_STORAGE_EXTENSIONS}


def _plan_extensions(config: dict[str, Any], name: Any) -> list[str]:
    if not isinstance(name, str):
        return []
    by_plan = {str(plan).lower(): extensions for plan, extensions in config["requiredExtensions"].items()}
    extensions = by_plan.get(name.lower())
    return [str(e) for e in extensions] if isinstance(extensions, list) else []


def _defender(pricing: Resource, config: dict[str, Any]) -> Iterator[str]:
    name = pricing.get("pricingName")
    required = _plan_extensions(config, name)
    if not required or not same(pricing.get("pricingTier"), "Standard"):
        return
    extensions = unwrap(pricing.get("extensions"))
    if extensions is UNKNOWN:
        return
    entries = extensions if isinstance(extensions, list) else []
    if any(get(e, "name") is UNKNOWN for e in entries):
        return
    named = {str(get(e, "name")).lower() for e in entries}
    missing = [extension for extension in required if extension.lower() not in named]
    if missing:
        yield (
            f"{pricing.label}: extensions of plan {name} name {sorted(named) or 'none'} and leave out "
            f"{', '.join(missing)}; the PUT replaces the plan's configuration and an extension left out is "
            "switched off: name every extension with isEnabled 'True' or 'False'"
        )


defender_extensions = resource_rule(
    Rule(
        name="azure-defender-pricing-extensions-explicit",
        description=(
            "A Standard Defender pricing (Containers, StorageAccounts) names every extension of its plan with its "
            "intended state, so the PUT switches none off by omission."
        ),
        severity=Severity.MEDIUM,
        remediation=(
            "List every extension of the plan in extensions, each with isEnabled 'True' or 'False': Containers: "
            "ContainerRegistriesVulnerabilityAssessments, AgentlessDiscoveryForKubernetes, ContainerSensor; "
            "StorageAccounts: OnUploadMalwareScanning, SensitiveDataDiscovery (components/defender.py does)."
        ),
        source="https://learn.microsoft.com/rest/api/defenderforcloud/pricings/update",
        quote="extensions: Optional. List of extensions offered under a plan.",
        resource_types=(PRICING,),
        properties=("pricingName", "pricingTier", "extensions"),
        config={
            "requiredExtensions": {
                "type": "object",
                "additionalProperties": {"type": "array", "items": {"type": "string"}},
                "default": {plan: list(extensions) for plan, extensions in PLAN_EXTENSIONS.items()},
                "description": "Extensions every Standard pricing must name, by plan (pricingName).",
            }
        },
        area="governance",
    ),
    _defender,
)

POLICIES = [defender_extensions]

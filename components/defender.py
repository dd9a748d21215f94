"""Microsoft Defender for Cloud plans at subscription scope: one
``security:Pricing`` per plan in ``azml:governance.defenderPlans``, on the
Standard tier, with its sub-plan and every extension named.

Why every extension is named with its state: the PUT replaces the plan's
whole configuration, and the REST spec says of ``extensions`` only
"Optional. List of extensions offered under a plan"
(https://learn.microsoft.com/rest/api/defenderforcloud/pricings/update).
Microsoft's infrastructure-as-code guide for Defender for Storage shows what
an omission does: "If you want to turn off the on-upload malware scanning or
sensitive data threat detection features, you can remove the corresponding
extension block"
(https://learn.microsoft.com/azure/defender-for-cloud/defender-for-storage-infrastructure-as-code-enablement).
So no extension is left to that behaviour; the platform rule
``azure-defender-pricing-extensions-explicit`` refuses a pricing that does.

A plan has no narrower scope than the subscription for these resource
kinds: turning one on covers every registry, storage account or vault in the
subscription, and the subscription's control plane (Arm), including
resources other stacks own.
"""

from __future__ import annotations

import pulumi
from pulumi_azure_native import security

from azml.config.platform.defender import DefenderPlans

#: Resource names of the pricings (the Containers one predates the others:
#: renaming it would replace the live plan).
RESOURCE_NAMES = {
    "Containers": "defender-containers",
    "StorageAccounts": "defender-storage-accounts",
    "KeyVaults": "defender-key-vaults",
    "Arm": "defender-arm",
}


def _extension(name: str, enabled: bool, **properties: str) -> security.ExtensionArgs:
    return security.ExtensionArgs(
        name=name,
        # isEnabled is a string enum in the REST API ("True" / "False").
        is_enabled="True" if enabled else "False",
        additional_extension_properties=properties or None,
    )


def defender_pricings(
    plans: DefenderPlans, subscription_scope: pulumi.Input[str], opts: pulumi.ResourceOptions
) -> dict[str, security.Pricing]:
    """One Standard pricing per plan set in ``plans``, keyed by ``pricingName``."""
    pricings: dict[str, security.Pricing] = {}

    def pricing(name: str, *, sub_plan: str | None = None, extensions: list[security.ExtensionArgs] | None = None) -> None:
        pricings[name] = security.Pricing(
            RESOURCE_NAMES[name],
            scope_id=subscription_scope,
            pricing_name=name,
            pricing_tier="Standard",
            sub_plan=sub_plan,
            extensions=extensions,
            opts=opts,
        )

    if plans.containers is not None:
        # Registry images scanned on push and recent pull; the Kubernetes
        # extensions concern AKS, which azml does not create, but are still
        # named with their configured state.
        pricing("Containers", extensions=[_extension(n, on) for n, on in plans.containers.extensions.items()])
    if plans.storage_accounts is not None:
        storage = plans.storage_accounts
        # Malware scanning and sensitive data threat detection exist only on
        # DefenderForStorageV2; the cap is GB per storage account and month
        # ("-1" for none), sent as text as Microsoft's templates do.
        pricing(
            "StorageAccounts",
            sub_plan=storage.sub_plan,
            extensions=[
                _extension(
                    "OnUploadMalwareScanning",
                    storage.malware_scanning,
                    CapGBPerMonthPerStorageAccount=str(storage.malware_scanning_cap_gb_per_month),
                ),
                _extension("SensitiveDataDiscovery", storage.sensitive_data_discovery),
            ],
        )
    if plans.key_vaults is not None:
        # No extensions exist for this plan; the sub-plan is the one the
        # built-in "Configure Microsoft Defender for Key Vault plan" policy sets.
        pricing("KeyVaults", sub_plan=plans.key_vaults.sub_plan)
    if plans.arm is not None:
        # No extensions; the sub-plan is the one the built-in "Configure Azure
        # Defender for Resource Manager to be enabled" policy sets.
        pricing("Arm", sub_plan=plans.arm.sub_plan)
    return pricings

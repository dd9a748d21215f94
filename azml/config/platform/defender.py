"""Stack config for the Microsoft Defender for Cloud plans the stack turns on:
``azml:governance.defenderPlans``.

Each plan is a ``Microsoft.Security/pricings`` resource at subscription scope
(``pricingName`` Containers, StorageAccounts, KeyVaults, Arm), billed for the
whole subscription, so each is opt-in: a plan left out here is not managed by
the stack. What the fields mean (Microsoft):

- ``subPlan``: "The sub-plan selected for a Standard pricing configuration,
  when more than one sub-plan is available" (Microsoft.Security pricings
  2024-01-01 REST spec, specification/security/resource-manager/
  Microsoft.Security/stable/2024-01-01/pricings.json). Defender for Storage's
  malware scanning and sensitive data threat detection exist only in
  ``DefenderForStorageV2`` (PSRule Azure.Defender.Storage.MalwareScan and
  .DataScan); the built-in policies that configure Key Vault and Resource
  Manager plans allow only ``PerKeyVault`` and ``PerSubscription``
  (Azure/azure-policy ASC_Azure_Defender_KeyVault_DINE.json, 1f725891-...,
  and ASC_Azure_Defender_ARM_DINE.json, b7021b2b-...).
- ``extensions``: Containers names ContainerRegistriesVulnerabilityAssessments,
  AgentlessDiscoveryForKubernetes and ContainerSensor; StorageAccounts names
  OnUploadMalwareScanning (with ``CapGBPerMonthPerStorageAccount``: "If you
  want to permit unlimited scanning, assign the value -1. The default limit is
  set at 5,000 GB") and SensitiveDataDiscovery
  (https://learn.microsoft.com/azure/defender-for-cloud/defender-for-storage-infrastructure-as-code-enablement).
  Key Vault and Resource Manager plans have no extensions.

The older keys ``defenderForContainers`` and ``defenderExtensions`` still
work: they are read as ``defenderPlans.containers`` (see
:func:`migrate_legacy_keys`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from ..base import Model

#: The extensions of the Defender for Containers plan (Microsoft.Security/pricings/Containers).
DEFENDER_CONTAINERS_EXTENSIONS = (
    "ContainerRegistriesVulnerabilityAssessments",
    "AgentlessDiscoveryForKubernetes",
    "ContainerSensor",
)
DefenderExtension = Literal[
    "ContainerRegistriesVulnerabilityAssessments",
    "AgentlessDiscoveryForKubernetes",
    "ContainerSensor",
]
#: The extensions of the Defender for Storage plan on its DefenderForStorageV2 sub-plan.
DEFENDER_STORAGE_EXTENSIONS = ("OnUploadMalwareScanning", "SensitiveDataDiscovery")
#: The monthly malware-scanning cap Azure applies when none is given (GB per storage account).
DEFAULT_MALWARE_SCAN_CAP_GB = 5000


class ContainersPlan(Model):
    """Defender for Containers: registry images scanned on push and recent pull."""

    extensions: dict[DefenderExtension, bool] = Field(
        default_factory=lambda: dict.fromkeys(DEFENDER_CONTAINERS_EXTENSIONS, True),
        description="State of every Containers extension; each is named in the PUT (unlisted ones: on).",
    )

    @field_validator("extensions")
    @classmethod
    def _every_extension(cls, extensions: dict[str, bool]) -> dict[str, bool]:
        # A partial map would leave an extension out of the PUT.
        return {name: extensions.get(name, True) for name in DEFENDER_CONTAINERS_EXTENSIONS}


class StorageAccountsPlan(Model):
    """Defender for Storage on every storage account of the subscription:
    activity monitoring, on-upload malware scanning (billed per GB scanned,
    capped per account and month) and sensitive data threat detection."""

    sub_plan: Literal["DefenderForStorageV2"] = Field(
        default="DefenderForStorageV2",
        description="The only sub-plan with malware scanning and sensitive data threat detection.",
    )
    malware_scanning: bool = Field(default=True, description="OnUploadMalwareScanning extension.")
    malware_scanning_cap_gb_per_month: int = Field(
        default=DEFAULT_MALWARE_SCAN_CAP_GB,
        alias="malwareScanningCapGBPerMonth",
        description="CapGBPerMonthPerStorageAccount: GB scanned per account and month; -1 for no cap.",
    )
    sensitive_data_discovery: bool = Field(default=True, description="SensitiveDataDiscovery extension.")

    @field_validator("malware_scanning_cap_gb_per_month")
    @classmethod
    def _cap(cls, value: int) -> int:
        # 0 would keep the extension on while scanning nothing.
        if value != -1 and value < 1:
            raise ValueError("must be a positive number of GB, or -1 for no cap")
        return value

    @property
    def extensions(self) -> dict[str, bool]:
        return {"OnUploadMalwareScanning": self.malware_scanning, "SensitiveDataDiscovery": self.sensitive_data_discovery}


class KeyVaultsPlan(Model):
    """Defender for Key Vault: alerts on unusual access to the vaults."""

    sub_plan: Literal["PerKeyVault"] = Field(default="PerKeyVault", description="Billed per vault.")


class ArmPlan(Model):
    """Defender for Resource Manager: alerts on suspicious control-plane operations."""

    sub_plan: Literal["PerSubscription"] = Field(default="PerSubscription", description="Billed per subscription.")


class DefenderPlans(Model):
    """The Defender plans the stack turns on (Standard), each at subscription
    scope. A plan left unset is not managed by this stack."""

    containers: ContainersPlan | None = Field(default=None, description="Defender for Containers (pricingName Containers).")
    storage_accounts: StorageAccountsPlan | None = Field(
        default=None, description="Defender for Storage (pricingName StorageAccounts) with its scans."
    )
    key_vaults: KeyVaultsPlan | None = Field(default=None, description="Defender for Key Vault (pricingName KeyVaults).")
    arm: ArmPlan | None = Field(default=None, description="Defender for Resource Manager (pricingName Arm).")

    @property
    def enabled(self) -> list[str]:
        """The ``pricingName`` of every plan the stack turns on."""
        names = {"containers": "Containers", "storage_accounts": "StorageAccounts", "key_vaults": "KeyVaults", "arm": "Arm"}
        return [pricing for field, pricing in names.items() if getattr(self, field) is not None]


def migrate_legacy_keys(data: Any) -> Any:
    """``defenderForContainers`` / ``defenderExtensions`` (the keys before
    ``defenderPlans``) read as ``defenderPlans.containers``; both forms at
    once, or extensions without the plan, are refused rather than guessed."""
    if not isinstance(data, dict) or not {"defenderForContainers", "defenderExtensions"} & data.keys():
        return data
    data = dict(data)
    enabled = data.pop("defenderForContainers", False)
    extensions = data.pop("defenderExtensions", None)
    if not isinstance(enabled, bool):
        raise ValueError("defenderForContainers must be true or false")
    if not enabled:
        if extensions is not None:
            raise ValueError("defenderExtensions applies only with defenderForContainers: true (or use defenderPlans.containers.extensions)")
        return data
    plans = data.get("defenderPlans") or {}
    if not isinstance(plans, dict) or "containers" in plans:
        raise ValueError("give defenderPlans.containers or the older defenderForContainers, not both")
    data["defenderPlans"] = {**plans, "containers": {} if extensions is None else {"extensions": extensions}}
    return data

"""Typed stack configuration: everything under the ``azml:`` namespace.

Each top-level field of :class:`StackConfig` is one ``azml:<key>`` entry of
``Pulumi.<stack>.yaml``; nested keys are camelCase, as Pulumi users write them.
Validation is strict about shape (unknown keys are refused, so a typo never
silently falls back to a default) and about the Azure rules we can check
before anything is created.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, StringConstraints, field_validator, model_validator

from .base import Model
from .platform.dashboards import DashboardsConfig
from .platform.governance import GovernanceConfig
from .platform.observability import AlertsConfig, ModelMonitoringConfig, Webhooks
from .platform.regions import AZURE_REGIONS
from .platform.serving import BatchEndpointConfig, OnlineEndpointConfig
from .platform.workspace import PACKAGE_REPOSITORY_HOSTS, FirewallSku, PackageRepository, fqdn_problem
from .releases.data_validation import ModelValidation
from .releases.release import ReleaseConfig
from .releases.retraining import RetrainingConfig


Environment = Literal["dev", "test", "staging", "prod"]

# Azure AD object ids are GUIDs; a display name or UPN here is a common mistake.
ObjectId = Annotated[
    str,
    StringConstraints(
        pattern=r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    ),
]

Cidr = Annotated[str, StringConstraints(strip_whitespace=True)]


def _parse_cidr(value: str) -> ipaddress.IPv4Network:
    try:
        return ipaddress.IPv4Network(value, strict=True)
    except ValueError as exc:
        raise ValueError(f"must be an IPv4 CIDR block like 10.10.0.0/24 with no host bits set ({exc})") from None


class SubnetsConfig(Model):
    """Address prefixes of the subnets we carve out of the virtual network."""

    private_endpoints: Cidr = Field(description="Subnet holding every private endpoint.")
    training: Cidr = Field(
        description="Subnet for training compute when the workspace does not use a managed network."
    )
    inference: Cidr | None = Field(
        default=None, description="Reserved for VNet-integrated inference (e.g. Kubernetes)."
    )
    integration: Cidr | None = Field(
        default=None, description="Reserved for VNet integration of app services (e.g. Functions)."
    )

    @field_validator("private_endpoints", "training", "inference", "integration")
    @classmethod
    def _cidr(cls, value: str | None) -> str | None:
        if value is None:
            return value
        network = _parse_cidr(value)
        # Azure reserves 5 addresses per subnet; /29 is the smallest it accepts.
        if network.prefixlen > 29:
            raise ValueError("must be /29 or larger (Azure's smallest subnet)")
        return str(network)

    def items(self) -> list[tuple[str, str]]:
        return [(name, cidr) for name, cidr in self.model_dump(by_alias=True).items() if cidr]


class NetworkConfig(Model):
    address_space: Cidr = Field(description="Address space of the platform virtual network.")
    subnets: SubnetsConfig = Field(
        description="Subnets carved out of addressSpace: each /29 or larger, inside it, none overlapping."
    )

    @field_validator("address_space")
    @classmethod
    def _space(cls, value: str) -> str:
        return str(_parse_cidr(value))

    @model_validator(mode="after")
    def _subnets_fit(self) -> "NetworkConfig":
        space = ipaddress.IPv4Network(self.address_space)
        placed: list[tuple[str, ipaddress.IPv4Network]] = []
        for name, cidr in self.subnets.items():
            net = ipaddress.IPv4Network(cidr)
            if not net.subnet_of(space):
                raise ValueError(f"subnets.{name} {cidr} lies outside addressSpace {space}")
            for other_name, other in placed:
                if net.overlaps(other):
                    raise ValueError(f"subnets.{name} {cidr} overlaps subnets.{other_name} {other}")
            placed.append((name, net))
        return self


StorageSku = Literal[
    "Standard_LRS", "Standard_ZRS", "Standard_GRS", "Standard_RAGRS", "Standard_GZRS", "Standard_RAGZRS"
]


class StorageConfig(Model):
    sku: StorageSku = Field(default="Standard_LRS", description="Replication of the workspace storage account.")
    blob_soft_delete_days: int = Field(
        default=7, ge=1, le=365, description="Blob soft-delete retention in days; also applies to file shares."
    )
    container_soft_delete_days: int = Field(default=7, ge=1, le=365, description="Container soft-delete retention.")
    versioning: bool = Field(default=True, description="Blob versioning (recover overwritten data).")


class KeyVaultConfig(Model):
    sku: Literal["standard", "premium"] = Field(default="standard", description="`premium`: HSM-backed keys.")
    soft_delete_retention_days: int = Field(
        default=90, ge=7, le=90, description="Days a deleted vault and its objects stay recoverable (soft delete)."
    )


class RegistryConfig(Model):
    # Private endpoints, retention and quarantine exist only on Premium.
    sku: Literal["Premium"] = Field(default="Premium", description="Only Premium supports private endpoints.")
    retention_days: int = Field(default=7, ge=0, le=365, description="Days untagged manifests are kept.")
    quarantine: bool = Field(
        default=False,
        description="Quarantine pushed images until a scanner releases them. Only enable with a scanner wired up.",
    )
    zone_redundant: bool = Field(default=False, description="Zone-redundant registry (prod: true).")


class WorkspaceConfig(Model):
    friendly_name: str | None = Field(default=None, description="Display name of the workspace; default its name.")
    hbi: bool = Field(default=False, description="High business impact: reduces diagnostic data collected by Microsoft.")
    isolation_mode: Literal["AllowOnlyApprovedOutbound", "AllowInternetOutbound", "Disabled"] = Field(
        default="AllowOnlyApprovedOutbound",
        description=(
            "Outbound mode of the workspace managed network. Disabled = no managed network:"
            " compute clusters are placed in the training subnet instead."
        ),
    )
    image_build_compute: str | None = Field(
        default=None,
        description="Compute cluster that builds environment images (must be a declared cluster); needed with a "
        "private registry. Environments and deployments wait for it.",
    )
    package_repositories: list[PackageRepository] = Field(
        default_factory=list,
        description=(
            "Package repositories image builds install from (conda-forge, anaconda, pypi): FQDN outbound rules"
            " for the hosts Microsoft lists. FQDN rules deploy a billed Azure Firewall."
        ),
    )
    outbound_fqdns: list[str] = Field(
        default_factory=list,
        description="Further FQDN outbound rules (e.g. a private package feed's host); lowercase host names, "
        "optionally *.-prefixed, never storage hosts (reach storage through private endpoints).",
    )
    firewall_sku: FirewallSku | None = Field(
        default=None,
        description="Azure Firewall SKU behind FQDN rules; unset = Azure's default (Standard). Basic is in preview "
        "(dev uses it).",
    )

    @property
    def uses_managed_network(self) -> bool:
        return self.isolation_mode != "Disabled"

    @property
    def approved_fqdns(self) -> list[str]:
        """Every FQDN outbound rule destination, repositories' hosts first, without repeats."""
        hosts = [h for repo in self.package_repositories for h in PACKAGE_REPOSITORY_HOSTS[repo]]
        return list(dict.fromkeys([*hosts, *self.outbound_fqdns]))

    @field_validator("outbound_fqdns")
    @classmethod
    def _fqdns(cls, hosts: list[str]) -> list[str]:
        for host in hosts:
            problem = fqdn_problem(host)
            if problem:
                raise ValueError(problem)
        return hosts

    @model_validator(mode="after")
    def _fqdn_rules_need_approved_outbound(self) -> "WorkspaceConfig":
        # "Adding an outbound for a service tag or FQDN is only valid when the
        # managed VNet is configured to IsolationMode.ALLOW_ONLY_APPROVED_OUTBOUND." (how-to-managed-network)
        if self.approved_fqdns and self.isolation_mode != "AllowOnlyApprovedOutbound":
            raise ValueError(
                "packageRepositories/outboundFqdns (FQDN outbound rules) need isolationMode AllowOnlyApprovedOutbound"
            )
        return self


class MonitoringConfig(Model):
    retention_days: int = Field(default=30, ge=30, le=730, description="Log Analytics retention.")
    daily_quota_gb: float | None = Field(default=None, gt=0, description="Log Analytics daily cap; unset = no cap.")


_CLUSTER_NAME = re.compile(r"^[a-zA-Z][a-zA-Z0-9-]{1,22}[a-zA-Z0-9]$")


class ComputeCluster(Model):
    name: str = Field(description="3-24 letters, digits, hyphens; starts with a letter.")
    vm_size: Annotated[str, StringConstraints(pattern=r"^(Standard|Basic)_[A-Za-z0-9_]+$")] = Field(
        description="VM size of the nodes (availability and quota in the region are Azure's to check)."
    )
    min_nodes: int = Field(
        default=0, ge=0, le=1000, description="Nodes kept when idle; 0 scales the cluster to zero. At most maxNodes."
    )
    max_nodes: int = Field(ge=1, le=1000, description="Most nodes the cluster scales out to.")
    idle_seconds_before_scale_down: int = Field(
        default=120, ge=60, le=86400, description="Idle time before a node is released."
    )
    priority: Literal["Dedicated", "LowPriority"] = Field(
        default="Dedicated", description="`LowPriority`: cheaper, preemptible nodes; suits interruptible training."
    )
    description: str | None = Field(default=None, description="Description of the cluster in the workspace.")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _CLUSTER_NAME.fullmatch(value):
            raise ValueError("must be 3-24 characters: letters, digits and hyphens, starting with a letter")
        return value

    @model_validator(mode="after")
    def _bounds(self) -> "ComputeCluster":
        if self.min_nodes > self.max_nodes:
            raise ValueError(f"minNodes ({self.min_nodes}) must not exceed maxNodes ({self.max_nodes})")
        return self


class ComputeConfig(Model):
    clusters: list[ComputeCluster] = Field(
        default_factory=list,
        description="AmlCompute clusters, names unique; they run as the compute identity, scale to minNodes when idle, "
        "with low priority allowed, no node public IP, SSH off and local auth off.",
    )

    @field_validator("clusters")
    @classmethod
    def _unique(cls, clusters: list[ComputeCluster]) -> list[ComputeCluster]:
        seen: set[str] = set()
        for cluster in clusters:
            if cluster.name.lower() in seen:
                raise ValueError(f"cluster name {cluster.name!r} is declared twice")
            seen.add(cluster.name.lower())
        return clusters


class Principal(Model):
    """An Entra ID principal. Azure rejects a role assignment whose declared
    principal type does not match the object (UnmatchedPrincipalType)."""

    object_id: ObjectId = Field(description="Entra ID object id (a GUID, not a display name or UPN).")
    type: Literal["Group", "User", "ServicePrincipal"] = Field(
        default="Group", description="Principal type; must match the object (a bare object id is a group)."
    )


def _principal_shorthand(value: object) -> object:
    # A bare object id means a group: personas should be groups, not people.
    return {"objectId": value} if isinstance(value, str) else value


PrincipalEntry = Annotated[Principal, BeforeValidator(_principal_shorthand)]


class PrincipalsConfig(Model):
    """Entra ID principals in each persona: an object id (a group) or
    ``{objectId, type: Group|User|ServicePrincipal}``."""

    readers: list[PrincipalEntry] = Field(default_factory=list, description="Get Reader on the workspace.")
    data_scientists: list[PrincipalEntry] = Field(
        default_factory=list, description="Get AzureML Data Scientist on the workspace."
    )
    approvers: list[PrincipalEntry] = Field(
        default_factory=list,
        description="Get the approver custom role on the workspace: read endpoints and update them to move traffic, "
        "nothing else (created at resource-group scope, assignable only there).",
    )


_PREFIX = re.compile(r"^[a-z][a-z0-9]{1,7}$")


class StackConfig(Model):
    """The whole ``azml:`` namespace of one stack."""

    environment: Environment = Field(description="Environment name; tagged on every resource (`environment`).")
    location: str = Field(description="Azure region, e.g. westeurope.")
    prefix: str = Field(description="2-8 lowercase letters/digits; starts every resource name.")
    unique_suffix: str | None = Field(
        default=None,
        description="Suffix for globally unique names (storage, vault, registry): 4-6 lowercase letters or digits; "
        "default derived from prefix/env/location. Set it (or change prefix) when a name is taken.",
    )
    tags: dict[str, str] = Field(
        default_factory=dict,
        description="Tags on every resource, besides `environment` and `managed-by: azml`: at most 45 (Azure allows "
        "50), names up to 512 characters without <>%&\\?/, values up to 256.",
    )
    network: NetworkConfig = Field(description="The platform virtual network.")
    storage: StorageConfig = Field(default_factory=StorageConfig, description="The workspace storage account.")
    key_vault: KeyVaultConfig = Field(default_factory=KeyVaultConfig, description="The workspace Key Vault.")
    registry: RegistryConfig = Field(default_factory=RegistryConfig, description="The workspace container registry.")
    workspace: WorkspaceConfig = Field(
        default_factory=WorkspaceConfig, description="The Azure ML workspace and its managed network."
    )
    monitoring: MonitoringConfig = Field(
        default_factory=MonitoringConfig, description="The stack's Log Analytics workspace."
    )
    compute: ComputeConfig = Field(default_factory=ComputeConfig, description="Compute clusters of the workspace.")
    principals: PrincipalsConfig = Field(
        default_factory=PrincipalsConfig,
        description="Persona members: object ids (groups) or {objectId, type}; roles at workspace scope.",
    )
    online_endpoints: list[OnlineEndpointConfig] = Field(
        default_factory=list, description="Managed online endpoints, their deployments and traffic split."
    )
    batch_endpoints: list[BatchEndpointConfig] = Field(
        default_factory=list, description="Batch endpoints, their deployments on declared clusters."
    )
    # Absent keys mean "off"; a present section is on unless it says enabled: false.
    model_monitoring: ModelMonitoringConfig = Field(
        default_factory=lambda: ModelMonitoringConfig(enabled=False),
        description="Azure ML model monitors; off when absent, on when present unless enabled: false.",
    )
    alerts: AlertsConfig = Field(
        default_factory=lambda: AlertsConfig(enabled=False),
        description="SLO alert rules and their action group; off when absent, on when present unless enabled: false.",
    )
    alert_webhooks: Webhooks = Field(
        default_factory=dict,
        description="Receiver name (1-32 letters, digits, - or _) -> https:// webhook URL of an action group webhook "
        "receiver; each URL must be its own Pulumi secret (plain text is refused).",
    )
    retraining: RetrainingConfig = Field(
        default_factory=lambda: RetrainingConfig(enabled=False),
        description="The Event Grid retraining trigger and its function app; off when absent, on when present "
        "unless enabled: false.",
    )
    governance: GovernanceConfig = Field(
        default_factory=GovernanceConfig,
        description="Azure Policy assignments, budget, lifecycle rules, locks and Defender for Cloud plans.",
    )
    dashboards: DashboardsConfig = Field(  # on when absent (free)
        default_factory=DashboardsConfig,
        description="The operations workbook and the activity-log export; on when absent.",
    )
    release: ReleaseConfig = Field(
        default_factory=ReleaseConfig,
        description="The release controller: metric sources, promotion gate, rollback triggers, traffic ladder.",
    )
    data_validation: dict[str, ModelValidation] = Field(default_factory=dict, description="Model name -> batch checks.")
    phase: Literal["platform", "serving"] = Field(
        default="serving",
        description=(
            "platform: the first `pulumi up` on an empty subscription creates the platform without online/batch "
            "deployments and model monitors (their code assets cannot exist before the workspace does); "
            "serving: everything (README \"Running it for real\")."
        ),
    )

    def deployed(self) -> "StackConfig":
        """What this run deploys: in the ``platform`` phase, no serving and no
        model monitors (validated all the same, so phase two holds no surprise)."""
        if self.phase == "serving":
            return self
        return self.model_copy(
            update={
                "online_endpoints": [],
                "batch_endpoints": [],
                "model_monitoring": ModelMonitoringConfig(enabled=False),
            }
        )

    @field_validator("location")
    @classmethod
    def _region(cls, value: str) -> str:
        if value not in AZURE_REGIONS:
            close = sorted(r for r in AZURE_REGIONS if r[:4] == value[:4].lower())
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise ValueError(f"must be an Azure region name in lowercase without spaces, e.g. westeurope{hint}")
        return value

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        # 8 characters keeps storage account names (max 24, [a-z0-9]) within bounds.
        if not _PREFIX.fullmatch(value):
            raise ValueError("must be 2-8 characters: lowercase letters and digits, starting with a letter")
        return value

    @field_validator("unique_suffix")
    @classmethod
    def _suffix(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[a-z0-9]{4,6}", value):
            raise ValueError("must be 4-6 lowercase letters or digits")
        return value

    @field_validator("tags")
    @classmethod
    def _tags(cls, tags: dict[str, str]) -> dict[str, str]:
        # Azure: at most 50 tags; names up to 512 chars without <>%&\?/; values up to 256.
        if len(tags) > 45:
            raise ValueError("at most 45 tags (Azure allows 50; azml adds its own)")
        for name, value in tags.items():
            if len(name) > 512 or re.search(r"[<>%&\\?/]", name):
                raise ValueError(f"tag name {name!r} must be at most 512 characters without <>%&\\?/")
            if len(value) > 256:
                raise ValueError(f"tag {name!r} value must be at most 256 characters")
        return tags

    @model_validator(mode="after")
    def _image_build_compute_declared(self) -> "StackConfig":
        wanted = self.workspace.image_build_compute
        names = [c.name for c in self.compute.clusters]
        if wanted is not None and wanted not in names:
            allowed = ", ".join(names) or "none declared"
            raise ValueError(
                f"workspace.imageBuildCompute {wanted!r} is not a declared compute cluster (declared: {allowed})"
            )
        return self


#: The ``azml:`` keys a stack file may set, in camelCase.
TOP_LEVEL_KEYS: tuple[str, ...] = tuple(
    field.alias or name for name, field in StackConfig.model_fields.items()
)

"""Checks for the azml platform that checkov does not ship for ARM (ids CKV_AZML_*).

Azure Machine Learning compute, workspace and online endpoints, and the two
storage account settings checkov reads only in Terraform (public blob access,
shared-key access).

They read ARM templates as the ARM REST API spells them, which is what
``azml.arm.export`` writes. Each check says PASSED or FAILED for the resources
it understands and UNKNOWN (not reported) for shapes it does not judge, such
as attached compute it cannot configure.
"""

from __future__ import annotations

from typing import Any

from checkov.arm.base_resource_check import BaseResourceCheck
from checkov.common.models.enums import CheckCategories, CheckResult

COMPUTES = "Microsoft.MachineLearningServices/workspaces/computes"
WORKSPACES = "Microsoft.MachineLearningServices/workspaces"
ONLINE_ENDPOINTS = "Microsoft.MachineLearningServices/workspaces/onlineEndpoints"
ONLINE_DEPLOYMENTS = "Microsoft.MachineLearningServices/workspaces/onlineEndpoints/deployments"
STORAGE_ACCOUNTS = "Microsoft.Storage/storageAccounts"

#: Compute types Azure ML creates VMs for; attached compute (AKS, Databricks, ...) is configured elsewhere.
MANAGED_COMPUTE_TYPES = ("AmlCompute", "ComputeInstance")

GUIDE_TRAINING = "https://learn.microsoft.com/azure/machine-learning/how-to-secure-training-vnet"
GUIDE_MANAGED_NETWORK = "https://learn.microsoft.com/azure/machine-learning/how-to-managed-network"
GUIDE_ONLINE = "https://learn.microsoft.com/azure/machine-learning/concept-secure-online-endpoint"
GUIDE_BLOB_PUBLIC = "https://learn.microsoft.com/azure/storage/blobs/anonymous-read-access-prevent"
GUIDE_SHARED_KEY = "https://learn.microsoft.com/azure/storage/common/shared-key-authorization-prevent"


def _properties(conf: dict[str, Any]) -> dict[str, Any]:
    properties = conf.get("properties")
    return properties if isinstance(properties, dict) else {}


def _text(value: Any) -> str:
    return str(value).strip().lower() if value is not None else ""


class MlComputeLocalAuthDisabled(BaseResourceCheck):
    def __init__(self) -> None:
        super().__init__(
            name="Ensure Azure ML compute disables local authentication (Entra ID only)",
            id="CKV_AZML_1",
            categories=(CheckCategories.IAM,),
            supported_resources=(COMPUTES,),
            guideline=GUIDE_TRAINING,
        )

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        properties = _properties(conf)
        self.evaluated_keys = ["properties/disableLocalAuth"]
        return CheckResult.PASSED if _text(properties.get("disableLocalAuth")) == "true" else CheckResult.FAILED


class MlComputeNoNodePublicIp(BaseResourceCheck):
    def __init__(self) -> None:
        super().__init__(
            name="Ensure Azure ML compute nodes get no public IP address",
            id="CKV_AZML_2",
            categories=(CheckCategories.NETWORKING,),
            supported_resources=(COMPUTES,),
            guideline=GUIDE_TRAINING,
        )

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        properties = _properties(conf)
        if properties.get("computeType") not in MANAGED_COMPUTE_TYPES:
            return CheckResult.UNKNOWN
        inner = properties.get("properties")
        inner = inner if isinstance(inner, dict) else {}
        self.evaluated_keys = ["properties/properties/enableNodePublicIp"]
        # Azure's default is a public IP per node: only an explicit false passes.
        return CheckResult.PASSED if _text(inner.get("enableNodePublicIp")) == "false" else CheckResult.FAILED


class MlComputeSshDisabled(BaseResourceCheck):
    def __init__(self) -> None:
        super().__init__(
            name="Ensure Azure ML compute clusters close the SSH port to public access",
            id="CKV_AZML_3",
            categories=(CheckCategories.NETWORKING,),
            supported_resources=(COMPUTES,),
            guideline=GUIDE_TRAINING,
        )

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        properties = _properties(conf)
        if properties.get("computeType") != "AmlCompute":
            return CheckResult.UNKNOWN
        inner = properties.get("properties")
        inner = inner if isinstance(inner, dict) else {}
        self.evaluated_keys = ["properties/properties/remoteLoginPortPublicAccess"]
        # "NotSpecified" (the default) opens SSH as soon as an admin user is set.
        value = _text(inner.get("remoteLoginPortPublicAccess"))
        return CheckResult.PASSED if value == "disabled" else CheckResult.FAILED


class MlWorkspaceManagedNetworkIsolation(BaseResourceCheck):
    def __init__(self) -> None:
        super().__init__(
            name="Ensure Azure ML workspace uses managed network isolation",
            id="CKV_AZML_4",
            categories=(CheckCategories.NETWORKING,),
            supported_resources=(WORKSPACES,),
            guideline=GUIDE_MANAGED_NETWORK,
        )

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        if _text(conf.get("kind")) in ("hub", "project", "featurestore"):
            # AI Foundry hubs/projects and feature stores inherit or manage networking differently.
            return CheckResult.UNKNOWN
        managed = _properties(conf).get("managedNetwork")
        managed = managed if isinstance(managed, dict) else {}
        self.evaluated_keys = ["properties/managedNetwork/isolationMode"]
        mode = _text(managed.get("isolationMode"))
        return (
            CheckResult.PASSED if mode in ("allowonlyapprovedoutbound", "allowinternetoutbound") else CheckResult.FAILED
        )


class MlOnlineEndpointPrivate(BaseResourceCheck):
    def __init__(self) -> None:
        super().__init__(
            name="Ensure Azure ML online endpoints disable public network access",
            id="CKV_AZML_5",
            categories=(CheckCategories.NETWORKING,),
            supported_resources=(ONLINE_ENDPOINTS,),
            guideline=GUIDE_ONLINE,
        )

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        self.evaluated_keys = ["properties/publicNetworkAccess"]
        value = _text(_properties(conf).get("publicNetworkAccess"))
        # Azure's default is Enabled.
        return CheckResult.PASSED if value == "disabled" else CheckResult.FAILED


class MlOnlineDeploymentEgressDisabled(BaseResourceCheck):
    def __init__(self) -> None:
        super().__init__(
            name="Ensure Azure ML managed online deployments disable public egress",
            id="CKV_AZML_6",
            categories=(CheckCategories.NETWORKING,),
            supported_resources=(ONLINE_DEPLOYMENTS,),
            guideline=GUIDE_ONLINE,
        )

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        properties = _properties(conf)
        if _text(properties.get("endpointComputeType")) not in ("", "managed"):
            # Kubernetes deployments take their egress from the cluster's network.
            return CheckResult.UNKNOWN
        self.evaluated_keys = ["properties/egressPublicNetworkAccess"]
        value = _text(properties.get("egressPublicNetworkAccess"))
        if value == "":
            # Unset: in a workspace with a managed network (CKV_AZML_4) the flag
            # "no longer applies. Avoid setting this flag" (concept-secure-online-
            # endpoint); the workspace's isolation mode is not visible here, so
            # the policy pack's stack check azml-deployment-egress-disabled decides.
            return CheckResult.UNKNOWN
        return CheckResult.PASSED if value == "disabled" else CheckResult.FAILED


class StorageNoPublicBlobAccess(BaseResourceCheck):
    def __init__(self) -> None:
        super().__init__(
            name="Ensure storage accounts disallow anonymous public blob access",
            id="CKV_AZML_7",
            categories=(CheckCategories.NETWORKING,),
            supported_resources=(STORAGE_ACCOUNTS,),
            guideline=GUIDE_BLOB_PUBLIC,
        )

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        self.evaluated_keys = ["properties/allowBlobPublicAccess"]
        # Only an explicit false passes: older API versions default to allowing it.
        value = _text(_properties(conf).get("allowBlobPublicAccess"))
        return CheckResult.PASSED if value == "false" else CheckResult.FAILED


class StorageNoSharedKeyAccess(BaseResourceCheck):
    def __init__(self) -> None:
        super().__init__(
            name="Ensure storage accounts disallow shared-key authorization (Entra ID only)",
            id="CKV_AZML_8",
            categories=(CheckCategories.IAM,),
            supported_resources=(STORAGE_ACCOUNTS,),
            guideline=GUIDE_SHARED_KEY,
        )

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        self.evaluated_keys = ["properties/allowSharedKeyAccess"]
        # Azure's default (null) means shared keys are allowed.
        value = _text(_properties(conf).get("allowSharedKeyAccess"))
        return CheckResult.PASSED if value == "false" else CheckResult.FAILED


check_compute_local_auth = MlComputeLocalAuthDisabled()
check_compute_public_ip = MlComputeNoNodePublicIp()
check_compute_ssh = MlComputeSshDisabled()
check_workspace_isolation = MlWorkspaceManagedNetworkIsolation()
check_online_endpoint_private = MlOnlineEndpointPrivate()
check_online_deployment_egress = MlOnlineDeploymentEgressDisabled()
check_storage_public_blob = StorageNoPublicBlobAccess()
check_storage_shared_key = StorageNoSharedKeyAccess()

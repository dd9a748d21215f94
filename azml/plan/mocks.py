"""Pulumi mocks that answer like Azure would, for the offline plan.

Outputs echo the inputs (as the provider does for most properties) plus what
Azure computes and programs commonly read back: the ARM ``id``, the ``name``,
the ARM ``type``, identity principal ids, and a few per-type endpoints. Any
invoke we do not know fails loudly: a silent ``{}`` would let a program read
``None`` where Azure returns data.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from typing import Any

from pulumi.runtime import Mocks, MockCallArgs, MockResourceArgs

from .arm import arm_id, arm_type_of


@dataclass(frozen=True)
class ClientConfig:
    """What ``azure-native:authorization:getClientConfig`` returns offline."""

    subscription_id: str = "00000000-0000-4000-8000-000000000001"
    tenant_id: str = "00000000-0000-4000-8000-0000000000aa"
    client_id: str = "00000000-0000-4000-8000-0000000000c1"
    object_id: str = "00000000-0000-4000-8000-0000000000b0"


#: Type tokens of Pulumi Python dynamic resources start with this.
DYNAMIC_PREFIX = "pulumi-python:dynamic"


class UnknownInvokeError(RuntimeError):
    pass


_NAMESPACE = uuid.UUID("5f0c5d1e-7d0f-4c5e-9a35-0f3b2d6a9e11")


def _stable_uuid(*parts: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, "/".join(parts)))


def autoname(logical_name: str) -> str:
    # The provider appends random characters; we use a stable digest so that
    # two plans of the same program are identical.
    return f"{logical_name}{hashlib.sha256(logical_name.encode()).hexdigest()[:8]}"


def _computed_outputs(token: str, name: str, inputs: dict[str, Any], resource_id: str) -> dict[str, Any]:
    """Read-only properties Azure fills in for the types our program reads back."""
    if token == "azure-native:applicationinsights:Component":
        key = _stable_uuid(resource_id, "ikey")
        return {
            "instrumentationKey": key,
            "connectionString": f"InstrumentationKey={key};IngestionEndpoint=https://{inputs.get('location')}.in.applicationinsights.azure.com/",
            "appId": _stable_uuid(resource_id, "appid"),
        }
    if token == "azure-native:operationalinsights:Workspace":
        return {"customerId": _stable_uuid(resource_id, "customer")}
    if token == "azure-native:storage:StorageAccount":
        return {
            "primaryEndpoints": {
                kind: f"https://{name}.{kind}.core.windows.net/" for kind in ("blob", "file", "queue", "table", "dfs")
            }
        }
    if token == "azure-native:keyvault:Vault":
        properties = dict(inputs.get("properties") or {})
        properties["vaultUri"] = f"https://{name}.vault.azure.net/"
        return {"properties": properties}
    if token == "azure-native:managedidentity:UserAssignedIdentity":
        return {
            "principalId": _stable_uuid(resource_id, "principal"),
            "clientId": _stable_uuid(resource_id, "client"),
            "tenantId": ClientConfig().tenant_id,
        }
    if token == "azure-native:containerregistry:Registry":
        return {"loginServer": f"{name}.azurecr.io"}
    if token == "azure-native:machinelearningservices:Workspace":
        return {
            "workspaceId": _stable_uuid(resource_id, "workspace"),
            "mlFlowTrackingUri": f"azureml://{inputs.get('location')}.api.azureml.ms/mlflow/v1.0{resource_id}",
        }
    return {}


class AzureMocks(Mocks):
    def __init__(self, client: ClientConfig | None = None) -> None:
        self.client = client or ClientConfig()

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        if not args.custom:
            # Component resources have no provider; the engine gives them no id.
            return "", dict(args.inputs)
        if args.typ.startswith(DYNAMIC_PREFIX):
            # Our dynamic resources act on an Azure resource named by endpointId.
            inputs = dict(args.inputs)
            return f"{inputs.get('endpointId', args.name)}/routing", inputs
        row = arm_type_of(args.typ)
        inputs = dict(args.inputs)
        name = inputs.get(row.name_key) or autoname(args.name)
        resource_id = arm_id(args.typ, name, inputs, self.client.subscription_id)
        outputs = {**inputs, "id": resource_id, "name": name, "type": row.arm_type}
        identity = inputs.get("identity")
        if isinstance(identity, dict) and isinstance(identity.get("userAssignedIdentities"), list):
            # Inputs list the identities' ids; Azure answers a map of id -> identity.
            identity = {
                **identity,
                "userAssignedIdentities": {
                    str(uai): {
                        "principalId": _stable_uuid(str(uai), "principal"),
                        "clientId": _stable_uuid(str(uai), "client"),
                    }
                    for uai in identity["userAssignedIdentities"]
                },
            }
            outputs["identity"] = identity
        if isinstance(identity, dict) and "SystemAssigned" in str(identity.get("type", "")):
            outputs["identity"] = {
                **identity,
                "principalId": _stable_uuid(resource_id, "principal"),
                "tenantId": self.client.tenant_id,
            }
        outputs.update(_computed_outputs(args.typ, name, inputs, resource_id))
        return resource_id, outputs

    def call(self, args: MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        if args.token == "azure-native:authorization:getClientConfig":
            return (
                {
                    "subscriptionId": self.client.subscription_id,
                    "tenantId": self.client.tenant_id,
                    "clientId": self.client.client_id,
                    "objectId": self.client.object_id,
                },
                [],
            )
        raise UnknownInvokeError(
            f"the offline plan has no answer for invoke {args.token}; add one to azml.plan.mocks.AzureMocks.call"
        )

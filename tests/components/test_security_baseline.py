"""Every security setting of the platform, asserted on the recorded plan of
both stacks (what `pulumi up` would send to Azure)."""

from __future__ import annotations

import re

from typing import Any

from azml.plan.model import Plan, PlannedResource

WORKSPACE = "azure-native:machinelearningservices:Workspace"
STORAGE = "azure-native:storage:StorageAccount"
VAULT = "azure-native:keyvault:Vault"
REGISTRY = "azure-native:containerregistry:Registry"
COMPUTE = "azure-native:machinelearningservices:Compute"
PRIVATE_ENDPOINT = "azure-native:network:PrivateEndpoint"
ZONE_GROUP = "azure-native:network:PrivateDnsZoneGroup"
DIAGNOSTICS = "azure-native:monitor:DiagnosticSetting"
ROLE = "azure-native:authorization:RoleAssignment"


def only(plan: Plan, token: str) -> PlannedResource:
    candidates = plan.of_type(token)
    if token == STORAGE:  # the workspace's account (the retraining function has its own)
        (workspace,) = plan.of_type(WORKSPACE)
        candidates = [c for c in candidates if workspace.inputs["storageAccount"].endswith("/" + c.inputs["accountName"])]
    (resource,) = candidates
    return resource


def inputs(plan: Plan, token: str) -> dict[str, Any]:
    return only(plan, token).inputs


def test_workspace_is_private_isolated_and_identity_based(any_plan: Plan) -> None:
    ws = inputs(any_plan, WORKSPACE)
    assert ws["publicNetworkAccess"] == "Disabled"
    assert ws["managedNetwork"]["isolationMode"] == "AllowOnlyApprovedOutbound"
    # The system identity for the workspace itself; the compute identity (user-assigned, with data
    # roles on key-less storage) for serverless Spark monitors.
    assert ws["identity"]["type"] == "SystemAssigned,UserAssigned"
    (compute_identity,) = ws["identity"]["userAssignedIdentities"]
    assert re.search(r"/userAssignedIdentities/id-azml-(dev|prd)-compute$", compute_identity)
    assert ws["systemDatastoresAuthMode"] == "identity"
    assert ws["v1LegacyMode"] is False
    computes = {c.inputs["computeName"] for c in any_plan.of_type(COMPUTE)}
    assert ws["imageBuildCompute"] in computes
    # Wired to the stack's own dependencies, by ARM id.
    for key, token in (("storageAccount", STORAGE), ("keyVault", VAULT), ("containerRegistry", REGISTRY)):
        name = only(any_plan, token).inputs
        assert ws[key].endswith("/" + (name.get("accountName") or name.get("vaultName") or name.get("registryName")))
    assert "/Microsoft.Insights/components/" in ws["applicationInsights"]


def test_hbi_in_prod_only(dev_plan: Plan, prod_plan: Plan) -> None:
    assert inputs(prod_plan, WORKSPACE)["hbiWorkspace"] is True
    assert inputs(dev_plan, WORKSPACE)["hbiWorkspace"] is False


def test_storage_is_locked_down(any_plan: Plan) -> None:
    st = inputs(any_plan, STORAGE)
    assert st["enableHttpsTrafficOnly"] is True
    assert st["minimumTlsVersion"] == "TLS1_2"
    assert st["allowBlobPublicAccess"] is False
    assert st["allowSharedKeyAccess"] is False
    assert st["publicNetworkAccess"] == "Disabled"
    assert st["networkRuleSet"]["defaultAction"] == "Deny"
    assert st["encryption"]["requireInfrastructureEncryption"] is True
    (blob,) = (
        b.inputs
        for b in any_plan.of_type("azure-native:storage:BlobServiceProperties")
        if b.inputs["accountName"] == only(any_plan, STORAGE).inputs["accountName"]
    )
    assert blob["isVersioningEnabled"] is True
    assert blob["deleteRetentionPolicy"]["enabled"] is True and blob["deleteRetentionPolicy"]["days"] >= 7
    assert blob["containerDeleteRetentionPolicy"]["enabled"] is True


def test_prod_storage_is_zone_and_geo_redundant(prod_plan: Plan, dev_plan: Plan) -> None:
    assert inputs(prod_plan, STORAGE)["sku"]["name"] == "Standard_GZRS"
    assert inputs(dev_plan, STORAGE)["sku"]["name"] == "Standard_LRS"


def test_key_vault_uses_rbac_and_cannot_be_purged(any_plan: Plan) -> None:
    kv = inputs(any_plan, VAULT)["properties"]
    assert kv["enableRbacAuthorization"] is True
    assert kv["enablePurgeProtection"] is True
    assert kv["enableSoftDelete"] is True
    assert kv["publicNetworkAccess"] == "Disabled"
    assert kv["networkAcls"]["defaultAction"] == "Deny"
    assert "accessPolicies" not in kv
    assert kv["tenantId"]  # from getClientConfig


def test_registry_is_premium_private_without_admin_user(any_plan: Plan) -> None:
    cr = inputs(any_plan, REGISTRY)
    assert cr["sku"]["name"] == "Premium"
    assert cr["adminUserEnabled"] is False
    assert cr["anonymousPullEnabled"] is False
    assert cr["publicNetworkAccess"] == "Disabled"
    assert cr["policies"]["retentionPolicy"]["status"] == "enabled"
    assert cr["policies"]["exportPolicy"]["status"] == "disabled"
    assert "quarantinePolicy" in cr["policies"]


def test_compute_clusters_have_no_public_surface(any_plan: Plan) -> None:
    clusters = any_plan.of_type(COMPUTE)
    assert clusters
    for cluster in clusters:
        props = cluster.inputs["properties"]
        assert props["computeType"] == "AmlCompute"
        assert props["disableLocalAuth"] is True
        aml = props["properties"]
        assert aml["enableNodePublicIp"] is False
        assert aml["remoteLoginPortPublicAccess"] == "Disabled"
        assert aml["scaleSettings"]["minNodeCount"] == 0
        assert aml["scaleSettings"]["nodeIdleTimeBeforeScaleDown"].startswith("PT")
        # Managed network: Azure places compute in the managed VNet, no customer subnet.
        assert "subnet" not in aml


def test_low_priority_allowed_for_training(dev_plan: Plan) -> None:
    priorities = {c.inputs["computeName"]: c.inputs["properties"]["properties"]["vmPriority"] for c in dev_plan.of_type(COMPUTE)}
    assert priorities == {"cpu-build": "Dedicated", "cpu-train": "LowPriority"}


def _zones_of(plan: Plan, endpoint: PlannedResource) -> set[str]:
    groups = [g for g in plan.of_type(ZONE_GROUP) if g.inputs["privateEndpointName"] == endpoint.inputs["privateEndpointName"]]
    assert len(groups) == 1, f"{endpoint.name} has {len(groups)} DNS zone groups"
    return {c["privateDnsZoneId"].rsplit("/", 1)[1] for c in groups[0].inputs["privateDnsZoneConfigs"]}


def test_private_endpoints_cover_every_dependency_with_dns_zone_groups(any_plan: Plan) -> None:
    expected = {
        ("workspaces", "amlworkspace"): {"privatelink.api.azureml.ms", "privatelink.notebooks.azure.net"},
        ("storageAccounts", "blob"): {"privatelink.blob.core.windows.net"},
        ("storageAccounts", "file"): {"privatelink.file.core.windows.net"},
        ("vaults", "vault"): {"privatelink.vaultcore.azure.net"},
        ("registries", "registry"): {"privatelink.azurecr.io"},
    }
    seen = {}
    subnet_ids = {s.inputs["subnetName"] for s in any_plan.of_type("azure-native:network:Subnet")}
    ws = inputs(any_plan, WORKSPACE)
    dependencies = {ws["storageAccount"], ws["keyVault"], ws["containerRegistry"]}
    for endpoint in any_plan.of_type(PRIVATE_ENDPOINT):
        (connection,) = endpoint.inputs["privateLinkServiceConnections"]
        if connection["privateLinkServiceId"] not in dependencies and "/workspaces/" not in connection["privateLinkServiceId"]:
            continue  # endpoints of other components (the retraining function) are tested there
        kind = connection["privateLinkServiceId"].split("/")[-2]
        (group,) = connection["groupIds"]
        seen[(kind, group)] = _zones_of(any_plan, endpoint)
        assert endpoint.inputs["subnet"]["id"].split("/")[-1] in subnet_ids
        assert endpoint.inputs["subnet"]["id"].endswith("-private-endpoints")
    assert seen == expected


def test_private_dns_zones_are_linked_to_the_vnet(any_plan: Plan) -> None:
    zones = {z.inputs["privateZoneName"] for z in any_plan.of_type("azure-native:privatedns:PrivateZone")}
    assert len(zones) >= 6
    links = any_plan.of_type("azure-native:privatedns:VirtualNetworkLink")
    assert {l.inputs["privateZoneName"] for l in links} == zones
    assert all(l.inputs["registrationEnabled"] is False for l in links)
    assert all(l.inputs["virtualNetwork"]["id"].endswith("/virtualNetworks/" + only(any_plan, "azure-native:network:VirtualNetwork").inputs["virtualNetworkName"]) for l in links)


def test_subnets_have_nsgs_and_no_default_outbound(any_plan: Plan) -> None:
    for subnet in any_plan.of_type("azure-native:network:Subnet"):
        assert "/networkSecurityGroups/" in subnet.inputs["networkSecurityGroup"]["id"]
        assert subnet.inputs["defaultOutboundAccess"] is False


def test_subnets_are_created_one_after_another(any_plan: Plan) -> None:
    subnets = any_plan.of_type("azure-native:network:Subnet")
    urns = {s.urn for s in subnets}
    chained = [s for s in subnets if urns & set(s.dependencies)]
    assert len(chained) == len(subnets) - 1


def test_vnet_ignores_subnets_owned_by_subnet_resources(any_plan: Plan) -> None:
    assert only(any_plan, "azure-native:network:VirtualNetwork").options["ignoreChanges"] == ["subnets"]


def test_audit_logs_of_every_data_plane_resource_reach_log_analytics(any_plan: Plan) -> None:
    log_name = inputs(any_plan, "azure-native:operationalinsights:Workspace")["workspaceName"]
    audited: dict[str, set[str]] = {}
    for setting in any_plan.of_type(DIAGNOSTICS):
        assert setting.inputs["workspaceId"].endswith(f"/workspaces/{log_name}")
        if re.fullmatch(r"/subscriptions/[^/]+", str(setting.inputs["resourceUri"])):
            # The subscription's activity log (for the dashboards' changes view) has categories, no metrics.
            assert {"category": "Administrative", "enabled": True} in setting.inputs["logs"]
            continue
        assert setting.inputs["metrics"] == [{"category": "AllMetrics", "enabled": True}]
        audited[setting.inputs["resourceUri"]] = {g["categoryGroup"] for g in setting.inputs.get("logs", [])}

    def groups_for(suffix: str) -> set[str]:
        (uri,) = [u for u in audited if u.endswith(suffix)]
        return audited[uri]

    assert "audit" in groups_for(f"/workspaces/{inputs(any_plan, WORKSPACE)['workspaceName']}")
    assert "audit" in groups_for(f"/vaults/{inputs(any_plan, VAULT)['vaultName']}")
    assert "audit" in groups_for(f"/registries/{inputs(any_plan, REGISTRY)['registryName']}")
    account = inputs(any_plan, STORAGE)["accountName"]
    # Storage logs live on its services; the account itself only has metrics.
    assert "audit" in groups_for(f"/storageAccounts/{account}/blobServices/default")
    assert "audit" in groups_for(f"/storageAccounts/{account}/fileServices/default")
    assert groups_for(f"/storageAccounts/{account}") == set()


def test_workspace_identity_roles_are_left_to_azure_ml(any_plan: Plan) -> None:
    """A system-assigned workspace identity's role assignments are "Managed by
    Microsoft": the stack grants it none (a duplicate fails with
    RoleAssignmentExists), and nobody gets Owner or Contributor."""
    ws = only(any_plan, WORKSPACE)
    grants = [r for r in any_plan.of_type(ROLE) if ws.urn in r.property_dependencies.get("principalId", [])]
    assert grants == []
    owner_or_contributor = {"8e3af657-a8ff-443c-a75c-2fe8c4bcb635", "b24988ac-6180-42a0-ab88-20f7382dd24c"}
    for grant in any_plan.of_type(ROLE):
        assert grant.inputs["roleDefinitionId"].rsplit("/", 1)[1] not in owner_or_contributor


def test_everything_is_tagged_with_environment(any_plan: Plan) -> None:
    untaggable = {
        "Subnet", "PrivateDnsZoneGroup", "DiagnosticSetting", "RoleAssignment", "BlobServiceProperties",
        "FileServiceProperties", "EndpointRouting", "BlobContainer", "Queue", "ManagementPolicy", "PolicyAssignment",
        "RoleDefinition", "Budget", "ManagementLockByScope", "SystemTopicEventSubscription", "Pricing",
        "ManagedNetworkProvisioning",  # an action on the workspace, not an Azure resource
    }  # ARM types that carry no tags
    for resource in any_plan.resources:
        if resource.custom and resource.type.split(":")[-1] not in untaggable:
            # Asset versions carry their tags inside properties.
            tags = resource.inputs.get("tags") or resource.inputs["properties"]["tags"]
            assert tags["environment"] == any_plan.stack, resource.name
            assert tags["managed-by"] == "azml"

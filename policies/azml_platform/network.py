"""Managed network: provisioned before deployments, outbound rules image
builds need, serverless Spark and batch in approved-outbound mode, compute
identities on key-less storage.

A workspace's outbound rules are read from its ``managedNetwork.outboundRules``
and from ``ManagedNetworkSettingsRule`` resources naming it. "Depends on" is
transitive over the recorded dependency graph (a dependency on a component
stands for everything inside it). A check that cannot tell (unknown values,
no recorded link) reports nothing.
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator
from urllib.parse import urlsplit

from pulumi_policy import Severity

from azml_policies.azure import (
    BATCH_DEPLOYMENT,
    COMPUTE,
    ENVIRONMENT_VERSION,
    ONLINE_DEPLOYMENT,
    REGISTRY,
    ROLE_ASSIGNMENT,
    SCHEDULE,
    STORAGE_ACCOUNT,
    WORKSPACE,
    refers_to,
)
from azml_policies.checks import Finding
from azml_policies.topology import Resource, Stack
from azml_policies.values import MISSING, UNKNOWN, known, same, show, strings

from .rules import Rule, stack_rule

PROVISIONING = "pulumi-python:dynamic/azml:ManagedNetworkProvisioning"
OUTBOUND_RULE = "azure-native:machinelearningservices:ManagedNetworkSettingsRule"
USER_ASSIGNED_IDENTITY = "azure-native:managedidentity:UserAssignedIdentity"
DEPLOYMENTS = (ONLINE_DEPLOYMENT, BATCH_DEPLOYMENT)
MANAGED_MODES = ("AllowOnlyApprovedOutbound", "AllowInternetOutbound")

#: Built-in role definition ids (the same in every public-cloud tenant).
BLOB_READER = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"
BLOB_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
BLOB_OWNER = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"
QUEUE_CONTRIBUTOR = "974c5e8b-45b9-4653-ba55-5f855dd0fb88"
TABLE_CONTRIBUTOR = "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3"
ROLE_NAMES = {
    BLOB_READER: "Storage Blob Data Reader",
    BLOB_CONTRIBUTOR: "Storage Blob Data Contributor",
    BLOB_OWNER: "Storage Blob Data Owner",
    QUEUE_CONTRIBUTOR: "Storage Queue Data Contributor",
    TABLE_CONTRIBUTOR: "Storage Table Data Contributor",
}

#: Package hosts (how-to-managed-network, "Scenario: Access public machine
#: learning packages"); pip downloads the files pypi.org indexes from files.pythonhosted.org.
PYPI_HOSTS = ("pypi.org", "files.pythonhosted.org")
ANACONDA_CHANNEL_HOST = "conda.anaconda.org"
DEFAULTS_CHANNEL_HOST = "repo.anaconda.com"

MANAGED_NETWORK = "machine-learning/how-to-managed-network"
LOCAL_AUTH = "machine-learning/how-to-disable-local-auth-storage"


# --------------------------------------------------------------------------- graph and workspace helpers


def _closure(stack: Stack, resource: Resource) -> set[str]:
    """URNs ``resource`` waits for, directly or not (a component stands for its descendants)."""
    children = stack.memo("network:children", lambda: _children_index(stack))
    cache: dict[str, set[str]] = stack.memo("network:closure", dict)
    if resource.urn in cache:
        return cache[resource.urn]
    seen: set[str] = set()
    todo = list(resource.dependencies)
    while todo:
        urn = todo.pop()
        if urn in seen:
            continue
        seen.add(urn)
        todo.extend(children.get(urn, ()))
        target = stack.by_urn.get(urn)
        if target is not None:
            todo.extend(target.dependencies)
    cache[resource.urn] = seen
    return seen


def _children_index(stack: Stack) -> dict[str, list[str]]:
    index: dict[str, list[str]] = {}
    for r in stack.resources:
        if r.parent:
            index.setdefault(r.parent, []).append(r.urn)
    return index


def _waits_for(stack: Stack, resource: Resource, target: Resource) -> bool:
    return target.urn in _closure(stack, resource)


def _workspace_of(stack: Stack, resource: Resource) -> Resource | None:
    for workspace in stack.of_type(WORKSPACE):
        if stack.child_of(resource, "workspaceName", workspace):
            return workspace
    return None


def _mode(workspace: Resource) -> Any:
    return workspace.get("managedNetwork.isolationMode")


def _managed(workspace: Resource | None) -> bool:
    return workspace is not None and any(same(_mode(workspace), m) for m in MANAGED_MODES)


def _approved_only(workspace: Resource | None) -> bool:
    return workspace is not None and same(_mode(workspace), "AllowOnlyApprovedOutbound")


def _provisionings(stack: Stack, workspace: Resource) -> list[Resource]:
    return [p for p in stack.of_type(PROVISIONING) if stack.linked(p, "workspaceId", workspace)]


def _outbound_rules(stack: Stack, workspace: Resource) -> list[tuple[str, Any]] | None:
    """``(name, rule)`` of the workspace's outbound rules; None when not known."""
    value = workspace.get("managedNetwork.outboundRules")
    if value is UNKNOWN:
        return None
    rules = list(value.items()) if isinstance(value, dict) else []
    for rule in stack.of_type(OUTBOUND_RULE):
        if stack.child_of(rule, "workspaceName", workspace):
            rules.append((str(rule.get("ruleName")), rule.get("properties")))
    return rules


def _storage_of(stack: Stack, workspace: Resource) -> Resource | None:
    accounts = [s for s in stack.links(workspace, "storageAccount") if s.type == STORAGE_ACCOUNT]
    return accounts[0] if accounts else None


def _keyless(storage: Resource | None) -> bool:
    return storage is not None and storage.get("allowSharedKeyAccess") is False


def _has_storage_pe_rule(stack: Stack, rules: Iterable[tuple[str, Any]], storage: Resource, subresource: str, *, spark: bool = False) -> bool:
    for _name, rule in rules:
        if not isinstance(rule, dict) or not same(rule.get("type"), "PrivateEndpoint"):
            continue
        destination = rule.get("destination")
        if not isinstance(destination, dict) or not same(destination.get("subresourceTarget"), subresource):
            continue
        if spark and destination.get("sparkEnabled") is not True:
            continue
        target = destination.get("serviceResourceId")
        if not known(target) or refers_to(target, storage.type, storage.props):
            return True
    return False


def _role_id(assignment: Resource) -> str | None:
    role = assignment.get("roleDefinitionId")
    return role.rstrip("/").rsplit("/", 1)[-1].lower() if isinstance(role, str) else None


def _assignments_by_principal(stack: Stack) -> tuple[dict[str, list[Resource]], dict[str, list[Resource]]]:
    """The stack's role assignments by the URNs their ``principalId`` depends
    on, and by their known ``principalId`` (lower case)."""
    by_dependency: dict[str, list[Resource]] = {}
    by_id: dict[str, list[Resource]] = {}
    for assignment in stack.of_type(ROLE_ASSIGNMENT):
        for urn in assignment.property_dependencies.get("principalId", ()):
            by_dependency.setdefault(urn, []).append(assignment)
        principal_id = assignment.get("principalId")
        if isinstance(principal_id, str):
            by_id.setdefault(principal_id.lower(), []).append(assignment)
    return by_dependency, by_id


def _roles_granted(stack: Stack, principal: Resource, scope: Resource, *, system: bool = False) -> set[str]:
    """Role ids granted on ``scope`` (or above it) to ``principal``: a user-assigned
    identity, or (``system``) the system identity of a resource. Answered
    once per stack for each (principal, scope) and read only the assignments
    naming the principal (indexed once per stack): checks ask again for every
    deployment on the same compute, and a scan of every assignment per
    question grows with the square of the stack."""
    answers: dict[tuple[int, int, bool], frozenset[str]] = stack.memo("network:roles-granted", dict)
    key = (id(principal), id(scope), system)  # the stack holds both for as long as its memo lives
    if key not in answers:
        answers[key] = frozenset(_granted(stack, principal, scope, system))
    return set(answers[key])


def _granted(stack: Stack, principal: Resource, scope: Resource, system: bool) -> set[str]:
    roles: set[str] = set()
    own = principal.get("identity.principalId" if system else "principalId")
    by_dependency, by_id = stack.memo("network:assignments-by-principal", lambda: _assignments_by_principal(stack))
    candidates = by_dependency.get(principal.urn, []) + (by_id.get(own.lower(), []) if isinstance(own, str) and own else [])
    for assignment in stack.in_order(candidates):
        granted = assignment.depends_on(principal, "principalId") or (
            isinstance(own, str) and own and same(assignment.get("principalId"), own)
        )
        if not granted:
            continue
        if not stack.linked(assignment, "scope", scope):
            continue
        role = _role_id(assignment)
        if role:
            roles.add(role)
    return roles


def _identity_type(value: Any) -> str:
    return str(value).replace(" ", "").replace("_", "").lower() if isinstance(value, str) else ""


def _user_identities(stack: Stack, holder: Resource, path: str) -> list[Resource]:
    """The stack's user-assigned identities named at ``path`` (a list or map of
    ids), by recorded dependency or by name."""
    value = holder.get(path)
    ids = list(value) if isinstance(value, (list, dict)) else []
    found = []
    deps = holder.property_dependencies.get(path.split(".")[0], frozenset())
    for uai in stack.of_type(USER_ASSIGNED_IDENTITY):
        name = uai.get("resourceName")
        by_name = isinstance(name, str) and any(
            isinstance(i, str) and i.rstrip("/").lower().endswith(f"/userassignedidentities/{name.lower()}") for i in ids
        )
        if by_name or uai.urn in deps:
            found.append(uai)
    return found


def _compute_principals(stack: Stack, compute: Resource) -> list[tuple[Resource, bool]]:
    """``(principal, system)`` identities a compute cluster runs as."""
    kind = _identity_type(compute.get("identity.type"))
    principals: list[tuple[Resource, bool]] = []
    if "userassigned" in kind:
        principals += [(uai, False) for uai in _user_identities(stack, compute, "identity.userAssignedIdentities")]
    if "systemassigned" in kind:
        principals.append((compute, True))
    return principals


# --------------------------------------------------------------------------- row 3: provisioning, image-build compute


def _network_provisioned(stack: Stack, _config: dict) -> Finding:
    for deployment in stack.of_type(*DEPLOYMENTS):
        workspace = _workspace_of(stack, deployment)
        if not _managed(workspace):
            continue
        assert workspace is not None
        if workspace.get("provisionNetworkNow") is True:
            continue
        provisionings = _provisionings(stack, workspace)
        if any(_waits_for(stack, deployment, p) for p in provisionings):
            continue
        why = (
            "does not wait for the stack's provisioning of it"
            if provisionings
            else "and nothing in the stack provisions it (no provisionManagedNetwork, provisionNetworkNow unset)"
        )
        yield deployment.urn, (
            f"{deployment.label}: workspaceName is {show(deployment.get('workspaceName'))}, a workspace with a managed "
            f"network ({show(_mode(workspace))}) {why}; Azure creates the managed network only when it is provisioned, "
            "so the deployment's creation fails: provision the network in the stack and make the deployment depend on it"
        )


NETWORK_PROVISIONED = stack_rule(
    Rule(
        name="azure-ml-managed-network-provisioned",
        description="Online and batch deployments in a managed-network workspace are created after the network is provisioned.",
        severity=Severity.HIGH,
        remediation=(
            "Provision the managed network in the stack (the workspace's provisionManagedNetwork action, or "
            "provisionNetworkNow at creation) and make every deployment depend on it."
        ),
        source=MANAGED_NETWORK + "#manually-provision-a-managed-vnet",
        quote=(
            "To create an online deployment, you must manually provision the managed network, or create a compute "
            "instance first which will automatically provision it."
        ),
        resource_types=(ONLINE_DEPLOYMENT, BATCH_DEPLOYMENT, WORKSPACE, PROVISIONING),
        properties=("workspaceName", "managedNetwork.isolationMode", "provisionNetworkNow", "workspaceId"),
        area="network",
    ),
    _network_provisioned,
)


def _conda_environment(stack: Stack, deployment: Resource) -> Resource | None:
    for environment in stack.links(deployment, "properties.environmentId"):
        if environment.type == ENVIRONMENT_VERSION and known(environment.get("properties.condaFile")) and environment.get("properties.condaFile"):
            return environment
    return None


def _image_build_compute(stack: Stack, _config: dict) -> Finding:
    for deployment in stack.of_type(*DEPLOYMENTS):
        environment = _conda_environment(stack, deployment)
        workspace = _workspace_of(stack, deployment)
        if environment is None or workspace is None:
            continue
        build = workspace.get("imageBuildCompute")
        if build is UNKNOWN:
            continue
        if not isinstance(build, str) or not build:
            registries = [r for r in stack.links(workspace, "containerRegistry") if r.type == REGISTRY]
            if any(same(r.get("publicNetworkAccess"), "Disabled") for r in registries):
                yield deployment.urn, (
                    f"{deployment.label}: its environment {environment.label} is built from a conda file, but "
                    f"workspace {workspace.label} has no imageBuildCompute and its registry is private: Azure cannot "
                    "build the image (the registry's own build tasks cannot reach into the network)"
                )
            continue
        clusters = [
            c for c in stack.of_type(COMPUTE) if same(c.get("computeName"), build) and stack.child_of(c, "workspaceName", workspace)
        ]
        if not clusters:
            yield deployment.urn, (
                f"{deployment.label}: its environment {environment.label} is built on imageBuildCompute {build!r} of "
                f"workspace {workspace.label}, which the stack does not create: the image build has nowhere to run"
            )
        elif not any(_waits_for(stack, deployment, c) for c in clusters):
            yield deployment.urn, (
                f"{deployment.label}: its environment {environment.label} is built on imageBuildCompute {build!r}, "
                f"but the deployment does not depend on {clusters[0].label}: the engine may create it before the "
                "compute its image is built on"
            )


IMAGE_BUILD_COMPUTE = stack_rule(
    Rule(
        name="azure-ml-image-build-compute-before-build",
        description=(
            "A deployment whose environment is built from conda waits for the workspace's image-build compute, "
            "which the stack creates."
        ),
        severity=Severity.HIGH,
        remediation=(
            "Set the workspace's imageBuildCompute to a compute cluster the stack declares "
            "(azml:workspace.imageBuildCompute) and make the environments and deployments depend on it."
        ),
        source=MANAGED_NETWORK + "#configure-image-builds",
        quote=(
            "When the Azure Container Registry for your workspace is behind a virtual network, it can't be used to "
            "directly build Docker images. Instead, configure your workspace to use a compute cluster or compute "
            "instance to build images."
        ),
        resource_types=(ONLINE_DEPLOYMENT, BATCH_DEPLOYMENT, ENVIRONMENT_VERSION, WORKSPACE, COMPUTE),
        properties=("properties.environmentId", "properties.condaFile", "imageBuildCompute", "computeName"),
        area="network",
    ),
    _image_build_compute,
)


# --------------------------------------------------------------------------- row 4: package repositories


def _hosts_of_url(url: str) -> str | None:
    host = urlsplit(url if "://" in url else f"https://{url}").hostname
    return host.lower() if host else None


def conda_hosts(conda_file: str) -> dict[str, str]:
    """Host -> what needs it (``channel conda-forge``, ``pip``) for a conda
    specification; ``{}`` when it cannot be read."""
    try:
        import yaml

        spec = yaml.safe_load(conda_file)
    except Exception:  # noqa: BLE001 - an unreadable spec is the build's problem, not this rule's
        return {}
    if not isinstance(spec, dict):
        return {}
    hosts: dict[str, str] = {}
    channels = spec.get("channels") or ["defaults"]
    for channel in channels:
        channel = str(channel)
        if channel == "defaults":
            hosts.setdefault(DEFAULTS_CHANNEL_HOST, "channel defaults")
        elif "://" in channel:
            host = _hosts_of_url(channel)
            if host:
                hosts.setdefault(host, f"channel {channel}")
        else:
            hosts.setdefault(ANACONDA_CHANNEL_HOST, f"channel {channel}")
    pip: list[str] = []
    for dependency in spec.get("dependencies") or []:
        if isinstance(dependency, dict) and isinstance(dependency.get("pip"), list):
            pip += [str(p) for p in dependency["pip"]]
    if pip:
        index_urls = []
        uses_pypi = True
        for line in pip:
            parts = line.split()
            if parts and parts[0] in ("--index-url", "-i", "--extra-index-url") and len(parts) > 1:
                index_urls.append(parts[1])
                if parts[0] != "--extra-index-url":
                    uses_pypi = False
        if uses_pypi:
            for host in PYPI_HOSTS:
                hosts.setdefault(host, "pip (PyPI)")
        for url in index_urls:
            host = _hosts_of_url(url)
            if host:
                hosts.setdefault(host, f"pip index {url}")
    return hosts


def _fqdn_covers(pattern: str, host: str) -> bool:
    pattern = pattern.lower().rstrip(".")
    if pattern.startswith("*."):
        return host.endswith(pattern[1:])
    return host == pattern


def _package_outbound(stack: Stack, _config: dict) -> Finding:
    for environment in stack.of_type(ENVIRONMENT_VERSION):
        conda = environment.get("properties.condaFile")
        if not isinstance(conda, str) or not conda:
            continue
        workspace = _workspace_of(stack, environment)
        if not _approved_only(workspace):
            continue
        assert workspace is not None
        rules = _outbound_rules(stack, workspace)
        if rules is None:
            continue
        fqdns = [
            str(rule.get("destination"))
            for _name, rule in rules
            if isinstance(rule, dict) and same(rule.get("type"), "FQDN") and not same(rule.get("status"), "Inactive")
            and isinstance(rule.get("destination"), str)
        ]
        missing = {host: why for host, why in conda_hosts(conda).items() if not any(_fqdn_covers(f, host) for f in fqdns)}
        if missing:
            listed = ", ".join(f"{host} ({why})" for host, why in missing.items())
            yield environment.urn, (
                f"{environment.label}: properties.condaFile installs from {listed}, but workspace {workspace.label} "
                f"allows only approved outbound and managedNetwork.outboundRules has no FQDN rule for "
                f"{'it' if len(missing) == 1 else 'them'}: the image build on the image-build compute fails"
            )


PACKAGE_OUTBOUND = stack_rule(
    Rule(
        name="azure-ml-image-build-package-outbound",
        description=(
            "A conda environment built in an approved-outbound workspace installs only from hosts an FQDN outbound "
            "rule approves."
        ),
        severity=Severity.HIGH,
        remediation=(
            "Add FQDN outbound rules for the environment's channels and pip index (azml:workspace."
            "packageRepositories / outboundFqdns; billed: Azure Firewall), install from a private feed an outbound "
            "rule reaches, or use a prebuilt image from the private registry (environment.image)."
        ),
        source=MANAGED_NETWORK + "#configure-image-builds",
        quote=(
            "The compute resource used to build Docker images needs to be able to access the package repositories "
            "that are used to train and deploy your models. If you're using a network configured to allow only "
            "approved outbound, you may need to add rules that allow access to public repos or use private Python "
            "packages."
        ),
        resource_types=(ENVIRONMENT_VERSION, WORKSPACE, OUTBOUND_RULE),
        properties=("properties.condaFile", "managedNetwork.isolationMode", "managedNetwork.outboundRules"),
        area="network",
    ),
    _package_outbound,
)


# --------------------------------------------------------------------------- row 6: serverless Spark monitors


def _spark_monitors(stack: Stack) -> Iterator[tuple[Resource, Resource]]:
    for schedule in stack.of_type(SCHEDULE):
        compute = schedule.get("properties.action.monitorDefinition.computeConfiguration")
        if not isinstance(compute, dict) or not same(compute.get("computeType"), "ServerlessSpark"):
            continue
        workspace = _workspace_of(stack, schedule)
        if workspace is not None:
            yield schedule, workspace


def _spark_storage_rule(stack: Stack, _config: dict) -> Finding:
    for schedule, workspace in _spark_monitors(stack):
        if not _managed(workspace):
            continue
        storage = _storage_of(stack, workspace)
        rules = _outbound_rules(stack, workspace)
        if storage is None or rules is None:
            continue
        if not _has_storage_pe_rule(stack, rules, storage, "blob", spark=True):
            yield schedule.urn, (
                f"{schedule.label}: runs on serverless Spark in workspace {workspace.label} "
                f"({show(_mode(workspace))}), whose managedNetwork.outboundRules has no PrivateEndpoint rule with "
                f"sparkEnabled true to its storage {storage.label} (blob): the monitoring job cannot reach its data"
            )


SPARK_STORAGE_RULE = stack_rule(
    Rule(
        name="azure-ml-spark-storage-outbound-rule",
        description="Serverless Spark jobs in a managed network need a Spark-enabled private endpoint rule to the storage account.",
        severity=Severity.HIGH,
        remediation=(
            "Add a PrivateEndpoint outbound rule to the workspace storage (subresource blob) with sparkEnabled: true "
            "(the stack adds it when model monitors run)."
        ),
        source=MANAGED_NETWORK + "#configure-for-serverless-spark-jobs",
        quote=(
            "Configure a managed virtual network for the workspace and add an outbound private endpoint for the "
            "Azure Storage Account."
        ),
        resource_types=(SCHEDULE, WORKSPACE, OUTBOUND_RULE),
        properties=("properties.action.monitorDefinition.computeConfiguration", "managedNetwork.outboundRules"),
        area="network",
    ),
    _spark_storage_rule,
)


def _spark_provisioned(stack: Stack, _config: dict) -> Finding:
    for schedule, workspace in _spark_monitors(stack):
        if not _managed(workspace):
            continue
        spark = [p for p in _provisionings(stack, workspace) if p.get("includeSpark") is True]
        if any(_waits_for(stack, schedule, p) for p in spark):
            continue
        why = "does not wait for it" if spark else "nothing in the stack provisions it with includeSpark true"
        yield schedule.urn, (
            f"{schedule.label}: runs on serverless Spark in workspace {workspace.label} ({show(_mode(workspace))}), "
            f"whose managed network must be provisioned with Spark; {why}"
        )


SPARK_PROVISIONED = stack_rule(
    Rule(
        name="azure-ml-spark-network-provisioned",
        description="Serverless Spark jobs (model monitors) in a managed network run after the network is provisioned with Spark.",
        severity=Severity.HIGH,
        remediation=(
            "Provision the managed network with includeSpark (az ml workspace provision-network --include-spark; the "
            "stack's ManagedNetworkProvisioning with include_spark) and make the monitors depend on it."
        ),
        source=MANAGED_NETWORK + "#configure-for-serverless-spark-jobs",
        quote="After you configure the managed virtual network, provision it and flag it to allow Spark jobs.",
        resource_types=(SCHEDULE, WORKSPACE, PROVISIONING),
        properties=("properties.action.monitorDefinition.computeConfiguration", "includeSpark", "workspaceId"),
        area="network",
    ),
    _spark_provisioned,
)


def _monitor_identity(stack: Stack, _config: dict) -> Finding:
    path = "properties.action.monitorDefinition.computeConfiguration.computeIdentity"
    for schedule, workspace in _spark_monitors(stack):
        storage = _storage_of(stack, workspace)
        if not _keyless(storage):
            continue
        assert storage is not None
        identity = schedule.get(path)
        if identity is UNKNOWN:
            continue
        kind = identity.get("computeIdentityType") if isinstance(identity, dict) else MISSING
        uais = (
            _user_identities(stack, schedule, f"{path}.identity.userAssignedIdentities")
            if same(kind, "ManagedIdentity") and "userassigned" in _identity_type(identity.get("identity", {}).get("type"))
            else []
        )
        if not uais:
            yield schedule.urn, (
                f"{schedule.label}: {path}.computeIdentityType is {show(kind)}; workspace storage {storage.label} "
                "allows no shared key, so the monitoring job needs a user-assigned managed identity (in the stack) "
                "with Storage Blob Data Contributor on it"
            )
            continue
        attached = _user_identities(stack, workspace, "identity.userAssignedIdentities")
        for uai in uais:
            roles = _roles_granted(stack, uai, storage)
            problems = []
            if not roles & {BLOB_CONTRIBUTOR, BLOB_OWNER}:
                problems.append(f"is not granted Storage Blob Data Contributor on {storage.label}")
            if uai not in attached:
                problems.append(f"is not attached to workspace {workspace.label} (identity.userAssignedIdentities)")
            if problems:
                yield schedule.urn, (
                    f"{schedule.label}: {path} runs as {uai.label}, which " + " and ".join(problems)
                    + "; monitoring on key-less storage fails"
                )


MONITOR_IDENTITY = stack_rule(
    Rule(
        name="azure-ml-monitor-identity-keyless-storage",
        description=(
            "Model monitors on key-less workspace storage run as a user-assigned identity attached to the workspace "
            "and granted Storage Blob Data Contributor."
        ),
        severity=Severity.HIGH,
        remediation=(
            "Give the monitor's serverless Spark compute a ManagedIdentity compute identity naming a user-assigned "
            "identity the stack creates, attaches to the workspace and grants Storage Blob Data Contributor on the "
            "workspace storage."
        ),
        source=LOCAL_AUTH + "#scenarios-for-role-assignments",
        quote=(
            "Monitoring (evaluating model quality/perf) | User-assigned managed identity | Storage Blob Data "
            "Contributor | ... The user-assigned managed identity is in addition to the system-assigned managed "
            "identity for your workspace."
        ),
        resource_types=(SCHEDULE, WORKSPACE, STORAGE_ACCOUNT, ROLE_ASSIGNMENT, USER_ASSIGNED_IDENTITY),
        properties=(
            "properties.action.monitorDefinition.computeConfiguration.computeIdentity",
            "identity.userAssignedIdentities",
            "allowSharedKeyAccess",
            "roleDefinitionId",
        ),
        area="identity",
    ),
    _monitor_identity,
)


# --------------------------------------------------------------------------- row 7: batch


def _batch_outbound(stack: Stack, _config: dict) -> Finding:
    for deployment in stack.of_type(BATCH_DEPLOYMENT):
        workspace = _workspace_of(stack, deployment)
        if not _managed(workspace):
            continue
        assert workspace is not None
        storage = _storage_of(stack, workspace)
        rules = _outbound_rules(stack, workspace)
        if storage is None or rules is None:
            continue
        missing = [sub for sub in ("queue", "table") if not _has_storage_pe_rule(stack, rules, storage, sub)]
        if missing:
            yield deployment.urn, (
                f"{deployment.label}: a batch deployment in workspace {workspace.label} ({show(_mode(workspace))}), "
                f"whose managedNetwork.outboundRules has no PrivateEndpoint rule to storage {storage.label} for "
                f"{' and '.join(missing)}: batch jobs cannot keep their queues and tables"
            )


BATCH_OUTBOUND = stack_rule(
    Rule(
        name="azure-ml-batch-storage-outbound-rules",
        description="Batch deployments in a managed network need queue and table private endpoint rules to the workspace storage.",
        severity=Severity.HIGH,
        remediation=(
            "Add PrivateEndpoint outbound rules to the workspace storage for the queue and table subresources "
            "(the stack adds them when it has batch endpoints)."
        ),
        source=MANAGED_NETWORK + "#scenario-use-batch-endpoints-or-parallelrunstep",
        quote=(
            "If you plan to use Azure Machine Learning batch endpoints for deployment or ParallelRunStep, add "
            "outbound private endpoint rules to allow traffic to the following sub resources for the default "
            "storage account: queue, table"
        ),
        resource_types=(BATCH_DEPLOYMENT, WORKSPACE, OUTBOUND_RULE),
        properties=("workspaceName", "managedNetwork.outboundRules"),
        area="network",
    ),
    _batch_outbound,
)


def _compute_of(stack: Stack, deployment: Resource) -> list[Resource]:
    return [c for c in stack.links(deployment, "properties.compute") if c.type == COMPUTE]


def _batch_identity(stack: Stack, _config: dict) -> Finding:
    for deployment in stack.of_type(BATCH_DEPLOYMENT):
        workspace = _workspace_of(stack, deployment)
        storage = _storage_of(stack, workspace) if workspace is not None else None
        if not _keyless(storage):
            continue
        assert storage is not None
        for compute in _compute_of(stack, deployment):
            uais = [p for p, system in _compute_principals(stack, compute) if not system]
            if not uais:
                yield deployment.urn, (
                    f"{deployment.label}: runs on {compute.label}, whose identity.type is "
                    f"{show(compute.get('identity.type'))}: batch (parallel run) jobs on key-less storage "
                    f"{storage.label} need a user-assigned identity with Storage Queue and Table Data Contributor"
                )
                continue
            for uai in uais:
                roles = _roles_granted(stack, uai, storage)
                missing = [ROLE_NAMES[r] for r in (QUEUE_CONTRIBUTOR, TABLE_CONTRIBUTOR) if r not in roles]
                if missing:
                    yield deployment.urn, (
                        f"{deployment.label}: runs on {compute.label} as {uai.label}, which is not granted "
                        f"{' and '.join(missing)} on key-less storage {storage.label}: batch jobs fail"
                    )


BATCH_IDENTITY = stack_rule(
    Rule(
        name="azure-ml-batch-compute-identity-roles",
        description=(
            "Batch deployments on key-less storage run on compute with a user-assigned identity granted Storage "
            "Queue and Table Data Contributor."
        ),
        severity=Severity.HIGH,
        remediation=(
            "Give the batch deployment's compute cluster a user-assigned identity and grant it Storage Queue Data "
            "Contributor and Storage Table Data Contributor on the workspace storage."
        ),
        source=LOCAL_AUTH + "#scenarios-for-role-assignments",
        quote=(
            "Parallel Run Step (PRS) | User-assigned managed identity | Storage Table Data Contributor, Storage "
            "Queue Data Contributor"
        ),
        resource_types=(BATCH_DEPLOYMENT, COMPUTE, ROLE_ASSIGNMENT, USER_ASSIGNED_IDENTITY, STORAGE_ACCOUNT),
        properties=("properties.compute", "identity", "roleDefinitionId", "allowSharedKeyAccess"),
        area="identity",
    ),
    _batch_identity,
)


# --------------------------------------------------------------------------- row 16: compute identities


def _compute_data_roles(stack: Stack, _config: dict) -> Finding:
    for compute in stack.of_type(COMPUTE):
        if not same(compute.get("properties.computeType"), "AmlCompute"):
            continue
        workspace = _workspace_of(stack, compute)
        storage = _storage_of(stack, workspace) if workspace is not None else None
        if not _keyless(storage):
            continue
        assert storage is not None
        principals = _compute_principals(stack, compute)
        if not principals:
            yield compute.urn, (
                f"{compute.label}: identity.type is {show(compute.get('identity.type'))}; workspace storage "
                f"{storage.label} allows no shared key, so the cluster needs a managed identity with a Storage Blob "
                "Data role to mount and read data"
            )
            continue
        if any(_roles_granted(stack, p, storage, system=system) & {BLOB_READER, BLOB_CONTRIBUTOR, BLOB_OWNER} for p, system in principals):
            continue
        names = ", ".join("its system identity" if system else p.label for p, system in principals)
        yield compute.urn, (
            f"{compute.label}: runs as {names}, which has no Storage Blob Data role on key-less storage "
            f"{storage.label}: jobs cannot mount or read their data"
        )


COMPUTE_DATA_ROLES = stack_rule(
    Rule(
        name="azure-ml-compute-identity-data-roles",
        description="Compute clusters on key-less workspace storage have a managed identity granted a Storage Blob Data role.",
        severity=Severity.HIGH,
        remediation=(
            "Give the cluster a managed identity (system- or user-assigned) and grant it at least Storage Blob Data "
            "Reader (Contributor to write outputs) on the workspace storage."
        ),
        source="machine-learning/how-to-identity-based-service-authentication#access-data-for-training-jobs-on-compute-using-managed-identity",
        quote="Grant compute managed identity at least Storage Blob Data Reader role on the storage account.",
        resource_types=(COMPUTE, WORKSPACE, STORAGE_ACCOUNT, ROLE_ASSIGNMENT, USER_ASSIGNED_IDENTITY),
        properties=("identity", "properties.computeType", "allowSharedKeyAccess", "roleDefinitionId", "principalId"),
        area="identity",
    ),
    _compute_data_roles,
)


POLICIES = [
    NETWORK_PROVISIONED,
    IMAGE_BUILD_COMPUTE,
    PACKAGE_OUTBOUND,
    SPARK_STORAGE_RULE,
    SPARK_PROVISIONED,
    MONITOR_IDENTITY,
    BATCH_OUTBOUND,
    BATCH_IDENTITY,
    COMPUTE_DATA_ROLES,
]

"""Creation order: what the engine must have created before a resource
(from the recorded dependency graph).

Pulumi creates independent resources in parallel: a resource that needs
another to exist first must depend on it (``depends_on`` or an input that
flows from it), or the first ``pulumi up`` races. These rules read the
dependencies the engine gives stack policies (the SDK expands a component
dependency into the custom resources inside it).
"""

from __future__ import annotations

from pulumi_policy import Severity

from azml_policies.checks import Finding
from azml_policies.topology import Resource, Stack

from .rules import Rule, stack_rule

ROLE_ASSIGNMENT = "azure-native:authorization:RoleAssignment"
USER_ASSIGNED_IDENTITY = "azure-native:managedidentity:UserAssignedIdentity"
FEDERATED_CREDENTIAL = "azure-native:managedidentity:FederatedIdentityCredential"
_NOT_CONSUMERS = frozenset({ROLE_ASSIGNMENT, USER_ASSIGNED_IDENTITY, FEDERATED_CREDENTIAL})


def waits_for(stack: Stack, resource: Resource, other: Resource) -> bool:
    """Whether the engine creates ``resource`` only after ``other``: a path of
    dependencies (or property dependencies) leads from one to the other."""
    closure = stack.memo(("waits-for", resource.urn), lambda: _closure(stack, resource))
    return other.urn in closure


def _closure(stack: Stack, resource: Resource) -> frozenset[str]:
    seen: set[str] = set()
    pending = [resource]
    while pending:
        current = pending.pop()
        needs = set(current.dependencies)
        for urns in current.property_dependencies.values():
            needs.update(urns)
        for urn in needs - seen:
            seen.add(urn)
            pending.extend(stack.with_urns([urn]))
    return frozenset(seen)


def _grants_of(stack: Stack, identity: Resource) -> list[Resource]:
    """Role assignments whose principal is ``identity``: its principal id
    flowed into them, or (outputs known) they name it."""
    principal = identity.get("principalId")
    return [
        ra
        for ra in stack.of_type(ROLE_ASSIGNMENT)
        if ra.depends_on(identity, "principalId")
        or (isinstance(principal, str) and principal and ra.get("principalId") == principal)
    ]


def _grants_before_use(stack: Stack, config: dict) -> Finding:
    for identity in stack.of_type(USER_ASSIGNED_IDENTITY):
        grants = _grants_of(stack, identity)
        if not grants:
            continue
        consumers = [r for r in stack.resources if r.type not in _NOT_CONSUMERS and identity.urn in r.dependencies]
        for consumer in consumers:
            missing = [g for g in grants if not waits_for(stack, consumer, g)]
            if missing:
                names = ", ".join(sorted(g.name for g in missing))
                yield consumer.urn, (
                    f"{consumer.label}: uses identity {identity.label} but does not depend on its role "
                    f"assignment(s) {names}: the engine may create it before its identity may read what it needs"
                )


POLICIES = [
    stack_rule(
        Rule(
            name="azure-rbac-grants-before-identity-use",
            description="A resource that runs as a user-assigned identity is created after that identity's role assignments.",
            severity=Severity.HIGH,
            remediation=(
                "Make the resource depend on the identity's role assignments (ResourceOptions(depends_on=[...])): "
                "Azure checks the identity's access when the resource starts (image pull, model download, "
                "data read), not later."
            ),
            source="machine-learning/how-to-access-resources-from-endpoints-managed-identities",
            quote=(
                "Online endpoints require Azure Container Registry pull permission, AcrPull permission, to the "
                "container registry and Storage Blob Data Reader permission to the default datastore of the workspace."
            ),
            resource_types=(USER_ASSIGNED_IDENTITY, ROLE_ASSIGNMENT, "*"),
            properties=("RoleAssignment.principalId", "<consumer>.identity.userAssignedIdentities"),
            area="ordering",
        ),
        _grants_before_use,
    ),
]

"""Day-two operations against the stack's own locks.

A management lock applies to its scope and everything below it: "When you
apply a lock at a parent scope, all resources within that scope inherit the
same lock", and a CanNotDelete lock also blocks deleting the role
assignments and diagnostic settings scoped below it
(https://learn.microsoft.com/azure/azure-resource-manager/management/lock-resources).
A lock that protects the platform must not block the two operations that
happen after day one:

- a **release** that removes a canary deployment (``azml release advance``
  rolls back or completes, and the canary's deployment, autoscale setting
  and whatever is scoped to it go);
- a **persona change** that replaces a role assignment (a group's object id
  changes in ``azml:principals``: the old assignment is deleted).

Each is simulated from two real plans of the program: the stack as it was
before the operation (the stack's config plus a canary deployment on the
first online endpoint and one more principal in the first persona) and the
stack as configured. What the first has and the second has not — compared by
ARM resource id, so a replacement counts as a deletion — is deleted by the
operation; a deletion is blocked when a CanNotDelete or ReadOnly lock of the
stack covers its id, and the routing update when a ReadOnly lock covers the
endpoint.
"""

from __future__ import annotations

import copy
import dataclasses
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

from ..config import StackFile
from .arm import ARM_TYPES, arm_id
from .forked import Forked, start as start_forked
from .mocks import ClientConfig, autoname
from .model import Plan, PlannedResource

LOCK_TYPES = (
    "azure-native:authorization:ManagementLockByScope",
    "azure-native:authorization:ManagementLockAtResourceGroupLevel",
    "azure-native:authorization:ManagementLockAtResourceLevel",
    "azure-native:authorization:ManagementLockAtSubscriptionLevel",
)
ROLE_ASSIGNMENT = "azure-native:authorization:RoleAssignment"
CANARY_OPERATION = "release removes a canary deployment"
PERSONA_OPERATION = "persona change replaces a role assignment"
_NAMESPACE = uuid.UUID("3a1f4c2e-8d5b-4e0a-9c71-2b6d0f9e5a34")


def resource_ids(plan: Plan, client: ClientConfig | None = None) -> dict[str, PlannedResource]:
    """ARM id (lower case) -> resource, for every resource with an ARM type."""
    subscription = (client or ClientConfig()).subscription_id
    ids: dict[str, PlannedResource] = {}
    for resource in plan.resources:
        row = ARM_TYPES.get(resource.type)
        if not resource.custom or row is None:
            continue
        name = resource.inputs.get(row.name_key) or autoname(resource.name)
        ids[arm_id(resource.type, str(name), resource.inputs, subscription).lower()] = resource
    return ids


@dataclass(frozen=True)
class Lock:
    name: str  # Pulumi name
    level: str
    scope: str  # lower case

    def covers(self, resource_id: str) -> bool:
        return resource_id == self.scope or resource_id.startswith(self.scope + "/")


def locks_of(plan: Plan, client: ClientConfig | None = None) -> list[Lock]:
    subscription = (client or ClientConfig()).subscription_id
    locks = []
    for resource in plan.resources:
        if resource.type not in LOCK_TYPES:
            continue
        inputs = resource.inputs
        scope = inputs.get("scope")
        if resource.type.endswith("AtSubscriptionLevel"):
            scope = f"/subscriptions/{subscription}"
        elif resource.type.endswith("AtResourceGroupLevel"):
            scope = f"/subscriptions/{subscription}/resourceGroups/{inputs.get('resourceGroupName')}"
        elif resource.type.endswith("AtResourceLevel"):
            parent = f"/{inputs['parentResourcePath']}" if inputs.get("parentResourcePath") else ""
            scope = (
                f"/subscriptions/{subscription}/resourceGroups/{inputs.get('resourceGroupName')}/providers/"
                f"{inputs.get('resourceProviderNamespace')}{parent}/{inputs.get('resourceType')}/{inputs.get('resourceName')}"
            )
        if isinstance(scope, str) and scope:
            locks.append(Lock(resource.name, str(inputs.get("level", "")), scope.rstrip("/").lower()))
    return locks


@dataclass
class Operation:
    name: str
    change: str
    deletes: list[PlannedResource] = field(default_factory=list)
    updates: list[PlannedResource] = field(default_factory=list)
    blocked: list[tuple[PlannedResource, Lock, str]] = field(default_factory=list)
    skipped: str | None = None

    @property
    def allowed(self) -> bool:
        return not self.blocked

    def to_json(self) -> dict[str, Any]:
        return {
            "operation": self.name,
            "change": self.change,
            "skipped": self.skipped,
            "deletes": [_label(r) for r in self.deletes],
            "updates": [_label(r) for r in self.updates],
            "blockedBy": [
                {"resource": _label(r), "lock": lock.name, "level": lock.level, "action": action}
                for r, lock, action in self.blocked
            ],
            "allowed": self.allowed,
        }

    def lines(self) -> list[str]:
        if self.skipped:
            return [f"  {self.name}: not simulated ({self.skipped})"]
        verdict = "allowed" if self.allowed else "BLOCKED by the stack's locks"
        lines = [f"  {self.name} ({self.change}): {verdict}; deletes {len(self.deletes)} resource(s)"]
        for resource, lock, action in self.blocked:
            lines.append(f"    {action} {_label(resource)} fails with ScopeLocked: {lock.level} lock {lock.name!r} covers it")
        return lines


def _label(resource: PlannedResource) -> str:
    return f"{resource.type.rsplit(':', 1)[-1]}::{resource.name}"


@dataclass
class DayTwoReport:
    operations: list[Operation]

    @property
    def blocked(self) -> list[Operation]:
        return [o for o in self.operations if not o.allowed]

    def to_json(self) -> dict[str, Any]:
        return {"operations": [o.to_json() for o in self.operations]}

    def lines(self) -> list[str]:
        lines = ["Day-two operations against the stack's locks:"]
        for operation in self.operations:
            lines.extend(operation.lines())
        return lines


class DayTwoError(RuntimeError):
    """The simulation did not produce the change it models."""


def _before_config(stack_file: StackFile, deploys_online: bool = True) -> tuple[dict[str, Any], str | None, str | None]:
    """The config before both operations: a canary on the first online
    endpoint, one more principal in the first persona. Returns the config,
    the canary (``None`` without online deployments) and the added principal
    (``None`` without personas)."""
    config = copy.deepcopy(stack_file.config)
    canary = principal = None
    endpoints = config.get("azml:onlineEndpoints")
    if deploys_online and isinstance(endpoints, list) and endpoints and endpoints[0].get("deployments"):
        endpoint = endpoints[0]
        taken = {d.get("name") for d in endpoint["deployments"]}
        name = next(f"canary{n or ''}" for n in range(100) if f"canary{n or ''}" not in taken)
        deployment = copy.deepcopy(endpoint["deployments"][0])
        deployment["name"] = name
        endpoint["deployments"].append(deployment)
        canary = f"deployment {name!r} of endpoint {endpoint.get('name')!r}"
    principals = config.get("azml:principals")
    if isinstance(principals, dict):
        for persona in sorted(principals):
            if isinstance(principals[persona], list):
                principal = str(uuid.uuid5(_NAMESPACE, f"{stack_file.stack}/{persona}"))
                principals[persona] = [*principals[persona], principal]
                break
    return config, canary, principal


@dataclass(frozen=True)
class Before:
    """The plan before both operations, and what was added to make it."""

    plan: Plan | None
    canary: str | None  # "deployment 'canary' of endpoint 'x'"
    endpoint: str | None  # the endpoint's Pulumi name (its config name)
    principal: str | None


def plan_before(stack_file: StackFile, run: Callable[[StackFile], Plan], after: Plan | None = None) -> Before:
    """Plan the stack as it was before both operations (``run`` plans a stack
    file). ``after``, the stack as configured, tells whether it deploys online
    deployments at all (``azml:phase: platform`` does not)."""
    deploys_online = after is None or _deploys_online(after)
    config, canary, principal = _before_config(stack_file, deploys_online)
    endpoint = config["azml:onlineEndpoints"][0].get("name") if canary else None
    plan = run(dataclasses.replace(stack_file, config=config)) if canary or principal else None
    return Before(plan, canary, endpoint, principal)


def start_before(stack_file: StackFile, run: Callable[[StackFile], Plan]) -> Forked[Before] | None:
    """Start planning the stack before both operations in a forked child
    (:mod:`azml.plan.forked`), to run beside the plan of the stack as
    configured; for :func:`simulate`. Only when the config asks for locks (a
    stack without them is not planned a second time) and a child can be forked."""
    governance = stack_file.namespace().get("governance")
    if not (isinstance(governance, dict) and governance.get("locks") is True):
        return None
    return start_forked(plan_before, stack_file, run)


def simulate(
    stack_file: StackFile, after: Plan, run: Callable[[StackFile], Plan], started: Forked[Before] | None = None
) -> DayTwoReport:
    """Both operations, from the plan before them to ``after``, the plan of
    the stack as configured. A stack without locks cannot block them: it is
    not planned a second time. ``started`` is that plan begun by
    :func:`start_before`; without it, or when the child delivered nothing, or
    when it added a canary to a stack that deploys none (it could not know),
    the plan is made here."""
    if not locks_of(after):
        if started is not None:
            started.cancel()
        reason = "the stack has no locks, so nothing can block it"
        return DayTwoReport([Operation(CANARY_OPERATION, "", skipped=reason), Operation(PERSONA_OPERATION, "", skipped=reason)])
    before = started.result() if started is not None else None
    if before is None or (before.canary is not None and not _deploys_online(after)):
        before = plan_before(stack_file, run, after)
    return compare(before, after)


def _deploys_online(plan: Plan) -> bool:
    return any(r.type.endswith(":OnlineDeployment") for r in plan.resources)


def compare(before: Before, after: Plan) -> DayTwoReport:
    """What each operation deletes going from ``before`` to ``after``, and
    which of ``after``'s locks block it."""
    canary_op = Operation(CANARY_OPERATION, f"remove {before.canary}" if before.canary else "")
    persona_op = Operation(
        PERSONA_OPERATION, f"replace principal {before.principal} by the configured one" if before.principal else ""
    )
    if before.canary is None:
        canary_op.skipped = "the stack has no online deployment"
    if before.principal is None:
        persona_op.skipped = "the stack assigns no persona"
    if before.plan is None:
        return DayTwoReport([canary_op, persona_op])

    before_ids, after_ids = resource_ids(before.plan), resource_ids(after)
    locks = locks_of(after)
    for resource_id in sorted(set(before_ids) - set(after_ids)):
        resource = before_ids[resource_id]
        is_persona = resource.type == ROLE_ASSIGNMENT and resource.inputs.get("principalId") == before.principal
        operation = persona_op if is_persona else canary_op
        operation.deletes.append(resource)
        for lock in locks:
            if lock.level in ("CanNotDelete", "ReadOnly") and lock.covers(resource_id):
                operation.blocked.append((resource, lock, "deleting"))
    if before.endpoint is not None:
        # Moving traffic off the canary updates the endpoint (the routing resource's PUT).
        for resource_id, resource in after_ids.items():
            if resource.type.endswith(":OnlineEndpoint") and resource.name == before.endpoint:
                canary_op.updates.append(resource)
                for lock in locks:
                    if lock.level == "ReadOnly" and lock.covers(resource_id):
                        canary_op.blocked.append((resource, lock, "updating"))
    for operation in (canary_op, persona_op):
        if not operation.skipped and not operation.deletes:
            raise DayTwoError(f"simulating '{operation.name}' ({operation.change}) deleted nothing")
    return DayTwoReport([canary_op, persona_op])

"""Governance and cost: persona RBAC (with a traffic-approver custom role),
Azure Policy assignments, a budget, storage lifecycle rules, locks and, opt-in,
Microsoft Defender for Cloud plans on the subscription (components/defender.py).

Locks: "When you apply a lock at a parent scope, all resources within that
scope inherit the same lock", and "A cannot-delete lock on a resource or
resource group prevents the deletion of Azure RBAC assignments"; a diagnostic
setting, an extension resource, inherits the lock of the resource it is on
(https://learn.microsoft.com/azure/azure-resource-manager/management/lock-resources).
A lock on the workspace would therefore block every routine release:
removing a canary deployment or an endpoint (children of the workspace),
replacing a persona's role assignment (at workspace scope) or the endpoint's
diagnostic setting. So Azure locks go only on the data (workspace storage)
and the secrets (Key Vault), whose stack-managed role assignments and
diagnostic settings are created once with the platform, not by releases;
the workspace is protected from deletion by Pulumi instead
(:func:`protect_workspace`: ``pulumi destroy`` or a change that would
replace it fails until the option is removed).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import pulumi
from pulumi_azure_native import authorization, consumption, storage

from azml.config.platform.governance import BudgetConfig, GovernanceConfig, LifecycleRule
from azml.config.schema import PrincipalsConfig

from .defender import defender_pricings
from .roles import assign_role

#: What an approver may do: see the workspace and endpoints, and update an
#: endpoint — which is how traffic moves. Azure has no finer action than
#: onlineEndpoints/write, so this is the narrowest role that can shift traffic.
APPROVER_ACTIONS = (
    "Microsoft.MachineLearningServices/workspaces/read",
    "Microsoft.MachineLearningServices/workspaces/onlineEndpoints/read",
    "Microsoft.MachineLearningServices/workspaces/onlineEndpoints/write",
    "Microsoft.MachineLearningServices/workspaces/onlineEndpoints/deployments/read",
)

_NAMESPACE = uuid.UUID("1c7e0f0a-4f5b-4c39-9b0e-3d7f9a9e2b61")


@dataclass(frozen=True)
class GovernanceArgs:
    """Inputs of :class:`Governance`.

    ``resource_group_id`` scopes policies, the budget and the approver role;
    ``locked_ids`` are the resources that get CanNotDelete locks when
    ``config.locks`` is on (never a scope holding what releases create and
    delete: see the module doc); ``action_group_id`` receives budget alerts;
    ``storage_policy_exclusions`` are storage accounts the storage
    public-network policy must not deny (the function host account, which
    Event Grid reaches through its firewall as a trusted service).
    """

    config: GovernanceConfig
    principals: PrincipalsConfig
    name_prefix: str
    resource_group_id: pulumi.Input[str]
    resource_group_name: pulumi.Input[str]
    workspace_id: pulumi.Input[str]
    workspace_name: str
    storage_account_name: pulumi.Input[str]
    subscription_id: pulumi.Input[str]
    locked_ids: Mapping[str, pulumi.Input[str]]
    action_group_id: pulumi.Input[str] | None = None
    storage_policy_exclusions: Sequence[pulumi.Input[str]] = ()
    tags: Mapping[str, str] = field(default_factory=dict)


#: Built-in policies that refuse a storage account whose public network access is not Disabled.
STORAGE_PUBLIC_NETWORK_POLICIES = frozenset({"storage-no-public-network"})
WORKSPACE_TYPE = "azure-native:machinelearningservices:Workspace"


def protect_workspace(args: pulumi.ResourceTransformationArgs) -> pulumi.ResourceTransformationResult | None:
    """A transformation for the workspace component: Pulumi's ``protect`` on
    the Azure ML workspace itself (not its dependent resources), in place of
    an Azure lock that its children would inherit."""
    if args.type_ == WORKSPACE_TYPE or args.type_.startswith("azure-native:machinelearningservices/") and args.type_.endswith(":Workspace"):
        return pulumi.ResourceTransformationResult(args.props, pulumi.ResourceOptions.merge(args.opts, pulumi.ResourceOptions(protect=True)))
    return None


class Governance(pulumi.ComponentResource):
    """Outputs: ``approver_role_id``, ``defender_pricing_ids`` (pricingName to
    the pricing's id, one per plan in ``defenderPlans``) and
    ``defender_pricing_id`` (the Containers plan's, or None)."""

    def __init__(self, name: str, args: GovernanceArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("azml:components:Governance", name, None, opts)
        self.approver_role_id = self._personas(args)
        for policy in args.config.policies:
            authorization.PolicyAssignment(
                f"policy-{policy.label}",
                policy_assignment_name=f"azml-{policy.label}"[:64],
                scope=args.resource_group_id,
                policy_definition_id=policy.resolved_definition_id,
                display_name=f"azml {args.name_prefix}: {policy.label}",
                enforcement_mode=policy.enforcement,
                parameters={key: {"value": value} for key, value in policy.parameters.items()},
                # The function host account keeps its public endpoint for
                # trusted services (Event Grid delivery): outside this policy.
                not_scopes=(
                    list(args.storage_policy_exclusions) if policy.builtin in STORAGE_PUBLIC_NETWORK_POLICIES else None
                ) or None,
                opts=pulumi.ResourceOptions(parent=self),
            )
        if args.config.budget is not None:
            self._budget(args.config.budget, args)
        if args.config.lifecycle:
            self._lifecycle(args.config.lifecycle, args)
        if args.config.locks:
            for label, resource_id in args.locked_ids.items():
                authorization.ManagementLockByScope(
                    f"lock-{label}",
                    lock_name="azml-cannot-delete",
                    scope=resource_id,
                    level="CanNotDelete",
                    notes=f"azml: {label} holds production state; remove this lock deliberately before deleting.",
                    opts=pulumi.ResourceOptions(parent=self),
                )
        pricings = defender_pricings(
            args.config.defender_plans,
            pulumi.Output.concat("/subscriptions/", args.subscription_id),
            pulumi.ResourceOptions(parent=self),
        )
        self.defender_pricing_ids = {name: pricing.id for name, pricing in pricings.items()}
        self.defender_pricing_id = self.defender_pricing_ids.get("Containers")
        self.register_outputs({
            "approverRoleId": self.approver_role_id,
            "defenderPricingId": self.defender_pricing_id,
            "defenderPricingIds": self.defender_pricing_ids,
        })

    def _personas(self, args: GovernanceArgs) -> pulumi.Output[str] | None:
        """Reader and AzureML Data Scientist (built-in) and the approver custom
        role, all at workspace scope: the narrowest scope the work needs."""
        for persona, principals, role in (
            ("reader", args.principals.readers, "Reader"),
            ("data-scientist", args.principals.data_scientists, "AzureML Data Scientist"),
        ):
            for principal in principals:
                assign_role(
                    f"ra-{persona}-{principal.object_id}",
                    scope=args.workspace_id,
                    scope_label=args.workspace_name,
                    role=role,
                    principal_id=principal.object_id,
                    principal_label=principal.object_id,
                    principal_type=principal.type,
                    subscription_id=args.subscription_id,
                    description=f"azml: {persona}",
                    parent=self,
                )
        if not args.principals.approvers:
            return None
        role = authorization.RoleDefinition(
            "approver-role",
            role_definition_id=str(uuid.uuid5(_NAMESPACE, f"{args.name_prefix}|approver")),
            role_name=f"azml traffic approver ({args.name_prefix})",
            description="Reads Azure ML endpoints and updates them to move traffic between deployments; nothing else.",
            scope=args.resource_group_id,
            assignable_scopes=[args.resource_group_id],
            permissions=[{"actions": list(APPROVER_ACTIONS), "not_actions": [], "data_actions": [], "not_data_actions": []}],
            opts=pulumi.ResourceOptions(parent=self),
        )
        for principal in args.principals.approvers:
            assign_role(
                f"ra-approver-{principal.object_id}",
                scope=args.workspace_id,
                scope_label=args.workspace_name,
                role="azml traffic approver",
                definition_id=role.id,
                principal_id=principal.object_id,
                principal_label=principal.object_id,
                principal_type=principal.type,
                subscription_id=args.subscription_id,
                description="azml: approver",
                parent=self,
            )
        return role.id

    def _budget(self, budget: BudgetConfig, args: GovernanceArgs) -> consumption.Budget:
        groups = [args.action_group_id] if args.action_group_id is not None else []
        notifications = {
            f"actual-{threshold}": {
                "enabled": True,
                "operator": "GreaterThanOrEqualTo",
                "threshold": threshold,
                "threshold_type": "Actual",
                "contact_emails": list(budget.contact_emails),
                "contact_groups": groups,
            }
            for threshold in budget.thresholds
        }
        if budget.forecast_threshold is not None:
            notifications[f"forecast-{budget.forecast_threshold}"] = {
                "enabled": True,
                "operator": "GreaterThan",
                "threshold": budget.forecast_threshold,
                "threshold_type": "Forecasted",
                "contact_emails": list(budget.contact_emails),
                "contact_groups": groups,
            }
        return consumption.Budget(
            "budget",
            budget_name=f"budget-{args.name_prefix}",
            scope=args.resource_group_id,
            amount=budget.amount,
            category="Cost",
            time_grain="Monthly",
            # "Past start date should be selected within the timegrain period"
            # (Microsoft.Consumption budgets, BudgetTimePeriod.startDate): a
            # fixed past date fails any create after its month. Unset, it is the
            # first day of the current month when the stack is first deployed,
            # and later runs leave it alone (ignore_changes) instead of moving
            # it every month.
            time_period={"start_date": f"{budget_start(budget).isoformat()}T00:00:00Z"},
            notifications=notifications,
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["timePeriod.startDate"]),
        )

    def _lifecycle(self, rules: list[LifecycleRule], args: GovernanceArgs) -> storage.ManagementPolicy:
        def rule(r: LifecycleRule) -> dict:
            base_blob: dict = {}
            if r.cool_after_days is not None:
                base_blob["tier_to_cool"] = {"days_after_modification_greater_than": r.cool_after_days}
            if r.archive_after_days is not None:
                base_blob["tier_to_archive"] = {"days_after_modification_greater_than": r.archive_after_days}
            if r.delete_after_days is not None:
                base_blob["delete"] = {"days_after_modification_greater_than": r.delete_after_days}
            actions: dict = {"base_blob": base_blob} if base_blob else {}
            if r.delete_versions_after_days is not None:
                actions["version"] = {"delete": {"days_after_creation_greater_than": r.delete_versions_after_days}}
            return {
                "name": r.name,
                "enabled": True,
                "type": "Lifecycle",
                "definition": {"filters": {"blob_types": ["blockBlob"], "prefix_match": list(r.prefixes)}, "actions": actions},
            }

        return storage.ManagementPolicy(
            "lifecycle",
            management_policy_name="default",
            account_name=args.storage_account_name,
            resource_group_name=args.resource_group_name,
            policy={"rules": [rule(r) for r in rules]},
            opts=pulumi.ResourceOptions(parent=self),
        )


def budget_start(budget: BudgetConfig, today: dt.date | None = None) -> dt.date:
    """``budget.startDate``, or the first day of the current month (UTC)."""
    if budget.start_date is not None:
        return budget.start_date
    today = today or dt.datetime.now(dt.timezone.utc).date()
    return today.replace(day=1)

"""Stack config for governance and cost: ``azml:governance``."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, field_validator, model_validator

from ..base import Model
from .defender import DefenderPlans, migrate_legacy_keys

#: Built-in Azure Policy definitions by a readable alias (ids are the same in
#: every tenant of the public cloud). Config may also give a full definition id.
BUILTIN_POLICIES: dict[str, str] = {
    # Azure Machine Learning workspaces should disable public network access
    "ml-workspace-no-public-network": "438c38d2-3772-465a-a9cc-7a6666a275ce",
    # Azure Machine Learning Computes should have local authentication methods disabled
    "ml-compute-local-auth-disabled": "e96a9a5f-07ca-471b-9bc5-6a0f33cbd68f",
    # Key vaults should have deletion protection enabled
    "key-vault-deletion-protection": "0b60c0b2-2dc2-4e1c-b5c9-abbed971de53",
    # Storage accounts should disable public network access
    "storage-no-public-network": "b2982f36-99f2-4db5-8eff-283140c09693",
    # Container registries should not allow unrestricted network access
    "registry-no-unrestricted-network": "d0793b48-0edc-4296-a390-4c75d1bdfd71",
}

#: Azure Policy effects (https://learn.microsoft.com/azure/governance/policy/concepts/effect-basics);
#: the built-in definitions above take Audit, Deny or Disabled.
POLICY_EFFECTS = (
    "Audit", "AuditIfNotExists", "Deny", "DenyAction", "DeployIfNotExists", "Disabled", "Modify", "Append", "Manual",
)
BUILTIN_EFFECTS = ("Audit", "Deny", "Disabled")

_DEFINITION_ID = re.compile(
    r"^(/subscriptions/[^/]+|/providers/Microsoft\.Management/managementGroups/[^/]+)?"
    r"/providers/Microsoft\.Authorization/policyDefinitions/[A-Za-z0-9-]+$"
)


class PolicyAssignmentConfig(Model):
    """A policy assignment at resource-group scope: ``builtin`` (an alias from
    ``BUILTIN_POLICIES``) or ``definitionId`` (a full policy definition id)."""

    builtin: str | None = Field(
        default=None, description=f"Alias of a built-in definition: {', '.join(BUILTIN_POLICIES)}."
    )
    definition_id: str | None = Field(default=None, description="A full policy definition id, instead of builtin.")
    enforcement: Literal["Default", "DoNotEnforce"] = Field(
        default="Default", description="`DoNotEnforce`: evaluated and reported, never enforced."
    )
    parameters: dict[str, Any] = Field(
        default_factory=dict,
        description=f"Assignment parameters; `effect` must be one the definition takes (built-ins: "
        f"{', '.join(BUILTIN_EFFECTS)}).",
    )

    @field_validator("builtin")
    @classmethod
    def _known(cls, value: str | None) -> str | None:
        if value is not None and value not in BUILTIN_POLICIES:
            raise ValueError(f"unknown built-in policy alias; allowed: {', '.join(BUILTIN_POLICIES)}")
        return value

    @field_validator("definition_id")
    @classmethod
    def _id(cls, value: str | None) -> str | None:
        if value is not None and not _DEFINITION_ID.fullmatch(value):
            raise ValueError("must be a policy definition id like /providers/Microsoft.Authorization/policyDefinitions/<guid>")
        return value

    @model_validator(mode="after")
    def _one(self) -> "PolicyAssignmentConfig":
        if (self.builtin is None) == (self.definition_id is None):
            raise ValueError("give either builtin or definitionId")
        if "effect" in self.parameters:
            allowed = BUILTIN_EFFECTS if self.builtin is not None else POLICY_EFFECTS
            if self.parameters["effect"] not in allowed:
                raise ValueError(
                    f"parameters.effect must be one of {', '.join(allowed)} (got {self.parameters['effect']!r})"
                )
        return self

    @property
    def resolved_definition_id(self) -> str:
        if self.definition_id is not None:
            return self.definition_id
        return f"/providers/Microsoft.Authorization/policyDefinitions/{BUILTIN_POLICIES[str(self.builtin)]}"

    @property
    def label(self) -> str:
        return self.builtin or self.resolved_definition_id.rsplit("/", 1)[1]


Email = Annotated[str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]


class BudgetConfig(Model):
    amount: float = Field(gt=0, description="Monthly budget in the billing currency.")
    start_date: dt.date | None = Field(
        default=None,
        strict=False,  # the stack file writes a date as text (2026-12-01)
        description=(
            "First day of a month. Unset (recommended): the first day of the month of the first deployment. "
            "Azure refuses a past start date outside the current month, so a fixed date breaks later creates."
        ),
    )
    thresholds: list[int] = Field(
        default_factory=lambda: [50, 80, 100], min_length=1, max_length=5,
        description="Percentages of the amount actually spent that notify; distinct, each 1-1000.",
    )
    forecast_threshold: int | None = Field(
        default=110, ge=1, le=1000, description="Percentage of the amount a forecast overrun notifies at; unset: none."
    )
    contact_emails: list[Email] = Field(
        default_factory=list, description="Emails notified at each threshold, besides the action group."
    )

    @field_validator("start_date")
    @classmethod
    def _first_of_month(cls, value: dt.date | None) -> dt.date | None:
        if value is not None and value.day != 1:
            raise ValueError("must be the first day of a month (Azure budgets start on a month boundary)")
        return value

    @field_validator("thresholds")
    @classmethod
    def _thresholds(cls, values: list[int]) -> list[int]:
        if any(not 1 <= v <= 1000 for v in values) or len(set(values)) != len(values):
            raise ValueError("must be distinct percentages between 1 and 1000")
        return sorted(values)


class LifecycleRule(Model):
    """Tiering and expiry of blobs whose path (``container/blob``) starts with
    one of ``prefixes``. Registered models live in the workspace blob store:
    keep delete rules to logs, collected data and other disposable paths."""

    name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9]{1,256}$")] = Field(
        description="Rule name, unique: letters and digits."
    )
    prefixes: list[Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{2,62}(/.*)?$")]] = Field(
        min_length=1, description="Blob paths the rule applies to, as container/path."
    )
    cool_after_days: int | None = Field(
        default=None, ge=0, le=99999, description="Days after last modification before a blob moves to cool."
    )
    archive_after_days: int | None = Field(
        default=None, ge=0, le=99999, description="Days after last modification before a blob moves to archive."
    )
    delete_after_days: int | None = Field(
        default=None, ge=0, le=99999, description="Days after last modification before a blob is deleted."
    )
    delete_versions_after_days: int | None = Field(
        default=None, ge=0, le=99999, description="Days after creation before a previous blob version is deleted."
    )

    @model_validator(mode="after")
    def _ordered(self) -> "LifecycleRule":
        steps = [
            (name, days)
            for name, days in (
                ("coolAfterDays", self.cool_after_days),
                ("archiveAfterDays", self.archive_after_days),
                ("deleteAfterDays", self.delete_after_days),
            )
            if days is not None
        ]
        if not steps and self.delete_versions_after_days is None:
            raise ValueError("a rule needs at least one action (cool, archive, delete or deleteVersions)")
        for (a, x), (b, y) in zip(steps, steps[1:]):
            if x >= y:
                raise ValueError(f"{a} ({x}) must be less than {b} ({y})")
        return self


class GovernanceConfig(Model):
    policies: list[PolicyAssignmentConfig] = Field(
        default_factory=list,
        description="Azure Policy assignments at resource-group scope, each definition once (prod denies, dev audits).",
    )
    budget: BudgetConfig | None = Field(
        default=None,
        description="Monthly cost budget on the resource group; alerts to contactEmails and the action group.",
    )
    lifecycle: list[LifecycleRule] = Field(
        default_factory=list,
        description="Lifecycle rules on the workspace storage; keep delete rules away from registered models.",
    )
    locks: bool = Field(
        default=False,
        description="CanNotDelete locks on Key Vault and workspace storage; Pulumi protect on the workspace (an "
        "Azure lock on it would block releases).",
    )
    defender_plans: DefenderPlans = Field(
        default_factory=DefenderPlans,
        description=(
            "Defender for Cloud plans turned on (Standard) for the whole subscription: containers, storageAccounts, "
            "keyVaults, arm. Each is billed for every resource of its kind in the subscription (docs/dashboards.md)."
        ),
    )

    @model_validator(mode="before")
    @classmethod
    def _legacy_defender_keys(cls, data: Any) -> Any:
        return migrate_legacy_keys(data)

    @field_validator("policies")
    @classmethod
    def _distinct(cls, policies: list[PolicyAssignmentConfig]) -> list[PolicyAssignmentConfig]:
        labels = [p.label for p in policies]
        duplicates = sorted({label for label in labels if labels.count(label) > 1})
        if duplicates:
            raise ValueError(f"policy assigned twice: {', '.join(duplicates)}")
        return policies

    @field_validator("lifecycle")
    @classmethod
    def _rule_names(cls, rules: list[LifecycleRule]) -> list[LifecycleRule]:
        names = [r.name for r in rules]
        if len(set(names)) != len(names):
            raise ValueError("lifecycle rule names must be unique")
        return rules

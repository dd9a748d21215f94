"""How an Azure platform rule is declared.

The checklist pack (``azml_policies``) enforces *our* security checklist; this
pack enforces what **Azure** accepts and operates: rules Microsoft states in
its documentation (asset references, managed network provisioning, role
assignments Azure ML makes itself, Event Grid delivery, locks, ...). A plan
that breaks one would fail, or deploy something that never works, on the
first real ``pulumi up``.

A rule is declared like a checklist policy (:class:`~azml_policies.checks.PolicyInfo`,
same property readers, same config handling) plus the Microsoft document
that states it (``source``, a learn.microsoft.com address) and the words it
states it in (``quote``). Every violation message names the resource and
the property (the check writes that part) and ends with the rule and its
source (added here), so a reader of ``pulumi preview`` output or of
``azml plan`` needs nothing else to act on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from pulumi_policy import ResourceValidationPolicy, Severity, StackValidationPolicy

from azml_policies.checks import PolicyInfo, ResourceCheck, StackCheck, resource_policy, stack_policy

FRAMEWORK = "Azure platform rules"
CHECKLIST_ROW = "Azure platform rule: the plan is deployable and operable on Azure"
LEARN = "https://learn.microsoft.com/azure/"

PLATFORM_INFO: dict[str, PolicyInfo] = {}
"""Every platform rule's metadata, by name."""

QUOTES: dict[str, str] = {}
"""Microsoft's own words for each rule, by rule name (docs/platform-rules.md shows them)."""


@dataclass(frozen=True)
class Rule:
    """What declaring a rule takes. ``source`` is the learn.microsoft.com
    address of the document that states it (a path under :data:`LEARN` is
    completed); ``quote`` is the sentence there that states it."""

    name: str
    description: str
    severity: Severity
    remediation: str
    source: str
    quote: str
    resource_types: tuple[str, ...]
    properties: tuple[str, ...]
    config: Mapping[str, Mapping[str, Any]] | None = None
    area: str = "platform"

    def info(self, kind: str) -> PolicyInfo:
        source = self.source if self.source.startswith("https://") else LEARN + self.source.lstrip("/")
        return PolicyInfo(
            name=self.name,
            description=self.description,
            checklist=CHECKLIST_ROW,
            severity=self.severity,
            remediation=self.remediation,
            resource_types=self.resource_types,
            properties=self.properties,
            config=dict(self.config or {}),
            kind=kind,
            tags=("platform", self.area),
            framework=FRAMEWORK,
            source=source,
        )


def _cited(info: PolicyInfo, messages: Iterable[str]) -> Iterable[str]:
    for message in messages:
        yield f"{message} [rule: {info.description} Source: {info.source}]"


def resource_rule(rule: Rule, check: ResourceCheck) -> ResourceValidationPolicy:
    """A resource policy of this pack: ``check`` yields ``"<resource label>:
    <property> ..."`` per violation; the rule and its source are appended."""
    info = rule.info("resource")
    QUOTES[rule.name] = rule.quote

    def cited(resource: Any, config: dict[str, Any]) -> Iterable[str]:
        return _cited(info, check(resource, config))

    return resource_policy(info, cited, registry=PLATFORM_INFO)


def stack_rule(rule: Rule, check: StackCheck) -> StackValidationPolicy:
    """A stack policy of this pack: ``check`` yields ``(urn, message)`` per violation."""
    info = rule.info("stack")
    QUOTES[rule.name] = rule.quote

    def cited(stack: Any, config: dict[str, Any]) -> Iterable[tuple[str, str]]:
        for urn, message in check(stack, config):
            yield urn, next(iter(_cited(info, [message])))

    return stack_policy(info, cited, registry=PLATFORM_INFO)

"""How a policy of this pack is declared.

Each policy reads like a checkov check: a stable kebab-case name, what it
enforces, the security-checklist row it implements (docs/security-checklist.md), a severity,
remediation steps, the azure-native type tokens and property paths it reads,
and a config schema whose every property has a default. The declaration is
kept as data in :data:`POLICY_INFO` and turned into a real
``pulumi_policy`` policy by :func:`resource_policy` / :func:`stack_policy`.

Config: the Pulumi CLI fills schema defaults before calling ``Configure``;
the SDK does not (and ``get_config()`` is empty when no config is given), so
:func:`config_of` starts from the in-code defaults and overlays what the
engine sent, coercing numbers (they arrive as floats) to the schema's type.
Every policy also takes ``exemptResources``: risk acceptances, each naming a
resource the policy skips with a reason and an expiry date
(:mod:`~azml_policies.acceptances`); a violation of a resource whose
acceptance lapsed says so.

Enforcement follows severity: a low-severity policy is declared advisory
(``PolicyInfo.enforcement``), so it warns and never blocks a deploy unless a
stack's policy config makes it mandatory on purpose; every other policy runs
at the pack's level (mandatory).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Mapping

from pulumi_policy import (
    EnforcementLevel,
    PolicyComplianceFramework,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError

from .acceptances import EXEMPT_KEY, EXEMPT_SCHEMA, exempt, lapsed
from .azure import base_type
from .pack_server import memoized
from .topology import Resource, Stack
from .values import MISSING, UNKNOWN, as_bool, normalize, same, show

FRAMEWORK = "azml security checklist"
FRAMEWORK_VERSION = "1"

# The rows of the security checklist ("checklist item"; docs/security-checklist.md lists
# the policies enforcing each, generated from POLICY_INFO).
SECRETS = "Secrets only via Key Vault references; none in config/plain text"
PRIVATE_ENDPOINTS = "Private endpoint for workspace, storage (blob, file), Key Vault, ACR, with private DNS zones"
PUBLIC_ACCESS = "Public network access disabled"
APPROVED_IMAGES = "Approved, scanned base images only"
LEAST_PRIVILEGE = "RBAC least privilege; Key Vault RBAC authorization"
ENCRYPTION = "HTTPS / TLS 1.2 / encryption at rest"
LINEAGE = "Lineage record per model version"
MONITORING = "Drift + fairness metrics monitored"
AUDIT_LOGGING = "Audit logging"
CHECKLIST = (SECRETS, PRIVATE_ENDPOINTS, PUBLIC_ACCESS, APPROVED_IMAGES, LEAST_PRIVILEGE, ENCRYPTION, LINEAGE, MONITORING, AUDIT_LOGGING)

# Platform baseline items the checklist does not list but the platform promises
# (docs/platform.md): they are enforced the same way.
BASELINE_AVAILABILITY = "Platform baseline: production deployments with live traffic are highly available"
BASELINE_SAFE_RELEASE = "Platform baseline: traffic and mirror splits Azure accepts"
BASELINE_COST = "Platform baseline: compute scales to zero unless configured"
BASELINE_GOVERNANCE = "Platform baseline: production governance (locks, enforced Azure Policy, Defender plans)"
BASELINE_RECOVERABLE = "Platform baseline: deleted data stays recoverable"
BASELINE_TAGGED = "Platform baseline: every resource carries the required tags"
BASELINE = (
    BASELINE_AVAILABILITY, BASELINE_SAFE_RELEASE, BASELINE_COST, BASELINE_GOVERNANCE, BASELINE_RECOVERABLE, BASELINE_TAGGED,
)



@dataclass(frozen=True)
class PolicyInfo:
    """Metadata of one policy, as data."""

    name: str
    description: str
    checklist: str
    severity: Severity
    remediation: str
    resource_types: tuple[str, ...]
    properties: tuple[str, ...]
    config: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    kind: str = "resource"  # or "stack"
    tags: tuple[str, ...] = ()
    #: The compliance framework the policy belongs to (the platform-rules pack
    #: sets its own) and, there, the Microsoft document that states the rule.
    framework: str = FRAMEWORK
    source: str = ""
    #: The policy's own enforcement level; None: the pack's (mandatory).
    #: Low-severity checklist policies are advisory (see the module docstring).
    enforcement: EnforcementLevel | None = None

    @property
    def config_schema(self) -> dict[str, dict[str, Any]]:
        return {**{k: copy.deepcopy(dict(v)) for k, v in self.config.items()}, EXEMPT_KEY: copy.deepcopy(EXEMPT_SCHEMA)}

    @property
    def defaults(self) -> dict[str, Any]:
        return {k: copy.deepcopy(v["default"]) for k, v in self.config_schema.items()}


def info_for(resource_type: str, area: str, always_read: tuple[str, ...] = ()) -> Callable[..., PolicyInfo]:
    """The ``PolicyInfo`` builder of one module's policies: they all check
    ``resource_type``, are tagged ``area`` (plus their own tags) and read
    ``always_read`` besides their own property paths."""

    def info(
        name: str, description: str, checklist: str, severity: Severity, remediation: str,
        paths: tuple[str, ...], **extra: Any,
    ) -> PolicyInfo:
        return PolicyInfo(
            name=name,
            description=description,
            checklist=checklist,
            severity=severity,
            remediation=remediation,
            resource_types=(resource_type,),
            properties=(*always_read, *paths),
            tags=(area, *extra.pop("tags", ())),
            **extra,
        )

    return info


POLICY_INFO: dict[str, PolicyInfo] = {}
"""Every declared policy's metadata, by name."""


def _register(info: PolicyInfo, registry: dict[str, PolicyInfo]) -> None:
    if info.name in registry:
        raise ValueError(f"duplicate policy name {info.name!r}")
    missing = [k for k, v in info.config.items() if "default" not in v]
    if missing:
        raise ValueError(f"{info.name}: config properties without a default: {', '.join(missing)}")
    registry[info.name] = info


def _coerce(value: Any, schema: Mapping[str, Any], default: Any) -> Any:
    kind = schema.get("type")
    if kind == "integer":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or float(value) != int(value):
            return default
        return int(value)
    if kind == "number":
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else default
    if kind == "boolean":
        return value if isinstance(value, bool) else default
    if kind == "string":
        return value if isinstance(value, str) else default
    if kind == "array":
        return list(value) if isinstance(value, (list, tuple)) else default
    if kind == "object":
        return dict(value) if isinstance(value, Mapping) else default
    return value


def config_of(info: PolicyInfo, given: Mapping[str, Any] | None) -> dict[str, Any]:
    """The policy's effective config: in-code defaults overlaid with what was
    configured (a value of the wrong type keeps the default)."""
    config = info.defaults
    schemas = info.config_schema
    for key, value in (given or {}).items():
        schema = schemas.get(key)
        if schema is not None and value is not None:
            config[key] = _coerce(value, schema, config[key])
    return config


class _ConfigReader:
    """:func:`config_of` for one policy, computed again only when the config
    changes. The SDK hands each call a shallow copy of the config Configure
    received, so the same values (same objects) mean the same config; the
    last one is kept with the values it was computed from (kept alive, so
    their identities stay theirs). Checks read their config and never change
    it, so every call may share the computed dict."""

    def __init__(self, info: PolicyInfo) -> None:
        self._info = info
        self._last: tuple[dict[str, Any], dict[str, Any]] | None = None

    def __call__(self, given: Mapping[str, Any] | None) -> dict[str, Any]:
        given = dict(given or {})
        last = self._last  # one read: other server threads may replace it meanwhile
        if last is not None and len(last[0]) == len(given) and all(
            key in last[0] and last[0][key] is value for key, value in given.items()
        ):
            return last[1]
        config = config_of(self._info, given)
        self._last = (given, config)
        return config


ResourceCheck = Callable[[Resource, dict[str, Any]], Iterable[str]]


class AzmlResourcePolicy(ResourceValidationPolicy):
    """A resource policy of these packs: the SDK's, plus its declaration
    (``info``), its ``check`` and which type tokens it reads, so that the
    packs' servicer (:mod:`~azml_policies.pack_server`) skips it on other
    types without building its arguments."""

    def __init__(self, info: PolicyInfo, check: ResourceCheck, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.info = info
        self.check = check
        self._types = frozenset(info.resource_types)
        self._every_type = "*" in self._types

    def applies_to(self, type_token: str) -> bool:
        return self._every_type or base_type(type_token) in self._types


def _schema(info: PolicyInfo) -> PolicyConfigSchema:
    return PolicyConfigSchema(properties=info.config_schema)


def _framework(info: PolicyInfo) -> PolicyComplianceFramework:
    return PolicyComplianceFramework(name=info.framework, version=FRAMEWORK_VERSION, reference=info.source or info.checklist)


def resource_policy(
    info: PolicyInfo, check: ResourceCheck, *, registry: dict[str, PolicyInfo] = POLICY_INFO
) -> ResourceValidationPolicy:
    """A ResourceValidationPolicy running ``check`` on resources of
    ``info.resource_types`` (``"*"``: every type); each string it yields is
    one violation. ``registry`` is the pack's metadata table (this pack's by
    default)."""
    _register(info, registry)
    types = frozenset(info.resource_types)
    every_type = "*" in types
    read_config = _ConfigReader(info)

    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        resource_type = base_type(args.resource_type)
        if not every_type and resource_type not in types:
            return
        try:
            # One Resource per Analyze request, shared by the request's policies
            # (checks never change it); normalized per call when not served by
            # the packs' servicer.
            resource = memoized(args, "resource", lambda: Resource(resource_type, args.name, args.urn, normalize(args.props)))
            config = read_config(args.get_config())
            if exempt(config, resource.name, resource.arm_name):
                return
            lapse = lapsed(config, resource.name, resource.arm_name)
            for message in check(resource, config):
                report_violation(message + (lapse.lapse_note() if lapse else ""), None)
        except UnknownValueError:  # pragma: no cover - normalize() already turned unknowns into markers
            return

    return AzmlResourcePolicy(
        info,
        check,
        name=info.name,
        description=info.description,
        validate=validate,
        config_schema=_schema(info),
        severity=info.severity,
        remediation_steps=info.remediation,
        framework=_framework(info),
        tags=["azml", *info.tags],
        enforcement_level=info.enforcement,
    )


def _lapse_note(stack: Stack, config: Mapping[str, Any], urn: str) -> str:
    """A stack check skips resources whose acceptance is in force (``exempt``);
    a violation of one whose acceptance lapsed says so."""
    resource = stack.by_urn.get(urn)
    lapse = lapsed(config, resource.name, resource.arm_name) if resource is not None else None
    return lapse.lapse_note() if lapse else ""


StackCheck = Callable[[Stack, dict[str, Any]], Iterable[tuple[str, str]]]
Finding = Iterator[tuple[str, str]]  # what a stack check yields: (urn, message) per violation


class AzmlStackPolicy(StackValidationPolicy):
    """A stack policy of these packs: the SDK's, plus its declaration and check."""

    def __init__(self, info: PolicyInfo, check: StackCheck, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.info = info
        self.check = check


def stack_policy(
    info: PolicyInfo, check: StackCheck, *, registry: dict[str, PolicyInfo] = POLICY_INFO
) -> StackValidationPolicy:
    """A StackValidationPolicy running ``check`` on the whole stack; each
    ``(urn, message)`` it yields is one violation of that resource."""
    _register(info, registry)
    read_config = _ConfigReader(info)

    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        try:
            config = read_config(args.get_config())
            # One indexed Stack per AnalyzeStack request, shared by its stack
            # policies (read-only; its memo holds only what the stack implies).
            stack = memoized(args, "stack", lambda: Stack(args.resources))
            for urn, message in check(stack, config):
                report_violation(message + _lapse_note(stack, config, urn), urn)
        except UnknownValueError:  # pragma: no cover - normalize() already turned unknowns into markers
            return

    return AzmlStackPolicy(
        info,
        check,
        name=info.name,
        description=info.description,
        validate=validate,
        config_schema=_schema(info),
        severity=info.severity,
        remediation_steps=info.remediation,
        framework=_framework(info),
        tags=["azml", *info.tags],
        enforcement_level=info.enforcement,
    )


def expect_value(resource: Resource, path: str, expected: str, *, azure_default: str | None = None) -> Iterator[str]:
    """A violation when the string at ``path`` is known and not ``expected``
    (case-insensitive), or not set; nothing while it is unknown."""
    value = resource.get(path)
    if value is UNKNOWN or same(value, expected):
        return
    note = f" (Azure default: {azure_default})" if value is MISSING and azure_default else ""
    yield f"{resource.label}: {path} is {show(value)}{note}; must be {expected!r}"


def expect_bool(
    resource: Resource, path: str, expected: bool, *, azure_default: bool | None = None, unset_ok: bool = False
) -> Iterator[str]:
    """A violation when the boolean at ``path`` is known and not ``expected``,
    or not set (unless ``unset_ok``: Azure's default is the expected value)."""
    value = as_bool(resource.get(path))
    if value is UNKNOWN or value is expected or (value is MISSING and unset_ok):
        return
    note = f" (Azure default: {show(azure_default)})" if value is MISSING and azure_default is not None else ""
    yield f"{resource.label}: {path} is {show(value)}{note}; must be {show(expected)}"

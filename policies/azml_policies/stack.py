"""Stack policies: what only the whole stack shows — private endpoints and
their DNS, audit logging, alerts and drift monitors per endpoint, traffic
splits, instance counts behind live traffic, and where serving images come from.

Links between resources are read by :class:`~azml_policies.topology.Stack`
(known ids, or recorded dependencies while ids are unknown). A check that
cannot tell (unknown values, no dependency recorded) reports nothing.
"""

from __future__ import annotations

import re
from typing import Any, Iterator

from pulumi_policy import Severity

from . import checks
from .azure import (
    AUTOSCALE_SETTING,
    BATCH_DEPLOYMENT,
    DIAGNOSTIC_SETTING,
    ENDPOINT_ROUTING,
    ENVIRONMENT_VERSION,
    METRIC_ALERT,
    ONLINE_DEPLOYMENT,
    ONLINE_ENDPOINT,
    PRIVATE_DNS_ZONE_GROUP,
    PRIVATE_ENDPOINT,
    PRIVATE_ZONE,
    REGISTRY,
    SCHEDULE,
    SCHEDULED_QUERY_RULE,
    STORAGE_ACCOUNT,
    VAULT,
    WORKSPACE,
    arm_id,
    segment_after,
)
from .checks import PolicyInfo, exempt, stack_policy
from .topology import Resource, Stack
from .values import MISSING, UNKNOWN, as_bool, as_number, get, has_unknown, known, same, show, strings, unwrap

Finding = Iterator[tuple[str, str]]

# --------------------------------------------------------------------------- private endpoints

_FIXED_GROUP_IDS = {WORKSPACE: "amlworkspace", VAULT: "vault", REGISTRY: "registry"}


def _endpoints_of(stack: Stack, target: Resource) -> list[Resource]:
    return [pe for pe in stack.of_type(PRIVATE_ENDPOINT) if stack.linked(pe, "privateLinkServiceConnections", target)]


def _group_ids(pe: Resource) -> tuple[set[str], bool]:
    """The group ids of a private endpoint's connections, and whether some are unknown."""
    connections = unwrap(pe.get("privateLinkServiceConnections"))
    if not isinstance(connections, list):
        return set(), True
    found: set[str] = set()
    uncertain = False
    for connection in connections:
        ids = get(connection, "groupIds")
        uncertain = uncertain or has_unknown(ids) or ids is UNKNOWN
        found |= {g.lower() for g in strings(ids)}
    return found, uncertain


def _is_workspace_storage(stack: Stack, account: Resource) -> bool:
    return any(stack.linked(ws, "storageAccount", account) for ws in stack.of_type(WORKSPACE))


def _private_endpoints(stack: Stack, config: dict[str, Any]) -> Finding:
    for target in stack.of_type(WORKSPACE, VAULT, STORAGE_ACCOUNT, REGISTRY):
        if exempt(config, target.name, target.arm_name):
            continue
        if target.type == STORAGE_ACCOUNT:
            workspace_storage = _is_workspace_storage(stack, target)
            required = config["workspaceStorageGroupIds"] if workspace_storage else config["storageGroupIds"]
        else:
            required = [_FIXED_GROUP_IDS[target.type]]
        endpoints = _endpoints_of(stack, target)
        if not endpoints:
            yield target.urn, (
                f"{target.label}: no private endpoint connects to it (network:PrivateEndpoint "
                f"privateLinkServiceConnections[].privateLinkServiceId); needs group ids {', '.join(required)}"
            )
            continue
        groups: set[str] = set()
        uncertain = False
        for pe in endpoints:
            found, unsure = _group_ids(pe)
            groups |= found
            uncertain = uncertain or unsure
        missing = [g for g in required if g.lower() not in groups]
        if missing and not uncertain:
            yield target.urn, (
                f"{target.label}: private endpoints cover group ids {', '.join(sorted(groups)) or 'none'}; "
                f"missing {', '.join(missing)}"
            )


private_endpoints = stack_policy(
    PolicyInfo(
        name="azml-private-endpoints",
        description=(
            "Workspace, Key Vault, container registry and storage accounts each have private endpoints "
            "(the workspace's storage: blob and file)."
        ),
        checklist=checks.PRIVATE_ENDPOINTS,
        severity=Severity.HIGH,
        remediation=(
            "Create a network:PrivateEndpoint in the private-endpoints subnet whose privateLinkServiceConnections "
            "point at the resource with the right group id (amlworkspace, vault, registry, blob, file) — "
            "components/private_link.py creates it together with its DNS zone group."
        ),
        resource_types=(WORKSPACE, VAULT, STORAGE_ACCOUNT, REGISTRY, PRIVATE_ENDPOINT),
        properties=(
            "PrivateEndpoint.privateLinkServiceConnections[].privateLinkServiceId",
            "PrivateEndpoint.privateLinkServiceConnections[].groupIds",
            "Workspace.storageAccount",
            "Workspace.workspaceName",
            "Vault.vaultName",
            "StorageAccount.accountName",
            "Registry.registryName",
        ),
        config={
            "workspaceStorageGroupIds": {
                "type": "array",
                "items": {"type": "string"},
                "default": ["blob", "file"],
                "description": "Group ids the workspace's storage account needs private endpoints for.",
            },
            "storageGroupIds": {
                "type": "array",
                "items": {"type": "string"},
                "default": ["blob"],
                "description": "Group ids any other storage account needs private endpoints for.",
            },
        },
        kind="stack",
        tags=("network",),
    ),
    _private_endpoints,
)

# --------------------------------------------------------------------------- private DNS zone groups

DEFAULT_ZONES = {
    "amlworkspace": ["privatelink.api.azureml.ms", "privatelink.notebooks.azure.net"],
    "vault": ["privatelink.vaultcore.azure.net"],
    "registry": ["privatelink.azurecr.io"],
    "blob": ["privatelink.blob.core.windows.net"],
    "file": ["privatelink.file.core.windows.net"],
    "queue": ["privatelink.queue.core.windows.net"],
    "table": ["privatelink.table.core.windows.net"],
    "dfs": ["privatelink.dfs.core.windows.net"],
    "sites": ["privatelink.azurewebsites.net"],
}


def _zone_groups_of(stack: Stack, pe: Resource) -> list[Resource]:
    name = pe.arm_name
    pe_group = pe.get("resourceGroupName")
    result = []
    for group in stack.of_type(PRIVATE_DNS_ZONE_GROUP):
        value = group.get("privateEndpointName")
        if isinstance(value, str) and name:
            rg = group.get("resourceGroupName")
            same_rg = not (isinstance(rg, str) and isinstance(pe_group, str) and rg.lower() != pe_group.lower())
            if value.lower() == name.lower() and same_rg:
                result.append(group)
            continue
        group_id = arm_id(group.props)
        if group_id and name and f"/privateendpoints/{name.lower()}/privatednszonegroups/" in group_id:
            result.append(group)
        elif group.depends_on(pe, "privateEndpointName") or (not known(value) and group.depends_on(pe)):
            result.append(group)
    return result


def _zone_name(zone: Resource) -> str | None:
    for key in ("privateZoneName", "name"):
        value = zone.get(key)
        if isinstance(value, str) and value:
            return value.lower()
    return None


def _zones_of(stack: Stack, group: Resource) -> tuple[set[str], bool]:
    """The zone names a zone group links, and whether some could not be resolved."""
    names: set[str] = set()
    unresolved = False
    configs = unwrap(group.get("privateDnsZoneConfigs"))
    if isinstance(configs, list):
        for config in configs:
            zone_id = get(config, "privateDnsZoneId")
            zone = segment_after(zone_id, "privateDnsZones") if isinstance(zone_id, str) else None
            if zone:
                names.add(zone.lower())
            else:
                unresolved = True
    else:
        unresolved = True
    if unresolved:
        from_deps = {
            _zone_name(zone)
            for zone in stack.of_type(PRIVATE_ZONE)
            if group.depends_on(zone, "privateDnsZoneConfigs")
        } - {None}
        names |= from_deps  # type: ignore[arg-type]
        unresolved = not from_deps
    return names, unresolved


def _dns_zone_groups(stack: Stack, config: dict[str, Any]) -> Finding:
    zones_by_group = {k.lower(): [z.lower() for z in v] for k, v in config["zonesByGroupId"].items()}
    for pe in stack.of_type(PRIVATE_ENDPOINT):
        if exempt(config, pe.name, pe.arm_name):
            continue
        group_ids, uncertain = _group_ids(pe)
        required = sorted({zone for g in group_ids for zone in zones_by_group.get(g, [])})
        if uncertain or not required:
            continue
        groups = _zone_groups_of(stack, pe)
        if not groups:
            yield pe.urn, (
                f"{pe.label}: no private DNS zone group (network:PrivateDnsZoneGroup with privateEndpointName "
                f"{pe.arm_name!r}); needs zones {', '.join(required)}"
            )
            continue
        linked: set[str] = set()
        unresolved = False
        for group in groups:
            names, unsure = _zones_of(stack, group)
            linked |= names
            unresolved = unresolved or unsure
        missing = [zone for zone in required if zone not in linked]
        if missing and not unresolved:
            yield pe.urn, (
                f"{pe.label} (group ids {', '.join(sorted(group_ids))}): DNS zone group links "
                f"{', '.join(sorted(linked)) or 'no zones'}; missing {', '.join(missing)}"
            )


private_dns_zone_groups = stack_policy(
    PolicyInfo(
        name="azml-private-dns-zone-groups",
        description=(
            "Every private endpoint registers its records in the private DNS zones of its group ids "
            "(workspace: api.azureml.ms and notebooks.azure.net)."
        ),
        checklist=checks.PRIVATE_ENDPOINTS,
        severity=Severity.HIGH,
        remediation=(
            "Give the private endpoint a network:PrivateDnsZoneGroup whose privateDnsZoneConfigs link every zone "
            "of its group id (privatelink.api.azureml.ms and privatelink.notebooks.azure.net for a workspace), each "
            "zone linked to the VNet."
        ),
        resource_types=(PRIVATE_ENDPOINT, PRIVATE_DNS_ZONE_GROUP, PRIVATE_ZONE),
        properties=(
            "PrivateEndpoint.privateEndpointName",
            "PrivateEndpoint.privateLinkServiceConnections[].groupIds",
            "PrivateDnsZoneGroup.privateEndpointName",
            "PrivateDnsZoneGroup.privateDnsZoneConfigs[].privateDnsZoneId",
            "PrivateZone.privateZoneName",
        ),
        config={
            "zonesByGroupId": {
                "type": "object",
                "additionalProperties": {"type": "array", "items": {"type": "string"}},
                "default": DEFAULT_ZONES,
                "description": "Private DNS zones required per private-link group id (Azure public cloud by default).",
            }
        },
        kind="stack",
        tags=("network", "dns"),
    ),
    _dns_zone_groups,
)

# --------------------------------------------------------------------------- diagnostic settings

_KINDS = {
    "workspace": WORKSPACE,
    "vault": VAULT,
    "storage": STORAGE_ACCOUNT,
    "registry": REGISTRY,
    "onlineEndpoint": ONLINE_ENDPOINT,
}


# A storage account's logs are emitted by its services, each with its own diagnostic setting.
_STORAGE_SERVICES = ("blobServices", "fileServices", "queueServices", "tableServices")


def _sends_to_log_analytics(setting: Resource) -> bool:
    workspace = setting.get("workspaceId")
    if isinstance(workspace, str):
        return bool(workspace.strip())
    if workspace is UNKNOWN:
        return True
    return bool(setting.property_dependencies.get("workspaceId"))


def _logs_enabled(setting: Resource) -> bool:
    logs = unwrap(setting.get("logs"))
    if logs is UNKNOWN:
        return True
    if not isinstance(logs, list):
        return False
    for entry in logs:
        enabled = as_bool(get(entry, "enabled"))
        if enabled is UNKNOWN or (enabled is True and (known(get(entry, "category")) or known(get(entry, "categoryGroup")))):
            return True
    return False


def _diagnostic_settings(stack: Stack, config: dict[str, Any]) -> Finding:
    types = [_KINDS[k] for k in config["resourceKinds"] if k in _KINDS]
    settings = stack.of_type(DIAGNOSTIC_SETTING)
    for target in stack.of_type(*types):
        if exempt(config, target.name, target.arm_name):
            continue
        children = _STORAGE_SERVICES if target.type == STORAGE_ACCOUNT else ()
        linked = [s for s in settings if stack.linked(s, "resourceUri", target, children=children)]
        if not linked:
            yield target.urn, (
                f"{target.label}: no diagnostic setting (monitor:DiagnosticSetting whose resourceUri is the resource "
                "or one of its services)"
            )
            continue
        if not any(_sends_to_log_analytics(s) for s in linked):
            yield target.urn, f"{target.label}: its diagnostic settings send nothing to Log Analytics (workspaceId not set)"
        elif config["requireLogs"] and not any(_logs_enabled(s) for s in linked):
            yield target.urn, f"{target.label}: its diagnostic settings enable no log category (e.g. categoryGroup 'audit')"


diagnostic_settings = stack_policy(
    PolicyInfo(
        name="azml-diagnostic-settings",
        description="Every data-plane resource (workspace, vault, storage, registry, online endpoint) sends its audit logs to Log Analytics.",
        checklist=checks.AUDIT_LOGGING,
        severity=Severity.MEDIUM,
        remediation=(
            "Add a monitor:DiagnosticSetting with resourceUri the resource (for storage: the account and its "
            "blob/file/queue/table services), workspaceId the stack's Log Analytics workspace, logs "
            "[{categoryGroup: 'audit', enabled: true}] and metrics AllMetrics (components/diagnostics.py)."
        ),
        resource_types=(WORKSPACE, VAULT, STORAGE_ACCOUNT, REGISTRY, ONLINE_ENDPOINT, DIAGNOSTIC_SETTING),
        properties=("DiagnosticSetting.resourceUri", "DiagnosticSetting.workspaceId", "DiagnosticSetting.logs[].enabled"),
        config={
            "resourceKinds": {
                "type": "array",
                "items": {"type": "string", "enum": sorted(_KINDS)},
                "default": ["workspace", "vault", "storage", "registry", "onlineEndpoint"],
                "description": "Kinds of resources that need a diagnostic setting.",
            },
            "requireLogs": {
                "type": "boolean",
                "default": True,
                "description": "At least one log category or group enabled (metrics alone are not an audit log).",
            },
        },
        kind="stack",
        tags=("logging",),
    ),
    _diagnostic_settings,
)

# --------------------------------------------------------------------------- serving: shared reads


def _deployments_of(stack: Stack, endpoint: Resource) -> list[Resource]:
    return [d for d in stack.of_type(ONLINE_DEPLOYMENT) if stack.child_of(d, "endpointName", endpoint)]


def _routings_of(stack: Stack, endpoint: Resource) -> list[Resource]:
    return [
        r
        for r in stack.of_type(ENDPOINT_ROUTING)
        if not same(r.get("kind"), "batch") and stack.linked(r, "endpointId", endpoint)
    ]


def _endpoint_of_routing(stack: Stack, routing: Resource) -> Resource | None:
    for endpoint in stack.of_type(ONLINE_ENDPOINT):
        if stack.linked(routing, "endpointId", endpoint):
            return endpoint
    return None


def _split(value: Any) -> dict[str, Any] | None:
    """A traffic map with numbers (UNKNOWN where unknown), or None if the map itself is unknown."""
    value = unwrap(value)
    if value is UNKNOWN:
        return None
    if not isinstance(value, dict):
        return {}
    return {name: as_number(share) for name, share in value.items()}


def _live_deployments(stack: Stack, endpoint: Resource) -> set[str] | None:
    """Names of the endpoint's deployments with live traffic; None when unknown."""
    live: set[str] = set()
    for routing in _routings_of(stack, endpoint):
        split = _split(routing.get("traffic"))
        if split is None or any(v is UNKNOWN for v in split.values()):
            return None
        live |= {name for name, share in split.items() if known(share) and share > 0}
    return live


def _named(deployments: list[Resource], name: str) -> list[Resource]:
    return [d for d in deployments if same(d.arm_name, name)]


# --------------------------------------------------------------------------- endpoint alerts

_LATENCY = re.compile(r"latency|duration", re.IGNORECASE)
_ERRORS = re.compile(r"responsecode|statuscode|5xx|error", re.IGNORECASE)


def _metric_alert_kinds(alert: Resource) -> set[str]:
    criteria = unwrap(alert.get("criteria.allOf"))
    if criteria is UNKNOWN:
        return {"latency", "errors"}
    kinds: set[str] = set()
    for criterion in criteria if isinstance(criteria, list) else []:
        metric = get(criterion, "metricName")
        if metric is UNKNOWN:
            return {"latency", "errors"}
        if not isinstance(metric, str):
            continue
        if _LATENCY.search(metric):
            kinds.add("latency")
        dimension_values = [
            v
            for dimension in (unwrap(get(criterion, "dimensions")) or [])
            if isinstance(dimension, dict) and str(get(dimension, "name")).lower() in ("statuscodeclass", "statuscode")
            for v in strings(get(dimension, "values"))
        ]
        if any(v.startswith(("5", "4")) for v in dimension_values) or re.search(r"error|fail", metric, re.IGNORECASE):
            kinds.add("errors")
    return kinds


def _mentions(query: str, name: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", query, re.IGNORECASE) is not None


def _query_covers(query: str, endpoint_name: str | None) -> bool:
    if endpoint_name and _mentions(query, endpoint_name):
        return True
    # A traffic-log query that does not filter by endpoint covers every endpoint.
    return "amlonlineendpointtrafficlog" in query.lower() and not re.search(r"endpointname\s*(==|in\b|=~|has\b)", query, re.IGNORECASE)


def _log_alert_kinds(stack: Stack, rule: Resource, endpoint: Resource) -> set[str]:
    criteria = unwrap(rule.get("criteria.allOf"))
    if criteria is UNKNOWN:
        return {"latency", "errors"} if stack.linked(rule, "scopes", endpoint) else set()
    scoped = stack.linked(rule, "scopes", endpoint)
    kinds: set[str] = set()
    for criterion in criteria if isinstance(criteria, list) else []:
        query = get(criterion, "query")
        if query is UNKNOWN:
            return {"latency", "errors"} if scoped else set()
        if not isinstance(query, str) or not (scoped or _query_covers(query, endpoint.arm_name)):
            continue
        if _LATENCY.search(query):
            kinds.add("latency")
        if _ERRORS.search(query):
            kinds.add("errors")
    return kinds


def _enabled(resource: Resource, path: str = "enabled") -> bool:
    return as_bool(resource.get(path)) is not False


def _endpoint_alerts(stack: Stack, config: dict[str, Any]) -> Finding:
    for endpoint in stack.of_type(ONLINE_ENDPOINT):
        if exempt(config, endpoint.name, endpoint.arm_name):
            continue
        covered: set[str] = set()
        for alert in stack.of_type(METRIC_ALERT):
            if _enabled(alert) and stack.linked(alert, "scopes", endpoint):
                covered |= _metric_alert_kinds(alert)
        for rule in stack.of_type(SCHEDULED_QUERY_RULE):
            if _enabled(rule):
                covered |= _log_alert_kinds(stack, rule, endpoint)
        wanted = [k for k, on in (("latency", config["requireLatencyAlert"]), ("errors", config["requireErrorAlert"])) if on]
        missing = [k for k in wanted if k not in covered]
        if missing:
            what = {"latency": "request latency", "errors": "error rate (5xx)"}
            yield endpoint.urn, (
                f"{endpoint.label}: no enabled alert on its {' or '.join(what[m] for m in missing)} "
                "(monitor:MetricAlert scoped to the endpoint, or a ScheduledQueryRule on its traffic log)"
            )


endpoint_alerts = stack_policy(
    PolicyInfo(
        name="azml-endpoint-alerts",
        description="Every online endpoint has enabled alerts on request latency and on its error rate.",
        checklist=checks.MONITORING,
        severity=Severity.MEDIUM,
        remediation=(
            "Keep azml:alerts enabled with latencyP95 and serverErrors (metric alerts scoped to the endpoint) or "
            "logLatencyP95 / errorRate (log alerts on AmlOnlineEndpointTrafficLog naming the endpoint)."
        ),
        resource_types=(ONLINE_ENDPOINT, METRIC_ALERT, SCHEDULED_QUERY_RULE),
        properties=(
            "OnlineEndpoint.endpointName",
            "MetricAlert.scopes",
            "MetricAlert.enabled",
            "MetricAlert.criteria.allOf[].metricName",
            "MetricAlert.criteria.allOf[].dimensions",
            "ScheduledQueryRule.scopes",
            "ScheduledQueryRule.enabled",
            "ScheduledQueryRule.criteria.allOf[].query",
        ),
        config={
            "requireLatencyAlert": {"type": "boolean", "default": True, "description": "Require a latency alert."},
            "requireErrorAlert": {"type": "boolean", "default": True, "description": "Require an error-rate alert."},
        },
        kind="stack",
        tags=("serving", "monitoring"),
    ),
    _endpoint_alerts,
)

# --------------------------------------------------------------------------- drift monitors

_TARGET = "properties.action.monitorDefinition.monitoringTarget.deploymentId"


def _is_drift_monitor(schedule: Resource, signals: list[str]) -> bool:
    if not _enabled(schedule, "properties.isEnabled"):
        return False
    action = schedule.get("properties.action.actionType")
    if action is not UNKNOWN and not same(action, "CreateMonitor"):
        return False
    configured = unwrap(schedule.get("properties.action.monitorDefinition.signals"))
    if configured is UNKNOWN or action is UNKNOWN:
        return True
    if not isinstance(configured, dict):
        return False
    wanted = {s.lower() for s in signals}
    for signal in configured.values():
        kind = get(signal, "signalType")
        if kind is UNKNOWN or (isinstance(kind, str) and kind.lower() in wanted):
            return True
    return False


def _drift_monitors(stack: Stack, config: dict[str, Any]) -> Finding:
    monitors = [s for s in stack.of_type(SCHEDULE) if _is_drift_monitor(s, config["driftSignals"])]
    for endpoint in stack.of_type(ONLINE_ENDPOINT):
        if exempt(config, endpoint.name, endpoint.arm_name):
            continue
        deployments = _deployments_of(stack, endpoint)
        if not deployments:
            continue
        monitored = {d.urn for d in deployments if any(stack.linked(m, _TARGET, d) for m in monitors)}
        if not monitored:
            yield endpoint.urn, (
                f"{endpoint.label}: no drift monitor (machinelearningservices:Schedule creating a monitor with a "
                f"{' or '.join(config['driftSignals'])} signal) targets any of its deployments"
            )
            continue
        if not config["everyLiveDeployment"]:
            continue
        live = _live_deployments(stack, endpoint) or set()
        for name in sorted(live):
            for deployment in _named(deployments, name):
                if deployment.urn not in monitored:
                    yield deployment.urn, (
                        f"{deployment.label} of {endpoint.label}: serves live traffic but no drift monitor targets it"
                    )


endpoint_drift_monitor = stack_policy(
    PolicyInfo(
        name="azml-endpoint-drift-monitor",
        description="Every online endpoint — and every deployment serving live traffic — is watched by a model monitor with a drift signal.",
        checklist=checks.MONITORING,
        severity=Severity.MEDIUM,
        remediation=(
            "Enable azml:modelMonitoring for the endpoint (with dataDrift or predictionDrift on) and keep "
            "dataCollection on for its deployments, so a monitor schedule targets each live deployment."
        ),
        resource_types=(ONLINE_ENDPOINT, ONLINE_DEPLOYMENT, SCHEDULE, ENDPOINT_ROUTING),
        properties=(
            "Schedule.properties.isEnabled",
            "Schedule.properties.action.actionType",
            "Schedule.properties.action.monitorDefinition.monitoringTarget.deploymentId",
            "Schedule.properties.action.monitorDefinition.signals.*.signalType",
            "OnlineDeployment.endpointName",
            "EndpointRouting.traffic",
        ),
        config={
            "driftSignals": {
                "type": "array",
                "items": {"type": "string"},
                "default": ["DataDrift", "PredictionDrift"],
                "description": "Signal types that count as drift monitoring.",
            },
            "everyLiveDeployment": {
                "type": "boolean",
                "default": True,
                "description": "Each deployment with live traffic needs its own monitor.",
            },
        },
        kind="stack",
        tags=("serving", "monitoring"),
    ),
    _drift_monitors,
)

# --------------------------------------------------------------------------- traffic splits


def _traffic(stack: Stack, config: dict[str, Any]) -> Finding:
    for routing in stack.of_type(ENDPOINT_ROUTING):
        if exempt(config, routing.name):
            continue
        declared = unwrap(routing.get("deployments"))
        names = [n for n in declared if isinstance(n, str)] if isinstance(declared, list) and not has_unknown(declared) else None
        if same(routing.get("kind"), "batch"):
            default = routing.get("defaultDeployment")
            if isinstance(default, str) and names is not None and default not in names:
                yield routing.urn, f"{routing.label}: defaultDeployment {default!r} is not one of its deployments {names}"
            continue
        yield from ((routing.urn, f"{routing.label}: {p}") for p in _split_problems(routing, names, config))
        endpoint = _endpoint_of_routing(stack, routing)
        if endpoint is None or names is None:
            continue
        existing = _deployments_of(stack, endpoint)
        if any(d.arm_name is None for d in existing):
            continue
        for name in names:
            if not _named(existing, name):
                yield routing.urn, (
                    f"{routing.label}: deployment {name!r} is not declared for {endpoint.label} in this stack "
                    "(Azure refuses a split naming a missing deployment)"
                )


def _split_problems(routing: Resource, names: list[str] | None, config: dict[str, Any]) -> Iterator[str]:
    traffic = _split(routing.get("traffic"))
    mirror = _split(routing.get("mirrorTraffic"))
    if traffic is not None:
        for name, share in sorted(traffic.items()):
            if share is MISSING or (known(share) and (share < 0 or share > 100 or not float(share).is_integer())):
                yield f"traffic.{name} is {show(get(routing.props, ['traffic', name]))}; must be a whole percentage 0..100"
            if names is not None and name not in names:
                yield f"traffic names {name!r}, which is not one of its deployments {names}"
        shares = list(traffic.values())
        if all(known(s) for s in shares):
            total = sum(shares)
            if total not in (0, 100):
                yield f"traffic sums to {show(total)}; must be 0 or 100"
    if mirror is None:
        return
    mirrored = {name: share for name, share in mirror.items() if not known(share) or share != 0}
    if len(mirrored) > 1:
        yield f"mirrorTraffic goes to {len(mirrored)} deployments ({', '.join(sorted(mirrored))}); at most one"
    limit = config["maxMirrorPercent"]
    for name, share in sorted(mirrored.items()):
        if share is MISSING or (known(share) and (share < 0 or share > limit or not float(share).is_integer())):
            yield f"mirrorTraffic.{name} is {show(get(routing.props, ['mirrorTraffic', name]))}; must be a whole percentage 0..{limit}"
        if names is not None and name not in names:
            yield f"mirrorTraffic names {name!r}, which is not one of its deployments {names}"
        live = (traffic or {}).get(name, MISSING)
        if known(live) and live > 0:
            yield f"mirrorTraffic.{name}: {name} has live traffic ({show(live)}%); a deployment cannot get both"


traffic_split_valid = stack_policy(
    PolicyInfo(
        name="azml-traffic-split-valid",
        description=(
            "Every endpoint's traffic split is one Azure accepts: whole percentages summing to 0 or 100 over declared "
            "deployments, mirror to at most one deployment without live traffic."
        ),
        checklist=checks.BASELINE_SAFE_RELEASE,
        severity=Severity.HIGH,
        remediation=(
            "Fix azml:onlineEndpoints[].traffic / mirrorTraffic: values sum to 0 or 100, keys are declared "
            "deployments, mirror at most one deployment at most 50 %, never one with live traffic."
        ),
        resource_types=(ENDPOINT_ROUTING, ONLINE_ENDPOINT, ONLINE_DEPLOYMENT),
        properties=(
            "EndpointRouting.kind",
            "EndpointRouting.endpointId",
            "EndpointRouting.deployments",
            "EndpointRouting.traffic",
            "EndpointRouting.mirrorTraffic",
            "EndpointRouting.defaultDeployment",
            "OnlineDeployment.deploymentName",
            "OnlineDeployment.endpointName",
        ),
        config={
            "maxMirrorPercent": {
                "type": "integer",
                "minimum": 0,
                "maximum": 50,
                "default": 50,
                "description": "Largest mirror share (Azure's limit is 50).",
            }
        },
        kind="stack",
        tags=("serving", "release"),
    ),
    _traffic,
)

# --------------------------------------------------------------------------- instances behind live traffic


def _min_instances(stack: Stack, config: dict[str, Any]) -> Finding:
    minimum = config["minInstances"]
    autoscales = stack.of_type(AUTOSCALE_SETTING)
    for routing in stack.of_type(ENDPOINT_ROUTING):
        if same(routing.get("kind"), "batch"):
            continue
        split = _split(routing.get("traffic"))
        if not split:
            continue
        endpoint = _endpoint_of_routing(stack, routing)
        if endpoint is not None:
            candidates = _deployments_of(stack, endpoint)
        else:
            candidates = [d for d in stack.of_type(ONLINE_DEPLOYMENT) if routing.depends_on(d)]
        for name, share in sorted(split.items()):
            if not known(share) or share <= 0:
                continue
            for deployment in _named(candidates, name):
                if exempt(config, deployment.name, deployment.arm_name):
                    continue
                yield from _instance_findings(stack, deployment, share, minimum, autoscales)


def _instance_findings(stack: Stack, deployment: Resource, share: float, minimum: int, autoscales: list[Resource]) -> Finding:
    capacity = as_number(deployment.get("sku.capacity"))
    if capacity is not UNKNOWN and (capacity if known(capacity) else 1.0) < minimum:
        yield deployment.urn, (
            f"{deployment.label}: sku.capacity is {show(capacity)}{' (Azure default 1)' if not known(capacity) else ''} "
            f"with {show(share)}% live traffic; must be at least {minimum}"
        )
    if same(deployment.get("properties.scaleSettings.scaleType"), "TargetUtilization"):
        floor = as_number(deployment.get("properties.scaleSettings.minInstances"))
        if known(floor) and floor < minimum:
            yield deployment.urn, (
                f"{deployment.label}: properties.scaleSettings.minInstances is {show(floor)} with live traffic; "
                f"must be at least {minimum}"
            )
    for autoscale in autoscales:
        if not _enabled(autoscale) or not stack.linked(autoscale, "targetResourceUri", deployment):
            continue
        profiles = unwrap(autoscale.get("profiles"))
        for profile in profiles if isinstance(profiles, list) else []:
            floor = as_number(get(profile, "capacity.minimum"))
            if known(floor) and floor < minimum:
                yield deployment.urn, (
                    f"{deployment.label}: autoscale setting {autoscale.arm_name or autoscale.name!r} profile "
                    f"{get(profile, 'name')!r} scales in to {show(floor)} instances; must be at least {minimum}"
                )


deployment_min_instances = stack_policy(
    PolicyInfo(
        name="azml-deployment-min-instances",
        description="Every online deployment with live traffic runs (and autoscales down to) at least the minimum number of instances.",
        checklist=checks.BASELINE_AVAILABILITY,
        severity=Severity.MEDIUM,
        remediation=(
            "Raise instanceCount (sku.capacity) of the deployment — and autoscale.minInstances — to the minimum "
            "before it receives traffic; Azure ML needs two instances to stay up through node upgrades."
        ),
        resource_types=(ENDPOINT_ROUTING, ONLINE_DEPLOYMENT, AUTOSCALE_SETTING),
        properties=(
            "EndpointRouting.traffic",
            "EndpointRouting.endpointId",
            "OnlineDeployment.sku.capacity",
            "OnlineDeployment.properties.scaleSettings.minInstances",
            "AutoscaleSetting.targetResourceUri",
            "AutoscaleSetting.profiles[].capacity.minimum",
        ),
        config={
            "minInstances": {
                "type": "integer",
                "minimum": 1,
                "default": 2,
                "description": "Instances every deployment with live traffic runs at least.",
            }
        },
        kind="stack",
        tags=("serving", "availability"),
    ),
    _min_instances,
)

# --------------------------------------------------------------------------- approved images


def _registry_hosts(stack: Stack) -> set[str]:
    hosts: set[str] = set()
    for registry in stack.of_type(REGISTRY):
        login = registry.get("loginServer")
        if isinstance(login, str) and login:
            hosts.add(login.lower().rstrip("/") + "/")
        name = registry.arm_name
        if name:
            hosts.add(f"{name.lower()}.azurecr.io/")
    return hosts


def _floating(image: str) -> bool:
    if "@sha256:" in image:
        return False
    last = image.rsplit("/", 1)[-1]
    return ":" not in last or last.rsplit(":", 1)[-1] == "latest"


def _approved_images(stack: Stack, config: dict[str, Any]) -> Finding:
    prefixes = [p.lower() for p in config["allowedImagePrefixes"]]
    if config["allowStackRegistries"]:
        prefixes += sorted(_registry_hosts(stack))
    allowed = "; ".join(prefixes) or "none"
    environments = stack.of_type(ENVIRONMENT_VERSION)
    for env in environments:
        if exempt(config, env.name):
            continue
        image = env.get("properties.image")
        if isinstance(image, str):
            if not image.lower().startswith(tuple(prefixes)):
                yield env.urn, f"{env.label}: properties.image {image!r} is not from an approved registry ({allowed})"
            elif not config["allowLatestTag"] and _floating(image):
                yield env.urn, f"{env.label}: properties.image {image!r} floats (latest or no tag); pin a version tag or digest"
        elif image is MISSING and isinstance(env.get("properties.build"), dict) and not config["allowDockerBuild"]:
            yield env.urn, (
                f"{env.label}: built from a Docker build context (properties.build); its base image cannot be "
                "verified — build the image in CI and reference it with properties.image"
            )
    env_prefixes = tuple(p.lower() for p in config["allowedEnvironmentPrefixes"])
    for deployment in stack.of_type(ONLINE_DEPLOYMENT, BATCH_DEPLOYMENT):
        if exempt(config, deployment.name, deployment.arm_name):
            continue
        env_id = deployment.get("properties.environmentId")
        if not isinstance(env_id, str):
            continue  # unknown or unset: the environment (if declared here) is checked above
        if env_id.lower().startswith(env_prefixes):
            continue
        if any(stack.linked(deployment, "properties.environmentId", env) for env in environments):
            continue
        yield deployment.urn, (
            f"{deployment.label}: properties.environmentId {env_id!r} is neither an environment declared in this "
            f"stack nor under an approved prefix ({', '.join(config['allowedEnvironmentPrefixes']) or 'none'})"
        )


approved_images = stack_policy(
    PolicyInfo(
        name="azml-approved-images",
        description=(
            "Serving environments use images from approved registries only: Microsoft's Azure ML base images or "
            "this stack's own registry."
        ),
        checklist=checks.APPROVED_IMAGES,
        severity=Severity.HIGH,
        remediation=(
            "Build serving images in CI, push them to the stack's registry and reference them as "
            "environment.image (repository:tag), or use an approved mcr.microsoft.com/azureml/ base image with a "
            "conda spec; reference only environments declared in the stack."
        ),
        resource_types=(ENVIRONMENT_VERSION, REGISTRY, ONLINE_DEPLOYMENT, BATCH_DEPLOYMENT),
        properties=(
            "EnvironmentVersion.properties.image",
            "EnvironmentVersion.properties.build",
            "Registry.registryName",
            "Registry.loginServer",
            "OnlineDeployment.properties.environmentId",
            "BatchDeployment.properties.environmentId",
        ),
        config={
            "allowedImagePrefixes": {
                "type": "array",
                "items": {"type": "string"},
                "default": ["mcr.microsoft.com/azureml/"],
                "description": "Image prefixes (registry host and path) that are approved.",
            },
            "allowStackRegistries": {
                "type": "boolean",
                "default": True,
                "description": "Images from container registries declared in this stack (<name>.azurecr.io/) are approved.",
            },
            "allowedEnvironmentPrefixes": {
                "type": "array",
                "items": {"type": "string"},
                "default": ["azureml://registries/azureml/"],
                "description": "environmentId prefixes approved without an environment in the stack (curated environments).",
            },
            "allowLatestTag": {
                "type": "boolean",
                "default": True,
                "description": "Tolerate images tagged latest or untagged (they can change after scanning).",
            },
            "allowDockerBuild": {
                "type": "boolean",
                "default": False,
                "description": "Tolerate environments built from a Docker context (base image unverifiable).",
            },
        },
        kind="stack",
        tags=("serving", "supply-chain"),
    ),
    _approved_images,
)

POLICIES = [
    private_endpoints,
    private_dns_zone_groups,
    diagnostic_settings,
    endpoint_alerts,
    endpoint_drift_monitor,
    traffic_split_valid,
    deployment_min_instances,
    approved_images,
]

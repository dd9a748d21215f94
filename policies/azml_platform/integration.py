"""Retraining trigger, function app and governance: Event Grid delivery to
firewalled storage, telemetry with Entra ID, function egress, Flex
Consumption limits, locks that leave releases possible, budgets and
endpoint logs in the tables their queries read.

Ids are compared by their tail from ``/resourcegroups/`` on (lower case), so
that a reference built from names (``.../storageAccounts/<name>``) matches a
resource whose subscription is not known yet; a check that cannot tell
(unknown values, no recorded dependency) reports nothing.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Iterator

from pulumi_policy import Severity

from azml_policies.azure import (
    AUTOSCALE_SETTING,
    BATCH_DEPLOYMENT,
    BATCH_ENDPOINT,
    DIAGNOSTIC_SETTING,
    ONLINE_DEPLOYMENT,
    ONLINE_ENDPOINT,
    ROLE_ASSIGNMENT,
    SCHEDULED_QUERY_RULE,
    STORAGE_ACCOUNT,
    WEB_APP,
)
from azml_policies.checks import Finding, exempt
from azml_policies.topology import Resource, Stack
from azml_policies.values import MISSING, UNKNOWN, as_number, get, known, same, show, strings, unwrap

from .rules import Rule, resource_rule, stack_rule

SYSTEM_TOPIC = "azure-native:eventgrid:SystemTopic"
SYSTEM_TOPIC_SUBSCRIPTION = "azure-native:eventgrid:SystemTopicEventSubscription"
EVENT_SUBSCRIPTION = "azure-native:eventgrid:EventSubscription"
APP_INSIGHTS = "azure-native:applicationinsights:Component"
WORKBOOK = "azure-native:applicationinsights:Workbook"
SUBNET = "azure-native:network:Subnet"
BUDGET = "azure-native:consumption:Budget"
LOCK_BY_SCOPE = "azure-native:authorization:ManagementLockByScope"
LOCK_AT_GROUP = "azure-native:authorization:ManagementLockAtResourceGroupLevel"
LOCK_AT_SUBSCRIPTION = "azure-native:authorization:ManagementLockAtSubscriptionLevel"
LOCK_AT_RESOURCE = "azure-native:authorization:ManagementLockAtResourceLevel"
LOCKS = (LOCK_BY_SCOPE, LOCK_AT_GROUP, LOCK_AT_SUBSCRIPTION, LOCK_AT_RESOURCE)

#: Monitoring Metrics Publisher (built-in role definition id).
METRICS_PUBLISHER = "3913510d-42f4-4e42-8a64-420c390055eb"
ENDPOINT_TYPES = (ONLINE_ENDPOINT, ONLINE_DEPLOYMENT, BATCH_ENDPOINT, BATCH_DEPLOYMENT)
FLEX_MEMORY_SIZES = (512, 2048, 4096)
#: Resource-specific tables of online endpoint logs.
_ENDPOINT_TABLES = re.compile(r"\bAmlOnlineEndpoint(TrafficLog|EventLog|ConsoleLog)\b")


def _tail(reference: Any) -> str | None:
    """An ARM id (or id suffix) from ``/resourcegroups/`` on, lower case;
    ``""`` for a subscription id; None when not a known id."""
    if not isinstance(reference, str) or not reference.startswith("/"):
        return None
    ref = reference.rstrip("/").lower()
    at = ref.find("/resourcegroups/")
    if at >= 0:
        return ref[at:]
    return "" if ref.startswith("/subscriptions/") else None


def _within(child: str, scope: str) -> bool:
    """Whether id tail ``child`` is ``scope`` or under it (``""`` = the subscription)."""
    return scope == "" or child == scope or child.startswith(scope + "/")


def _own_tail(resource: Resource) -> str | None:
    own, _full = resource.own_id
    return _tail(own) if own else None


def _group_tail(resource: Resource, *name_keys: str, kind: str) -> str | None:
    group = resource.get("resourceGroupName")
    for key in name_keys:
        name = resource.get(key)
        if isinstance(group, str) and isinstance(name, str):
            return f"/resourcegroups/{group}/providers/{kind}/{name}".lower()
    return None


# --------------------------------------------------------------------------- Event Grid delivery to storage

_DELIVERIES = (
    # (property, destination path inside it, what, uses the subscription's identity)
    ("deliveryWithResourceIdentity", "destination", "delivery", True),
    ("destination", "", "delivery", False),
    ("deadLetterWithResourceIdentity", "deadLetterDestination", "dead-letter", True),
    ("deadLetterDestination", "", "dead-letter", False),
)


def _storage_deliveries(subscription: Resource) -> Iterator[tuple[str, str, dict[str, Any], bool]]:
    for prop, inner, what, with_identity in _DELIVERIES:
        block = subscription.get(prop)
        if not isinstance(block, dict):
            continue
        destination = get(block, inner) if inner else block
        if not isinstance(destination, dict):
            continue
        kind = destination.get("endpointType")
        if not (isinstance(kind, str) and kind.lower() in ("storagequeue", "storageblob")):
            continue
        yield prop, what, block, with_identity


def _event_grid_storage(stack: Stack, config: dict[str, Any]) -> Finding:
    accounts = stack.of_type(STORAGE_ACCOUNT)
    for subscription in stack.of_type(SYSTEM_TOPIC_SUBSCRIPTION, EVENT_SUBSCRIPTION):
        if exempt(config, subscription.name, subscription.arm_name):
            continue
        topic_name = subscription.get("systemTopicName")
        topics = [t for t in stack.named(topic_name) if t.type == SYSTEM_TOPIC] if isinstance(topic_name, str) else []
        for prop, what, block, with_identity in _storage_deliveries(subscription):
            for account in stack.links(subscription, prop, among=accounts):
                yield from (
                    (subscription.urn, f"{subscription.label}: {prop} ({what}) to {account.label}: {problem}")
                    for problem in _delivery_problems(account, block, with_identity, topics)
                )


def _delivery_problems(account: Resource, block: dict[str, Any], with_identity: bool, topics: list[Resource]) -> Iterator[str]:
    access = account.get("publicNetworkAccess")
    if same(access, "Disabled"):
        yield (
            "the account's publicNetworkAccess is 'Disabled'; Event Grid delivers over the public endpoint, so it must "
            "be 'Enabled' with networkRuleSet.defaultAction 'Deny' and bypass 'AzureServices' (selected networks)"
        )
        return
    action, bypass = account.get("networkRuleSet.defaultAction"), account.get("networkRuleSet.bypass")
    firewalled = same(action, "Deny")
    if firewalled and known(bypass) and "azureservices" not in str(bypass).lower().replace(" ", ""):
        yield f"networkRuleSet.bypass is {show(bypass)}; a firewalled account must let trusted Azure services ('AzureServices') through"
    if not firewalled:
        return
    if not with_identity:
        yield "delivers with Event Grid's keys; a firewalled account accepts only the topic's system-assigned identity (deliveryWithResourceIdentity / deadLetterWithResourceIdentity)"
        return
    identity = get(block, "identity.type")
    if known(identity) and not same(identity, "SystemAssigned"):
        yield f"identity.type is {show(identity)}; a firewalled account accepts only the system-assigned identity"
    for topic in topics:
        topic_identity = topic.get("identity.type")
        if topic_identity is not UNKNOWN and "systemassigned" not in str(topic_identity).lower().replace(" ", "").replace(",", ""):
            yield f"{topic.label} has identity.type {show(topic_identity)}; it needs a system-assigned identity to deliver with"


event_grid_storage_delivery = stack_rule(
    Rule(
        name="azure-eventgrid-storage-delivery-reachable",
        description=(
            "An Event Grid subscription delivering to a Storage queue (or dead-lettering to a blob container) of a "
            "firewalled account reaches it: public network access Enabled (never Disabled), trusted services "
            "bypass, and the topic's system-assigned identity."
        ),
        severity=Severity.HIGH,
        remediation=(
            "On the destination account set publicNetworkAccess: 'Enabled' with networkRuleSet {defaultAction: 'Deny', "
            "bypass: 'AzureServices'} and no IP or virtual-network rules; give the system topic a system-assigned "
            "identity with Storage Queue Data Message Sender (queue) and Storage Blob Data Contributor (dead-letter "
            "container); deliver with deliveryWithResourceIdentity / deadLetterWithResourceIdentity of type SystemAssigned."
        ),
        source="event-grid/handler-storage-queues",
        quote=(
            "If a firewall or virtual network rule is configured for the Azure Storage account, you can use only the "
            "system-assigned managed identity if Allow Azure services on the trusted service list to access the storage "
            "account is also enabled on the storage account. (And, event-grid/consume-private-endpoints: \"Currently, "
            "it's not possible to deliver events using private endpoints.\")"
        ),
        resource_types=(SYSTEM_TOPIC_SUBSCRIPTION, EVENT_SUBSCRIPTION, SYSTEM_TOPIC, STORAGE_ACCOUNT),
        properties=(
            "SystemTopicEventSubscription.deliveryWithResourceIdentity",
            "SystemTopicEventSubscription.deadLetterWithResourceIdentity",
            "SystemTopicEventSubscription.destination",
            "SystemTopicEventSubscription.deadLetterDestination",
            "SystemTopic.identity.type",
            "StorageAccount.publicNetworkAccess",
            "StorageAccount.networkRuleSet.defaultAction",
            "StorageAccount.networkRuleSet.bypass",
        ),
        area="integration",
    ),
    _event_grid_storage,
)

# --------------------------------------------------------------------------- App Insights with Entra ID


def _app_settings(app: Resource) -> dict[str, Any]:
    settings = unwrap(app.get("siteConfig.appSettings"))
    result: dict[str, Any] = {}
    for item in settings if isinstance(settings, list) else []:
        name = get(item, "name")
        if isinstance(name, str):
            result[name] = get(item, "value")
    return result


def _component_tail(component: Resource) -> str | None:
    return _group_tail(component, "resourceName", "name", kind="microsoft.insights/components")


def _entra_ingestion(stack: Stack, config: dict[str, Any]) -> Finding:
    components = stack.of_type(APP_INSIGHTS)
    for app in stack.of_type(WEB_APP):
        if exempt(config, app.name, app.arm_name):
            continue
        auth = _app_settings(app).get("APPLICATIONINSIGHTS_AUTHENTICATION_STRING")
        if not (isinstance(auth, str) and "authorization=aad" in auth.lower().replace(" ", "")):
            continue
        grants = [
            ra for ra in stack.of_type(ROLE_ASSIGNMENT)
            if ra.depends_on(app, "principalId") and str(ra.get("roleDefinitionId")).lower().endswith(METRICS_PUBLISHER)
        ]  # fmt: skip
        if any(_grant_covers(stack, ra, components) for ra in grants):
            continue
        if any(ra.get("scope") is UNKNOWN or ra.get("roleDefinitionId") is UNKNOWN for ra in grants):
            continue
        yield app.urn, (
            f"{app.label}: siteConfig.appSettings APPLICATIONINSIGHTS_AUTHENTICATION_STRING is {auth!r} and its identity "
            "has no Monitoring Metrics Publisher role assignment on the Application Insights component; Entra-authenticated "
            "ingestion refuses its telemetry"
        )


def _grant_covers(stack: Stack, grant: Resource, components: list[Resource]) -> bool:
    if any(stack.linked(grant, "scope", c) for c in components):
        return True
    scope = _tail(grant.get("scope"))
    if scope is None:
        return False
    return any((tail := _component_tail(c)) is not None and _within(tail, scope) for c in components) or not components


entra_ingestion_role = stack_rule(
    Rule(
        name="azure-appinsights-entra-ingestion-role",
        description=(
            "An app that sends telemetry to Application Insights with Microsoft Entra authentication "
            "(APPLICATIONINSIGHTS_AUTHENTICATION_STRING=Authorization=AAD) has Monitoring Metrics Publisher on the component."
        ),
        severity=Severity.MEDIUM,
        remediation=(
            "Assign the built-in role Monitoring Metrics Publisher (3913510d-42f4-4e42-8a64-420c390055eb) on the "
            "Application Insights component to the app's managed identity."
        ),
        source="azure-monitor/app/azure-ad-authentication",
        quote=(
            "Follow the steps in Assign Azure roles to add the Monitoring Metrics Publisher role to the expected "
            "identity, service principal, or Azure user account by setting the target Application Insights resource "
            "as the role scope."
        ),
        resource_types=(WEB_APP, ROLE_ASSIGNMENT, APP_INSIGHTS),
        properties=("WebApp.siteConfig.appSettings", "RoleAssignment.roleDefinitionId", "RoleAssignment.principalId", "RoleAssignment.scope"),
        area="integration",
    ),
    _entra_ingestion,
)

# --------------------------------------------------------------------------- locks that leave releases possible


def _lock_scopes(stack: Stack, lock: Resource) -> list[str]:
    if lock.type == LOCK_AT_SUBSCRIPTION:
        return [""]
    if lock.type == LOCK_AT_GROUP:
        group = lock.get("resourceGroupName")
        return [f"/resourcegroups/{group}".lower()] if isinstance(group, str) else []
    if lock.type == LOCK_AT_RESOURCE:
        parts = [lock.get(k) for k in ("resourceGroupName", "resourceProviderNamespace", "parentResourcePath", "resourceType", "resourceName")]
        group, namespace, parent, kind, name = parts
        if not all(isinstance(p, str) for p in (group, namespace, kind, name)):
            return []
        middle = f"/{parent.strip('/')}" if isinstance(parent, str) and parent.strip("/") else ""
        return [f"/resourcegroups/{group}/providers/{namespace}{middle}/{kind}/{name}".lower()]
    scope = _tail(lock.get("scope"))
    if scope is not None:
        return [scope]
    return [t for t in (_own_tail(r) for r in stack.links(lock, "scope")) if t is not None]


def _release_managed(stack: Stack) -> list[tuple[Resource, str, str]]:
    """``(resource, id tail, why)`` of what routine releases and persona
    changes create and delete."""
    found: list[tuple[Resource, str, str]] = []
    endpoints = stack.of_type(*ENDPOINT_TYPES)
    for r in endpoints:
        tail = _own_tail(r)
        if tail:
            found.append((r, tail, "a release adds and removes endpoints and deployments"))
    for r in stack.of_type(AUTOSCALE_SETTING):
        tail = _group_tail(r, "autoscaleSettingName", "name", kind="microsoft.insights/autoscalesettings")
        if tail:
            found.append((r, tail, "an autoscale setting goes with its deployment"))
    for r in stack.of_type(DIAGNOSTIC_SETTING):
        uri = _tail(r.get("resourceUri"))
        if uri is not None and ("/onlineendpoints/" in uri or "/batchendpoints/" in uri):
            found.append((r, uri + "/providers/microsoft.insights/diagnosticsettings", "an endpoint's diagnostic setting goes with the endpoint"))
        elif uri is None:
            for target in stack.links(r, "resourceUri", among=endpoints):
                tail = _own_tail(target)
                if tail:
                    found.append((r, tail + "/providers/microsoft.insights/diagnosticsettings", "an endpoint's diagnostic setting goes with the endpoint"))
    for r in stack.of_type(ROLE_ASSIGNMENT):
        scope = _tail(r.get("scope"))
        if scope is None:
            continue
        if any(r.depends_on(e, "principalId") for e in endpoints):
            found.append((r, scope + "/providers/microsoft.authorization/roleassignments", "an endpoint identity's role assignment goes with the endpoint"))
        elif same(r.get("principalType"), "User") or same(r.get("principalType"), "Group"):
            found.append((r, scope + "/providers/microsoft.authorization/roleassignments", "persona changes replace role assignments"))
    return found


def _locks(stack: Stack, config: dict[str, Any]) -> Finding:
    locks = [lock for lock in stack.of_type(*LOCKS) if not exempt(config, lock.name, lock.arm_name)]
    if not locks:
        return
    managed = _release_managed(stack)
    for lock in locks:
        level = lock.get("level")
        if not (same(level, "CanNotDelete") or same(level, "ReadOnly")):
            continue
        for scope in _lock_scopes(stack, lock):
            blocked = [(r, why) for r, tail, why in managed if _within(tail, scope)]
            for resource, why in blocked[: config["maxReported"]]:
                where = lock.get("scope") if isinstance(lock.get("scope"), str) else scope
                yield lock.urn, (
                    f"{lock.label}: level {show(level)} on scope {where!r} "
                    f"covers {resource.label} ({why}); deleting it would fail with ScopeLocked"
                )


locks_spare_releases = stack_rule(
    Rule(
        name="azure-lock-spares-release-resources",
        description=(
            "No CanNotDelete or ReadOnly lock covers what routine releases delete: online and batch endpoints and "
            "deployments, their autoscale and diagnostic settings, endpoint-identity and persona role assignments."
        ),
        severity=Severity.HIGH,
        remediation=(
            "Lock only resources whose scope holds nothing releases delete (the data: storage; the secrets: Key "
            "Vault), and protect the workspace with Pulumi's protect option instead of an Azure lock."
        ),
        source="azure-resource-manager/management/lock-resources",
        quote=(
            "When you apply a lock at a parent scope, all resources within that scope inherit the same lock. [...] "
            "A cannot-delete lock on a resource or resource group prevents the deletion of Azure RBAC assignments."
        ),
        resource_types=(*LOCKS, *ENDPOINT_TYPES, AUTOSCALE_SETTING, DIAGNOSTIC_SETTING, ROLE_ASSIGNMENT),
        properties=("ManagementLockByScope.scope", "ManagementLockByScope.level", "RoleAssignment.scope", "RoleAssignment.principalType", "DiagnosticSetting.resourceUri"),
        config={"maxReported": {"type": "integer", "minimum": 1, "default": 5, "description": "Covered resources reported per lock."}},
        area="governance",
    ),
    _locks,
)

# --------------------------------------------------------------------------- Flex Consumption scale limits


def _is_function_app(app: Resource) -> bool:
    kind = app.get("kind")
    return isinstance(kind, str) and "functionapp" in kind.lower()


def _flex_limits(app: Resource, config: dict[str, Any]) -> Iterator[str]:
    if not _is_function_app(app):
        return
    floor = config["minimumMaximumInstanceCount"]
    count = as_number(app.get("functionAppConfig.scaleAndConcurrency.maximumInstanceCount"))
    if known(count) and not floor <= count <= 1000:
        yield (
            f"{app.label}: functionAppConfig.scaleAndConcurrency.maximumInstanceCount is {show(count)}; "
            f"Flex Consumption accepts {floor}..1000"
        )
    memory = as_number(app.get("functionAppConfig.scaleAndConcurrency.instanceMemoryMB"))
    if known(memory) and memory not in FLEX_MEMORY_SIZES:
        yield (
            f"{app.label}: functionAppConfig.scaleAndConcurrency.instanceMemoryMB is {show(memory)}; "
            f"Flex Consumption instance sizes are {', '.join(map(str, FLEX_MEMORY_SIZES))} MB"
        )


flex_scale_limits = resource_rule(
    Rule(
        name="azure-functions-flex-scale-limits",
        description="A Flex Consumption function app's maximum instance count and instance memory are values the plan accepts.",
        severity=Severity.HIGH,
        remediation="Set functionAppConfig.scaleAndConcurrency.maximumInstanceCount within 1..1000 and instanceMemoryMB to 512, 2048 or 4096.",
        source="azure-functions/event-driven-scaling#limit-scale-out",
        quote=(
            "Currently the lowest maximum instance count value is `1`, and the highest supported maximum instance "
            "count value is `1000`."
        ),
        resource_types=(WEB_APP,),
        properties=("functionAppConfig.scaleAndConcurrency.maximumInstanceCount", "functionAppConfig.scaleAndConcurrency.instanceMemoryMB"),
        config={
            "minimumMaximumInstanceCount": {
                "type": "integer",
                "minimum": 1,
                "maximum": 1000,
                "default": 1,
                "description": "The documented floor (1 today; earlier versions of the page gave 40).",
            }
        },
        area="integration",
    ),
    _flex_limits,
)

# --------------------------------------------------------------------------- function egress


def _subnet_of(stack: Stack, app: Resource) -> list[Resource]:
    subnets = stack.of_type(SUBNET)
    found = [s for s in subnets if app.depends_on(s, "virtualNetworkSubnetId")]
    reference = app.get("virtualNetworkSubnetId")
    if isinstance(reference, str):
        ref = reference.rstrip("/").lower()
        for s in subnets:
            vnet, name = s.get("virtualNetworkName"), s.get("subnetName")
            if isinstance(vnet, str) and isinstance(name, str) and ref.endswith(f"/virtualnetworks/{vnet}/subnets/{name}".lower()):
                found.append(s)
    return stack.in_order(found)


def _egress(stack: Stack, config: dict[str, Any]) -> Finding:
    for app in stack.of_type(WEB_APP):
        if not _is_function_app(app) or exempt(config, app.name, app.arm_name):
            continue
        for subnet in _subnet_of(stack, app):
            if subnet.get("defaultOutboundAccess") is not False:
                continue
            nat, routes = subnet.get("natGateway"), subnet.get("routeTable")
            if nat is MISSING and routes is MISSING:
                yield app.urn, (
                    f"{app.label}: virtualNetworkSubnetId is {subnet.label}, whose defaultOutboundAccess is false and which "
                    "has no natGateway and no routeTable (to a firewall); the app cannot reach Azure Resource Manager "
                    "(management.azure.com) or Application Insights ingestion"
                )


function_egress = stack_rule(
    Rule(
        name="azure-functions-vnet-egress",
        description=(
            "A function app integrated into a subnet without default outbound access has an explicit outbound path "
            "(a NAT gateway, or a route table to a firewall)."
        ),
        severity=Severity.HIGH,
        remediation=(
            "Associate a NAT gateway with a public IP to the integration subnet (or a route table sending 0.0.0.0/0 to a "
            "firewall). Azure Resource Manager has no private endpoint for a subnet's calls: its resource management private "
            "link applies only at the tenant's root management group."
        ),
        source="virtual-network/ip-services/default-outbound-access",
        quote="NAT gateway is the recommended approach to have explicit outbound connectivity. A firewall can also be used to provide this access.",
        resource_types=(WEB_APP, SUBNET),
        properties=("WebApp.virtualNetworkSubnetId", "Subnet.defaultOutboundAccess", "Subnet.natGateway", "Subnet.routeTable"),
        area="integration",
    ),
    _egress,
)

# --------------------------------------------------------------------------- budget start date


def _grain_start(grain: str, today: dt.date) -> dt.date:
    if grain.lower() in ("quarterly", "billingquarter"):
        return today.replace(month=(today.month - 1) // 3 * 3 + 1, day=1)
    if grain.lower() in ("annually", "billingannual"):
        return today.replace(month=1, day=1)
    return today.replace(day=1)


def _add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def _budget(budget: Resource, config: dict[str, Any]) -> Iterator[str]:
    value = budget.get("timePeriod.startDate")
    if not isinstance(value, str):
        return
    try:
        start = dt.date.fromisoformat(value[:10])
    except ValueError:
        yield f"{budget.label}: timePeriod.startDate is {value!r}; must be a date (first of a month)"
        return
    grain = budget.get("timeGrain")
    grain = grain if isinstance(grain, str) else "Monthly"
    today = dt.datetime.now(dt.timezone.utc).date()
    earliest, latest = _grain_start(grain, today), _add_months(today.replace(day=1), 12)
    if start.day != 1:
        yield f"{budget.label}: timePeriod.startDate is {value!r}; must be the first of a month"
    elif start < earliest:
        yield (
            f"{budget.label}: timePeriod.startDate is {value!r}, before the current {grain} period ({earliest.isoformat()}); "
            "a create fails. Leave the start date to the program (first day of the current month) and ignore later changes"
        )
    elif start > latest:
        yield f"{budget.label}: timePeriod.startDate is {value!r}, more than twelve months ahead (after {latest.isoformat()})"


budget_start = resource_rule(
    Rule(
        name="azure-budget-start-date-in-time-grain",
        description="A cost budget starts on the first of a month, within the current time-grain period or at most twelve months ahead.",
        severity=Severity.HIGH,
        remediation=(
            "Leave azml:governance.budget.startDate unset: the program uses the first day of the current month and "
            "ignores later changes to it."
        ),
        source="https://learn.microsoft.com/rest/api/consumption/budgets/create-or-update",
        quote=(
            "Constraints for CategoryType: Cost - Must be first of the month and should be less than the end date. "
            "Budget start date must be on or after June 1, 2017. Future start date should not be more than twelve "
            "months. Past start date should be selected within the timegrain period."
        ),
        resource_types=(BUDGET,),
        properties=("timePeriod.startDate", "timeGrain"),
        area="governance",
    ),
    _budget,
)

# --------------------------------------------------------------------------- endpoint logs in resource-specific tables


def _queries_endpoint_tables(stack: Stack) -> list[Resource]:
    return [
        r for r in stack.of_type(SCHEDULED_QUERY_RULE, WORKBOOK)
        if any(_ENDPOINT_TABLES.search(s) for s in strings(r.props))
    ]  # fmt: skip


def _endpoint_logs(stack: Stack, config: dict[str, Any]) -> Finding:
    readers = _queries_endpoint_tables(stack)
    if not readers:
        return
    endpoints = stack.of_type(ONLINE_ENDPOINT)
    for setting in stack.of_type(DIAGNOSTIC_SETTING):
        uri = _tail(setting.get("resourceUri"))
        on_endpoint = (
            uri is not None and "/onlineendpoints/" in uri and "/deployments/" not in uri
        ) or (uri is None and bool(stack.links(setting, "resourceUri", among=endpoints)))
        if not on_endpoint or exempt(config, setting.name) or setting.get("workspaceId") is MISSING:
            continue
        destination = setting.get("logAnalyticsDestinationType")
        if destination is UNKNOWN or same(destination, "Dedicated"):
            continue
        yield setting.urn, (
            f"{setting.label}: logAnalyticsDestinationType is {show(destination)} (Azure default: AzureDiagnostics); "
            f"{readers[0].label} queries the resource-specific AmlOnlineEndpoint* tables, which only 'Dedicated' fills"
        )


endpoint_logs_dedicated = stack_rule(
    Rule(
        name="azure-monitor-endpoint-logs-resource-specific",
        description=(
            "Online endpoint diagnostic settings send their logs to the resource-specific tables "
            "(logAnalyticsDestinationType 'Dedicated') when alerts or workbooks query those tables."
        ),
        severity=Severity.MEDIUM,
        remediation="Set logAnalyticsDestinationType: 'Dedicated' on the endpoint's diagnostic setting.",
        source="azure-monitor/essentials/resource-logs#send-to-log-analytics-workspace",
        quote=(
            "logAnalyticsDestinationType: A string indicating whether the export to Log Analytics should use the default "
            "destination type, i.e. AzureDiagnostics, or use a destination type. (Microsoft.Insights diagnosticSettings REST spec)"
        ),
        resource_types=(DIAGNOSTIC_SETTING, SCHEDULED_QUERY_RULE, WORKBOOK, ONLINE_ENDPOINT),
        properties=("DiagnosticSetting.resourceUri", "DiagnosticSetting.logAnalyticsDestinationType", "ScheduledQueryRule.criteria", "Workbook.serializedData"),
        area="observability",
    ),
    _endpoint_logs,
)

POLICIES = [
    event_grid_storage_delivery,
    entra_ingestion_role,
    locks_spare_releases,
    flex_scale_limits,
    function_egress,
    budget_start,
    endpoint_logs_dedicated,
]

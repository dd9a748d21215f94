"""The workspace's managed network: the outbound rules it needs and its
provisioning, as Microsoft documents them in how-to-managed-network.

- Outbound rules: FQDN rules for the package repositories image builds use
  (``azml:workspace.packageRepositories`` / ``outboundFqdns``), a
  Spark-enabled private endpoint rule to the workspace storage when model
  monitors (serverless Spark) run, and queue and table private endpoint rules
  when the stack has batch endpoints.
- Provisioning: "To create an online deployment, you must manually provision
  the managed network, or create a compute instance first which will
  automatically provision it." :class:`ManagedNetworkProvisioning` calls the
  workspace's ``provisionManagedNetwork`` action (what ``az ml workspace
  provision-network [--include-spark]`` does) and waits for it; deployments,
  compute and monitors wait on it. The workspace's ``provisionNetworkNow``
  flag is not used: it is in preview and provisions "with the default
  Options", i.e. without serverless Spark.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import pulumi
from pulumi.dynamic import CheckFailure, CheckResult, CreateResult, DiffResult, ReadResult, ResourceProvider, UpdateResult

from azml.azure_client import ARM_ENDPOINT, ProviderCredential, arm_pipeline_client, cloud_from_environment
from azml.config.schema import StackConfig
from azml.config.platform.workspace import fqdn_rule_name

#: Same API version as azure-native's Workspace resource and the routing client.
API_VERSION = "2025-12-01"

#: Outbound rule names the stack declares for its own scenarios.
SPARK_STORAGE_RULE = "pe-storage-blob-spark"
BATCH_STORAGE_RULES = {"queue": "pe-storage-queue", "table": "pe-storage-table"}


def outbound_rules(config: StackConfig, storage_account_id: pulumi.Input[str]) -> dict[str, dict[str, Any]]:
    """``managedNetwork.outboundRules`` of the workspace (rule name -> rule)."""
    ws = config.workspace
    rules: dict[str, dict[str, Any]] = {}
    for host in ws.approved_fqdns:
        # "FQDN outbound rules are implemented using Azure Firewall. If you use
        # outbound FQDN rules, charges for Azure Firewall are added to your billing."
        rules[fqdn_rule_name(host)] = {"type": "FQDN", "category": "UserDefined", "destination": host}
    if monitors_run(config):
        # "Configure a managed virtual network for the workspace and add an
        # outbound private endpoint for the Azure Storage Account" with
        # spark_enabled (how-to-managed-network, serverless Spark jobs).
        rules[SPARK_STORAGE_RULE] = _storage_rule(storage_account_id, "blob", spark=True)
    if config.batch_endpoints:
        # "If you plan to use Azure Machine Learning batch endpoints ... add
        # outbound private endpoint rules to allow traffic to the following sub
        # resources for the default storage account: queue, table".
        for subresource, name in BATCH_STORAGE_RULES.items():
            rules[name] = _storage_rule(storage_account_id, subresource)
    return rules


def _storage_rule(storage_account_id: pulumi.Input[str], subresource: str, *, spark: bool = False) -> dict[str, Any]:
    return {
        "type": "PrivateEndpoint",
        "category": "UserDefined",
        "destination": {
            "service_resource_id": storage_account_id,
            "subresource_target": subresource,
            "spark_enabled": spark,
        },
    }


def monitors_run(config: StackConfig) -> bool:
    """Whether the stack creates model monitors (serverless Spark jobs)."""
    monitoring = config.model_monitoring
    if not monitoring.enabled:
        return False
    wanted = set(monitoring.endpoints) if monitoring.endpoints is not None else None
    return any(
        d.data_collection
        for e in config.online_endpoints
        if wanted is None or e.name in wanted
        for d in e.deployments
    )


# --------------------------------------------------------------------------- provisioning


class ProvisioningClient:
    """POST ``<workspace>/provisionManagedNetwork`` and follow ARM's
    asynchronous-operation protocol; GET the workspace's network status."""

    def __init__(
        self, credential: Any, *, base_url: str = ARM_ENDPOINT, polling_interval: float = 15.0, scope: str | None = None
    ) -> None:
        self.polling_interval = polling_interval
        self._client = arm_pipeline_client(credential, base_url=base_url, moniker="azml-managed-network", scope=scope)

    def _url(self, path: str) -> str:
        return self._client.format_url(f"{path}?api-version={API_VERSION}")

    def provision(self, workspace_id: str, include_spark: bool) -> dict[str, Any]:
        """Provision (idempotent) and wait; returns ``{"status", "sparkReady"}``."""
        from azure.core.exceptions import HttpResponseError
        from azure.core.polling import LROPoller
        from azure.core.rest import HttpRequest
        from azure.mgmt.core.exceptions import ARMErrorFormat
        from azure.mgmt.core.polling.arm_polling import ARMPolling

        # The body is required: Azure refuses the action without it.
        request = HttpRequest(
            "POST", self._url(f"{workspace_id}/provisionManagedNetwork"), json={"includeSpark": include_spark}
        )
        initial = self._client._pipeline.run(request)
        if initial.http_response.status_code not in (200, 202):
            raise HttpResponseError(response=initial.http_response, error_format=ARMErrorFormat)
        poller: LROPoller[Any] = LROPoller(
            self._client,
            initial,
            lambda response: response.http_response.json() if response.http_response.text() else {},
            ARMPolling(self.polling_interval, lro_options={"final-state-via": "location"}),
        )
        return poller.result() or {}

    def status(self, workspace_id: str) -> dict[str, Any] | None:
        """``properties.managedNetwork.status`` of the workspace, ``None`` if it is gone."""
        from azure.core.exceptions import HttpResponseError
        from azure.core.rest import HttpRequest
        from azure.mgmt.core.exceptions import ARMErrorFormat

        response = self._client.send_request(HttpRequest("GET", self._url(workspace_id)))
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise HttpResponseError(response=response, error_format=ARMErrorFormat)
        network = (response.json().get("properties") or {}).get("managedNetwork") or {}
        return network.get("status") or {}


_IDENTITY_KEYS = ("workspaceId", "armEndpoint")
_TRIGGER_KEYS = ("includeSpark", "outboundRules")


class ManagedNetworkProvisioningProvider(ResourceProvider):
    """``credential`` and ``polling_interval`` are for tests; in Pulumi the
    credential is built in the provider host from the same ``ARM_*``
    variables azure-native signs in with (as the endpoint routing provider does)."""

    def __init__(self, credential: Any = None, polling_interval: float = 15.0) -> None:
        super().__init__()
        self._credential = ProviderCredential(credential)
        self._polling_interval = polling_interval

    def _client(self, props: Mapping[str, Any]) -> ProvisioningClient:
        return ProvisioningClient(**self._credential.client_args(props), polling_interval=self._polling_interval)

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        failures = []
        if not isinstance(news.get("includeSpark"), bool):
            failures.append(CheckFailure("includeSpark", "must be true or false"))
        return CheckResult(news, failures)

    def _provision(self, props: dict[str, Any]) -> dict[str, Any]:
        status = self._client(props).provision(props["workspaceId"], bool(props["includeSpark"]))
        return {**props, "status": status.get("status"), "sparkReady": status.get("sparkReady")}

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(id_=f"{props['workspaceId']}/managedNetwork", outs=self._provision(props))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = [key for key in _IDENTITY_KEYS if olds.get(key) != news.get(key)]
        # New rules or Spark: provision again (the action is idempotent).
        changed = [key for key in _TRIGGER_KEYS if olds.get(key) != news.get(key)]
        return DiffResult(changes=bool(replaces or changed), replaces=replaces, delete_before_replace=False)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs=self._provision(news))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        status = self._client(props).status(props["workspaceId"])
        if status is None:
            return ReadResult(id_=None, outs={})  # the workspace, and its network, are gone
        return ReadResult(id_=id_, outs={**props, "status": status.get("status"), "sparkReady": status.get("sparkReady")})

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        # Azure has no un-provision action: the managed network is deleted
        # with the workspace (how-to-managed-network, Limitations).
        return None


def _arm_endpoint() -> str:
    return cloud_from_environment().arm_endpoint


class ManagedNetworkProvisioning(pulumi.dynamic.Resource, module="azml", name="ManagedNetworkProvisioning"):
    """The provisioned managed network of a workspace. Resources that need it
    (online/batch deployments, compute, serverless Spark monitors) list it in
    ``depends_on``. ``outbound_rules`` (the rule names) re-provisions when
    the rules change."""

    status: pulumi.Output[str]
    sparkReady: pulumi.Output[bool]

    def __init__(
        self,
        name: str,
        *,
        workspace_id: pulumi.Input[str],
        include_spark: bool,
        outbound_rules: Sequence[str] = (),
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(
            ManagedNetworkProvisioningProvider(),
            name,
            {
                "workspaceId": workspace_id,
                "includeSpark": include_spark,
                "outboundRules": sorted(outbound_rules),
                "armEndpoint": _arm_endpoint(),
                "status": None,
                "sparkReady": None,
            },
            opts,
        )

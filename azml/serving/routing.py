"""Endpoint routing — an online endpoint's live/mirror traffic split, or a batch
endpoint's default deployment — applied through the ARM REST API.

Why its own resource: a deployment needs its endpoint, and Azure refuses
traffic that names a deployment that does not exist yet, so the split cannot
be declared on the endpoint resource in the same program. The routing
resource runs after every deployment of its endpoint.

Why the ARM REST API (with azure-core's pipeline, azure-mgmt-core's LRO
polling and an azure-identity credential) rather than azure-ai-ml's MLClient:
a Pulumi dynamic provider is pickled and re-imported by the provider host on
every operation, and azure-ai-ml is a heavy import with many transitive pins;
here we issue exactly two calls — GET the endpoint, and PUT it back only when
the split differs — which keeps the operation idempotent, auditable, and
testable against a local server that speaks the same REST surface.

Why PUT and not PATCH: the REST spec's ``OnlineEndpoints_Update`` (PATCH)
takes a ``PartialMinimalTrackedResourceWithIdentity`` — tags and identity
only — so the split can only change through ``OnlineEndpoints_CreateOrUpdate``
(PUT), which replaces the endpoint. The body PUT is therefore the endpoint as
GET returned it, read-only fields removed, routing replaced. The same
replace-semantics is why an endpoint PUT that omits the split (as the
endpoint resource's own update does) can reset it, and why the routing
resource compares with the live endpoint on every ``diff``.

Credentials and the ARM pipeline: :mod:`azml.azure_client` (the same
``ARM_*`` variables azure-native signs in with).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping

from azure.core.credentials import TokenCredential
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.core.polling import LROPoller
from azure.core.rest import HttpRequest
from azure.mgmt.core.exceptions import ARMErrorFormat
from azure.mgmt.core.polling.arm_polling import ARMPolling

from ..azure_client import ARM_ENDPOINT, arm_pipeline_client

#: The API version azure-native's OnlineEndpoint/BatchEndpoint resources use.
API_VERSION = "2025-12-01"

Kind = Literal["online", "batch"]

# Properties Azure computes; they must not be sent back on PUT.
_READ_ONLY_TOP = ("id", "name", "type", "systemData")
_READ_ONLY_PROPERTIES = ("provisioningState", "scoringUri", "swaggerUri", "openApiUri")


@dataclass(frozen=True)
class Routing:
    """Desired routing. Online: ``traffic`` and ``mirror_traffic`` (percent per
    deployment). Batch: ``default_deployment``."""

    kind: Kind
    traffic: Mapping[str, int] = field(default_factory=dict)
    mirror_traffic: Mapping[str, int] = field(default_factory=dict)
    default_deployment: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "traffic": dict(self.traffic),
            "mirrorTraffic": dict(self.mirror_traffic),
            "defaultDeployment": self.default_deployment,
        }

    @staticmethod
    def of_endpoint(kind: Kind, body: Mapping[str, Any]) -> "Routing":
        properties = body.get("properties") or {}
        if kind == "batch":
            return Routing("batch", default_deployment=(properties.get("defaults") or {}).get("deploymentName"))
        return Routing(
            "online",
            traffic={k: int(v) for k, v in (properties.get("traffic") or {}).items()},
            mirror_traffic={k: int(v) for k, v in (properties.get("mirrorTraffic") or {}).items()},
        )

    def same_as(self, other: "Routing") -> bool:
        """Equal as Azure sees it: a deployment at 0 % equals one not listed."""
        if self.kind == "batch":
            return self.default_deployment == other.default_deployment
        return nonzero(self.traffic) == nonzero(other.traffic) and nonzero(self.mirror_traffic) == nonzero(
            other.mirror_traffic
        )


def nonzero(split: Mapping[str, int]) -> dict[str, int]:
    """The split without its 0 % entries: what is sent to Azure and what is
    compared. azure-ai-ml strips them the same way before every endpoint PUT
    (``_strip_zeroes_from_traffic`` in ``OnlineEndpointOperations.begin_create_or_update``),
    and Azure routes nothing to a deployment it does not list."""
    return {k: v for k, v in split.items() if v}


def endpoint_id(subscription_id: str, resource_group: str, workspace: str, endpoint: str, kind: Kind) -> str:
    collection = "onlineEndpoints" if kind == "online" else "batchEndpoints"
    return (
        f"/subscriptions/{subscription_id}/resourceGroups/{resource_group}/providers/"
        f"Microsoft.MachineLearningServices/workspaces/{workspace}/{collection}/{endpoint}"
    )


class RoutingClient:
    """Reads and writes an endpoint's routing over ARM."""

    def __init__(
        self,
        credential: TokenCredential,
        *,
        base_url: str = ARM_ENDPOINT,
        api_version: str = API_VERSION,
        connection_verify: bool | str = True,
        polling_interval: float = 5.0,
        scope: str | None = None,
    ) -> None:
        self.api_version = api_version
        self.polling_interval = polling_interval
        self._client = arm_pipeline_client(
            credential, base_url=base_url, moniker="azml-routing", scope=scope, connection_verify=connection_verify
        )

    def _url(self, resource_id: str) -> str:
        # Absolute: neither send_request nor the raw pipeline adds base_url.
        return self._client.format_url(f"{resource_id}?api-version={self.api_version}")

    def _raise_for(self, response: Any) -> None:
        if response.status_code == 404:
            raise ResourceNotFoundError(response=response)
        if response.status_code not in (200, 201, 202):
            raise HttpResponseError(response=response, error_format=ARMErrorFormat)

    def get_endpoint(self, resource_id: str) -> dict[str, Any] | None:
        """The endpoint's ARM body, or ``None`` if it does not exist."""
        response = self._client.send_request(HttpRequest("GET", self._url(resource_id)))
        if response.status_code == 404:
            return None
        self._raise_for(response)
        return response.json()

    def read(self, resource_id: str, kind: Kind) -> Routing | None:
        body = self.get_endpoint(resource_id)
        return None if body is None else Routing.of_endpoint(kind, body)

    def apply(self, resource_id: str, desired: Routing) -> bool:
        """Make the endpoint's routing equal ``desired``. Returns whether a
        write was needed (``False``: already in place, nothing sent)."""
        body = self.get_endpoint(resource_id)
        if body is None:
            raise ResourceNotFoundError(message=f"endpoint {resource_id} does not exist")
        if Routing.of_endpoint(desired.kind, body).same_as(desired):
            return False
        self._put(resource_id, _with_routing(body, desired))
        return True

    def clear(self, resource_id: str, kind: Kind) -> bool:
        """Route nothing (online: every deployment at 0 %, no mirror) so the
        deployments can be deleted; batch defaults need no clearing. Tolerates
        a missing endpoint. Returns whether a write was needed."""
        if kind == "batch":
            return False
        body = self.get_endpoint(resource_id)
        if body is None:
            return False
        current = Routing.of_endpoint("online", body)
        # "The total traffic percentage must sum to either 0% (to disable
        # traffic) or 100%" (how-to-safely-rollout-online-endpoints): an empty
        # split is the 0 % one, with no zero entries.
        cleared = Routing("online", traffic={}, mirror_traffic={})
        if current.same_as(cleared):
            return False
        self._put(resource_id, _with_routing(body, cleared))
        return True

    def _put(self, resource_id: str, body: dict[str, Any]) -> dict[str, Any]:
        request = HttpRequest("PUT", self._url(resource_id), json=body)
        initial = self._client._pipeline.run(request)  # the pipeline response LROPoller needs
        self._raise_for(initial.http_response)
        poller: LROPoller[dict[str, Any]] = LROPoller(
            self._client,
            initial,
            lambda pipeline_response: pipeline_response.http_response.json(),
            ARMPolling(self.polling_interval),
        )
        return poller.result()


def _with_routing(body: Mapping[str, Any], desired: Routing) -> dict[str, Any]:
    """The endpoint body to PUT back: read-only fields removed, routing replaced."""
    updated = {k: copy.deepcopy(v) for k, v in body.items() if k not in _READ_ONLY_TOP}
    identity = updated.get("identity")
    if isinstance(identity, dict):
        updated["identity"] = {k: v for k, v in identity.items() if k not in ("principalId", "tenantId")}
    properties = {k: v for k, v in (updated.get("properties") or {}).items() if k not in _READ_ONLY_PROPERTIES}
    if desired.kind == "batch":
        properties["defaults"] = {**(properties.get("defaults") or {}), "deploymentName": desired.default_deployment}
    else:
        # Both maps always sent, without 0 % entries: a PUT replaces the
        # endpoint, and one that omits mirrorTraffic drops it ("If you use an
        # older version of CLI/SDK to update an endpoint, you'll lose the
        # mirror traffic setting", how-to-safely-rollout-online-endpoints).
        properties["traffic"] = nonzero(desired.traffic)
        properties["mirrorTraffic"] = nonzero(desired.mirror_traffic)
    updated["properties"] = properties
    return updated

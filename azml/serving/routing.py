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

Credentials: ``credential_from_environment`` builds the credential the way
the azure-native provider does from its ``ARM_*`` variables, so the routing
resource acts as the same identity as the rest of the stack, and falls back
to ``DefaultAzureCredential`` (``AZURE_*`` variables, workload identity,
managed identity, Azure CLI).
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Mapping

from azure.core.credentials import TokenCredential
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceNotFoundError
from azure.core.pipeline import policies
from azure.core.pipeline.transport import RequestsTransport
from azure.core.polling import LROPoller
from azure.core.rest import HttpRequest
from azure.mgmt.core import ARMPipelineClient
from azure.mgmt.core.exceptions import ARMErrorFormat
from azure.mgmt.core.policies import ARMChallengeAuthenticationPolicy
from azure.mgmt.core.polling.arm_polling import ARMPolling

ARM_ENDPOINT = "https://management.azure.com"
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
        self._client = ARMPipelineClient(
            base_url=base_url,
            policies=[
                policies.RequestIdPolicy(),
                policies.HeadersPolicy(),
                policies.UserAgentPolicy(sdk_moniker="azml-routing"),
                policies.RetryPolicy(),
                # The token audience is the ARM endpoint itself (differs per
                # cloud) unless a custom cloud names its own audience.
                ARMChallengeAuthenticationPolicy(credential, scope or f"{base_url.rstrip('/')}/.default"),
                policies.HttpLoggingPolicy(),
            ],
            transport=RequestsTransport(connection_verify=connection_verify),
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


# ---------------------------------------------------------------- credentials

#: Azure clouds by the names azure-native accepts in ARM_ENVIRONMENT /
#: AZURE_ENVIRONMENT: (ARM endpoint, Microsoft Entra authority host).
CLOUDS: dict[str, tuple[str, str]] = {
    "public": ("https://management.azure.com", "https://login.microsoftonline.com"),
    "usgovernment": ("https://management.usgovcloudapi.net", "https://login.microsoftonline.us"),
    "china": ("https://management.chinacloudapi.cn", "https://login.chinacloudapi.cn"),
}
_CLOUD_ALIASES = {
    "azurecloud": "public", "azurepubliccloud": "public", "usgov": "usgovernment",
    "azureusgovernment": "usgovernment", "azureusgovernmentcloud": "usgovernment",
    "azurechinacloud": "china",
}  # fmt: skip
#: The audience GitHub's OIDC token is requested for, as azure-native does.
DEFAULT_OIDC_AUDIENCE = "api://AzureADTokenExchange"


class CredentialConfigError(ValueError):
    """The ``ARM_*`` variables choose a sign-in method but miss a value it needs."""


@dataclass(frozen=True)
class Cloud:
    """Where to sign in and which ARM to call. ``authority`` ``None``: let
    azure-identity decide (``AZURE_AUTHORITY_HOST``, else the public cloud).
    ``scope`` ``None``: ``<arm_endpoint>/.default``."""

    arm_endpoint: str = ARM_ENDPOINT
    authority: str | None = None
    scope: str | None = None


def _get(environ: Mapping[str, str], *names: str) -> str:
    for name in names:
        if value := (environ.get(name) or "").strip():
            return value
    return ""


def _true(environ: Mapping[str, str], name: str) -> bool:
    return _get(environ, name).lower() == "true"


def cloud_from_environment(environ: Mapping[str, str] | None = None) -> Cloud:
    """The cloud azure-native would use: a custom cloud when
    ``ARM_ACTIVE_DIRECTORY_AUTHORITY_HOST``, ``ARM_RESOURCE_MANAGER_ENDPOINT``
    and ``ARM_RESOURCE_MANAGER_AUDIENCE`` are all set, else the cloud named by
    ``ARM_ENVIRONMENT`` or ``AZURE_ENVIRONMENT``, else the public cloud."""
    env = os.environ if environ is None else environ
    authority = _get(env, "ARM_ACTIVE_DIRECTORY_AUTHORITY_HOST")
    endpoint = _get(env, "ARM_RESOURCE_MANAGER_ENDPOINT")
    audience = _get(env, "ARM_RESOURCE_MANAGER_AUDIENCE")
    if authority and endpoint and audience:
        scope = audience if audience.endswith("/.default") else f"{audience.rstrip('/')}/.default"
        return Cloud(endpoint.rstrip("/"), authority.rstrip("/"), scope)
    name = _get(env, "ARM_ENVIRONMENT", "AZURE_ENVIRONMENT").lower()
    if not name:
        return Cloud()
    name = _CLOUD_ALIASES.get(name, name)
    if name not in CLOUDS:
        raise CredentialConfigError(
            f"ARM_ENVIRONMENT/AZURE_ENVIRONMENT names an unknown cloud {name!r} (known: {', '.join(CLOUDS)})"
        )
    arm, login = CLOUDS[name]
    return Cloud(arm, login)


def _oidc_assertion(env: Mapping[str, str]) -> Callable[[], str]:
    """The ID-token source for ``ARM_USE_OIDC``, in azure-native's order: the
    token itself, a file holding it (re-read on every use, so a refreshed file
    is picked up), or GitHub's token-request endpoint."""
    token = _get(env, "ARM_OIDC_TOKEN")
    if token:
        return lambda: token
    path = _get(env, "ARM_OIDC_TOKEN_FILE_PATH")
    if path:
        return lambda: open(path, encoding="utf-8").read().strip()  # noqa: SIM115
    url = _get(env, "ARM_OIDC_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_URL")
    bearer = _get(env, "ARM_OIDC_REQUEST_TOKEN", "ACTIONS_ID_TOKEN_REQUEST_TOKEN")
    if url and bearer:
        audience = _get(env, "ARM_OIDC_AUDIENCE") or DEFAULT_OIDC_AUDIENCE
        return lambda: _github_id_token(url, bearer, audience)
    raise CredentialConfigError(
        "ARM_USE_OIDC is true but no ID token is given: set ARM_OIDC_TOKEN, ARM_OIDC_TOKEN_FILE_PATH, "
        "or ARM_OIDC_REQUEST_URL/ACTIONS_ID_TOKEN_REQUEST_URL with its request token"
    )


def _github_id_token(url: str, bearer: str, audience: str) -> str:
    import requests

    response = requests.get(
        url,
        params={"audience": audience},
        headers={"Authorization": f"Bearer {bearer}", "Accept": "application/json"},
        timeout=30,
    )
    if not response.ok:
        raise ClientAuthenticationError(f"OIDC token request to {url} answered {response.status_code}")
    return str(response.json()["value"])


def credential_from_environment(
    environ: Mapping[str, str] | None = None, cloud: Cloud | None = None
) -> TokenCredential:
    """The credential azure-native would sign in with, from the same ``ARM_*``
    variables and in its order (provider/pkg/provider/auth_azidentity.go):

    1. ``ARM_USE_DEFAULT_AZURE_CREDENTIAL=true``: ``DefaultAzureCredential``;
    2. ``ARM_CLIENT_CERTIFICATE_PATH`` (+ ``ARM_CLIENT_CERTIFICATE_PASSWORD``):
       service principal with a certificate;
    3. ``ARM_CLIENT_SECRET``: service principal with a secret;
    4. ``ARM_USE_OIDC=true``: workload identity federation (``ARM_OIDC_TOKEN``,
       ``ARM_OIDC_TOKEN_FILE_PATH`` or the GitHub Actions token request);
    5. ``ARM_USE_MSI=true``: managed identity (``ARM_CLIENT_ID`` picks a
       user-assigned one);
    6. otherwise ``DefaultAzureCredential``, which reads ``AZURE_CLIENT_ID``/
       ``AZURE_TENANT_ID``/``AZURE_CLIENT_SECRET``/``AZURE_CLIENT_CERTIFICATE_PATH``
       (EnvironmentCredential), ``AZURE_FEDERATED_TOKEN_FILE`` (workload
       identity), managed identity and the Azure CLI login (azure-native's own
       last resort).

    ``ARM_CLIENT_ID``/``ARM_TENANT_ID`` fall back to ``AZURE_CLIENT_ID``/
    ``AZURE_TENANT_ID``. ``ARM_DISABLE_INSTANCE_DISCOVERY=true`` is honoured
    (private clouds). Raises ``CredentialConfigError`` naming the missing
    variable, as azure-native does instead of falling through."""
    from azure import identity

    env = os.environ if environ is None else environ
    cloud = cloud or cloud_from_environment(env)
    common: dict[str, Any] = {}
    if cloud.authority:
        common["authority"] = cloud.authority
    if _true(env, "ARM_DISABLE_INSTANCE_DISCOVERY"):
        common["disable_instance_discovery"] = True
    if aux := _get(env, "ARM_AUXILIARY_TENANT_IDS"):
        common["additionally_allowed_tenants"] = list(json.loads(aux))
    client_id = _get(env, "ARM_CLIENT_ID", "AZURE_CLIENT_ID")
    tenant_id = _get(env, "ARM_TENANT_ID", "AZURE_TENANT_ID")

    def need(method: str) -> tuple[str, str]:
        for value, name in ((tenant_id, "ARM_TENANT_ID"), (client_id, "ARM_CLIENT_ID")):
            if not value:
                raise CredentialConfigError(f"{name} must be set when authenticating with {method}")
        return tenant_id, client_id

    if _true(env, "ARM_USE_DEFAULT_AZURE_CREDENTIAL"):
        return identity.DefaultAzureCredential(**common)
    if certificate := _get(env, "ARM_CLIENT_CERTIFICATE_PATH"):
        password = _get(env, "ARM_CLIENT_CERTIFICATE_PASSWORD") or None
        return identity.CertificateCredential(
            *need("a client certificate (ARM_CLIENT_CERTIFICATE_PATH)"),
            certificate_path=certificate,
            password=password,
            **common,
        )
    if secret := _get(env, "ARM_CLIENT_SECRET"):
        return identity.ClientSecretCredential(*need("a client secret (ARM_CLIENT_SECRET)"), secret, **common)
    if _true(env, "ARM_USE_OIDC"):
        tenant, client = need("OIDC (ARM_USE_OIDC)")
        return identity.ClientAssertionCredential(tenant, client, _oidc_assertion(env), **common)
    if _true(env, "ARM_USE_MSI"):
        return identity.ManagedIdentityCredential(client_id=client_id or None)
    return identity.DefaultAzureCredential(**common)

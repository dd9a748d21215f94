"""Signing in to Azure Resource Manager the way azure-native does, and the
ARM pipeline the stack's own dynamic resources (endpoint routing, managed
network provisioning) call it through.

``credential_from_environment`` builds the credential from azure-native's
``ARM_*`` variables, so those resources act as the same identity as the rest
of the stack, and falls back to ``DefaultAzureCredential`` (``AZURE_*``
variables, workload identity, managed identity, Azure CLI).
``ProviderCredential`` is what a dynamic provider keeps: a test credential,
or one built from the environment once per provider-host process and never
pickled (Pulumi pickles dynamic providers into the state).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from azure.core.credentials import TokenCredential
from azure.core.exceptions import ClientAuthenticationError

ARM_ENDPOINT = "https://management.azure.com"


def arm_pipeline_client(
    credential: TokenCredential,
    *,
    base_url: str = ARM_ENDPOINT,
    moniker: str,
    scope: str | None = None,
    connection_verify: bool | str = True,
) -> Any:
    """An azure-mgmt-core ``ARMPipelineClient`` with ARM's challenge
    authentication, retries and request ids."""
    from azure.core.pipeline import policies
    from azure.core.pipeline.transport import RequestsTransport
    from azure.mgmt.core import ARMPipelineClient
    from azure.mgmt.core.policies import ARMChallengeAuthenticationPolicy

    return ARMPipelineClient(
        base_url=base_url,
        policies=[
            policies.RequestIdPolicy(),
            policies.HeadersPolicy(),
            policies.UserAgentPolicy(sdk_moniker=moniker),
            policies.RetryPolicy(),
            # The token audience is the ARM endpoint itself (differs per
            # cloud) unless a custom cloud names its own audience.
            ARMChallengeAuthenticationPolicy(credential, scope or f"{base_url.rstrip('/')}/.default"),
            policies.HttpLoggingPolicy(),
        ],
        transport=RequestsTransport(connection_verify=connection_verify),
    )


class ProviderCredential:
    """A dynamic provider's credential: the one given (tests), else built
    from the environment on first use in this process."""

    def __init__(self, credential: Any = None) -> None:
        self._given = credential
        self._built: Any = None

    def __getstate__(self) -> dict[str, Any]:
        # A credential built in one process never travels to another.
        return {"_given": self._given, "_built": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def client_args(self, props: Mapping[str, Any]) -> dict[str, Any]:
        """``credential``, ``base_url`` and ``scope`` of an ARM client for a
        resource whose inputs may name its ARM endpoint (``armEndpoint``)."""
        cloud = cloud_from_environment()
        return {"credential": self.get(cloud), "base_url": props.get("armEndpoint") or cloud.arm_endpoint, "scope": cloud.scope}

    def get(self, cloud: "Cloud") -> Any:
        if self._given is not None:
            return self._given
        if self._built is None:
            self._built = credential_from_environment(cloud=cloud)
        return self._built


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

"""A local HTTPS stand-in for Azure Resource Manager (ARM): the part of the
Azure ML REST surface ``azml.serving.routing`` uses - online and batch
endpoints, their deployments, and ARM's asynchronous-operation protocol. It
binds 127.0.0.1 on a random port with a CA and server certificate made at
start-up (``ca_file``), so the real azure-core transport verifies TLS.

Rules it enforces, answering with ARM's ``{"error": {"code", "message"}}``:

- ARM-wide: ``Authorization: Bearer <token>`` on every request (401 with a
  ``WWW-Authenticate`` challenge otherwise) and ``?api-version=`` (400
  ``MissingApiVersionParameter``); unknown resources are 404 ``ResourceNotFound``.
- Endpoint PUT keeps ``location`` and ``properties.authMode`` and sends no
  read-only field (``id``/``name``/``type``/``systemData``, ``properties.``
  ``provisioningState``/``scoringUri``/``swaggerUri``/``openApiUri``,
  ``identity.principalId``/``tenantId``). Real ARM mostly *ignores* read-only
  fields sent back: refusing them is stricter than Azure, on purpose, so a
  client that echoes a GET body is caught. A PUT while ``Updating`` is a 409.
- Online traffic, as Azure ML documents it: whole percentages 0..100 summing
  to 0 or 100; every ``traffic``/``mirrorTraffic`` key a deployment of that
  endpoint; mirror to at most one deployment, at most 50 %, never to one with
  live traffic. Batch: ``defaults.deploymentName`` an existing deployment or null.
- DELETE of an online deployment that still gets live or mirror traffic: 400.

- PUT replaces the endpoint, as ARM's PUT does (the REST spec's PATCH,
  ``OnlineEndpoints_Update``, takes tags and identity only): a PUT without
  ``traffic``/``mirrorTraffic`` leaves the endpoint with no split - the reset
  an endpoint resource's own update causes, which the routing resource must
  repair.

Identity, the sign-in half of ARM (no ``api-version``, no bearer token):

- Microsoft Entra token endpoint per tenant (``/<tenant>/oauth2/v2.0/token``
  and its ``/<tenant>/v2.0/.well-known/openid-configuration``): client
  credentials with a secret or a federated ``client_assertion`` of an app
  registered with ``add_app``; the scope must be ``<base_url>/.default``.
- App Service managed identity (``/msi/token``, ``X-IDENTITY-HEADER``) after
  ``enable_managed_identity``; GitHub Actions' ID-token request
  (``/github/idtoken``, bearer request token, ``audience``) after
  ``enable_github_oidc``.
- Every token issued is accepted by ARM afterwards; ``issued`` records how
  each was obtained.

A valid PUT answers 201 (``provisioningState: Updating``) with an
``Azure-AsyncOperation`` URL and ``Retry-After``; that URL reports
``InProgress`` ``in_progress_polls`` times, then ``Succeeded`` - only then is
the new state visible - or ``Failed`` after ``fail_next_operation()``.

Only Azure can prove: its exact error wording (paraphrased here), validation
of fields not modelled here, timing, and that deleting a deployment drops its
0 % entry from the split (assumed). Endpoints are seeded through the Python
API; a PUT never creates one (RoutingClient never creates endpoints).
"""

from __future__ import annotations

import copy
import datetime as dt
import ipaddress
import json
import re
import shutil
import ssl
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_WORKSPACE = r"/subscriptions/(?P<sub>[^/]+)/resourceGroups/[^/]+/providers/Microsoft\.MachineLearningServices/workspaces/[^/]+"
_RESOURCE = re.compile(_WORKSPACE + r"/(?:online|batch)Endpoints/[^/]+(?P<list>/deployments(?:/(?P<dep>[^/]+))?)?$", re.I)
_OPERATION = re.compile(r"/subscriptions/[^/]+/providers/Microsoft\.MachineLearningServices/locations/[^/]+/mfeOperationsStatus/(?P<op>[^/]+)$", re.I)  # fmt: skip
_READ_ONLY: dict[str | None, tuple[str, ...]] = {
    None: ("id", "name", "type", "systemData"),
    "identity": ("principalId", "tenantId"),
    "properties": ("provisioningState", "scoringUri", "swaggerUri", "openApiUri"),
}
MAX_MIRROR = 50
_TOKEN = re.compile(r"/(?P<tenant>[^/]+)/oauth2/v2\.0/token$")
_OPENID = re.compile(r"/(?P<tenant>[^/]+)/v2\.0/\.well-known/openid-configuration$")
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@dataclass
class App:
    """An app registration (or user-assigned identity with a federated
    credential): a secret, or the one ID token its federated credential trusts."""

    tenant: str
    client_id: str
    secret: str | None = None
    federated_token: str | None = None


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    headers: dict[str, str] = field(repr=False)
    status: int = 0  # what the server answered


class ArmError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _certificates(directory: Path) -> tuple[str, str, str]:
    """A CA, and a server certificate it signs for 127.0.0.1/localhost: the
    paths of the CA PEM, the server PEM and the server key."""
    now = dt.datetime.now(dt.timezone.utc)
    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "azml test ARM CA")])
    ca_key_id = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())

    def sign(subject: x509.Name, key: ec.EllipticCurvePrivateKey, *extensions: x509.ExtensionType) -> bytes:
        builder = x509.CertificateBuilder(
            issuer_name=ca_name, subject_name=subject, public_key=key.public_key(), serial_number=x509.random_serial_number(),
            not_valid_before=now - dt.timedelta(minutes=5), not_valid_after=now + dt.timedelta(days=1),
        )  # fmt: skip
        for extension in extensions:
            builder = builder.add_extension(extension, critical=isinstance(extension, (x509.BasicConstraints, x509.KeyUsage)))
        return builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)

    files = {
        "ca.pem": sign(ca_name, ca_key, x509.BasicConstraints(ca=True, path_length=0), ca_key_id,
                       x509.KeyUsage(False, False, False, False, False, True, True, False, False)),
        "server.pem": sign(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]), server_key,
            x509.BasicConstraints(ca=False, path_length=None), x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_key_id),
        ),
        "server.key": server_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    }  # fmt: skip
    for name, data in files.items():
        (directory / name).write_bytes(data)
    return str(directory / "ca.pem"), str(directory / "server.pem"), str(directory / "server.key")


class ArmServer:
    """In-memory ARM. Seed it with ``add_*``; inspect ``properties()``,
    ``deployments()``, ``requests`` and ``calls()`` between client calls (the
    handler threads hold ``_lock``). ``token`` is the one bearer token accepted."""

    def __init__(self, token: str = "test-token") -> None:
        self.token, self.in_progress_polls, self.retry_after = token, 1, "0"
        self._lock = threading.RLock()
        self.reset()

    # ----------------------------------------------------------------- test API
    def reset(self) -> None:
        self._endpoints: dict[str, dict[str, Any]] = {}  # lower-cased id -> {"kind", "body", "deployments"}
        self._operations: dict[str, dict[str, Any]] = {}
        self._fail_next: dict[str, str] | None = None
        self.requests: list[Recorded] = []
        self._apps: dict[str, App] = {}
        self._tokens: set[str] = set()  # issued, accepted by ARM
        self.issued: list[dict[str, str]] = []  # {"via", "client_id", "tenant", "scope"}
        self._msi: tuple[str, str | None] | None = None  # (header secret, client id)
        self._github: tuple[str, str, str] | None = None  # (request token, audience, ID token)

    # -------------------------------------------------------------- identity API
    def add_app(
        self, tenant: str, client_id: str, *, secret: str | None = None, federated_token: str | None = None
    ) -> App:
        self._apps[client_id] = app = App(tenant, client_id, secret, federated_token)
        return app

    def enable_managed_identity(self, header: str, client_id: str | None = None) -> None:
        """An App Service-style identity endpoint at ``/msi/token``; with
        ``client_id`` it is a user-assigned identity that must be asked for by id."""
        self._msi = (header, client_id)

    def enable_github_oidc(
        self, request_token: str, id_token: str, audience: str = "api://AzureADTokenExchange"
    ) -> None:
        self._github = (request_token, audience, id_token)

    @property
    def authority(self) -> str:
        return self.base_url

    def accepts(self, authorization: str) -> bool:
        scheme, _, token = authorization.partition(" ")
        return scheme == "Bearer" and (token == self.token or token in self._tokens)

    def add_online_endpoint(self, endpoint_id: str, deployments: Iterable[str] = (), traffic=None, mirror_traffic=None) -> str:
        properties = {"authMode": "Key", "publicNetworkAccess": "Disabled", "traffic": dict(traffic or {}),
                      "mirrorTraffic": dict(mirror_traffic or {}), "swaggerUri": "https://example.invalid/swagger.json"}  # fmt: skip
        return self._add(endpoint_id, "online", deployments, properties)

    def add_batch_endpoint(self, endpoint_id: str, deployments: Iterable[str] = (), default: str | None = None) -> str:
        return self._add(endpoint_id, "batch", deployments, {"authMode": "AADToken", "defaults": {"deploymentName": default}})

    def add_deployment(self, endpoint_id: str, name: str) -> None:
        self._endpoints[endpoint_id.lower()]["deployments"][name] = {
            "id": f"{endpoint_id}/deployments/{name}", "name": name, "properties": {"provisioningState": "Succeeded"}}

    def remove_endpoint(self, endpoint_id: str) -> None:
        del self._endpoints[endpoint_id.lower()]

    def properties(self, endpoint_id: str) -> dict[str, Any]:
        return copy.deepcopy(self._endpoints[endpoint_id.lower()]["body"]["properties"])

    def set_properties(self, endpoint_id: str, **changes: Any) -> None:
        """An out-of-band change, as if someone used the portal."""
        self._endpoints[endpoint_id.lower()]["body"]["properties"].update(copy.deepcopy(changes))

    def deployments(self, endpoint_id: str) -> list[str]:
        return sorted(self._endpoints[endpoint_id.lower()]["deployments"])

    def fail_next_operation(self, code: str = "InternalServerError", message: str = "The operation failed.") -> None:
        self._fail_next = {"code": code, "message": message}

    def calls(self, *methods: str) -> list[tuple[str, str]]:
        """(method, path) of every recorded request, or only of ``methods``."""
        return [(r.method, r.path) for r in self.requests if not methods or r.method in methods]

    def _add(self, endpoint_id: str, kind: str, deployments: Iterable[str], properties: dict[str, Any]) -> str:
        name = endpoint_id.rsplit("/", 1)[-1]
        body = {
            "id": endpoint_id, "name": name, "location": "westeurope", "tags": {"owner": "azml"}, "kind": "Managed",
            "type": f"Microsoft.MachineLearningServices/workspaces/{kind}Endpoints",
            "identity": {"type": "SystemAssigned", "principalId": str(uuid.uuid4()), "tenantId": str(uuid.uuid4())},
            "systemData": {"createdBy": "azml-tests", "createdAt": "2025-01-01T00:00:00Z"},
            "properties": {**properties, "provisioningState": "Succeeded",
                           "scoringUri": f"https://{name}.westeurope.inference.ml.azure.com/score"},
        }  # fmt: skip
        self._endpoints[endpoint_id.lower()] = {"kind": kind, "body": body, "deployments": {}}
        for deployment in deployments:
            self.add_deployment(endpoint_id, deployment)
        return endpoint_id

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> "ArmServer":
        self._dir = Path(tempfile.mkdtemp(prefix="arm-server-"))
        self.ca_file, cert_file, key_file = _certificates(self._dir)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_file, key_file)
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
        self._httpd.arm = self  # type: ignore[attr-defined]
        self.base_url = f"https://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
        shutil.rmtree(self._dir, ignore_errors=True)

    # ---------------------------------------------------------------- ARM logic
    def handle(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any, dict[str, str]]:
        if not query.get("api-version"):
            raise ArmError(400, "MissingApiVersionParameter",
                           "The api-version query parameter (?api-version=) is required for all requests.")  # fmt: skip
        if operation := _OPERATION.match(path):
            return self._operation_status(operation["op"])
        match = _RESOURCE.match(path)
        entry = self._endpoints.get(path.lower().split("/deployments")[0]) if match else None
        if entry is None:
            raise ArmError(404, "ResourceNotFound", f"The Resource '{path.split('/providers/')[-1]}' was not found.")
        if match["dep"]:
            return self._deployment(method, entry, match["dep"])
        if match["list"] and method == "GET":
            return 200, {"value": list(entry["deployments"].values())}, {}
        if method == "GET" and not match["list"]:
            return 200, entry["body"], {}
        if method == "PUT" and not match["list"]:
            return self._put(entry, body, match["sub"])
        raise ArmError(405, "MethodNotAllowed", f"{method} is not supported here.")

    def _deployment(self, method: str, entry: dict[str, Any], name: str) -> tuple[int, Any, dict[str, str]]:
        deployment = entry["deployments"].get(name)
        if method == "DELETE" and deployment is None:
            return 204, None, {}
        if deployment is None:
            raise ArmError(404, "ResourceNotFound", f"Deployment '{name}' was not found.")
        if method == "GET":
            return 200, deployment, {}
        if method != "DELETE":
            raise ArmError(405, "MethodNotAllowed", f"{method} is not supported here.")
        properties = entry["body"]["properties"]
        live, mirrored = (properties.get("traffic") or {}).get(name, 0), (properties.get("mirrorTraffic") or {}).get(name, 0)
        if live or mirrored:
            raise ArmError(400, "UserError", f"Deployment '{name}' cannot be deleted while it receives traffic "
                                             f"(traffic {live}%, mirrorTraffic {mirrored}%). Set its traffic to 0 first.")  # fmt: skip
        del entry["deployments"][name]
        for key in ("traffic", "mirrorTraffic"):
            (properties.get(key) or {}).pop(name, None)
        return 200, None, {}

    def _put(self, entry: dict[str, Any], body: Any, subscription: str) -> tuple[int, Any, dict[str, str]]:
        current = entry["body"]
        if current["properties"]["provisioningState"] == "Updating":
            raise ArmError(409, "Conflict", "Another operation is in progress on this endpoint.")
        if not isinstance(body, dict) or not isinstance(body.get("properties"), dict):
            raise ArmError(400, "InvalidRequestContent", "The request content is not a valid endpoint.")
        for section, names in _READ_ONLY.items():
            scope = body if section is None else body.get(section) or {}
            if sent := [f"{section}.{name}" if section else name for name in names if name in scope]:
                raise ArmError(400, "BadRequest", f"Read-only properties cannot be set: {', '.join(sent)}.")
        if body.get("location") != current["location"]:
            raise ArmError(400, "InvalidResourceLocation", f"The location must stay '{current['location']}'.")
        if not body["properties"].get("authMode"):
            raise ArmError(400, "UserError", "properties.authMode is required.")
        check = _online_problem if entry["kind"] == "online" else _batch_problem
        if problem := check(body["properties"], entry["deployments"]):
            raise ArmError(400, "UserError", problem)

        accepted = copy.deepcopy(body)  # what the endpoint becomes once the operation succeeds
        for section, names in _READ_ONLY.items():  # the body sent, plus what Azure computes
            source, target = (current, accepted) if section is None else (current.get(section), accepted.get(section))
            if isinstance(source, dict) and isinstance(target, dict):
                target.update({name: copy.deepcopy(source[name]) for name in names if name in source})
        accepted["properties"]["provisioningState"] = "Succeeded"
        operation = str(uuid.uuid4())
        self._operations[operation] = {"entry": entry, "accepted": accepted, "polls": self.in_progress_polls,
                                       "fail": self._fail_next, "status": "InProgress"}  # fmt: skip
        self._fail_next = None
        current["properties"]["provisioningState"] = "Updating"
        status_url = (f"{self.base_url}/subscriptions/{subscription}/providers/Microsoft.MachineLearningServices"
                      f"/locations/{current['location']}/mfeOperationsStatus/{operation}?api-version=2025-12-01")  # fmt: skip
        reply = copy.deepcopy(accepted)
        reply["properties"]["provisioningState"] = "Updating"
        return 201, reply, {"Azure-AsyncOperation": status_url, "Retry-After": self.retry_after}

    def _operation_status(self, operation_id: str) -> tuple[int, Any, dict[str, str]]:
        operation = self._operations.get(operation_id)
        if operation is None:
            raise ArmError(404, "ResourceNotFound", f"Operation '{operation_id}' was not found.")
        if operation["status"] == "InProgress":
            if operation["polls"] > 0:
                operation["polls"] -= 1
                return 200, {"name": operation_id, "status": "InProgress"}, {"Retry-After": self.retry_after}
            entry = operation["entry"]
            if operation["fail"]:
                operation["status"] = "Failed"
                entry["body"]["properties"]["provisioningState"] = "Failed"
            else:
                operation["status"] = "Succeeded"
                entry["body"] = operation["accepted"]
        failed = {"error": operation["fail"]} if operation["status"] == "Failed" else {}
        return 200, {"name": operation_id, "status": operation["status"], **failed}, {}


    # ----------------------------------------------------------------- identity
    def identity(self, method: str, path: str, query: dict[str, list[str]], body: Any,
                 headers: Mapping[str, str]) -> tuple[int, Any] | None:  # fmt: skip
        """Answer a sign-in request, or ``None`` if ``path`` is ARM's."""
        if method == "GET" and (match := _OPENID.match(path)):
            tenant = f"{self.base_url}/{match['tenant']}"
            return 200, {"issuer": f"{tenant}/v2.0", "token_endpoint": f"{tenant}/oauth2/v2.0/token",
                         "authorization_endpoint": f"{tenant}/oauth2/v2.0/authorize",
                         "device_authorization_endpoint": f"{tenant}/oauth2/v2.0/devicecode"}  # fmt: skip
        if method == "POST" and (match := _TOKEN.match(path)):
            form = {k: v[0] for k, v in parse_qs(body if isinstance(body, str) else "").items()}
            return self._client_credentials(match["tenant"], form)
        if method == "GET" and path == "/msi/token":
            return self._managed_identity(query, headers)
        if method == "GET" and path == "/github/idtoken":
            return self._github_token(query, headers)
        return None

    def _issue(self, via: str, client_id: str, tenant: str, scope: str) -> str:
        token = f"entra-{uuid.uuid4()}"
        self._tokens.add(token)
        self.issued.append({"via": via, "client_id": client_id, "tenant": tenant, "scope": scope})
        return token

    def _client_credentials(self, tenant: str, form: dict[str, str]) -> tuple[int, Any]:
        def refuse(status: int, error: str, description: str) -> tuple[int, Any]:
            return status, {"error": error, "error_description": description}

        if form.get("grant_type") != "client_credentials":
            return refuse(400, "unsupported_grant_type", f"grant_type {form.get('grant_type')!r} is not served here.")
        app = self._apps.get(form.get("client_id", ""))
        if app is None or app.tenant != tenant:
            return refuse(400, "unauthorized_client", f"Application '{form.get('client_id')}' was not found in tenant '{tenant}'.")  # fmt: skip
        if form.get("scope") != f"{self.base_url}/.default":
            return refuse(400, "invalid_scope", f"The scope '{form.get('scope')}' is not valid for this resource.")
        if "client_secret" in form:
            if app.secret is None or form["client_secret"] != app.secret:
                return refuse(401, "invalid_client", "Invalid client secret provided.")
            via = "secret"
        elif form.get("client_assertion_type") == JWT_BEARER:
            if app.federated_token is None or form.get("client_assertion") != app.federated_token:
                return refuse(400, "invalid_client", "The client assertion matches no federated identity credential.")
            via = "federated"
        else:
            return refuse(401, "invalid_client", "The request has no client secret and no client assertion.")
        token = self._issue(via, app.client_id, tenant, form["scope"])
        return 200, {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token}

    def _managed_identity(self, query: dict[str, list[str]], headers: Mapping[str, str]) -> tuple[int, Any]:
        if self._msi is None or headers.get("X-IDENTITY-HEADER") != self._msi[0]:
            return 401, {"error": "unauthorized", "error_description": "The X-IDENTITY-HEADER is missing or wrong."}
        resource, client_id = (query.get("resource") or [""])[0], (query.get("client_id") or [None])[0]
        if client_id != self._msi[1]:
            described = f"No managed identity with client id {client_id!r}."
            return 400, {"error": "invalid_request", "error_description": described}
        if resource.rstrip("/") != self.base_url:
            return 400, {"error": "invalid_resource", "error_description": f"The resource '{resource}' is not valid."}
        token = self._issue("managed-identity", client_id or "system", "", resource)
        return 200, {"access_token": token, "expires_on": str(int(time.time()) + 3600), "resource": resource,
                     "token_type": "Bearer", "client_id": client_id or "system"}  # fmt: skip

    def _github_token(self, query: dict[str, list[str]], headers: Mapping[str, str]) -> tuple[int, Any]:
        if self._github is None or headers.get("Authorization") != f"Bearer {self._github[0]}":
            return 401, {"message": "Bad credentials"}
        if (query.get("audience") or [""])[0] != self._github[1]:
            return 400, {"message": f"Unexpected audience {query.get('audience')}"}
        return 200, {"value": self._github[2], "count": 1}


def _online_problem(properties: dict[str, Any], deployments: dict[str, Any]) -> str | None:
    traffic, mirror_traffic = properties.get("traffic") or {}, properties.get("mirrorTraffic") or {}
    for key, split in (("traffic", traffic), ("mirrorTraffic", mirror_traffic)):
        for name, value in split.items():
            if name not in deployments:
                return f"{key} names deployment '{name}', which does not exist on this endpoint."
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
                return f"{key} of '{name}' must be an integer between 0 and 100 (got {value!r})."
    if sum(traffic.values()) not in (0, 100):
        return f"Traffic values must sum to 0 or 100 (got {sum(traffic.values())})."
    mirrored = {name: value for name, value in mirror_traffic.items() if value}
    if len(mirrored) > 1:
        return "Mirror traffic can be set for one deployment only."
    for name, value in mirrored.items():
        if value > MAX_MIRROR:
            return f"Mirror traffic of '{name}' cannot exceed {MAX_MIRROR}% (got {value})."
        if traffic.get(name):
            return f"Deployment '{name}' has live traffic and cannot also receive mirror traffic."
    return None


def _batch_problem(properties: dict[str, Any], deployments: dict[str, Any]) -> str | None:
    name = (properties.get("defaults") or {}).get("deploymentName")
    return None if name is None or name in deployments else f"Default deployment '{name}' does not exist."


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the requests session expects

    def _serve(self) -> None:
        arm: ArmServer = self.server.arm  # type: ignore[attr-defined]
        url = urlsplit(self.path)
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        query, headers = parse_qs(url.query), {}
        with arm._lock:
            arm.requests.append(record := Recorded(self.command, url.path, query, body, dict(self.headers)))
            try:
                if (signed_in := arm.identity(self.command, url.path, query, body, self.headers)) is not None:
                    status, payload = signed_in
                else:
                    authorization = self.headers.get("Authorization", "")
                    if not arm.accepts(authorization):
                        headers["WWW-Authenticate"] = 'Bearer authorization_uri="https://login.microsoftonline.com/common", error="invalid_token"'  # fmt: skip
                        raise ArmError(401, "InvalidAuthenticationToken" if authorization else "AuthenticationFailed",
                                       "Authentication failed. The 'Authorization' header is missing or invalid.")  # fmt: skip
                    status, payload, headers = arm.handle(self.command, url.path, query, body)
            except ArmError as error:
                status, payload = error.status, {"error": {"code": error.code, "message": error.message}}
            record.status = status
        self._reply(status, payload, headers)

    def _reply(self, status: int, payload: Any, headers: dict[str, str]) -> None:
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        for name, value in {**headers, "Content-Type": "application/json; charset=utf-8",
                            "x-ms-request-id": str(uuid.uuid4()), "Content-Length": str(len(data))}.items():  # fmt: skip
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_PUT = do_DELETE = do_PATCH = do_POST = _serve

    def log_message(self, *_args: Any) -> None:  # quiet
        pass


@pytest.fixture
def arm_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ArmServer]:
    """A running ArmServer, its CA trusted by requests (and so by azure-core's
    RequestsTransport) through ``REQUESTS_CA_BUNDLE``; stopped at teardown."""
    server = ArmServer().start()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", server.ca_file)
    try:
        yield server
    finally:
        server.stop()

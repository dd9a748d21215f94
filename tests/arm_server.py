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
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterable, Iterator
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

    def add_online_endpoint(self, endpoint_id: str, deployments: Iterable[str] = (), traffic=None, mirror=None) -> str:
        properties = {"authMode": "Key", "publicNetworkAccess": "Disabled", "traffic": dict(traffic or {}),
                      "mirrorTraffic": dict(mirror or {}), "swaggerUri": "https://example.invalid/swagger.json"}  # fmt: skip
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
        live, mirror = (properties.get("traffic") or {}).get(name, 0), (properties.get("mirrorTraffic") or {}).get(name, 0)
        if live or mirror:
            raise ArmError(400, "UserError", f"Deployment '{name}' cannot be deleted while it receives traffic "
                                             f"(traffic {live}%, mirrorTraffic {mirror}%). Set its traffic to 0 first.")  # fmt: skip
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


def _online_problem(properties: dict[str, Any], deployments: dict[str, Any]) -> str | None:
    traffic, mirror = properties.get("traffic") or {}, properties.get("mirrorTraffic") or {}
    for key, split in (("traffic", traffic), ("mirrorTraffic", mirror)):
        for name, value in split.items():
            if name not in deployments:
                return f"{key} names deployment '{name}', which does not exist on this endpoint."
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
                return f"{key} of '{name}' must be an integer between 0 and 100 (got {value!r})."
    if sum(traffic.values()) not in (0, 100):
        return f"Traffic values must sum to 0 or 100 (got {sum(traffic.values())})."
    mirrored = {name: value for name, value in mirror.items() if value}
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
                authorization = self.headers.get("Authorization", "")
                if authorization != f"Bearer {arm.token}":
                    headers["WWW-Authenticate"] = 'Bearer authorization_uri="https://login.microsoftonline.com/common", error="invalid_token"'  # fmt: skip
                    raise ArmError(401, "InvalidAuthenticationToken" if authorization else "AuthenticationFailed",
                                   "Authentication failed. The 'Authorization' header is missing or invalid.")  # fmt: skip
                status, payload, headers = arm.handle(self.command, url.path, query, body)
            except ArmError as error:
                status, payload = error.status, {"error": {"code": error.code, "message": error.message}}
            record.status = status
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

"""A threaded HTTPS server on 127.0.0.1 with a CA made at start-up, for the
local stand-ins of Azure services: azure-core's transport verifies TLS
against ``ca_file`` (tests trust it through ``REQUESTS_CA_BUNDLE``)."""

from __future__ import annotations

import json
import shutil
import ssl
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from .arm_server import _certificates


class JsonPostHandler(BaseHTTPRequestHandler):
    """POSTs go to the owner's ``handle(path, headers, body) -> (status, payload)``;
    the payload goes back as JSON."""

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        length = int(self.headers.get("Content-Length") or 0)
        status, payload = self.server.owner.handle(self.path.split("?", 1)[0], self.headers, self.rfile.read(length))  # type: ignore[attr-defined]
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_args: Any) -> None:  # quiet
        pass


class LocalHttpsServer:
    """Mixin: ``_start_https(handler, prefix)`` serves ``handler`` (which reaches
    this object as ``self.server.owner``) and returns the base URL."""

    ca_file: str

    def _start_https(self, prefix: str, handler: type[BaseHTTPRequestHandler] = JsonPostHandler) -> str:
        self._dir = Path(tempfile.mkdtemp(prefix=prefix))
        self.ca_file, cert_file, key_file = _certificates(self._dir)
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_file, key_file)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        server.owner = self  # type: ignore[attr-defined]
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return f"https://127.0.0.1:{server.server_address[1]}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        shutil.rmtree(self._dir, ignore_errors=True)

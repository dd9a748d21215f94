"""A threaded HTTPS server on 127.0.0.1 with a CA made at start-up, for the
local stand-ins of Azure services: azure-core's transport verifies TLS
against ``ca_file`` (tests trust it through ``REQUESTS_CA_BUNDLE``)."""

from __future__ import annotations

import shutil
import ssl
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from .arm_server import _certificates


class LocalHttpsServer:
    """Mixin: ``_start_https(handler, prefix)`` serves ``handler`` (which reaches
    this object as ``self.server.owner``) and returns the base URL."""

    ca_file: str

    def _start_https(self, handler: type[BaseHTTPRequestHandler], prefix: str) -> str:
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

"""One local HTTP server for the whole sandbox, routing to the AEP and workspace emulators.

The emulators are plain `handle(Request) -> Response` objects so they can be tested and
reasoned about without sockets; this module only moves bytes. It never logs: request
headers and bodies carry IMS secrets, PATs and SAS tokens.

Two things happen here because they are about the wire, not about either service:
- latency: each route may take a random time per request (the `realistic` profile,
  provisioner/sandbox/profile.py). The handler runs *after* the wait, as a real service's
  processing ends just before it answers, and each request waits in its own thread, so
  parallel calls overlap as they would against a real workspace. With a seed
  (`PROVISION_SANDBOX_LATENCY_SEED`, or `SandboxServer.seed_latency`) each wait is drawn from
  the client (the first word of its User-Agent), the request and how many times that client
  made it (a client whose User-Agent names no product gets one wait per request): two runs
  with one seed give Terraform's provider the same waits, whatever else the run calls —
  common random numbers, so a benchmark's pair differs only in the wrapper;
- a workspace's own port: every path a request to it names is under that workspace's
  `/ws/<key>` (`SandboxServer(extra=…)`), so clients that keep only scheme and host of a
  workspace URL (the legacy databricks-cli, databricks-sdk's error overrides, which match
  `/api/2.x/clusters/get` at the start of the path) reach it at `http://127.0.0.1:<its port>`;
- a request journal for benchmarks (`PROVISION_SANDBOX_TRACE=<file>`): one JSON line per
  request with its route, path without query string, status and start/end times — no
  header, body or query, so nothing secret.
"""

from __future__ import annotations

import json
import random
import socket
import threading
import time
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from provisioner.sandbox.files import mask_sas
from provisioner.sandbox.listener import listen_loopback
from provisioner.sandbox.wire import Request, Response, json_response

Handler = Callable[[Request], Response]
# User-Agents that name no product: databricks-sdk's host-metadata probe (`Config._resolve_host_metadata`)
# sends the default product `unknown/0.0.0`.
_ANONYMOUS = frozenset({"", "python-requests", "unknown"})


class _SandboxHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        routes: dict[str, Handler],
        admin: Callable[[], dict[str, Any]] | None,
        latency: dict[str, tuple[float, float]],
        trace: Path | None,
        listener: socket.socket,
        path_prefix: str = "",
        primary: _SandboxHTTPServer | None = None,
    ) -> None:
        self.path_prefix = path_prefix
        self.primary = primary  # a workspace port's server shares the main one's latency draws and journal
        self.routes = routes
        self.admin = admin
        self.latency = latency
        self.trace = trace
        self._lock = threading.Lock()  # the journal file and the per-client counts of requests
        self.latency_seed: str | None = None
        self._made: dict[tuple[str, str, str], int] = {}
        super().__init__(listener.getsockname(), _RequestHandler, bind_and_activate=False)
        self.socket.close()
        self.socket = listener  # already bound and listening (Sandbox: the port is known before the server)

    def delay(self, prefix: str, request: Request) -> float:
        """How long this request waits before its handler runs (seconds)."""
        if self.primary is not None:
            return self.primary.delay(prefix, request)
        low, high = self.latency.get(prefix, (0.0, 0.0))
        if high <= 0:
            return 0.0
        if self.latency_seed is None:
            return random.uniform(low, high)
        client = request.headers.get("user-agent", "").split("/", 1)[0]
        key = (client, request.method, request.path)
        if client in _ANONYMOUS:
            made = 0  # whose it is cannot be told (the SDK's host-metadata probe): one wait per request
        else:
            with self._lock:
                made = self._made[key] = self._made.get(key, 0) + 1
        return random.Random(f"{self.latency_seed}|{client}|{request.method} {request.path}|{made}").uniform(low, high)

    def seed_latency(self, seed: str | None) -> None:
        with self._lock:
            self.latency_seed, self._made = seed, {}

    def journal(self, prefix: str, request: Request, status: int, began: float) -> None:
        if self.primary is not None:
            self.primary.journal(prefix, request, status, began)
            return
        if self.trace is None:
            return
        line = json.dumps(
            {
                "route": prefix,
                "method": request.method,
                "path": request.path,
                "status": status,
                "start": began,
                "end": time.time(),
            }
        )
        with self._lock, self.trace.open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")


class _RequestHandler(BaseHTTPRequestHandler):
    server: _SandboxHTTPServer
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle on, each answer on a
    # keep-alive connection waits ~40 ms for the client's delayed ACK.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        # The default logs the request line to stderr; query strings can carry secrets.
        return

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        path = parts.path
        if self.server.path_prefix and not path.startswith("/_sandbox/"):
            path = self.server.path_prefix + path
        request = Request(
            method=self.command,
            path=path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            raw_query=parts.query,
        )
        try:
            response = self._route(request)
        except Exception as exc:  # an emulator bug must answer, not hang the client
            response = json_response(500, {"error_code": "INTERNAL_ERROR", "message": type(exc).__name__})
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    def _route(self, request: Request) -> Response:
        if request.path == "/_sandbox/state" and self.server.admin is not None:
            return json_response(200, self.server.admin())
        for prefix, handler in self.server.routes.items():
            if request.path.startswith(prefix):
                began = time.time()
                wait = self.server.delay(prefix, request)
                if wait > 0:
                    time.sleep(wait)
                response = handler(request)
                self.server.journal(prefix, request, response.status, began)
                return response
        return json_response(404, {"error_code": "ENDPOINT_NOT_FOUND", "message": "Not Found"})

    do_GET = _dispatch
    do_POST = _dispatch
    do_PUT = _dispatch
    do_PATCH = _dispatch
    do_DELETE = _dispatch


class SandboxServer:
    """The listening socket plus its serving thread; `start()`/`stop()`."""

    def __init__(
        self,
        routes: dict[str, Handler],
        admin: Callable[[], dict[str, Any]] | None = None,
        *,
        latency: dict[str, tuple[float, float]] | None = None,
        trace: Path | None = None,
        listener: socket.socket | None = None,
        extra: Sequence[tuple[socket.socket, str]] = (),
    ) -> None:
        """`latency`: route prefix → (min, max) seconds per request; `trace`: the journal file;
        `listener`: a socket already listening, else one on a free loopback port; `extra`:
        more listening sockets, each with the path prefix its requests are served under."""
        self._httpd = _SandboxHTTPServer(routes, admin, dict(latency or {}), trace, listener or listen_loopback())
        self._extra = [
            _SandboxHTTPServer(routes, admin, {}, None, sock, path_prefix=prefix, primary=self._httpd)
            for sock, prefix in extra
        ]
        self._threads: list[threading.Thread] = []

    def seed_latency(self, seed: str | None) -> None:
        """Draw the waits from `seed` from now on, every client's count of requests reset (None: at random)."""
        self._httpd.seed_latency(seed)

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        # stop() waits for the serving loop's next poll: every --sandbox command pays it on exit
        # (half the interval on average; waking 500 times a second costs ~0.1 % of a core).
        for httpd in (self._httpd, *self._extra):
            thread = threading.Thread(
                target=httpd.serve_forever, kwargs={"poll_interval": 0.002}, name="sandbox-http", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        servers = (self._httpd, *self._extra)
        if self._threads:
            for httpd in servers:
                httpd.shutdown()
            for thread in self._threads:
                thread.join(timeout=5)
            self._threads = []
        for httpd in servers:
            httpd.server_close()


def redacted_state(state: dict[str, Any]) -> dict[str, Any]:
    """The state for the admin endpoint: SAS signatures, secret values, PATs hidden."""
    out: dict[str, Any] = json.loads(json.dumps(state))
    for record in out.get("dlz", {}).values():
        record["SASToken"] = mask_sas(record["SASToken"])
    out["dlz_accounts"] = {name: "***" for name in out.get("dlz_accounts", {})}
    for ws in out.get("workspaces", {}).values():
        for scope in ws.get("scopes", {}).values():
            for secret in scope.get("secrets", {}).values():
                secret["value"] = "***"
        for cluster in ws.get("clusters", {}).values():
            for conf_name in ("effective_spark_conf",):
                conf = cluster.get(conf_name) or {}
                cluster[conf_name] = {k: mask_sas(v) for k, v in conf.items()}
            spark_conf = cluster.get("spec", {}).get("spark_conf") or {}
            if spark_conf:
                cluster["spec"]["spark_conf"] = {k: mask_sas(v) for k, v in spark_conf.items()}
    for conn in out.get("connections", []):
        params = conn.get("auth", {}).get("params", {})
        if "accessToken" in params:
            params["accessToken"] = "***"
    return out
